//! Sampling the next token of a batch of requests with mixed settings, as a server does.
//!
//! Each request has its own seed and settings (greedy, temperature, top-k, top-p, min-p); its key
//! for the token at position `t` is `Key::new(seed).fold_in(t)`. The example samples a batch of
//! requests for a few positions, shows that every row's token is the same when its request is
//! sampled alone and on every other backend compiled in, and prints the time per step.
//!
//! ```text
//! cargo run --release --example tokens                                   # flex (CPU)
//! cargo run --release --example tokens --features ndarray,wgpu -- --vocab 128256
//! ```

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use burn_gumbel::{Key, TokenSamplerConfig, Tokens, sample_tokens};

/// Samples a batch of requests with mixed settings and checks each row alone and on every
/// backend.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Cli {
    /// Requests in the batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: u32,
    /// Tokens in the vocabulary.
    #[arg(long, default_value_t = 32000, value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
    vocab: u32,
    /// Positions sampled (one batch of logits each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    steps: u32,
}

fn main() -> std::process::ExitCode {
    burn_gumbel_support::run_cli(run)
}

/// The settings of request `r`: the kinds a server mixes in one batch.
fn settings(r: usize) -> (&'static str, TokenSamplerConfig) {
    let base = TokenSamplerConfig::new();
    match r % 6 {
        0 => ("greedy", TokenSamplerConfig::greedy()),
        1 => ("T = 0.8", base.with_temperature(0.8)),
        2 => ("top-k 50", base.with_top_k(50)),
        3 => ("top-p 0.9", base.with_top_p(0.9)),
        4 => ("min-p 0.05", base.with_min_p(0.05)),
        _ => (
            "T 0.7, k 40, p 0.95",
            base.with_temperature(0.7).with_top_k(40).with_top_p(0.95),
        ),
    }
}

/// Logits like a language model's for `[batch, vocab]` at position `step`: a spread of a few
/// nats and a handful of likely tokens, from a hash (the same on every run and backend).
fn logits(batch: usize, vocab: usize, step: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..batch * vocab)
        .map(|i| {
            let h = Key::new(step as u64).fold_in(i as u64).bits();
            let u = (h >> 40) as f32 / (1u64 << 24) as f32;
            let spike = if h.is_multiple_of(2000) { 9.0 } else { 0.0 };
            4.0 * u - 2.0 + spike
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, vocab]), device)
}

fn ids(tokens: &Tokens) -> Vec<i64> {
    tokens
        .ids
        .clone()
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap()
}

fn run(cli: Cli) -> Result<(), String> {
    let (batch, vocab) = (cli.batch as usize, cli.vocab as usize);
    let (name, device) = burn_gumbel_support::select_device()?;
    let others: Vec<(&str, Device)> = burn_gumbel_support::enabled_backends()
        .into_iter()
        .filter(|other| *other != name)
        .map(|other| Ok((other, burn_gumbel_support::backend_device(other)?)))
        .collect::<Result<_, String>>()?;
    let seeds: Vec<u64> = (0..batch as u64).map(|r| 1000 + 17 * r).collect();
    let configs: Vec<TokenSamplerConfig> = (0..batch).map(|r| settings(r).1).collect();
    println!(
        "{batch} requests, vocabulary {vocab}, on {name}; key of request r at position t: Key::new(seed_r).fold_in(t)\n"
    );

    let (mut elapsed, mut mismatches) = (0.0f64, 0usize);
    let mut last = Vec::new();
    for step in 0..cli.steps as usize {
        let keys: Vec<Key> = seeds
            .iter()
            .map(|&s| Key::new(s).fold_in(step as u64))
            .collect();
        let x = logits(batch, vocab, step, &device);
        let start = Instant::now();
        let tokens = sample_tokens(x.clone(), &keys, &configs);
        let batched = ids(&tokens);
        elapsed += start.elapsed().as_secs_f64();
        for r in 0..batch {
            let alone = sample_tokens(x.clone().narrow(0, r, 1), &keys[r..=r], &configs[r..=r]);
            mismatches += usize::from(ids(&alone)[0] != batched[r]);
        }
        for (other, other_device) in &others {
            let there = ids(&sample_tokens(
                logits(batch, vocab, step, other_device),
                &keys,
                &configs,
            ));
            let differ = (0..batch).filter(|&r| there[r] != batched[r]).count();
            if differ > 0 {
                println!("step {step}: {differ} rows differ on {other}");
            }
            mismatches += differ;
        }
        last = batched
            .into_iter()
            .zip(
                tokens
                    .logprobs
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .unwrap(),
            )
            .collect();
    }

    println!(
        "| request | seed | settings | token at position {} | its logprob |",
        cli.steps - 1
    );
    println!("|---:|---:|---|---:|---:|");
    for (r, (token, logprob)) in last.iter().enumerate().take(12) {
        println!(
            "| {r} | {} | {} | {token} | {logprob:.3} |",
            seeds[r],
            settings(r).0
        );
    }
    let checked: Vec<&str> = others.iter().map(|(n, _)| *n).collect();
    println!(
        "\nevery row alone{}: {}",
        if checked.is_empty() {
            String::new()
        } else {
            format!(" and on {}", checked.join(", "))
        },
        if mismatches == 0 {
            "the same tokens".to_string()
        } else {
            format!("{mismatches} different tokens")
        }
    );
    println!(
        "time per step ({batch} × {vocab}, on {name}, logits to ids): {:.3} ms",
        elapsed / cli.steps as f64 * 1e3
    );
    match mismatches {
        0 => Ok(()),
        n => Err(format!("{n} tokens differ alone or across backends")),
    }
}
