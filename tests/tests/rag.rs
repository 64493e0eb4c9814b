//! Rag end to end: a real server (Rag role, embedded store in a temporary directory) with
//! the real model, over gRPC on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use longview_proto::service_names;
use longview_proto::v1::{self as pb, rag_client::RagClient};
use longview_server::{RunningServer, Target};
use std::path::Path;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

const RIVER: &str = "The Limmat flows out of Lake Zürich and through the old town. \
In spring, meltwater from the Alps raises the river by almost a metre. \
Engineers built the Höngg weir in 1951 to keep the floods away from the houses — \
it still holds back the water today. Swans nest on the banks every year.";
const BAKERY: &str = "Our bakery opens at six in the morning. \
The sourdough loaf needs eighteen hours of fermentation before it is baked. \
Croissants are laminated with cold butter and folded three times.";
const TRAINS: &str = "The night train to Vienna leaves at 21:40 from platform 7. \
Sleeping cars have three beds per compartment and breakfast is served at seven.";

async fn start(dir: &Path) -> (RunningServer, RagClient<Channel>) {
    let mut config = common::config();
    config.target = Target::Rag;
    config.rag.dir = Some(dir.to_path_buf());
    let server = common::start(config).await;
    let channel = common::channel(&server).await;
    common::wait_serving(&channel, service_names::RAG).await;
    (server, RagClient::new(channel))
}

fn document(id: &str, text: &str) -> pb::RagDocument {
    pb::RagDocument {
        id: id.into(),
        text: text.into(),
        metadata: [("source".to_string(), "test".to_string())].into(),
    }
}

async fn ingest(
    client: &mut RagClient<Channel>,
    documents: Vec<pb::RagDocument>,
) -> pb::IngestResponse {
    client
        .ingest(pb::IngestRequest { documents })
        .await
        .expect("ingest")
        .into_inner()
}

async fn search(
    client: &mut RagClient<Channel>,
    query: &str,
    mode: pb::RetrievalMode,
) -> Vec<pb::Passage> {
    let request = pb::SearchRequest {
        query: query.into(),
        top_k: 10,
        mode: mode as i32,
        filter: Default::default(),
    };
    client
        .search(request)
        .await
        .expect("search")
        .into_inner()
        .passages
}

