//! Health follows warm-up; reflection answers in both protocol versions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, model_dir};
use longview_proto::v1::{EmbedRequest, embed_client::EmbedClient};
use longview_worker::{Worker, WorkerConfig};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn status_of(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    client.check(request).await.unwrap().into_inner().status()
}

#[tokio::test]
async fn not_serving_until_warm_then_serving() {
    let (go, start_signal) = tokio::sync::oneshot::channel();
    let mut worker_config = WorkerConfig::new(model_dir());
    worker_config.start_signal = Some(start_signal);
    let worker = Worker::spawn(worker_config).unwrap();
    let server = longview_server::start_with_worker(config(), worker)
        .await
        .unwrap();
    let channel = channel(&server).await;
    let mut health = HealthClient::new(channel.clone());

    for service in ["", "longview.v1.Embed", "longview.v1.Classify"] {
        assert_eq!(
            status_of(&mut health, service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let early = EmbedClient::new(channel.clone())
        .embed(EmbedRequest {
            texts: vec!["hi".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(early.unwrap_err().code(), Code::Unavailable);

    let mut watch = health
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    go.send(()).unwrap();
    loop {
        let update = watch.next().await.expect("health stream open").unwrap();
        if update.status() == ServingStatus::Serving {
            break;
        }
    }
    // The whole server serves once every role is ready (Rag opens its stores after warm-up).
    assert_eq!(
        status_of(&mut health, "longview.v1.Embed").await,
        ServingStatus::Serving
    );
    let unknown = health
        .check(HealthCheckRequest {
            service: "longview.v1.Nope".into(),
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    drop(watch);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = common::start(config()).await;
    let channel = channel(&server).await;

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "longview.v1.Embed",
        "longview.v1.Classify",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "longview.v1.Classify".into(),
            ),
        ),
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    assert!(matches!(
        reply.message_response,
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
    server.shutdown().await.unwrap();
}
