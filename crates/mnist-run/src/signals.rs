//! SIGINT and SIGTERM as a flag that the trainers poll after each optimizer step: the first
//! signal asks the run to stop where it is, save a checkpoint of that step and end with exit code
//! `128 + signal`; a second one ends the process at once, with that code.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;

/// The number of the signal that asked the run to stop (2 for SIGINT, 15 for SIGTERM), 0 while
/// none has. Cheap to clone: clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicUsize>);

impl StopFlag {
    /// A flag no signal sets (tests set it by hand with [`request`](Self::request)).
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that SIGINT and SIGTERM set to their number. A second signal ends the process at
    /// once (exit code 128 + signal). On other systems than Unix, a flag nothing sets.
    ///
    /// # Errors
    /// The handlers cannot be installed (flag `signals`).
    pub fn on_signals() -> Result<Self, Error> {
        let stop = Self::new();
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            use signal_hook::flag;
            use std::sync::atomic::AtomicBool;
            let armed = Arc::new(AtomicBool::new(false));
            for signal in [SIGINT, SIGTERM] {
                let error = |e: std::io::Error| Error::invalid("signals", e.to_string());
                // The order matters: the shutdown is checked before the first signal arms it.
                flag::register_conditional_shutdown(signal, 128 + signal, armed.clone())
                    .map_err(error)?;
                flag::register_usize(signal, stop.0.clone(), signal as usize).map_err(error)?;
                flag::register(signal, armed.clone()).map_err(error)?;
            }
        }
        Ok(stop)
    }

    /// Asks the run to stop as `signal` would.
    pub fn request(&self, signal: usize) {
        self.0.store(signal, Ordering::SeqCst);
    }

    /// The signal that asked the run to stop, if one did.
    pub fn requested(&self) -> Option<usize> {
        let signal = self.0.load(Ordering::SeqCst);
        (signal != 0).then_some(signal)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag_to_its_number() {
        let stop = StopFlag::on_signals().unwrap();
        assert_eq!(stop.requested(), None);
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert_eq!(stop.requested(), Some(15));
    }
}
