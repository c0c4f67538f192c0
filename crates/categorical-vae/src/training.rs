//! The training loop: epochs of shuffled batches, one optimizer step each, an evaluation and a
//! checkpoint after every epoch.
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

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::checkpoint::{
    TrainingState, config_json, create_dir, load_checkpoint, save_checkpoint, write_file,
};
use crate::config::TrainingConfig;
use crate::data::{Binarize, Mnist, batch_tensor, binarize};
use crate::error::Error;
use crate::evaluation::evaluate;
use crate::metrics::{EpochMetrics, metrics_csv, progress_bar};
use crate::model::{CategoricalVae, negative_elbo};

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
            return Err(Error::file(
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
            let loss;
            (model, loss) = train_step(model, &mut optim, x, tau, config.learning_rate);
            state.step += 1;
            loss_sum = loss_sum + loss;
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
