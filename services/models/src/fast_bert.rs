//! A BERT encoder written for CPU inference: sequences are packed end to end (no
//! padding, so no wasted arithmetic on pad tokens and no attention mask to get wrong),
//! the three attention projections run as one matrix multiply, bias, residual and layer
//! norm are fused, and working buffers are reused between calls.
//!
//! In f32 it computes the same function as candle's `BertModel`; with int8 linear layers
//! (AVX-512 VNNI where the CPU has it) it approximates it. Both are compared with candle in
//! tests.

mod attention;
mod int8_layer;
mod kernels;
mod quant;
mod vnni;
mod weights;

use crate::{ModelDir, ModelError, SequenceStates};
use int8_layer::{LayerBuffers, QuantLayer};
use quant::TileKernel;
use safetensors::SafeTensors;
use std::sync::Mutex;
use weights::{Weights, prefix};

/// The arithmetic of the linear layers, which hold nearly all of the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 throughout.
    F32,
    /// Weights int8 per output channel, activations int8 per token, sums in i32;
    /// attention, norms and GELU in f32.
    Int8,
}

/// Whether the int8 path runs at full speed here (AVX-512 VNNI); elsewhere it runs on
/// portable code, correct but slower than f32.
pub fn int8_accelerated() -> bool {
    vnni::available()
}

/// Sizes read from config.json.
#[derive(Clone, Copy, Debug)]
struct Dims {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    max_positions: usize,
    eps: f32,
}

struct Linear {
    /// [out × in], as stored by Hugging Face.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Linear {
    fn out(&self) -> usize {
        self.bias.len()
    }

