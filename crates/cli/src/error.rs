//! Errors of the command line: every one becomes exit code 2 and one message
//! on stderr (with `--json`: one JSON object on stdout), never a panic.

use std::path::{Path, PathBuf};

/// A failure the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: arguments, programs, values.
    #[error("{0}")]
    Usage(String),
    /// An error in a `grad` program at a place in its text: the message
    /// names it, and `--json` gives it as numbers too.
    #[error("{message}")]
    Program {
        /// What went wrong, with the place and the program's line.
        message: String,
        /// The line, from 1.
        line: u32,
        /// The column, from 1 (in characters).
        column: u32,
        /// The file the program was read from (`grad @FILE`), if any.
        path: Option<PathBuf>,
    },
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

    /// This error with a second failure's message appended: when two
    /// things went wrong, both are reported. The first error's kind and
    /// path are kept (a usage error stays without a path, whatever the
    /// second names).
    pub fn also(self, more: impl std::fmt::Display) -> Self {
        match self {
            CliError::Usage(m) => CliError::Usage(format!("{m}; and {more}")),
            CliError::Program {
                message,
                line,
                column,
                path,
            } => CliError::Program {
                message: format!("{message}; and {more}"),
                line,
                column,
                path,
            },
            CliError::File { path, message } => CliError::File {
                path,
                message: format!("{message}; and {more}"),
            },
        }
    }

    /// An error about a file.
    pub fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        CliError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// A dataset that could not be read: the file it names stays the path.
    pub fn data(e: splat::data::DataError) -> Self {
        match e {
            splat::data::DataError::Io { path, message } => CliError::File {
                path,
                message: format!("cannot read: {message}"),
            },
            splat::data::DataError::Invalid {
                path,
                field,
                message,
            } => CliError::File {
                path,
                message: format!("{field}: {message}"),
            },
        }
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CliError::Usage(_) => None,
            CliError::Program { path, .. } => path.as_deref(),
            CliError::File { path, .. } => Some(path),
        }
    }

    /// The error as the one JSON object `--json` mode prints:
    /// `{"error": MESSAGE, "path": PATH or null}`, and for an error in a
    /// `grad` program that has a place, `"line"` and `"column"` (numbers
    /// from 1, as MESSAGE shows them) as well.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::json!({
            "error": self.to_string(),
            "path": self.path().map(|p| p.display().to_string()),
        });
        if let CliError::Program { line, column, .. } = self {
            v["line"] = (*line).into();
            v["column"] = (*column).into();
        }
        // the warnings printed before the error, when there were any
        let warnings = crate::output::warnings();
        if !warnings.is_empty() {
            v["warnings"] = warnings.into();
        }
        v.to_string()
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, CliError>;
