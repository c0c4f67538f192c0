//! MNIST for burn-train: a [`Dataset`] of binarized digits, the [`Batcher`] that stacks them, and
//! [`EpochLoader`], the data loader whose order is a function of the run's seed and the epoch.
//!
//! The images come from the shared run crate ([`mnist_run::data`]): the embedded
//! subset by default, full MNIST from IDX files or Burn's cache; pixels are binarized at
//! `pixel > 127`.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use burn_gumbel::Key;
use mnist_run::data::{Images, PIXELS, SIDE};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

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
    /// The batch's name in its noise key ([`DiscreteVae::noise_key`](crate::model::DiscreteVae::noise_key)):
    /// the index of its first image in the data set (distinct batches of a step hold distinct
    /// images). 0 where the [`DigitBatcher`] made it.
    pub first: u64,
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
            first: 0,
        }
    }
}

/// burn-train's data loader of the training set, in an order that is a function of the run's
/// seed and the epoch only (and of the device's share of the data with several devices).
///
/// Burn's shuffling loader draws each epoch's order from a generator that starts afresh in each
/// process, so a resumed run would see the orders of the first epochs again. This one counts its
/// epochs, starting from the first one the process runs, and shuffles the indices of its share
/// with `StdRng::seed_from_u64(Key::new(seed).fold_in(epoch).fold_in(share start))`; its first
/// epoch can skip the batches a checkpoint inside that epoch has done.
#[derive(Clone, Debug)]
pub struct EpochLoader {
    digits: Digits,
    range: std::ops::Range<usize>,
    batch_size: usize,
    seed: u64,
    device: Device,
    /// The next epoch (counted from 0) and the batches to skip at its start.
    next: Arc<std::sync::Mutex<(u64, usize)>>,
}

impl EpochLoader {
    /// The loader of `digits` in batches of `batch_size` on `device`, whose first epoch is
    /// `epoch` (counted from 0), starting after its first `skip` batches.
    pub fn new(
        digits: Digits,
        batch_size: usize,
        seed: u64,
        device: &Device,
        epoch: u64,
        skip: usize,
    ) -> Self {
        Self {
            range: 0..digits.len(),
            digits,
            batch_size: batch_size.max(1),
            seed,
            device: device.clone(),
            next: Arc::new(std::sync::Mutex::new((epoch, skip))),
        }
    }

    /// The indices of epoch `epoch`, in its order.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let key = Key::new(self.seed)
            .fold_in(epoch)
            .fold_in(self.range.start as u64);
        let mut order: Vec<usize> = self.range.clone().collect();
        order.shuffle(&mut StdRng::seed_from_u64(key.bits()));
        order
    }

    fn with_range(&self, range: std::ops::Range<usize>, device: &Device) -> Self {
        let next = *self.next.lock().expect("the epoch counter");
        Self {
            digits: self.digits.clone(),
            range,
            batch_size: self.batch_size,
            seed: self.seed,
            device: device.clone(),
            next: Arc::new(std::sync::Mutex::new(next)),
        }
    }
}

/// The iterator of one epoch of an [`EpochLoader`].
struct EpochIterator<'a> {
    loader: &'a EpochLoader,
    order: Vec<usize>,
    position: usize,
}

impl Iterator for EpochIterator<'_> {
    type Item = Result<DigitBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.order.len() {
            return None;
        }
        let end = (self.position + self.loader.batch_size).min(self.order.len());
        let indices = &self.order[self.position..end];
        self.position = end;
        let items = indices
            .iter()
            .map(|&i| self.loader.digits.get(i).expect("in range"))
            .collect();
        let mut batch = DigitBatcher.batch(items, &self.loader.device);
        batch.first = indices[0] as u64;
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<DigitBatch> for EpochIterator<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.position, self.order.len(), Some("images".to_string()))
    }
}

impl DataLoader<DigitBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<DigitBatch> + 'a> {
        let (epoch, skip) = {
            let mut next = self.next.lock().expect("the epoch counter");
            let now = *next;
            *next = (now.0 + 1, 0);
            now
        };
        let order = self.order(epoch);
        let position = (skip * self.batch_size).min(order.len());
        Box::new(EpochIterator {
            loader: self,
            order,
            position,
        })
    }

    fn num_items(&self) -> usize {
        self.range.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<DigitBatch>> {
        Arc::new(self.with_range(self.range.clone(), device))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<DigitBatch>> {
        let range = self.range.start + start..self.range.start + end;
        Arc::new(self.with_range(range, &self.device))
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

    #[test]
    fn the_order_is_a_function_of_the_seed_and_the_epoch() {
        let digits = Digits::new(mnist_run::data::Mnist::embedded().test.truncate(10));
        let device = burn_gumbel_support::reference_device();
        let firsts = |loader: &EpochLoader| -> Vec<u64> {
            loader.iter().map(|b| b.unwrap().first).collect()
        };
        // Epochs 0, 1, 2 from the start, and epoch 2 from a loader made to start there (a
        // resumed process): the same order; skipping 2 of its batches leaves the rest.
        let run = EpochLoader::new(digits.clone(), 3, 7, &device, 0, 0);
        let epochs: Vec<Vec<u64>> = (0..3).map(|_| firsts(&run)).collect();
        assert_ne!(epochs[0], epochs[1]);
        assert_eq!(epochs[0].len(), 4, "10 digits in batches of 3");
        assert_eq!(
            firsts(&EpochLoader::new(digits.clone(), 3, 7, &device, 2, 0)),
            epochs[2]
        );
        assert_eq!(
            firsts(&EpochLoader::new(digits.clone(), 3, 7, &device, 2, 2)),
            epochs[2][2..]
        );
        // Another seed, another order; every digit once per epoch.
        assert_ne!(
            firsts(&EpochLoader::new(digits.clone(), 3, 8, &device, 0, 0)),
            epochs[0]
        );
        let mut all = run.order(5);
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // A device's share (burn-train's split) shuffles its own range.
        let share = run.slice(5, 10);
        let mut seen: Vec<u64> = share.iter().map(|b| b.unwrap().first).collect();
        seen.sort_unstable();
        assert!(seen.iter().all(|&i| (5..10).contains(&i)), "{seen:?}");
    }
}
