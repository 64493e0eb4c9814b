//! Shared set-up: the real default model, a real server in process on port 0.

#![allow(dead_code)]

use longview_models::pull::{DEFAULT_MODEL, default_model_dir, default_models_root};
use longview_server::{RunningServer, ServeConfig};
use std::path::PathBuf;
use std::sync::Mutex;
use tonic::transport::Channel;

static PULL: Mutex<()> = Mutex::new(());

/// The model directory tests use: LONGVIEW_MODEL_DIR, else the default model (pulled once
/// if missing; `scripts/test` pulls it before the tests start).
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LONGVIEW_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let dir = default_model_dir(&default_models_root());
    let _guard = PULL.lock().unwrap_or_else(|e| e.into_inner());
    DEFAULT_MODEL.ensure(&dir).expect("default model available");
    dir
}

pub fn config() -> ServeConfig {
    let mut config = ServeConfig::new("127.0.0.1:0".parse().unwrap());
    config.model_dir = Some(model_dir());
    config.drain_deadline = std::time::Duration::from_secs(5);
    // Ask answers extractively unless a test starts the generator itself: loading the
    // language model would slow every other server down.
    config.generator.kind = longview_server::generator::GeneratorKind::None;
    // Each server its own stores: tests run in parallel, and the embedded stores lock
    // their directories.
    let stores = tempfile::tempdir().expect("temporary directory").keep();
    config.rag.dir = Some(stores.join("rag"));
    config.recommend.store_dir = Some(stores.join("recommend"));
    config
}

/// Starts a server with `config` and waits until its model is warm.
pub async fn start(config: ServeConfig) -> RunningServer {
    let server = longview_server::start(config).await.expect("server starts");
    server.worker.ready().await.expect("model loads");
    server
}

pub async fn channel(server: &RunningServer) -> Channel {
    let url = format!("http://{}", server.addr);
    Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .expect("connect to the test server")
}

pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Waits until the server reports `service` SERVING (some roles prepare after the model).
pub async fn wait_serving(channel: &Channel, service: &str) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut health = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: service.into(),
    };
    let mut updates = health
        .watch(request)
        .await
        .expect("health watch")
        .into_inner();
    while let Some(update) = tokio_stream::StreamExt::next(&mut updates).await {
        if update.expect("health update").status() == ServingStatus::Serving {
            return;
        }
    }
    panic!("health stream for {service} ended before SERVING");
}

/// The generator GGUF tests use: LONGVIEW_GENERATOR_MODEL, else the default generator
/// (pulled once if missing; `scripts/test` pulls it before the tests start).
pub fn generator_file() -> PathBuf {
    use longview_models::pull::{DEFAULT_GENERATOR, default_generator_dir, default_generator_file};
    if let Some(path) = std::env::var_os("LONGVIEW_GENERATOR_MODEL") {
        return PathBuf::from(path);
    }
    let root = default_models_root();
    let _guard = PULL.lock().unwrap_or_else(|e| e.into_inner());
    DEFAULT_GENERATOR
        .ensure(&default_generator_dir(&root))
        .expect("default generator available");
    default_generator_file(&root)
}
