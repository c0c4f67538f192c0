//! Gumbel-Softmax (Concrete) sampling: the functional op and the [`GumbelSoftmax`] layer.

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Flag, Module, ModuleDisplay, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{AsIndex, Device, IndexingUpdateOp, Tensor};
use serde::{Deserialize, Serialize};

use crate::estimator::{Estimator, hard_sample};
use crate::temperature::Tau;
use crate::{check, gumbel_noise};

/// Draws a Gumbel-Softmax sample, soft or hard (straight-through).
///
/// Soft sample (Jang, Gu, Poole 2016, [arXiv:1611.01144](https://arxiv.org/abs/1611.01144);
/// Maddison, Mnih, Teh 2016, [arXiv:1611.00712](https://arxiv.org/abs/1611.00712)):
///
/// `y = softmax((logits + g) / tau)` along `dim`, with `g` i.i.d. Gumbel(0, 1) ([`gumbel_noise`]).
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
/// - `tau`: the temperature, finite and `> 0`.
/// - `hard`: return a one-hot sample with the soft sample's gradient.
/// - `dim`: the category dimension; negative values count from the end.
///
/// # Shapes
/// - logits: `[..., n_categories, ...]` (categories along `dim`)
/// - output: the shape of `logits`
///
/// # Panics
/// - If `tau` is not finite and `> 0`, if `dim` is outside `[-D, D)`, or if the category
///   dimension is empty.
/// - In debug builds, if a logit is NaN or every category of a row is masked. Release builds skip
///   that check, and such rows come out NaN, as they do from `softmax`.
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
    let dim = check_args(OP, &logits, tau, dim);
    sample_with_fresh_noise(
        logits,
        &Tau::Fixed(tau),
        hard,
        Estimator::StraightThrough,
        dim,
    )
}

/// [`sample`] with noise drawn from the logits' device.
fn sample_with_fresh_noise<const D: usize>(
    logits: Tensor<D>,
    tau: &Tau,
    hard: bool,
    estimator: Estimator,
    dim: usize,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Tau::Fixed(tau) = tau
        && estimator == Estimator::StraightThrough
        && crate::fused::applies(&logits, dim)
    {
        return crate::fused::gumbel_softmax(logits, *tau, hard);
    }
    let noise = gumbel_noise::<D>(logits.shape(), &logits.device());
    sample(logits, noise, tau, hard, estimator, dim)
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
/// - `noise`: Gumbel(0, 1) noise (or any values) of the same shape, e.g. from [`gumbel_noise`].
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
/// - If `tau` is not finite and `> 0`, if `dim` is outside `[-D, D)`, if the category dimension is
///   empty, or if `noise` and `logits` differ in shape.
/// - In debug builds, if a logit is NaN or every category of a row is masked.
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
    let dim = check_args(OP, &logits, tau, dim);
    check::same_shape(OP, &logits.shape(), &noise.shape());
    let estimator = Estimator::StraightThrough;
    sample(logits, noise, &Tau::Fixed(tau), hard, estimator, dim)
}

/// Checks the arguments shared by the samplers and returns the resolved `dim`.
#[track_caller]
pub(crate) fn check_args<const D: usize>(
    op: &str,
    logits: &Tensor<D>,
    tau: f64,
    dim: impl AsIndex,
) -> usize {
    check::tau(op, tau);
    let dim = check::dim(op, dim, D);
    check::categories(op, &logits.shape(), dim);
    check::debug_logits(op, logits, dim);
    dim
}

/// The sampler itself, on checked arguments: soft, or hard with the gradient of `estimator`.
fn sample<const D: usize>(
    logits: Tensor<D>,
    noise: Tensor<D>,
    tau: &Tau,
    hard: bool,
    estimator: Estimator,
    dim: usize,
) -> Tensor<D> {
    if hard {
        return hard_sample(logits, noise, tau, estimator, dim);
    }
    softmax(tau.divide(logits + noise.detach()), dim)
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

/// What [`GumbelSoftmax`] returns outside training.
///
/// The layer is in training when its input is on an autodiff device and its training flag is set
/// (cleared by `Module::freeze`), as for Burn's `Dropout` and `RRelu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvalMode {
    /// Keep sampling exactly as in training (PyTorch's behaviour).
    #[default]
    Sample,
    /// The noise-free relaxation `softmax(logits / tau)`, soft even when the layer is hard.
    Softmax,
    /// The one-hot of `argmax(logits)`: the mode, without noise.
    Argmax,
}

