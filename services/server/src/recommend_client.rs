//! `longview recommend`: rank candidates for a user with a running server, and manage
//! the items and profiles it stores.

use crate::cli::ClientArgs;
use crate::client::{
    Connection, MAX_MESSAGE_BYTES, connect, model_json, model_line, preview, read_input,
    status_error, usage_json,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use longview_proto::v1::{self as pb, recommend_client::RecommendClient};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(subcommand)]
    pub command: RecommendCommand,
}

#[derive(Debug, Subcommand)]
pub enum RecommendCommand {
    /// Rank candidates against a history (or a stored profile); prints a ranked table.
    Score(ScoreArgs),
    /// Store or replace items from a JSON-lines file of
    /// {"item_id", "text", "popularity", "timestamp"}.
    PutItems {
        #[command(flatten)]
        client: ClientArgs,
        /// The file ("-" for stdin).
        file: PathBuf,
    },
    /// Delete stored items by id.
    DeleteItems {
        #[command(flatten)]
        client: ClientArgs,
        ids: Vec<String>,
    },
    /// Store or replace a user's history under a profile id.
    PutProfile {
        #[command(flatten)]
        client: ClientArgs,
        profile_id: String,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Delete a stored profile.
    DeleteProfile {
        #[command(flatten)]
        client: ClientArgs,
        profile_id: String,
    },
}

/// A history given on the command line.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// An item the user liked, as text (repeatable).
    #[arg(long = "history")]
    pub texts: Vec<String>,
    /// A stored item the user liked, by id (repeatable).
    #[arg(long = "history-id")]
    pub ids: Vec<String>,
    /// JSON lines of {"item_id", "text", "weight", "timestamp"}.
    #[arg(long)]
    pub history_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// A stored profile instead of a history.
    #[arg(long, conflicts_with_all = ["texts", "ids", "history_file"])]
    pub profile: Option<String>,
    /// A candidate as "id=text" (repeatable).
    #[arg(long = "candidate")]
    pub candidates: Vec<String>,
    /// A stored candidate by id (repeatable).
    #[arg(long = "candidate-id")]
    pub candidate_ids: Vec<String>,
    /// JSON lines of {"item_id", "text", "features", "popularity", "timestamp"}.
    #[arg(long)]
    pub candidates_file: Option<PathBuf>,
    /// Blend weights, e.g. "content=1,popularity=0.3" (features by name too).
    #[arg(long)]
    pub weights: Option<String>,
    /// Show the best N (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: u32,
    /// Measure recency at this Unix time instead of now.
    #[arg(long)]
    pub now: Option<i64>,
}

/// One line of a candidates, items or history file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Line {
    item_id: String,
    text: String,
    features: HashMap<String, f64>,
    popularity: Option<u64>,
    timestamp: i64,
    weight: Option<f32>,
}

pub async fn run(args: RecommendArgs) -> anyhow::Result<()> {
    match args.command {
        RecommendCommand::Score(args) => score(args).await,
        RecommendCommand::PutItems { client, file } => put_items(&client, &file).await,
        RecommendCommand::DeleteItems { client, ids } => {
            let request = pb::DeleteItemsRequest { item_ids: ids };
            let r = service(&client).await?.delete_items(request).await;
            let r = r.map_err(status_error)?.into_inner();
            print_or_json(
                &client,
                json!({"deleted": r.deleted}),
                format!("deleted {}", r.deleted),
            )
        }
        RecommendCommand::PutProfile {
            client,
            profile_id,
            history,
        } => {
            let history = Some(pb::UserHistory {
                items: history_items(&history)?,
            });
            let request = pb::PutProfileRequest {
                profile_id,
                history,
            };
            let r = service(&client).await?.put_profile(request).await;
            let r = r.map_err(status_error)?.into_inner();
            let line = format!("stored a profile of {} items", r.items);
            print_or_json(&client, json!({"items": r.items}), line)
        }
        RecommendCommand::DeleteProfile { client, profile_id } => {
            let request = pb::DeleteProfileRequest { profile_id };
            let r = service(&client).await?.delete_profile(request).await;
            let r = r.map_err(status_error)?.into_inner();
            let line = if r.deleted {
                "deleted"
            } else {
                "no such profile"
            };
            print_or_json(&client, json!({"deleted": r.deleted}), line.to_string())
        }
    }
}

