//! PlayCanvas's SOG (`.sog`, "spatially ordered Gaussians"), the format
//! SuperSplat and `splat-transform` write by default to share scenes: a
//! zip of `meta.json` and lossless WebP images, one pixel per Gaussian
//! (row-major, the first `count` pixels). Read here as **version 2** (the
//! `version` key of `meta.json`); version 1, without that key, is refused
//! with a message. [`to_bytes`] writes the same version (`write.rs`).
//!
//! Version 2, field by field (the formulas of splat-transform 3.10's
//! reader, against whose decoding the tests hold this one):
//!
//! - `means`: `means_l.webp` and `means_u.webp` hold the low and high
//!   bytes of a 16-bit fraction `v` per axis (R, G, B); the coordinate is
//!   `t = min + (max − min) · v / 65535` (a zero range counts as 1),
//!   mapped back from the writer's log transform: `sign(t) (e^|t| − 1)`;
//! - `quats`: R, G, B the three smaller components `(b / 255 · 2 − 1) / √2`
//!   in w, x, y, z order, A = 252 + the index of the largest (rebuilt as
//!   the positive root of the unit norm); any other A is the identity;
//! - `scales`: R, G, B index the 256 log scales of `scales.codebook`;
//! - `sh0`: R, G, B index the DC coefficients of `sh0.codebook`; A is the
//!   opacity `a / 255`, its logit taken within [10⁻⁶, 1 − 10⁻⁶];
//! - `shN` (optional, `bands` 1–3): `shN_labels.webp` holds a 16-bit
//!   palette label per Gaussian (R low, G high); label `l` below
//!   `shN.count` takes its coefficients from `shN_centroids.webp`, row
//!   `l / 64`, columns `(l mod 64) · coeffs + j`, whose R, G, B index
//!   `shN.codebook`; a label past the palette has no higher bands;
//! - `model` (optional): `"antialiased"` declares Mip-Splatting's drawing
//!   mode ([`super::declared_antialiased`]).

mod quantize;
mod write;

pub use write::{to_bytes, to_bytes_as, to_files_as};

use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{check_gaussian, SceneError};
use crate::three::scene::sh_coeffs;
use crate::three::Gaussians;

/// The most Gaussians a SOG file may declare (2²⁸; each costs tens of
/// bytes of images and more once decoded).
const MAX_COUNT: usize = 1 << 28;

/// The largest `meta.json` read (its codebooks are a few kB).
const MAX_META: u64 = 16 << 20;

#[derive(Deserialize)]
struct Meta {
    // `version` is checked before this layout is read
    count: Option<usize>,
    means: Means,
    scales: Coded,
    quats: Files,
    sh0: Coded,
    #[serde(rename = "shN")]
    sh_n: Option<ShN>,
    /// `"antialiased"`, `"default"` or another tool's word (read as the
    /// reference reads it: anything but `"antialiased"` is the default).
    model: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Means {
    mins: [f64; 3],
    maxs: [f64; 3],
    files: Vec<String>,
}

#[derive(Deserialize)]
struct Coded {
    codebook: Vec<f32>,
    files: Vec<String>,
}

#[derive(Deserialize)]
struct Files {
    files: Vec<String>,
}

#[derive(Deserialize)]
struct ShN {
    count: usize,
    bands: usize,
    codebook: Vec<f32>,
    files: Vec<String>,
}

/// One decoded image: RGBA bytes, row-major.
struct Texture {
    rgba: Vec<u8>,
    width: usize,
    height: usize,
}

impl Texture {
    fn px(&self, i: usize) -> [u8; 4] {
        [0, 1, 2, 3].map(|c| self.rgba[4 * i + c])
    }
}

/// Where a SOG's files are: the entries of a `.sog` zip, or the files
/// beside an unbundled `meta.json` (splat-transform's output when it is
/// given a `meta.json` name: the same files, loose in one folder).
enum Source<R> {
    Zip(zip::ZipArchive<R>),
    Folder(PathBuf),
}

/// The SOG's files by name, read on demand. `path` names the `.sog` (or
/// the `meta.json`) in errors.
struct Bundle<'a, R> {
    source: Source<R>,
    path: &'a Path,
}