    fn inputs(&self) -> usize {
        self.weight.len() / self.bias.len()
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

enum Layers {
    F32(Vec<Layer>),
    Int8 {
        layers: Vec<QuantLayer>,
        kernel: TileKernel,
    },
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: Norm,
}

/// Buffers sized for the largest batch seen so far.
#[derive(Default)]
struct Scratch {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    ffn: Vec<f32>,
}

/// The fast encoder. `encode` takes sequences with their special tokens already added.
pub struct FastBert {
    dims: Dims,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Layers,
    scratch: Mutex<Scratch>,
}

impl FastBert {
    pub fn load(dir: &ModelDir, precision: Precision) -> Result<Self, ModelError> {
        let dims = dims(&dir.config)?;
        let bytes = std::fs::read(dir.weights()).map_err(ModelError::io(dir.weights()))?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::Tokenizer(format!("safetensors: {e}")))?;
        let weights = Weights {
            tensors: &tensors,
            prefix: prefix(&tensors),
        };
        let layer_count = dir.config["num_hidden_layers"].as_u64().unwrap_or(0) as usize;
        let layers = (0..layer_count)
            .map(|i| weights.layer(i))
            .collect::<Result<Vec<_>, _>>()?;
        let layers = match precision {
            Precision::F32 => Layers::F32(layers),
            Precision::Int8 => Layers::Int8 {
                layers: layers.into_iter().map(QuantLayer::from).collect(),
                kernel: TileKernel::detect(),
            },
        };
        Ok(Self {
            dims,
            word: weights.get("embeddings.word_embeddings.weight")?,
            position: weights.get("embeddings.position_embeddings.weight")?,
            token_type: weights.get("embeddings.token_type_embeddings.weight")?,
            embedding_norm: weights.norm("embeddings.LayerNorm")?,
            layers,
            scratch: Mutex::default(),
        })
    }

    /// The first-token state and the mean state of each of `sequences` (special tokens
    /// included), from the last layer.
    pub fn encode(&self, sequences: &[&[u32]]) -> Result<Vec<SequenceStates>, ModelError> {
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        if let Some(&longest) = lengths
            .iter()
            .max()
            .filter(|&&l| l > self.dims.max_positions)
        {
            return Err(ModelError::SequenceTooLong {
                tokens: longest,
                max_positions: self.dims.max_positions,
            });
        }
        let tokens: usize = lengths.iter().sum();
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = &mut *guard;
        self.resize(scratch, tokens);
        self.embed(sequences, &mut scratch.hidden)?;
        match &self.layers {
            Layers::F32(layers) => {
                for layer in layers {
                    self.layer(layer, scratch, &lengths, tokens);
                }
            }
            Layers::Int8 { layers, kernel } => {
                for layer in layers {
                    let buffers = LayerBuffers {
                        hidden: &mut scratch.hidden,
                        qkv: &mut scratch.qkv,
                        context: &mut scratch.context,
                    };
                    layer.forward(buffers, &lengths, self.dims.heads, self.dims.eps, *kernel);
                }
            }
        }
        Ok(self.pool(&scratch.hidden, &lengths))
    }

    /// The precision of the linear layers.
    pub fn precision(&self) -> Precision {
        match self.layers {
            Layers::F32(_) => Precision::F32,
            Layers::Int8 { .. } => Precision::Int8,
        }
    }

    fn resize(&self, scratch: &mut Scratch, tokens: usize) {
        let (h, mut i) = (self.dims.hidden, self.dims.intermediate);
        if self.precision() == Precision::Int8 {
            // The int8 layer keeps these per block, per thread.
            i = 0;
        }
        for (buffer, width) in [
            (&mut scratch.hidden, h),
            (&mut scratch.qkv, 3 * h),
            (&mut scratch.context, h),
            (&mut scratch.projected, h.min(i)),
            (&mut scratch.ffn, i),
        ] {
            buffer.resize(tokens * width, 0.0);
        }
    }

    fn embed(&self, sequences: &[&[u32]], hidden: &mut [f32]) -> Result<(), ModelError> {
        let h = self.dims.hidden;
        let vocab = self.word.len() / h;
        let mut rows = hidden.chunks_exact_mut(h);
        for sequence in sequences {
            for (position, &id) in sequence.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(ModelError::Tokenizer(format!(
                        "token id {id} outside the vocabulary of {vocab}"
                    )));
                }
                let row = rows.next().expect("buffer sized for every token");
                let (word, pos) = (
                    &self.word[id * h..(id + 1) * h],
                    &self.position[position * h..(position + 1) * h],
                );
                for (((out, w), p), t) in
                    row.iter_mut().zip(word).zip(pos).zip(&self.token_type[..h])
                {
                    *out = w + p + t;
                }
            }
        }
        kernels::layer_norm(
            hidden,
            &self.embedding_norm.gamma,
            &self.embedding_norm.beta,
            self.dims.eps,
        );
        Ok(())
    }

    fn layer(&self, layer: &Layer, s: &mut Scratch, lengths: &[usize], tokens: usize) {
        let (h, eps, threads) = (
            self.dims.hidden,
            self.dims.eps,
            rayon::current_num_threads(),
        );
        kernels::matmul_transposed(
            &s.hidden,
            tokens,
            &layer.qkv.weight,
            layer.qkv.out(),
            h,
            &mut s.qkv,
            threads,
        );
        kernels::add_bias(&mut s.qkv, &layer.qkv.bias);
        attention::attention(&s.qkv, &mut s.context, lengths, h, self.dims.heads);

        let out = &layer.attention_out;
        kernels::matmul_transposed(
            &s.context,
            tokens,
            &out.weight,
            h,
            out.inputs(),
            &mut s.projected,
            threads,
        );
        let norm = &layer.attention_norm;
        kernels::bias_residual_norm(
            &mut s.projected,
            &out.bias,
            &s.hidden,
            &norm.gamma,
            &norm.beta,
            eps,
        );

        let (ffn_in, ffn_out) = (&layer.ffn_in, &layer.ffn_out);
        kernels::matmul_transposed(
            &s.projected,
            tokens,
            &ffn_in.weight,
            ffn_in.out(),
            h,
            &mut s.ffn,
            threads,
        );
        kernels::bias_gelu(&mut s.ffn, &ffn_in.bias);
        kernels::matmul_transposed(
            &s.ffn,
            tokens,
            &ffn_out.weight,
            h,
            ffn_out.inputs(),
            &mut s.hidden,
            threads,
        );
        let norm = &layer.ffn_norm;
        kernels::bias_residual_norm(
            &mut s.hidden,
            &ffn_out.bias,
            &s.projected,
            &norm.gamma,
            &norm.beta,
            eps,
        );
    }

    fn pool(&self, hidden: &[f32], lengths: &[usize]) -> Vec<SequenceStates> {
        let h = self.dims.hidden;
        let mut start = 0;
        lengths
            .iter()
            .map(|&len| {
                let rows = &hidden[start * h..(start + len) * h];
                start += len;
                let mut mean = vec![0.0f32; h];
                rows.chunks_exact(h)
                    .for_each(|row| mean.iter_mut().zip(row).for_each(|(s, v)| *s += v));
                mean.iter_mut().for_each(|s| *s /= len.max(1) as f32);
                SequenceStates {
                    first: rows[..h].to_vec(),
                    mean,
                }
            })
            .collect()
    }
}

fn dims(config: &serde_json::Value) -> Result<Dims, ModelError> {
    let size = |key: &str| {
        config[key]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| ModelError::Unsupported {
                found: format!("config.json without {key}"),
                supported: "BERT configs",
            })
    };
    let dims = Dims {
        hidden: size("hidden_size")?,
        heads: size("num_attention_heads")?,
        intermediate: size("intermediate_size")?,
        max_positions: size("max_position_embeddings")?,
        eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
    };
    let act = config["hidden_act"].as_str().unwrap_or("gelu");
    if act != "gelu" || !dims.hidden.is_multiple_of(dims.heads) {
        return Err(ModelError::Unsupported {
            found: format!("hidden_act {act:?} / {} heads", dims.heads),
            supported: "gelu BERT models",
        });
    }
    Ok(dims)
}
