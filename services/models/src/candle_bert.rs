//! The exact path: candle's `BertModel` on padded batches with the attention mask, then
//! masked pooling. Runs on CPU or CUDA.

use crate::{DeviceKind, ModelDir, ModelError, Pooling};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

pub struct CandleBert {
    model: BertModel,
    device: Device,
    pooling: Pooling,
    pad_id: u32,
}

impl CandleBert {
    pub fn load(dir: &ModelDir, device: DeviceKind, pad_id: u32) -> Result<Self, ModelError> {
        let config: Config =
            serde_json::from_value(dir.config.clone()).map_err(|source| ModelError::Json {
                path: dir.root.join("config.json"),
                source,
            })?;
        let candle_device = device.open()?;
        let model = load_weights(dir, &config, device.dtype(), &candle_device)?;
        Ok(Self {
            model,
            device: candle_device,
            pooling: dir.pooling,
            pad_id,
        })
    }

    /// Pooled, L2-normalised vectors of `sequences` (special tokens included).
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        let (ids, mask) = self.pad_batch(sequences)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        Ok(l2_normalise(&pooled)?.to_dtype(DType::F32)?.to_vec2()?)
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
