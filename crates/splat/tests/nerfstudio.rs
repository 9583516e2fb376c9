//! nerfstudio's `transforms.json`, as nerfstudio itself writes it: the
//! committed `fixtures/nerfstudio_room/{transforms.json,sparse_pc.ply}`
//! are what `ns-process-data`'s `colmap_to_json` made of the COLMAP
//! capture in `fixtures/colmap_room` (its photos are copied beside them
//! here, as `ns-process-data` copies them into `images/`). Made by
//! `fixtures/make_nerfstudio.py` (nerfstudio's own code; see its header).

use std::path::{Path, PathBuf};

use crate::common::{assert_note, same_cameras, tmp};
use splat::data::{detect, load, load_cameras, LoadOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// nerfstudio's export of `colmap_room` in a folder of its own, its photos
/// in `images/` as `ns-process-data` leaves them.
fn nerfstudio_room(name: &str) -> PathBuf {
    let d = tmp(name);
    std::fs::create_dir_all(d.join("images")).unwrap();
    for f in ["transforms.json", "sparse_pc.ply"] {
        std::fs::copy(fixtures().join("nerfstudio_room").join(f), d.join(f)).unwrap();
    }
    for e in std::fs::read_dir(fixtures().join("colmap_room/images")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.join("images").join(e.file_name())).unwrap();
    }
    d
}

fn opts() -> LoadOptions {
    LoadOptions {
        holdout_every: 4,
        background: [0.0; 3],
        ..LoadOptions::default()
    }
}

fn transforms(d: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(d.join("transforms.json")).unwrap()).unwrap()
}

/// The 3×3 part of nerfstudio's `applied_transform` (its world is
/// COLMAP's, axes permuted).
fn applied(t: &serde_json::Value) -> [[f64; 3]; 3] {
    let a = &t["applied_transform"];
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| a[r][c].as_f64().unwrap()))
}

fn mul(a: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|r| (0..3).map(|c| a[r][c] * v[c]).sum())
}

#[test]
fn nerfstudios_export_of_a_capture_loads_as_the_capture_does() {
    let d = nerfstudio_room("ns-room");
    assert_eq!(detect(&d), Some("nerfstudio"));
    let ns = load(&d, &opts()).unwrap();
    let colmap = load(&fixtures().join("colmap_room"), &opts()).unwrap();
    assert_eq!(ns.format, "nerfstudio");
    let a = applied(&transforms(&d));
    for (n, c) in [(&ns.train, &colmap.train), (&ns.test, &colmap.test)] {
        assert_eq!(n.len(), c.len());
        for (n, c) in n.iter().zip(c) {
            // the same photo, camera and undistortion (COLMAP's
            // SIMPLE_RADIAL is nerfstudio's OPENCV with k1 alone)
            assert_eq!(n.name, c.name);
            assert_eq!((n.width, n.height), (c.width, c.height));
            for (x, y) in [n.fx, n.fy, n.cx, n.cy]
                .iter()
                .zip([c.fx, c.fy, c.cx, c.cy])
            {
                assert!((x - y).abs() < 1e-9, "{}: {x} vs {y}", n.name);
            }
            let (pn, pc) = (n.image.to_f32(), c.image.to_f32());
            let worst = pn
                .iter()
                .zip(&pc)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1.5 / 255.0, "{}: pixels differ by {worst}", n.name);
            assert_eq!(n.mask.is_some(), c.mask.is_some());
            // the same pose in nerfstudio's world: centres moved by the
            // applied transform, and so the camera's axes
            let (cn, cc) = (n.camera_center(), c.camera_center());
            let moved = mul(&a, cc);
            for k in 0..3 {
                assert!(
                    (cn[k] - moved[k]).abs() < 1e-9,
                    "{}: {cn:?} vs {moved:?}",
                    n.name
                );
            }
            let (rn, rc) = (n.world_to_camera, c.world_to_camera);
            for r in 0..3 {
                // row r of R_ns = row r of R_colmap · Aᵀ
                let row = mul(&a, [rc[r][0], rc[r][1], rc[r][2]]);
                for k in 0..3 {
                    assert!((rn[r][k] - row[k]).abs() < 1e-9, "{}", n.name);
                }
            }
        }
    }
    // the SfM points of sparse_pc.ply: COLMAP's, in nerfstudio's world
    // (written with six decimals), their colours kept
    let (pn, pc) = (ns.points.clone().unwrap(), colmap.points.unwrap());
    // (in the order nerfstudio's reader listed them: each found by place)
    assert_eq!(pn.len(), pc.len());
    for p in &pn {
        let q = pc
            .iter()
            .find(|q| {
                let moved = mul(&a, q.xyz);
                (0..3).all(|k| (p.xyz[k] - moved[k]).abs() < 1e-5)
            })
            .unwrap_or_else(|| panic!("{:?} is no COLMAP point moved", p.xyz));
        assert_eq!(p.rgb, q.rgb);
    }
    // the cameras alone, as the full load gives them
    same_cameras(&ns, &load_cameras(&d, &opts()).unwrap());
}

