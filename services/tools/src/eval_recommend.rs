//! `longview eval recommend`: MovieLens-100K, leave-last-out per user, every movie the
//! user has not rated as a candidate. HR@10 and NDCG@10 for popularity, content alone,
//! popularity with recency, and the full blend; every method's settings are tuned on the
//! validation item (the second-to-last), never on the test item (the last).

use crate::ModelArgs;
use crate::chart::{Series, grouped_bars_to};
use crate::metrics::expected_hit_and_ndcg;
use crate::movielens::{self, Holdout, MovieLens};
use crate::recommend_features::{HISTORY_HALF_LIVES, QueryFeatures, RECENCY_HALF_LIVES, features};
use crate::recommend_model::fit_logistic;
use clap::Args;
use longview_core::TokenLimit;
use longview_recommend::ScoringDefaults;
use longview_recommend::score::{self, Components, Weights};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// Blended NDCG@10 must reach this multiple of popularity's.
const GOAL: f64 = 1.2;
/// The cut-off of HR@k and NDCG@k.
const K: usize = 10;
/// Weights the tuning tries for popularity and recency (content's is fixed at 1: only
/// ratios matter to a ranking).
const GRID: [f64; 12] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];

#[derive(Debug, Args)]
pub struct EvalRecommendArgs {
    /// Where the dataset is cached between runs.
    #[arg(long, env = "LONGVIEW_EVAL_CACHE", default_value = "target/eval-cache")]
    pub cache_dir: PathBuf,
    /// Where the report (recommend.md, recommend.png) is written.
    #[arg(long, env = "LONGVIEW_EVAL_OUT", default_value = "reports")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A ranking: blend weights and which half-lives (indices into the tuning grids).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blend {
    pub content: f64,
    pub popularity: f64,
    pub recency: f64,
    pub history: usize,
    pub recency_half_life: usize,
}

impl Blend {
    pub fn weights(&self) -> Weights {
        Weights::new(self.content, self.popularity, self.recency)
    }

    fn describe(&self) -> String {
        let mut parts = vec![format!(
            "content {} · popularity {} · recency {}",
            self.content, self.popularity, self.recency
        )];
        if self.content != 0.0 {
            let days = HISTORY_HALF_LIVES[self.history].map_or("none".into(), |d| format!("{d} d"));
            parts.push(format!("history half-life {days}"));
        }
        if self.recency != 0.0 {
            parts.push(format!(
                "recency half-life {} d",
                RECENCY_HALF_LIVES[self.recency_half_life]
            ));
        }
        parts.join(" · ")
    }
}

/// Mean HR@K and NDCG@K over queries.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    pub hit: f64,
    pub ndcg: f64,
}

struct Method {
    name: &'static str,
    blend: Blend,
    validation: Quality,
    test: Quality,
}

