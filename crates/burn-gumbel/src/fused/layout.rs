//! Rows of categories for a tensor whose categories are not on its last axis, and back.
//!
//! A tensor with `n` categories along an axis is `[outer, n, inner]` (the axes before and after
//! it flattened). The row kernels want `[outer, inner, n]`: rows of `n` contiguous categories.
//! The driver never transposes a whole tensor: where it takes the row kernels on such a tensor,
//! each task (`bands.rs`) gathers a band of [`BAND`] rows into a cache-sized buffer ([`gather`]),
//! runs the kernel on it and scatters the result back in place ([`scatter`]), in square tiles that
//! stay in the L1 cache. The bands themselves ([`Band`]) are also the column kernels' units
//! (`columns.rs`), [`COLUMNS`](super::columns::COLUMNS) positions wide.

use crate::isa::Isa;

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

/// Rows of categories per band: the kernels work on the `[outer, n, inner]` view a band at a
/// time, the `TILE` positions `c0..c0 + width` of one `[n, inner]` slab gathered into `[width, n]`
/// rows in a cache-sized buffer and scattered back.
pub(super) const BAND: usize = TILE;

/// One band of a [`Layout`]: `width` rows of categories, the first the `row`-th of the
/// `[outer · inner, n]` rows.
///
/// Made only by [`Layout::band`] (its fields are private to this file), which checks that it lies
/// inside its layout; [`gather`] and [`scatter`] check it again against the layout they are given,
/// in every build, since a band of one layout could be handed over with another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Band {
    /// The slab, `0..outer`.
    slab: usize,
    /// The first position in the slab, a multiple of the bands' width.
    c0: usize,
    /// Positions in the band.
    width: usize,
    /// The band's first row in `[outer, inner]` order.
    row: usize,
}

impl Band {
    /// Positions in the band: its rows of categories.
    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// The band's first row in `[outer, inner]` order.
    pub(super) fn row(&self) -> usize {
        self.row
    }
}

impl Layout {
    /// Bands of `width` positions per slab.
    pub(super) fn bands_per_slab(&self, width: usize) -> usize {
        self.inner.div_ceil(width)
    }

    /// Band `index` (slab by slab) of the `outer · bands_per_slab(width)` bands of `width`
    /// positions (the last of a slab narrower).
    pub(super) fn band(&self, index: usize, width: usize) -> Band {
        let per_slab = self.bands_per_slab(width);
        let (slab, c0) = (index / per_slab, (index % per_slab) * width);
        let band = Band {
            slab,
            c0,
            width: width.min(self.inner - c0),
            row: slab * self.inner + c0,
        };
        assert!(
            self.holds(band),
            "band {index} of {width}: {band:?} outside {self:?}"
        );
        band
    }

    /// The offset of band `band`'s first element in the `[outer, n, inner]` values.
    pub(super) fn offset(&self, band: Band) -> usize {
        band.slab * self.n * self.inner + band.c0
    }

    /// Elements of the tensor.
    pub(super) fn len(&self) -> usize {
        self.outer * self.n * self.inner
    }

    /// Whether `band` lies inside the tensor: its slab one of `outer`, its positions inside the
    /// slab, and so each of its elements (`offset + j · inner + p`, `j < n`, `p < width`) below
    /// [`len`](Self::len). Asserted before the kernels' raw accesses, in every build.
    pub(super) fn holds(&self, band: Band) -> bool {
        band.slab < self.outer
            && band.width > 0
            && band.c0 + band.width <= self.inner
            && band.row == band.slab * self.inner + band.c0
    }
}

/// Band `band`'s rows of categories, `[width, n]`, into `dst`, from the `[outer, n, inner]`
/// values at `src`.
///
/// # Safety
/// `src` must be valid for reads of `layout.len()` values, none of the band's written by another
/// thread meanwhile. (That the band lies inside the layout, and that `dst` holds its
/// `width · n` values, is checked here: a panic, not undefined behaviour.)
pub(super) unsafe fn gather(
    isa: Isa,
    src: *const f32,
    layout: &Layout,
    band: Band,
    dst: &mut [f32],
) {
    assert!(
        dst.len() >= band.width * layout.n,
        "gather: a buffer for the band"
    );
    assert!(layout.holds(band), "gather: {band:?} outside {layout:?}");
    // SAFETY: the band lies inside the layout (asserted above), so its values, at offset +
    // r · inner + c for r < n, c < width, are among the `layout.len()` values the caller vouches
    // for; `dst` holds c · n + r for the same (r, c) (asserted above).
    unsafe {
        let src = src.add(layout.offset(band));
        transpose(
            isa,
            src,
            layout.inner,
            dst.as_mut_ptr(),
            layout.n,
            layout.n,
            band.width,
        );
    }
}

