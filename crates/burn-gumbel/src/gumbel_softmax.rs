//! Gumbel-Softmax (Concrete) sampling, the functional op: [`gumbel_softmax`] and
//! [`gumbel_softmax_with_noise`]. The layer that wraps it is in `layer.rs`.

use burn::tensor::{AsIndex, Tensor};

use crate::check;
use crate::key::Key;
use crate::ops::Tau;
use crate::sampling::{Kind, Noise, sample};

/// Draws a Gumbel-Softmax sample, soft or hard (straight-through).
///
/// Soft sample (Jang, Gu, Poole 2016, [arXiv:1611.01144](https://arxiv.org/abs/1611.01144);
/// Maddison, Mnih, Teh 2016, [arXiv:1611.00712](https://arxiv.org/abs/1611.00712)):
///
/// `y = softmax((logits + g) / tau)` along `dim`, with `g` i.i.d. Gumbel(0, 1).
///
/// Where the noise comes from depends on the engine that serves the call: on flex and wgpu
/// devices, for f32 and half-precision logits, the fused kernels draw it from their counter-based
/// generator ([`gumbel_softmax_with_key`]'s, under a key from the device's generator), whose
/// uniforms lie in `[2^-24, 1 − 2^-24]`, so `g ∈ [−2.81, 16.64]`; elsewhere it is
/// [`gumbel_noise`](crate::gumbel_noise), whose uniforms lie in `[2^-126, 1 − 2^-24]`, so
/// `g ∈ [−4.47, 16.64]`. Both are Gumbel(0, 1) but for those truncations, far in its tails
/// (`P(g < −2.81) < 10^-7`).
///
/// `y` lies on the simplex and is differentiable in `logits`. As `tau → 0` it tends to the one-hot
/// of the Gumbel-max sample (whose law is `softmax(logits)`); as `tau → ∞` it tends to uniform.
///
/// With `hard = true` the forward value is the exact one-hot of `argmax(logits + g)` (ties go to
/// the lowest index) and the gradient is the soft sample's: the straight-through estimator, in
/// PyTorch's words `(y_hard - y_soft).detach() + y_soft`. Here it is computed as
/// `y_hard + (y_soft - y_soft.detach())`, whose forward value is `y_hard` to the bit.
///
/// A logit of `-inf` masks its category: it is never drawn, its output is exactly 0 and it gets a
/// gradient of 0; the gradients of the other categories stay finite. For `tau` in `[1e-3, 1e3]`
/// and finite logits in `[-80, 80]` outputs and gradients are finite in f32.
///
/// See [`gumbel_softmax_with_noise`] to pass the noise yourself.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities.
/// - `tau`: the temperature, finite and `> 0`: a normal number of the dtype the sample is
///   computed in (f32 for f32, f16 and bf16 logits: from 1.2e-38 to 3.4e38).
/// - `hard`: return a one-hot sample with the soft sample's gradient.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// A fully masked row (every logit `-inf`) has no category to draw: its sample, soft or hard, is
/// all zeros and its gradient 0, on every backend (where `softmax` would give `0/0`). NaN logits
/// are caught in debug builds only (the check reads a boolean back from the device); in release
/// builds they make their row's sample NaN, as in `softmax`.
///
/// # Panics
/// - If `tau` is not finite and `> 0` in the dtype the sample is computed in, if `dim` is outside
///   `[-D, D)`, or if the category dimension is empty.
/// - In debug builds, if a logit is NaN.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_softmax;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &device);
///
/// let soft = gumbel_softmax(logits.clone(), 0.5, false, -1);
/// let sums = soft.sum_dim(1).into_data().try_into_vec_as::<f32>().unwrap();
/// assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
///
/// let hard = gumbel_softmax(logits, 0.5, true, -1);
/// let ones = hard.clone().equal_elem(1.0).int().sum().into_scalar::<i64>();
/// assert_eq!(ones, 2); // one 1.0 per row, all the rest 0.0
/// ```
pub fn gumbel_softmax<const D: usize>(
    logits: Tensor<D>,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "gumbel_softmax";
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    let kind = Kind::straight_through(hard);
    sample(logits, &Tau::Fixed(tau), kind, Noise::Fresh, dim)
}

