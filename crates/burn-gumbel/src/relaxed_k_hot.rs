//! The relaxed k-hot: a differentiable subset of `k` categories, soft or hard (straight-through).

use burn::tensor::activation::softmax;
use burn::tensor::{AsIndex, IndexingUpdateOp, Tensor};

use crate::check;
use crate::key::Key;
use crate::noise::Noise;
use crate::ops::{in_f32, one_hot_argmax, straight_through, top_k_indices};

/// Draws a relaxed k-hot sample: a differentiable subset of `k` categories drawn without
/// replacement, soft or hard (straight-through).
///
/// The hard sample is the k-hot vector of the `k` largest `logits + g` (`g` i.i.d. Gumbel(0, 1)),
/// the unordered set of [`gumbel_top_k`](crate::gumbel_top_k): a sample of `k` categories without
/// replacement, each drawn with probability proportional to `exp(logits)` among those left (Kool,
/// van Hoof, Welling 2019, [arXiv:1903.06059](https://arxiv.org/abs/1903.06059)).
///
/// The soft sample relaxes the `k` rounds of that draw with `k` masked softmaxes (Xie, Ermon
/// 2019, [arXiv:1901.10517](https://arxiv.org/abs/1901.10517)): with `s⁰ = logits + g`,
///
/// `a^j = softmax(s^j / tau)`, `s^{j+1} = s^j + ln max(1 − a^j, ε)`, `y = Σ_{j<k} a^j`,
///
/// so each round lowers the weight of what earlier rounds took (`ε` is the smallest normal f32,
/// keeping the logarithm finite; at a row's largest `a^j`, `1 − a^j` is computed as the mass of
/// the other categories, so that it keeps its digits when `a^j` is near 1). `y` has nonnegative entries summing to `k` and tends to the hard
/// k-hot as `tau → 0`. At high temperatures an entry can exceed 1: the rounds discourage taking a
/// category twice but do not forbid it. With `hard = true` the forward value is the exact k-hot and the
/// gradient is that of `y` (straight-through).
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities; `-inf` masks a category.
/// - `k`: the size of the subset, in `[1, n_categories]`.
/// - `tau`: the temperature, finite and `> 0`.
/// - `hard`: return the exact k-hot with the soft sample's gradient.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// With fewer than `k` unmasked categories in a row, the hard sample includes masked ones (on
/// every backend). A fully masked row is refused in debug builds; in release builds its soft
/// sample is NaN and its hard sample a k-hot of `k` of its categories.
///
/// # Panics
/// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
/// half-precision logits), `dim` is outside `[-D, D)`, or `k` is 0 or more than the number of
/// categories; in debug builds, on NaN logits or a fully masked row.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::relaxed_k_hot;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0, 4.0]], &device);
/// let soft = relaxed_k_hot(logits.clone(), 2, 0.5, false, -1);
/// assert!((soft.sum().into_scalar::<f32>() - 2.0).abs() < 1e-5); // sums to k
/// let hard = relaxed_k_hot(logits, 2, 0.5, true, -1);
/// let values = hard.into_data().try_into_vec_as::<f32>().unwrap();
/// assert_eq!(values.iter().filter(|&&v| v == 1.0).count(), 2); // exactly k ones
/// ```
pub fn relaxed_k_hot<const D: usize>(
    logits: Tensor<D>,
    k: usize,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "relaxed_k_hot";
    let dim = check::sampler(OP, &logits, Some(tau), Some(k), dim);
    let noise = Noise::Fresh.gumbel(&logits, dim);
    in_f32(logits, |logits| {
        k_hot_rounds(logits, noise, k, tau, hard, dim)
    })
}

/// [`relaxed_k_hot`] with the noise of a [`Key`] (that of
/// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key)): the same subset on every backend.
///
/// # Shapes
/// As [`relaxed_k_hot`].
///
/// # Panics
/// As [`relaxed_k_hot`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, relaxed_k_hot_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0]], &device);
/// let a = relaxed_k_hot_with_key(logits.clone(), Key::new(6), 2, 0.5, true, -1);
/// let b = relaxed_k_hot_with_key(logits, Key::new(6), 2, 0.5, true, -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn relaxed_k_hot_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    k: usize,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "relaxed_k_hot_with_key";
    let dim = check::sampler(OP, &logits, Some(tau), Some(k), dim);
    let noise = Noise::Keyed(key).gumbel(&logits, dim);
    in_f32(logits, |logits| {
        k_hot_rounds(logits, noise, k, tau, hard, dim)
    })
}

