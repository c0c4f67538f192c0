//! The Gumbel-Softmax layer: [`GumbelSoftmaxConfig`], [`GumbelSoftmax`] and its [`EvalMode`].

use burn::config::Config;
use burn::module::{Content, DisplaySettings, Flag, Module, ModuleDisplay, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::check;
use crate::estimator::Estimator;
use crate::key::Key;
use crate::ops::{Tau, in_f32, masked_rows, one_hot_argmax, softmax_or_zero};
use crate::sampling::{Kind, Noise, sample};
use crate::setting::{InvalidSetting, Setting};

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
    /// Checks the settings without panicking: the rules [`init`](Self::init) enforces.
    ///
    /// # Errors
    /// The first rule broken: a `tau` that is not finite and `> 0` ([`Setting::Tau`]), or what
    /// [`Estimator::validate`] refuses ([`Setting::Estimator`]): an estimator other than
    /// straight-through on soft samples, Gumbel-Rao with 0 samples, ReinMax below `tau = 1` or
    /// with a learnable temperature.
    ///
    /// # Example
    /// ```
    /// use burn_gumbel::{Estimator, GumbelSoftmaxConfig, Setting};
    ///
    /// assert!(GumbelSoftmaxConfig::new().validate().is_ok());
    /// let soft_gumbel_rao = GumbelSoftmaxConfig::new().with_estimator(Estimator::GumbelRao { samples: 4 });
    /// assert_eq!(soft_gumbel_rao.validate().unwrap_err().setting, Setting::Estimator);
    /// ```
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        settings(
            Some(self.tau),
            self.hard,
            self.estimator,
            self.learnable_tau,
        )
    }

    /// Initializes a [`GumbelSoftmax`] layer; a learnable temperature is created on `device`.
    ///
    /// # Panics
    /// - If `tau` is not finite and `> 0`.
    /// - If the estimator is not straight-through and `hard` is false (only hard samples have an
    ///   estimator), or Gumbel-Rao has 0 samples.
    /// - With [`Estimator::ReinMax`], if `tau < 1` or the temperature is learnable.
    pub fn init(&self, device: &Device) -> GumbelSoftmax {
        const OP: &str = "GumbelSoftmaxConfig::init";
        let tau = Some(self.tau);
        check_settings(OP, tau, self.hard, self.estimator, self.learnable_tau);
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

/// The rules that tie the layer's settings together, checked by
/// [`init`](GumbelSoftmaxConfig::init) and again by every forward call, since the fields of
/// [`GumbelSoftmax`] are public. `tau` is the fixed temperature in use, `None` when it is learned.
#[track_caller]
fn check_settings(op: &str, tau: Option<f64>, hard: bool, estimator: Estimator, learned: bool) {
    if let Err(error) = settings(tau, hard, estimator, learned) {
        panic!("{op}: {error}");
    }
}

/// [`check_settings`] as a value.
fn settings(
    tau: Option<f64>,
    hard: bool,
    estimator: Estimator,
    learned: bool,
) -> Result<(), InvalidSetting> {
    if let Some(tau) = tau {
        InvalidSetting::check(Setting::Tau, check::tau_rule(tau))?;
    }
    // A learned temperature (`None`) has no fixed value to hold to ReinMax's floor, and ReinMax
    // refuses it anyway.
    estimator.validate(tau, learned, hard)
}

/// The Gumbel-Softmax layer: a differentiable sample from the categorical law `softmax(logits)`.
///
/// In training it returns [`gumbel_softmax`](crate::gumbel_softmax)`(logits, tau, hard, dim)`:
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
    /// See [`GumbelSoftmax`] and [`gumbel_softmax`](crate::gumbel_softmax).
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// - As [`gumbel_softmax`](crate::gumbel_softmax): a `dim` out of range, an empty category
    ///   dimension, and in debug builds NaN logits (a fully masked row gives zeros, as there).
    /// - If the public fields were changed after [`init`](GumbelSoftmaxConfig::init) into a setting
    ///   that `init` refuses: a fixed `tau` that is not finite and `> 0` (or below 1 with
    ///   ReinMax), an estimator other than straight-through on soft samples, ReinMax with a
    ///   learned temperature, a learned `ln tau` of another shape than `[1]`.
    /// - A fixed `tau` that is not a normal number of the dtype the sample is computed in (f32
    ///   for f32 and half-precision logits: from 1.2e-38 to 3.4e38).
    pub fn forward<const D: usize>(&self, logits: Tensor<D>) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward";
        let tau = self.own_tau(OP);
        self.apply(OP, logits, &tau, Noise::Fresh)
    }

    /// [`forward`](Self::forward) with the noise of a [`Key`], as
    /// [`gumbel_softmax_with_key`](crate::gumbel_softmax_with_key): in training (and in
    /// [`EvalMode::Sample`]) the sample is a function of (key, logits, the layer's settings and
    /// temperature) alone, the same on every backend. Derive one key per step, e.g.
    /// `seed.fold_in(step)` ([`Key::fold_in`]).
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`forward`](Self::forward).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::{GumbelSoftmaxConfig, Key};
    ///
    /// let device = Device::default().autodiff();
    /// # #[cfg(feature = "flex")] let device = Device::flex().autodiff();
    /// let layer = GumbelSoftmaxConfig::new().with_hard(true).init(&device);
    /// let logits = Tensor::<2>::from_floats([[0.5, 1.0, -1.0]], &device);
    /// let seed = Key::new(0);
    /// let step = 12;
    /// let a = layer.forward_with_key(logits.clone(), seed.fold_in(step));
    /// let b = layer.forward_with_key(logits, seed.fold_in(step));
    /// assert_eq!(a.into_data(), b.into_data());
    /// ```
    pub fn forward_with_key<const D: usize>(&self, logits: Tensor<D>, key: Key) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward_with_key";
        let tau = self.own_tau(OP);
        self.apply(OP, logits, &tau, Noise::Keyed(key))
    }

    /// Applies the layer with the temperature `tau` for this call only, for annealing. A learned
    /// temperature is not used (nor trained) by this call.
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`gumbel_softmax`](crate::gumbel_softmax), including a `tau` that is not finite and
    /// `> 0`; with [`Estimator::ReinMax`], a `tau` below 1; an estimator other than
    /// straight-through on soft samples.
    pub fn forward_with_tau<const D: usize>(&self, logits: Tensor<D>, tau: f64) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward_with_tau";
        check_settings(OP, Some(tau), self.hard, self.estimator, false);
        self.apply(OP, logits, &Tau::Fixed(tau), Noise::Fresh)
    }

    /// [`forward_with_tau`](Self::forward_with_tau) with the noise of a [`Key`], as
    /// [`forward_with_key`](Self::forward_with_key): an annealed temperature and a key per step.
    ///
    /// # Shapes
    /// - logits: `[..., n_categories, ...]` (categories along `dim`)
    /// - output: the shape of `logits`
    ///
    /// # Panics
    /// As [`forward_with_tau`](Self::forward_with_tau).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_gumbel::{GumbelSoftmaxConfig, Key, TemperatureSchedule};
    ///
    /// let device = Device::default();
    /// # #[cfg(feature = "flex")] let device = Device::flex();
    /// let layer = GumbelSoftmaxConfig::new().init(&device);
    /// let schedule = TemperatureSchedule::paper();
    /// let logits = Tensor::<2>::from_floats([[0.5, 1.0, -1.0]], &device);
    /// let step = 3000;
    /// let y = layer.forward_with_key_and_tau(logits, Key::new(1).fold_in(step), schedule.tau(step));
    /// assert!((y.sum().into_scalar::<f32>() - 1.0).abs() < 1e-6);
    /// ```
    pub fn forward_with_key_and_tau<const D: usize>(
        &self,
        logits: Tensor<D>,
        key: Key,
        tau: f64,
    ) -> Tensor<D> {
        const OP: &str = "GumbelSoftmax::forward_with_key_and_tau";
        check_settings(OP, Some(tau), self.hard, self.estimator, false);
        self.apply(OP, logits, &Tau::Fixed(tau), Noise::Keyed(key))
    }

    /// The learned temperature `exp(ln tau)`, `[1]`, or `None` when it is fixed.
    ///
    /// # Panics
    /// If the public field `log_tau` was set to a tensor of another shape than `[1]`.
    pub fn learned_tau(&self) -> Option<Tensor<1>> {
        if let Some(log_tau) = &self.log_tau {
            check::log_tau("GumbelSoftmax::learned_tau", &log_tau.val().shape());
        }
        self.log_tau.as_ref().map(|log_tau| log_tau.val().exp())
    }

    /// The layer's own temperature (fixed, or the learned `exp(ln tau)`), its settings checked.
    #[track_caller]
    fn own_tau(&self, op: &str) -> Tau {
        let (tau, fixed) = match &self.log_tau {
            Some(log_tau) => {
                let log_tau = log_tau.val();
                check::log_tau(op, &log_tau.shape());
                (Tau::Learned(Box::new(log_tau.exp())), None)
            }
            None => (Tau::Fixed(self.tau), Some(self.tau)),
        };
        let learned = self.log_tau.is_some();
        check_settings(op, fixed, self.hard, self.estimator, learned);
        tau
    }

    /// The layer at a checked temperature, drawing `noise` where it samples.
    #[track_caller]
    fn apply<const D: usize>(
        &self,
        op: &str,
        logits: Tensor<D>,
        tau: &Tau,
        noise: Noise<D>,
    ) -> Tensor<D> {
        let fixed = match tau {
            Tau::Fixed(tau) => Some(*tau),
            Tau::Learned(_) => None,
        };
        let dim = check::one_hot_sampler(op, &logits, fixed, self.dim);
        let training = self.training.is_enabled() && logits.device().is_autodiff();
        match (training, self.eval_mode) {
            // In the logits' dtype (half precision computed in f32 inside).
            (true, _) | (false, EvalMode::Sample) => {
                let kind = match self.hard {
                    true => Kind::Hard(self.estimator),
                    false => Kind::Soft,
                };
                sample(logits, tau, kind, noise, dim)
            }
            // Without noise; a fully masked row is zeros here too.
            (false, EvalMode::Softmax) => in_f32(logits, |l| {
                let z = tau.divide(l);
                let masked = masked_rows(z.clone(), dim);
                softmax_or_zero(z, masked, dim)
            }),
            (false, EvalMode::Argmax) => in_f32(logits, |l| {
                let masked = masked_rows(l.clone(), dim);
                one_hot_argmax(l, dim).mask_fill(masked, 0.0)
            }),
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
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Tolerance};

    fn logits(device: &Device) -> Tensor<2> {
        Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]], device)
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: the temperature tau must be finite and > 0, got tau = -0.5"]
    fn config_with_negative_tau_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_tau(-0.5)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward_with_tau: the temperature tau must be finite and > 0, got tau = 0"]
    fn forward_with_zero_tau_panics() {
        let layer = GumbelSoftmaxConfig::new().init(&Device::default());
        let _ = layer.forward_with_tau(logits(&Device::default()), 0.0);
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward_with_tau: the temperature tau must be a normal f32 (the \
                      dtype the sample is computed in), from 1.2e-38 to 3.4e38, got \
                      tau = 1e-40"]
    fn forward_with_a_tau_subnormal_in_f32_panics() {
        // Finite and > 0 in f64, but 1 / tau is infinite in f32, where the sample is computed.
        let layer = GumbelSoftmaxConfig::new().init(&Device::default());
        let _ = layer.forward_with_tau(logits(&Device::default()), 1e-40);
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward: the learned ln tau must have the shape [1], got shape [2]"]
    fn a_learned_tau_of_another_shape_panics() {
        // The field is public: a `[2]` tensor put there is refused, not read at element 0.
        let device = Device::default().autodiff();
        let mut layer = GumbelSoftmaxConfig::new()
            .with_learnable_tau(true)
            .init(&device);
        layer.log_tau = Some(Param::from_tensor(Tensor::<1>::zeros([2], &device)));
        let _ = layer.forward(logits(&device));
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

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: the estimator reinmax is for hard (one-hot) samples: set hard = true, got hard = false"]
    fn soft_layer_with_an_estimator_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"]
    fn reinmax_layer_below_one_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_tau(0.5)
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward_with_tau: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.9"]
    fn reinmax_layer_annealed_below_one_panics() {
        let device = Device::default();
        let layer = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_estimator(Estimator::ReinMax)
            .init(&device);
        let _ = layer.forward_with_tau(logits(&device), 0.9);
    }

    #[test]
    #[should_panic = "GumbelSoftmaxConfig::init: ReinMax's gradient does not reach the temperature"]
    fn reinmax_with_learnable_tau_panics() {
        let _ = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_learnable_tau(true)
            .with_estimator(Estimator::ReinMax)
            .init(&Device::default());
    }

    #[test]
    #[should_panic = "GumbelSoftmax::forward: ReinMax's gradient does not reach the temperature"]
    fn reinmax_set_after_init_on_a_learned_tau_panics() {
        // The fields are public: a layer built with a learned temperature, then given ReinMax.
        let device = Device::default();
        let mut layer = GumbelSoftmaxConfig::new()
            .with_hard(true)
            .with_learnable_tau(true)
            .init(&device);
        layer.estimator = Estimator::ReinMax;
        let _ = layer.forward(logits(&device));
    }

    #[test]
    fn a_learned_tau_is_used_even_when_the_fixed_one_is_invalid() {
        // `tau` is only the initial value of a learned temperature: forward does not check it.
        let device = Device::default();
        let mut layer = GumbelSoftmaxConfig::new()
            .with_tau(2.0)
            .with_learnable_tau(true)
            .with_eval_mode(EvalMode::Softmax)
            .init(&device);
        layer.tau = 0.0;
        let expected = softmax(logits(&device) / 2.0, 1);
        layer
            .forward(logits(&device))
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
    }
}
