//! Kafka: client settings, the consumer context (commits on revoke, lag from statistics)
//! and the consuming loop.

mod consumer;
mod context;

pub use consumer::run_kafka;
pub use context::MonitorContext;

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;

/// Consumer settings: manual commits of tracked offsets only, statistics for lag.
pub fn consumer_config(kafka: &KafkaConfig, brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (kafka.session_timeout_ms / 3).max(100).to_string(),
        )
        .set("statistics.interval.ms", "5000");
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config
}

/// Producer settings: idempotent, acknowledged by all in-sync replicas.
pub fn producer(
    kafka: &KafkaConfig,
    brokers: &str,
) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config.create()
}
