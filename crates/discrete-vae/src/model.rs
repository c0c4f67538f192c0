//! The convolutional discrete VAE and its negative ELBO.
//!
//! An encoder of strided convolutions maps a binarized digit `[batch, 1, 28, 28]` to the logits
//! of `K` codes at each cell of a 7 × 7 grid, `[batch, K, 7, 7]`; [`GumbelSoftmax`] samples one
//! code per cell over the channel axis (`dim = 1`, the layout of DALL-E's discrete VAE); a decoder
//! of transposed convolutions maps the codes back to the logits of 784 Bernoulli pixels.

use std::sync::Arc;

use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_gumbel::{Estimator, GumbelSoftmax, GumbelSoftmaxConfig, Key, TemperatureSchedule};
use mnist_run::Error;
use mnist_run::checks::diverged;

use crate::watch::Watch;
use mnist_run::elbo::{kl_to_uniform, reconstruction};
use mnist_run::limits::{MAX_MODEL_BYTES, check_count, schedule_error};

/// Side of the grid of codes: 28 halved twice.
pub const GRID: usize = 7;

/// The most codes `K` a model may have (DALL-E's discrete VAE has 8192).
pub const MAX_CODES: usize = 8192;

/// The most channels of the first convolution.
pub const MAX_CHANNELS: usize = 4096;

/// Configuration of a [`DiscreteVae`], created with [`init`](DiscreteVaeConfig::init).
#[derive(Config, Debug, PartialEq)]
pub struct DiscreteVaeConfig {
    /// Number of codes `K` (channels of the encoder's output), `2..=8192`. Default: 64.
    #[config(default = 64)]
    pub codes: usize,
    /// Channels of the first convolution (the second has twice as many), `1..=4096`. Default: 32.
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
    /// Checks the settings, naming the one that is wrong by its key (`model.codes`).
    ///
    /// # Errors
    /// `codes` outside `2..=8192`, `channels` 0, an invalid schedule, or a combination that
    /// [`GumbelSoftmaxConfig::init`] refuses (an estimator without `hard`, ReinMax below
    /// `tau = 1` or with a learned temperature).
    pub fn validate(&self) -> Result<(), Error> {
        if !(2..=MAX_CODES).contains(&self.codes) {
            return Err(Error::invalid(
                "model.codes",
                format!("must be in 2..={MAX_CODES}, got {}", self.codes),
            ));
        }
        check_count("model.channels", self.channels, 1, MAX_CHANNELS)?;
        let bytes = self.training_bytes();
        if bytes > MAX_MODEL_BYTES {
            return Err(Error::invalid(
                "model.channels",
                format!(
                    "a model of {} channels and {} codes would need {:.1} GiB for its weights, \
                     gradients and Adam's moments (at most {} GiB)",
                    self.channels,
                    self.codes,
                    bytes as f64 / (1u64 << 30) as f64,
                    MAX_MODEL_BYTES >> 30
                ),
            ));
        }
        self.schedule
            .validate()
            .map_err(|e| schedule_error("model.schedule", e))?;
        // The layer's rules, at the schedule's floor.
        let lowest = self.schedule.tau(u64::MAX);
        self.estimator
            .validate(Some(lowest), self.learnable_tau, self.hard)
            .map_err(|e| Error::invalid("model.estimator", e.to_string()))
    }

    /// The bytes of the training state: the weights, their gradients and Adam's two moments, in
    /// f32 (the convolutions' `64 c² + 4 c K + 32 c` weights and their biases).
    pub fn training_bytes(&self) -> u64 {
        let (c, k) = (self.channels as u64, self.codes as u64);
        let weights = 64 * c * c + 4 * c * k + 32 * c + 3 * c + k + 1;
        weights.saturating_mul(4 * 4)
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
            step: Param::initialized(ParamId::new(), step_words(0, device)),
            steps: 0,
            seed: 0,
            schedule: self.schedule,
            watch: None,
        }
    }
}

/// The convolutional discrete VAE: see the [module](self) documentation.
///
/// Besides the weights it carries the number of optimizer steps done: counted on the host (an
/// integer, read by the annealing and the noise keys without reading the device) and mirrored in
/// an integer parameter that is not trained, so that burn-train's checkpoints save it and a
/// resumed run anneals, and draws its noise, from where it stopped. Its noise is keyed
/// ([`DiscreteVae::noise_key`]): the codes of a batch are a function of the run's seed, the step
/// and the batch, whatever ran before in the process.
#[derive(Module, Debug)]
pub struct DiscreteVae {
    encoder: [Conv2d; 2],
    to_logits: Conv2d,
    gumbel: GumbelSoftmax,
    from_codes: Conv2d,
    decoder: [ConvTranspose2d; 2],
    relu: Relu,
    /// The optimizer steps done, as two words `[step >> 31, step & (2³¹ − 1)]` (exact in any
    /// backend's integers, up to 2⁶² steps): the checkpointed mirror of `steps`.
    step: Param<Tensor<1, Int>>,
    #[module(skip)]
    steps: u64,
    #[module(skip)]
    seed: u64,
    #[module(skip)]
    schedule: TemperatureSchedule,
    #[module(skip)]
    watch: Option<Arc<Watch>>,
}

