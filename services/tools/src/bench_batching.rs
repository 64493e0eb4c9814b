//! Dynamic batching over real gRPC: the same server binary with batching on and off,
//! each loaded by many concurrent clients sending one sentence per call.

use crate::ModelArgs;
use anyhow::Context;
use longview_proto::v1::{EmbedRequest, embed_client::EmbedClient};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Throughput and latency of one server under load.
struct Load {
    requests: usize,
    rejected: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(at).copied().unwrap_or(f64::NAN) * 1e3
    }
}

pub async fn run(model: &ModelArgs, clients: usize, duration: Duration) -> anyhow::Result<()> {
    let model_dir = model.model_dir()?;
    println!(
        "{clients} concurrent clients, one sentence per call, {:.0} s per server",
        duration.as_secs_f64()
    );
    println!(
        "{:>12}  {:>10}  {:>9}  {:>9}  {:>9}",
        "batching", "calls/s", "p50 ms", "p99 ms", "rejected"
    );
    let mut rates = Vec::new();
    for batching in [false, true] {
        let (child, addr) = spawn_server(&model_dir, batching)?;
        let load = drive(&addr, clients, duration).await;
        stop(child);
        let load = load?;
        println!(
            "{:>12}  {:>10.0}  {:>9.1}  {:>9.1}  {:>9}",
            if batching { "on" } else { "off" },
            load.per_second(),
            load.percentile(0.5),
            load.percentile(0.99),
            load.rejected
        );
        rates.push(load.per_second());
    }
    println!("batching on / off: {:.2}x", rates[1] / rates[0]);
    Ok(())
}

/// Starts `longview serve` on a free port and returns it once it has logged "ready".
fn spawn_server(model_dir: &std::path::Path, batching: bool) -> anyhow::Result<(Child, String)> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ])
        .args([
            "--dynamic-batching",
            if batching { "true" } else { "false" },
            "--queue-capacity",
            "4096",
        ])
        .arg("--model-dir")
        .arg(model_dir);
    start_server(command)
}

/// Spawns a `longview serve` command and returns it with its address once it has logged
/// "ready" (it must log JSON).
pub(crate) fn start_server(mut command: Command) -> anyhow::Result<(Child, String)> {
    let mut child = command.stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let event: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        if let Some(grpc) = event["grpc"].as_str() {
            addr = Some(format!("http://{grpc}"));
        }
        if event["message"] == "ready" {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok((
        child,
        addr.context("the server exited before it was ready")?,
    ))
}

pub(crate) fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Runs `clients` loops of one call at a time for `duration` after a short warm-up.
async fn drive(addr: &str, clients: usize, duration: Duration) -> anyhow::Result<Load> {
    let channel = Channel::from_shared(addr.to_string())?.connect().await?;
    let started = Instant::now();
    let warm_up = Duration::from_secs(1);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let mut embed = EmbedClient::new(channel.clone());
            tokio::spawn(async move {
                let (mut latencies, mut rejected, mut call) = (Vec::new(), 0, 0usize);
                while started.elapsed() < warm_up + duration {
                    let text = format!(
                        "Client {client} reports that quarterly revenue rose {call} percent."
                    );
                    let sent = Instant::now();
                    let result = embed
                        .embed(EmbedRequest {
                            texts: vec![text],
                            ..Default::default()
                        })
                        .await;
                    if started.elapsed() > warm_up && sent.duration_since(started) >= warm_up {
                        match result {
                            Ok(_) => latencies.push(sent.elapsed().as_secs_f64()),
                            Err(_) => rejected += 1,
                        }
                    }
                    call += 1;
                }
                (latencies, rejected)
            })
        })
        .collect();
    let mut load = Load {
        requests: 0,
        rejected: 0,
        seconds: duration.as_secs_f64(),
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, rejected) = task.await?;
        load.requests += latencies.len();
        load.rejected += rejected;
        load.latencies.extend(latencies);
    }
    load.latencies.sort_by(f64::total_cmp);
    Ok(load)
}
