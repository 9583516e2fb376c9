//! A COLMAP capture end to end: `train` on the committed COLMAP 4 fixture
//! (SIMPLE_RADIAL, undistorted at load) writes `settings.json` and test
//! renders named after their photos; `render` of the output folder then
//! needs no flags: the orbit circles the cameras' focus about their mean
//! up, `--path` flies along the cameras, `--data` scores on black.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-capture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .expect("binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// [`run`]'s stdout as JSON (a command given `--json`).
fn run_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&run(args).stdout).expect("one JSON object on stdout")
}

fn fixture() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../splat/tests/fixtures/colmap_room"
    )
}

/// `d/out`: ten iterations of `train` on the fixture, SH degree 1.
fn trained(d: &std::path::Path) -> PathBuf {
    let out = d.join("out");
    let o = out.to_str().unwrap();
    run(&[
        "train",
        fixture(),
        "--out",
        o,
        "--iters",
        "10",
        "--sh-degree",
        "1",
        "--json",
    ]);
    out
}

#[test]
fn a_trained_capture_renders_with_its_saved_settings() {
    let d = tmp("room");
    let out = trained(&d);
    let o = out.to_str().unwrap();
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("settings.json")).unwrap()).unwrap();
    assert_eq!(st["dataset_kind"], "colmap");
    assert_eq!(st["background"], serde_json::json!([0.0, 0.0, 0.0]));
    // holdout every 8th of 12 sorted photos: IMG_0000 and IMG_0008
    for name in ["IMG_0000.png", "IMG_0008.png"] {
        assert!(out.join("renders").join(name).is_file(), "{name}");
    }
    // the focus is inside the room, in front of the cameras (truth: the
    // cameras look at points near (0, 0, 0.55) from 1.2-1.5 away, in
    // COLMAP's own frame and scale, so only check the geometry holds up)
    let radius = st["radius"].as_f64().unwrap();
    assert!(radius > 0.0);
    let views = out.join("orbit");
    let report = run(&[
        "render",
        o,
        "--orbit",
        "3",
        "--size",
        "32x24",
        "--out",
        views.to_str().unwrap(),
        "--json",
    ]);
    // --json: one object naming every file written
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        (&report["kind"], &report["frames"]),
        (&"orbit".into(), &3.into())
    );
    for i in 0..3 {
        let file = views.join(format!("view_{i:03}.png"));
        assert!(file.is_file());
        assert_eq!(report["files"][i], file.to_str().unwrap());
    }
    assert_eq!(report["gif"], views.join("orbit.gif").to_str().unwrap());
    let path = out.join("path");
    run(&["render", o, "--path", "4", "--out", path.to_str().unwrap()]);
    for i in 0..4 {
        let img = image::open(path.join(format!("path_{i:03}.png"))).unwrap();
        // the path renders at the cameras' own (undistorted) size
        assert!(img.width() <= 160 && img.height() <= 120 && img.width() > 100);
    }
    assert!(std::fs::read(path.join("path.gif"))
        .unwrap()
        .starts_with(b"GIF89a"));
    // --data from the folder: black background without being told, the
    // same PSNR training reported; scored on a copy of the capture whose
    // first test photo has a mask ignoring its left quarter
    let masked = d.join("masked");
    copy_dir(std::path::Path::new(fixture()), &masked);
    std::fs::create_dir_all(masked.join("masks")).unwrap();
    for e in std::fs::read_dir(masked.join("images")).unwrap() {
        let photo = e.unwrap().path();
        let (w, h) = image::image_dimensions(&photo).unwrap();
        let first = photo.ends_with("IMG_0000.jpg");
        let keep = |x: u32| u8::from(!first || x >= w / 4) * 255;
        let mask = image::GrayImage::from_fn(w, h, |x, _| image::Luma([keep(x)]));
        let stem = photo.file_stem().unwrap().to_str().unwrap();
        mask.save(masked.join(format!("masks/{stem}.png"))).unwrap();
    }
    let rd = out.join("rd");
    let r = run_json(&[
        "render",
        o,
        "--data",
        masked.to_str().unwrap(),
        "--out",
        rd.to_str().unwrap(),
        "--json",
        "--compare",
    ]);
    assert_eq!(r["views"], 2);
    assert!(rd.join("IMG_0000.png").is_file());
    assert_eq!(r["compare"], rd.join("compare").to_str().unwrap());
    check_compare(&masked, &rd, "IMG_0000.png");
    // the report is kept in the folder, and the next render into it (the
    // training split) removes the earlier renders it does not write again,
    // and nothing else
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rd.join("scores.json")).unwrap()).unwrap();
    assert_eq!(kept["per_view"], r["per_view"]);
    std::fs::write(rd.join("my_notes.png"), b"mine").unwrap();
    let t = run_json(&[
        "render",
        o,
        "--data",
        masked.to_str().unwrap(),
        "--split",
        "train",
        "--out",
        rd.to_str().unwrap(),
        "--json",
    ]);
    let pngs = |dir: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".png"))
            .collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = t["per_view"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let p = std::path::Path::new(v["render"].as_str().unwrap());
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .chain(["my_notes.png".to_string()])
        .collect();
    want.sort();
    assert!(!want.iter().any(|n| n == "IMG_0000.png"), "{want:?}");
    assert_eq!(pngs(&rd), want);
    // the flags about photos need photos
    for flag in [
        &["--compare"][..],
        &["--split", "train"],
        &["--invert-masks"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["render", o, "--orbit", "2", "--out"])
            .arg(out.join("no-photos"))
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("--data") && e.contains(flag[0]), "{e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A fresh temporary folder `tag` (see [`tmp`]) holding a copy of the
/// COLMAP fixture in `data/`: the folder and the copy.
fn fixture_copy(tag: &str) -> (PathBuf, PathBuf) {
    let d = tmp(tag);
    let data = d.join("data");
    copy_dir(std::path::Path::new(fixture()), &data);
    (d, data)
}

/// Copies the folder `from` (files and subfolders) to `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `render --data --compare`'s `compare/NAME` in `rd`: the photo as the
/// loader gave it, the render written beside it, and the error heat map,
/// dark blue exactly where the view's mask leaves pixels out.
fn check_compare(data: &std::path::Path, rd: &std::path::Path, name: &str) {
    // as `render` loads it for this COLMAP run: on black (the fixture is
    // 160×120, under any downscaling limit)
    let opts = splat::data::LoadOptions {
        background: [0.0; 3],
        ..Default::default()
    };
    let ds = splat::data::load(data, &opts).unwrap();
    let names = ds.render_names(&ds.test);
    let v = &ds.test[names.iter().position(|n| n == name).expect("the test view")];
    let cmp = image::open(rd.join("compare").join(name))
        .unwrap()
        .to_rgb8();
    let render = image::open(rd.join(name)).unwrap().to_rgb8();
    let (w, h) = (v.width, v.height);
    assert_eq!((cmp.width(), cmp.height()), (3 * w, h));
    let (mut ignored, mut blue) = (0, 0);
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            let photo = cmp.get_pixel(x, y).0;
            let mid = cmp.get_pixel(w + x, y).0;
            let heat = cmp.get_pixel(2 * w + x, y).0;
            assert_eq!(mid, render.get_pixel(x, y).0, "render panel at {x},{y}");
            for c in 0..3 {
                let want = v.image.bytes()[i * 3 + c];
                assert_eq!(photo[c], want, "photo panel at {x},{y}");
            }
            if v.mask.as_ref().is_some_and(|m| m.get(i) == 0.0) {
                ignored += 1;
                assert_eq!(heat, [0, 0, 89], "ignored pixel {x},{y}");
                continue;
            }
            blue += usize::from(heat == [0, 0, 89]);
            // red rises with the mean absolute error, full at 0.25 / 3
            let err: f64 = (0..3)
                .map(|c| (photo[c] as f64 - mid[c] as f64).abs() / 255.0 / 3.0)
                .sum();
            let red = ((err / 0.25 * 3.0).min(1.0) * 255.0) as i32;
            assert!(
                (heat[0] as i32 - red).abs() <= 14,
                "heat at {x},{y}: {heat:?} for {err}"
            );
        }
    }
    assert_eq!(blue, 0, "kept pixels drawn as ignored");
    // the mask's left quarter at least (undistortion may add more)
    assert!(
        ignored >= (w / 4 * h) as usize,
        "{ignored} ignored pixels in {name}"
    );
}

