//! Answers streamed as pieces, then one AskDone with the citations: extractive (quoted
//! sentences) or generative (a language model over numbered passages).

use crate::RagError;
use crate::extract::{self, Sentence};
use crate::generator::TextGenerator;
use crate::prompt;
use crate::record::Hit;
use futures::StreamExt;
use longview_core::{TokenLimit, Usage};
use longview_proto::v1 as pb;
use longview_worker::{Worker, wire};
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Status;

/// Passages a generative prompt carries.
const PROMPT_PASSAGES: usize = 5;

/// Where answer events go; a closed channel means the client left.
pub type Events = mpsc::Sender<Result<pb::AskResponse, Status>>;

/// What a question was asked with, once retrieval is done.
pub struct Question {
    pub text: String,
    pub vector: Vec<f32>,
    pub usage: Usage,
    pub hits: Vec<Hit>,
}

/// Streams an extractive answer: sentences of the passages closest to the question.
pub async fn extractive(
    worker: &Worker,
    question: Question,
    encoder: pb::ModelInfo,
    events: &Events,
) -> Result<(), RagError> {
    let candidates = extract::candidates(&question.hits);
    let chosen = if candidates.is_empty() {
        Vec::new()
    } else {
        let info = worker.loaded()?.info.clone();
        let limit = TokenLimit {
            max_tokens: info
                .trained_seq_len
                .saturating_sub(info.special_tokens)
                .max(1),
            truncate: true,
        };
        let texts = candidates.iter().map(|s| s.text.clone()).collect();
        let embedded = worker.embed_texts(texts, limit).await?;
        let similarity: Vec<f32> = embedded
            .iter()
            .map(|e| extract::similarity(&question.vector, &e.vector))
            .collect();
        extract::choose(candidates, &similarity)
    };
    for (i, sentence) in chosen.iter().enumerate() {
        let piece = if i == 0 {
            sentence.text.clone()
        } else {
            format!(" {}", sentence.text)
        };
        if !send(events, token(piece)).await {
            return Ok(());
        }
    }
    let citations = chosen.iter().map(sentence_citation).collect();
    let done = done(citations, &question, encoder, pb::AnswerMode::Extractive);
    send(events, done).await;
    Ok(())
}

/// Streams a generated answer over the numbered passages, citing those it names (or all
/// it was given, when it names none).
pub async fn generative(
    generator: Arc<dyn TextGenerator>,
    question: Question,
    max_new_tokens: usize,
    events: &Events,
) -> Result<(), RagError> {
    let (name, version) = generator.model();
    let model = pb::ModelInfo {
        name,
        version,
        ..Default::default()
    };
    let passages = &question.hits[..question.hits.len().min(PROMPT_PASSAGES)];
    let mut answer = String::new();
    if !passages.is_empty() {
        let mut pieces = generator
            .generate(prompt::build(&question.text, passages), max_new_tokens)
            .await?;
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            answer.push_str(&piece);
            if !send(events, token(piece)).await {
                return Ok(());
            }
        }
    }
    let mut numbers = prompt::cited(&answer, passages.len());
    if numbers.is_empty() {
        numbers = (1..=passages.len()).collect();
    }
    let citations = numbers
        .into_iter()
        .map(|n| passage_citation(&passages[n - 1], n))
        .collect();
    send(
        events,
        done(citations, &question, model, pb::AnswerMode::Generative),
    )
    .await;
    Ok(())
}

/// A stored chunk as the wire shows it.
pub fn passage(hit: &Hit) -> pb::Passage {
    pb::Passage {
        document_id: hit.record.document_id.clone(),
        span: Some(wire::span(hit.record.span)),
        text: hit.record.text.clone(),
        score: hit.score,
    }
}

fn sentence_citation(sentence: &Sentence) -> pb::Citation {
    pb::Citation {
        document_id: sentence.document_id.clone(),
        span: Some(wire::span(sentence.span)),
        text: sentence.text.clone(),
        passage: sentence.passage as u32 + 1,
    }
}

fn passage_citation(hit: &Hit, number: usize) -> pb::Citation {
    pb::Citation {
        document_id: hit.record.document_id.clone(),
        span: Some(wire::span(hit.record.span)),
        text: hit.record.text.clone(),
        passage: number as u32,
    }
}

fn token(piece: String) -> pb::AskResponse {
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Token(piece)),
    }
}

fn done(
    citations: Vec<pb::Citation>,
    question: &Question,
    model: pb::ModelInfo,
    mode: pb::AnswerMode,
) -> pb::AskResponse {
    let done = pb::AskDone {
        citations,
        passages: question.hits.iter().map(passage).collect(),
        model: Some(model),
        usage: Some(wire::usage(question.usage)),
        mode: mode as i32,
    };
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Done(done)),
    }
}

/// Sends one event; false when the client has gone.
async fn send(events: &Events, event: pb::AskResponse) -> bool {
    events.send(Ok(event)).await.is_ok()
}
