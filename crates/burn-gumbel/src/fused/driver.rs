//! The chunk driver: a flex tensor cut into cache-sized chunks of whole rows, spread over rayon's
//! threads, each run through the kernel variant of this processor.
//!
//! Categories on the last axis are rows already: the chunks are slices of the tensor. On another
//! axis no tensor-sized transposed copy is made: the forward and backward kernels have column
//! variants that work across the positions of a band of the tensor in place (`columns.rs`), and
//! maps of few positions, as well as Gumbel-Rao's backward pass, whose work per element is ten
//! times theirs, gather bands of rows into buffers of their thread and scatter the result back
//! (`bands.rs`, with the transposes of `layout.rs`).

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use crate::isa::Isa;

use super::bands::{
    Shared, TASK_ELEMENTS, extent, gather_group, par_bands, par_gathered, scatter_group,
};
use super::columns::{COLUMNS, ColumnsBackward, ColumnsForward, MASKED_COLUMN};
use super::isa::{
    Kernel, chunk_backward, chunk_columns_backward, chunk_columns_forward, chunk_gumbel_rao,
};
use super::kernels::{BackwardChunk, MASKED_ROW, RaoChunk, as_out};
use super::layout::{BAND, Layout};
use super::precision::{contiguous, narrowed, tensor_of, widened};

/// A sample from [`forward`].
pub(super) struct Sample {
    /// The soft sample, or the one-hot with `hard`, in the logits' layout.
    pub out: FlexTensor,
    /// The soft sample in f32 and in the logits' layout, for [`backward`], when asked for.
    pub soft: Option<FlexTensor>,
}

/// The forward kernel on a flex tensor whose categories lie along `dim`: the soft sample, or its
/// one-hot with `hard`, and with `keep_soft` the soft sample for [`backward`].
pub(super) fn forward(
    logits: &FlexTensor,
    key: u64,
    tau: f32,
    hard: bool,
    keep_soft: bool,
    dim: usize,
) -> Sample {
    let shape = logits.layout().shape().clone();
    let layout = Layout::of(shape.as_slice(), dim);
    let dtype = logits.dtype();
    let contiguous = contiguous(logits);
    let theta = widened(&contiguous);
    let kernel = Kernel {
        inv_tau: 1.0 / tau,
        key,
        normalize: !hard || keep_soft,
        isa: Isa::detect(),
    };
    let (values, one_hot) = match layout.is_rows() {
        true => forward_rows(&theta, layout.n, kernel, hard, keep_soft),
        false => forward_strided(&theta, &layout, kernel, hard),
    };
    // The sample in the logits' dtype; the soft sample for the backward pass stays in f32.
    let f32_tensor =
        |values: Vec<f32>, shape| FlexTensor::from_data(TensorData::new(values, shape));
    let (out, soft) = match one_hot {
        Some(one_hot) => {
            let soft = keep_soft.then(|| f32_tensor(values, shape.clone()));
            (tensor_of(one_hot, shape, dtype), soft)
        }
        None if dtype == DType::F32 => {
            let out = tensor_of(values, shape, dtype);
            (out.clone(), keep_soft.then_some(out))
        }
        None => {
            let out = narrowed(&values, shape.clone(), dtype);
            (out, keep_soft.then(|| f32_tensor(values, shape)))
        }
    };
    Sample { out, soft }
}