#[test]
fn up_and_center_flags_parse_or_fail_clearly() {
    use chainrule_cli::render3d::{parse_up, parse_vec3};
    assert_eq!(parse_up("-y").unwrap(), [0.0, -1.0, 0.0]);
    let u = parse_up("0,3,4").unwrap();
    assert!((u[1] - 0.6).abs() < 1e-12 && (u[2] - 0.8).abs() < 1e-12);
    assert!(parse_up("0,0,0").unwrap_err().to_string().contains("zero"));
    assert!(parse_vec3("--center", "1,2")
        .unwrap_err()
        .to_string()
        .contains("--center"));
    assert!(parse_vec3("--center", "1,2,nan").is_err());
}

#[test]
fn an_orbit_about_a_given_centre_and_up_keeps_its_radius_and_looks_at_it() {
    use chainrule_cli::render3d::{orbit_cameras, OrbitOptions};
    use splat::three::scene::{random_scene, RandomScene};
    let g = random_scene::<f32>(&RandomScene {
        n: 20,
        ..Default::default()
    });
    let c = [1.0, -2.0, 0.5];
    let up = [0.0, -0.6, -0.8];
    let o = OrbitOptions {
        views: 8,
        center: Some(c),
        radius: Some(2.0),
        up,
        elevation_deg: 0.0,
        ..Default::default()
    };
    for cam in orbit_cameras(&g, &o).unwrap() {
        let e = cam.center();
        let v = [e[0] - c[0], e[1] - c[1], e[2] - c[2]];
        let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        assert!((r - 2.0).abs() < 1e-9, "{r}");
        // elevation 0: in the plane through the centre orthogonal to up
        assert!((v[0] * up[0] + v[1] * up[1] + v[2] * up[2]).abs() < 1e-9);
        // looking at the centre: its forward axis points from eye to c
        let f = cam.rotation[2];
        assert!((f[0] * v[0] + f[1] * v[1] + f[2] * v[2] + 2.0).abs() < 1e-9);
    }
}

