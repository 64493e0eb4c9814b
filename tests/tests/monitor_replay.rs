//! The README's replay: data/monitor/replay.jsonl through the embedded JSONL source with
//! the real model raises one alert for the company with a bad hour, and clears it.

#![allow(clippy::unwrap_used)]

mod common;

use longview_monitor::{AlertHub, AlertState, Monitor, MonitorConfig, Print, Source};
use longview_sentiment::{SentimentModel, Watchlist};
use longview_worker::{Worker, WorkerConfig};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[tokio::test(flavor = "multi_thread")]
async fn the_replay_file_raises_one_alert_and_clears_it() {
    let worker = Worker::spawn(WorkerConfig::new(common::model_dir())).unwrap();
    worker.ready().await.unwrap();
    let root = longview_models::pull::default_models_root();
    let cache = longview_tools::sentiment::default_data_cache(&root);
    let head = longview_tools::sentiment::ensure_sentiment_head(&worker, &cache, &root)
        .await
        .unwrap();
    let model = Arc::new(OnceLock::new());
    let _ = model.set(SentimentModel::Head {
        worker: worker.clone(),
        head: Arc::new(head),
    });
    let config = MonitorConfig::default();
    let hub = AlertHub::new(longview_monitor::rule_names(&config));
    let mut alerts = hub.subscribe();
    let watchlist = Arc::new(Watchlist::default());
    let monitor = Monitor::new(config, model, watchlist, worker, hub)
        .await
        .unwrap();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/monitor/replay.jsonl");
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let summary = monitor
        .run(&Source::File(file), Print::Nothing, shutdown)
        .await
        .unwrap();
    assert_eq!((summary.documents, summary.dead_lettered), (246, 0));

    let mut seen = Vec::new();
    while let Ok(alert) = alerts.try_recv() {
        seen.push((alert.key.clone(), alert.state, alert.window_start.clone()));
    }
    assert_eq!(
        seen,
        vec![
            (
                "VLTN".into(),
                AlertState::Raised,
                "2024-03-04T12:00:00Z".into()
            ),
            (
                "VLTN".into(),
                AlertState::Cleared,
                "2024-03-04T13:00:00Z".into()
            ),
        ]
    );
}
