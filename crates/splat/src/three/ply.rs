//! PLY files in the layout of the original 3DGS exporter, so scenes move
//! between chainrule and the common splat viewers and trainers.
//!
//! `binary_little_endian 1.0`, one `vertex` element with float properties
//! `x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 … f_rest_44 opacity scale_0
//! scale_1 scale_2 rot_0 rot_1 rot_2 rot_3`: opacity as a logit, scales as
//! natural logarithms, rotation as a w-x-y-z quaternion (not necessarily
//! normalised), normals zero, and `f_rest` grouped by colour channel (the
//! red channel's bands 1–3 first, then green, then blue). A scene of SH
//! degree d has `3 ((d+1)² − 1)` `f_rest` properties (0, 9, 24 or 45).
//!
//! Reading also takes the compressed PLY of PlayCanvas's SuperSplat and
//! splat-transform (`chunk`, packed `vertex` and `sh` elements), decoded
//! as their own reader decodes it: see [`super::compressed_ply`].
//!
//! Reading accepts any property order, extra properties, other scalar types
//! (`double`, integers), other elements, and fewer SH bands; it checks the
//! declared counts against the file's length before allocating, and reports
//! every problem as a [`PlyError`] naming the file and the property.
//! Values must be finite in the target precision, and degenerate Gaussians
//! are rejected, never repaired: a log scale beyond ±[`MAX_LOG_SCALE`] or a
//! quaternion whose norm lies outside [`MIN_QUAT_NORM`]..=[`MAX_QUAT_NORM`].

use std::path::{Path, PathBuf};

use chainrule::Scalar;

use super::scene::{sh_coeffs, Gaussians};

/// A malformed or unreadable PLY file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct PlyError {
    /// The file.
    pub path: PathBuf,
    /// The property (or header element) at fault, when there is one.
    pub property: Option<String>,
    /// What is wrong (already names the property).
    pub message: String,
}

