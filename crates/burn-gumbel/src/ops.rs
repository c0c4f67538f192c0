//! Tensor operations shared by the samplers: the temperature, the one-hot of the argmax, the
//! straight-through sum, and the reshapes that put the categories on the last axis of a matrix.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, FloatDType, IndexingUpdateOp, Int, Shape, Tensor};

/// The temperature of a relaxed sample: a checked number, or a one-element tensor (a learned
/// temperature) that takes part in the autodiff graph.
#[derive(Clone, Debug)]
pub(crate) enum Tau {
    /// A number, checked finite and `> 0` by the caller.
    Fixed(f64),
    /// A tensor of shape `[1]`, positive by construction (e.g. `exp` of a parameter).
    Learned(Box<Tensor<1>>),
}

impl Tau {
    /// `x / tau`, the tensor temperature broadcast over every dimension of `x`.
    pub(crate) fn divide<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Tau::Fixed(tau) => x.div_scalar(*tau),
            Tau::Learned(tau) => x / tau.as_ref().clone().reshape([1; D]),
        }
    }
}

/// The half-precision dtype of `x` (f16 or bf16), or `None` for another dtype.
pub(crate) fn half_dtype<const D: usize>(x: &Tensor<D>) -> Option<FloatDType> {
    match x.dtype() {
        DType::F16 => Some(FloatDType::F16),
        DType::BF16 => Some(FloatDType::BF16),
        _ => None,
    }
}

/// `x` in f32 when it is half precision; other dtypes as they are.
pub(crate) fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match half_dtype(&x) {
        Some(_) => x.cast(FloatDType::F32),
        None => x,
    }
}

/// Runs a sampler in f32 on half-precision logits: `f` gets the logits widened to f32 (noise,
/// softmax and gradients are computed there: f16's range ends at 65504 and its `exp` overflows
/// early), and its result comes back in the logits' dtype. Other dtypes pass through.
pub(crate) fn in_f32<const D: usize, const E: usize>(
    logits: Tensor<D>,
    f: impl FnOnce(Tensor<D>) -> Tensor<E>,
) -> Tensor<E> {
    match half_dtype(&logits) {
        Some(dtype) => f(logits.cast(FloatDType::F32)).cast(dtype),
        None => f(logits),
    }
}

/// The one-hot of `argmax(x)` along `dim`, ties to the lowest index, computed on the device.
///
/// `argmax` then `scatter` of ones into zeros: no round trip through the host (unlike `one_hot`).
pub(crate) fn one_hot_argmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let index = x.clone().argmax(dim);
    let ones = Tensor::<D>::ones(index.shape(), &x.device());
    x.zeros_like()
        .scatter(dim, index, ones, IndexingUpdateOp::Assign)
}

/// The fully masked rows of `x` along `dim` (every value `−∞`: no category to draw), as a mask of
/// `x`'s shape. Never differentiated.
pub(crate) fn masked_rows<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D, Bool> {
    let shape = x.shape();
    x.detach()
        .max_dim(dim)
        .equal_elem(f32::NEG_INFINITY)
        .expand(shape)
}

/// `softmax(x)` along `dim`, but a fully masked row (`masked`, from [`masked_rows`]) is all zeros
/// with a zero gradient, where `softmax` gives `0/0`. The row is replaced by zeros before the
/// softmax (so that nothing NaN enters its backward pass) and its output by zeros after.
pub(crate) fn softmax_or_zero<const D: usize>(
    x: Tensor<D>,
    masked: Tensor<D, Bool>,
    dim: usize,
) -> Tensor<D> {
    softmax(x.mask_fill(masked.clone(), 0.0), dim).mask_fill(masked, 0.0)
}

/// The indices of the `k` largest values of `x` along `dim`, largest first. A `-inf` value ranks
/// as the dtype's lowest finite one: after every other, and a valid index on every backend
/// (Burn's `topk` on wgpu gives -1 for `-inf`: `docs/known-issues.md`).
pub(crate) fn top_k_indices<const D: usize>(x: Tensor<D>, k: usize, dim: usize) -> Tensor<D, Int> {
    let lowest = match x.dtype() {
        DType::F64 => f64::MIN,
        _ => f64::from(f32::MIN),
    };
    let (_, indices) = x.clamp_min(lowest).topk_with_indices(k, dim);
    indices
}

/// Forward value `hard`, gradient that of `soft`.
///
/// `soft - soft.detach()` is exactly 0 for finite `soft`, so the sum is `hard` to the bit, while
/// its derivative in `soft` is the identity. Without a graph to record, `hard` is returned as is.
pub(crate) fn straight_through<const D: usize>(hard: Tensor<D>, soft: Tensor<D>) -> Tensor<D> {
    if !soft.is_tracked() {
        return hard;
    }
    hard + (soft.clone() - soft.detach())
}

/// The logits with `±inf` replaced by 0 (a masked category has no gradient, and `-inf − -inf`
/// would be NaN).
pub(crate) fn finite_or_zero<const D: usize>(logits: Tensor<D>) -> Tensor<D> {
    let infinite = logits.clone().is_inf();
    logits.mask_fill(infinite, 0.0)
}

/// `x` as `[rows, n]` with the categories (`dim`) last.
pub(crate) fn to_rows<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<2> {
    let x = if dim == D - 1 {
        x
    } else {
        x.swap_dims(dim, D - 1)
    };
    let n = x.dims()[D - 1];
    let rows = x.shape().num_elements() / n;
    x.reshape([rows, n]) // [rows, n_categories]
}

/// The inverse of [`to_rows`] for a tensor of the original `shape`.
pub(crate) fn from_rows<const D: usize>(x: Tensor<2>, shape: &Shape, dim: usize) -> Tensor<D> {
    let mut dims: [usize; D] = shape.dims();
    dims.swap(dim, D - 1);
    let x = x.reshape(dims); // the original shape with `dim` and the last swapped
    if dim == D - 1 {
        x
    } else {
        x.swap_dims(dim, D - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Int};

    #[test]
    fn ties_go_to_the_lowest_index() {
        let device = Device::default();
        let x = Tensor::<2>::from_floats([[1.0, 3.0, 3.0, 3.0], [2.0, 2.0, 0.0, 0.0]], &device);
        let expected =
            Tensor::<2>::from_floats([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], &device);
        assert_eq!(one_hot_argmax(x, 1).into_data(), expected.into_data());
    }

    #[test]
    fn rows_round_trip_for_every_dim() {
        let device = Device::default();
        let x = Tensor::<1, Int>::arange(0..24, &device)
            .float()
            .reshape([2, 3, 4]);
        for dim in 0..3 {
            let rows = to_rows(x.clone(), dim);
            assert_eq!(rows.dims()[1], x.dims()[dim], "dim {dim}");
            let back: Tensor<3> = from_rows(rows, &x.shape(), dim);
            assert_eq!(back.into_data(), x.clone().into_data(), "dim {dim}");
        }
    }
}
