//! A run's configuration: [`RunConfig`], its checks (each naming the setting by its key), and
//! the run folder's `config.json`.

use std::path::{Path, PathBuf};

use burn::optim::AdamConfig;
use burn_gumbel::Estimator;
use mnist_run::Error;
use mnist_run::data::DataSource;
use mnist_run::files::write_atomic;
use mnist_run::limits::{
    ADAM_EPSILON, LEGACY_ADAM_EPSILON, MAX_BATCH_SIZE, MAX_EPOCHS, check_adam_epsilon, check_count,
    check_gumbel_rao, check_learning_rate,
};
use serde::{Deserialize, Serialize};

use crate::model::{DiscreteVaeConfig, GRID};

/// The most devices a run may train on.
pub const MAX_DEVICES: usize = 64;

/// Every setting of a run; stored as the run folder's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The model.
    pub model: DiscreteVaeConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimizer step, in all: split evenly over the devices (each device's batch is
    /// `batch_size / devices`, and their gradients are summed), the same step as on one device.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Adam's ε: [`ADAM_EPSILON`] by default; runs made before it was recorded used Burn's
    /// default, [`LEGACY_ADAM_EPSILON`], and resume with it.
    #[serde(default = "legacy_adam_epsilon")]
    pub adam_epsilon: f64,
    /// Seed of the initialization, the data order and the noise.
    pub seed: u64,
    /// Where the images come from.
    pub data: DataSource,
    /// Devices trained on in parallel (burn-train's multi-device strategy), `≥ 1`.
    pub devices: usize,
}

fn legacy_adam_epsilon() -> f64 {
    LEGACY_ADAM_EPSILON
}

impl RunConfig {
    /// A run on `data` with the library's defaults. (The `discrete_vae` binary does not call
    /// this: its flags carry their own defaults, in `examples/discrete_vae.rs`.)
    pub fn new(data: DataSource) -> Self {
        Self {
            model: DiscreteVaeConfig::new(),
            epochs: 10,
            batch_size: 100,
            learning_rate: 1e-3,
            adam_epsilon: ADAM_EPSILON,
            seed: 0,
            data,
            devices: 1,
        }
    }

    /// Checks every setting, naming the one that is wrong by its key in `config.json`.
    ///
    /// # Errors
    /// As [`DiscreteVaeConfig::validate`]; epochs, batch size or devices outside their bounds; a
    /// batch size that the devices do not divide; a learning rate or ε that is not finite and
    /// `> 0`; Gumbel-Rao with too many samples.
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        check_count("epochs", self.epochs, 1, MAX_EPOCHS)?;
        check_count("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)?;
        check_count("devices", self.devices, 1, MAX_DEVICES)?;
        if !self.batch_size.is_multiple_of(self.devices) {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "must be a multiple of the devices ({}) to split evenly, got {}",
                    self.devices, self.batch_size
                ),
            ));
        }
        check_learning_rate(self.learning_rate)?;
        check_adam_epsilon(self.adam_epsilon)?;
        if let Estimator::GumbelRao { samples } = self.model.estimator {
            let codes = self.model.codes * GRID * GRID;
            check_gumbel_rao("model.estimator", samples, self.batch_size, codes)?;
        }
        Ok(())
    }

    /// Adam with this run's ε.
    pub fn optimizer(&self) -> AdamConfig {
        AdamConfig::new().with_epsilon(self.adam_epsilon as f32)
    }

    /// Optimizer steps per epoch on `images` training images: burn-train splits the data into
    /// one share per device (the last share takes the remainder), each in batches of
    /// `batch_size / devices`, and a step takes a batch from every share that has one left.
    pub fn steps_per_epoch(&self, images: usize) -> u64 {
        let share = images / self.devices;
        let last = images - share * (self.devices - 1);
        last.div_ceil(self.batch_size / self.devices) as u64
    }
}

/// The file of a run's configuration.
pub fn config_path(run: &Path) -> PathBuf {
    run.join("config.json")
}

/// Reads a run's `config.json`.
///
/// # Errors
/// A missing or malformed file, or settings that [`RunConfig::validate`] refuses.
pub fn load_config(run: &Path) -> Result<RunConfig, Error> {
    let path = config_path(run);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    let config: RunConfig =
        serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("malformed: {e}")))?;
    config
        .validate()
        .map_err(|e| Error::file(&path, e.to_string()))?;
    Ok(config)
}

/// Writes a run's `config.json`, atomically and durably.
pub(crate) fn save_config(config: &RunConfig, run: &Path) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(config).expect("a configuration serializes");
    write_atomic(&config_path(run), json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_per_epoch_follow_burn_trains_split() {
        let mut config = RunConfig::new(DataSource::Embedded);
        assert_eq!(config.steps_per_epoch(10_000), 100);
        assert_eq!(config.steps_per_epoch(301), 4);
        // Two devices of 50 images a step: shares of 150 and 151 images, 3 and 4 batches.
        config.devices = 2;
        assert_eq!(config.steps_per_epoch(301), 4);
        assert_eq!(config.steps_per_epoch(10_000), 100);
    }

    #[test]
    fn a_configuration_from_before_adam_epsilon_reads_with_burns_default() {
        let config = RunConfig::new(DataSource::Embedded);
        let mut value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["adam_epsilon"], 1e-8);
        value.as_object_mut().unwrap().remove("adam_epsilon");
        let old: RunConfig = serde_json::from_value(value).unwrap();
        assert_eq!(old.adam_epsilon, 1e-5);
    }

    #[test]
    fn bounds_name_their_settings() {
        let error = |config: RunConfig| config.validate().unwrap_err().to_string();
        let base = RunConfig::new(DataSource::Embedded);
        let rao = RunConfig {
            model: base
                .model
                .clone()
                .with_estimator(Estimator::GumbelRao { samples: 100_000 }),
            ..base.clone()
        };
        assert!(error(rao).starts_with("model.estimator: gumbel-rao needs at most 1000 samples"));
        let devices = RunConfig {
            devices: 3,
            ..base.clone()
        };
        assert_eq!(
            error(devices),
            "batch_size: must be a multiple of the devices (3) to split evenly, got 100"
        );
        let lr = RunConfig {
            learning_rate: f64::INFINITY,
            ..base
        };
        assert_eq!(error(lr), "learning_rate: must be finite and > 0, got inf");
    }
}