/// A change to a transforms file.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

/// Edits `transforms.json` in `d` with `f`.
fn edit(d: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut t = transforms(d);
    f(&mut t);
    std::fs::write(d.join("transforms.json"), t.to_string()).unwrap();
}

fn error(d: &Path) -> String {
    load(d, &opts()).unwrap_err().to_string()
}

#[test]
fn a_transforms_file_of_other_captures_loads_or_says_what_is_wrong() {
    let d = nerfstudio_room("ns-edits");
    // per-frame intrinsics (a capture app's file: each frame its own),
    // no points (random ones, with a note), a split named (used, as
    // nerfstudio uses it)
    edit(&d, |t| {
        let o = t.as_object_mut().unwrap();
        let shared: Vec<(String, serde_json::Value)> = ["fl_x", "fl_y", "cx", "cy", "w", "h", "k1"]
            .iter()
            .map(|k| (k.to_string(), o.remove(*k).unwrap()))
            .collect();
        o.remove("ply_file_path");
        o.insert(
            "test_filenames".into(),
            serde_json::json!(["images/IMG_0000.jpg"]),
        );
        for f in o["frames"].as_array_mut().unwrap() {
            for (k, v) in &shared {
                f[k] = v.clone();
            }
        }
    });
    let ds = load(&d, &opts()).unwrap();
    assert!(ds.points.is_none());
    let notes = ds.notes.join("\n");
    assert!(
        notes.contains("test_filenames is held out (1 photo)") && notes.contains("random points"),
        "{notes}"
    );
    let held: Vec<&str> = ds.test.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(held, ["IMG_0000.jpg"]);
    assert_eq!(ds.train.len(), 11);
    let colmap = load(&fixtures().join("colmap_room"), &opts()).unwrap();
    assert_eq!(ds.train[0].fx, colmap.train[0].fx);
    // what is refused, and where
    let d = nerfstudio_room("ns-bad");
    let original = transforms(&d);
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| t["camera_model"] = "OMNIDIRECTIONALSTEREO_L".into()),
            "camera_model: camera model OMNIDIRECTIONALSTEREO_L is not supported",
        ),
        (Box::new(|t| t["k4"] = 0.01.into()), "k4 = 0.01"),
        (
            Box::new(|t| {
                t["frames"][2].as_object_mut().unwrap().remove("file_path");
            }),
            "frames[2].file_path: missing",
        ),
        (
            Box::new(|t| t["frames"][1]["transform_matrix"][0][0] = 3.0.into()),
            "frames[1].transform_matrix: the 3×3 rotation part is not orthonormal",
        ),
        (
            Box::new(|t| t["frames"][3]["file_path"] = t["frames"][0]["file_path"].clone()),
            "frames[3].file_path: names IMG_",
        ),
        (
            Box::new(|t| t["fl_x"] = "big".into()),
            "fl_x: must be a finite number",
        ),
        (
            Box::new(|t| t["frames"][0]["mask_path"] = "elsewhere/m.png".into()),
            "frames[0].mask_path: names",
        ),
        (
            // a mirror is orthonormal, but no camera's pose
            Box::new(|t| {
                for r in 0..3 {
                    let x = t["frames"][4]["transform_matrix"][r][2].as_f64().unwrap();
                    t["frames"][4]["transform_matrix"][r][2] = (-x).into();
                }
            }),
            "frames[4].transform_matrix: the 3×3 rotation part is a mirror",
        ),
        (
            Box::new(|t| t["ply_file_path"] = "nosuch.ply".into()),
            "ply_file_path: names",
        ),
        (
            Box::new(|t| t["test_filenames"] = serde_json::json!(["images/nosuch.jpg"])),
            "test_filenames[0]: names images/nosuch.jpg, which no frame",
        ),
        (
            Box::new(|t| t["frames"] = serde_json::json!([])),
            "no training images",
        ),
    ];
    for (f, want) in cases {
        let mut t = original.clone();
        f(&mut t);
        std::fs::write(d.join("transforms.json"), t.to_string()).unwrap();
        let e = error(&d);
        assert!(
            e.contains(want) && e.contains("transforms.json"),
            "{want}: {e}"
        );
    }
    // a frame's mask_path is its mask, wherever it is (masks/ is not
    // looked in: it would not find this one)
    std::fs::create_dir_all(d.join("seg")).unwrap();
    let (w, h) = (
        original["w"].as_u64().unwrap() as u32,
        original["h"].as_u64().unwrap() as u32,
    );
    let m = image::GrayImage::from_fn(w, h, |x, y| {
        let inside = (60..80).contains(&x) && (50..70).contains(&y);
        image::Luma([if inside { 0 } else { 255 }])
    });
    m.save(d.join("seg/IMG_0001.png")).unwrap();
    let mut t = original.clone();
    let k = (0..12)
        .find(|&k| t["frames"][k]["file_path"] == "images/IMG_0001.jpg")
        .unwrap();
    t["frames"][k]["mask_path"] = "seg/IMG_0001.png".into();
    std::fs::write(d.join("transforms.json"), t.to_string()).unwrap();
    let ds = load(&d, &opts()).unwrap();
    let ignored = |name: &str| {
        let v = ds.train.iter().find(|v| v.name == name).unwrap();
        // (no mask: every pixel kept)
        v.mask
            .as_ref()
            .map_or(0, |m| m.to_f32().iter().filter(|&&x| x < 0.5).count())
    };
    // (the 20×20 block, beside the pixels undistortion leaves without a
    // source, which every photo has)
    let (with, without) = (ignored("IMG_0001.jpg"), ignored("IMG_0002.jpg"));
    assert!(with >= without + 300, "{with} vs {without}");
}

