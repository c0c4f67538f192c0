//! The Gumbel-max trick: exact categorical sampling from unnormalized log-probabilities.

use burn::tensor::{AsIndex, Int, Tensor};

use crate::check;
use crate::key::Key;
use crate::noise::Noise;
use crate::ops::{to_f32, top_k_indices};

/// Draws a categorical sample with the Gumbel-max trick.
///
/// `i = argmax_k (logits_k + g_k)` with `g_k` i.i.d. Gumbel(0, 1) ([`gumbel_noise`](crate::gumbel_noise)). The index is
/// distributed exactly as `softmax(logits)` along `dim` (Gumbel 1954; Maddison, Tarlow, Minka 2014).
/// `logits` need not be normalized. A logit of `-inf` masks its category: it is never drawn.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the same rank, size 1 along `dim` (Burn's `argmax` convention)
///
/// NaN logits and fully masked rows are caught in debug builds only. In release builds a NaN
/// logit is always chosen (Burn's `argmax` gives NaN precedence) and a fully masked row yields
/// index 0.
///
/// # Panics
/// - If `dim` is outside `[-D, D)`, or the category dimension is empty.
/// - In debug builds, if a logit is NaN or a row is masked entirely.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_max;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 1.0, f32::NEG_INFINITY]], &device);
/// let index = gumbel_max(logits, -1);
/// assert_eq!(index.dims(), [1, 1]);
/// assert_ne!(index.into_scalar::<i64>(), 2); // masked categories are never drawn
/// ```
pub fn gumbel_max<const D: usize>(logits: Tensor<D>, dim: impl AsIndex) -> Tensor<D, Int> {
    const OP: &str = "gumbel_max";
    let dim = check::sampler(OP, &logits, None, None, dim);
    let noise = Noise::Fresh.gumbel(&logits, dim);
    argmax_of(logits, noise, dim)
}

/// [`gumbel_max`] with the noise of a [`Key`]: the noise of
/// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key), so that the index is the
/// category of its hard sample under the same key (barring two perturbed logits within an ulp),
/// the same on every backend.
///
/// # Shapes
/// As [`gumbel_max`].
///
/// # Panics
/// As [`gumbel_max`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, gumbel_max_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let a = gumbel_max_with_key(logits.clone(), Key::new(4), -1);
/// let b = gumbel_max_with_key(logits, Key::new(4), -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn gumbel_max_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    dim: impl AsIndex,
) -> Tensor<D, Int> {
    const OP: &str = "gumbel_max_with_key";
    let dim = check::sampler(OP, &logits, None, None, dim);
    let noise = Noise::Keyed(key).gumbel(&logits, dim);
    argmax_of(logits, noise, dim)
}

/// [`gumbel_max`] with caller-given Gumbel noise: `argmax(logits + noise)` along `dim`.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]`
/// - noise: the shape of `logits`
/// - output: the same rank, size 1 along `dim`
///
/// # Panics
/// As [`gumbel_max`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_max_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
/// assert_eq!(gumbel_max_with_noise(logits, noise, 0).into_scalar::<i64>(), 0);
/// ```
pub fn gumbel_max_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    dim: impl AsIndex,
) -> Tensor<D, Int> {
    const OP: &str = "gumbel_max_with_noise";
    let dim = check::sampler(OP, &logits, None, None, dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    argmax_of(logits, noise, dim)
}

/// `argmax(logits + noise)` along `dim`, in f32 for half-precision logits.
fn argmax_of<const D: usize>(logits: Tensor<D>, noise: Tensor<D>, dim: usize) -> Tensor<D, Int> {
    (to_f32(logits.detach()) + to_f32(noise.detach())).argmax(dim)
}

/// Draws `k` categories without replacement with the Gumbel-top-k trick.
///
/// The indices of the `k` largest `logits + g` along `dim`, largest first, with `g` i.i.d.
/// Gumbel(0, 1) (Kool, van Hoof, Welling 2019, [arXiv:1903.06059](https://arxiv.org/abs/1903.06059)).
/// The sequence is distributed as sampling from `p = softmax(logits)` without replacement:
/// `P(i₁, …, i_k) = Π_j p_{i_j} / (1 − Σ_{l<j} p_{i_l})`. With `k = 1` it is [`gumbel_max`].
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities; `-inf` masks a category.
/// - `k`: how many categories to draw, from 1 to the number of categories.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]`
/// - output: the same rank, size `k` along `dim`
///
/// When `k` exceeds the number of unmasked categories of a row, its last indices are masked ones,
/// in no particular order; NaN logits and fully masked rows are caught in debug builds only (in
/// release builds a fully masked row gives `k` distinct indices of its categories, in no
/// particular order).
///
/// # Panics
/// - If `dim` is outside `[-D, D)`, or `k` is 0 or more than the number of categories.
/// - In debug builds, if a logit is NaN or a row is masked entirely.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_top_k;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0]], &device);
/// let order = gumbel_top_k(logits, 4, -1).into_data().try_into_vec_as::<i64>().unwrap();
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, vec![0, 1, 2, 3]); // a permutation: no category twice
/// ```
pub fn gumbel_top_k<const D: usize>(
    logits: Tensor<D>,
    k: usize,
    dim: impl AsIndex,
) -> Tensor<D, Int> {
    const OP: &str = "gumbel_top_k";
    let dim = check::sampler(OP, &logits, None, Some(k), dim);
    let noise = Noise::Fresh.gumbel(&logits, dim);
    top_k_of(logits, noise, k, dim)
}

