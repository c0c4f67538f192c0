//! What a run's training steps and its trainer share, beyond burn-train's loop: the stop asked
//! by a signal, burn-train's interrupter, and how training ended early.
//!
//! After each optimizer step, a stop asked by a signal takes the records of that step (the model,
//! Adam and the scheduler) and ends the loop; the trainer saves them once burn-train's loop has
//! ended ([`save_mid`](crate::checkpoint::save_mid)), with the training metrics' running sums of
//! the epoch, which the metrics record here as they see each step ([`Watch::record_sums`]): burn-train
//! hands a step to its metrics after its optimizer step, so only then do they hold it. The metric
//! of the negative ELBO ends the loop when the loss is not finite, before burn-train checkpoints
//! weights that are NaN.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::optim::lr_scheduler::LrScheduler;
use burn::store::RecordError;
use burn::tensor::Bytes;
use burn::train::Interrupter;
use burn::train::checkpoint::Checkpoint;
use mnist_run::Error;
use mnist_run::checks::finite_loss;
use mnist_run::signals::StopFlag;

use crate::checkpoint::{EpochSums, Position};

/// How a run's training ended early, as the [`Watch`] saw it.
#[derive(Debug)]
pub enum Stop {
    /// A signal asked it to stop: the records of the step reached, to be saved.
    Signal {
        /// The signal's number.
        signal: usize,
        /// Where the checkpoint stands.
        position: Position,
        /// Optimizer steps done.
        step: u64,
        /// The bytes of the model's, the optimizer's and the scheduler's records at that step,
        /// or the error that encoding them gave.
        records: Result<[Bytes; 3], RecordError>,
    },
    /// The loss became NaN or infinite.
    Diverged(Error),
    /// A file of the run could not be written (a full disk).
    Failed(Error),
}

/// What a run's training steps and the trainer share: the stop asked by a signal, burn-train's
/// interrupter, the training metrics' sums of the epoch in progress, and how training ended
/// early if it did. See the [module](self) documentation.
pub struct Watch {
    interrupter: Interrupter,
    stop: StopFlag,
    learning_rate: f64,
    steps_per_epoch: u64,
    step: AtomicU64,
    sums: Mutex<EpochSums>,
    ended: Mutex<Option<Stop>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("stop", &self.stop)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// The watch of a run whose epochs have `steps_per_epoch` optimizer steps, at the constant
    /// `learning_rate`.
    pub fn new(
        interrupter: Interrupter,
        stop: StopFlag,
        learning_rate: f64,
        steps_per_epoch: u64,
    ) -> Self {
        Self {
            interrupter,
            stop,
            learning_rate,
            steps_per_epoch: steps_per_epoch.max(1),
            step: AtomicU64::new(0),
            sums: Mutex::new(EpochSums::new()),
            ended: Mutex::new(None),
        }
    }

    /// Records the running sums of the training metric `name` in the epoch in progress, after
    /// the step it has just seen (a training metric calls it at each step).
    pub fn record_sums(&self, name: &str, sum: f64, count: usize) {
        let mut sums = self.sums.lock().expect("the watch");
        sums.insert(name.to_string(), (sum, count));
    }

    /// The training metrics' running sums of the epoch in progress, as of the last step they saw.
    pub fn sums(&self) -> EpochSums {
        self.sums.lock().expect("the watch").clone()
    }

    /// How training ended early, if it did (taken: a second call answers `None`).
    pub fn take_stop(&self) -> Option<Stop> {
        self.ended.lock().expect("the watch").take()
    }

    /// Ends training on an error of the run's files (kept if training already ended otherwise).
    pub fn fail(&self, error: Error) {
        let mut ended = self.ended.lock().expect("the watch");
        if ended.is_none() {
            *ended = Some(Stop::Failed(error));
        }
        self.interrupter
            .stop(Some("a file of the run could not be written"));
    }

    /// Ends training on a loss that is not finite (seen by the optimizer step reached).
    pub fn check_loss(&self, loss: f64) {
        if let Err(error) = finite_loss(loss, self.step.load(Ordering::Relaxed)) {
            let mut ended = self.ended.lock().expect("the watch");
            if ended.is_none() {
                *ended = Some(Stop::Diverged(error));
            }
            self.interrupter.stop(Some("the loss is not finite"));
        }
    }

    /// After the optimizer step that brought the run to `step`: when a signal asked to stop,
    /// keeps the records of this step (the bytes of the model's and the optimizer's that
    /// `records` gives, and the scheduler's) for the trainer to save, and ends burn-train's loop.
    pub fn after_step(
        &self,
        step: u64,
        records: impl FnOnce() -> Result<(Bytes, Bytes), RecordError>,
    ) {
        self.step.store(step, Ordering::Relaxed);
        let Some(signal) = self.stop.requested() else {
            return;
        };
        let mut ended = self.ended.lock().expect("the watch");
        if ended.is_some() {
            return; // diverged (nothing worth saving), or saved already
        }
        // After the last step of an epoch, its validation and checkpoint are still to come: the
        // position is "all the epoch's steps done", and the resumed run validates it.
        let epochs = step.saturating_sub(1) / self.steps_per_epoch;
        let position = Position {
            epochs: epochs as usize,
            steps_in_epoch: step - epochs * self.steps_per_epoch,
        };
        let scheduler = LrScheduler::to_record(&self.learning_rate).checkpoint_into_bytes();
        let records = records().and_then(|(model, optim)| Ok([model, optim, scheduler?]));
        *ended = Some(Stop::Signal {
            signal,
            position,
            step,
            records,
        });
        self.interrupter.stop(Some("stopped by a signal"));
    }
}
