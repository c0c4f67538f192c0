//! The row kernels of the fused sampler: the forward pass (noise, row maximum, softmax, argmax)
//! and the backward pass (`y ⊙ (g − yᵀg) / tau`) on a chunk of whole rows, written as plain loops
//! that the compiler vectorizes.

use std::mem::MaybeUninit;

use super::lanes::{
    LANES, first_index_of, inverse_or_zero, lane_dot, lane_max, lane_sum, ln_or_zero,
};
use crate::counter::uniform;
use crate::math::{fast_exp, fast_ln};

/// Rows shorter than this take the exponential over the whole chunk.
const SHORT_ROW: usize = 4 * LANES;

/// One chunk of whole rows for [`forward_chunk`].
pub(super) struct ForwardChunk<'a> {
    /// The logits `θ`, `rows · n` values.
    pub theta: &'a [f32],
    /// Where the sample goes, as long as `theta`: uninitialized memory will do, every element is
    /// written (so the driver's buffers need no zero-fill).
    pub out: &'a mut [MaybeUninit<f32>],
    /// Categories per row.
    pub n: usize,
    /// `1 / tau`.
    pub inv_tau: f32,
    /// The generator's key.
    pub key: u64,
    /// The counter of the chunk's first element (its index in the whole tensor).
    pub first: u64,
    /// Normalize the rows (soft sample) or stop at `(θ + g) / tau` (the hard sample needs only
    /// the argmax).
    pub normalize: bool,
}

/// One chunk of whole rows for [`backward_chunk`].
pub(super) struct BackwardChunk<'a> {
    /// The soft sample `y`.
    pub y: &'a [f32],
    /// The incoming gradient `g` on entry, the gradient in the logits on return (computed in
    /// place: no buffer of its own), as long as `y`.
    pub grad: &'a mut [f32],
    /// Categories per row.
    pub n: usize,
    /// `1 / tau`.
    pub inv_tau: f32,
    /// Also sum `∂L/∂θ_j · ln y_j` over the chunk, for the gradient in a learned temperature.
    pub tau_sum: bool,
}

/// The argmax the forward kernels give a fully masked row (every `(θ + g) / tau` is `−∞`): it
/// has no category, so its one-hot is all zeros, as its soft sample is.
pub(super) const MASKED_ROW: usize = usize::MAX;

