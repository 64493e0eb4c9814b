//! The monitor role's wiring: settings from flags and the rules file, the Monitor gRPC
//! service, the pipeline task started once the sentiment model is ready and stopped
//! (drained, committed) with the server, and `longview monitor replay`.

use crate::config::{ConfigError, ServeConfig};
use crate::health::Health;
use crate::roles::Prepared;
use anyhow::Context;
use longview_monitor::{AlertHub, Monitor, MonitorConfig, MonitorService, Print, Source};
use longview_proto::service_names as names;
use longview_worker::{Worker, WorkerConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The monitor's part of `serve`'s configuration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MonitorSettings {
    /// Set by --source; Kafka when brokers are configured, else stdin.
    #[serde(serialize_with = "source_name")]
    pub source: Option<Source>,
    /// The rules file's contents (defaults when none); Kafka properties are not logged.
    #[serde(skip)]
    pub config: MonitorConfig,
    pub config_file: Option<PathBuf>,
}

impl MonitorSettings {
    /// Reads the rules file and applies the flags over it.
    pub fn load(
        source: Option<Source>,
        brokers: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let mut config = match &file {
            Some(path) => read_config(path)?,
            None => MonitorConfig::default(),
        };
        if brokers.is_some() {
            config.kafka.brokers = brokers;
        }
        Ok(Self {
            source,
            config,
            config_file: file,
        })
    }

    /// The source in effect: the flag, else Kafka when brokers are set, else stdin.
    pub fn effective_source(&self) -> Source {
        self.source
            .clone()
            .unwrap_or(match self.config.kafka.brokers {
                Some(_) => Source::Kafka,
                None => Source::Stdin,
            })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.config.validate().map_err(|e| ConfigError::Invalid {
            flag: "--monitor-config",
            problem: e.to_string(),
        })?;
        if self.effective_source() == Source::Kafka && self.config.kafka.brokers.is_none() {
            return Err(ConfigError::Invalid {
                flag: "--source",
                problem: "kafka needs --kafka-brokers (or kafka.brokers in the rules file)".into(),
            });
        }
        Ok(())
    }
}

fn read_config(path: &Path) -> Result<MonitorConfig, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        flag: "--monitor-config",
        problem: format!("{}: {problem}", path.display()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    MonitorConfig::from_toml(&text).map_err(|e| invalid(e.to_string()))
}

fn source_name<S: serde::Serializer>(source: &Option<Source>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{source:?}"))
}

/// The hub alerts are published on, when this process runs the monitor.
pub fn hub(config: &ServeConfig) -> Option<AlertHub> {
    config
        .serves_monitor()
        .then(|| AlertHub::new(longview_monitor::rule_names(&config.monitor.config)))
}

pub fn service(
    hub: Option<AlertHub>,
) -> longview_proto::v1::monitor_server::MonitorServer<MonitorService> {
    MonitorService::new(hub).into_server()
}

/// Runs the pipeline beside the server: it starts when the sentiment model is ready, and
/// at shutdown drains after the server does. Returns the task `RunningServer` waits on.
pub fn supervise(
    config: ServeConfig,
    worker: Worker,
    prepared: Prepared,
    health: Health,
    hub: Option<AlertHub>,
    draining: watch::Receiver<bool>,
    server: JoinHandle<anyhow::Result<()>>,
) -> JoinHandle<anyhow::Result<()>> {
    let Some(hub) = hub else {
        return server;
    };
    let grace = Duration::from_secs(config.monitor.config.processing.drain_seconds + 5);
    let pipeline = tokio::spawn(run(config, worker, prepared, health, hub, draining));
    tokio::spawn(async move {
        let served = server.await.context("server task panicked")?;
        match tokio::time::timeout(grace, pipeline).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::error!(error = %format!("{err:#}"), "monitor failed"),
            Ok(Err(err)) => tracing::error!(error = %err, "monitor task panicked"),
            Err(_) => tracing::warn!("monitor did not stop in time"),
        }
        served
    })
}

