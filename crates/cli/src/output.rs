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

/// Writes several files atomically and together (see
/// [`splat::atomic::write_atomic_all`]).
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> CliResult {
    splat::atomic::write_atomic_all(files).map_err(|e| {
        let dir = files
            .first()
            .and_then(|f| f.0.parent())
            .unwrap_or(Path::new("."));
        CliError::file(dir, format!("cannot write the results: {e}"))
    })
}

/// The warnings this process has printed ([`warn`]), in order.
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Prints `warning: MESSAGE` to stderr and keeps the message, so that a
/// command's `--json` report carries it too ([`warnings`]): a program
/// reading only stdout learns of it.
pub fn warn(message: impl std::fmt::Display) {
    let message = message.to_string();
    eprintln!("warning: {message}");
    WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(message);
}

/// The warnings printed so far ([`warn`]), for a `--json` report's
/// `warnings` array.
pub fn warnings() -> Vec<String> {
    WARNINGS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `report` (a JSON object) with the key `warnings`: the warnings printed
/// so far, an empty array when there were none.
pub fn with_warnings(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(o) = report.as_object_mut() {
        o.insert("warnings".into(), warnings().into());
    }
    report
}

/// [`with_warnings`] of a report serialised from a struct, as JSON text
/// that keeps its fields' order (a `serde_json::Value` would sort them).
pub fn json_with_warnings<T: serde::Serialize>(report: &T) -> String {
    #[derive(serde::Serialize)]
    struct WithWarnings<'a, T> {
        #[serde(flatten)]
        report: &'a T,
        warnings: Vec<String>,
    }
    serde_json::to_string(&WithWarnings {
        report,
        warnings: warnings(),
    })
    .expect("reports serialise")
}

/// A background colour as `--background` takes it: `black`, `white` or
/// `R,G,B`.
pub fn colour_name(c: [f64; 3]) -> String {
    match c {
        [0.0, 0.0, 0.0] => "black".into(),
        [1.0, 1.0, 1.0] => "white".into(),
        [r, g, b] => format!("{r},{g},{b}"),
    }
}

/// Writes to `path` atomically through a writer callback.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> CliResult {
    splat::atomic::write_atomic_with(path, fill)
        .map_err(|e| CliError::file(path, format!("cannot write: {e}")))
}

/// Removes from `renders` the render files that an earlier run listed in
/// its report (`train`'s `metrics.json`, `views[].render`; `render
/// --data`'s `scores.json`, `per_view[].render`; `render --orbit`'s
/// `orbit.json`, `files[]`: the file `report`, the array `list`, see
/// `earlier_renders`) and this run did not write again (`keep`): renders of
/// views this run may not have, which would pass for its own. Nothing
/// else is touched (a user's own files in the folder stay), and a file
/// that cannot be removed is a warning on stderr, not an error: the run's
/// results are already written.
pub fn remove_earlier_renders(report: &Path, list: &str, renders: &Path, keep: &[String]) {
    for name in earlier_renders(report, list) {
        let png = Path::new(&name).extension().is_some_and(|x| x == "png");
        if !png || keep.iter().any(|k| std::ffi::OsStr::new(k) == name) {
            continue;
        }
        let path = renders.join(&name);
        if path.is_file() {
            if let Err(e) = std::fs::remove_file(&path) {
                crate::output::warn(format!(
                    "{}: cannot remove an earlier run's render: {e}",
                    path.display()
                ));
            }
        }
    }
}

/// The file names of the renders that `report` lists under the key
/// `list`: an array of entries, each a path or an object with a `render`
/// path (`render --data`'s `per_view`, `render --orbit`'s `files`), or one
/// path (`render --orbit`'s `gif`); none when the report is missing or not
/// JSON.
fn earlier_renders(report: &Path, list: &str) -> Vec<std::ffi::OsString> {
    let Some(earlier) = std::fs::read(report)
        .ok()
        .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
    else {
        return Vec::new();
    };
    let listed = &earlier[list];
    let views = match listed.as_array() {
        Some(views) => views.as_slice(),
        None => std::slice::from_ref(listed),
    };
    views
        .iter()
        .filter_map(|v| v["render"].as_str().or(v.as_str()))
        .filter_map(|r| Path::new(r).file_name())
        .map(|n| n.to_os_string())
        .collect()
}

/// Refuses `dir` (chosen by the option `flag`) as the folder of renders
/// named `names` of the dataset `ds`, when it is a folder the dataset's
/// photos or masks were read from (`refuse_dataset_folder`) or a render
/// would replace a file that no earlier render there wrote
/// (`refuse_replacing`, the earlier renders being those the reports
/// `earlier` list).
pub fn refuse_render_folder(
    dir: &Path,
    ds: &splat::data::Dataset,
    names: &[String],
    earlier: &[(&Path, &str)],
    flag: &str,
) -> CliResult {
    refuse_dataset_folder(dir, &ds.read_from, flag)?;
    refuse_replacing(dir, names, earlier, flag)
}

