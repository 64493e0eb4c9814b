//! The head of a Hugging Face `…ForSequenceClassification` BERT: a pooler (dense + tanh
//! over the first token's state) and a linear classifier, with the label names from
//! config.json's `id2label`. Loading it lets users bring their own fine-tuned classifiers;
//! exporting one lets Longview's own heads run anywhere transformers does.

use crate::{ModelDir, ModelError};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// A dense layer stored as Hugging Face stores it: weight [out × in], bias [out].
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Dense {
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let inputs = x.len();
        self.bias
            .iter()
            .enumerate()
            .map(|(o, b)| {
                b + self.weight[o * inputs..(o + 1) * inputs]
                    .iter()
                    .zip(x)
                    .map(|(w, v)| w * v)
                    .sum::<f32>()
            })
            .collect()
    }
}

/// Pooler and classifier of a sequence-classification model.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceHead {
    pub pooler: Dense,
    pub classifier: Dense,
    pub labels: Vec<String>,
}

impl SequenceHead {
    /// Class logits from the first token's last-layer state.
    pub fn logits(&self, first_state: &[f32]) -> Vec<f32> {
        let pooled: Vec<f32> = self
            .pooler
            .apply(first_state)
            .into_iter()
            .map(f32::tanh)
            .collect();
        self.classifier.apply(&pooled)
    }

    /// Reads the head of the classifier in `dir`.
    pub fn load(dir: &ModelDir, labels: Vec<String>) -> Result<Self, ModelError> {
        let path = dir.weights();
        let bytes = std::fs::read(&path).map_err(ModelError::io(&path))?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::Tokenizer(format!("safetensors: {e}")))?;
        let get = |name: &str| read_f32(&tensors, name);
        let pooler = Dense {
            weight: get("bert.pooler.dense.weight")?,
            bias: get("bert.pooler.dense.bias")?,
        };
        let classifier = Dense {
            weight: get("classifier.weight")?,
            bias: get("classifier.bias")?,
        };
        if classifier.bias.len() != labels.len() {
            return Err(ModelError::Unsupported {
                found: format!(
                    "{} classifier outputs for {} labels",
                    classifier.bias.len(),
                    labels.len()
                ),
                supported: "id2label matching the classifier",
            });
        }
        Ok(Self {
            pooler,
            classifier,
            labels,
        })
    }

    /// Writes a complete `BertForSequenceClassification` directory to `out`: the encoder of
    /// `encoder` (weights renamed under `bert.`), this head, config.json with `id2label`,
    /// and the tokenizer files.
    pub fn export(&self, encoder: &ModelDir, out: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(out).map_err(ModelError::io(out))?;
        let path = encoder.weights();
        let bytes = std::fs::read(&path).map_err(ModelError::io(&path))?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::Tokenizer(format!("safetensors: {e}")))?;
        let mut views: HashMap<String, TensorView<'_>> = HashMap::new();
        for (name, view) in tensors.tensors() {
            let renamed = if name.starts_with("bert.") {
                name
            } else {
                format!("bert.{name}")
            };
            if !renamed.starts_with("bert.pooler.") {
                views.insert(renamed, view);
            }
        }
        let hidden = self.pooler.bias.len();
        let head = [
            (
                "bert.pooler.dense.weight",
                vec![hidden, hidden],
                to_bytes(&self.pooler.weight),
            ),
            (
                "bert.pooler.dense.bias",
                vec![hidden],
                to_bytes(&self.pooler.bias),
            ),
            (
                "classifier.weight",
                vec![self.labels.len(), hidden],
                to_bytes(&self.classifier.weight),
            ),
            (
                "classifier.bias",
                vec![self.labels.len()],
                to_bytes(&self.classifier.bias),
            ),
        ];
        for (name, shape, data) in &head {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
            views.insert(name.to_string(), view);
        }
        let weights = out.join("model.safetensors");
        safetensors::serialize_to_file(views, None, &weights)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", weights.display())))?;
        self.write_config(encoder, out)?;
        for file in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
        ] {
            let from = encoder.root.join(file);
            if from.is_file() {
                std::fs::copy(&from, out.join(file)).map_err(ModelError::io(&from))?;
            }
        }
        Ok(())
    }

    fn write_config(&self, encoder: &ModelDir, out: &Path) -> Result<(), ModelError> {
        let mut config = encoder.config.clone();
        let id2label: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone().into()))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i.into()))
            .collect();
        config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
        config["id2label"] = id2label.into();
        config["label2id"] = label2id.into();
        config["problem_type"] = "single_label_classification".into();
        let path = out.join("config.json");
        let json = serde_json::to_vec_pretty(&config).map_err(|source| ModelError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, json).map_err(ModelError::io(&path))
    }
}

/// Labels of a sequence-classification config (`id2label` in id order), or `None` for a
/// plain encoder.
pub fn classifier_labels(config: &serde_json::Value) -> Option<Vec<String>> {
    let is_classifier = config["architectures"].as_array()?.iter().any(|a| {
        a.as_str()
            .is_some_and(|a| a.ends_with("ForSequenceClassification"))
    });
    let id2label = config["id2label"].as_object().filter(|_| is_classifier)?;
    let mut labels: Vec<(usize, String)> = id2label
        .iter()
        .filter_map(|(id, label)| Some((id.parse().ok()?, label.as_str()?.to_string())))
        .collect();
    labels.sort();
    Some(labels.into_iter().map(|(_, label)| label).collect())
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_f32(tensors: &SafeTensors<'_>, name: &str) -> Result<Vec<f32>, ModelError> {
    let view = tensors
        .tensor(name)
        .map_err(|_| ModelError::Tokenizer(format!("weights lack {name}")))?;
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::Unsupported {
            found: format!("{name} in {:?}", view.dtype()),
            supported: "f32 classifier heads",
        });
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_ids() {
        let config = serde_json::json!({"architectures": ["BertForSequenceClassification"], "id2label": {"1": "pos", "0": "neg", "2": "neu"}});
        assert_eq!(
            classifier_labels(&config),
            Some(vec!["neg".into(), "pos".into(), "neu".into()])
        );
        assert_eq!(
            classifier_labels(&serde_json::json!({"architectures": ["BertModel"]})),
            None
        );
    }

    #[test]
    fn logits_by_hand() {
        let head = SequenceHead {
            pooler: Dense {
                weight: vec![1.0, 0.0, 0.0, 1.0],
                bias: vec![0.0, 0.0],
            },
            classifier: Dense {
                weight: vec![1.0, 1.0],
                bias: vec![0.5],
            },
            labels: vec!["only".into()],
        };
        let expected = 0.5 + 1.0f32.tanh() + (-2.0f32).tanh();
        assert!((head.logits(&[1.0, -2.0])[0] - expected).abs() < 1e-6);
    }
}
