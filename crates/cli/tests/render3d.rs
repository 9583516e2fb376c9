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