/// The forward kernel on one chunk: writes `(θ + g) / tau` into `out`, and with `normalize` its
/// softmax per row; returns each row's argmax (the lowest index on ties; [`MASKED_ROW`] for a
/// fully masked row, whose soft sample is all zeros).
///
/// Written so that the compiler vectorizes every loop, and inlined into each instruction-set
/// variant (`isa.rs`). The noise is one loop over the whole chunk, so that short rows vectorize
/// too.
#[inline(always)]
pub(super) fn forward_chunk(chunk: ForwardChunk<'_>) -> Vec<usize> {
    let ForwardChunk {
        theta,
        out,
        n,
        inv_tau,
        key,
        first,
        normalize,
    } = chunk;
    // g = −ln(−ln u); branch-free, so that the compiler vectorizes the loop.
    assert_eq!(out.len(), theta.len(), "one output per logit");
    for (i, (x, &t)) in out.iter_mut().zip(theta).enumerate() {
        let u = uniform(key, first.wrapping_add(i as u64));
        x.write((t - fast_ln(-fast_ln(u))) * inv_tau);
    }
    // SAFETY: the loop above wrote every element of `out` (as long as `theta`), and
    // `MaybeUninit<f32>` has the layout of `f32`.
    let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
    // Plain loops from here on: a closure handed to an iterator adapter (`map`, `for_each`) can
    // end up compiled outside this function, without the target features of its variant.
    let mut argmaxes = Vec::with_capacity(out.len() / n);
    if !normalize || n >= SHORT_ROW {
        for row in out.chunks_mut(n) {
            argmaxes.push(row_softmax(row, normalize));
        }
        return argmaxes;
    }
    // Short rows: the exponential too as one loop over the chunk, which vectorizes where a
    // loop over one row of ten would not.
    for row in out.chunks_mut(n) {
        let max = lane_max(row);
        let masked = max == f32::NEG_INFINITY;
        argmaxes.push(if masked {
            MASKED_ROW
        } else {
            first_index_of(row, max)
        });
        // A fully masked row stays −∞, its exponentials 0 (not `−∞ − −∞`).
        let shift = if masked { 0.0 } else { max };
        for x in row.iter_mut() {
            *x -= shift;
        }
    }
    for x in out.iter_mut() {
        *x = fast_exp(*x);
    }
    for row in out.chunks_mut(n) {
        let mut sum = 0.0f32;
        for &x in row.iter() {
            sum += x;
        }
        let inv = inverse_or_zero(sum);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
    argmaxes
}

/// One row of `(θ + g) / tau`: its argmax, and with `normalize` its softmax in place (all zeros
/// and [`MASKED_ROW`] for a fully masked row).
#[inline(always)]
fn row_softmax(out: &mut [f32], normalize: bool) -> usize {
    let max = lane_max(out);
    if max == f32::NEG_INFINITY {
        if normalize {
            out.fill(0.0);
        }
        return MASKED_ROW;
    }
    let argmax = first_index_of(out, max);
    if normalize {
        // exp and its sum in one pass, the sum in LANES independent accumulators (a single
        // running sum is one dependent add per element).
        let mut lanes = [0.0f32; LANES];
        let mut chunks = out.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (x, lane) in chunk.iter_mut().zip(lanes.iter_mut()) {
                *x = fast_exp(*x - max);
                *lane += *x;
            }
        }
        let mut sum = 0.0f32;
        for x in chunks.into_remainder() {
            *x = fast_exp(*x - max);
            sum += *x;
        }
        sum += lanes.iter().sum::<f32>();
        let inv = 1.0 / sum;
        for x in out.iter_mut() {
            *x *= inv;
        }
    }
    argmax
}

/// The backward kernel on one chunk: `g ← y ⊙ (g − yᵀg) / tau` row by row, in place; with
/// `tau_sum`, returns `Σ_j ∂L/∂θ_j · ln y_j` over the chunk (else 0). Inlined into each
/// instruction-set variant (`isa.rs`).
///
/// That sum gives the temperature's gradient without the noise: with `u = (θ + g) / tau` and
/// `y = softmax(u)`, `∂L/∂tau = −Σ_j ∂L/∂u_j · u_j / tau`, and `u_j = ln y_j + lse(u)` where
/// `Σ_j ∂L/∂u_j = 0`, so `∂L/∂tau = −Σ_j ∂L/∂θ_j · ln y_j`. A `y_j` below the smallest normal
/// f32 adds 0 (its term is under 1e-36; `y_j = 0`, a masked category, would give `0 · −∞`).
#[inline(always)]
pub(super) fn backward_chunk(chunk: BackwardChunk<'_>) -> f32 {
    let BackwardChunk {
        y,
        grad,
        n,
        inv_tau,
        tau_sum,
    } = chunk;
    for (g, y) in grad.chunks_mut(n).zip(y.chunks(n)) {
        let dot = lane_dot(y, g);
        for (o, &yj) in g.iter_mut().zip(y) {
            *o = yj * (*o - dot) * inv_tau;
        }
    }
    if !tau_sum {
        return 0.0;
    }
    // A second pass over the chunk, still in cache; LANES independent sums.
    let mut lanes = [0.0f32; LANES];
    let (mut cg, mut cy) = (grad.chunks_exact(LANES), y.chunks_exact(LANES));
    for (g, y) in (&mut cg).zip(&mut cy) {
        for ((lane, &gj), &yj) in lanes.iter_mut().zip(g).zip(y) {
            *lane += gj * ln_or_zero(yj);
        }
    }
    let mut sum = 0.0f32;
    for (&gj, &yj) in cg.remainder().iter().zip(cy.remainder()) {
        sum += gj * ln_or_zero(yj);
    }
    sum + lanes.iter().sum::<f32>()
}

