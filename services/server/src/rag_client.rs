//! Client commands of the Rag service: `ingest`, `search`, `ask` and `delete`.

use crate::cli::ClientArgs;
use crate::client::Connection;
use crate::client::{connect, model_line, preview, status_error};
use anyhow::Context;
use clap::{Args, ValueEnum};
use longview_proto::v1::{self as pb, rag_client::RagClient};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_stream::StreamExt;

/// Text per IngestStream message: well under the server's default request limit.
const MESSAGE_TEXT_BYTES: usize = 4 << 20;

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Text files, or directories (every file inside, recursively); each file is one
    /// document whose id is its path as given.
    pub paths: Vec<PathBuf>,
    /// JSON lines of {"id", "text", "metadata"?} ("-" for stdin).
    #[arg(long, env = "LONGVIEW_INGEST_JSONL")]
    pub jsonl: Option<PathBuf>,
    /// Metadata for every document, as key=value (repeatable).
    #[arg(long = "meta", value_parser = key_value)]
    pub metadata: Vec<(String, String)>,
    /// Documents per message of the ingest stream.
    #[arg(long, env = "LONGVIEW_INGEST_BATCH", default_value_t = 64)]
    pub batch: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RetrievalArg {
    Hybrid,
    Dense,
    Bm25,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AnswerArg {
    /// Generative when the server has a generator, else extractive.
    Auto,
    Extractive,
    Generative,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub query: String,
    #[arg(long, env = "LONGVIEW_TOP_K", default_value_t = 5)]
    pub top_k: u32,
    #[arg(long, env = "LONGVIEW_RETRIEVAL", value_enum, default_value_t = RetrievalArg::Hybrid)]
    pub mode: RetrievalArg,
    /// Only passages whose document metadata has key=value (repeatable; all must match).
    #[arg(long, value_parser = key_value)]
    pub filter: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub question: String,
    #[arg(long, env = "LONGVIEW_TOP_K", default_value_t = 5)]
    pub top_k: u32,
    #[arg(long, env = "LONGVIEW_ANSWER", value_enum, default_value_t = AnswerArg::Auto)]
    pub answer: AnswerArg,
    #[arg(long, env = "LONGVIEW_RETRIEVAL", value_enum, default_value_t = RetrievalArg::Hybrid)]
    pub retrieval: RetrievalArg,
    /// Only passages whose document metadata has key=value (repeatable; all must match).
    #[arg(long, value_parser = key_value)]
    pub filter: Vec<(String, String)>,
    /// Longest generated answer in tokens (0: server default).
    #[arg(long, env = "LONGVIEW_MAX_NEW_TOKENS", default_value_t = 0)]
    pub max_new_tokens: u32,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Ids of the documents to remove.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not key=value"))?;
    Ok((key.to_string(), value.to_string()))
}

async fn client(args: &ClientArgs) -> anyhow::Result<RagClient<Connection>> {
    Ok(RagClient::new(connect(args).await?).max_encoding_message_size(MESSAGE_TEXT_BYTES * 2))
}

pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    for path in &args.paths {
        collect_files(path, &mut documents)?;
    }
    if let Some(jsonl) = &args.jsonl {
        documents.extend(read_jsonl(jsonl)?);
    }
    anyhow::ensure!(
        !documents.is_empty(),
        "nothing to ingest: give files, a directory or --jsonl"
    );
    for document in &mut documents {
        document.metadata.extend(args.metadata.iter().cloned());
    }
    let count = documents.len();
    let messages = batches(documents, args.batch.max(1));
    let response = client(&args.client)
        .await?
        .ingest_stream(tokio_stream::iter(messages))
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        let usage = response.usage.unwrap_or_default();
        let out = json!({"documents": response.documents, "chunks": response.chunks, "chunks_replaced": response.chunks_replaced, "tokens": usage.tokens_total});
        println!("{out}");
    } else {
        println!(
            "{count} documents → {} chunks ({} replaced) · {} tokens · {}",
            response.chunks,
            response.chunks_replaced,
            response.usage.unwrap_or_default().tokens_total,
            model_line(response.model.as_ref())
        );
    }
    Ok(())
}

fn collect_files(path: &Path, documents: &mut Vec<pb::RagDocument>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            collect_files(&entry, documents)?;
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (only UTF-8 text files)", path.display()))?;
    documents.push(pb::RagDocument {
        id: path.display().to_string(),
        text,
        metadata: HashMap::new(),
    });
    Ok(())
}

#[derive(serde::Deserialize)]
struct JsonDocument {
    id: String,
    text: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<pb::RagDocument>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            let d: JsonDocument = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", path.display(), n + 1))?;
            Ok(pb::RagDocument {
                id: d.id,
                text: d.text,
                metadata: d.metadata,
            })
        })
        .collect()
}

