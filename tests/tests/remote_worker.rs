//! A task role on remote model workers (`--worker-endpoints`) answers like a role with its
//! own model, and keeps answering when one of two workers stops.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, start, wait_serving};
use longview_proto::service_names as names;
use longview_proto::v1::{self as pb, classify_client::ClassifyClient};
use longview_server::{RunningServer, Target};
use tonic::Code;
use tonic::transport::Channel;

const DOCUMENT: &str = "Shares fell sharply as bond yields climbed to a four-month high; banks and \
property developers led the losses. Investors trimmed bets on interest rate cuts after strong wage \
data, and the dollar strengthened.\n\nThe home side came from two goals down to win 3–2 in extra time. \
The striker scored twice in the final ten minutes and the goalkeeper saved a penalty. ⚽\n\nFor the \
sauce, soften two chopped onions in butter, add crème fraîche and thyme, then simmer gently.";

async fn start_worker() -> RunningServer {
    let mut config = config();
    config.target = Target::Worker;
    start(config).await
}

/// A classify role: on its own model, or on the given workers.
async fn start_classify(workers: &[&RunningServer]) -> (RunningServer, Channel) {
    let mut config = config();
    config.target = Target::Classify;
    config.worker_endpoints = workers.iter().map(|w| w.addr.to_string()).collect();
    let server = longview_server::start(config).await.unwrap();
    let channel = channel(&server).await;
    wait_serving(&channel, names::CLASSIFY).await;
    (server, channel)
}

fn request() -> pb::ClassifyRequest {
    let labels = ["financial markets", "sports", "cooking"]
        .iter()
        .map(|n| pb::Label {
            name: n.to_string(),
            description: String::new(),
        })
        .collect();
    pb::ClassifyRequest {
        text: DOCUMENT.into(),
        options: Some(pb::ClassifyOptions {
            labels: Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
                labels,
            })),
            windows: Some(pb::WindowOptions {
                size: 32,
                overlap: 4,
            }),
            ..Default::default()
        }),
    }
}

async fn classify(channel: &Channel) -> Result<pb::ClassifyResponse, tonic::Status> {
    let mut client = ClassifyClient::new(channel.clone());
    client.classify(request()).await.map(|r| r.into_inner())
}

fn assert_same(remote: &pb::ClassifyResponse, local: &pb::ClassifyResponse) {
    assert_eq!(remote.predicted, local.predicted);
    assert_eq!(remote.window_count, local.window_count);
    assert_eq!(remote.usage, local.usage);
    assert_eq!(remote.model, local.model);
    for (r, l) in remote.scores.iter().zip(&local.scores) {
        assert_eq!(r.label, l.label);
        assert!((r.score - l.score).abs() < 1e-5, "{r:?} vs {l:?}");
    }
    let spans = |response: &pb::ClassifyResponse| -> Vec<_> {
        response.evidence.iter().map(|e| e.span).collect()
    };
    assert_eq!(spans(remote), spans(local));
}

#[tokio::test]
async fn classify_on_two_remote_workers_matches_local_and_survives_one_stopping() {
    let (local, local_channel) = start_classify(&[]).await;
    let expected = classify(&local_channel).await.unwrap();
    assert!(expected.window_count >= 3, "{}", expected.window_count);

    let first = start_worker().await;
    let second = start_worker().await;
    let (remote, remote_channel) = start_classify(&[&first, &second]).await;
    // Several calls, so both workers take some (calls alternate between them).
    for _ in 0..4 {
        assert_same(&classify(&remote_channel).await.unwrap(), &expected);
    }

    first.shutdown().await.unwrap();
    for _ in 0..4 {
        assert_same(&classify(&remote_channel).await.unwrap(), &expected);
    }

    second.shutdown().await.unwrap();
    let status = classify(&remote_channel).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("model worker"),
        "{}",
        status.message()
    );

    remote.shutdown().await.unwrap();
    local.shutdown().await.unwrap();
}
