//! Self-attention over packed sequences: each sequence attends only to itself, so there
//! is no padding and no mask. Work is split by blocks of query rows (a whole sequence when
//! there are many, a few rows when there is one), and each task writes its rows of the
//! context directly. Per head, the keys are copied out transposed, then scores, softmax
//! and the weighted sum run in register-sized tiles that the compiler turns into AVX-512
//! or AVX2 code (picked at run time).

use super::kernels::{exp, max_map, sum_map};
use multiversion::multiversion;
use rayon::prelude::*;
use std::cell::RefCell;

/// Query rows per score tile.
const QUERY_TILE: usize = 4;
/// Keys per score tile (four 16-lane vectors).
const KEY_TILE: usize = 64;
/// Query rows per output tile.
const OUTPUT_TILE: usize = 8;

/// `qkv` holds, per token, its query, key and value ([tokens × 3·hidden]); `context`
/// receives per token the attention output ([tokens × hidden]).
pub fn attention(qkv: &[f32], context: &mut [f32], lengths: &[usize], hidden: usize, heads: usize) {
    let tokens: usize = lengths.iter().sum();
    // Enough tasks to keep every thread busy, but whole sequences when there are plenty.
    let per_task = (tokens / (4 * rayon::current_num_threads()).max(1)).clamp(16, 128);
    let mut tasks = Vec::new();
    let mut rest = &mut context[..tokens * hidden];
    let mut start = 0;
    for &len in lengths {
        for first in (0..len).step_by(per_task) {
            let rows = per_task.min(len - first);
            let (mine, others) = rest.split_at_mut(rows * hidden);
            rest = others;
            let sequence = Sequence {
                qkv,
                start,
                len,
                hidden,
                head_dim: hidden / heads,
            };
            tasks.push((sequence, first, mine));
        }
        start += len;
    }
    tasks.into_par_iter().for_each(|(sequence, first, out)| {
        SCRATCH.with(|cell| {
            let scratch = &mut cell.borrow_mut();
            for head in 0..heads {
                sequence.attend(head, first, out, scratch);
            }
        })
    });
}

/// One sequence inside the QKV rows.
struct Sequence<'a> {
    qkv: &'a [f32],
    start: usize,
    len: usize,
    hidden: usize,
    head_dim: usize,
}

/// Per-thread blocks, reused between tasks.
#[derive(Default)]
struct HeadScratch {
    /// The block's queries scaled by 1/√d, [rows padded to tiles × d].
    queries: Vec<f32>,
    /// The sequence's keys transposed, [d × keys padded to tiles].
    keys: Vec<f32>,
    /// Scores, then probabilities, [rows padded × keys padded].
    scores: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<HeadScratch> = RefCell::default();
}

impl Sequence<'_> {
    /// softmax(q·kᵀ/√d)·v for one head and the query rows `first..` that `out` holds
    /// ([rows × hidden]; this head's columns are written).
    fn attend(&self, head: usize, first: usize, out: &mut [f32], s: &mut HeadScratch) {
        let d = self.head_dim;
        let rows = out.len() / self.hidden;
        let padded_rows = rows.next_multiple_of(QUERY_TILE.max(OUTPUT_TILE));
        let keys = self.len.next_multiple_of(KEY_TILE);
        self.gather(head, first, rows, s, padded_rows, keys);
        scores(&s.queries, &s.keys, &mut s.scores, padded_rows, keys, d);
        for row in s.scores.chunks_exact_mut(keys).take(rows) {
            softmax_row(&mut row[..self.len]);
        }
        let values = Strided {
            data: &self.qkv[self.row(0) + 2 * self.hidden + head * d..],
            stride: 3 * self.hidden,
        };
        let out = Strided {
            data: &mut out[head * d..],
            stride: self.hidden,
        };
        weighted_values(&s.scores, values, out, rows, self.len, keys, d);
    }

    fn row(&self, token: usize) -> usize {
        (self.start + token) * 3 * self.hidden
    }

    /// Copies the block's queries (scaled) and the sequence's keys (transposed) for
    /// `head` into `s`, padding with zeros to whole tiles.
    fn gather(
        &self,
        head: usize,
        first: usize,
        rows: usize,
        s: &mut HeadScratch,
        padded_rows: usize,
        keys: usize,
    ) {
        let d = self.head_dim;
        let offset = head * d;
        let scale = 1.0 / (d as f32).sqrt();
        for (buffer, len) in [
            (&mut s.queries, padded_rows * d),
            (&mut s.keys, d * keys),
            (&mut s.scores, padded_rows * keys),
        ] {
            buffer.clear();
            buffer.resize(len, 0.0);
        }
        for (t, q) in s.queries.chunks_exact_mut(d).take(rows).enumerate() {
            let at = self.row(first + t) + offset;
            for (q, &v) in q.iter_mut().zip(&self.qkv[at..at + d]) {
                *q = v * scale;
            }
        }
        for t in 0..self.len {
            let at = self.row(t) + self.hidden + offset;
            for (c, &k) in self.qkv[at..at + d].iter().enumerate() {
                s.keys[c * keys + t] = k;
            }
        }
    }
}

