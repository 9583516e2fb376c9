use super::undistort::{pinhole_for, Remap};
use super::*;

/// Parameters of each model for the tests: f or (fx, fy) = 100 or
/// (100, 120), principal point (50, 40), then distortion values.
fn params(m: CameraModel) -> Vec<f64> {
    use CameraModel::*;
    let one = [100.0, 50.0, 40.0];
    let two = [100.0, 120.0, 50.0, 40.0];
    let with = |base: &[f64], extra: &[f64]| [base, extra].concat();
    match m {
        SimplePinhole | SimpleFisheye => one.to_vec(),
        Pinhole | Fisheye => two.to_vec(),
        SimpleRadial | SimpleRadialFisheye | SimpleDivision => with(&one, &[0.1]),
        Radial | RadialFisheye => with(&one, &[0.1, -0.05]),
        OpenCv => with(&two, &[0.1, -0.05, 0.01, -0.02]),
        OpenCvFisheye => with(&two, &[0.1, -0.05, 0.02, -0.01]),
        FullOpenCv => with(&two, &[0.1, -0.05, 0.01, -0.02, 0.02, 0.03, 0.01, -0.02]),
        Fov => with(&two, &[0.9]),
        ThinPrismFisheye => with(&two, &[0.1, -0.05, 0.01, -0.02, 0.02, -0.01, 0.003, -0.004]),
        RadTanThinPrismFisheye => with(
            &two,
            &[
                0.1, -0.05, 0.02, -0.01, 0.005, -0.002, 0.01, -0.02, 0.003, -0.001, -0.004, 0.002,
            ],
        ),
        Division => with(&two, &[0.1]),
        Eucm => with(&two, &[0.6, 1.1]),
        Equirectangular => vec![360.0, 180.0],
    }
}

/// The pixel of the direction (0.3, −0.2, 1) under each model with
/// [`params`], computed from the formulas in the module docs on a
/// calculator (r² = 0.13, θ = atan(√0.13) on the fisheye plane). Worked
/// example, OPENCV: radial 1 + 0.1·0.13 − 0.05·0.13² = 1.012155; tangential
/// x: 2·0.01·(0.3·−0.2) + (−0.02)(0.13 + 2·0.09) = −0.0074, y: 2·(−0.02)·
/// (−0.06) + 0.01·(0.13 + 2·0.04) = 0.0045; so (0.2962465, −0.197931) on the
/// plane and (100·0.2962465 + 50, 120·(−0.197931) + 40) in pixels.
const EXPECTED: [(&str, [f64; 2]); 18] = [
    ("SIMPLE_PINHOLE", [80.0, 20.0]),
    ("PINHOLE", [80.0, 16.0]),
    ("SIMPLE_RADIAL", [80.39, 19.74]),
    ("RADIAL", [80.36465, 19.7569]),
    ("OPENCV", [79.62465, 16.24828]),
    ("OPENCV_FISHEYE", [79.117920604268, 16.705663516586]),
    ("FULL_OPENCV", [79.504233346128, 16.344613323098]),
    ("FOV", [80.988475430808, 15.209219655354]),
    ("SIMPLE_RADIAL_FISHEYE", [79.137635008641, 20.574909994240]),
    ("RADIAL_FISHEYE", [79.116990973391, 20.588672684406]),
    ("THIN_PRISM_FISHEYE", [78.472199963169, 17.145601003303]),
    (
        "RAD_TAN_THIN_PRISM_FISHEYE",
        [79.671297155679, 16.040021392256],
    ),
    ("SIMPLE_DIVISION", [80.400482033408, 19.733011977728]),
    ("DIVISION", [80.400482033408, 15.679614373274]),
    ("SIMPLE_FISHEYE", [78.792845070109, 20.804769953261]),
    ("FISHEYE", [78.792845070109, 16.965723943913]),
    ("EUCM", [78.805519547089, 16.955584362329]),
    ("EQUIRECTANGULAR", [196.699244233994, 79.155499932658]),
];

fn cam(m: CameraModel, w: u64, h: u64, p: Vec<f64>) -> Intrinsics {
    Intrinsics::new(m, w, h, p).unwrap()
}

