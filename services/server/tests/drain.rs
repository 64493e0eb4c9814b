//! Graceful drain of the real binary: on SIGTERM health turns NOT_SERVING at once, a call
//! in flight finishes, new calls are refused, and the process exits by the drain deadline
//! although a client keeps a stream open.

#![allow(clippy::unwrap_used)]

mod common;

use common::serve;
use longview_proto::v1::{self as pb, classify_client::ClassifyClient};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const DRAIN_SECONDS: u64 = 3;

fn options() -> Option<pb::ClassifyOptions> {
    let labels = ["late payment", "new product"]
        .iter()
        .map(|name| pb::Label {
            name: name.to_string(),
            description: String::new(),
        })
        .collect();
    Some(pb::ClassifyOptions {
        labels: Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
            labels,
        })),
        ..pb::ClassifyOptions::default()
    })
}

/// Opens a ClassifyStream and sends its first piece; the stream stays open until the
/// returned sender is dropped.
async fn open_stream(
    channel: &Channel,
) -> (
    mpsc::Sender<pb::ClassifyStreamRequest>,
    tokio::task::JoinHandle<Result<pb::ClassifyResponse, tonic::Status>>,
) {
    let (pieces, rx) = mpsc::channel(4);
    let first = pb::ClassifyStreamRequest {
        options: options(),
        text_piece: "The customer has not paid ".into(),
    };
    pieces.send(first).await.unwrap();
    let mut client = ClassifyClient::new(channel.clone());
    let call = tokio::spawn(async move {
        let response = client.classify_stream(ReceiverStream::new(rx)).await?;
        Ok(response.into_inner())
    });
    (pieces, call)
}

/// Reads `/metrics` until `longview_grpc_requests_in_flight` reaches `count`.
async fn wait_in_flight(metrics: std::net::SocketAddr, count: u32) {
    let wanted = format!("longview_grpc_requests_in_flight {count}");
    for _ in 0..500 {
        let text = tokio::task::spawn_blocking(move || scrape(metrics))
            .await
            .unwrap();
        if text.lines().any(|line| line == wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {wanted}");
}

fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_calls_and_exits_by_the_deadline() {
    let drain = DRAIN_SECONDS.to_string();
    let mut server = serve(&["--drain-seconds", &drain, "--metrics-listen", "127.0.0.1:0"]);
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let (finishing, finished) = open_stream(&channel).await;
    let (_held_open, abandoned) = open_stream(&channel).await;
    wait_in_flight(server.metrics.unwrap(), 2).await;

    server.terminate();
    let terminated = Instant::now();
    let update = tokio::time::timeout(Duration::from_secs(1), watch.next()).await;
    let update = update.expect("health changed within 1 s").unwrap().unwrap();
    assert_eq!(update.status(), ServingStatus::NotServing);

    // The call in flight completes normally.
    let last = pb::ClassifyStreamRequest {
        options: None,
        text_piece: "the invoice from March and the payment is overdue.".into(),
    };
    finishing.send(last).await.unwrap();
    drop(finishing);
    let answer = finished.await.unwrap().unwrap();
    assert_eq!(answer.predicted, ["late payment"]);

    // New calls are refused.
    let fresh = Channel::from_shared(server.url()).unwrap().connect_lazy();
    let refused = ClassifyClient::new(fresh)
        .list_label_sets(pb::ListLabelSetsRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    // The open stream does not hold the process past the deadline.
    let exit = tokio::task::spawn_blocking(move || {
        server.exit_within(Duration::from_secs(DRAIN_SECONDS + 5))
    })
    .await
    .unwrap();
    let took = terminated.elapsed();
    assert!(exit.is_some_and(|e| e.success()), "exit: {exit:?}");
    assert!(
        took < Duration::from_secs(DRAIN_SECONDS + 3),
        "exited after {took:?}"
    );
    assert!(abandoned.await.unwrap().is_err());
}
