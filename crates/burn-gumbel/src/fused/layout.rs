//! Rows of categories for a tensor whose categories are not on its last axis, and back.
//!
//! A tensor with `n` categories along an axis is `[outer, n, inner]` (the axes before and after
//! it flattened). The kernels want `[outer, inner, n]`: rows of `n` contiguous categories. Each
//! `[n, inner]` slab is transposed in square tiles that stay in the L1 cache, the slab's tiles
//! spread over rayon's threads; the inverse does the same the other way.

use rayon::prelude::*;

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

/// Each `[rows, cols]` slab of `values`, transposed.
fn transpose_slabs(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    let slab = (rows * cols).max(1);
    for (src, dst) in values.chunks(slab).zip(out.chunks_mut(slab)) {
        transpose(src, dst, rows, cols);
    }
    out
}

/// `dst = srcᵀ` for `src` of `[rows, cols]`, in tiles; the bands of `TILE` rows of `dst` are
/// independent and go to rayon's threads.
fn transpose(src: &[f32], dst: &mut [f32], rows: usize, cols: usize) {
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, dst)| {
            let c0 = band * TILE;
            let width = dst.len() / rows; // columns of src in this band
            for r0 in (0..rows).step_by(TILE) {
                for c in 0..width {
                    let column = &mut dst[c * rows..(c + 1) * rows];
                    for r in r0..(r0 + TILE).min(rows) {
                        column[r] = src[r * cols + c0 + c];
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_hold_each_position_s_categories() {
        // [2, 5, 3·37]: a category axis in the middle, sizes that are not multiples of a tile.
        for (outer, n, inner) in [(2, 5, 111), (1, 70, 40), (3, 1, 7)] {
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
