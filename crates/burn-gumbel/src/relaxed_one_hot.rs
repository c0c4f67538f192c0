//! The relaxed one-hot categorical (Concrete) distribution: reparameterized samples and
//! log-densities, on the simplex and in log space.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{AsIndex, FloatDType, Tensor};

use crate::check;
use crate::key::Key;
use crate::noise::Noise;
use crate::ops::{Tau, half_dtype, to_f32};
use crate::sampling::{Kind, sample};

/// The relaxed one-hot categorical distribution, also called Concrete or Gumbel-Softmax
/// distribution, with class probabilities `p = softmax(logits)` and temperature `tau`.
///
/// Maddison, Mnih, Teh, *The Concrete Distribution*, ICLR 2017,
/// [arXiv:1611.00712](https://arxiv.org/abs/1611.00712); Jang, Gu, Poole 2016,
/// [arXiv:1611.01144](https://arxiv.org/abs/1611.01144).
///
/// A sample is `y = softmax((θ + g) / tau)` along `dim`, `g` i.i.d. Gumbel(0, 1), a point inside
/// the simplex of `K` categories. There are two ways to give it a density, and this type offers
/// both under names that say which is which:
///
/// | sample | density | of | formula (`x = ln y`) |
/// |---|---|---|---|
/// | [`rsample`](Self::rsample) | [`log_prob`](Self::log_prob) | `y` on the simplex | `ln Γ(K) + (K−1)·ln tau + Σ_k log_softmax(θ − tau·x)_k − Σ_k x_k` |
/// | [`rsample_log`](Self::rsample_log) | [`log_prob_of_log`](Self::log_prob_of_log) | `x = ln y` | `ln Γ(K) + (K−1)·ln tau + Σ_k log_softmax(θ − tau·x)_k` |
///
/// - `log_prob(y)` is Maddison et al.'s eq. 3: the density of `y` with respect to the Lebesgue
///   measure on its first `K − 1` coordinates (the last is `1 − Σ` of the others). It integrates
///   to 1 over the simplex; for `K = 2` it is the binary Concrete density.
/// - `log_prob_of_log(x)` is TensorFlow Probability's `ExpRelaxedOneHotCategorical.log_prob`: the
///   density of `x = ln y` with respect to the Lebesgue measure on the `K − 1` differences
///   `x_k − x_K` (the logits of `y` against its last category). The two differ by `Σ_k x_k`.
///
/// Prefer the log-space pair for KL terms and at low temperatures: in f32, `y` from
/// [`rsample`](Self::rsample) has coordinates that round to 0 once `tau` is small, and
/// `log_prob(y)` of such a point is `NaN` (`ln 0`), while [`rsample_log`](Self::rsample_log)
/// keeps them as finite logarithms. A KL divergence between two relaxed distributions is the
/// same in either pair of coordinates.
///
/// The temperature may be a number ([`from_logits`](Self::from_logits)) or a tensor broadcast
/// over the batch, possibly learned ([`with_tau_tensor`](Self::with_tau_tensor)); `rsample` is
/// differentiable in the logits and in a tensor temperature.
///
/// # Shapes
/// - logits, samples: `[..., K, ...]` (categories along `dim`)
/// - tau (tensor): the rank of the logits, every size 1 or that of the logits, 1 along `dim`
/// - log-densities: the shape of the logits with size 1 along `dim`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::RelaxedOneHotCategorical;
///
/// let device = Device::default();
/// # #[cfg(feature = "flex")] let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], &device);
/// let q = RelaxedOneHotCategorical::from_logits(logits.clone(), 0.5, -1);
/// let p = RelaxedOneHotCategorical::from_logits(logits.zeros_like(), 0.5, -1);
///
/// // A one-sample Monte Carlo estimate of KL(q ‖ p) per row, in log space.
/// let x = q.rsample_log(); // [2, 3]
/// let kl = q.log_prob_of_log(x.clone()) - p.log_prob_of_log(x); // [2, 1]
/// assert_eq!(kl.dims(), [2, 1]);
/// assert!(!kl.is_nan().any().into_scalar::<bool>());
/// ```
#[derive(Clone, Debug)]
pub struct RelaxedOneHotCategorical<const D: usize> {
    /// Normalized log-probabilities `log_softmax(logits)`.
    logits: Tensor<D>,
    /// The temperature, broadcastable to the logits.
    tau: Tensor<D>,
    /// The temperature as the number it was given as, until a tensor replaces it: the samples
    /// of such a distribution are the sampling core's (and so the flex kernel's, where it serves).
    fixed_tau: Option<f64>,
    /// The category dimension.
    dim: usize,
    /// The logits' dtype when it is half precision: computed in f32, returned in it.
    half: Option<FloatDType>,
}

