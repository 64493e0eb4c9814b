//! One encoder layer with int8 linear layers. Tokens are independent everywhere except in
//! attention, so the layer runs as three steps: the QKV projection by blocks of rows,
//! attention by (sequence, head), then everything after attention (output projection,
//! residual and norm, the feed-forward pair, residual and norm) by blocks of rows, each
//! block start to end on one thread while its data is still in cache.

use super::kernels;
use super::quant::{Activation, PackedLinear, QuantizedRows, TileKernel};
use super::{Layer, Norm};
use rayon::prelude::*;
use std::cell::RefCell;

/// Rows (tokens) per block: a whole number of tiles; small enough that a block's
/// feed-forward activations stay in the core's L2, large enough to reuse each weight panel.
const BLOCK_ROWS: usize = 64;

pub struct QuantLayer {
    qkv: PackedLinear,
    attention_out: PackedLinear,
    attention_norm: Norm,
    ffn_in: PackedLinear,
    ffn_out: PackedLinear,
    ffn_norm: Norm,
}

impl From<Layer> for QuantLayer {
    fn from(layer: Layer) -> Self {
        let pack = |l: super::Linear| PackedLinear::new(&l.weight, l.bias);
        Self {
            qkv: pack(layer.qkv),
            attention_out: pack(layer.attention_out),
            attention_norm: layer.attention_norm,
            ffn_in: pack(layer.ffn_in),
            ffn_out: pack(layer.ffn_out),
            ffn_norm: layer.ffn_norm,
        }
    }
}

/// Per-thread buffers for one block, kept between calls.
#[derive(Default)]
struct BlockScratch {
    quantized: QuantizedRows,
    projected: Vec<f32>,
    ffn: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<BlockScratch> = RefCell::default();
}

/// Buffers the layer reads and writes, each [tokens × width].
pub struct LayerBuffers<'a> {
    /// The layer's input, replaced by its output.
    pub hidden: &'a mut [f32],
    pub qkv: &'a mut [f32],
    pub context: &'a mut [f32],
}

impl QuantLayer {
    pub fn forward(
        &self,
        buffers: LayerBuffers<'_>,
        lengths: &[usize],
        heads: usize,
        eps: f32,
        kernel: TileKernel,
    ) {
        let hidden_width = self.attention_out.outputs();
        let LayerBuffers {
            hidden,
            qkv,
            context,
        } = buffers;
        hidden
            .par_chunks(BLOCK_ROWS * hidden_width)
            .zip(qkv.par_chunks_mut(BLOCK_ROWS * self.qkv.outputs()))
            .for_each(|(x, out)| {
                with_scratch(|s| {
                    s.quantized.quantize(x, hidden_width);
                    self.qkv.apply(&s.quantized, kernel, Activation::None, out);
                })
            });
        super::attention::attention(qkv, context, lengths, hidden_width, heads);
        hidden
            .par_chunks_mut(BLOCK_ROWS * hidden_width)
            .zip(context.par_chunks(BLOCK_ROWS * hidden_width))
            .for_each(|(x, context)| {
                with_scratch(|s| self.after_attention(x, context, eps, kernel, s))
            });
    }

    /// Output projection, residual and norm, then the feed-forward pair, residual and
    /// norm, for one block of rows: `x` is the layer input and receives its output.
    fn after_attention(
        &self,
        x: &mut [f32],
        context: &[f32],
        eps: f32,
        kernel: TileKernel,
        s: &mut BlockScratch,
    ) {
        let width = self.attention_out.outputs();
        let rows = x.len() / width;
        s.projected.resize(rows * width, 0.0);
        s.ffn.resize(rows * self.ffn_in.outputs(), 0.0);

        s.quantized.quantize(context, width);
        let projected = &mut s.projected[..rows * width];
        self.attention_out
            .apply(&s.quantized, kernel, Activation::None, projected);
        let norm = &self.attention_norm;
        kernels::residual_norm_rows(projected, x, &norm.gamma, &norm.beta, eps);

        s.quantized.quantize(projected, width);
        let ffn = &mut s.ffn[..rows * self.ffn_in.outputs()];
        self.ffn_in
            .apply(&s.quantized, kernel, Activation::Gelu, ffn);
        s.quantized.quantize(ffn, self.ffn_in.outputs());
        self.ffn_out
            .apply(&s.quantized, kernel, Activation::None, x);
        let norm = &self.ffn_norm;
        kernels::residual_norm_rows(x, projected, &norm.gamma, &norm.beta, eps);
    }
}

fn with_scratch(f: impl FnOnce(&mut BlockScratch)) {
    SCRATCH.with(|cell| f(&mut cell.borrow_mut()));
}
