//! The training loop: epochs of shuffled batches, one optimizer step each, an evaluation and a
//! checkpoint after every epoch.
//!
//! A run writes into its output folder:
//! - `config.json`: the [`TrainingConfig`];
//! - `checkpoint/step-NNNNNNNNNN/`: `model.bpk` and `optimizer.bpk` (Burn's `save_file` format),
//!   `state.json` (epochs done, step, the metrics so far) and `manifest.json` (their SHA-256), a
//!   new generation after every epoch (see [`crate::checkpoint`]), so that an interrupted run
//!   loses at most the epoch in progress;
//! - `metrics.csv`: one line per epoch;
//! - `.lock`: the lock that keeps a second run out while this one trains.
//!
//! Every file is written atomically and durably ([`mnist_run::files`]).
//!
//! Every epoch reseeds the device and the data shuffle from `(seed, epoch)`, so a run resumed from
//! a checkpoint continues exactly as the uninterrupted run would have.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::checkpoint::{
    Checkpoint, TrainingState, generation_name, latest_checkpoint, load_config, save_checkpoint,
    save_config,
};
use crate::config::TrainingConfig;
use crate::evaluation::evaluate;
use crate::metrics::{EpochMetrics, metrics_csv, progress_bar};
use crate::model::{CategoricalVae, negative_elbo};
use mnist_run::Error;
use mnist_run::data::{Binarize, Mnist, batch_tensor, binarize};
use mnist_run::files::{create_dir, fault_point, lock_run, write_atomic};
use mnist_run::signals::StopFlag;
use mnist_run::{checks, resume};

/// Where a run writes, and whether it continues from its checkpoint.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint` instead of starting afresh.
    pub resume: bool,
    /// Show a progress bar (when the terminal allows).
    pub progress: bool,
    /// Set by a signal ([`StopFlag::on_signals`]) to stop: training finishes its step, saves a
    /// checkpoint of its position inside the epoch and returns [`Error::Interrupted`].
    pub interrupt: Option<StopFlag>,
}

impl RunOptions {
    /// A fresh run into `out_dir`, without a progress bar and without a signal flag.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            resume: false,
            progress: false,
            interrupt: None,
        }
    }

    /// The same options, continuing the run in the folder (or not).
    pub fn with_resume(self, resume: bool) -> Self {
        Self { resume, ..self }
    }
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

/// What [`train`] reports as it goes (the programs print it).
#[derive(Debug)]
pub enum Event<'a> {
    /// Training continues from a checkpoint generation.
    Resumed {
        /// The generation's name, `step-NNNNNNNNNN`.
        checkpoint: String,
        /// Epochs completed in it.
        epochs_done: usize,
        /// Optimizer steps done in it.
        step: u64,
    },
    /// `--resume` found the configuration but no complete checkpoint (the run was stopped before
    /// its first one): training starts from the beginning.
    Restarted,
    /// `--resume` asked for more epochs than the run was started with.
    EpochsExtended {
        /// The number the run had.
        from: usize,
        /// The number it now has.
        to: usize,
    },
    /// An epoch ended: its metrics.
    Epoch(&'a EpochMetrics),
}

