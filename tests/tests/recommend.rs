//! Recommend over real gRPC with the real model and a real store on disk.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, start, wait_serving};
use longview_proto::v1::{self as pb, recommend_client::RecommendClient};
use longview_server::{RunningServer, Target};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::path::Path;
use std::sync::OnceLock;
use tonic::Code;
use tonic::transport::Channel;

const SPACE_HISTORY: [&str; 3] = [
    "Astronauts launch aboard a rocket to dock with the International Space Station",
    "A robotic probe photographs the rings and icy moons of Saturn",
    "Astronomers use a space telescope to find a planet orbiting a distant star",
];
const SPACE: &str = "NASA prepares a crewed mission to land astronauts on the Moon";
const COOKING: &str = "A slow-simmered tomato sauce recipe with garlic, basil and olive oil";

/// The process's metrics, as a Prometheus exporter would see them.
fn metrics() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        snapshotter
    })
}

fn counter(name: &str, tier: Option<&str>) -> u64 {
    let snapshot = metrics().snapshot().into_vec();
    snapshot
        .into_iter()
        .filter(|(key, ..)| key.key().name() == name)
        .filter(|(key, ..)| {
            let labels: Vec<_> = key.key().labels().map(|l| l.value().to_string()).collect();
            labels.iter().map(String::as_str).eq(tier)
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum()
}

async fn serve(store: &Path) -> (RunningServer, RecommendClient<Channel>) {
    metrics();
    let mut config = config();
    config.target = Target::Recommend;
    config.recommend.store_dir = Some(store.to_path_buf());
    let server = start(config).await;
    let channel = channel(&server).await;
    wait_serving(&channel, "longview.v1.Recommend").await;
    let client = RecommendClient::new(channel).max_decoding_message_size(64 << 20);
    (server, client)
}

fn history(texts: &[&str]) -> Option<pb::score_request::User> {
    let items = texts
        .iter()
        .map(|t| pb::HistoryItem {
            text: t.to_string(),
            ..Default::default()
        })
        .collect();
    Some(pb::score_request::User::History(pb::UserHistory { items }))
}

fn candidate(id: &str, text: &str) -> pb::Candidate {
    pb::Candidate {
        item_id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn space_history_ranks_space_first_and_the_cache_serves_the_second_call() {
    let store = tempfile::tempdir().unwrap();
    let (server, mut client) = serve(store.path()).await;
    let request = pb::ScoreRequest {
        user: history(&SPACE_HISTORY),
        candidates: vec![candidate("cooking", COOKING), candidate("moon", SPACE)],
        ..Default::default()
    };
    let first = client.score(request.clone()).await.unwrap().into_inner();
    let ids: Vec<_> = first
        .candidates
        .iter()
        .map(|c| c.item_id.as_str())
        .collect();
    assert_eq!(ids, ["moon", "cooking"], "{first:?}");
    let content = |i: usize| first.candidates[i].components["content"];
    assert!(content(0) > content(1) + 0.1, "{first:?}");
    assert!(!first.cold_start);
    assert_eq!((first.candidates[0].rank, first.candidates[1].rank), (1, 2));
    assert_eq!(first.cache.unwrap().misses, 5);
    assert!(first.usage.unwrap().tokens_seen > 0);

    let hits_before = counter(longview_recommend::HITS_METRIC, Some("memory"));
    let second = client.score(request).await.unwrap().into_inner();
    let cache = second.cache.unwrap();
    assert_eq!((cache.memory_hits, cache.misses), (5, 0), "{cache:?}");
    assert_eq!(
        second.usage.unwrap().tokens_seen,
        0,
        "nothing was encoded again"
    );
    assert!(counter(longview_recommend::HITS_METRIC, Some("memory")) >= hits_before + 5);
    assert_eq!(second.candidates, first.candidates);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stored_items_and_profiles_score_by_id_and_survive_a_restart() {
    let store = tempfile::tempdir().unwrap();
    let items = vec![
        pb::Item {
            item_id: "moon".into(),
            text: SPACE.into(),
            popularity: 10,
            timestamp: 1_700_000_000,
        },
        pb::Item {
            item_id: "sauce".into(),
            text: COOKING.into(),
            popularity: 1_000,
            timestamp: 1_700_000_000,
        },
        pb::Item {
            item_id: "saturn".into(),
            text: SPACE_HISTORY[1].into(),
            popularity: 3,
            timestamp: 1_600_000_000,
        },
    ];
    let (server, mut client) = serve(store.path()).await;
    let put = client
        .put_items(pb::PutItemsRequest { items })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((put.stored, put.cache.unwrap().misses), (3, 3));
    let profile = pb::PutProfileRequest {
        profile_id: "ada".into(),
        history: Some(pb::UserHistory {
            items: vec![pb::HistoryItem {
                item_id: "saturn".into(),
                ..Default::default()
            }],
        }),
    };
    client.put_profile(profile).await.unwrap();
    server.shutdown().await.unwrap();

    // A new server process state: only the disk knows these vectors now.
    let (server, mut client) = serve(store.path()).await;
    let request = pb::ScoreRequest {
        user: Some(pb::score_request::User::ProfileId("ada".into())),
        candidates: ["sauce", "moon"].map(|id| candidate(id, "")).to_vec(),
        weights: [("popularity".to_string(), 0.1)].into(),
        now: 1_700_000_000,
        ..Default::default()
    };
    let scored = client.score(request).await.unwrap().into_inner();
    assert_eq!(scored.candidates[0].item_id, "moon", "{scored:?}");
    let sauce = &scored.candidates[1].components;
    assert_eq!((sauce["popularity"], sauce["recency"]), (1.0, 1.0));
    assert_eq!(scored.weights["popularity"], 0.1);
    let cache = scored.cache.unwrap();
    assert_eq!(cache.misses, 0, "{cache:?}");
    assert!(cache.disk_hits >= 1, "{cache:?}");

    let deleted = client
        .delete_items(pb::DeleteItemsRequest {
            item_ids: vec!["moon".into(), "never-stored".into()],
        })
        .await
        .unwrap();
    assert_eq!(deleted.into_inner().deleted, 1);
    let request = pb::ScoreRequest {
        user: Some(pb::score_request::User::ProfileId("ada".into())),
        candidates: vec![candidate("sauce", ""), candidate("moon", "")],
        ..Default::default()
    };
    let gone = client.score(request).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(
        gone.message()
            .contains(r#"candidates[1]: item "moon" is not stored"#),
        "{gone:?}"
    );
    let request = pb::ScoreRequest {
        user: Some(pb::score_request::User::ProfileId("grace".into())),
        candidates: vec![candidate("sauce", "")],
        ..Default::default()
    };
    let unknown = client.score(request).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains(r#"profile "grace""#),
        "{unknown:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn empty_history_is_a_cold_start_ranked_by_popularity() {
    let store = tempfile::tempdir().unwrap();
    let (server, mut client) = serve(store.path()).await;
    let popular = |id: &str, text: &str, count: u64| pb::Candidate {
        popularity: Some(count),
        ..candidate(id, text)
    };
    let request = pb::ScoreRequest {
        user: history(&[]),
        candidates: vec![
            popular("niche", SPACE, 5),
            popular("hit", COOKING, 500),
            popular("mid", SPACE_HISTORY[0], 50),
        ],
        ..Default::default()
    };
    let response = client.score(request).await.unwrap().into_inner();
    assert!(response.cold_start);
    let ids: Vec<_> = response
        .candidates
        .iter()
        .map(|c| c.item_id.as_str())
        .collect();
    assert_eq!(ids, ["hit", "mid", "niche"]);
    assert!(!response.candidates[0].components.contains_key("content"));
    assert_eq!(response.weights["content"], 0.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_and_bad_values_are_refused_naming_them() {
    let store = tempfile::tempdir().unwrap();
    let (server, client) = serve(store.path()).await;
    let base = pb::ScoreRequest {
        user: history(&SPACE_HISTORY[..1]),
        candidates: vec![candidate("a", COOKING)],
        ..Default::default()
    };
    let refusal = |request: pb::ScoreRequest| {
        let mut client = client.clone();
        async move { client.score(request).await.unwrap_err() }
    };

    let many = (0..10_001)
        .map(|i| candidate(&format!("c{i}"), "x"))
        .collect();
    let status = refusal(pb::ScoreRequest {
        candidates: many,
        ..base.clone()
    })
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("10001 candidates in one request, over the limit of 10000")
    );

    let twice = vec![
        candidate("a", COOKING),
        candidate("b", SPACE),
        candidate("a", SPACE),
    ];
    let status = refusal(pb::ScoreRequest {
        candidates: twice,
        ..base.clone()
    })
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains(r#"candidates[2] repeats item_id "a" of candidates[0]"#)
    );

    let mut nan = candidate("b", SPACE);
    nan.features.insert("margin".into(), f64::NAN);
    let status = refusal(pb::ScoreRequest {
        candidates: vec![candidate("a", COOKING), nan],
        ..base.clone()
    })
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains(r#"feature "margin" of candidates[1] (item "b") is NaN"#)
    );

    let mut infinite = base.clone();
    infinite.weights.insert("recency".into(), f64::INFINITY);
    let status = refusal(infinite).await;
    assert!(
        status.message().contains(r#"weights["recency"] is inf"#),
        "{status:?}"
    );

    let unknown = pb::ScoreRequest {
        candidates: vec![candidate("a", COOKING), candidate("ghost", "")],
        ..base.clone()
    };
    let status = refusal(unknown).await;
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status
            .message()
            .contains(r#"candidates[1]: item "ghost" is not stored"#)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_describes_the_recommend_rpcs() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1;
    let store = tempfile::tempdir().unwrap();
    let (server, _) = serve(store.path()).await;
    let channel = channel(&server).await;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "longview.v1.Recommend.PutItems".into(),
            ),
        ),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    assert!(matches!(
        reply.message_response,
        Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
    server.shutdown().await.unwrap();
}
