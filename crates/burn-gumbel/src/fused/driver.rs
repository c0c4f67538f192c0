//! The chunk driver: a flex tensor cut into cache-sized chunks of whole rows, spread over rayon's
//! threads, each run through the kernel variant of this processor.

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::isa::{Isa, chunk_backward, chunk_forward, chunk_gumbel_rao};
use super::kernels::{BackwardChunk, ForwardChunk, RaoChunk};
use super::layout::{Layout, from_rows, to_rows};
use super::precision::{contiguous, narrowed, tensor_of, widened};

/// Elements per rayon task: small rows are grouped so that each task has work enough.
const TASK_ELEMENTS: usize = 16_384;

/// A sample from [`forward`].
pub(super) struct Sample {
    /// The soft sample, or the one-hot with `hard`, in the logits' layout.
    pub out: FlexTensor,
    /// The soft sample as rows `[rows, n]` (the categories contiguous), for the backward pass;
    /// kept when asked for.
    pub soft_rows: Option<FlexTensor>,
}

/// The forward kernel on a flex tensor whose categories lie along `dim`: the soft sample, or its
/// one-hot with `hard`, and with `keep_soft` the soft sample's rows for [`backward`].
///
/// Categories on the last axis are rows already; on another axis they are transposed into rows
/// and back (`layout.rs`), in cache-sized tiles.
pub(super) fn forward(
    logits: &FlexTensor,
    tau: f32,
    key: u64,
    hard: bool,
    keep_soft: bool,
    dim: usize,
) -> Sample {
    let shape = logits.layout().shape().clone();
    let layout = Layout::of(shape.as_slice(), dim);
    let n = layout.n;
    let dtype = logits.dtype();
    let contiguous = contiguous(logits);
    let theta = as_rows(widened(&contiguous), &layout);
    let total = theta.len();
    // A hard sample in rows whose soft sample is not kept needs one buffer: the kernel leaves
    // `(θ + g) / tau` there, and the same task, on the chunk still in cache, overwrites it with
    // the one-hot.
    let one_hot_in_place = hard && !keep_soft && layout.is_rows();
    // Not zero-filled: the kernel writes every element.
    let mut soft: Vec<f32> = Vec::with_capacity(total);
    let mut argmaxes = Vec::new();
    if n > 0 && total > 0 {
        let chunk = chunk_len(n);
        let normalize = !hard || keep_soft;
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        let tasks = soft.spare_capacity_mut()[..total]
            .par_chunks_mut(chunk)
            .zip(theta.par_chunks(chunk))
            .enumerate();
        argmaxes = tasks
            .map(|(task, (out, theta))| {
                let first = (task * chunk) as u64;
                let chunk = ForwardChunk {
                    theta,
                    out,
                    n,
                    inv_tau,
                    key,
                    first,
                    normalize,
                };
                let argmaxes = chunk_forward(isa, chunk);
                if !one_hot_in_place {
                    return argmaxes;
                }
                for x in out.iter_mut() {
                    x.write(0.0);
                }
                for (row, j) in argmaxes.into_iter().enumerate() {
                    out[row * n + j].write(1.0);
                }
                Vec::new()
            })
            .collect::<Vec<_>>();
        // SAFETY: the chunks cover the first `total` elements, and the kernel wrote every element
        // of its chunk.
        unsafe { soft.set_len(total) };
    }
    // The sample in the logits' dtype; the soft rows for the backward pass stay in f32.
    let out_tensor = |values: Vec<f32>| tensor_of(values, shape.clone(), dtype);
    let rows_shape = [total / n.max(1), n];
    let rows_tensor = |values: Vec<f32>| FlexTensor::from_data(TensorData::new(values, rows_shape));
    let (out, soft_rows) = match (hard, layout.is_rows()) {
        (true, true) if one_hot_in_place => (out_tensor(soft), None),
        (true, true) => {
            // The one-hot beside the kept soft sample, written chunk by chunk over the threads.
            let mut one_hot = vec![0.0f32; total];
            one_hot
                .par_chunks_mut(chunk_len(n))
                .zip(argmaxes.par_iter())
                .for_each(|(out, argmaxes)| {
                    for (row, &j) in argmaxes.iter().enumerate() {
                        out[row * n + j] = 1.0;
                    }
                });
            (out_tensor(one_hot), Some(rows_tensor(soft)))
        }
        (true, false) => {
            let mut one_hot = vec![0.0f32; total];
            for (row, j) in argmaxes.into_iter().flatten().enumerate() {
                one_hot[layout.index(row, j)] = 1.0;
            }
            (out_tensor(one_hot), keep_soft.then(|| rows_tensor(soft)))
        }
        (false, true) if dtype == DType::F32 => {
            let out = out_tensor(soft);
            let rows = keep_soft.then(|| out.clone());
            (out, rows)
        }
        (false, true) => {
            let out = narrowed(&soft, shape.clone(), dtype);
            (out, keep_soft.then(|| rows_tensor(soft)))
        }
        (false, false) => {
            let out = out_tensor(from_rows(&soft, &layout));
            (out, keep_soft.then(|| rows_tensor(soft)))
        }
    };
    Sample { out, soft_rows }
}