/// A scene as the original 3DGS leaves it: `MODEL/cameras.json` (each
/// camera's centre and camera-to-world rotation), `MODEL/cfg_args` and
/// `MODEL/point_cloud/iteration_N/point_cloud.ply`. Made here from a
/// `chainrule train` run on the COLMAP fixture, so the two must frame the
/// scene alike: `render MODEL --orbit` (or of its PLY) draws what `render`
/// of the train folder draws, with no flags, and `--path` flies along
/// `cameras.json`. The PLY alone, out of its folder, is framed otherwise.
#[test]
fn an_original_3dgs_model_folder_renders_framed_by_its_cameras() {
    let d = tmp("inria");
    let out = trained(&d);
    let model = d.join("model");
    let it = model.join("point_cloud").join("iteration_10");
    std::fs::create_dir_all(&it).unwrap();
    std::fs::create_dir_all(model.join("point_cloud").join("iteration_5")).unwrap();
    std::fs::copy(out.join("point_cloud.ply"), it.join("point_cloud.ply")).unwrap();
    // the fixture's cameras as the original 3DGS writes them, computed from
    // COLMAP's poses in Python (fixtures/original_3dgs/make_cameras.py)
    let own = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/original_3dgs/cameras.json"
    );
    std::fs::copy(own, model.join("cameras.json")).unwrap();
    let cams: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(own).unwrap()).unwrap();
    std::fs::write(
        model.join("cfg_args"),
        "Namespace(data_device='cuda', eval=True, images='images', model_path='./output/room', \
         resolution=-1, sh_degree=1, source_path='/data/room', white_background=False)",
    )
    .unwrap();
    let orbit = |scene: &std::path::Path, name: &str| -> Vec<image::RgbaImage> {
        let dir = d.join(name);
        run(&[
            "render",
            scene.to_str().unwrap(),
            "--orbit",
            "3",
            "--size",
            "48x36",
            "--out",
            dir.to_str().unwrap(),
        ]);
        (0..3)
            .map(|i| {
                image::open(dir.join(format!("view_{i:03}.png")))
                    .unwrap()
                    .to_rgba8()
            })
            .collect()
    };
    let ours = orbit(&out, "ours");
    let folder = orbit(&model, "folder");
    let ply = orbit(&it.join("point_cloud.ply"), "ply");
    // the same framing, up to the last bits of the poses' round trip
    for (a, b) in ours.iter().zip(&folder) {
        let worst = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(worst <= 1, "{worst}");
    }
    assert_eq!(folder, ply);
    // the scene alone, without the framing our PLY carries in its header
    let bare = d.join("bare.ply");
    let g = splat::formats::read_scene(&it.join("point_cloud.ply")).unwrap();
    std::fs::write(&bare, splat::three::ply::to_ply_bytes(&g)).unwrap();
    let bare_views = orbit(&bare, "bare");
    assert_ne!(bare_views, ours);
    // a flight along cameras.json, at the cameras' own size
    let path = d.join("path");
    let r = run_json(&[
        "render",
        model.to_str().unwrap(),
        "--path",
        "3",
        "--out",
        path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!((&r["kind"], &r["frames"]), (&"path".into(), &3.into()));
    let first = image::open(path.join("path_000.png")).unwrap();
    assert_eq!(
        (first.width() as u64, first.height() as u64),
        (
            cams[0]["width"].as_u64().unwrap(),
            cams[0]["height"].as_u64().unwrap()
        )
    );
    // a broken cameras.json: a warning naming it, the camera and the
    // field, and the scene framed as a bare PLY is
    let mut bad = cams.clone();
    bad[3]["fx"] = serde_json::json!(-1.0);
    std::fs::write(
        model.join("cameras.json"),
        serde_json::to_string(&bad).unwrap(),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args([
            "render",
            model.to_str().unwrap(),
            "--orbit",
            "3",
            "--size",
            "48x36",
            "--out",
        ])
        .arg(d.join("warned"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert_eq!(e.matches("warning").count(), 1, "{e}");
    assert!(
        e.contains("cameras.json") && e.contains("camera 3: fx"),
        "{e}"
    );
    let warned = image::open(d.join("warned").join("view_001.png"))
        .unwrap()
        .to_rgba8();
    assert_eq!(warned, bare_views[1]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A site written by `view --export` carries the dataset's cameras but not
/// its photos: `render SITE --path N` flies along them as the train folder
/// flies along its dataset (the same frames, to the model format's
/// quantisation), and a malformed camera is an error naming the file.
#[test]
fn a_site_flies_along_its_own_cameras() {
    let d = tmp("site-path");
    let out = trained(&d);
    let site = d.join("site");
    run(&[
        "view",
        out.to_str().unwrap(),
        "--export",
        site.to_str().unwrap(),
    ]);
    let (a, b) = (d.join("fly-train"), d.join("fly-site"));
    for (scene, to) in [(&out, &a), (&site, &b)] {
        run(&[
            "render",
            scene.to_str().unwrap(),
            "--path",
            "4",
            "--out",
            to.to_str().unwrap(),
        ]);
    }
    for k in 0..4 {
        let f = format!("path_{k:03}.png");
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        assert_eq!(
            x, y,
            "{f}: the site's flight differs from the train folder's"
        );
    }
    // trained at half size: the site flies at the training's size too
    // (its cameras.json keeps the photos' own)
    let half = d.join("half");
    run(&[
        "train",
        fixture(),
        "--out",
        half.to_str().unwrap(),
        "--iters",
        "10",
        "--downscale",
        "2",
        "--json",
    ]);
    let half_site = d.join("half-site");
    run(&[
        "view",
        half.to_str().unwrap(),
        "--export",
        half_site.to_str().unwrap(),
    ]);
    let (c, e) = (d.join("fly-half"), d.join("fly-half-site"));
    for (scene, to) in [(&half, &c), (&half_site, &e)] {
        run(&[
            "render",
            scene.to_str().unwrap(),
            "--path",
            "2",
            "--out",
            to.to_str().unwrap(),
        ]);
    }
    assert_eq!(
        std::fs::read(c.join("path_001.png")).unwrap(),
        std::fs::read(e.join("path_001.png")).unwrap()
    );
    // a camera that is not one
    let cams = site.join("cameras.json");
    let text = std::fs::read_to_string(&cams).unwrap();
    std::fs::write(&cams, text.replacen("\"fx\":", "\"fx\":-", 1)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["render", site.to_str().unwrap(), "--path", "4", "--out"])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cameras.json") && err.contains("camera 0") && err.contains("fx"),
        "{err}"
    );
}

/// A run trained with `--invert-masks` is scored by `render OUT --data`
/// over the same pixels without the flag (settings.json keeps it), and a
/// held-out photo whose mask ignores every pixel has no score and is left
/// out of the means instead of making them NaN.
#[test]
fn render_scores_what_training_scored_with_inverted_and_empty_masks() {
    let (d, data) = fixture_copy("inverted-masks");
    std::fs::create_dir_all(data.join("masks")).unwrap();
    for e in std::fs::read_dir(data.join("images")).unwrap() {
        let photo = e.unwrap().path();
        let (w, h) = image::image_dimensions(&photo).unwrap();
        // inverted: 0 keeps; the first (held-out) photo's mask keeps
        // nothing once inverted, the others keep their left quarter
        let all = photo.ends_with("IMG_0000.jpg");
        let value = |x: u32| u8::from(all || x >= w / 4) * 255;
        let mask = image::GrayImage::from_fn(w, h, |x, _| image::Luma([value(x)]));
        let stem = photo.file_stem().unwrap().to_str().unwrap();
        mask.save(data.join(format!("masks/{stem}.png"))).unwrap();
    }
    let out = d.join("o");
    let trained = run_json(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "30",
        "--invert-masks",
        "--json",
    ]);
    let psnr = trained["psnr"]
        .as_f64()
        .expect("a mean over the scored views");
    assert!(psnr.is_finite());
    assert_eq!(
        (
            trained["eval_views"].as_u64(),
            trained["scored_views"].as_u64(),
            trained["masked_views"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "the view whose mask keeps nothing is neither scored nor counted masked: {trained}"
    );
    let rendered = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        d.join("r").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(rendered["psnr"].as_f64(), Some(psnr), "{rendered}");
    let per = rendered["per_view"].as_array().unwrap();
    assert!(per.iter().any(|v| v["psnr"].is_null()), "{rendered}");
    assert_eq!(rendered["scored_views"], 1, "{rendered}");
    // --no-invert-masks reads them as they are: the other pixels
    let plain = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--no-invert-masks",
        "--out",
        d.join("r2").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(plain["scored_views"], 2, "{plain}");
    assert_ne!(plain["psnr"].as_f64(), Some(psnr), "{plain}");
    // each view names the file its render went to
    for v in per {
        assert!(
            std::path::Path::new(v["render"].as_str().unwrap()).is_file(),
            "{v}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A COLMAP model named by its folder (`DATA/sparse/1`) trains on that
/// model rather than the largest, with DATA's photos; `settings.json`
/// keeps the path, so `render OUT --data` scores the same photos.
#[test]
fn a_model_named_by_its_folder_trains_and_renders() {
    let (d, data) = fixture_copy("named-model");
    // sparse/1: the same cameras and points, three of the twelve poses
    let rec = splat::data::colmap::read_reconstruction(&data.join("sparse/0")).unwrap();
    std::fs::create_dir_all(data.join("sparse/1")).unwrap();
    for f in ["cameras.bin", "points3D.bin"] {
        std::fs::copy(data.join("sparse/0").join(f), data.join("sparse/1").join(f)).unwrap();
    }
    let mut text = String::new();
    for im in rec.images.iter().take(3) {
        let [qw, qx, qy, qz] = im.qvec;
        let [tx, ty, tz] = im.tvec;
        let (id, cam, name) = (im.id, im.camera_id, &im.name);
        text += &format!("{id} {qw} {qx} {qy} {qz} {tx} {ty} {tz} {cam} {name}\n\n");
    }
    std::fs::write(data.join("sparse/1/images.txt"), text).unwrap();
    let model = data.join("sparse/1");
    let out = d.join("o");
    let trained = run_json(&[
        "train",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "10",
        "--json",
    ]);
    assert_eq!(trained["eval_views"], 1, "{trained}");
    assert!(
        trained["dataset"].as_str().unwrap().ends_with("sparse/1"),
        "{trained}"
    );
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("settings.json")).unwrap()).unwrap();
    assert!(
        st["dataset"].as_str().unwrap().ends_with("sparse/1"),
        "{st}"
    );
    let rendered = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--data",
        model.to_str().unwrap(),
        "--out",
        d.join("r").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        rendered["per_view"].as_array().unwrap().len(),
        1,
        "{rendered}"
    );
    assert_eq!(rendered["psnr"], trained["psnr"], "{rendered}");
    // the dataset itself trains on its largest model, and the report's
    // notes say so (as stderr does)
    let whole = run_json(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        d.join("whole").to_str().unwrap(),
        "--iters",
        "2",
        "--json",
    ]);
    let notes = whole["notes"].as_array().unwrap();
    assert!(
        notes[0].as_str().unwrap().contains(
            "holds 2 COLMAP models (sparse/0 12 photos, sparse/1 3 photos); training on sparse/0"
        ),
        "{whole}"
    );
    // --data of the dataset loads its largest model, another reconstruction
    // than the one trained: said on stderr, with a note of the models
    let other = run(&[
        "render",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        d.join("r-other").to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(
        said.contains("holds 2 COLMAP models") && said.contains("warning: the scene was trained"),
        "{said}"
    );
    // a path through the dataset's cameras says which model it flies, in
    // its report and path.json as on stderr
    let flown = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--path",
        "2",
        "--size",
        "16x12",
        "--out",
        d.join("p-models").to_str().unwrap(),
        "--json",
    ]);
    assert!(
        flown["notes"].to_string().contains("holds 2 COLMAP models"),
        "{flown}"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("p-models/path.json")).unwrap()).unwrap();
    assert_eq!(kept["notes"], flown["notes"]);
    // sparse/ itself and a model outside a dataset are refused, saying why
    let refused = |path: &std::path::Path| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["train", path.to_str().unwrap(), "--out"])
            .arg(d.join("refused"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = refused(&data.join("sparse"));
    assert!(e.contains("holds COLMAP models (0, 1)"), "{e}");
    let loose = d.join("loose-model");
    copy_dir(&model, &loose);
    let e = refused(&loose);
    assert!(e.contains("DATA/sparse/N"), "{e}");
    // --resume on another dataset than the run's (the largest model: other
    // photos) is refused, naming both, also after a run that stopped
    // before its end, which wrote no settings.json (its
    // checkpoints/run.json says what they were fitted to), and nothing of
    // the run is touched; --resume-other-data continues all the same
    std::fs::remove_file(out.join("settings.json")).unwrap();
    let ply_before = std::fs::read(out.join("point_cloud.ply")).unwrap();
    let args = [
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "12",
        "--resume",
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains("holds a run on")
            && said.contains("(3 photos")
            && said.contains("holds other photos (12")
            && said.contains("--resume-other-data"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(out.join("point_cloud.ply")).unwrap(),
        ply_before
    );
    let resumed = run(&[&args[..], &["--resume-other-data"]].concat());
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        said.contains("note: --resume-other-data: the run on") && !said.contains("warning"),
        "{said}"
    );
    // and not when the same dataset is reached by another path
    let same = data.join("sparse").join("..");
    let resume_to = |iters: &str| {
        let o = run(&[
            "train",
            same.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--iters",
            iters,
            "--resume",
        ]);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let said = resume_to("14");
    assert!(!said.contains("warning"), "{said}");
    // nor when the dataset moved (a copy of the run resumed on a copy of
    // the dataset: the same photos and poses)
    let (moved, out2) = (d.join("moved"), d.join("o2"));
    copy_dir(&data, &moved);
    copy_dir(&out, &out2);
    let o = run(&[
        "train",
        moved.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--iters",
        "15",
        "--resume",
    ]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        !said.contains("warning") && !said.contains("--resume-other-data"),
        "{said}"
    );
    // --iters no more than the checkpoint's: nothing to train, and said
    let said = resume_to("10");
    assert!(
        said.contains("the checkpoint has 14 iterations, --iters 10 no more"),
        "{said}"
    );
    // the saved path finds the model's cameras again: a flight along them
    let path = d.join("p");
    run(&[
        "render",
        out.to_str().unwrap(),
        "--path",
        "4",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(path.join("path_003.png").is_file());
    // a model folder that is a link to one elsewhere keeps its place
    // under sparse/ in settings.json, so the saved path finds the photos
    #[cfg(unix)]
    {
        let elsewhere = d.join("elsewhere");
        copy_dir(&model, &elsewhere);
        std::os::unix::fs::symlink(&elsewhere, data.join("sparse/2")).unwrap();
        let linked = d.join("o-linked");
        run(&[
            "train",
            data.join("sparse/2").to_str().unwrap(),
            "--out",
            linked.to_str().unwrap(),
            "--iters",
            "5",
            "--json",
        ]);
        run(&[
            "render",
            linked.to_str().unwrap(),
            "--path",
            "2",
            "--out",
            d.join("p-linked").to_str().unwrap(),
        ]);
    }
    // the same output folder trained again (--overwrite) on the whole
    // capture: an earlier run's renders of views it does not have are
    // removed, the user's own files (PNGs included) stay
    let renders = out.join("renders");
    std::fs::write(renders.join("notes.txt"), "mine").unwrap();
    let first_render = std::fs::read_dir(&renders)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .unwrap();
    std::fs::copy(&first_render, renders.join("holiday.png")).unwrap();
    // as if the earlier run had also rendered a view IMG_9999
    std::fs::copy(&first_render, renders.join("IMG_9999.png")).unwrap();
    let metrics_path = out.join("metrics.json");
    let mut earlier: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metrics_path).unwrap()).unwrap();
    earlier["views"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"view": "IMG_9999.png", "render": renders.join("IMG_9999.png")}));
    std::fs::write(&metrics_path, earlier.to_string()).unwrap();
    let again = run_json(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "10",
        "--overwrite",
        "--json",
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&renders)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metrics_path).unwrap()).unwrap();
    let mut expected: Vec<String> = metrics["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let p = std::path::Path::new(v["render"].as_str().unwrap());
            p.file_name().unwrap().to_str().unwrap().to_string()
        })
        .chain(["notes.txt".to_string(), "holiday.png".to_string()])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "{again}");
    assert_eq!(again["eval_views"], 2, "{again}");
}

