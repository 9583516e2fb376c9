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

/// Removes the `.png` files in `dir` whose names are not in `keep`: the
/// renders an earlier run into the same output folder left there (of
/// views this run may not have), so that the folder holds this run's
/// renders only. Other files and folders are left alone.
pub fn remove_stale_pngs(dir: &Path, keep: &[String]) -> CliResult {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::file(dir, format!("cannot list the folder: {e}")))?;
    for e in entries.flatten() {
        let path = e.path();
        let png = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("png"));
        let kept = e
            .file_name()
            .to_str()
            .is_some_and(|n| keep.iter().any(|k| k == n));
        if png && !kept && path.is_file() {
            std::fs::remove_file(&path).map_err(|err| {
                CliError::file(&path, format!("cannot remove an earlier render: {err}"))
            })?;
        }
    }
    Ok(())
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
