//! Benchmarks of the token sampler (`sample_tokens`, logits to token ids on the host) per
//! backend, beside the memory floor (a copy of the logits) and Burn's own sampler,
//! `Tensor::categorical` on `softmax(logits / T)` (no key, no filters).
//!
//! ```text
//! cargo bench --bench tokens                    # flex
//! cargo bench --bench tokens -- 'flex/tokens'   # a subset
//! ```
//!
//! Names read `{backend}/tokens/{mode}/{batch}x{vocab}` (`/bf16` for bf16 logits), the modes
//! `temperature` (T = 0.8), `top_k` (k = 50), `top_p` (p = 0.9), `mixed` (a batch that cycles
//! through greedy, T = 0.8, top-k 50, top-p 0.9 and min-p 0.05) and `burn_categorical`. The logits
//! are `N(0, 2²)`, as `bench/pytorch/tokens.py` draws them; every call ends with the ids read back
//! to the host.

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, FloatDType, Int, Tensor};
use burn_gumbel::{Key, TokenSamplerConfig, sample_tokens};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

mod support;

/// mimalloc unless `system-allocator`, as in `benches/gumbel_softmax.rs`.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `[batch, vocab]`: one request of Llama 2's and Llama 3's vocabularies, a batch of 64 of
/// Llama 3's, and a batch of 256 of Qwen 2's.
const SHAPES: [[usize; 2]; 4] = [[1, 32000], [1, 128256], [64, 128256], [256, 151936]];

/// The settings of each mode, per row `r`.
fn settings(mode: &str, r: usize) -> TokenSamplerConfig {
    let base = TokenSamplerConfig::new().with_temperature(0.8);
    match mode {
        "temperature" => base,
        "top_k" => base.with_top_k(50),
        "top_p" => base.with_top_p(0.9),
        _ => match r % 5 {
            0 => TokenSamplerConfig::greedy(),
            1 => base,
            2 => base.with_top_k(50),
            3 => base.with_top_p(0.9),
            _ => base.with_min_p(0.05),
        },
    }
}

/// Untimed calls before criterion's warm-up ([`support::bench_routine`]).
const WARM_UP_RUNS: usize = 3;

fn bench_shape(
    c: &mut Criterion,
    backend: &str,
    device: &Device,
    shape: [usize; 2],
    dtype: FloatDType,
) {
    let [batch, _] = shape;
    let mut name = format!("{}x{}", shape[0], shape[1]);
    if dtype == FloatDType::BF16 {
        name.push_str("/bf16");
    }
    let logits = Tensor::<2>::random(shape, Distribution::Normal(0.0, 2.0), device).cast(dtype);
    let mut group = c.benchmark_group(backend.to_string());
    let mut bench = |id: BenchmarkId, routine: &mut dyn FnMut() -> Vec<i64>| {
        support::bench_routine(&mut group, id, WARM_UP_RUNS, routine);
    };
    let read = |ids: Tensor<1, Int>| ids.into_data().try_into_vec_as::<i64>().unwrap();
    bench(BenchmarkId::new("copy", &name), &mut || {
        let y = logits.clone().mul_scalar(1.0);
        device.sync().expect("the device runs the benchmark");
        black_box(y);
        Vec::new()
    });
    for mode in ["temperature", "top_k", "top_p", "mixed"] {
        let configs: Vec<_> = (0..batch).map(|r| settings(mode, r)).collect();
        let mut step = 0u64;
        bench(
            BenchmarkId::new(format!("tokens/{mode}"), &name),
            &mut || {
                step += 1;
                let keys: Vec<Key> = (0..batch as u64)
                    .map(|r| Key::new(r).fold_in(step))
                    .collect();
                read(sample_tokens(logits.clone(), &keys, &configs).ids)
            },
        );
    }
    bench(
        BenchmarkId::new("tokens/burn_categorical", &name),
        &mut || {
            let probs = softmax(logits.clone().cast(FloatDType::F32).div_scalar(0.8), 1);
            read(probs.categorical(1).reshape([batch]))
        },
    );
    group.finish();
}

fn benches(c: &mut Criterion) {
    for backend in burn_gumbel_support::enabled_backends().into_iter().rev() {
        let device = burn_gumbel_support::backend_device(backend).expect("enabled");
        for shape in SHAPES {
            bench_shape(c, backend, &device, shape, FloatDType::F32);
            if device.supports_dtype(FloatDType::BF16) {
                bench_shape(c, backend, &device, shape, FloatDType::BF16);
            }
        }
    }
}

criterion_group! {
    name = tokens;
    config = Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(tokens);
