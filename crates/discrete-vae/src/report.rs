//! Pictures of a trained discrete VAE: reconstructions, digits decoded from random codes, and
//! the histogram of code usage.

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Int, Tensor, TensorData};
use mnist_run::Error;
use mnist_run::pictures::{save_pairs, save_plot, save_png, tile};
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::Digits;
use crate::model::{DiscreteVae, GRID};

/// Writes a PNG of 64 test digits (odd rows) above their reconstructions (even rows), decoded
/// from one-hot codes sampled at the model's temperature; pixels are the Bernoulli means.
///
/// # Errors
/// An unwritable `path`.
pub fn reconstructions(model: &DiscreteVae, test: &Digits, path: &Path) -> Result<(), Error> {
    let columns = 16;
    let model = model.clone().valid();
    let device = model.devices()[0].clone();
    let images = test
        .batches(4 * columns, &device)
        .next()
        .expect("a test set"); // [64, 1, 28, 28]
    let originals = images
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 pixels");
    let means = sigmoid(model.forward(images).pixel_logits) // [64, 1, 28, 28]
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 pixels");
    save_pairs(&originals, &means, columns, path)
}

/// Writes a PNG of 100 digits decoded from random codes: each of the 49 cells takes a code
/// drawn uniformly from the `K` (the prior of the ELBO) with `seed`; pixels are the means.
///
/// # Errors
/// An unwritable `path`.
pub fn prior_samples(model: &DiscreteVae, seed: u64, path: &Path) -> Result<(), Error> {
    let model = model.clone().valid();
    let device = model.devices()[0].clone();
    let (n, k, cells) = (100, model.codes(), GRID * GRID);
    let mut rng = StdRng::seed_from_u64(seed);
    let classes: Vec<i64> = (0..n * cells)
        .map(|_| rng.random_range(0..k as i64))
        .collect();
    let classes =
        Tensor::<4, Int>::from_data(TensorData::new(classes, [n, 1, GRID, GRID]), &device); // [n, 1, 7, 7]
    let codes = Tensor::<4>::zeros([n, k, GRID, GRID], &device).scatter(
        1,
        classes,
        Tensor::ones([n, 1, GRID, GRID], &device),
        burn::tensor::IndexingUpdateOp::Assign,
    ); // [n, K, 7, 7], one-hot over the channels
    let means = sigmoid(model.decode(codes))
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 pixels");
    save_png(&tile(&means, 10), path)
}

/// How often each code is sampled over the cells of `digits` (one-hot codes at the model's
/// temperature, noise from the device's seed), as fractions summing to 1, `[K]`.
pub fn code_usage(model: &DiscreteVae, digits: &Digits, batch_size: usize) -> Vec<f64> {
    let model = model.clone().valid();
    let device = model.devices()[0].clone();
    let k = model.codes();
    let mut counts = vec![0.0f64; k];
    for images in digits.batches(batch_size, &device) {
        let per_code = model
            .forward(images)
            .codes // [b, K, 7, 7]
            .swap_dims(0, 1) // [K, b, 7, 7]
            .reshape([k as i32, -1]) // [K, b · 49]
            .sum_dim(1) // [K, 1]
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 counts");
        for (c, v) in counts.iter_mut().zip(per_code) {
            *c += f64::from(v);
        }
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total.max(1.0)).collect()
}

/// Writes a PNG bar chart of `usage` (fractions per code), codes sorted from the most used,
/// with its perplexity `exp(−Σ p ln p)` in the caption.
///
/// # Errors
/// An unwritable `path`; an empty `usage`.
pub fn usage_histogram(usage: &[f64], path: &Path) -> Result<(), Error> {
    if usage.is_empty() {
        return Err(Error::file(path, "cannot draw the histogram: no codes"));
    }
    let mut sorted = usage.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let perplexity = (-usage
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>())
    .exp();
    let used = usage.iter().filter(|&&p| p > 0.0).count();
    save_plot(path, |root| {
        let top = sorted[0] * 1.05;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Code usage on the test set: {used} of {} codes used, perplexity {perplexity:.1}",
                    usage.len()
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0usize..sorted.len(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("codes, from the most used")
            .y_desc("fraction of the cells")
            .draw()?;
        chart.draw_series(
            sorted
                .iter()
                .enumerate()
                .map(|(i, &p)| Rectangle::new([(i, 0.0), (i + 1, p)], BLUE.mix(0.7).filled())),
        )?;
        Ok(())
    })
}

/// Writes `reconstructions.png`, `samples.png` and `code-usage.png` into `dir`; returns the
/// code usage on `test`.
///
/// # Errors
/// An unwritable file, named.
pub fn write_pictures(
    model: &DiscreteVae,
    test: &Digits,
    seed: u64,
    dir: &Path,
) -> Result<Vec<f64>, Error> {
    reconstructions(model, test, &dir.join("reconstructions.png"))?;
    prior_samples(model, seed, &dir.join("samples.png"))?;
    let device = model.devices()[0].clone();
    device.seed(seed);
    let usage = code_usage(model, test, 500);
    usage_histogram(&usage, &dir.join("code-usage.png"))?;
    Ok(usage)
}
