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
        assert!(u > 0.0 && u <= 1.5, "utilisation {u}");
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