/// [`relaxed_k_hot`] with caller-given Gumbel noise (never differentiated).
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// As [`relaxed_k_hot`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::relaxed_k_hot_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 0.0, 0.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([3.0, 0.0, 2.0, 1.0], &device);
/// let hard = relaxed_k_hot_with_noise(logits, noise, 2, 1.0, true, 0);
/// assert_eq!(hard.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 1.0, 0.0]);
/// ```
pub fn relaxed_k_hot_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    k: usize,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "relaxed_k_hot_with_noise";
    let dim = check::sampler(OP, &logits, Some(tau), Some(k), dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    let noise = Noise::Given(Box::new(noise)).gumbel(&logits, dim);
    in_f32(logits, |logits| {
        k_hot_rounds(logits, noise, k, tau, hard, dim)
    })
}

fn k_hot_rounds<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    k: usize,
    tau: f64,
    hard: bool,
    dim: usize,
) -> Tensor<D> {
    let perturbed = logits + noise.detach();
    let mut scores = perturbed.clone();
    let mut round = softmax(scores.clone().div_scalar(tau), dim);
    let mut soft = round.clone();
    for _ in 1..k {
        scores = scores + log_complement(round, dim);
        round = softmax(scores.clone().div_scalar(tau), dim);
        soft = soft + round.clone();
    }
    if !hard {
        return soft;
    }
    let indices = top_k_indices(perturbed.detach(), k, dim);
    let ones = Tensor::<D>::ones(indices.shape(), &soft.device());
    let k_hot = soft
        .zeros_like()
        .scatter(dim, indices, ones, IndexingUpdateOp::Assign);
    straight_through(k_hot, soft)
}

/// `ln max(1 − a, ε)` for the probabilities `a` of a softmax along `dim`, without the
/// cancellation of `1 − a` where `a` is near 1.
///
/// At each row's largest entry (the lowest index among ties) `1 − a` is computed as the mass of
/// the row's other entries, a sum of nonnegative terms, so it keeps its digits when `a` is within
/// a few ulps of 1; every other entry is at most `1/2` (it is at most the largest, and the two
/// sum to at most 1), where `ln(1 − a) = log1p(−a)` is accurate as it is. `ε` is the smallest
/// normal f32, which keeps the logarithm finite when the other entries underflow to 0.
fn log_complement<const D: usize>(a: Tensor<D>, dim: usize) -> Tensor<D> {
    let largest = one_hot_argmax(a.clone().detach(), dim).greater_elem(0.5);
    // `a` with its largest entry zeroed: the gradient of that entry flows through `rest` only.
    let rest = a.mask_fill(largest.clone(), 0.0);
    let at_largest = rest
        .clone()
        .sum_dim(dim)
        .clamp_min(f32::MIN_POSITIVE)
        .log()
        .expand(rest.shape());
    rest.neg().log1p().mask_where(largest, at_largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    #[should_panic = "relaxed_k_hot: k must be in [1, 4] for 4 categories along dim 1, got k = 0"]
    fn zero_k_panics() {
        let _ = relaxed_k_hot(
            Tensor::<2>::zeros([2, 4], &Device::default()),
            0,
            1.0,
            false,
            1,
        );
    }

    #[test]
    #[should_panic = "relaxed_k_hot_with_noise: noise must have the shape of the logits"]
    fn noise_of_another_shape_panics() {
        let device = Device::default();
        let logits = Tensor::<2>::zeros([2, 4], &device);
        let _ = relaxed_k_hot_with_noise(logits, Tensor::zeros([2, 3], &device), 2, 1.0, true, 1);
    }

    #[test]
    fn one_round_is_the_gumbel_softmax() {
        let device = Device::default();
        let logits = Tensor::<2>::from_floats([[0.3, -1.0, 2.0]], &device);
        let noise = Tensor::<2>::from_floats([[0.5, 0.1, -0.2]], &device);
        let k_hot = relaxed_k_hot_with_noise(logits.clone(), noise.clone(), 1, 0.7, false, 1);
        let expected = crate::gumbel_softmax_with_noise(logits, noise, 0.7, false, 1);
        assert_eq!(k_hot.into_data(), expected.into_data());
    }
}
