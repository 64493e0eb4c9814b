//! Client commands: call a running server and print readable results (or JSON).

use crate::cli::{AggregationArg, ClassifyArgs, ClientArgs, EmbedArgs};
use anyhow::Context;
use longview_proto::v1::{self as pb, classify_client::ClassifyClient, embed_client::EmbedClient};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Our own clients accept what our server accepts.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Piece size for the streaming classify RPC.
const STREAM_PIECE_BYTES: usize = 1 << 20;

/// A channel to the server (TLS for https:// addresses) that sends the API key, if any.
pub type Connection = InterceptedService<Channel, ApiKey>;

pub(crate) async fn connect(args: &ClientArgs) -> anyhow::Result<Connection> {
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .with_context(|| format!("invalid server address {:?}", args.server))?;
    let tls_files = args.ca.is_some() || args.cert.is_some();
    if args.server.starts_with("https://") || tls_files {
        let tls = crate::tls::client(
            args.ca.as_deref(),
            args.cert.as_deref(),
            args.key.as_deref(),
        )?;
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {}", args.server))?;
    Ok(InterceptedService::new(
        channel,
        ApiKey::new(args.api_key.as_deref())?,
    ))
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone, Debug)]
pub struct ApiKey(Option<MetadataValue<Ascii>>);

impl ApiKey {
    pub fn new(key: Option<&str>) -> anyhow::Result<Self> {
        let value = key
            .map(|key| format!("Bearer {key}").parse())
            .transpose()
            .context("the API key must be printable ASCII")?;
        Ok(Self(value))
    }
}

impl Interceptor for ApiKey {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) fn read_input(file: &Path) -> anyhow::Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

pub async fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let mut texts = args.texts;
    if let Some(file) = &args.file {
        texts.extend(
            read_input(file)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    let truncation = if args.no_truncate {
        pb::Truncation::None
    } else {
        pb::Truncation::End
    };
    let request = pb::EmbedRequest {
        texts: texts.clone(),
        truncation: truncation as i32,
        max_tokens: args.max_tokens.unwrap_or(0),
    };
    let mut client =
        EmbedClient::new(connect(&args.client).await?).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let response = client
        .embed(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&embed_json(&texts, &response))?
        );
    } else {
        print_embed(&texts, &response);
    }
    Ok(())
}

fn embed_json(texts: &[String], response: &pb::EmbedResponse) -> serde_json::Value {
    let items: Vec<_> = texts
        .iter()
        .zip(&response.embeddings)
        .map(|(text, e)| json!({"text": text, "embedding": e.values, "usage": usage_json(e.usage.as_ref())}))
        .collect();
    json!({"model": model_json(response.model.as_ref()), "dimensions": response.dimensions, "embeddings": items, "usage": usage_json(response.usage.as_ref())})
}

fn print_embed(texts: &[String], response: &pb::EmbedResponse) {
    for (text, embedding) in texts.iter().zip(&response.embeddings) {
        let head: Vec<String> = embedding
            .values
            .iter()
            .take(4)
            .map(|v| format!("{v:+.4}"))
            .collect();
        let usage = embedding.usage.unwrap_or_default();
        let truncated = if usage.truncated {
            format!(", {} dropped", usage.tokens_dropped)
        } else {
            String::new()
        };
        println!(
            "{:>4} tokens{truncated}  [{} …]  {}",
            usage.tokens_seen,
            head.join(", "),
            preview(text, 60)
        );
    }
    let count = response.embeddings.len();
    println!(
        "{count} vector{} of {} dimensions · {}",
        if count == 1 { "" } else { "s" },
        response.dimensions,
        model_line(response.model.as_ref())
    );
}

pub async fn classify(args: ClassifyArgs) -> anyhow::Result<()> {
    let text = match (&args.file, &args.text) {
        (Some(file), _) => read_input(file)?,
        (None, Some(text)) => text.clone(),
        (None, None) => anyhow::bail!("give the document as an argument or with --file"),
    };
    let options = classify_options(&args);
    let mut client = ClassifyClient::new(connect(&args.client).await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let response = if args.stream {
        let pieces = stream_pieces(&text, options);
        client.classify_stream(tokio_stream::iter(pieces)).await
    } else {
        client
            .classify(pb::ClassifyRequest {
                text: text.clone(),
                options: Some(options),
            })
            .await
    };
    let response = response.map_err(status_error)?.into_inner();
    if args.client.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&classify_json(&text, &response))?
        );
    } else {
        print_classify(&text, &response);
    }
    Ok(())
}

