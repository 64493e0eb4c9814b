//! Trained classification heads: a linear layer over window vectors and, optionally, a
//! learned attention over a document's windows. Inference is plain arithmetic here; the
//! training loop lives in the model runtime and writes this same format.
//!
//! On disk a head is a folder: `head.json` (labels, how it was trained, which encoder it
//! expects) and `head.safetensors` (`classifier.weight` [labels × dim],
//! `classifier.bias` [labels], and for attention heads `attention.proj.weight` [a × dim],
//! `attention.proj.bias` [a], `attention.query` [a]).

use crate::aggregate::{sigmoid, softmax};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const HEAD_JSON: &str = "head.json";
pub const HEAD_WEIGHTS: &str = "head.safetensors";

/// What a head is: everything but its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub name: String,
    pub version: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// The aggregation the head was trained with ("mean", "max" or "attention").
    pub aggregation: String,
    pub dimensions: usize,
    pub encoder_name: String,
    pub encoder_version: String,
    pub window_size: usize,
    pub window_overlap: usize,
    /// What the head reads per window: "embedding" (the pooled, normalised sentence
    /// vector) or "first_state" (the first token's raw state, through a learned pooler).
    #[serde(default = "default_features")]
    pub features: String,
    /// Logits are divided by this before softmax or sigmoid (set by calibration).
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Validation figures from training, for operators.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

fn default_features() -> String {
    FEATURES_EMBEDDING.to_string()
}

fn default_temperature() -> f32 {
    1.0
}

/// `HeadSpec::features` values.
pub const FEATURES_EMBEDDING: &str = "embedding";
pub const FEATURES_FIRST_STATE: &str = "first_state";

#[derive(Debug, Error)]
pub enum HeadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Format { path: PathBuf, problem: String },
}

/// The learned attention over windows: score = query · tanh(proj · v + bias).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionWeights {
    pub proj: Vec<f32>,
    pub bias: Vec<f32>,
    pub query: Vec<f32>,
}

/// A loaded head, ready to score window vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierHead {
    pub spec: HeadSpec,
    weights: HeadWeights,
}

/// A head's parameters, row-major as Hugging Face stores dense layers.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadWeights {
    /// Classifier [labels × dim] and bias [labels].
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub attention: Option<AttentionWeights>,
    /// A BERT-style pooler applied to each window first: tanh(weight · x + bias), [dim × dim].
    pub pooler: Option<(Vec<f32>, Vec<f32>)>,
}

impl ClassifierHead {
    /// Builds a head from its parts, checking every shape against the spec.
    pub fn new(spec: HeadSpec, weights: HeadWeights) -> Result<Self, String> {
        let (labels, dim) = (spec.labels.len(), spec.dimensions);
        if weights.weight.len() != labels * dim || weights.bias.len() != labels {
            let (w, b) = (weights.weight.len(), weights.bias.len());
            return Err(format!(
                "classifier is {w}+{b} values, expected {labels}×{dim}+{labels}"
            ));
        }
        if let Some(a) = &weights.attention {
            let hidden = a.query.len();
            if a.proj.len() != hidden * dim || a.bias.len() != hidden {
                return Err(format!("attention shapes do not match {hidden}×{dim}"));
            }
        }
        if let Some((w, b)) = &weights.pooler
            && (w.len() != dim * dim || b.len() != dim)
        {
            return Err(format!("pooler shapes do not match {dim}×{dim}"));
        }
        Ok(Self { spec, weights })
    }

    pub fn weights(&self) -> &HeadWeights {
        &self.weights
    }

    pub fn labels(&self) -> &[String] {
        &self.spec.labels
    }

    pub fn has_attention(&self) -> bool {
        self.weights.attention.is_some()
    }

    /// True when windows must be encoded as first-token states rather than embeddings.
    pub fn reads_first_state(&self) -> bool {
        self.spec.features == FEATURES_FIRST_STATE
    }

    /// One logit per label for a vector (a window, or a pooled document).
    pub fn logits(&self, vector: &[f32]) -> Vec<f32> {
        let dim = self.spec.dimensions;
        let pooled;
        let input = match &self.weights.pooler {
            Some((w, b)) => {
                pooled = b
                    .iter()
                    .enumerate()
                    .map(|(o, b)| (b + dot(&w[o * dim..(o + 1) * dim], vector)).tanh())
                    .collect::<Vec<f32>>();
                &pooled
            }
            None => vector,
        };
        let w = &self.weights.weight;
        self.weights
            .bias
            .iter()
            .enumerate()
            .map(|(l, b)| b + dot(&w[l * dim..(l + 1) * dim], input))
            .collect()
    }

