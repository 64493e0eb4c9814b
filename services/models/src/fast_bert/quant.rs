//! Int8 linear layers. Weights are quantised once, symmetrically per output channel;
//! activations per token (row) when they are used, around the row's midrange: GELU
//! outputs (never below −0.17) and rows with one-sided outliers then get twice the
//! resolution a range symmetric about zero would give. Products are summed exactly in i32
//! and scaled back to f32 with the midrange term and the bias added, so the only error is
//! the rounding to int8.
//!
//! The inner tile runs on AVX-512 VNNI (`vpdpbusd`) where the CPU has it and on portable
//! code elsewhere. Integer sums are exact, so both give bit-identical results; tests
//! check that.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. Weights are the unsigned side, stored
//! as `q + 128`; the extra `128 · Σ activations` per row is subtracted in the epilogue.

use super::kernels::{gelu, max_map};
use super::vnni;
use multiversion::multiversion;

/// Rows of one tile.
pub const TILE_ROWS: usize = 8;
/// Output columns of one tile: three 16-lane i32 vectors.
pub const TILE_COLS: usize = 48;
/// Inputs summed per step (one 32-bit lane holds four bytes).
const GROUP: usize = 4;

/// The i32 sums of one tile, row by row.
pub type Tile = [[i32; TILE_COLS]; TILE_ROWS];

/// Which implementation runs the tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKernel {
    /// AVX-512 VNNI; only constructed after the CPU was seen to have it.
    Vnni,
    /// Plain Rust: any CPU, same integers, slower.
    Portable,
}

impl TileKernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        if vnni::available() {
            TileKernel::Vnni
        } else {
            TileKernel::Portable
        }
    }

    fn run(self, rows: &[i8], stride: usize, panel: &[u8], groups: usize, acc: &mut Tile) {
        match self {
            TileKernel::Vnni => vnni::tile(rows, stride, panel, groups, acc),
            TileKernel::Portable => portable_tile(rows, stride, panel, groups, acc),
        }
    }
}

/// What is applied to each output after scaling back to f32 and adding the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Gelu,
}

/// A linear layer `y = x · wᵀ + b` with `w` [outputs × inputs] quantised per output.
/// Packed by panels of `TILE_COLS` outputs: for each group of four inputs, the four
/// weights of each output of the panel, as `q + 128`.
pub struct PackedLinear {
    outputs: usize,
    groups: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
    /// Per output, the sum of its dequantised weights: what a row's midrange adds.
    weight_sums: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Quantises `weight` ([outputs × inputs], as Hugging Face stores it) and packs it.
    pub fn new(weight: &[f32], bias: Vec<f32>) -> Self {
        let outputs = bias.len();
        assert!(
            outputs > 0 && weight.len().is_multiple_of(outputs),
            "linear shape"
        );
        let inputs = weight.len() / outputs;
        let groups = inputs.div_ceil(GROUP);
        let panels = outputs.div_ceil(TILE_COLS);
        // Padding (outputs past the end, inputs past the end) holds q = 0.
        let mut data = vec![128u8; panels * groups * TILE_COLS * GROUP];
        let mut scales = Vec::with_capacity(outputs);
        let mut weight_sums = Vec::with_capacity(outputs);
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            let (panel, col) = (o / TILE_COLS, o % TILE_COLS);
            let mut sum = 0i32;
            for (i, &v) in row.iter().enumerate() {
                let q = (v / scale).round_ties_even().clamp(-127.0, 127.0) as i32;
                sum += q;
                let (group, lane) = (i / GROUP, i % GROUP);
                let at = ((panel * groups + group) * TILE_COLS + col) * GROUP + lane;
                data[at] = (q + 128) as u8;
            }
            weight_sums.push(sum as f32 * scale);
        }
        Self {
            outputs,
            groups,
            data,
            scales,
            weight_sums,
            bias,
        }
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `out[r] = act(rows[r] · wᵀ + b)` for every row of `rows`; `out` is
    /// [rows × outputs], row-major.
    pub fn apply(
        &self,
        rows: &QuantizedRows,
        kernel: TileKernel,
        activation: Activation,
        out: &mut [f32],
    ) {
        assert!(
            rows.groups == self.groups,
            "inputs differ from the weights'"
        );
        assert!(out.len() >= rows.rows * self.outputs, "output too small");
        let panel_len = self.groups * TILE_COLS * GROUP;
        let stride = self.groups * GROUP;
        let mut acc = [[0i32; TILE_COLS]; TILE_ROWS];
        for (p, panel) in self.data.chunks_exact(panel_len).enumerate() {
            let cols = p * TILE_COLS..((p + 1) * TILE_COLS).min(self.outputs);
            for first in (0..rows.rows).step_by(TILE_ROWS) {
                let tile_rows = &rows.data[first * stride..(first + TILE_ROWS) * stride];
                kernel.run(tile_rows, stride, panel, self.groups, &mut acc);
                let valid = (rows.rows - first).min(TILE_ROWS);
                for (r, sums) in acc.iter().enumerate().take(valid) {
                    let row = first + r;
                    let quantized = QuantizedRow {
                        scale: rows.scales[row],
                        middle: rows.middles[row],
                        offset: 128 * rows.sums[row],
                    };
                    let dst = &mut out[row * self.outputs..][cols.clone()];
                    let n = dst.len();
                    finish_row(
                        &sums[..n],
                        quantized,
                        Columns {
                            scales: &self.scales[cols.clone()],
                            weight_sums: &self.weight_sums[cols.clone()],
                            bias: &self.bias[cols.clone()],
                        },
                        activation,
                        dst,
                    );
                }
            }
        }
    }
}

