//! What each fuzz target does with its bytes, one function per target in
//! `fuzz/fuzz_targets/` (which only call these), so that `cargo test` on
//! stable Rust replays every committed corpus through the same code
//! (`tests/fuzz_corpus.rs`). Each function must return for any input; a
//! panic is a finding.

use std::path::Path;

use splat::cameras::undistort::{parts_for, Remap};
use splat::cameras::{CameraModel, Intrinsics};

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// Every target: (name, as its folder in `fuzz/corpus/`, function).
pub const TARGETS: &[(&str, Body)] = &[
    ("grad_lang", grad_lang),
    ("ply", ply),
    ("colmap", colmap),
    ("nerf_transforms", nerf_transforms),
    ("nerfstudio_transforms", nerfstudio_transforms),
    ("fitted_gaussians", fitted_gaussians),
    ("camera_params", camera_params),
    ("masks", masks),
    ("sog", sog),
];

/// The `grad` language: the parser, then the whole pipeline with small
/// limits; a success has a finite value and gradient and a DOT graph.
pub fn grad_lang(data: &[u8]) {
    use crate::grad::{gradient, parser, GradOptions};
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if parser::parse(src).is_err() {
        return;
    }
    let inputs = vec![("x".to_string(), 1.5), ("y".to_string(), -0.25)];
    let opts = GradOptions {
        max_depth: 200,
        max_steps: 20_000,
        graph: true,
        hessian: false,
    };
    if let Ok(r) = gradient(src, &inputs, &opts) {
        assert!(r.value.is_finite());
        assert!(r.gradient.iter().all(|(_, g)| g.is_finite()));
        let g = r.graph.expect("graph asked for");
        assert!(g.to_dot().starts_with("digraph"));
    }
}

/// The 3DGS PLY reader in f64 and f32, and the point-cloud reader: values finite, quaternions nonzero,
/// what f32 read writes back and reads again equal, and it writes as a
/// compressed PLY and a `.sog` that read back.
pub fn ply(data: &[u8]) {
    use splat::three::ply::{parse_ply, parse_point_cloud, to_ply_bytes};
    let path = Path::new("fuzz.ply");
    // (a point cloud's reader, ASCII too: finite points, one colour each)
    if let Ok((xyz, rgb)) = parse_point_cloud(data, path) {
        assert!(xyz.iter().flatten().all(|v| v.is_finite()));
        assert!(rgb.is_none_or(|c| c.len() == xyz.len()));
    }
    if let Ok(g) = parse_ply::<f64>(data, path) {
        let n = g.means.len();
        assert_eq!(g.log_scales.len(), n);
        assert_eq!(g.quats.len(), n);
        assert_eq!(g.opacity_logits.len(), n);
        assert!(g.means.iter().flatten().all(|v| v.is_finite()));
        assert!(g.log_scales.iter().flatten().all(|v| v.is_finite()));
        assert!(g.sh.iter().all(|v| v.is_finite()));
        assert!(g.opacity_logits.iter().all(|v| v.is_finite()));
        assert!(g.quats.iter().all(|q| q.iter().any(|v| *v != 0.0)));
    }
    if let Ok(g) = parse_ply::<f32>(data, path) {
        let back = parse_ply::<f32>(&to_ply_bytes(&g), path).expect("own output reads back");
        assert_eq!(back, g);
        compressed_reads_back(&g);
        sog_reads_back(&g);
    }
}

/// `g` written as a compressed PLY reads back: as many Gaussians, the
/// same SH degree, every value finite.
fn compressed_reads_back(g: &splat::three::Gaussians<f32>) {
    use splat::three::{compressed_ply, ply::parse_ply};
    let bytes = compressed_ply::to_bytes(g);
    let back = parse_ply::<f32>(&bytes, Path::new("fuzz.compressed.ply"))
        .expect("own compressed output reads back");
    assert_eq!((back.len(), back.sh_degree), (g.len(), g.sh_degree));
}

/// `g` written as a `.sog` reads back: as many Gaussians, the same SH
/// degree (a scene of finite positions, scales and rotations, as every
/// reader here makes, always writes).
fn sog_reads_back(g: &splat::three::Gaussians<f32>) {
    use splat::formats::sog;
    let bytes = sog::to_bytes(g).expect("a scene read here writes as .sog");
    let back = sog::parse(&bytes, Path::new("fuzz.sog")).expect("own .sog reads back");
    assert_eq!((back.len(), back.sh_degree), (g.len(), g.sh_degree));
}

