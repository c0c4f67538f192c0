//! # discrete-vae
//!
//! A convolutional discrete VAE on binarized MNIST, trained through burn-train with
//! [`burn_gumbel`] sampling one of `K` codes at each cell of a 7 × 7 grid, over the channels of
//! the encoder's feature map (`dim = 1`) as DALL-E's discrete VAE does (Ramesh et al. 2021,
//! [arXiv:2102.12092](https://arxiv.org/abs/2102.12092)); the Gumbel-Softmax of Jang, Gu, Poole
//! 2016 ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144)).
//!
//! Modules, each importing only those above it in this list:
//! - [`model`]: the encoder, the layer over channels, the decoder, the negative ELBO, and the
//!   optimizer-step counter that drives the annealing.
//! - [`data`]: MNIST as a burn `Dataset` and `Batcher` (the images of [`categorical_vae::data`]).
//! - [`learner`]: `TrainStep` / `InferenceStep` and the metrics.
//! - [`checkpoint`]: atomic, durable checkpoints for burn-train, and the epoch to resume from.
//! - [`renderer`]: burn-train's dashboard on a terminal, one plain line per epoch otherwise.
//! - [`training`]: the run's configuration, training on one or several devices, evaluation.
//! - [`report`]: reconstructions, decoded random codes, the histogram of code usage.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod data;
pub mod learner;
pub mod model;
pub mod renderer;
pub mod report;
pub mod training;