/// Stream messages of at most `per_message` documents and about [`MESSAGE_TEXT_BYTES`].
fn batches(documents: Vec<pb::RagDocument>, per_message: usize) -> Vec<pb::IngestRequest> {
    let mut messages = vec![pb::IngestRequest::default()];
    let mut bytes = 0;
    for document in documents {
        let current = messages.last().map_or(0, |m| m.documents.len());
        if current > 0
            && (current >= per_message || bytes + document.text.len() > MESSAGE_TEXT_BYTES)
        {
            messages.push(pb::IngestRequest::default());
            bytes = 0;
        }
        bytes += document.text.len();
        if let Some(message) = messages.last_mut() {
            message.documents.push(document);
        }
    }
    messages
}

fn retrieval(mode: RetrievalArg) -> pb::RetrievalMode {
    match mode {
        RetrievalArg::Hybrid => pb::RetrievalMode::Hybrid,
        RetrievalArg::Dense => pb::RetrievalMode::Dense,
        RetrievalArg::Bm25 => pb::RetrievalMode::Bm25,
    }
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let request = pb::SearchRequest {
        query: args.query.clone(),
        top_k: args.top_k,
        mode: retrieval(args.mode) as i32,
        filter: args.filter.iter().cloned().collect(),
    };
    let response = client(&args.client)
        .await?
        .search(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        let passages: Vec<_> = response.passages.iter().map(passage_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"passages": passages}))?
        );
        return Ok(());
    }
    for (n, passage) in response.passages.iter().enumerate() {
        println!("{}", passage_line(n + 1, passage, Some(passage.score)));
    }
    if response.passages.is_empty() {
        println!("no stored passage matched");
    }
    Ok(())
}

pub async fn ask(args: AskArgs) -> anyhow::Result<()> {
    let mode = match args.answer {
        AnswerArg::Auto => pb::AnswerMode::Unspecified,
        AnswerArg::Extractive => pb::AnswerMode::Extractive,
        AnswerArg::Generative => pb::AnswerMode::Generative,
    };
    let request = pb::AskRequest {
        question: args.question.clone(),
        top_k: args.top_k,
        filter: args.filter.iter().cloned().collect(),
        mode: mode as i32,
        max_new_tokens: args.max_new_tokens,
        retrieval: retrieval(args.retrieval) as i32,
    };
    let mut events = client(&args.client)
        .await?
        .ask(request)
        .await
        .map_err(status_error)?
        .into_inner();
    let (mut answer, mut done) = (String::new(), None);
    let mut stdout = std::io::stdout();
    while let Some(event) = events.next().await {
        match event.map_err(status_error)?.event {
            Some(pb::ask_response::Event::Token(piece)) => {
                if !args.client.json {
                    print!("{piece}");
                    stdout.flush()?;
                }
                answer.push_str(&piece);
            }
            Some(pb::ask_response::Event::Done(end)) => done = Some(end),
            None => {}
        }
    }
    let done = done.context("the answer stream ended without its citations")?;
    if args.client.json {
        let citations: Vec<_> = done.citations.iter().map(citation_json).collect();
        let passages: Vec<_> = done.passages.iter().map(passage_json).collect();
        let out = json!({"answer": answer, "citations": citations, "passages": passages});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_sources(&answer, &done);
    Ok(())
}

fn print_sources(answer: &str, done: &pb::AskDone) {
    if answer.is_empty() {
        println!("(no stored passage answers this question)");
    } else {
        println!();
    }
    if !done.citations.is_empty() {
        println!("\nCited:");
    }
    for citation in &done.citations {
        let span = citation.span.unwrap_or_default();
        println!(
            "  [{}] {} chars {}–{}: \"{}\"",
            citation.passage,
            citation.document_id,
            span.start,
            span.end,
            preview(&citation.text, 100)
        );
    }
    println!("{}", model_line(done.model.as_ref()));
}

fn passage_line(n: usize, passage: &pb::Passage, score: Option<f32>) -> String {
    let span = passage.span.unwrap_or_default();
    let score = score.map(|s| format!("{s:.4}  ")).unwrap_or_default();
    format!(
        "[{n}] {score}{} chars {}–{}\n    {}",
        passage.document_id,
        span.start,
        span.end,
        preview(&passage.text, 160)
    )
}

fn span_json(span: Option<pb::Span>) -> serde_json::Value {
    let s = span.unwrap_or_default();
    json!({"start": s.start, "end": s.end, "byte_start": s.byte_start, "byte_end": s.byte_end})
}

fn passage_json(p: &pb::Passage) -> serde_json::Value {
    json!({"document_id": p.document_id, "span": span_json(p.span), "score": p.score, "text": p.text})
}

fn citation_json(c: &pb::Citation) -> serde_json::Value {
    json!({"document_id": c.document_id, "span": span_json(c.span), "passage": c.passage, "text": c.text})
}

pub async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let request = pb::DeleteRequest {
        document_ids: args.ids.clone(),
    };
    let response = client(&args.client)
        .await?
        .delete(request)
        .await
        .map_err(status_error)?
        .into_inner();
    println!(
        "{} documents → {} chunks deleted",
        args.ids.len(),
        response.chunks_deleted
    );
    Ok(())
}
