//! A synthetic capture photographed through known lens distortion, stored
//! as COLMAP writes it, loads into pinhole views that match what a pinhole
//! camera at the same pose sees (its "pinhole twin"), over the pixels the
//! loader keeps. Without undistortion the same photos would not match.

use crate::common::{assert_note, tmp, write_colmap_bin};
use splat::cameras::{CameraModel, Intrinsics};
use splat::data::synth::{look_at_origin, Scene, CAMERA_DISTANCE};
use splat::data::{load, opengl_c2w_to_opencv_w2c, LoadOptions, Mat4, Pixels8, View};

const W: u32 = 96;
const H: u32 = 72;

fn eyes() -> Vec<[f64; 3]> {
    (0..4)
        .map(|i| {
            let az = 0.4 + i as f64 * 1.3;
            let el: f64 = 0.5;
            // close enough that the scene fills the frame, edges included
            let r = 0.55 * CAMERA_DISTANCE;
            [
                r * el.cos() * az.cos(),
                r * el.cos() * az.sin(),
                r * el.sin(),
            ]
        })
        .collect()
}

/// Writes the capture through `cam` and returns the OpenGL camera-to-world
/// of each photo.
fn write_capture(dir: &std::path::Path, scene: &Scene, cam: &Intrinsics) -> Vec<Mat4> {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut poses = Vec::new();
    let mut images = Vec::new();
    for (i, eye) in eyes().into_iter().enumerate() {
        let c2w = look_at_origin(eye);
        let rgba = scene.render_camera(&c2w, W, H, |p| cam.unproject(p));
        let name = format!("p{i}.png");
        image::RgbaImage::from_raw(W, H, rgba)
            .unwrap()
            .save(dir.join("images").join(&name))
            .unwrap();
        images.push((name, opengl_c2w_to_opencv_w2c(&c2w)));
        poses.push(c2w);
    }
    write_colmap_bin(dir, cam, &images);
    poses
}

/// An RGBA pixel composited on black, made opaque.
fn on_black(px: &mut [u8]) {
    let a = px[3] as f32 / 255.0;
    for c in px.iter_mut().take(3) {
        *c = (*c as f32 * a).round() as u8;
    }
    px[3] = 255;
}

/// PSNR over kept pixels between a loaded view and the pinhole twin's
/// render at the view's own intrinsics (both on black).
fn psnr_against_twin(scene: &Scene, v: &View, c2w: &Mat4) -> f64 {
    let twin = scene.render_camera(c2w, v.width, v.height, |p| {
        Some([(p[0] - v.cx) / v.fx, (p[1] - v.cy) / v.fy, 1.0])
    });
    let mut se = 0.0;
    let mut n = 0usize;
    for i in 0..(v.width * v.height) as usize {
        if v.mask.as_ref().is_some_and(|m| m.get(i) == 0.0) {
            continue;
        }
        let a = twin[i * 4 + 3] as f64 / 255.0;
        for c in 0..3 {
            let t = twin[i * 4 + c] as f64 / 255.0 * a;
            se += (t - v.image.get(i * 3 + c) as f64).powi(2);
        }
        n += 3;
    }
    assert!(n > 0);
    -10.0 * (se / n as f64).log10()
}

