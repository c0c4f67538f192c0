//! The column kernels: the forward and backward passes on a band of a tensor whose categories
//! are not its last axis (a channels-first map), computed across the band's positions so that the
//! vector lanes are positions and no transpose is needed. The same counters and arithmetic as the
//! row kernels of `kernels.rs`, which they are tested against.

use std::ptr::NonNull;

use super::lanes::{inverse_or_zero, ln_or_zero};
use crate::counter::uniform;
use crate::math::{fast_exp, fast_ln};

/// Positions per band of the column kernels: four cache lines of f32 per category, so that a
/// band's passes over a large map touch each memory page for 64 positions at once (a map of 8192
/// categories on 16 × 16 positions spans 2048 pages per band).
pub(super) const COLUMNS: usize = 64;

/// The argmax [`columns_forward`] gives a fully masked position (every `(θ + g) / tau` is `−∞`):
/// it has no category, so its one-hot is all zeros, as its soft sample is.
pub(super) const MASKED_COLUMN: u32 = u32::MAX;

/// A band of a tensor whose categories are not its last axis, for [`columns_forward`]: `n`
/// categories of `width` positions each, category `j` of position `p` at `j · stride + p` from the
/// band's first element.
pub(super) struct ColumnsForward<'a> {
    /// The logits from the band's first element.
    pub theta: &'a [f32],
    /// Where the soft sample goes, laid out as `theta`; `None` for a hard sample whose soft
    /// values are not needed (only each position's argmax is found). A pointer, not a slice,
    /// because the bands of a tensor interleave: a slice over one band would cover the others'
    /// elements between its categories. [`columns_forward`]'s `# Safety` says what it must
    /// point to.
    pub out: Option<NonNull<f32>>,
    /// Categories.
    pub n: usize,
    /// Positions in the band, `1..=COLUMNS`.
    pub width: usize,
    /// The distance between two categories of a position.
    pub stride: usize,
    /// `1 / tau`.
    pub inv_tau: f32,
    /// The generator's key.
    pub key: u64,
    /// The row (in `[outer, inner]` order) of the band's first position: category `j` of
    /// position `p` has the counter `(row + p) · n + j`, as in the row kernels.
    pub row: u64,
}

/// The forward kernel on one band of positions whose categories are strided (a channels-first
/// map): the same values as [`forward_chunk`](super::kernels::forward_chunk) on the same rows (the same counters and arithmetic;
/// the softmax's sum adds in another order, so soft values can differ in the last bits), computed
/// across the positions so that the vector lanes are positions and no transpose is needed. Three
/// passes over the band (noise and maximum, exponential and sum, normalization; an online
/// softmax in two passes measured slower: its extra exponentials cost more than the pass they
/// save); returns each position's argmax (the lowest index on ties; [`MASKED_COLUMN`] for a
/// fully masked position, whose soft sample is all zeros).
///
/// # Safety
/// `band.out`, when present, must be valid for writes and reads at `j · stride + p` for every
/// category `j < n` and position `p < width`, and no other thread may read or write those
/// elements during the call. They may be uninitialized: the first pass writes every one of
/// them before any is read.
#[inline(always)]
pub(super) unsafe fn columns_forward(band: ColumnsForward<'_>) -> [u32; COLUMNS] {
    let ColumnsForward {
        theta,
        out,
        n,
        width,
        stride,
        inv_tau,
        key,
        row,
    } = band;
    assert!(
        width <= COLUMNS && n > 0,
        "a band of 1 to {COLUMNS} positions"
    );
    assert!(theta.len() >= (n - 1) * stride + width, "the band's logits");
    // The generator's counter of category 0 of each position; category j adds j.
    let mut base = [0u64; COLUMNS];
    for (p, base) in base.iter_mut().enumerate() {
        *base = (row + p as u64).wrapping_mul(n as u64);
    }
    let mut max = [f32::NEG_INFINITY; COLUMNS];
    let mut argmax = [0u32; COLUMNS];
    let mut x = [0.0f32; COLUMNS];
    for j in 0..n {
        let t = &theta[j * stride..j * stride + width];
        for p in 0..width {
            let u = uniform(key, base[p].wrapping_add(j as u64));
            x[p] = (t[p] - fast_ln(-fast_ln(u))) * inv_tau;
        }
        for p in 0..width {
            let better = x[p] > max[p];
            argmax[p] = if better { j as u32 } else { argmax[p] };
            max[p] = if better { x[p] } else { max[p] };
        }
        if let Some(out) = out {
            // SAFETY: category j's `width` positions of the band, writable and this call's alone
            // (the caller's promise); written, not read, so uninitialized memory will do.
            unsafe {
                std::ptr::copy_nonoverlapping(x.as_ptr(), out.as_ptr().add(j * stride), width)
            };
        }
    }
    // A fully masked position (its maximum −∞) has no category: no one-hot, a soft sample of
    // zeros (its values stay −∞, their exponentials 0, not `−∞ − −∞`).
    for p in 0..width {
        let masked = max[p] == f32::NEG_INFINITY;
        argmax[p] = if masked { MASKED_COLUMN } else { argmax[p] };
        max[p] = if masked { 0.0 } else { max[p] };
    }
    let Some(out) = out else {
        return argmax;
    };
    let mut sum = [0.0f32; COLUMNS];
    for j in 0..n {
        // SAFETY: category j's positions of the band, this call's alone (the caller's promise)
        // and initialized by the first pass.
        let o = unsafe { std::slice::from_raw_parts_mut(out.as_ptr().add(j * stride), width) };
        for p in 0..width {
            o[p] = fast_exp(o[p] - max[p]);
            sum[p] += o[p];
        }
    }
    let mut inv = [0.0f32; COLUMNS];
    for p in 0..width {
        inv[p] = inverse_or_zero(sum[p]);
    }
    for j in 0..n {
        // SAFETY: as above.
        let o = unsafe { std::slice::from_raw_parts_mut(out.as_ptr().add(j * stride), width) };
        for p in 0..width {
            o[p] *= inv[p];
        }
    }
    argmax
}