impl PlyError {
    pub(super) fn new(path: &Path, property: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        PlyError {
            path: path.to_path_buf(),
            property: property.map(str::to_string),
            message: match property {
                Some(p) => format!("property `{p}`: {message}"),
                None => message,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Ty {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "char" | "int8" => Ty::I8,
            "uchar" | "uint8" => Ty::U8,
            "short" | "int16" => Ty::I16,
            "ushort" | "uint16" => Ty::U16,
            "int" | "int32" => Ty::I32,
            "uint" | "uint32" => Ty::U32,
            "float" | "float32" => Ty::F32,
            "double" | "float64" => Ty::F64,
            _ => return None,
        })
    }
    pub(super) fn size(self) -> usize {
        match self {
            Ty::I8 | Ty::U8 => 1,
            Ty::I16 | Ty::U16 => 2,
            Ty::I32 | Ty::U32 | Ty::F32 => 4,
            Ty::F64 => 8,
        }
    }
    pub(super) fn read(self, b: &[u8]) -> f64 {
        match self {
            Ty::I8 => b[0] as i8 as f64,
            Ty::U8 => b[0] as f64,
            Ty::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            Ty::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            Ty::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Ty::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Ty::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Ty::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }
}

#[derive(Debug)]
pub(super) struct Element {
    pub(super) name: String,
    pub(super) count: usize,
    /// (name, type, byte offset in the record); None for a list property.
    pub(super) props: Vec<(String, Option<Ty>, usize)>,
    pub(super) stride: usize,
}

/// Vertex `i`'s value `x` of property `name` in `T`, or the error when
/// it is not finite there (checked after the conversion: a finite double
/// can overflow f32).
pub(super) fn finite_in<T: Scalar>(
    x: f64,
    i: usize,
    name: &str,
    path: &Path,
) -> Result<T, PlyError> {
    let y = T::from_f64(x);
    if y.to_f64().is_finite() {
        Ok(y)
    } else {
        Err(PlyError::new(
            path,
            Some(name),
            format!("vertex {i}: value {x} is not finite"),
        ))
    }
}

/// The SH degree of `n_rest` `f_rest` properties (0, 9, 24 or 45), or
/// the error naming the first property past them.
pub(super) fn sh_degree_of(n_rest: usize, path: &Path) -> Result<usize, PlyError> {
    match n_rest {
        0 => Ok(0),
        9 => Ok(1),
        24 => Ok(2),
        45 => Ok(3),
        _ => Err(PlyError::new(
            path,
            Some(&format!("f_rest_{n_rest}")),
            format!("{n_rest} f_rest properties; want 0, 9, 24 or 45 (SH degree 0 to 3)"),
        )),
    }
}

impl Element {
    /// The type and byte offset in the record of scalar property `name`
    /// (`None` when it is missing or a list).
    pub(super) fn scalar(&self, name: &str) -> Option<(Ty, usize)> {
        self.props
            .iter()
            .find(|p| p.0 == name)
            .and_then(|p| p.1.map(|t| (t, p.2)))
    }

    /// Where this element's records end when they start at `offset`, or
    /// the error (naming the element) when that is past `len`, the file's
    /// length, or overflows.
    pub(super) fn end(&self, offset: usize, len: usize, path: &Path) -> Result<usize, PlyError> {
        self.count
            .checked_mul(self.stride)
            .and_then(|b| b.checked_add(offset))
            .filter(|&o| o <= len)
            .ok_or_else(|| {
                PlyError::new(
                    path,
                    Some(&self.name),
                    format!(
                        "element declares {} records of {} bytes, more than the file holds",
                        self.count, self.stride
                    ),
                )
            })
    }
}

/// Largest `|log scale|` a PLY may hold: scales between `e^-30` and
/// `e^30`, whose squares stay finite and nonzero in f32. Beyond it a
/// Gaussian is degenerate (its covariance overflows or vanishes) and the
/// file is rejected, naming the vertex and property.
pub const MAX_LOG_SCALE: f64 = 30.0;
/// Smallest norm of a rotation quaternion a PLY may hold (zero, or so
/// small that normalising it underflows, is rejected).
pub const MIN_QUAT_NORM: f64 = 1e-6;
/// Largest norm of a rotation quaternion a PLY may hold (its square must
/// stay finite in f32).
pub const MAX_QUAT_NORM: f64 = 1e6;

/// Reads a 3DGS PLY file.
pub fn read_ply<T: Scalar>(path: &Path) -> Result<Gaussians<T>, PlyError> {
    let bytes =
        std::fs::read(path).map_err(|e| PlyError::new(path, None, format!("cannot read: {e}")))?;
    parse_ply(&bytes, path)
}

/// The most bytes a PLY header may take (1 MiB).
pub const MAX_HEADER: usize = 1 << 20;

/// Where a PLY header's `end_header` line starts, if it ends within
/// [`MAX_HEADER`] bytes.
pub fn header_end(bytes: &[u8]) -> Option<usize> {
    header_bounds(bytes).map(|(end, _)| end)
}

/// Where a PLY header's `end_header` line starts and where the data after
/// it start: the first line that is exactly `end_header`, ended by `\n`
/// or `\r\n` (a header written with Windows line ends), within
/// [`MAX_HEADER`] bytes.
fn header_bounds(bytes: &[u8]) -> Option<(usize, usize)> {
    const KEY: &[u8] = b"end_header";
    let head = &bytes[..bytes.len().min(MAX_HEADER)];
    let mut from = 0;
    while let Some(i) = find(&head[from..], b"\nend_header") {
        let start = from + i + 1;
        let rest = &head[start + KEY.len()..];
        if rest.starts_with(b"\n") {
            return Some((start, start + KEY.len() + 1));
        }
        if rest.starts_with(b"\r\n") {
            return Some((start, start + KEY.len() + 2));
        }
        from = start;
    }
    None
}

/// The header comment that declares a scene antialiased, as Brush writes
/// it (see [`crate::formats::declared_antialiased`]).
pub const ANTIALIASED_COMMENT: &str = "comment SplatRenderMode: mip\n";

/// Parses the bytes of a 3DGS PLY file; `path` only names the file in
/// errors.
///
/// ```
/// use splat::three::ply::{parse_ply, to_ply_bytes};
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 3, ..Default::default() });
/// let back = parse_ply::<f32>(&to_ply_bytes(&g), "scene.ply".as_ref()).unwrap();
/// assert_eq!(back, g);
/// ```
pub fn parse_ply<T: Scalar>(bytes: &[u8], path: &Path) -> Result<Gaussians<T>, PlyError> {
    parse_ply_with(bytes, path, false).map(|(g, _)| g)
}

/// The Gaussians of a 3DGS PLY that cannot be drawn and were left out by
/// [`parse_ply_skipping`].
#[derive(Debug, Default)]
pub struct Skipped {
    /// How many were left out.
    pub count: usize,
    /// Of how many records in the file.
    pub of: usize,
    /// Why the first was (its vertex and property named).
    pub first: Option<PlyError>,
}

