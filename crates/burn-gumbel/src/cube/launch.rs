//! The launches of the CubeCL kernels on `CubeTensor`s: the `[outer, n, inner]` view of the
//! category axis, the choice between the row and lane kernels, and the grid.

use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::prelude::{CubeCount, CubeDim};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;

use super::backward::{lane_backward, row_backward};
use super::kernels::{LANE_UNITS, lane_forward, noise, row_forward};

/// Rows at least this long whose categories are contiguous get a cube each; shorter ones, and
/// rows strided by the positions after the category axis, a unit each.
const ROW_KERNEL_FROM: usize = 128;

/// The most cubes along one axis of the grid (WebGPU's guaranteed limit).
const GRID_AXIS: u32 = 65_535;

/// The category axis `dim` of `shape` as `[outer, n, inner]`: rows of `n` categories, `inner`
/// positions after the axis.
struct Layout {
    /// Rows: every position but the category axis (`outer · inner`).
    rows: usize,
    /// Categories per row.
    n: usize,
    /// Positions after the category axis: the stride between a row's categories.
    inner: usize,
}

impl Layout {
    fn of(shape: &Shape, dim: usize) -> Self {
        let n = shape[dim];
        let inner: usize = shape.iter().skip(dim + 1).product();
        Layout {
            rows: shape.num_elements() / n.max(1),
            n,
            inner,
        }
    }

    /// Whether a cube per row serves it (else a unit per row).
    fn by_rows(&self) -> bool {
        self.inner == 1 && self.n >= ROW_KERNEL_FROM
    }

    /// How the kernels read this layout on `tensor`'s device, for `tensor`'s dtype.
    fn access(&self, tensor: &CubeTensor) -> Access {
        // The widest of 4, 2 and 1 that divides `n` among the sizes the device reads at once,
        // where a row's categories are contiguous.
        let width = match self.inner {
            1 => tensor
                .client
                .io_optimized_vector_sizes(tensor.dtype.size())
                .filter(|&size| size <= 4 && self.n.is_multiple_of(size))
                .max()
                .unwrap_or(1),
            _ => 1,
        };
        // Each level of the cube's reduction is a barrier: fewer units for rows that do not need
        // more (measured: docs/benchmarks.md, "Measurements behind the kernels' constants").
        let units: u32 = if self.n <= 4096 { 64 } else { 256 };
        let reported = tensor.client.properties().hardware.plane_size_max;
        let lanes = if reported == 0 { 32 } else { reported }
            .next_power_of_two()
            .min(units);
        let planes = (units / lanes) as usize;
        let segment = (self.n / width).div_ceil(planes).div_ceil(lanes as usize) * lanes as usize;
        Access {
            width,
            units,
            lanes,
            segment: segment as u32,
        }
    }
}

/// How the kernels read a layout ([`Layout::access`]).
struct Access {
    /// Categories per vector access: 4, 2 or 1 where a row's categories are contiguous, else 1.
    width: usize,
    /// Units per cube of the row kernels: 64 up to 4096 categories, 256 beyond.
    units: u32,
    /// Units per plane (SIMD group), the span of units that read consecutive vectors in the row
    /// kernels: the largest plane size the device reports (32 where it reports none), at most
    /// `units`.
    lanes: u32,
    /// Vectors per plane in the row kernels: the row's vectors shared among the cube's planes,
    /// rounded up to a multiple of `lanes`.
    segment: u32,
}

/// A generator key as the kernels read it: four 16-bit pieces in a contiguous i32 tensor.
fn device_key(key: CubeTensor) -> CubeTensor {
    assert!(
        key.dtype == DType::I32 && key.meta.num_elements() == 4,
        "the cube kernel's key: four i32 pieces"
    );
    into_contiguous(key)
}

/// A grid of `cubes` cubes over two axes.
fn grid(cubes: usize) -> CubeCount {
    let cubes = cubes.max(1) as u32;
    let x = cubes.min(GRID_AXIS);
    CubeCount::Static(x, cubes.div_ceil(x), 1)
}

