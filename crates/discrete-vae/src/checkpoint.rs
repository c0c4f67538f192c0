//! Checkpoints that survive a crash, for burn-train: a [`Checkpointer`] that writes each record
//! atomically and durably, and the choice of the epoch to resume from.
//!
//! burn-train's `FileCheckpointer` writes `model-N.bpk` in place: a kill during the write leaves
//! a truncated file under the final name, which a resume then fails to load. This one writes to
//! a temporary file, flushes it (`fsync`), renames it into place and flushes the folder
//! ([`write_atomic`]); burn-train saves the model, the optimizer and the scheduler of an epoch
//! as three files, so [`last_complete_epoch`] resumes from the newest epoch that has all three.

use std::path::{Path, PathBuf};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use categorical_vae::Error;
use categorical_vae::files::{sync_dir, write_atomic};

/// The records burn-train saves for an epoch, by file-name prefix.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// Where a run keeps its checkpoints: `DIR/checkpoint`.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// A [`Checkpointer`] of one record (`model`, `optim` or `scheduler`) writing
/// `DIR/NAME-EPOCH.bpk` atomically and durably.
#[derive(Clone, Debug)]
pub struct DurableCheckpointer {
    dir: PathBuf,
    name: &'static str,
}

impl DurableCheckpointer {
    /// The checkpointer of the record `name` in `dir` (created if missing).
    ///
    /// # Errors
    /// A folder that cannot be created.
    pub fn new(dir: &Path, name: &'static str) -> Result<Self, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
        })
    }

    fn path(&self, epoch: usize) -> PathBuf {
        record_path(&self.dir, self.name, epoch)
    }
}

/// `DIR/NAME-EPOCH.bpk`, burn-train's file name for a record.
fn record_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!("{name}-{epoch}.bpk"))
}

fn io_error(error: Error) -> CheckpointerError {
    CheckpointerError::IOError(std::io::Error::other(error.to_string()))
}

impl<R: Checkpoint> Checkpointer<R> for DurableCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes).map_err(io_error)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = self.path(epoch);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(io_error),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CheckpointerError::IOError(e)),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// The newest epoch of `dir` whose three records ([`RECORDS`]) are all there, if any.
///
/// # Errors
/// A folder that exists but cannot be read.
pub fn last_complete_epoch(dir: &Path) -> Result<Option<usize>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(dir, format!("cannot read: {e}"))),
    };
    let mut epochs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(dir, format!("cannot read: {e}")))?;
        let name = entry.file_name();
        let epoch = name
            .to_str()
            .and_then(|n| n.strip_prefix("model-"))
            .and_then(|n| n.strip_suffix(".bpk"))
            .and_then(|n| n.parse::<usize>().ok());
        epochs.extend(epoch);
    }
    epochs.sort_unstable();
    Ok(epochs
        .into_iter()
        .rev()
        .find(|&epoch| RECORDS.iter().all(|r| record_path(dir, r, epoch).is_file())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_takes_the_newest_epoch_with_all_three_records() {
        let dir = std::env::temp_dir().join(format!("dvae-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(last_complete_epoch(&dir).unwrap(), None);
        std::fs::create_dir_all(&dir).unwrap();
        for name in RECORDS {
            std::fs::write(record_path(&dir, name, 3), b"x").unwrap();
        }
        // Epoch 4's scheduler was never written (a crash between the files): epoch 3 it is.
        for name in ["model", "optim"] {
            std::fs::write(record_path(&dir, name, 4), b"x").unwrap();
        }
        std::fs::write(dir.join("model-4.bpk.tmp"), b"x").unwrap();
        assert_eq!(last_complete_epoch(&dir).unwrap(), Some(3));
        std::fs::write(record_path(&dir, "scheduler", 4), b"x").unwrap();
        assert_eq!(last_complete_epoch(&dir).unwrap(), Some(4));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_round_trips_through_the_checkpointer() {
        use burn::module::Module;
        use burn::store::ModuleRecord;
        let dir = std::env::temp_dir().join(format!("dvae-round-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let device = burn_gumbel_support::reference_device();
        let model = crate::model::DiscreteVaeConfig::new()
            .with_codes(3)
            .with_channels(2)
            .init(&device)
            .advance();
        let checkpointer = DurableCheckpointer::new(&dir, "model").unwrap();
        Checkpointer::<ModuleRecord>::save(&checkpointer, 7, model.clone().into_record()).unwrap();
        assert!(!dir.join("model-7.bpk.tmp").exists());
        let record: ModuleRecord = checkpointer.restore(7).unwrap();
        let fresh = crate::model::DiscreteVaeConfig::new()
            .with_codes(3)
            .with_channels(2)
            .init(&device);
        assert_eq!(fresh.load_record(record).step(), 1);
        Checkpointer::<ModuleRecord>::delete(&checkpointer, 7).unwrap();
        assert!(!dir.join("model-7.bpk").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
