//! A BERT-family encoder: token sequences in, pooled L2-normalised vectors out.

use crate::{DeviceKind, ModelDir, ModelError, Pooling, TextTokenizer};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Serialize;
use std::sync::Arc;

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
}

/// A loaded encoder. Not thread-safe by design: it lives on one model thread.
pub struct Encoder {
    model: BertModel,
    tokenizer: Arc<TextTokenizer>,
    device: Device,
    pooling: Pooling,
    info: ModelInfo,
}

impl Encoder {
    /// Loads the model in `dir` onto `device`.
    pub fn load(dir: &ModelDir, device: DeviceKind) -> Result<Self, ModelError> {
        let tokenizer = Arc::new(TextTokenizer::from_file(&dir.tokenizer())?);
        let config: Config =
            serde_json::from_value(dir.config.clone()).map_err(|source| ModelError::Json {
                path: dir.root.join("config.json"),
                source,
            })?;
        let dtype = device.dtype();
        let candle_device = device.open()?;
        let model = load_weights(dir, &config, dtype, &candle_device)?;
        let info = ModelInfo {
            name: dir.name.clone(),
            version: dir.version.clone(),
            dimensions: config.hidden_size,
            max_positions: dir.max_positions,
            trained_seq_len: dir.trained_seq_len,
            special_tokens: tokenizer.special_tokens().count(),
            device: device.to_string(),
            dtype: format!("{dtype:?}").to_lowercase(),
        };
        Ok(Self {
            model,
            tokenizer,
            device: candle_device,
            pooling: dir.pooling,
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

    /// Encodes content token sequences (special tokens are added here) as one padded batch.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, mask) = self.pad_batch(sequences)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        Ok(l2_normalise(&pooled)?.to_dtype(DType::F32)?.to_vec2()?)
    }

    /// Token ids with special tokens, padded to the batch's longest, and the attention mask.
    fn pad_batch(&self, sequences: &[&[u32]]) -> Result<(Tensor, Tensor), ModelError> {
        let special = self.tokenizer.special_tokens();
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0) + special.count();
        if longest > self.info.max_positions {
            return Err(ModelError::SequenceTooLong {
                tokens: longest,
                max_positions: self.info.max_positions,
            });
        }
        let mut ids = Vec::with_capacity(sequences.len() * longest);
        let mut mask = Vec::with_capacity(sequences.len() * longest);
        for sequence in sequences {
            let before = ids.len();
            ids.extend(
                special
                    .prefix
                    .iter()
                    .chain(sequence.iter())
                    .chain(special.suffix.iter()),
            );
            mask.resize(mask.len() + (ids.len() - before), 1u32);
            ids.resize(before + longest, self.tokenizer.pad_id());
            mask.resize(before + longest, 0u32);
        }
        let shape = (sequences.len(), longest);
        Ok((
            Tensor::from_vec(ids, shape, &self.device)?,
            Tensor::from_vec(mask, shape, &self.device)?,
        ))
    }
}

#[allow(unsafe_code)]
fn load_weights(
    dir: &ModelDir,
    config: &Config,
    dtype: DType,
    device: &Device,
) -> Result<BertModel, ModelError> {
    // SAFETY: the weights file is memory-mapped read-only; Longview never writes to model
    // files while they are loaded, and `models pull` replaces them only by rename.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.weights()], dtype, device)? };
    Ok(BertModel::load(vb, config)?)
}

/// Pools token vectors `[batch, tokens, hidden]` into `[batch, hidden]`, ignoring padding.
fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> candle_core::Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            summed.broadcast_div(&counts)
        }
    }
}

fn l2_normalise(vectors: &Tensor) -> candle_core::Result<Tensor> {
    let norms = vectors
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    vectors.broadcast_div(&norms)
}
