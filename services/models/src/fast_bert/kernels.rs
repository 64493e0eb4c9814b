//! The arithmetic of the fast encoder: matrix multiplies (through the `gemm` crate,
//! which picks AVX-512 or AVX2 kernels at run time), fused bias/residual/layer-norm,
//! GELU, and per-sequence attention. Rows are split across threads with rayon.

use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

/// Rows per parallel task for row-wise kernels: big enough to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// `out[t, n] = Σ_k x[t, k] · w[n, k]` for `x` [rows × k] and `w` [n × k] (row-major), so
/// weights stay in the layout Hugging Face stores them.
pub fn matmul_transposed(
    x: &[f32],
    rows: usize,
    w: &[f32],
    n: usize,
    k: usize,
    out: &mut [f32],
    threads: usize,
) {
    assert!(
        x.len() >= rows * k && w.len() == n * k && out.len() >= rows * n,
        "matmul shapes"
    );
    if rows == 0 {
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let (k_i, n_i) = (k as isize, n as isize);
    #[allow(unsafe_code)]
    // SAFETY: the assert above proves every index the strides reach is inside the three
    // slices: dst rows×n with row stride n, lhs rows×k with row stride k, and rhs read as
    // a k×n matrix whose (kk, nn) element is w[nn * k + kk]. `out` is borrowed mutably, so
    // nothing else reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n_i,
            false,
            x.as_ptr(),
            1,
            k_i,
            w.as_ptr(),
            k_i,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A strided view of a matrix: element (row, col) at `offset + row * row_stride + col`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    offset: usize,
    row_stride: usize,
    col_stride: usize,
}

impl Strided<'_> {
    fn last_index(&self, rows: usize, cols: usize) -> usize {
        self.offset + (rows - 1) * self.row_stride + (cols - 1) * self.col_stride
    }
}

/// `out[m × n] = a[m × k] · b[k × n]` on one thread, for the small per-head products of
/// attention, reading `a` and `b` in place through their strides.
fn small_matmul(a: Strided<'_>, b: Strided<'_>, m: usize, k: usize, n: usize, out: &mut [f32]) {
    assert!(
        m > 0 && k > 0 && n > 0 && out.len() >= m * n,
        "small matmul shapes"
    );
    assert!(
        a.last_index(m, k) < a.data.len() && b.last_index(k, n) < b.data.len(),
        "small matmul bounds"
    );
    #[allow(unsafe_code)]
    // SAFETY: the asserts above bound the largest index each strided operand reaches, and
    // `out` (m × n, row stride n) is an exclusive borrow.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(a.offset),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr().add(b.offset),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Adds `bias` to every row of `x` [rows × bias.len()].
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    let width = bias.len();
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .for_each(|chunk| bias_rows(chunk, bias));
}

/// `x = layer_norm(x + bias + residual)` row by row, in place.
pub fn bias_residual_norm(
    x: &mut [f32],
    bias: &[f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = bias.len();
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .zip(residual.par_chunks(width * ROWS_PER_TASK))
        .for_each(|(chunk, res)| {
            for (row, res) in chunk.chunks_exact_mut(width).zip(res.chunks_exact(width)) {
                for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
                    *v += b + r;
                }
                normalise_row(row, gamma, beta, eps);
            }
        });
}

/// Layer norm of every row of `x` in place.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    x.par_chunks_mut(width * ROWS_PER_TASK).for_each(|chunk| {
        chunk
            .chunks_exact_mut(width)
            .for_each(|row| normalise_row(row, gamma, beta, eps));
    });
}

#[inline(always)]
fn normalise_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let scale = 1.0 / (variance + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * scale * g + b;
    }
}

/// `x = gelu(x + bias)` with the exact (erf) GELU BERT uses.
pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    let width = bias.len();
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .for_each(|chunk| gelu_rows(chunk, bias));
}

/// erf with absolute error below 1.2e-7 (a rational approximation after Abramowitz and
/// Stegun 7.1.26, refined), branch-free so it vectorises.
#[inline(always)]
#[allow(clippy::excessive_precision)] // published coefficients, kept as printed
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    // Numerical Recipes' erfc approximation (fractional error < 1.2e-7).
    let poly = -a * a - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(poly);
    (1.0 - erfc).copysign(x)
}

/// e^x with relative error below 2e-7 for the range softmax and erf use, written without
/// branches or library calls so that it vectorises (libm's expf does not).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // x − n·ln 2 in two parts, so the reduced argument keeps its precision.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_52
                        + r * (0.008_333_45 + r * (0.001_394_4 + r * 0.000_198_4))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Self-attention over packed sequences. `qkv` holds, per token, its query, key and value
