//! `longview serve`: build the services a target needs, bind, report health, drain.

use crate::cli::ServeArgs;
use crate::config::ServeConfig;
use crate::health::Health;
use crate::prometheus::MetricsServer;
use crate::roles::{self, Prepared};
use crate::security::Security;
use crate::stack::{Admission, StackLayer};
use anyhow::Context;
use longview_classify::{ClassifyService, HeadRegistry, heads_dir};
use longview_embed::EmbedService;
use longview_proto::service_names as names;
use longview_sentiment::SentimentService;
use longview_worker::{RemoteConfig, Worker, WorkerApi, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::transport::server::TcpIncoming;
use tower::layer::util::{Identity, Stack};

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub worker: Worker,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Starts draining and waits for the server to stop.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(trigger) = self.shutdown.take() {
            let _ = trigger.send(());
        }
        (&mut self.task).await.context("server task panicked")?
    }

    /// Waits until the server stops on its own (signal or failure).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task panicked")?
    }
}

/// `longview serve`: resolve the layered configuration, then serve (or, with
/// `--check-config`, print it and stop).
pub async fn command(args: Box<ServeArgs>) -> anyhow::Result<()> {
    let check = args.check_config;
    let config = args.into_config()?;
    if check {
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    run(config).await
}

/// Runs until SIGTERM or Ctrl-C, then drains.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        cuda = cfg!(feature = "cuda"),
        "starting longview"
    );
    tracing::info!(config = %serde_json::to_string(&config).unwrap_or_default(), "configuration");
    let server = start(config).await?;
    server.wait().await
}

/// Prepares the model (pulling the default one if needed), spawns its worker and starts;
/// with remote workers configured, connects to them instead.
pub async fn start(config: ServeConfig) -> anyhow::Result<RunningServer> {
    if !config.worker_endpoints.is_empty() {
        let remote = remote_config(&config)?;
        let worker = Worker::connect(&remote)?;
        tracing::info!(workers = ?config.worker_endpoints, "using remote model workers");
        return start_with_worker(config, worker).await;
    }
    let model_dir = prepare_model(&config).await?;
    let mut worker_config = WorkerConfig::new(model_dir);
    worker_config.device = config.device;
    worker_config.backend = config.backend;
    worker_config.queue_capacity = config.queue_capacity;
    worker_config.max_batch_tokens = config.max_batch_tokens;
    worker_config.dynamic_batching = config.dynamic_batching;
    worker_config.max_batch_wait = config.max_batch_wait;
    let worker = Worker::spawn(worker_config)?;
    start_with_worker(config, worker).await
}

/// Endpoints plus TLS (when any endpoint is `https://` or a CA/certificate is given) and
/// the API key read from its file.
fn remote_config(config: &ServeConfig) -> anyhow::Result<RemoteConfig> {
    let mut remote = RemoteConfig::new(config.worker_endpoints.clone());
    let c = &config.worker_client;
    let https = config
        .worker_endpoints
        .iter()
        .any(|e| e.starts_with("https://"));
    if https || c.ca.is_some() || c.cert.is_some() {
        remote.tls = Some(crate::tls::client(
            c.ca.as_deref(),
            c.cert.as_deref(),
            c.key.as_deref(),
        )?);
    }
    if let Some(path) = &c.api_key_file {
        let key = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--worker-api-key-file {}: {e}", path.display()))?;
        remote.api_key = Some(key.trim().to_string());
    }
    Ok(remote)
}

async fn prepare_model(config: &ServeConfig) -> anyhow::Result<std::path::PathBuf> {
    let dir = config.resolved_model_dir();
    if config.model_dir.is_none() {
        let target = dir.clone();
        let pulled = tokio::task::spawn_blocking(move || {
            longview_models::pull::DEFAULT_MODEL.ensure(&target)
        })
        .await??;
        if pulled {
            tracing::info!(dir = %dir.display(), "default model downloaded and verified");
        }
    }
    // Fail fast on a directory that is not a model; loading the weights happens later.
    longview_models::ModelDir::open(&dir)
        .with_context(|| format!("model directory {}", dir.display()))?;
    Ok(dir)
}

/// Binds `config.listen` and serves with an already spawned worker.
pub async fn start_with_worker(
    config: ServeConfig,
    worker: Worker,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let security = Security::load(&config)?;
    let metrics = match config.metrics_listen {
        Some(listen) => Some(MetricsServer::start(listen).await?),
        None => None,
    };
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health::new(reporter, served_names(&config)).await;
    let prepared = Prepared::default();
    let hub = crate::monitor::hub(&config);
    let (trigger, shutdown) = oneshot::channel::<()>();
    let (draining_tx, draining) = watch::channel(false);
    let max_message = config.limits.largest();
    let stack = StackLayer {
        auth: security.auth.clone(),
        admission: Admission::new(config.limits.max_concurrent_requests),
        limits: Arc::new(config.limits.clone()),
        draining: draining.clone(),
    };
    let router = routes(
        &config,
        &worker,
        &prepared,
        health_service,
        &security,
        stack,
    )?
    .add_service(crate::monitor::service(hub.clone()).max_decoding_message_size(max_message));

    let drain = drain_signal(shutdown, health.clone(), draining_tx);
    // Without TCP_NODELAY, a small response written in pieces waits for the client's
    // delayed ACK (about 40 ms on Linux); tonic sets it only on listeners it binds itself.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = router.serve_with_incoming_shutdown(incoming, drain);
    tracing::info!(
        grpc = %addr, target = ?config.target, tls = config.tls.enabled(),
        mutual_tls = config.tls.client_ca.is_some(), auth = security.auth.enabled(),
        masking = security.masking.any(), "listening"
    );
    let metrics_addr = metrics.as_ref().map(|m| m.addr);
    if let Some(metrics) = metrics_addr {
        tracing::info!(metrics = %metrics, "serving Prometheus /metrics");
    }
    let monitor_stop = draining.clone();
    let deadline = drain_deadline(draining, config.drain_deadline);
    let setup = roles::prepare(
        config.clone(),
        worker.clone(),
        prepared.clone(),
        health.clone(),
    );
    let task = tokio::spawn(async move {
        let served = supervise(serving, deadline, setup).await;
        drop(metrics);
        served
    });
    let task = crate::monitor::supervise(
        config,
        worker.clone(),
        prepared,
        health,
        hub,
        monitor_stop,
        task,
    );
    Ok(RunningServer {
        addr,
        metrics_addr,
        worker,
        shutdown: Some(trigger),
        task,
    })
}

