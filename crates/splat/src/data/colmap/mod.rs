//! COLMAP sparse reconstructions: `sparse/0/{cameras,images,points3D}` in
//! the binary (`.bin`) or text (`.txt`) format, as COLMAP 3 and 4 write them
//! (COLMAP 4's `rigs.bin` and `frames.bin` are not needed: `images.bin`
//! still holds each image's pose) and as `image_undistorter` leaves them
//! (`sparse/` without `0/`). Every camera model COLMAP defines is read
//! ([`crate::cameras`]); photos of a distorting model are undistorted into a
//! pinhole view at load, their pixels without a source masked, and a 360°
//! panorama (EQUIRECTANGULAR) into the six faces of a cube, each a view. Poses are
//! world-to-camera in OpenCV axes already: quaternion (w, x, y, z) and
//! translation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{
    decode_images_lazily, masks, DataError, Dataset, ImageJob, LoadOptions, Mat4, Point, View,
};
use crate::cameras::undistort::{Part, Remap};
use crate::cameras::Intrinsics;

mod folders;
mod read;

pub use folders::{dataset_of_model, model_folder, models, not_a_dataset_hint, sparse_dir};
pub use read::{
    cameras_bin, cameras_txt, images_bin, images_txt, points_bin, points_txt, quat_to_rotation,
    rotation_to_quat,
};

/// A camera of `cameras.{bin,txt}`: any COLMAP model.
pub type Camera = Intrinsics;

/// An image of `images.{bin,txt}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// COLMAP's image id.
    pub id: i32,
    /// Rotation quaternion (w, x, y, z), world to camera.
    pub qvec: [f64; 4],
    /// Translation, world to camera.
    pub tvec: [f64; 3],
    /// The camera it was taken with.
    pub camera_id: i32,
    /// File name inside the images folder.
    pub name: String,
}

/// The three files of a reconstruction.
#[derive(Clone, Debug)]
pub struct Reconstruction {
    /// Cameras by id.
    pub cameras: HashMap<i32, Camera>,
    /// Registered images.
    pub images: Vec<Image>,
    /// Sparse points.
    pub points: Vec<Point>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

fn text(path: &Path) -> Result<String, DataError> {
    String::from_utf8(read_file(path)?).map_err(|_| DataError::invalid(path, "text", "not UTF-8"))
}

/// Reads the reconstruction in `sparse` (a `sparse/0`-style folder),
/// preferring `.bin` files and falling back to `.txt` file by file.
pub fn read_reconstruction(sparse: &Path) -> Result<Reconstruction, DataError> {
    read_model(sparse, true)
}

/// Whether the models in `a` and `b` (`sparse/0`-style folders) pose the
/// same photos the same way: the same image names, each with the same
/// rotation and translation to 1e-6 (a model written again as text, or
/// copied, is the same reconstruction; another run of COLMAP is not).
/// False when either cannot be read.
pub fn same_poses(a: &Path, b: &Path) -> bool {
    let (Ok(a), Ok(b)) = (read_model(a, false), read_model(b, false)) else {
        return false;
    };
    let by_name: HashMap<&str, &Image> = b.images.iter().map(|im| (im.name.as_str(), im)).collect();
    // (to a millionth: a copy written as text by another tool may keep
    // fewer digits than COLMAP's)
    let close = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .all(|(p, q)| (p - q).abs() <= 1e-6 * (1.0 + p.abs()))
    };
    a.images.len() == b.images.len()
        && a.images.iter().all(|im| {
            by_name.get(im.name.as_str()).is_some_and(|o| {
                // q and −q are the same rotation
                let dot: f64 = im.qvec.iter().zip(&o.qvec).map(|(a, b)| a * b).sum();
                let flip = if dot < 0.0 { -1.0 } else { 1.0 };
                close(&im.qvec, &o.qvec.map(|v| v * flip)) && close(&im.tvec, &o.tvec)
            })
        })
}

/// [`read_reconstruction`], without the points when `points` is false
/// (what the cameras alone need: a large model's points take seconds).
fn read_model(sparse: &Path, with_points: bool) -> Result<Reconstruction, DataError> {
    let pick = |stem: &str| -> Result<(PathBuf, bool), DataError> {
        let bin = sparse.join(format!("{stem}.bin"));
        let txt = sparse.join(format!("{stem}.txt"));
        if bin.is_file() {
            Ok((bin, true))
        } else if txt.is_file() {
            Ok((txt, false))
        } else {
            Err(DataError::io(&bin, "missing (and no .txt either)"))
        }
    };
    let (cp, cb) = pick("cameras")?;
    let cameras = if cb {
        cameras_bin(&cp, &read_file(&cp)?)?
    } else {
        cameras_txt(&cp, &text(&cp)?)?
    };
    let (ip, ib) = pick("images")?;
    let images = if ib {
        images_bin(&ip, &read_file(&ip)?)?
    } else {
        images_txt(&ip, &text(&ip)?)?
    };
    let points = match pick("points3D") {
        _ if !with_points => Vec::new(),
        Ok((pp, true)) => points_bin(&pp, &read_file(&pp)?)?,
        Ok((pp, false)) => points_txt(&pp, &text(&pp)?)?,
        Err(_) => Vec::new(),
    };
    for im in &images {
        if !cameras.contains_key(&im.camera_id) {
            return Err(DataError::invalid(
                &ip,
                format!("image {} ({})", im.id, im.name),
                format!(
                    "refers to camera {}, which the cameras file does not define",
                    im.camera_id
                ),
            ));
        }
    }
    Ok(Reconstruction {
        cameras,
        images,
        points,
    })
}

