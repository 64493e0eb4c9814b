//! `longview bench embed`: encoder throughput in process, at fixed sequence lengths.

use crate::cli::{BenchArgs, BenchCommand};
use anyhow::Context;
use longview_models::pull::{default_model_dir, default_models_root};
use longview_models::{DeviceKind, Encoder, ModelDir};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Varied English text to cut benchmark sequences from.
const CORPUS: &str = "Shares of regional lenders fell sharply on Tuesday after a weaker than expected \
earnings report raised fresh questions about deposit costs, while technology stocks recovered \
some of last week's losses. The central bank kept its benchmark rate unchanged and signalled that \
inflation, though easing, remained above target. In football, the home side came from two goals \
down to win in extra time, and the coach praised a young midfielder who scored twice. Lawmakers \
debated a bill that would tighten reporting rules for large private funds; supporters said it \
would protect pensioners, critics warned of higher compliance costs for smaller managers.";

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Embed {
            model_dir,
            models_root,
            batch_sizes,
            tokens,
            seconds,
        } => {
            let dir = model_dir.unwrap_or_else(|| {
                default_model_dir(&models_root.unwrap_or_else(default_models_root))
            });
            embed(dir, &batch_sizes, tokens, Duration::from_secs_f64(seconds))
        }
    }
}

fn embed(
    dir: PathBuf,
    batch_sizes: &[usize],
    tokens: usize,
    budget: Duration,
) -> anyhow::Result<()> {
    let model =
        ModelDir::open(&dir).with_context(|| format!("model directory {}", dir.display()))?;
    let encoder = Encoder::load(&model, DeviceKind::Cpu)?;
    let info = encoder.info().clone();
    let content = tokens
        .checked_sub(info.special_tokens)
        .filter(|&n| n > 0)
        .context("--tokens leaves no content")?;
    let sequence = sequence_of(&encoder, content)?;
    println!(
        "encoder: {} ({}) on {} {}, {tokens} tokens per sequence",
        info.name, info.version, info.device, info.dtype
    );
    println!(
        "{:>6}  {:>12}  {:>12}  {:>8}",
        "batch", "tokens/s", "ms/batch p50", "batches"
    );
    for &batch in batch_sizes {
        let inputs: Vec<&[u32]> = vec![sequence.as_slice(); batch];
        encoder.encode(&inputs)?;
        let mut times = Vec::new();
        let started = Instant::now();
        while started.elapsed() < budget || times.len() < 3 {
            let one = Instant::now();
            encoder.encode(&inputs)?;
            times.push(one.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let total: f64 = times.iter().sum();
        let rate = (batch * tokens * times.len()) as f64 / total;
        println!(
            "{batch:>6}  {rate:>12.0}  {:>12.1}  {:>8}",
            times[times.len() / 2] * 1e3,
            times.len()
        );
    }
    Ok(())
}

/// Exactly `content` token ids, repeating the corpus if it is too short.
fn sequence_of(encoder: &Encoder, content: usize) -> anyhow::Result<Vec<u32>> {
    let tokens = encoder.tokenizer().tokenize(CORPUS)?;
    Ok(tokens.ids.iter().copied().cycle().take(content).collect())
}
