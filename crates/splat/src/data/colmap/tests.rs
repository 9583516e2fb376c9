//! The readers and the folder rules, against records built by hand.

use super::folders::root_of_model_path;
use super::*;
use crate::cameras::CameraModel;

fn cam_bin(model: i32, params: &[f64]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(1u64.to_le_bytes());
    b.extend(7i32.to_le_bytes());
    b.extend(model.to_le_bytes());
    b.extend(640u64.to_le_bytes());
    b.extend(480u64.to_le_bytes());
    for p in params {
        b.extend(p.to_le_bytes());
    }
    b
}

/// A model folder's dataset by the path's names: relative paths
/// (whose parent may be empty) included.
#[test]
fn model_paths_name_their_dataset() {
    let root = |p: &str| root_of_model_path(Path::new(p));
    assert_eq!(root("D/sparse/1"), Some(PathBuf::from("D")));
    assert_eq!(root("D/sparse/1/"), Some(PathBuf::from("D")));
    assert_eq!(root("/a/D/sparse"), Some(PathBuf::from("/a/D")));
    assert_eq!(root("sparse/0"), Some(PathBuf::from(".")));
    assert_eq!(root("sparse"), Some(PathBuf::from(".")));
    assert_eq!(root("D/models/1"), None);
    assert_eq!(root("1"), None);
}