impl<const D: usize> RelaxedOneHotCategorical<D> {
    /// The distribution with class probabilities `softmax(logits)` along `dim` and temperature
    /// `tau`.
    ///
    /// # Shapes
    /// - logits: `[..., K, ...]` (categories along `dim`)
    ///
    /// # Panics
    /// If `tau` is not finite and `> 0` in the dtype the sample is computed in (f32 for f32 and
    /// half-precision logits), `dim` is outside `[-D, D)` or the category dimension is empty; in
    /// debug builds, on NaN logits or a row whose logits are all `-inf` (in release builds such a
    /// row's samples and densities are NaN, on every backend).
    pub fn from_logits(logits: Tensor<D>, tau: f64, dim: impl AsIndex) -> Self {
        Self::new("RelaxedOneHotCategorical::from_logits", logits, tau, dim)
    }

    /// The distribution with class probabilities `probs` (normalized along `dim` here; a
    /// probability of 0 masks its category) and temperature `tau`.
    ///
    /// # Shapes
    /// - probs: `[..., K, ...]` (categories along `dim`)
    ///
    /// # Panics
    /// As [`from_logits`](Self::from_logits); in debug builds also on negative probabilities
    /// (their logarithm is NaN).
    pub fn from_probs(probs: Tensor<D>, tau: f64, dim: impl AsIndex) -> Self {
        Self::new(
            "RelaxedOneHotCategorical::from_probs",
            probs.log(),
            tau,
            dim,
        )
    }

    #[track_caller]
    fn new(op: &str, logits: Tensor<D>, tau: f64, dim: impl AsIndex) -> Self {
        let dim = check::sampler(op, &logits, Some(tau), None, dim);
        let half = half_dtype(&logits);
        let logits = to_f32(logits);
        let fixed_tau = Some(tau);
        let tau = Tensor::<D>::full([1; D], tau, &logits.device());
        Self {
            logits: log_softmax(logits, dim),
            tau,
            fixed_tau,
            dim,
            half,
        }
    }

    /// The same distribution with a tensor temperature: one per row, per batch, or a learned one.
    ///
    /// # Shapes
    /// - tau: the rank of the logits; each size is 1 or the logits', and 1 along the category
    ///   dimension (e.g. `[batch, 1]` for logits `[batch, K]`).
    ///
    /// # Panics
    /// If `tau` does not broadcast that way; in debug builds, if a temperature is not finite and
    /// `> 0` (the check reads one boolean back from the device; release builds skip it).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::RelaxedOneHotCategorical;
    ///
    /// let device = Device::default();
    /// # #[cfg(feature = "flex")] let device = Device::flex();
    /// let logits = Tensor::<2>::zeros([2, 4], &device);
    /// let tau = Tensor::<2>::from_floats([[0.5], [2.0]], &device); // one per row
    /// let dist = RelaxedOneHotCategorical::from_logits(logits, 1.0, -1).with_tau_tensor(tau);
    /// assert_eq!(dist.rsample().dims(), [2, 4]);
    /// ```
    pub fn with_tau_tensor(self, tau: Tensor<D>) -> Self {
        const OP: &str = "RelaxedOneHotCategorical::with_tau_tensor";
        let logits = self.logits.shape();
        let fits = tau
            .shape()
            .iter()
            .zip(logits.iter())
            .enumerate()
            .all(|(d, (&t, &l))| t == 1 || (t == l && d != self.dim));
        if !fits {
            panic!(
                "{OP}: tau must broadcast to the logits with size 1 along the category dim {}, \
                 got tau {:?} for logits {:?}",
                self.dim,
                tau.shape().as_slice(),
                logits.as_slice()
            );
        }
        if cfg!(debug_assertions) {
            // `0 < tau < inf` is false for NaN too: one boolean read back covers the three cases.
            let detached = tau.clone().detach();
            let valid = detached
                .clone()
                .greater_elem(0.0)
                .bool_and(detached.lower_elem(f32::INFINITY));
            if valid.bool_not().any().into_scalar::<bool>() {
                panic!(
                    "{OP}: the temperature tau must be finite and > 0, got a value that is not \
                     (checked in debug builds only)"
                );
            }
        }
        Self {
            tau: to_f32(tau),
            fixed_tau: None,
            ..self
        }
    }

