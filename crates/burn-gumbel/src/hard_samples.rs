//! The estimators' entries: one-hot samples with an estimator's gradient, drawn by the sampling
//! core (`sampling.rs`, below this file and above the estimators' maths in `estimator/`): [`Estimator`]'s `sample` forms (the estimator as a value)
//! and the named forms of two estimators, [`gumbel_rao`] and [`reinmax`], each with fresh, keyed
//! or given noise.

use burn::tensor::{AsIndex, Tensor};

use crate::check;
use crate::estimator::Estimator;
use crate::key::Key;
use crate::ops::Tau;
use crate::sampling::{Kind, Noise, sample};

impl Estimator {
    /// Draws a one-hot sample of `softmax(logits)` along `dim` whose gradient is this
    /// estimator's, at the temperature `tau` of its soft samples: the entry that takes an
    /// estimator as a value, which [`gumbel_softmax`](crate::gumbel_softmax) (`hard = true`),
    /// [`gumbel_rao`] and [`reinmax`] are the named forms of. The noise comes from the device's
    /// generator; see [`sample_with_key`](Self::sample_with_key) and
    /// [`sample_with_noise`](Self::sample_with_noise).
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As the estimator's function: `tau` not finite and `> 0` in the dtype the sample is
    /// computed in (`≥ 1` for ReinMax), Gumbel-Rao's `samples` 0, `dim` outside `[-D, D)`, an
    /// empty category dimension; in debug builds, NaN logits. A fully masked row gives zeros and
    /// a zero gradient.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::Estimator;
    ///
    /// let device = Device::default();
    /// # #[cfg(feature = "flex")] let device = Device::flex();
    /// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
    /// for estimator in ["st", "gumbel-rao:8", "reinmax"] {
    ///     let estimator: Estimator = estimator.parse().unwrap();
    ///     let z = estimator.sample(logits.clone(), 1.0, -1);
    ///     assert_eq!(z.sum().into_scalar::<f32>(), 1.0); // one-hot
    /// }
    /// ```
    pub fn sample<const D: usize>(
        self,
        logits: Tensor<D>,
        tau: f64,
        dim: impl AsIndex,
    ) -> Tensor<D> {
        self.sample_from("Estimator::sample", logits, tau, Noise::Fresh, dim)
    }

    /// [`sample`](Self::sample) with the noise of a [`Key`], as
    /// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key): a pure function of (key,
    /// logits, arguments), the same on every backend. Gumbel-Rao's conditional draws come from
    /// the key too.
    ///
    /// # Shapes
    /// As [`sample`](Self::sample).
    ///
    /// # Panics
    /// As [`sample`](Self::sample).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::{Estimator, Key};
    ///
    /// let device = Device::default();
    /// # #[cfg(feature = "flex")] let device = Device::flex();
    /// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
    /// let estimator = Estimator::GumbelRao { samples: 4 };
    /// let a = estimator.sample_with_key(logits.clone(), Key::new(1), 0.5, -1);
    /// let b = estimator.sample_with_key(logits, Key::new(1), 0.5, -1);
    /// assert_eq!(a.into_data(), b.into_data());
    /// ```
    pub fn sample_with_key<const D: usize>(
        self,
        logits: Tensor<D>,
        key: Key,
        tau: f64,
        dim: impl AsIndex,
    ) -> Tensor<D> {
        let op = "Estimator::sample_with_key";
        self.sample_from(op, logits, tau, Noise::Keyed(key), dim)
    }

    /// [`sample`](Self::sample) with caller-given Gumbel noise: the one-hot of
    /// `argmax(logits + noise)` (the noise is not differentiated). Gumbel-Rao's conditional draws
    /// are fresh.
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - noise: the shape of `logits`
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`sample`](Self::sample), and if `noise` and `logits` differ in shape.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::Estimator;
    ///
    /// let device = Device::default();
    /// # #[cfg(feature = "flex")] let device = Device::flex();
    /// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
    /// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
    /// let z = Estimator::ReinMax.sample_with_noise(logits, noise, 1.0, 0);
    /// assert_eq!(z.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 0.0]);
    /// ```
    pub fn sample_with_noise<const D: usize>(
        self,
        logits: Tensor<D>,
        noise: Tensor<D>,
        tau: f64,
        dim: impl AsIndex,
    ) -> Tensor<D> {
        let op = "Estimator::sample_with_noise";
        self.sample_from(op, logits, tau, Noise::Given(Box::new(noise)), dim)
    }

    /// Every `sample` form: the checks, in `op`'s name, then the sampling core.
    #[track_caller]
    pub(crate) fn sample_from<const D: usize>(
        self,
        op: &str,
        logits: Tensor<D>,
        tau: f64,
        noise: Noise<D>,
        dim: impl AsIndex,
    ) -> Tensor<D> {
        self.check(op);
        if self == Estimator::ReinMax {
            check::reinmax_tau(op, tau);
        }
        let dim = check::one_hot_sampler(op, &logits, Some(tau), dim);
        if let Noise::Given(noise) = &noise {
            check::same_shape(op, "noise", &logits.shape(), &noise.shape());
        }
        sample(logits, &Tau::Fixed(tau), Kind::Hard(self), noise, dim)
    }
}

