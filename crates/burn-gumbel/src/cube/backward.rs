//! The CubeCL kernels of the backward pass, `∂L/∂θ = y ⊙ (g − yᵀg) / tau` with `y` the soft
//! sample (kept in f32 by the forward pass) and `g` the incoming gradient, in the forward
//! kernels' two layouts (`kernels.rs`): a cube per long contiguous row, its units sharing the row
//! as there, or one unit per row.

use burn_cubecl::cubecl;
use cubecl::prelude::*;

use super::kernels::{LANE_UNITS, cube_index, share};

/// The backward pass, a cube per row: `∂L/∂θ = y ⊙ (g − yᵀg) / tau` with `y` the soft sample (in
/// f32) and `g` the incoming gradient; the dot product reduced across the cube in shared memory.
/// Rows are read as vectors of `W` categories, shared among the units as in the forward row kernel.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(super) fn row_backward<F: Float, W: Size>(
    soft: &Tensor<Vector<f32, W>>,
    grad: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    rows: u32,
    n: u32,
    segment: u32,
    inv_tau: f32,
    #[comptime] units: u32,
    #[comptime] lanes: u32,
    #[define(F)] _dtype: ElemType,
) {
    let row = cube_index();
    if row >= rows {
        terminate!();
    }
    let unit = UNIT_POS_X as usize;
    let units = comptime!(units as usize);
    let width = W::value();
    let vectors = n as usize / width;
    let base = row as usize * vectors;
    let (first, end) = share(segment, vectors, lanes);
    let mut dot = 0.0f32;
    let mut v = first;
    while v < end {
        let i = base + v;
        dot += dot_vector(soft[i], grad[i]);
        v += comptime!(lanes as usize);
    }
    let mut partial = Shared::<[f32]>::new_slice(units);
    partial[unit] = dot;
    sync_cube();
    // Eight entries to one per level, as in the forward row kernel.
    let mut span = units.runtime();
    while span > 1 {
        let next = span.div_ceil(8);
        if unit < next {
            let mut acc = partial[unit];
            let mut k = unit + next;
            while k < span {
                acc += partial[k];
                k += next;
            }
            partial[unit] = acc;
        }
        sync_cube();
        span = next;
    }
    let dot = partial[0];
    let mut v = first;
    while v < end {
        let i = base + v;
        out[i] = grad_vector(soft[i], grad[i], dot, inv_tau);
        v += comptime!(lanes as usize);
    }
}

/// The backward pass, one unit per row, rows laid out (and read as vectors) as in
/// the forward lane kernel.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lane_backward<F: Float, W: Size>(
    soft: &Tensor<Vector<f32, W>>,
    grad: &Tensor<Vector<F, W>>,
    out: &mut Tensor<Vector<F, W>>,
    rows: u32,
    n: u32,
    stride: u32,
    inv_tau: f32,
    #[define(F)] _dtype: ElemType,
) {
    let p = cube_index() * LANE_UNITS + UNIT_POS_X;
    if p >= rows {
        terminate!();
    }
    let offset = ((p / stride) * n * stride + p % stride) as usize / W::value();
    let stride = stride as usize;
    let vectors = n as usize / W::value();
    let mut dot = 0.0f32;
    for v in 0..vectors {
        let i = offset + v * stride;
        dot += dot_vector(soft[i], grad[i]);
    }
    for v in 0..vectors {
        let i = offset + v * stride;
        out[i] = grad_vector(soft[i], grad[i], dot, inv_tau);
    }
}

/// `Σ_c y_c · g_c` over a vector of the soft sample `y` and of the incoming gradient `g`.
#[cube]
fn dot_vector<F: Float, W: Size>(y: Vector<f32, W>, g: Vector<F, W>) -> f32 {
    let mut dot = 0.0f32;
    #[unroll]
    for c in 0..W::value() {
        dot += y.extract(c) * f32::cast_from(g.extract(c));
    }
    dot
}

/// The gradient in the logits `y ⊙ (g − dot) / tau` over a vector, `dot = yᵀg` of the row.
#[cube]
fn grad_vector<F: Float, W: Size>(
    y: Vector<f32, W>,
    g: Vector<F, W>,
    dot: f32,
    inv_tau: f32,
) -> Vector<F, W> {
    let mut dx = Vector::<F, W>::empty();
    #[unroll]
    for c in 0..W::value() {
        let value = y.extract(c) * (f32::cast_from(g.extract(c)) - dot) * inv_tau;
        dx.insert(c, F::cast_from(value));
    }
    dx
}
