//! The categorical VAE and its negative ELBO.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_gumbel::{Estimator, GumbelSoftmax, GumbelSoftmaxConfig, gumbel_softmax};

use crate::defaults;
use mnist_run::Error;
use mnist_run::checks::diverged;
use mnist_run::data::PIXELS;
use mnist_run::elbo::{kl_to_uniform, reconstruction};
use mnist_run::limits::{GIB, MAX_MODEL_BYTES, check_count};

/// Configuration of [`CategoricalVae`]: the paper's architecture by default.
#[derive(Config, Debug, PartialEq)]
pub struct VaeConfig {
    /// Number of categorical latent variables `N`. Default: [`defaults::N_LATENT`].
    #[config(default = "defaults::N_LATENT")]
    pub n_latent: usize,
    /// Number of classes `K` of each latent variable. Default: [`defaults::N_CATEGORIES`].
    #[config(default = "defaults::N_CATEGORIES")]
    pub n_categories: usize,
    /// Width of the first encoder layer (and the last decoder layer). Default:
    /// [`defaults::HIDDEN1`].
    #[config(default = "defaults::HIDDEN1")]
    pub hidden1: usize,
    /// Width of the second encoder layer (and the first decoder layer). Default:
    /// [`defaults::HIDDEN2`].
    #[config(default = "defaults::HIDDEN2")]
    pub hidden2: usize,
    /// Straight-through (one-hot) samples instead of soft ones. Default: false.
    #[config(default = false)]
    pub hard: bool,
    /// The gradient estimator of the one-hot samples (with `hard`). Default:
    /// [`defaults::ESTIMATOR`], straight-through.
    #[config(default = "defaults::ESTIMATOR")]
    pub estimator: Estimator,
}

impl VaeConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A size of 0, a single category (nothing to choose), a size above its bound, or a model
    /// whose training state (weights, gradients, Adam's two moments) would pass
    /// [`MAX_MODEL_BYTES`]; each naming its setting (`model.n_latent`).
    pub fn validate(&self) -> Result<(), Error> {
        let sizes = [
            ("model.n_latent", self.n_latent, 1, 65_536),
            ("model.n_categories", self.n_categories, 2, 65_536),
            ("model.hidden1", self.hidden1, 1, 65_536),
            ("model.hidden2", self.hidden2, 1, 65_536),
        ];
        for (setting, value, min, max) in sizes {
            check_count(setting, value, min, max)?;
        }
        let bytes = self.training_bytes();
        if bytes > MAX_MODEL_BYTES {
            return Err(Error::invalid(
                "model.n_latent",
                format!(
                    "a model of {} × {} categories with hidden layers of {} and {} would need \
                     {:.1} GiB for its weights, gradients and Adam's moments (at most {} GiB)",
                    self.n_latent,
                    self.n_categories,
                    self.hidden1,
                    self.hidden2,
                    bytes as f64 / GIB as f64,
                    MAX_MODEL_BYTES / GIB
                ),
            ));
        }
        // The layer's rules (`Estimator::validate`); the temperature is given per call, and
        // `TrainingConfig::validate` holds the schedule's floor to them.
        self.estimator
            .validate(None, false, self.hard)
            .map_err(|e| Error::invalid("model.estimator", e.to_string()))
    }

    /// The bytes of the model's training state in f32: weights and biases, their gradients and
    /// Adam's two moments.
    pub fn training_bytes(&self) -> u64 {
        let code = (self.n_latent * self.n_categories) as u64;
        let (h1, h2, pixels) = (self.hidden1 as u64, self.hidden2 as u64, PIXELS as u64);
        let layers = [
            (pixels, h1),
            (h1, h2),
            (h2, code),
            (code, h2),
            (h2, h1),
            (h1, pixels),
        ];
        let parameters: u64 = layers.iter().map(|(i, o)| i * o + o).sum();
        parameters * 4 * 4
    }

    /// Initializes the model on `device`.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`validate`](Self::validate)).
    pub fn init(&self, device: &Device) -> CategoricalVae {
        if let Err(error) = self.validate() {
            panic!("VaeConfig::init: {error}");
        }
        let code = self.n_latent * self.n_categories;
        CategoricalVae {
            encoder1: LinearConfig::new(PIXELS, self.hidden1).init(device),
            encoder2: LinearConfig::new(self.hidden1, self.hidden2).init(device),
            encoder_logits: LinearConfig::new(self.hidden2, code).init(device),
            decoder1: LinearConfig::new(code, self.hidden2).init(device),
            decoder2: LinearConfig::new(self.hidden2, self.hidden1).init(device),
            decoder_logits: LinearConfig::new(self.hidden1, PIXELS).init(device),
            gumbel: GumbelSoftmaxConfig::new()
                .with_hard(self.hard)
                .with_estimator(self.estimator)
                .init(device),
            n_latent: self.n_latent,
            n_categories: self.n_categories,
        }
    }
}

