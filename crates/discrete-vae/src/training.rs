//! Training through burn-train: [`train`] (a `SupervisedTraining` of a `Learner` on one or
//! several devices, with durable checkpoints and an exact resume) and [`run`], the whole run
//! under the folder's lock. The run's configuration ([`RunConfig`]) and [`evaluate`] are
//! re-exported here from `config.rs` and `evaluation.rs`, where they live.
//!
//! A run folder holds `config.json` (the [`RunConfig`]), `metrics.csv` (a line per epoch),
//! burn-train's `experiment.log`, `checkpoint/` (see [`crate::checkpoint`]), `.lock`, and at the
//! end `evaluation.json` and the pictures. What is safe to do with it is the categorical VAE's: kill
//! the run at any instant and `--resume`; stop it with Ctrl-C or SIGTERM (it saves the step it
//! reached); copy the folder while no run holds it.
//!
//! Exact resume: the data order of an epoch is a function of `(seed, epoch)` ([`EpochLoader`]),
//! the noise of a step a function of `(seed, step, batch)` ([`DiscreteVae::noise_key`]), and Adam's
//! state is in the checkpoint: a run resumed from any checkpoint trains to the weights of the run
//! that was never stopped, bit for bit on one device. A checkpoint inside an epoch also keeps the
//! training metrics' sums of the epoch so far, so that the resumed epoch's means are the
//! uninterrupted run's.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::{Checkpointer, KeepLastNCheckpoints};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining, TrainingStrategy,
};
use mnist_run::Error;
use mnist_run::checks::check_data;
use mnist_run::data::Mnist;
use mnist_run::files::{RunLock, create_dir, lock_run};
use mnist_run::resume::{check_epochs, check_fresh, check_same_settings};
use mnist_run::signals::StopFlag;

pub use crate::config::{MAX_DEVICES, RunConfig, config_path, load_config};
pub use crate::evaluation::{Evaluation, evaluate, independent_pixels_nll, write_evaluation};

use crate::checkpoint::{
    Found, Position, checkpoint_dir, checkpointers, latest, remove_leftovers, save_mid,
};
use crate::config::save_config;
use crate::data::{DigitBatcher, Digits, EpochLoader};
use crate::learner::{Quantity, VaeMetric};
use crate::model::DiscreteVae;
use crate::renderer::{MetricsCsv, renderer};
use crate::report::write_pictures;
use crate::watch::{Stop, Watch};

/// How [`train`] runs.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the folder from its newest complete checkpoint.
    pub resume: bool,
    /// Plain lines even on a terminal, without a progress bar.
    pub plain: bool,
    /// Set by a signal ([`StopFlag::on_signals`]) to stop: training finishes its step, saves a
    /// checkpoint of it and returns [`Error::Interrupted`].
    pub stop: Option<StopFlag>,
}

/// What [`train`] reports as it goes (the program prints it).
#[derive(Debug)]
pub enum Event {
    /// A newer checkpoint was refused (damaged, or a mix of two processes' records): the
    /// one-line error.
    PassedOver(String),
    /// Training continues from a checkpoint.
    Resumed(Position),
    /// `--resume` found the configuration but no checkpoint: training starts from the beginning.
    Restarted,
    /// `--resume` asked for more epochs than the run had; recorded in `config.json`.
    EpochsExtended {
        /// The number the run had.
        from: usize,
        /// The number it now has.
        to: usize,
    },
}

/// What a finished training returns.
pub struct Outcome {
    /// The trained model, off the autodiff graph.
    pub model: DiscreteVae,
    /// The images (the test set is the validation set).
    pub mnist: Mnist,
    /// The checkpoint resumed from, if any.
    pub resumed_from: Option<Position>,
    /// Optimizer steps done in all, and in this process.
    pub steps: (u64, u64),
    /// Seconds this process spent in burn-train's loop.
    pub seconds: f64,
    /// The run folder's lock: held until the outcome is dropped, so that nothing else writes
    /// into the folder while the caller evaluates and draws.
    pub lock: RunLock,
}

