//! The embedded subset's format: the first 10,000 training and 2,000 test images of MNIST,
//! binarized at `pixel > 127` and bit-packed.

use super::images::{Images, Mnist, PIXELS, SIDE};

/// The embedded subset (see the module docs of `data`).
pub(super) static EMBEDDED: &[u8] = include_bytes!("../../data/mnist-binarized-12k.bin");
/// Magic bytes of the embedded subset's format.
const EMBEDDED_MAGIC: &[u8; 8] = b"BGMNIST1";

/// Parses the embedded subset: magic, four little-endian u32 (train, test, rows, cols), the labels,
/// then 784 bits per image, most significant bit first.
pub(super) fn parse_embedded(bytes: &[u8]) -> Result<Mnist, String> {
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
}