/// [`forward`] with the categories last: the kernel's values (`(θ + g) / tau`, or the soft sample
/// when it normalizes) and, with `hard`, the one-hot.
fn forward_rows(
    theta: &[f32],
    n: usize,
    kernel: Kernel,
    hard: bool,
    keep_soft: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let total = theta.len();
    // A hard sample whose soft sample is not kept needs one buffer: the kernel leaves
    // `(θ + g) / tau` there, and the same task, on the chunk still in cache, overwrites it with
    // the one-hot.
    let one_hot_in_place = hard && !keep_soft;
    // Not zero-filled: the kernel writes every element.
    let mut values: Vec<f32> = Vec::with_capacity(total);
    let mut argmaxes = Vec::new();
    if n > 0 && total > 0 {
        let chunk = chunk_len(n);
        let tasks = values.spare_capacity_mut()[..total]
            .par_chunks_mut(chunk)
            .zip(theta.par_chunks(chunk))
            .enumerate();
        argmaxes = tasks
            .map(|(task, (out, theta))| {
                let argmaxes = kernel.run(theta, out, n, task * chunk / n);
                if !one_hot_in_place {
                    return argmaxes;
                }
                for x in out.iter_mut() {
                    x.write(0.0);
                }
                for (row, j) in argmaxes.into_iter().enumerate() {
                    if j != MASKED_ROW {
                        out[row * n + j].write(1.0);
                    }
                }
                Vec::new()
            })
            .collect::<Vec<_>>();
        // SAFETY: the chunks cover the first `total` elements, and the kernel wrote every element
        // of its chunk.
        unsafe { values.set_len(total) };
    }
    if !hard {
        return (values, None);
    }
    if one_hot_in_place {
        return (Vec::new(), Some(values));
    }
    // The one-hot beside the kept soft sample, written chunk by chunk over the threads.
    let mut one_hot = vec![0.0f32; total];
    one_hot
        .par_chunks_mut(chunk_len(n))
        .zip(argmaxes.par_iter())
        .for_each(|(out, argmaxes)| {
            for (row, &j) in argmaxes.iter().enumerate() {
                if j != MASKED_ROW {
                    out[row * n + j] = 1.0;
                }
            }
        });
    (values, Some(one_hot))
}

/// Maps with fewer positions than this after the category axis go through bands gathered into
/// rows ([`par_gathered`]) rather than the column kernels, whose vector lanes are positions: few
/// positions leave most lanes empty (measured: `docs/benchmarks.md`, "Measurements behind the
/// kernels' constants").
const MIN_COLUMNS: usize = 16;

/// [`forward`] with the categories on another axis: the soft sample (when the kernel normalizes;
/// else nothing) and, with `hard`, the one-hot, both in the logits' layout. Band by band through
/// the column kernel, or for maps of few positions gathered into rows.
fn forward_strided(
    theta: &[f32],
    layout: &Layout,
    kernel: Kernel,
    hard: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (total, n, inner) = (layout.len(), layout.n, layout.inner);
    // The soft sample: written whole, so not zero-filled (uninitialized until every band is
    // written); none when the kernel does not normalize. The one-hot: zeros and one 1 per row.
    let mut values: Vec<f32> = Vec::with_capacity(if kernel.normalize { total } else { 0 });
    let values_out = kernel
        .normalize
        .then(|| Shared::of_uninit(values.spare_capacity_mut()));
    let mut one_hot = if hard {
        vec![0.0f32; total]
    } else {
        Vec::new()
    };
    let one_hot_out = Shared::of(&mut one_hot);
    let isa = kernel.isa;
    // A 1 in the one-hot: category `j` of the position at `index` (the band's offset plus the
    // position), inside the tensor; none for a fully masked row.
    let mark = |index: usize, j: usize| {
        if j == MASKED_ROW {
            return;
        }
        let at = index + j * inner;
        // One comparison per row: checked in every build, since a wrong index would write
        // outside the buffer.
        assert!(
            at < total,
            "a one-hot element inside the tensor: {at} of {total}"
        );
        // SAFETY: `one_hot` holds `total` initialized values and `at` is one of them (checked
        // above), of a band that is this task's alone (`par_bands`).
        unsafe { one_hot_out.at(at).write(1.0) };
    };
    if inner >= MIN_COLUMNS {
        par_bands(layout, COLUMNS, 0, |bands, _| {
            for &band in bands {
                let offset = layout.offset(band);
                let args = ColumnsForward {
                    theta: &theta[offset..],
                    out: values_out.map(|values| values.at(offset)),
                    n,
                    width: band.width(),
                    stride: inner,
                    inv_tau: kernel.inv_tau,
                    key: kernel.key,
                    row: band.row() as u64,
                };
                // SAFETY: `values` has room for the tensor, and the band's elements from
                // `offset` (category j of position p at `j · inner + p`) lie inside it (a band
                // of `Layout::band`, which checks `Layout::holds` in debug builds) and are this
                // task's alone (`par_bands`).
                let argmax = unsafe { chunk_columns_forward(isa, args) };
                if hard {
                    for (p, &j) in argmax[..band.width()].iter().enumerate() {
                        let j = if j == MASKED_COLUMN {
                            MASKED_ROW
                        } else {
                            j as usize
                        };
                        mark(offset + p, j);
                    }
                }
            }
            0.0
        });
    } else {
        par_bands(layout, BAND, 2, |bands, scratch| {
            let (first, rows) = extent(bands);
            let (a, b) = scratch.split_at_mut(scratch.len() / 2);
            let (theta_rows, y) = (&mut a[..rows * n], &mut b[..rows * n]);
            // SAFETY: `theta` holds the tensor; the bands are this task's alone.
            unsafe { gather_group(isa, theta.as_ptr(), layout, bands, theta_rows) };
            // SAFETY: the forward kernel writes only initialized values through it.
            let argmaxes = kernel.run(theta_rows, unsafe { as_out(y) }, n, first);
            if let Some(values_out) = values_out {
                // SAFETY: `values` has room for the tensor; the bands are this task's alone.
                unsafe { scatter_group(isa, y, layout, bands, values_out.ptr()) };
            }
            if hard {
                for (k, j) in argmaxes.into_iter().enumerate() {
                    mark(layout.index(first + k, 0), j);
                }
            }
            0.0
        });
    }
    if kernel.normalize {
        // SAFETY: the bands cover the tensor, and each band's every element was written.
        unsafe { values.set_len(total) };
    }
    (values, hard.then_some(one_hot))
}

