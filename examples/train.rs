//! Trains the categorical VAE (Jang, Gu, Poole 2016) on binarized MNIST with burn-gumbel.
//!
//! ```text
//! cargo run --release --example train                        # embedded subset, flex (CPU)
//! cargo run --release --example train -- --mnist data/mnist  # full MNIST
//! cargo run --release --example train -- --resume            # continue runs/vae
//! cargo run --release --example train --features wgpu        # on the GPU
//! ```
//!
//! Writes into `--out` (default `runs/vae`): `config.json`, `metrics.csv`, `checkpoint/` after every
//! epoch, and at the end `reconstructions.png`, `samples.png` and `elbo.png`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn_gumbel::{Estimator, TemperatureSchedule};
use categorical_vae::checkpoint::load_config;
use categorical_vae::config::TrainingConfig;
use categorical_vae::model::VaeConfig;
use categorical_vae::training::{Event, RunOptions, train};
use categorical_vae::{defaults, report};
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use mnist_run::Error;
use mnist_run::data::{Binarize, DataSource};
use mnist_run::resume::resumed_config;
use mnist_run::settings::{Setting, named_by_flags};
use mnist_run::signals::StopFlag;

/// Train the categorical VAE on binarized MNIST.
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
    /// Output folder (configuration, checkpoint, metrics, images).
    #[arg(long, default_value = "runs/vae")]
    out: PathBuf,
    /// Continue the run in --out from its newest complete checkpoint, with the settings stored in
    /// its config.json: other flags may only repeat them, but --epochs may grow.
    #[arg(long)]
    resume: bool,
    /// Passes over the training set (with --resume: the total, including those done).
    #[arg(long, default_value_t = defaults::EPOCHS)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = defaults::LEARNING_RATE)]
    lr: f64,
    /// Adam's epsilon (the paper's optimizer's; runs made before this flag resume with 1e-5).
    #[arg(long, default_value_t = mnist_run::limits::ADAM_EPSILON)]
    adam_epsilon: f64,
    /// Number of categorical latent variables N.
    #[arg(long, default_value_t = defaults::N_LATENT)]
    n_latent: usize,
    /// Classes K per latent variable.
    #[arg(long, default_value_t = defaults::N_CATEGORIES)]
    n_categories: usize,
    /// Width of the first encoder layer (and the last decoder layer).
    #[arg(long, default_value_t = defaults::HIDDEN1)]
    hidden1: usize,
    /// Width of the second encoder layer (and the first decoder layer).
    #[arg(long, default_value_t = defaults::HIDDEN2)]
    hidden2: usize,
    /// Straight-through Gumbel-Softmax (one-hot samples forward, soft gradient backward).
    #[arg(long)]
    hard: bool,
    /// Gradient estimator of the one-hot samples (with --hard): st (straight-through),
    /// gumbel-rao:K (K conditional samples) or reinmax (needs tau >= 1, e.g. --tau-min 1).
    #[arg(long, default_value_t = defaults::ESTIMATOR)]
    estimator: Estimator,
    /// Initial temperature of the annealing.
    #[arg(long, default_value_t = defaults::annealing().0)]
    tau0: f64,
    /// Annealing rate per step: tau = max(tau_min, tau0 · exp(-rate · step)).
    #[arg(long, default_value_t = defaults::annealing().1)]
    anneal_rate: f64,
    /// Floor of the annealed temperature.
    #[arg(long, default_value_t = defaults::annealing().2)]
    tau_min: f64,
    /// Steps between temperature updates.
    #[arg(long, default_value_t = defaults::annealing().3)]
    anneal_interval: u64,
    /// A constant temperature instead of the annealing.
    #[arg(long)]
    tau: Option<f64>,
    /// Binarization of the training images: threshold (> 127) or dynamic (Bernoulli, full MNIST).
    #[arg(long, default_value = "threshold")]
    binarize: Binarize,
    /// Seed of initialization, data order and noise.
    #[arg(long, default_value_t = defaults::SEED)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Cli {
    fn config(&self) -> TrainingConfig {
        let model = VaeConfig::new()
            .with_n_latent(self.n_latent)
            .with_n_categories(self.n_categories)
            .with_hidden1(self.hidden1)
            .with_hidden2(self.hidden2)
            .with_hard(self.hard)
            .with_estimator(self.estimator);
        let schedule = match self.tau {
            Some(tau) => TemperatureSchedule::Constant { tau },
            None => TemperatureSchedule::Exponential {
                tau0: self.tau0,
                rate: self.anneal_rate,
                tau_min: self.tau_min,
                interval: self.anneal_interval,
            },
        };
        TrainingConfig::new(model)
            .with_epochs(self.epochs)
            .with_batch_size(self.batch_size)
            .with_learning_rate(self.lr)
            .with_adam_epsilon(self.adam_epsilon)
            .with_schedule(schedule)
            .with_binarize(self.binarize)
            .with_data(DataSource::choose(self.mnist.as_deref(), self.embedded))
            .with_seed(self.seed)
    }
}