impl Skipped {
    /// A warning that says what was left out, `None` when nothing was.
    pub fn warning(&self) -> Option<String> {
        let first = self.first.as_ref()?;
        Some(format!(
            "{}: left out {} of {} Gaussians that cannot be drawn (a value not finite, a \
             degenerate scale or rotation); the first: {}",
            first.path.display(),
            self.count,
            self.of,
            first.message
        ))
    }
}

/// [`parse_ply`] that leaves out, rather than refuses, a standard 3DGS
/// PLY's Gaussians with a value that is not finite or a degenerate scale
/// or rotation (a diverged training run writes a few), and says how many
/// it left out. A file whose every Gaussian is such is still an error, as
/// is anything wrong with the file's structure. A compressed PLY is read
/// as [`parse_ply`] reads it (its quantised values cannot be NaN).
///
/// ```
/// use splat::three::ply::{parse_ply, parse_ply_skipping, to_ply_bytes};
/// use splat::three::scene::{random_scene, RandomScene};
/// let mut g = random_scene::<f32>(&RandomScene { n: 3, ..Default::default() });
/// g.means[1][0] = f32::NAN;
/// let bytes = to_ply_bytes(&g);
/// assert!(parse_ply::<f32>(&bytes, "s.ply".as_ref()).is_err());
/// let (kept, skipped) = parse_ply_skipping::<f32>(&bytes, "s.ply".as_ref()).unwrap();
/// assert_eq!((kept.len(), skipped.count, skipped.of), (2, 1, 3));
/// ```
pub fn parse_ply_skipping<T: Scalar>(
    bytes: &[u8],
    path: &Path,
) -> Result<(Gaussians<T>, Skipped), PlyError> {
    parse_ply_with(bytes, path, true)
}

