//! Checkpoints that survive a crash, for burn-train: a [`Checkpointer`] that writes each record
//! atomically and durably, a manifest that names the records of one checkpoint with their
//! SHA-256, and the choice of the checkpoint to resume from.
//!
//! burn-train saves an epoch as three records, the model, the optimizer and the scheduler, on
//! three threads, under the names `model-N.bpk`, `optim-N.bpk`, `scheduler-N.bpk`. Each is written
//! to a temporary file, flushed (`fsync`), renamed into place and its folder flushed
//! ([`write_atomic`]). The last of the three to be written writes `manifest-N.json`: the
//! checkpoint's [`Position`] and the SHA-256 of its three records. A checkpoint is complete when
//! its manifest is there and its records match it; a rewrite of epoch `N` (a resumed run) first
//! removes `manifest-N.json`, so that a kill in the middle of the rewrite leaves an incomplete
//! checkpoint, never one that mixes the records of two processes.
//!
//! A run stopped inside an epoch (a signal) saves the same three records under the name `mid`,
//! with a fourth, `train-metrics-mid.json`: the training metrics' running sums of the epoch so
//! far ([`EpochSums`]), from which the resumed run continues them, so that the epoch's means are
//! the uninterrupted run's. Its manifest names the four ([`save_mid`]). [`latest`] resumes from
//! the newest complete checkpoint, passing over (and reporting) a damaged one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use mnist_run::Error;
use mnist_run::files::{remove_file, sha256, sha256_bytes, write_atomic};
use serde::{Deserialize, Serialize};

/// The records burn-train saves for a checkpoint, by file-name prefix.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// The running sums of the training metrics in the epoch a `mid` checkpoint stops inside, by
/// metric name: the sum of `value × batch size` and the sum of the batch sizes, as burn-train's
/// `NumericMetricState` accumulates them (its epoch mean is their quotient).
pub type EpochSums = BTreeMap<String, (f64, usize)>;

/// Where a run keeps its checkpoints: `DIR/checkpoint`.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// Where a checkpoint stands in its run: the epochs completed, and the optimizer steps done in
/// the epoch after them (0 at an epoch's end). Ordered as the run advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// Epochs completed (validated and checkpointed by burn-train, or not for `mid`).
    pub epochs: usize,
    /// Optimizer steps done in the next epoch.
    pub steps_in_epoch: u64,
}

/// A checkpoint's name: burn-train's checkpoint of an epoch's end, or the one written inside an
/// epoch when the run was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// `NAME-EPOCH.bpk`, written by burn-train after the epoch's validation.
    Epoch(usize),
    /// `NAME-mid.bpk`, written by [`save_mid`].
    Mid,
}

impl Generation {
    fn suffix(self) -> String {
        match self {
            Generation::Epoch(epoch) => epoch.to_string(),
            Generation::Mid => "mid".to_string(),
        }
    }

    /// The file of the record `name` (`model`, `optim`, `scheduler`) in `dir`.
    pub fn record(self, dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}-{}.bpk", self.suffix()))
    }

    /// The file of the manifest in `dir`.
    pub fn manifest(self, dir: &Path) -> PathBuf {
        dir.join(format!("manifest-{}.json", self.suffix()))
    }

    /// The file of the training metrics' [`EpochSums`] in `dir` (written for `mid` only).
    pub fn sums(self, dir: &Path) -> PathBuf {
        dir.join(format!("train-metrics-{}.json", self.suffix()))
    }

    /// The generation a manifest's file name names, if it is one.
    fn of_manifest(file_name: &str) -> Option<Self> {
        let suffix = file_name.strip_prefix("manifest-")?.strip_suffix(".json")?;
        match suffix {
            "mid" => Some(Generation::Mid),
            digits => Some(Generation::Epoch(digits.parse().ok()?)),
        }
    }
}

/// A checkpoint's manifest: its position and the SHA-256 of its records, by file name.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    position: Position,
    sha256: BTreeMap<String, String>,
}

/// Writes `manifest` for `generation` in `dir`, atomically and durably.
fn write_manifest(dir: &Path, generation: Generation, manifest: &Manifest) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(manifest).expect("a manifest serializes");
    write_atomic(&generation.manifest(dir), json.as_bytes())
}

/// The checksums of the epochs whose records are being written, shared by the three
/// checkpointers of a run.
#[derive(Debug, Default)]
struct Pending {
    sums: BTreeMap<usize, BTreeMap<String, String>>,
}

/// A [`Checkpointer`] of one record (`model`, `optim` or `scheduler`) writing
/// `DIR/NAME-EPOCH.bpk` atomically and durably; the last of the three of an epoch writes its
/// manifest. Made by [`checkpointers`].
#[derive(Clone, Debug)]
pub struct DurableCheckpointer {
    dir: PathBuf,
    name: &'static str,
    pending: Arc<Mutex<Pending>>,
    restore_from: Option<Generation>,
}