/// What [`backward`] returns.
pub(super) struct Gradients {
    /// `∂L/∂logits`, in the layout of the logits.
    pub logits: FlexTensor,
    /// `Σ ∂L/∂θ_j · ln y_j` over every element when asked for (else 0): `∂L/∂tau` is its
    /// negative.
    pub tau_sum: f64,
}

/// The backward kernel: `y ⊙ (g − yᵀg) / tau` row by row, `y` the soft sample's rows from
/// [`forward`], `grad` in the layout of the logits (categories along `dim`); with `tau_sum`, also
/// the sum that gives the temperature's gradient (`kernels.rs` says how). Computed in place
/// ([`in_rows`]).
pub(super) fn backward(
    soft_rows: &FlexTensor,
    grad: FlexTensor,
    tau: f32,
    dim: usize,
    tau_sum: bool,
) -> Gradients {
    let y = soft_rows
        .as_slice::<f32>()
        .expect("the saved soft sample is contiguous");
    in_rows(grad, dim, |rows, n| {
        let chunk = chunk_len(n);
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        rows.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk))
            .map(|(grad, y)| {
                let chunk = BackwardChunk {
                    y,
                    grad,
                    n,
                    inv_tau,
                    tau_sum,
                };
                chunk_backward(isa, chunk) as f64
            })
            .sum()
    })
}

/// The Gumbel-Rao backward kernel (`kernels.rs`) on the logits of a hard sample that [`forward`]
/// drew under `key`: the straight-through gradient averaged over `samples` draws of the noise
/// conditioned on the sample, from the same key's counters after the forward pass's. Computed in
/// place ([`in_rows`]).
pub(super) fn gumbel_rao_backward(
    logits: &FlexTensor,
    grad: FlexTensor,
    tau: f32,
    samples: usize,
    key: u64,
    dim: usize,
    tau_sum: bool,
) -> Gradients {
    let shape = logits.layout().shape().clone();
    let layout = Layout::of(shape.as_slice(), dim);
    let contiguous = contiguous(logits);
    let theta = as_rows(widened(&contiguous), &layout);
    let total = theta.len() as u64;
    in_rows(grad, dim, |rows, n| {
        let chunk = chunk_len(n);
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        rows.par_chunks_mut(chunk)
            .zip(theta.par_chunks(chunk))
            .enumerate()
            .map(|(task, (grad, theta))| {
                let chunk = RaoChunk {
                    theta,
                    grad,
                    n,
                    inv_tau,
                    key,
                    first: (task * chunk) as u64,
                    total,
                    samples,
                    tau_sum,
                };
                chunk_gumbel_rao(isa, chunk) as f64
            })
            .sum()
    })
}

