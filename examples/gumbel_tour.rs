//! A tour of burn-gumbel in three tables, on whichever backend the build enables.
//!
//! 1. Gumbel-max: observed frequencies of 100,000 draws next to the exact probabilities.
//! 2. Soft sampling: the mean soft sample over 100,000 draws for several temperatures.
//! 3. Straight-through: a hard sample, its one-hot rows and the gradient that reaches the logits.
//!
//! ```text
//! cargo run --release --example gumbel_tour                  # flex (CPU)
//! cargo run --release --example gumbel_tour --features wgpu  # GPU
//! ```

use burn::tensor::{Device, Tensor, TensorData};
use burn_gumbel::{gumbel_max, gumbel_noise, gumbel_softmax_with_noise};

const PROBS: [f32; 3] = [0.15, 0.4, 0.45];
const N: usize = 100_000;
const SEED: u64 = 2016;

/// Gumbel-max frequencies, mean soft samples and a straight-through gradient, as tables.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Cli {}

fn main() -> std::process::ExitCode {
    burn_gumbel_support::run_cli(|_: Cli| run())
}

fn run() -> Result<(), String> {
    let (name, device) = burn_gumbel_support::select_device()?;
    println!("burn-gumbel tour on {name} ({device:?}), seed {SEED}\n");
    device.seed(SEED);
    let logits = Tensor::<2>::from_floats([PROBS.map(f32::ln)], &device); // [1, 3]

    gumbel_max_table(&logits);
    soft_table(&logits);
    straight_through_table(&device);
    Ok(())
}

/// Table 1: category frequencies of the Gumbel-max trick.
fn gumbel_max_table(logits: &Tensor<2>) {
    let drawn = gumbel_max(logits.clone().expand([N, 3]), 1); // [N, 1]
    let drawn = drawn.into_data().try_into_vec_as::<i64>().unwrap();
    let mut counts = [0usize; 3];
    for i in drawn {
        counts[i as usize] += 1;
    }
    println!("1. Gumbel-max, argmax(log p + g), N = {N}");
    println!("| category | exact p | observed | difference / std. error |");
    println!("|---:|---:|---:|---:|");
    for (k, &p) in PROBS.iter().enumerate() {
        let freq = counts[k] as f64 / N as f64;
        let se = (p as f64 * (1.0 - p as f64) / N as f64).sqrt();
        println!(
            "| {k} | {p:.4} | {freq:.4} | {:+.2} |",
            (freq - p as f64) / se
        );
    }
    println!();
}

/// Table 2: mean soft sample per temperature, all temperatures on the same noise.
fn soft_table(logits: &Tensor<2>) {
    let device = logits.device();
    let noise = gumbel_noise::<2>([N, 3], &device);
    println!("2. Soft samples, mean of softmax((log p + g) / tau) over N = {N} draws");
    println!("| tau | mean y_0 | mean y_1 | mean y_2 |");
    println!("|---:|---:|---:|---:|");
    for tau in [0.01, 0.05, 0.1, 1.0, 10.0] {
        let y =
            gumbel_softmax_with_noise(logits.clone().expand([N, 3]), noise.clone(), tau, false, 1);
        let mean = mean_rows(y);
        println!(
            "| {tau} | {:.4} | {:.4} | {:.4} |",
            mean[0], mean[1], mean[2]
        );
    }
    println!(
        "| (exact p) | {:.4} | {:.4} | {:.4} |",
        PROBS[0], PROBS[1], PROBS[2]
    );
    println!("As tau → 0 the mean tends to p; as tau grows it tends to uniform (1/3 each).\n");
}

/// Column means of `[N, 3]` on the device, summing at most 1,000 rows per reduction.
///
/// A single `sum_dim(0)` over more than 65,532 rows returned wrong sums on Mesa's software
/// Vulkan driver (docs/known-issues.md); two reductions of 100 and 1,000 rows avoid it.
fn mean_rows(y: Tensor<2>) -> Vec<f32> {
    let [n, k] = y.dims();
    let chunks = y.reshape([n / 1000, 1000, k]); // [chunks, rows per chunk, k]
    let mean = chunks.sum_dim(1).sum_dim(0).div_scalar(n as f64); // [1, 1, k]
    mean.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Table 3: a hard sample with the straight-through gradient.
fn straight_through_table(device: &Device) {
    let device = device.clone().autodiff();
    let rows = 4;
    let logits = Tensor::<2>::from_floats([PROBS.map(f32::ln)], &device)
        .expand([rows, 3])
        .detach()
        .require_grad(); // [rows, 3]
    let noise = gumbel_noise::<2>([rows, 3], &device);
    let tau = 0.5;
    let soft = gumbel_softmax_with_noise(logits.clone(), noise.clone(), tau, false, 1);
    let hard = gumbel_softmax_with_noise(logits.clone(), noise, tau, true, 1);
    // Loss = Σ y · w with weights w = (1, 2, 3) per row: its gradient in y is w.
    let weights = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &device);
    let grads = (hard.clone() * weights.expand([rows, 3])).sum().backward();
    let grad = logits.grad(&grads).expect("the logits get a gradient");

    let soft = rows_of(soft);
    let hard = rows_of(hard);
    let grad = rows_of(grad);
    println!(
        "3. Straight-through, tau = {tau}, loss = Σ y·(1, 2, 3): forward one-hot, backward soft"
    );
    println!("| row | soft sample y | hard sample (one-hot) | d loss / d logits |");
    println!("|---:|---|---|---|");
    for r in 0..rows {
        println!(
            "| {r} | {} | {} | {} |",
            fmt_row(&soft[r], 3),
            fmt_row(&hard[r], 0),
            fmt_row(&grad[r], 4)
        );
    }
    println!(
        "The gradient is the soft sample's: (1/tau) · y ⊙ (w − Σ y·w), so each row sums to 0."
    );
}

fn rows_of(tensor: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, k] = tensor.dims();
    let values = tensor.into_data().try_into_vec_as::<f32>().unwrap();
    values.chunks(k).map(<[f32]>::to_vec).collect()
}

fn fmt_row(row: &[f32], decimals: usize) -> String {
    let cells: Vec<String> = row.iter().map(|v| format!("{v:.decimals$}")).collect();
    format!("[{}]", cells.join(", "))
}
