//! Embed over real gRPC with the real model.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, cosine, fixture, start};
use longview_models::Backend;
use longview_proto::v1::{EmbedRequest, Truncation, embed_client::EmbedClient};
use longview_server::ServeConfig;
use serde::Deserialize;
use tonic::Code;

#[derive(Deserialize)]
struct Reference {
    items: Vec<ReferenceItem>,
}

#[derive(Deserialize)]
struct ReferenceItem {
    text: String,
    tokens: u64,
    embedding: Vec<f32>,
}

fn request(texts: &[&str]) -> EmbedRequest {
    EmbedRequest {
        texts: texts.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// The f32 encoder matches PyTorch to 0.9999; the default (int8 on VNNI CPUs) to the
/// 0.99 quality gate.
#[tokio::test]
async fn embeddings_match_sentence_transformers() {
    for (backend, gate) in [(Backend::Fast, 0.9999), (Backend::Auto, 0.99)] {
        let mut config = config();
        config.backend = backend;
        embeddings_match_reference(config, gate).await;
    }
}

async fn embeddings_match_reference(config: ServeConfig, gate: f64) {
    let bytes = std::fs::read(fixture("reference/minilm_reference.json")).unwrap();
    let reference: Reference = serde_json::from_slice(&bytes).unwrap();
    let server = start(config).await;
    let mut client = EmbedClient::new(channel(&server).await);
    let texts: Vec<String> = reference.items.iter().map(|i| i.text.clone()).collect();
    let response = client
        .embed(EmbedRequest {
            texts,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.dimensions, 384);
    for (item, got) in reference.items.iter().zip(&response.embeddings) {
        let similarity = cosine(&item.embedding, &got.values);
        assert!(
            similarity >= gate,
            "cosine {similarity} for {:?}",
            item.text
        );
        // The reference counts [CLS] and [SEP]; usage does not.
        assert_eq!(
            got.usage.unwrap().tokens_seen + 2,
            item.tokens,
            "tokens for {:?}",
            item.text
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn padded_batches_do_not_change_vectors() {
    let short = "Rates held.";
    let long = "The committee voted to hold rates steady, citing persistent services inflation, \
                a resilient labour market and uncertainty about the pace of global growth, \
                while signalling that cuts remain possible later in the year.";
    let server = start(config()).await;
    let mut client = EmbedClient::new(channel(&server).await);
    let alone_short = client
        .embed(request(&[short]))
        .await
        .unwrap()
        .into_inner()
        .embeddings;
    let alone_long = client
        .embed(request(&[long]))
        .await
        .unwrap()
        .into_inner()
        .embeddings;
    let together = client
        .embed(request(&[short, long]))
        .await
        .unwrap()
        .into_inner()
        .embeddings;

    assert!(cosine(&alone_short[0].values, &together[0].values) >= 0.9999);
    assert!(cosine(&alone_long[0].values, &together[1].values) >= 0.9999);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn blank_texts_are_refused_by_index() {
    let server = start(config()).await;
    let mut client = EmbedClient::new(channel(&server).await);
    let blanks = [
        "",
        "   \t\n",
        "\u{200B}\u{200B}",
        "\u{FEFF}",
        "\u{200D} \u{2060}",
    ];
    for blank in blanks {
        let status = client
            .embed(request(&["a real sentence", blank]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{blank:?}");
        assert!(
            status.message().contains("texts[1]"),
            "{blank:?}: {}",
            status.message()
        );
    }
    let status = client.embed(request(&[])).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // The server is still healthy and answering.
    assert_eq!(
        client
            .embed(request(&["still here"]))
            .await
            .unwrap()
            .into_inner()
            .embeddings
            .len(),
        1
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_input_is_truncated_or_refused() {
    let sentence = "Quarterly revenue grew while operating costs declined across all regions. ";
    let text: String = sentence.repeat(70_000 / sentence.len() + 1)[..70_000].to_string();
    let server = start(config()).await;
    let mut client = EmbedClient::new(channel(&server).await);

    let response = client.embed(request(&[&text])).await.unwrap().into_inner();
    let usage = response.embeddings[0].usage.unwrap();
    assert!(usage.truncated);
    assert_eq!(
        usage.tokens_seen, 254,
        "256 positions minus [CLS] and [SEP]"
    );
    assert_eq!(usage.tokens_total, usage.tokens_seen + usage.tokens_dropped);
    assert!(usage.tokens_dropped > 10_000);

    let mut refuse = request(&[&text]);
    refuse.truncation = Truncation::None as i32;
    let status = client.embed(refuse).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let message = status.message();
    assert!(message.contains("limit of 254 tokens"), "{message}");
    assert!(
        message.contains(&format!("has {} tokens", usage.tokens_total)),
        "{message}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn too_many_texts_names_the_limit() {
    let mut config = config();
    config.embed.max_texts = 4;
    let server = start(config).await;
    let mut client = EmbedClient::new(channel(&server).await);
    let status = client.embed(request(&["a"; 5])).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("over the limit of 4"),
        "{}",
        status.message()
    );
    server.shutdown().await.unwrap();
}
