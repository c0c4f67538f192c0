//! The run folder's files: `config.json` and the checkpoint generations
//! (`checkpoint/step-NNNNNNNNNN/`: `model.bpk`, `optimizer.bpk`, `state.json` and `manifest.json`
//! with their SHA-256), how they are written durably and found again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn_gumbel::{Estimator, TemperatureSchedule};
use serde::{Deserialize, Serialize};

use crate::config::TrainingConfig;
use crate::metrics::EpochMetrics;
use crate::model::CategoricalVae;
use mnist_run::Error;
use mnist_run::data::DataSource;
use mnist_run::files::{
    create_dir, fault_point, remove_dir, sha256, sync_dir, sync_file, write_atomic, write_durable,
};
use mnist_run::limits::LEGACY_ADAM_EPSILON;

/// The state saved with each checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps done.
    pub step: u64,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
    /// Steps done inside the epoch in progress: 0 at an epoch's end, more in a checkpoint written
    /// on a signal (training resumes there).
    #[serde(default)]
    pub steps_in_epoch: u64,
    /// The sum of those steps' losses, as the f32 the trainer adds them in.
    #[serde(default)]
    pub loss_sum: f32,
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
/// - `adam_epsilon`, from before `--adam-epsilon`: those runs used Burn's default, 1e-5
///   ([`LEGACY_ADAM_EPSILON`]);
/// - `data`, from before the data source was recorded: those runs took Burn's cache when it held
///   full MNIST, else the embedded subset, which is what [`DataSource::choose`] still decides.
fn parse_config(text: &str) -> Result<TrainingConfig, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    if let Some(model) = value.get_mut("model").and_then(|m| m.as_object_mut()) {
        model
            .entry("estimator")
            .or_insert_with(|| serde_json::json!(Estimator::StraightThrough));
    }
    if let Some(config) = value.as_object_mut() {
        config
            .entry("adam_epsilon")
            .or_insert_with(|| serde_json::json!(LEGACY_ADAM_EPSILON));
    }
    if let Some(config) = value.as_object_mut()
        && !config.contains_key("data")
    {
        let data = serde_json::to_value(DataSource::choose(None, false))?;
        config.insert("data".to_string(), data);
    }
    serde_json::from_value(value)
}

/// The folder of the checkpoints in a run folder.
const CHECKPOINTS: &str = "checkpoint";
/// The manifest of a checkpoint generation: the SHA-256 of each of its files.
const MANIFEST: &str = "manifest.json";
/// The files of a checkpoint generation besides its manifest.
const FILES: [&str; 3] = ["model.bpk", "optimizer.bpk", "state.json"];

/// The manifest of a checkpoint: its files and their SHA-256, checked at load.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// File name → SHA-256 in hexadecimal.
    sha256: BTreeMap<String, String>,
}

/// A complete checkpoint generation of a run: `checkpoint/step-NNNNNNNNNN/` (or `…-mid/` inside an
/// epoch), whose files match the checksums of its manifest.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// The training state saved with it.
    pub state: TrainingState,
}

impl Checkpoint {
    /// The generation's name (`step-0000000300`), for the messages.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Loads its model for `config`, on `device`.
    ///
    /// # Errors
    /// Tensors that do not fit the configuration.
    pub fn load_model(
        &self,
        config: &TrainingConfig,
        device: &Device,
    ) -> Result<CategoricalVae, Error> {
        let path = self.dir.join("model.bpk");
        config
            .model
            .init(device)
            .try_load_file(&path)
            .map_err(|e| Error::file(&path, format!("cannot load the model: {e}")))
    }

    /// Loads its optimizer state, into Adam with `config`'s ε.
    ///
    /// # Errors
    /// A file that Burn cannot read as Adam's state.
    pub fn load_optimizer(&self, config: &TrainingConfig) -> Result<ModuleOptimizer, Error> {
        let path = self.dir.join("optimizer.bpk");
        config
            .optimizer()
            .init()
            .load(&path)
            .map_err(|e| Error::file(&path, format!("cannot load the optimizer: {e}")))
    }
}

/// The generation's folder name of a checkpoint of `state`: `step-N` at an epoch's end,
/// `step-N-mid` inside an epoch (written on a signal). At the same step, the epoch's end is the
/// newer of the two.
pub(crate) fn generation_name(state: &TrainingState) -> String {
    match state.steps_in_epoch {
        0 => format!("step-{:010}", state.step),
        _ => format!("step-{:010}-mid", state.step),
    }
}