#[test]
fn every_model_has_an_id_a_name_and_a_hand_computed_projection() {
    assert_eq!(CameraModel::all().count(), EXPECTED.len());
    for (k, m) in CameraModel::all().enumerate() {
        assert_eq!(m.id(), k as i32);
        assert_eq!(CameraModel::from_id(k as i32), Some(m));
        assert_eq!(CameraModel::from_name(m.name()), Some(m));
        let (name, want) = EXPECTED[k];
        assert_eq!(m.name(), name);
        let c = cam(m, 100, 80, params(m));
        let got = c.project([0.3, -0.2, 1.0]).unwrap();
        // scaling the direction does not move its pixel
        let got2 = c.project([0.6, -0.4, 2.0]).unwrap();
        for i in 0..2 {
            assert!(
                (got[i] - want[i]).abs() < 1e-9,
                "{name}: {got:?} vs {want:?}"
            );
            assert!((got[i] - got2[i]).abs() < 1e-9, "{name}");
        }
    }
    assert_eq!(CameraModel::from_id(18), None);
    assert_eq!(CameraModel::from_name("PINHOLEX"), None);
}

#[test]
fn fov_series_agree_with_the_closed_form_at_their_edges() {
    // the series branches must join the exact formula smoothly
    let exact = |w: f64, r2: f64| {
        let r = r2.sqrt();
        (2.0 * r * (w / 2.0).tan()).atan() / (r * w)
    };
    for (w, r2) in [(0.0099f64, 0.5f64), (0.9, 0.99e-4), (0.5, 1e-6)] {
        let c = cam(CameraModel::Fov, 10, 10, vec![1.0, 1.0, 0.0, 0.0, w]);
        let u = r2.sqrt();
        let x = c.project([u, 0.0, 1.0]).unwrap()[0];
        assert!((x / u - exact(w, r2)).abs() < 1e-6, "{w} {r2}");
    }
}

/// Realistic cameras of each model over a 640×480 image for the round trip
/// (invertible over the whole image).
fn realistic(m: CameraModel) -> Intrinsics {
    use CameraModel::*;
    let (f, c) = (500.0, [330.0, 235.0]);
    let ff = 280.0; // fisheye focal: the corners are ~70° off axis
    let p: Vec<f64> = match m {
        SimplePinhole => vec![f, c[0], c[1]],
        Pinhole => vec![f, f * 1.01, c[0], c[1]],
        SimpleRadial => vec![f, c[0], c[1], -0.08],
        Radial => vec![f, c[0], c[1], -0.1, 0.02],
        OpenCv => vec![f, f * 1.01, c[0], c[1], -0.1, 0.02, 0.001, -0.002],
        FullOpenCv => vec![
            f,
            f * 1.01,
            c[0],
            c[1],
            -0.1,
            0.02,
            0.001,
            -0.002,
            0.001,
            0.01,
            0.002,
            0.0,
        ],
        Fov => vec![f, f, c[0], c[1], 0.8],
        SimpleDivision => vec![f, c[0], c[1], -0.1],
        Division => vec![f, f * 1.01, c[0], c[1], -0.1],
        Eucm => vec![f, f, c[0], c[1], 0.55, 1.05],
        OpenCvFisheye => vec![ff, ff, c[0], c[1], 0.05, -0.01, 0.002, -0.0005],
        SimpleRadialFisheye => vec![ff, c[0], c[1], 0.04],
        RadialFisheye => vec![ff, c[0], c[1], 0.04, -0.005],
        ThinPrismFisheye => vec![
            ff, ff, c[0], c[1], 0.05, -0.01, 0.001, -0.001, 0.002, -0.0005, 0.001, -0.001,
        ],
        RadTanThinPrismFisheye => vec![
            ff, ff, c[0], c[1], 0.05, -0.01, 0.002, -0.0005, 0.0, 0.0, 0.001, -0.001, 0.001, 0.0,
            -0.001, 0.0,
        ],
        SimpleFisheye => vec![ff, c[0], c[1]],
        Fisheye => vec![ff, ff * 1.01, c[0], c[1]],
        Equirectangular => vec![640.0, 480.0],
    };
    cam(m, 640, 480, p)
}

