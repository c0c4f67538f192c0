//! The CubeCL kernels of the forward pass (soft sample, one-hot, or both; the backward pass is in
//! `backward.rs`) in two layouts: a cube of units per row for long rows whose categories are
//! contiguous, and one unit per row (a *lane*) for short rows or categories strided by the
//! positions after them (channels-first maps), where neighbouring units read neighbouring
//! addresses. Contiguous rows are read and written as vectors of `W` categories (4, 2 or 1, the
//! widest that divides the row length).
//!
//! Every value is computed in f32, whatever the storage type. The noise is the counter-based
//! generator of [`crate::counter`] (`mix32`, the key's two words), and `ln` and `exp` are the CPU
//! kernel's (`math.rs`: FreeBSD's `logf`, Cephes' `expf`), so that one key gives the CPU's
//! noise to the bit where the GPU does not contract a multiply and an add into one rounding.

use burn_cubecl::cubecl;
use cubecl::prelude::*;

use super::math::{fast_exp, gumbel, key_words, perturbed_vector};

/// Units per cube of the lane kernels.
pub(super) const LANE_UNITS: u32 = 256;

/// A very negative finite f32: the running maximum before any element (WGSL has no infinite
/// literal; a masked logit, −∞ in memory, never exceeds it, and adds `exp(−∞) = 0`).
const LOWEST: f32 = -3.0e38;

/// The running state of one unit over its share of a row: maximum, sum of `exp(z − max)`, and
/// the first index of the maximum.
#[derive(CubeType, Clone, Copy)]
struct Running {
    max: f32,
    sum: f32,
    arg: u32,
}

/// `state` after element `j` of value `z` (indices increase along a unit's share, so the strict
/// comparison keeps the first index of the maximum). One exponential, `exp(−|z − max|)`: the
/// factor that rescales the sum when `z` is the new maximum, else the term `z` adds (a branch
/// would be flattened into both exponentials on SIMD devices).
#[cube]
fn step(state: &mut Running, z: f32, j: u32) {
    let bigger = z > state.max;
    let e = fast_exp(-f32::abs(z - state.max));
    state.sum = select(bigger, state.sum * e + 1.0f32, state.sum + e);
    state.max = select(bigger, z, state.max);
    state.arg = select(bigger, j, state.arg);
}

/// `state` merged with another share's maximum `max`, sum `sum` (of `exp(z − max)`) and first
/// index of the maximum `arg`.
#[cube]
fn merge(state: &mut Running, max: f32, sum: f32, arg: u32) {
    let m = select(max > state.max, max, state.max);
    state.sum = state.sum * fast_exp(state.max - m) + sum * fast_exp(max - m);
    state.arg = select(
        max > state.max || (max == state.max && arg < state.arg),
        arg,
        state.arg,
    );
    state.max = m;
}

/// `1 / sum` for a row's sum of `exp(z − max)`, 0 for a fully masked row's: no element exceeds
/// [`LOWEST`], so its sum stays 0 (any other row's is at least 1) and its argmax `n`, outside the
/// row; its soft sample and one-hot are then all zeros, as on the CPU.
#[cube]
fn inverse_or_zero(sum: f32) -> f32 {
    select(sum > 0.0f32, 1.0f32 / sum, 0.0f32)
}

/// The index of the row a cube (row kernels) or unit (lane kernels) works on, over a 2D grid of
/// cubes.
#[cube]
pub(super) fn cube_index() -> u32 {
    CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X
}

/// Pass 1 of the forward kernels on vector `i`, categories `j..j + W` of their row, whose first
/// element has counter `counter`: draws `z = (θ + g) / tau`, steps `state` through it and keeps
/// it where pass 2 will read it (see [`row_forward`]).
#[cube]
#[allow(clippy::too_many_arguments)]
fn draw<F: Float, W: Size>(
    logits: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    soft: &mut Tensor<Vector<f32, W>>,
    state: &mut Running,
    i: usize,
    j: usize,
    counter: usize,
    k1: u32,
    k2: u32,
    inv_tau: f32,
    #[comptime] keep_soft: bool,
    #[comptime] z_in_out: bool,
) {
    let z = perturbed_vector(logits[i], counter, k1, k2, inv_tau);
    #[unroll]
    for c in 0..W::value() {
        step(state, z.extract(c), (j + c) as u32);
    }
    if keep_soft {
        soft[i] = z;
    } else if z_in_out {
        out[i] = Vector::cast_from(z);
    }
}

