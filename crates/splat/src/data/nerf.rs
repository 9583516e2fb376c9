//! NeRF-synthetic datasets: `transforms_{train,val,test}.json` with
//! `camera_angle_x` (horizontal field of view, radians) and `frames`, each a
//! `file_path` (relative, with or without extension) and a camera-to-world
//! `transform_matrix` in OpenGL axes. Images are RGBA PNGs composited on the
//! chosen background.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    check_rotation, decode_batch, decode_images_lazily, masks, opengl_c2w_to_opencv_w2c, DataError,
    Dataset, ImageJob, LoadOptions, Mat4, View,
};

/// One frame of a transforms file, before its image is decoded.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The image file, resolved against the dataset folder.
    pub image_path: PathBuf,
    /// Camera-to-world, OpenGL axes.
    pub c2w: Mat4,
}

/// A parsed transforms file.
#[derive(Clone, Debug)]
pub struct Transforms {
    /// Horizontal field of view in radians.
    pub camera_angle_x: f64,
    /// Vertical field of view, if the file gives one.
    pub camera_angle_y: Option<f64>,
    /// The frames in file order.
    pub frames: Vec<Frame>,
}

/// Parses a transforms JSON document (`text`), resolving image paths
/// against `dir`. `path` is only used in error messages.
pub fn parse_transforms(text: &str, path: &Path, dir: &Path) -> Result<Transforms, DataError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| super::nerfstudio::json_error(path, &e))?;
    let obj = v
        .as_object()
        .ok_or_else(|| DataError::invalid(path, "top level", "must be a JSON object"))?;
    let angle = |key: &str| -> Result<Option<f64>, DataError> {
        match obj.get(key) {
            None => Ok(None),
            Some(x) => {
                let a = x
                    .as_f64()
                    .ok_or_else(|| DataError::invalid(path, key, "must be a number"))?;
                if !(a.is_finite() && a > 0.0 && a < std::f64::consts::PI) {
                    return Err(DataError::invalid(
                        path,
                        key,
                        format!("{a} is not a field of view in (0, π) radians"),
                    ));
                }
                Ok(Some(a))
            }
        }
    };
    let camera_angle_x = angle("camera_angle_x")?
        .ok_or_else(|| DataError::invalid(path, "camera_angle_x", "missing"))?;
    let camera_angle_y = angle("camera_angle_y")?;
    let frames_v = obj
        .get("frames")
        .ok_or_else(|| DataError::invalid(path, "frames", "missing"))?
        .as_array()
        .ok_or_else(|| DataError::invalid(path, "frames", "must be an array"))?;
    let mut frames = Vec::with_capacity(frames_v.len());
    for (i, f) in frames_v.iter().enumerate() {
        let field = |name: &str| format!("frames[{i}].{name}");
        let fp = f
            .get("file_path")
            .ok_or_else(|| DataError::invalid(path, field("file_path"), "missing"))?
            .as_str()
            .ok_or_else(|| DataError::invalid(path, field("file_path"), "must be a string"))?;
        let rows = f
            .get("transform_matrix")
            .ok_or_else(|| DataError::invalid(path, field("transform_matrix"), "missing"))?
            .as_array()
            .filter(|r| r.len() == 4)
            .ok_or_else(|| {
                DataError::invalid(path, field("transform_matrix"), "must be a 4×4 array")
            })?;
        let mut c2w = [[0.0; 4]; 4];
        for (r, row) in rows.iter().enumerate() {
            let row = row.as_array().filter(|x| x.len() == 4).ok_or_else(|| {
                DataError::invalid(path, field("transform_matrix"), "must be a 4×4 array")
            })?;
            for (c, x) in row.iter().enumerate() {
                c2w[r][c] = x.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                    DataError::invalid(
                        path,
                        format!("frames[{i}].transform_matrix[{r}][{c}]"),
                        "must be a finite number",
                    )
                })?;
            }
        }
        check_rotation(&c2w).map_err(|m| DataError::invalid(path, field("transform_matrix"), m))?;
        frames.push(Frame {
            image_path: resolve_image(dir, fp),
            c2w,
        });
    }
    Ok(Transforms {
        camera_angle_x,
        camera_angle_y,
        frames,
    })
}