/// [`gumbel_softmax`] with caller-given noise.
///
/// `y = softmax((logits + noise) / tau)` along `dim`; with `hard`, the exact one-hot of
/// `argmax(logits + noise)` forward and the soft sample's gradient backward. The noise is never
/// differentiated. Useful for reproducible results, for comparing number for number with another
/// framework, and for reusing one draw across several temperatures.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities.
/// - `noise`: Gumbel(0, 1) noise (or any values) of the same shape, e.g. from
///   [`gumbel_noise`](crate::gumbel_noise).
/// - `tau`: the temperature, finite and `> 0`.
/// - `hard`: return a one-hot sample with the soft sample's gradient.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]`
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// - If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
///   half-precision logits), if `dim` is outside `[-D, D)`, if the category dimension is empty, or
///   if `noise` and `logits` differ in shape.
/// - In debug builds, if a logit is NaN.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_softmax_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([1.0, 0.0], &device);
/// // softmax([1, 0] / 1): [e / (e + 1), 1 / (e + 1)]
/// let y = gumbel_softmax_with_noise(logits, noise, 1.0, false, 0);
/// let y = y.into_data().try_into_vec_as::<f32>().unwrap();
/// assert!((y[0] - 0.731_058_6).abs() < 1e-6);
/// ```
pub fn gumbel_softmax_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "gumbel_softmax_with_noise";
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    let kind = Kind::straight_through(hard);
    sample(
        logits,
        &Tau::Fixed(tau),
        kind,
        Noise::Given(Box::new(noise)),
        dim,
    )
}

