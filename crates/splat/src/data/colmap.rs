//! COLMAP sparse reconstructions: `sparse/0/{cameras,images,points3D}` in
//! the binary (`.bin`) or text (`.txt`) format, as COLMAP 3 and 4 write them
//! (COLMAP 4's `rigs.bin` and `frames.bin` are not needed: `images.bin`
//! still holds each image's pose) and as `image_undistorter` leaves them
//! (`sparse/` without `0/`). Every camera model COLMAP defines is read
//! ([`crate::cameras`]); photos of a distorting model are undistorted into a
//! pinhole view at load, their pixels without a source masked. Poses are
//! world-to-camera in OpenCV axes already: quaternion (w, x, y, z) and
//! translation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{decode_images, masks, DataError, Dataset, ImageJob, LoadOptions, Mat4, Point, View};
use crate::cameras::undistort::Remap;
use crate::cameras::{CameraModel, Intrinsics};

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

/// A bounds-checked little-endian reader whose errors name the file, the
/// byte offset and the field.
struct Reader<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], DataError> {
        if self.data.len() - self.pos < n {
            return Err(DataError::invalid(
                self.path,
                field,
                format!("file ends at byte {} (truncated)", self.data.len()),
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u64(&mut self, field: &str) -> Result<u64, DataError> {
        Ok(u64::from_le_bytes(
            self.take(8, field)?.try_into().expect("8 bytes"),
        ))
    }
    fn i32(&mut self, field: &str) -> Result<i32, DataError> {
        Ok(i32::from_le_bytes(
            self.take(4, field)?.try_into().expect("4 bytes"),
        ))
    }
    fn f64(&mut self, field: &str) -> Result<f64, DataError> {
        let x = f64::from_le_bytes(self.take(8, field)?.try_into().expect("8 bytes"));
        if !x.is_finite() {
            return Err(DataError::invalid(
                self.path,
                field,
                format!("{x} is not finite"),
            ));
        }
        Ok(x)
    }
    fn u8(&mut self, field: &str) -> Result<u8, DataError> {
        Ok(self.take(1, field)?[0])
    }
    /// A count of records of at least `min_size` bytes each, checked
    /// against the bytes left before anything is allocated.
    fn count(&mut self, field: &str, min_size: usize) -> Result<usize, DataError> {
        let n = self.u64(field)?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(DataError::invalid(
                self.path,
                field,
                format!("declares {n} records but only {left} bytes follow"),
            ));
        }
        Ok(n as usize)
    }
    fn cstring(&mut self, field: &str) -> Result<String, DataError> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            DataError::invalid(self.path, field, "unterminated string (truncated file)")
        })?;
        let s = std::str::from_utf8(&rest[..end])
            .map_err(|_| DataError::invalid(self.path, field, "not UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(s)
    }
}

fn model(path: &Path, field: &str, id: i32) -> Result<CameraModel, DataError> {
    CameraModel::from_id(id).ok_or_else(|| {
        DataError::invalid(
            path,
            field,
            format!("unknown camera model id {id} (this reader knows ids 0 to 17)"),
        )
    })
}

fn camera(
    path: &Path,
    field: &str,
    model: CameraModel,
    width: u64,
    height: u64,
    p: Vec<f64>,
) -> Result<Camera, DataError> {
    Intrinsics::new(model, width, height, p)
        .map_err(|m| DataError::invalid(path, field, format!("{} camera: {m}", model.name())))
}

/// Where each camera or image id (or photo name) of a file was first
/// seen: a record's index (`unit` "record") or a line number (`unit`
/// "line"), and for a name the image's id. COLMAP writes each id and each
/// photo's name once; a second record would silently replace the first (a
/// camera) or pose one photo twice (an image), so it is refused naming
/// both. (Points: [`unique_point_ids`].)
struct Seen<K> {
    unit: &'static str,
    first: HashMap<K, (usize, i32)>,
}

impl<K: std::hash::Hash + Eq + std::fmt::Display> Seen<K> {
    fn new(unit: &'static str) -> Self {
        Seen {
            unit,
            first: HashMap::new(),
        }
    }