/// Runs `kernel(rows, n)` on `grad` as rows of categories (the categories along `dim`), which it
/// overwrites with the gradient in the logits; returns that gradient in `grad`'s layout and dtype
/// with the kernel's sum.
///
/// In place: in `grad`'s own buffer when the tensor holds it alone (the usual case: autodiff
/// hands over a gradient it has just computed) and the categories are its last axis; else in the
/// copy that the transpose into rows, or a shared buffer, needs anyway.
fn in_rows(
    mut grad: FlexTensor,
    dim: usize,
    kernel: impl FnOnce(&mut [f32], usize) -> f64,
) -> Gradients {
    let shape = grad.layout().shape().clone();
    let layout = Layout::of(shape.as_slice(), dim);
    let n = layout.n;
    let len = shape.num_elements();
    let dtype = grad.dtype();
    let in_place = layout.is_rows() && whole_storage(&grad, len);
    let mut copy = match in_place {
        true => Vec::new(),
        false => as_rows(widened(&contiguous(&grad)), &layout).into_owned(),
    };
    let rows: &mut [f32] = match in_place {
        true => grad
            .try_storage_mut::<f32>()
            .expect("checked: the tensor holds its buffer alone"),
        false => &mut copy,
    };
    let sum = match n > 0 && len > 0 {
        true => kernel(rows, n),
        false => 0.0,
    };
    let logits = match (in_place, layout.is_rows()) {
        (true, _) => grad,
        (false, true) => tensor_of(copy, shape, dtype),
        (false, false) => tensor_of(from_rows(&copy, &layout), shape, dtype),
    };
    Gradients {
        logits,
        tau_sum: sum,
    }
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

/// Values of a tensor as rows of categories: as they are when the categories are its last axis,
/// else transposed into rows (`layout.rs`).
fn as_rows<'a>(values: Cow<'a, [f32]>, layout: &Layout) -> Cow<'a, [f32]> {
    match layout.is_rows() {
        true => values,
        false => Cow::Owned(to_rows(&values, layout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::kernels::{as_out, forward_chunk};

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
        let soft = forward(&theta, 0.7, 42, false, false, 1).out;
        let mut whole = vec![0.0; rows * n];
        forward_chunk(ForwardChunk {
            theta: &values(&theta),
            out: as_out(&mut whole),
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
        let sample = forward(&theta, 0.5, 7, true, true, 1);
        let hard = values(&sample.out);
        let soft = values(&sample.soft_rows.expect("asked for"));
        for r in 0..rows {
            let (h, s) = (&hard[r * n..(r + 1) * n], &soft[r * n..(r + 1) * n]);
            let best = (0..n).fold(0, |b, j| if s[j] > s[b] { j } else { b });
            assert_eq!(h.iter().sum::<f32>(), 1.0, "row {r}");
            assert_eq!(h[best], 1.0, "row {r}");
            let total: f32 = s.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "row {r} sums to {total}");
        }
        let alone = forward(&theta, 0.5, 7, true, false, 1).out;
        assert_eq!(values(&alone), hard);
    }

    #[test]
    fn backward_is_the_softmax_jacobian_over_tau() {
        // y ⊙ (g − yᵀg) / tau, row by row, against the formula in f64.
        let (rows, n) = (40, 9);
        let soft = forward(&logits(rows, n), 0.8, 3, false, true, 1)
            .soft_rows
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
        // [3, n, 4] along dim 1 against the same logits laid out as [3, 4, n] along dim 2: the
        // kernel sees the same rows with the same counters, so the same bits, forward and back.
        let (outer, n, inner) = (3, 6, 4);
        let rows = logits(outer * inner, n); // [outer · inner, n]
        let rows_values = values(&rows);
        let layout = Layout { outer, n, inner };
        let strided = FlexTensor::from_data(TensorData::new(
            from_rows(&rows_values, &layout),
            [outer, n, inner],
        ));
        let last = FlexTensor::from_data(TensorData::new(rows_values, [outer, inner, n]));
        for hard in [false, true] {
            let a = forward(&strided, 0.9, 5, hard, true, 1);
            let b = forward(&last, 0.9, 5, hard, true, 2);
            assert_eq!(
                values(&a.out),
                from_rows(&values(&b.out), &layout),
                "hard {hard}"
            );
            let (ya, yb) = (a.soft_rows.unwrap(), b.soft_rows.unwrap());
            assert_eq!(values(&ya), values(&yb));
            let g: Vec<f32> = (0..outer * n * inner)
                .map(|i| (i % 7) as f32 - 3.0)
                .collect();
            let ga =
                FlexTensor::from_data(TensorData::new(from_rows(&g, &layout), [outer, n, inner]));
            let gb = FlexTensor::from_data(TensorData::new(g, [outer, inner, n]));
            let da = backward(&ya, ga, 0.9, 1, true);
            let db = backward(&yb, gb, 0.9, 2, true);
            assert_eq!(da.tau_sum, db.tau_sum);
            let (da, db) = (da.logits, db.logits);
            assert_eq!(values(&da), from_rows(&values(&db), &layout));
            if hard {
                // Gumbel-Rao: the same conditional draws, so the same gradient bits.
                let (ga, gb) = (
                    FlexTensor::from_data(TensorData::new(values(&da), [outer, n, inner])),
                    FlexTensor::from_data(TensorData::new(values(&db), [outer, inner, n])),
                );
                let ra = gumbel_rao_backward(&strided, ga, 0.9, 3, 5, 1, true);
                let rb = gumbel_rao_backward(&last, gb, 0.9, 3, 5, 2, true);
                assert_eq!(ra.tau_sum, rb.tau_sum);
                let (ra, rb) = (values(&ra.logits), values(&rb.logits));
                assert_eq!(ra, from_rows(&rb, &layout));
                assert!(ra.iter().any(|&g| g != 0.0), "a gradient to compare");
            }
        }
    }
}
