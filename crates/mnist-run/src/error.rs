//! The errors of the VAE's trainers: one line each, naming the file, or the setting by its key
//! (`learning_rate`, `model.codes`, `out_dir`), which a program renames to its flag with
//! [`settings::named_by_flags`](crate::settings::named_by_flags).

use std::path::{Path, PathBuf};

/// What went wrong with a file or an argument. Displayed on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data, checkpoint or output file that is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Training stopped on a signal (SIGINT, SIGTERM) after saving a checkpoint that holds its
    /// position inside the epoch.
    #[error(
        "interrupted by {}: saved checkpoint {checkpoint} ({step} steps); resume the run to \
         continue",
        signal_name(*signal)
    )]
    Interrupted {
        /// The signal's number.
        signal: usize,
        /// The checkpoint generation written.
        checkpoint: String,
        /// Optimizer steps done.
        step: u64,
    },
    /// A setting or run option whose value makes no sense, or that the run's state refuses.
    #[error("{setting}: {message}")]
    Invalid {
        /// The setting's key: its path in `config.json` (`batch_size`, `model.schedule.tau_min`),
        /// or a run option (`out_dir`, `resume`); a program's flag (`--batch-size`) once
        /// [`named_by_flags`](crate::settings::named_by_flags).
        setting: String,
        /// The rule and the value.
        message: String,
    },
}

/// `SIGINT` for 2, `SIGTERM` for 15, else `signal N`.
fn signal_name(signal: usize) -> String {
    match signal {
        2 => "SIGINT".to_string(),
        15 => "SIGTERM".to_string(),
        n => format!("signal {n}"),
    }
}

impl Error {
    /// The exit code a program ends with on this error: `128 + signal` for an interruption (130
    /// for SIGINT, 143 for SIGTERM), as a shell reports a process ended by the signal; else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted { signal, .. } => (128 + signal).min(255) as u8,
            _ => 1,
        }
    }

    /// An error about the file `path` (the [`Error::File`] variant).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An error about the setting `setting` (the [`Error::Invalid`] variant).
    pub fn invalid(setting: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_exits_as_the_shell_reports_its_signal() {
        let interrupted = |signal| Error::Interrupted {
            signal,
            checkpoint: "step-0000000040".to_string(),
            step: 40,
        };
        assert_eq!(interrupted(2).exit_code(), 130);
        assert_eq!(interrupted(15).exit_code(), 143);
        assert_eq!(Error::invalid("learning_rate", "bad").exit_code(), 1);
        assert_eq!(
            interrupted(15).to_string(),
            "interrupted by SIGTERM: saved checkpoint step-0000000040 (40 steps); resume the run \
             to continue"
        );
    }
}
