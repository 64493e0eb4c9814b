//! The streaming monitor against a real Kafka-protocol broker: tansu (started per test on
//! a free port, from PyPI via scripts/kafka-brokers).

#![allow(clippy::unwrap_used)]

#[path = "support/broker.rs"]
mod broker;
#[path = "support/monitor_checks.rs"]
mod checks;
mod common;
#[path = "support/monitor_suite.rs"]
mod monitor_suite;

use broker::Kind;

#[tokio::test(flavor = "multi_thread")]
async fn every_document_is_scored() {
    checks::every_document_is_scored(Kind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_document_holds_commits_across_a_kill() {
    checks::a_slow_document_holds_commits_across_a_kill(Kind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_are_dead_lettered() {
    checks::poison_messages_are_dead_lettered(Kind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_surge_raises_exactly_one_alert() {
    checks::a_surge_raises_exactly_one_alert(Kind::Tansu).await;
}
