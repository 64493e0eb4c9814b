//! `--target worker`: the internal worker API gives the same vectors as Embed.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, cosine, start};
use longview_proto::v1::{EmbedRequest, embed_client::EmbedClient};
use longview_proto::worker::v1::{self as pb, worker_client::WorkerClient};
use longview_server::Target;
use tonic::Code;

#[tokio::test]
async fn worker_role_tokenizes_and_encodes_like_embed() {
    let mut config = config();
    config.target = Target::Worker;
    let server = start(config).await;
    let channel = channel(&server).await;
    let mut worker = WorkerClient::new(channel.clone());

    let info = worker
        .info(pb::InfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.dimensions, info.max_positions, info.special_tokens),
        (384, 512, 2)
    );

    let text = "Crème brûlée in Zürich costs 12 francs.";
    let tokenized = worker
        .tokenize(pb::TokenizeRequest {
            texts: vec![text.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let sequence = tokenized.sequences[0].clone();
    assert_eq!(sequence.offsets.len(), sequence.ids.len() * 2);
    let last_end = *sequence.offsets.last().unwrap() as usize;
    assert_eq!(
        &text[last_end - 1..last_end],
        ".",
        "offsets are bytes into the text"
    );

    let encoded = worker
        .encode(pb::EncodeRequest {
            sequences: vec![sequence],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut embed = EmbedClient::new(channel);
    let request = EmbedRequest {
        texts: vec![text.into()],
        ..Default::default()
    };
    let embedded = embed.embed(request).await.unwrap().into_inner();
    assert!(cosine(&encoded.vectors[0].values, &embedded.embeddings[0].values) >= 0.99999);

    let too_long = pb::TokenSequence {
        ids: vec![1000; 600],
        offsets: Vec::new(),
    };
    let status = worker
        .encode(pb::EncodeRequest {
            sequences: vec![too_long],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("512 positions"),
        "{}",
        status.message()
    );
    server.shutdown().await.unwrap();
}