#[test]
fn a_fisheye_capture_is_undistorted_into_a_pinhole() {
    let d = nerfstudio_room("ns-fisheye");
    edit(&d, |t| {
        t["camera_model"] = "OPENCV_FISHEYE".into();
        t["k1"] = 0.05.into();
        t["k2"] = 0.01.into();
    });
    let ds = load(&d, &opts()).unwrap();
    let colmap = load(&fixtures().join("colmap_room"), &opts()).unwrap();
    for (f, c) in ds.train.iter().zip(&colmap.train) {
        // a fisheye's pinhole is another one than the near-pinhole's, with
        // the pixels no source reaches masked
        assert_eq!(f.name, c.name);
        assert!(f.fx > 0.0 && f.width > 0 && f.height > 0);
        assert_ne!(f.image.to_f32(), c.image.to_f32());
    }
    same_cameras(&ds, &load_cameras(&d, &opts()).unwrap());
}

/// What other apps write: a mask beside the photo named by `mask_path`,
/// the photos in `rgb/` with `rgb_2/` copies, names without an extension,
/// float32 noise in a matrix's last row, instant-ngp's `is_fisheye`, and
/// the file itself named as the dataset.
#[test]
fn other_apps_layouts_load() {
    let d = nerfstudio_room("ns-apps");
    std::fs::rename(d.join("images"), d.join("rgb")).unwrap();
    std::fs::create_dir_all(d.join("rgb_2")).unwrap();
    std::fs::create_dir_all(d.join("seg")).unwrap();
    for e in std::fs::read_dir(d.join("rgb")).unwrap() {
        let p = e.unwrap().path();
        let half = image::open(&p)
            .unwrap()
            .resize_exact(80, 60, image::imageops::Triangle);
        half.save(d.join("rgb_2").join(p.file_name().unwrap()))
            .unwrap();
    }
    let mut m = image::GrayImage::from_pixel(160, 120, image::Luma([255]));
    m.put_pixel(5, 5, image::Luma([0]));
    m.save(d.join("seg/first.png")).unwrap();
    edit(&d, |t| {
        for f in t["frames"].as_array_mut().unwrap() {
            let p = f["file_path"].as_str().unwrap().replace("images/", "rgb/");
            f["file_path"] = p.trim_end_matches(".jpg").to_string().into();
            f["transform_matrix"][3][3] = 0.99999994.into();
            if p.ends_with("IMG_0003.jpg") {
                f["mask_path"] = "seg/first.png".into();
            }
        }
    });
    let ds = load(&d, &opts()).unwrap();
    let v = ds.train.iter().find(|v| v.name == "IMG_0003.jpg").unwrap();
    assert!(v.mask.is_some(), "the mask_path's mask is the photo's");
    // (its folder is one the photos' cameras alone say is read, too)
    let cams = load_cameras(&d, &opts()).unwrap();
    assert!(
        cams.read_from.iter().any(|p| p.ends_with("seg")),
        "{:?}",
        cams.read_from
    );
    assert_eq!(ds.train.len() + ds.test.len(), 12);
    // --downscale 2 reads rgb_2/ (its copies, not the photos halved here)
    let half = load(
        &d,
        &LoadOptions {
            downscale: 2,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        half.read_from
            .iter()
            .filter(|p| p.ends_with("rgb_2"))
            .count(),
        1,
        "{:?}",
        half.read_from
    );
    // instant-ngp's fisheye flag without a model: a fisheye
    edit(&d, |t| {
        t.as_object_mut().unwrap().remove("camera_model");
        t["is_fisheye"] = true.into();
    });
    let fish = load(&d, &opts()).unwrap();
    let plain = load(&fixtures().join("colmap_room"), &opts()).unwrap();
    assert_ne!(fish.train[0].image.to_f32(), plain.train[0].image.to_f32());
    // the file named itself, beside a COLMAP model: read, and the folder
    // is read as COLMAP data with a note saying how to read the file
    let both = nerfstudio_room("ns-both");
    std::fs::create_dir_all(both.join("sparse")).unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    };
    copy(
        &fixtures().join("colmap_room/sparse/0"),
        &both.join("sparse/0"),
    );
    let as_colmap = load(&both, &opts()).unwrap();
    assert_eq!(as_colmap.format, "colmap");
    assert!(
        as_colmap.notes.join("\n").contains("name "),
        "{:?}",
        as_colmap.notes
    );
    let file = both.join("transforms.json");
    assert_eq!(detect(&file), Some("nerfstudio"));
    let as_file = load(&file, &opts()).unwrap();
    assert_eq!(as_file.format, "nerfstudio");
    same_cameras(&as_file, &load_cameras(&file, &opts()).unwrap());
}