/// What [`backward`] returns.
pub(super) struct Gradients {
    /// `∂L/∂logits`, in the layout of the logits.
    pub logits: FlexTensor,
    /// `Σ ∂L/∂θ_j · ln y_j` over every element when asked for (else 0): `∂L/∂tau` is its
    /// negative.
    pub tau_sum: f64,
}

/// The backward kernel: `y ⊙ (g − yᵀg) / tau` row by row, `y` the soft sample from [`forward`],
/// `grad` in the layout of the logits (categories along `dim`); with `tau_sum`, also the sum that
/// gives the temperature's gradient (`kernels.rs` says how). Computed in place ([`in_place`]).
pub(super) fn backward(
    soft: &FlexTensor,
    grad: FlexTensor,
    tau: f32,
    dim: usize,
    tau_sum: bool,
) -> Gradients {
    let y = soft
        .as_slice::<f32>()
        .expect("the saved soft sample is contiguous");
    let (inv_tau, isa) = (1.0 / tau, Isa::detect());
    let rows_kernel = |_, grad: &mut [f32], y: &[f32], n| {
        let chunk = BackwardChunk {
            y,
            grad,
            n,
            inv_tau,
            tau_sum,
        };
        chunk_backward(isa, chunk) as f64
    };
    in_place(grad, dim, |values, layout| {
        let n = layout.n;
        if layout.is_rows() {
            return par_rows(values, y, n, |row, grad, y| rows_kernel(row, grad, y, n));
        }
        if layout.inner < MIN_COLUMNS {
            return par_gathered(values, y, layout, rows_kernel);
        }
        let out = Shared::of(values);
        par_bands(layout, COLUMNS, 0, |bands, _| {
            let mut sum = 0.0;
            for &band in bands {
                let offset = layout.offset(band);
                let args = ColumnsBackward {
                    y: &y[offset..],
                    grad: out.at(offset),
                    n,
                    width: band.width(),
                    stride: layout.inner,
                    inv_tau,
                    tau_sum,
                };
                // SAFETY: `values` holds the tensor's initialized gradient, and the band's
                // elements from `offset` lie inside it (a band of `Layout::band`) and are this
                // task's alone (`par_bands`).
                sum += unsafe { chunk_columns_backward(isa, args) } as f64;
            }
            sum
        })
    })
}

