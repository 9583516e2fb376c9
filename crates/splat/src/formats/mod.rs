//! Scene files other splat viewers read: the 32-byte `.splat` records of
//! antimatter15's web viewer ([`splat_file`]), Niantic's compressed
//! `.spz` ([`spz`]), SuperSplat's compressed PLY
//! ([`crate::three::compressed_ply`]) and PlayCanvas's SOG ([`sog`], read
//! only), beside the 3DGS PLY ([`crate::three::ply`]).
//!
//! [`read_scene`] opens any of them by extension; [`encode_scene`]
//! writes any of them but SOG. Every reader checks lengths before allocating and
//! reports a malformed file as a [`SceneError`] naming the file and the
//! field, never a panic. Decoded scenes obey the PLY reader's rules
//! (finite values, |log scale| ≤ [`MAX_LOG_SCALE`], non-zero quaternions).

pub mod sog;
pub mod splat_file;
pub mod spz;

use std::path::{Path, PathBuf};

use crate::three::ply::{self, MAX_LOG_SCALE};
use crate::three::Gaussians;

/// The DC spherical-harmonic basis constant: colour = 0.5 + `SH_C0` · dc.
pub const SH_C0: f32 = 0.282_094_8;

/// A malformed, unreadable or unsupported scene file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct SceneError {
    /// The file.
    pub path: PathBuf,
    /// The field (or header entry) at fault, when there is one.
    pub field: Option<String>,
    /// What is wrong (already names the field).
    pub message: String,
}

impl SceneError {
    /// An error about `field` of the file at `path`.
    pub fn new(path: &Path, field: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        SceneError {
            path: path.to_path_buf(),
            field: field.map(str::to_string),
            message: match field {
                Some(f) => format!("field `{f}`: {message}"),
                None => message,
            },
        }
    }
}

impl From<ply::PlyError> for SceneError {
    fn from(e: ply::PlyError) -> Self {
        SceneError {
            path: e.path,
            field: e.property,
            message: e.message,
        }
    }
}

/// The scene file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SceneFormat {
    /// The original 3DGS exporter's PLY (float32, SH up to degree 3).
    Ply,
    /// antimatter15's 32-byte records (no view-dependent colour).
    Splat,
    /// Niantic's `.spz`, version [`spz::WRITE_VERSION`] (gzip).
    Spz,
    /// PlayCanvas SuperSplat's compressed PLY (`.compressed.ply`: chunks
    /// of 256 Gaussians, 16 bytes each plus a byte per SH coefficient).
    CompressedPly,
    /// PlayCanvas's SOG (`.sog`: a zip of WebP images and `meta.json`;
    /// [`sog`]), or the same files unbundled in a folder, named by their
    /// `meta.json`.
    Sog,
}

impl SceneFormat {
    /// The format a file name's extension says (case-insensitive;
    /// `.compressed.ply` is [`SceneFormat::CompressedPly`], and a file
    /// named `meta.json` an unbundled [`SceneFormat::Sog`]).
    pub fn from_path(path: &Path) -> Option<SceneFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if sog::is_meta_json(path) {
            return Some(SceneFormat::Sog);
        }
        match ext.as_str() {
            "ply" if name.ends_with(".compressed.ply") => Some(SceneFormat::CompressedPly),
            "ply" => Some(SceneFormat::Ply),
            "splat" => Some(SceneFormat::Splat),
            "spz" => Some(SceneFormat::Spz),
            "sog" => Some(SceneFormat::Sog),
            _ => None,
        }
    }

    /// The usual file extension (no dot).
    pub fn extension(self) -> &'static str {
        match self {
            SceneFormat::Ply => "ply",
            SceneFormat::Splat => "splat",
            SceneFormat::Spz => "spz",
            SceneFormat::CompressedPly => "compressed.ply",
            SceneFormat::Sog => "sog",
        }
    }

    /// Whether the format is a PLY (the 3DGS layout or the compressed
    /// one), whose header can carry comments ([`with_ply_comment`]).
    pub fn is_ply(self) -> bool {
        matches!(self, SceneFormat::Ply | SceneFormat::CompressedPly)
    }
}

