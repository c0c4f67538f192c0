//! The run folder's files: `config.json`, the checkpoint (`model.bpk`, `optimizer.bpk`,
//! `state.json`), and how they are written and read back.

use std::fs;
use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::Device;
use burn_gumbel::{Estimator, TemperatureSchedule};
use serde::{Deserialize, Serialize};

use crate::config::TrainingConfig;
use crate::data::DataSource;
use crate::error::Error;
use crate::metrics::EpochMetrics;
use crate::model::CategoricalVae;

/// The state saved with each checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps done.
    pub step: u64,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
}

impl TrainingState {
    /// The temperature of the last step done under `schedule` (that of step 0 before any).
    pub fn last_tau(&self, schedule: &TemperatureSchedule) -> f64 {
        schedule.tau(self.step.saturating_sub(1))
    }
}

/// Loads a run's configuration from `out_dir/config.json`.
///
/// # Errors
/// A missing or malformed file.
pub fn load_config(out_dir: &Path) -> Result<TrainingConfig, Error> {
    let path = out_dir.join("config.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::file(&path, e.to_string()))?;
    let config = parse_config(&text)
        .map_err(|e| Error::file(&path, format!("not a training configuration: {e}")))?;
    config
        .validate()
        .map_err(|e| Error::file(&path, e.to_string()))?;
    Ok(config)
}

/// Parses a `config.json`, filling in the fields that older runs lack (Burn's `Config` does not
/// apply field defaults when deserializing):
/// - `model.estimator`, from before `--estimator`: those runs used straight-through;
/// - `data`, from before the data source was recorded: those runs took Burn's cache when it held
///   full MNIST, else the embedded subset, which is what [`DataSource::choose`] still decides.
fn parse_config(text: &str) -> Result<TrainingConfig, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    if let Some(model) = value.get_mut("model").and_then(|m| m.as_object_mut()) {
        model
            .entry("estimator")
            .or_insert_with(|| serde_json::json!(Estimator::StraightThrough));
    }
    if let Some(config) = value.as_object_mut()
        && !config.contains_key("data")
    {
        let data = serde_json::to_value(DataSource::choose(None, false))?;
        config.insert("data".to_string(), data);
    }
    serde_json::from_value(value)
}

/// Loads the model saved in `out_dir/checkpoint` for `config`, on `device`.
///
/// # Errors
/// A missing or damaged checkpoint, or one whose tensors do not fit the configuration.
pub fn load_model(
    config: &TrainingConfig,
    out_dir: &Path,
    device: &Device,
) -> Result<CategoricalVae, Error> {
    let path = out_dir.join("checkpoint").join("model.bpk");
    if !path.is_file() {
        return Err(Error::file(&path, "missing: no checkpoint in this folder"));
    }
    config
        .model
        .init(device)
        .try_load_file(&path)
        .map_err(|e| Error::file(&path, format!("cannot load the model: {e}")))
}

/// The model, the optimizer and the state of the run in `out_dir`, checked against `config`.
pub(crate) fn load_checkpoint(
    config: &TrainingConfig,
    out_dir: &Path,
    device: &Device,
) -> Result<(CategoricalVae, ModuleOptimizer, TrainingState), Error> {
    let saved = load_config(out_dir)?;
    if saved.model != config.model
        || saved.batch_size != config.batch_size
        || saved.seed != config.seed
    {
        let config_path = out_dir.join("config.json");
        return Err(Error::invalid(
            "--resume",
            format!(
                "{}: the checkpoint was trained with another configuration (model {:?}, batch \
                 {}, seed {}); resume with the same flags",
                config_path.display(),
                saved.model,
                saved.batch_size,
                saved.seed
            ),
        ));
    }
    let model = load_model(config, out_dir, device)?;
    let dir = out_dir.join("checkpoint");
    let optim_path = dir.join("optimizer.bpk");
    let optim = AdamConfig::new()
        .init()
        .load(&optim_path)
        .map_err(|e| Error::file(&optim_path, format!("cannot load the optimizer: {e}")))?;
    Ok((model, optim, load_state(out_dir)?))
}

/// Loads the training state saved with the checkpoint in `out_dir`.
///
/// # Errors
/// A missing or malformed `checkpoint/state.json`.
pub fn load_state(out_dir: &Path) -> Result<TrainingState, Error> {
    let path = out_dir.join("checkpoint").join("state.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::file(&path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("malformed: {e}")))
}

/// Writes the checkpoint into `checkpoint.tmp`, then swaps it for `checkpoint`: a crash leaves
/// either the old checkpoint or the new one, never half of one.
pub(crate) fn save_checkpoint(
    model: &CategoricalVae,
    optim: &ModuleOptimizer,
    state: &TrainingState,
    out_dir: &Path,
) -> Result<(), Error> {
    let dir = out_dir.join("checkpoint");
    let tmp = out_dir.join("checkpoint.tmp");
    let old = out_dir.join("checkpoint.old");
    let _ = fs::remove_dir_all(&tmp);
    create_dir(&tmp)?;
    let model_path = tmp.join("model.bpk");
    model
        .clone()
        .save_file(&model_path)
        .map_err(|e| Error::file(&model_path, e.to_string()))?;
    let optim_path = tmp.join("optimizer.bpk");
    optim
        .save(&optim_path)
        .map_err(|e| Error::file(&optim_path, e.to_string()))?;
    let state_json = serde_json::to_string_pretty(state).expect("the state serializes");
    write_file(&tmp.join("state.json"), state_json.as_bytes())?;
    let _ = fs::remove_dir_all(&old);
    if dir.exists() {
        fs::rename(&dir, &old).map_err(|e| Error::file(&dir, e.to_string()))?;
    }
    fs::rename(&tmp, &dir).map_err(|e| Error::file(&dir, e.to_string()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// The configuration as pretty JSON.
pub fn config_json(config: &TrainingConfig) -> String {
    serde_json::to_string_pretty(config).expect("the configuration serializes")
}

/// Creates the folder `path` and its parents.
pub(crate) fn create_dir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| Error::file(path, format!("cannot create: {e}")))
}

/// Writes `bytes` into the file `path`.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes).map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VaeConfig;

    #[test]
    fn configuration_without_an_estimator_reads_as_straight_through() {
        let config = TrainingConfig::new(VaeConfig::new().with_hard(true));
        let mut value = serde_json::to_value(&config).unwrap();
        value["model"].as_object_mut().unwrap().remove("estimator");
        let old = parse_config(&value.to_string()).unwrap();
        assert_eq!(old.model.estimator, Estimator::StraightThrough);
        assert!(old.model.hard);
        let reinmax = TrainingConfig::new(VaeConfig::new().with_estimator(Estimator::ReinMax));
        let back = parse_config(&config_json(&reinmax)).unwrap();
        assert_eq!(back.model.estimator, Estimator::ReinMax);
    }

    #[test]
    fn configuration_without_a_data_source_reads_as_the_default_choice() {
        let config = TrainingConfig::new(VaeConfig::new()).with_data(DataSource::BurnCache);
        let mut value = serde_json::to_value(&config).unwrap();
        value.as_object_mut().unwrap().remove("data");
        let old = parse_config(&value.to_string()).unwrap();
        assert_eq!(old.data, DataSource::choose(None, false));
        let back = parse_config(&config_json(&config)).unwrap();
        assert_eq!(back.data, DataSource::BurnCache);
    }
}