/// The step counter's two words on `device`, `[2]`.
fn step_words(step: u64, device: &Device) -> Tensor<1, Int> {
    let words = [(step >> 31) as i64, (step & 0x7FFF_FFFF) as i64];
    Tensor::from_data(TensorData::new(words.to_vec(), [2]), device)
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
        self.steps
    }

    /// The model after one more optimizer step (the counter only; nothing is read back from the
    /// device).
    pub fn advance(mut self) -> Self {
        self.steps += 1;
        let device = self.step.val().device();
        let words = step_words(self.steps, &device);
        self.step = self.step.map(|_| words);
        self
    }

    /// The model with the host's step counter read from its parameter: once, after loading a
    /// record.
    pub fn with_loaded_step(mut self) -> Self {
        let words = self.step.val().into_data().convert::<i64>();
        let words = words.as_slice::<i64>().expect("i64 words");
        self.steps = ((words[0] as u64) << 31) | words[1] as u64;
        self
    }

    /// The model whose optimizer steps report to `watch` (see [`crate::learner`]).
    pub fn with_watch(mut self, watch: Arc<Watch>) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The watch its optimizer steps report to, if any.
    pub fn watch(&self) -> Option<&Arc<Watch>> {
        self.watch.as_ref()
    }

    /// The model drawing its noise from keys of `seed` ([`noise_key`](Self::noise_key)).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The key of the noise of the batch `batch` (e.g. the index of its first image) at the
    /// current step: `Key::new(seed).fold_in(step).fold_in(batch)`.
    pub fn noise_key(&self, batch: u64) -> Key {
        Key::new(self.seed).fold_in(self.steps).fold_in(batch)
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
        self.sample(images, None)
    }

    /// [`forward`](Self::forward) with the noise of `key`: the same codes for the same key on
    /// every backend and in every process.
    ///
    /// # Shapes
    /// - images: `[batch, 1, 28, 28]`
    pub fn forward_with_key(&self, images: Tensor<4>, key: Key) -> Forward {
        self.sample(images, Some(key))
    }

    fn sample(&self, images: Tensor<4>, key: Option<Key>) -> Forward {
        let device = images.device();
        let logits = self.encode(images);
        let (codes, tau) = match (self.gumbel.learned_tau(), key) {
            // NaN on, to the trainer's divergence check.
            _ if diverged(&logits) => (logits.clone(), Tensor::from_floats([f32::NAN], &device)),
            (Some(tau), None) => (self.gumbel.forward(logits.clone()), tau.detach()),
            (Some(tau), Some(key)) => (
                self.gumbel.forward_with_key(logits.clone(), key),
                tau.detach(),
            ),
            (None, key) => {
                let tau = self.schedule.tau(self.step());
                let codes = match key {
                    Some(key) => self
                        .gumbel
                        .forward_with_key_and_tau(logits.clone(), key, tau),
                    None => self.gumbel.forward_with_tau(logits.clone(), tau),
                };
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
    let reconstruction = reconstruction(forward.pixel_logits.clone(), images); // [1]
    let kl = kl_to_uniform(forward.logits.clone(), 1); // [1]
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
    fn the_step_counter_is_exact_past_f32_and_i32_and_survives_the_record() {
        // f32 stops counting at 2^24 and i32 at 2^31: a count past both, through a record.
        let mut model = DiscreteVaeConfig::new()
            .with_codes(2)
            .with_channels(1)
            .init(&device());
        model.steps = (1 << 40) + 12_345;
        let model = model.advance();
        let fresh = DiscreteVaeConfig::new()
            .with_codes(2)
            .with_channels(1)
            .init(&device());
        let restored = fresh.load_record(model.into_record()).with_loaded_step();
        assert_eq!(restored.step(), (1 << 40) + 12_346);
    }

    #[test]
    fn keyed_codes_depend_on_the_seed_step_and_batch_only() {
        let model = DiscreteVaeConfig::new()
            .with_codes(8)
            .with_channels(2)
            .init(&device())
            .with_seed(3);
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device());
        let codes = |model: &DiscreteVae, batch| {
            let forward = model.forward_with_key(images.clone(), model.noise_key(batch));
            forward.codes.into_data().try_to_vec::<f32>().unwrap()
        };
        // Fresh noise drawn in between does not move the keyed codes.
        let first = codes(&model, 0);
        drop(model.forward(images.clone()));
        assert_eq!(codes(&model, 0), first);
        assert_ne!(codes(&model, 100), first, "another batch");
        let next = model.clone().advance();
        assert_ne!(codes(&next, 0), first, "another step");
        assert_ne!(codes(&model.clone().with_seed(4), 0), first, "another seed");
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
    fn bad_settings_name_their_key() {
        let error = |config: DiscreteVaeConfig| config.validate().unwrap_err().to_string();
        assert_eq!(
            error(DiscreteVaeConfig::new().with_channels(100_000)),
            "model.channels: must be <= 4096, got 100000"
        );
        assert!(
            error(
                DiscreteVaeConfig::new()
                    .with_channels(4096)
                    .with_codes(8192)
            )
            .starts_with("model.channels: a model of 4096 channels and 8192 codes would need ")
        );
        assert_eq!(
            error(DiscreteVaeConfig::new().with_codes(8193)),
            "model.codes: must be in 2..=8192, got 8193"
        );
        assert_eq!(
            error(
                DiscreteVaeConfig::new()
                    .with_hard(false)
                    .with_estimator(Estimator::GumbelRao { samples: 4 })
            ),
            "model.estimator: the estimator gumbel-rao:4 is for hard (one-hot) samples: set hard = true, \
             got hard = false"
        );
        // The schedule's floor, 0.5, is the lowest temperature the run would use.
        assert_eq!(
            error(DiscreteVaeConfig::new().with_estimator(Estimator::ReinMax)),
            "model.estimator: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"
        );
    }
}
