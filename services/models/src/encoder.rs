//! A BERT-family encoder: token sequences in, pooled L2-normalised vectors out, on one of
//! two backends computing the same function.

use crate::candle_bert::CandleBert;
use crate::{DeviceKind, FastBert, ModelDir, ModelError, TextTokenizer};
use serde::Serialize;
use std::sync::Arc;

/// Which implementation runs the encoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Longview's packed CPU encoder (no padding, fused kernels). CPU only.
    #[default]
    Fast,
    /// candle's `BertModel`: the reference path, and the one that runs on CUDA.
    Exact,
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Backend::Fast),
            "exact" => Ok(Backend::Exact),
            other => Err(format!(
                "unknown encoder backend {other:?} (expected fast or exact)"
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Fast => "fast",
            Backend::Exact => "exact",
        })
    }
}

/// What a loaded encoder is, for responses, health and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub dimensions: usize,
    /// Longest sequence the model accepts, special tokens included.
    pub max_positions: usize,
    /// The sequence length the model was trained for (what embeddings truncate to by default).
    pub trained_seq_len: usize,
    pub special_tokens: usize,
    pub device: String,
    pub dtype: String,
    pub backend: Backend,
}

enum Runtime {
    Fast(FastBert),
    Exact(CandleBert),
}

/// A loaded encoder. It lives on one model thread.
pub struct Encoder {
    runtime: Runtime,
    tokenizer: Arc<TextTokenizer>,
    info: ModelInfo,
}

impl Encoder {
    /// Loads the model in `dir` onto `device` with `backend` (CUDA always runs the exact
    /// backend, since the fast one is CPU code).
    pub fn load(dir: &ModelDir, device: DeviceKind, backend: Backend) -> Result<Self, ModelError> {
        let tokenizer = Arc::new(TextTokenizer::from_file(&dir.tokenizer())?);
        let backend = if device == DeviceKind::Cpu {
            backend
        } else {
            Backend::Exact
        };
        let runtime = match backend {
            Backend::Fast => Runtime::Fast(FastBert::load(dir)?),
            Backend::Exact => Runtime::Exact(CandleBert::load(dir, device, tokenizer.pad_id())?),
        };
        let info = ModelInfo {
            name: dir.name.clone(),
            version: dir.version.clone(),
            dimensions: dir.config["hidden_size"].as_u64().unwrap_or(0) as usize,
            max_positions: dir.max_positions,
            trained_seq_len: dir.trained_seq_len,
            special_tokens: tokenizer.special_tokens().count(),
            device: device.to_string(),
            dtype: format!("{:?}", device.dtype()).to_lowercase(),
            backend,
        };
        Ok(Self {
            runtime,
            tokenizer,
            info,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The tokenizer, shareable with threads that prepare inputs.
    pub fn tokenizer(&self) -> Arc<TextTokenizer> {
        self.tokenizer.clone()
    }

    /// Encodes content token sequences (special tokens are added here) as one batch.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let special = self.tokenizer.special_tokens();
        let full: Vec<Vec<u32>> = sequences
            .iter()
            .map(|s| {
                special
                    .prefix
                    .iter()
                    .chain(s.iter())
                    .chain(special.suffix.iter())
                    .copied()
                    .collect()
            })
            .collect();
        if let Some(longest) = full
            .iter()
            .map(Vec::len)
            .max()
            .filter(|&l| l > self.info.max_positions)
        {
            return Err(ModelError::SequenceTooLong {
                tokens: longest,
                max_positions: self.info.max_positions,
            });
        }
        let views: Vec<&[u32]> = full.iter().map(Vec::as_slice).collect();
        match &self.runtime {
            Runtime::Fast(model) => model.encode(&views),
            Runtime::Exact(model) => model.encode(&views),
        }
    }
}
