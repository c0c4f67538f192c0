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
//! Writes into `--out` (default `runs/dvae`): `config.json`, `metrics.csv` and `checkpoint/` after
//! every epoch, burn-train's `experiment.log`, and at the end `evaluation.json`,
//! `reconstructions.png`, `samples.png` and `code-usage.png`. Ctrl-C or SIGTERM saves the step
//! reached and exits with 130 or 143; `--resume` continues from there.

use std::path::PathBuf;
use std::process::ExitCode;

use burn_gumbel::{Estimator, TemperatureSchedule};
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use discrete_vae::model::DiscreteVaeConfig;
use discrete_vae::training::{self, Event, RunConfig, RunOptions, config_path, load_config};
use mnist_run::Error;
use mnist_run::data::DataSource;
use mnist_run::resume::resumed_config;
use mnist_run::settings::{Setting, named_by_flags};
use mnist_run::signals::StopFlag;

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
    /// Continue the run in --out from its newest complete checkpoint, with the settings stored in
    /// its config.json: other flags may only repeat them, but --epochs may grow.
    #[arg(long)]
    resume: bool,
    /// Passes over the training set (with --resume: the total, including those done).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per optimizer step, in all: with --devices N, each device takes batch-size / N.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Adam's epsilon (the paper's optimizer's; runs made before this flag resume with 1e-5).
    #[arg(long, default_value_t = mnist_run::limits::ADAM_EPSILON)]
    adam_epsilon: f64,
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
    /// One plain line per epoch even on a terminal, without a progress bar.
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
            adam_epsilon: self.adam_epsilon,
            seed: self.seed,
            data: DataSource::choose(self.mnist.as_deref(), self.embedded),
            devices: self.devices,
        }
    }
}

/// The settings of `config.json` and the flags that set them: an error names the flag
/// ([`named_by_flags`]); with `--resume`, a flag given may only repeat its stored setting
/// ([`resumed_config`]), but `--epochs` may grow.
const SETTINGS: [Setting; 13] = [
    Setting::new(&["epochs"], "/epochs"),
    Setting::new(&["mnist", "embedded"], "/data"),
    Setting::new(&["batch_size"], "/batch_size"),
    Setting::new(&["lr"], "/learning_rate"),
    Setting::new(&["adam_epsilon"], "/adam_epsilon"),
    Setting::new(&["codes"], "/model/codes"),
    Setting::new(&["channels"], "/model/channels"),
    Setting::new(&["soft"], "/model/hard"),
    Setting::new(&["estimator"], "/model/estimator"),
    Setting::new(&["learnable_tau"], "/model/learnable_tau"),
    Setting::new(
        &["tau", "tau0", "anneal_rate", "tau_min", "anneal_interval"],
        "/model/schedule",
    ),
    Setting::new(&["seed"], "/seed"),
    Setting::new(&["devices"], "/devices"),
];

/// The flags' configuration; with `--resume`, the stored one (with `--epochs` if given), after
/// checking that every other flag given repeats its stored setting.
fn run_config(cli: &Cli, matches: &ArgMatches) -> Result<RunConfig, Error> {
    let given = cli.config();
    if !cli.resume {
        return Ok(given);
    }
    let stored = load_config(&cli.out)?;
    let explicit = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    resumed_config(
        &stored,
        &given,
        &explicit,
        &SETTINGS,
        &config_path(&cli.out),
    )
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
        stop: Some(StopFlag::on_signals()?),
    };
    let print = |event: Event| match event {
        Event::PassedOver(error) => println!("checkpoint refused: {error}"),
        Event::Resumed(p) => println!(
            "resuming from the checkpoint of epoch {} + {} steps",
            p.epochs, p.steps_in_epoch
        ),
        Event::Restarted => {
            println!("no complete checkpoint yet: starting the run from its beginning")
        }
        Event::EpochsExtended { from, to } => {
            println!("extending the run from {from} to {to} epochs")
        }
    };
    let report = match training::run(&config, &device, &cli.out, options, print) {
        Err(error @ Error::Interrupted { .. }) => {
            eprintln!("{error}");
            std::process::exit(error.exit_code().into());
        }
        report => report?,
    };
    let (steps, here) = report.steps;
    println!(
        "{steps} optimizer steps ({here} in {:.1} s here: {:.1} steps/s, including validation)",
        report.seconds,
        here as f64 / report.seconds
    );
    let e = &report.evaluation;
    println!(
        "test negative ELBO: {:.2} nats (hard codes), {:.2} (soft); reconstruction {:.2} + KL {:.2}; \
         independent pixels: {:.2}",
        e.nelbo_hard, e.nelbo_soft, e.reconstruction_hard, e.kl, report.independent_pixels
    );
    let used = report.usage.iter().filter(|&&p| p > 0.0).count();
    println!(
        "{used} of {} codes used on the test set; wrote evaluation.json, reconstructions.png, \
         samples.png, code-usage.png in {}",
        report.usage.len(),
        cli.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    burn_gumbel_support::run_cli_with_matches(|cli, matches| {
        run(cli, matches).map_err(|error| named_by_flags(error, &SETTINGS))
    })
}