/// Reads a scene, choosing the format by the file's extension (an
/// unbundled SOG by its `meta.json`, the images beside it).
pub fn read_scene(path: &Path) -> Result<Gaussians<f32>, SceneError> {
    let (format, bytes) = scene_bytes(path)?;
    match bytes {
        Some(bytes) => decode_scene(&bytes, format, path),
        None => sog::read_unbundled(path),
    }
}

/// [`read_scene`] for drawing and converting: a standard 3DGS PLY's or a
/// `.splat` file's Gaussians that cannot be drawn (a value not finite, a
/// degenerate scale or rotation) are left out rather than refused
/// ([`ply::parse_ply_skipping`], [`splat_file::parse_skipping`]), with a
/// warning that says how many and why the first was; the other formats
/// (quantised, so they hold no such values) are read as [`read_scene`]
/// reads them.
pub fn read_scene_skipping(path: &Path) -> Result<(Gaussians<f32>, Option<String>), SceneError> {
    let (format, bytes) = scene_bytes(path)?;
    match bytes {
        Some(bytes) if format.is_ply() => {
            let (g, skipped) = ply::parse_ply_skipping(&bytes, path)?;
            Ok((g, skipped.warning()))
        }
        Some(bytes) if format == SceneFormat::Splat => {
            let (g, skipped) = splat_file::parse_skipping(&bytes, path)?;
            Ok((g, skipped.warning()))
        }
        Some(bytes) => Ok((decode_scene(&bytes, format, path)?, None)),
        None => Ok((sog::read_unbundled(path)?, None)),
    }
}

/// A scene file's format and bytes (`None` for an unbundled SOG's
/// `meta.json`, read with the images beside it).
fn scene_bytes(path: &Path) -> Result<(SceneFormat, Option<Vec<u8>>), SceneError> {
    let format = SceneFormat::from_path(path).ok_or_else(|| {
        SceneError::new(
            path,
            None,
            "unknown scene format: want a .ply (or .compressed.ply), .splat, .spz or .sog file \
             (or an unbundled SOG's meta.json)",
        )
    })?;
    if sog::is_meta_json(path) {
        return Ok((format, None));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| SceneError::new(path, None, format!("cannot read: {e}")))?;
    Ok((format, Some(bytes)))
}

/// Decodes the bytes of a scene file; `path` only names the file in errors.
pub fn decode_scene(
    bytes: &[u8],
    format: SceneFormat,
    path: &Path,
) -> Result<Gaussians<f32>, SceneError> {
    match format {
        // the PLY reader tells the two PLY layouts apart by their headers
        SceneFormat::Ply | SceneFormat::CompressedPly => Ok(ply::parse_ply(bytes, path)?),
        SceneFormat::Splat => splat_file::parse(bytes, path),
        SceneFormat::Spz => spz::parse(bytes, path),
        SceneFormat::Sog => sog::parse(bytes, path),
    }
}

