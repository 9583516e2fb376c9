//! A real COLMAP reconstruction, loaded as COLMAP 4 wrote it: 12 photos
//! (160×120) of a ray-traced textured room, reconstructed by pycolmap 4.2.1
//! with default options (SIFT, exhaustive matching, incremental mapping)
//! and one shared camera, so a SIMPLE_RADIAL one, with `rigs.bin` and
//! `frames.bin` beside the usual files. Remade by
//! `fixtures/make_colmap_capture.py fixtures/colmap_room --views 12
//! --width 160 --height 120 --seed 1 --arc 60 --jpeg`; `truth.json` holds
//! the true focal length and camera centres.

use std::path::Path;

use crate::common::{on_threads, same_cameras, tmp};
use splat::cameras::CameraModel;
use splat::data::colmap::read_reconstruction;
use splat::data::{load, load_cameras, LoadOptions};

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/colmap_room"
    ))
}

#[test]
fn colmaps_own_simple_radial_capture_loads_undistorted() {
    let rec = read_reconstruction(&fixture().join("sparse/0")).unwrap();
    assert_eq!(rec.cameras.len(), 1);
    let cam = rec.cameras.values().next().unwrap();
    assert_eq!(cam.model, CameraModel::SimpleRadial);
    let ds = load(
        fixture(),
        &LoadOptions {
            holdout_every: 4,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 12);
    assert_eq!(ds.test.len(), 3);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("truth.json")).unwrap())
            .unwrap();
    let f_true = truth["focal"].as_f64().unwrap();
    let views: Vec<_> = ds.train.iter().chain(&ds.test).collect();
    for v in &views {
        // undistorted into a pinhole with COLMAP's focal length, within 2%
        // of the focal length the photos were rendered with
        assert!((v.fx / f_true - 1.0).abs() < 0.02, "{} vs {f_true}", v.fx);
        assert_eq!(v.fx, v.fy);
        assert_eq!(v.image.len(), (v.width * v.height * 3) as usize);
        // k > 0 (pincushion): the pinhole keeps the inner part of the photo
        assert!(v.width <= 160 && v.height <= 120);
    }
    // the reconstructed camera centres are the true ones up to a
    // similarity: every distance between two cameras has the same ratio
    let true_eye = |name: &str| -> [f64; 3] {
        let v = truth["views"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        [0, 1, 2].map(|k| v["eye"][k].as_f64().unwrap())
    };
    let dist = |a: [f64; 3], b: [f64; 3]| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
    let mut ratios = Vec::new();
    for i in 0..views.len() {
        for j in i + 1..views.len() {
            let d_true = dist(true_eye(&views[i].name), true_eye(&views[j].name));
            let d_rec = dist(views[i].camera_center(), views[j].camera_center());
            ratios.push(d_rec / d_true);
        }
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    for r in &ratios {
        assert!((r / mean - 1.0).abs() < 0.05, "{r} vs mean {mean}");
    }
    // the sparse points come along
    assert!(ds.points.as_ref().is_some_and(|p| p.len() > 100));
}

/// When COLMAP's mapper writes several models (`sparse/0`, `sparse/1`, …,
/// in no order of size), the one registering the most photos is loaded,
/// and `models` lists them all with their counts.
#[test]
fn of_several_models_the_largest_loads() {
    use splat::data::colmap::{model_folder, models};
    let dir = crate::common::tmp("several-models");
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy(&fixture().join("images"), &dir.join("images"));
    // the whole model as sparse/1, and a two-photo one as sparse/0 (the
    // same cameras and points, images.txt with two of the poses)
    copy(&fixture().join("sparse/0"), &dir.join("sparse/1"));
    std::fs::create_dir_all(dir.join("sparse/0")).unwrap();
    for f in ["cameras.bin", "points3D.bin"] {
        std::fs::copy(
            fixture().join("sparse/0").join(f),
            dir.join("sparse/0").join(f),
        )
        .unwrap();
    }
    let rec = read_reconstruction(&fixture().join("sparse/0")).unwrap();
    let mut text = String::from("# two of the photos\n");
    for im in rec.images.iter().take(2) {
        let [qw, qx, qy, qz] = im.qvec;
        let [tx, ty, tz] = im.tvec;
        text += &format!(
            "{} {qw} {qx} {qy} {qz} {tx} {ty} {tz} {} {}\n\n",
            im.id, im.camera_id, im.name
        );
    }
    std::fs::write(dir.join("sparse/0/images.txt"), text).unwrap();
    assert_eq!(
        models(&dir),
        vec![(dir.join("sparse/0"), 2), (dir.join("sparse/1"), 12)]
    );
    assert_eq!(model_folder(&dir), dir.join("sparse/1"));
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 12);
    // a model named by its folder loads instead, with the dataset's photos
    // (given as it is and relative to the working folder alike)
    use splat::data::{colmap::dataset_of_model, detect};
    let small = dir.join("sparse/0");
    assert_eq!(dataset_of_model(&small), Some(dir.clone()));
    assert_eq!(detect(&small), Some("colmap"));
    let ds = load(&small, &LoadOptions::default()).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 2);
    assert_eq!(dataset_of_model(&dir.join("images")), None);
    // a model in sparse/ itself is a candidate too, and wins here
    for e in std::fs::read_dir(dir.join("sparse/1")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("sparse").join(e.file_name())).unwrap();
    }
    std::fs::remove_dir_all(dir.join("sparse/1")).unwrap();
    assert_eq!(models(&dir)[0], (dir.join("sparse"), 12));
    assert_eq!(model_folder(&dir), dir.join("sparse"));
    // a single model is read where it is, numbered or not
    for e in std::fs::read_dir(dir.join("sparse")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    std::fs::rename(dir.join("sparse/0"), dir.join("sparse/3")).unwrap();
    assert_eq!(model_folder(&dir), dir.join("sparse/3"));
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 2);
}