#[test]
fn distort_after_undistort_is_the_identity_across_the_image() {
    for m in CameraModel::all() {
        let c = realistic(m);
        let mut worst = 0.0f64;
        for y in 0..=48 {
            for x in 0..=64 {
                // pixel centres and the image's very edges
                let px = [x as f64 * 10.0, y as f64 * 10.0];
                let px = [px[0].clamp(0.5, 639.5), px[1].clamp(0.5, 479.5)];
                let d = c
                    .unproject(px)
                    .unwrap_or_else(|| panic!("{}: no ray for {px:?}", m.name()));
                let back = c.project(d).unwrap();
                worst = worst.max((back[0] - px[0]).abs().max((back[1] - px[1]).abs()));
            }
        }
        assert!(worst < 1e-6, "{}: round trip off by {worst} px", m.name());
    }
}

#[test]
fn undistort_after_distort_is_the_identity_for_rays_in_view() {
    for m in CameraModel::all() {
        let c = realistic(m);
        for &d in &[[0.1, -0.2, 1.0], [-0.3, 0.25, 1.0], [0.0, 0.0, 1.0]] {
            let px = c.project(d).unwrap();
            let e = c.unproject(px).unwrap();
            // the same ray: compare directions normalised to z = 1
            let (a, b) = ([d[0] / d[2], d[1] / d[2]], [e[0] / e[2], e[1] / e[2]]);
            assert!(
                (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9,
                "{}: {d:?} came back as {e:?}",
                m.name()
            );
        }
    }
}

#[test]
fn behind_the_camera_has_no_pixel_but_a_panorama_sees_everywhere() {
    for m in CameraModel::all() {
        let c = realistic(m);
        let back = c.project([0.1, 0.1, -1.0]);
        if m == CameraModel::Equirectangular {
            let p = back.unwrap();
            assert!(p[0] > 0.0 && p[0] < 640.0 && p[1] > 0.0 && p[1] < 480.0);
        } else {
            assert!(back.is_none(), "{}", m.name());
        }
    }
}

#[test]
fn bad_parameters_are_refused_with_the_reason() {
    let e = Intrinsics::new(CameraModel::Pinhole, 10, 10, vec![1.0; 3]).unwrap_err();
    assert!(e.contains("takes 4 parameters, got 3"), "{e}");
    let e =
        Intrinsics::new(CameraModel::SimpleRadial, 10, 10, vec![-1.0, 1.0, 1.0, 0.0]).unwrap_err();
    assert!(e.contains("focal length"), "{e}");
    let e = Intrinsics::new(CameraModel::Pinhole, 0, 10, vec![1.0; 4]).unwrap_err();
    assert!(e.contains("image size"), "{e}");
    let e =
        Intrinsics::new(CameraModel::Fov, 10, 10, vec![1.0, 1.0, 1.0, 1.0, f64::NAN]).unwrap_err();
    assert!(e.contains("parameter 4"), "{e}");
}

#[test]
fn the_pinhole_keeps_only_pixels_with_a_source_like_colmaps_undistorter() {
    // barrel distortion (k < 0): the photo's borders bulge outwards once
    // undistorted, so the full frame fits; pincushion (k > 0): they bow in,
    // and the output shrinks to the inner rectangle
    for k in [-0.1, 0.1] {
        let c = cam(
            CameraModel::SimpleRadial,
            320,
            240,
            vec![250.0, 160.0, 120.0, k],
        );
        let p = pinhole_for(&c);
        assert_eq!((p.fx, p.fy), (250.0, 250.0));
        if k < 0.0 {
            assert!(p.width > 320 && p.height > 240, "{p:?}");
        } else {
            assert!(p.width < 320 && p.height < 240, "{p:?}");
        }
        // principal point keeps its relative place
        assert!((p.cx / p.width as f64 - 0.5).abs() < 1e-9);
        let r = Remap::new(&c);
        let mask = r.mask(None);
        let kept = mask.iter().filter(|&&m| m == 1.0).count() as f64 / mask.len() as f64;
        assert!(
            kept > 0.995,
            "k={k}: only {kept} of the pixels have a source"
        );
    }
    // a pinhole wider than the photo can reach: the pixels beyond have
    // no source, are masked and keep the fill colour
    let c = cam(
        CameraModel::OpenCv,
        320,
        240,
        vec![250.0, 250.0, 160.0, 120.0, -0.05, 0.01, 0.001, 0.0],
    );
    let wide = super::undistort::Pinhole {
        width: 640,
        height: 480,
        fx: 250.0,
        fy: 250.0,
        cx: 320.0,
        cy: 240.0,
    };
    let r = Remap::to(&c, wide);
    let mask = r.mask(None);
    let img = r.apply(&vec![0.5; 320 * 240 * 3], 3, &[7.0, 7.0, 7.0]);
    for (i, &m) in mask.iter().enumerate() {
        let (x, y) = ((i % 640) as f64 + 0.5, (i / 640) as f64 + 0.5);
        let s = c.project([(x - 320.0) / 250.0, (y - 240.0) / 250.0, 1.0]);
        let inside =
            s.is_some_and(|s| (0.0..=320.0).contains(&s[0]) && (0.0..=240.0).contains(&s[1]));
        assert_eq!(m == 1.0, inside, "({x},{y})");
        let want = if inside { 0.5 } else { 7.0 };
        assert!((img[i * 3] - want).abs() < 1e-6);
    }
    assert!(mask.contains(&0.0) && mask.contains(&1.0));
}

/// A pinhole photo (focal 60, principal point at its centre) and an output
/// pinhole of the same size whose principal point is `dx` pixels to the
/// right: output pixel centres fall `dx` pixels left of the photo's.
fn pinhole_and_shifted(w: u32, h: u32, dx: f64) -> (Intrinsics, super::undistort::Pinhole) {
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let pc = cam(
        CameraModel::Pinhole,
        w as u64,
        h as u64,
        vec![60.0, 60.0, cx, cy],
    );
    let out = super::undistort::Pinhole {
        width: w,
        height: h,
        fx: 60.0,
        fy: 60.0,
        cx: cx + dx,
        cy,
    };
    (pc, out)
}

/// `n` values in [0, 1] with no pattern a kernel could reproduce by accident.
fn noise(n: u32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 101) as f32 / 100.0).collect()
}