impl<'a, R: Read + Seek> Bundle<'a, R> {
    fn open(file: R, path: &'a Path) -> Result<Self, SceneError> {
        let zip = zip::ZipArchive::new(file).map_err(|e| {
            SceneError::new(path, None, format!("not a SOG file (a zip archive): {e}"))
        })?;
        Ok(Bundle {
            source: Source::Zip(zip),
            path,
        })
    }

    fn read(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, SceneError> {
        let path = self.path;
        let zip = match &mut self.source {
            Source::Zip(zip) => zip,
            Source::Folder(dir) => return read_loose(dir, path, name, limit),
        };
        let mut entry = zip.by_name(name).map_err(|e| {
            SceneError::new(path, Some(name), format!("missing from the archive: {e}"))
        })?;
        if entry.size() > limit {
            return Err(SceneError::new(
                path,
                Some(name),
                format!("{} bytes; at most {limit} expected", entry.size()),
            ));
        }
        let mut out = Vec::with_capacity(entry.size() as usize);
        entry
            .by_ref()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| SceneError::new(path, Some(name), format!("cannot read: {e}")))?;
        if out.len() as u64 > limit {
            return Err(SceneError::new(
                path,
                Some(name),
                format!("more than {limit} bytes"),
            ));
        }
        Ok(out)
    }

    fn meta(&mut self) -> Result<Meta, SceneError> {
        let (text, field) = match &self.source {
            // the file itself, which the path names
            Source::Folder(_) => (read_loose_file(self.path, MAX_META)?, None),
            Source::Zip(_) => (self.read("meta.json", MAX_META)?, Some("meta.json")),
        };
        let path = self.path;
        let probe: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| SceneError::new(path, field, format!("not JSON: {e}")))?;
        if probe.get("means").is_none() {
            return Err(SceneError::new(
                path,
                field,
                "not a SOG's meta.json (no `means`)",
            ));
        }
        match probe.get("version") {
            // as the reference compares (`2.0` is 2)
            Some(v) if v.as_f64() == Some(2.0) => {}
            Some(v) => {
                return Err(SceneError::new(
                    path,
                    field,
                    format!("SOG version {v} is not supported (only version 2)"),
                ))
            }
            None => {
                return Err(SceneError::new(
                    path,
                    field,
                    "SOG version 1 (no `version` key) is not supported (only version 2: \
                     `splat-transform` rewrites an old file)",
                ))
            }
        }
        serde_json::from_value(probe)
            .map_err(|e| SceneError::new(path, field, format!("not SOG's layout: {e}")))
    }

    /// The image `files[k]` of `field`, with at least `need` pixels and at
    /// most `2 · room + 65,536`: its size is read from its header before it
    /// is decoded, so that a small file cannot make the decoder allocate
    /// far beyond what the scene takes (a WebP of one colour compresses a
    /// 16k × 16k image to a few kB).
    fn texture(
        &mut self,
        field: &str,
        files: &[String],
        k: usize,
        (need, room): (usize, usize),
    ) -> Result<Texture, SceneError> {
        let path = self.path;
        let name = files.get(k).ok_or_else(|| {
            SceneError::new(
                path,
                Some(&format!("meta.json: {field}.files")),
                format!("{} file names; want at least {}", files.len(), k + 1),
            )
        })?;
        // a lossless WebP of `need` pixels is smaller than 8 bytes each
        let most = 2 * room + (1 << 16);
        let bytes = self.read(name, 64 + 8 * most as u64)?;
        let not_webp = |e: image::ImageError| {
            SceneError::new(path, Some(name), format!("not a WebP image: {e}"))
        };
        let reader =
            || image::ImageReader::with_format(Cursor::new(&bytes[..]), image::ImageFormat::WebP);
        let (w, h) = reader().into_dimensions().map_err(not_webp)?;
        let pixels = w as usize * h as usize;
        if pixels < need || pixels > most {
            return Err(SceneError::new(
                path,
                Some(name),
                format!(
                    "{w}×{h} pixels for {need} ({})",
                    if pixels < need {
                        "too small"
                    } else {
                        "far too large"
                    }
                ),
            ));
        }
        let img = reader().decode().map_err(not_webp)?.to_rgba8();
        let (width, height) = (img.width() as usize, img.height() as usize);
        Ok(Texture {
            rgba: img.into_raw(),
            width,
            height,
        })
    }
}