/// With an `images_2` folder (the Mip-NeRF 360 layout) and full-size
/// masks in `masks/` (no `masks_2`), `--downscale 2` fits each mask to its
/// smaller photo instead of leaving the masks out.
#[test]
fn full_size_masks_fit_an_images_n_folder() {
    let dir = crate::common::tmp("images-n-masks");
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("images_2")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    std::fs::create_dir_all(dir.join("sparse/0")).unwrap();
    for e in std::fs::read_dir(fixture().join("sparse/0")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("sparse/0").join(e.file_name())).unwrap();
    }
    for e in std::fs::read_dir(fixture().join("images")).unwrap() {
        let photo = e.unwrap().path();
        let name = photo.file_name().unwrap().to_owned();
        std::fs::copy(&photo, dir.join("images").join(&name)).unwrap();
        let img = image::open(&photo).unwrap();
        let (w, h) = (img.width(), img.height());
        img.resize_exact(w / 2, h / 2, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .save(dir.join("images_2").join(&name))
            .unwrap();
        // the left quarter ignored
        let mask =
            image::GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x >= w / 4) * 255]));
        let stem = photo.file_stem().unwrap().to_str().unwrap();
        mask.save(dir.join(format!("masks/{stem}.png"))).unwrap();
    }
    let opts = LoadOptions {
        downscale: 2,
        ..LoadOptions::default()
    };
    let check = |ds: &splat::data::Dataset| {
        for v in ds.train.iter().chain(&ds.test) {
            assert!(v.width <= 80 && v.height <= 60, "{}×{}", v.width, v.height);
            let m = v.mask.as_ref().expect("the mask, fitted");
            assert_eq!(m.len(), (v.width * v.height) as usize);
            let ignored = m.iter().filter(|&x| x < 1.0).count() as f64 / m.len() as f64;
            assert!(
                (0.2..0.4).contains(&ignored),
                "{ignored} of the pixels ignored"
            );
        }
    };
    check(&load(&dir, &opts).unwrap());
    // masks already of the smaller photos' size are taken as they are
    for e in std::fs::read_dir(dir.join("images_2")).unwrap() {
        let photo = e.unwrap().path();
        let (w, h) = image::image_dimensions(&photo).unwrap();
        let mask =
            image::GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x >= w / 4) * 255]));
        let stem = photo.file_stem().unwrap().to_str().unwrap();
        mask.save(dir.join(format!("masks/{stem}.png"))).unwrap();
    }
    check(&load(&dir, &opts).unwrap());
    // a mask whose bytes are another format than its name says (a JPEG
    // saved as .png) is sized by its bytes, as it is read
    let first = std::fs::read_dir(dir.join("images_2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let stem = first.file_stem().unwrap().to_str().unwrap().to_string();
    let (w, h) = image::image_dimensions(&first).unwrap();
    let jpeg = image::GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x >= w / 4) * 255]));
    let mut bytes = Vec::new();
    jpeg.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    std::fs::write(dir.join(format!("masks/{stem}.png")), &bytes).unwrap();
    check(&load(&dir, &opts).unwrap());
    let keep_left_out = bytes;
    // a mask of neither size names itself, the photo it masks, and both
    // sizes it could have had
    image::GrayImage::new(7, 5)
        .save(dir.join(format!("masks/{stem}.png")))
        .unwrap();
    let e = load(&dir, &opts).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{stem}.png"))
            && e.contains(&*first.to_string_lossy())
            && e.contains("7×5"),
        "{e}"
    );
    // a masks_2 folder is used first, and a photo it has no mask for takes
    // its full-size mask from masks/, fitted: with an empty masks_2 every
    // photo does, and with one mask there (keeping the whole photo) that
    // photo takes it
    std::fs::write(dir.join(format!("masks/{stem}.png")), &keep_left_out).unwrap();
    std::fs::create_dir_all(dir.join("masks_2")).unwrap();
    let ds = load(&dir, &opts).unwrap();
    check(&ds);
    assert!(ds.notes.is_empty(), "{:?}", ds.notes);
    image::GrayImage::from_pixel(w, h, image::Luma([255]))
        .save(dir.join(format!("masks_2/{stem}.png")))
        .unwrap();
    let ds = load(&dir, &opts).unwrap();
    let name = first.file_name().unwrap().to_str().unwrap();
    for v in ds.train.iter().chain(&ds.test) {
        // (a mask that keeps every pixel is no mask)
        let kept_all = v.mask.as_ref().is_none_or(|m| m.iter().all(|x| x == 1.0));
        assert_eq!(kept_all, v.name.ends_with(name), "{}", v.name);
    }
    assert!(ds.notes.is_empty(), "{:?}", ds.notes);
    // a photo in neither folder trains without a mask, and the note names
    // both folders
    let last = std::fs::read_dir(dir.join("images_2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let last_stem = last.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(dir.join(format!("masks/{last_stem}.png"))).unwrap();
    let ds = load(&dir, &opts).unwrap();
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    let n = &ds.notes[0];
    assert!(
        n.contains("masks_2 (nor") && n.contains("masks) has no mask for 1 of the"),
        "{n}"
    );
}

/// A copy of the fixture (its photos and model) with an empty `images_2`
/// beside `images/`, and the photos' names, sorted.
fn copy_with_images_n(tag: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = crate::common::tmp(tag);
    for d in ["images", "images_2", "sparse/0"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for e in std::fs::read_dir(fixture().join("sparse/0")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("sparse/0").join(e.file_name())).unwrap();
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(fixture().join("images")).unwrap() {
        let photo = e.unwrap().path();
        let name = photo.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::copy(&photo, dir.join("images").join(&name)).unwrap();
        names.push(name);
    }
    names.sort();
    (dir, names)
}

/// Photos at another size than their camera's (÷ N in `images_N`) are
/// still taken as scaled copies, and a note says which: one photo of
/// `images_2` at a quarter size, then a whole `images/` at half size.
#[test]
fn photos_at_another_size_are_named_in_a_note() {
    let (dir, names) = copy_with_images_n("images-other-size");
    let shrink = |from: &str, to: &str, name: &str, f: u32| {
        let img = image::open(dir.join(from).join(name)).unwrap();
        let (w, h) = (img.width(), img.height());
        img.resize_exact(w / f, h / f, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .save(dir.join(to).join(name))
            .unwrap();
        (w, h)
    };
    let mut sizes = Vec::new();
    for name in &names {
        sizes.push(shrink("images", "images_2", name, 2));
    }
    let opts = LoadOptions {
        downscale: 2,
        ..LoadOptions::default()
    };
    assert!(load(&dir, &opts).unwrap().notes.is_empty());
    // one copy at a quarter of the camera's size
    let odd = &names[1];
    shrink("images", "images_2", odd, 4);
    let ds = load(&dir, &opts).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), names.len());
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    let (w, h) = sizes[1];
    let n = &ds.notes[0];
    assert!(
        n.starts_with(&format!(
            "1 of the {} photos is not at its camera's size ({odd}; ",
            names.len()
        )) && n.contains(&format!(
            "images_2/{odd} is {}×{}, not {}×{})",
            w / 4,
            h / 4,
            w / 2,
            h / 2
        )),
        "{n}"
    );
    // a whole images/ at half size, read without images_2
    std::fs::remove_dir_all(dir.join("images_2")).unwrap();
    for name in &names {
        shrink("images", "images", name, 2);
    }
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    let n = &ds.notes[0];
    assert!(
        n.starts_with(&format!(
            "{} of the {} photos are not at their camera's size",
            names.len(),
            names.len()
        )) && n.contains("images/"),
        "{n}"
    );
}

/// A photo that `images_2` lacks is read from `images/` and downscaled as
/// it would be without `images_2` (the same view, bit for bit), with a note
/// naming it; its mask is looked for in `masks/` first, then a `masks_2`
/// one is fitted to it. A photo in neither folder is still an error.
#[test]
fn a_photo_missing_from_images_n_is_read_full_size() {
    let (dir, names) = copy_with_images_n("images-n-fallback");
    let opts = LoadOptions {
        downscale: 2,
        ..LoadOptions::default()
    };
    // without images_2 (an empty one is set aside): every photo downscaled
    std::fs::rename(dir.join("images_2"), dir.join("set-aside")).unwrap();
    let plain = load(&dir, &opts).unwrap();
    std::fs::rename(dir.join("set-aside"), dir.join("images_2")).unwrap();
    // images_2 has every photo but the last, as distinct copies
    let missing = names.last().unwrap().clone();
    for name in &names[..names.len() - 1] {
        let img = image::open(dir.join("images").join(name)).unwrap();
        let (w, h) = (img.width(), img.height());
        img.resize_exact(w / 2, h / 2, image::imageops::FilterType::Nearest)
            .to_rgb8()
            .save(dir.join("images_2").join(name))
            .unwrap();
    }
    let ds = load(&dir, &opts).unwrap();
    let find = |d: &splat::data::Dataset| {
        let v = d.train.iter().chain(&d.test).find(|v| v.name == missing);
        let v = v.expect("the missing photo's view").clone();
        (v.image, [v.fx, v.fy, v.cx, v.cy], v.width, v.height)
    };
    assert_eq!(ds.train.len() + ds.test.len(), names.len());
    assert!(
        find(&ds) == find(&plain),
        "the photo read full-size is the plain downscale's"
    );
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    let n = &ds.notes[0];
    assert!(
        n.contains("images_2 has no copy of 1 of the") && n.contains(&missing),
        "{n}"
    );
    // its mask: a masks_2 one (of the images_2 size) is fitted to it
    let (w, h) = image::image_dimensions(dir.join("images").join(&missing)).unwrap();
    let (w2, h2) = (w / 2, h / 2);
    let stem = std::path::Path::new(&missing)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    std::fs::create_dir_all(dir.join("masks_2")).unwrap();
    for name in &names {
        let s = std::path::Path::new(name)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap();
        image::GrayImage::from_fn(w2, h2, |x, _| image::Luma([u8::from(x >= w2 / 4) * 255]))
            .save(dir.join(format!("masks_2/{s}.png")))
            .unwrap();
    }
    let ds = load(&dir, &opts).unwrap();
    for v in ds.train.iter().chain(&ds.test) {
        let m = v.mask.as_ref().expect("a mask");
        let ignored = m.iter().filter(|&x| x < 1.0).count() as f64 / m.len() as f64;
        assert!((0.2..0.35).contains(&ignored), "{}: {ignored}", v.name);
    }
    // a masks_2 mask of another size names both sizes, one pixel off too
    for (mw, mh) in [(7, 5), (w2 + 1, h2 + 1)] {
        image::GrayImage::new(mw, mh)
            .save(dir.join(format!("masks_2/{stem}.png")))
            .unwrap();
        let e = load(&dir, &opts).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{mw}×{mh}")) && e.contains("the images_2 size"),
            "{e}"
        );
    }
    // a full-size mask in masks/ comes first
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    image::GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x < w / 2) * 255]))
        .save(dir.join(format!("masks/{stem}.png")))
        .unwrap();
    let ds = load(&dir, &opts).unwrap();
    let v = ds
        .train
        .iter()
        .chain(&ds.test)
        .find(|v| v.name == missing)
        .unwrap();
    let m = v.mask.as_ref().unwrap();
    let ignored = m.iter().filter(|&x| x < 1.0).count() as f64 / m.len() as f64;
    assert!((0.45..0.6).contains(&ignored), "{ignored}");
    // in neither folder: an error naming both paths
    let kept = std::fs::read(dir.join("images").join(&missing)).unwrap();
    std::fs::remove_file(dir.join("images").join(&missing)).unwrap();
    let e = load(&dir, &opts).unwrap_err().to_string();
    assert!(
        e.contains(&format!("images_2/{missing}")) && e.contains(&format!("images/{missing}")),
        "{e}"
    );
    std::fs::write(dir.join("images").join(&missing), kept).unwrap();
    // an images_2 with none of the photos (copies named otherwise) is an
    // error, not a silent full-size load
    std::fs::remove_dir_all(dir.join("images_2")).unwrap();
    std::fs::create_dir_all(dir.join("images_2")).unwrap();
    std::fs::write(dir.join("images_2/other.png"), b"x").unwrap();
    let e = load(&dir, &opts).unwrap_err().to_string();
    assert!(
        e.contains("has none of the model's") && e.contains("images_2"),
        "{e}"
    );
}