/// The inverse of [`gather`]: `[width, n]` rows of categories in `src` into band `band` of the
/// `[outer, n, inner]` values at `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `layout.len()` values (which may be uninitialized: they are
/// only written), none of the band's read or written by another thread meanwhile. (That the band
/// lies inside the layout, and that `src` holds its `width · n` values, is checked here.)
pub(super) unsafe fn scatter(isa: Isa, src: &[f32], layout: &Layout, band: Band, dst: *mut f32) {
    assert!(
        src.len() >= band.width * layout.n,
        "scatter: the band's rows"
    );
    assert!(layout.holds(band), "scatter: {band:?} outside {layout:?}");
    // SAFETY: as `gather`'s, the other way: the band inside the layout and `src` long enough,
    // both asserted above.
    unsafe {
        let dst = dst.add(layout.offset(band));
        transpose(
            isa,
            src.as_ptr(),
            layout.n,
            dst,
            layout.inner,
            band.width,
            layout.n,
        );
    }
}

/// `dst[c · dst_stride + r] = src[r · src_stride + c]` for `r < rows`, `c < cols`: a `[rows, cols]`
/// block transposed, in `TILE × TILE` tiles that stay in the L1 cache. With AVX (every variant
/// above the baseline) the tiles' `BLOCK × BLOCK` blocks go through vector registers; the
/// baseline moves them one value at a time.
///
/// # Safety
/// `src` valid for reads at every `r · src_stride + c`, `dst` for writes at every
/// `c · dst_stride + r` (uninitialized memory will do: it is written, never read), the two
/// disjoint.
unsafe fn transpose(
    isa: Isa,
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
    rows: usize,
    cols: usize,
) {
    let block = Block {
        src,
        src_stride,
        dst,
        dst_stride,
    };
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx() {
        // SAFETY: an `Isa` above the baseline is one `Isa::detect` found AVX for; the pointers
        // as the caller promised.
        return unsafe { transpose_avx(block, rows, cols) };
    }
    let _ = isa;
    // SAFETY: as the caller promised.
    unsafe { transpose_tiles::<false>(block, rows, cols) }
}

/// The two sides of a transpose: `dst[c · dst_stride + r] = src[r · src_stride + c]`.
#[derive(Clone, Copy)]
struct Block {
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
}

impl Block {
    /// The same transpose from row `r`, column `c` of `src`.
    ///
    /// # Safety
    /// `(r, c)` inside the block.
    #[inline(always)]
    unsafe fn at(self, r: usize, c: usize) -> Self {
        // SAFETY: inside the block, as the caller promised.
        unsafe {
            Self {
                src: self.src.add(r * self.src_stride + c),
                dst: self.dst.add(c * self.dst_stride + r),
                ..self
            }
        }
    }
}

/// [`transpose_tiles`] with AVX blocks.
///
/// # Safety
/// As [`transpose`]'s, on a processor with AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_avx(block: Block, rows: usize, cols: usize) {
    // SAFETY: as the caller promised; compiled with AVX.
    unsafe { transpose_tiles::<true>(block, rows, cols) }
}

/// The transpose of [`transpose`] tile by tile. `AVX` must be true only in code compiled with AVX
/// ([`transpose_avx`]).
///
/// # Safety
/// As [`transpose`]'s.
#[inline(always)]
unsafe fn transpose_tiles<const AVX: bool>(block: Block, rows: usize, cols: usize) {
    // One value at a time over a rectangle.
    let copy = |rs: std::ops::Range<usize>, cs: std::ops::Range<usize>| {
        for c in cs {
            for r in rs.clone() {
                // SAFETY: (r, c) inside the block, whose values the caller promised readable at
                // `src` and writable at `dst`.
                unsafe {
                    let b = block.at(r, c);
                    b.dst.write(b.src.read());
                }
            }
        }
    };
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            let mut c = c0;
            #[cfg(target_arch = "x86_64")]
            if AVX {
                while c + BLOCK <= c1 {
                    let mut r = r0;
                    while r + BLOCK <= r1 {
                        // SAFETY: the block's 8 × 8 values inside; compiled with AVX.
                        unsafe { transpose_block_avx(block.at(r, c)) };
                        r += BLOCK;
                    }
                    copy(r..r1, c..c + BLOCK);
                    c += BLOCK;
                }
            }
            copy(r0..r1, c..c1);
        }
    }
}

/// Side of the blocks that [`transpose_block_avx`] moves through registers.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 8;

