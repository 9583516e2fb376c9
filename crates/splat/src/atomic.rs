//! Atomic file writes: a temporary file beside the target, flushed and
//! synced, then renamed over it, so a crash never leaves a partial file
//! under the final name. A target that is a link is written through (the
//! file it names is replaced, the link kept); one that is not a regular
//! file (a device such as `/dev/stdout`, a FIFO) is written directly, as
//! a stream, since renaming over it would replace the device itself.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes to `path` atomically through a callback that fills the file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match stage(path, fill)? {
        Some(s) => s.commit(),
        None => Ok(()),
    }
}

/// Writes several files atomically and together: each is written in full
/// to its temporary file first, and only then are they renamed over their
/// targets, one after the other, so that a process stopped while writing
/// leaves either the old set or the new one (up to the moment between
/// two renames), never a new file beside an old one it was written with.
/// On an error before the renames, no regular file is touched (a device
/// or FIFO among the targets is written as it is staged). A path given
/// twice is an error.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> std::io::Result<()> {
    for (k, (p, _)) in files.iter().enumerate() {
        if files[..k].iter().any(|(q, _)| q == p) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} given twice", p.display()),
            ));
        }
    }
    let mut staged = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        match stage(path, |f| f.write_all(bytes)) {
            Ok(Some(s)) => staged.push(s),
            Ok(None) => {}
            // (dropping the staged files removes their temporaries)
            Err(e) => return Err(e),
        }
    }
    staged.into_iter().try_for_each(Staged::commit)
}

/// A file written in full to its temporary name, waiting to be renamed
/// over its target; dropped uncommitted, the temporary file is removed.
struct Staged {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    done: bool,
}

impl Staged {
    fn commit(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `path`'s content written by `fill` to a temporary file beside it,
/// flushed and synced, for [`Staged::commit`] to rename; `None` when the
/// target is not a regular file (a device, a FIFO), which is then written
/// directly, as a stream.
fn stage(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<Option<Staged>> {
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() && !m.is_dir() {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            fill(&mut f)?;
            f.flush()?;
            return Ok(None);
        }
    }
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        // (a dangling link is replaced, as before)
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) => {
                resolved = target;
                resolved.as_path()
            }
            Err(_) => path,
        },
        _ => path,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?
        .to_string_lossy();
    remove_stale(dir);
    let staged = Staged {
        tmp: dir.join(format!(".{name}.tmp-{}", std::process::id())),
        path: path.to_path_buf(),
        done: false,
    };
    let mut f = std::fs::File::create(&staged.tmp)?;
    fill(&mut f)?;
    f.flush()?;
    f.sync_all()?;
    Ok(Some(staged))
}

/// Removes the temporary files in `dir` that a process killed while
/// writing left (`.NAME.tmp-PID`), once a process per folder: those of a
/// PID no longer running (on Linux, where `/proc` says which are;
/// elsewhere none is removed) and last written over an hour ago (a PID
/// of another machine sharing the folder, or of another PID namespace,
/// is not in this `/proc`; a write in progress is never that old).
fn remove_stale(dir: &Path) {
    static CLEANED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    if !Path::new("/proc/self").exists() {
        return;
    }
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        if cleaned.iter().any(|d| d == dir) {
            return;
        }
        cleaned.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .filter(|f| f.starts_with('.'))
            .and_then(|f| f.rsplit_once(".tmp-"))
            .map(|(_, pid)| pid)
        else {
            continue;
        };
        let gone = pid
            .parse::<u32>()
            .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        if gone && old && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = std::env::temp_dir().join(format!("splat-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // a failing fill leaves the old content and no temp file
        let err = write_atomic_with(&p, |_| Err(std::io::Error::other("boom")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn several_files_are_replaced_together_and_stale_temporaries_go() {
        let dir = std::env::temp_dir().join(format!("splat-atomic-all-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.png"), dir.join("b.json"));
        write_atomic_all(&[(&a, b"a1"), (&b, b"b1")]).unwrap();
        // the second cannot be written (its folder is missing): the first
        // is not replaced either, and no temporary is left
        let nowhere = dir.join("missing").join("b.json");
        assert!(write_atomic_all(&[(&a, b"a2"), (&nowhere, b"b2")]).is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"a1");
        let names = || {
            let mut v: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(), ["a.png", "b.json"]);
        // a temporary left over an hour ago by a process that is gone is
        // removed by this process's first write into the folder (not a
        // running process's, nor a recent one)
        if Path::new("/proc/self").exists() {
            let fresh =
                std::env::temp_dir().join(format!("splat-atomic-stale-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&fresh);
            std::fs::create_dir_all(&fresh).unwrap();
            let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
            let gone = fresh.join(".a.png.tmp-4294967295");
            let running = fresh.join(".a.png.tmp-1");
            let recent = fresh.join(".b.json.tmp-4294967294");
            for (f, aged) in [(&gone, true), (&running, true), (&recent, false)] {
                let file = std::fs::File::create(f).unwrap();
                if aged {
                    file.set_modified(old).unwrap();
                }
            }
            write_atomic(&fresh.join("c.txt"), b"c").unwrap();
            assert!(!gone.exists() && running.exists() && recent.exists());
            std::fs::remove_dir_all(&fresh).unwrap();
        }
        // a path given twice is refused
        assert!(write_atomic_all(&[(&a, b"x"), (&a, b"y")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn links_are_written_through_and_devices_written_directly() {
        let dir = std::env::temp_dir().join(format!("splat-atomic-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target.txt");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // a FIFO (as a device) is written into, not replaced by a file
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let reader = {
                let fifo = fifo.clone();
                std::thread::spawn(move || std::fs::read(fifo).unwrap())
            };
            write_atomic(&fifo, b"streamed").unwrap();
            assert_eq!(reader.join().unwrap(), b"streamed");
            assert!(!std::fs::metadata(&fifo).unwrap().is_file());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