/// One quantised activation row: `x ≈ scale · q + middle`; `offset` undoes the `+ 128`
/// of the weights (`128 · Σ q`).
#[derive(Clone, Copy)]
struct QuantizedRow {
    scale: f32,
    middle: f32,
    offset: i32,
}

/// The per-output constants of a tile's columns.
struct Columns<'a> {
    scales: &'a [f32],
    weight_sums: &'a [f32],
    bias: &'a [f32],
}

/// Scales one row of a tile back to f32, adds the midrange term and the bias, and
/// applies the activation.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn finish_row(
    sums: &[i32],
    row: QuantizedRow,
    columns: Columns<'_>,
    activation: Activation,
    out: &mut [f32],
) {
    let values = out
        .iter_mut()
        .zip(sums)
        .zip(columns.scales)
        .zip(columns.weight_sums.iter().zip(columns.bias));
    let linear = |s: i32, w: f32, sum: f32, b: f32| {
        ((s - row.offset) as f32).mul_add(row.scale * w, row.middle.mul_add(sum, b))
    };
    match activation {
        Activation::None => values.for_each(|(((o, &s), &w), (&sum, &b))| {
            *o = linear(s, w, sum, b);
        }),
        Activation::Gelu => values.for_each(|(((o, &s), &w), (&sum, &b))| {
            *o = gelu(linear(s, w, sum, b));
        }),
    }
}

/// Activations quantised per row around the row's midrange: `x ≈ scale · q + middle`,
/// with q in [-127, 127]. Rows are padded with zeros to whole tiles and inputs to whole
/// groups (padding inputs meet zero weights, so their `middle` adds nothing).
#[derive(Default)]
pub struct QuantizedRows {
    rows: usize,
    groups: usize,
    data: Vec<i8>,
    scales: Vec<f32>,
    middles: Vec<f32>,
    sums: Vec<i32>,
}

impl QuantizedRows {
    /// Quantises `x` ([rows × width], row-major), reusing this buffer.
    pub fn quantize(&mut self, x: &[f32], width: usize) {
        assert!(
            width > 0 && x.len().is_multiple_of(width),
            "activation shape"
        );
        let rows = x.len() / width;
        self.rows = rows;
        self.groups = width.div_ceil(GROUP);
        let stride = self.groups * GROUP;
        self.data.clear();
        self.data
            .resize(rows.next_multiple_of(TILE_ROWS) * stride, 0);
        self.scales.clear();
        self.middles.clear();
        self.sums.clear();
        for (row, q) in x
            .chunks_exact(width)
            .zip(self.data.chunks_exact_mut(stride))
        {
            let (scale, middle, sum) = quantize_row(row, &mut q[..width]);
            self.scales.push(scale);
            self.middles.push(middle);
            self.sums.push(sum);
        }
    }
}

/// Quantises one row symmetrically about its midrange; returns its scale, the midrange
/// and the sum of its integers.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn quantize_row(row: &[f32], out: &mut [i8]) -> (f32, f32, i32) {
    let max = max_map(row, f32::NEG_INFINITY, |v| v);
    let min = -max_map(row, f32::NEG_INFINITY, |v| -v);
    let (middle, half) = (0.5 * (max + min), 0.5 * (max - min));
    if half <= 0.0 || !half.is_finite() {
        out.fill(0);
        return (1.0, if middle.is_finite() { middle } else { 0.0 }, 0);
    }
    let inverse = 127.0 / half;
    let mut sum = 0i32;
    for (q, &v) in out.iter_mut().zip(row) {
        let i = round_to_i32((v - middle) * inverse).clamp(-127, 127);
        sum += i;
        *q = i as i8;
    }
    (half / 127.0, middle, sum)
}

/// Rounds half to even for |x| < 2²²: adding 1.5·2²³ leaves the rounded integer in the
/// low mantissa bits. Unlike `as i32`, whose saturation is scalar code, this vectorises.
#[inline(always)]
fn round_to_i32(x: f32) -> i32 {
    (x + 12_582_912.0).to_bits() as i32 - 0x4B40_0000
}

