//! # mnist-run
//!
//! What burn-gumbel's two MNIST trainers share: the categorical VAE's dense loop
//! (`categorical-vae`) and the convolutional discrete VAE trained through burn-train
//! (`discrete-vae`) depend on this crate, not on each other, so that both give the same
//! guarantees: the same data and its checks, files that survive a crash at any instant, one
//! resume policy, the same answer to a signal and to a diverging loss, one-line errors.
//!
//! Modules, each importing only those above it in this list:
//! - [`error`]: the one-line errors of the trainers, each naming its file or setting.
//! - [`settings`]: the settings by key, and the flags a program sets them with (errors renamed
//!   to flags, the flags a resume compares).
//! - [`limits`]: the bounds of the settings both trainers share (epochs, batch, learning rate,
//!   Adam's ε, Gumbel-Rao's samples, the memory of a model).
//! - [`files`]: atomic and durable writes, the run folder's lock, SHA-256, fault injection.
//! - [`signals`]: SIGINT and SIGTERM as a flag the trainers poll.
//! - [`data`]: the embedded MNIST subset, the IDX files, the choice of data, binarization.
//! - [`checks`]: the data a run refuses, and the loss that tells it diverged.
//! - [`resume`]: what `--resume` accepts: the stored settings, the flags that repeat them, the
//!   epochs that may only grow.
//! - [`elbo`]: the terms of the negative ELBO of a binarized image.
//! - [`pictures`]: grids of digits and plots, written as PNG.
//! - `crash` (feature `fault-injection`): the crash tests' harness, a child process killed at a
//!   fault point.
#![warn(missing_docs)]

pub mod checks;
#[cfg(feature = "fault-injection")]
pub mod crash;
pub mod data;
pub mod elbo;
pub mod error;
pub mod files;
pub mod limits;
pub mod pictures;
pub mod resume;
pub mod settings;
pub mod signals;

pub use error::Error;