/// PlayCanvas's SOG reader (a zip of WebP images and `meta.json`): values
/// finite, quaternions nonzero, and the scene writes as a compressed PLY
/// and as a `.sog` that read back.
pub fn sog(data: &[u8]) {
    use splat::formats::{decode_scene, SceneFormat};
    if let Ok(g) = decode_scene(data, SceneFormat::Sog, Path::new("fuzz.sog")) {
        assert!(g.check_shapes().is_ok());
        assert!(g.means.iter().flatten().all(|v| v.is_finite()));
        assert!(g.log_scales.iter().flatten().all(|v| v.is_finite()));
        assert!(g.sh.iter().all(|v| v.is_finite()));
        assert!(g.opacity_logits.iter().all(|v| v.is_finite()));
        assert!(g.quats.iter().all(|q| q.iter().any(|v| *v != 0.0)));
        compressed_reads_back(&g);
        sog_reads_back(&g);
    }
}

/// The six COLMAP readers; the first byte picks one, the rest is the file.
/// Images read have distinct ids and names (a repeat is an error).
pub fn colmap(data: &[u8]) {
    use splat::data::colmap;
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let path = Path::new("sparse/0/fuzz");
    let text = std::str::from_utf8(body);
    let distinct = |ims: Result<Vec<colmap::Image>, _>| {
        if let Ok(ims) = ims {
            let ids: std::collections::HashSet<_> = ims.iter().map(|i| i.id).collect();
            let names: std::collections::HashSet<_> = ims.iter().map(|i| &i.name).collect();
            assert!(ids.len() == ims.len() && names.len() == ims.len());
        }
    };
    match (which % 6, text) {
        (0, _) => drop(colmap::cameras_bin(path, body)),
        (1, _) => distinct(colmap::images_bin(path, body)),
        (2, _) => drop(colmap::points_bin(path, body)),
        (3, Ok(t)) => drop(colmap::cameras_txt(path, t)),
        (4, Ok(t)) => distinct(colmap::images_txt(path, t)),
        (5, Ok(t)) => drop(colmap::points_txt(path, t)),
        _ => {}
    }
}

/// NeRF-synthetic `transforms_*.json`: a field of view in (0, π), finite
/// matrices.
pub fn nerf_transforms(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/nonexistent-chainrule-fuzz");
    let path = dir.join("transforms_train.json");
    if let Ok(t) = splat::data::nerf::parse_transforms(text, &path, dir) {
        assert!(t.camera_angle_x > 0.0 && t.camera_angle_x < std::f64::consts::PI);
        assert!(t
            .frames
            .iter()
            .all(|f| f.c2w.iter().flatten().all(|v| v.is_finite())));
    }
}

/// nerfstudio's `transforms.json` (its photos and points not looked at):
/// the COLMAP model it amounts to has finite cameras that every image
/// names, unit quaternions, finite translations, distinct photo names and
/// image circles of fisheye cameras only.
pub fn nerfstudio_transforms(data: &[u8]) {
    use splat::data::{nerfstudio, LoadOptions};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/nonexistent-chainrule-fuzz");
    let path = dir.join(nerfstudio::FILE);
    let Ok(c) = nerfstudio::parse(text, &path, dir, &LoadOptions::default(), false) else {
        return;
    };
    let rec = &c.model.rec;
    for im in &rec.images {
        let cam = &rec.cameras[&im.camera_id];
        assert!(cam.params.iter().all(|v| v.is_finite()));
        let n: f64 = im.qvec.iter().map(|q| q * q).sum();
        assert!((n - 1.0).abs() < 1e-6, "{:?}", im.qvec);
        assert!(im.tvec.iter().all(|v| v.is_finite()));
    }
    let names: std::collections::HashSet<_> = rec.images.iter().map(|i| &i.name).collect();
    assert_eq!(names.len(), rec.images.len());
    // an image circle only for a fisheye camera of the model, of at least
    // a pixel
    for (id, r) in &c.model.circles {
        assert!(rec.cameras[id].model.is_fisheye() && r.is_finite() && *r >= 1.0);
    }
}

