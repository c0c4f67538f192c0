//! Training, evaluation, checkpoints and resume.
//!
//! A run writes into its output folder:
//! - `config.json`: the [`TrainingConfig`];
//! - `checkpoint/`: `model.bpk` and `optimizer.bpk` (Burn's `save_file` format) and `state.json`
//!   (epochs done, step, the metrics so far), replaced atomically after every epoch, so that an
//!   interrupted run loses at most the epoch in progress;
//! - `metrics.csv`: one line per epoch.
//!
//! Every epoch reseeds the device and the data shuffle from `(seed, epoch)`, so a run resumed from
//! a checkpoint continues exactly as the uninterrupted run would have.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use burn_gumbel::{Estimator, TemperatureSchedule};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{Binarize, Images, Mnist, batch_tensor, binarize};
use crate::error::Error;
use crate::model::{CategoricalVae, VaeConfig, negative_elbo};

/// Everything that defines a training run. Saved as `config.json` beside the checkpoint.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    /// The model.
    pub model: VaeConfig,
    /// Number of passes over the training set. Default: 10.
    #[config(default = 10)]
    pub epochs: usize,
    /// Images per step. Default: 100.
    #[config(default = 100)]
    pub batch_size: usize,
    /// Adam's learning rate. Default: 1e-3.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// The temperature per step. Default: the paper's annealing.
    #[config(default = "TemperatureSchedule::paper()")]
    pub schedule: TemperatureSchedule,
    /// How training images are binarized. Default: threshold at 127.
    #[config(default = "Binarize::Threshold")]
    pub binarize: Binarize,
    /// Seed of the data order, the noise and the initialization. Default: 0.
    #[config(default = 0)]
    pub seed: u64,
}

