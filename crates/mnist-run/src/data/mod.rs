//! Binarized MNIST: the embedded subset, the IDX files, binarization and batches.
//!
//! The default data set is compiled in: the first 10,000 training and 2,000 test images of MNIST,
//! binarized at `pixel > 127` and bit-packed (`data/mnist-binarized-12k.bin`, 1.2 MB; rebuilt by
//! `scripts/make-embedded-mnist.sh` from the canonical IDX files, whose SHA-256 it checks). Full
//! MNIST is read from the four IDX files, plain or gzipped (`idx.rs`); the embedded format is in
//! `embedded.rs`, the image types in `images.rs`. [`DataSource`] is the programs' one choice of
//! data.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use crate::error::Error;

mod embedded;
mod idx;
mod images;

pub use embedded::write_embedded;
use embedded::{EMBEDDED, parse_embedded};
pub use idx::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use idx::{find, read_split};
pub use images::{Images, Mnist, PIXELS, SIDE};

impl Mnist {
    /// The embedded subset: 10,000 training and 2,000 test images, already binarized.
    pub fn embedded() -> Self {
        parse_embedded(EMBEDDED).expect("the embedded MNIST subset is well formed")
    }

    /// Full MNIST from the four IDX files in `dir` (each plain or with a `.gz` suffix).
    ///
    /// # Errors
    /// A missing, truncated or wrong-magic file, or image and label counts that differ; each
    /// error names the file.
    pub fn from_idx_dir(dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            train: read_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: read_split(dir, TEST_IMAGES, TEST_LABELS)?,
            source: format!("MNIST IDX files in {}", dir.display()),
        })
    }

    /// Full MNIST from Burn's dataset cache, `<cache>/burn-dataset/mnist/{train,test}/`, when the
    /// four files are there.
    ///
    /// # Errors
    /// `Ok(None)` when the cache holds no MNIST; errors as [`Mnist::from_idx_dir`] for a damaged one.
    pub fn from_burn_cache() -> Result<Option<Self>, Error> {
        let Some(root) = burn_cache() else {
            return Ok(None);
        };
        let (train_dir, test_dir) = (root.join("train"), root.join("test"));
        let read = || -> Result<Self, Error> {
            Ok(Self {
                train: read_split(&train_dir, TRAIN_IMAGES, TRAIN_LABELS)?,
                test: read_split(&test_dir, TEST_IMAGES, TEST_LABELS)?,
                source: format!("MNIST IDX files in Burn's cache {}", root.display()),
            })
        };
        read().map(Some).map_err(|error| match error {
            Error::File { path, message } => Error::File {
                path,
                message: format!(
                    "{message} (in Burn's dataset cache: choose the embedded subset or a folder \
                     of MNIST files instead)"
                ),
            },
            other => other,
        })
    }
}

/// Burn's MNIST cache folder, `<cache>/burn-dataset/mnist` (`None` without a cache folder).
fn burn_cache_root() -> Option<PathBuf> {
    Some(dirs::cache_dir()?.join("burn-dataset").join("mnist"))
}

/// [`burn_cache_root`] when it holds the training and test images.
fn burn_cache() -> Option<PathBuf> {
    let root = burn_cache_root()?;
    let found = find(&root.join("train"), TRAIN_IMAGES).is_some()
        && find(&root.join("test"), TEST_IMAGES).is_some();
    found.then_some(root)
}

/// Where a run's images come from. The one place where the programs decide which data to read;
/// recorded in the run's configuration, so that evaluating a run reads the data it was trained
/// on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataSource {
    /// The embedded subset, [`Mnist::embedded`].
    Embedded,
    /// Full MNIST in Burn's dataset cache, [`Mnist::from_burn_cache`].
    BurnCache,
    /// Full MNIST from the IDX files in a folder, [`Mnist::from_idx_dir`].
    Idx(PathBuf),
}

impl DataSource {
    /// The data the flags ask for: `--mnist DIR` if given, the embedded subset with `--embedded`,
    /// and by default Burn's cache when it holds full MNIST, else the embedded subset.
    pub fn choose(mnist: Option<&Path>, embedded: bool) -> Self {
        match mnist {
            Some(dir) => Self::Idx(dir.to_path_buf()),
            None if !embedded && burn_cache().is_some() => Self::BurnCache,
            None => Self::Embedded,
        }
    }

    /// Reads the images.
    ///
    /// # Errors
    /// As [`Mnist::from_idx_dir`]; for [`DataSource::BurnCache`], also a cache that no longer holds
    /// MNIST.
    pub fn load(&self) -> Result<Mnist, Error> {
        match self {
            Self::Embedded => Ok(Mnist::embedded()),
            Self::Idx(dir) => Mnist::from_idx_dir(dir),
            Self::BurnCache => Mnist::from_burn_cache()?.ok_or_else(|| {
                let root = burn_cache_root().unwrap_or_default();
                Error::file(&root, "missing: Burn's cache no longer holds MNIST")
            }),
        }
    }
}

/// How grey levels become binary pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Binarize {
    /// `pixel > 127`, fixed once.
    Threshold,
    /// Each pixel drawn as Bernoulli(pixel / 255) again at every epoch (needs grey levels).
    Dynamic,
}

impl std::str::FromStr for Binarize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "threshold" => Ok(Self::Threshold),
            "dynamic" => Ok(Self::Dynamic),
            other => Err(format!("expected 'threshold' or 'dynamic', got '{other}'")),
        }
    }
}

impl std::fmt::Display for Binarize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Threshold => "threshold",
            Self::Dynamic => "dynamic",
        })
    }
}

/// Binary pixels (0.0 or 1.0) of the images `indices`, as host floats `[indices.len() · 784]`.
///
/// `Threshold` keeps `pixel > 127`; `Dynamic` draws each pixel as Bernoulli(pixel / 255) from
/// `rng` (the caller's seeded generator, so runs and resumes are reproducible).
pub fn binarize(
    images: &Images,
    indices: &[usize],
    mode: Binarize,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * PIXELS);
    for &i in indices {
        let pixels = &images.pixels[i * PIXELS..(i + 1) * PIXELS];
        match mode {
            Binarize::Threshold => out.extend(pixels.iter().map(|&p| f32::from(u8::from(p > 127)))),
            Binarize::Dynamic => out.extend(
                pixels
                    .iter()
                    .map(|&p| f32::from(u8::from(rng.random::<f32>() * 255.0 < f32::from(p)))),
            ),
        }
    }
    out
}

/// A batch of binary images on `device`.
///
/// # Shapes
/// - output: `[batch, 784]`
pub fn batch_tensor(pixels: Vec<f32>, device: &Device) -> Tensor<2> {
    let batch = pixels.len() / PIXELS;
    Tensor::from_data(TensorData::new(pixels, [batch, PIXELS]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dynamic_binarization_has_the_grey_level_as_mean() {
        // One image whose pixels are all 64: each is on with probability 64/255 = 0.251. Over
        // 200 draws of 784 pixels the standard error is sqrt(0.251·0.749/156,800) = 0.0011; five
        // standard errors: 0.0055.
        let images = Images {
            pixels: vec![64; PIXELS],
            labels: vec![0],
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let indices = vec![0usize; 200];
        let bits = binarize(&images, &indices, Binarize::Dynamic, &mut rng);
        let mean = bits.iter().sum::<f32>() as f64 / bits.len() as f64;
        assert!((mean - 64.0 / 255.0).abs() < 0.0055, "mean {mean}");
        let fixed = binarize(&images, &[0], Binarize::Threshold, &mut rng);
        assert!(fixed.iter().all(|&b| b == 0.0));
    }
}
