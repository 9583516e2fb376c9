//! Crash safety of `chainrule train`: killed with SIGKILL at random moments
//! and resumed each time, the run still reaches its final iteration, the
//! final PLY loads, and no file under a final name is ever partial (every
//! PLY and PNG present decodes, every JSON parses, `latest.json` always
//! names a checkpoint that loads).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ITERS: &str = "300";

/// `chainrule train DATA --out OUT FLAGS…`, not yet run.
fn train_command(data: &Path, out: &Path, flags: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chainrule"));
    c.args([
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(flags);
    c
}

/// A fresh folder named after `tag` with a small synthetic dataset of
/// `views` training and 2 test views in it: (folder, dataset, output).
fn synth_root(tag: &str, views: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("chainrule-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (data, out) = (root.join("data"), root.join("out"));
    let st = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["synth", data.to_str().unwrap(), "--size", "24"])
        .args(["--views", views, "--test-views", "2"])
        .output()
        .unwrap();
    assert!(st.status.success());
    (root, data, out)
}

fn train(data: &Path, out: &Path) -> std::process::Child {
    let mut c = train_command(
        data,
        out,
        &["--iters", ITERS, "--init-points", "300", "--sh-degree", "1"],
    );
    c.args(["--checkpoint-every", "0.02", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if out.join("checkpoints/latest.json").is_file() {
        c.arg("--resume");
    }
    c.spawn().expect("binary runs")
}

/// The iteration `checkpoints/latest.json` names (0 if there is none yet);
/// it is written atomically, so it is whole whenever it exists.
fn latest_iteration(out: &Path) -> u64 {
    std::fs::read(out.join("checkpoints/latest.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v["iteration"].as_u64())
        .unwrap_or(0)
}

/// Every output present is whole; returns the iteration of the latest
/// checkpoint (0 if none yet).
fn check(out: &Path, context: &str) -> u64 {
    fn walk(dir: &Path, context: &str) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p, context);
            } else if name.starts_with('.') && name.contains(".tmp-") {
                // an atomic write's temp file, never a final name
            } else if name.ends_with(".ply") {
                splat::three::ply::read_ply::<f64>(&p)
                    .unwrap_or_else(|e| panic!("{context}: {} is partial: {e}", p.display()));
            } else if name.ends_with(".png") {
                image::open(&p)
                    .unwrap_or_else(|e| panic!("{context}: {} is partial: {e}", p.display()));
            } else if name.ends_with(".json") {
                let t = std::fs::read(&p).unwrap();
                serde_json::from_slice::<serde_json::Value>(&t)
                    .unwrap_or_else(|e| panic!("{context}: {} is partial: {e}", p.display()));
            }
        }
    }
    walk(out, context);
    let latest = out.join("checkpoints/latest.json");
    let Ok(text) = std::fs::read(&latest) else {
        return 0;
    };
    let meta: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let ck = out
        .join("checkpoints")
        .join(meta["checkpoint"].as_str().unwrap());
    assert!(
        ck.is_dir(),
        "{context}: latest.json names a missing checkpoint"
    );
    meta["iteration"].as_u64().unwrap()
}

#[test]
fn train_killed_and_resumed_reaches_the_end_with_whole_files() {
    let (root, data, out) = synth_root("train-crash", "6");
    // the length of a whole run sets the range of kill times
    let t = Instant::now();
    assert!(train(&data, &root.join("probe")).wait().unwrap().success());
    let full = t.elapsed();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}, full run {full:?}");
    let mut last = 0;
    let mut interrupted = 0;
    for k in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = full.mul_f64(0.1 + (seed % 1000) as f64 / 1000.0 * 0.6);
        let started = Instant::now();
        let mut child = train(&data, &out);
        if k == 0 {
            // the first round is killed as soon as a checkpoint before the
            // last iteration is saved, so that at least one resume starts
            // mid-run however fast training is next to its final writes
            let t0 = Instant::now();
            while child.try_wait().unwrap().is_none()
                && !(1..300).contains(&latest_iteration(&out))
                && t0.elapsed() < full * 4
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(at.max(Duration::from_millis(5)));
        }
        let killed_after = started.elapsed();
        let _ = child.kill(); // SIGKILL; an error means it already exited
        child.wait().unwrap();
        let it = check(&out, &format!("round {k}, killed after {killed_after:?}"));
        assert!(it >= last, "checkpoints never go back: {it} after {last}");
        last = it;
        if it > 0 && it < 300 {
            interrupted += 1;
        }
        println!("round {k}: killed after {killed_after:?}, latest checkpoint at iteration {it}");
    }
    assert!(
        interrupted > 0,
        "no round was killed between two checkpoints"
    );
    // resumed to the end
    let flags = [
        "--iters",
        ITERS,
        "--init-points",
        "300",
        "--sh-degree",
        "1",
        "--json",
    ];
    let o = train_command(&data, &out, &flags)
        .args(if out.join("checkpoints/latest.json").is_file() {
            vec!["--resume"]
        } else {
            vec![]
        })
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["iterations"].as_u64(), Some(300));
    check(&out, "final");
    let g = splat::three::ply::read_ply::<f64>(&out.join("point_cloud.ply")).unwrap();
    assert_eq!(g.len() as u64, v["gaussians"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&root);
}

/// A run killed after writing its renders but before `metrics.json` (the
/// report that lists them) leaves renders no report names: the run
/// listed them beforehand (`checkpoints/renders.json`), so `--resume`
/// writes over them instead of refusing them as the user's files.
#[test]
fn renders_written_before_a_kill_are_the_resumed_runs_own() {
    let (root, data, out) = synth_root("train-renders", "4");
    let run = |resume: bool| {
        let flags = [
            "--iters",
            "20",
            "--init-points",
            "100",
            "--sh-degree",
            "0",
            "--json",
        ];
        let mut c = train_command(&data, &out, &flags);
        if resume {
            c.arg("--resume");
        }
        c.output().unwrap()
    };
    let o = run(false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // the state a kill between the renders and the report leaves
    std::fs::remove_file(out.join("metrics.json")).unwrap();
    assert!(std::fs::read_dir(out.join("renders")).unwrap().count() >= 2);
    let o = run(true);
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.join("metrics.json").is_file());
    // a file of the user's under a render's name is still refused
    std::fs::remove_file(out.join("metrics.json")).unwrap();
    std::fs::remove_file(out.join("checkpoints/renders.json")).unwrap();
    let o = run(true);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no earlier render there"));
    let _ = std::fs::remove_dir_all(&root);
}
