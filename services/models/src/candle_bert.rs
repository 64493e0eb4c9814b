//! The exact path: candle's `BertModel` on padded batches with the attention mask, then
//! masked pooling. Runs on CPU or CUDA.

use crate::{DeviceKind, ModelDir, ModelError, SequenceStates};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

pub struct CandleBert {
    model: BertModel,
    device: Device,
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
            pad_id,
        })
    }

    /// The first-token state and the masked mean state of each of `sequences` (special
    /// tokens included), from the last layer.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<SequenceStates>, ModelError> {
        let (ids, mask) = self.pad_batch(sequences)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let first: Vec<Vec<f32>> = hidden
            .narrow(1, 0, 1)?
            .squeeze(1)?
            .to_dtype(DType::F32)?
            .to_vec2()?;
        let mean: Vec<Vec<f32>> = masked_mean(&hidden, &mask)?
            .to_dtype(DType::F32)?
            .to_vec2()?;
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

/// Mean of token vectors `[batch, tokens, hidden]` over the tokens the mask keeps.
fn masked_mean(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    summed.broadcast_div(&counts)
}