/// The order of checkpoint generations: the step, then whether it is at an epoch's end.
type GenerationOrder = (u64, bool);

/// The order of a generation's folder name, `(step, at an epoch's end)`, or `None` for another
/// name (a temporary folder).
fn generation_order(name: &str) -> Option<GenerationOrder> {
    let rest = name.strip_prefix("step-")?;
    let (digits, end) = match rest.strip_suffix("-mid") {
        Some(digits) => (digits, false),
        None => (rest, true),
    };
    let valid = digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit());
    Some((digits.parse().ok().filter(|_| valid)?, end))
}

/// Checks a generation's files against its manifest and reads its state.
fn verify(dir: &Path) -> Result<TrainingState, Error> {
    let manifest_path = dir.join(MANIFEST);
    let text = fs::read_to_string(&manifest_path)
        .map_err(|e| Error::file(&manifest_path, e.to_string()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::file(&manifest_path, format!("malformed: {e}")))?;
    for name in FILES {
        let path = dir.join(name);
        let expected = manifest
            .sha256
            .get(name)
            .ok_or_else(|| Error::file(&manifest_path, format!("no checksum of {name}")))?;
        if sha256(&path)? != *expected {
            return Err(Error::file(
                &path,
                "damaged: its SHA-256 differs from the checkpoint's manifest",
            ));
        }
    }
    read_state(&dir.join("state.json"))
}

/// Reads a checkpoint's `state.json`.
fn read_state(path: &Path) -> Result<TrainingState, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::file(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("malformed: {e}")))
}