    /// Records `what`'s id `id` at record or line `at` (`field` in
    /// errors); an error when an earlier one has it.
    fn id(
        &mut self,
        path: &Path,
        field: &str,
        what: &str,
        id: K,
        at: usize,
    ) -> Result<(), DataError> {
        use std::collections::hash_map::Entry;
        match self.first.entry(id) {
            Entry::Occupied(e) => Err(DataError::invalid(
                path,
                field,
                again(what, e.key(), self.unit, e.get().0),
            )),
            Entry::Vacant(e) => {
                e.insert((at, 0));
                Ok(())
            }
        }
    }
}

impl Seen<String> {
    /// Records the photo `name` of image `id` at record or line `at`
    /// (`field` in errors); an error when an earlier image names it.
    fn name(
        &mut self,
        path: &Path,
        field: &str,
        name: &str,
        id: i32,
        at: usize,
    ) -> Result<(), DataError> {
        if let Some(&(first, first_id)) = self.first.get(name) {
            return Err(DataError::invalid(
                path,
                field,
                format!(
                    "names {name}, as image {first_id} ({} {first}) does: one photo with two \
                     poses (COLMAP names each photo once)",
                    self.unit
                ),
            ));
        }
        self.first.insert(name.to_string(), (at, id));
        Ok(())
    }
}

/// The error message of a second record with `what`'s id `id`, whose
/// first is `unit` (record or line) `first`.
fn again(what: &str, id: impl std::fmt::Display, unit: &str, first: usize) -> String {
    format!("{what} id {id} again: {unit} {first} has it too (COLMAP writes each {what} once)")
}

/// The points' ids with their record index or line number (`unit`), after
/// the whole file is read: an error naming the first record (in the file's
/// order) whose id an earlier one has, as `label(id, at)` calls it. A
/// second point of an id would be one more point where COLMAP has one.
/// (Sorted rather than hashed: a capture may have millions of points.)
fn unique_point_ids(
    path: &Path,
    unit: &str,
    mut ids: Vec<(u64, usize)>,
    label: impl Fn(u64, usize) -> String,
) -> Result<(), DataError> {
    ids.sort_unstable();
    let repeat = ids
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .min_by_key(|w| w[1].1);
    match repeat {
        None => Ok(()),
        Some(w) => {
            let (id, first, second) = (w[0].0, w[0].1, w[1].1);
            Err(DataError::invalid(
                path,
                label(id, second),
                again("point", id, unit, first),
            ))
        }
    }
}

/// Parses `cameras.bin`.
pub fn cameras_bin(path: &Path, data: &[u8]) -> Result<HashMap<i32, Camera>, DataError> {
    let mut r = Reader { path, data, pos: 0 };
    let n = r.count("number of cameras", 24)?;
    let mut out = HashMap::with_capacity(n);
    let mut seen = Seen::new("record");
    for i in 0..n {
        let id = r.i32(&format!("camera record {i} id"))?;
        // the camera's own id from here on (what cameras.txt and COLMAP
        // call it), with the record's place
        let f = format!("camera {id} (record {i})");
        seen.id(path, &f, "camera", id, i)?;
        let m = model(path, &f, r.i32(&format!("{f} model"))?)?;
        let w = r.u64(&format!("{f} width"))?;
        let h = r.u64(&format!("{f} height"))?;
        let mut p = Vec::with_capacity(m.num_params());
        for k in 0..m.num_params() {
            p.push(r.f64(&format!("{f} params[{k}]"))?);
        }
        out.insert(id, camera(path, &format!("camera {id}"), m, w, h, p)?);
    }
    Ok(out)
}

/// Parses `images.bin`.
pub fn images_bin(path: &Path, data: &[u8]) -> Result<Vec<Image>, DataError> {
    let mut r = Reader { path, data, pos: 0 };
    let n = r.count("number of images", 64 + 1 + 8)?;
    let mut out = Vec::with_capacity(n);
    let (mut ids, mut names) = (Seen::new("record"), Seen::new("record"));
    for i in 0..n {
        // the record's place until its id is read, then the image's own
        // id (what images.txt and COLMAP call it) with its place
        let id = r.i32(&format!("image record {i} id"))?;
        let f = format!("image {id} (record {i})");
        ids.id(path, &f, "image", id, i)?;
        let mut q = [0.0; 4];
        for (k, qk) in q.iter_mut().enumerate() {
            *qk = r.f64(&format!("{f} qvec[{k}]"))?;
        }
        let mut t = [0.0; 3];
        for (k, tk) in t.iter_mut().enumerate() {
            *tk = r.f64(&format!("{f} tvec[{k}]"))?;
        }
        let camera_id = r.i32(&format!("{f} camera_id"))?;
        let name = r.cstring(&format!("{f} name"))?;
        names.name(path, &f, &name, id, i)?;
        let np = r.count(&format!("{f} number of 2D points"), 24)?;
        r.take(np * 24, &format!("{f} 2D points"))?;
        out.push(Image {
            id,
            qvec: q,
            tvec: t,
            camera_id,
            name,
        });
    }
    Ok(out)
}

/// Parses `points3D.bin`.
pub fn points_bin(path: &Path, data: &[u8]) -> Result<Vec<Point>, DataError> {
    let mut r = Reader { path, data, pos: 0 };
    let n = r.count("number of points", 8 + 24 + 3 + 8 + 8)?;
    let mut out = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = r.u64(&format!("point record {i} id"))?;
        let f = format!("point {id} (record {i})");
        ids.push((id, i));
        let mut xyz = [0.0; 3];
        for (k, x) in xyz.iter_mut().enumerate() {
            *x = r.f64(&format!("{f} xyz[{k}]"))?;
        }
        let rgb_field = format!("{f} rgb");
        let rgb = [r.u8(&rgb_field)?, r.u8(&rgb_field)?, r.u8(&rgb_field)?];
        r.f64(&format!("{f} error"))?;
        let tl = r.count(&format!("{f} track length"), 8)?;
        r.take(tl * 8, &format!("{f} track"))?;
        out.push(Point { xyz, rgb });
    }
    unique_point_ids(path, "record", ids, |id, i| {
        format!("point {id} (record {i})")
    })?;
    Ok(out)
}

