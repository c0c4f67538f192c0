//! Evaluation: the test negative ELBO of a model with soft and with hard samples.

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::TrainingConfig;
use crate::model::{CategoricalVae, negative_elbo};
use mnist_run::data::{Images, batch_tensor, binarize};

/// Seed of the evaluation noise: fixed, so that evaluations compare across epochs and reloads.
const EVAL_SEED: u64 = 0x5EED;

/// A test-set evaluation: one sample per image, batch means in nats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Negative ELBO with soft samples at the current temperature.
    pub nelbo_soft: f64,
    /// Negative ELBO with hard one-hot samples (as the paper evaluates).
    pub nelbo_hard: f64,
    /// Reconstruction term with soft samples.
    pub reconstruction_soft: f64,
    /// Reconstruction term with hard samples.
    pub reconstruction_hard: f64,
    /// KL term (the same for both: it depends on `q(z | x)` only).
    pub kl: f64,
}

/// The negative ELBO of `images` under `model`, with soft and with hard samples.
///
/// The noise is seeded with a fixed seed, so the same model gives the same numbers. Test images
/// are binarized at 127, or for dynamic binarization drawn once from a fixed seed.
pub fn evaluate(
    model: &CategoricalVae,
    images: &Images,
    config: &TrainingConfig,
    tau: f64,
    device: &Device,
) -> Evaluation {
    device.seed(EVAL_SEED);
    let mut rng = StdRng::seed_from_u64(EVAL_SEED);
    let batch = 500;
    let (mut soft, mut hard, mut rec_soft, mut rec_hard, mut kl) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let indices: Vec<usize> = (0..images.len()).collect();
    for chunk in indices.chunks(batch) {
        let x = batch_tensor(binarize(images, chunk, config.binarize, &mut rng), device);
        let weight = chunk.len() as f64 / images.len() as f64;
        let read = |t: Tensor<1>| f64::from(t.into_scalar::<f32>()) * weight;
        let e_soft = negative_elbo(x.clone(), &model.forward_sampled(x.clone(), tau, false));
        let e_hard = negative_elbo(x.clone(), &model.forward_sampled(x, tau, true));
        soft += read(e_soft.loss);
        rec_soft += read(e_soft.reconstruction);
        kl += read(e_soft.kl);
        hard += read(e_hard.loss);
        rec_hard += read(e_hard.reconstruction);
    }
    Evaluation {
        nelbo_soft: soft,
        nelbo_hard: hard,
        reconstruction_soft: rec_soft,
        reconstruction_hard: rec_hard,
        kl,
    }
}