/// Whether a scene file declares its splats antialiased (Mip-Splatting's
/// screen-space filter with opacity compensation: gsplat's and this
/// project's `antialiased`): `Some(true)` or `Some(false)` when it says,
/// `None` when it is silent. A PLY or compressed PLY says it in a header
/// comment, as Brush writes it (`SplatRenderMode: mip` or `default`) or
/// Postshot (`antialiased 1` or `0`), the last such comment deciding (as
/// Brush and splat-transform read them); a `.spz` in its header's flag
/// 0x1; a `.sog` in `meta.json`'s `model`; a `.splat` cannot say. Unreadable bytes are silent.
///
/// ```
/// use splat::formats::{declared_antialiased, encode_scene_as, SceneFormat};
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 3, ..Default::default() });
/// let ply = encode_scene_as(&g, SceneFormat::Ply, true).unwrap();
/// assert_eq!(declared_antialiased(&ply, SceneFormat::Ply), Some(true));
/// let header = b"ply\nformat binary_little_endian 1.0\ncomment antialiased 0\nend_header\n";
/// assert_eq!(declared_antialiased(header, SceneFormat::Ply), Some(false));
/// ```
pub fn declared_antialiased(bytes: &[u8], format: SceneFormat) -> Option<bool> {
    match format {
        SceneFormat::Ply | SceneFormat::CompressedPly => {
            let mut said = None;
            for comment in ply_comments(bytes)? {
                let lower = comment.to_ascii_lowercase();
                if let Some(mode) = lower.strip_prefix("splatrendermode:") {
                    match mode.trim() {
                        "mip" => said = Some(true),
                        "default" => said = Some(false),
                        _ => {}
                    }
                } else if let Some(v) = lower.strip_prefix("antialiased ") {
                    match v.trim() {
                        "1" => said = Some(true),
                        "0" => said = Some(false),
                        _ => {}
                    }
                }
            }
            said
        }
        SceneFormat::Spz => spz::flags(bytes).map(|f| f & spz::FLAG_ANTIALIASED != 0),
        SceneFormat::Sog => sog::declared_antialiased(std::io::Cursor::new(bytes)),
        SceneFormat::Splat => None,
    }
}

/// [`declared_antialiased`] of the file at `path` (its format by its
/// name), reading no more of it than a header needs; `None` when the file
/// cannot be read or says nothing.
pub fn declared_antialiased_in(path: &Path) -> Option<bool> {
    let format = SceneFormat::from_path(path)?;
    if sog::is_meta_json(path) {
        return sog::declared_antialiased_unbundled(path);
    }
    if format == SceneFormat::Sog {
        return sog::declared_antialiased(std::fs::File::open(path).ok()?);
    }
    declared_antialiased(&read_head(path)?, format)
}

/// The first [`ply::MAX_HEADER`] bytes of the file at `path` (all of a
/// smaller one); `None` when it cannot be read.
fn read_head(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(ply::MAX_HEADER as u64)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// The comments of a PLY header (the text after `comment `, trimmed), in
/// order; `None` when `bytes` do not hold a whole PLY header.
///
/// ```
/// let header = b"ply\nformat binary_little_endian 1.0\ncomment made by hand\nend_header\n";
/// assert_eq!(splat::formats::ply_comments(header), Some(vec!["made by hand"]));
/// ```
pub fn ply_comments(bytes: &[u8]) -> Option<Vec<&str>> {
    if !bytes.starts_with(b"ply\n") && !bytes.starts_with(b"ply\r\n") {
        return None;
    }
    let end = ply::header_end(bytes)?;
    let header = std::str::from_utf8(&bytes[..end]).ok()?;
    Some(
        header
            .lines()
            .filter_map(|l| l.trim().strip_prefix("comment "))
            .map(str::trim)
            .collect(),
    )
}

/// [`ply_comments`] of the PLY (or compressed PLY) file at `path`, reading
/// no more of it than its header; `None` when it cannot be read or is no
/// PLY.
pub fn ply_comments_in(path: &Path) -> Option<Vec<String>> {
    let head = read_head(path)?;
    Some(ply_comments(&head)?.into_iter().map(String::from).collect())
}

/// The bytes of a PLY (or compressed PLY) file with the header line
/// `comment TEXT` added as its last line before `end_header`, so that a
/// file carries what its format has no field for (readers skip comments;
/// at the end, the lines that loaders reading the header by position
/// expect, `format` then `element vertex N`, keep their places). An error
/// when `text` holds a line break, or `bytes` have no PLY header.
///
/// ```
/// use splat::formats::{encode_scene, ply_comments, with_ply_comment, SceneFormat};
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 2, ..Default::default() });
/// let ply = with_ply_comment(encode_scene(&g, SceneFormat::Ply).unwrap(), "up 0 0 1").unwrap();
/// assert_eq!(ply_comments(&ply), Some(vec!["up 0 0 1"]));
/// ```
pub fn with_ply_comment(bytes: Vec<u8>, text: &str) -> Result<Vec<u8>, String> {
    if text.contains(['\n', '\r']) {
        return Err("a PLY comment must be one line".into());
    }
    let at = ply_comments(&bytes)
        .and(ply::header_end(&bytes))
        .ok_or("not a PLY file (no header)")?;
    let line = format!("comment {text}\n");
    let mut out = Vec::with_capacity(bytes.len() + line.len());
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(&bytes[at..]);
    Ok(out)
}

