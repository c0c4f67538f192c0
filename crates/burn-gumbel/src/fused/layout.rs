//! Rows of categories for a tensor whose categories are not on its last axis, and back.
//!
//! A tensor with `n` categories along an axis is `[outer, n, inner]` (the axes before and after
//! it flattened). The kernels want `[outer, inner, n]`: rows of `n` contiguous categories. Each
//! `[n, inner]` slab is transposed in square tiles that stay in the L1 cache, the slab's tiles
//! spread over rayon's threads; the inverse does the same the other way.

use rayon::prelude::*;

use super::isa::Isa;

/// Side of the square tiles of the transposes: 32 × 32 f32 = 4 KiB read and 4 KiB written.
const TILE: usize = 32;

/// The `[outer, n, inner]` view of a tensor with its categories along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// The product of the sizes before the category axis.
    pub outer: usize,
    /// The number of categories.
    pub n: usize,
    /// The product of the sizes after the category axis (1 when it is the last).
    pub inner: usize,
}

impl Layout {
    /// The layout of `shape` with its categories along `dim`.
    pub(super) fn of(shape: &[usize], dim: usize) -> Self {
        Self {
            outer: shape[..dim].iter().product(),
            n: shape[dim],
            inner: shape[dim + 1..].iter().product(),
        }
    }

    /// Whether the categories are already contiguous rows (the last axis, or nothing after it).
    pub(super) fn is_rows(&self) -> bool {
        self.inner == 1
    }

    /// The position in the tensor of category `j` of row `row` (rows in `[outer, inner]` order).
    pub(super) fn index(&self, row: usize, j: usize) -> usize {
        let (o, i) = (row / self.inner, row % self.inner);
        (o * self.n + j) * self.inner + i
    }
}

/// `[outer, n, inner]` values as `[outer, inner, n]` rows.
pub(super) fn to_rows(values: &[f32], layout: &Layout) -> Vec<f32> {
    transpose_slabs(values, layout.n, layout.inner)
}

/// `[outer, inner, n]` rows back to `[outer, n, inner]`.
pub(super) fn from_rows(rows: &[f32], layout: &Layout) -> Vec<f32> {
    transpose_slabs(rows, layout.inner, layout.n)
}

/// Slabs of fewer elements than this are transposed whole by one task, several to a task: a
/// parallel loop over the bands of a small slab costs more in rayon's scheduling than it saves
/// (a `[100, 64, 7, 7]` tensor, 100 slabs of 3136 elements, took 5 ms that way).
const TASK_ELEMENTS: usize = 16_384;

/// Each `[rows, cols]` slab of `values`, transposed. Large slabs spread their bands of `TILE`
/// rows over rayon's threads, one slab after another; small ones go to the threads whole.
fn transpose_slabs(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    let slab = (rows * cols).max(1);
    let isa = Isa::detect();
    let band = |src, dst, band| {
        let band = Band {
            src,
            dst,
            band,
            rows,
            cols,
        };
        band_transpose(isa, band)
    };
    if slab >= TASK_ELEMENTS {
        for (src, dst) in values.chunks(slab).zip(out.chunks_mut(slab)) {
            dst.par_chunks_mut(TILE * rows)
                .enumerate()
                .for_each(|(i, dst)| band(src, dst, i));
        }
        return out;
    }
    let task = (TASK_ELEMENTS / slab) * slab;
    out.par_chunks_mut(task)
        .zip(values.par_chunks(task))
        .for_each(|(dst, src)| {
            for (src, dst) in src.chunks(slab).zip(dst.chunks_mut(slab)) {
                for (i, dst) in dst.chunks_mut(TILE * rows).enumerate() {
                    band(src, dst, i);
                }
            }
        });
    out
}

/// One band of a transpose for [`transpose_band`].
struct Band<'a> {
    /// The slab, `[rows, cols]`.
    src: &'a [f32],
    /// The band's rows of the transposed slab: `TILE` (or fewer, the last) rows of `rows`.
    dst: &'a mut [f32],
    /// The band's index.
    band: usize,
    /// Rows of `src`.
    rows: usize,
    /// Columns of `src`.
    cols: usize,
}

/// [`transpose_band`] for `isa`: with AVX (every variant above the baseline) the blocks go through
/// eight vector registers and their shuffles; the baseline moves them one value at a time.
fn band_transpose(isa: Isa, band: Band<'_>) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Baseline {
        // SAFETY: `Isa::detect` chose a variant above the baseline only where the processor has
        // AVX2, hence AVX.
        return unsafe { band_transpose_avx(band) };
    }
    let _ = isa;
    transpose_band::<false>(band)
}

/// [`transpose_band`] with AVX blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn band_transpose_avx(band: Band<'_>) {
    transpose_band::<true>(band)
}

