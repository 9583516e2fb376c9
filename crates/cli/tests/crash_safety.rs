//! Crash safety of `chainrule fit`: killed with SIGKILL at random moments
//! (during the fit and during the writes), it never leaves a partial file
//! under a final name: every `render.png`/`compare.png` present decodes and
//! every `gaussians.json` present parses. Only `.NAME.tmp-PID` leftovers of
//! the atomic writes may appear beside them. (`train`: see `train_crash.rs`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const ARGS: &[&str] = &[
    "fit",
    "--gaussians",
    "100",
    "--iters",
    "10",
    "--size",
    "160",
];

fn fit(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(ARGS)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary runs")
}

/// Checks every file under `out`; returns how many final outputs exist.
fn check_outputs(out: &Path, context: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(out) else {
        return 0; // killed before the folder was made
    };
    let mut finals = 0;
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match name.as_str() {
            "render.png" | "compare.png" => {
                image::open(&p)
                    .unwrap_or_else(|e| panic!("{context}: {name} does not decode: {e}"));
                finals += 1;
            }
            "gaussians.json" => {
                let text = std::fs::read_to_string(&p).unwrap();
                splat::format::GaussianFile::from_json(&text)
                    .unwrap_or_else(|e| panic!("{context}: {name} does not parse: {e}"));
                finals += 1;
            }
            n if n.starts_with('.') && n.contains(".tmp-") => {}
            n => panic!("{context}: unexpected file {n}"),
        }
    }
    finals
}

#[test]
fn fit_killed_at_random_moments_leaves_no_partial_output() {
    let out = std::env::temp_dir().join(format!("chainrule-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // one complete run: its duration sets the range of kill times, and its
    // outputs are then overwritten by the killed runs (the dangerous case)
    let t = Instant::now();
    let status = fit(&out).wait().unwrap();
    let full = t.elapsed();
    assert!(status.success());
    assert_eq!(check_outputs(&out, "complete run"), 3);

    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}, full run {full:?}");
    for k in 0..10 {
        // xorshift; kill times uniform in [0, 1.2 × full run]
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = full.mul_f64((seed % 1000) as f64 / 1000.0 * 1.2);
        // every other round from an empty folder, to catch first writes too
        if k % 2 == 1 {
            let _ = std::fs::remove_dir_all(&out);
        }
        let mut child = fit(&out);
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL; an error means it already exited
        child.wait().unwrap();
        let n = check_outputs(&out, &format!("round {k}, killed after {at:?}"));
        assert!(n <= 3);
    }
    let _ = std::fs::remove_dir_all(&out);
}