/// A masks/ folder that leaves photos out: training says which, on stderr
/// and in the report, and trains them without a mask.
#[test]
fn a_partial_masks_folder_is_said_and_reported() {
    let (d, data) = fixture_copy("partial-masks");
    std::fs::create_dir_all(data.join("masks")).unwrap();
    let mut photos: Vec<PathBuf> = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    let (w, h) = image::image_dimensions(&photos[0]).unwrap();
    let stem = photos[0].file_stem().unwrap().to_str().unwrap();
    image::GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x > 2) * 255]))
        .save(data.join(format!("masks/{stem}.png")))
        .unwrap();
    let out = d.join("out");
    let o = run(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "2",
        "--json",
    ]);
    let said = String::from_utf8_lossy(&o.stderr);
    let want = format!(
        "no mask for {} of the {} photos",
        photos.len() - 1,
        photos.len()
    );
    assert!(said.contains("note: ") && said.contains(&want), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{report}");
    assert!(notes[0].as_str().unwrap().contains(&want), "{report}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Renders are named after the photos, so `render --data` refuses to
/// write them where they would replace one: the folder the photos are read
/// from (however the path is spelled), a split's folder that was not read
/// (NeRF-synthetic's `val/` beside `test/`), or a folder a photo links to;
/// and `train` refuses such a renders folder before it trains; `render
/// --orbit` and `--path` refuse the photos' folders too. Every photo is
/// left as it was; an earlier render's files are replaced.
#[test]
fn renders_never_replace_the_datasets_photos() {
    let d = tmp("own-photos");
    // every file's name and bytes
    let snapshot = |dir: &std::path::Path| {
        let mut v: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let p = e.path();
                p.is_file()
                    .then(|| (e.file_name(), std::fs::read(p).unwrap()))
            })
            .collect();
        v.sort();
        v
    };
    // refused, with the path given or the file named in the JSON error
    let refused = |args: &[&std::ffi::OsStr]| -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains("another folder"), "{msg}");
        e["path"].as_str().unwrap().to_string()
    };
    // COLMAP: the photos' own folder, spelled two ways
    let out = trained(&d);
    let data = d.join("data");
    copy_dir(std::path::Path::new(fixture()), &data);
    let images = data.join("images");
    let spelled = data.join("sparse").join("..").join("images");
    for (target, split) in [(&images, "train"), (&spelled, "test")] {
        let path = refused(&[
            "render".as_ref(),
            out.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--split".as_ref(),
            split.as_ref(),
            "--out".as_ref(),
            target.as_os_str(),
        ]);
        assert_eq!(path, target.to_str().unwrap());
    }
    // NeRF-synthetic, whose renders have the photos' very names
    let syn = d.join("syn");
    run(&[
        "synth",
        syn.to_str().unwrap(),
        "--views",
        "4",
        "--test-views",
        "3",
        "--size",
        "16",
    ]);
    let sout = d.join("sout");
    run(&[
        "train",
        syn.to_str().unwrap(),
        "--out",
        sout.to_str().unwrap(),
        "--iters",
        "2",
        "--json",
    ]);
    let linked = d.join("linked");
    let raw = d.join("raw");
    copy_dir(&syn, &linked);
    copy_dir(&syn.join("test"), &raw);
    #[cfg(unix)]
    for f in ["r_0.png", "r_1.png", "r_2.png"] {
        std::fs::remove_file(linked.join("test").join(f)).unwrap();
        std::os::unix::fs::symlink(raw.join(f), linked.join("test").join(f)).unwrap();
    }
    let folders = ["train", "test", "val"].map(|f| syn.join(f));
    let before: Vec<_> = folders.iter().chain([&raw]).map(|f| snapshot(f)).collect();
    for (data, target) in [
        (&syn, syn.join("train")),
        (&syn, syn.join("test")),
        (&syn, syn.join("val")),
        (&linked, raw.clone()),
    ] {
        refused(&[
            "render".as_ref(),
            sout.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            target.as_os_str(),
        ]);
    }
    // an orbit or a path of the scene trained on it, alike (its views are
    // no photos, but would be taken among them)
    for (kind, target) in [("--orbit", syn.join("train")), ("--path", syn.join("test"))] {
        let path = refused(&[
            "render".as_ref(),
            sout.as_os_str(),
            kind.as_ref(),
            "2".as_ref(),
            "--size".as_ref(),
            "8x8".as_ref(),
            "--out".as_ref(),
            target.as_os_str(),
        ]);
        assert_eq!(path, target.to_str().unwrap());
    }
    // train's renders folder that is a split's folder (a test split kept
    // in `renders/`): refused before training
    let kept = d.join("kept");
    copy_dir(&syn, &kept);
    std::fs::rename(kept.join("test"), kept.join("renders")).unwrap();
    let json = kept.join("transforms_test.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replace("./test/", "./renders/")).unwrap();
    let kept_before = snapshot(&kept.join("renders"));
    let path = refused(&[
        "train".as_ref(),
        kept.as_os_str(),
        "--out".as_ref(),
        kept.as_os_str(),
        "--iters".as_ref(),
        "2".as_ref(),
    ]);
    assert!(path.ends_with("renders"), "{path}");
    assert!(snapshot(&kept.join("renders")) == kept_before);
    assert!(
        !kept.join("point_cloud.ply").exists(),
        "trained before refusing"
    );
    // train's own output in a folder of photos: refused, nothing written
    for (data, target) in [(&syn, syn.join("train")), (&data, images.clone())] {
        let path = refused(&[
            "train".as_ref(),
            data.as_os_str(),
            "--out".as_ref(),
            target.as_os_str(),
            "--iters".as_ref(),
            "2".as_ref(),
        ]);
        assert_eq!(path, target.to_str().unwrap());
        assert!(!target.join("point_cloud.ply").exists());
        assert!(!target.join("checkpoints").exists());
    }
    let after: Vec<_> = folders.iter().chain([&raw]).map(|f| snapshot(f)).collect();
    assert!(after == before, "a photo changed");
    // beside the photos, and again over its own renders, or over a
    // training's renders: fine
    for target in [
        syn.join("renders"),
        syn.join("renders"),
        sout.join("renders"),
    ] {
        run(&[
            "render",
            sout.to_str().unwrap(),
            "--data",
            syn.to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
        ]);
    }
    for kind in ["--orbit", "--path"] {
        let target = syn.join("renders");
        let args = ["render", sout.to_str().unwrap(), kind, "2", "--size", "8x8"];
        run(&[&args[..], &["--out", target.to_str().unwrap()]].concat());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A COLMAP model without sparse points trains from random points, and
/// says so in the report's notes as well as on stderr.
#[test]
fn a_model_without_points_says_so_in_the_report() {
    let (d, data) = fixture_copy("no-points");
    for f in ["points3D.bin", "points3D.txt"] {
        let _ = std::fs::remove_file(data.join("sparse/0").join(f));
    }
    let out = d.join("out");
    let o = run(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "2",
        "--init-points",
        "300",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = v["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("300 random points")),
        "{v}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("300 random points"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// `--max-gaussians` caps the start too: a budget below the model's
/// sparse points starts from that many of them, and a note says so.
#[test]
fn the_budget_caps_the_sparse_points() {
    let d = tmp("cap");
    let out = d.join("out");
    let v = run_json(&[
        "train",
        fixture(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "2",
        "--max-gaussians",
        "40",
        "--sh-degree",
        "0",
        "--json",
    ]);
    let n = v["gaussians"].as_u64().unwrap();
    assert!((1..=40).contains(&n), "{v}");
    assert_eq!(v["max_gaussians"], 40, "{v}");
    let notes = v["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|s| s
            .as_str()
            .unwrap()
            .contains("training starts from 40 of them")),
        "{v}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A capture without its `images/` folder names the folder, and a folder
/// where a photo should be is called that, not "not found".
#[test]
fn a_missing_photo_folder_is_named() {
    let d = tmp("noimages");
    let data = d.join("data");
    copy_dir(
        &std::path::Path::new(fixture()).join("sparse"),
        &data.join("sparse"),
    );
    let fails = |what: &str| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["train".as_ref(), data.as_os_str(), "--out".as_ref()])
            .arg(d.join("out"))
            .args(["--iters", "1", "--json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{what}");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = fails("no images/");
    assert_eq!(v["path"], data.join("images").to_str().unwrap(), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("folder not found"),
        "{v}"
    );
    std::fs::create_dir_all(data.join("images/IMG_0000.jpg")).unwrap();
    let v = fails("a folder for a photo");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("is a folder, not a photo"),
        "{v}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `render --path` needs a capture's cameras, not its photos: a photo gone
/// since training is no error (`render --data`, which scores the photos,
/// names it). Every frame has one size (the fixture has one camera; cameras
/// of several sizes are `capture::along_path`'s unit test).
#[test]
fn a_path_needs_the_cameras_not_the_photos() {
    let (d, data) = fixture_copy("path-cameras");
    let out = d.join("out");
    run(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "2",
        "--json",
    ]);
    std::fs::remove_file(data.join("images/IMG_0003.jpg")).unwrap();
    let path = d.join("path");
    let r = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--path",
        "5",
        "--out",
        path.to_str().unwrap(),
        "--json",
    ]);
    let files = r["files"].as_array().unwrap();
    assert_eq!(files.len(), 5);
    let sizes: Vec<(u32, u32)> = files
        .iter()
        .map(|f| image::image_dimensions(f.as_str().unwrap()).unwrap())
        .collect();
    assert!(sizes.iter().all(|&s| s == sizes[0]), "{sizes:?}");
    // --size sets the frames' size; an orbit's camera flags are refused
    let sized = d.join("path-sized");
    let r = run_json(&[
        "render",
        out.to_str().unwrap(),
        "--path",
        "2",
        "--size",
        "64x40",
        "--out",
        sized.to_str().unwrap(),
        "--json",
    ]);
    for f in r["files"].as_array().unwrap() {
        assert_eq!(
            image::image_dimensions(f.as_str().unwrap()).unwrap(),
            (64, 40)
        );
    }
    for flag in [["--fov", "60"], ["--elevation", "10"], ["--radius", "2"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["render", out.to_str().unwrap(), "--path", "2"])
            .args(flag)
            .args(["--out", sized.to_str().unwrap()])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag:?}: {e}");
        assert!(e.contains(flag[0]) && e.contains("--orbit"), "{e}");
    }
    // the training's own photos still load in full elsewhere: the same
    // command with the photo gone is refused by `render --data`, by name
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["render", out.to_str().unwrap(), "--data"])
        .arg(&data)
        .args(["--out", d.join("scores").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e["error"].as_str().unwrap().contains("IMG_0003.jpg"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A photo cut short (an incomplete copy) is an error naming it, not a
/// photo whose missing rows the decoder fills with grey.
#[test]
fn a_truncated_photo_is_named() {
    let (d, data) = fixture_copy("truncated-photo");
    let photo = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .expect("a JPEG photo in the fixture");
    let bytes = std::fs::read(&photo).unwrap();
    std::fs::write(&photo, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["train", data.to_str().unwrap(), "--out"])
        .arg(d.join("out"))
        .args(["--iters", "1", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e["error"].as_str().unwrap().contains("truncated"), "{e}");
    let named = std::path::PathBuf::from(e["path"].as_str().unwrap());
    assert_eq!(named.file_name(), photo.file_name(), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A rig (`images/cam0/`, `images/cam1/`: the same file names, taken a
/// centimetre apart): `render --path` flies one camera and says so, in
/// `--json` and `path.json` too; `--path-folder` picks the other camera,
/// and a folder without photos is an error naming those there are.
#[test]
fn a_path_through_a_rig_flies_one_camera_and_path_folder_picks_it() {
    let (d, data) = fixture_copy("rig");
    let rec = splat::data::colmap::read_reconstruction(&data.join("sparse/0")).unwrap();
    let mut text = String::new();
    for (k, folder) in ["cam0", "cam1"].iter().enumerate() {
        std::fs::create_dir_all(data.join("images").join(folder)).unwrap();
        for im in &rec.images {
            let [qw, qx, qy, qz] = im.qvec;
            let [tx, ty, tz] = im.tvec;
            let tx = tx + 0.01 * k as f64;
            let id = im.id + 100 * k as i32;
            let name = format!("{folder}/{}", im.name);
            std::fs::copy(
                data.join("images").join(&im.name),
                data.join("images").join(&name),
            )
            .unwrap();
            text += &format!(
                "{id} {qw} {qx} {qy} {qz} {tx} {ty} {tz} {} {name}\n\n",
                im.camera_id
            );
        }
    }
    std::fs::remove_file(data.join("sparse/0/images.bin")).unwrap();
    std::fs::write(data.join("sparse/0/images.txt"), text).unwrap();
    let scene = trained(&d).join("point_cloud.ply");
    let path = |out: &str, folder: Option<&str>| {
        let mut args = vec![
            "render",
            scene.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        args.extend(["--path", "3", "--size", "40x30", "--json", "--out"]);
        let out = d.join(out);
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(out.display().to_string());
        if let Some(f) = folder {
            args.extend(["--path-folder".to_string(), f.to_string()]);
        }
        Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(&args)
            .output()
            .unwrap()
    };
    let o = path("rig", None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("rig of 2 cameras") && notes.contains("cam0/'s 12 photos"),
        "{report}"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("rig/path.json")).unwrap()).unwrap();
    assert_eq!(kept["notes"], report["notes"]);
    // the other camera: its first frame is the first photo seen from 1 cm
    // aside, not the same picture
    let o = path("cam1", Some("cam1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["notes"], serde_json::json!([]), "{report}");
    let first = |dir: &str| std::fs::read(d.join(dir).join("path_000.png")).unwrap();
    assert_ne!(first("rig"), first("cam1"));
    // the same folder written otherwise
    for (out, folder) in [("dot", "./cam1"), ("slash", "cam1/")] {
        let o = path(out, Some(folder));
        assert!(
            o.status.success(),
            "{folder}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(first(out), first("cam1"), "{folder}");
    }
    let o = path("none", Some("cam2"));
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stdout);
    assert!(e.contains("cam2") && e.contains("cam0, cam1"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

/// A nerfstudio export of the fixture (nerfstudio's own `transforms.json`
/// and `sparse_pc.ply`, the photos in `images/`) trains as a capture does
/// (black, the captures' defaults), renders its photos by name, flies its
/// cameras without flags and scores on itself as the run did.
#[test]
fn a_nerfstudio_export_trains_and_renders_as_a_capture() {
    let d = tmp("nerfstudio");
    let data = d.join("ns");
    std::fs::create_dir_all(data.join("images")).unwrap();
    let fixtures = std::path::Path::new(fixture()).parent().unwrap();
    for f in ["transforms.json", "sparse_pc.ply"] {
        std::fs::copy(fixtures.join("nerfstudio_room").join(f), data.join(f)).unwrap();
    }
    for e in std::fs::read_dir(fixtures.join("colmap_room/images")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join("images").join(e.file_name())).unwrap();
    }
    let out = d.join("out");
    let report = run_json(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "10",
        "--sh-degree",
        "1",
        "--json",
    ]);
    assert_eq!(report["eval_views"], 2, "{report}");
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("settings.json")).unwrap()).unwrap();
    assert_eq!(st["dataset_kind"], "nerfstudio");
    assert_eq!(st["background"], serde_json::json!([0.0, 0.0, 0.0]));
    for name in ["IMG_0000.png", "IMG_0008.png"] {
        assert!(out.join("renders").join(name).is_file(), "{name}");
    }
    // the captures' defaults, and the same run: the same photos, cameras
    // and points in another world
    let colmap = run_json(&[
        "train",
        fixture(),
        "--out",
        d.join("colmap").to_str().unwrap(),
        "--iters",
        "10",
        "--sh-degree",
        "1",
        "--json",
    ]);
    for key in [
        "max_gaussians",
        "lr_mean",
        "lr_scale",
        "opacity_reg",
        "coarse_until",
        "ema_window",
    ] {
        assert_eq!(report[key], colmap[key], "{key}: {report}");
    }
    let (p, q) = (
        report["psnr"].as_f64().unwrap(),
        colmap["psnr"].as_f64().unwrap(),
    );
    assert!((p - q).abs() < 0.1, "{p} dB against COLMAP's {q}");
    let o = out.to_str().unwrap();
    let path = run_json(&[
        "render",
        o,
        "--path",
        "3",
        "--out",
        d.join("p").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(path["frames"], 3, "{path}");
    let scores = run_json(&[
        "render",
        o,
        "--data",
        data.to_str().unwrap(),
        "--out",
        d.join("s").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(scores["psnr"], report["psnr"], "{scores}");
    // the file itself named as the dataset: trained, and its run flies the
    // cameras with no --data
    let by_file = d.join("by-file");
    run_json(&[
        "train",
        data.join("transforms.json").to_str().unwrap(),
        "--out",
        by_file.to_str().unwrap(),
        "--iters",
        "2",
        "--json",
    ]);
    let flown = run_json(&[
        "render",
        by_file.to_str().unwrap(),
        "--path",
        "2",
        "--out",
        d.join("p2").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(flown["frames"], 2, "{flown}");
    // and its renders are refused among the photos, as a folder's run's are
    let into_photos = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["render", by_file.to_str().unwrap(), "--orbit", "2", "--out"])
        .arg(data.join("images"))
        .output()
        .unwrap();
    assert_eq!(into_photos.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(data.join("images")).unwrap().count(), 12);
}
