//! The consuming loop. It never stops polling: while too many messages are in flight it
//! pauses its partitions and keeps calling poll, so slow models never get the consumer
//! evicted from its group. Offsets are committed on a timer, on revoke (in the context),
//! and once more after the drain at shutdown.

use super::{MonitorContext, consumer_config, producer};
use crate::document::{Poison, decode};
use crate::outputs::{AlertOutputs, KafkaOut, Print, spawn_engine};
use crate::processor::{InFlightTimes, Processor};
use crate::scores::Position;
use crate::{Monitor, MonitorError, RunSummary, metrics};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest wait inside one poll: the loop calls poll at least this often.
const POLL: Duration = Duration::from_millis(100);

type MonitorConsumer = StreamConsumer<MonitorContext>;

/// Consumes `documents` until `shutdown` turns true, then drains and commits.
pub async fn run_kafka(
    monitor: &Monitor,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary, MonitorError> {
    let kafka = &monitor.config.kafka;
    let brokers = kafka.brokers.clone().ok_or_else(|| {
        MonitorError::Config("the Kafka source needs brokers (--kafka-brokers)".into())
    })?;
    let context = MonitorContext {
        tracker: Default::default(),
        topic: kafka.documents_topic.clone(),
    };
    let consumer: MonitorConsumer =
        consumer_config(kafka, &brokers).create_with_context(context.clone())?;
    consumer.subscribe(&[&kafka.documents_topic])?;
    let producer = producer(kafka, &brokers)?;
    let out = |topic: &str| KafkaOut {
        producer: producer.clone(),
        topic: topic.to_string(),
    };
    let alerts = AlertOutputs {
        hub: monitor.hub.clone(),
        kafka: Some(out(&kafka.alerts_topic)),
        print: Print::Nothing,
    };
    let times = InFlightTimes::default();
    let (engine, engine_task) = spawn_engine(
        monitor.engine(),
        alerts,
        monitor.idle_close(),
        times.clone(),
    );
    let processing = monitor.config.processing.clone();
    let processor = Processor::new(
        monitor.scorer.clone(),
        processing.clone(),
        Some(out(&kafka.scores_topic)),
        engine,
        times,
    );
    tracing::info!(topic = %kafka.documents_topic, group = %kafka.group_id, %brokers, "consuming");
    let mut run = Run {
        consumer,
        context,
        processor,
        dead_letters: JoinSet::new(),
        dlq: out(&kafka.dead_letter_topic),
        summary: RunSummary::default(),
        paused: false,
        max_in_flight: processing.max_in_flight,
        max_message_bytes: processing.max_message_bytes,
    };
    let consumed = run.consume(&mut shutdown, kafka.commit_interval_ms).await;
    let drain = Duration::from_secs(processing.drain_seconds);
    let drained = run.drain(Instant::now() + drain).await;
    run.commit(CommitMode::Sync);
    let Run {
        processor,
        consumer,
        mut summary,
        ..
    } = run;
    drop(processor);
    // Leaving the group revokes the partitions, which commits once more if anything moved.
    drop(consumer);
    summary.alerts = engine_task.await.unwrap_or_default();
    consumed.and(drained)?;
    tracing::info!(?summary, "consumer stopped");
    Ok(summary)
}

struct Run {
    consumer: MonitorConsumer,
    context: MonitorContext,
    processor: Processor,
    dead_letters: JoinSet<Result<Position, MonitorError>>,
    dlq: KafkaOut,
    summary: RunSummary,
    paused: bool,
    max_in_flight: usize,
    max_message_bytes: usize,
}

impl Run {
    async fn consume(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        commit_interval_ms: u64,
    ) -> Result<(), MonitorError> {
        let mut commits = tokio::time::interval(Duration::from_millis(commit_interval_ms.max(10)));
        while !*shutdown.borrow() {
            let due = self.processor.due();
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                done = self.processor.next(), if self.processor.has_tasks() => self.finished(done?),
                dead = self.dead_letters.join_next(), if !self.dead_letters.is_empty() => {
                    self.dead_lettered(dead)?;
                }
                _ = commits.tick() => self.commit(CommitMode::Async),
                () = sleep_until(due), if due.is_some() => {}
                polled = tokio::time::timeout(POLL, self.consumer.recv()) => match polled {
                    Ok(Ok(message)) => self.received(&message.detach()),
                    Ok(Err(err)) => tracing::warn!(error = %err, "consumer error"),
                    Err(_) => {}
                },
            }
            self.processor.dispatch(false);
            self.flow_control();
        }
        Ok(())
    }

    /// Finishes in-flight work until the deadline, still polling (partitions paused).
    async fn drain(&mut self, deadline: Instant) -> Result<(), MonitorError> {
        self.pause(true);
        self.processor.dispatch(true);
        while !(self.processor.is_idle() && self.dead_letters.is_empty()) {
            tokio::select! {
                done = self.processor.next(), if self.processor.has_tasks() => self.finished(done?),
                dead = self.dead_letters.join_next(), if !self.dead_letters.is_empty() => {
                    self.dead_lettered(dead)?;
                }
                // Messages still arriving are not tracked: they are read again after restart.
                _ = tokio::time::timeout(POLL, self.consumer.recv()) => {}
                () = tokio::time::sleep_until(deadline.into()) => {
                    let left = self.context.tracker().in_flight();
                    tracing::warn!(in_flight = left, "drain deadline passed; unfinished messages will be read again");
                    break;
                }
            }
            self.processor.dispatch(true);
        }
        Ok(())
    }

    fn received(&mut self, message: &OwnedMessage) {
        let position = Position {
            partition: message.partition(),
            offset: message.offset(),
        };
        self.context
            .tracker()
            .begin(position.partition, position.offset);
        if self.paused {
            // Newly assigned partitions start unpaused.
            self.pause(true);
        }
        let arrival_ms = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(crate::now_ms);
        match decode(message.payload(), self.max_message_bytes) {
            Ok(document) => self.processor.accept(document, position, arrival_ms),
            Err(poison) => self.dead_letter(message, position, poison),
        }
    }

    /// Sends a poison message, unchanged, to the dead-letter topic with its reason in
    /// headers; its offset counts as processed once the broker has it.
    fn dead_letter(&mut self, message: &OwnedMessage, position: Position, poison: Poison) {
        tracing::warn!(partition = position.partition, offset = position.offset, reason = poison.reason(), detail = %poison, "dead-lettering a message");
        metrics::dead_lettered(poison.reason());
        let headers = OwnedHeaders::new()
            .insert(header("x-dead-letter-reason", poison.reason()))
            .insert(header("x-dead-letter-detail", &poison.to_string()))
            .insert(header("x-source-topic", message.topic()))
            .insert(header(
                "x-source-partition",
                &position.partition.to_string(),
            ))
            .insert(header("x-source-offset", &position.offset.to_string()));
        let key = message.key().map(<[u8]>::to_vec);
        let payload = message.payload().map(<[u8]>::to_vec);
        let dlq = self.dlq.clone();
        self.dead_letters.spawn(async move {
            dlq.send(key.as_deref(), payload.as_deref(), Some(headers))
                .await
                .map(|()| position)
        });
    }

    fn finished(&mut self, positions: Vec<Position>) {
        self.summary.documents += positions.len() as u64;
        let mut tracker = self.context.tracker();
        for position in positions {
            tracker.finish(position.partition, position.offset);
        }
    }

    fn dead_lettered(
        &mut self,
        joined: Option<Result<Result<Position, MonitorError>, tokio::task::JoinError>>,
    ) -> Result<(), MonitorError> {
        let Some(joined) = joined else { return Ok(()) };
        let position =
            joined.map_err(|e| MonitorError::Config(format!("dead-letter task: {e}")))??;
        self.summary.dead_lettered += 1;
        self.context
            .tracker()
            .finish(position.partition, position.offset);
        Ok(())
    }

    /// Commits every partition's commit point that moved.
    fn commit(&mut self, mode: CommitMode) {
        let points = self.context.tracker().to_commit();
        if points.is_empty() {
            return;
        }
        let topic = &self.context.topic;
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in &points {
            let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => {
                let mut tracker = self.context.tracker();
                for (partition, offset) in points {
                    tracker.committed(partition, offset);
                }
            }
            Err(err) => tracing::warn!(error = %err, "offset commit failed"),
        }
    }

    /// Pauses fetching while too much is in flight, resumes below half of it.
    fn flow_control(&mut self) {
        let in_flight = self.context.tracker().in_flight();
        metrics::in_flight(in_flight);
        if !self.paused && in_flight >= self.max_in_flight {
            self.pause(true);
        } else if self.paused && in_flight <= self.max_in_flight / 2 {
            self.pause(false);
        }
    }

    fn pause(&mut self, pause: bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let result = match pause {
            true => self.consumer.pause(&assignment),
            false => self.consumer.resume(&assignment),
        };
        match result {
            Ok(()) => {
                tracing::debug!(pause, partitions = assignment.count(), "flow control");
                self.paused = pause;
            }
            Err(err) => tracing::warn!(error = %err, pause, "cannot pause or resume"),
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
