//! End-to-end training through burn-train on the embedded MNIST subset.

use std::path::PathBuf;

use burn_gumbel::TemperatureSchedule;
use burn_gumbel_support::{reference_device, rng_lock};
use discrete_vae::checkpoint::{Generation, Position, latest};
use discrete_vae::data::Digits;
use discrete_vae::training::{RunConfig, RunOptions, evaluate, independent_pixels_nll, train};
use mnist_run::data::DataSource;

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dvae-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn quick(epochs: usize, devices: usize) -> RunConfig {
    let mut config = RunConfig::new(DataSource::Embedded);
    config.epochs = epochs;
    config.devices = devices;
    config.model = config.model.with_channels(16);
    config
}

/// Trains `config` into a fresh folder and returns its test negative ELBO with hard codes.
fn test_nelbo(name: &str, config: &RunConfig) -> (f64, f64, (u64, u64)) {
    let dir = run_dir(name);
    let options = RunOptions {
        plain: true,
        ..Default::default()
    };
    let outcome = train(config, &reference_device(), &dir, options, |_| {}).unwrap();
    let test = Digits::new(outcome.mnist.test.clone());
    let train_set = Digits::new(outcome.mnist.train.clone());
    let evaluation = evaluate(&outcome.model, &test, 500, 0);
    let baseline = independent_pixels_nll(&train_set, &test);
    std::fs::remove_dir_all(&dir).unwrap();
    (evaluation.nelbo_hard, baseline, outcome.steps)
}

/// 200 steps of 100 images (2 epochs of the embedded subset), on one device and data-parallel
/// on two (burn-train's multi-device strategy, 50 images per device and step). Both must model
/// the test digits better than independent pixels (199.97 nats), two devices no worse than one.
///
/// Measured with the release build, seeds 0, 1, 2: one device 191.94, 194.32, 194.27 (standard
/// deviation 1.4 nats); two devices 193.82, 193.41, 195.09. The difference of two runs has a
/// standard deviation of about 2 nats: 6 nats is three of them. Below the baseline by 8 nats at
/// seed 0 is six of one run's.
#[test]
fn two_devices_learn_as_one_and_beat_independent_pixels() {
    let _rng = rng_lock();
    let (one, baseline, steps) = test_nelbo("one", &quick(2, 1));
    assert_eq!(steps, (200, 200));
    let (two, _, steps) = test_nelbo("two", &quick(2, 2));
    assert_eq!(steps, (200, 200));
    assert!(one < baseline, "one device: {one} against {baseline}");
    assert!(two < baseline, "two devices: {two} against {baseline}");
    // One-sided: two devices must not learn worse. A CI run after the noise generator changed
    // (2026-11-28) measured two devices 12 nats *better* (180.21 vs 192.65): the two-sided bound
    // of 6 nats was set from three seeds of the old generator and is not a law.
    assert!(two < one + 6.0, "one device {one}, two devices {two}");
}

#[test]
fn resume_continues_the_step_counter_and_the_annealing() {
    // A tiny model (the speed of the test is the point), annealed at every step so that the
    // temperature shows the counter: after 1 + 1 epochs of 100 steps, tau = exp(-0.002 · 200).
    let _rng = rng_lock();
    let dir = run_dir("resume");
    let mut config = quick(1, 1);
    config.model = config
        .model
        .with_channels(2)
        .with_codes(8)
        .with_schedule(TemperatureSchedule::exponential(1.0, 2e-3, 0.1, 1));
    let options = || RunOptions {
        plain: true,
        ..Default::default()
    };
    let device = reference_device();
    let first = train(&config, &device, &dir, options(), |_| {}).unwrap();
    assert_eq!((first.resumed_from, first.steps), (None, (100, 100)));
    // A fresh run into the same folder is refused: it holds a run.
    let again = train(&config, &device, &dir, options(), |_| {})
        .err()
        .unwrap();
    assert!(again.to_string().contains("holds a run already"), "{again}");

    config.epochs = 2;
    let resume = RunOptions {
        resume: true,
        ..options()
    };
    drop(first); // its lock
    let second = train(&config, &device, &dir, resume, |_| {}).unwrap();
    let one_epoch = Position {
        epochs: 1,
        steps_in_epoch: 0,
    };
    assert_eq!(
        (second.resumed_from, second.steps),
        (Some(one_epoch), (200, 100))
    );
    assert!((second.model.tau() - (-0.4f64).exp()).abs() < 1e-12);
    let checkpoints = dir.join("checkpoint");
    for name in ["model", "optim", "scheduler"] {
        for epoch in [1, 2] {
            assert!(checkpoints.join(format!("{name}-{epoch}.bpk")).is_file());
        }
    }
    let found = latest(&checkpoints).unwrap().unwrap();
    assert_eq!(found.generation, Generation::Epoch(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
