//! Longview's offline commands: `train` (heads on frozen encoder features), `eval`
//! (measured quality on real data, written up as markdown and a chart) and `bench`
//! (speed and memory, printed beside their references).
//!
//! Tools use the same worker, windows and heads as the server, so what they measure is
//! what the server does. Must not be a dependency of any serving crate.

pub mod bench;
mod bench_batching;
mod bench_encoder;
pub mod bench_generate;
mod bench_monitor;
mod bench_rag;
mod bench_recommend;
pub mod chart;
pub mod eval_classify;
pub mod eval_rag;
pub mod eval_recommend;
pub mod features;
pub mod metrics;
pub mod movielens;
pub mod recommend_features;
pub mod recommend_model;
pub mod sentiment;
pub mod sentiment_data;
pub mod train;
pub mod wheel_data;

use clap::Args;
use longview_models::pull::{DEFAULT_MODEL, default_model_dir, default_models_root};
use longview_worker::{Worker, WorkerConfig};
use std::path::PathBuf;

/// Which model a tool runs, as the server's flags name it.
#[derive(Clone, Debug, Args)]
pub struct ModelArgs {
    /// A Hugging Face model directory (default: the default model, pulled if missing).
    #[arg(long, env = "LONGVIEW_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Where pulled models and trained heads are kept.
    #[arg(long, env = "LONGVIEW_MODELS_ROOT")]
    pub models_root: Option<PathBuf>,
}

impl ModelArgs {
    pub fn models_root(&self) -> PathBuf {
        self.models_root.clone().unwrap_or_else(default_models_root)
    }

    /// The model directory, pulling the default model when none is given.
    pub fn model_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.model_dir {
            return Ok(dir.clone());
        }
        let dir = default_model_dir(&self.models_root());
        DEFAULT_MODEL.ensure(&dir)?;
        Ok(dir)
    }

    /// A model worker in this process, loaded and warm.
    pub async fn worker(&self) -> anyhow::Result<Worker> {
        let worker = Worker::spawn(WorkerConfig::new(self.model_dir()?))?;
        worker.ready().await?;
        Ok(worker)
    }
}