#[test]
fn a_camera_without_distortion_undistorts_onto_itself() {
    // k = 0: the same size and principal point, and the photo unchanged
    // (COLMAP's rule gives 319×239 with the principal point moved by half
    // a pixel, every pixel interpolated between four)
    let c = cam(
        CameraModel::SimpleRadial,
        320,
        240,
        vec![288.0, 160.0, 120.0, 0.0],
    );
    let p = pinhole_for(&c);
    assert_eq!((p.width, p.height, p.cx, p.cy), (320, 240, 160.0, 120.0));
    let noise = noise(320 * 240);
    let r = Remap::new(&c);
    let out = r.apply(&noise, 1, &[0.0]);
    for (i, (a, b)) in out.iter().zip(&noise).enumerate() {
        assert!((a - b).abs() < 1e-6, "pixel {i}: {a} vs {b}");
    }
    assert!(r.mask(None).iter().all(|&m| m == 1.0));
    // the room capture's COLMAP camera (k = −0.00147, at most 0.11 px of
    // distortion) and a principal point off the centre keep their size;
    // barrel distortion (5 px at the middle of each side) grows the image by whole
    // pixels on each side
    for (params, want) in [
        ([288.34, 160.0, 120.0, -0.00147], (320, 240, 160.0, 120.0)),
        ([288.0, 150.3, 127.9, 0.0], (320, 240, 150.3, 127.9)),
        ([288.0, 160.0, 120.0, -0.1], (330, 244, 165.0, 122.0)),
    ] {
        let p = pinhole_for(&cam(CameraModel::SimpleRadial, 320, 240, params.to_vec()));
        assert_eq!((p.width, p.height, p.cx, p.cy), want, "{params:?}");
    }
}

#[test]
fn lanczos3_weights_match_the_formula_by_hand() {
    use super::undistort::lanczos3_taps;
    // half-way between pixels 3 and 4 (position 4.0): distances 2.5, 1.5,
    // 0.5 on each side; L(t) = 3·sin(πt)·sin(πt/3)/(πt)²:
    // L(0.5) = 1.5/(π²/4) = 0.607927, L(1.5) = −3/(2.25π²) = −0.135095,
    // L(2.5) = 1.5/(6.25π²) = 0.024317; their sum 0.994299 normalises them
    let t = lanczos3_taps(4.0, 10);
    let want = [0.024457, -0.135870, 0.611413, 0.611413, -0.135870, 0.024457];
    for (k, (&(i, w), want)) in t.iter().zip(want).enumerate() {
        assert_eq!(i, k + 1);
        assert!((w - want).abs() < 1e-6, "tap {k}: {w} vs {want}");
    }
    // on a pixel centre: that pixel alone, exactly (an interpolating kernel)
    let t = lanczos3_taps(5.5, 10);
    assert_eq!(
        t.map(|(i, w)| (i, w)),
        [(3, 0.0), (4, 0.0), (5, 1.0), (6, 0.0), (7, 0.0), (8, 0.0)]
    );
    // near a border the indices repeat the edge pixel; weights sum to one
    for pos in [0.0, 0.3, 0.75, 1.9, 7.25, 9.6, 10.0] {
        let t = lanczos3_taps(pos, 10);
        assert!(t.iter().all(|&(i, _)| i < 10), "{pos}: {t:?}");
        let sum: f64 = t.iter().map(|&(_, w)| w).sum();
        assert!((sum - 1.0).abs() < 1e-12, "{pos}: {sum}");
    }
    assert_eq!(lanczos3_taps(0.2, 10)[2], (0, 1.0));
}