/// Resolves a `file_path` such as `./train/r_0`: as given if that file
/// exists, else with `.png` appended (the usual NeRF-synthetic omission).
/// A leading `./` is dropped, so that paths print as `DIR/train/r_0.png`.
fn resolve_image(dir: &Path, fp: &str) -> PathBuf {
    let rel: PathBuf = Path::new(fp)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let p = dir.join(&rel);
    if p.is_file() {
        return p;
    }
    let mut png = p.clone().into_os_string();
    png.push(".png");
    let with_png = PathBuf::from(png);
    if with_png.is_file() {
        with_png
    } else {
        p
    }
}

/// Reads one split (`"train"`, `"val"`, `"test"`); `Ok(None)` if its file
/// does not exist. What its images' `masks/` folders held is added to
/// `tallies` (see [`split_masks`]).
fn load_split(
    dir: &Path,
    split: &str,
    opts: &LoadOptions,
    tallies: &mut Tallies,
) -> Result<Option<Vec<View>>, DataError> {
    let path = dir.join(format!("transforms_{split}.json"));
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    let t = parse_transforms(&text, &path, dir)?;
    let missing: Vec<(PathBuf, String)> = t
        .frames
        .iter()
        .filter(|f| !f.image_path.is_file())
        .map(|f| {
            let name = f.image_path.strip_prefix(dir).unwrap_or(&f.image_path);
            (f.image_path.clone(), name.display().to_string())
        })
        .collect();
    if !missing.is_empty() {
        return Err(DataError::missing_photos(&missing));
    }
    let jobs: Vec<ImageJob> = t
        .frames
        .iter()
        .map(|f| ImageJob {
            path: f.image_path.clone(),
            expect: None,
        })
        .collect();
    tallies.files.extend(jobs.iter().map(|j| j.path.clone()));
    let mask_paths = split_masks(&t.frames, tallies)?;
    // a few photos at a time, each reduced (downscaled, its mask loaded,
    // narrowed to `max_width`) before the next few are decoded, so that a
    // split of large photos is never held at full size all at once
    let largest = jobs
        .iter()
        .filter_map(|j| super::photo_size(&j.path))
        .map(|(w, h)| w as u64 * h as u64)
        .max()
        .unwrap_or(1);
    let few = decode_batch(largest, crate::machine::memory());
    // every image of a split must share one size (one camera_angle_x)
    let mut first: Option<(u32, u32)> = None;
    let mut views = Vec::with_capacity(t.frames.len());
    for ((f, photo), mask_path) in t
        .frames
        .iter()
        .zip(decode_images_lazily(
            &jobs,
            opts.background,
            opts.downscale,
            few,
        ))
        .zip(mask_paths)
    {
        let (w, h, rgb, alpha) = photo?;
        let (w0, h0) = *first.get_or_insert((w, h));
        if (w, h) != (w0, h0) {
            return Err(DataError::invalid(
                &f.image_path,
                "image size",
                format!("is {w}×{h} but the split's first image is {w0}×{h0}"),
            ));
        }
        let mask = match mask_path {
            Some(path) => {
                let image = &f.image_path;
                let (fw, fh) =
                    image::image_dimensions(image).map_err(|e| match std::fs::read(image) {
                        Ok(bytes) => DataError::invalid(
                            image,
                            "image",
                            crate::image_io::unreadable(&bytes, &e),
                        ),
                        Err(io) => DataError::io(image, io),
                    })?;
                let m = masks::load(&path, image, fw, fh, opts.invert_masks)?;
                tallies.files.push(path);
                Some(masks::downscale(fw, fh, &m, opts.downscale))
            }
            None => None,
        };
        let mut view = frame_view(dir, &t, f, (w, h), opts.background);
        let before =
            super::hold_photo(&mut view, rgb, alpha, masks::simplify(mask), opts.max_width);
        tallies.narrowed.add(&view, before);
        views.push(view);
    }
    Ok(Some(views))
}