async fn service(client: &ClientArgs) -> anyhow::Result<RecommendClient<Connection>> {
    Ok(RecommendClient::new(connect(client).await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

fn print_or_json(
    client: &ClientArgs,
    value: serde_json::Value,
    line: String,
) -> anyhow::Result<()> {
    if client.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{line}");
    }
    Ok(())
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<Line>> {
    read_input(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), n + 1))
        })
        .collect()
}

fn history_items(args: &HistoryArgs) -> anyhow::Result<Vec<pb::HistoryItem>> {
    let mut items: Vec<pb::HistoryItem> = args
        .texts
        .iter()
        .map(|text| pb::HistoryItem {
            text: text.clone(),
            ..Default::default()
        })
        .chain(args.ids.iter().map(|id| pb::HistoryItem {
            item_id: id.clone(),
            ..Default::default()
        }))
        .collect();
    if let Some(file) = &args.history_file {
        items.extend(read_lines(file)?.into_iter().map(|l| pb::HistoryItem {
            item_id: l.item_id,
            text: l.text,
            weight: l.weight,
            timestamp: l.timestamp,
        }));
    }
    Ok(items)
}

fn candidates(args: &ScoreArgs) -> anyhow::Result<Vec<pb::Candidate>> {
    let mut candidates = Vec::new();
    for pair in &args.candidates {
        let (id, text) = pair
            .split_once('=')
            .with_context(|| format!("--candidate {pair:?} is not id=text"))?;
        candidates.push(pb::Candidate {
            item_id: id.trim().to_string(),
            text: text.trim().to_string(),
            ..Default::default()
        });
    }
    candidates.extend(args.candidate_ids.iter().map(|id| pb::Candidate {
        item_id: id.clone(),
        ..Default::default()
    }));
    if let Some(file) = &args.candidates_file {
        candidates.extend(read_lines(file)?.into_iter().map(|l| pb::Candidate {
            item_id: l.item_id,
            text: l.text,
            features: l.features,
            popularity: l.popularity,
            timestamp: l.timestamp,
        }));
    }
    Ok(candidates)
}

fn parse_weights(list: &str) -> anyhow::Result<HashMap<String, f64>> {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .with_context(|| format!("--weights {pair:?} is not name=number"))?;
            let value = value
                .trim()
                .parse()
                .with_context(|| format!("--weights {pair:?} is not name=number"))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

async fn score(args: ScoreArgs) -> anyhow::Result<()> {
    let candidates = candidates(&args)?;
    let texts: HashMap<String, String> = candidates
        .iter()
        .map(|c| (c.item_id.clone(), c.text.clone()))
        .collect();
    let user = match &args.profile {
        Some(id) => pb::score_request::User::ProfileId(id.clone()),
        None => pb::score_request::User::History(pb::UserHistory {
            items: history_items(&args.history)?,
        }),
    };
    let request = pb::ScoreRequest {
        user: Some(user),
        candidates,
        weights: args
            .weights
            .as_deref()
            .map(parse_weights)
            .transpose()?
            .unwrap_or_default(),
        now: args.now.unwrap_or(0),
        top_k: args.top,
        ..Default::default()
    };
    let response = service(&args.client).await?.score(request).await;
    let response = response.map_err(status_error)?.into_inner();
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&score_json(&response))?);
    } else {
        print_score(&response, &texts);
    }
    Ok(())
}

async fn put_items(client: &ClientArgs, file: &Path) -> anyhow::Result<()> {
    let items = read_lines(file)?
        .into_iter()
        .map(|l| pb::Item {
            item_id: l.item_id,
            text: l.text,
            popularity: l.popularity.unwrap_or(0),
            timestamp: l.timestamp,
        })
        .collect();
    let request = pb::PutItemsRequest { items };
    let r = service(client).await?.put_items(request).await;
    let r = r.map_err(status_error)?.into_inner();
    let cache = r.cache.unwrap_or_default();
    let line = format!(
        "stored {} items ({} encoded, {} already cached) · {}",
        r.stored,
        cache.misses,
        cache.memory_hits + cache.disk_hits,
        model_line(r.model.as_ref())
    );
    let value = json!({"stored": r.stored, "cache": cache_json(&cache), "model": model_json(r.model.as_ref()),
                       "usage": usage_json(r.usage.as_ref())});
    print_or_json(client, value, line)
}