impl core::fmt::Display for EvalMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            EvalMode::Sample => "sample",
            EvalMode::Softmax => "softmax",
            EvalMode::Argmax => "argmax",
        };
        f.write_str(name)
    }
}

/// Configuration to create a [`GumbelSoftmax`] layer with [`init`](GumbelSoftmaxConfig::init).
#[derive(Config, Debug)]
pub struct GumbelSoftmaxConfig {
    /// The temperature `tau`, finite and `> 0`. Default: 1.0.
    #[config(default = 1.0)]
    pub tau: f64,
    /// Return one-hot samples with the soft sample's gradient (straight-through). Default: false.
    #[config(default = false)]
    pub hard: bool,
    /// The category dimension; negative values count from the end. Default: -1 (the last).
    #[config(default = -1)]
    pub dim: isize,
    /// What the layer returns outside training. Default: [`EvalMode::Sample`].
    #[config(default = "EvalMode::Sample")]
    pub eval_mode: EvalMode,
    /// The gradient estimator of hard samples (needs `hard`). Default:
    /// [`Estimator::StraightThrough`].
    #[config(default = "Estimator::StraightThrough")]
    pub estimator: Estimator,
    /// Learn the temperature: keep `ln tau` as a parameter, initialized to `ln(self.tau)` and
    /// trained with the rest of the model (`tau = exp(ln tau)` stays positive). Not with
    /// [`Estimator::ReinMax`], whose gradient does not reach the temperature. Default: false.
    #[config(default = false)]
    pub learnable_tau: bool,
}

impl GumbelSoftmaxConfig {
    /// Initializes a [`GumbelSoftmax`] layer; a learnable temperature is created on `device`.
    ///
    /// # Panics
    /// - If `tau` is not finite and `> 0`.
    /// - If the estimator is not straight-through and `hard` is false (only hard samples have an
    ///   estimator), or Gumbel-Rao has 0 samples.
    /// - With [`Estimator::ReinMax`], if `tau < 1` or the temperature is learnable.
    pub fn init(&self, device: &Device) -> GumbelSoftmax {
        const OP: &str = "GumbelSoftmaxConfig::init";
        check::tau(OP, self.tau);
        self.estimator.check(OP);
        if self.estimator != Estimator::StraightThrough && !self.hard {
            panic!(
                "{OP}: the estimator {} is for hard (one-hot) samples: set hard = true, got \
                 hard = false",
                self.estimator
            );
        }
        if self.estimator == Estimator::ReinMax {
            check::reinmax_tau(OP, self.tau);
            if self.learnable_tau {
                panic!(
                    "{OP}: ReinMax's gradient does not reach the temperature: learnable_tau must \
                     be false with the estimator reinmax, got learnable_tau = true"
                );
            }
        }
        let log_tau = self
            .learnable_tau
            .then(|| Param::from_tensor(Tensor::<1>::from_floats([self.tau.ln() as f32], device)));
        GumbelSoftmax {
            tau: self.tau,
            log_tau,
            hard: self.hard,
            dim: self.dim,
            estimator: self.estimator,
            eval_mode: self.eval_mode,
            training: Param::from_bool(true),
        }
    }
}