/// One chunk of whole rows for [`gumbel_rao_chunk`].
pub(super) struct RaoChunk<'a> {
    /// The logits `θ`.
    pub theta: &'a [f32],
    /// The incoming gradient `g` on entry, the gradient in the logits on return, as long as
    /// `theta`.
    pub grad: &'a mut [f32],
    /// Categories per row.
    pub n: usize,
    /// `1 / tau`.
    pub inv_tau: f32,
    /// The generator's key of the forward pass.
    pub key: u64,
    /// The counter of the chunk's first element (its index in the whole tensor).
    pub first: u64,
    /// Elements in the whole tensor: conditional draw `s` of element `e` has the counter
    /// `(s + 1) · total + e`, after the forward pass's `0..total`.
    pub total: u64,
    /// `K`, the conditional draws per row.
    pub samples: usize,
    /// Also sum `∂L/∂θ_j · ln y_j` over the draws, for the gradient in a learned temperature.
    pub tau_sum: bool,
}

/// The Gumbel-Rao backward kernel on one chunk (Paulus et al. 2021): per row, the category `i`
/// that the forward kernel drew (its noise recomputed from the counters, bit for bit), then `K`
/// perturbations conditioned on `argmax(θ + G) = i` from exponential draws `E_j = −ln u_j`,
///
/// `θ_i + G_i = ln Z − ln E_i`,  `θ_j + G_j = θ_j − ln(E_j + E_i p_j)` (`p = softmax θ`),
///
/// and `g ← (1/K) Σ_s y_s ⊙ (g − y_sᵀg) / tau` with `y_s = softmax((θ + G_s) / tau)`, in place.
/// With `tau_sum`, returns `(1/K) Σ_s Σ_j ∂L/∂θ_j^(s) · ln y_{s,j}` (the derivation of
/// [`backward_chunk`] applies draw by draw), else 0.
///
/// The maximum of each conditional draw is `θ_i + G_i` by construction (`E_j + E_i p_j > E_i p_j`),
/// so the softmax needs no search for it. Masked logits (`−∞`) have `p_j = 0`, a draw of `−∞`
/// and a zero gradient; a fully masked row has no sample and a zero gradient.
///
/// The costly arithmetic (the hash, the logarithms, the exponentials) runs as loops over the
/// whole chunk, so that it vectorizes for rows of ten categories as for long ones; only the cheap
/// per-row steps (a maximum, a sum, a dot product) loop row by row.
#[inline(always)]
pub(super) fn gumbel_rao_chunk(chunk: RaoChunk<'_>) -> f32 {
    let RaoChunk {
        theta,
        grad,
        n,
        inv_tau,
        key,
        first,
        total,
        samples,
        tau_sum,
    } = chunk;
    let len = theta.len();
    assert_eq!(grad.len(), len, "one gradient per logit");
    let inv_k = 1.0 / samples as f32;
    // x: a draw, then its soft sample; p: softmax θ; acc: the sum of the draws' gradients;
    // w: each element's row's E_i, then the draw's gradient. All chunk-long.
    let (mut x, mut p) = (vec![0.0f32; len], vec![0.0f32; len]);
    let (mut acc, mut w) = (vec![0.0f32; len], vec![0.0f32; len]);
    let rows = len / n;
    let (mut top, mut log_z) = (Vec::with_capacity(rows), Vec::with_capacity(rows));

    // The sample's categories, as the forward kernel computed them.
    for (i, (x, &t)) in x.iter_mut().zip(theta).enumerate() {
        let u = uniform(key, first.wrapping_add(i as u64));
        *x = (t - fast_ln(-fast_ln(u))) * inv_tau;
    }
    for row in x.chunks(n) {
        top.push(first_index_of(row, lane_max(row)));
    }
    // p = softmax(θ) and ln Z = max + ln Σ e^{θ − max} per row. A fully masked row (its
    // maximum −∞) gets p = 0 and ln Z = 0, finite values whose gradient is zeroed below.
    let mut max = Vec::with_capacity(rows);
    for (row, p) in theta.chunks(n).zip(p.chunks_mut(n)) {
        let m = lane_max(row);
        let m = if m == f32::NEG_INFINITY { 0.0 } else { m };
        for (p, &t) in p.iter_mut().zip(row) {
            *p = t - m;
        }
        max.push(m);
    }
    for p in p.iter_mut() {
        *p = fast_exp(*p);
    }
    let mut masked = Vec::with_capacity(rows);
    for (p, &m) in p.chunks_mut(n).zip(&max) {
        let z = lane_sum(p);
        let inv_z = inverse_or_zero(z);
        for p in p.iter_mut() {
            *p *= inv_z;
        }
        masked.push(z == 0.0);
        log_z.push(if z > 0.0 { m + fast_ln(z) } else { 0.0 });
    }

    let mut sum_tau = 0.0f32;
    for s in 0..samples as u64 {
        let counter = (s + 1).wrapping_mul(total).wrapping_add(first);
        // E_i of each row, spread over the row.
        let mut e_top = Vec::with_capacity(rows);
        for (r, w) in w.chunks_mut(n).enumerate() {
            let index = (r * n + top[r]) as u64;
            let e = -fast_ln(uniform(key, counter.wrapping_add(index)));
            for w in w.iter_mut() {
                *w = e;
            }
            e_top.push(e);
        }
        let draws = x.iter_mut().zip(theta).zip(p.iter()).zip(w.iter());
        for (i, (((x, &t), &pj), &e_i)) in draws.enumerate() {
            let e = -fast_ln(uniform(key, counter.wrapping_add(i as u64)));
            *x = (t - fast_ln(e + e_i * pj)) * inv_tau;
        }
        // The sampled category on top, and every draw less its row's top: exponents ≤ 0.
        for (r, x) in x.chunks_mut(n).enumerate() {
            let top_value = (log_z[r] - fast_ln(e_top[r])) * inv_tau;
            x[top[r]] = top_value;
            for x in x.iter_mut() {
                *x -= top_value;
            }
        }
        for x in x.iter_mut() {
            *x = fast_exp(*x);
        }
        // The soft sample, and this draw's gradient y ⊙ (g − yᵀg) into w; none for a fully
        // masked row, which has no sample.
        let each_row = x.chunks_mut(n).zip(grad.chunks(n)).zip(w.chunks_mut(n));
        for (((x, g), w), &masked) in each_row.zip(&masked) {
            if masked {
                x.fill(0.0);
                w.fill(0.0);
                continue;
            }
            let inv = 1.0 / lane_sum(x);
            for x in x.iter_mut() {
                *x *= inv;
            }
            let dot = lane_dot(x, g);
            for ((w, &y), &gj) in w.iter_mut().zip(x.iter()).zip(g) {
                *w = y * (gj - dot);
            }
        }
        for (a, &w) in acc.iter_mut().zip(w.iter()) {
            *a += w;
        }
        if tau_sum {
            let mut lanes = [0.0f32; LANES];
            let (mut cx, mut cw) = (x.chunks_exact(LANES), w.chunks_exact(LANES));
            for (y, w) in (&mut cx).zip(&mut cw) {
                for ((lane, &y), &w) in lanes.iter_mut().zip(y).zip(w) {
                    *lane += w * ln_or_zero(y);
                }
            }
            for (&y, &w) in cx.remainder().iter().zip(cw.remainder()) {
                sum_tau += w * ln_or_zero(y);
            }
            sum_tau += lanes.iter().sum::<f32>();
        }
    }
    let scale = inv_tau * inv_k;
    for (g, &a) in grad.iter_mut().zip(acc.iter()) {
        *g = a * scale;
    }
    sum_tau * scale
}

/// Initialized values as [`ForwardChunk::out`], the output of a kernel that writes only
/// initialized values into it.
///
/// # Safety
/// Only initialized values may be written through the result while it lives (writing
/// `MaybeUninit::uninit()` would leave `v` holding uninitialized floats): pass it to
/// [`forward_chunk`], which writes an f32 into every element, and to nothing else. That is why
/// this conversion is not safe, and why std does not offer it.
pub(super) unsafe fn as_out(v: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the caller writes only initialized
    // values through the result.
    unsafe { &mut *(v as *mut [f32] as *mut [MaybeUninit<f32>]) }
}
