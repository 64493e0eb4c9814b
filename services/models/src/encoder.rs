//! A BERT-family encoder: token sequences in, pooled L2-normalised vectors out, on one of
//! two runtimes computing the same function (Longview's packed CPU one, candle's tensors).

use crate::candle_bert::CandleBert;
use crate::sequence_head::SequenceHead;
use crate::{DeviceKind, FastBert, ModelDir, ModelError, Pooling, Precision, TextTokenizer};
use candle_core::DType;
use serde::Serialize;
use std::sync::Arc;

/// Which implementation runs the encoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `int8` on CPUs with AVX-512 VNNI (where it is several times faster than f32 and
    /// passes the 0.99 cosine gate), `fast` on other CPUs, `exact-f16` on CUDA. Resolved
    /// when the encoder loads; [`ModelInfo::backend`] names the one that runs.
    #[default]
    Auto,
    /// Longview's packed CPU encoder with int8 linear layers (AVX-512 VNNI where the CPU
    /// has it). CPU only.
    Int8,
    /// Longview's packed CPU encoder (no padding, fused kernels) in f32. CPU only.
    Fast,
    /// BERT on candle tensors in f32: the reference path. Runs on CPU and CUDA.
    Exact,
    /// The exact path with bf16 weights and activations (products summed in f32), for
    /// GPUs: f32's range, so no overflow, but 8 bits of precision (cosine 0.9945 to f32).
    #[serde(rename = "exact-bf16")]
    ExactBf16,
    /// The exact path in f16, for GPUs: 11 bits of precision (cosine 0.99998 to f32 on
    /// MiniLM), but values past 65,504 overflow; models with such activations want bf16.
    #[serde(rename = "exact-f16")]
    ExactF16,
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Backend::Auto),
            "int8" => Ok(Backend::Int8),
            "fast" => Ok(Backend::Fast),
            "exact" => Ok(Backend::Exact),
            "exact-bf16" => Ok(Backend::ExactBf16),
            "exact-f16" => Ok(Backend::ExactF16),
            other => Err(format!(
                "unknown encoder backend {other:?} (expected auto, int8, fast, exact, \
                 exact-bf16 or exact-f16)"
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Int8 => "int8",
            Backend::Fast => "fast",
            Backend::Exact => "exact",
            Backend::ExactBf16 => "exact-bf16",
            Backend::ExactF16 => "exact-f16",
        })
    }
}

impl Backend {
    /// The backend that runs on `device`: CUDA runs an exact one (the packed runtimes are
    /// CPU code), f16 unless asked otherwise; `auto` on CPU picks int8 where the CPU has
    /// VNNI, else f32.
    pub fn resolve(self, device: DeviceKind) -> Backend {
        match (device, self) {
            (DeviceKind::Cpu, Backend::Auto) if crate::int8_accelerated() => Backend::Int8,
            (DeviceKind::Cpu, Backend::Auto) => Backend::Fast,
            (DeviceKind::Cpu, backend) => backend,
            (_, Backend::Exact | Backend::ExactBf16 | Backend::ExactF16) => self,
            (_, Backend::Auto) => Backend::ExactF16,
            (_, Backend::Int8 | Backend::Fast) => Backend::Exact,
        }
    }

    /// The float type of an exact backend's weights and activations.
    fn exact_dtype(self) -> Option<DType> {
        match self {
            Backend::Exact => Some(DType::F32),
            Backend::ExactBf16 => Some(DType::BF16),
            Backend::ExactF16 => Some(DType::F16),
            Backend::Auto | Backend::Int8 | Backend::Fast => None,
        }
    }
}

/// What the encoder returns for each sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// The model's own answer: for an embedding model its sentence vector (pooled as the
    /// directory says, L2-normalised); for a sequence classifier its class logits.
    #[default]
    Native,
    /// The sentence vector (mean or first-token pooling, L2-normalised).
    Embedding,
    /// The first token's last-layer state, unnormalised: features for pooler-style heads.
    FirstState,
}

/// The last-layer states a backend returns per sequence; the encoder pools from these.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceStates {
    pub first: Vec<f32>,
    pub mean: Vec<f32>,
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
    /// Class names, for sequence classifiers (whose native output is one logit per class).
    pub labels: Option<Vec<String>>,
}

