//! The configuration of a training run and its checks.

use burn::config::Config;
use burn_gumbel::{Estimator, TemperatureSchedule};

use crate::defaults;
use crate::model::VaeConfig;
use mnist_run::Error;
use mnist_run::data::{Binarize, DataSource};
use mnist_run::limits::{
    MAX_BATCH_SIZE, MAX_EPOCHS, check_adam_epsilon, check_count, check_gumbel_rao,
    check_learning_rate, schedule_error,
};

/// Everything that defines a training run. Saved as `config.json` beside the checkpoint.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// The model.
    pub model: VaeConfig,
    /// Number of passes over the training set. Default: [`defaults::EPOCHS`].
    #[config(default = "defaults::EPOCHS")]
    pub epochs: usize,
    /// Images per step. Default: [`defaults::BATCH_SIZE`].
    #[config(default = "defaults::BATCH_SIZE")]
    pub batch_size: usize,
    /// Adam's learning rate. Default: [`defaults::LEARNING_RATE`].
    #[config(default = "defaults::LEARNING_RATE")]
    pub learning_rate: f64,
    /// Adam's ε, the term that keeps its step finite where the second moment is 0. Default:
    /// [`ADAM_EPSILON`](mnist_run::limits::ADAM_EPSILON), 1e-8, the paper's optimizer's;
    /// runs made before it was recorded resume with Burn's 1e-5.
    #[config(default = "mnist_run::limits::ADAM_EPSILON")]
    pub adam_epsilon: f64,
    /// The temperature per step. Default: [`defaults::schedule`], the paper's annealing.
    #[config(default = "defaults::schedule()")]
    pub schedule: TemperatureSchedule,
    /// How training images are binarized. Default: threshold at 127.
    #[config(default = "Binarize::Threshold")]
    pub binarize: Binarize,
    /// Where the images come from, recorded so that evaluation reads the same data.
    /// [`train`](crate::training::train) uses the images it is handed; the programs load these.
    /// Default: the embedded subset.
    #[config(default = "DataSource::Embedded")]
    pub data: DataSource,
    /// Seed of the data order, the noise and the initialization. Default: [`defaults::SEED`].
    #[config(default = "defaults::SEED")]
    pub seed: u64,
}

impl TrainingConfig {
    /// Adam with this run's ε.
    pub fn optimizer(&self) -> burn::optim::AdamConfig {
        burn::optim::AdamConfig::new().with_epsilon(self.adam_epsilon as f32)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first value that makes no sense, named by its key in `config.json` (`batch_size`,
    /// `schedule.tau_min`).
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        check_count("epochs", self.epochs, 1, MAX_EPOCHS)?;
        check_count("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)?;
        if let Estimator::GumbelRao { samples } = self.model.estimator {
            let codes = self.model.n_latent * self.model.n_categories;
            check_gumbel_rao("model.estimator", samples, self.batch_size, codes)?;
        }
        check_learning_rate(self.learning_rate)?;
        check_adam_epsilon(self.adam_epsilon)?;
        self.schedule
            .validate()
            .map_err(|e| schedule_error("schedule", e))?;
        let lowest = match self.schedule {
            TemperatureSchedule::Constant { tau } => tau,
            TemperatureSchedule::Exponential { tau_min, .. } => tau_min,
        };
        // The layer's rules, at the lowest temperature of the run.
        self.model
            .estimator
            .validate(Some(lowest), false, self.model.hard)
            .map_err(|e| Error::invalid("model.estimator", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reinmax_below_tau_one_names_the_estimator() {
        let config = TrainingConfig::new(
            VaeConfig::new()
                .with_hard(true)
                .with_estimator(Estimator::ReinMax),
        );
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "model.estimator: ReinMax needs a temperature tau that is finite and >= 1, got tau = 0.5"
        );
        let config = config.with_schedule(TemperatureSchedule::constant(1.0));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn nonsensical_values_name_their_setting() {
        let config = TrainingConfig::new(VaeConfig::new()).with_batch_size(0);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "batch_size: must be >= 1, got 0"
        );
        let config = TrainingConfig::new(VaeConfig::new()).with_learning_rate(-1.0);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "learning_rate: must be finite and > 0, got -1"
        );
        let config = TrainingConfig::new(VaeConfig::new())
            .with_schedule(TemperatureSchedule::Constant { tau: 0.0 });
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "schedule.tau: must be finite and > 0, got 0"
        );
    }

    #[test]
    fn schedule_errors_name_the_part_of_the_schedule() {
        let annealing = |tau_min, interval| TemperatureSchedule::Exponential {
            tau0: 1.0,
            rate: 3e-5,
            tau_min,
            interval,
        };
        let error = |schedule| {
            let config = TrainingConfig::new(VaeConfig::new()).with_schedule(schedule);
            config.validate().unwrap_err().to_string()
        };
        assert_eq!(
            error(annealing(0.0, 1000)),
            "schedule.tau_min: must be finite and > 0, got 0"
        );
        assert_eq!(
            error(annealing(0.5, 0)),
            "schedule.interval: must be >= 1, got 0"
        );
    }

    #[test]
    fn absurd_sizes_are_refused_naming_their_setting() {
        let rao = |samples| {
            let model = VaeConfig::new()
                .with_hard(true)
                .with_estimator(Estimator::GumbelRao { samples });
            TrainingConfig::new(model).validate()
        };
        assert!(rao(10).is_ok());
        let error = rao(1_000_000_000).unwrap_err().to_string();
        assert!(
            error.starts_with("model.estimator: gumbel-rao needs at most 1000 samples"),
            "{error}"
        );
        let config = TrainingConfig::new(VaeConfig::new()).with_batch_size(10_000_000);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "batch_size: must be <= 65536, got 10000000"
        );
    }

    #[test]
    fn defaults_are_those_of_the_defaults_module() {
        let config = TrainingConfig::new(VaeConfig::new());
        assert_eq!(config.epochs, defaults::EPOCHS);
        assert_eq!(config.batch_size, defaults::BATCH_SIZE);
        assert_eq!(config.learning_rate, defaults::LEARNING_RATE);
        assert_eq!(config.schedule, TemperatureSchedule::paper());
        assert_eq!(config.seed, defaults::SEED);
        assert_eq!(config.data, DataSource::Embedded);
    }
}