/// ([tokens × 3·hidden]); `context` receives per token the attention output
/// ([tokens × hidden]). Sequences attend only to themselves, so no padding or mask exists.
/// Each (sequence, head) pair is one task: two small matrix multiplies around a softmax.
pub fn attention(qkv: &[f32], context: &mut [f32], lengths: &[usize], hidden: usize, heads: usize) {
    let head_dim = hidden / heads;
    let mut starts = Vec::with_capacity(lengths.len());
    let mut at = 0;
    for &len in lengths {
        starts.push(at);
        at += len;
    }
    let tasks: Vec<(usize, usize)> = (0..lengths.len())
        .flat_map(|s| (0..heads).map(move |h| (s, h)))
        .collect();
    let outputs: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(s, head)| {
            head_attention(
                qkv,
                starts[s],
                lengths[s],
                hidden,
                head * head_dim,
                head_dim,
            )
        })
        .collect();
    for (&(s, head), out) in tasks.iter().zip(outputs) {
        let offset = head * head_dim;
        for (i, row) in out.chunks_exact(head_dim).enumerate() {
            let at = (starts[s] + i) * hidden + offset;
            context[at..at + head_dim].copy_from_slice(row);
        }
    }
}

/// One head of one sequence: softmax(q·kᵀ/√d)·v, as a [len × head_dim] block.
fn head_attention(
    qkv: &[f32],
    start: usize,
    len: usize,
    hidden: usize,
    offset: usize,
    head_dim: usize,
) -> Vec<f32> {
    let stride = 3 * hidden;
    let base = start * stride + offset;
    let q = Strided {
        data: qkv,
        offset: base,
        row_stride: stride,
        col_stride: 1,
    };
    // kᵀ: element (c, j) is k[j][c].
    let k_t = Strided {
        data: qkv,
        offset: base + hidden,
        row_stride: 1,
        col_stride: stride,
    };
    let v = Strided {
        data: qkv,
        offset: base + 2 * hidden,
        row_stride: stride,
        col_stride: 1,
    };
    let mut scores = vec![0.0f32; len * len];
    small_matmul(q, k_t, len, head_dim, len, &mut scores);
    let scale = 1.0 / (head_dim as f32).sqrt();
    softmax_rows(&mut scores, len, scale);
    let mut out = vec![0.0f32; len * head_dim];
    let p = Strided {
        data: &scores,
        offset: 0,
        row_stride: len,
        col_stride: 1,
    };
    small_matmul(p, v, len, len, head_dim, &mut out);
    out
}

/// Row loops below are compiled for AVX-512, AVX2+FMA and plain x86-64 and picked at run
/// time, so they vectorise without building for one machine. Their helpers are
/// `inline(always)` so they are compiled inside each version.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn softmax_rows(scores: &mut [f32], len: usize, scale: f32) {
    scores
        .chunks_exact_mut(len)
        .for_each(|row| softmax_row(row, scale));
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn bias_rows(chunk: &mut [f32], bias: &[f32]) {
    for row in chunk.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn bias_residual_norm_rows(
    chunk: &mut [f32],
    bias: &[f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = bias.len();
    for (row, res) in chunk
        .chunks_exact_mut(width)
        .zip(residual.chunks_exact(width))
    {
        for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
            *v += b + r;
        }
        normalise_row(row, gamma, beta, eps);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn norm_rows(chunk: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    chunk
        .chunks_exact_mut(gamma.len())
        .for_each(|row| normalise_row(row, gamma, beta, eps));
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn gelu_rows(chunk: &mut [f32], bias: &[f32]) {
    for row in chunk.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let y = *v + b;
            *v = 0.5 * y * (1.0 + erf(y * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

#[inline(always)]
fn softmax_row(row: &mut [f32], scale: f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in row.iter_mut() {
        *s = exp((*s - max) * scale);
        sum += *s;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|s| *s *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-1.5, -0.966_105_2),
            (3.0, 0.999_977_9),
        ] {
            assert!(
                (erf(x) - want).abs() < 2e-7,
                "erf({x}) = {} want {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn exp_matches_std() {
        for i in -800..=800 {
            let x = i as f32 * 0.1;
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn matmul_against_naive() {
        let (rows, n, k) = (5, 7, 3);
        let x: Vec<f32> = (0..rows * k).map(|i| i as f32 * 0.1).collect();
        let w: Vec<f32> = (0..n * k).map(|i| 1.0 - i as f32 * 0.05).collect();
        let mut out = vec![0.0; rows * n];
        matmul_transposed(&x, rows, &w, n, k, &mut out, 2);
        for t in 0..rows {
            for j in 0..n {
                let want: f32 = (0..k).map(|kk| x[t * k + kk] * w[j * k + kk]).sum();
                assert!((out[t * n + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn attention_is_a_convex_combination_of_values() {
        // One sequence of 2 tokens, hidden 2, one head: identical keys → equal weights.
        let qkv = vec![1.0, 0.0, 1.0, 1.0, 2.0, 4.0, 0.0, 1.0, 1.0, 1.0, 6.0, 8.0];
        let mut context = vec![0.0; 4];
        attention(&qkv, &mut context, &[2], 2, 1);
        assert_eq!(context, vec![4.0, 6.0, 4.0, 6.0]);
    }
}