/// Whether `name` (from `meta.json`) names a file beside `meta.json`: one
/// plain file name, perhaps after `./` (as PlayCanvas resolves it), no
/// folders, `..` or root.
fn loose_name_ok(name: &str) -> bool {
    use std::path::Component;
    let parts: Vec<Component> = Path::new(name).components().collect();
    parts
        .iter()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
        == 1
        && parts
            .iter()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A file of an unbundled SOG: `name` (from `meta.json`) must be a file
/// name beside `meta` ([`loose_name_ok`]), in `dir`, its folder.
fn read_loose(dir: &Path, meta: &Path, name: &str, limit: u64) -> Result<Vec<u8>, SceneError> {
    if !loose_name_ok(name) {
        return Err(SceneError::new(
            meta,
            None,
            format!(
                "{name:?} is not a file name beside meta.json (an unbundled SOG's files sit \
                 in its folder)"
            ),
        ));
    }
    let file = dir.join(name);
    if !file.is_file() {
        return Err(SceneError::new(
            &file,
            None,
            format!("not there ({} names it)", meta.display()),
        ));
    }
    read_loose_file(&file, limit)
}

/// The bytes of `file`, at most `limit` of them.
fn read_loose_file(file: &Path, limit: u64) -> Result<Vec<u8>, SceneError> {
    let f = std::fs::File::open(file)
        .map_err(|e| SceneError::new(file, None, format!("cannot open: {e}")))?;
    let mut out = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SceneError::new(file, None, format!("cannot read: {e}")))?;
    if out.len() as u64 > limit {
        return Err(SceneError::new(
            file,
            None,
            format!("more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Whether a file name is an unbundled SOG's `meta.json` by splat-transform's
/// rule: a name ending in `meta.json` (`meta.json`, `scene.meta.json`; any
/// case), other than its level-of-detail index `lod-meta.json`.
pub fn is_meta_json(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|n| n.ends_with("meta.json") && !n.ends_with("lod-meta.json"))
}

/// Whether `path` is an unbundled SOG's `meta.json`: so named
/// ([`is_meta_json`]) and a JSON object with SOG's `means`, so that
/// another tool's `meta.json` (or a 2D fit so named) is not taken for one.
pub fn is_unbundled(path: &Path) -> bool {
    is_meta_json(path)
        && path.is_file()
        && read_loose_file(path, MAX_META)
            .ok()
            .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
            .is_some_and(|v| v.get("means").is_some())
}

/// Whether a `.sog` archive declares the antialiased drawing mode (its
/// `meta.json`'s `model`): `None` when it says nothing or cannot be read.
/// Reads `meta.json` only (a zip's directory is at its end, so `file` is
/// the whole archive, read by seeking).
pub fn declared_antialiased<R: Read + Seek>(file: R) -> Option<bool> {
    let meta = Bundle::open(file, Path::new("")).ok()?.meta().ok()?;
    model_antialiased(&meta)
}

/// [`declared_antialiased`] of an unbundled SOG, by its `meta.json`.
pub fn declared_antialiased_unbundled(meta: &Path) -> Option<bool> {
    let meta = Bundle::<Cursor<&[u8]>>::loose(meta).meta().ok()?;
    model_antialiased(&meta)
}

fn model_antialiased(meta: &Meta) -> Option<bool> {
    meta.model
        .as_ref()
        .map(|m| m.as_str() == Some("antialiased"))
}

impl<'a> Bundle<'a, Cursor<&'a [u8]>> {
    /// The files beside `meta`, an unbundled SOG's `meta.json`.
    fn loose(meta: &'a Path) -> Self {
        let dir = match meta.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Bundle {
            source: Source::Folder(dir),
            path: meta,
        }
    }
}

/// Parses `.sog` bytes (version 2); `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Gaussians<f32>, SceneError> {
    decode(Bundle::open(Cursor::new(bytes), path)?, bytes.len())
}

/// Reads an unbundled SOG (version 2): `meta` is its `meta.json`, and the
/// images it names sit beside it, as splat-transform writes them for a
/// `meta.json` output and PlayCanvas's engine loads them.
pub fn read_unbundled(meta: &Path) -> Result<Gaussians<f32>, SceneError> {
    let size = unbundled_size(meta)?;
    decode(
        Bundle::loose(meta),
        usize::try_from(size).unwrap_or(usize::MAX),
    )
}

/// The files of the unbundled SOG whose `meta.json` is `meta`: its own
/// name, then the images it names, each once by its plain file name
/// (`./NAME` is NAME; names that are not beside it are left out), as
/// [`read_unbundled`] reads them. An error when `meta` is not a SOG's.
pub fn unbundled_files(meta: &Path) -> Result<Vec<String>, SceneError> {
    let listed = Bundle::loose(meta).meta()?;
    let own = meta
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut names = vec![own];
    for n in listed.file_names().filter(|n| loose_name_ok(n)) {
        // `./NAME` is NAME: one file, named one way
        let plain = Path::new(n)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !names.contains(&plain) {
            names.push(plain);
        }
    }
    Ok(names)
}

/// The bytes of an unbundled SOG's files ([`unbundled_files`]) in all,
/// those that are there: what an archive of it would about weigh.
pub fn unbundled_size(meta: &Path) -> Result<u64, SceneError> {
    let dir = meta.parent().unwrap_or(Path::new("."));
    Ok(unbundled_files(meta)?
        .iter()
        .filter_map(|n| std::fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum())
}

impl Meta {
    /// Every image file it names.
    fn file_names(&self) -> impl Iterator<Item = &str> {
        let lists = [
            &self.means.files,
            &self.scales.files,
            &self.quats.files,
            &self.sh0.files,
        ];
        lists
            .into_iter()
            .chain(self.sh_n.as_ref().map(|s| &s.files))
            .flatten()
            .map(String::as_str)
    }
}

/// Decodes a SOG from its files; `size` is their bytes in all.
fn decode<R: Read + Seek>(
    mut zip: Bundle<'_, R>,
    size: usize,
) -> Result<Gaussians<f32>, SceneError> {
    let path = zip.path;
    let meta = zip.meta()?;
    let field = |name: &str| format!("meta.json: {name}");
    let bad = |name: &str, msg: String| SceneError::new(path, Some(&field(name)), msg);
    let n = meta.count.ok_or_else(|| bad("count", "missing".into()))?;
    // the images' pixels compress to a byte or more a Gaussian in
    // practice; a count a thousand times the archive's size is a lie
    let most = MAX_COUNT.min(1000usize.saturating_mul(size));
    if n > most {
        return Err(bad(
            "count",
            format!("{n} Gaussians in {size} bytes of files; at most {most}"),
        ));
    }
    // the reference reads a file whose SH bands it does not know as one
    // without SH
    let sh_n = meta.sh_n.as_ref().filter(|s| (1..=3).contains(&s.bands));
    let books = [
        ("scales.codebook", &meta.scales.codebook),
        ("sh0.codebook", &meta.sh0.codebook),
    ];
    for (name, book) in books
        .into_iter()
        .chain(sh_n.map(|s| ("shN.codebook", &s.codebook)))
    {
        if book.len() < 256 {
            return Err(bad(name, format!("{} entries; want 256", book.len())));
        }
        if let Some(j) = book.iter().position(|v| !v.is_finite()) {
            return Err(bad(name, format!("entry {j} is {} (not finite)", book[j])));
        }
    }
    if meta
        .means
        .mins
        .iter()
        .chain(&meta.means.maxs)
        .any(|v| !v.is_finite())
    {
        return Err(bad("means", "a bound is not finite".into()));
    }
    let lo = zip.texture("means", &meta.means.files, 0, (n, n))?;
    let hi = zip.texture("means", &meta.means.files, 1, (n, n))?;
    let quats = zip.texture("quats", &meta.quats.files, 0, (n, n))?;
    let scales = zip.texture("scales", &meta.scales.files, 0, (n, n))?;
    let sh0 = zip.texture("sh0", &meta.sh0.files, 0, (n, n))?;
    let (degree, rest) = match sh_n {
        None => (0, None),
        Some(s) => {
            let coeffs = sh_coeffs(s.bands) - 1;
            // the palette: 64 entries a row, `coeffs` pixels each (at most
            // 65,536 entries: labels are 16-bit)
            let entries = s.count.min(1 << 16).div_ceil(64) * 64;
            // (rows past the image's read as no higher bands, as the
            // reference reads them)
            let centroids = zip.texture("shN", &s.files, 0, (0, entries * coeffs))?;
            if centroids.width != 64 * coeffs {
                return Err(SceneError::new(
                    path,
                    s.files.first().map(String::as_str),
                    format!(
                        "{} pixels wide; want 64 × {coeffs} for {} bands",
                        centroids.width, s.bands
                    ),
                ));
            }
            let labels = zip.texture("shN", &s.files, 1, (n, n))?;
            (s.bands, Some((s, centroids, labels)))
        }
    };

    let k = sh_coeffs(degree);
    let mut g = Gaussians::with_capacity(degree, n);
    let axis = |a: usize, v: u16| {
        let (min, max) = (meta.means.mins[a], meta.means.maxs[a]);
        let range = if max - min == 0.0 { 1.0 } else { max - min };
        let t = min + range * (v as f64 / 65535.0);
        // e^|t| − 1 as the reference computes it (not exp_m1), for its bits
        let e = t.abs().exp() - 1.0;
        (if t < 0.0 { -e } else { e }) as f32
    };
    for i in 0..n {
        let (l, h) = (lo.px(i), hi.px(i));
        let mean = [0, 1, 2].map(|a| axis(a, u16::from_le_bytes([l[a], h[a]])));
        let s = scales.px(i);
        let log_scale = [0, 1, 2].map(|a| meta.scales.codebook[s[a] as usize]);
        let quat = unpack_quat(quats.px(i)).ok_or_else(|| {
            SceneError::new(
                path,
                Some(&meta.quats.files[0]),
                format!(
                    "splat {i}: alpha {} names no largest component (want 252 to 255: a \
                     quaternion image re-encoded with another alpha?)",
                    quats.px(i)[3]
                ),
            )
        })?;
        check_gaussian(path, i, mean, log_scale, quat)?;
        g.means.push(mean);
        g.log_scales.push(log_scale);
        g.quats.push(quat);
        let c = sh0.px(i);
        let a = (c[3] as f64 / 255.0).clamp(1e-6, 1.0 - 1e-6);
        g.opacity_logits.push((a / (1.0 - a)).ln() as f32);
        for ch in 0..3 {
            g.sh.push(meta.sh0.codebook[c[ch] as usize]);
        }
        if let Some((s, centroids, labels)) = &rest {
            let lab = labels.px(i);
            let label = u16::from_le_bytes([lab[0], lab[1]]) as usize;
            let (row, col) = (label / 64, (label % 64) * (k - 1));
            for j in 0..k - 1 {
                let texel = (row < centroids.height && label < s.count)
                    .then(|| centroids.px(row * centroids.width + col + j));
                for ch in 0..3 {
                    g.sh.push(texel.map_or(0.0, |t| s.codebook[t[ch] as usize]));
                }
            }
        }
    }
    Ok(g)
}

/// A quaternion (w, x, y, z) from its packed pixel; `None` when its alpha
/// is not 252 + the index of the largest component.
fn unpack_quat(p: [u8; 4]) -> Option<[f32; 4]> {
    if !(252..=255).contains(&p[3]) {
        return None;
    }
    let largest = (p[3] - 252) as usize;
    let small = [0, 1, 2].map(|c| (p[c] as f64 / 255.0 * 2.0 - 1.0) / std::f64::consts::SQRT_2);
    let mut q = [0.0f64; 4];
    let mut rest = small.iter();
    for (slot, v) in q.iter_mut().enumerate() {
        if slot != largest {
            *v = *rest.next().expect("three small components");
        }
    }
    q[largest] = (1.0 - small.iter().map(|v| v * v).sum::<f64>())
        .max(0.0)
        .sqrt();
    Some(q.map(|v| v as f32))
}
