//! The test evaluation of a trained model: the negative ELBO and its terms with keyed noise,
//! `evaluation.json`, and the baseline of independent pixels.

use std::path::Path;

use burn::data::dataset::Dataset;
use burn::module::Module;
use burn_gumbel::Key;
use mnist_run::Error;
use mnist_run::files::write_atomic;
use serde::{Deserialize, Serialize};

use crate::data::Digits;
use crate::model::{DiscreteVae, negative_elbo};
/// The test negative ELBO and its terms, in nats per image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// With one-hot codes (as the model decodes at test time).
    pub nelbo_hard: f64,
    /// With soft codes at the same temperature.
    pub nelbo_soft: f64,
    /// The reconstruction term with one-hot codes.
    pub reconstruction_hard: f64,
    /// The KL term (the same for both).
    pub kl: f64,
}

/// The negative ELBO of `model` (at its temperature) on `digits`, one sample per image with the
/// noise of keys of `seed` (batch `i` drawn with `Key::new(seed).fold_in(i)`), with hard and
/// with soft codes: the means over the images of the terms of [`negative_elbo`].
pub fn evaluate(model: &DiscreteVae, digits: &Digits, batch_size: usize, seed: u64) -> Evaluation {
    let model = model.clone().valid();
    let [nelbo_hard, reconstruction_hard, kl] = mean_terms(&model, digits, batch_size, seed);
    let [nelbo_soft, _, _] = mean_terms(&model.with_soft_codes(), digits, batch_size, seed);
    Evaluation {
        nelbo_hard,
        nelbo_soft,
        reconstruction_hard,
        kl,
    }
}

/// The negative ELBO, reconstruction and KL of `model` averaged over `digits`.
fn mean_terms(model: &DiscreteVae, digits: &Digits, batch_size: usize, seed: u64) -> [f64; 3] {
    let device = model.devices()[0].clone();
    let mut total = [0.0f64; 3];
    for (i, images) in digits.batches(batch_size, &device).enumerate() {
        let n = images.dims()[0] as f64;
        let key = Key::new(seed).fold_in(i as u64);
        let elbo = negative_elbo(images.clone(), &model.forward_with_key(images, key));
        for (sum, term) in total
            .iter_mut()
            .zip([elbo.loss, elbo.reconstruction, elbo.kl])
        {
            *sum += n * term.into_scalar::<f32>() as f64;
        }
    }
    total.map(|sum| sum / digits.len() as f64)
}

/// Writes `run/evaluation.json`: the optimizer steps, the [`Evaluation`] and the
/// independent-pixel baseline ([`independent_pixels_nll`]).
///
/// # Errors
/// An unwritable file.
pub fn write_evaluation(
    run: &Path,
    steps: u64,
    evaluation: &Evaluation,
    independent_pixels: f64,
) -> Result<(), Error> {
    let json = serde_json::json!({
        "steps": steps,
        "evaluation": evaluation,
        "independent_pixels": independent_pixels,
    });
    let text = serde_json::to_string_pretty(&json).expect("numbers serialize");
    write_atomic(&run.join("evaluation.json"), text.as_bytes())
}

/// The negative log-likelihood, in nats per image, of `test` under the best model of independent
/// pixels fitted to `train`: each pixel Bernoulli with its training frequency (clamped to
/// `[1e-3, 1 − 1e-3]`). What a VAE must beat to have learned anything about shapes.
pub fn independent_pixels_nll(train: &Digits, test: &Digits) -> f64 {
    let pixels = mnist_run::data::PIXELS;
    let mut on = vec![0.0f64; pixels];
    for i in 0..train.len() {
        for (count, &x) in on.iter_mut().zip(&train.get(i).expect("in range").0) {
            *count += f64::from(x);
        }
    }
    let p: Vec<f64> = on
        .iter()
        .map(|&c| (c / train.len() as f64).clamp(1e-3, 1.0 - 1e-3))
        .collect();
    let mut nll = 0.0;
    for i in 0..test.len() {
        for (&p, &x) in p.iter().zip(&test.get(i).expect("in range").0) {
            nll -= if x > 0.5 { p.ln() } else { (1.0 - p).ln() };
        }
    }
    nll / test.len() as f64
}
