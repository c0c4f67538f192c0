//! One training step of the categorical VAE (batch 100, the paper's model, Adam), per backend.
//!
//! ```text
//! cargo bench --bench vae_step                  # flex
//! cargo bench --bench vae_step --all-features   # flex, ndarray, wgpu
//! ```
//!
//! Names read `{backend}/vae/train_step/100`; the device is synchronized inside the timed region.

use std::time::Duration;

use burn::optim::AdamConfig;
use burn::tensor::{Distribution, Tensor};
use categorical_vae::defaults;
use categorical_vae::model::VaeConfig;
use categorical_vae::training::train_step;
use criterion::{Criterion, criterion_group, criterion_main};

/// mimalloc rather than glibc's malloc: with glibc, the VAE step's time depended on the heap's
/// state from one process to the next (the allocator trimmed and re-faulted its heap every step
/// in the slow ones), which measured the allocator, not the computation (`docs/benchmarks.md`,
/// "Measurements behind the kernels' constants").
/// The feature `system-allocator` keeps glibc's, to see what a user's program gets.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Training steps run before criterion's own warm-up (only if the filter selects the benchmark).
const WARM_UP_STEPS: usize = 50;

fn benches(c: &mut Criterion) {
    for backend in burn_gumbel_support::enabled_backends().into_iter().rev() {
        let device = burn_gumbel_support::backend_device(backend).expect("enabled");
        let device = device.autodiff();
        device.seed(0);
        let mut model = Some(VaeConfig::new().init(&device));
        // Adam as the trainer has it (ε is arithmetic, not speed).
        let mut optim = AdamConfig::new()
            .with_epsilon(mnist_run::limits::ADAM_EPSILON as f32)
            .init();
        let x = Tensor::<2>::random([100, 784], Distribution::Bernoulli(0.2), &device);
        let mut step = || {
            let current = model.take().expect("the model is put back after each step");
            let lr = defaults::LEARNING_RATE;
            let (next, _loss) = train_step(current, &mut optim, x.clone(), 1.0, lr);
            model = Some(next);
            device.sync().expect("the device runs the step");
        };
        let mut warmed_up = false;
        c.bench_function(&format!("{backend}/vae/train_step/100"), |b| {
            // Untimed steps first: GPU backends compile and autotune kernels during the first
            // steps, which can outlast criterion's time-based warm-up.
            if !warmed_up {
                (0..WARM_UP_STEPS).for_each(|_| step());
                warmed_up = true;
            }
            b.iter(&mut step)
        });
    }
}

criterion_group! {
    name = vae;
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(vae);