/// The three checkpointers of a run in `dir` (created if missing), in the order of [`RECORDS`].
/// With `restore_from`, burn-train's restore of any epoch reads that generation instead (the
/// `mid` checkpoint a run resumes from).
///
/// # Errors
/// A folder that cannot be created.
pub fn checkpointers(
    dir: &Path,
    restore_from: Option<Generation>,
) -> Result<[DurableCheckpointer; 3], Error> {
    mnist_run::files::create_dir(dir)?;
    let pending = Arc::new(Mutex::new(Pending::default()));
    Ok(RECORDS.map(|name| DurableCheckpointer {
        dir: dir.to_path_buf(),
        name,
        pending: pending.clone(),
        restore_from,
    }))
}

fn io_error(error: Error) -> CheckpointerError {
    CheckpointerError::IOError(std::io::Error::other(error.to_string()))
}

impl DurableCheckpointer {
    fn save_bytes(&self, epoch: usize, bytes: &[u8]) -> Result<(), Error> {
        let generation = Generation::Epoch(epoch);
        {
            let mut pending = self.pending.lock().expect("the checksums");
            if let std::collections::btree_map::Entry::Vacant(entry) = pending.sums.entry(epoch) {
                // The first record of this epoch in this process: a manifest of an older write
                // of the epoch must not name a mix of its records and these.
                remove_file(&generation.manifest(&self.dir))?;
                entry.insert(BTreeMap::new());
            }
        }
        let path = generation.record(&self.dir, self.name);
        write_atomic(&path, bytes)?;
        let mut pending = self.pending.lock().expect("the checksums");
        let sums = pending.sums.get_mut(&epoch).expect("inserted above");
        sums.insert(file_name(&path), sha256_bytes(bytes));
        if sums.len() < RECORDS.len() {
            return Ok(());
        }
        let sha256 = pending.sums.remove(&epoch).expect("present");
        let position = Position {
            epochs: epoch,
            steps_in_epoch: 0,
        };
        write_manifest(&self.dir, generation, &Manifest { position, sha256 })?;
        // A checkpoint inside an earlier epoch is now older than this one.
        if let Ok((mid, _)) = verify(&self.dir, Generation::Mid)
            && mid.epochs < epoch
        {
            remove_generation(&self.dir, Generation::Mid)?;
        }
        Ok(())
    }
}

/// The file name of `path`.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl<R: Checkpoint> Checkpointer<R> for DurableCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        self.save_bytes(epoch, &bytes).map_err(io_error)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let generation = Generation::Epoch(epoch);
        remove_file(&generation.manifest(&self.dir)).map_err(io_error)?;
        remove_file(&generation.record(&self.dir, self.name)).map_err(io_error)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let generation = self.restore_from.unwrap_or(Generation::Epoch(epoch));
        let path = generation.record(&self.dir, self.name);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// Removes a generation's manifest, then its records.
fn remove_generation(dir: &Path, generation: Generation) -> Result<(), Error> {
    remove_file(&generation.manifest(dir))?;
    for name in RECORDS {
        remove_file(&generation.record(dir, name))?;
    }
    remove_file(&generation.sums(dir))
}

/// Saves the checkpoint inside an epoch, at `position`: the three records' bytes in the order of
/// [`RECORDS`] and the training metrics' `sums`, then their manifest. The previous `mid`
/// checkpoint's manifest is removed first.
///
/// # Errors
/// A file that cannot be written.
pub fn save_mid(
    dir: &Path,
    position: Position,
    records: [&[u8]; 3],
    sums: &EpochSums,
) -> Result<(), Error> {
    let generation = Generation::Mid;
    remove_file(&generation.manifest(dir))?;
    let sums = serde_json::to_string_pretty(sums).expect("sums serialize");
    let files = RECORDS
        .iter()
        .map(|name| generation.record(dir, name))
        .zip(records)
        .chain([(generation.sums(dir), sums.as_bytes())]);
    let mut sha256 = BTreeMap::new();
    for (path, bytes) in files {
        write_atomic(&path, bytes)?;
        sha256.insert(file_name(&path), sha256_bytes(bytes));
    }
    write_manifest(dir, generation, &Manifest { position, sha256 })
}

/// What [`verify`] finds of a checkpoint: its position and training sums, or why it is refused.
type Verified = Result<(Position, EpochSums), Error>;