/// Pass 2 of the forward kernels on vector `i`, categories `j..j + W` of their row, whose first
/// element has counter `counter`: the soft sample `exp(z − max) · inv_sum` and, with `hard`, the
/// one-hot of the row's argmax `top` (see [`row_forward`]).
#[cube]
#[allow(clippy::too_many_arguments)]
fn finish<F: Float, W: Size>(
    logits: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    soft: &mut Tensor<Vector<f32, W>>,
    i: usize,
    j: usize,
    counter: usize,
    max: f32,
    inv_sum: f32,
    top: u32,
    k1: u32,
    k2: u32,
    inv_tau: f32,
    #[comptime] hard: bool,
    #[comptime] keep_soft: bool,
    #[comptime] z_in_out: bool,
) {
    if !hard || keep_soft {
        let z = if keep_soft {
            soft[i]
        } else if z_in_out {
            Vector::cast_from(out[i])
        } else {
            perturbed_vector(logits[i], counter, k1, k2, inv_tau)
        };
        let mut y = Vector::<f32, W>::empty();
        #[unroll]
        for c in 0..W::value() {
            y.insert(c, fast_exp(z.extract(c) - max) * inv_sum);
        }
        if keep_soft {
            soft[i] = y;
        }
        if !hard {
            out[i] = Vector::cast_from(y);
        }
    }
    if hard {
        let mut one_hot = Vector::<F, W>::empty();
        #[unroll]
        for c in 0..W::value() {
            let hot = (j + c) as u32 == top;
            one_hot.insert(c, F::cast_from(select(hot, 1.0f32, 0.0f32)));
        }
        out[i] = one_hot;
    }
}

/// The forward pass, a cube of `units` units (a power of two) per row of `n` contiguous
/// categories, read and written as vectors of `W` categories (`W` divides `n`).
///
/// Pass 1 draws `z = (θ + g) / tau`, keeps it (in `soft` with `keep_soft`, in `out` with
/// `z_in_out`, an f32 output; else it is drawn again in pass 2) and reduces max, sum and argmax
/// across the cube in shared memory. Pass 2 writes `softmax(z)` into `out` (without `hard`) and
/// into the f32 `soft` (with `keep_soft`: the backward pass's copy, when `out` is one-hot or
/// half precision), and with `hard` the one-hot into `out`.
///
/// Each plane of `lanes` units sweeps its own segment of the row, neighbouring units reading
/// neighbouring vectors ([`share`]). A vector access is one memory transaction per unit on a GPU,
/// and one pass of lavapipe's per-lane access loop instead of `W`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(super) fn row_forward<F: Float, W: Size>(
    logits: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    soft: &mut Tensor<Vector<f32, W>>,
    rows: u32,
    n: u32,
    segment: u32,
    key: &Tensor<i32>,
    inv_tau: f32,
    #[comptime] hard: bool,
    #[comptime] keep_soft: bool,
    #[comptime] z_in_out: bool,
    #[comptime] units: u32,
    #[comptime] lanes: u32,
    #[define(F)] _dtype: ElemType,
) {
    let row = cube_index();
    if row >= rows {
        terminate!();
    }
    let words = key_words(key);
    let (k1, k2) = (words.k1, words.k2);
    let unit = UNIT_POS_X as usize;
    let units = comptime!(units as usize);
    let width = W::value();
    let vectors = n as usize / width;
    let base = row as usize * vectors;
    let mut state = Running {
        max: LOWEST,
        sum: 0.0f32,
        arg: n,
    };
    let (first, end) = share(segment, vectors, lanes);
    let mut v = first;
    while v < end {
        let i = base + v;
        draw(
            logits,
            out,
            soft,
            &mut state,
            i,
            v * width,
            i * width,
            k1,
            k2,
            inv_tau,
            keep_soft,
            z_in_out,
        );
        v += comptime!(lanes as usize);
    }

    let mut shared_max = Shared::<[f32]>::new_slice(units);
    let mut shared_sum = Shared::<[f32]>::new_slice(units);
    let mut shared_arg = Shared::<[u32]>::new_slice(units);
    shared_max[unit] = state.max;
    shared_sum[unit] = state.sum;
    shared_arg[unit] = state.arg;
    sync_cube();
    // Eight entries to one per level (three barriers for 256 units, where halving takes eight).
    // A fresh runtime value (`.runtime()`): CubeCL cannot assign to a constant.
    let mut span = units.runtime();
    while span > 1 {
        let next = span.div_ceil(8);
        if unit < next {
            let mut acc = Running {
                max: shared_max[unit],
                sum: shared_sum[unit],
                arg: shared_arg[unit],
            };
            let mut k = unit + next;
            while k < span {
                merge(&mut acc, shared_max[k], shared_sum[k], shared_arg[k]);
                k += next;
            }
            shared_max[unit] = acc.max;
            shared_sum[unit] = acc.sum;
            shared_arg[unit] = acc.arg;
        }
        sync_cube();
        span = next;
    }
    let (max, inv_sum, top) = (shared_max[0], inverse_or_zero(shared_sum[0]), shared_arg[0]);

    let mut v = first;
    while v < end {
        let i = base + v;
        finish(
            logits,
            out,
            soft,
            i,
            v * width,
            i * width,
            max,
            inv_sum,
            top,
            k1,
            k2,
            inv_tau,
            hard,
            keep_soft,
            z_in_out,
        );
        v += comptime!(lanes as usize);
    }
}