    /// The normalized logits `log_softmax(logits)` along the category dimension.
    pub fn logits(&self) -> Tensor<D> {
        self.out(self.logits.clone())
    }

    /// The class probabilities `softmax(logits)`: the law of `argmax` of a sample.
    pub fn probs(&self) -> Tensor<D> {
        self.out(self.logits.clone().exp())
    }

    /// The temperature, broadcastable to the logits.
    pub fn tau(&self) -> Tensor<D> {
        self.tau.clone()
    }

    /// The category dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// A reparameterized sample `y = softmax((θ + g) / tau)` on the simplex, differentiable in the
    /// logits and a tensor temperature. With a temperature given as a number it is the soft
    /// sample of [`gumbel_softmax`](crate::gumbel_softmax), drawn by the same sampling core (the
    /// fused kernel on flex); a tensor temperature takes tensor ops.
    ///
    /// # Shapes
    /// - output: the shape of the logits
    pub fn rsample(&self) -> Tensor<D> {
        self.simplex_sample(None)
    }

    /// A reparameterized sample in log space, `x = log_softmax((θ + g) / tau) = ln y`: finite
    /// where `y` would round to 0.
    ///
    /// # Shapes
    /// - output: the shape of the logits
    pub fn rsample_log(&self) -> Tensor<D> {
        self.out(log_softmax(self.perturbed_over_tau(None), self.dim))
    }

    /// [`rsample`](Self::rsample) with the noise of a [`Key`] (that of
    /// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key)): the same sample on every
    /// backend.
    ///
    /// # Shapes
    /// - output: the shape of the logits
    pub fn rsample_with_key(&self, key: Key) -> Tensor<D> {
        self.simplex_sample(Some(key))
    }

    /// [`rsample_log`](Self::rsample_log) with the noise of a [`Key`].
    ///
    /// # Shapes
    /// - output: the shape of the logits
    pub fn rsample_log_with_key(&self, key: Key) -> Tensor<D> {
        self.out(log_softmax(self.perturbed_over_tau(Some(key)), self.dim))
    }

    /// A result in the logits' dtype.
    fn out(&self, x: Tensor<D>) -> Tensor<D> {
        match self.half {
            Some(dtype) => x.cast(dtype),
            None => x,
        }
    }

    /// `softmax((θ + g) / tau)`, `g` under `key` or fresh from the device's generator: by the
    /// sampling core for a fixed temperature, by tensor ops for a tensor one.
    fn simplex_sample(&self, key: Option<Key>) -> Tensor<D> {
        let noise = Noise::of_key(key);
        let y = match self.fixed_tau {
            Some(tau) => sample(
                self.logits.clone(),
                &Tau::Fixed(tau),
                Kind::Soft,
                noise,
                self.dim,
            ),
            None => softmax(
                (self.logits.clone() + noise.gumbel(&self.logits, self.dim)) / self.tau.clone(),
                self.dim,
            ),
        };
        self.out(y)
    }

    /// `(θ + g) / tau`, `g` under `key` or fresh from the device's generator.
    fn perturbed_over_tau(&self, key: Option<Key>) -> Tensor<D> {
        let noise = Noise::of_key(key).gumbel(&self.logits, self.dim);
        (self.logits.clone() + noise) / self.tau.clone()
    }

    /// The log-density of `y` on the simplex (Maddison, Mnih, Teh 2016, eq. 3), with respect to
    /// the Lebesgue measure on `y`'s first `K − 1` coordinates:
    ///
    /// `ln Γ(K) + (K−1)·ln tau + Σ_k log_softmax(θ − tau·ln y)_k − Σ_k ln y_k`.
    ///
    /// `y` must be strictly inside the simplex: a coordinate equal to 0 gives NaN. For points
    /// near the boundary use [`log_prob_of_log`](Self::log_prob_of_log) on `ln y`.
    ///
    /// # Shapes
    /// - y: the shape of the logits
    /// - output: the shape of the logits with size 1 along the category dimension
    ///
    /// # Panics
    /// If `y` does not have the shape of the logits.
    pub fn log_prob(&self, y: Tensor<D>) -> Tensor<D> {
        check::same_shape(
            "RelaxedOneHotCategorical::log_prob",
            "y",
            &self.logits.shape(),
            &y.shape(),
        );
        let x = to_f32(y).log();
        let jacobian = x.clone().sum_dim(self.dim);
        self.out(self.log_density_of_log(x) - jacobian)
    }

