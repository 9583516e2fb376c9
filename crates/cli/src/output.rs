//! Writing outputs atomically: to a temporary file beside the target, then a
//! rename, so a crash never leaves a partial file under the final name.

use std::path::Path;

use crate::error::{CliError, CliResult};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync,
/// rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult {
    splat::atomic::write_atomic(path, bytes)
        .map_err(|e| CliError::file(path, format!("cannot write: {e}")))
}

/// Writes to `path` atomically through a writer callback.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> CliResult {
    splat::atomic::write_atomic_with(path, fill)
        .map_err(|e| CliError::file(path, format!("cannot write: {e}")))
}

/// Creates `dir` (and parents) or says why it cannot.
pub fn ensure_dir(dir: &Path) -> CliResult {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::file(dir, format!("cannot create output directory: {e}")))
}

/// The progress bar of long commands (`fit`, `train`): hidden with `--json`
/// so the only output is the JSON object.
pub fn progress_bar(total: u64, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed_precise} < {eta}]",
        )
        .expect("valid template"),
    );
    b
}