/// Lines of a COLMAP text file without comments and blank lines, with their
/// 1-based line numbers. `keep_blank` keeps empty lines (images.txt has an
/// empty points line for images without 2D points).
fn text_lines(text: &str, keep_blank: bool) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(move |(_, l)| !l.starts_with('#') && (keep_blank || !l.is_empty()))
}

fn num<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    what: &str,
    s: Option<&str>,
) -> Result<T, DataError> {
    let s = s.ok_or_else(|| {
        DataError::invalid(path, format!("line {line}"), format!("missing {what}"))
    })?;
    s.parse().map_err(|_| {
        DataError::invalid(
            path,
            format!("line {line}"),
            format!("{what} `{s}` is not a valid number"),
        )
    })
}

fn finite(path: &Path, line: usize, what: &str, x: f64) -> Result<f64, DataError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(DataError::invalid(
            path,
            format!("line {line}"),
            format!("{what} is not finite"),
        ))
    }
}

/// Parses `cameras.txt`.
pub fn cameras_txt(path: &Path, text: &str) -> Result<HashMap<i32, Camera>, DataError> {
    let mut out = HashMap::new();
    let mut seen = Seen::new("line");
    for (ln, l) in text_lines(text, false) {
        let mut it = l.split_whitespace();
        let id: i32 = num(path, ln, "CAMERA_ID", it.next())?;
        seen.id(path, &format!("line {ln}"), "camera", id, ln)?;
        let name = it
            .next()
            .ok_or_else(|| DataError::invalid(path, format!("line {ln}"), "missing MODEL"))?;
        let m = CameraModel::from_name(name).ok_or_else(|| {
            DataError::invalid(
                path,
                format!("line {ln}"),
                format!("unknown camera model {name}"),
            )
        })?;
        let np = m.num_params();
        let w: u64 = num(path, ln, "WIDTH", it.next())?;
        let h: u64 = num(path, ln, "HEIGHT", it.next())?;
        let mut p = Vec::with_capacity(np);
        for k in 0..np {
            let x: f64 = num(path, ln, &format!("PARAMS[{k}]"), it.next())?;
            p.push(finite(path, ln, "a parameter", x)?);
        }
        if let Some(extra) = it.next() {
            return Err(DataError::invalid(
                path,
                format!("line {ln}"),
                format!("{} takes {np} parameters; found more (`{extra}`)", m.name()),
            ));
        }
        out.insert(id, camera(path, &format!("line {ln}"), m, w, h, p)?);
    }
    Ok(out)
}