fn parse_ply_with<T: Scalar>(
    bytes: &[u8],
    path: &Path,
    skip: bool,
) -> Result<(Gaussians<T>, Skipped), PlyError> {
    let (elements, data_start) = parse_header(bytes, path)?;
    if super::compressed_ply::is_compressed(&elements) {
        let g = super::compressed_ply::decode(bytes, path, &elements, data_start)?;
        return Ok((g, Skipped::default()));
    }
    let err = |prop: Option<&str>, msg: String| PlyError::new(path, prop, msg);
    let (v, offset) = vertex_records(bytes, path, &elements, data_start)?;
    let prop = |name: &str| v.scalar(name);
    let required = |name: &str| {
        prop(name).ok_or_else(|| err(Some(name), "missing from the `vertex` element".into()))
    };
    // at most 46 looked up, however long the header (a longer run is
    // refused below as a wrong count)
    let n_rest = (0..46)
        .take_while(|i| prop(&format!("f_rest_{i}")).is_some())
        .count();
    let has_more = v.props.iter().any(|p| {
        p.0.starts_with("f_rest_") && p.0[7..].parse::<usize>().is_ok_and(|i| i >= n_rest)
    });
    let degree = sh_degree_of(n_rest, path)?;
    if has_more {
        return Err(err(
            Some(&format!("f_rest_{n_rest}")),
            "missing while higher f_rest properties exist".into(),
        ));
    }
    let names_xyz = ["x", "y", "z"];
    let names_dc = ["f_dc_0", "f_dc_1", "f_dc_2"];
    let names_s = ["scale_0", "scale_1", "scale_2"];
    let names_r = ["rot_0", "rot_1", "rot_2", "rot_3"];
    let p_xyz = names_xyz.map(required);
    let p_dc = names_dc.map(required);
    let p_s = names_s.map(required);
    let p_r = names_r.map(required);
    let p_o = required("opacity")?;
    let (p_xyz, p_dc, p_s, p_r) = (
        collect(p_xyz)?,
        collect(p_dc)?,
        collect(p_s)?,
        collect(p_r)?,
    );
    let rest_names: Vec<String> = (0..n_rest).map(|i| format!("f_rest_{i}")).collect();
    let p_rest: Vec<(Ty, usize)> = rest_names
        .iter()
        .map(|n| prop(n).expect("counted above"))
        .collect();

    let n = v.count;
    let k = sh_coeffs(degree);
    let mut g = Gaussians::<T>::with_capacity(degree, n);
    let mut skipped = Skipped {
        of: n,
        ..Skipped::default()
    };
    let mut sh = Vec::with_capacity(3 * k);
    for i in 0..n {
        let rec = &bytes[offset + i * v.stride..offset + (i + 1) * v.stride];
        let get = |(t, o): (Ty, usize), name: &str| -> Result<T, PlyError> {
            finite_in(t.read(&rec[o..o + t.size()]), i, name, path)
        };
        sh.clear();
        let record = (|| {
            let mut m = [T::zero(); 3];
            for c in 0..3 {
                m[c] = get(p_xyz[c], names_xyz[c])?;
            }
            let mut s = [T::zero(); 3];
            for c in 0..3 {
                s[c] = get(p_s[c], names_s[c])?;
            }
            let mut q = [T::zero(); 4];
            for c in 0..4 {
                q[c] = get(p_r[c], names_r[c])?;
            }
            let qn = q.iter().map(|v| v.to_f64().powi(2)).sum::<f64>().sqrt();
            if !(MIN_QUAT_NORM..=MAX_QUAT_NORM).contains(&qn) {
                return Err(err(
                    Some("rot_0"),
                    format!(
                        "vertex {i}: the rotation quaternion has norm {qn:e}; want {MIN_QUAT_NORM:e} to {MAX_QUAT_NORM:e} (zero cannot be normalised)"
                    ),
                ));
            }
            if let Some(c) = (0..3).find(|&c| s[c].to_f64().abs() > MAX_LOG_SCALE) {
                return Err(err(
                    Some(names_s[c]),
                    format!(
                        "vertex {i}: log scale {} is degenerate (want |log scale| <= {MAX_LOG_SCALE}: the covariance would overflow or vanish)",
                        s[c].to_f64()
                    ),
                ));
            }
            let o = get(p_o, "opacity")?;
            for c in 0..3 {
                sh.push(get(p_dc[c], names_dc[c])?);
            }
            for kk in 1..k {
                for c in 0..3 {
                    let j = c * (k - 1) + kk - 1;
                    sh.push(get(p_rest[j], &rest_names[j])?);
                }
            }
            Ok((m, s, q, o))
        })();
        match record {
            Ok((m, s, q, o)) => {
                g.means.push(m);
                g.log_scales.push(s);
                g.quats.push(q);
                g.opacity_logits.push(o);
                g.sh.extend_from_slice(&sh);
            }
            Err(e) if skip => {
                skipped.count += 1;
                skipped.first.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    if n > 0 && skipped.count == n {
        return Err(skipped.first.expect("one was skipped"));
    }
    Ok((g, skipped))
}

/// A PLY header's elements and where its data start, or the error naming
/// the line or element at fault.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Vec<Element>, usize), PlyError> {
    parse_header_with(bytes, path, false).map(|(e, d, _)| (e, d))
}

/// [`parse_header`], also accepting `format ascii 1.0` when `ascii_ok`;
/// the third value says whether the data are ASCII.
fn parse_header_with(
    bytes: &[u8],
    path: &Path,
    ascii_ok: bool,
) -> Result<(Vec<Element>, usize, bool), PlyError> {
    let err = |prop: Option<&str>, msg: String| PlyError::new(path, prop, msg);
    let mut ascii = false;
    if !bytes.starts_with(b"ply\n") && !bytes.starts_with(b"ply\r\n") {
        return Err(err(None, "not a PLY file (no `ply` magic line)".into()));
    }
    let (end, data_start) = header_bounds(bytes)
        .ok_or_else(|| err(None, "no `end_header` line in the first MiB".into()))?;
    let header = std::str::from_utf8(&bytes[..end])
        .map_err(|_| err(None, "the header is not UTF-8 text".into()))?;
    let mut format_ok = false;
    let mut elements: Vec<Element> = Vec::new();
    for (ln, raw) in header.lines().enumerate().skip(1) {
        let line = raw.trim_end_matches('\r').trim();
        let mut w = line.split_whitespace();
        match w.next() {
            None | Some("comment") | Some("obj_info") => {}
            Some("format") => {
                let f = w.next().unwrap_or("");
                ascii = ascii_ok && f == "ascii";
                if f != "binary_little_endian" && !ascii {
                    let supported = if ascii_ok {
                        "binary_little_endian and ascii are"
                    } else {
                        "only binary_little_endian, as the 3DGS exporter writes"
                    };
                    return Err(err(
                        Some("format"),
                        format!("format `{f}` is not supported ({supported})"),
                    ));
                }
                format_ok = true;
            }
            Some("element") => {
                let name = w.next().unwrap_or("").to_string();
                let count = w
                    .next()
                    .and_then(|c| c.parse::<usize>().ok())
                    .ok_or_else(|| {
                        err(
                            Some(&name),
                            format!("header line {}: bad element count", ln + 1),
                        )
                    })?;
                elements.push(Element {
                    name,
                    count,
                    props: Vec::new(),
                    stride: 0,
                });
            }
            Some("property") => {
                let el = elements.last_mut().ok_or_else(|| {
                    err(
                        None,
                        format!("header line {}: property before any element", ln + 1),
                    )
                })?;
                let ty = w.next().unwrap_or("");
                if ty == "list" {
                    let name = w.nth(2).unwrap_or("").to_string();
                    el.props.push((name, None, 0));
                    continue;
                }
                let name = w.next().unwrap_or("").to_string();
                let t = Ty::parse(ty)
                    .ok_or_else(|| err(Some(&name), format!("unknown property type `{ty}`")))?;
                el.props.push((name, Some(t), el.stride));
                el.stride += t.size();
            }
            Some(other) => {
                return Err(err(
                    None,
                    format!("header line {}: unknown keyword `{other}`", ln + 1),
                ))
            }
        }
    }
    if !format_ok {
        return Err(err(Some("format"), "missing `format` line".into()));
    }
    Ok((elements, data_start, ascii))
}

/// The `vertex` element of a parsed header and the byte offset of its
/// records (the elements before it skipped), checked against the file's
/// length.
fn vertex_records<'e>(
    bytes: &[u8],
    path: &Path,
    elements: &'e [Element],
    data_start: usize,
) -> Result<(&'e Element, usize), PlyError> {
    let err = |prop: Option<&str>, msg: String| PlyError::new(path, prop, msg);
    // skip the elements before `vertex` (they must have fixed-size records)
    let mut offset = data_start;
    let mut vertex = None;
    for el in elements {
        if el.name == "vertex" {
            vertex = Some(el);
            break;
        }
        if let Some((p, _, _)) = el.props.iter().find(|p| p.1.is_none()) {
            return Err(err(
                Some(p),
                format!(
                    "list property in element `{}` before `vertex` is not supported",
                    el.name
                ),
            ));
        }
        offset = el.end(offset, bytes.len(), path)?;
    }
    let v = vertex.ok_or_else(|| err(Some("vertex"), "no `vertex` element".into()))?;
    if let Some((p, _, _)) = v.props.iter().find(|p| p.1.is_none()) {
        return Err(err(
            Some(p),
            "list properties in `vertex` are not supported".into(),
        ));
    }
    let need = v.count.saturating_mul(v.stride);
    let have = bytes.len() - offset;
    if need > have {
        return Err(err(
            Some("vertex"),
            format!(
                "header declares {} vertices of {} bytes ({} bytes) but the file holds {} bytes of data",
                v.count, v.stride, need, have
            ),
        ));
    }
    Ok((v, offset))
}

/// Reads the positions (`x`, `y`, `z`) of a point cloud's PLY file, such
/// as the SfM points the original 3DGS copies into its model folder as
/// `input.ply`; the vertex element's other scalar properties are not read.
/// The file must be one [`read_ply`]'s header rules accept
/// (`binary_little_endian`, no list property in or before `vertex`). A
/// compressed 3DGS scene is decoded whole (and checked as [`read_ply`]
/// checks it) for its Gaussians' means.
pub fn read_points(path: &Path) -> Result<Vec<[f64; 3]>, PlyError> {
    let bytes =
        std::fs::read(path).map_err(|e| PlyError::new(path, None, format!("cannot read: {e}")))?;
    parse_points(&bytes, path)
}

/// [`read_points`] of a file's bytes; `path` only names the file in
/// errors.
///
/// ```
/// use splat::three::ply::{parse_points, to_ply_bytes};
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 3, ..Default::default() });
/// let xyz = parse_points(&to_ply_bytes(&g), "scene.ply".as_ref()).unwrap();
/// assert_eq!(xyz[2], g.means[2].map(f64::from));
/// ```
pub fn parse_points(bytes: &[u8], path: &Path) -> Result<Vec<[f64; 3]>, PlyError> {
    let (elements, data_start) = parse_header(bytes, path)?;
    if super::compressed_ply::is_compressed(&elements) {
        let g = super::compressed_ply::decode::<f64>(bytes, path, &elements, data_start)?;
        return Ok(g.means);
    }
    let (v, offset) = vertex_records(bytes, path, &elements, data_start)?;
    let names = ["x", "y", "z"];
    let mut cols = [(Ty::F32, 0); 3];
    for (c, name) in cols.iter_mut().zip(names) {
        *c = v
            .scalar(name)
            .ok_or_else(|| PlyError::new(path, Some(name), "missing from the `vertex` element"))?;
    }
    (0..v.count)
        .map(|i| {
            let rec = &bytes[offset + i * v.stride..offset + (i + 1) * v.stride];
            let mut p = [0.0; 3];
            for ((x, (t, o)), name) in p.iter_mut().zip(cols).zip(names) {
                *x = finite_in::<f64>(t.read(&rec[o..o + t.size()]), i, name, path)?;
            }
            Ok(p)
        })
        .collect()
}

