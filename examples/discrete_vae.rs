//! Trains the convolutional discrete VAE (Gumbel-Softmax over the channels of a 7 × 7 grid of
//! codes) on binarized MNIST through burn-train.
//!
//! ```text
//! cargo run --release --example discrete_vae                          # embedded subset, flex
//! cargo run --release --example discrete_vae -- --mnist data/mnist    # full MNIST
//! cargo run --release --example discrete_vae -- --devices 2           # data-parallel, 2 devices
//! cargo run --release --example discrete_vae -- --resume              # continue runs/dvae
//! cargo run --release --example discrete_vae --features wgpu          # on the GPU
//! ```
//!
//! Writes into `--out` (default `runs/dvae`): `config.json`, burn-train's logs (`train/`,
//! `valid/`, `experiment.log`) and `checkpoint/` after every epoch, and at the end
//! `evaluation.json`, `reconstructions.png`, `samples.png` and `code-usage.png`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn_gumbel::{Estimator, TemperatureSchedule};
use categorical_vae::Error;
use categorical_vae::data::DataSource;
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use discrete_vae::data::Digits;
use discrete_vae::model::DiscreteVaeConfig;
use discrete_vae::report::write_pictures;
use discrete_vae::training::{
    RunConfig, RunOptions, evaluate, independent_pixels_nll, load_config, train, write_evaluation,
};

/// Train the convolutional discrete VAE on binarized MNIST through burn-train.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    /// Folder with the four MNIST IDX files (plain or .gz); default: Burn's cache if it holds
    /// them, else the embedded 10,000/2,000-image subset.
    #[arg(long)]
    mnist: Option<PathBuf>,
    /// Use the embedded subset even when Burn's cache holds full MNIST.
    #[arg(long, conflicts_with = "mnist")]
    embedded: bool,
    /// Output folder (configuration, logs, checkpoints, pictures).
    #[arg(long, default_value = "runs/dvae")]
    out: PathBuf,
    /// Continue the run in --out from its newest complete checkpoint, with the settings of its
    /// config.json; only --epochs (the total) may be given with it.
    #[arg(long)]
    resume: bool,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per batch and device.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Number of codes K sampled at each of the 7 × 7 cells (2 to 8192).
    #[arg(long, default_value_t = 64)]
    codes: usize,
    /// Channels of the first convolution (the second has twice as many).
    #[arg(long, default_value_t = 32)]
    channels: usize,
    /// Soft codes (the relaxation itself) instead of one-hot codes with straight-through
    /// gradients.
    #[arg(long)]
    soft: bool,
    /// Gradient estimator of the one-hot codes: st (straight-through), gumbel-rao:K or reinmax
    /// (needs tau >= 1).
    #[arg(long, default_value_t = Estimator::StraightThrough)]
    estimator: Estimator,
    /// Learn the temperature (from --tau0) instead of annealing it.
    #[arg(long)]
    learnable_tau: bool,
    /// Initial temperature.
    #[arg(long, default_value_t = 1.0)]
    tau0: f64,
    /// Annealing rate per optimizer step: tau = max(tau_min, tau0 · exp(-rate · step)).
    #[arg(long, default_value_t = 3e-5)]
    anneal_rate: f64,
    /// Floor of the annealed temperature.
    #[arg(long, default_value_t = 0.5)]
    tau_min: f64,
    /// Optimizer steps between temperature updates.
    #[arg(long, default_value_t = 1000)]
    anneal_interval: u64,
    /// A constant temperature instead of the annealing.
    #[arg(long)]
    tau: Option<f64>,
    /// Seed of initialization, data order and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train data-parallel on this many devices of the selected backend (burn-train's
    /// multi-device strategy: a batch per device, gradients summed on the first).
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// One plain line per epoch even on a terminal, instead of burn-train's dashboard.
    #[arg(long)]
    plain: bool,
}