/// Where a COLMAP dataset's parts are, and its model read.
struct Layout {
    /// The dataset's folder (the one holding the photos).
    dir: PathBuf,
    rec: Reconstruction,
    /// The file the poses come from, for errors about one of them.
    images_file: PathBuf,
    /// The registered images, sorted by name.
    images: Vec<Image>,
    /// `images_N` when it holds the photos read for `--downscale N`.
    pre: Option<String>,
    /// The folder the photos are read from, and the full-size one.
    img_dir: PathBuf,
    full_dir: PathBuf,
    /// `images_N` copies named otherwise than their photos, by photo name
    /// ([`copies_named_otherwise`]), and the note that says how they were
    /// matched.
    renamed: (HashMap<String, PathBuf>, Option<String>),
    /// Mask files named by the model's file itself, by photo name (they
    /// take the place of `masks/`'s).
    mask_files: HashMap<String, PathBuf>,
    /// The split the model's file names, else every `holdout_every`-th
    /// photo is held out.
    split: Option<Split>,
    /// The image circle of a camera, by camera id: pixels beyond it are
    /// left out of the loss ([`Foreign::circles`]).
    circles: HashMap<i32, f64>,
}

/// A split named by a dataset's file (nerfstudio's `test_filenames`), by
/// photo name.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// The held-out photos.
    pub test: std::collections::HashSet<String>,
    /// The training photos, when named (else every photo not held out).
    pub train: Option<std::collections::HashSet<String>>,
}

/// A model read from another format than COLMAP's (nerfstudio's
/// `transforms.json`), with what that format says beyond a model.
#[derive(Clone, Debug)]
pub struct Foreign {
    /// The model it amounts to.
    pub rec: Reconstruction,
    /// The file it was read from (named in errors about a pose).
    pub file: PathBuf,
    /// The folder (in the dataset's) the photos are named relative to.
    pub images_dir: String,
    /// Whether `images_dir`'s `_N` copies are read for `--downscale N`.
    pub copies: bool,
    /// Mask files the file names, by photo name.
    pub mask_files: HashMap<String, PathBuf>,
    /// The split it names.
    pub split: Option<Split>,
    /// The radius of a camera's image circle, by camera id, in the
    /// camera's pixels (nerfstudio's `fisheye_crop_radius`): a pixel of its
    /// photos is kept when its centre lies within the radius of the middle
    /// pixel's (row `h / 2`, column `w / 2`, rounded down, as nerfstudio
    /// draws the circle); the rest (a fisheye's vignette) takes no part in
    /// the loss, as a mask's ignored pixels do, together with any mask
    /// file and alpha (a pixel is kept where all of them keep it; nerfstudio
    /// itself drops the circle when a frame has a mask). A scaled copy of a
    /// photo (`images_N`) has its circle scaled with it, measured from the
    /// copy's own middle pixel (so for a radius within a pixel or so of an
    /// odd-sized camera's corners, a copy's corners may be cut where the
    /// camera's are not, or the other way).
    pub circles: HashMap<i32, f64>,
    /// The dataset's kind, as [`Dataset::format`] gives it.
    pub format: &'static str,
}