/// Trains `config` in the folder `run` on `device` (and `config.devices − 1` more of its kind):
/// burn-train's `SupervisedTraining` with a [`VaeMetric`] of each [`Quantity`] on the training and
/// test sets, its file logging, and a checkpoint after every epoch (the last two kept).
///
/// A new run refuses a folder that holds one, then checks its data before it writes
/// `config.json`. With `options.resume`, `config` must be the stored one but for `epochs`, which
/// may only grow (recorded); the run continues from its newest complete checkpoint, or from its
/// beginning if it has none. `on_event` hears of the resume.
///
/// # Errors
/// Invalid settings; empty data; a folder in use, or holding a run when not resuming, or one
/// made with other settings; no complete checkpoint where some exist; the loss became NaN or
/// infinite (the checkpoints keep the last finite epoch); a signal
/// ([`Error::Interrupted`], after the checkpoint of the step reached); a file that cannot be
/// written; an error that stopped burn-train.
pub fn train(
    config: &RunConfig,
    device: &Device,
    run: &Path,
    options: RunOptions,
    mut on_event: impl FnMut(Event),
) -> Result<Outcome, Error> {
    config.validate()?;
    if !options.resume {
        check_fresh(run)?;
    }
    // The data before any file: a run refused for its data leaves nothing behind.
    let mnist = config.data.load()?;
    check_data(&mnist)?;
    create_dir(run)?;
    let lock = lock_run(run)?;
    let checkpoints = checkpoint_dir(run);
    let found = if options.resume {
        resume_from(config, run, &mut on_event)?
    } else {
        check_fresh(run)?; // another run may have written here before the lock
        save_config(config, run)?;
        None
    };
    create_dir(&checkpoints)?;
    remove_leftovers(&checkpoints)?;
    let position = found.as_ref().map(|f| f.position);
    let done_epochs = position.map_or(0, |p| p.epochs);

    let steps_per_epoch = config.steps_per_epoch(mnist.train.len());
    let interrupter = Interrupter::new();
    let watch = Arc::new(Watch::new(
        interrupter.clone(),
        options.stop.clone().unwrap_or_default(),
        config.learning_rate,
        steps_per_epoch,
    ));
    device.seed(config.seed);
    let mut model = config
        .model
        .init(&device.clone().autodiff())
        .with_seed(config.seed)
        .with_watch(watch.clone());
    let [model_ckpt, optim_ckpt, scheduler_ckpt] =
        checkpointers(&checkpoints, found.as_ref().map(|f| f.generation))?;
    // burn-train panics on a record it cannot load: read the three first, so that an unreadable
    // one is a one-line error naming it, and take the step counter from the model's.
    if let Some(found) = &found {
        let unreadable = |name: &str, e: String| {
            let path = found.generation.record(&checkpoints, name);
            Error::file(&path, format!("cannot load: {e}"))
        };
        Checkpointer::<OptimizerRecord>::restore(&optim_ckpt, found.position.epochs)
            .map_err(|e| unreadable("optim", e.to_string()))?;
        Checkpointer::<LrSchedulerRecord>::restore(&scheduler_ckpt, found.position.epochs)
            .map_err(|e| unreadable("scheduler", e.to_string()))?;
        let record = Checkpointer::<ModuleRecord>::restore(&model_ckpt, found.position.epochs)
            .map_err(|e| unreadable("model", e.to_string()))?;
        model = model
            .try_load_record(record)
            .map_err(|e| unreadable("model", e.to_string()))?
            .with_loaded_step();
    }
    let steps_before = model.step();

    // burn-train's multi-device strategy gives each device its share of the data, in batches
    // of the loader's size: `batch_size / devices` images per device and step.
    let per_device = config.batch_size / config.devices;
    let (epoch, skip) = position.map_or((0, 0), |p| (p.epochs as u64, p.steps_in_epoch as usize));
    let train_loader: Arc<dyn DataLoader<_>> = Arc::new(EpochLoader::new(
        Digits::new(mnist.train.clone()),
        per_device,
        config.seed,
        device,
        epoch,
        skip,
    ));
    let valid_loader = DataLoaderBuilder::new(DigitBatcher)
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(Digits::new(mnist.test.clone()));
    let learner = Learner::new(model, config.optimizer().init(), config.learning_rate);
    let mut training = SupervisedTraining::new(run, train_loader, valid_loader);
    // The training metrics continue the sums of the epoch a `mid` checkpoint stopped inside.
    let sums = found.as_ref().map(|f| f.sums.clone()).unwrap_or_default();
    for quantity in Quantity::ALL {
        let watched = |metric: VaeMetric| match quantity {
            Quantity::NegativeElbo => metric.watching(watch.clone()),
            _ => metric,
        };
        let seed = sums.get(quantity.name()).copied();
        training = training
            .metric_train_numeric(watched(VaeMetric::new(quantity)).training(watch.clone(), seed))
            .metric_valid_numeric(watched(VaeMetric::new(quantity)));
    }
    let mut training = training
        .with_custom_checkpointers(model_ckpt, optim_ckpt, scheduler_ckpt)
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .num_epochs(config.epochs)
        .with_interrupter(interrupter)
        // burn-train's file logger panics on a full disk: the metrics stay in memory, and the
        // renderer writes `metrics.csv` (atomically, an error ending the run) at each epoch.
        .with_metric_logger(InMemoryMetricLogger::new())
        .renderer(renderer(
            options.plain,
            Some(MetricsCsv::open(
                &run.join("metrics.csv"),
                done_epochs,
                watch.clone(),
            )?),
        ));
    if let Some(position) = position
        && (position.epochs > 0 || position.steps_in_epoch > 0)
    {
        training = training.checkpoint(position.epochs);
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
    match watch.take_stop() {
        Some(Stop::Diverged(error) | Stop::Failed(error)) => return Err(error),
        Some(Stop::Signal {
            signal,
            position,
            step,
            records,
        }) => {
            // burn-train's loop has ended and its metrics have seen every step: their sums
            // are complete.
            let [model, optim, scheduler] = records.map_err(|e| {
                Error::file(&checkpoints, format!("cannot encode the checkpoint: {e}"))
            })?;
            save_mid(
                &checkpoints,
                position,
                [&model, &optim, &scheduler],
                &watch.sums(),
            )?;
            return Err(Error::Interrupted {
                signal,
                checkpoint: format!(
                    "mid (epoch {} + {} steps)",
                    position.epochs, position.steps_in_epoch
                ),
                step,
            });
        }
        None => {}
    }
    if let Some(error) = result.error {
        return Err(Error::file(run, format!("training failed: {error}")));
    }
    if let Some(interruption) = result.interrupted {
        let reason = interruption.reason.unwrap_or_else(|| "stopped".to_string());
        return Err(Error::file(run, format!("training stopped: {reason}")));
    }
    let model = result.model;
    let steps = model.step();
    Ok(Outcome {
        model,
        mnist,
        resumed_from: position,
        steps: (steps, steps - steps_before.min(steps)),
        seconds,
        lock,
    })
}

/// The checkpoint a resumed run continues from, after checking `config` against the stored one
/// and recording a grown number of epochs.
fn resume_from(
    config: &RunConfig,
    run: &Path,
    on_event: &mut impl FnMut(Event),
) -> Result<Option<Found>, Error> {
    let stored = load_config(run)?;
    check_same_settings(&stored, config, &config_path(run))?;
    let found = latest(&checkpoint_dir(run))?;
    let done = found.as_ref().map_or(0, |f| f.position.epochs);
    if let Some((from, to)) = check_epochs(stored.epochs, done, config.epochs)? {
        save_config(config, run)?;
        on_event(Event::EpochsExtended { from, to });
    }
    match &found {
        Some(found) => {
            for refused in &found.passed_over {
                on_event(Event::PassedOver(refused.clone()));
            }
            on_event(Event::Resumed(found.position));
        }
        None => on_event(Event::Restarted),
    }
    Ok(found)
}

/// What a whole run reports.
pub struct Report {
    /// The checkpoint resumed from, if any.
    pub resumed_from: Option<Position>,
    /// Optimizer steps done in all, and in this process.
    pub steps: (u64, u64),
    /// Seconds this process spent in burn-train's loop.
    pub seconds: f64,
    /// The test evaluation.
    pub evaluation: Evaluation,
    /// The independent-pixel baseline of the test set.
    pub independent_pixels: f64,
    /// How often each code is used on the test set, fractions.
    pub usage: Vec<f64>,
}

/// The whole run, under the folder's lock from its start to its last file: [`train`], then the
/// test evaluation (`evaluation.json`) and the pictures (`reconstructions.png`, `samples.png`,
/// `code-usage.png`), of weights that are in the last checkpoint.
///
/// # Errors
/// As [`train`]; a picture or `evaluation.json` that cannot be written.
pub fn run(
    config: &RunConfig,
    device: &Device,
    dir: &Path,
    options: RunOptions,
    on_event: impl FnMut(Event),
) -> Result<Report, Error> {
    let outcome = train(config, device, dir, options, on_event)?;
    let test = Digits::new(outcome.mnist.test.clone());
    let train_set = Digits::new(outcome.mnist.train.clone());
    let evaluation = evaluate(&outcome.model, &test, 500, config.seed);
    let independent_pixels = independent_pixels_nll(&train_set, &test);
    write_evaluation(dir, outcome.steps.0, &evaluation, independent_pixels)?;
    let usage = write_pictures(&outcome.model, &test, config.seed, dir)?;
    Ok(Report {
        resumed_from: outcome.resumed_from,
        steps: outcome.steps,
        seconds: outcome.seconds,
        evaluation,
        independent_pixels,
        usage,
    })
}
