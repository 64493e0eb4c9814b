//! Reading a GGUF file's metadata: the architecture check and typed look-ups that the
//! tokenizer, the chat template and the generator share.

use crate::ModelError;
use candle_core::quantized::gguf_file::{Content, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Architectures candle's quantized llama runs (Llama 1/2/3, SmolLM, TinyLlama, Mistral
/// and other checkpoints exported as `llama`).
const SUPPORTED: &str = "llama (GGUF general.architecture = \"llama\")";

/// A GGUF file's header: metadata and tensor index, the weights still on disk.
pub(crate) struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
}

impl GgufFile {
    /// Reads the header of a llama-architecture GGUF.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let mut file = std::fs::File::open(path).map_err(ModelError::io(path))?;
        let content = Content::read(&mut file)
            .map_err(|e| ModelError::Gguf(format!("{}: {e}", path.display())))?;
        let gguf = Self {
            path: path.to_path_buf(),
            content,
        };
        match gguf.meta().string("general.architecture") {
            Some("llama") => Ok(gguf),
            other => Err(ModelError::Gguf(format!(
                "{}: architecture {:?} is not supported; supported: {SUPPORTED}",
                path.display(),
                other.unwrap_or("")
            ))),
        }
    }

    pub fn meta(&self) -> Meta<'_> {
        Meta(&self.content.metadata)
    }
}

/// Typed, optional look-ups in GGUF metadata; a key of the wrong type reads as absent.
#[derive(Clone, Copy)]
pub(crate) struct Meta<'a>(pub &'a HashMap<String, Value>);

impl<'a> Meta<'a> {
    pub fn string(&self, key: &str) -> Option<&'a str> {
        self.0.get(key)?.to_string().ok().map(String::as_str)
    }

    pub fn u32(&self, key: &str) -> Option<u32> {
        let value = self.0.get(key)?;
        value
            .to_u32()
            .ok()
            .or_else(|| value.to_i32().ok().and_then(|v| u32::try_from(v).ok()))
            .or_else(|| value.to_u64().ok().and_then(|v| u32::try_from(v).ok()))
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.0.get(key)?.to_bool().ok()
    }

    /// A required array of strings (token texts, merges).
    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>, ModelError> {
        self.array(key)?
            .iter()
            .map(|v| v.to_string().map(String::as_str))
            .collect::<Result<_, _>>()
            .map_err(|e| ModelError::Gguf(format!("{key}: {e}")))
    }

    /// An optional array of numbers read as f32 (SentencePiece scores).
    pub fn f32s(&self, key: &str) -> Result<Option<Vec<f32>>, ModelError> {
        self.optional_array(key, Value::to_f32)
    }

    /// An optional array of integers (token types).
    pub fn i32s(&self, key: &str) -> Result<Option<Vec<i32>>, ModelError> {
        self.optional_array(key, Value::to_i32)
    }

    fn optional_array<T>(
        &self,
        key: &str,
        read: fn(&Value) -> candle_core::Result<T>,
    ) -> Result<Option<Vec<T>>, ModelError> {
        if !self.0.contains_key(key) {
            return Ok(None);
        }
        let values = self.array(key)?.iter().map(read).collect::<Result<_, _>>();
        values
            .map(Some)
            .map_err(|e| ModelError::Gguf(format!("{key}: {e}")))
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>, ModelError> {
        let value = self
            .0
            .get(key)
            .ok_or_else(|| ModelError::Gguf(format!("metadata has no {key}")))?;
        value
            .to_vec()
            .map_err(|e| ModelError::Gguf(format!("{key}: {e}")))
    }
}
