//! MNIST for burn-train: a [`Dataset`] of binarized digits and the [`Batcher`] that stacks them.
//!
//! The images come from the dense VAE's data code ([`categorical_vae::data`]): the embedded
//! subset by default, full MNIST from IDX files or Burn's cache; pixels are binarized at
//! `pixel > 127`.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use categorical_vae::data::{Images, PIXELS, SIDE};

/// One binarized digit: 784 values, 0.0 or 1.0.
#[derive(Clone, Debug)]
pub struct Digit(pub Vec<f32>);

/// Binarized digits, shared (cheap to clone).
#[derive(Clone, Debug)]
pub struct Digits {
    images: Arc<Images>,
}

impl Digits {
    /// The digits of `images`.
    pub fn new(images: Images) -> Self {
        Self {
            images: Arc::new(images),
        }
    }
}

impl Digits {
    /// The digits in order, in batches of `batch_size` (the last one shorter) on `device`, for
    /// evaluation and pictures.
    ///
    /// # Shapes
    /// - each batch: `[≤ batch_size, 1, 28, 28]`
    pub fn batches<'a>(
        &'a self,
        batch_size: usize,
        device: &'a Device,
    ) -> impl Iterator<Item = Tensor<4>> + 'a {
        (0..self.len())
            .step_by(batch_size.max(1))
            .map(move |start| {
                let end = (start + batch_size).min(self.len());
                let items = (start..end)
                    .map(|i| self.get(i).expect("in range"))
                    .collect();
                DigitBatcher.batch(items, device).images
            })
    }
}

impl Dataset<Digit> for Digits {
    /// # Panics
    /// If `index >= len()`, as Burn's datasets.
    fn get(&self, index: usize) -> Result<Digit, DatasetError> {
        assert!(
            index < self.len(),
            "Digits::get: index must be < {}, got {index}",
            self.len()
        );
        let pixels = &self.images.pixels[index * PIXELS..(index + 1) * PIXELS];
        Ok(Digit(
            pixels
                .iter()
                .map(|&p| f32::from(u8::from(p > 127)))
                .collect(),
        ))
    }

    fn len(&self) -> usize {
        self.images.len()
    }
}

/// A batch of digits on a device.
#[derive(Clone, Debug)]
pub struct DigitBatch {
    /// The binary pixels, `[batch, 1, 28, 28]`.
    pub images: Tensor<4>,
}

/// Stacks [`Digit`]s into a [`DigitBatch`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DigitBatcher;

impl Batcher<Digit, DigitBatch> for DigitBatcher {
    fn batch(&self, items: Vec<Digit>, device: &Device) -> DigitBatch {
        let n = items.len();
        let pixels: Vec<f32> = items.into_iter().flat_map(|d| d.0).collect();
        DigitBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 1, SIDE, SIDE]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_binarized_and_batched_channels_first() {
        let mut pixels = vec![0u8; 2 * PIXELS];
        pixels[3] = 128; // digit 0, row 0, column 3: on
        pixels[PIXELS + 28] = 127; // digit 1, row 1, column 0: off (not > 127)
        pixels[PIXELS + 29] = 255; // digit 1, row 1, column 1: on
        let digits = Digits::new(Images {
            pixels,
            labels: vec![0, 1],
        });
        assert_eq!(digits.len(), 2);
        let batch = DigitBatcher.batch(
            vec![digits.get(0).unwrap(), digits.get(1).unwrap()],
            &burn_gumbel_support::reference_device(),
        );
        assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
        let values = batch.images.into_data().try_to_vec::<f32>().unwrap();
        let batches: Vec<_> = digits
            .batches(1, &burn_gumbel_support::reference_device())
            .collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].dims(), [1, 1, 28, 28]);
        let on: Vec<usize> = (0..values.len()).filter(|&i| values[i] == 1.0).collect();
        assert_eq!(on, vec![3, PIXELS + 29]);
    }
}