/// The categorical VAE of Jang, Gu, Poole 2016, section 4.
///
/// Encoder `784 → 512 → 256 → N·K` (ReLU on the hidden layers, none on the logits), a
/// Gumbel-Softmax sample `z` of the `N` categorical variables, decoder `N·K → 256 → 512 → 784`
/// giving Bernoulli logits for the pixels.
#[derive(Module, Debug)]
pub struct CategoricalVae {
    encoder1: Linear,
    encoder2: Linear,
    encoder_logits: Linear,
    decoder1: Linear,
    decoder2: Linear,
    decoder_logits: Linear,
    gumbel: GumbelSoftmax,
    n_latent: usize,
    n_categories: usize,
}

/// What a forward pass gives.
#[derive(Debug, Clone)]
pub struct VaeOutput {
    /// Encoder logits of `q(z | x)`, `[batch, n_latent, n_categories]`.
    pub logits: Tensor<3>,
    /// Decoder Bernoulli logits of the pixels, `[batch, 784]`.
    pub pixel_logits: Tensor<2>,
}

/// The negative ELBO of a batch and its two terms, each the batch mean, in nats.
#[derive(Debug, Clone)]
pub struct Elbo {
    /// Reconstruction + KL: the loss to minimize, `[1]`.
    pub loss: Tensor<1>,
    /// `-log p(x | z)`, summed over pixels, `[1]`.
    pub reconstruction: Tensor<1>,
    /// `KL(q(z | x) ‖ uniform)`, summed over the latent variables, `[1]`.
    pub kl: Tensor<1>,
}

impl CategoricalVae {
    /// Number of latent variables `N`.
    pub fn n_latent(&self) -> usize {
        self.n_latent
    }

    /// Number of classes `K` per latent variable.
    pub fn n_categories(&self) -> usize {
        self.n_categories
    }

    /// The logits of `q(z | x)`.
    ///
    /// # Shapes
    /// - x: `[batch, 784]`
    /// - output: `[batch, n_latent, n_categories]`
    pub fn encode(&self, x: Tensor<2>) -> Tensor<3> {
        let [batch, _] = x.dims();
        let h = relu(self.encoder1.forward(x));
        let h = relu(self.encoder2.forward(h));
        self.encoder_logits
            .forward(h)
            .reshape([batch, self.n_latent, self.n_categories]) // [batch, n_latent, n_categories]
    }

    /// The Bernoulli logits of the pixels given a code `z`.
    ///
    /// # Shapes
    /// - z: `[batch, n_latent, n_categories]`
    /// - output: `[batch, 784]`
    pub fn decode(&self, z: Tensor<3>) -> Tensor<2> {
        let [batch, n, k] = z.dims();
        let z = z.reshape([batch, n * k]); // [batch, n_latent · n_categories]
        let h = relu(self.decoder1.forward(z));
        let h = relu(self.decoder2.forward(h));
        self.decoder_logits.forward(h)
    }

    /// Encodes, samples with the model's own Gumbel-Softmax layer at temperature `tau`, decodes.
    ///
    /// # Shapes
    /// - x: `[batch, 784]`
    pub fn forward(&self, x: Tensor<2>, tau: f64) -> VaeOutput {
        let logits = self.encode(x);
        let z = match diverged(&logits) {
            true => logits.clone(), // NaN on, to the trainer's divergence check
            false => self.gumbel.forward_with_tau(logits.clone(), tau),
        };
        VaeOutput {
            pixel_logits: self.decode(z),
            logits,
        }
    }

