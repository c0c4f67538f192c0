//! Writes the embedded MNIST subset from the four IDX files (see scripts/make-embedded-mnist.sh).
//!
//! ```text
//! cargo run --release --example prepare_mnist -- --mnist data/mnist \
//!     --out crates/mnist-run/data/mnist-binarized-12k.bin --train 10000 --test 2000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mnist_run::Error;
use mnist_run::data::{Mnist, write_embedded};

/// Write a bit-packed, binarized (> 127) subset of MNIST in the embedded format.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Folder with the four MNIST IDX files (plain or .gz).
    #[arg(long)]
    mnist: PathBuf,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// How many training images to keep (the first ones).
    #[arg(long, default_value_t = 10_000)]
    train: usize,
    /// How many test images to keep (the first ones).
    #[arg(long, default_value_t = 2_000)]
    test: usize,
}

fn run(cli: Cli) -> Result<(), Error> {
    let mnist = Mnist::from_idx_dir(&cli.mnist)?;
    let bytes = write_embedded(&mnist, cli.train, cli.test);
    std::fs::write(&cli.out, &bytes).map_err(|e| Error::file(&cli.out, e.to_string()))?;
    println!("wrote {} ({} bytes)", cli.out.display(), bytes.len());
    Ok(())
}

fn main() -> ExitCode {
    burn_gumbel_support::run_cli(run)
}