/// Draws a one-hot categorical sample whose gradient is the Gumbel-Rao estimator.
///
/// Paulus, Maddison, Krause, *Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
/// Estimator*, ICLR 2021, [arXiv:2010.04838](https://arxiv.org/abs/2010.04838).
///
/// Forward: `D`, the one-hot of `i = argmax(logits + g)`, an exact sample of `softmax(logits)`.
///
/// Backward: the gradient of `(1/K) Σ_s softmax((θ + G_s) / tau)`, where the `K` perturbations
/// `G_s` are drawn from the Gumbel law *conditioned on* `argmax(θ + G_s) = i` and are not
/// differentiated. With `E ~ Exp(1)` i.i.d. and `Z = Σ_j e^{θ_j}`:
///
/// - `θ_i + G_i = log Z − log E_i` (the maximum, Gumbel with location `log Z`);
/// - `θ_j + G_j = −log(E_j·e^{−θ_j} + E_i / Z) = θ_j − log(E_j + E_i·p_j)` for `j ≠ i`, with
///   `p = softmax(θ)` (the right-hand form is the one computed: it cannot overflow).
///
/// This is the straight-through Gumbel-Softmax gradient averaged over the noise given the sample:
/// the same expectation, and a variance that falls with `K` (`K = 1` is as noisy as
/// straight-through). The cost is `K` softmaxes in the forward pass of the surrogate.
///
/// On flex the whole estimator is one fused kernel: the forward pass is the hard sample's, and the
/// backward pass regenerates the `K` conditional draws from the forward pass's counters, row by
/// row in cache, rather than keeping a `[K, ..]` tensor of them. [`gumbel_rao_with_noise`] is the
/// tensor-op path.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities `θ`; `-inf` masks a category.
/// - `samples`: `K`, the number of conditional draws, `≥ 1`.
/// - `tau`: the temperature of the soft samples, finite and `> 0`.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
/// half-precision logits), `samples` is 0, `dim` is outside `[-D, D)`, or the category dimension is
/// empty; in debug builds, on NaN logits. A fully masked row gives zeros and a zero gradient, as
/// in [`gumbel_softmax`](crate::gumbel_softmax).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_rao;
///
/// let device = Device::default().autodiff();
/// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device).require_grad();
/// let z = gumbel_rao(logits.clone(), 10, 0.5, -1);
/// assert_eq!(z.clone().sum().into_scalar::<f32>(), 1.0); // one-hot
/// let weights = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let grads = (z * weights).sum().backward();
/// let grad = logits.grad(&grads).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
/// assert!(grad.iter().sum::<f32>().abs() < 1e-5); // softmax gradients sum to 0
/// ```
pub fn gumbel_rao<const D: usize>(
    logits: Tensor<D>,
    samples: usize,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    let estimator = Estimator::GumbelRao { samples };
    estimator.sample_from("gumbel_rao", logits, tau, Noise::Fresh, dim)
}

/// [`gumbel_rao`] with the noise of a [`Key`]: the sample and the `K` conditional draws of the
/// gradient come from the counter-based generator under `key` (draw `s` of element `e` has the
/// counter `(s + 1) · total + e`, after the sample's `0..total`), so that the result is a function
/// of (key, logits, arguments) alone and the same on every backend: the fused kernel on flex, the
/// tensor ops on the same draws (computed on the host in f64) elsewhere, whose gradients agree
/// within rounding.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// As [`gumbel_rao`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, gumbel_rao_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let a = gumbel_rao_with_key(logits.clone(), Key::new(3), 10, 0.5, -1);
/// let b = gumbel_rao_with_key(logits, Key::new(3), 10, 0.5, -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn gumbel_rao_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    samples: usize,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    let estimator = Estimator::GumbelRao { samples };
    estimator.sample_from("gumbel_rao_with_key", logits, tau, Noise::Keyed(key), dim)
}

/// [`gumbel_rao`] with caller-given Gumbel noise for the sample: the one-hot of
/// `argmax(logits + noise)` (the noise is not differentiated); the conditional draws of the
/// gradient are fresh. Always the tensor-op path (the fused kernel on flex draws its own noise),
/// so also a reference for it.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// As [`gumbel_rao`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::gumbel_rao_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
/// let z = gumbel_rao_with_noise(logits, noise, 4, 0.5, 0);
/// assert_eq!(z.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 0.0]);
/// ```
pub fn gumbel_rao_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    samples: usize,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    let estimator = Estimator::GumbelRao { samples };
    estimator.sample_from(
        "gumbel_rao_with_noise",
        logits,
        tau,
        Noise::Given(Box::new(noise)),
        dim,
    )
}