/// The taps' three-call form (sin(πt) and sin(πt/3) of all six taps from
/// those of the fraction) is the kernel's definition to a few ulps, at
/// fractions across (0, 1) including both ends' neighbourhoods.
#[test]
fn lanczos3_taps_equal_the_kernel_evaluated_tap_by_tap() {
    use super::undistort::{lanczos3, lanczos3_taps};
    let n = 40;
    let mut worst = 0.0f64;
    for j in 1..2000 {
        // positions whose taps are all inside the image
        let frac = j as f64 / 2000.0;
        for pos in [10.5 + frac, 20.5 + frac * frac, 30.5 + 1e-9 * frac] {
            let f = pos - 0.5;
            let i0 = f.floor();
            let direct: Vec<f64> = (0..6)
                .map(|k| lanczos3(f - (i0 + k as f64 - 2.0)))
                .collect();
            let sum: f64 = direct.iter().sum();
            for (k, &(i, w)) in lanczos3_taps(pos, n).iter().enumerate() {
                assert_eq!(i as f64, i0 + k as f64 - 2.0);
                let want = direct[k] / sum;
                worst = worst.max((w - want).abs());
            }
        }
    }
    assert!(worst < 1e-14, "largest difference {worst:e}");
}

#[test]
fn resampling_is_lanczos3_and_user_masks_follow_the_pixels() {
    // a photo that is a linear ramp in x: the kernel reproduces it at the
    // source position to within 0.02 px of slope away from the borders
    // (normalised Lanczos-3 is not exactly linear; its largest error, at
    // fractions near 0.2 and 0.8, is 0.01998)
    let (w, h) = (64u32, 48u32);
    let c = cam(
        CameraModel::Radial,
        w as u64,
        h as u64,
        vec![60.0, 32.0, 24.0, -0.05, 0.01],
    );
    let ramp: Vec<f32> = (0..w * h).map(|i| (i % w) as f32).collect();
    let r = Remap::new(&c);
    let out = r.apply(&ramp, 1, &[0.0]);
    let p = r.pinhole;
    let src = |x: u32, y: u32| {
        let d = [
            (x as f64 + 0.5 - p.cx) / p.fx,
            (y as f64 + 0.5 - p.cy) / p.fy,
            1.0,
        ];
        c.project(d).unwrap()
    };
    let mut inner = 0;
    for y in 0..p.height {
        for x in 0..p.width {
            let s = src(x, y);
            let want = s[0] - 0.5;
            let got = out[(y * p.width + x) as usize] as f64;
            if (3.0..(w - 4) as f64).contains(&want) {
                assert!((got - want).abs() < 0.02, "({x},{y}): {got} vs {want}");
                inner += 1;
            }
            // clamped to its taps' range: never beyond the photo's
            assert!((0.0..=(w - 1) as f64).contains(&got), "({x},{y}): {got}");
        }
    }
    assert!(inner > (p.width * p.height / 2) as usize);
    // a step edge (0 left, 1 right) sampled half-way between pixels (a
    // pinhole photo, an output half a pixel to the right): the negative
    // lobes would give −0.111 and 1.111 beside the edge; the clamp keeps
    // every pixel within [0, 1], the one on the edge at 0.5
    let step: Vec<f32> = (0..w * h)
        .map(|i| if i % w < w / 2 { 0.0 } else { 1.0 })
        .collect();
    let (pc, half) = pinhole_and_shifted(w, h, 0.5);
    let out = Remap::to(&pc, half).apply(&step, 1, &[0.0]);
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    let row = &out[(10 * w) as usize..(11 * w) as usize];
    assert!((row[(w / 2) as usize] - 0.5).abs() < 1e-6, "{row:?}");
    assert_eq!(
        (row[(w / 2 - 1) as usize], row[(w / 2 + 1) as usize]),
        (0.0, 1.0)
    );
    // a user mask that ignores the left half: output pixels whose six
    // columns of taps touch it are ignored, the rest kept
    let m = r.mask(Some(&step));
    for y in 0..p.height {
        for x in 0..p.width {
            let f = (src(x, y)[0] - 0.5).clamp(0.0, (w - 1) as f64);
            let kept = m[(y * p.width + x) as usize] == 1.0;
            if f.floor() - 2.0 >= (w / 2) as f64 {
                assert!(kept, "({x},{y}) from {f}");
            } else if f.floor() + 3.0 < (w / 2) as f64 || f.fract() != 0.0 {
                assert!(!kept, "({x},{y}) from {f}");
            }
        }
    }
    // an output pinhole one whole pixel to the right of a pinhole photo:
    // every kept pixel is exactly the photo's neighbour pixel
    let (pc, shifted) = pinhole_and_shifted(w, h, 1.0);
    let noise = noise(w * h);
    let out = Remap::to(&pc, shifted).apply(&noise, 1, &[0.0]);
    for y in 0..h {
        for x in 1..w {
            let i = (y * w + x) as usize;
            assert_eq!(out[i], noise[i - 1], "({x},{y})");
        }
    }
}

