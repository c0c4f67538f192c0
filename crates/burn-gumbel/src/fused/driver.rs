//! The chunk driver: a flex tensor cut into cache-sized chunks of whole rows, spread over rayon's
//! threads, each run through the kernel variant of this processor.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::isa::{Isa, chunk_backward, chunk_forward};
use super::kernels::{BackwardChunk, ForwardChunk};

/// Elements per rayon task: small rows are grouped so that each task has work enough.
const TASK_ELEMENTS: usize = 16_384;

/// What [`forward`] produces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// The soft sample.
    Soft,
    /// The one-hot sample only.
    Hard,
    /// The one-hot sample, and the soft sample for the backward pass.
    HardWithSoft,
}

impl Output {
    /// The output of a call whose gradient nobody tracks: the sample alone.
    pub(super) fn untracked(hard: bool) -> Self {
        if hard { Output::Hard } else { Output::Soft }
    }
}

/// The forward kernel on a flex tensor: `(output, soft sample if asked for)`.
pub(super) fn forward(
    logits: &FlexTensor,
    tau: f32,
    key: u64,
    output: Output,
) -> (FlexTensor, Option<FlexTensor>) {
    let shape = logits.layout().shape().clone();
    let n = shape[shape.num_dims() - 1];
    let contiguous = contiguous_f32(logits);
    let theta = contiguous.as_slice::<f32>().expect("contiguous f32");
    let total = theta.len();
    let mut soft = vec![0.0f32; total];
    let mut hard = match output {
        Output::Soft => Vec::new(),
        Output::Hard | Output::HardWithSoft => vec![0.0f32; total],
    };
    if n > 0 && total > 0 {
        let rows_per_task = (TASK_ELEMENTS / n).max(1);
        let chunk = rows_per_task * n;
        let normalize = output != Output::Hard;
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        let tasks = soft
            .par_chunks_mut(chunk)
            .zip(theta.par_chunks(chunk))
            .enumerate();
        let argmaxes: Vec<Vec<usize>> = tasks
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
                chunk_forward(isa, chunk)
            })
            .collect();
        if output != Output::Soft {
            for (row, j) in argmaxes.into_iter().flatten().enumerate() {
                hard[row * n + j] = 1.0;
            }
        }
    }
    let tensor = |values: Vec<f32>| FlexTensor::from_data(TensorData::new(values, shape.clone()));
    match output {
        Output::Soft => (tensor(soft), None),
        Output::Hard => (tensor(hard), None),
        Output::HardWithSoft => (tensor(hard), Some(tensor(soft))),
    }
}

/// The backward kernel: `y ⊙ (g − yᵀg) / tau` row by row.
pub(super) fn backward(soft: &FlexTensor, grad: &FlexTensor, tau: f32) -> FlexTensor {
    let shape = soft.layout().shape().clone();
    let n = shape[shape.num_dims() - 1];
    let y = soft
        .as_slice::<f32>()
        .expect("the saved soft sample is contiguous");
    let grad = contiguous_f32(grad);
    let g = grad.as_slice::<f32>().expect("contiguous f32");
    let mut out = vec![0.0f32; y.len()];
    if n > 0 && !y.is_empty() {
        let chunk = (TASK_ELEMENTS / n).max(1) * n;
        let inv_tau = 1.0 / tau;
        let isa = Isa::detect();
        out.par_chunks_mut(chunk)
            .zip(y.par_chunks(chunk).zip(g.par_chunks(chunk)))
            .for_each(|(out, (y, g))| {
                let chunk = BackwardChunk {
                    y,
                    g,
                    out,
                    n,
                    inv_tau,
                };
                chunk_backward(isa, chunk)
            });
    }
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// `tensor` itself (a cheap reference-counted clone) when its f32 storage is one contiguous run,
/// else a contiguous copy.
fn contiguous_f32(tensor: &FlexTensor) -> FlexTensor {
    match tensor.as_slice::<f32>() {
        Some(_) => tensor.clone(),
        None => tensor.to_contiguous(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::kernels::forward_chunk;

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
        let (soft, _) = forward(&theta, 0.7, 42, Output::Soft);
        let mut whole = vec![0.0; rows * n];
        forward_chunk(ForwardChunk {
            theta: &values(&theta),
            out: &mut whole,
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
        let (hard, soft) = forward(&theta, 0.5, 7, Output::HardWithSoft);
        let (hard, soft) = (values(&hard), values(&soft.expect("asked for")));
        for r in 0..rows {
            let (h, s) = (&hard[r * n..(r + 1) * n], &soft[r * n..(r + 1) * n]);
            let best = (0..n).fold(0, |b, j| if s[j] > s[b] { j } else { b });
            assert_eq!(h.iter().sum::<f32>(), 1.0, "row {r}");
            assert_eq!(h[best], 1.0, "row {r}");
            let total: f32 = s.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "row {r} sums to {total}");
        }
        let (alone, _) = forward(&theta, 0.5, 7, Output::Hard);
        assert_eq!(values(&alone), hard);
    }

    #[test]
    fn backward_is_the_softmax_jacobian_over_tau() {
        // y ⊙ (g − yᵀg) / tau, row by row, against the formula in f64.
        let (rows, n) = (40, 9);
        let (soft, _) = forward(&logits(rows, n), 0.8, 3, Output::Soft);
        let g: Vec<f32> = (0..rows * n).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let grad = FlexTensor::from_data(TensorData::new(g.clone(), [rows, n]));
        let out = values(&backward(&soft, &grad, 0.8));
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
}
