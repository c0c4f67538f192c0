//! The crash tests' harness, the same for both trainers: a test binary runs itself again as a
//! child process on one of its ignored tests (the child run), with the fault-injection hook
//! ([`FAULT_ENV`]) set to abort it at a chosen fault point, as a `SIGKILL` or a power cut would;
//! the child prints how many fault points it passed, so that the test can kill it at each.
//!
//! ```text
//! #[test] #[ignore] fn child_run() { let dir = child_dir(); /* train into dir */ report_fault_points(); }
//! #[test] fn killed_anywhere() { let (ok, points) = run_child("child_run", &dir, Some(n)); … }
//! ```
//!
//! Available with the `fault-injection` feature.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::files::{FAULT_ENV, fault_points};

/// The environment variable naming the child's run folder.
pub const CHILD_DIR_ENV: &str = "MNIST_RUN_CHILD_DIR";

/// The child's run folder, from [`CHILD_DIR_ENV`].
///
/// # Panics
/// Outside a child started by [`run_child`].
pub fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var(CHILD_DIR_ENV).expect("run by a crash test, as its child"))
}

/// Prints the fault points the child passed, for [`run_child`].
pub fn report_fault_points() {
    println!("fault points: {}", fault_points());
}

/// Runs this test binary's ignored test `child` into `dir`, aborting it at fault point
/// `fault_at` if given. Returns whether it succeeded and the fault points it reported.
///
/// # Panics
/// A child that fails without being aborted at its fault point (its output in the message).
pub fn run_child(child: &str, dir: &Path, fault_at: Option<u64>) -> (bool, Option<u64>) {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([child, "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DIR_ENV, dir)
        .env_remove(FAULT_ENV);
    if let Some(n) = fault_at {
        command.env(FAULT_ENV, n.to_string());
    }
    let output = command.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let aborted = stderr.contains("aborting at fault point");
    assert!(
        aborted || output.status.success(),
        "the child failed without a fault: {stdout}{stderr}"
    );
    let points = stdout
        .lines()
        .find_map(|l| l.strip_prefix("fault points: ")?.trim().parse().ok());
    (output.status.success(), points)
}
