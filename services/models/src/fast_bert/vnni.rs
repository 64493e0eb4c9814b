//! The int8 tile on AVX-512 VNNI: 8 rows × 48 columns of i32 sums held in 24 registers,
//! four inputs per `vpdpbusd`. The only `unsafe` of the int8 path lives here.

use super::quant::{TILE_COLS, TILE_ROWS, Tile};

/// Whether this CPU runs [`tile`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `acc[r][c] = Σ_g Σ_l rows[r][4g + l] · panel[g][c][l]` with `rows` signed and `panel`
/// unsigned bytes: `TILE_ROWS` rows `stride` apart, `groups` groups of four inputs.
///
/// Panics when the slices are too short or the CPU lacks VNNI.
pub fn tile(rows: &[i8], stride: usize, panel: &[u8], groups: usize, acc: &mut Tile) {
    assert!(
        stride >= groups * 4 && rows.len() >= (TILE_ROWS - 1) * stride + groups * 4,
        "tile rows out of bounds"
    );
    assert!(
        panel.len() >= groups * TILE_COLS * 4,
        "tile panel out of bounds"
    );
    assert!(available(), "the CPU lacks AVX-512 VNNI");
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: the CPU features the function is compiled for were checked just above; the
    // asserts bound every load: row r reads bytes [r·stride, r·stride + 4·groups) of
    // `rows`, and group g reads bytes [192·g, 192·(g + 1)) of `panel`.
    unsafe {
        tile_avx512(rows.as_ptr(), stride, panel.as_ptr(), groups, acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_avx512(
    rows: *const i8,
    stride: usize,
    panel: *const u8,
    groups: usize,
    acc: &mut Tile,
) {
    use std::arch::x86_64::*;
    let mut sums = [[_mm512_setzero_si512(); 3]; TILE_ROWS];
    for g in 0..groups {
        // SAFETY (all loads): within the bounds `tile` asserted.
        let w = unsafe { panel.add(g * TILE_COLS * 4) };
        let weights = unsafe {
            [
                _mm512_loadu_si512(w.cast()),
                _mm512_loadu_si512(w.add(64).cast()),
                _mm512_loadu_si512(w.add(128).cast()),
            ]
        };
        for (r, row) in sums.iter_mut().enumerate() {
            let x = unsafe { rows.add(r * stride + g * 4).cast::<i32>().read_unaligned() };
            let x = _mm512_set1_epi32(x);
            for (sum, &w) in row.iter_mut().zip(&weights) {
                *sum = _mm512_dpbusd_epi32(*sum, w, x);
            }
        }
    }
    for (out, row) in acc.iter_mut().zip(&sums) {
        for (chunk, &sum) in out.chunks_exact_mut(16).zip(row) {
            // SAFETY: each chunk is 16 i32, the width of one store.
            unsafe { _mm512_storeu_si512(chunk.as_mut_ptr().cast(), sum) };
        }
    }
}
