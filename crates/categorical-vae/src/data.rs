//! Binarized MNIST: the embedded subset, the IDX files, binarization and batches.
//!
//! The default data set is compiled in: the first 10,000 training and 2,000 test images of MNIST,
//! binarized at `pixel > 127` and bit-packed (`data/mnist-binarized-12k.bin`, 1.2 MB; rebuilt by
//! `scripts/make-embedded-mnist.sh` from the canonical IDX files, whose SHA-256 it checks). Full
//! MNIST is read from the four IDX files, plain or gzipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use flate2::read::GzDecoder;
use rand::Rng;

use crate::error::Error;

/// Pixels per image: 28 × 28.
pub const PIXELS: usize = 28 * 28;
/// Image side.
pub const SIDE: usize = 28;

/// The embedded subset (see the module docs).
static EMBEDDED: &[u8] = include_bytes!("../data/mnist-binarized-12k.bin");
/// Magic bytes of the embedded subset's format.
pub(crate) const EMBEDDED_MAGIC: &[u8; 8] = b"BGMNIST1";

/// The canonical MNIST file names.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The canonical MNIST file names.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The canonical MNIST file names.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The canonical MNIST file names.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// A set of 28 × 28 images with 256 grey levels (0 or 255 when stored binarized) and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    /// Pixels, image after image, row-major: `len = n · 784`.
    pub pixels: Vec<u8>,
    /// Digit labels 0–9, one per image.
    pub labels: Vec<u8>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Whether the images have grey levels other than 0 and 255 (needed by dynamic binarization).
    pub fn has_grey_levels(&self) -> bool {
        self.pixels.iter().any(|&p| p != 0 && p != 255)
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.pixels.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }
}

/// The training and test splits.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    /// Training images.
    pub train: Images,
    /// Test images.
    pub test: Images,
    /// Where the data came from, for the logs.
    pub source: String,
}

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
        let Some(root) = dirs::cache_dir().map(|d| d.join("burn-dataset").join("mnist")) else {
            return Ok(None);
        };
        let (train_dir, test_dir) = (root.join("train"), root.join("test"));
        if find(&train_dir, TRAIN_IMAGES).is_none() || find(&test_dir, TEST_IMAGES).is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            train: read_split(&train_dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: read_split(&test_dir, TEST_IMAGES, TEST_LABELS)?,
            source: format!("MNIST IDX files in Burn's cache {}", root.display()),
        }))
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

/// `dir/name`, else `dir/name.gz`, if either exists.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    [plain, gz].into_iter().find(|p| p.is_file())
}

