//! The errors the VAE's programs report: one line each, naming the file or the flag.

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
    /// A flag or configuration value that makes no sense.
    #[error("{flag}: {message}")]
    Invalid {
        /// The flag, as the user typed it (`--batch-size`).
        flag: String,
        /// The rule and the value.
        message: String,
    },
}

impl Error {
    /// An error about the file `path` (the [`Error::File`] variant).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An error about the flag `flag` (the [`Error::Invalid`] variant).
    pub fn invalid(flag: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            flag: flag.to_string(),
            message: message.into(),
        }
    }
}
