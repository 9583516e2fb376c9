//! Masks end to end: files in `masks/` (COLMAP beside `images/`,
//! NeRF-synthetic in each split's folder), a COLMAP photo's alpha channel,
//! `invert_masks`, a mask at half its photo's size, and the errors for a
//! missing or mis-sized mask; and the folder layouts COLMAP 4 and
//! `image_undistorter` leave.

use std::path::Path;

use crate::common::{tmp, write_colmap_bin};
use splat::cameras::{CameraModel, Intrinsics};
use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{load, LoadOptions, Mat4};

const W: u32 = 16;
const H: u32 = 12;

fn pose(i: usize) -> Mat4 {
    [
        [1.0, 0.0, 0.0, 0.1 * i as f64],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 3.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// A pinhole COLMAP folder of two opaque grey photos (`p0.jpg`, `p1.jpg`
/// as PNG bytes), or with an alpha channel whose left column is 0.
fn write(dir: &Path, alpha: bool) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let cam = Intrinsics::new(
        CameraModel::Pinhole,
        W as u64,
        H as u64,
        vec![20.0, 20.0, 8.0, 6.0],
    )
    .unwrap();
    let mut images = Vec::new();
    for i in 0..2 {
        let name = format!("p{i}.png");
        let img = image::RgbaImage::from_fn(W, H, |x, _| {
            image::Rgba([100, 100, 100, if alpha && x == 0 { 0 } else { 255 }])
        });
        img.save(dir.join("images").join(&name)).unwrap();
        images.push((name, pose(i)));
    }
    write_colmap_bin(dir, &cam, &images);
}

/// A grey mask image: 0 in the top row, 255 elsewhere.
fn mask_png(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_fn(w, h, |_, y| image::Luma([if y == 0 { 0 } else { 255 }]))
        .save(path)
        .unwrap();
}

fn opts(invert: bool) -> LoadOptions {
    LoadOptions {
        holdout_every: 0,
        invert_masks: invert,
        ..LoadOptions::default()
    }
}

/// A `masks` that is a file, or a link to a folder that is not there
/// (masks on a drive not mounted), is an error naming it, not a run
/// without the masks; a link to a real folder is read.
#[test]
fn a_masks_entry_that_is_no_folder_is_an_error() {
    let dir = tmp("masks-not-folder");
    write(&dir, false);
    std::fs::write(dir.join("masks"), b"not a folder").unwrap();
    let e = load(&dir, &opts(false)).unwrap_err().to_string();
    assert!(e.contains("masks") && e.contains("is a file"), "{e}");
    std::fs::remove_file(dir.join("masks")).unwrap();
    #[cfg(unix)]
    {
        let gone = dir.join("elsewhere");
        std::os::unix::fs::symlink(&gone, dir.join("masks")).unwrap();
        let e = load(&dir, &opts(false)).unwrap_err().to_string();
        assert!(e.contains("elsewhere") && e.contains("not there"), "{e}");
        mask_png(&gone.join("p0.png"), W, H);
        let ds = load(&dir, &opts(false)).unwrap();
        assert!(ds.train.iter().chain(&ds.test).any(|v| v.mask.is_some()));
    }
}

#[test]
fn colmap_masks_by_full_name_or_stem_and_inverted() {
    let dir = tmp("masks-colmap");
    write(&dir, false);
    // no masks folder: every pixel counts; asked to invert, the notes say
    // that nothing was
    let ds = load(&dir, &opts(false)).unwrap();
    assert!(ds.train.iter().all(|v| v.mask.is_none()));
    assert!(ds.notes.is_empty(), "{:?}", ds.notes);
    let inverted = load(&dir, &opts(true)).unwrap();
    assert!(inverted.train.iter().all(|v| v.mask.is_none()));
    assert!(
        inverted
            .notes
            .iter()
            .any(|n| n.contains("no photo has a mask file")),
        "{:?}",
        inverted.notes
    );
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    let from =
        |ds: &splat::data::Dataset| ds.read_from.iter().map(|p| canon(p)).collect::<Vec<_>>();
    assert_eq!(from(&ds), [canon(&dir.join("images"))]);
    mask_png(&dir.join("masks/p0.png.png"), W, H);
    mask_png(&dir.join("masks/p1.png"), W, H);
    assert_eq!(
        from(&load(&dir, &opts(false)).unwrap()),
        [canon(&dir.join("images")), canon(&dir.join("masks"))]
    );
    for invert in [false, true] {
        let ds = load(&dir, &opts(invert)).unwrap();
        assert!(!ds.notes.iter().any(|n| n.contains("no photo has a mask")));
        for v in &ds.train {
            let m = v.mask.as_ref().expect("a mask");
            for (i, x) in m.iter().enumerate() {
                let top = i < W as usize;
                assert_eq!(x, if top != invert { 0.0 } else { 1.0 }, "{} {i}", v.name);
            }
        }
    }
    // downscaled: a pixel is kept only if its whole block is
    let ds = load(
        &dir,
        &LoadOptions {
            downscale: 2,
            ..opts(false)
        },
    )
    .unwrap();
    let m = ds.train[0].mask.as_ref().unwrap();
    assert_eq!(m.len(), (W / 2 * H / 2) as usize);
    assert!(m.to_f32()[..(W / 2) as usize].iter().all(|&x| x == 0.0));
    assert!(m.to_f32()[(W / 2) as usize..].iter().all(|&x| x == 1.0));
    // wrong size: both files named
    mask_png(&dir.join("masks/p1.png"), W + 1, H);
    let e = load(&dir, &opts(false)).unwrap_err().to_string();
    assert!(
        e.contains("masks/p1.png") && e.contains("images/p1.png") && e.contains("17×12"),
        "{e}"
    );
    // half the photo's size (made from an images_2 copy): resampled, its
    // first row covering the photo's first two
    mask_png(&dir.join("masks/p1.png"), W / 2, H / 2);
    let ds = load(&dir, &opts(false)).unwrap();
    let v = ds
        .train
        .iter()
        .find(|v| v.name.ends_with("p1.png"))
        .unwrap();
    let m = v.mask.as_ref().unwrap().to_f32();
    assert_eq!(m.len(), (W * H) as usize);
    for (i, &x) in m.iter().enumerate() {
        assert_eq!(x, if i < 2 * W as usize { 0.0 } else { 1.0 }, "{i}");
    }
    // missing for one photo: that photo is used whole, and the loader
    // says so
    std::fs::remove_file(dir.join("masks/p1.png")).unwrap();
    for invert in [false, true] {
        let ds = load(&dir, &opts(invert)).unwrap();
        let by_name = |n: &str| ds.train.iter().find(|v| v.name.ends_with(n)).unwrap();
        assert!(by_name("p0.png").mask.is_some());
        assert!(by_name("p1.png").mask.is_none());
        assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
        let n = &ds.notes[0];
        assert!(
            n.contains("no mask for 1 of the 2 photos (p1.png)") && n.contains("masks"),
            "{n}"
        );
    }
    // its mask there as a JPEG: the note says why it is not read
    std::fs::write(dir.join("masks/p1.jpg"), b"a jpeg").unwrap();
    let ds = load(&dir, &opts(false)).unwrap();
    assert!(
        ds.notes[0].contains("p1.jpg, but masks are read from PNG files only"),
        "{:?}",
        ds.notes
    );
    std::fs::remove_file(dir.join("masks/p1.jpg")).unwrap();
    // missing for every photo: the files are named otherwise, an error
    // naming the folder and a photo
    std::fs::rename(dir.join("masks/p0.png.png"), dir.join("masks/mask_p0.png")).unwrap();
    let e = load(&dir, &opts(false)).unwrap_err().to_string();
    assert!(
        e.contains("no mask for any of the 2 photos")
            && e.contains("p0.png")
            && e.contains("masks"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_missing_masks_note_names_a_few_and_counts_the_rest() {
    use splat::data::masks::missing_note;
    let d = Path::new("cap/masks");
    let names = |k: usize| (0..k).map(|i| format!("p{i}.jpg")).collect::<Vec<_>>();
    assert_eq!(missing_note(d, &[], 3), None);
    let n = missing_note(d, &names(2), 60).unwrap();
    assert!(n.contains("2 of the 60 photos (p0.jpg and p1.jpg)"), "{n}");
    let n = missing_note(d, &names(7), 60).unwrap();
    assert!(
        n.contains("7 of the 60 photos (p0.jpg, p1.jpg and 5 more)"),
        "{n}"
    );
}

#[test]
fn a_colmap_photos_alpha_is_a_mask_combined_with_the_users() {
    let dir = tmp("masks-alpha");
    write(&dir, true);
    let ds = load(&dir, &opts(false)).unwrap();
    let m = ds.train[0].mask.as_ref().unwrap();
    for (i, x) in m.iter().enumerate() {
        assert_eq!(x, if i % W as usize == 0 { 0.0 } else { 1.0 });
    }
    mask_png(&dir.join("masks/p0.png.png"), W, H);
    mask_png(&dir.join("masks/p1.png.png"), W, H);
    let ds = load(&dir, &opts(false)).unwrap();
    let m = ds.train[0].mask.as_ref().unwrap();
    for (i, x) in m.iter().enumerate() {
        let ignored = i % W as usize == 0 || i < W as usize;
        assert_eq!(x, if ignored { 0.0 } else { 1.0 });
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nerf_masks_live_in_each_splits_folder() {
    let dir = tmp("masks-nerf");
    write_dataset(
        &dir,
        &SynthOptions {
            train_views: 2,
            test_views: 1,
            size: 8,
            seed: 1,
        },
    )
    .unwrap();
    // no masks yet: asked to invert, the notes say nothing was
    let invert = LoadOptions {
        invert_masks: true,
        ..LoadOptions::default()
    };
    let notes = load(&dir, &invert).unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("no photo has a mask file")),
        "{notes:?}"
    );
    for split in ["train", "test"] {
        for i in 0..2 {
            if dir.join(format!("{split}/r_{i}.png")).is_file() {
                mask_png(&dir.join(format!("{split}/masks/r_{i}.png")), 8, 8);
            }
        }
    }
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    for v in ds.train.iter().chain(&ds.test) {
        let m = v.mask.as_ref().unwrap();
        assert!(
            m.to_f32()[..8].iter().all(|&x| x == 0.0) && m.to_f32()[8..].iter().all(|&x| x == 1.0)
        );
    }
    assert!(ds.notes.is_empty(), "{:?}", ds.notes);
    // where the photos and masks came from, each folder once
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
    let mut from: Vec<_> = ds.read_from.iter().map(|p| canon(p)).collect();
    from.sort();
    let mut want: Vec<_> = ["train", "test", "train/masks", "test/masks"]
        .map(|f| canon(&dir.join(f)))
        .to_vec();
    want.sort();
    assert_eq!(from, want);
    // a split's folder that leaves a photo out: that one whole, said once
    std::fs::remove_file(dir.join("train/masks/r_1.png")).unwrap();
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let whole: Vec<&str> = ds
        .train
        .iter()
        .filter(|v| v.mask.is_none())
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(whole, ["train/r_1.png"]);
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    assert!(
        ds.notes[0].contains("1 of the 2 photos (r_1.png): it is"),
        "{:?}",
        ds.notes
    );
    // splits whose images share a folder share its masks/: a mask for one
    // photo of one split is enough for the folder, and the note counts the
    // photos of every split
    std::fs::remove_dir_all(dir.join("test/masks")).unwrap();
    let shared = dir.join("test");
    for split in ["train", "test"] {
        let json = dir.join(format!("transforms_{split}.json"));
        let mut t: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        for f in t["frames"].as_array_mut().unwrap() {
            let p = f["file_path"].as_str().unwrap().to_string();
            let stem = Path::new(&p).file_name().unwrap().to_str().unwrap();
            let moved = format!("./test/{split}_{stem}");
            let from = dir.join(&p).with_extension("png");
            std::fs::copy(&from, dir.join(&moved).with_extension("png")).unwrap();
            f["file_path"] = moved.into();
        }
        std::fs::write(&json, serde_json::to_vec(&t).unwrap()).unwrap();
    }
    mask_png(&shared.join("masks/train_r_0.png"), 8, 8);
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let masked: Vec<&str> = ds
        .train
        .iter()
        .chain(&ds.test)
        .filter(|v| v.mask.is_some())
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(masked, ["test/train_r_0.png"]);
    assert_eq!(ds.notes.len(), 1, "{:?}", ds.notes);
    assert!(
        ds.notes[0].contains("no mask for 2 of the 3 photos"),
        "{:?}",
        ds.notes
    );
    std::fs::remove_dir_all(shared.join("masks")).unwrap();
    // the NeRF alpha is coverage, not a mask: without mask files, none
    std::fs::remove_dir_all(dir.join("train/masks")).unwrap();
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    assert!(ds.train.iter().all(|v| v.mask.is_none()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn colmap4_and_undistorter_layouts_load() {
    let dir = tmp("layout-colmap4");
    write(&dir, false);
    // COLMAP 4 writes rigs.bin and frames.bin beside the usual three
    std::fs::write(dir.join("sparse/0/rigs.bin"), [1u8, 2, 3]).unwrap();
    std::fs::write(dir.join("sparse/0/frames.bin"), [4u8, 5]).unwrap();
    assert_eq!(load(&dir, &opts(false)).unwrap().train.len(), 2);
    // image_undistorter: the model directly in sparse/
    for f in ["cameras.bin", "images.bin", "rigs.bin", "frames.bin"] {
        std::fs::rename(dir.join("sparse/0").join(f), dir.join("sparse").join(f)).unwrap();
    }
    std::fs::remove_dir(dir.join("sparse/0")).unwrap();
    assert_eq!(load(&dir, &opts(false)).unwrap().train.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn images_n_is_used_for_downscale_n_and_wide_photos_are_limited() {
    let dir = tmp("layout-images-n");
    write(&dir, false);
    // an images_2 folder of half-size copies, brighter so we can tell
    std::fs::create_dir_all(dir.join("images_2")).unwrap();
    for i in 0..2 {
        image::RgbaImage::from_pixel(W / 2, H / 2, image::Rgba([200, 200, 200, 255]))
            .save(dir.join(format!("images_2/p{i}.png")))
            .unwrap();
    }
    let ds = load(
        &dir,
        &LoadOptions {
            downscale: 2,
            ..opts(false)
        },
    )
    .unwrap();
    let v = &ds.train[0];
    assert_eq!((v.width, v.height), (W / 2, H / 2));
    assert!((v.image.get(0) - 200.0 / 255.0).abs() < 1e-6);
    assert!((v.fx - 10.0).abs() < 1e-9 && (v.cx - 4.0).abs() < 1e-9);
    // without images_3, downscale 3 box-filters the full photos
    let ds = load(
        &dir,
        &LoadOptions {
            downscale: 3,
            ..opts(false)
        },
    )
    .unwrap();
    assert!((ds.train[0].image.get(0) - 100.0 / 255.0).abs() < 1e-6);
    // a width limit: 16 wide → 8 wide, intrinsics halved
    let ds = load(
        &dir,
        &LoadOptions {
            max_width: Some(8),
            ..opts(false)
        },
    )
    .unwrap();
    let v = &ds.train[0];
    assert_eq!((v.width, v.height), (8, 6));
    assert!((v.fx - 10.0).abs() < 1e-9 && (v.cy - 3.0).abs() < 1e-9);
    assert!(v.image.iter().all(|x| (x - 100.0 / 255.0).abs() < 1e-5));
    std::fs::remove_dir_all(&dir).unwrap();
}
