//! # categorical-vae
//!
//! The categorical variational autoencoder of Jang, Gu, Poole 2016
//! ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144), section 4), trained on binarized MNIST
//! with [`burn_gumbel`]: 20 categorical latent variables of 10 classes each, an MLP encoder and
//! decoder, a Bernoulli likelihood and the KL divergence to the uniform prior.
//!
//! The run folder's machinery (data, durable files, the lock, the checks, the resume policy,
//! signals, pictures) is [`mnist_run`]'s, shared with the discrete VAE.
//!
//! Modules, each importing only those above it in this list:
//! - [`defaults`]: every default of the configuration, defined once.
//! - [`model`]: the VAE and its negative ELBO.
//! - [`config`]: the configuration of a training run and its checks.
//! - [`evaluation`]: the test negative ELBO, soft and hard.
//! - [`metrics`]: the metrics of an epoch, `metrics.csv`, the progress bar.
//! - [`checkpoint`]: `config.json`, the checkpoint, and how they are written and read.
//! - [`training`]: the training step and the loop.
//! - [`report`]: PNG grids of digits and the ELBO curves.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod defaults;
pub mod evaluation;
pub mod metrics;
pub mod model;
pub mod report;
pub mod training;
