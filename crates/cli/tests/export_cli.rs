//! `chainrule export`: every format from every scene input, the result
//! readable again, and bad inputs exit 2 naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use splat::formats::read_scene;
use splat::three::ply::to_ply_bytes;
use splat::three::scene::{random_scene, RandomScene};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn export(input: &Path, format: &str, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("export")
        .arg(input)
        .args(["--format", format, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// `chainrule view SCENE --export-format FORMAT --export SITE`, which must
/// succeed.
fn view_export(scene: &Path, format: &str, site: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("view")
        .arg(scene)
        .args(["--export-format", format, "--export"])
        .arg(site)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn export_converts_between_every_format() {
    let dir = tmp("all");
    let g = random_scene::<f32>(&RandomScene {
        n: 50,
        sh_degree: 2,
        ..Default::default()
    });
    // a train output folder holds point_cloud.ply
    std::fs::write(dir.join("point_cloud.ply"), to_ply_bytes(&g)).unwrap();
    let spz = dir.join("a.spz");
    let o = export(&dir, "spz", &spz);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("50 Gaussians"));
    let back = read_scene(&spz).unwrap();
    assert_eq!((back.len(), back.sh_degree), (50, 2));
    for (from, format, to) in [
        (&spz, "ply", dir.join("b.ply")),
        (&spz, "splat", dir.join("c.splat")),
        (&dir.join("c.splat"), "spz", dir.join("d.spz")),
        (&spz, "compressed-ply", dir.join("e.compressed.ply")),
        (&dir.join("e.compressed.ply"), "ply", dir.join("f.ply")),
        (&spz, "sog", dir.join("g.sog")),
        (
            &dir.join("g.sog"),
            "compressed-ply",
            dir.join("h.compressed.ply"),
        ),
    ] {
        let o = export(from, format, &to);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(read_scene(&to).unwrap().len(), 50);
    }
    for (a, b) in back.means.iter().zip(&g.means) {
        for c in 0..3 {
            assert!((a[c] - b[c]).abs() < 2e-4);
        }
    }
    // `render` takes every format too: the .spz's, the compressed PLY's
    // and the .sog's views are the PLY's up to their quantisation
    let view = |scene: &Path, out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("render")
            .arg(scene)
            .args(["--orbit", "1", "--size", "64x48", "--background", "white"])
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        image::open(dir.join(out).join("view_000.png"))
            .unwrap()
            .to_rgb8()
    };
    let ply = view(&dir.join("point_cloud.ply"), "v-ply");
    for (scene, name) in [
        (&spz, "spz"),
        (&dir.join("e.compressed.ply"), "compressed-ply"),
        (&dir.join("g.sog"), "sog"),
    ] {
        let got = view(scene, &format!("v-{name}"));
        let mse = ply
            .as_raw()
            .iter()
            .zip(got.as_raw())
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / ply.as_raw().len() as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10();
        println!("render of the {name} against the PLY's: {psnr:.2} dB");
        assert!(
            psnr > 30.0,
            "render of the {name}: {psnr:.2} dB against the PLY's"
        );
    }
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let dir = tmp("bad");
    let bad = dir.join("broken.spz");
    std::fs::write(&bad, b"\x1f\x8bnot really gzip").unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let other = dir.join("scene.obj");
    std::fs::write(&other, b"v 0 0 0").unwrap();
    // (an empty .splat reads as a scene of no Gaussians, which export
    // refuses as view and render do)
    let nothing = dir.join("zero.splat");
    std::fs::write(&nothing, b"").unwrap();
    // a train folder whose settings cannot be read: refused, as render
    // and view refuse it, not exported without its framing
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let g = random_scene::<f32>(&RandomScene {
        n: 5,
        ..Default::default()
    });
    std::fs::write(run.join("point_cloud.ply"), to_ply_bytes(&g)).unwrap();
    let broken = br#"{"format": "chainrule-render-settings", "version": 1, "background": "pink"}"#;
    std::fs::write(run.join("settings.json"), broken).unwrap();
    let o = export(&run, "splat", &dir.join("run.splat"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("settings.json"));
    assert!(!dir.join("run.splat").exists());
    for input in [&bad, &empty, &other, &dir.join("missing.ply"), &nothing] {
        let o = export(input, "splat", &dir.join("out.splat"));
        assert_eq!(o.status.code(), Some(2), "{input:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&*input.file_name().unwrap().to_string_lossy()),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!dir.join("out.splat").exists());
    // a missing input says so
    let o = export(&dir.join("nowhere"), "spz", &dir.join("out.spz"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file"));
    // an --out whose name says another format, the input itself, or a
    // train folder's own scene: refused, nothing written
    let g = random_scene::<f32>(&RandomScene {
        n: 5,
        ..Default::default()
    });
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let ply = run.join("point_cloud.ply");
    std::fs::write(&ply, to_ply_bytes(&g)).unwrap();
    std::fs::write(run.join("settings.json"), "{}").unwrap();
    let before = std::fs::read(&ply).unwrap();
    for (format, out, want) in [
        ("spz", dir.join("scene.ply"), "writes a .spz file"),
        (
            "compressed-ply",
            dir.join("scene.ply"),
            "writes a .compressed.ply file",
        ),
        ("ply", ply.clone(), "the scene being exported"),
    ] {
        let o = export(&run, format, &out);
        assert_eq!(o.status.code(), Some(2), "{format} {out:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    }
    let other = dir.join("other.ply");
    std::fs::write(&other, to_ply_bytes(&g)).unwrap();
    let o = export(&other, "ply", &ply);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("train"),
        "{o:?}"
    );
    assert_eq!(std::fs::read(&ply).unwrap(), before);
    assert!(!dir.join("scene.ply").exists());
    // nor the folder's scene in another format (`train --export`'s), nor a
    // file in one of its checkpoints, which a resume reads whole
    let ckpt = run.join("checkpoints/ckpt-00000300");
    std::fs::create_dir_all(&ckpt).unwrap();
    std::fs::write(ckpt.join("state.bin"), b"state").unwrap();
    std::fs::write(ckpt.join("point_cloud.ply"), &before).unwrap();
    for (format, out, want) in [
        ("sog", run.join("point_cloud.sog"), "train"),
        (
            "compressed-ply",
            run.join("point_cloud.compressed.ply"),
            "train",
        ),
        ("ply", ckpt.join("point_cloud.ply"), "checkpoint"),
        ("spz", ckpt.join("other.spz"), "checkpoint"),
    ] {
        let o = export(&other, format, &out);
        assert_eq!(o.status.code(), Some(2), "{format} {out:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(std::fs::read(ckpt.join("point_cloud.ply")).unwrap(), before);
    assert!(!ckpt.join("other.spz").exists() && !run.join("point_cloud.sog").exists());
    // a scene named point_cloud.spz elsewhere is anyone's to write
    let o = export(&other, "spz", &dir.join("point_cloud.spz"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // and a missing folder of --out is made
    let o = export(&other, "spz", &dir.join("new/deeper/s.spz"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A scene file that declares itself antialiased (Brush's PLY comment, as
/// `train --antialiased` writes it) renders as `--antialiased` renders it
/// when no training settings are beside it, and `export` and `view
/// --export` keep the declaration in every format that can hold it.
#[test]
fn the_antialiased_mode_of_a_scene_file_is_kept() {
    use splat::formats::{declared_antialiased_in, encode_scene_as, SceneFormat};
    let dir = tmp("mode");
    let g = random_scene::<f32>(&RandomScene {
        n: 200,
        sh_degree: 1,
        ..Default::default()
    });
    let mip = dir.join("mip.ply");
    std::fs::write(&mip, encode_scene_as(&g, SceneFormat::Ply, true).unwrap()).unwrap();
    let plain = dir.join("plain.ply");
    std::fs::write(&plain, to_ply_bytes(&g)).unwrap();
    let render = |scene: &Path, out: &str, flag: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chainrule"));
        c.arg("render")
            .arg(scene)
            .args(["--orbit", "1", "--size", "64x48", "--out"])
            .arg(dir.join(out));
        if flag {
            c.arg("--antialiased");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(dir.join(out).join("view_000.png")).unwrap()
    };
    let with_flag = render(&plain, "flag", true);
    assert_eq!(render(&mip, "mip", false), with_flag);
    assert_ne!(render(&plain, "plain", false), with_flag);
    for (format, file) in [
        ("spz", "m.spz"),
        ("compressed-ply", "m.compressed.ply"),
        ("sog", "m.sog"),
        ("ply", "m.ply"),
    ] {
        let out = dir.join(file);
        let o = export(&mip, format, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(declared_antialiased_in(&out), Some(true), "{format}");
        let o = export(&plain, format, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_ne!(declared_antialiased_in(&out), Some(true), "{format}");
    }
    let site = dir.join("site");
    view_export(&mip, "compressed-ply", &site);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("info.json")).unwrap()).unwrap();
    assert_eq!(info["antialiased"], serde_json::json!(true));
    assert_eq!(
        declared_antialiased_in(&site.join("model.compressed.ply")),
        Some(true)
    );
    // a site whose model is a .sog reads as a scene too (and says it)
    let site = dir.join("site-sog");
    view_export(&mip, "sog", &site);
    let out = dir.join("from-sog-site.ply");
    let o = export(&site, "ply", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(declared_antialiased_in(&out), Some(true));
    // a site whose model cannot say it (.splat): its page's info.json does
    let site = dir.join("site-splat");
    view_export(&mip, "splat", &site);
    let out = dir.join("from-site.ply");
    assert!(export(&site, "ply", &out).status.success());
    assert_eq!(declared_antialiased_in(&out), Some(true));
    // an original 3DGS model folder: its made-up settings do not hide the
    // file's declaration
    let model = dir.join("model");
    let it = model.join("point_cloud/iteration_100");
    std::fs::create_dir_all(&it).unwrap();
    std::fs::copy(&mip, it.join("point_cloud.ply")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original_3dgs/cameras.json"),
        model.join("cameras.json"),
    )
    .unwrap();
    assert!(export(&model, "ply", &out).status.success());
    assert_eq!(declared_antialiased_in(&out), Some(true));
    // and a site exported from it: its settings.json carries the mode
    let site = dir.join("site-model");
    view_export(&model, "spz", &site);
    assert!(export(&site, "ply", &out).status.success());
    assert_eq!(declared_antialiased_in(&out), Some(true));
    // someone else's settings.json beside the scene: a warning, not an error
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::copy(&mip, foreign.join("s.ply")).unwrap();
    std::fs::write(foreign.join("settings.json"), r#"{"theme": "dark"}"#).unwrap();
    let o = export(&foreign.join("s.ply"), "spz", &foreign.join("s.spz"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning"));
    assert_eq!(declared_antialiased_in(&foreign.join("s.spz")), Some(true));
}

/// A PLY exported from a `train` folder carries the training's framing
/// and background in its header, so that the file alone renders as the
/// folder does; formats with no room for it say so in `--json`, and a
/// malformed carried comment is a warning, not an error.
#[test]
fn a_ply_shared_alone_keeps_its_training_framing() {
    let dir = tmp("framing");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let g = random_scene::<f32>(&RandomScene {
        n: 300,
        sh_degree: 1,
        ..Default::default()
    });
    std::fs::write(run.join("point_cloud.ply"), to_ply_bytes(&g)).unwrap();
    // a capture's framing: tilted up, off-centre, grey background
    let settings = serde_json::json!({
        "format": "chainrule-render-settings", "version": 1,
        "background": [0.3, 0.3, 0.3], "sh_degree": 1, "antialiased": false,
        "dataset_kind": "colmap", "dataset": dir.join("no-such-capture"),
        "up": [0.0, -0.94, -0.34], "center": [0.2, 0.1, -0.3],
        "radius": 3.0, "elevation_deg": 20.0,
    });
    std::fs::write(run.join("settings.json"), settings.to_string()).unwrap();
    let render = |scene: &Path, out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("render")
            .arg(scene)
            .args(["--orbit", "1", "--size", "64x48", "--out"])
            .arg(dir.join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            std::fs::read(dir.join(out).join("view_000.png")).unwrap(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (framed, _) = render(&run, "folder");
    let bare = dir.join("bare.ply");
    std::fs::copy(run.join("point_cloud.ply"), &bare).unwrap();
    assert_ne!(
        render(&bare, "bare").0,
        framed,
        "the framing changes the render"
    );
    for (format, file, carried) in [
        ("ply", "alone.ply", true),
        ("compressed-ply", "alone.compressed.ply", true),
        ("spz", "alone.spz", false),
    ] {
        let out = dir.join("shared").join(file);
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("export")
            .arg(&run)
            .args(["--format", format, "--json", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["framed"], serde_json::json!(carried), "{format}");
        if format == "ply" {
            assert_eq!(render(&out, "alone").0, framed);
            // the shared file does not name the machine's dataset folder
            let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).to_string();
            assert!(!text.contains("no-such-capture"));
            // and it travels on through another export
            let again = dir.join("again.ply");
            assert!(export(&out, "ply", &again).status.success());
            assert_eq!(render(&again, "again").0, framed);
            // a site made of it starts the page where the orbit starts
            // (about the saved centre, not the splats' middle), and its
            // model carries the settings too
            let site = dir.join("site");
            view_export(&out, "ply", &site);
            let info: serde_json::Value =
                serde_json::from_slice(&std::fs::read(site.join("info.json")).unwrap()).unwrap();
            assert_eq!(
                info["center"],
                serde_json::json!([0.2, 0.1, -0.3]),
                "{info}"
            );
            let home = &info["home"]["t"];
            let t: Vec<f64> = (0..3).map(|k| home[k].as_f64().unwrap()).collect();
            // (the camera is `radius` from the centre: |R c + t| = 3)
            let r = &info["home"]["R"];
            let c = [0.2, 0.1, -0.3];
            let d: f64 = (0..3)
                .map(|i| {
                    let rc: f64 = (0..3).map(|j| r[i][j].as_f64().unwrap() * c[j]).sum();
                    (rc + t[i]).powi(2)
                })
                .sum::<f64>()
                .sqrt();
            assert!((d - 3.0).abs() < 1e-3, "{d}");
            let comments = splat::formats::ply_comments_in(&site.join("model.ply")).unwrap();
            assert!(
                comments
                    .iter()
                    .any(|c| c.starts_with("chainrule-render-settings")),
                "{comments:?}"
            );
        }
    }
    // a carried comment that cannot be read: drawn unframed, with a warning
    let broken = dir.join("broken.ply");
    let bytes = splat::formats::with_ply_comment(
        to_ply_bytes(&g),
        r#"chainrule-render-settings {"format": "chainrule-render-settings", "version": 2"#,
    )
    .unwrap();
    std::fs::write(&broken, bytes).unwrap();
    let (img, stderr) = render(&broken, "broken");
    assert_eq!(img, render(&bare, "bare2").0);
    assert!(
        stderr.contains("warning") && stderr.contains("broken.ply"),
        "{stderr}"
    );
    // and one with nothing after its keyword, the same
    let empty = dir.join("empty.ply");
    let bytes =
        splat::formats::with_ply_comment(to_ply_bytes(&g), "chainrule-render-settings").unwrap();
    std::fs::write(&empty, bytes).unwrap();
    let (img, stderr) = render(&empty, "empty");
    assert_eq!(img, render(&bare, "bare3").0);
    assert!(
        stderr.contains("warning") && stderr.contains("holds no settings"),
        "{stderr}"
    );
}

/// A PlayCanvas `.sog` (splat-transform's, from the splat crate's
/// fixtures) exports to every writable format and renders, keeping the
/// antialiased mode its `meta.json` declares, and writes one back.
#[test]
fn a_sog_file_exports_and_renders() {
    use splat::formats::declared_antialiased_in;
    let dir = tmp("sog");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../splat/tests/fixtures/sog");
    for (name, mode) in [("room_sh3.sog", None), ("room_sh1_mip.sog", Some(true))] {
        let sog = fixtures.join(name);
        for (format, file) in [("ply", "a.ply"), ("compressed-ply", "a.compressed.ply")] {
            let out = dir.join(file);
            let o = export(&sog, format, &out);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(read_scene(&out).unwrap().len(), 120);
            assert_eq!(declared_antialiased_in(&out), mode, "{name} as {format}");
        }
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("render")
            .arg(&sog)
            .args(["--orbit", "1", "--size", "32x24", "--out"])
            .arg(dir.join("r"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // and back to a .sog: the same Gaussians (in the same Morton order)
    // within the quantisation
    let back = dir.join("b.sog");
    let o = export(&fixtures.join("room_sh3.sog"), "sog", &back);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (
        read_scene(&fixtures.join("room_sh3.sog")).unwrap(),
        read_scene(&back).unwrap(),
    );
    assert_eq!((b.len(), b.sh_degree), (120, 3));
    for (p, q) in a.means.iter().zip(&b.means) {
        for c in 0..3 {
            assert!((p[c] - q[c]).abs() < 1e-3, "{p:?} against {q:?}");
        }
    }
}

/// An unbundled SOG (`meta.json` and its images loose in a folder, as
/// splat-transform writes one for a `meta.json` name): `export --format
/// sog --out DIR/meta.json` writes one, holding the `.sog`'s Gaussians,
/// and `export`, `render` and `view` read it by its `meta.json` or by its
/// folder. Writing one again replaces it whole.
#[test]
fn an_unbundled_sog_is_written_and_read() {
    let dir = tmp("sog-unbundled");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../splat/tests/fixtures/sog");
    let mip = fixtures.join("room_sh1_mip.sog");
    let bundled = dir.join("b.sog");
    assert!(export(&mip, "sog", &bundled).status.success());
    let folder = dir.join("loose");
    let meta = folder.join("meta.json");
    for _ in 0..2 {
        let o = export(&mip, "sog", &meta);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "means_l.webp"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    assert_eq!(read_scene(&meta).unwrap(), read_scene(&bundled).unwrap());
    assert_eq!(
        splat::formats::declared_antialiased_in(&meta),
        Some(true),
        "the drawing mode goes with it"
    );
    for input in [&meta, &folder] {
        let out = dir.join("back.ply");
        let o = export(input, "ply", &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(read_scene(&out).unwrap(), read_scene(&bundled).unwrap());
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("render")
            .arg(input)
            .args(["--orbit", "1", "--size", "32x24", "--out"])
            .arg(dir.join("r"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        view_export(input, "ply", &dir.join("site"));
    }
    // the scene being exported is not overwritten by its own export
    let o = export(&meta, "sog", &meta);
    assert_eq!(o.status.code(), Some(2));
    // an earlier meta.json naming its images `./NAME` (as PlayCanvas
    // resolves them) is the same files: writing again keeps them
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("\"means_l.webp", "\"./means_l.webp")).unwrap();
    assert!(std::fs::read_to_string(&meta)
        .unwrap()
        .contains("./means_l.webp"));
    assert!(export(&mip, "sog", &meta).status.success());
    assert_eq!(read_scene(&meta).unwrap(), read_scene(&bundled).unwrap());
    // a scene without higher SH bands replaces it whole: the earlier
    // palette images go
    let flat = dir.join("flat.ply");
    let g = random_scene::<f32>(&RandomScene {
        n: 50,
        sh_degree: 0,
        ..Default::default()
    });
    std::fs::write(&flat, to_ply_bytes(&g)).unwrap();
    assert!(folder.join("shN_labels.webp").is_file());
    let o = export(&flat, "sog", &meta);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!folder.join("shN_labels.webp").is_file());
    assert!(!folder.join("shN_centroids.webp").is_file());
    assert_eq!(read_scene(&meta).unwrap().len(), 50);
    // another SOG's folder is not written into (the images' names are
    // fixed), and the messages say how to name an unbundled SOG
    let o = export(&flat, "sog", &folder.join("second.meta.json"));
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("another unbundled SOG"), "{e}");
    let o = export(&flat, "sog", &dir.join("x.json"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("DIR/meta.json"), "{e}");
    let o = export(&flat, "ply", &dir.join("q/meta.json"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("a meta.json name is read as an unbundled SOG"),
        "{e}"
    );
    // a folder with another tool's meta.json is not a scene, and a 2D
    // fit named meta.json is still a 2D fit
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("meta.json"), br#"{"name": "x"}"#).unwrap();
    let o = export(&foreign, "ply", &dir.join("f.ply"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("a folder must be"), "{e}");
}

/// `export --json` and `view --export --json` print one JSON object that
/// describes what they wrote: sizes as on disk, the SH degree as written.
#[test]
fn export_and_site_report_in_json() {
    let dir = tmp("json");
    let g = random_scene::<f32>(&RandomScene {
        n: 40,
        sh_degree: 1,
        ..Default::default()
    });
    let ply = dir.join("in.ply");
    std::fs::write(&ply, to_ply_bytes(&g)).unwrap();
    let json = |args: &[&std::ffi::OsStr]| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(&text).unwrap()
    };
    for (format, file, sh) in [("spz", "a.spz", 1), ("splat", "a.splat", 0)] {
        let out = dir.join(file);
        let v = json(&[
            "export".as_ref(),
            ply.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(v["format"], format, "{v}");
        assert_eq!(v["out"], out.to_str().unwrap(), "{v}");
        assert_eq!(
            (v["gaussians"].as_u64(), v["sh_degree"].as_u64()),
            (Some(40), Some(sh))
        );
        assert_eq!(
            v["bytes"].as_u64(),
            Some(std::fs::metadata(&out).unwrap().len())
        );
        assert_eq!(
            v["input_bytes"].as_u64(),
            Some(std::fs::metadata(&ply).unwrap().len())
        );
        assert_eq!(v["antialiased"], false);
    }
    // an --out refused is the error's "path"
    for (format, out) in [("spz", dir.join("b.ply")), ("ply", ply.clone())] {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["export".as_ref(), ply.as_os_str(), "--format".as_ref()])
            .arg(format)
            .arg("--out")
            .arg(&out)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["path"], out.to_str().unwrap(), "{v}");
    }
    let site = dir.join("site");
    let v = json(&[
        "view".as_ref(),
        ply.as_os_str(),
        "--export-format".as_ref(),
        "spz".as_ref(),
        "--export".as_ref(),
        site.as_os_str(),
    ]);
    assert_eq!(v["site"], site.to_str().unwrap(), "{v}");
    assert_eq!(v["model"], site.join("model.spz").to_str().unwrap(), "{v}");
    let on_disk: u64 = walk(&site)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(v["bytes"].as_u64(), Some(on_disk), "{v}");
    assert_eq!(v["files"].as_u64(), Some(walk(&site).len() as u64), "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_ply_with_undrawable_gaussians_is_read_without_them() {
    // a diverged run's PLY: two of its Gaussians hold a NaN
    let dir = tmp("nan");
    let mut g = random_scene::<f32>(&RandomScene {
        n: 20,
        ..Default::default()
    });
    g.means[3][2] = f32::NAN;
    g.opacity_logits[11] = f32::NAN;
    let ply = dir.join("diverged.ply");
    std::fs::write(&ply, to_ply_bytes(&g)).unwrap();
    let out = dir.join("clean.spz");
    let o = export(&ply, "spz", &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("left out 2 of 20") && err.contains("vertex 3"),
        "{err}"
    );
    assert_eq!(read_scene(&out).unwrap().len(), 18);
    // and it renders, the warning in the --json report too (a program
    // reading stdout alone learns of it)
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("render")
        .arg(&ply)
        .args(["--orbit", "1", "--size", "16x16", "--json", "--out"])
        .arg(dir.join("orbit"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.len() == 1 && warnings[0].as_str().unwrap().contains("left out 2 of 20"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_splat_file_with_undrawable_records_is_read_without_them() {
    // antimatter15's records from a diverged run: a NaN position, a zero
    // scale
    let dir = tmp("nan-splat");
    let mut g = random_scene::<f32>(&RandomScene {
        n: 20,
        ..Default::default()
    });
    g.means[3][0] = f32::NAN;
    g.log_scales[7][1] = f32::NEG_INFINITY;
    let file = dir.join("diverged.splat");
    std::fs::write(&file, splat::formats::splat_file::to_bytes(&g)).unwrap();
    let out = dir.join("clean.ply");
    let o = export(&file, "ply", &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("left out 2 of 20") && err.contains("record 3"),
        "{err}"
    );
    assert_eq!(read_scene(&out).unwrap().len(), 18);
    // every record undrawable: still refused, naming the first
    let mut bad = g.clone();
    for m in bad.means.iter_mut() {
        m[1] = f32::INFINITY;
    }
    std::fs::write(&file, splat::formats::splat_file::to_bytes(&bad)).unwrap();
    let o = export(&file, "ply", &dir.join("none.ply"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("record 0") && err.contains("not finite"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