#[test]
fn binary_cameras() {
    let p = Path::new("cameras.bin");
    let c = cameras_bin(p, &cam_bin(1, &[500.0, 510.0, 320.0, 240.0])).unwrap();
    assert_eq!(c[&7].params, [500.0, 510.0, 320.0, 240.0]);
    assert_eq!(c[&7].model, CameraModel::Pinhole);
    let c = cameras_bin(p, &cam_bin(0, &[500.0, 320.0, 240.0])).unwrap();
    assert_eq!(c[&7].params, [500.0, 320.0, 240.0]);
    // every model COLMAP defines is read, with its number of parameters
    for m in CameraModel::all() {
        let mut params = vec![0.01; m.num_params()];
        params[..2].copy_from_slice(&[300.0, 300.0]);
        if m == CameraModel::Equirectangular {
            // (a panorama's parameters are its image size, 640×480 here)
            params = vec![640.0, 480.0];
        }
        let c = cameras_bin(p, &cam_bin(m.id(), &params)).unwrap();
        assert_eq!(c[&7].model, m);
        assert_eq!(c[&7].params, params);
    }
    // a panorama whose parameters are not its image size is not a 360°
    // photo: refused, naming both
    let e = cameras_bin(
        p,
        &cam_bin(CameraModel::Equirectangular.id(), &[320.0, 240.0]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("camera 7")
            && e.contains("parameters 320 and 240 are not its image size 640×480"),
        "{e}"
    );
    let e = cameras_bin(p, &cam_bin(42, &[1.0; 8]))
        .unwrap_err()
        .to_string();
    // named by its own id (7), not its place in the file
    assert!(e.contains("unknown camera model id 42"), "{e}");
    assert!(e.contains("camera 7 (record 0)"), "{e}");
    let e = cameras_bin(p, &cam_bin(2, &[-5.0, 1.0, 1.0, 0.0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("SIMPLE_RADIAL camera: focal length"), "{e}");
    let full = cam_bin(1, &[500.0, 510.0, 320.0, 240.0]);
    let e = cameras_bin(p, &full[..full.len() - 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated") && e.contains("params[3]"), "{e}");
    let mut huge = full.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = cameras_bin(p, &huge).unwrap_err().to_string();
    assert!(e.contains("declares"), "{e}");
}

/// One `images.bin` record.
fn image_rec(id: i32, q0: f64, camera_id: i32, name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(id.to_le_bytes());
    for x in [q0, 0.0, 0.0, 0.0, 0.5, 0.0, 1.0] {
        b.extend(x.to_le_bytes());
    }
    b.extend(camera_id.to_le_bytes());
    b.extend(name.as_bytes());
    b.push(0);
    b.extend(0u64.to_le_bytes()); // no 2D points
    b
}

/// One `points3D.bin` record (a track of one element).
fn point_rec(id: u64, x: f64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(id.to_le_bytes());
    for v in [x, 1.0, 2.0] {
        b.extend(v.to_le_bytes());
    }
    b.extend([255, 0, 10]);
    b.extend(0.5f64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend([3i32.to_le_bytes(), 4i32.to_le_bytes()].concat());
    b
}

/// A file of `records` after their count.
fn counted(records: &[Vec<u8>]) -> Vec<u8> {
    let mut b = (records.len() as u64).to_le_bytes().to_vec();
    for r in records {
        b.extend(r);
    }
    b
}

/// A record's fields are labelled by the image's or point's own id,
/// with the record's place, as the cameras' are; by the place alone
/// when the id itself cannot be read.
#[test]
fn binary_records_are_labelled_by_their_id() {
    let p = Path::new("images.bin");
    let ok = counted(&[
        image_rec(50, 1.0, 1, "IMG_0049.png"),
        image_rec(7, 1.0, 1, "IMG_0006.png"),
    ]);
    let ims = images_bin(p, &ok).unwrap();
    assert_eq!(ims[0].id, 50);
    assert_eq!(ims[1].name, "IMG_0006.png");
    assert_eq!(ims[1].tvec, [0.5, 0.0, 1.0]);
    let bad = counted(&[image_rec(50, f64::NAN, 1, "IMG_0049.png")]);
    let e = images_bin(p, &bad).unwrap_err().to_string();
    assert!(e.contains("image 50 (record 0) qvec[0]"), "{e}");
    assert!(e.contains("not finite"), "{e}");
    // truncated in the second record's points count, or in its id
    let e = images_bin(p, &ok[..ok.len() - 3]).unwrap_err().to_string();
    assert!(e.contains("image 7 (record 1) number of 2D points"), "{e}");
    // (a first record long enough that the count's check passes)
    let long = format!("{}.png", "a".repeat(80));
    let first = image_rec(50, 1.0, 1, &long);
    let two = counted(&[first.clone(), image_rec(7, 1.0, 1, "b.png")]);
    let e = images_bin(p, &two[..8 + first.len() + 2])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("image record 1 id") && e.contains("truncated"),
        "{e}"
    );

    let p = Path::new("points3D.bin");
    let ok = counted(&[point_rec(4713, 0.5), point_rec(12, 0.25)]);
    let pts = points_bin(p, &ok).unwrap();
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[1].xyz, [0.25, 1.0, 2.0]);
    assert_eq!(pts[0].rgb, [255, 0, 10]);
    let bad = counted(&[point_rec(4713, f64::INFINITY)]);
    let e = points_bin(p, &bad).unwrap_err().to_string();
    assert!(e.contains("point 4713 (record 0) xyz[0]"), "{e}");
    let e = points_bin(p, &ok[..ok.len() - 3]).unwrap_err().to_string();
    assert!(e.contains("point 12 (record 1) track"), "{e}");
    // truncated in the second record's id or colour: a first record
    // with a track of 10 leaves bytes enough for the count's check
    let mut long = point_rec(9, 0.5);
    let at = long.len() - 16;
    long[at..at + 8].copy_from_slice(&10u64.to_le_bytes());
    long.extend([0u8; 8 * 9]);
    let two = counted(&[long.clone(), point_rec(10, 0.5)]);
    let e = points_bin(p, &two[..8 + long.len() + 4])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("point record 1 id") && e.contains("truncated"),
        "{e}"
    );
    let e = points_bin(p, &two[..8 + long.len() + 8 + 24 + 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("point 10 (record 1) rgb"), "{e}");
}

/// A second record of a camera, image or point id, or a second image
/// of one photo, is refused naming the file and both records (COLMAP
/// writes neither; the second would replace the first or pose one
/// photo twice).
#[test]
fn repeated_ids_and_photo_names_are_refused() {
    let p = Path::new("cameras.bin");
    let one = cam_bin(1, &[500.0, 510.0, 320.0, 240.0]);
    let mut two = one.clone();
    two[..8].copy_from_slice(&2u64.to_le_bytes());
    two.extend(&one[8..]);
    let e = cameras_bin(p, &two).unwrap_err().to_string();
    assert!(e.starts_with("cameras.bin: camera 7 (record 1): "), "{e}");
    assert!(e.contains("camera id 7 again: record 0 has it too"), "{e}");
    let p = Path::new("cameras.txt");
    let e = cameras_txt(
        p,
        "1 PINHOLE 100 80 90 91 50 40\n# x\n1 PINHOLE 10 8 9 9 5 4\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("cameras.txt: line 3: "), "{e}");
    assert!(e.contains("camera id 1 again: line 1 has it too"), "{e}");

    let p = Path::new("images.bin");
    let same_name = counted(&[
        image_rec(50, 1.0, 1, "IMG_0000.png"),
        image_rec(51, 1.0, 1, "IMG_0000.png"),
    ]);
    let e = images_bin(p, &same_name).unwrap_err().to_string();
    assert!(e.starts_with("images.bin: image 51 (record 1): "), "{e}");
    assert!(
        e.contains("names IMG_0000.png, as image 50 (record 0) does"),
        "{e}"
    );
    let same_id = counted(&[
        image_rec(50, 1.0, 1, "IMG_0000.png"),
        image_rec(50, 1.0, 1, "IMG_0001.png"),
    ]);
    let e = images_bin(p, &same_id).unwrap_err().to_string();
    assert!(e.starts_with("images.bin: image 50 (record 1): "), "{e}");
    assert!(e.contains("image id 50 again: record 0 has it too"), "{e}");
    let p = Path::new("images.txt");
    let e = images_txt(p, "1 1 0 0 0 0 0 1 1 a.png\n\n2 1 0 0 0 0 0 2 1 a.png\n\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("images.txt: line 3: "), "{e}");
    assert!(e.contains("names a.png, as image 1 (line 1) does"), "{e}");
    let e = images_txt(
        p,
        "4 1 0 0 0 0 0 1 1 a.png\n1 2 -1\n4 1 0 0 0 0 0 2 1 b.png\n\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("images.txt: line 3: "), "{e}");
    assert!(e.contains("image id 4 again: line 1 has it too"), "{e}");

    let p = Path::new("points3D.bin");
    let pts = counted(&[
        point_rec(9, 0.5),
        point_rec(3, 0.5),
        point_rec(3, 0.5),
        point_rec(9, 0.5),
    ]);
    // the first repeat in the file's order (record 2), not in the ids'
    let e = points_bin(p, &pts).unwrap_err().to_string();
    assert!(e.starts_with("points3D.bin: point 3 (record 2): "), "{e}");
    assert!(e.contains("point id 3 again: record 1 has it too"), "{e}");
    let p = Path::new("points3D.txt");
    let e = points_txt(
        p,
        "5 0 0 0 1 2 3 0.1\n6 0 0 0 1 2 3 0.1\n5 1 1 1 1 2 3 0.1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("points3D.txt: line 3: "), "{e}");
    assert!(e.contains("point id 5 again: line 1 has it too"), "{e}");
}

#[test]
fn text_files() {
    let p = Path::new("cameras.txt");
    let c = cameras_txt(
        p,
        "# c\n1 PINHOLE 100 80 90 91 50 40\n2 SIMPLE_PINHOLE 100 80 90 50 40\n",
    )
    .unwrap();
    assert_eq!(c[&1].params, [90.0, 91.0, 50.0, 40.0]);
    assert_eq!(c[&2].params, [90.0, 50.0, 40.0]);
    let e = cameras_txt(p, "1 PINHOLE 100 80 90 x 50 40\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1") && e.contains("PARAMS[1]"), "{e}");
    let c = cameras_txt(p, "1 RADIAL 100 80 90 50 40 0.1 -0.01\n").unwrap();
    assert_eq!(c[&1].model, CameraModel::Radial);
    let e = cameras_txt(p, "1 RADIAL 100 80 90 50 40 0.1 -0.01 7\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes 5 parameters"), "{e}");
    let e = cameras_txt(p, "1 WIDE_ANGLE 100 80 1 2 3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown camera model WIDE_ANGLE"), "{e}");
    let ip = Path::new("images.txt");
    let ims = images_txt(
        ip,
        "# h\n1 1 0 0 0 0.5 0 1 1 a.png\n\n2 1 0 0 0 0 0 2 1 b c.png\n10 20 -1\n",
    )
    .unwrap();
    assert_eq!(ims.len(), 2);
    assert_eq!(ims[1].name, "b c.png");
    assert_eq!(ims[0].tvec, [0.5, 0.0, 1.0]);
    // a file without its POINTS2D lines: an error at the second image's
    // line, not every second image taken for points and left out
    let poses =
        "1 1 0 0 0 0.5 0 1 1 a.png\n2 0.9 0.1 0.2 0.3 0 0 2 1 b.png\n3 1 0 0 0 0 0 3 1 c.png\n";
    let e = images_txt(ip, poses).unwrap_err().to_string();
    assert!(
        e.starts_with("images.txt: line 2: ") && e.contains("two lines") && e.contains("`0.1`"),
        "{e}"
    );
    // points that are not triples, or not numbers
    for (points, want) in [
        ("1 2", "2 values"),
        ("1.5 2.5 x", "`x`"),
        ("1 2 3.5", "`3.5`"),
    ] {
        let text = format!("1 1 0 0 0 0 0 1 1 a.png\n{points}\n");
        let e = images_txt(ip, &text).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains(want), "{points}: {e}");
    }
    let ok = images_txt(ip, "1 1 0 0 0 0 0 1 1 a.png\n1.5e2 -2.25 -1 3 4 17\n").unwrap();
    assert_eq!(ok.len(), 1);
    let pts = points_txt(Path::new("p.txt"), "1 0.5 1 2 255 0 10 0.1 1 2\n").unwrap();
    assert_eq!(pts[0].rgb, [255, 0, 10]);
    let e = points_txt(Path::new("p.txt"), "1 0.5 1 nan 255 0 10 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not finite"), "{e}");
}

#[test]
fn quaternion_rotation_is_orthonormal() {
    let r = quat_to_rotation([0.9, 0.1, -0.3, 0.2]).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            let d: f64 = (0..3).map(|k| r[k][i] * r[k][j]).sum();
            assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
    assert!(quat_to_rotation([0.0; 4]).is_none());
    // finite components whose squared norm overflows: rejected, not
    // silently the identity
    assert!(quat_to_rotation([1e200, 0.0, 0.0, 1e200]).is_none());
}

/// nerfstudio's layout (`ns-process-data`): the photos in `D/images`,
/// COLMAP's model in `D/colmap/sparse/0`; `D` and the model's own folder
/// both name the dataset `D`, and a `D/sparse` of its own still wins.
#[test]
fn nerfstudio_layout_finds_its_model_and_photos() {
    let d = std::env::temp_dir().join(format!("cr-nerfstudio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let model = d.join("colmap/sparse/0");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::write(model.join("cameras.txt"), "").unwrap();
    std::fs::write(model.join("images.txt"), "1 1 0 0 0 0 0 1 1 a.png\n\n").unwrap();
    assert_eq!(crate::data::detect(&d), Some("colmap"));
    assert_eq!(model_folder(&d), model);
    assert_eq!(dataset_of_model(&model), Some(d.clone()));
    // a colmap/ folder with photos of its own is its own dataset
    std::fs::create_dir_all(d.join("colmap/images")).unwrap();
    assert_eq!(dataset_of_model(&model), Some(d.join("colmap")));
    // and D/sparse, when there, is D's model folder
    std::fs::create_dir_all(d.join("sparse/0")).unwrap();
    std::fs::write(d.join("sparse/0/images.txt"), "").unwrap();
    assert_eq!(sparse_dir(&d), d.join("sparse"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// `images_N` copies named otherwise than their photos: by the photo's
/// name with another extension, else (no copy named after any photo, as
/// many files) in sorted order, as gsplat pairs an LLFF capture's; copies
/// named as their photos need no match, and a folder that is neither is
/// left to the loader's error.
#[test]
fn images_n_copies_are_matched_by_stem_or_sorted_order() {
    let d = std::env::temp_dir().join(format!("cr-copies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let (full, copies) = (d.join("images"), d.join("images_4"));
    let touch = |dir: &Path, names: &[&str]| {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
    };
    let image = |name: &str| Image {
        id: 1,
        qvec: [1.0, 0.0, 0.0, 0.0],
        tvec: [0.0; 3],
        camera_id: 1,
        name: name.into(),
    };
    let ims = [image("IMG_7.JPG"), image("IMG_9.JPG")];
    touch(&full, &["IMG_7.JPG", "IMG_9.JPG"]);
    // by stem
    touch(&copies, &["IMG_7.png", "IMG_9.png", "notes.txt"]);
    let (m, note) = copies_named_otherwise(&ims, &full, &copies);
    assert_eq!(m["IMG_9.JPG"], copies.join("IMG_9.png"));
    assert!(note.unwrap().contains("another extension"));
    // by sorted order (LLFF)
    touch(&copies, &["image001.png", "image000.png"]);
    let (m, note) = copies_named_otherwise(&ims, &full, &copies);
    assert_eq!(m["IMG_7.JPG"], copies.join("image000.png"));
    assert_eq!(m["IMG_9.JPG"], copies.join("image001.png"));
    assert!(note.unwrap().contains("sorted order"));
    // not as many files: no pairing
    touch(&copies, &["image000.png"]);
    assert!(copies_named_otherwise(&ims, &full, &copies).0.is_empty());
    // named as the photos: nothing to match
    touch(&copies, &["IMG_7.JPG", "IMG_9.JPG"]);
    let (m, note) = copies_named_otherwise(&ims, &full, &copies);
    assert!(m.is_empty() && note.is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

/// Two models pose the same photos the same way when names and poses
/// agree (a quaternion's sign aside), whatever their files' order.
#[test]
fn same_poses_compares_names_and_poses() {
    let d = std::env::temp_dir().join(format!("cr-same-poses-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let model = |name: &str, images: &str| {
        let m = d.join(name);
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("cameras.txt"), "1 PINHOLE 4 3 5 5 2 1.5\n").unwrap();
        std::fs::write(m.join("images.txt"), images).unwrap();
        m
    };
    let a = model(
        "a",
        "1 0.6 0.8 0 0 1 2 3 1 x.png\n\n2 1 0 0 0 0 0 0 1 y.png\n\n",
    );
    let b = model(
        "b",
        "7 1 0 0 0 0 0 0 1 y.png\n\n3 -0.6 -0.8 0 0 1 2 3 1 x.png\n\n",
    );
    let c = model(
        "c",
        "1 0.6 0.8 0 0 1 2 3.01 1 x.png\n\n2 1 0 0 0 0 0 0 1 y.png\n\n",
    );
    let e = model("e", "1 0.6 0.8 0 0 1 2 3 1 x.png\n\n");
    assert!(same_poses(&a, &b));
    assert!(!same_poses(&a, &c));
    assert!(!same_poses(&a, &e) && !same_poses(&e, &a));
    assert!(!same_poses(&a, &d.join("missing")));
    std::fs::remove_dir_all(&d).unwrap();
}

/// A one-photo COLMAP dataset in a fresh temporary folder `tag`: a
/// PINHOLE camera (`camera`: W H fx fy cx cy), the image named `name` at
/// the identity pose, no points, and at `images/photo` a black photo of
/// `size`.
fn one_photo_dataset(
    tag: &str,
    camera: &str,
    name: &str,
    photo: &str,
    size: (u32, u32),
) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cr-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("sparse/0")).unwrap();
    let photo = d.join("images").join(photo);
    std::fs::create_dir_all(photo.parent().unwrap()).unwrap();
    std::fs::write(
        d.join("sparse/0/cameras.txt"),
        format!("1 PINHOLE {camera}\n"),
    )
    .unwrap();
    let images = format!("1 1 0 0 0 0 0 0 1 {name}\n\n");
    std::fs::write(d.join("sparse/0/images.txt"), images).unwrap();
    std::fs::write(d.join("sparse/0/points3D.txt"), "").unwrap();
    image::RgbImage::new(size.0, size.1).save(photo).unwrap();
    d
}

/// A model that names its photos with `\` between folders (another tool's,
/// on Windows) finds them in their folders, as if named with `/`.
#[test]
fn backslashed_names_find_their_photos() {
    let d = one_photo_dataset(
        "backslash",
        "4 3 5 5 2 1.5",
        "sub\\a.png",
        "sub/a.png",
        (4, 3),
    );
    let ds = super::cameras(&d, &crate::data::LoadOptions::default()).unwrap();
    let all: Vec<&str> = ds
        .train
        .iter()
        .chain(&ds.test)
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(all, ["sub/a.png"]);
    assert!(
        ds.read_from.iter().any(|f| f.ends_with("images/sub")),
        "{:?}",
        ds.read_from
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A photo stored turned a quarter from its camera (its pixels rotated
/// after COLMAP read them) is refused, saying so.
#[test]
fn a_photo_turned_a_quarter_says_so() {
    let d = one_photo_dataset("turned", "8 6 5 5 4 3", "a.png", "a.png", (6, 8));
    let e = super::load(&d, &crate::data::LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("turned a quarter"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