#[test]
fn scaling_a_camera_scales_its_pixels() {
    for m in CameraModel::all() {
        let c = realistic(m);
        let s = c.scaled(0.5, 0.5);
        assert_eq!((s.width, s.height), (320, 240));
        let d = [0.1, -0.2, 1.0];
        let (a, b) = (c.project(d).unwrap(), s.project(d).unwrap());
        assert!(
            (a[0] / 2.0 - b[0]).abs() < 1e-9 && (a[1] / 2.0 - b[1]).abs() < 1e-9,
            "{}",
            m.name()
        );
    }
}

#[test]
fn a_panorama_is_cut_into_six_faces_that_see_every_direction_once() {
    use super::undistort::{parts_for, Part, FACES};
    let c = cam(CameraModel::Equirectangular, 360, 180, vec![360.0, 180.0]);
    let parts: Vec<Part> = parts_for(&c);
    let names: Vec<_> = parts.iter().map(|p| p.face.unwrap()).collect();
    assert_eq!(names, ["front", "right", "back", "left", "up", "down"]);
    // 90° squares at the equator's resolution: 360 / π ≈ 115 pixels
    let p = parts[0].pinhole;
    assert_eq!((p.width, p.height), (115, 115));
    assert_eq!((p.fx, p.cx), (57.5, 57.5));
    let apply = |r: &[[f64; 3]; 3], v: [f64; 3]| -> [f64; 3] {
        std::array::from_fn(|i| (0..3).map(|k| r[i][k] * v[k]).sum())
    };
    for part in &parts {
        let r = &part.rotation;
        // a rotation: orthonormal rows, determinant +1 (z = x × y)
        for i in 0..3 {
            for j in 0..3 {
                let d: f64 = (0..3).map(|k| r[i][k] * r[j][k]).sum();
                assert_eq!(d, f64::from(u8::from(i == j)), "{:?}", part.face);
            }
        }
        let z = [
            r[0][1] * r[1][2] - r[0][2] * r[1][1],
            r[0][2] * r[1][0] - r[0][0] * r[1][2],
            r[0][0] * r[1][1] - r[0][1] * r[1][0],
        ];
        assert_eq!(z, r[2], "{:?}", part.face);
        // each pixel samples the panorama along its own ray, turned into
        // the panorama's axes (rotationᵀ·v): the map's source, unprojected
        let map = Remap::part(&c, part);
        let src = map.mask(None);
        assert!(src.iter().all(|&m| m == 1.0), "{:?}", part.face);
        let pin = part.pinhole;
        let n = |a: [f64; 3]| {
            let l = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            a.map(|v| v / l)
        };
        for (x, y) in [(0, 0), (57, 57), (114, 3), (40, 114)] {
            let v = [
                (x as f64 + 0.5 - pin.cx) / pin.fx,
                (y as f64 + 0.5 - pin.cy) / pin.fy,
                1.0,
            ];
            let d: [f64; 3] = std::array::from_fn(|i| (0..3).map(|k| r[k][i] * v[k]).sum());
            let back = c.unproject(map.source(y * 115 + x)).unwrap();
            let (a, b) = (n(d), n(back));
            assert!(
                (0..3).all(|k| (a[k] - b[k]).abs() < 1e-9),
                "{:?} ({x}, {y}): {a:?} vs {b:?}",
                part.face
            );
        }
        // and looks where its name says: the middle pixel's ray (a face of
        // 115 pixels: pixel 57's centre is its middle) lands on the
        // panorama's middle row at a
        // quarter turn each (right at 3/4 of the width, left at 1/4,
        // back at the seam), or at its top or bottom row
        let mid = map.source(57 * 115 + 57);
        let want = match part.face.unwrap() {
            "front" => [180.0, 90.0],
            "right" => [270.0, 90.0],
            "back" => [if mid[0] < 180.0 { 0.0 } else { 360.0 }, 90.0],
            "left" => [90.0, 90.0],
            "up" => [mid[0], 0.0],
            "down" => [mid[0], 180.0],
            f => panic!("{f}"),
        };
        assert!(
            (mid[0] - want[0]).abs() < 1e-9 && (mid[1] - want[1]).abs() < 1e-9,
            "{:?}: {mid:?}",
            part.face
        );
    }
    // every direction in exactly one face's frustum (a grid of directions
    // off the faces' borders)
    for i in 0..40 {
        for j in 0..20 {
            let (az, el) = (
                (i as f64 + 0.3) * std::f64::consts::TAU / 40.0,
                (j as f64 + 0.4) * std::f64::consts::PI / 20.0 - std::f64::consts::FRAC_PI_2,
            );
            let d = [el.cos() * az.sin(), el.sin(), el.cos() * az.cos()];
            let seen = FACES
                .iter()
                .filter(|(_, r)| {
                    let f = apply(r, d);
                    f[2] > 0.0 && f[0].abs() <= f[2] && f[1].abs() <= f[2]
                })
                .count();
            assert_eq!(seen, 1, "{d:?}");
        }
    }
    // the faces' mean up (−y of each) is the panorama's
    let up: [f64; 3] = std::array::from_fn(|k| FACES.iter().map(|(_, r)| -r[1][k]).sum());
    assert_eq!(up, [0.0, -4.0, 0.0]);
    // any other camera is one part along its own axes
    let one = parts_for(&realistic(CameraModel::OpenCv));
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].face, one[0].rotation),
        (None, super::undistort::IDENTITY)
    );
}