    /// The attention score of one window, if the head learned attention.
    pub fn attention_score(&self, vector: &[f32]) -> Option<f32> {
        let a = self.weights.attention.as_ref()?;
        let dim = self.spec.dimensions;
        let hidden =
            a.query.iter().enumerate().map(|(i, q)| {
                q * (a.bias[i] + dot(&a.proj[i * dim..(i + 1) * dim], vector)).tanh()
            });
        Some(hidden.sum())
    }

    /// Logits to scores: a distribution (multi-class) or independent probabilities.
    pub fn activate(&self, logits: &[f32]) -> Vec<f32> {
        let t = self.spec.temperature;
        if self.spec.multi_label {
            logits.iter().map(|&x| sigmoid(x / t)).collect()
        } else {
            softmax(logits, t)
        }
    }

    /// Loads `head.json` and `head.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, HeadError> {
        let spec_path = dir.join(HEAD_JSON);
        let bytes = std::fs::read(&spec_path).map_err(|source| HeadError::Io {
            path: spec_path.clone(),
            source,
        })?;
        let spec: HeadSpec =
            serde_json::from_slice(&bytes).map_err(|e| format_error(&spec_path, e))?;
        let weights_path = dir.join(HEAD_WEIGHTS);
        let bytes = std::fs::read(&weights_path).map_err(|source| HeadError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let tensors =
            SafeTensors::deserialize(&bytes).map_err(|e| format_error(&weights_path, e))?;
        let get = |name: &str| read_f32(&tensors, name).map_err(|e| format_error(&weights_path, e));
        let attention = match tensors.names().iter().any(|n| n.starts_with("attention.")) {
            true => Some(AttentionWeights {
                proj: get("attention.proj.weight")?,
                bias: get("attention.proj.bias")?,
                query: get("attention.query")?,
            }),
            false => None,
        };
        let pooler = match tensors.names().iter().any(|n| n.starts_with("pooler.")) {
            true => Some((get("pooler.weight")?, get("pooler.bias")?)),
            false => None,
        };
        let (weight, bias) = (get("classifier.weight")?, get("classifier.bias")?);
        let weights = HeadWeights {
            weight,
            bias,
            attention,
            pooler,
        };
        Self::new(spec, weights).map_err(|e| format_error(&weights_path, e))
    }