/// The Gumbel-Softmax layer: a differentiable sample from the categorical law `softmax(logits)`.
///
/// In training it returns [`gumbel_softmax`]`(logits, tau, hard, dim)`:
/// `softmax((logits + g) / tau)` with Gumbel(0, 1) noise `g`, or with `hard` its straight-through
/// one-hot. Outside training it follows its [`EvalMode`]. The temperature can be changed per call
/// with [`forward_with_tau`](GumbelSoftmax::forward_with_tau), e.g. from a
/// [`TemperatureSchedule`](crate::TemperatureSchedule).
///
/// Hard samples pass gradients back with the configured [`Estimator`]: straight-through,
/// Gumbel-Rao or ReinMax. With `learnable_tau` the temperature is a parameter `ln tau` of the
/// layer, trained with the model; [`learned_tau`](GumbelSoftmax::learned_tau) reads it.
///
/// Jang, Gu, Poole, *Categorical Reparameterization with Gumbel-Softmax*, ICLR 2017,
/// [arXiv:1611.01144](https://arxiv.org/abs/1611.01144).
///
/// Should be created with [`GumbelSoftmaxConfig`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_gumbel::GumbelSoftmaxConfig;
///
/// let device = Device::default().autodiff();
/// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
/// let layer = GumbelSoftmaxConfig::new().with_tau(0.5).with_hard(true).init(&device);
/// let logits = Tensor::<3>::zeros([8, 20, 10], &device).require_grad(); // [batch, latent, class]
/// let z = layer.forward(logits.clone());
/// assert_eq!(z.dims(), [8, 20, 10]);
/// let grads = (z * Tensor::<3>::ones([8, 20, 10], &device)).sum().backward();
/// assert!(logits.grad(&grads).is_some());
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct GumbelSoftmax {
    /// The temperature used by [`forward`](GumbelSoftmax::forward) when it is not learned (and
    /// the initial value of a learned one).
    pub tau: f64,
    /// The learned `ln tau`, `[1]`, when the configuration asked for `learnable_tau`.
    pub log_tau: Option<Param<Tensor<1>>>,
    /// Whether samples are one-hot (with the gradient of `estimator`).
    pub hard: bool,
    /// The category dimension; negative values count from the end.
    pub dim: isize,
    /// The gradient estimator of hard samples.
    #[module(skip)]
    pub estimator: Estimator,
    /// What the layer returns outside training.
    #[module(skip)]
    pub eval_mode: EvalMode,
    /// Whether to behave as during training. Cleared by
    /// [`freeze`](burn::module::Module::freeze).
    pub training: Param<Flag>,
}

impl GumbelSoftmax {
    /// Applies the layer with its own temperature: the learned one if there is one, else `tau`.
    ///
    /// See [`GumbelSoftmax`] and [`gumbel_softmax`].
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`gumbel_softmax`]: a `dim` out of range, an empty category dimension, and in debug
    /// builds NaN logits or a fully masked row.
    pub fn forward<const D: usize>(&self, logits: Tensor<D>) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward";
        let tau = match &self.log_tau {
            Some(log_tau) => Tau::Learned(Box::new(log_tau.val().exp())),
            None => Tau::Fixed(self.tau),
        };
        check::tau(OP, self.tau);
        self.apply(OP, logits, &tau)
    }

    /// Applies the layer with the temperature `tau` for this call only, for annealing. A learned
    /// temperature is not used (nor trained) by this call.
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`gumbel_softmax`], including a `tau` that is not finite and `> 0`; with
    /// [`Estimator::ReinMax`], a `tau` below 1.
    pub fn forward_with_tau<const D: usize>(&self, logits: Tensor<D>, tau: f64) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward";
        check::tau(OP, tau);
        if self.hard && self.estimator == Estimator::ReinMax {
            check::reinmax_tau(OP, tau);
        }
        self.apply(OP, logits, &Tau::Fixed(tau))
    }

    /// The learned temperature `exp(ln tau)`, `[1]`, or `None` when it is fixed.
    pub fn learned_tau(&self) -> Option<Tensor<1>> {
        self.log_tau.as_ref().map(|log_tau| log_tau.val().exp())
    }

    /// The layer at a checked temperature.
    #[track_caller]
    fn apply<const D: usize>(&self, op: &str, logits: Tensor<D>, tau: &Tau) -> Tensor<D> {
        let dim = check::dim(op, self.dim, D);
        check::categories(op, &logits.shape(), dim);
        check::debug_logits(op, &logits, dim);
        let training = self.training.is_enabled() && logits.device().is_autodiff();
        match (training, self.eval_mode) {
            (true, _) | (false, EvalMode::Sample) => {
                sample_with_fresh_noise(logits, tau, self.hard, self.estimator, dim)
            }
            (false, EvalMode::Softmax) => softmax(tau.divide(logits), dim),
            (false, EvalMode::Argmax) => one_hot_argmax(logits, dim),
        }
    }
}