/// The Gumbel-Rao backward kernel (`kernels.rs`) on the logits of a hard sample that [`forward`]
/// drew under `key`: the straight-through gradient averaged over `samples` draws of the noise
/// conditioned on the sample, from the same key's counters after the forward pass's. Computed in
/// place ([`in_place`]).
pub(super) fn gumbel_rao_backward(
    logits: &FlexTensor,
    grad: FlexTensor,
    tau: f32,
    samples: usize,
    key: u64,
    dim: usize,
    tau_sum: bool,
) -> Gradients {
    let contiguous = contiguous(logits);
    let theta = widened(&contiguous);
    let total = theta.len() as u64;
    let (inv_tau, isa) = (1.0 / tau, Isa::detect());
    let kernel = |row: usize, grad: &mut [f32], theta: &[f32], n: usize| {
        let chunk = RaoChunk {
            theta,
            grad,
            n,
            inv_tau,
            key,
            first: (row * n) as u64,
            total,
            samples,
            tau_sum,
        };
        chunk_gumbel_rao(isa, chunk) as f64
    };
    in_place(grad, dim, |values, layout| {
        let n = layout.n;
        if layout.is_rows() {
            return par_rows(values, &theta, n, |row, grad, theta| {
                kernel(row, grad, theta, n)
            });
        }
        // Ten times the forward pass's work per element and more: bands of rows gathered into
        // each thread's buffers and scattered back.
        par_gathered(values, &theta, layout, kernel)
    })
}

/// Runs `work(values, layout)` on `grad`'s values in f32 (the categories along `dim`), which it
/// overwrites with the gradient in the logits; returns that gradient in `grad`'s layout and dtype
/// with `work`'s result.
///
/// In place: in `grad`'s own buffer when the tensor holds it alone (the usual case: autodiff
/// hands over a gradient it has just computed), else in an f32 copy.
fn in_place(
    mut grad: FlexTensor,
    dim: usize,
    work: impl FnOnce(&mut [f32], &Layout) -> f64,
) -> Gradients {
    let shape = grad.layout().shape().clone();
    let layout = Layout::of(shape.as_slice(), dim);
    let len = layout.len();
    let dtype = grad.dtype();
    let owned = whole_storage(&grad, len);
    let mut copy = match owned {
        true => Vec::new(),
        false => widened(&contiguous(&grad)).into_owned(),
    };
    let values: &mut [f32] = match owned {
        true => grad
            .try_storage_mut::<f32>()
            .expect("checked: the tensor holds its buffer alone"),
        false => &mut copy,
    };
    let tau_sum = match layout.n > 0 && len > 0 {
        true => work(values, &layout),
        false => 0.0,
    };
    let logits = match owned {
        true => grad,
        false => tensor_of(copy, shape, dtype),
    };
    Gradients { logits, tau_sum }
}

/// Runs `kernel(row, values, input)` on chunks of whole rows of `n` of `values` and the same rows
/// of `input` over rayon's threads, `row` the chunk's first; the sum of its results.
fn par_rows(
    values: &mut [f32],
    input: &[f32],
    n: usize,
    kernel: impl Fn(usize, &mut [f32], &[f32]) -> f64 + Sync,
) -> f64 {
    assert_eq!(input.len(), values.len(), "one input value per value");
    let chunk = chunk_len(n);
    values
        .par_chunks_mut(chunk)
        .zip(input.par_chunks(chunk))
        .enumerate()
        .map(|(task, (values, input))| kernel(task * chunk / n, values, input))
        .sum()
}

/// Whether `tensor` is a contiguous f32 tensor of `len` elements that owns its whole buffer alone,
/// so that it can be overwritten in place.
fn whole_storage(tensor: &FlexTensor, len: usize) -> bool {
    tensor.dtype() == DType::F32
        && tensor.is_unique()
        && tensor.as_slice::<f32>().is_some_and(|s| s.len() == len)
        && tensor.storage::<f32>().len() == len
}