/// Refuses `dir` (given as `flag`) when it is one of the folders a
/// dataset's photos or masks were read from (`read_from`): renders are
/// named after the photos, so they would replace them, and a later run's
/// clean-up of earlier renders would then delete them. A folder that does
/// not exist yet holds nothing to replace.
pub fn refuse_dataset_folder(
    dir: &Path,
    read_from: &[std::path::PathBuf],
    flag: &str,
) -> CliResult {
    let Ok(target) = std::fs::canonicalize(dir) else {
        return Ok(());
    };
    match read_from
        .iter()
        .find(|f| std::fs::canonicalize(f).is_ok_and(|f| f == target))
    {
        Some(f) => Err(CliError::file(
            dir,
            format!(
                "{flag}: that folder holds the dataset's photos or masks ({} is where they \
                 were read from), which renders named after the photos would replace; \
                 write the renders to another folder",
                f.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses to write renders named `names` into `dir` where one would
/// replace a file that no earlier render there wrote: a photo of the
/// dataset (read from a folder beside the ones loaded, such as `images/`
/// when `images_2/` was, or another split's, or through a link), or any
/// other file of the user's. The earlier renders are those the reports
/// `earlier` list (a report file and its list of views, each with a
/// `render` path, as [`remove_earlier_renders`] reads them). `flag` names
/// the option that chose `dir`.
pub fn refuse_replacing(
    dir: &Path,
    names: &[String],
    earlier: &[(&Path, &str)],
    flag: &str,
) -> CliResult {
    let ours: std::collections::HashSet<_> = earlier
        .iter()
        .flat_map(|(report, list)| earlier_renders(report, list))
        .collect();
    for name in names {
        let path = dir.join(name);
        // (a link counts, even one to nothing)
        if path.symlink_metadata().is_ok() && !ours.contains(std::ffi::OsStr::new(name)) {
            return Err(CliError::file(
                &path,
                format!(
                    "{flag}: a render would replace this file, which no earlier render there \
                     lists as its own (metrics.json, scores.json, orbit.json, path.json; a \
                     photo of the dataset, or a frame of a version before those lists?); write \
                     the renders to another folder, or remove the file"
                ),
            ));
        }
    }
    Ok(())
}

/// `n` things, in words: `1 view`, `2 views`.
pub fn count(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Whether two paths name the same existing file or folder (resolved);
/// false when either cannot be resolved.
pub fn same_file(x: &Path, y: &Path) -> bool {
    match (x.canonicalize(), y.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Creates `dir` (and parents) or says why it cannot.
pub fn ensure_dir(dir: &Path) -> CliResult {
    std::fs::create_dir_all(dir).map_err(|e| {
        // the usual cause, said plainly: the folder, or one above it, is a
        // file (the OS says only "File exists" or "Not a directory")
        // (a device such as /dev/null is no file, and no folder either)
        let file = dir.ancestors().find(|p| p.exists() && !p.is_dir());
        match file {
            Some(f) if f == dir && f.is_file() => CliError::file(dir, "is a file, not a folder"),
            Some(f) if f == dir => CliError::file(dir, "exists and is not a folder"),
            Some(f) => CliError::file(
                dir,
                format!(
                    "cannot create this folder: {} is {}",
                    f.display(),
                    if f.is_file() {
                        "a file"
                    } else {
                        "not a folder"
                    }
                ),
            ),
            None => CliError::file(dir, format!("cannot create output directory: {e}")),
        }
    })
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

/// Finishes a bar from [`progress_bar`], leaving its last state on its
/// own line: a terminal's cursor stays at the end of the bar, so what is
/// printed next would share its line.
pub fn finish_bar(bar: &indicatif::ProgressBar) {
    bar.finish();
    if !bar.is_hidden() {
        eprintln!();
    }
}

/// Prints the loader's notes on a dataset ([`splat::data::Dataset::notes`])
/// to stderr, one `note:` line each.
pub fn print_notes(ds: &splat::data::Dataset) {
    for n in &ds.notes {
        eprintln!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output folder that is a file, or lies below one, is said so.
    #[test]
    fn an_output_folder_in_a_file_is_named() {
        let d = std::env::temp_dir().join(format!("chainrule-ensure-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("a-file");
        std::fs::write(&f, b"x").unwrap();
        let e = ensure_dir(&f).unwrap_err().to_string();
        assert!(e.contains("is a file"), "{e}");
        let e = ensure_dir(&f.join("sub/dir")).unwrap_err().to_string();
        assert!(e.contains("a-file is a file"), "{e}");
        ensure_dir(&d.join("new/dir")).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
