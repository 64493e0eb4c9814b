//! The exact path: BERT on candle tensors, padded batches with an attention mask, then
//! masked pooling; f32, bf16 or f16 weights, on CPU or CUDA. The layers are candle's
//! `BertEncoder`. Embeddings and the mask are built here because candle's `BertModel`
//! builds its mask from `f32::MIN`, which rounds to −∞ in bf16 and f16, and multiplies it
//! by zero at every kept position: NaN everywhere.

use crate::{DeviceKind, ModelDir, ModelError, SequenceStates};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Embedding, LayerNorm, Module, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config};

/// What a padded position adds to attention scores: finite in every float type, and
/// e^−10000 is as zero as e^−∞ after the softmax.
const MASKED: f64 = -10_000.0;

pub struct CandleBert {
    embeddings: Embeddings,
    encoder: BertEncoder,
    device: Device,
    dtype: DType,
    pad_id: u32,
}

impl CandleBert {
    pub fn load(
        dir: &ModelDir,
        device: DeviceKind,
        dtype: DType,
        pad_id: u32,
    ) -> Result<Self, ModelError> {
        let config: Config =
            serde_json::from_value(dir.config.clone()).map_err(|source| ModelError::Json {
                path: dir.root.join("config.json"),
                source,
            })?;
        let candle_device = device.open()?;
        let vb = weights(dir, dtype, &candle_device)?;
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), &config)?,
            encoder: BertEncoder::load(vb.pp("encoder"), &config)?,
            device: candle_device,
            dtype,
            pad_id,
        })
    }

    /// The first-token state and the masked mean state of each of `sequences` (special
    /// tokens included), from the last layer, pooled in f32 whatever the weights' type.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<SequenceStates>, ModelError> {
        let (ids, mask) = self.pad_batch(sequences)?;
        let additive = ((mask.to_dtype(DType::F32)? - 1.0)? * -MASKED)?
            .to_dtype(self.dtype)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let hidden = self
            .encoder
            .forward(&self.embeddings.forward(&ids)?, &additive)?
            .to_dtype(DType::F32)?;
        let first: Vec<Vec<f32>> = hidden.narrow(1, 0, 1)?.squeeze(1)?.to_vec2()?;
        let mean: Vec<Vec<f32>> = masked_mean(&hidden, &mask)?.to_vec2()?;
        Ok(first
            .into_iter()
            .zip(mean)
            .map(|(first, mean)| SequenceStates { first, mean })
            .collect())
    }

    /// Token ids padded to the batch's longest, and the attention mask.
    fn pad_batch(&self, sequences: &[&[u32]]) -> Result<(Tensor, Tensor), ModelError> {
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * longest);
        let mut mask = Vec::with_capacity(sequences.len() * longest);
        for sequence in sequences {
            ids.extend_from_slice(sequence);
            mask.resize(mask.len() + sequence.len(), 1u32);
            ids.resize(ids.len() + longest - sequence.len(), self.pad_id);
            mask.resize(ids.len(), 0u32);
        }
        let shape = (sequences.len(), longest);
        Ok((
            Tensor::from_vec(ids, shape, &self.device)?,
            Tensor::from_vec(mask, shape, &self.device)?,
        ))
    }
}

/// Word, position and token-type embeddings (every token of type 0), layer-normalised.
struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let table = |rows, name| candle_nn::embedding(rows, config.hidden_size, vb.pp(name));
        Ok(Self {
            words: table(config.vocab_size, "word_embeddings")?,
            positions: table(config.max_position_embeddings, "position_embeddings")?,
            token_types: table(config.type_vocab_size, "token_type_embeddings")?,
            norm: candle_nn::layer_norm(
                config.hidden_size,
                config.layer_norm_eps,
                vb.pp("LayerNorm"),
            )?,
        })
    }

    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, tokens) = ids.dims2()?;
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let summed = (self.words.forward(ids)? + self.token_types.forward(&ids.zeros_like()?)?)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        self.norm.forward(&summed)
    }
}

/// The model's weights in `dtype`, under the checkpoint's `bert.` prefix when it has one.
#[allow(unsafe_code)]
fn weights<'a>(
    dir: &ModelDir,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'a>, ModelError> {
    // SAFETY: the weights file is memory-mapped read-only; Longview never writes to model
    // files while they are loaded, and `models pull` replaces them only by rename.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.weights()], dtype, device)? };
    Ok(
        match vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            true => vb.pp("bert"),
            false => vb,
        },
    )
}

/// Mean of token vectors `[batch, tokens, hidden]` over the tokens the mask keeps.
fn masked_mean(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}