fn classify_options(args: &ClassifyArgs) -> pb::ClassifyOptions {
    let labels = match (&args.labels, &args.label_set) {
        (_, Some(name)) => pb::classify_options::Labels::LabelSet(name.clone()),
        (Some(list), None) => pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
            labels: parse_labels(list),
        }),
        (None, None) => pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels::default()),
    };
    let aggregation = match args.aggregation {
        AggregationArg::Mean => pb::Aggregation::Mean,
        AggregationArg::Max => pb::Aggregation::Max,
        AggregationArg::Attention => pb::Aggregation::Attention,
    };
    pb::ClassifyOptions {
        labels: Some(labels),
        multi_label: args.multi_label,
        aggregation: aggregation as i32,
        windows: Some(pb::WindowOptions {
            size: args.window,
            overlap: args.overlap,
        }),
        top_evidence: args.top_evidence,
        include_windows: false,
    }
}

/// "markets, sports=games and athletes" → labels with optional descriptions.
fn parse_labels(list: &str) -> Vec<pb::Label> {
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| match item.split_once('=') {
            Some((name, description)) => pb::Label {
                name: name.trim().into(),
                description: description.trim().into(),
            },
            None => pb::Label {
                name: item.trim().into(),
                description: String::new(),
            },
        })
        .collect()
}

/// Splits the text into pieces on character boundaries; options ride on the first.
fn stream_pieces(text: &str, options: pb::ClassifyOptions) -> Vec<pb::ClassifyStreamRequest> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut options = Some(options);
    while !rest.is_empty() || pieces.is_empty() {
        let mut cut = rest.len().min(STREAM_PIECE_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(pb::ClassifyStreamRequest {
            options: options.take(),
            text_piece: rest[..cut].to_string(),
        });
        rest = &rest[cut..];
    }
    pieces
}

fn classify_json(text: &str, r: &pb::ClassifyResponse) -> serde_json::Value {
    let evidence: Vec<_> = r
        .evidence
        .iter()
        .map(|e| {
            let span = e.span.unwrap_or_default();
            json!({"label": e.label, "score": e.score, "window": e.window_index, "start": span.start, "end": span.end,
                   "text": &text[span.byte_start as usize..span.byte_end as usize]})
        })
        .collect();
    let scores: Vec<_> = r
        .scores
        .iter()
        .map(|s| json!({"label": s.label, "score": s.score}))
        .collect();
    json!({"predicted": r.predicted, "scores": scores, "evidence": evidence, "windows": r.window_count,
           "model": model_json(r.model.as_ref()), "usage": usage_json(r.usage.as_ref())})
}

fn print_classify(text: &str, r: &pb::ClassifyResponse) {
    let width = r
        .scores
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    for score in &r.scores {
        let bar = "█".repeat((score.score * 30.0).round() as usize);
        let line = format!("{:<width$}  {:.3}  {bar}", score.label, score.score);
        println!("{}", line.trim_end());
    }
    println!("predicted: {}", r.predicted.join(", "));
    println!("evidence:");
    for e in &r.evidence {
        let span = e.span.unwrap_or_default();
        let excerpt = &text[span.byte_start as usize..span.byte_end as usize];
        println!(
            "  {} {:.3}  chars {}..{}  \"{}\"",
            e.label,
            e.score,
            span.start,
            span.end,
            preview(excerpt, 80)
        );
    }
    let usage = r.usage.unwrap_or_default();
    println!(
        "read {} of {} tokens in {} window{} ({} dropped) · {}",
        usage.tokens_seen,
        usage.tokens_total,
        r.window_count,
        if r.window_count == 1 { "" } else { "s" },
        usage.tokens_dropped,
        model_line(r.model.as_ref())
    );
}

