//! The convolutional discrete VAE and its negative ELBO.
//!
//! An encoder of strided convolutions maps a binarized digit `[batch, 1, 28, 28]` to the logits
//! of `K` codes at each cell of a 7 × 7 grid, `[batch, K, 7, 7]`; [`GumbelSoftmax`] samples one
//! code per cell over the channel axis (`dim = 1`, the layout of DALL-E's discrete VAE); a decoder
//! of transposed convolutions maps the codes back to the logits of 784 Bernoulli pixels.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::tensor::activation::{log_softmax, softplus};
use burn::tensor::{Device, Tensor};
use burn_gumbel::{Estimator, GumbelSoftmax, GumbelSoftmaxConfig, TemperatureSchedule};
use categorical_vae::Error;

/// Side of the grid of codes: 28 halved twice.
pub const GRID: usize = 7;

/// The most codes `K` a model may have (DALL-E's discrete VAE has 8192).
pub const MAX_CODES: usize = 8192;

/// Configuration of a [`DiscreteVae`], created with [`init`](DiscreteVaeConfig::init).
#[derive(Config, Debug, PartialEq)]
pub struct DiscreteVaeConfig {
    /// Number of codes `K` (channels of the encoder's output), `2..=8192`. Default: 64.
    #[config(default = 64)]
    pub codes: usize,
    /// Channels of the first convolution (the second has twice as many), `≥ 1`. Default: 32.
    #[config(default = 32)]
    pub channels: usize,
    /// One-hot codes forward (with `estimator`'s gradient backward). Default: true.
    #[config(default = true)]
    pub hard: bool,
    /// The gradient estimator of one-hot codes. Default: straight-through.
    #[config(default = "Estimator::StraightThrough")]
    pub estimator: Estimator,
    /// Learn the temperature (`ln tau` a parameter, from `schedule`'s first value) instead of
    /// annealing it. Default: false.
    #[config(default = false)]
    pub learnable_tau: bool,
    /// The temperature per optimizer step. Default: `max(0.5, exp(-3e-5 · step))`, updated every
    /// 1000 steps ([`TemperatureSchedule::paper`]).
    #[config(default = "TemperatureSchedule::paper()")]
    pub schedule: TemperatureSchedule,
}

impl DiscreteVaeConfig {
    /// Checks the settings, naming the flag of the one that is wrong.
    ///
    /// # Errors
    /// `codes` outside `2..=8192`, `channels` 0, an invalid schedule, or a combination that
    /// [`GumbelSoftmaxConfig::init`] refuses (an estimator without `hard`, ReinMax below
    /// `tau = 1` or with a learned temperature).
    pub fn validate(&self) -> Result<(), Error> {
        if !(2..=MAX_CODES).contains(&self.codes) {
            return Err(Error::invalid(
                "--codes",
                format!("must be in 2..={MAX_CODES}, got {}", self.codes),
            ));
        }
        if self.channels == 0 {
            return Err(Error::invalid("--channels", "must be at least 1, got 0"));
        }
        self.schedule
            .validate()
            .map_err(|e| Error::invalid("--tau0/--tau-min/--anneal-rate/--tau", e))?;
        // The layer's rules, at the schedule's floor.
        let lowest = self.schedule.tau(u64::MAX);
        self.estimator
            .validate(self.hard, Some(lowest), self.learnable_tau)
            .map_err(|e| Error::invalid("--estimator", e.to_string()))
    }