/// A hand-edited or merged model that names one photo in two records
/// (COLMAP never writes one) is refused, naming images.bin and both
/// records by their image ids, rather than training on one photo at two
/// poses and leaving the other photo out.
#[test]
fn a_photo_named_by_two_images_is_refused() {
    let rec = read_reconstruction(&fixture().join("sparse/0")).unwrap();
    let (a, b) = (&rec.images[0], &rec.images[1]);
    assert_eq!(a.name.len(), b.name.len());
    let dir = std::env::temp_dir().join(format!("chainrule-colmap-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sparse = dir.join("sparse/0");
    std::fs::create_dir_all(&sparse).unwrap();
    for f in ["cameras.bin", "points3D.bin"] {
        std::fs::copy(fixture().join("sparse/0").join(f), sparse.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(fixture().join("sparse/0/images.bin")).unwrap();
    let old = format!("{}\0", b.name).into_bytes();
    let at = bytes
        .windows(old.len())
        .position(|w| w == old.as_slice())
        .expect("the second name");
    bytes[at..at + a.name.len()].copy_from_slice(a.name.as_bytes());
    std::fs::write(sparse.join("images.bin"), bytes).unwrap();
    let e = read_reconstruction(&sparse).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    let want = format!(
        "images.bin: image {} (record 1): names {}, as image {} (record 0) does",
        b.id, a.name, a.id
    );
    assert!(e.contains(&want), "{e}");
}

/// Photos are loaded a few at a time and each narrowed to `max_width` as
/// it is loaded (so that a capture of large photos is never held at full
/// size all at once): the dataset is the one loaded at full size and
/// narrowed afterwards, bit for bit (colours, undistortion's masks,
/// intrinsics), whatever the number of threads decoding the photos.
#[test]
fn photos_narrowed_as_they_load_are_those_narrowed_afterwards() {
    let full = load(fixture(), &LoadOptions::default()).unwrap();
    let mut want = full.clone();
    for v in want.train.iter_mut().chain(want.test.iter_mut()) {
        splat::data::limit_width(v, 100);
    }
    for threads in [1, 3] {
        let opts = LoadOptions {
            max_width: Some(100),
            ..LoadOptions::default()
        };
        let got = on_threads(threads, || load(fixture(), &opts)).unwrap();
        assert_eq!(got.train.len(), want.train.len());
        assert_eq!(got.test.len(), want.test.len());
        for (g, w) in got
            .train
            .iter()
            .chain(&got.test)
            .zip(want.train.iter().chain(&want.test))
        {
            assert_eq!(g.name, w.name);
            assert_eq!((g.width, g.height), (w.width, w.height));
            assert!(g.width <= 100 && w.width < full.train[0].width);
            assert_eq!([g.fx, g.fy, g.cx, g.cy], [w.fx, w.fy, w.cx, w.cy]);
            // the loader rounds to 8 bits once, after narrowing; `limit_width`
            // narrows photos already rounded: at most a level apart
            assert!(within_a_level(&g.image, &w.image), "{}: colours", g.name);
            assert_eq!(g.mask.is_some(), w.mask.is_some(), "{}", g.name);
            if let (Some(a), Some(b)) = (&g.mask, &w.mask) {
                assert!(a == b, "{}: mask", g.name);
            }
            assert_eq!(g.alpha.is_some(), w.alpha.is_some(), "{}", g.name);
            if let (Some(a), Some(b)) = (&g.alpha, &w.alpha) {
                assert!(within_a_level(a, b), "{}: alpha", g.name);
            }
        }
    }
}

/// Photos are reduced in order as they are decoded, so the first photo
/// that fails is the error, whatever the number of threads decoding them
/// and however far the capture goes on: here the first photo's mask is of
/// the wrong size, and the last photo is not an image (a loader that
/// decoded every photo first reported the last one).
#[test]
fn the_first_photo_that_fails_is_the_error() {
    let dir = tmp("colmap-order");
    let sparse = dir.join("sparse/0");
    std::fs::create_dir_all(&sparse).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    for f in ["cameras.bin", "images.bin", "points3D.bin"] {
        std::fs::copy(fixture().join("sparse/0").join(f), sparse.join(f)).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(fixture().join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for n in &names {
        std::fs::copy(fixture().join("images").join(n), dir.join("images").join(n)).unwrap();
    }
    std::fs::write(
        dir.join("images").join(names.last().unwrap()),
        b"not a photo",
    )
    .unwrap();
    image::GrayImage::new(7, 5)
        .save(dir.join("masks").join(format!("{}.png", names[0])))
        .unwrap();
    for threads in [1, 3] {
        let e = on_threads(threads, || load(&dir, &LoadOptions::default()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{}.png", names[0])),
            "{threads} threads: {e}"
        );
        assert!(
            !e.contains(names.last().unwrap().as_str()),
            "{threads} threads: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether two photos of the same size differ by at most one 8-bit level
/// anywhere.
fn within_a_level(a: &splat::data::Pixels8, b: &splat::data::Pixels8) -> bool {
    a.len() == b.len()
        && a.bytes()
            .iter()
            .zip(b.bytes())
            .all(|(x, y)| x.abs_diff(*y) <= 1)
}

/// The cameras alone (what `render --path` and the viewer read) are the
/// full load's, to the bit, at every size option, from `images_N` copies
/// too, and a missing photo leaves its camera as it was.
#[test]
fn cameras_alone_are_those_the_full_load_gives() {
    let options = [
        LoadOptions::default(),
        LoadOptions {
            downscale: 3,
            ..LoadOptions::default()
        },
        LoadOptions {
            max_width: Some(100),
            holdout_every: 3,
            background: [0.5; 3],
            ..LoadOptions::default()
        },
    ];
    for opts in &options {
        let full = load(fixture(), opts).unwrap();
        same_cameras(&full, &load_cameras(fixture(), opts).unwrap());
    }
    let (dir, names) = copy_with_images_n("cameras-alone");
    for name in &names[1..] {
        let img = image::open(dir.join("images").join(name)).unwrap();
        img.resize_exact(80, 60, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .save(dir.join("images_2").join(name))
            .unwrap();
    }
    let opts = LoadOptions {
        downscale: 2,
        ..LoadOptions::default()
    };
    let full = load(&dir, &opts).unwrap();
    same_cameras(&full, &load_cameras(&dir, &opts).unwrap());
    // a photo gone: the full load refuses the folder, the cameras are
    // unchanged (the camera's own size stands in for the photo's)
    std::fs::remove_file(dir.join("images_2").join(&names[3])).unwrap();
    std::fs::remove_file(dir.join("images").join(&names[3])).unwrap();
    assert!(load(&dir, &opts).is_err());
    let cams = load_cameras(&dir, &opts).unwrap();
    same_cameras(&full, &cams);
    assert!(cams.read_from.iter().any(|d| d.ends_with("images_2")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The loader's words for what a user must fix: every missing photo (not
/// one a run), a model without photos, masks in another format, and the
/// photos narrowed to the width limit.
#[test]
fn the_loader_says_what_is_wrong_and_how_much() {
    let (dir, names) = copy_with_images_n("loader-words");
    std::fs::remove_dir_all(dir.join("images_2")).unwrap();
    let err = |opts: &LoadOptions| load(&dir, opts).unwrap_err().to_string();
    // narrowed: said, with how many
    let narrow = LoadOptions {
        max_width: Some(100),
        ..LoadOptions::default()
    };
    let ds = load(&dir, &narrow).unwrap();
    let note = ds.notes.iter().find(|n| n.contains("width limit"));
    let note = note.expect("a note on the narrowed photos");
    assert!(
        note.starts_with("12 of the 12 photos are wider than 100 pixels"),
        "{note}"
    );
    assert!(load(&dir, &LoadOptions::default())
        .unwrap()
        .notes
        .iter()
        .all(|n| !n.contains("width limit")));
    // masks saved as JPEG, or as .PNG: named, with what to do
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    let jpg = dir.join("masks").join(&names[0]);
    std::fs::copy(dir.join("images").join(&names[0]), &jpg).unwrap();
    let e = err(&LoadOptions::default());
    assert!(
        e.contains(&format!("there is {}", jpg.display())) && e.contains("PNG files only"),
        "{e}"
    );
    std::fs::remove_file(&jpg).unwrap();
    let upper = dir.join("masks").join("IMG_0000.PNG");
    std::fs::write(&upper, b"not read").unwrap();
    let e = err(&LoadOptions::default());
    assert!(e.contains("extension .png, in lower case"), "{e}");
    std::fs::remove_dir_all(dir.join("masks")).unwrap();
    // three photos gone: the first named as the error's path, all three
    // in its message
    for k in [2, 5, 9] {
        std::fs::remove_file(dir.join("images").join(&names[k])).unwrap();
    }
    match load(&dir, &LoadOptions::default()).unwrap_err() {
        splat::data::DataError::Io { path, message } => {
            assert_eq!(path, dir.join("images").join(&names[2]));
            let want = format!(
                "image file not found, nor 2 more of the dataset's photos: {}, {}",
                names[5], names[9]
            );
            assert_eq!(message, want);
        }
        e => panic!("{e}"),
    }
    // the first of them there under a name in other letter case, or with
    // another extension: said
    let images = dir.join("images");
    let stem = std::path::Path::new(&names[2])
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    for (there, said) in [
        (names[2].to_uppercase(), "the names differ in letter case"),
        (format!("{stem}.jpeg"), "with another extension"),
    ] {
        std::fs::copy(images.join(&names[0]), images.join(&there)).unwrap();
        let e = err(&LoadOptions::default());
        assert!(
            e.contains(&format!("({there} is there")) && e.contains(said),
            "{e}"
        );
        std::fs::remove_file(images.join(&there)).unwrap();
    }
    // a model that registers no photos says so
    std::fs::remove_file(dir.join("sparse/0/images.bin")).unwrap();
    std::fs::write(dir.join("sparse/0/images.txt"), "# no images\n").unwrap();
    let e = err(&LoadOptions::default());
    assert!(e.contains("the COLMAP model registers no photos"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