/// Parses `images.txt` (two lines per image; the second, the 2D points, is
/// skipped and may be empty).
pub fn images_txt(path: &Path, text: &str) -> Result<Vec<Image>, DataError> {
    let mut out = Vec::new();
    let (mut ids, mut names) = (Seen::new("line"), Seen::new("line"));
    let mut lines = text_lines(text, true).skip_while(|(_, l)| l.is_empty());
    while let Some((ln, l)) = lines.next() {
        if l.is_empty() {
            continue;
        }
        let mut it = l.split_whitespace();
        let id: i32 = num(path, ln, "IMAGE_ID", it.next())?;
        let at = format!("line {ln}");
        ids.id(path, &at, "image", id, ln)?;
        let mut q = [0.0; 4];
        for (k, qk) in q.iter_mut().enumerate() {
            *qk = finite(
                path,
                ln,
                "a quaternion component",
                num(path, ln, &format!("Q{k}"), it.next())?,
            )?;
        }
        let mut t = [0.0; 3];
        for (k, tk) in t.iter_mut().enumerate() {
            *tk = finite(
                path,
                ln,
                "a translation component",
                num(path, ln, &format!("T{k}"), it.next())?,
            )?;
        }
        let camera_id: i32 = num(path, ln, "CAMERA_ID", it.next())?;
        let name: String = it.collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(DataError::invalid(
                path,
                format!("line {ln}"),
                "missing NAME",
            ));
        }
        names.name(path, &at, &name, id, ln)?;
        lines.next(); // the POINTS2D line
        out.push(Image {
            id,
            qvec: q,
            tvec: t,
            camera_id,
            name,
        });
    }
    Ok(out)
}

/// Parses `points3D.txt`.
pub fn points_txt(path: &Path, text: &str) -> Result<Vec<Point>, DataError> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for (ln, l) in text_lines(text, false) {
        let mut it = l.split_whitespace();
        let id: u64 = num(path, ln, "POINT3D_ID", it.next())?;
        ids.push((id, ln));
        let mut xyz = [0.0; 3];
        for (k, x) in xyz.iter_mut().enumerate() {
            *x = finite(
                path,
                ln,
                "a coordinate",
                num(path, ln, ["X", "Y", "Z"][k], it.next())?,
            )?;
        }
        let mut rgb = [0u8; 3];
        for (k, c) in rgb.iter_mut().enumerate() {
            *c = num(path, ln, ["R", "G", "B"][k], it.next())?;
        }
        out.push(Point { xyz, rgb });
    }
    unique_point_ids(path, "line", ids, |_, ln| format!("line {ln}"))?;
    Ok(out)
}

/// Rotation matrix of a unit quaternion (w, x, y, z), normalised first;
/// `None` when its norm is (nearly) zero or overflows f64.
pub fn quat_to_rotation(q: [f64; 4]) -> Option<[[f64; 3]; 3]> {
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    // an infinite norm (components near f64::MAX) would divide every
    // component to zero and give the identity silently
    if !n.is_finite() || n <= 1e-12 {
        return None;
    }
    let [w, x, y, z] = q.map(|c| c / n);
    Some([
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ])
}

/// Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method),
/// the inverse of [`quat_to_rotation`] (as COLMAP stores poses).
pub fn rotation_to_quat(r: [[f64; 3]; 3]) -> [f64; 4] {
    let tr = r[0][0] + r[1][1] + r[2][2];
    let q = if tr > 0.0 {
        let s = (tr + 1.0).sqrt() * 2.0;
        [
            0.25 * s,
            (r[2][1] - r[1][2]) / s,
            (r[0][2] - r[2][0]) / s,
            (r[1][0] - r[0][1]) / s,
        ]
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        [
            (r[2][1] - r[1][2]) / s,
            0.25 * s,
            (r[0][1] + r[1][0]) / s,
            (r[0][2] + r[2][0]) / s,
        ]
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        [
            (r[0][2] - r[2][0]) / s,
            (r[0][1] + r[1][0]) / s,
            0.25 * s,
            (r[1][2] + r[2][1]) / s,
        ]
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        [
            (r[1][0] - r[0][1]) / s,
            (r[0][2] + r[2][0]) / s,
            (r[1][2] + r[2][1]) / s,
            0.25 * s,
        ]
    };
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    q.map(|x| x / n)
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

/// When `path` is one model of a COLMAP dataset rather than the dataset
/// (`D/sparse/1`, or `D/sparse` in `image_undistorter`'s layout: a folder
/// named `sparse`, or inside one, that holds a `cameras` or an `images`
/// file and no `sparse/` of its own), the dataset folder `D` whose photos
/// it poses. This is how a user picks a model other than the one
/// [`model_folder`] would: `chainrule train D/sparse/1`.
///
/// ```
/// let d = std::env::temp_dir().join(format!("cr-model-of-{}", std::process::id()));
/// std::fs::create_dir_all(d.join("sparse/1")).unwrap();
/// for f in ["cameras.txt", "images.txt"] {
///     std::fs::write(d.join("sparse/1").join(f), "").unwrap();
/// }
/// use splat::data::colmap::dataset_of_model;
/// assert_eq!(dataset_of_model(&d.join("sparse/1")), Some(d.clone()));
/// assert_eq!(dataset_of_model(&d), None);
/// std::fs::remove_dir_all(&d).unwrap();
/// ```
pub fn dataset_of_model(path: &Path) -> Option<PathBuf> {
    // a model's cameras or its poses (one missing is then `load`'s error,
    // which names the file); a `sparse/` holding numbered models is a
    // folder of models, whatever stray file lies beside them
    if !has_model_file(path) || path.join("sparse").is_dir() || !numbered_models(path).is_empty() {
        return None;
    }
    // by the names as given, else (`0` from inside `sparse/`) as resolved
    root_of_model_path(path).or_else(|| root_of_model_path(&std::fs::canonicalize(path).ok()?))
}

/// Why `dir` is not a COLMAP dataset although it looks like part of one,
/// for the error that refuses it: a model outside a `sparse/` folder (its
/// photos cannot be found), or a `sparse/` folder of numbered models.
/// `None` when it looks like neither.
pub fn not_a_dataset_hint(dir: &Path) -> Option<String> {
    let numbered = numbered_models(dir);
    if !numbered.is_empty() {
        return Some(format!(
            "it holds COLMAP models ({}): give the dataset folder whose sparse/ holds them \
             (the model with the most photos is trained), or one model, as {}",
            numbered.join(", "),
            dir.join(&numbered[0]).display()
        ));
    }
    has_model_file(dir).then(|| {
        "it has a COLMAP model's files (cameras or images), but a model is read from \
         inside its dataset, DATA/sparse/N (or DATA/sparse) beside the photos in \
         DATA/images: move it there, or give DATA"
            .into()
    })
}

/// The names of `dir`'s numbered subfolders that hold a model file
/// (cameras or images), in numeric order.
fn numbered_models(dir: &Path) -> Vec<String> {
    let mut found: Vec<(u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| has_model_file(&e.path()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((name.parse().ok()?, name))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

/// Whether `dir` holds a model's cameras or images file (`.bin` or `.txt`).
fn has_model_file(dir: &Path) -> bool {
    ["cameras.bin", "cameras.txt", "images.bin", "images.txt"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// The dataset folder of a model folder's path by its names alone:
/// `D` for `D/sparse` and `D/sparse/N` (`.` when `D` is empty), else
/// `None`.
fn root_of_model_path(path: &Path) -> Option<PathBuf> {
    // `Path::parent` of a relative `sparse` is "", which names the
    // current folder
    let parent_of = |p: &Path| match p.parent() {
        Some(q) if q.as_os_str().is_empty() => Some(PathBuf::from(".")),
        q => q.map(Path::to_path_buf),
    };
    let named_sparse = |p: &Path| p.file_name().is_some_and(|n| n == "sparse");
    if named_sparse(path) {
        return parent_of(path);
    }
    let parent = path.parent()?;
    named_sparse(parent).then(|| parent_of(parent)).flatten()
}

/// The models of a COLMAP folder, as COLMAP's mapper writes them when it
/// cannot register every photo into one (`sparse/0`, `sparse/1`, …, in no
/// order of size), and `sparse/` itself when it holds a model
/// (`image_undistorter`'s layout): each with an `images.bin` or
/// `images.txt`, with the number of photos it registers (0 when that file
/// cannot be read), `sparse/` first, then by number.
pub fn models(dir: &Path) -> Vec<(PathBuf, usize)> {
    let sparse = dir.join("sparse");
    let holds = |p: &Path| p.join("images.bin").is_file() || p.join("images.txt").is_file();
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&sparse)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u64>().ok()?;
            let path = e.path();
            holds(&path).then_some((n, path))
        })
        .collect();
    found.sort();
    let top = holds(&sparse).then_some(sparse.clone());
    top.into_iter()
        .chain(found.into_iter().map(|(_, p)| p))
        .map(|path| {
            let count = photo_count(&path).unwrap_or(0);
            (path, count)
        })
        .collect()
}

/// The number of photos a model registers: `images.bin`'s declared count,
/// or the records of `images.txt`.
fn photo_count(model: &Path) -> Option<usize> {
    use std::io::Read;
    let bin = model.join("images.bin");
    if bin.is_file() {
        let mut head = [0u8; 8];
        std::fs::File::open(&bin).ok()?.read_exact(&mut head).ok()?;
        return usize::try_from(u64::from_le_bytes(head)).ok();
    }
    let txt = model.join("images.txt");
    let text = std::fs::read_to_string(&txt).ok()?;
    images_txt(&txt, &text).ok().map(|v| v.len())
}

/// The model [`load`] reads: of those [`models`] finds, the one that
/// registers the most photos (the first of equals); `sparse/0` (or
/// `sparse/`) when there is none, for the error that names what is missing.
pub fn model_folder(dir: &Path) -> PathBuf {
    let all = models(dir);
    let best = all
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.1.cmp(&b.1).then(j.cmp(i)))
        .map(|(_, m)| m.0.clone());
    match best {
        Some(m) => m,
        None if dir.join("sparse/0").is_dir() => dir.join("sparse/0"),
        None => dir.join("sparse"),
    }
}

/// Loads a COLMAP dataset folder: its model ([`model_folder`]: of several,
/// the one registering the most photos) and the images folder named in
/// `opts`, holding out every `holdout_every`-th image
/// (sorted by name) for testing. Images in a downscaled folder are matched
/// to the cameras by scaling the intrinsics. Photos of a distorting camera
/// are undistorted into the pinhole [`crate::cameras::undistort`] chooses;
/// a photo's alpha channel and its file in `masks/` (see [`masks`]) become
/// [`View::mask`] together with the pixels undistortion left without a
/// source.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    // a model named by its own folder ([`dataset_of_model`]) poses the
    // photos of the dataset around it
    let (dir, sparse) = match dataset_of_model(dir) {
        Some(root) => (root, dir.to_path_buf()),
        None => (dir.to_path_buf(), model_folder(dir)),
    };
    let dir = dir.as_path();
    let rec = read_reconstruction(&sparse)?;
    // the file the poses come from, for errors about one of them
    let images_file = ["images.bin", "images.txt"]
        .map(|f| sparse.join(f))
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| sparse.clone());
    let mut images = rec.images.clone();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    // the Mip-NeRF 360 layout: `images_N` holds copies downscaled N times;
    // used for downscale N when present (then not downscaled again), with
    // `masks_N` for their masks
    let n = opts.downscale;
    let pre = (n > 1 && opts.images_dir == "images" && dir.join(format!("images_{n}")).is_dir())
        .then(|| format!("images_{n}"));
    let img_dir = dir.join(pre.as_deref().unwrap_or(&opts.images_dir));
    let full_dir = dir.join(&opts.images_dir);
    // with `images_N`, its `masks_N`, and for a photo that has no mask
    // there the full-size `masks/`, fitted to the smaller photo
    let own_masks = dir.join(match &pre {
        Some(_) => format!("masks_{n}"),
        None => "masks".to_string(),
    });
    let full_masks = dir.join("masks");
    let fallback = pre.is_some() && full_masks.is_dir();
    // a photo that `images_N` lacks is read from the full-size folder and
    // downscaled as it would be without `images_N`
    let mut full_size = vec![false; images.len()];
    let mut jobs = Vec::with_capacity(images.len());
    for (k, im) in images.iter().enumerate() {
        let mut path = img_dir.join(&im.name);
        if pre.is_some() && !path.is_file() {
            let full = full_dir.join(&im.name);
            if !full.is_file() {
                return Err(DataError::io(
                    &path,
                    format!("image file not found (nor {})", full.display()),
                ));
            }
            path = full;
            full_size[k] = true;
        }
        if !path.is_file() {
            return Err(DataError::missing_photo(&path));
        }
        jobs.push(ImageJob { path, expect: None });
    }
    // an `images_N` that has none of the photos is not that capture's
    // (another naming, or another capture): an error, not a silent
    // full-size load
    if !images.is_empty() && full_size.iter().all(|&f| f) {
        let name = &images[0].name;
        return Err(DataError::invalid(
            &img_dir,
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
    let mut notes = Vec::new();
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
    if own_masks.is_dir() || fallback {
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
    let decoded = decode_images(&jobs, opts.background, 1)?;
    // one resampling map per camera and photo size, shared by its photos
    let mut remaps: HashMap<(i32, u32, u32), Remap> = HashMap::new();
    let mut train = Vec::new();
    let mut test = Vec::new();
    // photos at another size than their camera's (÷ N in `images_N`),
    // taken as scaled copies: their names, and the first one's sizes
    let mut resized: Vec<String> = Vec::new();
    let mut first_resized = String::new();
    for (k, (im, (w, h, rgb, alpha))) in images.iter().zip(decoded).enumerate() {
        let cam = &rec.cameras[&im.camera_id];
        // a folder of downscaled copies: the scale must be the same along
        // both axes (to a pixel of rounding)
        let sx = w as f64 / cam.width as f64;
        let sy = h as f64 / cam.height as f64;
        if (sx - sy).abs() * (cam.width.max(cam.height) as f64) > 1.5 {
            return Err(DataError::invalid(
                &jobs[k].path,
                "image size",
                format!(
                    "is {w}×{h}, which is not a scaled copy of the camera's {}×{}",
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
        let mut cam = cam.scaled(sx, sy);
        (cam.width, cam.height) = (w as u64, h as u64);
        let (pin, rgb, alpha, mask) = if cam.model.is_pinhole() {
            let p = cam.model.pinhole_part(&cam.params).expect("a pinhole");
            ((w, h, p), rgb, alpha, mask)
        } else {
            let r = remaps
                .entry((im.camera_id, w, h))
                .or_insert_with(|| Remap::new(&cam));
            let p = r.pinhole;
            let rgb = r.apply(&rgb, 3, &opts.background);
            let alpha = alpha.map(|a| r.apply(&a, 1, &[0.0]));
            let mask = r.mask(mask.as_deref());
            (
                (p.width, p.height, [p.fx, p.fy, p.cx, p.cy]),
                rgb,
                alpha,
                Some(mask),
            )
        };
        let (pw, ph, [fx, fy, cx, cy]) = pin;
        // `images_N` photos are already downscaled
        let downscale = if pre.is_some() && !full_size[k] { 1 } else { n };
        let (w2, h2, rgb) = super::downscale_box(pw, ph, &rgb, 3, downscale);
        let alpha = alpha.map(|a| super::downscale_box(pw, ph, &a, 1, downscale).2);
        let mask = mask.map(|m| masks::downscale(pw, ph, &m, downscale));
        let s = [w2 as f64 / pw as f64, h2 as f64 / ph as f64];
        let r = quat_to_rotation(im.qvec).ok_or_else(|| {
            DataError::invalid(
                &images_file,
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
        let view = View {
            name: im.name.clone(),
            width: w2,
            height: h2,
            fx: fx * s[0],
            fy: fy * s[1],
            cx: cx * s[0],
            cy: cy * s[1],
            world_to_camera: m,
            image: rgb,
            alpha,
            background: opts.background,
            mask: masks::simplify(mask),
        };
        if opts.holdout_every > 0 && k % opts.holdout_every == 0 {
            test.push(view);
        } else {
            train.push(view);
        }
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
        points: if rec.points.is_empty() {
            None
        } else {
            Some(rec.points)
        },
        format: "colmap",
        notes,
        read_from: super::folders_of(
            jobs.iter()
                .map(|j| j.path.as_path())
                .chain(mask_paths.iter().flatten().map(|(p, _)| p.as_path())),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let c = cameras_bin(p, &cam_bin(m.id(), &params)).unwrap();
            assert_eq!(c[&7].model, m);
            assert_eq!(c[&7].params, params);
        }
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
            "4 1 0 0 0 0 0 1 1 a.png\n1 2\n4 1 0 0 0 0 0 2 1 b.png\n\n",
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
}
