//! What this machine has, as far as the defaults need to know: its
//! memory ([`memory`]), for the default Gaussian budget
//! ([`crate::train::budget`]) and how many photos a loader decodes at
//! once.

use std::path::{Path, PathBuf};

/// This machine's memory in bytes, never more than the process can
/// address:
/// - on Linux, the total (`MemTotal`), or the lowest memory limit of the
///   control group the process runs in and of that group's ancestors when
///   lower (a container's, a batch job's, a `systemd-run -p MemoryMax=`'s);
/// - on macOS, the physical memory (`sysctl hw.memsize`);
/// - on Windows, the physical memory (`GlobalMemoryStatusEx`'s
///   `ullTotalPhys`).
///
/// `None` where none of these can be read (other systems), and the budget
/// then follows the pixels alone.
pub fn memory() -> Option<u64> {
    let memory = linux_memory().or_else(os_memory);
    memory.map(|m| m.min(usize::MAX as u64))
}

/// Linux's memory, as [`memory`] says; `None` elsewhere (no `/proc`).
fn linux_memory() -> Option<u64> {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let total = read(Path::new("/proc/meminfo")).and_then(|s| parse_meminfo_total(&s));
    let limit = read(Path::new("/proc/self/cgroup"))
        .map(|s| cgroup_limit_files(&s))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| read(p).and_then(|s| parse_cgroup_limit(&s)))
        .min();
    match (total, limit) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

/// macOS's physical memory: the `hw.memsize` sysctl, a 64-bit count of
/// bytes.
#[cfg(target_os = "macos")]
fn os_memory() -> Option<u64> {
    let mut bytes: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: the name is a NUL-terminated string; `bytes` is a writable
    // u64 and `len` says its size, so the kernel writes at most that many
    // bytes into it; no new value is set (null, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            c"hw.memsize".as_ptr(),
            (&mut bytes as *mut u64).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && len == std::mem::size_of::<u64>() && bytes > 0).then_some(bytes)
}

/// Windows's physical memory: `GlobalMemoryStatusEx`'s `ullTotalPhys`.
#[cfg(windows)]
fn os_memory() -> Option<u64> {
    use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
    let mut status = MEMORYSTATUSEX {
        dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32,
        ..Default::default()
    };
    // SAFETY: `status` is a writable MEMORYSTATUSEX whose `dwLength` is
    // set, as the function requires.
    let ok = unsafe { GlobalMemoryStatusEx(&mut status) };
    (ok != 0 && status.ullTotalPhys > 0).then_some(status.ullTotalPhys)
}

/// Elsewhere the memory is not read.
#[cfg(not(any(target_os = "macos", windows)))]
fn os_memory() -> Option<u64> {
    None
}

/// The files that may hold a memory limit on this process, from the text
/// of `/proc/self/cgroup`: `memory.max` of its cgroup v2 group and of
/// every ancestor up to the hierarchy's root (a limit on any of them
/// applies), and `memory.limit_in_bytes` likewise for cgroup v1's
/// `memory` controller. A group path that leaves its namespace (`..`)
/// gives none: the files this process sees belong to other groups.
pub fn cgroup_limit_files(text: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(group)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        let parts: Vec<&str> = group.split('/').filter(|c| !c.is_empty()).collect();
        if parts.contains(&"..") {
            // outside the namespace's root: the root's limit is not ours
            continue;
        }
        let mut dir = PathBuf::from(root);
        files.push(dir.join(file));
        for part in parts {
            dir.push(part);
            files.push(dir.join(file));
        }
    }
    files
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

/// A control group's memory limit (`memory.max` of cgroup v2, or
/// `memory.limit_in_bytes` of v1), in bytes; `None` for no limit (`max`,
/// or v1's page-rounded largest value).
pub fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    // v1 writes "no limit" as the largest page-aligned i64
    (n < 1 << 62).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_cgroup_limits_are_read_in_bytes() {
        let meminfo = "MemTotal:       24591916 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo_total(meminfo), Some(24_591_916 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 5 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: x kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: 5 MB\n"), None);
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("8589934592\n"), Some(8 << 30));
        // cgroup v1's "no limit"
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit(""), None);
    }

    #[test]
    fn every_group_up_to_the_root_may_hold_the_limit() {
        let v2 = "0::/system.slice/job_7/step.scope\n";
        let files: Vec<String> = cgroup_limit_files(v2)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/system.slice/memory.max",
                "/sys/fs/cgroup/system.slice/job_7/memory.max",
                "/sys/fs/cgroup/system.slice/job_7/step.scope/memory.max",
            ]
        );
        // v1: the memory controller's hierarchy only
        let v1 = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/x\n";
        let files: Vec<String> = cgroup_limit_files(v1)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/docker/memory.limit_in_bytes",
                "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            ]
        );
        // a container's own namespace, and a path outside it
        assert_eq!(cgroup_limit_files("0::/\n").len(), 1);
        assert!(cgroup_limit_files("0::/../../x\n").is_empty());
        assert!(cgroup_limit_files("garbage\n").is_empty());
    }

    #[test]
    fn this_machine_has_memory_on_linux_macos_and_windows() {
        if cfg!(any(target_os = "linux", target_os = "macos", windows)) {
            let m = memory().expect("the memory is readable on this system");
            assert!(m >= 64 << 20, "{m} bytes");
        }
    }
}