/// The distortion keys land in COLMAP's parameters in COLMAP's order, from
/// k1… keys or `distortion_params`, the file's own winning over a frame's
/// (as nerfstudio reads them).
#[test]
fn distortion_keys_map_to_colmaps_parameters() {
    let params = |json: &str| {
        let c = parse_alone(json).unwrap_or_else(|e| panic!("{e}"));
        let rec = &c.model.rec;
        let cam = &rec.cameras[&rec.images[0].camera_id];
        (cam.model.name(), cam.params.clone())
    };
    let frame = r#""frames": [{"file_path": "images/a.png", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]"#;
    let base = r#""w": 64, "h": 48, "fl_x": 50, "fl_y": 51, "cx": 31, "cy": 23"#;
    assert_eq!(
        params(&format!(
            r#"{{{base}, "k1": 0.1, "k2": 0.2, "p1": 0.3, "p2": 0.4, {frame}}}"#
        )),
        ("OPENCV", vec![50.0, 51.0, 31.0, 23.0, 0.1, 0.2, 0.3, 0.4])
    );
    let full = (
        "FULL_OPENCV",
        vec![
            50.0, 51.0, 31.0, 23.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.0, 0.0,
        ],
    );
    assert_eq!(
        params(&format!(
            r#"{{{base}, "k1": 0.1, "k2": 0.2, "k3": 0.5, "p1": 0.3, "p2": 0.4, {frame}}}"#
        )),
        full
    );
    assert_eq!(
        params(&format!(
            r#"{{{base}, "distortion_params": [0.1, 0.2, 0.5, 0.0, 0.3, 0.4], {frame}}}"#
        )),
        full
    );
    assert_eq!(
        params(&format!(
            r#"{{{base}, "camera_model": "OPENCV_FISHEYE", "k1": 0.1, "k2": 0.2, "k3": 0.3, "k4": 0.4, {frame}}}"#
        )),
        (
            "OPENCV_FISHEYE",
            vec![50.0, 51.0, 31.0, 23.0, 0.1, 0.2, 0.3, 0.4]
        )
    );
    assert_eq!(
        params(&format!("{{{base}, {frame}}}")),
        ("PINHOLE", vec![50.0, 51.0, 31.0, 23.0])
    );
    // the file's intrinsics and distortion win over a frame's
    let own = r#""frames": [{"file_path": "images/a.png", "fl_x": 99, "k1": 0.9, "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]"#;
    assert_eq!(
        params(&format!(r#"{{{base}, "k1": 0.1, {own}}}"#)),
        ("OPENCV", vec![50.0, 51.0, 31.0, 23.0, 0.1, 0.0, 0.0, 0.0])
    );
}

/// A split named by `train_filenames` alone holds out the rest;
/// `val_filenames` stands for a missing `test_filenames`; a frame named in
/// neither list is left out, one named in both is in both halves.
#[test]
fn the_files_split_is_used() {
    let d = nerfstudio_room("ns-split");
    let names = |ds: &splat::data::Dataset| {
        let mut n: Vec<String> = ds.test.iter().map(|v| v.name.clone()).collect();
        n.sort();
        (ds.train.len(), n)
    };
    let train: Vec<String> = (2..12).map(|k| format!("images/IMG_{k:04}.jpg")).collect();
    edit(&d, |t| t["train_filenames"] = serde_json::json!(train));
    assert_eq!(
        names(&load(&d, &opts()).unwrap()),
        (10, vec!["IMG_0000.jpg".into(), "IMG_0001.jpg".into()])
    );
    edit(&d, |t| {
        t["train_filenames"] = serde_json::json!(train[1..]);
        t["val_filenames"] = serde_json::json!(["images/IMG_0005.jpg"]);
    });
    // IMG_0000, IMG_0001 and IMG_0002 are in neither list: left out; one
    // named in both is trained on and scored, as nerfstudio uses it
    let ds = load(&d, &opts()).unwrap();
    assert_eq!(names(&ds), (9, vec!["IMG_0005.jpg".into()]));
    assert!(ds.train.iter().all(|v| v.name != "IMG_0001.jpg"));
    assert!(ds.train.iter().any(|v| v.name == "IMG_0005.jpg"));
    // every photo once among the dataset's views (what paths and the
    // viewer list)
    assert_eq!(ds.views().count(), 9);
    assert_note(
        &ds.notes,
        "1 photo it names in train_filenames too (IMG_0005.jpg)",
    );
    same_cameras(&ds, &load_cameras(&d, &opts()).unwrap());
}

/// A `transforms.json` text read on its own (no photos, no points).
fn parse_alone(json: &str) -> Result<splat::data::nerfstudio::Capture, splat::data::DataError> {
    let (file, dir) = (Path::new("t.json"), Path::new("/nonexistent"));
    splat::data::nerfstudio::parse(json, file, dir, &opts(), false)
}

/// FISHEYE624 (Project Aria's lens) and EQUIRECTANGULAR project as
/// nerfstudio's own code does: the reference values are nerfstudio
/// 1.1.5's `fisheye624_project` (float64) and its `Cameras.generate_rays`
/// for an EQUIRECTANGULAR camera (float32; `/tmp/s52/ref624.py` and
/// `refeq.py` in the fifty-second session's notes).
#[test]
fn aria_fisheyes_and_panoramas_project_as_nerfstudio_does() {
    let camera = |json: &str| {
        let c = parse_alone(json).unwrap_or_else(|e| panic!("{e}"));
        let rec = &c.model.rec;
        rec.cameras[&rec.images[0].camera_id].clone()
    };
    let frame = r#""frames": [{"file_path": "images/a.png", "transform_matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]"#;
    let aria = camera(&format!(
        r#"{{"camera_model": "FISHEYE624", "w": 640, "h": 480, "fl_x": 300, "fl_y": 310,
            "cx": 320.5, "cy": 240.25, "distortion_params": [0.03, -0.02, 0.01, -0.004,
            0.002, -0.001, 0.0015, -0.0008, 0.0007, -0.0004, 0.0003, -0.0002], {frame}}}"#
    ));
    assert_eq!(aria.model.name(), "RAD_TAN_THIN_PRISM_FISHEYE");
    let nerfstudio = [
        ([0.1, -0.2, 1.0], [350.1057862439939, 179.1226521633817]),
        ([0.5, 0.3, 0.8], [484.4597891852602, 341.6790974403151]),
        ([-0.9, 0.4, 0.5], [14.970424330146898, 380.5684457740503]),
        ([1.2, -1.1, 0.6], [596.3389319415431, -20.722971574806877]),
        ([0.0, 0.0, 2.0], [320.5, 240.25]),
    ];
    for (d, want) in nerfstudio {
        let got = aria.project(d).unwrap();
        for k in 0..2 {
            assert!(
                (got[k] - want[k]).abs() < 1e-9,
                "{d:?}: {got:?} vs {want:?}"
            );
        }
    }
    // a 64×32 panorama; nerfstudio's rays in OpenGL axes (x right, y up,
    // looking down −z), ours in OpenCV's (y down, z forward)
    let pano = camera(&format!(
        r#"{{"camera_model": "EQUIRECTANGULAR", "w": 64, "h": 32, "fl_x": 32, "fl_y": 32,
            "cx": 32, "cy": 16, {frame}}}"#
    ));
    assert_eq!(pano.model.name(), "EQUIRECTANGULAR");
    let rays = [
        ([32.0, 16.0], [0.0, -4.371138828673793e-08, -1.0]),
        (
            [10.25, 3.5],
            [
                -0.28462257981300354,
                0.9415440559387207,
                0.18023529648780823,
            ],
        ),
        (
            [50.0, 28.0],
            [0.3753301501274109, -0.9238796234130859, 0.07465780526399612],
        ),
        (
            [8.0, 16.0],
            [
                -0.7071068286895752,
                -4.371139183945161e-08,
                0.7071068286895752,
            ],
        ),
        (
            [60.0, 10.0],
            [0.3181895315647125, 0.5555701851844788, 0.76817786693573],
        ),
    ];
    for (px, gl) in rays {
        let d = pano.unproject(px).unwrap();
        let n = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cv = [gl[0], -gl[1], -gl[2]];
        for k in 0..3 {
            assert!((d[k] / n - cv[k]).abs() < 1e-6, "{px:?}: {d:?} vs {cv:?}");
        }
        // and back to the same pixel
        let back = pano.project(d).unwrap();
        assert!((back[0] - px[0]).abs() < 1e-9 && (back[1] - px[1]).abs() < 1e-9);
    }
    // what nerfstudio's formulas cannot be given as COLMAP's models is
    // refused, naming the key
    let cases = [
        (
            r#""camera_model": "FISHEYE624", "w": 64, "h": 48, "fl_x": 30, "k1": 0.1"#,
            "k1: is not a FISHEYE624 term: its distortion is given as distortion_params",
        ),
        (
            r#""camera_model": "FISHEYE624", "w": 64, "h": 48, "fl_x": 30,
               "distortion_params": [0.1, 0, 0, 0, 0, 0]"#,
            "[k0, k1, k2, k3, k4, k5, p0, p1, s0, s1, s2, s3] (FISHEYE624's twelve terms), not 6",
        ),
        // FISHEYE624 without its terms (nerfstudio fails on it too)
        (
            r#""camera_model": "FISHEYE624", "w": 64, "h": 48, "fl_x": 30"#,
            "frames[0]: is a FISHEYE624 camera with no distortion",
        ),
        (
            r#""camera_model": "EQUIRECTANGULAR", "w": 64, "h": 32, "fl_x": 20"#,
            "fl_x: is 20, not 32: an EQUIRECTANGULAR panorama of 64×32 spans 360°",
        ),
        // (a centre at (w − 1)/2, pixel centres at whole numbers, is half a
        // pixel from COLMAP's model: refused rather than moved)
        (
            r#""camera_model": "EQUIRECTANGULAR", "w": 64, "h": 32, "cx": 31.5"#,
            "cx: is 31.5, not 32",
        ),
        (
            r#""camera_model": "VR180_L", "w": 64, "h": 32, "fl_x": 20"#,
            "VR180_L is not supported (a stereo panorama",
        ),
        // the model is what an unknown one's refusal names, before its terms
        (
            r#""camera_model": "fisheye624", "w": 64, "h": 48, "fl_x": 30,
               "distortion_params": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"#,
            "camera_model: camera model fisheye624 is not supported (names are upper case: \
             FISHEYE624)",
        ),
        (
            r#""camera_model": "OPENCV_FISHEYE", "w": 64, "h": 32, "fl_x": 20,
               "fisheye_crop_radius": -3"#,
            "fisheye_crop_radius: must be a positive number",
        ),
    ];
    for (keys, want) in cases {
        let e = parse_alone(&format!("{{{keys}, {frame}}}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    // a radius under a pixel (Eyeful Tower's fraction) is set aside, said
    let c = parse_alone(&format!(
        r#"{{"camera_model": "OPENCV_FISHEYE", "w": 64, "h": 32, "fl_x": 20,
            "fisheye_crop_radius": 0.43, {frame}}}"#
    ))
    .unwrap();
    assert!(c.model.circles.is_empty());
    assert_note(&c.notes, "0.43 is ignored");
    // a perspective camera ignores the radius, as nerfstudio's does
    let c = parse_alone(&format!(
        r#"{{"w": 64, "h": 32, "fl_x": 20, "fisheye_crop_radius": 30, {frame}}}"#
    ))
    .unwrap();
    assert!(c.model.circles.is_empty());
    assert_note(&c.notes, "no camera is a fisheye");
}