/// Checks a generation's records against its manifest; its position, and the training metrics'
/// sums if it names them (a `mid` checkpoint; empty for one written before they were kept), if
/// they match.
fn verify(dir: &Path, generation: Generation) -> Verified {
    let path = generation.manifest(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("malformed: {e}")))?;
    let damaged = |file: &Path| {
        Error::file(
            file,
            "damaged: its SHA-256 differs from the checkpoint's manifest",
        )
    };
    for name in RECORDS {
        let record = generation.record(dir, name);
        let expected = manifest
            .sha256
            .get(&file_name(&record))
            .ok_or_else(|| Error::file(&path, format!("does not name {}", file_name(&record))))?;
        if !record.is_file() {
            return Err(Error::file(&record, "missing: the manifest names it"));
        }
        if sha256(&record)? != *expected {
            return Err(damaged(&record));
        }
    }
    let file = generation.sums(dir);
    let Some(expected) = manifest.sha256.get(&file_name(&file)) else {
        return Ok((manifest.position, EpochSums::new()));
    };
    let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::file(&file, "missing: the manifest names it"),
        _ => Error::file(&file, format!("cannot read: {e}")),
    })?;
    if sha256_bytes(&bytes) != *expected {
        return Err(damaged(&file));
    }
    let sums = serde_json::from_slice(&bytes)
        .map_err(|e| Error::file(&file, format!("malformed: {e}")))?;
    Ok((manifest.position, sums))
}

/// The checkpoint a run resumes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Its name.
    pub generation: Generation,
    /// The training metrics' sums of the epoch it stops inside (empty at an epoch's end).
    pub sums: EpochSums,
    /// Where it stands.
    pub position: Position,
    /// The newer checkpoints passed over, each as the one-line error that refused it.
    pub passed_over: Vec<String>,
}

/// The newest complete checkpoint in `dir`, if any.
///
/// Checkpoints with a manifest are tried newest first; one whose records are missing or do not
/// match their checksums is passed over (and named in [`Found::passed_over`]). A run folder made
/// before manifests (none in `dir`) resumes from the newest epoch that has its three records.
///
/// # Errors
/// A folder that exists but cannot be read; manifests of which none verifies (the newest one's
/// error).
pub fn latest(dir: &Path) -> Result<Option<Found>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(dir, format!("cannot read: {e}"))),
    };
    let mut generations = Vec::new();
    let mut legacy = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(dir, format!("cannot read: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        generations.extend(Generation::of_manifest(&name));
        let epoch = name
            .strip_prefix("model-")
            .and_then(|n| n.strip_suffix(".bpk"))
            .and_then(|n| n.parse::<usize>().ok());
        legacy.extend(epoch);
    }
    if generations.is_empty() {
        legacy.sort_unstable();
        let complete = legacy.into_iter().rev().find(|&epoch| {
            RECORDS
                .iter()
                .all(|r| Generation::Epoch(epoch).record(dir, r).is_file())
        });
        return Ok(complete.map(|epochs| Found {
            generation: Generation::Epoch(epochs),
            sums: EpochSums::new(),
            position: Position {
                epochs,
                steps_in_epoch: 0,
            },
            passed_over: Vec::new(),
        }));
    }
    // Newest first: by position, an epoch's end before a `mid` at the same position (it also
    // holds the epoch's validation).
    let mut checked: Vec<(Generation, Verified)> = generations
        .into_iter()
        .map(|g| (g, verify(dir, g)))
        .collect();
    let order = |g: &Generation, p: &Verified| {
        let position = match (p, g) {
            (Ok((p, _)), _) => *p,
            (Err(_), Generation::Epoch(epochs)) => Position {
                epochs: *epochs,
                steps_in_epoch: 0,
            },
            (Err(_), Generation::Mid) => Position::default(),
        };
        (position, matches!(g, Generation::Epoch(_)))
    };
    checked.sort_by_key(|(g, p)| std::cmp::Reverse(order(g, p)));
    let mut passed_over = Vec::new();
    for (generation, result) in checked {
        match result {
            Ok((position, sums)) => {
                return Ok(Some(Found {
                    generation,
                    sums,
                    position,
                    passed_over,
                }));
            }
            Err(error) => passed_over.push(error.to_string()),
        }
    }
    Err(Error::file(
        dir,
        format!(
            "no complete checkpoint: {}",
            passed_over.first().expect("one at least")
        ),
    ))
}

