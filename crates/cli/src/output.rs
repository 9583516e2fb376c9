//! Writing outputs atomically: to a temporary file beside the target, then a
//! rename, so a crash never leaves a partial file under the final name.

use std::io::Write;
use std::path::Path;

use crate::error::{CliError, CliResult};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync,
/// rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes to `path` atomically through a writer callback.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> CliResult {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::file(path, "not a file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::file(path, format!("cannot write: {e}")));
    }
    Ok(())
}

/// Creates `dir` (and parents) or says why it cannot.
pub fn ensure_dir(dir: &Path) -> CliResult {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::file(dir, format!("cannot create output directory: {e}")))
}