/// The view of frame `f` of `t` whose photo is `w × h` pixels (as loaded,
/// after the downscaling), without pixels.
fn frame_view(
    dir: &Path,
    t: &Transforms,
    f: &Frame,
    (w, h): (u32, u32),
    background: [f32; 3],
) -> View {
    let fx = 0.5 * w as f64 / (0.5 * t.camera_angle_x).tan();
    let fy = match t.camera_angle_y {
        Some(ay) => 0.5 * h as f64 / (0.5 * ay).tan(),
        None => fx,
    };
    let name = f
        .image_path
        .strip_prefix(dir)
        .unwrap_or(&f.image_path)
        .display()
        .to_string();
    let m = opengl_c2w_to_opencv_w2c(&f.c2w);
    let mut view = View::camera_only(name, (w, h), [fx, fy, w as f64 / 2.0, h as f64 / 2.0], m);
    view.background = background;
    view
}

/// The cameras of a NeRF-synthetic folder as [`load`] gives them, without
/// decoding a photo: each photo's size is read from its file's header; a
/// photo that is missing or unreadable takes its split's size (every photo
/// of a split has one), and a name without an extension gets `.png`
/// appended, as [`load`] finds the photo. No masks.
pub fn cameras(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut files = Vec::new();
    let mut split = |name: &str| -> Result<Option<Vec<View>>, DataError> {
        let path = dir.join(format!("transforms_{name}.json"));
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        let t = parse_transforms(&text, &path, dir)?;
        let sizes: Vec<Option<(u32, u32)>> = t
            .frames
            .iter()
            .map(|f| super::photo_size(&f.image_path))
            .collect();
        let Some(size) = sizes.iter().flatten().next().copied() else {
            return match t.frames.first() {
                Some(f) if f.image_path.is_file() => Err(DataError::invalid(
                    &f.image_path,
                    "image",
                    "its size cannot be read (nor any other photo's of the split)",
                )),
                Some(f) => Err(DataError::missing_photo(&f.image_path)),
                None => Ok(Some(Vec::new())),
            };
        };
        let mut views = Vec::with_capacity(t.frames.len());
        for (f, s) in t.frames.iter().zip(&sizes) {
            let (fw, fh) = s.unwrap_or(size);
            if s.is_some() {
                files.push(f.image_path.clone());
            }
            let wh = super::loaded_size(fw, fh, opts.downscale, None);
            let mut view = frame_view(dir, &t, f, wh, opts.background);
            // a missing photo named without an extension is named as the
            // PNG that [`resolve_image`] would have found
            if !f.image_path.is_file() && f.image_path.extension().is_none() {
                view.name.push_str(".png");
            }
            super::narrow_camera(&mut view, opts.max_width);
            views.push(view);
        }
        Ok(Some(views))
    };
    let train = split("train")?.unwrap_or_default();
    let test = match split("test")? {
        Some(t) => t,
        None => split("val")?.unwrap_or_default(),
    };
    Ok(Dataset {
        train,
        test,
        points: None,
        format: "nerf-synthetic",
        notes: Vec::new(),
        read_from: super::folders_of(files.iter().map(PathBuf::as_path)),
    })
}

/// What the splits' `masks/` folders held: a tally per folder (by its
/// resolved path), and the photos already counted.
#[derive(Default)]
struct Tallies {
    folders: Vec<(PathBuf, masks::Tally)>,
    counted: std::collections::HashSet<PathBuf>,
    /// Every photo and mask file read.
    files: Vec<PathBuf>,
    /// The photos narrowed to the width limit.
    narrowed: super::Narrowed,
}