    /// Writes the head into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), HeadError> {
        std::fs::create_dir_all(dir).map_err(|source| HeadError::Io {
            path: dir.into(),
            source,
        })?;
        let (labels, dim) = (self.spec.labels.len(), self.spec.dimensions);
        let w = &self.weights;
        let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
            ("classifier.weight", vec![labels, dim], &w.weight),
            ("classifier.bias", vec![labels], &w.bias),
        ];
        if let Some((weight, bias)) = &w.pooler {
            tensors.push(("pooler.weight", vec![dim, dim], weight));
            tensors.push(("pooler.bias", vec![dim], bias));
        }
        if let Some(a) = &w.attention {
            let hidden = a.query.len();
            tensors.push(("attention.proj.weight", vec![hidden, dim], &a.proj));
            tensors.push(("attention.proj.bias", vec![hidden], &a.bias));
            tensors.push(("attention.query", vec![hidden], &a.query));
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(n, shape, values)| (n.to_string(), shape, to_bytes(values)))
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data).map(|view| (name.clone(), view))
            })
            .collect::<Result<HashMap<_, _>, _>>()
            .map_err(|e| format_error(dir, e))?;
        let weights_path = dir.join(HEAD_WEIGHTS);
        safetensors::serialize_to_file(views, None, &weights_path)
            .map_err(|e| format_error(&weights_path, e))?;
        let spec_path = dir.join(HEAD_JSON);
        let json =
            serde_json::to_vec_pretty(&self.spec).map_err(|e| format_error(&spec_path, e))?;
        std::fs::write(&spec_path, json).map_err(|source| HeadError::Io {
            path: spec_path,
            source,
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_f32(tensors: &SafeTensors<'_>, name: &str) -> Result<Vec<f32>, String> {
    let view = tensors.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!("{name} is {:?}, expected F32", view.dtype()));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn format_error(path: &Path, problem: impl std::fmt::Display) -> HeadError {
    HeadError::Format {
        path: path.into(),
        problem: problem.to_string(),
    }
}

/// Attention pooling over a stream of windows with constant memory: a running softmax
/// (rescaled whenever a larger score arrives) and the weighted sum of window vectors.
#[derive(Clone, Debug, Default)]
pub struct AttentionPool {
    max: f32,
    weight_sum: f32,
    acc: Vec<f32>,
}

impl AttentionPool {
    pub fn push(&mut self, score: f32, vector: &[f32]) {
        if self.acc.is_empty() {
            self.max = score;
            self.acc = vec![0.0; vector.len()];
        }
        if score > self.max {
            let rescale = (self.max - score).exp();
            self.acc.iter_mut().for_each(|x| *x *= rescale);
            self.weight_sum *= rescale;
            self.max = score;
        }
        let weight = (score - self.max).exp();
        self.acc
            .iter_mut()
            .zip(vector)
            .for_each(|(a, v)| *a += weight * v);
        self.weight_sum += weight;
    }

    /// The attention-weighted mean of every vector pushed.
    pub fn pooled(&self) -> Vec<f32> {
        self.acc
            .iter()
            .map(|x| x / self.weight_sum.max(f32::MIN_POSITIVE))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(labels: usize, dim: usize) -> HeadSpec {
        HeadSpec {
            name: "topics".into(),
            version: "1".into(),
            labels: (0..labels).map(|i| format!("l{i}")).collect(),
            multi_label: false,
            aggregation: "attention".into(),
            dimensions: dim,
            encoder_name: "enc".into(),
            encoder_version: "v".into(),
            window_size: 256,
            window_overlap: 32,
            features: FEATURES_EMBEDDING.into(),
            temperature: 1.0,
            metrics: serde_json::json!({"val_macro_f1": 0.5}),
        }
    }

    #[test]
    fn saves_and_loads_the_same_head() {
        let attention = AttentionWeights {
            proj: vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6],
            bias: vec![0.0, 0.1],
            query: vec![1.0, -1.0],
        };
        let weights = HeadWeights {
            weight: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            bias: vec![0.5, -0.5],
            attention: Some(attention),
            pooler: None,
        };
        let head = ClassifierHead::new(spec(2, 3), weights).unwrap();
        let dir = tempfile::tempdir().unwrap();
        head.save(dir.path()).unwrap();
        let loaded = ClassifierHead::load(dir.path()).unwrap();
        assert_eq!(loaded, head);
        assert_eq!(loaded.logits(&[2.0, 3.0, 4.0]), vec![2.5, 2.5]);
        assert!(loaded.attention_score(&[1.0, 1.0, 1.0]).is_some());
    }

    #[test]
    fn pooler_heads_round_trip_and_apply_tanh() {
        let identity = vec![1.0, 0.0, 0.0, 1.0];
        let weights = HeadWeights {
            weight: vec![1.0, 0.0],
            bias: vec![0.0],
            attention: None,
            pooler: Some((identity, vec![0.0, 0.0])),
        };
        let mut spec = spec(1, 2);
        spec.features = FEATURES_FIRST_STATE.into();
        let head = ClassifierHead::new(spec, weights).unwrap();
        let dir = tempfile::tempdir().unwrap();
        head.save(dir.path()).unwrap();
        let loaded = ClassifierHead::load(dir.path()).unwrap();
        assert_eq!(loaded, head);
        assert!(loaded.reads_first_state());
        assert!((loaded.logits(&[2.0, 5.0])[0] - 2.0f32.tanh()).abs() < 1e-6);
    }

    #[test]
    fn wrong_shapes_are_refused() {
        let weights = HeadWeights {
            weight: vec![0.0; 5],
            bias: vec![0.0; 2],
            attention: None,
            pooler: None,
        };
        assert!(ClassifierHead::new(spec(2, 3), weights).is_err());
    }

    #[test]
    fn attention_pool_matches_softmax_weighting() {
        let windows = [(0.5, [1.0, 0.0]), (3.0, [0.0, 1.0]), (-1.0, [1.0, 1.0])];
        let mut pool = AttentionPool::default();
        windows.iter().for_each(|(s, v)| pool.push(*s, v));
        let weights = softmax(&windows.iter().map(|(s, _)| *s).collect::<Vec<_>>(), 1.0);
        let expected: Vec<f32> = (0..2)
            .map(|d| {
                windows
                    .iter()
                    .zip(&weights)
                    .map(|((_, v), w)| w * v[d])
                    .sum()
            })
            .collect();
        for (got, want) in pool.pooled().iter().zip(&expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
