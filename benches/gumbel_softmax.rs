//! Benchmarks of `gumbel_softmax` per backend: soft and hard, forward and forward + backward,
//! beside the memory floor (one read and one write of a tensor of the same size); and of the
//! Gumbel-Rao estimator with 10 conditional draws (`gumbel_rao`, forward + backward) on a few
//! shapes.
//!
//! ```text
//! cargo bench --bench gumbel_softmax                       # flex
//! cargo bench --bench gumbel_softmax --all-features        # flex, ndarray, wgpu
//! cargo bench --bench gumbel_softmax -- 'flex/soft'        # a subset
//! BURN_GUMBEL_BENCH_LARGE=1 cargo bench --bench gumbel_softmax --features wgpu
//! ```
//!
//! `BURN_GUMBEL_BENCH_LARGE` adds the shape `[1024, 50000]` (205 MB per tensor, several times a
//! GPU's L2 cache), where a GPU's time can be compared with its memory bandwidth (`bench/gpu.sh`).
//!
//! Names read `{backend}/{op}/{mode}/{shape}` (`op` soft, hard or gumbel-rao), with `/dim1` for
//! the channels-first shapes and `/f16` or `/bf16` for half-precision logits. The mode
//! `forward_tensor_ops` is the soft sample by the tensor-op path (Gumbel noise, then
//! `gumbel_softmax_with_noise`) that the fused kernels of flex and wgpu replace; the mode
//! `forward_transposed` of the channels-first shapes copies the map into rows of categories,
//! samples them and copies the result back. The device is synchronized inside the timed region, so GPU
//! numbers measure execution, not dispatch. Forward + backward uses the loss `Σ y · w` with fixed
//! random weights `w`.

use std::time::Duration;

use burn::tensor::{Device, Distribution, FloatDType, Shape, Tensor};
use burn_gumbel::{
    Key, gumbel_noise, gumbel_rao, gumbel_softmax, gumbel_softmax_with_key,
    gumbel_softmax_with_noise,
};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

mod support;

/// mimalloc, as in `benches/vae_step.rs`, which says why: the benchmarks measure the computation,
/// not the state of glibc's heap. The feature `system-allocator` keeps the system's, which is what
/// a user's program has.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The shapes of the benchmark table, categories last.
const SHAPES: [&[usize]; 6] = [
    &[1024, 10],
    &[4096, 10],
    &[32768, 10],
    &[256, 1000],
    &[64, 50000],
    &[200, 20, 10],
];

/// Channels-first shapes, categories along axis 1: the codes of a convolutional feature map
/// (`[batch, codes, height, width]`; the last, a batch of 100 of 64 codes on a 7×7 grid of
/// MNIST-sized images). Named `…/dim1`.
const CHANNELS_FIRST: [[usize; 4]; 3] = [[8, 512, 32, 32], [2, 8192, 16, 16], [100, 64, 7, 7]];

/// Shapes benchmarked with half-precision logits too, categories last. Named `…/f16`, `…/bf16`.
const HALF_SHAPES: [[usize; 2]; 2] = [[256, 1000], [64, 50000]];

/// Shapes of the Gumbel-Rao rows, with their category axis: the VAE's latent codes (rows of 10),
/// long rows, and the channels-first codes of a convolutional VAE.
const GUMBEL_RAO_SHAPES: [(&[usize], usize); 3] = [
    (&[200, 20, 10], 2),
    (&[256, 1000], 1),
    (&[100, 64, 7, 7], 1),
];

/// Conditional draws of the Gumbel-Rao rows.
const GUMBEL_RAO_SAMPLES: usize = 10;

/// The shape added by `BURN_GUMBEL_BENCH_LARGE`: 51.2 M elements.
const LARGE_SHAPE: [usize; 2] = [1024, 50000];

const TAU: f64 = 1.0;