pub async fn eval_recommend(args: EvalRecommendArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data = movielens::load(&args.cache_dir)?;
    let worker = args.model.worker().await?;
    let vectors = embed_movies(&worker, &data).await?;
    let encoded = started.elapsed().as_secs_f64();
    let validation = features(
        &data,
        &vectors,
        &movielens::queries(&data, Holdout::Validation),
    );
    let test = features(&data, &vectors, &movielens::queries(&data, Holdout::Test));
    tracing::info!(
        seconds = started.elapsed().as_secs_f64() - encoded,
        "features ready"
    );
    let methods: Vec<Method> = tuned(&validation)
        .into_iter()
        .map(|(name, blend)| Method {
            name,
            validation: quality(&validation, &blend),
            test: quality(&test, &blend),
            blend,
        })
        .collect();
    let model = worker.loaded()?.info.clone();
    let facts = Facts {
        data: &data,
        validation: validation.len(),
        test: &test,
        model: format!("{} ({})", model.name, model.version),
        encode_seconds: encoded,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let report = report(&methods, &facts);
    println!("{report}");
    std::fs::create_dir_all(&args.out_dir)?;
    std::fs::write(args.out_dir.join("recommend.md"), &report)?;
    chart(&methods, &args.out_dir.join("recommend.png"))?;
    println!(
        "wrote {}",
        args.out_dir.join("recommend.{md,png}").display()
    );
    Ok(())
}

/// One vector per movie from its title, year and genres, read as the service reads items.
pub async fn embed_movies(
    worker: &longview_worker::Worker,
    data: &MovieLens,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let info = worker.loaded()?.info.clone();
    let limit = TokenLimit {
        max_tokens: info.trained_seq_len.saturating_sub(info.special_tokens),
        truncate: true,
    };
    let texts = data.movies.iter().map(|m| m.text()).collect();
    let embedded = worker.embed_texts(texts, limit).await?;
    Ok(embedded.into_iter().map(|e| e.vector).collect())
}

/// Each method with its settings tuned on validation NDCG@K.
fn tuned(validation: &[QueryFeatures]) -> Vec<(&'static str, Blend)> {
    let popularity = Blend {
        content: 0.0,
        popularity: 1.0,
        recency: 0.0,
        history: 0,
        recency_half_life: 0,
    };
    let content = best(
        validation,
        (0..HISTORY_HALF_LIVES.len()).map(|history| Blend {
            content: 1.0,
            popularity: 0.0,
            history,
            ..popularity
        }),
    );
    let trend = best(
        validation,
        recency_grid().map(|(recency, recency_half_life)| Blend {
            recency,
            recency_half_life,
            ..popularity
        }),
    );
    let blended = best(validation, blend_grid());
    let logistic = fit_logistic(validation, blended.history, blended.recency_half_life);
    let mut methods = vec![
        ("popularity", popularity),
        ("content only", content),
        ("popularity + recency", trend),
        ("blended (grid)", blended),
        ("blended (logistic)", logistic),
    ];
    methods.extend(server_defaults().map(|b| ("blended (server defaults)", b)));
    methods
}

/// What a server without --recommend-* flags scores with, when its half-lives are on the
/// tuning grids (they are chosen from them).
fn server_defaults() -> Option<Blend> {
    let defaults = ScoringDefaults::default();
    let history = HISTORY_HALF_LIVES
        .iter()
        .position(|&d| d == defaults.history_half_life_days)?;
    let recency_half_life = RECENCY_HALF_LIVES
        .iter()
        .position(|&d| d == defaults.recency_half_life_days)?;
    Some(Blend {
        content: defaults.weights.content,
        popularity: defaults.weights.popularity,
        recency: defaults.weights.recency,
        history,
        recency_half_life,
    })
}

fn recency_grid() -> impl Iterator<Item = (f64, usize)> {
    GRID.into_iter()
        .flat_map(|w| (0..RECENCY_HALF_LIVES.len()).map(move |h| (w, h)))
}

fn blend_grid() -> impl Iterator<Item = Blend> {
    (0..HISTORY_HALF_LIVES.len()).flat_map(|history| {
        GRID.into_iter().flat_map(move |popularity| {
            recency_grid().map(move |(recency, recency_half_life)| Blend {
                content: 1.0,
                popularity,
                recency,
                history,
                recency_half_life,
            })
        })
    })
}

/// The blend with the best NDCG@K; the first of equals (the simpler, by grid order).
fn best(features: &[QueryFeatures], blends: impl Iterator<Item = Blend>) -> Blend {
    let mut best: Option<(Blend, f64)> = None;
    for blend in blends {
        let ndcg = quality(features, &blend).ndcg;
        if best.is_none_or(|(_, b)| ndcg > b + 1e-12) {
            best = Some((blend, ndcg));
        }
    }
    best.map(|(b, _)| b).unwrap_or(Blend {
        content: 1.0,
        popularity: 0.0,
        recency: 0.0,
        history: 0,
        recency_half_life: 0,
    })
}

/// Mean HR@K and NDCG@K of `blend` over the queries, scoring with the service's blend.
pub fn quality(features: &[QueryFeatures], blend: &Blend) -> Quality {
    let weights = blend.weights();
    let no_features = BTreeMap::new();
    let (hit, ndcg) = features
        .par_iter()
        .map(|q| {
            let (content, recency) = (
                &q.content[blend.history],
                &q.recency[blend.recency_half_life],
            );
            let score_of = |i: usize| {
                let parts = Components {
                    content: Some(f64::from(content[i])),
                    popularity: f64::from(q.popularity[i]),
                    recency: f64::from(recency[i]),
                };
                score::blend(&parts, &no_features, &weights)
            };
            let target = score_of(q.target);
            let (mut greater, mut ties) = (0, 0);
            for i in (0..q.candidates()).filter(|&i| i != q.target) {
                let s = score_of(i);
                greater += usize::from(s > target);
                ties += usize::from(s == target);
            }
            expected_hit_and_ndcg(greater, ties, K)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let n = features.len().max(1) as f64;
    Quality {
        hit: hit / n,
        ndcg: ndcg / n,
    }
}

struct Facts<'a> {
    data: &'a MovieLens,
    validation: usize,
    test: &'a [QueryFeatures],
    model: String,
    encode_seconds: f64,
    total_seconds: f64,
}

fn report(methods: &[Method], facts: &Facts<'_>) -> String {
    let mut md = String::new();
    let candidates: usize = facts.test.iter().map(QueryFeatures::candidates).sum();
    let mean_candidates = candidates as f64 / facts.test.len().max(1) as f64;
    let _ = writeln!(md, "# Recommendation: MovieLens-100K, leave-last-out\n");
    let _ = writeln!(
        md,
        "{} ratings by {} users of {} movies (RecBole's copy, `recbole==1.2.1` on PyPI). Per user, \
         ratings in time order: the last is the test item, the one before it the validation item. \
         Candidates: every movie the user had not rated before the held-out one ({mean_candidates:.0} \
         per user on average, the held-out movie among them); no sampling. Popularity and recency \
         use only ratings made before the held-out one. Content reads \"title (year). genres.\" with \
         {}. Ties count at their expected position. Every method's settings were chosen on the \
         validation items ({} users) by NDCG@{K}; the test items ({} users) were not looked at. \
         Produced by `longview eval recommend` in {:.0} s ({:.0} s loading and encoding) on a \
         2-core machine.\n",
        facts.data.ratings.len(),
        facts.data.users,
        facts.data.movies.len(),
        facts.model,
        facts.validation,
        facts.test.len(),
        facts.total_seconds,
        facts.encode_seconds,
    );
    let popularity = methods.first().map_or(f64::NAN, |m| m.test.ndcg);
    let _ = writeln!(
        md,
        "| method | HR@{K} | NDCG@{K} | NDCG vs popularity | validation NDCG@{K} | settings (tuned on validation) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for m in methods {
        let _ = writeln!(
            md,
            "| {} | {:.4} | **{:.4}** | {:.2}x | {:.4} | {} |",
            m.name,
            m.test.hit,
            m.test.ndcg,
            m.test.ndcg / popularity,
            m.validation.ndcg,
            m.blend.describe()
        );
    }
    let blended = methods
        .iter()
        .find(|m| m.name == "blended (grid)")
        .map_or(f64::NAN, |m| m.test.ndcg / popularity);
    let verdict = if blended >= GOAL { "met" } else { "NOT met" };
    let _ = writeln!(
        md,
        "\nGoal: blended NDCG@{K} ≥ {GOAL}x popularity on the test items: **{blended:.2}x, {verdict}**."
    );
    md
}

fn chart(methods: &[Method], path: &std::path::Path) -> anyhow::Result<()> {
    let groups: Vec<String> = methods.iter().map(|m| m.name.to_string()).collect();
    let series = [
        Series {
            name: "HR@10",
            values: methods.iter().map(|m| m.test.hit).collect(),
        },
        Series {
            name: "NDCG@10",
            values: methods.iter().map(|m| m.test.ndcg).collect(),
        },
    ];
    let top = methods.iter().map(|m| m.test.hit).fold(0.0, f64::max);
    let x_max = ((top * 1.2) * 20.0).ceil() / 20.0;
    grouped_bars_to(
        path,
        "MovieLens-100K, leave-last-out, all unrated movies as candidates",
        "test set, higher is better",
        &groups,
        &series,
        x_max.max(0.05),
    )
}
