//! Training through burn-train: the run's configuration, [`train`] (a `SupervisedTraining` of a
//! `Learner` on one or several devices, with durable checkpoints and resume) and [`evaluate`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::{Checkpointer, KeepLastNCheckpoints};
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining, TrainingStrategy,
};
use categorical_vae::Error;
use categorical_vae::data::{DataSource, Mnist};
use categorical_vae::files::{lock_run, write_atomic};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{DurableCheckpointer, RECORDS, checkpoint_dir, last_complete_epoch};
use crate::data::{DigitBatcher, Digits};
use crate::learner::{Quantity, VaeMetric};
use crate::model::{DiscreteVae, DiscreteVaeConfig, negative_elbo};
use crate::renderer::renderer;

/// Every setting of a run; stored as the run folder's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The model.
    pub model: DiscreteVaeConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimizer step, split evenly over the devices (each device's batch is
    /// `batch_size / devices`, and their gradients are summed): the same step as on one device.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the initialization, the data order and the noise.
    pub seed: u64,
    /// Where the images come from.
    pub data: DataSource,
    /// Devices trained on in parallel (burn-train's multi-device strategy), `≥ 1`.
    pub devices: usize,
}

impl RunConfig {
    /// The defaults of the `discrete_vae` binary for `data`.
    pub fn new(data: DataSource) -> Self {
        Self {
            model: DiscreteVaeConfig::new(),
            epochs: 10,
            batch_size: 100,
            learning_rate: 1e-3,
            seed: 0,
            data,
            devices: 1,
        }
    }

    /// Checks every setting, naming the flag of the one that is wrong.
    ///
    /// # Errors
    /// As [`DiscreteVaeConfig::validate`]; zero epochs, batch size or devices; a batch size
    /// that the devices do not divide; a learning rate that is not finite and `> 0`.
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        for (flag, value) in [
            ("--epochs", self.epochs),
            ("--batch-size", self.batch_size),
            ("--devices", self.devices),
        ] {
            if value == 0 {
                return Err(Error::invalid(flag, "must be at least 1, got 0"));
            }
        }
        if !self.batch_size.is_multiple_of(self.devices) {
            return Err(Error::invalid(
                "--batch-size",
                format!(
                    "must be a multiple of --devices ({}) to split evenly, got {}",
                    self.devices, self.batch_size
                ),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid(
                "--lr",
                format!("must be finite and > 0, got {}", self.learning_rate),
            ));
        }
        Ok(())
    }
}

/// The file of a run's configuration.
pub fn config_path(run: &Path) -> PathBuf {
    run.join("config.json")
}

/// Reads a run's `config.json`.
///
/// # Errors
/// A missing or malformed file.
pub fn load_config(run: &Path) -> Result<RunConfig, Error> {
    let path = config_path(run);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("malformed: {e}")))
}

/// How [`train`] runs.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the folder from its newest complete checkpoint.
    pub resume: bool,
    /// Plain lines even on a terminal, instead of burn-train's dashboard.
    pub plain: bool,
    /// A handle to stop training after the current step (e.g. on a signal).
    pub interrupter: Option<Interrupter>,
}

/// What a finished (or stopped) training returns.
pub struct Outcome {
    /// The trained model, off the autodiff graph.
    pub model: DiscreteVae,
    /// The images (the test set is the validation set).
    pub mnist: Mnist,
    /// The epoch resumed from, if any.
    pub resumed_from: Option<usize>,
    /// Optimizer steps done in all, and in this process.
    pub steps: (u64, u64),
    /// Seconds this process spent in burn-train's loop.
    pub seconds: f64,
    /// Why training stopped early, if it did.
    pub interrupted: Option<String>,
}