/// Encodes a scene in a format.
///
/// ```
/// use splat::formats::{decode_scene, encode_scene, SceneFormat};
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 4, ..Default::default() });
/// let bytes = encode_scene(&g, SceneFormat::Spz).unwrap();
/// let back = decode_scene(&bytes, SceneFormat::Spz, "s.spz".as_ref()).unwrap();
/// assert_eq!(back.len(), 4);
/// ```
pub fn encode_scene(g: &Gaussians<f32>, format: SceneFormat) -> Result<Vec<u8>, String> {
    encode_scene_as(g, format, false)
}

/// [`encode_scene`], declaring the splats antialiased when `antialiased`
/// (in the ways [`declared_antialiased`] reads; a `.splat` cannot say it,
/// and a scene that is not antialiased is written as [`encode_scene`]
/// writes it, declaring nothing but `.spz`'s flag).
pub fn encode_scene_as(
    g: &Gaussians<f32>,
    format: SceneFormat,
    antialiased: bool,
) -> Result<Vec<u8>, String> {
    g.check_shapes()?;
    Ok(match format {
        SceneFormat::Ply => ply::to_ply_bytes_as(g, antialiased),
        SceneFormat::Splat => splat_file::to_bytes(g),
        SceneFormat::Spz => spz::to_bytes_as(g, antialiased)?,
        SceneFormat::CompressedPly => crate::three::compressed_ply::to_bytes_as(g, antialiased),
        SceneFormat::Sog => sog::to_bytes_as(g, antialiased)?,
    })
}

/// Checks one decoded Gaussian against the PLY reader's rules; `i` and the
/// field names go into the error.
pub(crate) fn check_gaussian(
    path: &Path,
    i: usize,
    mean: [f32; 3],
    log_scale: [f32; 3],
    quat: [f32; 4],
) -> Result<(), SceneError> {
    if let Some(c) = (0..3).find(|&c| !mean[c].is_finite()) {
        return Err(SceneError::new(
            path,
            Some("position"),
            format!("record {i}: coordinate {c} is {} (not finite)", mean[c]),
        ));
    }
    if let Some(c) =
        (0..3).find(|&c| !log_scale[c].is_finite() || log_scale[c].abs() as f64 > MAX_LOG_SCALE)
    {
        return Err(SceneError::new(
            path,
            Some("scale"),
            format!(
                "record {i}: log scale {} is degenerate (want |log scale| <= {MAX_LOG_SCALE})",
                log_scale[c]
            ),
        ));
    }
    let qn = quat.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    if !(ply::MIN_QUAT_NORM..=ply::MAX_QUAT_NORM).contains(&qn) {
        return Err(SceneError::new(
            path,
            Some("rotation"),
            format!(
                "record {i}: the rotation quaternion has norm {qn:e} (zero cannot be normalised)"
            ),
        ));
    }
    Ok(())
}

/// `logit(p)` with `p` kept inside `[eps, 1 − eps]` so that 8-bit opacities
/// 0 and 255 decode to finite logits (±`ln((1 − eps)/eps)`).
pub(crate) fn logit_clamped(p: f32, eps: f32) -> f32 {
    let p = p.clamp(eps, 1.0 - eps);
    (p / (1.0 - p)).ln()
}

/// The quaternion scaled to unit length (a zero one stays finite).
pub(crate) fn unit_quat(q: [f32; 4]) -> [f32; 4] {
    let n = q.iter().map(|v| v * v).sum::<f32>().sqrt();
    q.map(|v| v / n.max(f32::MIN_POSITIVE))
}

/// Logistic sigmoid.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Rounds and clamps to a byte.
pub(crate) fn to_u8(x: f32) -> u8 {
    // NaN becomes 0 through the saturating cast
    x.round().clamp(0.0, 255.0) as u8
}
