//! Datasets end to end: `synth` writes NeRF-synthetic, the loader reads it
//! back; COLMAP files written here in both formats load to the same views;
//! broken datasets fail naming the file and field.

use std::path::Path;

use crate::common::{on_threads, rotation_to_quat, same_cameras, tmp};
use splat::data::synth::{write_dataset, SynthOptions, CAMERA_DISTANCE};
use splat::data::{load, load_cameras, LoadOptions, Pixels8};

fn small_synth(dir: &Path) {
    write_dataset(
        dir,
        &SynthOptions {
            train_views: 5,
            test_views: 3,
            size: 24,
            seed: 3,
        },
    )
    .unwrap();
}

#[test]
fn synth_round_trips_through_the_nerf_loader() {
    let dir = tmp("synth");
    small_synth(&dir);
    for bg in [[1.0f32, 1.0, 1.0], [0.0, 0.0, 0.0]] {
        let ds = load(
            &dir,
            &LoadOptions {
                background: bg,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(ds.format, "nerf-synthetic");
        assert_eq!((ds.train.len(), ds.test.len()), (5, 3));
        let v = &ds.train[0];
        assert_eq!((v.width, v.height), (24, 24));
        assert_eq!(v.image.len(), 24 * 24 * 3);
        let expect_f = 12.0 / (0.5 * splat::data::synth::CAMERA_ANGLE_X).tan();
        assert!((v.fx - expect_f).abs() < 1e-9 && v.fx == v.fy);
        let c = v.camera_center();
        let r = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
        assert!((r - CAMERA_DISTANCE).abs() < 1e-9, "{r}");
        // the origin projects to the image centre (the camera looks at it)
        let m = v.world_to_camera;
        let z = m[2][3];
        assert!(z > 0.0, "origin in front of the camera");
        assert!((m[0][3] / z).abs() < 1e-9 && (m[1][3] / z).abs() < 1e-9);
        // the top-left corner is background: alpha composited on `bg`
        assert_eq!(&v.image.to_f32()[..3], &bg[..]);
    }
    // re-compositing through the kept alpha gives the other background's image
    let on = |background: [f32; 3]| {
        let opts = LoadOptions {
            background,
            ..LoadOptions::default()
        };
        load(&dir, &opts).unwrap().train.swap_remove(1)
    };
    let (vw, vb) = (&on([1.0; 3]), &on([0.0; 3]));
    let alpha = vw
        .alpha
        .as_ref()
        .expect("synth images are transparent around the scene");
    assert_eq!(alpha.len(), 24 * 24);
    assert!(alpha.bytes().contains(&0) && alpha.bytes().contains(&255));
    // (each photo and the alpha are rounded to 8 bits: half a level each)
    for (a, b) in vw.image_on([0.0; 3]).iter().zip(vb.image.iter()) {
        assert!((a - b).abs() <= 1.5 / 255.0 + 1e-6, "{a} vs {b}");
    }
    assert_eq!(vw.image_on([1.0; 3]), vw.image.to_f32());
    // a background between the 8-bit levels: a pixel with no coverage still
    // reads as exactly that background, on its own or on another
    let vg = &on([0.5; 3]);
    let (on_grey, on_blue) = (vg.image_on([0.5; 3]), vg.image_on([0.0, 0.0, 1.0]));
    let a = vg.alpha.as_ref().unwrap();
    let empty: Vec<usize> = (0..a.len()).filter(|&p| a.bytes()[p] == 0).collect();
    assert!(!empty.is_empty());
    // (0.1 − 1 + 1 is not 0.1 in f32: the empty pixels take `bg` itself)
    let on_dark = vw.image_on([0.1; 3]);
    for p in empty {
        assert_eq!(on_grey[3 * p..3 * p + 3], [0.5; 3], "pixel {p}");
        assert_eq!(on_blue[3 * p..3 * p + 3], [0.0, 0.0, 1.0], "pixel {p}");
        assert_eq!(on_dark[3 * p..3 * p + 3], [0.1; 3], "pixel {p}");
    }
    // downscaling halves the size and the focal length
    let ds = load(
        &dir,
        &LoadOptions {
            downscale: 2,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ds.train[0].width, 12);
    assert_eq!(ds.train[0].alpha.as_ref().map(|a| a.len()), Some(12 * 12));
    let full = load(&dir, &LoadOptions::default()).unwrap();
    assert!((ds.train[0].fx * 2.0 - full.train[0].fx).abs() < 1e-9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn broken_nerf_datasets_name_file_and_field() {
    let dir = tmp("broken");
    small_synth(&dir);
    let err = |d: &Path| load(d, &LoadOptions::default()).unwrap_err().to_string();
    // a missing image
    std::fs::remove_file(dir.join("train/r_1.png")).unwrap();
    let e = err(&dir);
    assert!(e.contains("r_1") && e.contains("not found"), "{e}");
    // a truncated image
    let png = std::fs::read(dir.join("train/r_2.png")).unwrap();
    std::fs::write(dir.join("train/r_1.png"), &png[..png.len() / 2]).unwrap();
    let e = err(&dir);
    assert!(e.contains("r_1.png"), "{e}");
    // an image of the wrong size
    image::RgbaImage::new(10, 10)
        .save(dir.join("train/r_1.png"))
        .unwrap();
    let e = err(&dir);
    assert!(e.contains("r_1.png") && e.contains("10×10"), "{e}");
    std::fs::copy(dir.join("train/r_2.png"), dir.join("train/r_1.png")).unwrap();
    assert!(load(&dir, &LoadOptions::default()).is_ok());
    // malformed JSON
    std::fs::write(
        dir.join("transforms_train.json"),
        "{\"camera_angle_x\": 0.6, ",
    )
    .unwrap();
    let e = err(&dir);
    assert!(
        e.contains("transforms_train.json") && e.contains("line 1"),
        "{e}"
    );
    // an empty dataset
    std::fs::write(
        dir.join("transforms_train.json"),
        "{\"camera_angle_x\": 0.6, \"frames\": []}",
    )
    .unwrap();
    let e = err(&dir);
    assert!(e.contains("no training images"), "{e}");
    // not a dataset at all
    let e = err(&dir.join("train"));
    assert!(e.contains("neither"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a COLMAP reconstruction of the synth dataset's training cameras
/// (OpenCV world-to-camera, as COLMAP stores it) in text and binary form.
fn write_colmap(dir: &Path, binary: bool) {
    let src = tmp(&format!("colmap-src-{binary}"));
    small_synth(&src);
    let ds = load(&src, &LoadOptions::default()).unwrap();
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let sparse = dir.join("sparse/0");
    std::fs::create_dir_all(&sparse).unwrap();
    let mut cams_txt = String::from("# cameras\n");
    let mut imgs_txt = String::from("# images\n");
    let mut cams_bin = Vec::new();
    let mut imgs_bin = Vec::new();
    cams_bin.extend(1u64.to_le_bytes());
    imgs_bin.extend((ds.train.len() as u64).to_le_bytes());
    let v0 = &ds.train[0];
    cams_txt.push_str(&format!(
        "1 PINHOLE 24 24 {} {} {} {}\n",
        v0.fx, v0.fy, v0.cx, v0.cy
    ));
    cams_bin.extend(1i32.to_le_bytes());
    cams_bin.extend(1i32.to_le_bytes());
    cams_bin.extend(24u64.to_le_bytes());
    cams_bin.extend(24u64.to_le_bytes());
    for p in [v0.fx, v0.fy, v0.cx, v0.cy] {
        cams_bin.extend(p.to_le_bytes());
    }
    for (i, v) in ds.train.iter().enumerate() {
        let name = format!("img_{i:02}.png");
        std::fs::copy(src.join(&v.name), images.join(&name)).unwrap();
        let m = v.world_to_camera;
        let q = rotation_to_quat([
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ]);
        let t = [m[0][3], m[1][3], m[2][3]];
        imgs_txt.push_str(&format!(
            "{} {} {} {} {} {} {} {} 1 {name}\n\n",
            i + 1,
            q[0],
            q[1],
            q[2],
            q[3],
            t[0],
            t[1],
            t[2]
        ));
        imgs_bin.extend((i as i32 + 1).to_le_bytes());
        for x in q.iter().chain(&t) {
            imgs_bin.extend(x.to_le_bytes());
        }
        imgs_bin.extend(1i32.to_le_bytes());
        imgs_bin.extend(name.as_bytes());
        imgs_bin.push(0);
        imgs_bin.extend(0u64.to_le_bytes());
    }
    let pts_txt = "1 0.1 0.2 0.3 10 20 30 0.5 1 0\n2 -0.1 0 0.4 200 100 50 0.5\n";
    let mut pts_bin = Vec::new();
    pts_bin.extend(2u64.to_le_bytes());
    for (id, xyz, rgb) in [
        (1u64, [0.1, 0.2, 0.3], [10u8, 20, 30]),
        (2, [-0.1, 0.0, 0.4], [200, 100, 50]),
    ] {
        pts_bin.extend(id.to_le_bytes());
        for x in xyz {
            pts_bin.extend(f64::to_le_bytes(x));
        }
        pts_bin.extend(rgb);
        pts_bin.extend(0.5f64.to_le_bytes());
        pts_bin.extend(0u64.to_le_bytes());
    }
    if binary {
        std::fs::write(sparse.join("cameras.bin"), cams_bin).unwrap();
        std::fs::write(sparse.join("images.bin"), imgs_bin).unwrap();
        std::fs::write(sparse.join("points3D.bin"), pts_bin).unwrap();
    } else {
        std::fs::write(sparse.join("cameras.txt"), cams_txt).unwrap();
        std::fs::write(sparse.join("images.txt"), imgs_txt).unwrap();
        std::fs::write(sparse.join("points3D.txt"), pts_txt).unwrap();
    }
    std::fs::remove_dir_all(&src).unwrap();
}

#[test]
fn colmap_text_and_binary_agree() {
    let (a, b) = (tmp("colmap-txt"), tmp("colmap-bin"));
    write_colmap(&a, false);
    write_colmap(&b, true);
    let opts = LoadOptions {
        holdout_every: 2,
        ..LoadOptions::default()
    };
    let (ta, tb) = (load(&a, &opts).unwrap(), load(&b, &opts).unwrap());
    assert_eq!(ta.format, "colmap");
    // 5 images sorted by name, every 2nd held out: 0, 2, 4 test
    assert_eq!((ta.train.len(), ta.test.len()), (2, 3));
    assert_eq!(ta.test[1].name, "img_02.png");
    for (x, y) in ta
        .train
        .iter()
        .chain(&ta.test)
        .zip(tb.train.iter().chain(&tb.test))
    {
        assert_eq!(x.name, y.name);
        assert_eq!(x.image, y.image);
        for i in 0..4 {
            for j in 0..4 {
                assert!((x.world_to_camera[i][j] - y.world_to_camera[i][j]).abs() < 1e-9);
            }
        }
    }
    let pa = ta.points.unwrap();
    assert_eq!(pa, tb.points.unwrap());
    assert_eq!(pa[1].rgb, [200, 100, 50]);
    // the COLMAP poses reproduce the NeRF ones they were made from
    let src = tmp("colmap-check");
    small_synth(&src);
    let nerf = load(&src, &LoadOptions::default()).unwrap();
    let c1 = ta.test[1].camera_center();
    let c2 = nerf.train[2].camera_center();
    for k in 0..3 {
        assert!((c1[k] - c2[k]).abs() < 1e-9);
    }
    // a model COLMAP does not define is refused by name
    std::fs::write(
        a.join("sparse/0/cameras.txt"),
        "1 OPENCV_WIDE 24 24 1 1 12 12 0 0 0 0\n",
    )
    .unwrap();
    let e = load(&a, &opts).unwrap_err().to_string();
    assert!(
        e.contains("cameras.txt") && e.contains("unknown camera model OPENCV_WIDE"),
        "{e}"
    );
    // truncated binary images file
    let p = b.join("sparse/0/images.bin");
    let data = std::fs::read(&p).unwrap();
    std::fs::write(&p, &data[..data.len() - 20]).unwrap();
    let e = load(&b, &opts).unwrap_err().to_string();
    assert!(e.contains("images.bin") && e.contains("truncated"), "{e}");
    for d in [a, b, src] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A NeRF-synthetic split is read a few photos at a time, each narrowed
/// to `max_width` (with its mask) as it is read: the views are those read
/// at full size and narrowed afterwards, bit for bit, whatever the number
/// of threads decoding them.
#[test]
fn nerf_photos_narrowed_as_they_load_are_those_narrowed_afterwards() {
    let dir = tmp("nerf-narrow");
    small_synth(&dir);
    // a mask for every training photo: a disc kept, the corners ignored
    let masks = dir.join("train/masks");
    std::fs::create_dir_all(&masks).unwrap();
    for e in std::fs::read_dir(dir.join("train")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "png") {
            let (w, h) = image::image_dimensions(&p).unwrap();
            let m = image::GrayImage::from_fn(w, h, |x, y| {
                let (dx, dy) = (x as f64 - w as f64 / 2.0, y as f64 - h as f64 / 2.0);
                image::Luma([if dx * dx + dy * dy < (w * w) as f64 / 5.0 {
                    255
                } else {
                    0
                }])
            });
            m.save(masks.join(p.file_name().unwrap())).unwrap();
        }
    }
    let full = load(&dir, &LoadOptions::default()).unwrap();
    let narrow = full.train[0].width * 3 / 4;
    let mut want = full.clone();
    for v in want.train.iter_mut().chain(want.test.iter_mut()) {
        splat::data::limit_width(v, narrow);
    }
    for threads in [1, 3] {
        let opts = LoadOptions {
            max_width: Some(narrow),
            ..LoadOptions::default()
        };
        let got = on_threads(threads, || load(&dir, &opts)).unwrap();
        let (g, w): (Vec<_>, Vec<_>) = (
            got.train.iter().chain(&got.test).collect(),
            want.train.iter().chain(&want.test).collect(),
        );
        assert_eq!(g.len(), w.len());
        assert!(g.iter().filter(|v| v.mask.is_some()).count() >= 2);
        for (g, w) in g.iter().zip(&w) {
            assert_eq!((&g.name, g.width, g.height), (&w.name, w.width, w.height));
            assert_eq!(g.width, narrow);
            assert_eq!([g.fx, g.fy, g.cx, g.cy], [w.fx, w.fy, w.cx, w.cy]);
            // the loader rounds to 8 bits once, after narrowing;
            // `limit_width` narrows photos already rounded
            let near = |a: &Pixels8, b: &Pixels8| {
                a.len() == b.len()
                    && a.bytes()
                        .iter()
                        .zip(b.bytes())
                        .all(|(x, y)| x.abs_diff(*y) <= 1)
            };
            assert!(near(&g.image, &w.image), "{}", g.name);
            assert_eq!(g.mask, w.mask, "{}", g.name);
            assert_eq!(g.alpha.is_some(), w.alpha.is_some(), "{}", g.name);
            assert!(
                g.alpha.iter().zip(&w.alpha).all(|(a, b)| near(a, b)),
                "{}",
                g.name
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A NeRF-synthetic folder's cameras alone are the full load's, to the
/// bit, downscaled and narrowed too; a missing photo takes its split's
/// size.
#[test]
fn nerf_cameras_alone_are_those_the_full_load_gives() {
    let dir = tmp("nerf-cameras");
    small_synth(&dir);
    for opts in [
        LoadOptions::default(),
        LoadOptions {
            downscale: 2,
            background: [0.0; 3],
            ..LoadOptions::default()
        },
        LoadOptions {
            max_width: Some(10),
            ..LoadOptions::default()
        },
    ] {
        let full = load(&dir, &opts).unwrap();
        same_cameras(&full, &load_cameras(&dir, &opts).unwrap());
        assert_eq!(load_cameras(&dir, &opts).unwrap().read_from, full.read_from);
        // the photos narrowed to the width limit are said (5 + 3 of 24 px)
        let said = full
            .notes
            .iter()
            .any(|n| n.starts_with("8 of the 8 photos are wider than 10 pixels, the width limit"));
        assert_eq!(said, opts.max_width.is_some(), "{:?}", full.notes);
    }
    let full = load(&dir, &LoadOptions::default()).unwrap();
    std::fs::remove_file(dir.join("train/r_1.png")).unwrap();
    assert!(load(&dir, &LoadOptions::default()).is_err());
    // (named `train/r_1.png` still, though the transforms say `r_1`)
    same_cameras(&full, &load_cameras(&dir, &LoadOptions::default()).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