/// A point cloud's positions and, when its file has them, their colours.
pub type PointCloud = (Vec<[f64; 3]>, Option<Vec<[u8; 3]>>);

/// The points of a point cloud's PLY file with their colours, as the
/// SfM point clouds other tools write beside their cameras
/// (nerfstudio's `sparse_pc.ply`, written as ASCII): `x`, `y`, `z` and,
/// when the vertex element has all three, `red`, `green`, `blue` (an
/// integer type read as 0–255, a floating one as 0–1). Binary
/// (`binary_little_endian`) and ASCII files are read; the vertex
/// element's other properties are not.
///
/// ```
/// use splat::three::ply::parse_point_cloud;
/// let text = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n\
///             property float y\nproperty float z\nproperty uint8 red\n\
///             property uint8 green\nproperty uint8 blue\nend_header\n\
///             0.5 1 -2 255 0 10\n3 4 5 1 2 3\n";
/// let (xyz, rgb) = parse_point_cloud(text.as_bytes(), "p.ply".as_ref()).unwrap();
/// assert_eq!(xyz, vec![[0.5, 1.0, -2.0], [3.0, 4.0, 5.0]]);
/// assert_eq!(rgb, Some(vec![[255, 0, 10], [1, 2, 3]]));
/// ```
pub fn parse_point_cloud(bytes: &[u8], path: &Path) -> Result<PointCloud, PlyError> {
    let (elements, data_start, ascii) = parse_header_with(bytes, path, true)?;
    let err = |prop: Option<&str>, msg: String| PlyError::new(path, prop, msg);
    let vi = elements
        .iter()
        .position(|e| e.name == "vertex")
        .ok_or_else(|| err(Some("vertex"), "no `vertex` element".into()))?;
    let v = &elements[vi];
    let index = |name: &str| v.props.iter().position(|p| p.0 == name && p.1.is_some());
    let mut xyz_at = [0; 3];
    for (at, n) in xyz_at.iter_mut().zip(["x", "y", "z"]) {
        *at = index(n).ok_or_else(|| err(Some(n), "missing from the `vertex` element".into()))?;
    }
    let rgb_at = match ["red", "green", "blue"].map(index) {
        [Some(r), Some(g), Some(b)] => Some([r, g, b]),
        _ => None,
    };
    let colour = |t: Ty, x: f64| -> u8 {
        let x = if matches!(t, Ty::F32 | Ty::F64) {
            x * 255.0
        } else {
            x
        };
        x.round().clamp(0.0, 255.0) as u8
    };
    // (no more than the file's bytes could hold: a header's count is not
    // trusted before the data are read)
    let cap = v.count.min(bytes.len() / v.props.len().max(1));
    let mut xyz = Vec::with_capacity(cap);
    let mut rgb = rgb_at.map(|_| Vec::with_capacity(cap));
    let mut take = |i: usize, values: &dyn Fn(usize) -> f64| -> Result<(), PlyError> {
        let mut p = [0.0; 3];
        for (c, k) in xyz_at.iter().enumerate() {
            p[c] = finite_in::<f64>(values(*k), i, &v.props[*k].0, path)?;
        }
        xyz.push(p);
        if let (Some(at), Some(out)) = (rgb_at, rgb.as_mut()) {
            out.push(at.map(|k| colour(v.props[k].1.expect("a scalar"), values(k))));
        }
        Ok(())
    };
    if ascii {
        if let Some(p) = v.props.iter().find(|p| p.1.is_none()) {
            return Err(err(
                Some(&p.0),
                "list properties in `vertex` are not supported".into(),
            ));
        }
        let text = std::str::from_utf8(&bytes[data_start..])
            .map_err(|_| err(None, "the ASCII data are not UTF-8 text".into()))?;
        // one line a record: the elements before `vertex` are skipped
        let skip = elements[..vi]
            .iter()
            .try_fold(0usize, |n, e| n.checked_add(e.count))
            .ok_or_else(|| {
                err(
                    None,
                    "the elements before `vertex` declare too many records".into(),
                )
            })?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty()).skip(skip);
        for i in 0..v.count {
            let line = lines.next().ok_or_else(|| {
                err(
                    Some("vertex"),
                    format!(
                        "the header declares {} vertices but the file holds {i}",
                        v.count
                    ),
                )
            })?;
            let values: Vec<f64> = line
                .split_whitespace()
                .map(|w| w.parse::<f64>())
                .collect::<Result<_, _>>()
                .ok()
                .filter(|vals: &Vec<f64>| vals.len() == v.props.len())
                .ok_or_else(|| {
                    err(
                        Some("vertex"),
                        format!(
                            "vertex {i}: want {} numbers, one a property, not `{}`",
                            v.props.len(),
                            line.trim()
                        ),
                    )
                })?;
            take(i, &|k| values[k])?;
        }
    } else {
        let (v, offset) = vertex_records(bytes, path, &elements, data_start)?;
        for i in 0..v.count {
            let rec = &bytes[offset + i * v.stride..offset + (i + 1) * v.stride];
            take(i, &|k| {
                let (_, t, o) = &v.props[k];
                let t = t.expect("a scalar");
                t.read(&rec[*o..*o + t.size()])
            })?;
        }
    }
    Ok((xyz, rgb))
}

