//! What a run's training steps and its trainer share, beyond burn-train's loop: the stop asked
//! by a signal, burn-train's interrupter, and how training ended early.
//!
//! After each optimizer step, a stop asked by a signal saves a checkpoint of that step (the model,
//! Adam and the scheduler, [`save_mid`]) and ends the loop; the metric of the negative ELBO ends
//! it when the loss is not finite, before burn-train checkpoints weights that are NaN.

use std::path::PathBuf;
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

use crate::checkpoint::{Position, save_mid};

/// How a run's training ended early, as the [`Watch`] saw it.
#[derive(Debug)]
pub enum Stop {
    /// A signal asked it to stop: the checkpoint of the step reached was saved (or its error).
    Signal {
        /// The signal's number.
        signal: usize,
        /// Where the checkpoint stands.
        position: Position,
        /// Optimizer steps done.
        step: u64,
        /// The checkpoint's write, if it failed.
        error: Option<Error>,
    },
    /// The loss became NaN or infinite.
    Diverged(Error),
    /// A file of the run could not be written (a full disk).
    Failed(Error),
}

/// What a run's training steps and the trainer share: the stop asked by a signal, burn-train's
/// interrupter, where checkpoints go, and how training ended early if it did. See the
/// [module](self) documentation.
pub struct Watch {
    interrupter: Interrupter,
    stop: StopFlag,
    checkpoints: PathBuf,
    learning_rate: f64,
    steps_per_epoch: u64,
    step: AtomicU64,
    ended: Mutex<Option<Stop>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("stop", &self.stop)
            .field("checkpoints", &self.checkpoints)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// The watch of a run whose epochs have `steps_per_epoch` optimizer steps, checkpointing
    /// into `checkpoints`, at the constant `learning_rate`.
    pub fn new(
        interrupter: Interrupter,
        stop: StopFlag,
        checkpoints: PathBuf,
        learning_rate: f64,
        steps_per_epoch: u64,
    ) -> Self {
        Self {
            interrupter,
            stop,
            checkpoints,
            learning_rate,
            steps_per_epoch: steps_per_epoch.max(1),
            step: AtomicU64::new(0),
            ended: Mutex::new(None),
        }
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
    /// saves the checkpoint of this step, the bytes of the model's and the optimizer's records
    /// that `records` gives, and ends burn-train's loop.
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
        let error = match (records(), scheduler) {
            (Ok((model, optim)), Ok(scheduler)) => {
                save_mid(&self.checkpoints, position, [&model, &optim, &scheduler]).err()
            }
            (Err(e), _) | (_, Err(e)) => Some(Error::file(
                &self.checkpoints,
                format!("cannot encode the checkpoint: {e}"),
            )),
        };
        *ended = Some(Stop::Signal {
            signal,
            position,
            step,
            error,
        });
        self.interrupter.stop(Some("stopped by a signal"));
    }
}
