//! Where results go: Kafka topics (idempotent producer, acks=all, delivery awaited before
//! a document counts as processed), the gRPC hub, and stdout for the embedded sources.

use crate::MonitorError;
use crate::alert::Alert;
use crate::engine::Engine;
use crate::metrics;
use crate::processor::InFlightTimes;
use crate::service::AlertHub;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A topic to produce to.
#[derive(Clone)]
pub struct KafkaOut {
    pub producer: FutureProducer,
    pub topic: String,
}

impl KafkaOut {
    /// Produces one record and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), MonitorError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic);
        record.key = key;
        record.payload = payload;
        record.headers = headers;
        self.producer
            .send(record, Timeout::Never)
            .await
            .map(|_| ())
            .map_err(|(err, _)| MonitorError::Produce {
                topic: self.topic.clone(),
                reason: err.to_string(),
            })
    }
}

/// How alerts are printed on stdout (embedded sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Print {
    Nothing,
    Json,
    Text,
}

/// Everything alerts are delivered to.
#[derive(Clone)]
pub struct AlertOutputs {
    pub hub: AlertHub,
    pub kafka: Option<KafkaOut>,
    pub print: Print,
}

impl AlertOutputs {
    async fn emit(&self, alert: Alert) {
        tracing::info!(alert = %alert.summary(), id = %alert.id, "alert");
        metrics::alert(&alert.rule, alert.state.as_str());
        match self.print {
            Print::Json => println!("{}", serde_json::to_string(&alert).unwrap_or_default()),
            Print::Text => println!("{}", alert.summary()),
            Print::Nothing => {}
        }
        if let Some(kafka) = &self.kafka {
            let json = serde_json::to_vec(&alert).unwrap_or_default();
            if let Err(err) = kafka
                .send(Some(alert.key.as_bytes()), Some(&json), None)
                .await
            {
                tracing::error!(error = %err, id = %alert.id, "alert not delivered to Kafka");
            }
        }
        self.hub.publish(alert);
    }
}

/// What the engine task is sent.
pub enum EngineInput {
    Document(Box<crate::scores::DocumentScore>),
    /// Close every window (the input ended), then answer.
    Flush(oneshot::Sender<()>),
}

/// Runs the window engine on its own task; returns its input and its handle, which
/// yields the number of alerts emitted.
pub fn spawn_engine(
    mut engine: Engine,
    outputs: AlertOutputs,
    idle_close: Duration,
    times: InFlightTimes,
) -> (mpsc::Sender<EngineInput>, JoinHandle<u64>) {
    let (sender, mut inputs) = mpsc::channel::<EngineInput>(1_024);
    let task = tokio::spawn(async move {
        let mut emitted = 0;
        let mut last_event = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let alerts = tokio::select! {
                input = inputs.recv() => match input {
                    None => break,
                    Some(EngineInput::Document(score)) => {
                        last_event = Instant::now();
                        metrics::late(engine.observe(&score));
                        times.remove(score.event_time_ms);
                        engine.set_hold(times.earliest());
                        engine.close_ready()
                    }
                    Some(EngineInput::Flush(done)) => {
                        let alerts = engine.flush();
                        emitted += alerts.len() as u64;
                        for alert in alerts {
                            outputs.emit(alert).await;
                        }
                        let _ = done.send(());
                        continue;
                    }
                },
                _ = tick.tick() => {
                    let idle = last_event.elapsed();
                    if idle < idle_close {
                        continue;
                    }
                    engine.set_idle(idle.as_millis() as i64);
                    engine.set_hold(times.earliest());
                    engine.close_ready()
                }
            };
            emitted += alerts.len() as u64;
            for alert in alerts {
                outputs.emit(alert).await;
            }
        }
        emitted
    });
    (sender, task)
}