/// The tile in plain Rust: `acc[r][c] = Σ_i rows[r][i] · panel[i][c]`, the signed input
/// times the unsigned (offset) weight, exactly what `vpdpbusd` accumulates.
fn portable_tile(rows: &[i8], stride: usize, panel: &[u8], groups: usize, acc: &mut Tile) {
    for (r, sums) in acc.iter_mut().enumerate() {
        sums.fill(0);
        let row = &rows[r * stride..r * stride + groups * GROUP];
        for (group, x) in row.chunks_exact(GROUP).enumerate() {
            let weights = &panel[group * TILE_COLS * GROUP..(group + 1) * TILE_COLS * GROUP];
            for (sum, w) in sums.iter_mut().zip(weights.chunks_exact(GROUP)) {
                *sum += w
                    .iter()
                    .zip(x)
                    .map(|(&w, &x)| i32::from(w) * i32::from(x))
                    .sum::<i32>();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, len: usize, spread: f32) -> Vec<f32> {
        (0..len)
            .map(|_| rng.random_range(-spread..spread))
            .collect()
    }

    /// `x · wᵀ + b` in f64, the reference the int8 layer approximates.
    fn reference(x: &[f32], w: &[f32], b: &[f32], k: usize) -> Vec<f32> {
        x.chunks_exact(k)
            .flat_map(|row| {
                w.chunks_exact(k).zip(b).map(move |(col, &bias)| {
                    let dot: f64 = row
                        .iter()
                        .zip(col)
                        .map(|(&a, &c)| a as f64 * c as f64)
                        .sum();
                    (dot + bias as f64) as f32
                })
            })
            .collect()
    }

    /// The most rounding to int8 can move each output: every factor is off by at most
    /// half its row's step (max |·| / 127), plus a little f32 rounding.
    fn error_bounds(x: &[f32], w: &[f32], k: usize) -> Vec<f32> {
        let half_step = |row: &[f32]| row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 254.0;
        x.chunks_exact(k)
            .flat_map(|row| {
                let dx = half_step(row);
                w.chunks_exact(k).map(move |col| {
                    let dw = half_step(col);
                    let sum: f32 = row
                        .iter()
                        .zip(col)
                        .map(|(a, c)| a.abs() * dw + c.abs() * dx + dx * dw)
                        .sum();
                    sum * 1.001 + 1e-5
                })
            })
            .collect()
    }

    #[test]
    fn vnni_and_portable_tiles_give_the_same_integers() {
        if !vnni::available() {
            eprintln!("no AVX-512 VNNI here: only the portable tile runs");
            return;
        }
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let groups = rng.random_range(1..40);
            let stride = groups * GROUP + 4 * rng.random_range(0..3);
            let rows: Vec<i8> = (0..TILE_ROWS * stride).map(|_| rng.random()).collect();
            let panel: Vec<u8> = (0..groups * TILE_COLS * GROUP)
                .map(|_| rng.random())
                .collect();
            let (mut a, mut b) = ([[0; TILE_COLS]; TILE_ROWS], [[1; TILE_COLS]; TILE_ROWS]);
            TileKernel::Vnni.run(&rows, stride, &panel, groups, &mut a);
            TileKernel::Portable.run(&rows, stride, &panel, groups, &mut b);
            assert_eq!(a, b, "groups {groups} stride {stride}");
        }
    }

    #[test]
    fn int8_linear_tracks_f32_on_random_shapes() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut quantized = QuantizedRows::default();
        for _ in 0..40 {
            let (rows, k, n) = (
                rng.random_range(1..30),
                rng.random_range(1..100),
                rng.random_range(1..130),
            );
            let (x, w, b) = (
                random(&mut rng, rows * k, 2.0),
                random(&mut rng, n * k, 0.5),
                random(&mut rng, n, 1.0),
            );
            let want = reference(&x, &w, &b, k);
            let linear = PackedLinear::new(&w, b.clone());
            quantized.quantize(&x, k);
            let bounds = error_bounds(&x, &w, k);
            for kernel in [TileKernel::detect(), TileKernel::Portable] {
                let mut got = vec![f32::NAN; rows * n];
                linear.apply(&quantized, kernel, Activation::None, &mut got);
                for ((g, w), bound) in got.iter().zip(&want).zip(&bounds) {
                    assert!((g - w).abs() <= *bound, "{rows}x{k}x{n}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn gelu_epilogue_applies_after_the_bias() {
        let linear = PackedLinear::new(&[1.0, 0.0, 0.0, 1.0], vec![0.5, -3.0]);
        let mut rows = QuantizedRows::default();
        rows.quantize(&[1.0, 2.0], 2);
        let mut out = [0.0; 2];
        linear.apply(&rows, TileKernel::detect(), Activation::Gelu, &mut out);
        assert!((out[0] - gelu(1.5)).abs() < 1e-2 && (out[1] - gelu(-1.0)).abs() < 1e-2);
    }

    #[test]
    fn zero_rows_and_weights_stay_zero() {
        let linear = PackedLinear::new(&[0.0; 6], vec![0.0; 2]);
        let mut rows = QuantizedRows::default();
        rows.quantize(&[0.0; 9], 3);
        let mut out = [f32::NAN; 6];
        linear.apply(&rows, TileKernel::detect(), Activation::None, &mut out);
        assert_eq!(out, [0.0; 6]);
    }
}
