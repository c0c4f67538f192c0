//! A run through burn-train cannot be lost, and resumes exactly: the trainer is killed at each of
//! its file operations and optimizer steps (the fault-injection hook of `mnist_run::files`, which
//! covers every epoch boundary), resumed, and must end with the weights and the evaluation of the
//! run that was never stopped, bit for bit; a run stopped by a signal after any step saves that
//! step and continues bit for bit; damaged and mixed checkpoints are refused for the previous one.
//!
//! The killed runs are child processes: this test binary started again on the ignored test
//! `child_run`, through `mnist_run::crash`.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use burn_gumbel_support::reference_device;
use discrete_vae::checkpoint::{Generation, checkpoint_dir, latest};
use discrete_vae::training::{RunConfig, RunOptions, load_config, run, train};
use mnist_run::Error;
use mnist_run::crash::{child_dir, report_fault_points, run_child};
use mnist_run::data::{DataSource, Mnist};
use mnist_run::resume::holds_run;
use mnist_run::signals::StopFlag;

/// Writes the IDX files of the first 300 training and 100 test digits of the embedded subset
/// into `dir` (big-endian header: magic, counts, then the bytes), once.
fn small_mnist() -> PathBuf {
    let dir = std::env::temp_dir().join("dvae-crash-mnist");
    if dir.join("t10k-labels-idx1-ubyte").is_file() {
        return dir;
    }
    let mnist = Mnist::embedded();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, magic: u32, dims: &[u32], bytes: &[u8]| {
        let mut out: Vec<u8> = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
        out.extend_from_slice(bytes);
        let tmp = dir.join(format!("{name}.{}", std::process::id()));
        std::fs::write(&tmp, out).unwrap();
        std::fs::rename(tmp, dir.join(name)).unwrap();
    };
    for (prefix, images, n) in [("train", &mnist.train, 300), ("t10k", &mnist.test, 100)] {
        let images = images.clone().truncate(n);
        let count = n as u32;
        write(
            &format!("{prefix}-images-idx3-ubyte"),
            0x803,
            &[count, 28, 28],
            &images.pixels,
        );
        write(
            &format!("{prefix}-labels-idx1-ubyte"),
            0x801,
            &[count],
            &images.labels,
        );
    }
    dir
}

/// A tiny model on 300 digits in batches of 100: 3 steps an epoch, 2 epochs, the temperature
/// annealed at every step (so that a step counter off by one shows).
fn config() -> RunConfig {
    let mut config = RunConfig::new(DataSource::Idx(small_mnist()));
    config.model = config.model.with_channels(2).with_codes(8).with_schedule(
        burn_gumbel::TemperatureSchedule::exponential(1.0, 0.05, 0.1, 1),
    );
    config.epochs = 2;
    config
}

fn options(resume: bool, stop: Option<StopFlag>) -> RunOptions {
    RunOptions {
        resume,
        plain: true,
        stop,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dvae-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The child: runs into its folder (resuming if the folder holds a run) and prints how
/// many fault points it passed.
#[test]
#[ignore = "a child process of the crash tests"]
fn child_run() {
    let dir = child_dir();
    let resume = holds_run(&dir);
    let config = if resume {
        load_config(&dir).unwrap()
    } else {
        config()
    };
    run(
        &config,
        &reference_device(),
        &dir,
        options(resume, None),
        |_| {},
    )
    .unwrap();
    report_fault_points();
}

/// What must survive any crash: the bits of what the newest checkpoint's model computes from a
/// fixed input with fixed noise (the encoder's logits, the decoder's pixels), its step counter,
/// `evaluation.json` and `metrics.csv`.
fn outcome(dir: &Path) -> (Vec<u32>, u64, String, String) {
    let device = reference_device();
    let found = latest(&checkpoint_dir(dir)).unwrap().unwrap();
    assert_eq!(found.generation, Generation::Epoch(2));
    let bytes = std::fs::read(found.generation.record(&checkpoint_dir(dir), "model")).unwrap();
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).unwrap();
    use burn::module::Module;
    let model = config()
        .model
        .init(&device)
        .load_record(record)
        .with_loaded_step();
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..2 * 784)
                .map(|i| (i % 3 == 0) as u8 as f32)
                .collect::<Vec<_>>(),
            [2, 1, 28, 28],
        ),
        &device,
    );
    let forward = model.forward_with_key(x, burn_gumbel::Key::new(1));
    let bits = [
        forward.logits.flatten::<1>(0, 3),
        forward.pixel_logits.flatten::<1>(0, 3),
    ]
    .into_iter()
    .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
    .map(f32::to_bits)
    .collect();
    let evaluation = std::fs::read_to_string(dir.join("evaluation.json")).unwrap();
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    (bits, model.step(), evaluation, metrics)
}