impl Layout {
    /// Finds the model and the photo folders of `dir` (a dataset, or one
    /// model folder of one), and reads the model (its points when
    /// `with_points`).
    fn of(dir: &Path, opts: &LoadOptions, with_points: bool) -> Result<Layout, DataError> {
        // a model named by its own folder ([`dataset_of_model`]) poses the
        // photos of the dataset around it
        let (dir, sparse) = match dataset_of_model(dir) {
            Some(root) => (root, dir.to_path_buf()),
            None => (dir.to_path_buf(), model_folder(dir)),
        };
        let rec = read_model(&sparse, with_points)?;
        let images_file = ["images.bin", "images.txt"]
            .map(|f| sparse.join(f))
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| sparse.to_path_buf());
        let copies = opts.images_dir == "images";
        Ok(Layout::with_model(
            dir,
            rec,
            images_file,
            &opts.images_dir,
            copies,
            opts,
        ))
    }

    /// The layout of the dataset in `dir` posed by `rec`, read from
    /// `images_file` (named in errors about a pose), whose photos are
    /// named relative to `dir/images_dir`, with its `_N` copies read for
    /// `--downscale N` when `copies`.
    fn with_model(
        dir: PathBuf,
        rec: Reconstruction,
        images_file: PathBuf,
        images_dir: &str,
        copies: bool,
        opts: &LoadOptions,
    ) -> Layout {
        let mut images = rec.images.clone();
        // a model written on Windows by another tool may name its photos
        // with `\` between folders, which COLMAP writes as `/`
        for im in &mut images {
            let slashed = im.name.replace('\\', "/");
            // (on Windows `\` separates folders anyway: the name is made
            // one that `/`-splitting rules, rigs' and render names', read)
            let found = dir.join(images_dir).join(&im.name).exists();
            if slashed != im.name && (cfg!(windows) || !found) {
                im.name = slashed;
            }
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        // the Mip-NeRF 360 layout: `images_N` holds copies downscaled N
        // times; used for downscale N when present (then not downscaled
        // again), with `masks_N` for their masks
        let n = opts.downscale;
        let pre = (n > 1
            && copies
            && !images_dir.is_empty()
            && dir.join(format!("{images_dir}_{n}")).is_dir())
        .then(|| format!("{images_dir}_{n}"));
        let img_dir = dir.join(pre.as_deref().unwrap_or(images_dir));
        let full_dir = dir.join(images_dir);
        let renamed = match pre {
            Some(_) => copies_named_otherwise(&images, &full_dir, &img_dir),
            None => Default::default(),
        };
        Layout {
            dir,
            rec,
            images_file,
            images,
            pre,
            img_dir,
            full_dir,
            renamed,
            mask_files: HashMap::new(),
            split: None,
            circles: HashMap::new(),
        }
    }

    /// [`Layout::with_model`] of a model read from another format's file.
    fn of_foreign(dir: &Path, m: Foreign, opts: &LoadOptions) -> Layout {
        let mut layout = Layout::with_model(
            dir.to_path_buf(),
            m.rec,
            m.file,
            &m.images_dir,
            m.copies,
            opts,
        );
        layout.mask_files = m.mask_files;
        layout.split = m.split;
        layout.circles = m.circles;
        // the photos the file's split leaves out of both halves are not
        // read at all (as nerfstudio leaves them)
        let images = std::mem::take(&mut layout.images);
        layout.images = images
            .into_iter()
            .enumerate()
            .filter(|(k, im)| layout.halves(*k, &im.name, opts) != (false, false))
            .map(|(_, im)| im)
            .collect();
        layout
    }

    /// Which halves the `k`-th photo (in name order), `name`, is in, as
    /// (trained on, held out): as the model's file names the split (a
    /// photo it names in both is in both, as nerfstudio uses it; one it
    /// names in neither is in neither), else every `opts.holdout_every`-th
    /// held out and the rest trained on. With `holdout_every` 0 (every
    /// camera wanted) each is trained on.
    fn halves(&self, k: usize, name: &str, opts: &LoadOptions) -> (bool, bool) {
        if opts.holdout_every == 0 {
            return (true, false);
        }
        match &self.split {
            Some(s) => {
                let test = s.test.contains(name);
                let train = match &s.train {
                    Some(t) => t.contains(name),
                    None => !test,
                };
                (train, test)
            }
            None => {
                let test = k % opts.holdout_every == 0;
                (!test, test)
            }
        }
    }

    /// Where the photo `name` is read from in the folder of the photos
    /// read (`images_N`'s copy, matched as [`copies_named_otherwise`]
    /// does when named otherwise).
    fn photo_path(&self, name: &str) -> PathBuf {
        self.renamed
            .0
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.img_dir.join(name))
    }

    /// The pose of `im`, world to camera.
    fn pose(&self, im: &Image) -> Result<Mat4, DataError> {
        let r = quat_to_rotation(im.qvec).ok_or_else(|| {
            DataError::invalid(
                &self.images_file,
                format!("image {} ({})", im.id, im.name),
                "the quaternion is zero or too large to normalise",
            )
        })?;
        let mut m: Mat4 = [[0.0; 4]; 4];
        for i in 0..3 {
            m[i][..3].copy_from_slice(&r[i]);
            m[i][3] = im.tvec[i];
        }
        m[3][3] = 1.0;
        Ok(m)
    }
}

/// The copies in `images_N` (`copies`) of the photos `images` names in
/// `full` that are not named as the photos are, by photo name, and a note
/// saying how they were matched: by the photo's name with another image
/// extension (`IMG_0001.png` for `IMG_0001.JPG`), the only such file; or,
/// when no copy matches a photo by name at all and both folders hold as
/// many image files, in the sorted order of the files' names, as gsplat
/// pairs an LLFF capture's `images_4/image000.png` with its
/// `images/IMG_4026.JPG`. A copy named as its photo is left out (the plain
/// join finds it).
fn copies_named_otherwise(
    images: &[Image],
    full: &Path,
    copies: &Path,
) -> (HashMap<String, PathBuf>, Option<String>) {
    let (mut by_stem, mut exact) = (HashMap::new(), 0);
    // (the folder is listed only when a copy is not named as its photo)
    if images.iter().all(|im| copies.join(&im.name).is_file()) {
        return Default::default();
    }
    let listed = image_files(copies);
    let stem_of = |n: &str| n.rsplit_once('.').map_or(n, |(s, _)| s).to_string();
    // each stem's files in the copies' folder, found once
    let mut stems: HashMap<String, Vec<&String>> = HashMap::new();
    for f in &listed {
        stems.entry(stem_of(f)).or_default().push(f);
    }
    for im in images {
        if copies.join(&im.name).is_file() {
            exact += 1;
            continue;
        }
        if let Some([f]) = stems.get(&stem_of(&im.name)).map(Vec::as_slice) {
            by_stem.insert(im.name.clone(), copies.join(f));
        }
    }
    let first = |m: &HashMap<String, PathBuf>| {
        let (name, path) = m.iter().min_by(|a, b| a.0.cmp(b.0))?;
        Some(format!(
            "{} for {name}",
            path.strip_prefix(copies).unwrap_or(path).display()
        ))
    };
    if !by_stem.is_empty() {
        let note = format!(
            "{}: {} of its copies are named as their photos with another extension, and \
             matched to them so ({})",
            copies.display(),
            by_stem.len(),
            first(&by_stem).unwrap_or_default()
        );
        return (by_stem, Some(note));
    }
    let originals = image_files(full);
    if exact > 0 || listed.is_empty() || listed.len() != originals.len() {
        return Default::default();
    }
    let paired: HashMap<String, PathBuf> = originals
        .iter()
        .zip(&listed)
        .map(|(o, c)| (o.clone(), copies.join(c)))
        .collect();
    let wanted: HashMap<String, PathBuf> = images
        .iter()
        .filter_map(|im| Some((im.name.clone(), paired.get(&im.name)?.clone())))
        .collect();
    if wanted.is_empty() {
        return Default::default();
    }
    let note = format!(
        "{}: its {} files are named otherwise than the {} in {} ({}), so they are paired with \
         them in the sorted order of their names, as gsplat pairs them",
        copies.display(),
        listed.len(),
        originals.len(),
        full.display(),
        first(&wanted).unwrap_or_default()
    );
    (wanted, Some(note))
}