/// The sample of `logits` along `dim`: the soft sample, or with `hard` the one-hot of its argmax;
/// with `keep_soft` also the soft sample in f32, for the backward pass.
pub(super) fn forward(
    logits: CubeTensor,
    key: CubeTensor,
    inv_tau: f32,
    hard: bool,
    keep_soft: bool,
    dim: usize,
) -> (CubeTensor, Option<CubeTensor>) {
    let logits = into_contiguous(logits);
    let key = device_key(key);
    let shape = logits.meta.shape().clone();
    let layout = Layout::of(&shape, dim);
    let dtype = logits.dtype;
    let empty = |shape: Shape, dtype: DType| {
        empty_device_contiguous_dtype(logits.client.clone(), logits.device.clone(), shape, dtype)
    };
    let out = empty(shape.clone(), dtype);
    let soft = keep_soft.then(|| empty(shape.clone(), DType::F32));
    if layout.rows == 0 || layout.n == 0 {
        return (out, soft);
    }
    let access = layout.access(&logits);
    // An unused vector when the soft sample is not kept apart.
    let soft_arg = soft
        .clone()
        .unwrap_or_else(|| empty(Shape::new([access.width]), DType::F32));
    // Where z waits between the passes: the kept soft sample, else an f32 soft output; else it
    // is drawn again.
    let z_in_out = !keep_soft && !hard && dtype == DType::F32;
    let storage = dtype_to_storage_type(dtype);
    let (rows, n, inner) = (layout.rows as u32, layout.n as u32, layout.inner as u32);
    let client = logits.client.clone();
    // SAFETY: the tensors are contiguous with `rows · n` elements (the soft argument one when
    // not kept, and then never indexed), and every index the kernels form is below that.
    unsafe {
        if layout.by_rows() {
            row_forward::launch_unchecked(
                &client,
                grid(layout.rows),
                CubeDim::new_1d(access.units),
                access.width,
                logits.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                soft_arg.into_tensor_arg(),
                rows,
                n,
                access.segment,
                key.into_tensor_arg(),
                inv_tau,
                hard,
                keep_soft,
                z_in_out,
                access.units,
                access.lanes,
                storage,
            );
        } else {
            lane_forward::launch_unchecked(
                &client,
                grid(layout.rows.div_ceil(LANE_UNITS as usize)),
                CubeDim::new_1d(LANE_UNITS),
                access.width,
                logits.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                soft_arg.into_tensor_arg(),
                rows,
                n,
                inner,
                key.into_tensor_arg(),
                inv_tau,
                hard,
                keep_soft,
                z_in_out,
                storage,
            );
        }
    }
    (out, soft)
}

/// The gradient in the logits, `y ⊙ (g − yᵀg) / tau` along `dim`, from the f32 soft sample `y`
/// and the incoming gradient `g` (in the logits' dtype).
pub(super) fn backward(soft: CubeTensor, grad: CubeTensor, inv_tau: f32, dim: usize) -> CubeTensor {
    let soft = into_contiguous(soft);
    let grad = into_contiguous(grad);
    let shape = soft.meta.shape().clone();
    let layout = Layout::of(&shape, dim);
    let dtype = grad.dtype;
    let out = empty_device_contiguous_dtype(soft.client.clone(), soft.device.clone(), shape, dtype);
    if layout.rows == 0 || layout.n == 0 {
        return out;
    }
    let storage = dtype_to_storage_type(dtype);
    let (rows, n, inner) = (layout.rows as u32, layout.n as u32, layout.inner as u32);
    let client = soft.client.clone();
    let access = layout.access(&out);
    // SAFETY: three contiguous tensors of `rows · n` elements; every index is below that.
    unsafe {
        if layout.by_rows() {
            row_backward::launch_unchecked(
                &client,
                grid(layout.rows),
                CubeDim::new_1d(access.units),
                access.width,
                soft.into_tensor_arg(),
                grad.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                rows,
                n,
                access.segment,
                inv_tau,
                access.units,
                access.lanes,
                storage,
            );
        } else {
            lane_backward::launch_unchecked(
                &client,
                grid(layout.rows.div_ceil(LANE_UNITS as usize)),
                CubeDim::new_1d(LANE_UNITS),
                access.width,
                soft.into_tensor_arg(),
                grad.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                rows,
                n,
                inner,
                inv_tau,
                storage,
            );
        }
    }
    out
}

/// The Gumbel noise of the sampling kernels for a tensor like `like`, categories along `dim`,
/// under `key`, in f32.
pub(super) fn gumbel_noise(like: &CubeTensor, key: CubeTensor, dim: usize) -> CubeTensor {
    let key = device_key(key);
    let shape = like.meta.shape().clone();
    let layout = Layout::of(&shape, dim);
    let total = shape.num_elements();
    let out =
        empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, DType::F32);
    if total == 0 {
        return out;
    }
    // SAFETY: one contiguous tensor of `total` elements; every index is below that.
    unsafe {
        noise::launch_unchecked(
            &like.client,
            grid(total.div_ceil(LANE_UNITS as usize)),
            CubeDim::new_1d(LANE_UNITS),
            out.clone().into_tensor_arg(),
            key.into_tensor_arg(),
            total as u32,
            layout.n as u32,
            layout.inner as u32,
        );
    }
    out
}
