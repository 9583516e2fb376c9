//! Helpers shared by the tests: writing COLMAP reconstructions, feeding
//! corrupted scene files to their readers.

#![allow(dead_code)]

use std::path::Path;

use splat::cameras::Intrinsics;
use splat::data::colmap::quat_to_rotation;
use splat::data::Mat4;

/// A temporary folder for one test, emptied first.
pub fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("splat-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `f` run on a rayon pool of `threads` threads (a loader's results must
/// not depend on how many decode its photos).
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Rotation matrix → unit quaternion (w, x, y, z), checked against
/// `quat_to_rotation`.
pub fn rotation_to_quat(r: [[f64; 3]; 3]) -> [f64; 4] {
    let q = splat::data::colmap::rotation_to_quat(r);
    let back = quat_to_rotation(q).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert!((back[i][j] - r[i][j]).abs() < 1e-9);
        }
    }
    q
}

/// Writes `sparse/0/{cameras,images}.bin` with one camera and the given
/// images (file name, world-to-camera in OpenCV axes), no points.
pub fn write_colmap_bin(dir: &Path, cam: &Intrinsics, images: &[(String, Mat4)]) {
    let sparse = dir.join("sparse/0");
    std::fs::create_dir_all(&sparse).unwrap();
    let mut c = Vec::new();
    c.extend(1u64.to_le_bytes());
    c.extend(1i32.to_le_bytes());
    c.extend(cam.model.id().to_le_bytes());
    c.extend(cam.width.to_le_bytes());
    c.extend(cam.height.to_le_bytes());
    for p in &cam.params {
        c.extend(p.to_le_bytes());
    }
    let mut im = Vec::new();
    im.extend((images.len() as u64).to_le_bytes());
    for (i, (name, m)) in images.iter().enumerate() {
        let q = rotation_to_quat([
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ]);
        im.extend((i as i32 + 1).to_le_bytes());
        for x in q.iter().chain(&[m[0][3], m[1][3], m[2][3]]) {
            im.extend(x.to_le_bytes());
        }
        im.extend(1i32.to_le_bytes());
        im.extend(name.as_bytes());
        im.push(0);
        im.extend(0u64.to_le_bytes());
    }
    std::fs::write(sparse.join("cameras.bin"), c).unwrap();
    std::fs::write(sparse.join("images.bin"), im).unwrap();
}

/// Decodes `good` with `flips` (offset, byte) written into it, then cut to
/// `cut` bytes, as `format`: a property test's body, for readers that must
/// give a scene or an error for any bytes, never a panic.
pub fn decode_corrupted(
    good: &[u8],
    flips: &[(usize, u8)],
    cut: usize,
    format: splat::formats::SceneFormat,
) {
    let path = Path::new("bad");
    let mut bytes = good.to_vec();
    for &(at, v) in flips {
        let n = bytes.len();
        bytes[at % n] = v;
    }
    let _ = splat::formats::decode_scene(&bytes, format, path);
    let _ = splat::formats::decode_scene(&good[..cut % good.len()], format, path);
}

/// Asserts that `cameras` (from [`splat::data::load_cameras`]) holds the
/// views of `full` (from [`splat::data::load`]), in the same splits and
/// order, with the same names, sizes, intrinsics and poses to the bit,
/// and no pixels.
pub fn same_cameras(full: &splat::data::Dataset, cameras: &splat::data::Dataset) {
    assert_eq!(full.format, cameras.format);
    for (f, c) in [(&full.train, &cameras.train), (&full.test, &cameras.test)] {
        assert_eq!(f.len(), c.len());
        for (f, c) in f.iter().zip(c) {
            assert_eq!(f.name, c.name);
            assert_eq!((f.width, f.height), (c.width, c.height), "{}", f.name);
            assert_eq!(
                [f.fx, f.fy, f.cx, f.cy].map(f64::to_bits),
                [c.fx, c.fy, c.cx, c.cy].map(f64::to_bits),
                "{}",
                f.name
            );
            assert_eq!(f.world_to_camera, c.world_to_camera, "{}", f.name);
            assert_eq!(f.background, c.background);
            assert!(c.image.is_empty() && c.alpha.is_none() && c.mask.is_none());
        }
    }
}

/// Asserts that one of `notes` contains `part` (all of them shown if none
/// does).
pub fn assert_note(notes: &[String], part: &str) {
    assert!(
        notes.iter().any(|n| n.contains(part)),
        "no note contains {part:?}: {notes:?}"
    );
}