fn shape_name(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

fn sync(device: &Device) {
    device.sync().expect("the device runs the benchmark");
}

/// Untimed calls before criterion's own warm-up ([`support::bench_routine`]).
const WARM_UP_RUNS: usize = 10;

/// [`support::bench_routine`] with [`WARM_UP_RUNS`].
fn bench_routine<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    routine: impl FnMut() -> R,
) {
    support::bench_routine(group, id, WARM_UP_RUNS, routine);
}

/// A row's shape as it is named: `AxB`, then `/dim{dim}` unless the categories are last and
/// `/f16` or `/bf16` for half-precision logits.
fn row_name(shape: &[usize], dim: usize, dtype: FloatDType) -> String {
    let mut name = match dim == shape.len() - 1 {
        true => shape_name(shape),
        false => format!("{}/dim{dim}", shape_name(shape)),
    };
    match dtype {
        FloatDType::F16 => name.push_str("/f16"),
        FloatDType::BF16 => name.push_str("/bf16"),
        _ => {}
    }
    name
}

/// Logits of `shape` in `dtype` on `device` and on its autodiff twin (standard normal), and the
/// loss's weights on the autodiff device (uniform).
fn inputs<const D: usize>(
    device: &Device,
    shape: [usize; D],
    dtype: FloatDType,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let logits =
        Tensor::<D>::random(Shape::from(shape), Distribution::Normal(0.0, 1.0), device).cast(dtype);
    let ad = device.clone().autodiff();
    let ad_logits = Tensor::<D>::from_data(logits.to_data(), &ad).cast(dtype);
    let weights = Tensor::<D>::random(Shape::from(shape), Distribution::Default, &ad).cast(dtype);
    (logits, ad_logits, weights)
}

/// Benchmarks `gumbel_rao` with [`GUMBEL_RAO_SAMPLES`] draws, forward + backward, on one shape.
fn bench_gumbel_rao<const D: usize>(
    c: &mut Criterion,
    backend: &str,
    device: &Device,
    shape: [usize; D],
    dim: usize,
) {
    let name = row_name(&shape, dim, FloatDType::F32);
    let (_, ad_logits, weights) = inputs(device, shape, FloatDType::F32);
    let ad = ad_logits.device();
    let mut group = c.benchmark_group(backend.to_string());
    let id = BenchmarkId::new("gumbel-rao/forward_backward", &name);
    bench_routine(&mut group, id, || {
        let x = ad_logits.clone().require_grad();
        let y = gumbel_rao(x.clone(), GUMBEL_RAO_SAMPLES, TAU, dim);
        let grads = (y * weights.clone()).sum().backward();
        let grad = x.grad(&grads);
        sync(&ad);
        grad
    });
    group.finish();
}

/// Benchmarks the channels-first sample taken the other way: the map `[b, c, h, w]` copied into
/// rows of its `c` categories (`[b · w · h, c]`), sampled along the contiguous last axis, and
/// copied back into the map's layout. The modes `{soft,hard}/forward_transposed`, beside the
/// kernel's own strided path (`…/forward`), decide which serves channels-first maps best on a
/// given device (`docs/benchmarks.md`).
fn bench_transposed(c: &mut Criterion, backend: &str, device: &Device, shape: [usize; 4]) {
    let [b, ch, h, w] = shape;
    let name = row_name(&shape, 1, FloatDType::F32);
    let (logits, _, _) = inputs(device, shape, FloatDType::F32);
    let mut group = c.benchmark_group(backend.to_string());
    for (op, hard) in [("soft", false), ("hard", true)] {
        let id = BenchmarkId::new(format!("{op}/forward_transposed"), &name);
        bench_routine(&mut group, id, || {
            let rows = logits.clone().swap_dims(1, 3).reshape([b * w * h, ch]); // a copy
            let y = gumbel_softmax(rows, TAU, hard, 1);
            // Back to [b, c, h, w]: the reshape of the swapped view is the second copy.
            let y = y
                .reshape([b, w, h, ch])
                .swap_dims(1, 3)
                .reshape([b, ch, h * w]);
            sync(device);
            y
        });
    }
    group.finish();
}