/// The uninterrupted run passes some 70 fault points (the configuration's write; per epoch 3
/// optimizer steps, three records and a manifest written atomically; `evaluation.json` and the
/// pictures). Killed at each and resumed, the run must end as the uninterrupted one, bit for bit.
/// `DVAE_CRASH_STRIDE=k` kills at every k-th point only (default 1: all).
#[test]
fn a_run_killed_at_any_fault_point_resumes_to_the_same_bits() {
    let straight = scratch("straight");
    let (ok, points) = run_child("child_run", &straight, None);
    assert!(ok, "the uninterrupted run fails");
    let points = points.expect("the child reports its fault points");
    let expected = outcome(&straight);
    assert_eq!(expected.1, 6, "2 epochs of 3 steps");
    let stride: usize = std::env::var("DVAE_CRASH_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut resumed = 0;
    for n in (1..=points).step_by(stride) {
        let dir = scratch(&format!("killed-{n}"));
        let (ok, _) = run_child("child_run", &dir, Some(n));
        assert!(!ok, "point {n}: the child did not abort");
        let (ok, _) = run_child("child_run", &dir, None);
        assert!(ok, "point {n}: the resume fails");
        assert!(
            outcome(&dir) == expected,
            "point {n}: another result than the uninterrupted run's"
        );
        let leftovers: Vec<_> = std::fs::read_dir(checkpoint_dir(&dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "point {n}: {leftovers:?}");
        resumed += 1;
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(points >= 40, "only {points} fault points");
    println!("{points} fault points, {resumed} killed runs resumed to the same bits");
    std::fs::remove_dir_all(&straight).unwrap();
}

/// A signal after any step: the run saves that step (a checkpoint inside the epoch, with the
/// training metrics' sums so far), ends with [`Error::Interrupted`] and nothing else written;
/// resumed, it continues bit for bit, its metrics included.
#[test]
fn a_run_stopped_by_a_signal_after_any_step_continues_bit_for_bit() {
    let device = reference_device();
    let straight = scratch("signal-straight");
    run(&config(), &device, &straight, options(false, None), |_| {}).unwrap();
    // SIGTERM asked before the first step: every call stops after one step, inside an epoch or
    // at its end, and the next resumes there.
    let dir = scratch("signal");
    let stop = StopFlag::new();
    stop.request(15);
    let mut resume = false;
    let mut stops = 0;
    loop {
        let mut events = Vec::new();
        let result = run(
            &config(),
            &device,
            &dir,
            options(resume, Some(stop.clone())),
            |e| events.push(format!("{e:?}")),
        );
        match result {
            Err(error @ Error::Interrupted { .. }) => {
                stops += 1;
                let Error::Interrupted { signal, step, .. } = &error else {
                    unreachable!()
                };
                assert_eq!((*signal, *step), (15, stops));
                assert_eq!(error.exit_code(), 143);
                assert!(
                    !dir.join("evaluation.json").exists(),
                    "written before the end"
                );
                if stops > 1 {
                    assert!(events[0].starts_with("Resumed("), "{events:?}");
                }
                resume = true;
            }
            Err(error) => panic!("{error}"),
            Ok(report) => {
                assert_eq!(report.steps.0, 6);
                break;
            }
        }
        assert!(stops <= 6, "the run does not end");
    }
    assert_eq!(stops, 6, "2 epochs of 3 steps, stopped after each");
    // The weights, the counter, the evaluation and every metric of every epoch, training means
    // of the epochs resumed inside included.
    let (a, b) = (outcome(&dir), outcome(&straight));
    assert!((&a.0, a.1, &a.2) == (&b.0, b.1, &b.2), "another result");
    assert_eq!(a.3, b.3, "another metrics.csv");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&straight).unwrap();
}

/// Damage inside a record (bytes overwritten, which only a checksum sees) and a checkpoint that
/// mixes two processes' records: both refused with one line each, and the previous complete
/// checkpoint resumed from. A truncated record is refused the same way.
#[test]
fn damaged_and_mixed_checkpoints_are_refused_for_the_previous_one() {
    let device = reference_device();
    for damage in ["overwritten", "truncated", "mixed"] {
        let dir = scratch(&format!("damaged-{damage}"));
        train(&config(), &device, &dir, options(false, None), |_| {}).unwrap();
        let checkpoints = checkpoint_dir(&dir);
        let optim = Generation::Epoch(2).record(&checkpoints, "optim");
        let mut bytes = std::fs::read(&optim).unwrap();
        match damage {
            "overwritten" => {
                let middle = bytes.len() / 2;
                bytes[middle..middle + 64].fill(0xFF)
            }
            "truncated" => bytes.truncate(bytes.len() / 2),
            // Another process's record of epoch 2: the first epoch's optimizer state.
            _ => bytes = std::fs::read(Generation::Epoch(1).record(&checkpoints, "optim")).unwrap(),
        }
        std::fs::write(&optim, bytes).unwrap();
        let mut events = Vec::new();
        let mut resumed = config();
        resumed.epochs = 3;
        let outcome = train(&resumed, &device, &dir, options(true, None), |e| {
            events.push(format!("{e:?}"))
        })
        .unwrap();
        assert_eq!(
            events,
            [
                "EpochsExtended { from: 2, to: 3 }".to_string(),
                format!(
                    "PassedOver(\"{}: damaged: its SHA-256 differs from the checkpoint's manifest\")",
                    optim.display()
                ),
                "Resumed(Position { epochs: 1, steps_in_epoch: 0 })".to_string(),
            ],
            "{damage}"
        );
        assert_eq!(outcome.steps, (9, 6), "{damage}");
        drop(outcome);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