/// The image files (by extension: PNG, JPEG, WebP, any case) in `dir` and
/// its subfolders, as paths relative to it with `/` between folders,
/// sorted.
fn image_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let rel = format!("{prefix}{name}");
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && depth < 4 {
                walk(&path, &format!("{rel}/"), out, depth + 1);
            } else if name.rsplit_once('.').is_some_and(|(_, ext)| {
                ["png", "jpg", "jpeg", "webp"].contains(&ext.to_ascii_lowercase().as_str())
            }) {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out, 0);
    out.sort();
    out
}

/// The view of image `im` (without pixels) whose photo, undistorted, is
/// the pinhole `pinhole` (size and `[fx, fy, cx, cy]`: for a distorting
/// model the one its [`Remap`] maps to, else the camera's own, scaled to
/// the photo) downscaled `downscale` times as [`super::downscale_box`]
/// does: the size and intrinsics after the downscaling.
fn view_of(
    layout: &Layout,
    im: &Image,
    pinhole: (u32, u32, [f64; 4]),
    downscale: u32,
    background: [f32; 3],
) -> Result<View, DataError> {
    let (pw, ph, [fx, fy, cx, cy]) = pinhole;
    let (w2, h2) = if downscale <= 1 {
        (pw, ph)
    } else {
        ((pw / downscale).max(1), (ph / downscale).max(1))
    };
    let s = [w2 as f64 / pw as f64, h2 as f64 / ph as f64];
    let mut v = View::camera_only(
        im.name.clone(),
        (w2, h2),
        [fx * s[0], fy * s[1], cx * s[0], cy * s[1]],
        layout.pose(im)?,
    );
    v.background = background;
    Ok(v)
}

/// The camera of `im` scaled to its photo's `w × h`.
fn camera_at(layout: &Layout, im: &Image, (w, h): (u32, u32)) -> Intrinsics {
    let cam = &layout.rec.cameras[&im.camera_id];
    let sx = w as f64 / cam.width as f64;
    let sy = h as f64 / cam.height as f64;
    let mut cam = cam.scaled(sx, sy);
    (cam.width, cam.height) = (w as u64, h as u64);
    cam
}

/// `view` made the view of `part` of its photo: for a panorama's face,
/// named after it ([`crate::cameras::undistort::face_name`]) and turned
/// (the face's rotation after the photo's world-to-camera).
fn part_of(mut view: View, part: &Part) -> View {
    let Some(face) = part.face else {
        return view;
    };
    view.name = crate::cameras::undistort::face_name(&view.name, face);
    let m = view.world_to_camera;
    let r = &part.rotation;
    for (i, row) in view.world_to_camera.iter_mut().take(3).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| r[i][k] * m[k][j]).sum();
        }
    }
    view
}

/// Puts a view in the halves it belongs to ([`Layout::halves`]).
fn push_to_halves(
    (trained, held): (bool, bool),
    view: View,
    train: &mut Vec<View>,
    test: &mut Vec<View>,
) {
    match (trained, held) {
        (true, true) => {
            test.push(view.clone());
            train.push(view);
        }
        (true, false) => train.push(view),
        (false, true) => test.push(view),
        (false, false) => {}
    }
}

/// The cameras of a COLMAP dataset as [`load`] gives them (the same
/// views, sizes, intrinsics and split), without decoding a photo: each
/// photo's size is read from its file's header, or is its camera's (÷ N
/// in `images_N`) when the file is missing or unreadable; no masks, and
/// the model's points are not read. What `render --path` and the viewer
/// need of a capture.
pub fn cameras(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    cameras_of(Layout::of(dir, opts, false)?, opts, "colmap")
}

