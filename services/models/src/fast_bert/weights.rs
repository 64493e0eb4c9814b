//! Reading BERT weights from safetensors into the fast encoder's f32 layers.

use super::{Layer, Linear, Norm};
use crate::ModelError;
use safetensors::{Dtype, SafeTensors};

/// Tensors are named `embeddings.…` in base checkpoints and `bert.embeddings.…` in task ones.
pub(super) fn prefix(tensors: &SafeTensors<'_>) -> &'static str {
    let names = tensors.names();
    if names.iter().any(|n| n.starts_with("bert.embeddings.")) {
        "bert."
    } else {
        ""
    }
}

pub(super) struct Weights<'a> {
    pub tensors: &'a SafeTensors<'a>,
    pub prefix: &'static str,
}

impl Weights<'_> {
    pub fn get(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| ModelError::Tokenizer(format!("weights lack {full}")))?;
        let data = view.data();
        match view.dtype() {
            Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            Dtype::F16 => Ok(data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            Dtype::BF16 => Ok(data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()),
            other => Err(ModelError::Unsupported {
                found: format!("{full} in {other:?}"),
                supported: "f32, f16 or bf16 weights",
            }),
        }
    }

    fn linear(&self, name: &str) -> Result<Linear, ModelError> {
        Ok(Linear {
            weight: self.get(&format!("{name}.weight"))?,
            bias: self.get(&format!("{name}.bias"))?,
        })
    }

    pub fn norm(&self, name: &str) -> Result<Norm, ModelError> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"))?,
            beta: self.get(&format!("{name}.bias"))?,
        })
    }

    pub fn layer(&self, index: usize) -> Result<Layer, ModelError> {
        let at = |part: &str| format!("encoder.layer.{index}.{part}");
        let (q, k, v) = (
            self.linear(&at("attention.self.query"))?,
            self.linear(&at("attention.self.key"))?,
            self.linear(&at("attention.self.value"))?,
        );
        let qkv = Linear {
            weight: [q.weight, k.weight, v.weight].concat(),
            bias: [q.bias, k.bias, v.bias].concat(),
        };
        Ok(Layer {
            qkv,
            attention_out: self.linear(&at("attention.output.dense"))?,
            attention_norm: self.norm(&at("attention.output.LayerNorm"))?,
            ffn_in: self.linear(&at("intermediate.dense"))?,
            ffn_out: self.linear(&at("output.dense"))?,
            ffn_norm: self.norm(&at("output.LayerNorm"))?,
        })
    }
}