/// The user's mask files of a split's images, each from `masks/` in its
/// image's folder (see [`masks`]; [`load_split`] reads each beside its
/// photo); `None` for an image whose folder has no `masks/`, or which
/// that folder leaves out.
/// What each folder held is added to `tallies` (one per folder, across the
/// splits, which may share one), for [`masks::Tally::verdict`] once every
/// split is read. An error when a `masks` there is no folder
/// ([`masks::check_folder`]).
fn split_masks(frames: &[Frame], tallies: &mut Tallies) -> Result<Vec<Option<PathBuf>>, DataError> {
    let Tallies {
        folders: tallies,
        counted,
        ..
    } = tallies;
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        let image = &f.image_path;
        let dir = image.parent().unwrap_or(Path::new(".")).join("masks");
        masks::check_folder(&dir)?;
        if !dir.is_dir() {
            out.push(None);
            continue;
        }
        let name = image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let found = masks::find(&dir, &name);
        // one folder however its path is written, each photo counted once
        // (a split may reuse another's photos)
        let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        let k = match tallies.iter().position(|(d, _)| *d == key) {
            Some(k) => k,
            None => {
                tallies.push((key, masks::Tally::default()));
                tallies.len() - 1
            }
        };
        let photo = std::fs::canonicalize(image).unwrap_or_else(|_| image.clone());
        if counted.insert(photo) {
            tallies[k].1.add_found(&name, image, &dir, found.as_deref());
        }
        out.push(found);
    }
    Ok(out)
}

/// Loads a NeRF-synthetic folder: train from `transforms_train.json`, test
/// from `transforms_test.json` (or `transforms_val.json` when there is no
/// test split).
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut tallies = Tallies::default();
    let train = load_split(dir, "train", opts, &mut tallies)?.unwrap_or_default();
    let test = match load_split(dir, "test", opts, &mut tallies)? {
        Some(t) => t,
        None => load_split(dir, "val", opts, &mut tallies)?.unwrap_or_default(),
    };
    let mut notes = Vec::new();
    for (masks_dir, tally) in &tallies.folders {
        notes.extend(tally.verdict(masks_dir)?);
    }
    notes.extend(tallies.narrowed.note(train.len() + test.len()));
    if opts.invert_masks && tallies.folders.is_empty() {
        notes.push(masks::nothing_inverted("SPLIT/masks/NAME.png"));
    }
    Ok(Dataset {
        train,
        test,
        points: None,
        format: "nerf-synthetic",
        notes,
        read_from: super::folders_of(tallies.files.iter().map(PathBuf::as_path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Transforms, DataError> {
        parse_transforms(text, Path::new("t.json"), Path::new("."))
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("{").unwrap_err().to_string();
        assert!(e.contains("t.json") && e.contains("line 1"), "{e}");
        let e = parse("{\"frames\": []}").unwrap_err().to_string();
        assert!(e.contains("camera_angle_x: missing"), "{e}");
        let e = parse("{\"camera_angle_x\": \"wide\", \"frames\": []}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("camera_angle_x: must be a number"), "{e}");
        let e = parse("{\"camera_angle_x\": 0.7, \"frames\": [{\"file_path\": \"a\"}]}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("frames[0].transform_matrix: missing"), "{e}");
        let e = parse(
            "{\"camera_angle_x\": 0.7, \"frames\": [{\"file_path\": \"a\", \
             \"transform_matrix\": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,\"x\",1]]}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("frames[0].transform_matrix[3][2]"), "{e}");
        let e = parse(
            "{\"camera_angle_x\": 0.7, \"frames\": [{\"file_path\": \"a\", \
             \"transform_matrix\": [[2,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("orthonormal"), "{e}");
    }

    #[test]
    fn parses_a_valid_file() {
        let t = parse(
            "{\"camera_angle_x\": 0.69, \"frames\": [{\"file_path\": \"./train/r_0\", \
             \"transform_matrix\": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}]}",
        )
        .unwrap();
        assert_eq!(t.frames.len(), 1);
        assert_eq!(t.frames[0].c2w[2][3], 4.0);
        assert!(t.frames[0].image_path.ends_with("train/r_0"));
        // the `./` of the file path dropped (the folder is `.` here)
        assert_eq!(t.frames[0].image_path.to_str(), Some("./train/r_0"));
    }
}