/// The text a span names, by code points and by bytes: both must agree.
fn slice(text: &str, span: &pb::Span) -> String {
    let by_bytes = &text[span.byte_start as usize..span.byte_end as usize];
    let by_chars: String = text
        .chars()
        .skip(span.start as usize)
        .take((span.end - span.start) as usize)
        .collect();
    assert_eq!(by_bytes, by_chars, "byte and code-point spans disagree");
    by_chars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_streams_an_answer_whose_citations_slice_the_stored_text() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = start(dir.path()).await;
    let documents = vec![
        document("river", RIVER),
        document("bakery", BAKERY),
        document("trains", TRAINS),
    ];
    let ingested = ingest(&mut client, documents).await;
    assert_eq!(ingested.documents, 3);
    assert!(ingested.chunks >= 3);

    let request = pb::AskRequest {
        question: "When was the weir built to stop the floods?".into(),
        top_k: 3,
        mode: pb::AnswerMode::Extractive as i32,
        ..Default::default()
    };
    let mut events = client.ask(request).await.expect("ask").into_inner();
    let (mut answer, mut pieces, mut done) = (String::new(), 0, None);
    while let Some(event) = events.next().await {
        match event.expect("answer event").event {
            Some(pb::ask_response::Event::Token(piece)) => {
                assert!(done.is_none(), "a piece after AskDone");
                pieces += 1;
                answer.push_str(&piece);
            }
            Some(pb::ask_response::Event::Done(end)) => done = Some(end),
            None => panic!("an empty event"),
        }
    }
    let done = done.expect("AskDone ends the stream");
    assert!(pieces >= 1, "the answer streams");
    assert!(
        answer.contains("1951"),
        "the answer quotes the weir sentence: {answer:?}"
    );
    assert!(!done.citations.is_empty());
    for citation in &done.citations {
        assert_eq!(citation.document_id, "river", "cited {citation:?}");
        let span = citation.span.expect("citation span");
        assert_eq!(slice(RIVER, &span), citation.text);
        assert!(answer.contains(&citation.text));
        let passage = &done.passages[citation.passage as usize - 1];
        assert_eq!(passage.document_id, citation.document_id);
    }
    for passage in &done.passages {
        let stored = [("river", RIVER), ("bakery", BAKERY), ("trains", TRAINS)]
            .into_iter()
            .find(|(id, _)| *id == passage.document_id)
            .expect("a known document")
            .1;
        assert_eq!(
            slice(stored, &passage.span.expect("passage span")),
            passage.text
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_replaces_and_delete_removes_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = start(dir.path()).await;
    let long_old = format!(
        "{RIVER} {}",
        "The volcano erupted and grey ash covered the orchards. ".repeat(40)
    );
    let first = ingest(
        &mut client,
        vec![document("doc", &long_old), document("other", BAKERY)],
    )
    .await;
    assert!(first.chunks > 3, "the long version spans several chunks");

    let second = ingest(&mut client, vec![document("doc", TRAINS)]).await;
    assert_eq!(second.chunks, 1);
    assert_eq!(
        second.chunks_replaced + 1,
        first.chunks,
        "every old chunk of doc was replaced"
    );
    for mode in [
        pb::RetrievalMode::Bm25,
        pb::RetrievalMode::Dense,
        pb::RetrievalMode::Hybrid,
    ] {
        for passage in search(&mut client, "volcano ash orchards", mode).await {
            assert!(
                !passage.text.contains("volcano"),
                "{mode:?} found a stale chunk: {passage:?}"
            );
            if passage.document_id == "doc" {
                assert_eq!(passage.text, TRAINS);
            }
        }
    }

    let deleted = client
        .delete(pb::DeleteRequest {
            document_ids: vec!["doc".into()],
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(deleted.chunks_deleted, 1);
    let left = search(
        &mut client,
        "night train Vienna platform",
        pb::RetrievalMode::Hybrid,
    )
    .await;
    assert!(left.iter().all(|p| p.document_id == "other"), "{left:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = start(dir.path()).await;
    ingest(
        &mut client,
        vec![document("river", RIVER), document("bakery", BAKERY)],
    )
    .await;
    server.shutdown().await.unwrap();

    let (server, mut client) = start(dir.path()).await;
    for mode in [pb::RetrievalMode::Dense, pb::RetrievalMode::Bm25] {
        let found = search(&mut client, "sourdough fermentation", mode).await;
        assert_eq!(
            found.first().map(|p| p.document_id.as_str()),
            Some("bakery"),
            "{mode:?}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_at_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = start(dir.path()).await;
    let refusal = |status: tonic::Status| (status.code(), status.message().to_string());

    let duplicate = vec![document("a", RIVER), document("a", BAKERY)];
    let (code, message) = refusal(
        client
            .ingest(pb::IngestRequest {
                documents: duplicate,
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("documents[1].id \"a\" repeats documents[0].id"),
        "{message}"
    );

    let blank = vec![document("", RIVER)];
    let (code, message) = refusal(
        client
            .ingest(pb::IngestRequest { documents: blank })
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (Code::InvalidArgument, "documents[0].id is empty")
    );

    let too_many = pb::SearchRequest {
        query: "river".into(),
        top_k: 10_000,
        ..Default::default()
    };
    let (code, message) = refusal(client.search(too_many).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("top_k 10000 is over the limit of 100"),
        "{message}"
    );

    let generative = pb::AskRequest {
        question: "Anything?".into(),
        mode: pb::AnswerMode::Generative as i32,
        ..Default::default()
    };
    let (code, message) = refusal(client.ask(generative).await.unwrap_err());
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("ANSWER_MODE_EXTRACTIVE"), "{message}");
    server.shutdown().await.unwrap();
}

/// Runs only against a real Qdrant server: LONGVIEW_TEST_QDRANT_URL=http://host:6334.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_server_store_round_trip() {
    let Ok(url) = std::env::var("LONGVIEW_TEST_QDRANT_URL") else {
        eprintln!(
            "SKIPPED qdrant_server_store_round_trip: set LONGVIEW_TEST_QDRANT_URL to a Qdrant gRPC URL to run it"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config();
    config.target = Target::Rag;
    config.rag.dir = Some(dir.path().to_path_buf());
    config.rag.qdrant_url = Some(url);
    config.rag.qdrant_collection = format!("longview_test_{}", std::process::id());
    let server = common::start(config).await;
    let channel = common::channel(&server).await;
    common::wait_serving(&channel, service_names::RAG).await;
    let mut client = RagClient::new(channel);
    ingest(
        &mut client,
        vec![document("river", RIVER), document("bakery", BAKERY)],
    )
    .await;
    let found = search(
        &mut client,
        "sourdough fermentation",
        pb::RetrievalMode::Dense,
    )
    .await;
    assert_eq!(found[0].document_id, "bakery");
    assert_eq!(slice(BAKERY, &found[0].span.unwrap()), found[0].text);
    let deleted = client
        .delete(pb::DeleteRequest {
            document_ids: vec!["bakery".into(), "river".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.chunks_deleted >= 2);
    server.shutdown().await.unwrap();
}