fn read_split(dir: &Path, images: &str, labels: &str) -> Result<Images, Error> {
    let (image_path, pixels, [n, rows, cols]) = read_idx::<3>(dir, images, 0x0000_0803)?;
    if rows != SIDE || cols != SIDE {
        return Err(Error::data(
            &image_path,
            format!("expected 28 x 28 images, got {rows} x {cols}"),
        ));
    }
    let (label_path, labels, [n_labels]) = read_idx::<1>(dir, labels, 0x0000_0801)?;
    if n_labels != n {
        return Err(Error::data(
            &label_path,
            format!(
                "{n_labels} labels for {n} images in {}",
                image_path.display()
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(Error::data(
            &label_path,
            format!("label {bad} is not a digit"),
        ));
    }
    Ok(Images { pixels, labels })
}

/// Reads an IDX file of unsigned bytes with `D` dimensions: `(path, payload, dims)`.
fn read_idx<const D: usize>(
    dir: &Path,
    name: &str,
    magic: u32,
) -> Result<(PathBuf, Vec<u8>, [usize; D]), Error> {
    let path = find(dir, name).ok_or_else(|| {
        Error::data(
            &dir.join(name),
            format!("missing (also tried {name}.gz); see scripts/fetch-mnist.sh"),
        )
    })?;
    let mut bytes = Vec::new();
    let read = File::open(&path).and_then(|mut file| {
        if path.extension().is_some_and(|e| e == "gz") {
            GzDecoder::new(file).read_to_end(&mut bytes)
        } else {
            file.read_to_end(&mut bytes)
        }
    });
    read.map_err(|e| Error::data(&path, e.to_string()))?;
    let (dims, payload) = parse_idx::<D>(&bytes, magic).map_err(|m| Error::data(&path, m))?;
    Ok((path, payload.to_vec(), dims))
}

/// Parses an IDX byte buffer: big-endian magic `0x0000_08_0D` (unsigned bytes, D dimensions),
/// D big-endian u32 sizes, then the payload.
pub(crate) fn parse_idx<const D: usize>(
    bytes: &[u8],
    magic: u32,
) -> Result<([usize; D], &[u8]), String> {
    let header = 4 + 4 * D;
    if bytes.len() < header {
        return Err(format!(
            "truncated: {} bytes, shorter than the {header}-byte header",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    if word(0) != magic {
        return Err(format!(
            "wrong magic number 0x{:08x}, expected 0x{magic:08x}",
            word(0)
        ));
    }
    let mut dims = [0usize; D];
    for (d, dim) in dims.iter_mut().enumerate() {
        *dim = word(d + 1) as usize;
    }
    let expected = dims.iter().product::<usize>();
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(format!(
            "truncated or oversized: {} bytes of data, expected {expected} for dimensions {dims:?}",
            payload.len()
        ));
    }
    Ok((dims, payload))
}

/// Parses the embedded subset: magic, four little-endian u32 (train, test, rows, cols), the labels,
/// then 784 bits per image, most significant bit first.
pub(crate) fn parse_embedded(bytes: &[u8]) -> Result<Mnist, String> {
    if bytes.len() < 24 || &bytes[..8] != EMBEDDED_MAGIC {
        return Err("not a burn-gumbel MNIST subset (bad magic)".into());
    }
    let word =
        |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
    let (n_train, n_test, rows, cols) = (word(0), word(1), word(2), word(3));
    if rows != SIDE || cols != SIDE {
        return Err(format!("expected 28 x 28 images, got {rows} x {cols}"));
    }
    let n = n_train + n_test;
    let packed = PIXELS / 8;
    if bytes.len() != 24 + n + n * packed {
        return Err(format!("truncated: {} bytes for {n} images", bytes.len()));
    }
    let labels = &bytes[24..24 + n];
    let bits = &bytes[24 + n..];
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for byte in bits {
        pixels.extend(
            (0..8)
                .rev()
                .map(|b| if byte >> b & 1 == 1 { 255u8 } else { 0 }),
        );
    }
    let split = |range: std::ops::Range<usize>| Images {
        pixels: pixels[range.start * PIXELS..range.end * PIXELS].to_vec(),
        labels: labels[range].to_vec(),
    };
    Ok(Mnist {
        train: split(0..n_train),
        test: split(n_train..n),
        source: "embedded MNIST subset, binarized at > 127".to_string(),
    })
}

/// Writes the embedded format for the first `n_train` and `n_test` images of `mnist`,
/// binarized at `pixel > 127`.
pub fn write_embedded(mnist: &Mnist, n_train: usize, n_test: usize) -> Vec<u8> {
    let train = mnist.train.clone().truncate(n_train);
    let test = mnist.test.clone().truncate(n_test);
    let mut out = EMBEDDED_MAGIC.to_vec();
    for word in [train.len(), test.len(), SIDE, SIDE] {
        out.extend((word as u32).to_le_bytes());
    }
    out.extend(&train.labels);
    out.extend(&test.labels);
    for chunk in train.pixels.chunks(8).chain(test.pixels.chunks(8)) {
        out.push(
            chunk
                .iter()
                .fold(0u8, |acc, &p| acc << 1 | u8::from(p > 127)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(payload);
        out
    }

    #[test]
    fn embedded_subset_has_the_documented_size() {
        let mnist = Mnist::embedded();
        assert_eq!((mnist.train.len(), mnist.test.len()), (10_000, 2_000));
        assert!(!mnist.train.has_grey_levels());
        // Digits all appear, and MNIST images are mostly background: 10% to 25% of pixels on.
        for digit in 0..10u8 {
            assert!(mnist.train.labels.contains(&digit));
        }
        let on = mnist.train.pixels.iter().filter(|&&p| p == 255).count() as f64;
        let fraction = on / mnist.train.pixels.len() as f64;
        assert!(
            (0.10..0.25).contains(&fraction),
            "fraction of pixels on: {fraction}"
        );
    }

    #[test]
    fn embedded_format_round_trips() {
        let grey: Vec<u8> = (0..3 * PIXELS).map(|i| (i * 37 % 256) as u8).collect();
        let mnist = Mnist {
            train: Images {
                pixels: grey[..2 * PIXELS].to_vec(),
                labels: vec![3, 7],
            },
            test: Images {
                pixels: grey[2 * PIXELS..].to_vec(),
                labels: vec![9],
            },
            source: String::new(),
        };
        let back = parse_embedded(&write_embedded(&mnist, 2, 1)).unwrap();
        assert_eq!(back.train.labels, vec![3, 7]);
        assert_eq!(back.test.labels, vec![9]);
        let thresholded: Vec<u8> = grey
            .iter()
            .map(|&p| if p > 127 { 255 } else { 0 })
            .collect();
        assert_eq!(back.train.pixels, thresholded[..2 * PIXELS]);
        assert_eq!(back.test.pixels, thresholded[2 * PIXELS..]);
    }

    #[test]
    fn idx_parsing_checks_magic_and_length() {
        let ok = idx_bytes(0x0801, &[3], &[1, 2, 3]);
        assert_eq!(
            parse_idx::<1>(&ok, 0x0801).unwrap(),
            ([3], &[1u8, 2, 3][..])
        );
        let err = parse_idx::<1>(&ok, 0x0803).unwrap_err();
        assert_eq!(err, "wrong magic number 0x00000801, expected 0x00000803");
        let truncated = idx_bytes(0x0801, &[4], &[1, 2, 3]);
        assert!(
            parse_idx::<1>(&truncated, 0x0801)
                .unwrap_err()
                .starts_with("truncated")
        );
        assert!(
            parse_idx::<1>(&[0, 0], 0x0801)
                .unwrap_err()
                .starts_with("truncated: 2 bytes")
        );
    }

    #[test]
    fn idx_dir_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("bg-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("train-images-idx3-ubyte: missing"),
            "{error}"
        );

        std::fs::write(
            dir.join(TRAIN_IMAGES),
            idx_bytes(0x0803, &[2, 28, 28], &[0; 100]),
        )
        .unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("train-images-idx3-ubyte: truncated"),
            "{error}"
        );

        std::fs::write(
            dir.join(TRAIN_IMAGES),
            idx_bytes(0x0801, &[2, 28, 28], &[0; 1568]),
        )
        .unwrap();
        let error = Mnist::from_idx_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("wrong magic"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzipped_idx_files_are_read() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("bg-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write_gz = |name: &str, bytes: Vec<u8>| {
            let file = File::create(dir.join(format!("{name}.gz"))).unwrap();
            let mut gz = GzEncoder::new(file, Compression::fast());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        };
        let pixels: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 256) as u8).collect();
        write_gz(TRAIN_IMAGES, idx_bytes(0x0803, &[2, 28, 28], &pixels));
        write_gz(TRAIN_LABELS, idx_bytes(0x0801, &[2], &[4, 2]));
        write_gz(
            TEST_IMAGES,
            idx_bytes(0x0803, &[1, 28, 28], &pixels[..PIXELS]),
        );
        write_gz(TEST_LABELS, idx_bytes(0x0801, &[1], &[5]));
        let mnist = Mnist::from_idx_dir(&dir).unwrap();
        assert_eq!(mnist.train.pixels, pixels);
        assert_eq!(mnist.train.labels, vec![4, 2]);
        assert_eq!(mnist.test.labels, vec![5]);
        assert!(mnist.train.has_grey_levels());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
