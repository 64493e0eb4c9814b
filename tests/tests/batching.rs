//! Dynamic batching: concurrent requests share forward passes without changing vectors,
//! and a full queue answers RESOURCE_EXHAUSTED with a retry hint instead of failing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, cosine, start};
use longview_proto::v1::{EmbedRequest, embed_client::EmbedClient};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn texts() -> Vec<String> {
    (0..48)
        .map(|i| match i % 3 {
            0 => format!("Item {i}: rates held."),
            1 => format!("Item {i}: the committee voted to keep rates unchanged, citing sticky services inflation and a tight labour market."),
            _ => format!("Item {i}: {}", "Regional lenders reported higher deposit costs and weaker loan growth. ".repeat(4)),
        })
        .collect()
}

/// Sends every text as its own request, all at once, and returns the vectors in order.
async fn embed_concurrently(
    client: &EmbedClient<tonic::transport::Channel>,
    texts: &[String],
) -> Vec<Vec<f32>> {
    let calls = texts.iter().map(|text| {
        let mut client = client.clone();
        let request = EmbedRequest {
            texts: vec![text.clone()],
            ..Default::default()
        };
        tokio::spawn(async move {
            client
                .embed(request)
                .await
                .unwrap()
                .into_inner()
                .embeddings
                .remove(0)
                .values
        })
    });
    let mut vectors = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        vectors.push(call.await.unwrap());
    }
    vectors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_and_unbatched_vectors_agree() {
    let batched = start(config()).await;
    let mut unbatched_config = config();
    unbatched_config.dynamic_batching = false;
    let unbatched = start(unbatched_config).await;
    let texts = texts();

    let a = embed_concurrently(&EmbedClient::new(channel(&batched).await), &texts).await;
    let b = embed_concurrently(&EmbedClient::new(channel(&unbatched).await), &texts).await;
    for ((x, y), text) in a.iter().zip(&b).zip(&texts) {
        assert!(cosine(x, y) >= 0.9999, "{text}");
    }
    batched.shutdown().await.unwrap();
    unbatched.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_sheds_load_and_stays_healthy() {
    let mut config = config();
    config.queue_capacity = 5;
    let server = start(config).await;
    let channel = channel(&server).await;
    let client = EmbedClient::new(channel.clone());
    let long = "Regional lenders reported higher deposit costs and weaker loan growth. ".repeat(12);
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let mut client = client.clone();
            let request = EmbedRequest {
                texts: vec![format!("{i} {long}")],
                ..Default::default()
            };
            tokio::spawn(async move { client.embed(request).await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.metadata().get("retry-after-ms").is_some(),
                    "retry hint"
                );
                shed += 1;
            }
        }
    }
    assert!(ok > 0 && shed > 0, "ok {ok}, shed {shed}");

    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);
    let mut client = client;
    assert!(
        client
            .embed(EmbedRequest {
                texts: vec!["after".into()],
                ..Default::default()
            })
            .await
            .is_ok()
    );
    server.shutdown().await.unwrap();
}
