//! Reproduction of a reduction bug seen with wgpu on Mesa's software Vulkan driver (lavapipe):
//! a reduction along a strided axis longer than 65,532 elements only sees its first 65,532.
//!
//! ```text
//! cargo run --release --example sum_dim_repro --features wgpu
//! ```
//!
//! Prints one line per case with the expected and the computed value; exits with 1 when a case is
//! wrong. See docs/known-issues.md.

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor};

const N: usize = 100_000;

/// Reproduce the long strided reduction bug of Mesa's software Vulkan driver.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Cli {}

fn main() -> std::process::ExitCode {
    burn_gumbel_support::run_cli(|_: Cli| run())
}

fn run() -> Result<(), String> {
    let (name, device) = burn_gumbel_support::select_device()?;
    println!("device: {name} ({device:?}), N = {N}");
    let ones = |shape: [usize; 2]| Tensor::<2>::ones(shape, &device);
    let first = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap()[0];
    let ramp = Tensor::<1, Int>::arange(0..N as i64, &device)
        .float()
        .reshape([N, 1]);
    let cases: Vec<(&str, f32, f32)> = vec![
        (
            "[N, 1].sum_dim(0)",
            N as f32,
            first(ones([N, 1]).sum_dim(0)),
        ),
        (
            "[N, 3].sum_dim(0)",
            N as f32,
            first(ones([N, 3]).sum_dim(0)),
        ),
        (
            "[N, 3].swap_dims(0, 1).sum_dim(1)",
            N as f32,
            first(ones([N, 3]).swap_dims(0, 1).sum_dim(1)),
        ),
        (
            "[N, 1] of 0..N: max_dim(0)",
            (N - 1) as f32,
            first(ramp.clone().max_dim(0)),
        ),
        (
            "[N, 1] of 0..N: argmax(0)",
            (N - 1) as f32,
            ramp.argmax(0).into_scalar::<i64>() as f32,
        ),
        (
            "softmax over dim 0 of [N, 1] zeros, first value × N",
            1.0,
            first(softmax(Tensor::<2>::zeros([N, 1], &device), 0)) * N as f32,
        ),
        // Along the contiguous last axis the same reductions are right.
        (
            "[1, N].sum_dim(1)",
            N as f32,
            first(ones([1, N]).sum_dim(1)),
        ),
        (
            "[3, N].sum_dim(1)",
            N as f32,
            first(ones([3, N]).sum_dim(1)),
        ),
        (
            "softmax over dim 1 of [2, N] zeros, first value × N",
            1.0,
            first(softmax(Tensor::<2>::zeros([2, N], &device), 1)) * N as f32,
        ),
        // The workaround: reduce 1,000 rows at a time, then the partial sums.
        (
            "[N, 1] as [N / 1000, 1000, 1], sum_dim(1) then sum_dim(0)",
            N as f32,
            ones([N, 1])
                .reshape([N / 1000, 1000, 1]) // [chunks, 1000, 1]
                .sum_dim(1)
                .sum_dim(0)
                .into_scalar::<f32>(),
        ),
    ];
    let mut wrong = false;
    for (case, expected, got) in cases {
        let ok = (got - expected).abs() <= 1e-3 * expected.abs().max(1.0);
        wrong |= !ok;
        let verdict = if ok { "ok" } else { "WRONG" };
        println!("{verdict:>5}  {case}: expected {expected}, got {got}");
    }
    match wrong {
        true => Err("a reduction is wrong on this device (see docs/known-issues.md)".into()),
        false => Ok(()),
    }
}