#[test]
fn undistorted_photos_match_the_pinhole_twin() {
    let scene = Scene::new(5);
    // OPENCV with noticeable barrel distortion (≈ 6 px at the corners)
    let cam = Intrinsics::new(
        CameraModel::OpenCv,
        W as u64,
        H as u64,
        vec![80.0, 81.0, 48.5, 35.5, -0.2, 0.05, 0.003, -0.002],
    )
    .unwrap();
    let dir = tmp("distorted-opencv");
    let poses = write_capture(&dir, &scene, &cam);
    let opts = LoadOptions {
        background: [0.0; 3],
        holdout_every: 0,
        ..LoadOptions::default()
    };
    let ds = load(&dir, &opts).unwrap();
    assert_eq!(ds.train.len(), 4);
    for (v, c2w) in ds.train.iter().zip(&poses) {
        // the undistorted view is a different pinhole than the photo
        assert!(v.width != W || v.height != H, "{}×{}", v.width, v.height);
        let good = psnr_against_twin(&scene, v, c2w);
        // the same photo read as if it were a pinhole of the same focal
        // length: what loading did before undistortion
        let naive = View {
            width: W,
            height: H,
            fx: 80.0,
            fy: 81.0,
            cx: 48.5,
            cy: 35.5,
            image: {
                let img = image::open(dir.join("images").join(&v.name))
                    .unwrap()
                    .to_rgba32f();
                Pixels8::quantize(
                    &img.pixels()
                        .flat_map(|p| [p.0[0] * p.0[3], p.0[1] * p.0[3], p.0[2] * p.0[3]])
                        .collect::<Vec<f32>>(),
                )
            },
            mask: None,
            ..v.clone()
        };
        let bad = psnr_against_twin(&scene, &naive, c2w);
        eprintln!(
            "{}: undistorted {good:.1} dB, read as pinhole {bad:.1} dB",
            v.name
        );
        // measured: 30.1-33.3 dB undistorted (Lanczos-3; bilinear
        // resampling gave 28.6-30.9, so 29 dB guards the kernel), 21.1-22.4
        // dB read as a pinhole
        assert!(good > 29.0, "{}: {good} dB", v.name);
        assert!(good > bad + 5.0, "{}: {good} vs {bad} dB", v.name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fisheye_photos_are_undistorted_too() {
    let scene = Scene::new(6);
    let cam = Intrinsics::new(
        CameraModel::OpenCvFisheye,
        W as u64,
        H as u64,
        vec![45.0, 45.0, 48.0, 36.0, 0.02, -0.01, 0.0, 0.0],
    )
    .unwrap();
    let dir = tmp("distorted-fisheye");
    let poses = write_capture(&dir, &scene, &cam);
    let opts = LoadOptions {
        background: [0.0; 3],
        holdout_every: 0,
        ..LoadOptions::default()
    };
    let ds = load(&dir, &opts).unwrap();
    assert_eq!(ds.train.len(), 4);
    for (v, c2w) in ds.train.iter().zip(&poses) {
        let good = psnr_against_twin(&scene, v, c2w);
        eprintln!("{}: {}×{}, {good:.1} dB", v.name, v.width, v.height);
        // measured 29.0-31.7 dB (bilinear with COLMAP's choice of pinhole:
        // 24.6-27.0): the output is 156×90 from a 96×72 photo, so its
        // edges are stretched (upsampled) and blurrier than the twin
        assert!(good > 25.8, "{}: {good} dB", v.name);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Project Aria capture as nerfstudio's `process_project_aria` writes it:
/// FISHEYE624 photos whose corners, beyond `fisheye_crop_radius`, are the
/// lens's vignette (painted red here). It loads into pinhole views that
/// match the pinhole twin over the pixels kept, none of the vignette among
/// them; the same file without the radius lets the red in.
#[test]
fn an_aria_capture_keeps_to_its_image_circle() {
    let scene = Scene::new(7);
    let params = [
        44.0, 45.0, 48.0, 36.0, 0.02, -0.01, 0.004, -0.001, 0.0005, -0.0002, 0.001, -0.0005,
        0.0004, -0.0002, 0.0003, -0.0001,
    ];
    let cam = Intrinsics::new(
        CameraModel::RadTanThinPrismFisheye,
        W as u64,
        H as u64,
        params.to_vec(),
    )
    .unwrap();
    let radius = 33.0;
    let dir = tmp("distorted-aria");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut frames = Vec::new();
    let mut poses = Vec::new();
    for (i, eye) in eyes().into_iter().enumerate() {
        let c2w = look_at_origin(eye);
        let mut rgba = scene.render_camera(&c2w, W, H, |p| cam.unproject(p));
        // an opaque photo (the scene on black, so that no pixel is
        // masked by its alpha), red beyond nerfstudio's circle: from the
        // middle pixel, by pixel index
        for (k, px) in rgba.chunks_mut(4).enumerate() {
            let (x, y) = ((k as u32 % W) as f64, (k as u32 / W) as f64);
            if (x - (W / 2) as f64).hypot(y - (H / 2) as f64) >= radius {
                px.copy_from_slice(&[255, 0, 0, 255]);
            } else {
                on_black(px);
            }
        }
        let name = format!("images/a{i}.png");
        image::RgbaImage::from_raw(W, H, rgba)
            .unwrap()
            .save(dir.join(&name))
            .unwrap();
        frames.push(serde_json::json!({"file_path": name, "transform_matrix": c2w}));
        poses.push(c2w);
    }
    let file = |crop: bool| {
        let mut t = serde_json::json!({
            "camera_model": "FISHEYE624", "w": W, "h": H,
            "fl_x": params[0], "fl_y": params[1], "cx": params[2], "cy": params[3],
            "distortion_params": params[4..], "frames": frames,
        });
        if crop {
            t["fisheye_crop_radius"] = radius.into();
        }
        std::fs::write(dir.join("transforms.json"), t.to_string()).unwrap();
    };
    let opts = LoadOptions {
        background: [0.0; 3],
        holdout_every: 0,
        ..LoadOptions::default()
    };
    let kept = |v: &View| {
        v.mask.as_ref().map_or(v.width * v.height, |m| {
            m.to_f32().iter().filter(|&&x| x > 0.5).count() as u32
        })
    };
    file(true);
    let ds = load(&dir, &opts).unwrap();
    assert_eq!(ds.format, "nerfstudio");
    assert_note(&ds.notes, "fisheye_crop_radius = 33");
    file(false);
    let uncropped = load(&dir, &opts).unwrap();
    assert_eq!((ds.train.len(), uncropped.train.len()), (4, 4));
    for ((v, u), c2w) in ds.train.iter().zip(&uncropped.train).zip(&poses) {
        let good = psnr_against_twin(&scene, v, c2w);
        let bad = psnr_against_twin(&scene, u, c2w);
        eprintln!(
            "{}: {}×{}, {good:.1} dB over {} pixels; without the circle {bad:.1} dB over {}",
            v.name,
            v.width,
            v.height,
            kept(v),
            kept(u)
        );
        // measured: 30.6-32.1 dB over 3,811 of 158×90 pixels, and 6.7 dB
        // over all of them without the circle
        assert!(kept(v) < kept(u));
        assert!(good > 28.5, "{}: {good} dB", v.name);
        assert!(good > bad + 5.0, "{}: {good} vs {bad} dB", v.name);
    }
    // half-size copies in `images_2/` for `--downscale 2`: the circle is
    // scaled with them (drawn at the camera's size it would keep the red)
    std::fs::create_dir_all(dir.join("images_2")).unwrap();
    for i in 0..poses.len() {
        let full = image::open(dir.join(format!("images/a{i}.png"))).unwrap();
        let half = full.resize_exact(W / 2, H / 2, image::imageops::FilterType::Triangle);
        half.save(dir.join(format!("images_2/a{i}.png"))).unwrap();
    }
    file(true);
    let half = load(
        &dir,
        &LoadOptions {
            downscale: 2,
            ..opts.clone()
        },
    )
    .unwrap();
    for ((v, full), c2w) in half.train.iter().zip(&ds.train).zip(&poses) {
        let share = |v: &View| kept(v) as f64 / (v.width * v.height) as f64;
        let good = psnr_against_twin(&scene, v, c2w);
        eprintln!(
            "{} at half size: {}×{}, {good:.1} dB, {:.3} kept (full size {:.3})",
            v.name,
            v.width,
            v.height,
            share(v),
            share(full)
        );
        // measured: 26.1-27.4 dB over 0.208 of the pixels, against 0.268
        // at full size (the taps' rule trims the same three source pixels
        // from a circle half as large); the circle drawn at the camera's
        // size would reach past the copies' corners and keep the red
        assert!(good > 24.0, "{}: {good} dB", v.name);
        let (s, f) = (share(v), share(full));
        assert!(s > 0.5 * f && s < f + 0.02, "{s} vs {f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A capture of 360° panoramas (EQUIRECTANGULAR, as COLMAP 4 and
/// nerfstudio write them) loads as six 90° views a panorama, the faces of
/// a cube, each matching the pinhole twin at the pose it claims; a flight
/// through the capture visits each panorama once.
#[test]
fn panoramas_load_as_the_six_faces_of_a_cube() {
    let scene = Scene::new(8);
    let (pw, ph) = (192u32, 96u32);
    let cam = Intrinsics::new(
        CameraModel::Equirectangular,
        pw as u64,
        ph as u64,
        vec![pw as f64, ph as f64],
    )
    .unwrap();
    let dir = tmp("distorted-panorama");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let mut images = Vec::new();
    let mut centres = Vec::new();
    // among the scene's objects, above its platform, so that every face
    // sees something
    let eyes = [
        [0.15, -0.05, -0.2],
        [0.1, 0.2, 0.0],
        [-0.1, 0.05, -0.3],
        [0.05, -0.15, 0.25],
    ];
    for (i, eye) in eyes.into_iter().enumerate() {
        let c2w = look_at_origin(eye);
        let mut rgba = scene.render_camera(&c2w, pw, ph, |p| cam.unproject(p));
        // opaque (the scene on black), so that no face is masked whole by
        // the photo's alpha where it sees nothing
        rgba.chunks_mut(4).for_each(on_black);
        let name = format!("p{i}.png");
        image::RgbaImage::from_raw(pw, ph, rgba)
            .unwrap()
            .save(dir.join("images").join(&name))
            .unwrap();
        images.push((name, opengl_c2w_to_opencv_w2c(&c2w)));
        centres.push([c2w[0][3], c2w[1][3], c2w[2][3]]);
    }
    write_colmap_bin(&dir, &cam, &images);
    let opts = LoadOptions {
        background: [0.0; 3],
        holdout_every: 0,
        ..LoadOptions::default()
    };
    let ds = load(&dir, &opts).unwrap();
    assert_note(
        &ds.notes,
        "4 photos are EQUIRECTANGULAR panoramas: each is cut",
    );
    assert_eq!(ds.train.len(), 24);
    let mut scores = Vec::new();
    for (k, v) in ds.train.iter().enumerate() {
        let (i, face) = (
            k / 6,
            ["front", "right", "back", "left", "up", "down"][k % 6],
        );
        assert_eq!(v.name, format!("p{i}@{face}.png"));
        // 192 / π ≈ 61 pixels a side, at the panorama's centre
        assert_eq!((v.width, v.height, v.fx, v.cx), (61, 61, 30.5, 30.5));
        let c = v.camera_center();
        assert!((0..3).all(|j| (c[j] - centres[i][j]).abs() < 1e-9), "{c:?}");
        // the twin: the scene seen by a pinhole at the pose the view claims
        let good = psnr_against_twin(&scene, v, &opencv_w2c_to_opengl_c2w(&v.world_to_camera));
        eprintln!("{}: {good:.1} dB", v.name);
        scores.push(good);
    }
    // measured: 31.0-45.3 dB (a face on one plain sphere 66.7, one that
    // sees nothing but black exactly equal)
    let worst = scores.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(worst > 29.0, "{scores:?}");
    // the faces a panorama sees the scene through, turned the wrong way
    // (the face's rotation applied transposed), do not match
    let v = &ds.train[1];
    let mut wrong = v.world_to_camera;
    let r = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]];
    let front = &ds.train[0].world_to_camera;
    for (i, row) in wrong.iter_mut().take(3).enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = (0..3).map(|k| r[i][k] * front[k][j]).sum();
        }
    }
    let bad = psnr_against_twin(&scene, v, &opencv_w2c_to_opengl_c2w(&wrong));
    assert!(bad < worst - 5.0, "{bad} dB");
    // `render --path` flies through the fronts
    let flight: Vec<&str> = ds.flight_views().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        flight,
        [
            "p0@front.png",
            "p1@front.png",
            "p2@front.png",
            "p3@front.png"
        ]
    );
    // the cameras alone: the same views
    let cams = splat::data::load_cameras(&dir, &opts).unwrap();
    let named = |d: &splat::data::Dataset| -> Vec<String> {
        d.train.iter().map(|v| v.name.clone()).collect()
    };
    assert_eq!(named(&cams), named(&ds));
    for (a, b) in cams.train.iter().zip(&ds.train) {
        assert_eq!(a.world_to_camera, b.world_to_camera);
        let camera = |v: &View| (v.width, v.height, v.fx, v.fy, v.cx, v.cy);
        assert_eq!(camera(a), camera(b));
    }
    // at half size (`--downscale 2`), held out every other panorama: each
    // face halved, all six of a panorama in its half, as the cameras say
    let half = LoadOptions {
        downscale: 2,
        holdout_every: 2,
        ..opts.clone()
    };
    let ds = load(&dir, &half).unwrap();
    let cams = splat::data::load_cameras(&dir, &half).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (12, 12));
    assert!(ds.test[..6].iter().all(|v| v.name.starts_with("p0@")));
    assert!(ds.train[..6].iter().all(|v| v.name.starts_with("p1@")));
    assert_eq!(cams.views().count(), 24);
    for (a, b) in cams.views().zip(ds.views()) {
        assert_eq!(
            (a.name.as_str(), a.world_to_camera),
            (b.name.as_str(), b.world_to_camera)
        );
        let camera = |v: &View| (v.width, v.height, v.fx, v.fy, v.cx, v.cy);
        assert_eq!(camera(a), camera(b));
        assert_eq!(camera(b), (30, 30, 15.0, 15.0, 15.0, 15.0));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// OpenCV world-to-camera to OpenGL camera-to-world (the inverse of
/// [`opengl_c2w_to_opencv_w2c`]).
fn opencv_w2c_to_opengl_c2w(w2c: &Mat4) -> Mat4 {
    let mut m = splat::data::rigid_inverse(w2c);
    for row in m.iter_mut().take(3) {
        row[1] = -row[1];
        row[2] = -row[2];
    }
    m
}
