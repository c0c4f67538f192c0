//! Minimal reproduction of a reduction bug seen on Mesa's software Vulkan driver (lavapipe):
//! `sum_dim(0)` of a `[rows, 1]` tensor of ones should be `rows`.
//!
//! ```text
//! cargo run --release --example sum_dim_repro --features wgpu
//! ```
//!
//! Prints one line per size and whether the sum and the chunked workaround are right; exits
//! with 1 when a direct sum is wrong. See docs/known-issues.md.

use burn::tensor::Tensor;

fn main() {
    let (name, device) = match burn_gumbel_examples::select_device() {
        Ok(selected) => selected,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    println!("device: {name} ({device:?})");
    let mut wrong = false;
    for rows in [65_532usize, 65_533, 65_536, 100_000, 1_000_000] {
        let ones = Tensor::<2>::ones([rows, 1], &device);
        let direct = ones.clone().sum_dim(0).into_scalar::<f32>();
        // Workaround: reduce 1,000 rows at a time, then the partial sums.
        let padded = rows.div_ceil(1000) * 1000;
        let chunked = Tensor::cat(vec![ones, Tensor::zeros([padded - rows, 1], &device)], 0)
            .reshape([padded / 1000, 1000, 1]) // [chunks, 1000, 1]
            .sum_dim(1)
            .sum_dim(0)
            .into_scalar::<f32>();
        let ok = |v: f32| if v == rows as f32 { "ok" } else { "WRONG" };
        println!(
            "rows {rows:>9}: sum_dim(0) = {direct:>11} ({}), chunked = {chunked:>11} ({})",
            ok(direct),
            ok(chunked)
        );
        wrong |= direct != rows as f32;
    }
    std::process::exit(i32::from(wrong));
}
