//! Errors of the command line: every one becomes exit code 2 and one message
//! on stderr, never a panic.

use std::path::{Path, PathBuf};

/// A failure the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: arguments, programs, values.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl CliError {
    /// A usage error with a message.
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    /// An error about a file.
    pub fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        CliError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, CliError>;
