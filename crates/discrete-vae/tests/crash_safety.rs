//! A run survives a crash at any instant: the trainer is killed at its file operations and
//! optimizer steps (the fault-injection hook of `categorical_vae::files`), then `--resume` must
//! load the newest complete checkpoint and finish the run.
//!
//! The killed runs are child processes: this test binary started again on the ignored test
//! `child_run`, which trains into the folder named by `DVAE_CRASH_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn_gumbel_support::reference_device;
use categorical_vae::data::{DataSource, Mnist};
use categorical_vae::files::FAULT_ENV;
use discrete_vae::checkpoint::{checkpoint_dir, last_complete_epoch};
use discrete_vae::training::{Outcome, RunConfig, RunOptions, load_config, train};

/// The folder the child trains into.
const DIR_ENV: &str = "DVAE_CRASH_DIR";

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

/// A tiny model on 300 digits in batches of 100: 3 steps an epoch, 2 epochs.
fn config() -> RunConfig {
    let mut config = RunConfig::new(DataSource::Idx(small_mnist()));
    config.model = config.model.with_channels(2).with_codes(8);
    config.epochs = 2;
    config
}

fn run(dir: &Path, resume: bool) -> Outcome {
    let config = if resume {
        load_config(dir).unwrap()
    } else {
        config()
    };
    let options = RunOptions {
        resume,
        plain: true,
        ..Default::default()
    };
    train(&config, &reference_device(), dir, options).unwrap()
}

/// The child: trains into `DVAE_CRASH_DIR`, resuming if the folder holds a run.
#[test]
#[ignore = "run by killed_anywhere_the_run_resumes as a child process"]
fn child_run() {
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("DVAE_CRASH_DIR"));
    let resume = dir.join("config.json").exists();
    run(&dir, resume);
}

/// Runs the child with a fault at point `at` (none if `None`); true if it was killed.
fn child(dir: &Path, at: Option<u64>) -> bool {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_run", "--exact", "--ignored", "--nocapture"])
        .env(DIR_ENV, dir)
        .env_remove(FAULT_ENV);
    if let Some(at) = at {
        command.env(FAULT_ENV, at.to_string());
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let killed = stderr.contains("aborting at fault point");
    assert!(
        killed || output.status.success(),
        "child failed without a fault: {stderr}"
    );
    killed
}

/// The uninterrupted run passes about 45 fault points (the configuration's five file operations;
/// per epoch 3 steps and three records of five file operations each). Killing the run at each of
/// them and resuming must always finish the run: 6 steps, the last checkpoint complete. A kill at
/// a point past the end (the run finishes) ends the loop.
#[test]
fn killed_anywhere_the_run_resumes() {
    let root = std::env::temp_dir().join(format!("dvae-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut kills = 0;
    for at in 1u64.. {
        let dir = root.join(format!("at-{at}"));
        if !child(&dir, Some(at)) {
            break;
        }
        kills += 1;
        let interrupted = last_complete_epoch(&checkpoint_dir(&dir)).unwrap();
        if dir.join("config.json").exists() {
            // The resume, in this process: from the newest complete checkpoint, to the end.
            let outcome = run(&dir, true);
            assert_eq!(outcome.resumed_from, interrupted, "killed at {at}");
            assert_eq!(outcome.steps.0, 6, "killed at {at}");
            assert_eq!(last_complete_epoch(&checkpoint_dir(&dir)).unwrap(), Some(2));
        } else {
            // Killed before the configuration was in place: nothing to resume, and a fresh run
            // into the folder is not refused.
            assert!(!child(&dir, None), "killed at {at}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(kills >= 30, "only {kills} fault points were reached");
    let _ = std::fs::remove_dir_all(&root);
}

/// A checkpoint file cut short (a damaged disk, a copy interrupted by hand) makes `--resume` fail
/// with one line naming the file, instead of burn-train's panic.
#[test]
fn a_truncated_checkpoint_is_a_one_line_error() {
    let dir = std::env::temp_dir().join(format!("dvae-truncated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(&dir, false);
    let optim = checkpoint_dir(&dir).join("optim-2.bpk");
    let bytes = std::fs::read(&optim).unwrap();
    std::fs::write(&optim, &bytes[..bytes.len() / 2]).unwrap();
    let mut config = load_config(&dir).unwrap();
    config.epochs = 3;
    let options = RunOptions {
        resume: true,
        plain: true,
        ..Default::default()
    };
    let error = train(&config, &reference_device(), &dir, options)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with(&format!("{}: cannot load: ", optim.display())),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