/// Trains `config` in the folder `run` on `device` (and `config.devices − 1` more of its kind):
/// burn-train's `SupervisedTraining` with a [`VaeMetric`] of each [`Quantity`] on the training and
/// test sets, its file logging (`run/train/`, `run/valid/`, `run/experiment.log`), and a
/// checkpoint of the model, Adam and the scheduler after every epoch in `run/checkpoint/`
/// (written by [`DurableCheckpointer`], the last two kept).
///
/// A new run writes `run/config.json` and refuses a folder that already holds one; with
/// `options.resume`, the run continues from its newest complete checkpoint, with the settings
/// of `config` (the caller reads them from `config.json`).
///
/// # Errors
/// A folder in use by another run, or holding a run when not resuming; data that cannot be read;
/// a file that cannot be written; an error that stopped burn-train.
pub fn train(
    config: &RunConfig,
    device: &Device,
    run: &Path,
    options: RunOptions,
) -> Result<Outcome, Error> {
    config.validate()?;
    std::fs::create_dir_all(run).map_err(|e| Error::file(run, format!("cannot create: {e}")))?;
    let _lock = lock_run(run)?;
    let checkpoints = checkpoint_dir(run);
    // The data first: a run that cannot read its data leaves no configuration behind.
    let mnist = config.data.load()?;
    let resumed_from = if options.resume {
        last_complete_epoch(&checkpoints)?
    } else {
        if config_path(run).exists() {
            return Err(Error::file(
                run,
                "holds a run already: continue it with --resume, or choose another --out",
            ));
        }
        let json = serde_json::to_string_pretty(config).expect("a configuration serializes");
        write_atomic(&config_path(run), json.as_bytes())?;
        None
    };
    let train_set = Digits::new(mnist.train.clone());
    let test_set = Digits::new(mnist.test.clone());

    device.seed(config.seed);
    let model = config.model.init(&device.clone().autodiff());
    let [
        model_checkpointer,
        optim_checkpointer,
        scheduler_checkpointer,
    ] = RECORDS.map(|name| DurableCheckpointer::new(&checkpoints, name));
    let (model_checkpointer, optim_checkpointer, scheduler_checkpointer) = (
        model_checkpointer?,
        optim_checkpointer?,
        scheduler_checkpointer?,
    );
    // burn-train panics on a checkpoint it cannot load: read the three records first, so that a
    // damaged one is a one-line error naming it.
    let steps_before = match resumed_from {
        Some(epoch) => {
            let unreadable = |name: &str, e: String| {
                let path = checkpoints.join(format!("{name}-{epoch}.bpk"));
                Error::file(&path, format!("cannot load: {e}"))
            };
            Checkpointer::<OptimizerRecord>::restore(&optim_checkpointer, epoch)
                .map_err(|e| unreadable("optim", e.to_string()))?;
            Checkpointer::<LrSchedulerRecord>::restore(&scheduler_checkpointer, epoch)
                .map_err(|e| unreadable("scheduler", e.to_string()))?;
            let record = Checkpointer::<ModuleRecord>::restore(&model_checkpointer, epoch)
                .map_err(|e| unreadable("model", e.to_string()))?;
            model
                .clone()
                .try_load_record(record)
                .map_err(|e| unreadable("model", e.to_string()))?
                .step()
        }
        None => 0,
    };
    // burn-train's multi-device strategy gives each device its share of the data, in batches
    // of the loader's size: `batch_size / devices` images per device and step.
    let per_device = config.batch_size / config.devices;
    let loader = |shuffle: bool, set: Digits, batch_size: usize| {
        let builder = DataLoaderBuilder::new(DigitBatcher)
            .batch_size(batch_size)
            .set_device(device.clone());
        let builder = if shuffle {
            builder.shuffle(config.seed)
        } else {
            builder
        };
        builder.build(set)
    };
    let learner = Learner::new(model, AdamConfig::new().init(), config.learning_rate);
    let interrupter = options.interrupter.unwrap_or_default();
    let mut training = SupervisedTraining::new(
        run,
        loader(true, train_set, per_device),
        loader(false, test_set, config.batch_size),
    )
    .metrics((
        VaeMetric::new(Quantity::NegativeElbo),
        VaeMetric::new(Quantity::Reconstruction),
        VaeMetric::new(Quantity::Kl),
        VaeMetric::new(Quantity::Temperature),
        VaeMetric::new(Quantity::Perplexity),
    ))
    .with_custom_checkpointers(
        model_checkpointer,
        optim_checkpointer,
        scheduler_checkpointer,
    )
    .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
    .num_epochs(config.epochs)
    .with_interrupter(interrupter.clone())
    .renderer(renderer(options.plain, interrupter, resumed_from));
    if let Some(epoch) = resumed_from {
        training = training.checkpoint(epoch);
    }
    if config.devices > 1 {
        let devices = vec![device.clone(); config.devices];
        training = training.with_training_strategy(TrainingStrategy::Default(
            ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice),
        ));
    }
    let start = Instant::now();
    let result = training.launch(learner);
    let seconds = start.elapsed().as_secs_f64();
    if let Some(error) = result.error {
        return Err(Error::file(run, format!("training failed: {error}")));
    }
    let model = result.model;
    let steps = model.step();
    Ok(Outcome {
        model,
        mnist,
        resumed_from,
        steps: (steps, steps - steps_before.min(steps)),
        seconds,
        interrupted: result
            .interrupted
            .map(|i| i.reason.unwrap_or_else(|| "stopped".to_string())),
    })
}

