//! `chainrule train` end to end through the binary: outputs, JSON, resume,
//! and exit code 2 with the file named on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-train-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage_error(o: &Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    for n in needles {
        assert!(e.contains(n), "stderr lacks {n:?}: {e}");
    }
    assert!(!e.contains("panicked"), "panic: {e}");
}

fn synth(dir: &std::path::Path) {
    let o = run(&[
        "synth",
        dir.to_str().unwrap(),
        "--size",
        "24",
        "--views",
        "5",
        "--test-views",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `render OUT/point_cloud.ply --data DS --out RD --json`'s report.
fn render_data(out: &std::path::Path, ds: &str, rd: &std::path::Path) -> serde_json::Value {
    json(&run(&[
        "render",
        out.join("point_cloud.ply").to_str().unwrap(),
        "--data",
        ds,
        "--out",
        rd.to_str().unwrap(),
        "--json",
    ]))
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

/// A synthetic dataset in a fresh `name` folder, and an output folder
/// beside it: (folder, dataset, output).
fn synth_run(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = tmp(name);
    let data = d.join("data");
    synth(&data);
    let out = d.join("out");
    (d, data, out)
}

/// The checkpoint record `train` left in `out`.
fn latest_json(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("checkpoints/latest.json")).unwrap()).unwrap()
}

/// `train DATA --out OUT` of a small run (100 random points, no view
/// dependence, `--json`) with `extra` flags.
fn small_train(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> Output {
    let (ds, os) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["train", ds, "--out", os];
    args.extend(["--init-points", "100", "--sh-degree", "0", "--json"]);
    args.extend(extra);
    run(&args)
}

/// A JSON file's value.
fn read_json(file: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// `--resume` without `--iters` continues to the length the run was
/// started with (its `checkpoints/run.json`), not to the default.
#[test]
fn resume_without_iters_keeps_the_runs_length() {
    let (_d, data, out) = synth_run("resume-length");
    let with = |extra: &[&str]| small_train(&data, &out, extra);
    let first = json(&with(&["--iters", "20"]));
    let record_file = out.join("checkpoints/run.json");
    let record = || read_json(&record_file);
    assert_eq!(record()["iters"], 20);
    // resumed with a shorter --iters: nothing is trained, and the outputs
    // written again report the settings of the run's own length (here
    // recorded as 8,000, where the position rate is no longer raised for
    // a short run), not those of a 10-iteration run, nor record 10 as its
    // length
    let mut r = record();
    r["iters"] = serde_json::json!(8000);
    std::fs::write(&record_file, serde_json::to_vec(&r).unwrap()).unwrap();
    let again = json(&with(&["--resume", "--iters", "10"]));
    let lr = |iters| splat::train::config::LR_MEAN * splat::train::config::lr_mean_scale(iters);
    assert_ne!(lr(8000), lr(10), "the test needs rates that differ");
    assert_eq!(again["lr_mean"].as_f64(), Some(lr(8000)), "{again}");
    assert_eq!(first["lr_mean"].as_f64(), Some(lr(20)), "{first}");
    assert_eq!(
        (again["iterations"].clone(), record()["iters"].clone()),
        (20.into(), 8000.into())
    );
    r["iters"] = serde_json::json!(20);
    std::fs::write(&record_file, serde_json::to_vec(&r).unwrap()).unwrap();
    // a run of 20 resumed without --iters is done: nothing is trained
    let o = with(&["--resume"]);
    assert!(
        stderr(&o).contains("the run's length (20) no more"),
        "{}",
        stderr(&o)
    );
    assert_eq!(json(&o)["iterations"], 20);
    // the same checkpoint as a run started for 26 iterations: resumed to 26
    let mut r = record();
    r["iters"] = serde_json::json!(26);
    std::fs::write(&record_file, serde_json::to_vec(&r).unwrap()).unwrap();
    let v = json(&with(&["--resume"]));
    assert_eq!(
        (v["resumed_from"].clone(), v["iterations"].clone()),
        (20.into(), 26.into())
    );
    assert_eq!(latest_json(&out)["iteration"], 26);
    assert_eq!(record()["iters"], 26);
    // --iters beyond the checkpoint still wins, and is recorded as the
    // run's new length
    let v = json(&with(&["--resume", "--iters", "28"]));
    assert_eq!(v["iterations"], 28);
    assert_eq!(record()["iters"], 28);
}

/// `--resume` without `--max-gaussians` keeps the budget the run was
/// started with (its `checkpoints/run.json`), not this machine's default,
/// which depends on its memory; a given `--max-gaussians` wins and is
/// recorded.
#[test]
fn resume_keeps_the_runs_budget() {
    let (_d, data, out) = synth_run("resume-budget");
    let with = |extra: &[&str]| small_train(&data, &out, extra);
    let first = json(&with(&["--iters", "10"]));
    let default = first["max_gaussians"].as_u64().unwrap();
    let record_file = out.join("checkpoints/run.json");
    let record = || read_json(&record_file);
    assert_eq!(record()["max_gaussians"], default);
    // the same checkpoint as a run started on a machine whose default was
    // another budget: resumed with that budget, and a note says so
    let mut r = record();
    r["max_gaussians"] = serde_json::json!(default + 7);
    std::fs::write(&record_file, serde_json::to_vec(&r).unwrap()).unwrap();
    let o = with(&["--resume", "--iters", "12"]);
    let v = json(&o);
    assert_eq!(v["max_gaussians"], default + 7, "{v}");
    assert!(
        stderr(&o).contains(&format!("the run's Gaussian budget is {}", default + 7)),
        "{}",
        stderr(&o)
    );
    assert_eq!(record()["max_gaussians"], default + 7);
    // --max-gaussians still wins, and is recorded as the run's budget
    let v = json(&with(&[
        "--resume",
        "--iters",
        "14",
        "--max-gaussians",
        "150",
    ]));
    assert_eq!(v["max_gaussians"], 150);
    assert_eq!(record()["max_gaussians"], 150);
    // an older version's record (no budget): this machine's default
    let mut r = record();
    r.as_object_mut().unwrap().remove("max_gaussians");
    std::fs::write(&record_file, serde_json::to_vec(&r).unwrap()).unwrap();
    let o = with(&["--resume", "--iters", "16"]);
    assert_eq!(json(&o)["max_gaussians"], default);
    assert!(
        stderr(&o).contains("the run's Gaussian budget is not recorded"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_writes_ply_renders_and_json_then_resumes() {
    let (d, data, out) = synth_run("e2e");
    let (ds, os) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--init-points", "200", "--sh-degree", "1"];
    let mut args = vec!["train", ds, "--out", os, "--iters", "20", "--json"];
    args.extend(common);
    let v = json(&run(&args));
    for k in ["psnr", "ssim", "gaussians", "iterations", "seconds"] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["iterations"], 20);
    assert!(v["psnr"].as_f64().unwrap() > 5.0);
    // the position rates used: twice the original 3DGS's, decaying a
    // hundredfold, and four times that for a run this short
    assert_eq!(v["lr_mean"], 1.28e-3);
    assert_eq!(v["lr_mean_final"], 1.28e-5);
    // the other groups' rates: the original's, the SH rate compressed
    // fourfold too (a NeRF-synthetic scene keeps the original scale rate)
    assert_eq!(
        [
            &v["lr_sh"],
            &v["lr_opacity"],
            &v["lr_scale"],
            &v["lr_rotation"]
        ],
        [0.01, 0.05, 0.005, 0.001]
    );
    assert!(out.join("point_cloud.ply").is_file());
    // test renders are named after their photos (test/r_0.png, …)
    assert!(out.join("renders/r_0.png").is_file());
    assert!(out.join("renders/r_1.png").is_file());
    // the settings a render needs, NeRF-synthetic's white background
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("settings.json")).unwrap()).unwrap();
    assert_eq!(st["background"], serde_json::json!([1.0, 1.0, 1.0]));
    assert_eq!(st["dataset_kind"], "nerf-synthetic");
    assert_eq!(st["sh_degree"], 1);
    assert!(out.join("checkpoints/latest.json").is_file());
    let g = splat::three::ply::read_ply::<f64>(&out.join("point_cloud.ply")).unwrap();
    assert_eq!(g.len() as u64, v["gaussians"].as_u64().unwrap());
    assert_eq!(g.sh_degree, 1);
    // resume to 30: ten more iterations from the checkpoint at 20
    let mut args = vec![
        "train", ds, "--out", os, "--iters", "30", "--json", "--resume",
    ];
    args.extend(common);
    let v = json(&run(&args));
    assert_eq!(v["resumed_from"], 20);
    assert_eq!(v["iterations"], 30);
    let latest = latest_json(&out);
    assert_eq!(latest["iteration"], 30);
    assert_eq!(latest["lr_mean"], 1.28e-3);
    assert_eq!(latest["lr_mean_final"], 1.28e-5);
    assert_eq!(latest["lr_mean_steps"], 60);
    assert_eq!(latest["lr_opacity"], 0.05);
    // a broken checkpoints/run.json is said, not passed over
    let record = out.join("checkpoints/run.json");
    let kept = std::fs::read(&record).unwrap();
    std::fs::write(&record, "{ not json").unwrap();
    let mut args = vec![
        "train", ds, "--out", os, "--iters", "30", "--json", "--resume",
    ];
    args.extend(common);
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("run.json: cannot be read"), "{err}");
    json(&o);
    std::fs::write(&record, kept).unwrap();
    // `render --data` re-renders the saved PLY from the test cameras and
    // scores it exactly as training did (same f32 scene, same background)
    let rd = d.join("rd");
    let r = render_data(&out, ds, &rd);
    assert_eq!(r["views"], 2);
    for key in ["psnr", "psnr_half_fit", "ssim_half_fit"] {
        let (p1, p2) = (r[key].as_f64().unwrap(), v[key].as_f64().unwrap());
        assert!(
            (p1 - p2).abs() < 1e-9,
            "{key}: render --data {p1} vs train {p2}"
        );
    }
    assert_eq!(r["notes"], v["notes"]);
    assert!(rd.join("r_0.png").is_file() && rd.join("r_1.png").is_file());
    let bad = run(&[
        "render",
        out.join("point_cloud.ply").to_str().unwrap(),
        "--data",
        ds,
        "--split",
        "val",
        "--out",
        rd.to_str().unwrap(),
    ]);
    assert_usage_error(&bad, &["--split val"]);
    // a checkpoint of another SH degree is refused with the file named
    let args = [
        "train",
        ds,
        "--out",
        os,
        "--iters",
        "40",
        "--resume",
        "--sh-degree",
        "2",
    ];
    assert_usage_error(&run(&args), &["latest.json", "sh_degree"]);
}

#[test]
fn random_background_trains() {
    let d = tmp("randbg");
    let data = d.join("data");
    synth(&data);
    let out = d.join("out");
    let v = json(&run(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "30",
        "--init-points",
        "200",
        "--sh-degree",
        "0",
        "--random-background",
        "--json",
    ]));
    assert_eq!(v["iterations"], 30);
    assert!(v["psnr"].as_f64().unwrap() > 5.0, "{v}");
    assert!(out.join("point_cloud.ply").is_file());
}

/// `--lr-mean` sets the position rate (its final rate follows at the
/// default ratio unless `--lr-mean-final` is given), the report and the
/// checkpoint record them, and a rate that is not positive is refused.
#[test]
fn position_rate_flags_are_used_and_recorded() {
    let (_, data, out) = synth_run("lrmean");
    let (ds, os) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "train",
        ds,
        "--out",
        os,
        "--iters",
        "3",
        "--init-points",
        "100",
        "--sh-degree",
        "0",
        "--json",
    ];
    let v = json(&run(&[&common[..], &["--lr-mean", "1.6e-4"]].concat()));
    assert_eq!(v["lr_mean"], 1.6e-4);
    assert_eq!(v["lr_mean_final"], 1.6e-6);
    let latest = latest_json(&out);
    assert_eq!(latest["lr_mean"], 1.6e-4);
    assert_eq!(latest["lr_mean_final"], 1.6e-6);
    let flags = [
        "--lr-mean",
        "2e-4",
        "--lr-mean-final",
        "1e-5",
        "--overwrite",
    ];
    let v = json(&run(&[&common[..], &flags].concat()));
    assert_eq!(v["lr_mean"], 2e-4);
    assert_eq!(v["lr_mean_final"], 1e-5);
    // negative numbers that clap alone would take for flags (an
    // exponent, no leading digit) reach the validation too
    for bad in [
        ["--lr-mean", "0"],
        ["--lr-mean-final", "NaN"],
        ["--lr-mean", "-1e-4"],
        ["--lr-mean", "-.5"],
    ] {
        // without --json, so that the error is on stderr
        let args = [&common[..common.len() - 1], &bad].concat();
        let o = run(&args);
        assert_usage_error(&o, &[bad[0]]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("unexpected argument"), "{err}");
    }
}

#[test]
fn bad_datasets_exit_2_naming_the_file() {
    let d = tmp("bad");
    let out = d.join("out");
    let os = out.to_str().unwrap();
    // not a dataset
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_usage_error(
        &run(&["train", empty.to_str().unwrap(), "--out", os]),
        &["empty", "transforms_train.json"],
    );
    // missing folder
    let missing = d.join("missing");
    assert_usage_error(
        &run(&["train", missing.to_str().unwrap(), "--out", os]),
        &["missing"],
    );
    // malformed JSON
    let bad = d.join("badjson");
    synth(&bad);
    std::fs::write(bad.join("transforms_train.json"), b"{\"frames\": [").unwrap();
    assert_usage_error(
        &run(&["train", bad.to_str().unwrap(), "--out", os]),
        &["transforms_train.json"],
    );
    // a missing image
    let noimg = d.join("noimg");
    synth(&noimg);
    std::fs::remove_file(noimg.join("train/r_0.png")).unwrap();
    assert_usage_error(
        &run(&["train", noimg.to_str().unwrap(), "--out", os]),
        &["train/r_0", "not found"],
    );
    // an empty dataset
    let none = d.join("none");
    synth(&none);
    std::fs::write(
        none.join("transforms_train.json"),
        b"{\"camera_angle_x\": 0.69, \"frames\": []}",
    )
    .unwrap();
    assert_usage_error(
        &run(&["train", none.to_str().unwrap(), "--out", os]),
        &["none"],
    );
    // --resume with nothing to resume
    let ok = d.join("ok");
    synth(&ok);
    assert_usage_error(
        &run(&[
            "train",
            ok.to_str().unwrap(),
            "--out",
            d.join("fresh").to_str().unwrap(),
            "--resume",
        ]),
        &["latest.json"],
    );
}

#[test]
fn mcmc_grows_to_the_budget_and_help_states_the_defaults() {
    let d = tmp("mcmc");
    let data = d.join("data");
    synth(&data);
    let out = d.join("out");
    let v = json(&run(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "40",
        "--init-points",
        "200",
        "--sh-degree",
        "0",
        "--strategy",
        "mcmc",
        "--max-gaussians",
        "230",
        "--densify-every",
        "1",
        "--json",
    ]));
    // densification ends at half of --iters (20); rounds every iteration
    // (the default interval is at least 100, longer than this run): 5%
    // growth per round reaches the cap of 230
    assert_eq!(v["gaussians"], 230);
    assert_eq!(v["max_gaussians"], 230);
    assert!(v["psnr"].as_f64().unwrap() > 5.0);
    let help = run(&["train", "--help"]);
    let h = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "one per 27 training pixels",
        "half of the machine's memory",
        "half of",
        "mcmc",
        "kept pixels",
    ] {
        assert!(h.contains(needle), "train --help lacks {needle:?}");
    }
}

