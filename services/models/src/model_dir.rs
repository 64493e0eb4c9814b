//! A Hugging Face model directory on disk.

use crate::ModelError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How token vectors become one text vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps (sentence-transformers' default).
    Mean,
    /// The first token's vector ([CLS]).
    Cls,
}

/// The files of a BERT-family model directory, checked and described.
#[derive(Clone, Debug)]
pub struct ModelDir {
    pub root: PathBuf,
    pub name: String,
    pub version: String,
    /// Raw config.json, parsed later by the architecture that needs it.
    pub config: serde_json::Value,
    pub max_positions: usize,
    /// The sequence length the model was trained for, if the directory says so
    /// (sentence-transformers' max_seq_length); otherwise the position limit.
    pub trained_seq_len: usize,
    pub pooling: Pooling,
    /// Label names when the directory holds a sequence-classification model.
    pub classifier_labels: Option<Vec<String>>,
}

/// Written by `longview models pull` beside the model files.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// Size of the weights file, checked cheaply at every start.
    pub bytes: u64,
}

pub const MANIFEST_FILE: &str = "longview-model.json";
const SUPPORTED: &str = "bert (BERT, MiniLM, BGE, E5 and other BertModel checkpoints)";

impl ModelDir {
    /// Opens and checks a directory holding config.json, tokenizer.json and model.safetensors.
    pub fn open(root: &Path) -> Result<Self, ModelError> {
        for file in ["config.json", "tokenizer.json", "model.safetensors"] {
            if !root.join(file).is_file() {
                return Err(ModelError::MissingFile {
                    dir: root.to_path_buf(),
                    file,
                });
            }
        }
        let config: serde_json::Value = read_json(&root.join("config.json"))?;
        check_model_type(&config)?;
        let max_positions = config["max_position_embeddings"].as_u64().unwrap_or(512) as usize;
        let trained_seq_len = sentence_max_seq_len(root)?
            .unwrap_or(max_positions)
            .min(max_positions);
        let (name, version) = identify(root)?;
        let pooling = read_pooling(root)?;
        let classifier_labels = crate::sequence_head::classifier_labels(&config);
        Ok(Self {
            root: root.to_path_buf(),
            name,
            version,
            config,
            max_positions,
            trained_seq_len,
            pooling,
            classifier_labels,
        })
    }

    pub fn weights(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.root.join("tokenizer.json")
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let bytes = std::fs::read(path).map_err(ModelError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| ModelError::Json {
        path: path.into(),
        source,
    })
}

fn check_model_type(config: &serde_json::Value) -> Result<(), ModelError> {
    match config["model_type"].as_str() {
        Some("bert") | None => Ok(()),
        Some(other) => Err(ModelError::Unsupported {
            found: other.into(),
            supported: SUPPORTED,
        }),
    }
}

fn sentence_max_seq_len(root: &Path) -> Result<Option<usize>, ModelError> {
    let path = root.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let config: serde_json::Value = read_json(&path)?;
    Ok(config["max_seq_length"].as_u64().map(|n| n as usize))
}

/// Pooling as the directory's sentence-transformers config declares it; mean otherwise.
fn read_pooling(root: &Path) -> Result<Pooling, ModelError> {
    let path = root.join("1_Pooling/config.json");
    if !path.is_file() {
        return Ok(Pooling::Mean);
    }
    let config: serde_json::Value = read_json(&path)?;
    let flag = |key: &str| config[key].as_bool().unwrap_or(false);
    match (
        flag("pooling_mode_mean_tokens"),
        flag("pooling_mode_cls_token"),
    ) {
        (true, _) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(ModelError::Unsupported {
            found: format!("pooling in {}", path.display()),
            supported: "mean or cls pooling",
        }),
    }
}

/// Name and version: from the manifest `models pull` wrote, else the directory name and
/// a hash of the weights, so two different checkpoints never report the same version.
fn identify(root: &Path) -> Result<(String, String), ModelError> {
    let manifest = root.join(MANIFEST_FILE);
    if manifest.is_file() {
        let manifest: Manifest = read_json(&manifest)?;
        return Ok((manifest.name, manifest.version));
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digest = sha256_file(&root.join("model.safetensors"))?;
    Ok((name, format!("sha256:{}", &digest[..12])))
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(ModelError::io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(ModelError::io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelDir::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("missing config.json"), "{err}");
    }

    #[test]
    fn unsupported_architecture_is_named() {
        let config = serde_json::json!({"model_type": "gpt2"});
        let err = check_model_type(&config).unwrap_err();
        assert!(
            err.to_string().contains("\"gpt2\" is not supported"),
            "{err}"
        );
    }
}
