//! Sentiment over real gRPC with the real model and the default trained head.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, start, wait_serving};
use longview_proto::v1::{self as pb, sentiment_client::SentimentClient};
use longview_sentiment::{Watchlist, WatchlistEntry};
use std::sync::Arc;
use tonic::Code;

fn document(text: &str) -> pb::SentimentDocument {
    pb::SentimentDocument {
        id: String::new(),
        text: text.into(),
        entities: Vec::new(),
    }
}

async fn client() -> (
    longview_server::RunningServer,
    SentimentClient<tonic::transport::Channel>,
) {
    let mut config = config();
    config.watchlist = Arc::new(
        Watchlist::new(vec![
            WatchlistEntry {
                ticker: "BRVX".into(),
                name: "Bravox Logistics".into(),
                aliases: vec!["Bravox".into()],
            },
            WatchlistEntry {
                ticker: "TLMR".into(),
                name: "Tellamar Foods".into(),
                aliases: vec![],
            },
        ])
        .unwrap(),
    );
    let server = start(config).await;
    let channel = channel(&server).await;
    wait_serving(&channel, "longview.v1.Sentiment").await;
    (server, SentimentClient::new(channel))
}

#[tokio::test]
async fn clear_financial_sentences_get_the_right_label() {
    let (server, mut client) = client().await;
    let cases = [
        (
            "Vantrel Energy reported record profit, raised its full-year guidance and lifted its dividend by 20%.",
            "positive",
        ),
        (
            "Ostrova Mining collapsed after regulators fined it heavily and its lenders refused to extend credit.",
            "negative",
        ),
    ];
    let request = pb::SentimentRequest {
        documents: cases.iter().map(|(t, _)| document(t)).collect(),
        ..Default::default()
    };
    let response = client.analyze(request).await.unwrap().into_inner();
    for ((text, expected), result) in cases.iter().zip(&response.documents) {
        assert_eq!(
            &result.label, expected,
            "{text}: {:?}",
            result.probabilities
        );
        let total: f32 = result.probabilities.iter().map(|p| p.score).sum();
        assert!((total - 1.0).abs() < 1e-4);
    }
    let model = response.model.unwrap();
    assert_eq!(model.head, "sentiment");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_companies_get_opposite_entity_sentiment() {
    let (server, mut client) = client().await;
    let text = "Bravox Logistics won a large multi-year contract and its shares jumped to a record high. \
                $TLMR plunged after it reported a heavy loss and warned it may default on its debt.";
    let request = pb::SentimentRequest {
        documents: vec![document(text)],
        include_entities: true,
        include_sentences: true,
    };
    let response = client.analyze(request).await.unwrap().into_inner();
    let doc = &response.documents[0];
    let label_of = |ticker: &str| {
        doc.entities
            .iter()
            .find(|e| e.entity == ticker)
            .map(|e| e.label.clone())
    };
    assert_eq!(
        label_of("BRVX").as_deref(),
        Some("positive"),
        "{:?}",
        doc.entities
    );
    assert_eq!(
        label_of("TLMR").as_deref(),
        Some("negative"),
        "{:?}",
        doc.entities
    );
    assert_eq!(doc.sentences.len(), 2);
    let first = doc.sentences[0].span.unwrap();
    assert_eq!(
        &text[first.byte_start as usize..first.byte_end as usize],
        text.split(". ").next().unwrap().to_string() + "."
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn foreign_and_emoji_only_texts_do_not_crash() {
    let (server, mut client) = client().await;
    let texts = [
        "Die Aktie fiel nach der Gewinnwarnung um zwölf Prozent.",
        "株価は決算発表の後に急騰した。",
        "🚀🚀🚀",
        "📉😱",
    ];
    let request = pb::SentimentRequest {
        documents: texts.iter().map(|t| document(t)).collect(),
        include_sentences: true,
        include_entities: true,
    };
    let response = client.analyze(request).await.unwrap().into_inner();
    assert_eq!(response.documents.len(), texts.len());
    for doc in &response.documents {
        assert_eq!(doc.probabilities.len(), 3);
    }
    let blank = pb::SentimentRequest {
        documents: vec![document("fine"), document("\u{200B} ")],
        ..Default::default()
    };
    let status = client.analyze(blank).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("documents[1]"),
        "{}",
        status.message()
    );
    server.shutdown().await.unwrap();
}
