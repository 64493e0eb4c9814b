//! The tower stack in front of the real services: API keys and roles, tenants reaching
//! the services (their masking), quotas, load shedding, per-RPC size limits, deadlines.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, start};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use longview_core::masking::TenantMasking;
use longview_proto::v1::{self as pb, classify_client::ClassifyClient, embed_client::EmbedClient};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request};

const ACME: &str = "acme-classify-and-embed-key";
const ACME_EMBED_ONLY: &str = "acme-embed-only-key-000000";
const GLOBEX: &str = "globex-every-role-key-00000";

/// Keys for two tenants; acme's evidence is masked, globex's is not.
fn secured(dir: &tempfile::TempDir) -> longview_server::ServeConfig {
    let keys = dir.path().join("api-keys.toml");
    let file = format!(
        r#"
        [[keys]]
        tenant = "acme"
        key = "{ACME}"
        roles = ["classify", "embed"]

        [[keys]]
        tenant = "acme"
        key = "{ACME_EMBED_ONLY}"
        roles = ["embed"]

        [[keys]]
        tenant = "globex"
        key = "{GLOBEX}"

        [tenants.globex]
        requests_per_second = 1
        burst = 2
        "#
    );
    std::fs::write(&keys, file).unwrap();
    let mut config = config();
    config.auth.api_keys_file = Some(keys);
    let acme = TenantMasking {
        enabled: Some(true),
        ..TenantMasking::default()
    };
    config.masking.tenants.insert("acme".into(), acme);
    config
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let bearer = format!("Bearer {key}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    request
}

fn classify_request(text: &str) -> pb::ClassifyRequest {
    let labels = ["billing", "travel"]
        .iter()
        .map(|name| pb::Label {
            name: name.to_string(),
            description: String::new(),
        })
        .collect();
    pb::ClassifyRequest {
        text: text.into(),
        options: Some(pb::ClassifyOptions {
            labels: Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
                labels,
            })),
            top_evidence: 1,
            ..pb::ClassifyOptions::default()
        }),
    }
}

fn list_label_sets(key: &str) -> Request<pb::ListLabelSetsRequest> {
    with_key(pb::ListLabelSetsRequest {}, key)
}

#[tokio::test]
async fn keys_decide_who_may_call_what() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(secured(&dir)).await;
    let mut classify = ClassifyClient::new(channel(&server).await);

    let no_key = classify.classify(classify_request("Invoice due.")).await;
    let no_key = no_key.unwrap_err();
    assert_eq!(no_key.code(), Code::Unauthenticated, "{no_key:?}");
    assert!(
        no_key.message().contains("authorization: Bearer"),
        "{no_key:?}"
    );

    let wrong = classify
        .list_label_sets(list_label_sets("not-a-key-of-anyone"))
        .await;
    assert_eq!(wrong.unwrap_err().code(), Code::Unauthenticated);

    let denied = classify
        .list_label_sets(list_label_sets(ACME_EMBED_ONLY))
        .await;
    let denied = denied.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("classify role"), "{denied:?}");

    classify
        .list_label_sets(list_label_sets(ACME))
        .await
        .unwrap();
    let mut embed = EmbedClient::new(channel(&server).await);
    let texts = pb::EmbedRequest {
        texts: vec!["Rates held.".into()],
        ..Default::default()
    };
    embed.embed(with_key(texts, ACME_EMBED_ONLY)).await.unwrap();

    // Health and reflection stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&server).await);
    let check = tonic_health::pb::HealthCheckRequest::default();
    health.check(check).await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_tenant_gets_its_own_masking_of_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(secured(&dir)).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let text = "Please refund the duplicate charge on card 4111 1111 1111 1111 and send \
                the corrected invoice to jane.doe@example.com before Friday.";

    let masked = client
        .classify(with_key(classify_request(text), ACME))
        .await;
    let evidence = masked.unwrap().into_inner().evidence.remove(0);
    assert!(evidence.text.contains("[CARD]"), "{}", evidence.text);
    assert!(evidence.text.contains("[EMAIL]"), "{}", evidence.text);
    assert!(!evidence.text.contains("4111"), "{}", evidence.text);
    assert!(!evidence.text.contains("jane.doe"), "{}", evidence.text);
    // Offsets still point into the original text.
    let span = evidence.span.unwrap();
    assert_eq!(
        &text[span.byte_start as usize..span.byte_end as usize],
        text
    );

    let raw = client
        .classify(with_key(classify_request(text), GLOBEX))
        .await;
    assert_eq!(raw.unwrap().into_inner().evidence[0].text, text);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tenant_quota_refuses_with_a_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(secured(&dir)).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let mut refused = None;
    // Burst 2 at 1 per second: the third call within a second is over the quota.
    for _ in 0..3 {
        if let Err(status) = client.list_label_sets(list_label_sets(GLOBEX)).await {
            refused = Some(status);
        }
    }
    let refused = refused.expect("the quota refused a call");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("tenant globex"), "{refused:?}");
    let retry_ms: u64 = refused
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&retry_ms), "{retry_ms}");
    // Other tenants are not affected.
    client.list_label_sets(list_label_sets(ACME)).await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_requests_are_refused_naming_the_limit() {
    let mut config = config();
    config.limits.max_request_bytes = 64 * 1024;
    let embed_rpc = "longview.v1.Embed/Embed".to_string();
    config.limits.request_bytes.insert(embed_rpc, 1000);
    let server = start(config).await;

    let mut embed = EmbedClient::new(channel(&server).await);
    let texts = pb::EmbedRequest {
        texts: vec!["word ".repeat(400)],
        ..Default::default()
    };
    let refused = embed.embed(texts).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("over the limit of 1000 bytes"),
        "{message}"
    );
    assert!(message.contains("longview.v1.Embed/Embed"), "{message}");

    let mut classify = ClassifyClient::new(channel(&server).await);
    let document = classify_request(&"A long invoice line. ".repeat(5000));
    let refused = classify.classify(document).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limit of 65536 bytes"),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("limits.max_request_bytes"),
        "{refused:?}"
    );
    server.shutdown().await.unwrap();
}