/// The generations' folders in `out_dir/checkpoint`, newest first.
fn generations(out_dir: &Path) -> Result<Vec<(GenerationOrder, PathBuf)>, Error> {
    let root = out_dir.join(CHECKPOINTS);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(&root).map_err(|e| Error::file(&root, e.to_string()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(&root, e.to_string()))?;
        let name = entry.file_name();
        if let Some(order) = generation_order(&name.to_string_lossy()) {
            found.push((order, entry.path()));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

/// The newest complete checkpoint of the run in `out_dir`, or `None` when it has none.
///
/// Generations are tried newest first; one that is damaged (a checksum that does not match, a
/// missing file) is passed over for the one before it. A run saved before checkpoints had
/// generations is read from `checkpoint/` (or `checkpoint.old/`, where an interrupted save of
/// that time left it), without checksums.
///
/// # Errors
/// A checkpoint folder that cannot be read; every generation damaged (the first error).
pub fn latest_checkpoint(out_dir: &Path) -> Result<Option<Checkpoint>, Error> {
    let mut first_error = None;
    for (_, dir) in generations(out_dir)? {
        match verify(&dir) {
            Ok(state) => return Ok(Some(Checkpoint { dir, state })),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    // Runs written before generations: `checkpoint/` itself, or `checkpoint.old/`, which the old
    // swap left complete when it was interrupted between its two renames. No checksum to check.
    for dir in [out_dir.join(CHECKPOINTS), out_dir.join("checkpoint.old")] {
        let state = dir.join("state.json");
        if first_error.is_none() && dir.join("model.bpk").is_file() && state.is_file() {
            let state = read_state(&state)?;
            return Ok(Some(Checkpoint { dir, state }));
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

/// The newest complete checkpoint of the run in `out_dir`.
///
/// # Errors
/// As [`latest_checkpoint`], and a folder without a checkpoint.
pub fn require_checkpoint(out_dir: &Path) -> Result<Checkpoint, Error> {
    latest_checkpoint(out_dir)?.ok_or_else(|| {
        Error::file(
            &out_dir.join(CHECKPOINTS),
            "missing: no complete checkpoint in this folder",
        )
    })
}

/// Loads the model of the newest complete checkpoint in `out_dir` for `config`, on `device`.
///
/// # Errors
/// No complete checkpoint, or one whose tensors do not fit the configuration.
pub fn load_model(
    config: &TrainingConfig,
    out_dir: &Path,
    device: &Device,
) -> Result<CategoricalVae, Error> {
    require_checkpoint(out_dir)?.load_model(config, device)
}

/// Loads the training state of the newest complete checkpoint in `out_dir`.
///
/// # Errors
/// No complete checkpoint.
pub fn load_state(out_dir: &Path) -> Result<TrainingState, Error> {
    Ok(require_checkpoint(out_dir)?.state)
}

/// Saves a checkpoint generation, durably and atomically, then removes the older ones.
///
/// The files go into `checkpoint/step-N.tmp/`, each flushed to the disk, with `manifest.json`
/// (their SHA-256) written last; the folder is renamed `step-N` and `checkpoint/` flushed. Only
/// then are older generations removed: at any instant the newest complete generation is on disk,
/// and [`latest_checkpoint`] finds it.
pub(crate) fn save_checkpoint(
    model: &CategoricalVae,
    optim: &ModuleOptimizer,
    state: &TrainingState,
    out_dir: &Path,
) -> Result<(), Error> {
    let root = out_dir.join(CHECKPOINTS);
    create_dir(&root)?;
    let name = generation_name(state);
    let done = root.join(&name);
    let tmp = root.join(format!("{name}.tmp"));
    if tmp.exists() {
        remove_dir(&tmp)?;
    }
    create_dir(&tmp)?;
    let model_path = tmp.join("model.bpk");
    fault_point("save model");
    model
        .clone()
        .save_file(&model_path)
        .map_err(|e| Error::file(&model_path, e.to_string()))?;
    sync_file(&model_path)?;
    let optim_path = tmp.join("optimizer.bpk");
    fault_point("save optimizer");
    optim
        .save(&optim_path)
        .map_err(|e| Error::file(&optim_path, e.to_string()))?;
    sync_file(&optim_path)?;
    let state_json = serde_json::to_string_pretty(state).expect("the state serializes");
    write_durable(&tmp.join("state.json"), state_json.as_bytes())?;
    let mut manifest = Manifest {
        sha256: BTreeMap::new(),
    };
    for file in FILES {
        manifest
            .sha256
            .insert(file.to_string(), sha256(&tmp.join(file))?);
    }
    let manifest = serde_json::to_string_pretty(&manifest).expect("the manifest serializes");
    write_durable(&tmp.join(MANIFEST), manifest.as_bytes())?;
    sync_dir(&tmp)?;
    if done.exists() {
        // A complete generation of this very state is already there: keep it, drop the copy.
        remove_dir(&tmp)?;
    } else {
        fault_point("rename checkpoint");
        fs::rename(&tmp, &done).map_err(|e| Error::file(&done, e.to_string()))?;
    }
    sync_dir(&root)?;
    // Older generations and leftovers of interrupted saves; never the one just completed.
    let entries = fs::read_dir(&root).map_err(|e| Error::file(&root, e.to_string()))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(&root, e.to_string()))?;
        let path = entry.path();
        if path != done && path.is_dir() {
            remove_dir(&path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(&root)?;
    }
    Ok(())
}

/// Writes the run's `config.json`, atomically and durably.
pub(crate) fn save_config(config: &TrainingConfig, out_dir: &Path) -> Result<(), Error> {
    write_atomic(&out_dir.join("config.json"), config_json(config).as_bytes())
}

/// The configuration as pretty JSON.
pub fn config_json(config: &TrainingConfig) -> String {
    serde_json::to_string_pretty(config).expect("the configuration serializes")
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
        assert_eq!(config.adam_epsilon, 1e-8);
        value.as_object_mut().unwrap().remove("adam_epsilon");
        let old = parse_config(&value.to_string()).unwrap();
        assert_eq!(
            old.adam_epsilon, 1e-5,
            "runs before the setting used Burn's default"
        );
        let reinmax = TrainingConfig::new(VaeConfig::new().with_estimator(Estimator::ReinMax));
        let back = parse_config(&config_json(&reinmax)).unwrap();
        assert_eq!(back.model.estimator, Estimator::ReinMax);
    }

    #[test]
    fn a_checkpoint_of_the_old_layout_is_found_even_mid_swap() {
        // The old swap renamed checkpoint/ to checkpoint.old/ before checkpoint.tmp/ to
        // checkpoint/: a kill between the two left only checkpoint.old/ complete.
        let out = std::env::temp_dir().join(format!("vae-old-layout-{}", std::process::id()));
        let old = out.join("checkpoint.old");
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(out.join("checkpoint.tmp")).unwrap();
        fs::write(old.join("model.bpk"), b"weights").unwrap();
        let state = TrainingState {
            epochs_done: 2,
            step: 200,
            ..TrainingState::default()
        };
        fs::write(
            old.join("state.json"),
            serde_json::to_string(&state).unwrap(),
        )
        .unwrap();
        assert!(mnist_run::resume::holds_run(&out));
        let found = latest_checkpoint(&out).unwrap().unwrap();
        assert_eq!((found.dir, found.state), (old, state));
        fs::remove_dir_all(&out).unwrap();
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
