//! Pictures of a run: grids of digits, digits above their reconstructions, and plots with an
//! embedded font, each written as a PNG atomically and durably ([`crate::files`]).

use std::path::Path;

use image::{GrayImage, Luma};
use plotters::prelude::*;

use crate::data::{PIXELS, SIDE};
use crate::error::Error;
use crate::files::write_atomic;

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
}