/// `--antialiased` trains and scores with Mip-Splatting's projection,
/// saves it in settings.json, and `render --data` of the PLY beside it
/// scores the model exactly as training did (without the flag it differs).
#[test]
fn antialiased_training_is_saved_and_rendered_alike() {
    let d = tmp("aa");
    let data = d.join("data");
    synth(&data);
    let ds = data.to_str().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut args = vec!["train", ds, "--out", out.to_str().unwrap(), "--json"];
        args.extend(["--iters", "30", "--init-points", "200", "--sh-degree", "1"]);
        args.extend(extra);
        (json(&run(&args)), out)
    };
    let (aa, out) = train("aa", &["--antialiased"]);
    let (plain, plain_out) = train("plain", &[]);
    let settings = |o: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(o.join("settings.json")).unwrap()).unwrap()
    };
    assert_eq!(settings(&out)["antialiased"], true);
    assert_eq!(settings(&plain_out)["antialiased"], false);
    let (pa, pp) = (
        aa["psnr"].as_f64().unwrap(),
        plain["psnr"].as_f64().unwrap(),
    );
    assert!(pa != pp, "the flag changed nothing: {pa} dB both");
    let rd = d.join("rd");
    let r = render_data(&out, ds, &rd);
    let pr = r["psnr"].as_f64().unwrap();
    assert!((pr - pa).abs() < 1e-9, "render --data {pr} vs train {pa}");
}

