//! `chainrule bench train --json`: one small run, its report's keys and
//! their consistency (the stages add up to the iteration, the requested
//! scene size is what was measured). No speed is asserted here.

use std::process::Command;

#[test]
fn bench_train_reports_every_stage() {
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args([
            "bench",
            "train",
            "--size",
            "40x24",
            "--gaussians",
            "300",
            "--iters",
            "4",
            "--warmup",
            "1",
            "--views",
            "2",
            "--densify-every",
            "2",
            "--json",
        ])
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(r["pixels_per_iteration"], 960);
    assert_eq!(r["gaussians_start"], 300);
    assert!(r["gaussians_end"].as_u64().unwrap() <= 300);
    assert_eq!(r["iterations"], 4);
    let ms = r["ms_per_iteration"].as_f64().unwrap();
    assert!(ms > 0.0);
    let stages = r["stages_ms"].as_object().unwrap();
    for key in [
        "projection",
        "binning_and_sorting",
        "rasterization",
        "loss",
        "rasterization_backward",
        "projection_backward",
        "optimiser",
        "densification",
        "other",
    ] {
        assert!(stages[key].as_f64().unwrap() >= 0.0, "{key}");
    }
    let sum: f64 = stages.values().map(|v| v.as_f64().unwrap()).sum();
    // the stages are laps of one clock inside each iteration
    assert!(
        sum <= ms * 1.001 && sum > 0.5 * ms,
        "stages {sum} of {ms} ms"
    );
    let loss = stages["loss"].as_f64().unwrap();
    assert!((r["loss_fraction"].as_f64().unwrap() - loss / ms).abs() < 1e-9);
    if let Some(u) = r["cpu_utilisation"].as_f64() {
        // CPU time comes in clock ticks (10 ms): a release build's four
        // tiny iterations can take less than one
        assert!((0.0..=1.5).contains(&u), "utilisation {u}");
    }
    assert!(r["peak_heap_bytes"].as_u64().unwrap() >= r["live_heap_bytes"].as_u64().unwrap());
    assert!(r["live_heap_bytes"].as_u64().unwrap() > 0);
    // an iteration still allocates (the render's outputs, the tile lists)
    let allocs = r["allocations_per_iteration"].as_f64().unwrap();
    let bytes = r["allocated_bytes_per_iteration"].as_f64().unwrap();
    assert!(
        allocs >= 1.0 && bytes >= allocs,
        "{allocs} allocations, {bytes} bytes"
    );
}

fn chainrule(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// `--data DIR --resume OUT`: the timed iterations continue a real run
/// from its checkpoint, on that dataset's views; a folder without a
/// checkpoint is a usage error naming the file.
#[test]
fn bench_train_continues_a_real_run() {
    let dir = std::env::temp_dir().join(format!("chainrule-bench-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ds, out) = (dir.join("ds"), dir.join("out"));
    let (ds, out) = (ds.to_str().unwrap(), out.to_str().unwrap());
    let ok = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(&chainrule(&[
        "synth",
        ds,
        "--size",
        "24",
        "--views",
        "4",
        "--test-views",
        "1",
    ]));
    ok(&chainrule(&[
        "train",
        ds,
        "--out",
        out,
        "--iters",
        "6",
        "--init-points",
        "200",
        "--max-gaussians",
        "150",
    ]));
    let o = chainrule(&[
        "bench", "train", "--data", ds, "--resume", out, "--iters", "2", "--warmup", "1", "--json",
    ]);
    ok(&o);
    // the resumed run's own budget (checkpoints/run.json), not the default
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("Gaussian budget, timed here: 150"), "{e}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(r["data"], ds);
    assert_eq!(r["resumed_from"], 6);
    // the schedules of the resumed run's own length (checkpoints/run.json)
    assert_eq!(r["train_iters"], 6);
    assert_eq!(r["pixels_per_iteration"], 24 * 24);
    assert!(r["gaussians_start"].as_u64().unwrap() > 0);
    let o = chainrule(&[
        "bench", "train", "--data", ds, "--resume", ds, "--iters", "1", "--json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // with --json the error is a JSON object on stdout
    let e = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("latest.json") && e.contains("--resume"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
