//! The f32 arithmetic of the fast encoder: matrix multiplies (through the `gemm` crate,
//! which picks AVX-512 or AVX2 kernels at run time), fused bias/residual/layer-norm and
//! GELU. Rows are split across threads with rayon.

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
        .for_each(|(chunk, res)| bias_residual_norm_rows(chunk, bias, res, gamma, beta, eps));
}

/// Layer norm of every row of `x` in place.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .for_each(|chunk| norm_rows(chunk, gamma, beta, eps));
}

#[inline(always)]
fn normalise_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum_map(row, |v| v) / n;
    let variance = sum_map(row, |v| (v - mean) * (v - mean)) / n;
    let scale = 1.0 / (variance + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = ((*v - mean) * scale).mul_add(*g, *b);
    }
}

/// `x = gelu(x + bias)` with the exact (erf) GELU BERT uses.
pub fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    let width = bias.len();
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .for_each(|chunk| gelu_rows(chunk, bias));
}

/// The exact (erf) GELU that BERT uses, written as `x/2 · erfc(−x/√2)` so that it keeps
/// its relative precision for negative inputs too.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * erfc(-x * std::f32::consts::FRAC_1_SQRT_2)
}

/// erfc with fractional error below 1.2e-7 for x ≥ 0 (Numerical Recipes' Chebyshev fit),
/// and 2 − erfc(−x) below, branch-free so it vectorises. Polynomials use `mul_add`: Rust
/// never fuses a·b + c by itself, and fused they take half the instructions.
#[inline(always)]
#[allow(clippy::excessive_precision)] // published coefficients, kept as printed
pub fn erfc(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / 0.5f32.mul_add(a, 1.0);
    let poly = [
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        -1.265_512_2,
    ]
    .iter()
    .fold(0.170_872_77f32, |p, &c| p.mul_add(t, c));
    let tail = t * exp((-a).mul_add(a, poly));
    if x >= 0.0 { tail } else { 2.0 - tail }
}

/// e^x with relative error below 2e-7 for the range softmax and erf use, written without
/// branches or library calls so that it vectorises (libm's expf does not).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = x.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    // x − n·ln 2 in two parts, so the reduced argument keeps its precision.
    let r = n.mul_add(-1.428_606_8e-6, n.mul_add(-0.693_145_75, x));
    let p = [
        0.001_394_4,
        0.008_333_45,
        0.041_666_52,
        0.166_666_67,
        0.5,
        1.0,
        1.0,
    ]
    .iter()
    .fold(0.000_198_4f32, |p, &c| p.mul_add(r, c));
    // 2^n built in the exponent bits: adding 2^23 puts the integer n + 127 (1..=254) in
    // the low mantissa bits and the shift moves it into the exponent. Unlike `as i32`,
    // whose saturation is scalar code, this stays in vector registers.
    let biased = (n + (127.0 + 8_388_608.0)).to_bits();
    p * f32::from_bits(biased << 23)
}

/// Lanes of the reductions below: f32 sums are not reassociated by the compiler, so they
/// only vectorise when written as this many independent partial sums.
const LANES: usize = 16;

/// `Σ f(x)`, vectorisable.
#[inline(always)]
pub fn sum_map(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `max f(x)` (at least `floor`), vectorisable.
#[inline(always)]
pub fn max_map(x: &[f32], floor: f32, f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [floor; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(floor, |m, &v| if f(v) > m { f(v) } else { m });
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            let v = f(v);
            *l = if v > *l { v } else { *l };
        }
    }
    lanes.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// Row loops below are compiled for AVX-512, AVX2+FMA and plain x86-64 and picked at run
/// time, so they vectorise without building for one machine. Their helpers are
/// `inline(always)` so they are compiled inside each version.
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

/// `x = layer_norm(x + residual)` row by row on this thread, for callers that already
/// split the rows and added the bias.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
pub fn residual_norm_rows(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for (row, res) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        row.iter_mut().zip(res).for_each(|(v, r)| *v += r);
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
            *v = gelu(*v + b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf(x: f32) -> f32 {
        1.0 - erfc(x)
    }

    #[test]
    fn gelu_keeps_its_precision_for_negative_inputs() {
        // gelu(x) = x·Φ(x); reference values from the exact erf in f64.
        for (x, want) in [
            (-1.0f32, -0.158_655_25f32),
            (-3.0, -0.004_049_694),
            (-5.0, -1.433_258e-6),
            (2.0, 1.954_499_7),
        ] {
            let got = gelu(x);
            assert!(
                ((got - want) / want).abs() < 1e-5,
                "gelu({x}) = {got}, want {want}"
            );
        }
    }

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
}
