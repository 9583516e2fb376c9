//! The three files of a model, `cameras`, `images` and `points3D`, in
//! COLMAP's binary and text formats: every record checked, every error
//! naming the file, the record and the field.

use std::collections::HashMap;
use std::path::Path;

use super::{Camera, Image};
use crate::cameras::{CameraModel, Intrinsics};
use crate::data::{DataError, Point};

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
    let cam = Intrinsics::new(model, width, height, p)
        .map_err(|m| DataError::invalid(path, field, format!("{} camera: {m}", model.name())))?;
    // a panorama spans its parameters' width and height: another size
    // than the image's is not a 360° photo (and would be trained on as a
    // distorted one)
    if model == CameraModel::Equirectangular {
        let (pw, ph) = (cam.params[0], cam.params[1]);
        if (pw - width as f64).abs() > 0.5 || (ph - height as f64).abs() > 0.5 {
            return Err(DataError::invalid(
                path,
                field,
                format!(
                    "EQUIRECTANGULAR camera: its parameters {pw} and {ph} are not its image \
                     size {width}×{height} (a panorama spans its whole image, 360° by 180°)"
                ),
            ));
        }
    }
    Ok(cam)
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
        // the POINTS2D line, checked for its shape only (its points are
        // not used): a file without these lines would otherwise lose every
        // second image to them
        if let Some((ln, points)) = lines.next() {
            points2d_shape(path, ln, points)?;
        }
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

/// Checks that an `images.txt` POINTS2D line is `X Y POINT3D_ID` triples
/// (numbers, the third an integer), or empty, by the characters of its
/// words (it may hold millions of points: they are not parsed); the error
/// says that each image takes two lines when the line is not.
fn points2d_shape(path: &Path, ln: usize, line: &str) -> Result<(), DataError> {
    // (an id written as a float, `-1.0`, as some writers do, is one too)
    let is_int = |w: &str| {
        let digits = w.strip_prefix('-').unwrap_or(w);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            || w.parse::<f64>().is_ok_and(|x| x.fract() == 0.0)
    };
    let is_num = |w: &str| {
        w.bytes().any(|b| b.is_ascii_digit())
            && w.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    };
    let mut n = 0;
    for (k, w) in line.split_whitespace().enumerate() {
        n = k + 1;
        let ok = if k % 3 == 2 { is_int(w) } else { is_num(w) };
        if !ok {
            let want = if k % 3 == 2 {
                "an integer POINT3D_ID"
            } else {
                "a number"
            };
            return Err(DataError::invalid(
                path,
                format!("line {ln}"),
                format!(
                    "POINTS2D: `{w}` is not {want}; each image takes two lines, its pose and \
                     then its 2D points as X Y POINT3D_ID triples (the second may be empty): is \
                     this the next image's line, its points line missing?"
                ),
            ));
        }
    }
    if n % 3 != 0 {
        return Err(DataError::invalid(
            path,
            format!("line {ln}"),
            format!("POINTS2D: {n} values, not X Y POINT3D_ID triples"),
        ));
    }
    Ok(())
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