/// [`cameras`] of the dataset in `dir` whose model was read from a file
/// of another format ([`Foreign`]): the views, split and notes as
/// [`cameras`] gives them, the dataset's format as `m` says.
pub(crate) fn cameras_of_model(
    dir: &Path,
    m: Foreign,
    opts: &LoadOptions,
) -> Result<Dataset, DataError> {
    let format = m.format;
    cameras_of(Layout::of_foreign(dir, m, opts), opts, format)
}

/// [`load`] of the dataset in `dir` whose model was read from a file of
/// another format ([`Foreign`]).
pub(crate) fn load_model(dir: &Path, m: Foreign, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let format = m.format;
    load_layout(Layout::of_foreign(dir, m, opts), opts, format)
}

fn cameras_of(
    layout: Layout,
    opts: &LoadOptions,
    format: &'static str,
) -> Result<Dataset, DataError> {
    let n = opts.downscale;
    let mut parts: HashMap<(i32, u32, u32), Vec<Part>> = HashMap::new();
    let (mut train, mut test, mut files) = (Vec::new(), Vec::new(), Vec::new());
    let mask_dirs: Vec<PathBuf> = std::iter::once("masks".to_string())
        .chain(layout.pre.as_ref().map(|_| format!("masks_{n}")))
        .map(|m| layout.dir.join(m))
        .filter(|d| d.is_dir())
        .collect();
    for (k, im) in layout.images.iter().enumerate() {
        let cam = &layout.rec.cameras[&im.camera_id];
        // an `images_N` copy when there is one, else the full-size photo;
        // with neither, the copy `images_N` should have held
        let copy = layout.pre.as_ref().map(|_| layout.photo_path(&im.name));
        let full = layout.full_dir.join(&im.name);
        let scaled = copy
            .as_ref()
            .is_some_and(|c| c.is_file() || !full.is_file());
        let path = if scaled {
            copy.expect("images_N")
        } else {
            full
        };
        let f = if scaled { n as u64 } else { 1 };
        let size = super::photo_size(&path).unwrap_or((
            cam.width.div_ceil(f).max(1) as u32,
            cam.height.div_ceil(f).max(1) as u32,
        ));
        if path.is_file() {
            files.push(path);
        }
        // (the folders a full load reads masks from, for `read_from`: the
        // model's file's own when it names any)
        match layout.mask_files.is_empty() {
            true => files.extend(mask_dirs.iter().filter_map(|d| masks::find(d, &im.name))),
            false => files.extend(layout.mask_files.get(&im.name).cloned()),
        }
        let cam = camera_at(&layout, im, size);
        // (a pinhole camera's one part is itself)
        let pieces = parts
            .entry((im.camera_id, size.0, size.1))
            .or_insert_with(|| crate::cameras::undistort::parts_for(&cam));
        for part in pieces.iter() {
            let p = part.pinhole;
            let mut view = view_of(
                &layout,
                im,
                (p.width, p.height, [p.fx, p.fy, p.cx, p.cy]),
                if scaled { 1 } else { n },
                opts.background,
            )?;
            super::narrow_camera(&mut view, opts.max_width);
            push_to_halves(
                layout.halves(k, &im.name, opts),
                part_of(view, part),
                &mut train,
                &mut test,
            );
        }
    }
    let notes = (layout.renamed.1.iter().cloned())
        .chain(panorama_note(&layout.images, &layout.rec))
        .collect();
    Ok(Dataset {
        train,
        test,
        points: Some(layout.rec.points).filter(|p| !p.is_empty()),
        format,
        notes,
        read_from: super::folders_of(files.iter().map(PathBuf::as_path)),
    })
}

/// The note that a dataset's panoramas are cut into the six faces of a
/// cube ([`crate::cameras::undistort::parts_for`]), each a view of its own.
fn panorama_note(images: &[Image], rec: &Reconstruction) -> Option<String> {
    let panoramas: Vec<&Image> = images
        .iter()
        .filter(|im| {
            rec.cameras[&im.camera_id].model == crate::cameras::CameraModel::Equirectangular
        })
        .collect();
    let which = match panoramas.len() {
        0 => return None,
        1 => "1 photo is an EQUIRECTANGULAR panorama".to_string(),
        n => format!("{n} photos are EQUIRECTANGULAR panoramas"),
    };
    let example = crate::cameras::undistort::face_name(&panoramas[0].name, "front");
    Some(format!(
        "{which}: each is cut into the six faces of a cube (90° pinhole views named \
         NAME@front, @right, @back, @left, @up and @down, as {example}), which are trained on \
         and scored as photos of their own, all six in the panorama's half of the split"
    ))
}

/// Loads a COLMAP dataset folder: its model ([`model_folder`]: of several,
/// the one registering the most photos) and the images folder named in
/// `opts`, holding out every `holdout_every`-th image
/// (sorted by name) for testing. Images in a downscaled folder are matched
/// to the cameras by scaling the intrinsics. Photos of a distorting camera
/// are undistorted into the pinhole [`crate::cameras::undistort`] chooses
/// (a panorama into six, the faces of a cube);
/// a photo's alpha channel and its file in `masks/` (see [`masks`]) become
/// [`View::mask`] together with the pixels undistortion left without a
/// source.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    load_layout(Layout::of(dir, opts, true)?, opts, "colmap")
}

