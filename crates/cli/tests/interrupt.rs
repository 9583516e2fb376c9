//! Ctrl-C (SIGINT) during `fit` and `train` saves what the loop has, then
//! ends the process by the signal (so a shell loop stops, as for any
//! program); the printed command (`train --resume` with the run's flags)
//! continues the run; Ctrl-C still ends a command that only waits (a
//! viewer serving) at once; a signal ignored when the process starts
//! (`nohup`) stays ignored.
//! Unix only: the signal is sent with `kill -INT`.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// SIGINT's number (2 on every Unix), which a command stopped by Ctrl-C
/// ends by, once it has saved, as a shell expects.
const SIGINT: i32 = 2;

/// A fresh, empty folder for `tag`.
fn root(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("chainrule-int-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Spawns `chainrule ARGS`, reads its stderr until a line containing
/// `marker` (printed as the loop is armed), waits `settle`, sends SIGINT
/// and returns the exit status, stdout and all of stderr. Fails after 120 s.
fn interrupt_after(args: &[&str], marker: &str, settle: Duration) -> (ExitStatus, String, String) {
    let mut c = with_default_signals(env!("CARGO_BIN_EXE_chainrule"));
    c.args(args);
    signalled(c, marker, &[("INT", settle)])
}

/// Spawns `command`, reads its stderr until a line containing `marker`,
/// then for each `(signal, wait)` waits and sends the signal (checking
/// that the process is still running before each), and returns the exit
/// status, stdout and all of stderr. Fails after 120 s.
fn signalled(
    mut command: Command,
    marker: &str,
    signals: &[(&str, Duration)],
) -> (ExitStatus, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let stdout = child.stdout.take().unwrap();
    let out_reader =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let start = Instant::now();
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no {marker:?} line: {lines:?}"));
        let found = line.contains(marker);
        lines.push(line);
        if found {
            break;
        }
    }
    for &(sig, wait) in signals {
        std::thread::sleep(wait);
        assert!(
            child.try_wait().unwrap().is_none(),
            "the command ended before SIG{sig}: {lines:?}"
        );
        signal(&child, sig);
    }
    let status = wait_or_kill(&mut child, start);
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    (status, out_reader.join().unwrap(), lines.join("\n"))
}

/// `program` as a command whose process starts with SIGINT, SIGTERM and
/// SIGHUP at their default actions, whatever this test process has: a
/// test run in the background of a non-interactive shell (as CI may run
/// it) inherits SIGINT ignored, and the binary rightly keeps a signal it
/// was started with ignored.
fn with_default_signals(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    // SAFETY: between fork and exec, only async-signal-safe calls
    // (signal) that touch no memory of the parent.
    unsafe {
        c.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    c
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_or_kill(child: &mut Child, start: Instant) -> ExitStatus {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the command did not end within 120 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn ctrl_c_during_fit_saves_the_model_and_exits_130() {
    for json_mode in [false, true] {
        let dir = root(&format!("fit-{json_mode}"));
        let out = dir.join("out");
        let mut args = vec!["fit", "--size", "32", "--gaussians", "60"];
        args.extend(["--iters", "10000000", "--out", out.to_str().unwrap()]);
        if json_mode {
            args.push("--json");
        }
        let (status, stdout, stderr) =
            interrupt_after(&args, "Ctrl-C stops", Duration::from_millis(300));
        assert_eq!(status.signal(), Some(SIGINT), "{stderr}");
        assert!(stderr.contains("stopped at iteration"), "{stderr}");
        // the files are whole
        assert!(json(&out.join("gaussians.json")).is_object());
        for f in ["render.png", "compare.png"] {
            let bytes = std::fs::read(out.join(f)).unwrap();
            assert!(image::load_from_memory(&bytes).is_ok(), "{f}");
        }
        // and the report says how far the fit got
        if json_mode {
            let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(report["interrupted"], true, "{report}");
            let done = report["iterations"].as_u64().unwrap();
            assert!((1..10_000_000).contains(&done), "{report}");
            assert!(report["seconds_per_iteration"].as_f64().unwrap() > 0.0);
        } else {
            assert!(stdout.contains("Gaussians to 32x32"), "{stdout}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn ctrl_c_during_train_checkpoints_and_resume_continues() {
    let dir = root("train");
    let (data, out) = (dir.join("data"), dir.join("out"));
    let st = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["synth", data.to_str().unwrap(), "--size", "24"])
        .args(["--views", "6", "--test-views", "2"])
        .output()
        .unwrap();
    assert!(st.status.success());
    // with the live viewer too: after Ctrl-C the run must end, not serve on
    let (status, _, stderr) = interrupt_after(
        &[
            "train",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--iters",
            "10000000",
            "--init-points",
            "300",
            "--sh-degree",
            "1",
            "--eval-every",
            "0",
            "--view",
            "--port",
            "0",
        ],
        "Ctrl-C stops",
        Duration::from_millis(300),
    );
    assert_eq!(status.signal(), Some(SIGINT), "{stderr}");
    // the command printed to continue it keeps the run's flags
    let printed = stderr
        .split('`')
        .find(|w| w.starts_with("chainrule train"))
        .unwrap_or_else(|| panic!("no command in {stderr}"));
    assert!(
        printed.contains("--sh-degree 1")
            && printed.contains("--init-points 300")
            && printed.ends_with("--resume"),
        "{printed}"
    );
    assert!(!stderr.contains("keeps serving"), "{stderr}");
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["interrupted"], true, "{metrics}");
    let done = metrics["iterations"].as_u64().unwrap();
    assert!((1..10_000_000).contains(&done), "{metrics}");
    let latest = json(&out.join("checkpoints/latest.json"));
    assert_eq!(latest["iteration"].as_u64(), Some(done));
    assert!(out.join("point_cloud.ply").is_file());
    // the run goes on from there
    let more = (done + 5).to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args([
            "train",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--iters", &more, "--resume", "--json", "--eval-every", "0"])
        .args(["--init-points", "300", "--sh-degree", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["resumed_from"].as_u64(), Some(done), "{report}");
    assert_eq!(report["iterations"].as_u64(), Some(done + 5), "{report}");
    assert_eq!(report["interrupted"], false);
    // Ctrl-C still ends a command that only waits, at once
    let mut child = with_default_signals(env!("CARGO_BIN_EXE_chainrule"))
        .args(["view", out.join("point_cloud.ply").to_str().unwrap()])
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://"), "{line}");
    let start = Instant::now();
    signal(&child, "INT");
    let status = wait_or_kill(&mut child, start);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(status.signal(), Some(SIGINT));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_signal_ignored_at_the_start_stays_ignored_as_nohup_asks() {
    let dir = root("nohup");
    let out = dir.join("out");
    // the shell ignores SIGHUP, as nohup does, and the binary replaces it
    let mut c = with_default_signals("sh");
    c.args(["-c", "trap '' HUP; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_chainrule"))
        .args(["fit", "--size", "32", "--gaussians", "60"])
        .args(["--iters", "10000000", "--out", out.to_str().unwrap()]);
    // SIGHUP leaves it running (checked before SIGINT is sent); SIGINT
    // then stops it, saving
    let (status, _, stderr) = signalled(
        c,
        "Ctrl-C stops",
        &[
            ("HUP", Duration::from_millis(200)),
            ("INT", Duration::from_millis(800)),
        ],
    );
    assert_eq!(status.signal(), Some(SIGINT), "{stderr}");
    assert!(stderr.contains("stopped at iteration"), "{stderr}");
    assert!(out.join("gaussians.json").is_file());
    let _ = std::fs::remove_dir_all(dir);
}