/// Rows of a matrix `stride` apart, starting at `data[0]`.
struct Strided<T> {
    data: T,
    stride: usize,
}

/// `scores[i][j] = Σ_c queries[i][c] · keys[c][j]`, in tiles of QUERY_TILE × KEY_TILE
/// whose sums stay in registers.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn scores(queries: &[f32], keys: &[f32], scores: &mut [f32], rows: usize, width: usize, d: usize) {
    for i0 in (0..rows).step_by(QUERY_TILE) {
        for j0 in (0..width).step_by(KEY_TILE) {
            let mut acc = [[0.0f32; KEY_TILE]; QUERY_TILE];
            for c in 0..d {
                let k: &[f32; KEY_TILE] = keys[c * width + j0..][..KEY_TILE]
                    .try_into()
                    .expect("tile width");
                for (r, acc) in acc.iter_mut().enumerate() {
                    let q = queries[(i0 + r) * d + c];
                    for (a, &k) in acc.iter_mut().zip(k) {
                        *a = q.mul_add(k, *a);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                scores[(i0 + r) * width + j0..][..KEY_TILE].copy_from_slice(acc);
            }
        }
    }
}

/// `out[i] = Σ_j p[i][j] · values[j]` over the `len` keys, for `rows` query rows.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn weighted_values(
    p: &[f32],
    values: Strided<&[f32]>,
    out: Strided<&mut [f32]>,
    rows: usize,
    len: usize,
    width: usize,
    d: usize,
) {
    if d == 32 {
        return weighted_values_32(p, values, out, rows, len, width);
    }
    for i in 0..rows {
        let o = &mut out.data[i * out.stride..][..d];
        o.fill(0.0);
        for j in 0..len {
            let w = p[i * width + j];
            let v = &values.data[j * values.stride..][..d];
            o.iter_mut()
                .zip(v)
                .for_each(|(o, &v)| *o = w.mul_add(v, *o));
        }
    }
}

/// The common head size (MiniLM's; BERT-base has 64) with the tile fixed so its sums
/// stay in registers. `p` has rows up to a whole tile (zeros past `rows`).
#[inline(always)]
fn weighted_values_32(
    p: &[f32],
    values: Strided<&[f32]>,
    out: Strided<&mut [f32]>,
    rows: usize,
    len: usize,
    width: usize,
) {
    const D: usize = 32;
    for i0 in (0..rows).step_by(OUTPUT_TILE) {
        let mut acc = [[0.0f32; D]; OUTPUT_TILE];
        for j in 0..len {
            let v: &[f32; D] = values.data[j * values.stride..][..D]
                .try_into()
                .expect("head width");
            for (r, acc) in acc.iter_mut().enumerate() {
                let w = p[(i0 + r) * width + j];
                for (a, &v) in acc.iter_mut().zip(v) {
                    *a = w.mul_add(v, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows - i0) {
            out.data[(i0 + r) * out.stride..][..D].copy_from_slice(acc);
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn softmax_row(row: &mut [f32]) {
    let max = max_map(row, f32::NEG_INFINITY, |v| v);
    row.iter_mut().for_each(|s| *s = exp(*s - max));
    let inverse = 1.0 / sum_map(row, |v| v);
    row.iter_mut().for_each(|s| *s *= inverse);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// softmax(q·kᵀ/√d)·v computed the plain way, in f64.
    fn naive(qkv: &[f32], lengths: &[usize], hidden: usize, heads: usize) -> Vec<f32> {
        let d = hidden / heads;
        let mut out = vec![0.0; qkv.len() / 3];
        let mut start = 0;
        for &len in lengths {
            for h in 0..heads {
                let at = |t: usize, part: usize, c: usize| {
                    qkv[(start + t) * 3 * hidden + part * hidden + h * d + c] as f64
                };
                for i in 0..len {
                    let logits: Vec<f64> = (0..len)
                        .map(|j| {
                            (0..d).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = logits.iter().copied().fold(f64::MIN, f64::max);
                    let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for c in 0..d {
                        let v: f64 = (0..len).map(|j| weights[j] * at(j, 2, c)).sum();
                        out[(start + i) * hidden + h * d + c] = (v / total) as f32;
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn matches_the_plain_formula_on_random_shapes() {
        let mut state = 12345u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1 << 24) as f32 * 4.0 - 2.0
        };
        for (lengths, hidden, heads) in [
            (vec![1], 8, 2),
            (vec![3, 70, 5], 64, 2),
            (vec![130, 9], 96, 3),
            (vec![17], 24, 1),
        ] {
            let tokens: usize = lengths.iter().sum();
            let qkv: Vec<f32> = (0..tokens * 3 * hidden).map(|_| next()).collect();
            let mut context = vec![f32::NAN; tokens * hidden];
            attention(&qkv, &mut context, &lengths, hidden, heads);
            let want = naive(&qkv, &lengths, hidden, heads);
            for (g, w) in context.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-5,
                    "{lengths:?} h{hidden}/{heads}: {g} vs {w}"
                );
            }
        }
    }
}
