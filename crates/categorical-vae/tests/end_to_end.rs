//! End to end: the VAE learns on the embedded MNIST subset, checkpoints reload to the same
//! evaluation, and a resumed run continues exactly as an uninterrupted one.

use std::path::{Path, PathBuf};

use burn_gumbel_support::{reference_device as device, rng_lock};
use categorical_vae::checkpoint::{load_config, load_model};
use categorical_vae::config::TrainingConfig;
use categorical_vae::evaluation::evaluate;
use categorical_vae::metrics::EpochMetrics;
use categorical_vae::model::VaeConfig;
use categorical_vae::training::{RunOptions, train};
use mnist_run::data::Mnist;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("categorical-vae-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(dir: &Path, resume: bool) -> RunOptions {
    RunOptions::new(dir).with_resume(resume)
}

#[test]
fn training_lowers_the_test_elbo_and_checkpoints_reload() {
    let _lock = rng_lock();
    let device = device();
    let data = Mnist::embedded();
    let config = TrainingConfig::new(VaeConfig::new())
        .with_epochs(3)
        .with_seed(1);
    let dir = scratch("learns");

    // The untrained model (same seed, same initialization as the run below).
    device.seed(config.seed);
    let untrained = config.model.init(&device);
    let before = evaluate(
        &untrained,
        &data.test,
        &config,
        config.schedule.tau(0),
        &device,
    );

    let trained = train(&config, &data, &device, &options(&dir, false), |_| {}).unwrap();
    let last = trained.state.history.last().unwrap().clone();
    assert_eq!(last.step, 300);
    println!(
        "test negative ELBO: {:.2} before, {:.2} after 300 steps",
        before.nelbo_hard, last.test.nelbo_hard
    );

    // At initialization every pixel costs about ln 2, so the negative ELBO starts near
    // 784 · ln 2 = 543 nats. A model that ignored its code could at best learn the marginal of
    // each pixel, which costs about 206 nats on binarized MNIST: ending below 200 nats shows the
    // code carries information about the digit, and it is far below the start (under 40% of it).
    assert!(before.nelbo_hard > 500.0, "untrained: {before:?}");
    assert!(
        last.test.nelbo_hard < 200.0,
        "after 300 steps: {:?}",
        last.test
    );
    assert!(last.test.nelbo_hard < 0.4 * before.nelbo_hard);
    assert!(last.test.kl > 1.0, "the code is used: KL {}", last.test.kl);

    // Reloading the checkpoint gives the same evaluation, number for number.
    let reloaded_config = load_config(&dir).unwrap();
    assert_eq!(reloaded_config, config);
    let reloaded = load_model(&reloaded_config, &dir, &device).unwrap();
    let again = evaluate(&reloaded, &data.test, &config, last.tau, &device);
    assert_eq!(again, last.test);

    for file in [
        "config.json",
        "metrics.csv",
        "checkpoint/step-0000000300/model.bpk",
        "checkpoint/step-0000000300/optimizer.bpk",
        "checkpoint/step-0000000300/state.json",
        "checkpoint/step-0000000300/manifest.json",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resumed_run_continues_exactly() {
    let _lock = rng_lock();
    let device = device();
    let mut data = Mnist::embedded();
    data.train = data.train.truncate(1000); // 10 steps per epoch
    data.test = data.test.truncate(500);
    let config = TrainingConfig::new(VaeConfig::new().with_hidden1(64).with_hidden2(32))
        .with_epochs(2)
        .with_seed(3);

    let straight = scratch("straight");
    let whole: Vec<EpochMetrics> =
        train(&config, &data, &device, &options(&straight, false), |_| {})
            .unwrap()
            .state
            .history;

    let interrupted = scratch("interrupted");
    let first = config.clone().with_epochs(1);
    train(
        &first,
        &data,
        &device,
        &options(&interrupted, false),
        |_| {},
    )
    .unwrap();
    let resumed = train(
        &config,
        &data,
        &device,
        &options(&interrupted, true),
        |_| {},
    )
    .unwrap();

    assert_eq!(resumed.state.history.len(), 2);
    for (a, b) in whole.iter().zip(&resumed.state.history) {
        assert_eq!(
            (a.step, a.tau, a.train_nelbo),
            (b.step, b.tau, b.train_nelbo),
            "epoch {}",
            a.epoch
        );
        assert_eq!(a.test, b.test, "epoch {}", a.epoch);
    }

    // A fresh run into a folder that holds one is refused; so is resuming with another model.
    let error = train(
        &config,
        &data,
        &device,
        &options(&interrupted, false),
        |_| {},
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("holds a run already: resume it"),
        "{error}"
    );
    let other = TrainingConfig {
        model: VaeConfig::new().with_hidden1(65).with_hidden2(32),
        ..config.clone()
    };
    let error = train(&other, &data, &device, &options(&interrupted, true), |_| {}).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the run was made with other settings (model.hidden1: 64 → 65)"),
        "{error}"
    );
    let dynamic = config
        .clone()
        .with_binarize(mnist_run::data::Binarize::Dynamic);
    let error = train(
        &dynamic,
        &data,
        &device,
        &options(&scratch("dynamic"), false),
        |_| {},
    );
    let error = error.unwrap_err().to_string();
    assert!(
        error.starts_with("binarize: dynamic binarization needs grey levels"),
        "{error}"
    );
    let missing = scratch("missing");
    let error = train(&config, &data, &device, &options(&missing, true), |_| {}).unwrap_err();
    assert!(error.to_string().contains("config.json"), "{error}");

    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&interrupted).unwrap();
}