enum Runtime {
    Fast(FastBert),
    Exact(CandleBert),
}

/// A loaded encoder. It lives on one model thread.
pub struct Encoder {
    runtime: Runtime,
    tokenizer: Arc<TextTokenizer>,
    pooling: Pooling,
    head: Option<SequenceHead>,
    info: ModelInfo,
}

impl Encoder {
    /// Loads the model in `dir` onto `device` with `backend`, as [`Backend::resolve`]
    /// resolves it for the device.
    pub fn load(dir: &ModelDir, device: DeviceKind, backend: Backend) -> Result<Self, ModelError> {
        let tokenizer = Arc::new(TextTokenizer::from_file(&dir.tokenizer())?);
        let backend = backend.resolve(device);
        let runtime = match (backend, backend.exact_dtype()) {
            (_, Some(dtype)) => {
                Runtime::Exact(CandleBert::load(dir, device, dtype, tokenizer.pad_id())?)
            }
            (Backend::Int8, None) => Runtime::Fast(FastBert::load(dir, Precision::Int8)?),
            (_, None) => Runtime::Fast(FastBert::load(dir, Precision::F32)?),
        };
        let head = match &dir.classifier_labels {
            Some(labels) => Some(SequenceHead::load(dir, labels.clone())?),
            None => None,
        };
        let info = ModelInfo {
            name: dir.name.clone(),
            version: dir.version.clone(),
            dimensions: dir.config["hidden_size"].as_u64().unwrap_or(0) as usize,
            max_positions: dir.max_positions,
            trained_seq_len: dir.trained_seq_len,
            special_tokens: tokenizer.special_tokens().count(),
            device: device.to_string(),
            dtype: match backend.exact_dtype() {
                Some(dtype) => dtype.as_str().to_string(),
                None if backend == Backend::Int8 => "int8".to_string(),
                None => "f32".to_string(),
            },
            backend,
            labels: dir.classifier_labels.clone(),
        };
        Ok(Self {
            runtime,
            tokenizer,
            pooling: dir.pooling,
            head,
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

    /// Encodes content token sequences (special tokens are added here) as one batch,
    /// returning the model's native output.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.encode_as(sequences, Output::Native)
    }

    /// Encodes content token sequences as one batch, returning `output` for each.
    pub fn encode_as(
        &self,
        sequences: &[&[u32]],
        output: Output,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
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
        let states = match &self.runtime {
            Runtime::Fast(model) => model.encode(&views)?,
            Runtime::Exact(model) => model.encode(&views)?,
        };
        Ok(states.into_iter().map(|s| self.finish(s, output)).collect())
    }

    fn finish(&self, states: SequenceStates, output: Output) -> Vec<f32> {
        match (output, &self.head) {
            (Output::Native, Some(head)) => head.logits(&states.first),
            (Output::FirstState, _) => states.first,
            (Output::Native | Output::Embedding, _) => {
                let vector = match self.pooling {
                    Pooling::Mean => states.mean,
                    Pooling::Cls => states.first,
                };
                l2_normalised(vector)
            }
        }
    }
}

fn l2_normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    vector.iter_mut().for_each(|v| *v /= norm);
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_resolve_per_device() {
        let cuda = DeviceKind::Cuda(0);
        assert_eq!(Backend::Auto.resolve(cuda), Backend::ExactF16);
        assert_eq!(Backend::Int8.resolve(cuda), Backend::Exact);
        assert_eq!(Backend::ExactBf16.resolve(cuda), Backend::ExactBf16);
        assert_eq!(
            Backend::ExactBf16.resolve(DeviceKind::Cpu),
            Backend::ExactBf16
        );
        let auto = Backend::Auto.resolve(DeviceKind::Cpu);
        assert_eq!(auto == Backend::Int8, crate::int8_accelerated());
        assert_eq!(auto.exact_dtype(), None);
    }

    #[test]
    fn backend_names_round_trip() {
        for name in ["auto", "int8", "fast", "exact", "exact-bf16", "exact-f16"] {
            let backend: Backend = name.parse().unwrap();
            assert_eq!(backend.to_string(), name);
            assert_eq!(serde_json::to_value(backend).unwrap(), name);
        }
        let err = "bf16".parse::<Backend>().unwrap_err();
        assert!(err.contains("exact-bf16"), "{err}");
    }
}