/// `gaussians.json` of `fit`: the model builds, values finite, and it
/// writes back and reads again to the same model.
pub fn fitted_gaussians(data: &[u8]) {
    use splat::format::GaussianFile;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = GaussianFile::from_json(text) {
        let (g, bg, _) = f.model().expect("a file that parsed has a model");
        assert!(bg.iter().all(|v| v.is_finite()));
        assert!(g.params.iter().all(|v| v.is_finite()));
        let back = GaussianFile::from_json(&f.to_json()).expect("own output reads back");
        assert_eq!(back.model().expect("model").0, g);
    }
}

/// Camera parameters as `cameras.bin` gives them: byte 0 the model id (as
/// a signed byte, so unknown ids too), bytes 1 and 2 width and height
/// (1 to 64), then little-endian f64 parameters. Checked parameters must
/// give an undistortion map (for a panorama, one for each of its six
/// faces) whose mask is 0/1, whose resampling of a finite photo is finite,
/// and whose unprojected pixels project back into the image (where Newton
/// converged).
pub fn camera_params(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let Some(model) = CameraModel::from_id(data[0] as i8 as i32) else {
        return;
    };
    let (w, h) = (1 + data[1] as u64 % 64, 1 + data[2] as u64 % 64);
    let params: Vec<f64> = data[3..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let Ok(cam) = Intrinsics::new(model, w, h, params) else {
        return;
    };
    for &px in &[
        [0.5, 0.5],
        [w as f64 / 2.0, h as f64 / 2.0],
        [w as f64 - 0.5, h as f64 - 0.5],
    ] {
        if let Some(d) = cam.unproject(px) {
            assert!(d.iter().all(|v| v.is_finite()), "{d:?}");
            if let Some(p) = cam.project(d) {
                assert!(p.iter().all(|v| v.is_finite()));
            }
        }
    }
    // (a panorama's six faces, any other camera's one view)
    let parts = parts_for(&cam);
    assert_eq!(parts.len(), if parts[0].face.is_some() { 6 } else { 1 });
    for part in &parts {
        let r = Remap::part(&cam, part);
        let p = r.pinhole;
        assert!(p.width >= 1 && p.height >= 1);
        assert!(u64::from(p.width) <= 2 * w.max(64) && u64::from(p.height) <= 2 * h.max(64));
        let mask = r.mask(None);
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0));
        let photo = vec![0.5f32; (w * h * 3) as usize];
        let out = r.apply(&photo, 3, &[0.0; 3]);
        assert!(out
            .iter()
            .all(|v| v.is_finite() && (0.0..=0.5 + 1e-6).contains(v)));
    }
}

/// A mask file: the bytes decoded as an image and checked against a
/// photo of the size it declares, one twice that size (resampled) and one
/// of another shape (refused); values 0/1.
pub fn masks(data: &[u8]) {
    use splat::data::masks::parse;
    let (path, photo) = (Path::new("masks/fuzz.png"), Path::new("images/fuzz.jpg"));
    let dims = image::ImageReader::new(std::io::Cursor::new(data))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    // A mask is parsed against its photo, which was decoded first, so its
    // size is bounded by a real photo's; a few bytes of JPEG header can
    // declare 400 megapixels, whose f32 mask alone is 1.7 GB (found by
    // libFuzzer as an out-of-memory): ask only for photos up to 2^24 pixels.
    if let Some((w, h)) = dims.filter(|(w, h)| *w as u64 * *h as u64 <= 1 << 24) {
        if let Ok(m) = parse(path, data, photo, w, h, false) {
            assert_eq!(m.len() as u64, w as u64 * h as u64);
            assert!(m.iter().all(|&x| x == 0.0 || x == 1.0));
        }
        // a photo one pixel taller (of the same width: never a scaled copy,
        // which needs a factor of 2 to 8 along both axes) refuses it
        if let Ok(m) = parse(path, data, photo, w, h.wrapping_add(1), true) {
            panic!(
                "a {w}×{h} mask accepted for a taller photo ({} values)",
                m.len()
            );
        }
        // a photo twice its size takes it, resampled
        if (w as u64 * h as u64) << 2 <= 1 << 24 {
            if let Ok(m) = parse(path, data, photo, w * 2, h * 2, false) {
                assert_eq!(m.len() as u64, 4 * w as u64 * h as u64);
            }
        }
    }
}