/// A band of strided categories for [`columns_backward`], laid out as [`ColumnsForward`]'s.
pub(super) struct ColumnsBackward<'a> {
    /// The soft sample from the band's first element.
    pub y: &'a [f32],
    /// The incoming gradient on entry, the gradient in the logits on return, laid out as `y`: a
    /// pointer for the reason `ColumnsForward::out` is one; [`columns_backward`]'s `# Safety`
    /// says what it must point to.
    pub grad: NonNull<f32>,
    /// Categories.
    pub n: usize,
    /// Positions in the band, `1..=COLUMNS`.
    pub width: usize,
    /// The distance between two categories of a position.
    pub stride: usize,
    /// `1 / tau`.
    pub inv_tau: f32,
    /// Also sum `∂L/∂θ_j · ln y_j` over the band.
    pub tau_sum: bool,
}

/// [`backward_chunk`](super::kernels::backward_chunk) on one band of strided categories, across the positions: `g ← y ⊙ (g −
/// yᵀg) / tau` per position in place (two passes), and with `tau_sum` the band's
/// `Σ ∂L/∂θ_j · ln y_j` (else 0).
///
/// # Safety
/// `band.grad` must be valid for reads and writes, and initialized, at `j · stride + p` for every
/// category `j < n` and position `p < width`, and no other thread may read or write those
/// elements during the call.
#[inline(always)]
pub(super) unsafe fn columns_backward(band: ColumnsBackward<'_>) -> f32 {
    let ColumnsBackward {
        y,
        grad,
        n,
        width,
        stride,
        inv_tau,
        tau_sum,
    } = band;
    assert!(
        width <= COLUMNS && n > 0,
        "a band of 1 to {COLUMNS} positions"
    );
    assert!(
        y.len() >= (n - 1) * stride + width,
        "the band's soft sample"
    );
    let mut dot = [0.0f32; COLUMNS];
    for j in 0..n {
        let yj = &y[j * stride..j * stride + width];
        // SAFETY: category j's positions of the band: initialized, and this call's alone (the
        // caller's promise).
        let g = unsafe { std::slice::from_raw_parts(grad.as_ptr().add(j * stride), width) };
        for p in 0..width {
            dot[p] += yj[p] * g[p];
        }
    }
    let mut acc = [0.0f32; COLUMNS];
    for j in 0..n {
        let yj = &y[j * stride..j * stride + width];
        // SAFETY: as above.
        let g = unsafe { std::slice::from_raw_parts_mut(grad.as_ptr().add(j * stride), width) };
        for p in 0..width {
            g[p] = yj[p] * (g[p] - dot[p]) * inv_tau;
        }
        if tau_sum {
            for p in 0..width {
                acc[p] += g[p] * ln_or_zero(yj[p]);
            }
        }
    }
    let mut sum = 0.0f32;
    for a in acc {
        sum += a;
    }
    sum
}