/// Benchmarks one shape of rank `D` on `device`, its logits (and the loss's weights) in `dtype`.
fn bench_shape<const D: usize>(
    c: &mut Criterion,
    backend: &str,
    device: &Device,
    shape: [usize; D],
    dim: usize,
    dtype: FloatDType,
) {
    let name = row_name(&shape, dim, dtype);
    let (logits, ad_logits, weights) = inputs(device, shape, dtype);
    let ad = ad_logits.device();
    let mut group = c.benchmark_group(backend.to_string());

    bench_routine(&mut group, BenchmarkId::new("copy", &name), || {
        let y = logits.clone().mul_scalar(1.0);
        sync(device);
        y
    });
    if dtype == FloatDType::F32 {
        // The tensor-op path the fused kernels replace (noise, then `gumbel_softmax_with_noise`),
        // beside them in the same run.
        bench_routine(
            &mut group,
            BenchmarkId::new("soft/forward_tensor_ops", &name),
            || {
                let noise = gumbel_noise(logits.shape(), device);
                let y = gumbel_softmax_with_noise(logits.clone(), noise, TAU, false, dim);
                sync(device);
                y
            },
        );
    }
    for (op, hard) in [("soft", false), ("hard", true)] {
        bench_routine(
            &mut group,
            BenchmarkId::new(format!("{op}/forward"), &name),
            || {
                let y = gumbel_softmax(logits.clone(), TAU, hard, dim);
                sync(device);
                y
            },
        );
        if dtype == FloatDType::F32 {
            // The same sample under a named key: the same engine, without drawing the key.
            let mut step = 0u64;
            bench_routine(
                &mut group,
                BenchmarkId::new(format!("{op}/forward_keyed"), &name),
                || {
                    step += 1;
                    let key = Key::new(7).fold_in(step);
                    let y = gumbel_softmax_with_key(logits.clone(), key, TAU, hard, dim);
                    sync(device);
                    y
                },
            );
        }
        bench_routine(
            &mut group,
            BenchmarkId::new(format!("{op}/forward_backward"), &name),
            || {
                let x = ad_logits.clone().require_grad();
                let y = gumbel_softmax(x.clone(), TAU, hard, dim);
                let grads = (y * weights.clone()).sum().backward();
                let grad = x.grad(&grads);
                sync(&ad);
                grad
            },
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let enabled = burn_gumbel_support::enabled_backends();
    for backend in enabled.into_iter().rev() {
        let device = burn_gumbel_support::backend_device(backend).expect("enabled");
        let f32 = FloatDType::F32;
        for shape in SHAPES {
            match *shape {
                [rows, k] => bench_shape(c, backend, &device, [rows, k], 1, f32),
                [a, b, k] => bench_shape(c, backend, &device, [a, b, k], 2, f32),
                _ => unreachable!("the table holds shapes of rank 2 and 3"),
            }
        }
        for shape in CHANNELS_FIRST {
            bench_shape(c, backend, &device, shape, 1, f32);
            bench_transposed(c, backend, &device, shape);
        }
        for dtype in [FloatDType::F16, FloatDType::BF16] {
            if device.supports_dtype(dtype) {
                for shape in HALF_SHAPES {
                    bench_shape(c, backend, &device, shape, 1, dtype);
                }
            }
        }
        for (shape, dim) in GUMBEL_RAO_SHAPES {
            match *shape {
                [rows, k] => bench_gumbel_rao(c, backend, &device, [rows, k], dim),
                [a, b, k] => bench_gumbel_rao(c, backend, &device, [a, b, k], dim),
                [a, b, h, w] => bench_gumbel_rao(c, backend, &device, [a, b, h, w], dim),
                _ => unreachable!("the Gumbel-Rao rows have rank 2 to 4"),
            }
        }
        if std::env::var_os("BURN_GUMBEL_BENCH_LARGE").is_some() {
            bench_shape(c, backend, &device, LARGE_SHAPE, 1, f32);
        }
    }
}

criterion_group! {
    name = gumbel;
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(gumbel);