    /// The log-density of `x = ln y` (TensorFlow Probability's `ExpRelaxedOneHotCategorical`),
    /// with respect to the Lebesgue measure on the differences `x_k − x_K`, `k < K`:
    ///
    /// `ln Γ(K) + (K−1)·ln tau + Σ_k log_softmax(θ − tau·x)_k`.
    ///
    /// It is [`log_prob`](Self::log_prob)`(exp(x)) + Σ_k x_k`. Only differences of `x` matter, so
    /// `x` need not be normalized.
    ///
    /// # Shapes
    /// - x: the shape of the logits
    /// - output: the shape of the logits with size 1 along the category dimension
    ///
    /// # Panics
    /// If `x` does not have the shape of the logits.
    pub fn log_prob_of_log(&self, x: Tensor<D>) -> Tensor<D> {
        check::same_shape(
            "RelaxedOneHotCategorical::log_prob_of_log",
            "x",
            &self.logits.shape(),
            &x.shape(),
        );
        self.out(self.log_density_of_log(to_f32(x)))
    }

    fn log_density_of_log(&self, x: Tensor<D>) -> Tensor<D> {
        let k = self.logits.dims()[self.dim];
        // ln Γ(K) = ln (K − 1)!
        let ln_gamma_k: f64 = (2..k).map(|i| (i as f64).ln()).sum();
        let terms = log_softmax(self.logits.clone() - x * self.tau.clone(), self.dim);
        terms.sum_dim(self.dim) + self.tau.clone().log().mul_scalar((k - 1) as f64) + ln_gamma_k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    #[should_panic = "RelaxedOneHotCategorical::log_prob: y must have the shape of the logits, \
                      got y [2, 2] for logits [2, 3]"]
    fn log_prob_of_another_shape_panics() {
        let device = Device::default();
        let dist =
            RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([2, 3], &device), 1.0, 1);
        let _ = dist.log_prob(Tensor::<2>::ones([2, 2], &device));
    }

    #[test]
    #[should_panic = "RelaxedOneHotCategorical::with_tau_tensor: tau must broadcast to the logits \
                      with size 1 along the category dim 1, got tau [2, 3] for logits [2, 3]"]
    fn tau_along_the_categories_panics() {
        let device = Device::default();
        let dist =
            RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([2, 3], &device), 1.0, 1);
        let _ = dist.with_tau_tensor(Tensor::<2>::ones([2, 3], &device));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic = "RelaxedOneHotCategorical::with_tau_tensor: the temperature tau must be finite and > 0"]
    fn negative_tau_tensor_panics_in_debug_builds() {
        let device = Device::default();
        let dist =
            RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([2, 3], &device), 1.0, 1);
        let _ = dist.with_tau_tensor(Tensor::<2>::from_floats([[1.0], [-1.0]], &device));
    }

    #[test]
    #[should_panic = "RelaxedOneHotCategorical::from_logits: the temperature tau must be finite and > 0, got tau = 0"]
    fn zero_tau_panics() {
        let device = Device::default();
        let _ = RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([2, 3], &device), 0.0, 1);
    }

    #[test]
    fn from_probs_is_from_logits_of_the_log() {
        let device = Device::default();
        let probs = Tensor::<2>::from_floats([[0.2, 0.3, 0.5]], &device);
        let a = RelaxedOneHotCategorical::from_probs(probs.clone(), 0.7, 1);
        let b = RelaxedOneHotCategorical::from_logits(probs.clone().log().add_scalar(3.0), 0.7, 1);
        let y = Tensor::<2>::from_floats([[0.1, 0.6, 0.3]], &device);
        let (a, b) = (a.log_prob(y.clone()), b.log_prob(y));
        let (a, b) = (a.into_scalar::<f32>(), b.into_scalar::<f32>());
        // Logits shifted by a constant give the same distribution; f32 rounding only.
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn one_category_density_at_the_only_point_is_one() {
        // K = 1: the sample is always 1 and the density (on a 0-dimensional simplex) is 1.
        let device = Device::default();
        let dist =
            RelaxedOneHotCategorical::from_logits(Tensor::<2>::zeros([1, 1], &device), 0.5, 1);
        assert_eq!(dist.rsample().into_scalar::<f32>(), 1.0);
        assert_eq!(
            dist.log_prob(Tensor::<2>::ones([1, 1], &device))
                .into_scalar::<f32>(),
            0.0
        );
    }
}