/// Elements per rayon task for rows of `n`: whole rows, about [`TASK_ELEMENTS`] of them.
fn chunk_len(n: usize) -> usize {
    (TASK_ELEMENTS / n).max(1) * n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::kernels::{ForwardChunk, forward_chunk};
    use crate::fused::layout::{from_rows, to_rows};

    fn values(tensor: &FlexTensor) -> Vec<f32> {
        tensor.as_slice::<f32>().expect("contiguous f32").to_vec()
    }

    /// `[rows, n]` logits of mixed signs.
    fn logits(rows: usize, n: usize) -> FlexTensor {
        let theta: Vec<f32> = (0..rows * n)
            .map(|i| ((i * 29) % 13) as f32 * 0.4 - 2.5)
            .collect();
        FlexTensor::from_data(TensorData::new(theta, [rows, n]))
    }

    #[test]
    fn chunks_over_threads_give_the_bits_of_one_chunk() {
        // 3000 rows of 10, 1638 rows per task: two tasks. Each element's noise
        // comes from its index in the whole tensor, so the split cannot change a bit.
        let (rows, n) = (3000, 10);
        let theta = logits(rows, n);
        let soft = forward(&theta, 42, 0.7, false, false, 1).out;
        let mut whole = vec![0.0; rows * n];
        forward_chunk(ForwardChunk {
            theta: &values(&theta),
            // SAFETY: only the kernel writes through it.
            out: unsafe { as_out(&mut whole) },
            n,
            inv_tau: 1.0 / 0.7,
            key: 42,
            first: 0,
            normalize: true,
        });
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(rows * n > TASK_ELEMENTS, "the tensor spans several tasks");
        assert_eq!(bits(&values(&soft)), bits(&whole));
    }

    #[test]
    fn the_hard_sample_is_the_one_hot_of_the_soft_samples_argmax() {
        // Same key: the one-hot marks the largest soft value of each row, and only it.
        let (rows, n) = (500, 70);
        let theta = logits(rows, n);
        let sample = forward(&theta, 7, 0.5, true, true, 1);
        let hard = values(&sample.out);
        let soft = values(&sample.soft.expect("asked for"));
        for r in 0..rows {
            let (h, s) = (&hard[r * n..(r + 1) * n], &soft[r * n..(r + 1) * n]);
            let best = (0..n).fold(0, |b, j| if s[j] > s[b] { j } else { b });
            assert_eq!(h.iter().sum::<f32>(), 1.0, "row {r}");
            assert_eq!(h[best], 1.0, "row {r}");
            let total: f32 = s.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "row {r} sums to {total}");
        }
        let alone = forward(&theta, 7, 0.5, true, false, 1).out;
        assert_eq!(values(&alone), hard);
    }

    #[test]
    fn backward_is_the_softmax_jacobian_over_tau() {
        // y ⊙ (g − yᵀg) / tau, row by row, against the formula in f64.
        let (rows, n) = (40, 9);
        let soft = forward(&logits(rows, n), 3, 0.8, false, true, 1)
            .soft
            .expect("asked for");
        let g: Vec<f32> = (0..rows * n).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let grad = FlexTensor::from_data(TensorData::new(g.clone(), [rows, n]));
        let out = values(&backward(&soft, grad, 0.8, 1, false).logits);
        let y = values(&soft);
        for r in 0..rows {
            let row = r * n..(r + 1) * n;
            let dot: f64 = row.clone().map(|i| y[i] as f64 * g[i] as f64).sum();
            for i in row {
                let expected = y[i] as f64 * (g[i] as f64 - dot) / 0.8;
                // Terms of order 1 in f32: 1e-6 is a few ulps.
                assert!((out[i] as f64 - expected).abs() < 1e-6, "{i}: {}", out[i]);
            }
        }
    }

    #[test]
    fn categories_on_another_axis_give_the_rows_sample_transposed() {
        // [outer, n, inner] along dim 1 against the same logits laid out as [outer, inner, n]
        // along dim 2: the same counters, so the same one-hots and soft values a few ulps apart
        // (the column kernels sum in another order), forward and back.
        // Few positions (gathered into rows; one task, then several), and column bands: partial
        // bands over several tasks, long rows.
        for (outer, n, inner) in [(3, 6, 4), (2000, 10, 3), (2, 9, 70), (1, 700, 40)] {
            compare_layouts(outer, n, inner);
        }
    }

    /// Asserts `a[i] ≈ b[i]` within `relative · max(|a|, |b|) + absolute`, naming the first
    /// element that is not.
    fn assert_close(a: &[f32], b: &[f32], relative: f32, absolute: f32, context: &str) {
        assert_eq!(a.len(), b.len(), "{context}");
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let tolerance = relative * x.abs().max(y.abs()) + absolute;
            assert!(
                (x - y).abs() <= tolerance,
                "{context}, element {i}: {x} vs {y}"
            );
        }
    }

    /// [`categories_on_another_axis_give_the_rows_sample_transposed`] for one layout.
    fn compare_layouts(outer: usize, n: usize, inner: usize) {
        let rows = logits(outer * inner, n); // [outer · inner, n]
        let rows_values = values(&rows);
        let layout = Layout { outer, n, inner };
        let strided = FlexTensor::from_data(TensorData::new(
            from_rows(&rows_values, &layout),
            [outer, n, inner],
        ));
        let last = FlexTensor::from_data(TensorData::new(rows_values, [outer, inner, n]));
        let context = format!("[{outer}, {n}, {inner}]");
        // Sums (the softmax's, the gradient's yᵀg, the temperature's) add the same terms in
        // another order: apart by at most the bound of a running sum of n terms, (n − 1)·ε,
        // relative to the values (and absolute for gradients, whose terms cancel).
        let bound = n as f32 * f32::EPSILON;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
        for hard in [false, true] {
            let a = forward(&strided, 5, 0.9, hard, true, 1);
            let b = forward(&last, 5, 0.9, hard, true, 2);
            let (out_a, out_b) = (values(&a.out), from_rows(&values(&b.out), &layout));
            match hard {
                true => assert_eq!(out_a, out_b, "{context}: the same one-hots"),
                false => assert_close(&out_a, &out_b, bound, 0.0, &context),
            }
            let (ya, yb) = (a.soft.unwrap(), b.soft.unwrap());
            let yb_strided = from_rows(&values(&yb), &layout);
            assert_close(&values(&ya), &yb_strided, bound, 0.0, &context);
            let g: Vec<f32> = (0..outer * n * inner)
                .map(|i| (i % 7) as f32 - 3.0)
                .collect();
            let ga =
                FlexTensor::from_data(TensorData::new(from_rows(&g, &layout), [outer, n, inner]));
            let gb = FlexTensor::from_data(TensorData::new(g, [outer, inner, n]));
            let da = backward(&ya, ga, 0.9, 1, true);
            let db = backward(&yb, gb, 0.9, 2, true);
            assert!(
                close(da.tau_sum, db.tau_sum),
                "{} vs {}",
                da.tau_sum,
                db.tau_sum
            );
            let (da, db) = (values(&da.logits), from_rows(&values(&db.logits), &layout));
            assert_close(&da, &db, 4.0 * bound, bound, &context);
            if hard {
                // Gumbel-Rao on the same incoming gradient: the same rows kernel on gathered
                // bands, so the same bits.
                let (ga, gb) = (
                    FlexTensor::from_data(TensorData::new(db.clone(), [outer, n, inner])),
                    FlexTensor::from_data(TensorData::new(
                        to_rows(&db, &layout),
                        [outer, inner, n],
                    )),
                );
                let ra = gumbel_rao_backward(&strided, ga, 0.9, 3, 5, 1, true);
                let rb = gumbel_rao_backward(&last, gb, 0.9, 3, 5, 2, true);
                assert!(
                    close(ra.tau_sum, rb.tau_sum),
                    "{} vs {}",
                    ra.tau_sum,
                    rb.tau_sum
                );
                let (ra, rb) = (values(&ra.logits), values(&rb.logits));
                assert_eq!(ra, from_rows(&rb, &layout), "{context}: Gumbel-Rao");
                assert!(ra.iter().any(|&g| g != 0.0), "a gradient to compare");
            }
        }
    }
}