/// A panorama trains on the six faces of a cube and says so; a fisheye's circle that
/// leaves nothing to train on is an error, one past every corner a note
/// that nothing is left out.
#[test]
fn panoramas_and_image_circles_say_what_they_keep() {
    let d = nerfstudio_room("ns-pano");
    edit(&d, |t| {
        let o = t.as_object_mut().unwrap();
        for k in ["fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2"] {
            o.remove(k);
        }
        o.insert("camera_model".into(), "EQUIRECTANGULAR".into());
    });
    let ds = load(&d, &opts()).unwrap();
    let faces = "12 photos are EQUIRECTANGULAR panoramas: each is cut into the six faces of a \
                 cube (90° pinhole views named NAME@front, @right, @back, @left, @up and @down, \
                 as IMG_0000@front.jpg)";
    assert_note(&ds.notes, faces);
    // each panorama's faces in its half of the split, 160 / π pixels a side
    assert_eq!((ds.train.len(), ds.test.len()), (6 * 9, 6 * 3));
    assert!(ds.views().all(|v| (v.width, v.height) == (51, 51)));
    let held: Vec<&str> = ds.test.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        held[..6],
        ["front", "right", "back", "left", "up", "down"]
            .map(|f| { format!("{}@{f}.jpg", held[0].trim_end_matches("@front.jpg")) })
    );
    assert_eq!(ds.flight_views().len(), 12);
    // (and where the cameras alone are read: `render --path`, the viewer)
    let cams = load_cameras(&d, &opts()).unwrap();
    assert_note(&cams.notes, faces);
    assert_eq!(cams.views().count(), 72);
    let d = nerfstudio_room("ns-circle");
    let original = transforms(&d);
    let with_radius = |r: f64| {
        let mut t = original.clone();
        t["camera_model"] = "OPENCV_FISHEYE".into();
        t["fisheye_crop_radius"] = r.into();
        std::fs::write(d.join("transforms.json"), t.to_string()).unwrap();
    };
    with_radius(2.0);
    let e = error(&d);
    assert!(
        e.contains("masks: leave no pixel of any training photo to train on"),
        "{e}"
    );
    let inverted = LoadOptions {
        invert_masks: true,
        ..opts()
    };
    let e = load(&d, &inverted).unwrap_err().to_string();
    assert!(e.contains("--invert-masks is given"), "{e}");
    // (160×120 photos: the corners lie 100 px from the middle)
    with_radius(101.0);
    let ds = load(&d, &opts()).unwrap();
    assert_note(
        &ds.notes,
        "fisheye_crop_radius = 101 px reaches past every corner",
    );
    with_radius(60.0);
    let ds = load(&d, &opts()).unwrap();
    assert_note(&ds.notes, "at least fisheye_crop_radius = 60 px");
    // one photo masked out whole: said, and trained without it
    image::RgbImage::new(160, 120)
        .save(d.join("black.png"))
        .unwrap();
    let mut t = original.clone();
    for f in t["frames"].as_array_mut().unwrap() {
        if f["file_path"].as_str().unwrap().ends_with("IMG_0001.jpg") {
            f["mask_path"] = "black.png".into();
        }
    }
    std::fs::write(d.join("transforms.json"), t.to_string()).unwrap();
    let ds = load(&d, &opts()).unwrap();
    assert_note(
        &ds.notes,
        "1 training photo (IMG_0001.jpg) keeps no pixel after its masks",
    );
}