impl Cli {
    fn config(&self) -> RunConfig {
        let schedule = match self.tau {
            Some(tau) => TemperatureSchedule::Constant { tau },
            None => TemperatureSchedule::Exponential {
                tau0: self.tau0,
                rate: self.anneal_rate,
                tau_min: self.tau_min,
                interval: self.anneal_interval,
            },
        };
        let model = DiscreteVaeConfig::new()
            .with_codes(self.codes)
            .with_channels(self.channels)
            .with_hard(!self.soft)
            .with_estimator(self.estimator)
            .with_learnable_tau(self.learnable_tau)
            .with_schedule(schedule);
        RunConfig {
            model,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            seed: self.seed,
            data: DataSource::choose(self.mnist.as_deref(), self.embedded),
            devices: self.devices,
        }
    }
}

/// The flags that are settings of the run (refused with `--resume`, which reads them from
/// `config.json`).
const SETTINGS: [&str; 18] = [
    "mnist",
    "embedded",
    "batch_size",
    "lr",
    "codes",
    "channels",
    "soft",
    "estimator",
    "learnable_tau",
    "tau0",
    "anneal_rate",
    "tau_min",
    "anneal_interval",
    "tau",
    "seed",
    "devices",
    "plain",
    "epochs",
];

/// The flags' configuration; with `--resume`, the stored one (with `--epochs` if given).
fn run_config(cli: &Cli, matches: &ArgMatches) -> Result<RunConfig, Error> {
    if !cli.resume {
        return Ok(cli.config());
    }
    let explicit = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let given: Vec<String> = SETTINGS
        .iter()
        .filter(|id| !matches!(**id, "epochs" | "plain") && explicit(id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !given.is_empty() {
        return Err(Error::invalid(
            "--resume",
            format!(
                "the settings come from {}/config.json: drop {} (only --epochs may be given)",
                cli.out.display(),
                given.join(", ")
            ),
        ));
    }
    let mut stored = load_config(&cli.out)?;
    if explicit("epochs") {
        stored.epochs = cli.epochs;
    }
    Ok(stored)
}

fn run(cli: Cli, matches: ArgMatches) -> Result<(), Error> {
    let config = run_config(&cli, &matches)?;
    config.validate()?;
    let (backend, device) = burn_gumbel_support::select_device()
        .map_err(|e| Error::invalid("BURN_GUMBEL_BACKEND", e))?;
    let device = device.without_autodiff();
    println!(
        "device: {backend} ({device:?}) x {}; output: {}",
        config.devices,
        cli.out.display()
    );
    let options = RunOptions {
        resume: cli.resume,
        plain: cli.plain,
        interrupter: None,
    };
    let outcome = train(&config, &device, &cli.out, options)?;
    if let Some(epoch) = outcome.resumed_from {
        println!("resumed from the checkpoint of epoch {epoch}");
    }
    if let Some(reason) = &outcome.interrupted {
        println!("training stopped early: {reason}");
    }
    let (steps, here) = outcome.steps;
    println!(
        "{steps} optimizer steps ({here} in {:.1} s here: {:.1} steps/s, including validation)",
        outcome.seconds,
        here as f64 / outcome.seconds
    );
    let test = Digits::new(outcome.mnist.test.clone());
    let train_set = Digits::new(outcome.mnist.train.clone());
    let evaluation = evaluate(&outcome.model, &test, 500, config.seed);
    let baseline = independent_pixels_nll(&train_set, &test);
    println!(
        "test negative ELBO: {:.2} nats (hard codes), {:.2} (soft); reconstruction {:.2} + KL {:.2}; \
         independent pixels: {baseline:.2}",
        evaluation.nelbo_hard, evaluation.nelbo_soft, evaluation.reconstruction_hard, evaluation.kl
    );
    write_evaluation(&cli.out, steps, &evaluation, baseline)?;
    let usage = write_pictures(&outcome.model, &test, config.seed, &cli.out)?;
    let used = usage.iter().filter(|&&p| p > 0.0).count();
    println!(
        "{used} of {} codes used on the test set; wrote evaluation.json, reconstructions.png, \
         samples.png, code-usage.png in {}",
        usage.len(),
        cli.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    burn_gumbel_support::run_cli_with_matches(run)
}