fn load_layout(
    mut layout: Layout,
    opts: &LoadOptions,
    format: &'static str,
) -> Result<Dataset, DataError> {
    let Layout {
        dir,
        images,
        pre,
        img_dir,
        full_dir,
        ..
    } = &layout;
    let (dir, images, pre, img_dir, full_dir) = (dir.as_path(), images, pre, img_dir, full_dir);
    let photo_path = |name: &str| layout.photo_path(name);
    let rec = &layout.rec;
    let n = opts.downscale;
    // with `images_N`, its `masks_N`, and for a photo that has no mask
    // there the full-size `masks/`, fitted to the smaller photo
    let own_masks = dir.join(match &pre {
        Some(_) => format!("masks_{n}"),
        None => "masks".to_string(),
    });
    let full_masks = dir.join("masks");
    masks::check_folder(&own_masks)?;
    masks::check_folder(&full_masks)?;
    let fallback = pre.is_some() && full_masks.is_dir();
    // a photo that `images_N` lacks is read from the full-size folder and
    // downscaled as it would be without `images_N`
    let mut full_size = vec![false; images.len()];
    let mut jobs = Vec::with_capacity(images.len());
    let mut missing = Vec::new();
    for (k, im) in images.iter().enumerate() {
        let mut path = photo_path(&im.name);
        if pre.is_some() && !path.is_file() {
            let full = full_dir.join(&im.name);
            if full.is_file() {
                path = full;
                full_size[k] = true;
            }
        }
        if !path.is_file() {
            missing.push((path.clone(), im.name.clone()));
        }
        jobs.push(ImageJob { path, expect: None });
    }
    if !missing.is_empty() {
        return Err(match DataError::missing_photos(&missing) {
            // (with `images_N`, a photo is missing from both folders: the
            // first's full-size path named too)
            DataError::Io { path, message } if pre.is_some() && path == missing[0].0 => {
                DataError::Io {
                    path,
                    message: format!(
                        "{message} (nor {}{})",
                        full_dir.join(&missing[0].1).display(),
                        match missing.len() {
                            1 => String::new(),
                            _ => format!(", nor the others in {}", full_dir.display()),
                        }
                    ),
                }
            }
            e => e,
        });
    }
    // an `images_N` that has none of the photos is not that capture's
    // (another naming, or another capture): an error, not a silent
    // full-size load
    if !images.is_empty() && full_size.iter().all(|&f| f) {
        let name = &images[0].name;
        return Err(DataError::invalid(
            img_dir,
            "images",
            format!(
                "has none of the model's {} photos (for {name} it looked for {}): remove it \
                 or name its copies as the photos in {} are named",
                images.len(),
                img_dir.join(name).display(),
                full_dir.display()
            ),
        ));
    }
    let mut notes: Vec<String> = layout.renamed.1.iter().cloned().collect();
    let mut narrowed = super::Narrowed::default();
    let from_full: Vec<String> = images
        .iter()
        .zip(&full_size)
        .filter(|(_, &f)| f)
        .map(|(im, _)| im.name.clone())
        .collect();
    if let Some((list, pronoun)) = masks::name_list(&from_full) {
        notes.push(format!(
            "{} has no copy of {} of the {} photos ({list}): {pronoun} read from {} and \
             downscaled {n}×",
            img_dir.display(),
            from_full.len(),
            images.len(),
            full_dir.display()
        ));
    }
    // each photo's mask file, and whether it is of the photo's other size
    // (full-size for an `images_N` photo, or the reverse) and is fitted
    let mut mask_paths: Vec<Option<(PathBuf, bool)>> = vec![None; images.len()];
    // (masks the model's file names are the masks, as nerfstudio reads
    // them: `masks/` is looked in only when it names none)
    if (own_masks.is_dir() || fallback) && layout.mask_files.is_empty() {
        let mut tally = masks::Tally::default();
        for (k, (im, j)) in images.iter().zip(&jobs).enumerate() {
            // a full-size photo read in place of an `images_N` one looks in
            // `masks/` first, then fits a `masks_N` mask to itself
            let (first, second, second_ok) = if full_size[k] {
                (&full_masks, &own_masks, true)
            } else {
                (&own_masks, &full_masks, fallback)
            };
            mask_paths[k] = masks::find(first, &im.name)
                .map(|p| (p, false))
                .or_else(|| {
                    second_ok
                        .then(|| masks::find(second, &im.name))
                        .flatten()
                        .map(|p| (p, true))
                });
            let (dir, found) = match &mask_paths[k] {
                Some((p, other)) => (if *other { second } else { first }, Some(p.as_path())),
                None => (first, None),
            };
            tally.add_found(&im.name, &j.path, dir, found);
        }
        let searched = if own_masks.is_dir() || !fallback {
            if own_masks.is_dir() && fallback {
                tally.also = Some(full_masks.clone());
            }
            &own_masks
        } else {
            &full_masks
        };
        notes.extend(tally.verdict(searched)?);
    }
    for (k, im) in images.iter().enumerate() {
        if let Some(p) = layout.mask_files.get(&im.name) {
            mask_paths[k] = Some((p.clone(), false));
        }
    }
    // a few at a time, each reduced (undistorted, downscaled, narrowed to
    // `max_width`) before the next few are decoded: a capture of large
    // photos is never held at full size all at once. The batch is sized
    // by the largest camera or photo (a photo may be a larger scaled copy
    // of its camera).
    let cameras = images.iter().map(|im| {
        let c = &rec.cameras[&im.camera_id];
        c.width.saturating_mul(c.height)
    });
    let photos = jobs
        .iter()
        .filter_map(|j| super::photo_size(&j.path))
        .map(|(w, h)| w as u64 * h as u64);
    let largest = cameras.chain(photos).max().unwrap_or(1);
    let few = super::decode_batch(largest, crate::machine::memory());
    let decoded = decode_images_lazily(&jobs, opts.background, 1, few);
    // the resampling maps (one per part: a panorama has six) per camera
    // and photo size, shared by its photos, dropped after the camera's
    // last photo (COLMAP's default makes a camera per photo, and each map
    // is 16 bytes a pixel of its output)
    let mut remaps: HashMap<(i32, u32, u32), Vec<(Part, Remap)>> = HashMap::new();
    let mut photos_left: HashMap<i32, usize> = HashMap::new();
    for im in images {
        *photos_left.entry(im.camera_id).or_default() += 1;
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    // photos at another size than their camera's (÷ N in `images_N`),
    // taken as scaled copies: their names, and the first one's sizes
    let mut resized: Vec<String> = Vec::new();
    let mut first_resized = String::new();
    // the views made (a panorama makes six)
    let mut made = 0;
    for (k, (im, photo)) in images.iter().zip(decoded).enumerate() {
        let (w, h, rgb, alpha) = photo?;
        let cam = &rec.cameras[&im.camera_id];
        // a folder of downscaled copies: the scale must be the same along
        // both axes (to a pixel of rounding)
        let sx = w as f64 / cam.width as f64;
        let sy = h as f64 / cam.height as f64;
        if (sx - sy).abs() * (cam.width.max(cam.height) as f64) > 1.5 {
            // in `images_N`, the size it should have had; a photo turned a
            // quarter (its pixels rotated, as an editor applying its EXIF
            // orientation saves them: COLMAP reads the stored pixels)
            let turned = (h as f64 / cam.width as f64 - w as f64 / cam.height as f64).abs()
                * (cam.width.max(cam.height) as f64)
                <= 1.5;
            // (the tool that posed them: COLMAP, or the app that wrote
            // another format's file)
            let posed_by = match format {
                "colmap" => "COLMAP".to_string(),
                _ => layout
                    .images_file
                    .file_name()
                    .map_or("the cameras' file".into(), |n| {
                        n.to_string_lossy().into_owned()
                    }),
            };
            let turned = match turned {
                true => format!(
                    "; it is the camera's size turned a quarter: were its pixels rotated \
                     after it was posed (an editor applying its EXIF orientation)? \
                     {posed_by} poses the pixels as they were stored"
                ),
                false => String::new(),
            };
            let expected = match pre.is_some() && !full_size[k] {
                true => format!(
                    " (in {}, about {}×{}: the camera's ÷ {n})",
                    img_dir.display(),
                    cam.width / n as u64,
                    cam.height / n as u64
                ),
                false => String::new(),
            };
            return Err(DataError::invalid(
                &jobs[k].path,
                "image size",
                format!(
                    "is {w}×{h}, which is not a scaled copy of the camera's {}×{}{expected}{turned}",
                    cam.width, cam.height
                ),
            ));
        }
        // an `images_N` copy is the camera's size ÷ N, rounded either way
        let f = if pre.is_some() && !full_size[k] {
            n as u64
        } else {
            1
        };
        let near = |m: u32, c: u64| (m as u64 * f).abs_diff(c) < f;
        if !(near(w, cam.width) && near(h, cam.height)) {
            if resized.is_empty() {
                let (ew, eh) = (cam.width.div_ceil(f), cam.height.div_ceil(f));
                first_resized = format!("{} is {w}×{h}, not {ew}×{eh}", jobs[k].path.display());
            }
            resized.push(im.name.clone());
        }
        let user = match &mask_paths[k] {
            Some((p, false)) => Some(masks::load(p, &jobs[k].path, w, h, opts.invert_masks)?),
            // with `images_N`, a mask of the other size of the photo is
            // fitted: the full-size one (the camera's size) to an
            // `images_N` photo, an `images_N` one (the camera's size
            // divided by N, to a pixel) to a full-size photo read in its
            // place; one already of the photo's size is taken as it is, and
            // one of neither size is refused
            Some((p, true)) => {
                let (cw, ch) = (cam.width as u32, cam.height as u32);
                let other = if full_size[k] {
                    // floor(c / n) or ceil(c / n)
                    let near = |m: u32, c: u32| (m as u64 * n as u64).abs_diff(c as u64) < n as u64;
                    match masks::dimensions(p) {
                        Some((mw, mh)) if near(mw, cw) && near(mh, ch) => (mw, mh),
                        _ => (cw.div_ceil(n), ch.div_ceil(n)),
                    }
                } else {
                    (cw, ch)
                };
                let photo = &jobs[k].path;
                match masks::dimensions(p) {
                    Some(d) if d == (w, h) => Some(masks::load(p, photo, w, h, opts.invert_masks)?),
                    Some((mw, mh)) if (mw, mh) != other => {
                        let (ow, oh) = other;
                        return Err(DataError::invalid(
                            p,
                            "mask size",
                            format!(
                                "is {mw}×{mh}: neither its photo {}'s {w}×{h} nor {}",
                                photo.display(),
                                if full_size[k] {
                                    format!("the images_{n} size, {ow}×{oh} (the camera's ÷ {n})")
                                } else {
                                    format!("the full-size photo's {ow}×{oh} (the camera's)")
                                }
                            ),
                        ));
                    }
                    // (unreadable ones too: the loader's error says why)
                    _ => {
                        let (ow, oh) = other;
                        let m = masks::load(p, photo, ow, oh, opts.invert_masks)?;
                        Some(masks::fit(ow, oh, &m, w, h))
                    }
                }
            }
            None => None,
        };
        let mask = masks::combine(user, alpha.as_deref().map(masks::from_alpha));
        let circle = layout.circles.get(&im.camera_id).map(|r| {
            // (in a scaled copy, the circle scaled with the photo)
            let r = r * w as f64 / cam.width as f64;
            masks::circle(w, h, r)
        });
        let mask = masks::combine(mask, circle);
        let cam = camera_at(&layout, im, (w, h));
        // the photo as it is (a pinhole: its one part is itself), or
        // resampled into each part, one at a time (a panorama's six faces
        // are never all held at full size at once; nor their maps, for a
        // camera's last photo, whose maps are not kept)
        let key = (im.camera_id, w, h);
        let last = photos_left[&im.camera_id] == 1;
        if !cam.model.is_pinhole() && !last {
            remaps.entry(key).or_insert_with(|| {
                crate::cameras::undistort::parts_for(&cam)
                    .into_iter()
                    .map(|part| (part, Remap::part(&cam, &part)))
                    .collect()
            });
        }
        let parts: Vec<Part> = match remaps.get(&key) {
            Some(kept) => kept.iter().map(|(part, _)| *part).collect(),
            None => crate::cameras::undistort::parts_for(&cam),
        };
        let mut whole = Some((rgb, alpha, mask));
        // `images_N` photos are already downscaled
        let downscale = if pre.is_some() && !full_size[k] { 1 } else { n };
        for (j, &part) in parts.iter().enumerate() {
            let (rgb, alpha, mask) = if cam.model.is_pinhole() {
                whole.take().expect("one part")
            } else {
                let own;
                let r = match remaps.get(&key) {
                    Some(kept) => &kept[j].1,
                    None => {
                        own = Remap::part(&cam, &part);
                        &own
                    }
                };
                let (rgb, alpha, mask) = whole.as_ref().expect("the photo");
                let alpha = alpha.as_ref().map(|a| r.apply(a, 1, &[0.0]));
                let mask = Some(r.mask(mask.as_deref()));
                (r.apply(rgb, 3, &opts.background), alpha, mask)
            };
            let p = part.pinhole;
            let (pw, ph) = (p.width, p.height);
            let pin = (pw, ph, [p.fx, p.fy, p.cx, p.cy]);
            let (w2, h2, rgb) = super::downscale_box(pw, ph, &rgb, 3, downscale);
            let alpha = alpha.map(|a| super::downscale_box(pw, ph, &a, 1, downscale).2);
            let mask = mask.map(|m| masks::downscale(pw, ph, &m, downscale));
            let view = view_of(&layout, im, pin, downscale, opts.background)?;
            let mut view = part_of(view, &part);
            debug_assert_eq!((view.width, view.height), (w2, h2));
            let before =
                super::hold_photo(&mut view, rgb, alpha, masks::simplify(mask), opts.max_width);
            narrowed.add(&view, before);
            made += 1;
            push_to_halves(
                layout.halves(k, &im.name, opts),
                view,
                &mut train,
                &mut test,
            );
        }
        let left = photos_left.get_mut(&im.camera_id).expect("counted above");
        *left -= 1;
        if *left == 0 {
            remaps.retain(|key, _| key.0 != im.camera_id);
        }
    }
    notes.extend(narrowed.note(made));
    notes.extend(panorama_note(images, rec));
    if opts.invert_masks && mask_paths.iter().all(Option::is_none) {
        notes.push(masks::nothing_inverted("masks/NAME.png beside images/"));
    }
    if let Some((list, _)) = masks::name_list(&resized) {
        notes.push(format!(
            "{} of the {} photos {} not at {} camera's size ({list}; {first_resized}): \
             each is taken as a scaled copy, its camera scaled to fit",
            resized.len(),
            images.len(),
            if resized.len() == 1 { "is" } else { "are" },
            if resized.len() == 1 { "its" } else { "their" },
        ));
    }
    Ok(Dataset {
        train,
        test,
        points: Some(std::mem::take(&mut layout.rec.points)).filter(|p| !p.is_empty()),
        format,
        notes,
        read_from: super::folders_of(
            jobs.iter()
                .map(|j| j.path.as_path())
                .chain(mask_paths.iter().flatten().map(|(p, _)| p.as_path())),
        ),
    })
}

#[cfg(test)]
mod tests;