pub(crate) fn preview(text: &str, chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

pub(crate) fn model_line(model: Option<&pb::ModelInfo>) -> String {
    let Some(m) = model else { return String::new() };
    match m.head.as_str() {
        "" => format!("{} ({})", m.name, m.version),
        head => format!(
            "{} ({}) + head {head} ({})",
            m.name, m.version, m.head_version
        ),
    }
}

pub(crate) fn model_json(model: Option<&pb::ModelInfo>) -> serde_json::Value {
    let m = model.cloned().unwrap_or_default();
    let mut json = json!({"name": m.name, "version": m.version});
    if !m.head.is_empty() {
        json["head"] = json!(m.head);
        json["head_version"] = json!(m.head_version);
    }
    json
}

pub(crate) fn usage_json(usage: Option<&pb::Usage>) -> serde_json::Value {
    let u = usage.copied().unwrap_or_default();
    json!({"tokens_total": u.tokens_total, "tokens_seen": u.tokens_seen, "tokens_dropped": u.tokens_dropped, "truncated": u.truncated})
}

pub async fn sentiment(args: crate::cli::SentimentArgs) -> anyhow::Result<()> {
    let mut texts = args.texts.clone();
    if let Some(file) = &args.file {
        texts.push(read_input(file)?);
    }
    let documents = texts
        .iter()
        .enumerate()
        .map(|(i, text)| pb::SentimentDocument {
            id: i.to_string(),
            text: text.clone(),
            entities: args.entities.clone(),
        })
        .collect();
    let request = pb::SentimentRequest {
        documents,
        include_sentences: args.sentences,
        include_entities: true,
    };
    let mut client = pb::sentiment_client::SentimentClient::new(connect(&args.client).await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let response = client
        .analyze(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.client.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&sentiment_json(&texts, &response))?
        );
    } else {
        print_sentiment(&texts, &response);
    }
    Ok(())
}

fn probabilities_line(scores: &[pb::LabelScore]) -> String {
    scores
        .iter()
        .map(|s| format!("{} {:.2}", s.label, s.score))
        .collect::<Vec<_>>()
        .join("  ")
}

fn print_sentiment(texts: &[String], response: &pb::SentimentResponse) {
    for (text, document) in texts.iter().zip(&response.documents) {
        println!(
            "{:<8} ({})  {}",
            document.label,
            probabilities_line(&document.probabilities),
            preview(text, 70)
        );
        for sentence in &document.sentences {
            let span = sentence.span.unwrap_or_default();
            let excerpt = &text[span.byte_start as usize..span.byte_end as usize];
            println!("  sentence  {:<8} {}", sentence.label, preview(excerpt, 70));
        }
        for entity in &document.entities {
            println!(
                "  entity    {:<8} {:<10} ({})",
                entity.label,
                entity.entity,
                probabilities_line(&entity.probabilities)
            );
        }
    }
    println!("{}", model_line(response.model.as_ref()));
}

fn sentiment_json(texts: &[String], response: &pb::SentimentResponse) -> serde_json::Value {
    let scores = |s: &[pb::LabelScore]| -> serde_json::Value {
        s.iter()
            .map(|s| (s.label.clone(), json!(s.score)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let documents: Vec<_> = texts
        .iter()
        .zip(&response.documents)
        .map(|(text, d)| {
            let sentences: Vec<_> = d
                .sentences
                .iter()
                .map(|s| {
                    let span = s.span.unwrap_or_default();
                    json!({"label": s.label, "probabilities": scores(&s.probabilities), "start": span.start, "end": span.end,
                           "text": &text[span.byte_start as usize..span.byte_end as usize]})
                })
                .collect();
            let entities: Vec<_> = d
                .entities
                .iter()
                .map(|e| json!({"entity": e.entity, "label": e.label, "probabilities": scores(&e.probabilities), "mentions": e.mentions.len()}))
                .collect();
            json!({"label": d.label, "probabilities": scores(&d.probabilities), "sentences": sentences, "entities": entities,
                   "usage": usage_json(d.usage.as_ref())})
        })
        .collect();
    json!({"documents": documents, "model": model_json(response.model.as_ref()), "usage": usage_json(response.usage.as_ref())})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_descriptions() {
        let labels = parse_labels("markets, sports=games and athletes,,politics");
        let names: Vec<_> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["markets", "sports", "politics"]);
        assert_eq!(labels[1].description, "games and athletes");
    }

    #[test]
    fn stream_pieces_split_on_char_boundaries() {
        let text = "é".repeat(STREAM_PIECE_BYTES);
        let pieces = stream_pieces(&text, pb::ClassifyOptions::default());
        assert!(pieces[0].options.is_some() && pieces[1].options.is_none());
        let joined: String = pieces.iter().map(|p| p.text_piece.as_str()).collect();
        assert_eq!(joined, text);
    }
}
