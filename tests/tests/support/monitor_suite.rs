//! The monitor's checks against a real broker, run by one test file per broker: every
//! document scored, offsets never committed past an unfinished document (kill and
//! restart), poison messages dead-lettered, one alert for one scripted surge.

#![allow(dead_code)]

use super::broker::Broker;
use longview_monitor::{
    AlertHub, DocumentScore, Monitor, MonitorConfig, Print, RunSummary, Source,
};
use longview_sentiment::{SentimentModel, Watchlist};
use longview_worker::{Worker, WorkerConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const TOPICS: [&str; 4] = ["documents", "document-scores", "alerts", "documents-dlq"];

/// A unique consumer group name.
pub fn group(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The real encoder and the default trained sentiment head.
pub async fn models() -> (Worker, Arc<OnceLock<SentimentModel>>) {
    let worker = Worker::spawn(WorkerConfig::new(crate::common::model_dir())).expect("worker");
    worker.ready().await.expect("model loads");
    let root = longview_models::pull::default_models_root();
    let cache = longview_tools::sentiment::default_data_cache(&root);
    let head = longview_tools::sentiment::ensure_sentiment_head(&worker, &cache, &root)
        .await
        .expect("sentiment head");
    let model = Arc::new(OnceLock::new());
    let _ = model.set(SentimentModel::Head {
        worker: worker.clone(),
        head: Arc::new(head),
    });
    (worker, model)
}

/// Test settings: a short session (joins take about half of it), frequent commits.
pub fn config(broker: &Broker, group_id: &str) -> MonitorConfig {
    let mut config = MonitorConfig::default();
    config.kafka.brokers = Some(broker.bootstrap.clone());
    config.kafka.group_id = group_id.to_string();
    config.kafka.session_timeout_ms = 6_000;
    config.kafka.commit_interval_ms = 200;
    config.processing.batch_documents = 16;
    config
}

/// A monitor consuming in the background until stopped (or aborted).
pub struct Running {
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<RunSummary>,
}

pub async fn start(config: MonitorConfig) -> (Running, AlertHub) {
    let (worker, model) = models().await;
    let hub = AlertHub::new(longview_monitor::rule_names(&config));
    let monitor = Monitor::new(
        config,
        model,
        Arc::new(Watchlist::default()),
        worker,
        hub.clone(),
    )
    .await
    .expect("monitor starts");
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move {
        monitor
            .run(&Source::Kafka, Print::Nothing, shutdown)
            .await
            .expect("monitor runs")
    });
    (Running { stop, task }, hub)
}

impl Running {
    pub async fn stop(self) -> RunSummary {
        self.stop.send_replace(true);
        self.task.await.expect("monitor task")
    }
}

const COMPANIES: [&str; 5] = ["HRBK", "QLMT", "VLTN", "CRVF", "PLSD"];
const NEWS: [&str; 6] = [
    "raised its outlook after profit beat estimates.",
    "will present at an industry conference next week.",
    "shares plunged after the company cut its forecast.",
    "won a large contract, analysts said.",
    "named a new chief financial officer.",
    "faces a lawsuit over a data breach.",
];

/// A short news-like document.
pub fn news(id: &str, n: usize) -> String {
    let company = COMPANIES[n % COMPANIES.len()];
    let text = format!("${company} {}", NEWS[(n / COMPANIES.len()) % NEWS.len()]);
    serde_json::json!({ "id": id, "text": text, "source": "test" }).to_string()
}

pub fn producer(broker: &Broker) -> FutureProducer {
    broker
        .client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer")
}

/// Produces values to a partition of `topic`, in order, waiting for each batch's acks.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    values: Vec<Option<Vec<u8>>>,
) {
    let sends = values.iter().enumerate().map(|(i, value)| async move {
        let key = format!("k{i}");
        let mut record: FutureRecord<'_, String, [u8]> =
            FutureRecord::to(topic).partition(partition).key(&key);
        record.payload = value.as_deref();
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e).expect("produce");
    }
}

/// Reads a topic from the start with a group of its own.
pub fn reader(broker: &Broker, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = broker
        .client()
        .set("group.id", group("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Scores read so far, by document id, with how often each was produced.
#[derive(Default)]
pub struct Scores {
    pub by_id: BTreeMap<String, (DocumentScore, usize)>,
    pub produced_at_ms: BTreeMap<String, i64>,
}

impl Scores {
    /// Reads until `done` holds or `limit` passes.
    pub async fn read_until(
        &mut self,
        reader: &StreamConsumer,
        limit: Duration,
        done: impl Fn(&Scores) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(self) && Instant::now() < deadline {
            let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_millis(200), reader.recv()).await
            else {
                continue;
            };
            let score: DocumentScore =
                serde_json::from_slice(message.payload().expect("score value"))
                    .expect("score JSON");
            assert_eq!(
                message.key(),
                Some(score.id.as_bytes()),
                "keyed by document id"
            );
            let at = message.timestamp().to_millis().unwrap_or_default();
            self.produced_at_ms.entry(score.id.clone()).or_insert(at);
            self.by_id.entry(score.id.clone()).or_insert((score, 0)).1 += 1;
        }
    }
}

/// The group's committed offsets for partitions `0..partitions` of `topic`.
pub fn committed(
    broker: &Broker,
    group_id: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let consumer: StreamConsumer = broker
        .client()
        .set("group.id", group_id)
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let list = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(
            |p| match list.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// Headers of a message as strings.
pub fn headers(message: &impl Message) -> BTreeMap<String, String> {
    let Some(headers) = message.headers() else {
        return BTreeMap::new();
    };
    headers
        .iter()
        .map(|h| {
            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
            (h.key.to_string(), value.unwrap_or_default())
        })
        .collect()
}

pub fn ids(range: std::ops::Range<usize>, prefix: &str) -> BTreeSet<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}