impl ModuleDisplay for GumbelSoftmax {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let content = content
            .add("tau", &self.tau)
            .add("learnable_tau", &self.log_tau.is_some())
            .add("hard", &self.hard)
            .add("estimator", &self.estimator.to_string())
            .add("dim", &self.dim)
            .add("eval_mode", &self.eval_mode.to_string());
        match self.training.is_enabled() {
            true => content.optional(),
            false => content.add("training", &self.training).optional(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn ties_go_to_the_lowest_index() {
        let device = Device::default();
        let x = Tensor::<2>::from_floats([[1.0, 3.0, 3.0, 3.0], [2.0, 2.0, 0.0, 0.0]], &device);
        let expected =
            Tensor::<2>::from_floats([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], &device);
        assert_eq!(one_hot_argmax(x, 1).into_data(), expected.into_data());
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
    #[cfg(debug_assertions)]
    #[should_panic = "gumbel_softmax: every row must have at least one category with a finite logit"]
    fn fully_masked_row_panics_in_debug_builds() {
        let device = Device::default();
        let inf = f32::NEG_INFINITY;
        let _ = gumbel_softmax(
            Tensor::<2>::from_floats([[inf, inf]], &device),
            1.0,
            true,
            1,
        );
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: the temperature tau must be finite and > 0, got tau = -0.5"]
    fn config_with_negative_tau_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_tau(-0.5)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward: the temperature tau must be finite and > 0, got tau = 0"]
    fn forward_with_zero_tau_panics() {
        let layer = GumbelSoftmaxConfig::new().init(&Device::default());
        let _ = layer.forward_with_tau(logits(&Device::default()), 0.0);
    }

    #[test]
    fn eval_modes_outside_training() {
        // A device without autodiff: the layer is not training.
        let device = Device::default();
        let x = logits(&device);
        let softmax_layer = GumbelSoftmaxConfig::new()
            .with_tau(2.0)
            .with_eval_mode(EvalMode::Softmax)
            .init(&Device::default());
        let expected = softmax(x.clone() / 2.0, 1);
        softmax_layer
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));

        let argmax_layer = GumbelSoftmaxConfig::new()
            .with_eval_mode(EvalMode::Argmax)
            .init(&Device::default());
        let expected =
            Tensor::<2>::from_floats([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]], &device);
        assert_eq!(argmax_layer.forward(x).into_data(), expected.into_data());
    }

    #[test]
    fn frozen_layer_on_autodiff_device_uses_eval_mode() {
        let device = Device::default().autodiff();
        let layer = GumbelSoftmaxConfig::new()
            .with_eval_mode(EvalMode::Argmax)
            .init(&Device::default());
        let x = logits(&device);
        let expected =
            Tensor::<2>::from_floats([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]], &device);
        assert_eq!(layer.freeze().forward(x).into_data(), expected.into_data());
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = GumbelSoftmaxConfig::new()
            .with_tau(0.3)
            .with_hard(true)
            .with_dim(1)
            .with_eval_mode(EvalMode::Softmax);
        let json = serde_json::to_string(&config).unwrap();
        let back: GumbelSoftmaxConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.tau, 0.3);
        assert!(back.hard);
        assert_eq!(back.dim, 1);
        assert_eq!(back.eval_mode, EvalMode::Softmax);
    }

    #[test]
    fn display() {
        let layer = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .init(&Device::default());
        assert_eq!(
            format!("{layer}"),
            "GumbelSoftmax {tau: 1, learnable_tau: false, hard: true, estimator: st, dim: -1, eval_mode: \
             sample}"
        );
    }
}