/// Band `band` of `dst = srcᵀ`, `src` of `[rows, cols]`: the `TILE` rows of `dst` (columns of
/// `src`) from `band · TILE`, in tiles that stay in the L1 cache. With `AVX`, each tile's whole
/// `BLOCK × BLOCK` blocks go through vector registers ([`transpose_block_avx`]); `AVX` must be
/// true only in code compiled with AVX ([`band_transpose_avx`]).
#[inline(always)]
fn transpose_band<const AVX: bool>(band: Band<'_>) {
    let Band {
        src,
        dst,
        band,
        rows,
        cols,
    } = band;
    let c0 = band * TILE;
    let width = dst.len() / rows; // columns of src in this band
    // dst[c][r] = src[r][c0 + c] over a rectangle, one value at a time.
    let copy = |dst: &mut [f32], rs: std::ops::Range<usize>, cs: std::ops::Range<usize>| {
        for c in cs {
            for r in rs.clone() {
                dst[c * rows + r] = src[r * cols + c0 + c];
            }
        }
    };
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        let mut c = 0;
        #[cfg(target_arch = "x86_64")]
        if AVX {
            while c + BLOCK <= width {
                let mut r = r0;
                while r + BLOCK <= r1 {
                    // SAFETY: `AVX` is true only inside `band_transpose_avx`, compiled with AVX.
                    unsafe { transpose_block_avx(src, dst, r, c0 + c, c, rows, cols) };
                    r += BLOCK;
                }
                copy(dst, r..r1, c..c + BLOCK);
                c += BLOCK;
            }
        }
        copy(dst, r0..r1, c..width);
    }
}

/// Side of the blocks that [`transpose_block_avx`] moves through registers.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 8;

/// The `BLOCK × BLOCK` block of `src` at row `r`, column `sc` into `dst` at row `dc`, column `r`,
/// in AVX registers: eight rows loaded, exchanged by unpacks, shuffles and lane permutes (the
/// classic 8 × 8 transpose), eight rows stored.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
fn transpose_block_avx(
    src: &[f32],
    dst: &mut [f32],
    r: usize,
    sc: usize,
    dc: usize,
    rows: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let load = |i: usize| {
        let start = (r + i) * cols + sc;
        let row: &[f32; BLOCK] = src[start..start + BLOCK].try_into().unwrap();
        // SAFETY: `row` holds the 8 floats read.
        unsafe { _mm256_loadu_ps(row.as_ptr()) }
    };
    let (r0, r1, r2, r3) = (load(0), load(1), load(2), load(3));
    let (r4, r5, r6, r7) = (load(4), load(5), load(6), load(7));
    // [a0 b0 a1 b1 | a4 b4 a5 b5], [a2 b2 a3 b3 | a6 b6 a7 b7] for the row pairs (a, b).
    let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
    let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
    let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
    let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
    // Columns k and k + 4 of rows 0..4 (s0..s3) and of rows 4..8 (s4..s7), k = 0..4.
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let columns = [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ];
    for (j, column) in columns.into_iter().enumerate() {
        let start = (dc + j) * rows + r;
        let out: &mut [f32; BLOCK] = (&mut dst[start..start + BLOCK]).try_into().unwrap();
        // SAFETY: `out` holds the 8 floats written.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), column) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_hold_each_position_s_categories() {
        // [2, 5, 3·37]: a category axis in the middle, sizes that are not multiples of a tile.
        // Small slabs several to a task, and slabs large enough for their bands to be split.
        for (outer, n, inner) in [
            (2, 5, 111),
            (1, 70, 40),
            (3, 1, 7),
            (9, 64, 49),
            (2, 130, 200),
        ] {
            let layout = Layout { outer, n, inner };
            let values: Vec<f32> = (0..outer * n * inner).map(|v| v as f32).collect();
            let rows = to_rows(&values, &layout);
            for row in 0..outer * inner {
                for j in 0..n {
                    assert_eq!(rows[row * n + j], values[layout.index(row, j)]);
                }
            }
            assert_eq!(from_rows(&rows, &layout), values);
        }
    }

    #[test]
    fn every_band_transpose_gives_the_same_values() {
        // The baseline's blocks against this processor's (AVX where it has it), on a slab with
        // full blocks, partial tiles and a ragged edge.
        let (rows, cols) = (45, 77);
        let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let transposed = |isa| {
            let mut dst = vec![0.0; rows * cols];
            for (band, dst) in dst.chunks_mut(TILE * rows).enumerate() {
                let args = Band {
                    src: &src,
                    dst,
                    band,
                    rows,
                    cols,
                };
                band_transpose(isa, args);
            }
            dst
        };
        let baseline = transposed(Isa::Baseline);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(baseline[c * rows + r], src[r * cols + c], "{r}, {c}");
            }
        }
        assert_eq!(transposed(Isa::detect()), baseline, "{:?}", Isa::detect());
    }

    #[test]
    fn layout_of_a_shape() {
        let layout = Layout::of(&[8, 512, 32, 32], 1);
        assert_eq!(
            layout,
            Layout {
                outer: 8,
                n: 512,
                inner: 1024
            }
        );
        assert!(!layout.is_rows());
        assert!(Layout::of(&[4, 10], 1).is_rows());
    }
}