fn cache_json(cache: &pb::EmbeddingCacheUsage) -> serde_json::Value {
    json!({"memory_hits": cache.memory_hits, "disk_hits": cache.disk_hits, "misses": cache.misses})
}

fn score_json(r: &pb::ScoreResponse) -> serde_json::Value {
    let candidates: Vec<_> = r
        .candidates
        .iter()
        .map(|c| json!({"rank": c.rank, "item_id": c.item_id, "score": c.score, "components": sorted(&c.components)}))
        .collect();
    json!({"candidates": candidates, "cold_start": r.cold_start, "candidates_scored": r.candidates_scored,
           "weights": sorted(&r.weights), "cache": cache_json(&r.cache.unwrap_or_default()),
           "model": model_json(r.model.as_ref()), "usage": usage_json(r.usage.as_ref())})
}

fn sorted(map: &HashMap<String, f64>) -> serde_json::Value {
    map.iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The built-in components first, then features by name.
fn columns(r: &pb::ScoreResponse) -> Vec<String> {
    let mut features: Vec<String> = r
        .weights
        .keys()
        .filter(|k| !longview_recommend::score::COMPONENTS.contains(&k.as_str()))
        .cloned()
        .collect();
    features.sort();
    let built_in = longview_recommend::score::COMPONENTS
        .iter()
        .map(|c| c.to_string());
    built_in.chain(features).collect()
}

fn print_score(r: &pb::ScoreResponse, texts: &HashMap<String, String>) {
    let columns = columns(r);
    let id_width = r
        .candidates
        .iter()
        .map(|c| c.item_id.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut header = format!("{:>4}  {:>8}", "rank", "score");
    for column in &columns {
        header.push_str(&format!("  {column:>10}"));
    }
    let any_text = texts.values().any(|t| !t.is_empty());
    let text_header = if any_text { "  text" } else { "" };
    println!("{header}  {:<id_width$}{text_header}", "item");
    for c in &r.candidates {
        let mut line = format!("{:>4}  {:>8.4}", c.rank, c.score);
        for column in &columns {
            match c.components.get(column) {
                Some(value) => line.push_str(&format!("  {value:>10.3}")),
                None => line.push_str(&format!("  {:>10}", "-")),
            }
        }
        line.push_str(&format!("  {:<id_width$}", c.item_id));
        if let Some(text) = texts.get(&c.item_id).filter(|t| !t.is_empty()) {
            line.push_str(&format!("  {}", preview(text, 50)));
        }
        println!("{}", line.trim_end());
    }
    if r.cold_start {
        println!(
            "cold start: no history, so popularity, recency and features ranked (content needs a history)"
        );
    }
    let cache = r.cache.unwrap_or_default();
    let weights: Vec<String> = columns
        .iter()
        .map(|c| format!("{c}={}", r.weights.get(c).copied().unwrap_or(0.0)))
        .collect();
    println!(
        "{} of {} candidates shown · weights {} · vectors: {} in memory, {} on disk, {} encoded · {}",
        r.candidates.len(),
        r.candidates_scored,
        weights.join(","),
        cache.memory_hits,
        cache.disk_hits,
        cache.misses,
        model_line(r.model.as_ref())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_and_refuse() {
        let weights = parse_weights("content=1, margin=0.5").unwrap();
        assert_eq!(weights["margin"], 0.5);
        assert!(parse_weights("content").is_err());
    }

    #[test]
    fn candidate_lines_parse() {
        let line: Line = serde_json::from_str(
            r#"{"item_id": "a", "text": "t", "features": {"x": 1.5}, "popularity": 3}"#,
        )
        .unwrap();
        assert_eq!((line.popularity, line.features["x"]), (Some(3), 1.5));
        assert!(serde_json::from_str::<Line>(r#"{"itemid": "a"}"#).is_err());
    }
}
