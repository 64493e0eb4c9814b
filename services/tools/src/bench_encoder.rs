//! `longview bench encoder`: one encoder backend serving the side-by-side benchmark
//! (`bench/compare`) over stdin and stdout, one JSON command per line, so the driver can
//! run Longview and the Python baselines in turn on the same token ids.

use crate::ModelArgs;
use anyhow::Context;
use longview_models::{Backend, DeviceKind, Encoder, ModelDir, Output};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

/// One input set of the benchmark file: full token ids, special tokens included.
#[derive(Deserialize)]
struct InputSet {
    ids: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Command {
    /// Encode the set in batches of `batch` for at least `seconds`; answer tokens and time.
    Measure {
        set: String,
        batch: usize,
        seconds: f64,
    },
    /// Write every sequence's embedding to `out` as little-endian f32.
    Embed { set: String, out: String },
}

pub fn serve(model: &ModelArgs, input: &Path, backend: Backend) -> anyhow::Result<()> {
    let dir = model.model_dir()?;
    let dir = ModelDir::open(&dir).with_context(|| format!("model directory {}", dir.display()))?;
    let encoder = Encoder::load(&dir, DeviceKind::Cpu, backend)?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let sets: HashMap<String, InputSet> = serde_json::from_slice(&bytes)?;
    let sets = sets
        .into_iter()
        .map(|(name, set)| Ok((name, content_ids(&encoder, set.ids)?)))
        .collect::<anyhow::Result<HashMap<_, _>>>()?;
    let info = encoder.info();
    let mut stdout = std::io::stdout().lock();
    let ready = format!(
        "longview {} {} ({} threads)",
        info.backend,
        info.dtype,
        rayon::current_num_threads()
    );
    writeln!(stdout, "{}", serde_json::json!({ "ready": ready }))?;
    stdout.flush()?;
    for line in std::io::stdin().lock().lines() {
        let answer = match serde_json::from_str(&line?)? {
            Command::Measure {
                set,
                batch,
                seconds,
            } => measure(&encoder, named(&sets, &set)?, batch, seconds)?,
            Command::Embed { set, out } => embed(&encoder, named(&sets, &set)?, &out)?,
        };
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    Ok(())
}

fn named<'a>(
    sets: &'a HashMap<String, Vec<Vec<u32>>>,
    name: &str,
) -> anyhow::Result<&'a [Vec<u32>]> {
    sets.get(name)
        .map(Vec::as_slice)
        .with_context(|| format!("no input set {name:?}"))
}

/// Strips the special tokens the encoder adds itself, checking they are the model's own.
fn content_ids(encoder: &Encoder, ids: Vec<Vec<u32>>) -> anyhow::Result<Vec<Vec<u32>>> {
    let special = encoder.tokenizer().special_tokens().clone();
    ids.into_iter()
        .enumerate()
        .map(|(i, full)| {
            let (p, s) = (special.prefix.len(), special.suffix.len());
            anyhow::ensure!(
                full.len() >= p + s
                    && full[..p] == special.prefix[..]
                    && full[full.len() - s..] == special.suffix[..],
                "sequence {i} does not start and end with the model's special tokens"
            );
            Ok(full[p..full.len() - s].to_vec())
        })
        .collect()
}

fn measure(
    encoder: &Encoder,
    sequences: &[Vec<u32>],
    batch: usize,
    seconds: f64,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        batch > 0 && batch <= sequences.len(),
        "batch {batch} out of range"
    );
    let special = encoder.info().special_tokens;
    let batches: Vec<Vec<&[u32]>> = sequences
        .chunks_exact(batch)
        .map(|c| c.iter().map(Vec::as_slice).collect())
        .collect();
    encoder.encode(&batches[0])?; // warm-up
    let (mut tokens, mut count) = (0usize, 0usize);
    let started = Instant::now();
    loop {
        let inputs = &batches[count % batches.len()];
        encoder.encode(inputs)?;
        tokens += inputs.iter().map(|s| s.len() + special).sum::<usize>();
        count += 1;
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= seconds && count >= 3 {
            return Ok(
                serde_json::json!({ "tokens": tokens, "seconds": elapsed, "batches": count }),
            );
        }
    }
}

fn embed(
    encoder: &Encoder,
    sequences: &[Vec<u32>],
    out: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut bytes = Vec::new();
    let mut dim = 0;
    for chunk in sequences.chunks(32) {
        let views: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        for vector in encoder.encode_as(&views, Output::Embedding)? {
            dim = vector.len();
            bytes.extend(vector.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    std::fs::write(out, bytes).with_context(|| format!("writing {out}"))?;
    Ok(serde_json::json!({ "count": sequences.len(), "dim": dim }))
}