#[test]
fn settings_name_the_dataset_absolutely_and_a_moved_one_is_reported() {
    let d = tmp("moved");
    synth(&d.join("data"));
    // trained from inside `d` with a relative dataset path
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .current_dir(&d)
        .args(["train", "data", "--out", "out", "--iters", "5", "--json"])
        .args(["--init-points", "100", "--sh-degree", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/settings.json")).unwrap()).unwrap();
    let saved = PathBuf::from(st["dataset"].as_str().unwrap());
    assert_eq!(saved, d.join("data").canonicalize().unwrap());
    // the report's paths too, so that metrics.json reads from anywhere
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = read_json(&d.join("out/metrics.json"));
    for (p, file) in [
        (&v["point_cloud"], "out/point_cloud.ply"),
        (&m["point_cloud"], "out/point_cloud.ply"),
        (&m["views"][0]["render"], "out/renders/r_0.png"),
    ] {
        let p = PathBuf::from(p.as_str().unwrap());
        assert!(p.is_absolute(), "{p:?}");
        assert_eq!(
            p.canonicalize().unwrap(),
            d.join(file).canonicalize().unwrap()
        );
    }
    // so a render from anywhere finds it
    let out = d.join("out");
    let (o_s, path) = (out.to_str().unwrap(), d.join("path"));
    let flight = || {
        run(&[
            "render",
            o_s,
            "--path",
            "2",
            "--out",
            path.to_str().unwrap(),
        ])
    };
    let o = flight();
    assert!(o.status.success(), "{}", stderr(&o));
    // moved away: the error names the settings file and the way out
    std::fs::rename(d.join("data"), d.join("data2")).unwrap();
    let o = flight();
    assert_usage_error(&o, &["settings.json", "--data", "not there"]);
    let o = run(&[
        "train",
        d.join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, &["no such folder"]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every vector instruction set the kernels can run with gives the same
/// trained scene, bit for bit (`CHAINRULE_SIMD` caps the set; on a CPU
/// without a set the cap falls back to the widest it has, so the runs are
/// then equal trivially).
#[test]
fn every_simd_set_trains_the_same_bits() {
    let (_d, data, out) = synth_run("simd");
    let ply = |set: &str| {
        let out = out.with_extension(set);
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .env("CHAINRULE_SIMD", set)
            .args(["train", data.to_str().unwrap(), "--out"])
            .arg(&out)
            .args(["--iters", "120", "--init-points", "300", "--json"])
            .output()
            .expect("binary runs");
        let v = json(&o);
        assert!(!stderr(&o).contains("ignored"), "{}", stderr(&o));
        // the report names the set it ran with: the one asked, or a
        // narrower one on a CPU without it
        let order = ["generic", "avx2", "avx512"];
        let ran = order.iter().position(|s| v["simd"] == *s);
        let asked = order.iter().position(|s| s == &set);
        assert!(ran.is_some() && ran <= asked, "{set}: {v}");
        assert!(!v["machine"].as_str().unwrap().is_empty());
        std::fs::read(out.join("point_cloud.ply")).unwrap()
    };
    let widest = ply("avx512");
    assert_eq!(ply("avx2"), widest, "avx2");
    assert_eq!(ply("generic"), widest, "generic");
}

/// When the scene cannot be written and the final checkpoint cannot
/// either, the one error reported names both (the checkpoint is written in
/// the background while the scene is exported).
#[test]
fn a_scene_error_and_a_checkpoint_error_are_both_reported() {
    let d = tmp("both-errors");
    let ds = d.join("ds");
    synth(&ds);
    let out = d.join("out");
    std::fs::create_dir_all(out.join("point_cloud.ply")).unwrap();
    std::fs::write(out.join("checkpoints"), "not a folder").unwrap();
    // the one JSON error object of a failed five-iteration run
    let failed = || -> serde_json::Value {
        let o = run(&[
            "train",
            ds.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--iters",
            "5",
            "--checkpoint-every",
            "0",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("one JSON object")
    };
    let v = failed();
    let e = v["error"].as_str().unwrap();
    // the scene's error first (its path is the object's), then the
    // checkpoint's
    assert_eq!(e.matches("; and ").count(), 1, "{e}");
    assert!(e.contains("the final checkpoint was not written"), "{e}");
    assert!(e.contains("ckpt-00000005"), "{e}");
    assert!(
        v["path"].as_str().unwrap().ends_with("point_cloud.ply"),
        "{v}"
    );
    // with only the checkpoint failing, that is the error
    std::fs::remove_dir(out.join("point_cloud.ply")).unwrap();
    let v = failed();
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("ckpt-00000005") && !e.contains("; and"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A run into a folder that holds an earlier run is refused (the model
/// and checkpoints stay as they were) unless `--resume` continues it or
/// `--overwrite` replaces it.
#[test]
fn an_earlier_run_is_never_replaced_unasked() {
    let (d, data, out) = synth_run("earlier-run");
    let with = |extra: &[&str]| small_train(&data, &out, extra);
    json(&with(&["--iters", "6"]));
    let model = std::fs::read(out.join("point_cloud.ply")).unwrap();
    let o = with(&["--iters", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("iteration 6") && msg.contains("--resume") && msg.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(e["path"].as_str(), out.to_str());
    assert_eq!(std::fs::read(out.join("point_cloud.ply")).unwrap(), model);
    assert_eq!(latest_json(&out)["iteration"], 6);
    // an interrupted run (checkpoints, no model yet) is refused too
    std::fs::remove_file(out.join("point_cloud.ply")).unwrap();
    let o = with(&["--iters", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("interrupted"));
    // and render says how to go on from it
    let orbit = d.join("orbit");
    let (os, rs) = (out.to_str().unwrap(), orbit.to_str().unwrap());
    let o = run(&["render", os, "--orbit", "1", "--out", rs]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--resume") && e.contains("ckpt-00000006"), "{e}");
    // --overwrite trains afresh, the earlier run's checkpoints gone first
    // (a --resume after a failed start must not find them)
    let v = json(&with(&["--iters", "3", "--overwrite"]));
    assert_eq!(
        (v["iterations"].clone(), v["resumed_from"].clone()),
        (3.into(), 0.into())
    );
    assert_eq!(latest_json(&out)["iteration"], 3);
    assert!(!out.join("checkpoints/ckpt-00000006").exists());
    let o = with(&["--iters", "3", "--overwrite", "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--exposure`'s report says so and scores the held-out photos both ways
/// (the identity, and the original 3DGS's half-fit protocol), in JSON and
/// in the text summary; a run without it is scored both ways too.
#[test]
fn the_report_says_how_exposure_runs_are_scored() {
    let (d, data, out) = synth_run("exposure-report");
    let v = json(&small_train(
        &data,
        &out,
        &["--iters", "3", "--exposure", "--eval-every", "0.000001"],
    ));
    assert_eq!(v["exposure"], true);
    // the curve follows the protocol's score too
    let curve = v["curve"].as_array().expect("a curve");
    assert!(!curve.is_empty(), "{v}");
    for point in curve {
        let (p, h) = (point["psnr"].as_f64(), point["psnr_half_fit"].as_f64());
        assert!(
            p.is_some_and(f64::is_finite) && h.is_some_and(f64::is_finite),
            "{point}"
        );
    }
    assert!(v["psnr"].as_f64().unwrap().is_finite(), "{v}");
    assert!(v["psnr_half_fit"].as_f64().unwrap().is_finite(), "{v}");
    let metrics = read_json(&out.join("metrics.json"));
    assert_eq!(metrics["exposure"], true);
    let (ds, os) = (data.to_str().unwrap(), out.to_str().unwrap());
    let o = run(&[
        "train",
        ds,
        "--out",
        os,
        "--iters",
        "3",
        "--init-points",
        "100",
        "--sh-degree",
        "0",
        "--exposure",
        "--overwrite",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        text.contains("identity") && text.contains("protocol: PSNR"),
        "{text}"
    );
    // `render --data --split train` of the run scores each training photo
    // through the transform the run learned for it, and says so; its
    // renders are the transformed ones. A copy without the checkpoints
    // (nothing to read them from) scores the photos as they are
    let transforms = splat::train::exposure_transforms(&out.join("checkpoints"))
        .unwrap()
        .expect("the run's transforms, by photo");
    assert!(transforms
        .iter()
        .any(|(_, e)| *e != splat::train::exposure::IDENTITY));
    let bare = d.join("no-checkpoints");
    let _ = std::fs::create_dir_all(&bare);
    for f in ["point_cloud.ply", "settings.json"] {
        std::fs::copy(out.join(f), bare.join(f)).unwrap();
    }
    let score = |scene: &std::path::Path, to: &str| {
        let o = run(&[
            "render",
            scene.to_str().unwrap(),
            "--data",
            ds,
            "--split",
            "train",
            "--json",
            "--out",
            d.join(to).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (through, plain) = (score(&out, "r-through"), score(&bare, "r-plain"));
    let per = through["per_view"].as_array().unwrap();
    assert!(per.iter().all(|v| v["exposure"] == true), "{through}");
    assert!(plain["per_view"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["exposure"] == false));
    assert!(
        through["notes"].to_string().contains("--exposure"),
        "{through}"
    );
    assert_ne!(through["psnr"], plain["psnr"]);
    // the copy without them says why its training photos score lower
    assert!(
        plain["notes"]
            .to_string()
            .contains("trained with --exposure"),
        "{plain}"
    );
    // (the held-out photos have no learned transform: the same either way)
    let test = |scene: &std::path::Path, to: &str| {
        let o = run(&[
            "render",
            scene.to_str().unwrap(),
            "--data",
            ds,
            "--json",
            "--out",
            d.join(to).to_str().unwrap(),
        ]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["psnr"].clone()
    };
    assert_eq!(test(&out, "t-through"), test(&bare, "t-plain"));
    // a run without --exposure is scored by the protocol too (to compare)
    let v = json(&small_train(&data, &out, &["--iters", "3", "--overwrite"]));
    assert_eq!(v["exposure"], false);
    let (p, h) = (v["psnr"].as_f64().unwrap(), v["psnr_half_fit"].as_f64());
    assert!(h.is_some_and(|h| h.is_finite() && h != p), "{v}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A run holds its output folder's lock while it writes: a second run into
/// the folder at once is refused even with `--overwrite` or `--resume`
/// (here the test holds the lock as the first run would), and runs once
/// the lock is let go.
#[test]
fn a_second_run_into_a_busy_folder_is_refused() {
    let (d, data, out) = synth_run("busy-folder");
    std::fs::create_dir_all(&out).unwrap();
    let lock = std::fs::File::create(out.join(".train.lock")).unwrap();
    lock.try_lock().expect("the test takes the lock");
    for extra in [&["--overwrite"][..], &["--resume"], &[]] {
        let mut args = vec!["--iters", "3"];
        args.extend(extra);
        let o = small_train(&data, &out, &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains("another `chainrule train`"), "{e}");
        assert_eq!(e["path"].as_str(), out.to_str());
        assert!(!out.join("checkpoints").exists(), "{extra:?} wrote");
    }
    lock.unlock().unwrap();
    json(&small_train(&data, &out, &["--iters", "3"]));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn resume_of_a_checkpoint_cut_off_while_written_says_so() {
    let dir = tmp("cut-off");
    let ds = dir.join("ds");
    synth(&ds);
    let out = dir.join("out");
    // what a second Ctrl-C during the first checkpoint's save leaves
    std::fs::create_dir_all(out.join("checkpoints/ckpt-40")).unwrap();
    std::fs::write(out.join("checkpoints/ckpt-40/point_cloud.ply"), b"ply\n").unwrap();
    let o = run(&[
        "train",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resume",
    ]);
    assert_usage_error(
        &o,
        &["ckpt-40", "no checkpoint was completed", "without --resume"],
    );
    assert!(!stderr(&o).contains("budget"), "{}", stderr(&o));
    // and training again without --resume is not refused
    let o = run(&[
        "train",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}
