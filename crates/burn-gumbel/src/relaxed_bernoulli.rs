//! The relaxed Bernoulli (binary Concrete) sample, soft or hard (straight-through).

use burn::tensor::Tensor;

use crate::check;
use crate::key::Key;
use crate::noise::{logistic_noise, logistic_noise_with_key};
use crate::ops::{in_f32, straight_through, to_f32};

/// Draws a relaxed Bernoulli (binary Concrete) sample, soft or hard (straight-through).
///
/// Soft sample (Maddison, Mnih, Teh 2016, [arXiv:1611.00712](https://arxiv.org/abs/1611.00712),
/// section 3.3; Jang, Gu, Poole 2016):
///
/// `y = sigmoid((logits + L) / tau)`, with `L` i.i.d. Logistic(0, 1) ([`logistic_noise`]).
///
/// It is the two-category Gumbel-Softmax of the logits `(logits, 0)`. With `hard = true` the
/// forward value is `1` where `logits + L > 0` (that is, `y > 0.5`) and `0` elsewhere, an exact
/// Bernoulli(`sigmoid(logits)`) sample, and the gradient is the soft sample's (straight-through).
///
/// # Arguments
/// - `logits`: log-odds of the Bernoulli variables.
/// - `tau`: the temperature, finite and `> 0`.
/// - `hard`: return 0/1 samples with the soft sample's gradient.
///
/// # Shapes
/// - logits: any
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
/// half-precision logits).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::relaxed_bernoulli;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[-2.0, 0.0, 3.0]], &device);
/// let bits = relaxed_bernoulli(logits, 0.5, true);
/// let values = bits.into_data().try_into_vec_as::<f32>().unwrap();
/// assert!(values.iter().all(|&v| v == 0.0 || v == 1.0));
/// ```
pub fn relaxed_bernoulli<const D: usize>(logits: Tensor<D>, tau: f64, hard: bool) -> Tensor<D> {
    check::tau_in("relaxed_bernoulli", tau, logits.dtype());
    let noise = logistic_noise::<D>(logits.shape(), &logits.device());
    in_f32(logits, |logits| {
        binary_concrete(logits, to_f32(noise), tau, hard)
    })
}

/// [`relaxed_bernoulli`] with the noise of a [`Key`]
/// ([`logistic_noise_with_key`](crate::logistic_noise_with_key)): the same sample on every
/// backend.
///
/// # Shapes
/// - logits: any
/// - output: the shape of `logits`
///
/// # Panics
/// As [`relaxed_bernoulli`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, relaxed_bernoulli_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.5, -0.5], &device);
/// let a = relaxed_bernoulli_with_key(logits.clone(), Key::new(3), 0.5, true);
/// let b = relaxed_bernoulli_with_key(logits, Key::new(3), 0.5, true);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn relaxed_bernoulli_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    tau: f64,
    hard: bool,
) -> Tensor<D> {
    check::tau_in("relaxed_bernoulli_with_key", tau, logits.dtype());
    let noise = logistic_noise_with_key::<D>(logits.shape(), key, &logits.device());
    in_f32(logits, |logits| binary_concrete(logits, noise, tau, hard))
}

/// [`relaxed_bernoulli`] with caller-given logistic noise (never differentiated).
///
/// # Shapes
/// - logits: any
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
/// half-precision logits), or if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::relaxed_bernoulli_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.5, -0.5], &device);
/// let noise = Tensor::<1>::from_floats([0.0, 1.0], &device);
/// // sigmoid(0.5) and sigmoid(0.5): both logits + noise are 0.5.
/// let y = relaxed_bernoulli_with_noise(logits, noise, 1.0, false);
/// let y = y.into_data().try_into_vec_as::<f32>().unwrap();
/// assert!((y[0] - 0.622_459_3).abs() < 1e-6 && (y[1] - 0.622_459_3).abs() < 1e-6);
/// ```
pub fn relaxed_bernoulli_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    hard: bool,
) -> Tensor<D> {
    const OP: &str = "relaxed_bernoulli_with_noise";
    check::tau_in(OP, tau, logits.dtype());
    check::same_shape(OP, "noise", &logits.shape(), &noise.shape());
    in_f32(logits, |logits| {
        binary_concrete(logits, to_f32(noise), tau, hard)
    })
}

/// `sigmoid((logits + noise) / tau)` on checked arguments, or with `hard` its 0/1 with the soft
/// sample's gradient (straight-through).
fn binary_concrete<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    hard: bool,
) -> Tensor<D> {
    let perturbed = logits + noise.detach();
    let soft = burn::tensor::activation::sigmoid(perturbed.clone().div_scalar(tau));
    if !hard {
        return soft;
    }
    let bits = perturbed.detach().greater_elem(0.0).float();
    straight_through(bits, soft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    #[should_panic = "relaxed_bernoulli: the temperature tau must be finite and > 0, got tau = 0"]
    fn zero_tau_panics() {
        let device = Device::default();
        let _ = relaxed_bernoulli(Tensor::<1>::zeros([3], &device), 0.0, false);
    }

    #[test]
    #[should_panic = "relaxed_bernoulli_with_noise: noise must have the shape of the logits, \
                      got noise [2] for logits [3]"]
    fn noise_of_another_shape_panics() {
        let device = Device::default();
        let logits = Tensor::<1>::zeros([3], &device);
        let _ = relaxed_bernoulli_with_noise(logits, Tensor::zeros([2], &device), 1.0, true);
    }

    #[test]
    fn hard_sample_thresholds_the_perturbed_logits() {
        let device = Device::default();
        let logits = Tensor::<1>::from_floats([1.0, -1.0, 0.2, -3.0], &device);
        let noise = Tensor::<1>::from_floats([-0.5, 1.5, -0.3, 2.0], &device);
        // logits + noise = 0.5, 0.5, -0.1, -1.0
        let y = relaxed_bernoulli_with_noise(logits, noise, 0.3, true);
        let expected = Tensor::<1>::from_floats([1.0, 1.0, 0.0, 0.0], &device);
        assert_eq!(y.into_data(), expected.into_data());
    }
}
