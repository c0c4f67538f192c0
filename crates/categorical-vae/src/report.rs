//! Pictures of a trained VAE: reconstructions, samples from the prior, the ELBO curves.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use image::{GrayImage, Luma};
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::{Binarize, Images, PIXELS, SIDE, batch_tensor, binarize};
use crate::error::Error;
use crate::files::write_atomic;
use crate::metrics::EpochMetrics;
use crate::model::CategoricalVae;

/// DejaVu Sans (see `assets/DejaVuSans-LICENSE`), compiled in so that the plot's labels need no
/// system font.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded DejaVu Sans as plotters' "sans-serif" font, once.
fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font is invalid".to_string())
        })
        .clone()
}

/// Gap between digits in the grids, in pixels.
const GAP: usize = 2;

/// Tiles `images` (each 28 × 28, grey levels in `[0, 1]`) in a grid of `columns`.
pub fn tile(images: &[f32], columns: usize) -> GrayImage {
    let n = images.len() / PIXELS;
    let rows = n.div_ceil(columns);
    let cell = SIDE + GAP;
    let mut grid = GrayImage::from_pixel(
        (columns * cell + GAP) as u32,
        (rows * cell + GAP) as u32,
        Luma([128]),
    );
    for (i, digit) in images.chunks(PIXELS).enumerate() {
        let (x0, y0) = (GAP + (i % columns) * cell, GAP + (i / columns) * cell);
        for (p, &v) in digit.iter().enumerate() {
            let level = (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8; // black ink on white
            grid.put_pixel(
                (x0 + p % SIDE) as u32,
                (y0 + p / SIDE) as u32,
                Luma([level]),
            );
        }
    }
    grid
}

/// Encodes `image` as PNG and writes it atomically and durably.
pub fn save_png<P, C>(image: &image::ImageBuffer<P, C>, path: &Path) -> Result<(), Error>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::file(path, format!("cannot encode the image: {e}")))?;
    write_atomic(path, png.get_ref())
}

/// The drawing area [`save_plot`] hands to its caller: an 800 × 500 RGB bitmap.
pub type PlotArea<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Draws an 800 × 500 plot with `draw` on a white background, with the embedded font registered
/// as "sans-serif", and writes it as a PNG atomically and durably.
///
/// # Errors
/// An error of `draw` (as "cannot draw the plot: …"), or an unwritable `path`.
pub fn save_plot(
    path: &Path,
    draw: impl FnOnce(&PlotArea<'_>) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Error> {
    const SIZE: (u32, u32) = (800, 500);
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        register_font()?;
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| Error::file(path, format!("cannot draw the plot: {e}")))?;
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels).expect("the buffer's size");
    save_png(&image, path)
}

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

/// Writes a PNG of digits above their reconstructions: rows of `columns` digits of `originals`
/// alternate with the rows of `reconstructions` (both 784 grey levels in `[0, 1]` per digit).
///
/// # Errors
/// An unwritable `path`.
pub fn save_pairs(
    originals: &[f32],
    reconstructions: &[f32],
    columns: usize,
    path: &Path,
) -> Result<(), Error> {
    let mut interleaved = Vec::with_capacity(originals.len() + reconstructions.len());
    for (row_in, row_out) in originals
        .chunks(columns * PIXELS)
        .zip(reconstructions.chunks(columns * PIXELS))
    {
        interleaved.extend_from_slice(row_in);
        interleaved.extend_from_slice(row_out);
    }
    save_png(&tile(&interleaved, columns), path)
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
    fn tile_places_digits_in_a_grid() {
        // Three digits, two columns: 2 rows of 30-pixel cells plus the outer gap.
        let mut digits = vec![0.0f32; 3 * PIXELS];
        digits[PIXELS] = 1.0; // first pixel of the second digit is ink
        let grid = tile(&digits, 2);
        assert_eq!(grid.dimensions(), (2 * 30 + 2, 2 * 30 + 2));
        assert_eq!(grid.get_pixel(2, 2).0, [255]); // first digit, blank
        assert_eq!(grid.get_pixel(32, 2).0, [0]); // second digit, ink
        assert_eq!(grid.get_pixel(0, 0).0, [128]); // the gap
    }

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
