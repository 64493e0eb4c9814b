//! Window vectors for whole documents, computed through the worker exactly as the
//! Classify service computes them, with progress and an on-disk cache.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use longview_core::WindowSpec;
use longview_worker::{Output, Worker};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// How a document becomes sequences for the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Every token, in overlapping windows.
    Windows(WindowSpec),
    /// Only the first `max_tokens` content tokens, as one sequence (what serving engines do).
    Truncated { max_tokens: usize },
}

impl Reading {
    /// A short name for cache files and reports.
    pub fn key(&self) -> String {
        match self {
            Reading::Windows(spec) => format!("windows-{}-{}", spec.size, spec.overlap),
            Reading::Truncated { max_tokens } => format!("truncated-{max_tokens}"),
        }
    }
}

/// Vectors of every document's windows (one vector per document when truncated).
pub type DocumentVectors = Vec<Vec<Vec<f32>>>;

/// Documents sent to the worker together: enough windows to fill batches.
const DOCUMENTS_PER_ROUND: usize = 16;

/// Encodes `texts` as `reading` says, returning `output` per sequence (embeddings, or
/// first-token states for pooler heads), showing progress by documents.
pub async fn document_vectors(
    worker: &Worker,
    texts: &[String],
    reading: Reading,
    output: Output,
) -> anyhow::Result<(DocumentVectors, u64)> {
    let progress = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} documents, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress.set_message(reading.key());
    let mut vectors = Vec::with_capacity(texts.len());
    let mut tokens_read = 0;
    for round in texts.chunks(DOCUMENTS_PER_ROUND) {
        let tokenized = worker.tokenize(Arc::new(round.to_vec())).await?;
        let mut sequences = Vec::new();
        let mut counts = Vec::with_capacity(round.len());
        for tokens in &tokenized {
            let before = sequences.len();
            match reading {
                Reading::Windows(spec) => {
                    sequences.extend(
                        spec.token_ranges(tokens.len())
                            .map(|range| tokens.ids[range].to_vec()),
                    );
                }
                Reading::Truncated { max_tokens } => {
                    sequences.push(tokens.ids[..tokens.len().min(max_tokens)].to_vec())
                }
            }
            counts.push(sequences.len() - before);
        }
        tokens_read += sequences.iter().map(|s| s.len() as u64).sum::<u64>();
        let mut encoded = worker.encode_as(sequences, output).await?.into_iter();
        for count in counts {
            vectors.push(encoded.by_ref().take(count).collect());
        }
        progress.inc(round.len() as u64);
        if progress.is_hidden() && progress.position() % 512 < DOCUMENTS_PER_ROUND as u64 {
            tracing::info!(documents = progress.position(), of = texts.len(), tokens_read, reading = %reading.key(), "encoding");
        }
    }
    progress.finish();
    Ok((vectors, tokens_read))
}

/// Saves document vectors as safetensors: `vectors` [windows × dim] and `offsets`
/// [documents + 1] (where each document's windows start).
pub fn save(path: &Path, documents: &DocumentVectors) -> anyhow::Result<()> {
    let dim = documents.iter().flatten().next().map_or(0, Vec::len);
    let mut offsets = vec![0i64];
    let mut flat = Vec::new();
    for windows in documents {
        for vector in windows {
            flat.extend(vector.iter().flat_map(|v| v.to_le_bytes()));
        }
        offsets.push(offsets[offsets.len() - 1] + windows.len() as i64);
    }
    let rows = *offsets.last().unwrap_or(&0) as usize;
    let offset_bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
    let views = HashMap::from([
        (
            "vectors".to_string(),
            TensorView::new(Dtype::F32, vec![rows, dim], &flat)?,
        ),
        (
            "offsets".to_string(),
            TensorView::new(Dtype::I64, vec![offsets.len()], &offset_bytes)?,
        ),
    ]);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    safetensors::serialize_to_file(views, None, path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Loads what [`save`] wrote.
pub fn load(path: &Path) -> anyhow::Result<DocumentVectors> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let tensors = SafeTensors::deserialize(&bytes)?;
    let vectors = tensors.tensor("vectors")?;
    let dim = vectors.shape()[1];
    let floats: Vec<f32> = vectors
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let offsets: Vec<usize> = tensors
        .tensor("offsets")?
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .collect();
    Ok(offsets
        .windows(2)
        .map(|pair| {
            (pair[0]..pair[1])
                .map(|row| floats[row * dim..(row + 1) * dim].to_vec())
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip() {
        let documents = vec![vec![vec![1.0, 2.0], vec![3.0, 4.0]], vec![vec![5.0, 6.0]]];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        save(&path, &documents).unwrap();
        assert_eq!(load(&path).unwrap(), documents);
    }
}