impl TrainingConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// The first value that makes no sense, named by its flag.
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        if self.epochs == 0 {
            return Err(Error::invalid("--epochs", "must be >= 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("--batch-size", "must be >= 1, got 0"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            let lr = self.learning_rate;
            return Err(Error::invalid(
                "--lr",
                format!("must be finite and > 0, got {lr}"),
            ));
        }
        self.schedule
            .validate()
            .map_err(|message| Error::invalid("temperature schedule", message))?;
        if self.model.hard && self.model.estimator == Estimator::ReinMax {
            let lowest = match self.schedule {
                TemperatureSchedule::Constant { tau } => tau,
                TemperatureSchedule::Exponential { tau_min, .. } => tau_min,
            };
            if lowest < 1.0 {
                return Err(Error::invalid(
                    "--estimator",
                    format!(
                        "reinmax needs tau >= 1 at every step (use --tau-min 1 or --tau 1), \
                         got a lowest tau of {lowest}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The measurements of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimizer steps done at the end of the epoch.
    pub step: u64,
    /// Temperature of the last step.
    pub tau: f64,
    /// Mean training negative ELBO over the epoch's steps (soft samples, as trained).
    pub train_nelbo: f64,
    /// Test-set evaluation at the end of the epoch.
    pub test: Evaluation,
    /// Wall time of the epoch's training steps, in seconds.
    pub seconds: f64,
    /// Training steps per second.
    pub steps_per_second: f64,
}

/// A test-set evaluation: one sample per image, batch means in nats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Negative ELBO with soft samples at the current temperature.
    pub nelbo_soft: f64,
    /// Negative ELBO with hard one-hot samples (as the paper evaluates).
    pub nelbo_hard: f64,
    /// Reconstruction term with soft samples.
    pub reconstruction_soft: f64,
    /// Reconstruction term with hard samples.
    pub reconstruction_hard: f64,
    /// KL term (the same for both: it depends on `q(z | x)` only).
    pub kl: f64,
}

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

/// Where a run writes, and whether it continues from its checkpoint.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint` instead of starting afresh.
    pub resume: bool,
    /// Show a progress bar (when the terminal allows).
    pub progress: bool,
}

/// The end of a run: the trained model (without autodiff) and its state.
#[derive(Debug)]
pub struct Trained {
    /// The model, on the plain device.
    pub model: CategoricalVae,
    /// Steps, epochs and metrics.
    pub state: TrainingState,
}

/// The seed of epoch `epoch`: a SplitMix64 step over `(seed, epoch)`.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many training steps between two reads of the summed loss.
const READ_EVERY: usize = 20;

/// Seed of the evaluation noise: fixed, so that evaluations compare across epochs and reloads.
const EVAL_SEED: u64 = 0x5EED;

/// Trains the VAE on `data.train`, evaluating on `data.test` after every epoch.
///
/// `on_epoch` is called with each epoch's metrics (the programs print them).
///
/// # Errors
/// An invalid configuration; an output folder that already holds a run while `resume` is off; a
/// checkpoint that is missing, damaged or from another configuration; an unwritable output folder;
/// dynamic binarization of data without grey levels.
pub fn train(
    config: &TrainingConfig,
    data: &Mnist,
    device: &Device,
    options: &RunOptions,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Result<Trained, Error> {
    config.validate()?;
    if config.binarize == Binarize::Dynamic && !data.train.has_grey_levels() {
        return Err(Error::invalid(
            "--binarize",
            "dynamic binarization needs grey levels: use full MNIST (--mnist DIR)",
        ));
    }
    let device = device.clone().without_autodiff();
    let train_device = device.clone().autodiff();
    let checkpoint = options.out_dir.join("checkpoint");

    device.seed(config.seed);
    let (mut model, mut optim, mut state) = if options.resume {
        load_checkpoint(config, &options.out_dir, &train_device)?
    } else {
        if checkpoint.exists() {
            return Err(Error::data(
                &checkpoint,
                "a run is already there: pass --resume to continue it, or choose another --out",
            ));
        }
        let model = config.model.init(&train_device);
        (model, AdamConfig::new().init(), TrainingState::default())
    };
    create_dir(&options.out_dir)?;
    write_file(
        &options.out_dir.join("config.json"),
        config_json(config).as_bytes(),
    )?;

    let steps_per_epoch = data.train.len().div_ceil(config.batch_size) as u64;
    for epoch in state.epochs_done..config.epochs {
        let seed = epoch_seed(config.seed, epoch);
        device.seed(seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        order.shuffle(&mut rng);

        let bar = progress_bar(options.progress, steps_per_epoch, epoch + 1, config.epochs);
        let started = Instant::now();
        // The loss is summed on the device and read back every READ_EVERY steps (for the progress
        // bar and the divergence check) rather than at every step, which would stop a GPU from
        // running ahead of the host.
        let mut loss_sum = Tensor::<1>::zeros([1], &train_device);
        let mut loss_total = 0.0;
        for (i, indices) in order.chunks(config.batch_size).enumerate() {
            let tau = config.schedule.tau(state.step);
            let x = batch_tensor(
                binarize(&data.train, indices, config.binarize, &mut rng),
                &train_device,
            );
            let output = model.forward(x.clone(), tau);
            let loss = negative_elbo(x, &output).loss;
            let grads = loss.backward();
            let grads = GradientsParams::from_grads(grads, &model);
            model = optim.step(config.learning_rate, model, grads);
            state.step += 1;
            loss_sum = loss_sum + loss.detach();
            if (i + 1) % READ_EVERY != 0 && (i + 1) as u64 != steps_per_epoch {
                continue;
            }
            loss_total = f64::from(loss_sum.clone().into_scalar::<f32>());
            if !loss_total.is_finite() {
                return Err(Error::invalid(
                    "training",
                    format!(
                        "the loss became {loss_total} by step {}; lower --lr",
                        state.step
                    ),
                ));
            }
            if let Some(bar) = &bar {
                let rate = (i + 1) as f64 / started.elapsed().as_secs_f64();
                let mean = loss_total / (i + 1) as f64;
                bar.set_message(format!("loss {mean:.1}  tau {tau:.3}  {rate:.1} steps/s"));
                bar.set_position((i + 1) as u64);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        // The temperature of the epoch's last step.
        let tau = config.schedule.tau(state.step.saturating_sub(1));

        let test = evaluate(&model.valid(), &data.test, config, tau, &device);
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            tau,
            train_nelbo: loss_total / steps_per_epoch as f64,
            test,
            seconds,
            steps_per_second: steps_per_epoch as f64 / seconds,
        };
        state.epochs_done = epoch + 1;
        state.history.push(metrics.clone());
        save_checkpoint(&model, &optim, &state, &options.out_dir)?;
        write_file(
            &options.out_dir.join("metrics.csv"),
            metrics_csv(&state.history).as_bytes(),
        )?;
        on_epoch(&metrics);
    }
    Ok(Trained {
        model: model.valid(),
        state,
    })
}

/// The negative ELBO of `images` under `model`, with soft and with hard samples.
///
/// The noise is seeded with a fixed seed, so the same model gives the same numbers. Test images
/// are binarized at 127, or for dynamic binarization drawn once from a fixed seed.
pub fn evaluate(
    model: &CategoricalVae,
    images: &Images,
    config: &TrainingConfig,
    tau: f64,
    device: &Device,
) -> Evaluation {
    device.seed(EVAL_SEED);
    let mut rng = StdRng::seed_from_u64(EVAL_SEED);
    let batch = 500;
    let (mut soft, mut hard, mut rec_soft, mut rec_hard, mut kl) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let indices: Vec<usize> = (0..images.len()).collect();
    for chunk in indices.chunks(batch) {
        let x = batch_tensor(binarize(images, chunk, config.binarize, &mut rng), device);
        let weight = chunk.len() as f64 / images.len() as f64;
        let read = |t: burn::tensor::Tensor<1>| f64::from(t.into_scalar::<f32>()) * weight;
        let e_soft = negative_elbo(x.clone(), &model.forward_sampled(x.clone(), tau, false));
        let e_hard = negative_elbo(x.clone(), &model.forward_sampled(x, tau, true));
        soft += read(e_soft.loss);
        rec_soft += read(e_soft.reconstruction);
        kl += read(e_soft.kl);
        hard += read(e_hard.loss);
        rec_hard += read(e_hard.reconstruction);
    }
    Evaluation {
        nelbo_soft: soft,
        nelbo_hard: hard,
        reconstruction_soft: rec_soft,
        reconstruction_hard: rec_hard,
        kl,
    }
}

/// Loads a run's configuration from `out_dir/config.json`.
///
/// # Errors
/// A missing or malformed file.
pub fn load_config(out_dir: &Path) -> Result<TrainingConfig, Error> {
    let path = out_dir.join("config.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::data(&path, e.to_string()))?;
    let config = parse_config(&text)
        .map_err(|e| Error::data(&path, format!("not a training configuration: {e}")))?;
    config
        .validate()
        .map_err(|e| Error::data(&path, e.to_string()))?;
    Ok(config)
}

/// Parses a `config.json`. Runs made before the VAE had `--estimator` have no `estimator` field:
/// they used straight-through, which is filled in (Burn's `Config` does not apply field defaults
/// when deserializing).
fn parse_config(text: &str) -> Result<TrainingConfig, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    if let Some(model) = value.get_mut("model").and_then(|m| m.as_object_mut()) {
        model
            .entry("estimator")
            .or_insert_with(|| serde_json::json!(Estimator::StraightThrough));
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
        return Err(Error::data(&path, "missing: no checkpoint in this folder"));
    }
    config
        .model
        .init(device)
        .try_load_file(&path)
        .map_err(|e| Error::data(&path, format!("cannot load the model: {e}")))
}

fn load_checkpoint(
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
        return Err(Error::data(
            &config_path,
            format!(
                "the checkpoint was trained with another configuration (model {:?}, batch {}, \
                 seed {}); resume with the same flags",
                saved.model, saved.batch_size, saved.seed
            ),
        ));
    }
    let model = load_model(config, out_dir, device)?;
    let dir = out_dir.join("checkpoint");
    let optim_path = dir.join("optimizer.bpk");
    let optim = AdamConfig::new()
        .init()
        .load(&optim_path)
        .map_err(|e| Error::data(&optim_path, format!("cannot load the optimizer: {e}")))?;
    Ok((model, optim, load_state(out_dir)?))
}

/// Loads the training state saved with the checkpoint in `out_dir`.
///
/// # Errors
/// A missing or malformed `checkpoint/state.json`.
pub fn load_state(out_dir: &Path) -> Result<TrainingState, Error> {
    let path = out_dir.join("checkpoint").join("state.json");
    let text = fs::read_to_string(&path).map_err(|e| Error::data(&path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::data(&path, format!("malformed: {e}")))
}

/// Writes the checkpoint into `checkpoint.tmp`, then swaps it for `checkpoint`: a crash leaves
/// either the old checkpoint or the new one, never half of one.
fn save_checkpoint(
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
        .map_err(|e| Error::data(&model_path, e.to_string()))?;
    let optim_path = tmp.join("optimizer.bpk");
    optim
        .save(&optim_path)
        .map_err(|e| Error::data(&optim_path, e.to_string()))?;
    let state_json = serde_json::to_string_pretty(state).expect("the state serializes");
    write_file(&tmp.join("state.json"), state_json.as_bytes())?;
    let _ = fs::remove_dir_all(&old);
    if dir.exists() {
        fs::rename(&dir, &old).map_err(|e| Error::data(&dir, e.to_string()))?;
    }
    fs::rename(&tmp, &dir).map_err(|e| Error::data(&dir, e.to_string()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// The configuration as pretty JSON.
pub fn config_json(config: &TrainingConfig) -> String {
    serde_json::to_string_pretty(config).expect("the configuration serializes")
}

/// The metrics as CSV, a header and one line per epoch.
pub fn metrics_csv(history: &[EpochMetrics]) -> String {
    let mut csv = String::from(
        "epoch,step,tau,train_nelbo,test_nelbo_soft,test_nelbo_hard,test_reconstruction_soft,\
         test_reconstruction_hard,test_kl,seconds,steps_per_second\n",
    );
    for m in history {
        csv.push_str(&format!(
            "{},{},{:.5},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.3},{:.3}\n",
            m.epoch,
            m.step,
            m.tau,
            m.train_nelbo,
            m.test.nelbo_soft,
            m.test.nelbo_hard,
            m.test.reconstruction_soft,
            m.test.reconstruction_hard,
            m.test.kl,
            m.seconds,
            m.steps_per_second
        ));
    }
    csv
}

fn create_dir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| Error::data(path, format!("cannot create: {e}")))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes).map_err(|e| Error::data(path, format!("cannot write: {e}")))
}

fn progress_bar(
    show: bool,
    steps: u64,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reinmax_below_tau_one_names_the_flag() {
        let config = TrainingConfig::new(
            VaeConfig::new()
                .with_hard(true)
                .with_estimator(Estimator::ReinMax),
        );
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "--estimator: reinmax needs tau >= 1 at every step (use --tau-min 1 or --tau 1), got \
             a lowest tau of 0.5"
        );
        let config = config.with_schedule(TemperatureSchedule::constant(1.0));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn nonsensical_values_name_their_flag() {
        let config = TrainingConfig::new(VaeConfig::new()).with_batch_size(0);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "--batch-size: must be >= 1, got 0"
        );
        let config = TrainingConfig::new(VaeConfig::new()).with_learning_rate(-1.0);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "--lr: must be finite and > 0, got -1"
        );
        let config = TrainingConfig::new(VaeConfig::new())
            .with_schedule(TemperatureSchedule::Constant { tau: 0.0 });
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "temperature schedule: tau must be finite and > 0, got 0"
        );
    }

    #[test]
    fn epoch_seeds_differ() {
        let seeds: Vec<u64> = (0..100).map(|e| epoch_seed(7, e)).collect();
        let mut unique = seeds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_ne!(epoch_seed(7, 0), epoch_seed(8, 0));
    }

    #[test]
    fn metrics_csv_has_a_line_per_epoch() {
        let test = Evaluation {
            nelbo_soft: 1.0,
            nelbo_hard: 2.0,
            reconstruction_soft: 0.5,
            reconstruction_hard: 1.5,
            kl: 0.5,
        };
        let m = EpochMetrics {
            epoch: 1,
            step: 100,
            tau: 0.9,
            train_nelbo: 3.0,
            test,
            seconds: 2.0,
            steps_per_second: 50.0,
        };
        let csv = metrics_csv(&[m.clone(), EpochMetrics { epoch: 2, ..m }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("1,100,0.90000,3.0000,1.0000,2.0000"));
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
    }
}