fn served_names(config: &ServeConfig) -> Vec<&'static str> {
    let mut served = vec![names::EMBED];
    if config.serves_classify() {
        served.push(names::CLASSIFY);
    }
    if config.serves_worker_api() {
        served.push(names::WORKER);
    }
    if config.serves_sentiment() {
        served.push(names::SENTIMENT);
    }
    if config.serves_monitor() {
        served.push(names::MONITOR);
    }
    if config.serves_rag() {
        served.push(names::RAG);
    }
    if config.serves_recommend() {
        served.push(names::RECOMMEND);
    }
    served
}

/// Every service this target serves, behind the tower stack (and TLS when configured).
/// A service that takes documents raises tonic's decode limit to `max_message`, so the
/// stack's per-RPC limit, which names the setting, is the one that answers.
fn routes(
    config: &ServeConfig,
    worker: &Worker,
    prepared: &Prepared,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    security: &Security,
    stack: StackLayer,
) -> anyhow::Result<Router<Stack<StackLayer, Identity>>> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(longview_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(longview_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let max_message = config.limits.largest();

    let embed = EmbedService::new(worker.clone(), config.embed)
        .into_server()
        .max_decoding_message_size(max_message);
    let classify = config.serves_classify().then(|| {
        ClassifyService::new(
            worker.clone(),
            config.classify,
            HeadRegistry::new(Some(heads_dir(&config.models_root))),
        )
        .with_masking(security.masking.clone())
        .into_server()
        .max_decoding_message_size(max_message)
    });
    let worker_api = config.serves_worker_api().then(|| {
        WorkerApi::new(worker.clone())
            .into_server()
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message)
    });
    let sentiment = config.serves_sentiment().then(|| {
        SentimentService::new(
            prepared.sentiment.clone(),
            config.watchlist.clone(),
            config.sentiment,
        )
        .into_server()
        .max_decoding_message_size(max_message)
    });
    let recommend = config.serves_recommend().then(|| {
        config
            .recommend
            .service(worker.clone())
            .into_server()
            .max_decoding_message_size(max_message)
    });
    let rag = config
        .serves_rag()
        .then(|| crate::rag::server(config, worker, &prepared.rag, security));
    let mut server = Server::builder();
    if let Some(tls) = &security.tls {
        server = server.tls_config(tls.clone())?;
    }
    Ok(server
        .layer(stack)
        .add_service(health)
        .add_service(reflection.build_v1()?)
        .add_service(reflection_v1alpha.build_v1alpha()?)
        .add_service(embed)
        .add_optional_service(classify)
        .add_optional_service(worker_api)
        .add_optional_service(sentiment)
        .add_optional_service(rag)
        .add_optional_service(recommend))
}

/// Resolves when the server should drain: on the trigger, SIGTERM or Ctrl-C. Health
/// flips to NOT_SERVING first, so load balancers stop sending new work.
async fn drain_signal(
    trigger: oneshot::Receiver<()>,
    health: Health,
    draining: watch::Sender<bool>,
) {
    tokio::select! {
        _ = trigger => tracing::info!("shutdown requested"),
        _ = terminate() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
    health.drain().await;
    draining.send_replace(true);
    tracing::info!("draining");
}

/// Resolves `deadline` after draining starts: connections still open then (long-lived
/// streams) are closed rather than allowed to hold the process.
async fn drain_deadline(mut draining: watch::Receiver<bool>, deadline: std::time::Duration) {
    if draining.wait_for(|&d| d).await.is_err() {
        return std::future::pending().await;
    }
    tokio::time::sleep(deadline).await;
    tracing::warn!(
        deadline_seconds = deadline.as_secs_f64(),
        "drain deadline passed; closing open connections"
    );
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM");
            std::future::pending::<()>().await
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await
}

/// Serves until drained (or the drain deadline passes) while the roles prepare; stops
/// with an error if a model cannot be prepared.
async fn supervise(
    serving: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
    deadline: impl std::future::Future<Output = ()>,
    setup: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::pin!(serving, deadline);
    tokio::select! {
        result = &mut serving => return result.context("gRPC server failed"),
        prepared = setup => prepared?,
    }
    let served = tokio::select! {
        result = &mut serving => result.context("gRPC server failed"),
        () = &mut deadline => Ok(()),
    };
    tracing::info!("stopped");
    served
}
