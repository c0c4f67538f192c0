//! # discrete-vae
//!
//! A convolutional discrete VAE on binarized MNIST, trained through burn-train with
//! [`burn_gumbel`] sampling one of `K` codes at each cell of a 7 × 7 grid, over the channels of
//! the encoder's feature map (`dim = 1`) as DALL-E's discrete VAE does (Ramesh et al. 2021,
//! [arXiv:2102.12092](https://arxiv.org/abs/2102.12092)); the Gumbel-Softmax of Jang, Gu, Poole
//! 2016 ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144)).
//!
//! Modules, each importing only those above it in this list:
//! - [`data`]: MNIST as a burn `Dataset` and `Batcher` (the images of [`mnist_run::data`]), and
//!   the loader whose order is a function of the seed and the epoch.
//! - [`checkpoint`]: atomic, durable, checksummed checkpoints for burn-train, and the one to
//!   resume from.
//! - [`watch`]: what the training steps and the trainer share: signals, divergence, the training
//!   metrics' sums of the epoch in progress.
//! - [`model`]: the encoder, the layer over channels, the decoder, the negative ELBO, and the
//!   optimizer-step counter that drives the annealing and keys the noise.
//! - [`config`]: the run's settings, their checks, `config.json`.
//! - [`learner`]: `TrainStep` / `InferenceStep` and the metrics.
//! - [`report`]: reconstructions, decoded random codes, the histogram of code usage.
//! - [`evaluation`]: the test negative ELBO with keyed noise, `evaluation.json`.
//! - [`renderer`]: one line per epoch, with a progress bar on a terminal, and `metrics.csv`.
//! - [`training`]: training on one or several devices, and [`training::run`], the whole run
//!   under the folder's lock (it re-exports what a program needs of [`config`] and
//!   [`evaluation`], which hold the configuration and the evaluation).
//!
//! The run folder's machinery (data, durable files, the lock, the checks, the resume policy,
//! signals, pictures) is [`mnist_run`]'s, shared with the categorical VAE.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod evaluation;
pub mod learner;
pub mod model;
pub mod renderer;
pub mod report;
pub mod training;
pub mod watch;