/// The test negative ELBO and its terms, in nats per image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// With one-hot codes (as the model decodes at test time).
    pub nelbo_hard: f64,
    /// With soft codes at the same temperature.
    pub nelbo_soft: f64,
    /// The reconstruction term with one-hot codes.
    pub reconstruction_hard: f64,
    /// The KL term (the same for both).
    pub kl: f64,
}

/// The negative ELBO of `model` (at its temperature) on `digits`, one sample per image with the
/// noise of `seed`, with hard and with soft codes: the means over the images of the terms of
/// [`negative_elbo`].
pub fn evaluate(model: &DiscreteVae, digits: &Digits, batch_size: usize, seed: u64) -> Evaluation {
    let model = model.clone().valid();
    let [nelbo_hard, reconstruction_hard, kl] = mean_terms(&model, digits, batch_size, seed);
    let [nelbo_soft, _, _] = mean_terms(&model.with_soft_codes(), digits, batch_size, seed);
    Evaluation {
        nelbo_hard,
        nelbo_soft,
        reconstruction_hard,
        kl,
    }
}

/// The negative ELBO, reconstruction and KL of `model` averaged over `digits`, after seeding
/// the device with `seed`.
fn mean_terms(model: &DiscreteVae, digits: &Digits, batch_size: usize, seed: u64) -> [f64; 3] {
    let device = model.devices()[0].clone();
    device.seed(seed);
    let mut total = [0.0f64; 3];
    for images in digits.batches(batch_size, &device) {
        let n = images.dims()[0] as f64;
        let elbo = negative_elbo(images.clone(), &model.forward(images));
        for (sum, term) in total
            .iter_mut()
            .zip([elbo.loss, elbo.reconstruction, elbo.kl])
        {
            *sum += n * term.into_scalar::<f32>() as f64;
        }
    }
    total.map(|sum| sum / digits.len() as f64)
}

/// Writes `run/evaluation.json`: the optimizer steps, the [`Evaluation`] and the
/// independent-pixel baseline ([`independent_pixels_nll`]).
///
/// # Errors
/// An unwritable file.
pub fn write_evaluation(
    run: &Path,
    steps: u64,
    evaluation: &Evaluation,
    independent_pixels: f64,
) -> Result<(), Error> {
    let json = serde_json::json!({
        "steps": steps,
        "evaluation": evaluation,
        "independent_pixels": independent_pixels,
    });
    let text = serde_json::to_string_pretty(&json).expect("numbers serialize");
    write_atomic(&run.join("evaluation.json"), text.as_bytes())
}

/// The negative log-likelihood, in nats per image, of `test` under the best model of independent
/// pixels fitted to `train`: each pixel Bernoulli with its training frequency (clamped to
/// `[1e-3, 1 − 1e-3]`). What a VAE must beat to have learned anything about shapes.
pub fn independent_pixels_nll(train: &Digits, test: &Digits) -> f64 {
    let pixels = categorical_vae::data::PIXELS;
    let mut on = vec![0.0f64; pixels];
    for i in 0..train.len() {
        for (count, &x) in on.iter_mut().zip(&train.get(i).expect("in range").0) {
            *count += f64::from(x);
        }
    }
    let p: Vec<f64> = on
        .iter()
        .map(|&c| (c / train.len() as f64).clamp(1e-3, 1.0 - 1e-3))
        .collect();
    let mut nll = 0.0;
    for i in 0..test.len() {
        for (&p, &x) in p.iter().zip(&test.get(i).expect("in range").0) {
            nll -= if x > 0.5 { p.ln() } else { (1.0 - p).ln() };
        }
    }
    nll / test.len() as f64
}