    /// As [`forward`](Self::forward) but with a soft or a hard sample chosen by the caller
    /// (evaluation reports both).
    ///
    /// # Shapes
    /// - x: `[batch, 784]`
    pub fn forward_sampled(&self, x: Tensor<2>, tau: f64, hard: bool) -> VaeOutput {
        let logits = self.encode(x);
        let z = gumbel_softmax(logits.clone(), tau, hard, -1);
        VaeOutput {
            pixel_logits: self.decode(z),
            logits,
        }
    }
}

/// The negative ELBO of a batch, in nats: the batch mean of
///
/// `Σ_pixels [softplus(l) − l·x]` (Bernoulli negative log-likelihood with logits `l`, stable)
/// `+ Σ_latent Σ_k q_k (log q_k + log K)` (KL to the uniform prior, `q = softmax(logits)`): the
/// terms of [`mnist_run::elbo`].
///
/// # Shapes
/// - x: `[batch, 784]`, binary
/// - output: three tensors `[1]`
pub fn negative_elbo(x: Tensor<2>, output: &VaeOutput) -> Elbo {
    let reconstruction = reconstruction(output.pixel_logits.clone(), x); // [1]
    let kl = kl_to_uniform(output.logits.clone(), 2); // [1]
    Elbo {
        loss: reconstruction.clone() + kl.clone(),
        reconstruction,
        kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_configuration() {
        let device = burn_gumbel_support::reference_device();
        let model = VaeConfig::new()
            .with_n_latent(3)
            .with_n_categories(4)
            .init(&device);
        let x = Tensor::<2>::zeros([5, PIXELS], &device);
        let out = model.forward(x, 1.0);
        assert_eq!(out.logits.dims(), [5, 3, 4]);
        assert_eq!(out.pixel_logits.dims(), [5, PIXELS]);
    }

    #[test]
    fn an_estimator_without_hard_samples_is_an_error() {
        let config = VaeConfig::new().with_estimator(Estimator::GumbelRao { samples: 4 });
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "model.estimator: the estimator gumbel-rao:4 is for hard (one-hot) samples: set hard = true, \
             got hard = false"
        );
    }

    #[test]
    fn elbo_terms_match_their_closed_forms() {
        let device = burn_gumbel_support::reference_device();
        // Pixel logits 0: each pixel costs ln 2 whatever x is. Encoder logits 0: q is uniform and
        // the KL is 0.
        let out = VaeOutput {
            logits: Tensor::<3>::zeros([2, 3, 4], &device),
            pixel_logits: Tensor::<2>::zeros([2, PIXELS], &device),
        };
        let x = Tensor::<2>::ones([2, PIXELS], &device);
        let elbo = negative_elbo(x.clone(), &out);
        let recon = elbo.reconstruction.into_scalar::<f32>();
        assert!((recon - PIXELS as f32 * 2f32.ln()).abs() < 1e-2, "{recon}");
        assert!(elbo.kl.into_scalar::<f32>().abs() < 1e-6);

        // A one-hot q with logits (30, 0, 0, 0): KL = log K per latent variable, 3 of them.
        let logits = Tensor::<3>::from_floats([[[30.0, 0.0, 0.0, 0.0]; 3]; 2], &device);
        let out = VaeOutput { logits, ..out };
        let kl = negative_elbo(x, &out).kl.into_scalar::<f32>();
        assert!((kl - 3.0 * 4f32.ln()).abs() < 1e-4, "{kl}");
    }

    #[test]
    fn invalid_sizes_name_their_setting() {
        let error = VaeConfig::new().with_n_latent(1_000_000).validate();
        assert_eq!(
            error.unwrap_err().to_string(),
            "model.n_latent: must be <= 65536, got 1000000"
        );
        let error = VaeConfig::new()
            .with_n_latent(60_000)
            .with_n_categories(60_000)
            .validate();
        assert!(
            error
                .unwrap_err()
                .to_string()
                .starts_with("model.n_latent: a model of 60000 × 60000 categories"),
        );
        let error = VaeConfig::new().with_n_latent(0).validate().unwrap_err();
        assert_eq!(error.to_string(), "model.n_latent: must be >= 1, got 0");
        let error = VaeConfig::new()
            .with_n_categories(1)
            .validate()
            .unwrap_err();
        assert_eq!(error.to_string(), "model.n_categories: must be >= 2, got 1");
    }
}