/// The share of a row of `vectors` vectors that the calling unit sweeps in the row kernels, as
/// `first..end` in steps of `lanes`: the row is cut into segments of `segment` vectors (a
/// multiple of `lanes`), one per group of `lanes` consecutive units (a plane, where `lanes` is
/// the device's plane size), whose units read consecutive vectors. A GPU plane reads one
/// contiguous span per step, as with a row-wide stride; a CPU-backed device that runs each plane
/// as a SIMD loop over the whole sweep (lavapipe) streams through memory instead of touching one
/// span per `units` vectors, a new page every step in a row of 50,000 f32 categories.
#[cube]
pub(super) fn share(segment: u32, vectors: usize, #[comptime] lanes: u32) -> (usize, usize) {
    let plane = UNIT_POS_X / lanes;
    let lane = UNIT_POS_X % lanes;
    let start = (plane * segment) as usize;
    let end = start + segment as usize;
    (start + lane as usize, select(end < vectors, end, vectors))
}

/// The forward pass, one unit per row: row `p` of `n` categories at `offset(p) + j · stride`,
/// `offset(p) = (p / stride) · n · stride + p mod stride` (stride 1: contiguous rows; else the
/// positions after the category axis), read as vectors of `W` categories when the rows are
/// contiguous (`W` is 1 otherwise). Otherwise as [`row_forward`].
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lane_forward<F: Float, W: Size>(
    logits: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    soft: &mut Tensor<Vector<f32, W>>,
    rows: u32,
    n: u32,
    stride: u32,
    key: &Tensor<i32>,
    inv_tau: f32,
    #[comptime] hard: bool,
    #[comptime] keep_soft: bool,
    #[comptime] z_in_out: bool,
    #[define(F)] _dtype: ElemType,
) {
    let p = cube_index() * LANE_UNITS + UNIT_POS_X;
    if p >= rows {
        terminate!();
    }
    let words = key_words(key);
    let (k1, k2) = (words.k1, words.k2);
    let width = W::value();
    // In vectors: `W` is 1 unless `stride` is (contiguous rows of a multiple of `W`).
    let offset = ((p / stride) * n * stride + p % stride) as usize / width;
    let stride = stride as usize;
    let counter = (p * n) as usize;
    let mut state = Running {
        max: LOWEST,
        sum: 0.0f32,
        arg: n,
    };
    let vectors = n as usize / width;
    for v in 0..vectors {
        let j = v * width;
        draw(
            logits,
            out,
            soft,
            &mut state,
            offset + v * stride,
            j,
            counter + j,
            k1,
            k2,
            inv_tau,
            keep_soft,
            z_in_out,
        );
    }
    let inv_sum = inverse_or_zero(state.sum);
    for v in 0..vectors {
        let j = v * width;
        finish(
            logits,
            out,
            soft,
            offset + v * stride,
            j,
            counter + j,
            state.max,
            inv_sum,
            state.arg,
            k1,
            k2,
            inv_tau,
            hard,
            keep_soft,
            z_in_out,
        );
    }
}

/// Gumbel noise `−ln(−ln u)` of every element of a tensor whose category axis has `n` categories
/// and `inner` positions after it, in f32: element `e` is row `(e / (n · inner)) · inner +
/// e mod inner`'s category `(e / inner) mod n`, with that row's counter. The noise of the
/// sampling kernels, for the tensor-op paths.
#[cube(launch_unchecked)]
pub(super) fn noise(out: &mut Tensor<f32>, key: &Tensor<i32>, total: u32, n: u32, inner: u32) {
    let e = cube_index() * LANE_UNITS + UNIT_POS_X;
    if e >= total {
        terminate!();
    }
    let words = key_words(key);
    let (k1, k2) = (words.k1, words.k2);
    let row = e / (n * inner) * inner + e % inner;
    let counter = row * n + (e / inner) % n;
    out[e as usize] = gumbel(k1, k2, counter);
}
