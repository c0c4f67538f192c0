//! Every default of the VAE's configuration, defined once: the configuration types and the
//! programs' flags both read them from here.

use burn_gumbel::{Estimator, TemperatureSchedule};

/// Passes over the training set: 50 (the main job's length).
pub const EPOCHS: usize = 50;
/// Images per step: 100, as in the paper.
pub const BATCH_SIZE: usize = 100;
/// Adam's learning rate: 1e-3, as in the paper.
pub const LEARNING_RATE: f64 = 1e-3;
/// Seed of the data order, the noise and the initialization: 0.
pub const SEED: u64 = 0;
/// Categorical latent variables `N`: 20, as in the paper.
pub const N_LATENT: usize = 20;
/// Classes `K` per latent variable: 10, as in the paper.
pub const N_CATEGORIES: usize = 10;
/// Width of the first encoder layer (and the last decoder layer): 512, as in the paper.
pub const HIDDEN1: usize = 512;
/// Width of the second encoder layer (and the first decoder layer): 256, as in the paper.
pub const HIDDEN2: usize = 256;
/// The gradient estimator of one-hot samples: straight-through.
pub const ESTIMATOR: Estimator = Estimator::StraightThrough;

/// The temperature schedule: the paper's annealing, [`TemperatureSchedule::paper`].
pub fn schedule() -> TemperatureSchedule {
    TemperatureSchedule::paper()
}

/// The parameters `(tau0, rate, tau_min, interval)` of the default annealing, for the flags.
pub fn annealing() -> (f64, f64, f64, u64) {
    match schedule() {
        TemperatureSchedule::Exponential {
            tau0,
            rate,
            tau_min,
            interval,
        } => (tau0, rate, tau_min, interval),
        TemperatureSchedule::Constant { tau } => (tau, 0.0, tau, 1),
    }
}
