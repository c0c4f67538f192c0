//! Durable file operations of the run folder: atomic writes, `fsync` of files and folders, the
//! folder's lock, SHA-256 checksums, and the fault-injection hook of the crash tests.
//!
//! Every write that replaces a file goes to a temporary file beside it, is flushed to the disk
//! (`fsync`), renamed over the old file, and the folder is flushed too: a crash at any instant
//! leaves either the old file or the new one, never a truncated one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::settings::OUT_DIR;

/// The environment variable of the fault-injection hook: with `MNIST_RUN_FAULT_AT=n`, the process
/// aborts at its `n`-th [`fault_point`] (counted from 1). Read only when the crate is built with
/// its `fault-injection` feature (the crash tests' builds); the programs ignore it.
pub const FAULT_ENV: &str = "MNIST_RUN_FAULT_AT";

/// Fault points passed so far by this process.
static POINTS: AtomicU64 = AtomicU64::new(0);

/// A place where a crash is simulated: every file operation of the trainer and every training
/// step passes one. When [`FAULT_ENV`] names this point's number the process aborts on the spot,
/// as a `SIGKILL` or a power cut would end it: no destructor runs, nothing is flushed.
///
/// Without the `fault-injection` feature it only counts.
pub fn fault_point(what: &str) {
    let n = POINTS.fetch_add(1, Ordering::Relaxed) + 1;
    if cfg!(feature = "fault-injection") && fault_at() == Some(n) {
        eprintln!("{FAULT_ENV}: aborting at fault point {n} ({what})");
        std::process::abort();
    }
}

/// The fault point [`FAULT_ENV`] names, read once.
fn fault_at() -> Option<u64> {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    *AT.get_or_init(|| std::env::var(FAULT_ENV).ok()?.parse().ok())
}

/// How many fault points this process has passed: the crash tests inject a fault at each.
pub fn fault_points() -> u64 {
    POINTS.load(Ordering::Relaxed)
}

/// `path` with `.tmp` appended to its file name.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The folder holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the file `path` by `bytes` atomically and durably: temporary file, `fsync`, rename,
/// `fsync` of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = tmp_path(path);
    write_durable(&tmp, bytes)?;
    fault_point("rename");
    fs::rename(&tmp, path).map_err(|e| Error::file(path, format!("cannot replace: {e}")))?;
    sync_dir(parent(path))
}

/// Writes `bytes` into the new file `path` and flushes it to the disk (no rename: for files in a
/// folder that is itself renamed into place).
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let error = |e: std::io::Error| Error::file(path, format!("cannot write: {e}"));
    fault_point("create");
    let mut file = File::create(path).map_err(error)?;
    fault_point("write");
    file.write_all(bytes).map_err(error)?;
    fault_point("fsync");
    file.sync_all().map_err(error)
}

/// Flushes the file `path`, written by another library, to the disk.
pub fn sync_file(path: &Path) -> Result<(), Error> {
    fault_point("fsync");
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::file(path, format!("cannot flush to disk: {e}")))
}

/// Flushes the folder `dir` (its list of names: creations, renames, removals) to the disk.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    fault_point("fsync folder");
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::file(dir, format!("cannot flush the folder to disk: {e}")))
}

/// Creates the folder `path` and the parents it lacks, durably: the folder above each one created
/// is flushed, so that none of them can vanish in a crash.
pub fn create_dir(path: &Path) -> Result<(), Error> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.is_dir()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fault_point("create folder");
    fs::create_dir_all(path).map_err(|e| Error::file(path, format!("cannot create: {e}")))?;
    for created in missing.into_iter().rev() {
        sync_dir(parent(created))?;
    }
    Ok(())
}

/// Removes the folder `path` and all it holds.
pub fn remove_dir(path: &Path) -> Result<(), Error> {
    fault_point("remove");
    fs::remove_dir_all(path).map_err(|e| Error::file(path, format!("cannot remove: {e}")))
}

/// The SHA-256 of `bytes`, in hexadecimal.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Removes the file `path` if it exists, durably (its folder flushed).
///
/// # Errors
/// A file that exists and cannot be removed.
pub fn remove_file(path: &Path) -> Result<(), Error> {
    fault_point("remove");
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file(path, format!("cannot remove: {e}"))),
    }
}

/// The SHA-256 of the file `path`, in hexadecimal.
///
/// # Errors
/// A file that cannot be read.
pub fn sha256(path: &Path) -> Result<String, Error> {
    let mut file = File::open(path).map_err(|e| Error::file(path, e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| Error::file(path, e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The exclusive lock of a run folder, held while the value lives (the operating system releases
/// it when the process ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the exclusive lock of the run folder `dir` (the file `dir/.lock`), and writes who holds
/// it into that file.
///
/// # Errors
/// The folder is locked by another process (named from the lock file), or the lock file cannot
/// be opened.
pub fn lock_run(dir: &Path) -> Result<RunLock, Error> {
    let path = dir.join(".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::file(&path, format!("cannot open the lock file: {e}")))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process"
            } else {
                holder
            };
            return Err(Error::invalid(
                OUT_DIR,
                format!(
                    "{} is in use by another run ({holder}); wait for it to end or choose \
                     another folder",
                    dir.display()
                ),
            ));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(Error::file(&path, format!("cannot lock: {e}")));
        }
    }
    let holder = format!("process {} ({})", std::process::id(), program());
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(holder.as_bytes()));
    Ok(RunLock { _file: file })
}

/// This program's name, for the lock file.
fn program() -> String {
    std::env::args()
        .next()
        .and_then(|p| Some(Path::new(&p).file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown program".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vae-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("atomic");
        let path = dir.join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_a_run_folder_is_refused_and_names_the_holder() {
        let dir = scratch("lock");
        let held = lock_run(&dir).unwrap();
        let error = lock_run(&dir).unwrap_err().to_string();
        assert!(error.starts_with("out_dir: "), "{error}");
        assert!(
            error.contains("is in use by another run (process "),
            "{error}"
        );
        assert!(error.contains(&std::process::id().to_string()), "{error}");
        drop(held);
        assert!(lock_run(&dir).is_ok(), "released with its holder");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sha256_of_a_known_text() {
        let dir = scratch("sha");
        let path = dir.join("abc");
        fs::write(&path, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256(&path).unwrap(), abc);
        assert_eq!(sha256_bytes(b"abc"), abc);
        fs::remove_dir_all(&dir).unwrap();
    }
}