/// Trains the VAE on `data.train`, evaluating on `data.test` after every epoch.
///
/// The run folder is locked for the whole run (a second run into it is refused). A fresh run needs
/// a folder without a run; with `resume`, the run continues from its newest complete checkpoint
/// (or from its beginning if it has none yet), and `config` must be the stored one but for
/// `epochs`, which may grow. `on_event` hears of the resume and of each epoch.
///
/// # Errors
/// An invalid configuration or empty data; an output folder that already holds a run while
/// `resume` is off, or is in use; a configuration that differs from the stored one; a damaged
/// checkpoint; an unwritable output folder; dynamic binarization of data without grey levels.
pub fn train(
    config: &TrainingConfig,
    data: &Mnist,
    device: &Device,
    options: &RunOptions,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Trained, Error> {
    config.validate()?;
    check_data(config, data)?;
    let device = device.clone().without_autodiff();
    let train_device = device.clone().autodiff();
    let out = &options.out_dir;

    if !options.resume {
        resume::check_fresh(out)?;
    }
    create_dir(out)?;
    let _lock = lock_run(out)?;
    let checkpoint = match options.resume {
        true => resume_from(config, out, &mut on_event)?,
        false => {
            // Another run may have written here between the check above and the lock.
            resume::check_fresh(out)?;
            save_config(config, out)?;
            None
        }
    };
    device.seed(config.seed);
    let (mut model, mut optim, mut state) = match checkpoint {
        Some(checkpoint) => (
            checkpoint.load_model(config, &train_device)?,
            checkpoint.load_optimizer(config)?,
            checkpoint.state,
        ),
        None => (
            config.model.init(&train_device),
            config.optimizer().init(),
            TrainingState::default(),
        ),
    };

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
        // A checkpoint written on a signal holds the position inside the epoch: its steps are
        // replayed without training (the same batches, and forward passes that draw the same
        // noise), so that the generators are where the uninterrupted run had them.
        let skip = std::mem::take(&mut state.steps_in_epoch);
        let mut loss_sum =
            Tensor::<1>::from_floats([std::mem::take(&mut state.loss_sum)], &train_device);
        for (i, indices) in order.chunks(config.batch_size).enumerate() {
            let tau = config.schedule.tau(state.step);
            let x = batch_tensor(
                binarize(&data.train, indices, config.binarize, &mut rng),
                &train_device,
            );
            if (i as u64) < skip {
                let step = state.step - skip + i as u64;
                let tau = config.schedule.tau(step);
                if step == 0 {
                    // Burn initializes parameters lazily: the run's first forward pass also drew
                    // the initial weights. A fresh model's first pass draws the same.
                    drop(config.model.init(&train_device).forward(x, tau));
                } else {
                    drop(model.forward(x, tau));
                }
                continue;
            }
            let loss;
            (model, loss) = train_step(model, &mut optim, x, tau, config.learning_rate);
            state.step += 1;
            fault_point("training step");
            loss_sum = loss_sum + loss;
            if let Some(signal) = interrupted(options) {
                state.steps_in_epoch = i as u64 + 1;
                state.loss_sum = loss_sum.into_scalar::<f32>();
                save_checkpoint(&model, &optim, &state, out)?;
                return Err(Error::Interrupted {
                    signal,
                    checkpoint: generation_name(&state),
                    step: state.step,
                });
            }
            if (i + 1) % READ_EVERY != 0 {
                continue;
            }
            let loss_total = finite_loss(&loss_sum, state.step)?;
            if let Some(bar) = &bar {
                let rate = (i + 1) as f64 / started.elapsed().as_secs_f64();
                let mean = loss_total / (i + 1) as f64;
                bar.set_message(format!("loss {mean:.1}  tau {tau:.3}  {rate:.1} steps/s"));
                bar.set_position((i + 1) as u64);
            }
        }
        // The epoch's sum, read once at its end (also when a resumed epoch had no step left).
        let loss_total = finite_loss(&loss_sum, state.step)?;
        let seconds = started.elapsed().as_secs_f64();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let tau = state.last_tau(&config.schedule);

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
        save_checkpoint(&model, &optim, &state, out)?;
        write_atomic(
            &out.join("metrics.csv"),
            metrics_csv(&state.history).as_bytes(),
        )?;
        on_event(Event::Epoch(&metrics));
    }
    Ok(Trained {
        model: model.valid(),
        state,
    })
}

/// The summed loss read back from the device, refused when it is not finite (the run diverged).
fn finite_loss(loss_sum: &Tensor<1>, step: u64) -> Result<f64, Error> {
    checks::finite_loss(f64::from(loss_sum.clone().into_scalar::<f32>()), step)
}

/// The signal that asked the run to stop, if one did.
fn interrupted(options: &RunOptions) -> Option<usize> {
    options.interrupt.as_ref()?.requested()
}

/// Refuses data a run cannot use, before any work: an empty split ([`checks::check_data`]), or
/// dynamic binarization of images without grey levels.
fn check_data(config: &TrainingConfig, data: &Mnist) -> Result<(), Error> {
    checks::check_data(data)?;
    if config.binarize == Binarize::Dynamic && !data.train.has_grey_levels() {
        return Err(Error::invalid(
            "binarize",
            "dynamic binarization needs grey levels: use full MNIST, not the embedded subset",
        ));
    }
    Ok(())
}

/// The checkpoint a resumed run continues from, after checking `config` against the stored one.
fn resume_from(
    config: &TrainingConfig,
    out: &Path,
    on_event: &mut impl FnMut(Event<'_>),
) -> Result<Option<Checkpoint>, Error> {
    let saved = load_config(out)?;
    resume::check_same_settings(&saved, config, &out.join("config.json"))?;
    let checkpoint = latest_checkpoint(out)?;
    let done = checkpoint.as_ref().map_or(0, |c| c.state.epochs_done);
    resume::check_epochs(saved.epochs, done, config.epochs)?;
    if config.epochs > saved.epochs {
        save_config(config, out)?;
        on_event(Event::EpochsExtended {
            from: saved.epochs,
            to: config.epochs,
        });
    }
    match &checkpoint {
        Some(c) => on_event(Event::Resumed {
            checkpoint: c.name(),
            epochs_done: c.state.epochs_done,
            step: c.state.step,
        }),
        None => on_event(Event::Restarted),
    }
    Ok(checkpoint)
}

/// One optimizer step on the batch `x` (`[batch, 784]`, binary pixels) at temperature `tau`: the
/// negative ELBO of the model's samples, its gradient, Adam's update at `learning_rate`. Returns
/// the updated model and the loss, `[1]`, still on the device (reading it would stop a GPU from
/// running ahead). The trainer and the benchmark `vae_step` both call it.
pub fn train_step(
    model: CategoricalVae,
    optim: &mut ModuleOptimizer,
    x: Tensor<2>,
    tau: f64,
    learning_rate: f64,
) -> (CategoricalVae, Tensor<1>) {
    let output = model.forward(x.clone(), tau);
    let loss = negative_elbo(x, &output).loss;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(learning_rate, model, grads), loss.detach())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seeds_differ() {
        let seeds: Vec<u64> = (0..100).map(|e| epoch_seed(7, e)).collect();
        let mut unique = seeds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_ne!(epoch_seed(7, 0), epoch_seed(8, 0));
    }
}
