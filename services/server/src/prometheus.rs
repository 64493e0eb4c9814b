//! Prometheus `/metrics` on its own port. Every crate records through the `metrics`
//! facade (the worker's batches, the stack's requests, the monitor's consumer lag); this
//! installs the one exporter, with deliberate histogram buckets, and serves its text.

use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Seconds: from a cached sub-millisecond answer to a multi-minute document.
const SECONDS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
/// Sequences per forward pass, up to the largest batches a token budget allows.
const BATCH_SIZE: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Padded tokens per forward pass, around the default budget of 8192.
const BATCH_TOKENS: [f64; 10] = [
    64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];
/// How often histograms are folded (the exporter leaves it to its caller).
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's exporter, installed on first use: one recorder per process, however
/// many servers a test starts.
fn handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)?
        .set_buckets_for_metric(
            Matcher::Full("longview_worker_batch_size".into()),
            &BATCH_SIZE,
        )?
        .set_buckets_for_metric(
            Matcher::Full("longview_worker_batch_tokens".into()),
            &BATCH_TOKENS,
        )?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    longview_worker::describe_metrics();
    crate::stack::describe_metrics();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("longview-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        })
        .context("starting metrics upkeep")?;
    Ok(handle)
}

/// A running `/metrics` endpoint.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Installs the exporter and serves `/metrics` on `listen`.
    pub async fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let handle = handle()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding --metrics-listen {listen}"))?;
        let addr = listener.local_addr()?;
        let render = move || {
            let handle = handle.clone();
            async move {
                let content_type = "text/plain; version=0.0.4; charset=utf-8";
                ([(CONTENT_TYPE, content_type)], handle.render())
            }
        };
        let app = axum::Router::new().route("/metrics", axum::routing::get(render));
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "metrics endpoint failed");
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