/// Removes the temporary files (`*.tmp`) that writes interrupted by a crash left in `dir`.
///
/// # Errors
/// A folder that exists but cannot be read, or a file that cannot be removed.
pub fn remove_leftovers(dir: &Path) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::file(dir, format!("cannot read: {e}"))),
    };
    for entry in entries {
        let path = entry
            .map_err(|e| Error::file(dir, format!("cannot read: {e}")))?
            .path();
        if path.extension().is_some_and(|e| e == "tmp") {
            remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dvae-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Saves the three records of `epoch` through the checkpointers, with `tag` as their bytes.
    fn save_epoch(checkpointers: &[DurableCheckpointer; 3], epoch: usize, tag: u8) {
        for c in checkpointers {
            c.save_bytes(epoch, &[tag; 16]).unwrap();
        }
    }

    #[test]
    fn the_newest_verified_checkpoint_is_taken_and_damage_is_passed_over() {
        let dir = scratch("latest");
        assert_eq!(latest(&dir).unwrap(), None);
        let checkpointers = checkpointers(&dir, None).unwrap();
        save_epoch(&checkpointers, 1, 1);
        save_epoch(&checkpointers, 2, 2);
        let found = latest(&dir).unwrap().unwrap();
        assert_eq!(found.generation, Generation::Epoch(2));
        // Bytes of 0xFF over a record: the checksum refuses epoch 2, epoch 1 is taken.
        let model = Generation::Epoch(2).record(&dir, "model");
        std::fs::write(&model, [0xFF; 16]).unwrap();
        let found = latest(&dir).unwrap().unwrap();
        assert_eq!(found.generation, Generation::Epoch(1));
        assert_eq!(
            found.passed_over,
            [format!(
                "{}: damaged: its SHA-256 differs from the checkpoint's manifest",
                model.display()
            )]
        );
        // A checkpoint inside epoch 2 is newer than epoch 1's end; epoch 3's end is newer still
        // and removes it.
        let position = Position {
            epochs: 1,
            steps_in_epoch: 4,
        };
        let sums = EpochSums::from([("-ELBO".to_string(), (0.1 + 0.2, 7))]);
        save_mid(&dir, position, [&[7u8; 3], &[8u8; 3], &[9u8; 3]], &sums).unwrap();
        let found = latest(&dir).unwrap().unwrap();
        assert_eq!(
            (found.generation, found.position),
            (Generation::Mid, position)
        );
        // The sums come back bit for bit.
        assert_eq!(found.sums, sums);
        // Damaged sums refuse the checkpoint like a damaged record: epoch 1 is taken.
        let file = Generation::Mid.sums(&dir);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace('7', "8")).unwrap();
        let found = latest(&dir).unwrap().unwrap();
        assert_eq!(found.generation, Generation::Epoch(1));
        let refused = format!(
            "{}: damaged: its SHA-256 differs from the checkpoint's manifest",
            file.display()
        );
        assert_eq!(
            verify(&dir, Generation::Mid).unwrap_err().to_string(),
            refused
        );
        save_mid(&dir, position, [&[7u8; 3], &[8u8; 3], &[9u8; 3]], &sums).unwrap();
        save_epoch(&checkpointers, 3, 3);
        assert_eq!(
            latest(&dir).unwrap().unwrap().generation,
            Generation::Epoch(3)
        );
        assert!(!Generation::Mid.manifest(&dir).exists());
        assert!(!Generation::Mid.record(&dir, "optim").exists());
        assert!(!Generation::Mid.sums(&dir).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_cut_short_never_leaves_a_mixed_checkpoint() {
        // Epoch 2 written by one process; a resumed process rewrites it and is killed after
        // its optimizer record: its manifest is gone, so epoch 1 is taken, not a mix.
        let dir = scratch("mixed");
        let first = checkpointers(&dir, None).unwrap();
        save_epoch(&first, 1, 1);
        save_epoch(&first, 2, 2);
        let second = checkpointers(&dir, None).unwrap();
        second[1].save_bytes(2, &[22; 16]).unwrap();
        let found = latest(&dir).unwrap().unwrap();
        assert_eq!(found.generation, Generation::Epoch(1));
        assert!(found.passed_over.is_empty(), "{:?}", found.passed_over);
        // Every record damaged: one line naming the newest damage.
        std::fs::write(Generation::Epoch(1).record(&dir, "optim"), b"x").unwrap();
        let error = latest(&dir).unwrap_err().to_string();
        assert!(error.contains("no complete checkpoint: "), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_from_before_manifests_resumes_from_its_newest_complete_epoch() {
        let dir = scratch("legacy");
        std::fs::create_dir_all(&dir).unwrap();
        for name in RECORDS {
            std::fs::write(Generation::Epoch(3).record(&dir, name), b"x").unwrap();
        }
        for name in ["model", "optim"] {
            std::fs::write(Generation::Epoch(4).record(&dir, name), b"x").unwrap();
        }
        std::fs::write(dir.join("model-4.bpk.tmp"), b"x").unwrap();
        assert_eq!(
            latest(&dir).unwrap().unwrap().generation,
            Generation::Epoch(3)
        );
        remove_leftovers(&dir).unwrap();
        assert!(!dir.join("model-4.bpk.tmp").exists());
        assert!(dir.join("model-4.bpk").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