fn collect<const N: usize>(
    a: [Result<(Ty, usize), PlyError>; N],
) -> Result<[(Ty, usize); N], PlyError> {
    let mut out = [(Ty::F32, 0); N];
    for (o, r) in out.iter_mut().zip(a) {
        *o = r?;
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The property names of the exporter's layout for an SH degree, in file
/// order.
pub fn property_names(degree: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..3 * (sh_coeffs(degree) - 1) {
        v.push(format!("f_rest_{i}"));
    }
    v.push("opacity".into());
    for s in [
        "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        v.push(s.into());
    }
    v
}

/// The scene as the bytes of a PLY file in the original exporter's layout
/// (float32 values; 62 properties at SH degree 3).
pub fn to_ply_bytes<T: Scalar>(g: &Gaussians<T>) -> Vec<u8> {
    to_ply_bytes_as(g, false)
}

/// [`to_ply_bytes`], with the header comment [`ANTIALIASED_COMMENT`] when
/// `antialiased` (and none otherwise), so that viewers and trainers that
/// read it draw the splats as they were trained.
pub fn to_ply_bytes_as<T: Scalar>(g: &Gaussians<T>, antialiased: bool) -> Vec<u8> {
    let names = property_names(g.sh_degree);
    let mut out = String::from("ply\nformat binary_little_endian 1.0\n");
    out += &format!("element vertex {}\n", g.len());
    for n in &names {
        out += &format!("property float {n}\n");
    }
    // (last: the original 3DGS viewer, SIBR, reads the vertex count from
    // the header's third line)
    if antialiased {
        out += ANTIALIASED_COMMENT;
    }
    out += "end_header\n";
    let mut bytes = out.into_bytes();
    let k = g.sh_coeffs();
    bytes.reserve(g.len() * names.len() * 4);
    let mut put = |x: T| bytes.extend_from_slice(&(x.to_f64() as f32).to_le_bytes());
    for i in 0..g.len() {
        for c in 0..3 {
            put(g.means[i][c]);
        }
        for _ in 0..3 {
            put(T::zero());
        }
        for c in 0..3 {
            put(g.sh[i * k * 3 + c]);
        }
        for c in 0..3 {
            for kk in 1..k {
                put(g.sh[(i * k + kk) * 3 + c]);
            }
        }
        put(g.opacity_logits[i]);
        for c in 0..3 {
            put(g.log_scales[i][c]);
        }
        for c in 0..4 {
            put(g.quats[i][c]);
        }
    }
    bytes
}