#[test]
fn a_face_is_named_before_the_extension() {
    use super::undistort::face_name;
    for (name, want) in [
        ("R0010001.JPG", "R0010001@front.JPG"),
        ("pano/R001.jpg", "pano/R001@front.jpg"),
        ("v1.2/pano", "v1.2/pano@front"),
        (".hidden", ".hidden@front"),
        ("a.b.png", "a.b@front.png"),
    ] {
        assert_eq!(face_name(name, "front"), want);
    }
}

/// A panorama's left and right edges meet: the back face, across the
/// seam, samples a smooth periodic image as well as anywhere else (the
/// taps wrap around instead of repeating the edge pixel).
#[test]
fn a_panorama_is_sampled_across_its_seam() {
    use super::undistort::{parts_for, FACES};
    let (w, h) = (360usize, 180usize);
    let c = cam(
        CameraModel::Equirectangular,
        w as u64,
        h as u64,
        vec![360.0, 180.0],
    );
    let tau = std::f64::consts::TAU;
    // sin of the longitude: 0 at the seam, rising to its right
    let photo: Vec<f32> = (0..w * h)
        .map(|i| (tau * ((i % w) as f64 + 0.5) / w as f64).sin() as f32)
        .collect();
    let back = parts_for(&c)[2];
    assert_eq!(back.rotation, FACES[2].1);
    let map = Remap::part(&c, &back);
    let out = map.apply(&photo, 1, &[0.0]);
    let mut worst = 0.0f64;
    for (i, &v) in out.iter().enumerate() {
        let s = map.source(i);
        worst = worst.max((v as f64 - (tau * s[0] / w as f64).sin()).abs());
    }
    // measured: 3.4e-4 with the wrap, 8.7e-3 repeating the edge pixel
    assert!(worst < 1e-3, "{worst}");
}
