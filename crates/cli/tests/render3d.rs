//! `chainrule render SCENE.ply --orbit N`: files written, images that show
//! the scene, and malformed scenes that exit with code 2 naming the file and
//! the property.

use std::path::PathBuf;
use std::process::Command;

use chainrule_cli::render3d::{orbit_cameras, run_ply, OrbitOptions};
use splat::three::ply::to_ply_bytes;
use splat::three::scene::{random_scene, RandomScene};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-r3d-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scene_file(dir: &std::path::Path) -> PathBuf {
    let g = random_scene::<f32>(&RandomScene {
        n: 300,
        sh_degree: 3,
        extent: 1.0,
        log_scale_min: -3.5,
        log_scale_max: -2.5,
        seed: 3,
    });
    let p = dir.join("scene.ply");
    std::fs::write(&p, to_ply_bytes(&g)).unwrap();
    p
}

#[test]
fn orbit_writes_pngs_and_gif_showing_the_scene() {
    let dir = tmp("orbit");
    let ply = scene_file(&dir);
    let out = dir.join("views");
    let o = OrbitOptions {
        views: 3,
        width: 48,
        height: 32,
        ..Default::default()
    };
    let written = run_ply(&ply, &out, &o).unwrap();
    assert_eq!(written.len(), 4);
    for (i, p) in written[..3].iter().enumerate() {
        assert_eq!(p, &out.join(format!("view_{i:03}.png")));
        let img = image::open(p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (48, 32));
        // the scene fills part of the view, not none and not all of it
        let lit = img.pixels().filter(|p| p.0.iter().any(|&c| c > 10)).count();
        assert!(lit > 48 * 32 / 10 && lit < 48 * 32, "lit pixels {lit}");
    }
    let gif = std::fs::read(&written[3]).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    // the views differ: the cameras move around the scene
    let a = image::open(&written[0]).unwrap().to_rgb8();
    let b = image::open(&written[1]).unwrap().to_rgb8();
    assert_ne!(a.as_raw(), b.as_raw());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn orbit_cameras_circle_the_centre() {
    let g = random_scene::<f32>(&RandomScene {
        n: 50,
        ..Default::default()
    });
    let cams = orbit_cameras(&g, &OrbitOptions::default()).unwrap();
    assert_eq!(cams.len(), 36);
    let d: Vec<f64> = cams
        .iter()
        .map(|c| c.center().iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    // all at one distance (the centre is near the origin for this scene)
    let (lo, hi) = d
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(hi - lo < 0.2 * hi, "{lo}..{hi}");
}

#[test]
fn an_orbit_starts_on_the_side_it_is_given() {
    let g = random_scene::<f32>(&RandomScene {
        n: 50,
        ..Default::default()
    });
    let o = OrbitOptions {
        center: Some([0.0; 3]),
        views: 4,
        ..Default::default()
    };
    // toward -y (with a part along up, which does not count), and the
    // default start for comparison
    for (start, want) in [
        (Some([0.0, -2.0, 3.0]), [0.0, -1.0]),
        (Some([0.0, 0.0, 1.0]), [1.0, 0.0]),
        (None, [1.0, 0.0]),
    ] {
        let cams = orbit_cameras(&g, &OrbitOptions { start, ..o.clone() }).unwrap();
        let c = cams[0].center();
        let n = c[0].hypot(c[1]);
        assert!(
            (c[0] / n - want[0]).abs() < 1e-9 && (c[1] / n - want[1]).abs() < 1e-9,
            "{start:?}: {c:?}"
        );
    }
}

#[test]
fn malformed_scene_exits_2_naming_file_and_property() {
    let dir = tmp("bad");
    let ply = scene_file(&dir);
    let bytes = std::fs::read(&ply).unwrap();
    let bad_path = dir.join("bad.ply");
    // rename the `opacity` property in the header
    let pos = bytes
        .windows(16)
        .position(|w| w == b"property float o")
        .unwrap();
    let mut bad = bytes.clone();
    bad[pos + 15] = b'q';
    std::fs::write(&bad_path, &bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["render"])
        .arg(&bad_path)
        .args(["--orbit", "2", "--size", "16x16", "--out"])
        .arg(dir.join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.ply") && err.contains("`opacity`"),
        "{err}"
    );
    // truncated file
    std::fs::write(&bad_path, &bytes[..bytes.len() - 7]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("render")
        .arg(&bad_path)
        .args(["--orbit", "2", "--out"])
        .arg(dir.join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.ply") && err.contains("`vertex`"), "{err}");
    // missing --orbit, bad --size
    for args in [
        vec!["--size", "16x16"],
        vec!["--orbit", "2", "--size", "16by16"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("render")
            .arg(&ply)
            .args(&args)
            .arg("--out")
            .arg(dir.join("o"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `chainrule render ARGS --json`: the exit code and the one JSON object
/// on stdout.
fn render_json(args: &[&std::ffi::OsStr]) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("render")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// The names of the files in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A shorter orbit into the folder of a longer one removes that one's
/// frames beyond its count (they would pass for its own, to a glob or
/// `ffmpeg -i view_%03d.png`), and nothing else: a user's files, even one
/// named like a frame, stay.
#[test]
fn a_shorter_orbit_removes_the_earlier_frames_beyond_its_count() {
    let dir = tmp("again");
    let ply = scene_file(&dir);
    let out = dir.join("views");
    let orbit = |n: &str, size: &str| {
        let args = ["--orbit", n, "--size", size, "--out"].map(std::ffi::OsStr::new);
        let (code, v) = render_json(&[&[ply.as_os_str()], &args[..], &[out.as_os_str()]].concat());
        assert_eq!(code, Some(0), "{v}");
        v
    };
    orbit("4", "24x16");
    // the user's own files beside the frames
    for f in ["notes.txt", "view_1000.png", "view_x.png", "path_000.png"] {
        std::fs::write(out.join(f), "mine").unwrap();
    }
    let v = orbit("2", "12x8");
    assert_eq!(v["report"], out.join("orbit.json").to_str().unwrap());
    assert_eq!(
        names_in(&out),
        [
            "notes.txt",
            "orbit.gif",
            "orbit.json",
            "path_000.png",
            "view_000.png",
            "view_001.png",
            "view_1000.png",
            "view_x.png"
        ]
    );
    for f in ["view_000.png", "view_001.png"] {
        assert_eq!(image::image_dimensions(out.join(f)).unwrap(), (12, 8));
    }
    // the folder's report lists what this render wrote, as --json said
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("orbit.json")).unwrap()).unwrap();
    assert_eq!(kept, v);
    // and a longer one again over them
    orbit("3", "12x8");
    assert!(out.join("view_002.png").is_file());
    assert_eq!(std::fs::read(out.join("view_1000.png")).unwrap(), b"mine");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An orbit refuses, as `render --data` does, to replace a file that no
/// earlier render wrote (a user's `view_000.png`, `orbit.gif` or
/// `orbit.json`), naming it, and writes nothing then.
#[test]
fn an_orbit_never_replaces_a_file_no_render_wrote() {
    let dir = tmp("mine");
    let ply = scene_file(&dir);
    let out = dir.join("mine");
    std::fs::create_dir_all(&out).unwrap();
    let a = ["--orbit", "2", "--size", "12x8", "--out"].map(std::ffi::OsStr::new);
    let args = [&[ply.as_os_str()], &a[..], &[out.as_os_str()]].concat();
    for f in ["view_001.png", "orbit.gif", "orbit.json"] {
        let file = out.join(f);
        std::fs::write(&file, "mine").unwrap();
        let (code, v) = render_json(&args);
        assert_eq!(code, Some(2), "{f}: {v}");
        assert_eq!(v["path"], file.to_str().unwrap(), "{v}");
        assert!(v["error"].as_str().unwrap().contains("--out"), "{v}");
        assert_eq!(names_in(&out), [f], "nothing written beside it");
        assert_eq!(std::fs::read(&file).unwrap(), b"mine");
        std::fs::remove_file(&file).unwrap();
    }
    // its own files, again: replaced
    for _ in 0..2 {
        assert_eq!(render_json(&args).0, Some(0));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--elevation` is checked as a flag: ±90 (the camera above the centre
/// along the up vector, which leaves it no direction), NaN or beyond is a
/// usage error naming the flag and the value, not an error blamed on the
/// scene file; so is an orbit that cannot be placed for other numbers.
#[test]
fn an_elevation_of_90_or_beyond_is_a_usage_error() {
    let dir = tmp("elevation");
    let ply = scene_file(&dir);
    let out = dir.join("o");
    for e in ["90", "-90", "nan", "inf", "200", "-90.5"] {
        let a =
            ["--orbit", "1", "--size", "8x8", "--elevation", e, "--out"].map(std::ffi::OsStr::new);
        let (code, v) = render_json(&[&[ply.as_os_str()], &a[..], &[out.as_os_str()]].concat());
        assert_eq!(code, Some(2), "{e}: {v}");
        assert!(v["path"].is_null(), "{e}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains(&format!("--elevation {}", e.parse::<f64>().unwrap())),
            "{msg}"
        );
        assert!(msg.contains("between -90 and 90"), "{msg}");
    }
    // within a hair of 90, or a radius too large to compute with: said so,
    // not blamed on the scene
    for flags in [["--elevation", "89.99999999999999"], ["--radius", "1e200"]] {
        let a = ["--orbit", "1", "--size", "8x8", "--out"].map(std::ffi::OsStr::new);
        let flags = flags.map(std::ffi::OsStr::new);
        let (code, v) =
            render_json(&[&[ply.as_os_str()], &flags[..], &a[..], &[out.as_os_str()]].concat());
        assert_eq!(code, Some(2), "{flags:?}: {v}");
        assert!(v["path"].is_null(), "{v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains("--elevation") && msg.contains("--radius"),
            "{msg}"
        );
    }
    for e in ["89", "-89.9", "0"] {
        let a =
            ["--orbit", "1", "--size", "8x8", "--elevation", e, "--out"].map(std::ffi::OsStr::new);
        let (code, v) = render_json(&[&[ply.as_os_str()], &a[..], &[out.as_os_str()]].concat());
        assert_eq!(code, Some(0), "{e}: {v}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
