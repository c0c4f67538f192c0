//! Pictures of a trained VAE: reconstructions, samples from the prior, the ELBO curves.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnist_run::pictures::{save_pairs, save_plot, save_png, tile};
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::metrics::EpochMetrics;
use crate::model::CategoricalVae;
use mnist_run::Error;
use mnist_run::data::{Binarize, Images, batch_tensor, binarize};

/// Writes a PNG of `n` test digits (odd rows) above their reconstructions (even rows), decoded
/// from a hard one-hot sample of `q(z | x)`; pixels are the Bernoulli means.
///
/// # Errors
/// An unwritable `path`.
pub fn reconstructions(
    model: &CategoricalVae,
    test: &Images,
    n: usize,
    tau: f64,
    device: &Device,
    path: &Path,
) -> Result<(), Error> {
    let columns = 16;
    let n = n.min(test.len()).div_ceil(columns) * columns;
    let indices: Vec<usize> = (0..n.min(test.len())).collect();
    let mut rng = StdRng::seed_from_u64(0); // unused by threshold binarization
    let originals = binarize(test, &indices, Binarize::Threshold, &mut rng);
    let x = batch_tensor(originals.clone(), device); // [n, 784]
    let means = sigmoid(model.forward_sampled(x, tau, true).pixel_logits);
    let means = means.into_data().try_into_vec_as::<f32>().unwrap();
    save_pairs(&originals, &means, columns, path)
}

/// Writes a PNG of `rows × 10` digits decoded from codes drawn from the uniform prior: each of
/// the `N` latent variables takes a uniformly random class (a one-hot) drawn from `seed`, the
/// pixels are the decoder's Bernoulli means.
///
/// # Errors
/// An unwritable `path`.
pub fn prior_samples(
    model: &CategoricalVae,
    rows: usize,
    seed: u64,
    device: &Device,
    path: &Path,
) -> Result<(), Error> {
    let n = rows * 10;
    let (latent, k) = (model.n_latent(), model.n_categories());
    let mut rng = StdRng::seed_from_u64(seed);
    let classes: Vec<i64> = (0..n * latent)
        .map(|_| rng.random_range(0..k as i64))
        .collect();
    let classes = Tensor::<3, Int>::from_data(TensorData::new(classes, [n, latent, 1]), device); // [n, n_latent, 1]
    let ones = Tensor::<3>::ones([n, latent, 1], device);
    let codes = Tensor::<3>::zeros([n, latent, k], device).scatter(
        2,
        classes,
        ones,
        burn::tensor::IndexingUpdateOp::Assign,
    ); // [n, n_latent, n_categories], one-hot rows
    let means = sigmoid(model.decode(codes))
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    save_png(&tile(&means, 10), path)
}

/// Writes a PNG plot of the negative ELBO per epoch: training (soft), test soft and test hard.
///
/// # Errors
/// An unwritable `path`; a history without an epoch or with a value that is not finite (there
/// is no range to plot).
pub fn elbo_curves(history: &[EpochMetrics], path: &Path) -> Result<(), Error> {
    let finite = history.iter().all(|m| {
        [m.train_nelbo, m.test.nelbo_soft, m.test.nelbo_hard]
            .iter()
            .all(|v| v.is_finite())
    });
    if history.is_empty() || !finite {
        return Err(Error::file(
            path,
            "cannot draw the plot: the history needs at least one epoch of finite values",
        ));
    }
    save_plot(path, |root| {
        let curve = |value: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
            history.iter().map(|m| (m.epoch as f64, value(m))).collect()
        };
        let series = [
            ("train (soft)", curve(|m| m.train_nelbo), BLUE),
            ("test, soft", curve(|m| m.test.nelbo_soft), GREEN),
            ("test, hard", curve(|m| m.test.nelbo_hard), RED),
        ];
        let values = series.iter().flat_map(|(_, s, _)| s.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let margin = ((hi - lo) * 0.05).max(1.0);
        let last = history.last().map_or(1.0, |m| m.epoch as f64).max(2.0);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Categorical VAE on binarized MNIST: negative ELBO",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..last, (lo - margin)..(hi + margin))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("negative ELBO (nats)")
            .draw()?;
        for (name, points, color) in series {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Writes the three pictures of a run into `out_dir`: `reconstructions.png` (64 test digits, hard
/// samples at `tau`), `samples.png` (100 digits from the prior, codes drawn from `seed`) and
/// `elbo.png` (the curves of `history`; not drawn for a history without an epoch). Returns the
/// names of the files written.
///
/// # Errors
/// An unwritable file, named.
pub fn write_pictures(
    model: &CategoricalVae,
    test: &Images,
    history: &[EpochMetrics],
    tau: f64,
    seed: u64,
    device: &Device,
    out_dir: &Path,
) -> Result<Vec<&'static str>, Error> {
    reconstructions(
        model,
        test,
        64,
        tau,
        device,
        &out_dir.join("reconstructions.png"),
    )?;
    prior_samples(model, 10, seed, device, &out_dir.join("samples.png"))?;
    if history.is_empty() {
        return Ok(vec!["reconstructions.png", "samples.png"]);
    }
    elbo_curves(history, &out_dir.join("elbo.png"))?;
    Ok(vec!["reconstructions.png", "samples.png", "elbo.png"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elbo_plot_of_an_empty_history_is_an_error_not_a_hang() {
        let path = std::env::temp_dir().join(format!("vae-empty-{}.png", std::process::id()));
        let error = elbo_curves(&[], &path).unwrap_err().to_string();
        assert!(error.ends_with("the history needs at least one epoch of finite values"));
        assert!(!path.exists());
    }

    #[test]
    fn elbo_plot_is_a_png_with_labels() {
        use crate::evaluation::Evaluation;
        let test = Evaluation {
            nelbo_soft: 150.0,
            nelbo_hard: 160.0,
            reconstruction_soft: 140.0,
            reconstruction_hard: 150.0,
            kl: 10.0,
        };
        let history: Vec<EpochMetrics> = (1..=3)
            .map(|epoch| EpochMetrics {
                epoch,
                step: 100 * epoch as u64,
                tau: 1.0,
                train_nelbo: 200.0 / epoch as f64,
                test,
                seconds: 1.0,
                steps_per_second: 100.0,
            })
            .collect();
        let path = std::env::temp_dir().join(format!("bg-elbo-{}.png", std::process::id()));
        elbo_curves(&history, &path).unwrap();
        let image = image::open(&path).unwrap().to_luma8();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(image.dimensions(), (800, 500));
        // Text and curves put dark pixels on the white background.
        assert!(image.pixels().filter(|p| p.0[0] < 100).count() > 1000);
    }
}