/// The `BLOCK × BLOCK` values at the start of `block` transposed in AVX registers: eight rows
/// loaded, exchanged by unpacks, shuffles and lane permutes (the classic 8 × 8 transpose), eight
/// rows stored.
///
/// # Safety
/// `block`'s first 8 rows of 8 values readable and its first 8 columns writable; AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn transpose_block_avx(block: Block) {
    use std::arch::x86_64::*;
    // SAFETY: rows 0..8 of 8 values each, as the caller promised.
    let load = |i: usize| unsafe { _mm256_loadu_ps(block.src.add(i * block.src_stride)) };
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
        // SAFETY: column j of the block, 8 values from row 0, as the caller promised.
        unsafe { _mm256_storeu_ps(block.dst.add(j * block.dst_stride), column) };
    }
}

/// `[outer, n, inner]` values as `[outer, inner, n]` rows, band by band, with `isa`'s transposes.
#[cfg(test)]
pub(super) fn to_rows_with(isa: Isa, values: &[f32], layout: &Layout) -> Vec<f32> {
    assert_eq!(values.len(), layout.len());
    let mut rows = vec![0.0; values.len()];
    for index in 0..layout.outer * layout.bands_per_slab(BAND) {
        let band = layout.band(index, BAND);
        let dst = &mut rows[band.row * layout.n..(band.row + band.width) * layout.n];
        // SAFETY: `values` holds the whole tensor; one thread.
        unsafe { gather(isa, values.as_ptr(), layout, band, dst) };
    }
    rows
}

/// `[outer, inner, n]` rows back to `[outer, n, inner]`, band by band, with `isa`'s transposes.
#[cfg(test)]
pub(super) fn from_rows_with(isa: Isa, rows: &[f32], layout: &Layout) -> Vec<f32> {
    assert_eq!(rows.len(), layout.len());
    let mut values = vec![0.0; rows.len()];
    for index in 0..layout.outer * layout.bands_per_slab(BAND) {
        let band = layout.band(index, BAND);
        let src = &rows[band.row * layout.n..(band.row + band.width) * layout.n];
        // SAFETY: `values` holds the whole tensor; one thread.
        unsafe { scatter(isa, src, layout, band, values.as_mut_ptr()) };
    }
    values
}

/// [`to_rows_with`] this processor's transposes.
#[cfg(test)]
pub(super) fn to_rows(values: &[f32], layout: &Layout) -> Vec<f32> {
    to_rows_with(Isa::detect(), values, layout)
}

/// [`from_rows_with`] this processor's transposes.
#[cfg(test)]
pub(super) fn from_rows(rows: &[f32], layout: &Layout) -> Vec<f32> {
    from_rows_with(Isa::detect(), rows, layout)
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
    fn every_instruction_set_transposes_alike() {
        // The baseline's transposes against this processor's (AVX blocks where it has it), on
        // slabs with full blocks, partial tiles and ragged edges, both ways.
        for (outer, n, inner) in [(2, 45, 77), (1, 300, 40), (3, 8, 8)] {
            let layout = Layout { outer, n, inner };
            let values: Vec<f32> = (0..layout.len()).map(|v| v as f32).collect();
            let baseline = to_rows_with(Isa::baseline(), &values, &layout);
            for row in 0..outer * inner {
                for j in 0..n {
                    assert_eq!(baseline[row * n + j], values[layout.index(row, j)]);
                }
            }
            let isa = Isa::detect();
            assert_eq!(to_rows_with(isa, &values, &layout), baseline, "{isa:?}");
            assert_eq!(from_rows_with(isa, &baseline, &layout), values, "{isa:?}");
            assert_eq!(from_rows_with(Isa::baseline(), &baseline, &layout), values);
        }
    }

    #[test]
    fn bands_cover_each_slab_in_order() {
        let layout = Layout {
            outer: 2,
            n: 3,
            inner: 70,
        };
        assert_eq!(layout.bands_per_slab(32), 3);
        let widths: Vec<_> = (0..6).map(|i| layout.band(i, 32).width).collect();
        assert_eq!(widths, [32, 32, 6, 32, 32, 6]);
        let band = layout.band(4, 32);
        assert_eq!((band.slab, band.c0, band.row), (1, 32, 102));
    }

    #[test]
    #[should_panic = "gather: Band { slab: 1, c0: 0, width: 32, row: 70 } outside"]
    fn a_band_of_a_larger_layout_is_refused_in_every_build() {
        // A band of a two-slab layout handed to `gather` with a one-slab layout: its values would
        // lie past the end of the tensor. Refused before any access, in release builds too.
        let large = Layout {
            outer: 2,
            n: 3,
            inner: 70,
        };
        let small = Layout { outer: 1, ..large };
        let values = vec![0.0f32; small.len()];
        let mut rows = vec![0.0f32; 32 * 3];
        // SAFETY: `values` holds `small.len()` values, read by this thread only.
        unsafe {
            gather(
                Isa::baseline(),
                values.as_ptr(),
                &small,
                large.band(3, 32),
                &mut rows,
            )
        };
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