/// [`gumbel_top_k`] with the noise of a [`Key`] (that of
/// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key)): the same indices on every
/// backend.
///
/// # Shapes
/// As [`gumbel_top_k`].
///
/// # Panics
/// As [`gumbel_top_k`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, gumbel_top_k_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 1.0, 2.0, 3.0]], &device);
/// let a = gumbel_top_k_with_key(logits.clone(), Key::new(8), 2, -1);
/// let b = gumbel_top_k_with_key(logits, Key::new(8), 2, -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn gumbel_top_k_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    k: usize,
    dim: impl AsIndex,
) -> Tensor<D, Int> {
    const OP: &str = "gumbel_top_k_with_key";
    let dim = check::sampler(OP, &logits, None, Some(k), dim);
    let noise = Noise::Keyed(key).gumbel(&logits, dim);
    top_k_of(logits, noise, k, dim)
}

/// [`gumbel_top_k`] with caller-given Gumbel noise: the indices of the `k` largest
/// `logits + noise` along `dim`, largest first.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]`
/// - noise: the shape of `logits`
/// - output: the same rank, size `k` along `dim`
///
/// # Panics
/// As [`gumbel_top_k`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_top_k_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.5], &device);
/// let order = gumbel_top_k_with_noise(logits, noise, 2, 0);
/// assert_eq!(order.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [0, 1]);
/// ```
pub fn gumbel_top_k_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    k: usize,
    dim: impl AsIndex,
) -> Tensor<D, Int> {
    const OP: &str = "gumbel_top_k_with_noise";
    let dim = check::sampler(OP, &logits, None, Some(k), dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    top_k_of(logits, noise, k, dim)
}

/// The indices of the `k` largest `logits + noise` along `dim`, in f32 for half-precision logits.
fn top_k_of<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    k: usize,
    dim: usize,
) -> Tensor<D, Int> {
    top_k_indices(to_f32(logits.detach()) + to_f32(noise.detach()), k, dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    #[should_panic = "gumbel_top_k: k must be in [1, 3] for 3 categories along dim 1, got k = 4"]
    fn top_k_beyond_the_categories_panics() {
        let device = Device::default();
        let _ = gumbel_top_k(Tensor::<2>::zeros([2, 3], &device), 4, 1);
    }

    #[test]
    fn top_k_has_size_k_along_dim() {
        let device = Device::default();
        let logits = Tensor::<3>::zeros([2, 5, 3], &device);
        assert_eq!(gumbel_top_k(logits, 2, 1).dims(), [2, 2, 3]);
    }

    #[test]
    fn index_has_size_one_along_dim() {
        let device = Device::default();
        let logits = Tensor::<3>::zeros([2, 4, 3], &device);
        assert_eq!(gumbel_max(logits.clone(), 1).dims(), [2, 1, 3]);
        assert_eq!(gumbel_max(logits, -1).dims(), [2, 4, 1]);
    }

    #[test]
    fn a_single_finite_category_is_always_drawn() {
        let device = Device::default();
        device.seed(3);
        let inf = f32::NEG_INFINITY;
        let logits = Tensor::<2>::from_floats([[inf, inf, 5.0, inf]; 64], &device);
        let indices = gumbel_max(logits, 1)
            .into_data()
            .try_into_vec_as::<i64>()
            .unwrap();
        assert!(indices.iter().all(|&i| i == 2));
    }

    #[test]
    #[should_panic = "gumbel_max: dim must be in [-2, 2) for a tensor of rank 2, got dim = 2"]
    fn dim_out_of_range_panics() {
        let device = Device::default();
        let _ = gumbel_max(Tensor::<2>::zeros([2, 3], &device), 2);
    }

    #[test]
    #[should_panic = "gumbel_max: the category dimension 1 must have at least one category"]
    fn empty_category_dimension_panics() {
        let device = Device::default();
        let _ = gumbel_max(Tensor::<2>::zeros([2, 0], &device), 1);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic = "gumbel_max: logits must not be NaN"]
    fn nan_logits_panic_in_debug_builds() {
        let device = Device::default();
        let _ = gumbel_max(Tensor::<2>::from_floats([[0.0, f32::NAN]], &device), 1);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic = "gumbel_max: every row must have at least one category with a finite logit"]
    fn fully_masked_row_panics_in_debug_builds() {
        let device = Device::default();
        let inf = f32::NEG_INFINITY;
        let _ = gumbel_max(
            Tensor::<2>::from_floats([[0.0, 1.0], [inf, inf]], &device),
            1,
        );
    }
}