/// Draws a one-hot categorical sample whose gradient is the ReinMax estimator.
///
/// Liu, Dong, Liu, Yu, Gao, *Bridging Discrete and Backpropagation: Straight-Through and
/// Beyond*, NeurIPS 2023, [arXiv:2304.08612](https://arxiv.org/abs/2304.08612).
///
/// Forward: `D`, a one-hot sample of `softmax(θ)` (by Gumbel-max: `tau` does not change the law).
///
/// Backward: with `p = softmax(θ)`, `π₁ = (softmax(θ / tau) + D) / 2` and
/// `J(q)·g = q ⊙ g − q·(qᵀg)` (the softmax Jacobian at `q`), the gradient in `θ` of a loss whose
/// gradient in `D` is `g` is
///
/// `2·J(π₁)·g − ½·J(p)·g`, centred (its mean over the categories subtracted).
///
/// The first-order straight-through estimator is `J(p)·g`; ReinMax adds a second-order term
/// (Heun's method) and removes the first-order bias on quadratic losses. Its authors use it with
/// `tau ≥ 1`; smaller temperatures are rejected.
///
/// # Arguments
/// - `logits`: unnormalized log-probabilities `θ`; `-inf` masks a category.
/// - `tau`: the temperature of `π₁`, finite and `≥ 1`.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// If `tau` is not finite and `≥ 1`, `dim` is outside `[-D, D)`, or the category dimension is
/// empty; in debug builds, on NaN logits. A fully masked row gives zeros and a zero gradient, as
/// in [`gumbel_softmax`](crate::gumbel_softmax).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::reinmax;
///
/// let device = Device::default().autodiff();
/// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
/// let logits = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &device).require_grad();
/// let z = reinmax(logits.clone(), 1.0, -1);
/// assert_eq!(z.clone().sum().into_scalar::<f32>(), 1.0);
/// let grads = (z * Tensor::<2>::from_floats([[1.0, 0.0, -1.0]], &device)).sum().backward();
/// assert!(logits.grad(&grads).is_some());
/// ```
pub fn reinmax<const D: usize>(logits: Tensor<D>, tau: f64, dim: impl AsIndex) -> Tensor<D> {
    Estimator::ReinMax.sample_from("reinmax", logits, tau, Noise::Fresh, dim)
}

/// [`reinmax`] with the noise of a [`Key`], as
/// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key): the same sample on every backend.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// As [`reinmax`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::{Key, reinmax_with_key};
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &device);
/// let a = reinmax_with_key(logits.clone(), Key::new(9), 1.0, -1);
/// let b = reinmax_with_key(logits, Key::new(9), 1.0, -1);
/// assert_eq!(a.into_data(), b.into_data());
/// ```
pub fn reinmax_with_key<const D: usize>(
    logits: Tensor<D>,
    key: Key,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    Estimator::ReinMax.sample_from("reinmax_with_key", logits, tau, Noise::Keyed(key), dim)
}

/// [`reinmax`] with caller-given Gumbel noise: the sample is the one-hot of
/// `argmax(logits + noise)` (the noise is not differentiated).
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - noise: the shape of `logits`
/// - output: the shape of `logits`
///
/// # Panics
/// As [`reinmax`], and if `noise` and `logits` differ in shape.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::reinmax_with_noise;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<1>::from_floats([0.0, 1.0, 0.0], &device);
/// let noise = Tensor::<1>::from_floats([2.0, 0.0, 0.0], &device);
/// let z = reinmax_with_noise(logits, noise, 1.0, 0);
/// assert_eq!(z.into_data().try_into_vec_as::<f32>().unwrap(), [1.0, 0.0, 0.0]);
/// ```
pub fn reinmax_with_noise<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: f64,
    dim: impl AsIndex,
) -> Tensor<D> {
    Estimator::ReinMax.sample_from(
        "reinmax_with_noise",
        logits,
        tau,
        Noise::Given(Box::new(noise)),
        dim,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::testing::*;
    use burn::tensor::Device;

    #[test]
    fn masked_categories_get_no_gradient_and_are_never_drawn() {
        let device = Device::default().autodiff();
        let inf = f64::NEG_INFINITY;
        let theta = [[0.5, inf, 2.0, 0.0], [inf, 1.0, inf, 3.0]];
        device.seed(7);
        for (name, sample) in [
            (
                "gumbel-rao",
                Box::new(|l| gumbel_rao(l, 4, 0.5, -1)) as Box<dyn Fn(Tensor<2>) -> Tensor<2>>,
            ),
            ("reinmax", Box::new(|l| reinmax(l, 1.0, 1))),
        ] {
            for _ in 0..20 {
                let (z, grad) = grad_of(&sample, &theta, &device);
                for (j, (&zj, &gj)) in z.iter().zip(&grad).enumerate() {
                    assert!(gj.is_finite(), "{name}: gradient {j} is {gj}");
                    if theta[j / 4][j % 4] == inf {
                        assert_eq!(zj, 0.0, "{name}: masked category {j} drawn");
                        assert_eq!(gj, 0.0, "{name}: masked category {j} has gradient {gj}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic = "gumbel_rao: Gumbel-Rao needs at least one sample, got samples = 0"]
    fn gumbel_rao_without_samples_panics() {
        let _ = gumbel_rao(tensor(&THETA, &Device::default()), 0, 0.5, -1);
    }

    #[test]
    #[should_panic = "reinmax: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"]
    fn reinmax_below_one_panics() {
        let _ = reinmax(tensor(&THETA, &Device::default()), 0.5, -1);
    }
}
