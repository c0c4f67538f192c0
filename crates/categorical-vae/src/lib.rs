//! # categorical-vae
//!
//! The categorical variational autoencoder of Jang, Gu, Poole 2016
//! ([arXiv:1611.01144](https://arxiv.org/abs/1611.01144), section 4), trained on binarized MNIST
//! with [`burn_gumbel`]: 20 categorical latent variables of 10 classes each, an MLP encoder and
//! decoder, a Bernoulli likelihood and the KL divergence to the uniform prior.
//!
//! - [`data`]: the embedded MNIST subset, the IDX files, binarization.
//! - [`model`]: the VAE and its negative ELBO.
//! - [`training`]: the training loop, evaluation, checkpoints and resume.
//! - [`report`]: PNG grids of digits and the ELBO curves.
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod model;
pub mod report;
pub mod training;

pub use error::Error;