/// The settings of `config.json` and the flags that set them: an error names the flag
/// ([`named_by_flags`]); with `--resume`, a flag given may only repeat its stored setting
/// ([`resumed_config`]), but `--epochs` may grow.
const SETTINGS: [Setting; 14] = [
    Setting::new(&["epochs"], "/epochs"),
    Setting::new(&["batch_size"], "/batch_size"),
    Setting::new(&["lr"], "/learning_rate"),
    Setting::new(&["adam_epsilon"], "/adam_epsilon"),
    Setting::new(&["n_latent"], "/model/n_latent"),
    Setting::new(&["n_categories"], "/model/n_categories"),
    Setting::new(&["hidden1"], "/model/hidden1"),
    Setting::new(&["hidden2"], "/model/hidden2"),
    Setting::new(&["hard"], "/model/hard"),
    Setting::new(&["estimator"], "/model/estimator"),
    Setting::new(
        &["tau", "tau0", "anneal_rate", "tau_min", "anneal_interval"],
        "/schedule",
    ),
    Setting::new(&["binarize"], "/binarize"),
    Setting::new(&["mnist", "embedded"], "/data"),
    Setting::new(&["seed"], "/seed"),
];

/// The configuration of the run: the flags' for a new run; with `--resume`, the stored one, with
/// `--epochs` if given, after checking that every other flag given repeats the stored setting.
fn run_config(cli: &Cli, matches: &ArgMatches) -> Result<TrainingConfig, Error> {
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
        &cli.out.join("config.json"),
    )
}

fn run(cli: Cli, matches: ArgMatches) -> Result<(), Error> {
    let config = run_config(&cli, &matches)?;
    config.validate()?;
    let (backend, device) = burn_gumbel_support::select_device()
        .map_err(|e| Error::invalid("BURN_GUMBEL_BACKEND", e))?;
    println!("device: {backend} ({device:?})");
    let data = config.data.load()?;
    println!(
        "data: {} ({} train, {} test images)",
        data.source,
        data.train.len(),
        data.test.len()
    );
    println!("output: {}", cli.out.display());

    let options = RunOptions {
        out_dir: cli.out.clone(),
        resume: cli.resume,
        progress: !cli.quiet,
        interrupt: Some(StopFlag::on_signals()?),
    };
    let print = |event: Event<'_>| match event {
        Event::Resumed {
            checkpoint,
            epochs_done,
            step,
        } => println!("resuming from checkpoint {checkpoint} ({epochs_done} epochs, {step} steps)"),
        Event::Restarted => {
            println!("no complete checkpoint yet: starting the run from its beginning")
        }
        Event::EpochsExtended { from, to } => {
            println!("extending the run from {from} to {to} epochs")
        }
        Event::Epoch(m) => println!(
            "epoch {:>3}  step {:>6}  tau {:.3}  train {:7.2}  test soft {:7.2}  hard {:7.2}  \
             (recon {:6.2} + KL {:5.2})  {:5.1}s  {:5.1} steps/s",
            m.epoch,
            m.step,
            m.tau,
            m.train_nelbo,
            m.test.nelbo_soft,
            m.test.nelbo_hard,
            m.test.reconstruction_hard,
            m.test.kl,
            m.seconds,
            m.steps_per_second
        ),
    };
    let trained = match train(&config, &data, &device, &options, print) {
        Err(error @ Error::Interrupted { .. }) => {
            eprintln!("{error}");
            std::process::exit(error.exit_code().into());
        }
        trained => trained?,
    };
    let Some(last) = trained.state.history.last() else {
        return Err(Error::file(
            &cli.out,
            "the checkpoint's state.json has no epoch in its history",
        ));
    };
    let device = device.without_autodiff();
    let history = &trained.state.history;
    report::write_pictures(
        &trained.model,
        &data.test,
        history,
        last.tau,
        config.seed,
        &device,
        &cli.out,
    )?;
    println!(
        "test negative ELBO after {} epochs: {:.2} nats (hard samples), {:.2} (soft)",
        last.epoch, last.test.nelbo_hard, last.test.nelbo_soft
    );
    println!(
        "wrote reconstructions.png, samples.png, elbo.png, metrics.csv in {}",
        cli.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    burn_gumbel_support::run_cli_with_matches(|cli, matches| {
        run(cli, matches).map_err(|error| named_by_flags(error, &SETTINGS))
    })
}