async fn run(
    config: ServeConfig,
    worker: Worker,
    prepared: Prepared,
    health: Health,
    hub: AlertHub,
    draining: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    prepared.sentiment_ready.notified().await;
    let settings = &config.monitor;
    let monitor = Monitor::new(
        settings.config.clone(),
        prepared.sentiment.clone(),
        config.watchlist.clone(),
        worker,
        hub,
    )
    .await
    .context("starting the monitor")?;
    if health.mark_ready(&[names::MONITOR]).await {
        tracing::info!("ready");
    }
    let source = settings.effective_source();
    tracing::info!(
        ?source,
        rules = settings.config.rules.len(),
        "monitor running"
    );
    let summary = monitor.run(&source, Print::Json, draining).await?;
    tracing::info!(?summary, "monitor stopped");
    Ok(())
}

/// `longview monitor replay FILE`: scores a JSONL file with the default model and head,
/// prints alerts as they are decided, and exits.
pub async fn replay(args: crate::cli::ReplayArgs) -> anyhow::Result<()> {
    let models_root = args
        .models_root
        .unwrap_or_else(longview_models::pull::default_models_root);
    let dir = longview_models::pull::default_model_dir(&models_root);
    let target = dir.clone();
    tokio::task::spawn_blocking(move || longview_models::pull::DEFAULT_MODEL.ensure(&target))
        .await??;
    let worker = Worker::spawn(WorkerConfig::new(dir))?;
    worker.ready().await?;
    let cache = longview_tools::sentiment::default_data_cache(&models_root);
    let head =
        longview_tools::sentiment::ensure_sentiment_head(&worker, &cache, &models_root).await?;
    let sentiment = Arc::new(OnceLock::new());
    let _ = sentiment.set(longview_sentiment::SentimentModel::Head {
        worker: worker.clone(),
        head: Arc::new(head),
    });
    let settings = MonitorSettings::load(None, None, args.monitor_config)?;
    let watchlist = match &args.watchlist {
        Some(path) => Arc::new(crate::config::read_watchlist(path)?),
        None => Arc::default(),
    };
    let hub = AlertHub::new(longview_monitor::rule_names(&settings.config));
    let monitor = Monitor::new(settings.config, sentiment, watchlist, worker, hub).await?;
    let print = if args.json { Print::Json } else { Print::Text };
    let (_stop, shutdown) = watch::channel(false);
    let started = std::time::Instant::now();
    let summary = monitor
        .run(&Source::File(args.file.clone()), print, shutdown)
        .await?;
    println!(
        "{} documents scored, {} lines skipped, {} alerts, in {:.1} s",
        summary.documents,
        summary.dead_lettered,
        summary.alerts,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_defaults_to_kafka_only_with_brokers() {
        let settings = MonitorSettings::load(None, None, None).unwrap();
        assert_eq!(settings.effective_source(), Source::Stdin);
        let settings = MonitorSettings::load(None, Some("127.0.0.1:9092".into()), None).unwrap();
        assert_eq!(settings.effective_source(), Source::Kafka);
        settings.validate().unwrap();
    }

    #[test]
    fn kafka_without_brokers_is_refused_by_flag() {
        let settings = MonitorSettings::load(Some(Source::Kafka), None, None).unwrap();
        let err = settings.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("--source: kafka needs --kafka-brokers"),
            "{err}"
        );
        let parsed: Result<Source, _> = "file:".parse();
        assert!(parsed.is_err());
        assert_eq!("file:a.jsonl".parse(), Ok(Source::File("a.jsonl".into())));
    }

    #[test]
    fn a_bad_rules_file_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[[rules]]\nname = \"r\"\nkey = \"sector\"\n").unwrap();
        let err = MonitorSettings::load(None, None, Some(path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rules.toml") && err.contains("sector"),
            "{err}"
        );
    }
}