/// A gRPC client over a plain HTTP/2 connection. tonic's own client enforces deadlines
/// itself (and reports them as CANCELLED), so it cannot show what the server answers; this
/// one only sends `grpc-timeout` and waits for the server.
fn deadline_blind_client(
    server: &longview_server::RunningServer,
) -> ClassifyClient<Client<HttpConnector, tonic::body::Body>> {
    let http2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let origin = format!("http://{}", server.addr).parse().unwrap();
    ClassifyClient::with_origin(http2, origin)
}

#[tokio::test]
async fn a_50_ms_deadline_on_a_big_document_is_exceeded() {
    let server = start(config()).await;
    let mut client = deadline_blind_client(&server);
    let document = "Quarterly revenue rose while the board weighed a buyback. ".repeat(3000);
    let mut request = Request::new(classify_request(&document));
    request.set_timeout(Duration::from_millis(50));
    let started = std::time::Instant::now();
    let exceeded = client.classify(request).await.unwrap_err();
    assert_eq!(exceeded.code(), Code::DeadlineExceeded, "{exceeded:?}");
    assert!(
        exceeded.message().contains("deadline (50 ms)"),
        "{exceeded:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server carries on with the next call.
    client
        .classify(classify_request("Invoice due."))
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_servers_own_timeout_applies_without_a_deadline() {
    let mut config = config();
    config.limits.request_timeout = Some(Duration::from_millis(50));
    let server = start(config).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let document = "Quarterly revenue rose while the board weighed a buyback. ".repeat(3000);
    let exceeded = client
        .classify(classify_request(&document))
        .await
        .unwrap_err();
    assert_eq!(exceeded.code(), Code::DeadlineExceeded, "{exceeded:?}");
    assert!(
        exceeded
            .message()
            .contains("limits.request_timeout_seconds"),
        "{exceeded:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_are_shed() {
    let mut config = config();
    config.limits.max_concurrent_requests = 1;
    let server = start(config).await;
    let channel = channel(&server).await;

    // A client stream left open holds the only slot until it ends.
    let (pieces, rx) = tokio::sync::mpsc::channel(4);
    let first = pb::ClassifyStreamRequest {
        options: classify_request("").options,
        text_piece: "The invoice ".into(),
    };
    pieces.send(first).await.unwrap();
    let mut streaming = ClassifyClient::new(channel.clone());
    let held = tokio::spawn(async move {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        streaming.classify_stream(stream).await
    });

    let shed = first_refusal(&channel).await;
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert!(
        shed.message().contains("limit of 1 requests in flight"),
        "{shed:?}"
    );
    assert!(shed.metadata().get("retry-after-ms").is_some());

    let last = pb::ClassifyStreamRequest {
        options: None,
        text_piece: "is overdue.".into(),
    };
    pieces.send(last).await.unwrap();
    drop(pieces);
    held.await.unwrap().unwrap();
    let mut client = ClassifyClient::new(channel);
    client
        .list_label_sets(pb::ListLabelSetsRequest {})
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

/// Calls until one is refused (the held stream reaches the server in a few ms).
async fn first_refusal(channel: &Channel) -> tonic::Status {
    let mut client = ClassifyClient::new(channel.clone());
    for _ in 0..200 {
        if let Err(status) = client.list_label_sets(pb::ListLabelSetsRequest {}).await {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no call was shed while the only slot was held");
}