    /// Initializes the model on `device`, at step 0.
    ///
    /// # Panics
    /// On settings that [`validate`](Self::validate) refuses.
    pub fn init(&self, device: &Device) -> DiscreteVae {
        if let Err(e) = self.validate() {
            panic!("DiscreteVaeConfig::init: {e}");
        }
        let (c, k) = (self.channels, self.codes);
        let down = |from, to| {
            Conv2dConfig::new([from, to], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let up = |from, to| {
            ConvTranspose2dConfig::new([from, to], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device)
        };
        let pointwise = |from, to| Conv2dConfig::new([from, to], [1, 1]).init(device);
        DiscreteVae {
            encoder: [down(1, c), down(c, 2 * c)],
            to_logits: pointwise(2 * c, k),
            gumbel: GumbelSoftmaxConfig::new()
                .with_tau(self.schedule.tau(0))
                .with_hard(self.hard)
                .with_dim(1)
                .with_estimator(self.estimator)
                .with_learnable_tau(self.learnable_tau)
                .init(device),
            from_codes: pointwise(k, 2 * c),
            decoder: [up(2 * c, c), up(c, 1)],
            relu: Relu::new(),
            step: Param::from_tensor(Tensor::zeros([1], device)).set_require_grad(false),
            schedule: self.schedule,
        }
    }
}

/// The convolutional discrete VAE: see the [module](self) documentation.
///
/// Besides the weights it carries the number of optimizer steps done, `step`, a parameter that
/// is not trained: saved and restored with the weights, so that the annealed temperature
/// continues where it stopped when a run is resumed.
#[derive(Module, Debug)]
pub struct DiscreteVae {
    encoder: [Conv2d; 2],
    to_logits: Conv2d,
    gumbel: GumbelSoftmax,
    from_codes: Conv2d,
    decoder: [ConvTranspose2d; 2],
    relu: Relu,
    step: Param<Tensor<1>>,
    #[module(skip)]
    schedule: TemperatureSchedule,
}

/// What a forward pass returns.
#[derive(Clone, Debug)]
pub struct Forward {
    /// The encoder's logits of the codes, `[batch, K, 7, 7]`.
    pub logits: Tensor<4>,
    /// The sampled codes (one-hot over the channels when hard), `[batch, K, 7, 7]`.
    pub codes: Tensor<4>,
    /// The decoder's logits of the pixels, `[batch, 1, 28, 28]`.
    pub pixel_logits: Tensor<4>,
    /// The temperature the codes were sampled at, `[1]`, off the graph.
    pub tau: Tensor<1>,
}

/// The terms of the negative ELBO of a batch, each `[1]`, in nats per image.
#[derive(Clone, Debug)]
pub struct Elbo {
    /// Reconstruction + KL.
    pub loss: Tensor<1>,
    /// The Bernoulli negative log-likelihood of the pixels.
    pub reconstruction: Tensor<1>,
    /// The KL divergence of `q(z | x)` to the uniform prior over the `K` codes, summed over the
    /// 49 cells.
    pub kl: Tensor<1>,
}

impl DiscreteVae {
    /// Number of codes `K`.
    pub fn codes(&self) -> usize {
        self.to_logits.weight.dims()[0]
    }

    /// Optimizer steps done.
    pub fn step(&self) -> u64 {
        self.step.val().into_scalar::<f32>() as u64
    }

    /// The model after one more optimizer step (the counter only).
    pub fn advance(mut self) -> Self {
        self.step = self.step.map(|step| step.add_scalar(1.0));
        self
    }

    /// The temperature of the next step: the learned one, or the schedule's at [`step`](Self::step).
    pub fn tau(&self) -> f64 {
        match self.gumbel.learned_tau() {
            Some(tau) => tau.into_scalar::<f32>() as f64,
            None => self.schedule.tau(self.step()),
        }
    }

    /// The same model with soft codes (`hard = false`), for the soft evaluation.
    pub fn with_soft_codes(mut self) -> Self {
        self.gumbel.hard = false;
        self.gumbel.estimator = Estimator::StraightThrough;
        self
    }

    /// The logits of the codes.
    ///
    /// # Shapes
    /// - images: `[batch, 1, 28, 28]`
    /// - output: `[batch, K, 7, 7]`
    pub fn encode(&self, images: Tensor<4>) -> Tensor<4> {
        let [first, second] = &self.encoder;
        let h = self.relu.forward(first.forward(images)); // [batch, c, 14, 14]
        let h = self.relu.forward(second.forward(h)); // [batch, 2c, 7, 7]
        self.to_logits.forward(h) // [batch, K, 7, 7]
    }

    /// The logits of the pixels decoded from codes.
    ///
    /// # Shapes
    /// - codes: `[batch, K, 7, 7]`
    /// - output: `[batch, 1, 28, 28]`
    pub fn decode(&self, codes: Tensor<4>) -> Tensor<4> {
        let [first, second] = &self.decoder;
        let h = self.relu.forward(self.from_codes.forward(codes)); // [batch, 2c, 7, 7]
        let h = self.relu.forward(first.forward(h)); // [batch, c, 14, 14]
        second.forward(h) // [batch, 1, 28, 28]
    }

    /// Encodes, samples the codes at the temperature [`tau`](Self::tau) (one per cell, over the
    /// channel axis) and decodes.
    ///
    /// # Shapes
    /// - images: `[batch, 1, 28, 28]`
    pub fn forward(&self, images: Tensor<4>) -> Forward {
        let device = images.device();
        let logits = self.encode(images);
        let (codes, tau) = match self.gumbel.learned_tau() {
            Some(tau) => (self.gumbel.forward(logits.clone()), tau.detach()),
            None => {
                let tau = self.schedule.tau(self.step());
                let codes = self.gumbel.forward_with_tau(logits.clone(), tau);
                (codes, Tensor::from_floats([tau as f32], &device))
            }
        }; // [batch, K, 7, 7], [1]
        Forward {
            pixel_logits: self.decode(codes.clone()),
            codes,
            logits,
            tau,
        }
    }
}

/// The negative ELBO of a batch, in nats per image (batch means):
///
/// `Σ_pixels [softplus(l) − l·x]` (Bernoulli negative log-likelihood with logits `l`)
/// `+ Σ_cells Σ_k q_k (ln q_k + ln K)` (KL to the uniform prior, `q = softmax` over the channels).
///
/// # Shapes
/// - images: `[batch, 1, 28, 28]`, binary
pub fn negative_elbo(images: Tensor<4>, forward: &Forward) -> Elbo {
    let [batch, k, _, _] = forward.logits.dims();
    let l = forward.pixel_logits.clone();
    let reconstruction = (softplus(l.clone(), 1.0) - l * images)
        .reshape([batch as i32, -1]) // [batch, 784]
        .sum_dim(1)
        .mean(); // [1]
    let log_q = log_softmax(forward.logits.clone(), 1); // [batch, K, 7, 7]
    let kl = (log_q.clone().exp() * log_q.add_scalar((k as f64).ln()))
        .reshape([batch as i32, -1]) // [batch, K · 49]
        .sum_dim(1)
        .mean(); // [1]
    Elbo {
        loss: reconstruction.clone() + kl.clone(),
        reconstruction,
        kl,
    }
}

/// The perplexity of code usage in a batch, `exp(−Σ_k p̄_k ln p̄_k)` with `p̄` the codes averaged
/// over the images and cells: from 1 (one code used everywhere) to `K` (all used equally).
///
/// # Shapes
/// - codes: `[batch, K, 7, 7]`
/// - output: `[1]`
pub fn code_perplexity(codes: Tensor<4>) -> Tensor<1> {
    let [_, k, _, _] = codes.dims();
    let usage = codes
        .swap_dims(0, 1) // [K, batch, 7, 7]
        .reshape([k as i32, -1]) // [K, batch · 49]
        .mean_dim(1)
        .reshape([k]); // [K]
    let entropy = -(usage.clone() * usage.clamp_min(1e-30).log()).sum(); // [1]
    entropy.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference device (flex where it is built): these tests check the model's shapes and
    /// arithmetic, not a backend, and two of them at once on lavapipe can deadlock in cubecl's
    /// device handle (`Client::exclusive` against a blocking read; seen 2026-12-04).
    fn device() -> Device {
        burn_gumbel_support::reference_device()
    }

    #[test]
    fn shapes_follow_the_configuration() {
        let model = DiscreteVaeConfig::new()
            .with_codes(5)
            .with_channels(3)
            .init(&device());
        let out = model.forward(Tensor::zeros([2, 1, 28, 28], &device()));
        assert_eq!(out.logits.dims(), [2, 5, GRID, GRID]);
        assert_eq!(out.codes.dims(), [2, 5, GRID, GRID]);
        assert_eq!(out.pixel_logits.dims(), [2, 1, 28, 28]);
        assert_eq!(model.codes(), 5);
    }

    #[test]
    fn hard_codes_are_one_hot_over_the_channels() {
        let model = DiscreteVaeConfig::new().with_codes(6).init(&device());
        let out = model.forward(Tensor::random(
            [3, 1, 28, 28],
            burn::tensor::Distribution::Default,
            &device(),
        ));
        let codes = out.codes.into_data().try_to_vec::<f32>().unwrap();
        // [3, 6, 7, 7]: for each image and cell, the 6 values are 0 or 1 and sum to 1.
        for image in 0..3 {
            for cell in 0..49 {
                let column: Vec<f32> = (0..6).map(|c| codes[(image * 6 + c) * 49 + cell]).collect();
                assert!(column.iter().all(|&v| v == 0.0 || v == 1.0), "{column:?}");
                assert_eq!(column.iter().sum::<f32>(), 1.0, "{column:?}");
            }
        }
    }

    #[test]
    fn elbo_terms_match_their_closed_forms() {
        // Pixel logits 0: each pixel costs ln 2 whatever it is. Logits of the codes 0: q is
        // uniform and the KL is 0. Tolerances: f32 sums of 784 (or 196) terms near 1, whose
        // rounding stays below 1e-4; 1e-3 leaves room and still catches a missing term.
        let d = device();
        let forward = Forward {
            logits: Tensor::zeros([2, 4, GRID, GRID], &d),
            codes: Tensor::zeros([2, 4, GRID, GRID], &d),
            pixel_logits: Tensor::zeros([2, 1, 28, 28], &d),
            tau: Tensor::ones([1], &d),
        };
        let elbo = negative_elbo(Tensor::ones([2, 1, 28, 28], &d), &forward);
        let reconstruction = elbo.reconstruction.into_scalar::<f32>() as f64;
        assert!(
            (reconstruction - 784.0 * 2f64.ln()).abs() < 1e-3,
            "{reconstruction}"
        );
        assert!(elbo.kl.into_scalar::<f32>().abs() < 1e-5);
        // A code certain at every cell (logit 30 against 0): KL = 49 · ln K per image.
        let logits = Tensor::<4>::zeros([2, 4, GRID, GRID], &d).slice_assign(
            [0..2, 0..1, 0..GRID, 0..GRID],
            Tensor::full([2, 1, GRID, GRID], 30.0, &d),
        );
        let certain = Forward { logits, ..forward };
        let kl = negative_elbo(Tensor::ones([2, 1, 28, 28], &d), &certain).kl;
        let kl = kl.into_scalar::<f32>() as f64;
        assert!((kl - 49.0 * 4f64.ln()).abs() < 1e-3, "{kl}");
    }

    #[test]
    fn perplexity_counts_the_codes_in_use() {
        let d = device();
        // Every cell uses code 2 of 8: perplexity 1 (exact but for the f32 logarithm and
        // exponential: 1e-5).
        let one = Tensor::<4>::zeros([2, 8, GRID, GRID], &d).slice_assign(
            [0..2, 2..3, 0..GRID, 0..GRID],
            Tensor::ones([2, 1, GRID, GRID], &d),
        );
        assert!((code_perplexity(one).into_scalar::<f32>() - 1.0).abs() < 1e-5);
        // Image 0 uses code 1, image 1 uses code 5, everywhere: two codes equally, perplexity 2.
        let two = Tensor::<4>::zeros([2, 8, GRID, GRID], &d)
            .slice_assign(
                [0..1, 1..2, 0..GRID, 0..GRID],
                Tensor::ones([1, 1, GRID, GRID], &d),
            )
            .slice_assign(
                [1..2, 5..6, 0..GRID, 0..GRID],
                Tensor::ones([1, 1, GRID, GRID], &d),
            );
        assert!((code_perplexity(two).into_scalar::<f32>() - 2.0).abs() < 1e-5);
    }

    #[test]
    fn the_step_counter_drives_the_annealing() {
        let schedule = TemperatureSchedule::exponential(1.0, 0.1, 0.5, 2);
        let model = DiscreteVaeConfig::new()
            .with_schedule(schedule)
            .init(&device());
        assert_eq!((model.step(), model.tau()), (0, 1.0));
        let model = model.advance().advance();
        assert_eq!(model.step(), 2);
        assert!((model.tau() - (-0.2f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn dall_e_sized_codebooks_fit() {
        let model = DiscreteVaeConfig::new()
            .with_codes(MAX_CODES)
            .with_channels(2)
            .init(&device());
        let out = model.forward(Tensor::zeros([1, 1, 28, 28], &device()));
        assert_eq!(out.codes.dims(), [1, MAX_CODES, GRID, GRID]);
        assert_eq!(out.codes.sum().into_scalar::<f32>(), 49.0); // one code per cell
    }

    #[test]
    fn a_learned_temperature_is_used_and_trained() {
        let device = device().autodiff();
        let mut model = DiscreteVaeConfig::new()
            .with_codes(4)
            .with_channels(2)
            .with_hard(false)
            .with_learnable_tau(true)
            .with_schedule(TemperatureSchedule::constant(2.0))
            .init(&device);
        assert!((model.tau() - 2.0).abs() < 1e-6);
        // A random init of a decoder this narrow can leave every pre-activation of a ReLU layer
        // negative, which cuts all paths from the codes to the loss and makes the gradient
        // exactly 0 (the test failed that way, seldom, unseeded). Non-negative weights and biases
        // of at least 0.1 before the two ReLUs, on non-negative inputs (the codes, then the first
        // ReLU's output), make every pre-activation at least 0.1: both stay open, and the test
        // checks the temperature's path and not the init's luck.
        let open = |conv: &mut Param<Tensor<4>>, bias: &mut Option<Param<Tensor<1>>>| {
            *conv = conv.clone().map(|w| w.abs());
            *bias = bias.take().map(|b| b.map(|b| b.abs().add_scalar(0.1)));
        };
        open(&mut model.from_codes.weight, &mut model.from_codes.bias);
        open(&mut model.decoder[0].weight, &mut model.decoder[0].bias);
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let elbo = negative_elbo(images.clone(), &model.forward(images));
        let grads = elbo.loss.backward();
        let log_tau = model.gumbel.log_tau.as_ref().unwrap().val();
        let grad = log_tau.grad(&grads).expect("ln tau has a gradient");
        let grad = grad.into_scalar::<f32>();
        assert!(
            grad.is_finite() && grad != 0.0,
            "d loss / d ln tau = {grad}"
        );
    }

    #[test]
    fn bad_settings_name_their_flag() {
        let error = |config: DiscreteVaeConfig| config.validate().unwrap_err().to_string();
        assert_eq!(
            error(DiscreteVaeConfig::new().with_codes(8193)),
            "--codes: must be in 2..=8192, got 8193"
        );
        assert_eq!(
            error(
                DiscreteVaeConfig::new()
                    .with_hard(false)
                    .with_estimator(Estimator::GumbelRao { samples: 4 })
            ),
            "--estimator: the estimator gumbel-rao:4 is for hard (one-hot) samples: set hard = true, \
             got hard = false"
        );
        // The schedule's floor, 0.5, is the lowest temperature the run would use.
        assert_eq!(
            error(DiscreteVaeConfig::new().with_estimator(Estimator::ReinMax)),
            "--estimator: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"
        );
    }
}