/// [`gumbel_softmax`] with the noise of a [`Key`]: reproducible across devices.
///
/// `y = softmax((logits + g) / tau)` along `dim` (its one-hot with `hard`, straight-through), with
/// `g_i = −ln(−ln u_i)` and `u_i` the counter-based uniform of element `i` under `key`: a 32-bit
/// hash of the element's index with the category axis moved last (`row · n + category`). It is
/// the noise the fused kernels draw, under the key they otherwise take from the device's
/// generator; naming the key makes the sample a function of (key, logits, arguments) alone: the
/// same whatever the thread count and whatever ran before on the device, and the same on every
/// backend: identical hard samples, barring two perturbed logits of a row within an ulp or two
/// of each other (a near tie, which backends that round `ln` or a sum differently may order
/// differently), and soft samples within 2e-5 relative (the order of the sums differs, and on
/// backends without a kernel the noise is computed on the host with f64 logarithms; the bound
/// is approached at low temperatures, where `(logits + g) / tau` carries the ulp of a larger
/// number). Burn's device generators differ between backends, so `Device::seed` reproduces a
/// run on one backend only.
///
/// Use one key per draw ([`Key::fold_in`] derives them): the same key on the same logits gives
/// the same sample.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities.
/// - `key`: the generator key.
/// - `tau`: the temperature, finite and `> 0`.
/// - `hard`: return a one-hot sample with the soft sample's gradient.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// As [`gumbel_softmax`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, gumbel_softmax_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &device);
/// let key = Key::new(7);
/// let a = gumbel_softmax_with_key(logits.clone(), key, 0.5, true, -1);
/// let b = gumbel_softmax_with_key(logits, key, 0.5, true, -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn gumbel_softmax_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    tau: f64,
    hard: bool,
    dim: impl AsIndex,
) -> Tensor<D> {
    const OP: &str = "gumbel_softmax_with_key";
    let dim = check::one_hot_sampler(OP, &logits, Some(tau), dim);
    let kind = Kind::straight_through(hard);
    sample(logits, &Tau::Fixed(tau), kind, Noise::Keyed(key), dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Tolerance};

    fn logits(device: &Device) -> Tensor<2> {
        Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]], device)
    }

    #[test]
    fn soft_sample_is_softmax_of_perturbed_logits() {
        let device = Device::default();
        let noise =
            Tensor::<2>::from_floats([[0.3, 1.0, -0.5, 0.0], [2.0, 0.0, 0.0, -1.0]], &device);
        let y = gumbel_softmax_with_noise(logits(&device), noise.clone(), 0.7, false, 1);
        let expected = softmax((logits(&device) + noise) / 0.7, 1);
        // The same ops on the same backend, in the same order: equal up to rounding (≤ 1e-6 for
        // values ≤ 1).
        y.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn hard_sample_is_the_one_hot_of_the_perturbed_argmax() {
        let device = Device::default();
        let noise =
            Tensor::<2>::from_floats([[0.3, 1.0, -0.5, 0.0], [2.0, 0.0, 0.0, -1.0]], &device);
        let y = gumbel_softmax_with_noise(logits(&device), noise, 0.7, true, -1);
        // Row 0: 1.3, -1.0, 0.0, 3.0 -> 3; row 1: 2, 0, 0, -1 -> 0.
        let expected =
            Tensor::<2>::from_floats([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]], &device);
        assert_eq!(y.into_data(), expected.into_data());
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be finite and > 0, got tau = 0"]
    fn zero_tau_panics() {
        let _ = gumbel_softmax(logits(&Device::default()), 0.0, false, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be finite and > 0, got tau = -1"]
    fn negative_tau_panics() {
        let _ = gumbel_softmax(logits(&Device::default()), -1.0, false, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be finite and > 0, got tau = NaN"]
    fn nan_tau_panics() {
        let _ = gumbel_softmax(logits(&Device::default()), f64::NAN, true, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be finite and > 0, got tau = inf"]
    fn infinite_tau_panics() {
        let _ = gumbel_softmax(logits(&Device::default()), f64::INFINITY, false, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be a normal f32 (the dtype the sample \
                      is computed in), from 1.2e-38 to 3.4e38, got tau = 1e-40"]
    fn tau_subnormal_in_f32_panics() {
        // 1e-40 is finite and > 0 in f64, subnormal in f32: 1 / tau is infinite there.
        let _ = gumbel_softmax(logits(&Device::default()), 1e-40, false, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: the temperature tau must be a normal f32 (the dtype the sample \
                      is computed in), from 1.2e-38 to 3.4e38, got tau = 1e39"]
    fn tau_infinite_in_f32_panics() {
        // 1e39 is finite in f64 and infinite in f32.
        let _ = gumbel_softmax(logits(&Device::default()), 1e39, true, -1);
    }

    #[test]
    #[should_panic = "gumbel_softmax: dim must be in [-2, 2) for a tensor of rank 2, got dim = -3"]
    fn dim_out_of_range_panics() {
        let _ = gumbel_softmax(logits(&Device::default()), 1.0, false, -3);
    }

    #[test]
    #[should_panic = "gumbel_softmax_with_noise: noise must have the shape of the logits, \
                      got noise [2, 3] for logits [2, 4]"]
    fn noise_of_another_shape_panics() {
        let device = Device::default();
        let noise = Tensor::<2>::zeros([2, 3], &device);
        let _ = gumbel_softmax_with_noise(logits(&device), noise, 1.0, false, -1);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic = "gumbel_softmax: logits must not be NaN"]
    fn nan_logits_panic_in_debug_builds() {
        let device = Device::default();
        let _ = gumbel_softmax(
            Tensor::<2>::from_floats([[f32::NAN, 0.0]], &device),
            1.0,
            false,
            1,
        );
    }

    #[test]
    fn a_fully_masked_row_is_zeros() {
        // Legal input, in every build: the row has no category to draw.
        let device = Device::default();
        let inf = f32::NEG_INFINITY;
        let logits = Tensor::<2>::from_floats([[inf, inf, inf], [0.0, inf, 1.0]], &device);
        for hard in [false, true] {
            let y = gumbel_softmax(logits.clone(), 1.0, hard, 1);
            let y = y.into_data().try_into_vec_as::<f32>().unwrap();
            assert_eq!(&y[..3], &[0.0; 3], "hard {hard}");
            assert!(
                (y[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6,
                "hard {hard}"
            );
        }
    }
}
