//! The images of a split and the two splits of MNIST.

/// Pixels per image: 28 × 28.
pub const PIXELS: usize = 28 * 28;
/// Image side.
pub const SIDE: usize = 28;

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
