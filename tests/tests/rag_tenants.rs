//! Rag behind API keys: each tenant sees only its own documents, a masked tenant's
//! passages, citations and answers carry placeholders instead of contact details, and
//! Ask with the local language model streams an answer that cites the stored text.

#![allow(clippy::unwrap_used)]

mod common;

use longview_core::masking::TenantMasking;
use longview_proto::service_names;
use longview_proto::v1::{self as pb, rag_client::RagClient};
use longview_server::generator::GeneratorKind;
use longview_server::{RunningServer, Target};
use tokio_stream::StreamExt;
use tonic::Request;
use tonic::transport::Channel;

const ACME: &str = "acme-rag-key-000000000000";
const GLOBEX: &str = "globex-rag-key-00000000000";
const SUPPORT: &str = "Support for the weir project is run by Anna Keller. \
Write to anna.keller@example.com or call +41 44 555 12 34 for access to the flood gauges.";
const PAYROLL: &str = "Globex pays salaries on the twenty-fifth of every month.";

async fn start(dir: &std::path::Path, generator: GeneratorKind) -> (RunningServer, Channel) {
    let keys = dir.join("keys.toml");
    let file = format!(
        "[[keys]]\ntenant = \"acme\"\nkey = \"{ACME}\"\n\n[[keys]]\ntenant = \"globex\"\nkey = \"{GLOBEX}\"\n"
    );
    std::fs::write(&keys, file).unwrap();
    let mut config = common::config();
    config.target = Target::Rag;
    config.rag.dir = Some(dir.join("rag"));
    config.auth.api_keys_file = Some(keys);
    config.generator.kind = generator;
    let acme = TenantMasking {
        enabled: Some(true),
        ..TenantMasking::default()
    };
    config.masking.tenants.insert("acme".into(), acme);
    let server = common::start(config).await;
    let channel = common::channel(&server).await;
    common::wait_serving(&channel, service_names::RAG).await;
    (server, channel)
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let bearer = format!("Bearer {key}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    request
}

async fn ingest(client: &mut RagClient<Channel>, key: &str, id: &str, text: &str) {
    let documents = vec![pb::RagDocument {
        id: id.into(),
        text: text.into(),
        metadata: Default::default(),
    }];
    client
        .ingest(with_key(pb::IngestRequest { documents }, key))
        .await
        .expect("ingest");
}

async fn search(client: &mut RagClient<Channel>, key: &str, query: &str) -> Vec<pb::Passage> {
    let request = pb::SearchRequest {
        query: query.into(),
        top_k: 10,
        mode: pb::RetrievalMode::Hybrid as i32,
        filter: Default::default(),
    };
    client
        .search(with_key(request, key))
        .await
        .expect("search")
        .into_inner()
        .passages
}

/// The streamed answer and its closing event.
async fn ask(
    client: &mut RagClient<Channel>,
    key: &str,
    question: &str,
    mode: pb::AnswerMode,
) -> (String, usize, pb::AskDone) {
    let request = pb::AskRequest {
        question: question.into(),
        top_k: 3,
        mode: mode as i32,
        max_new_tokens: 48,
        ..Default::default()
    };
    let mut events = client
        .ask(with_key(request, key))
        .await
        .expect("ask")
        .into_inner();
    let (mut answer, mut pieces, mut done) = (String::new(), 0, None);
    while let Some(event) = events.next().await {
        match event.expect("answer event").event {
            Some(pb::ask_response::Event::Token(piece)) => {
                pieces += 1;
                answer.push_str(&piece);
            }
            Some(pb::ask_response::Event::Done(end)) => done = Some(end),
            None => panic!("an empty event"),
        }
    }
    (answer, pieces, done.expect("AskDone ends the stream"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_documents_and_masked_tenants_see_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let (server, channel) = start(dir.path(), GeneratorKind::None).await;
    let mut client = RagClient::new(channel);
    ingest(&mut client, ACME, "support", SUPPORT).await;
    ingest(&mut client, GLOBEX, "payroll", PAYROLL).await;
    // The same document id under another tenant is another document.
    ingest(&mut client, GLOBEX, "support", PAYROLL).await;

    let acme = search(&mut client, ACME, "who runs support for the weir").await;
    assert!(!acme.is_empty());
    assert!(acme.iter().all(|p| p.document_id == "support"), "{acme:?}");
    let text = &acme[0].text;
    assert!(
        text.contains("[EMAIL]") && text.contains("[PHONE]"),
        "{text}"
    );
    assert!(!text.contains("anna.keller@"), "{text}");

    let globex = search(&mut client, GLOBEX, "who runs support for the weir").await;
    assert!(globex.iter().all(|p| p.text == PAYROLL), "{globex:?}");

    let (answer, _, done) = ask(
        &mut client,
        ACME,
        "How do I reach support for the flood gauges?",
        pb::AnswerMode::Extractive,
    )
    .await;
    assert!(!answer.contains("example.com"), "{answer}");
    for citation in &done.citations {
        assert!(!citation.text.contains("555 12 34"), "{citation:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_with_the_local_language_model_streams_and_cites() {
    let dir = tempfile::tempdir().unwrap();
    let (server, channel) = start(dir.path(), GeneratorKind::Local).await;
    let mut client = RagClient::new(channel);
    ingest(&mut client, GLOBEX, "payroll", PAYROLL).await;
    let (answer, pieces, done) = ask(
        &mut client,
        GLOBEX,
        "When does Globex pay salaries?",
        pb::AnswerMode::Unspecified,
    )
    .await;
    assert!(pieces > 1, "the answer streams in pieces: {answer:?}");
    assert!(!answer.trim().is_empty());
    let model = done.model.as_ref().expect("the generator names itself");
    assert!(model.name.to_lowercase().contains("smollm"), "{model:?}");
    assert!(!done.citations.is_empty());
    for citation in &done.citations {
        assert_eq!(citation.document_id, "payroll");
        let span = citation.span.expect("citation span");
        let cited: String = PAYROLL
            .chars()
            .skip(span.start as usize)
            .take((span.end - span.start) as usize)
            .collect();
        assert_eq!(cited, citation.text);
    }
    server.shutdown().await.unwrap();
}
