//! Evaluates a trained categorical VAE from its checkpoint and draws its pictures.
//!
//! ```text
//! cargo run --release --example evaluate -- --out runs/vae
//! cargo run --release --example evaluate -- --out runs/full --mnist data/mnist
//! ```
//!
//! Prints the test negative ELBO (soft and hard samples, with the reconstruction and KL terms) and
//! writes `reconstructions.png`, `samples.png` and `elbo.png` into the run's folder.

use std::path::PathBuf;
use std::process::ExitCode;

use categorical_vae::checkpoint::{load_config, require_checkpoint};
use categorical_vae::evaluation::evaluate;
use categorical_vae::report;
use clap::Parser;
use mnist_run::Error;
use mnist_run::data::DataSource;
use mnist_run::settings::{Setting, named_by_flags};

/// Evaluate a checkpoint of the categorical VAE and draw its pictures.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The run's folder (holding config.json and checkpoint/).
    #[arg(long, default_value = "runs/vae")]
    out: PathBuf,
    /// Folder with the four MNIST IDX files; default: the data the run was trained on (recorded in
    /// its config.json).
    #[arg(long)]
    mnist: Option<PathBuf>,
    /// Seed of the codes drawn from the prior for samples.png.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn run(cli: Cli) -> Result<(), Error> {
    let (backend, device) = burn_gumbel_support::select_device()
        .map_err(|e| Error::invalid("BURN_GUMBEL_BACKEND", e))?;
    println!("device: {backend} ({device:?})");
    let config = load_config(&cli.out)?;
    let checkpoint = require_checkpoint(&cli.out)?;
    let model = checkpoint.load_model(&config, &device)?;
    let state = checkpoint.state;
    let data = match &cli.mnist {
        Some(dir) => DataSource::Idx(dir.clone()),
        None => config.data.clone(),
    };
    let data = data.load()?;
    if data.test.is_empty() {
        return Err(Error::invalid(
            "data",
            format!("the test set of {} has no image", data.source),
        ));
    }
    let tau = state.last_tau(&config.schedule);
    let e = evaluate(&model, &data.test, &config, tau, &device);
    println!(
        "checkpoint: {} epochs, {} steps, tau {tau:.3}; test set: {} ({} images)",
        state.epochs_done,
        state.step,
        data.source,
        data.test.len()
    );
    println!("| samples | negative ELBO | reconstruction | KL |");
    println!("|---|---:|---:|---:|");
    println!(
        "| hard (one-hot) | {:.2} | {:.2} | {:.2} |",
        e.nelbo_hard, e.reconstruction_hard, e.kl
    );
    println!(
        "| soft | {:.2} | {:.2} | {:.2} |",
        e.nelbo_soft, e.reconstruction_soft, e.kl
    );
    let written = report::write_pictures(
        &model,
        &data.test,
        &state.history,
        tau,
        cli.seed,
        &device,
        &cli.out,
    )?;
    println!("wrote {} in {}", written.join(", "), cli.out.display());
    Ok(())
}

/// The setting a flag of this program names: the data (`--mnist`).
const SETTINGS: [Setting; 1] = [Setting::new(&["mnist"], "/data")];

fn main() -> ExitCode {
    burn_gumbel_support::run_cli(|cli| run(cli).map_err(|error| named_by_flags(error, &SETTINGS)))
}
