//! Writes SOG version 2 (`.sog`), the layout [`super::parse`] reads and
//! splat-transform, SuperSplat, PlayCanvas and Spark open: a zip of
//! `meta.json` and lossless WebP images, one pixel per Gaussian in Morton
//! order (the compressed PLY's, [`crate::three::compressed_ply::write::order`]),
//! in images of `W × H` pixels with `W = 4⌈√n / 4⌉` and `H = 4⌈n / W / 4⌉`
//! (at least 4 each).
//!
//! What each field keeps (the decoded value against the scene's):
//!
//! - positions: 16 bits an axis after splat-transform's log transform
//!   `sign(x) ln(1 + |x|)` between the scene's bounds, so about 10⁻⁴ of
//!   a unit near the origin and relatively coarser far out;
//! - rotations: the three smaller components of the unit quaternion in 8
//!   bits each, the largest rebuilt from the norm;
//! - log scales and DC colours: the nearest of 256 entries of their own
//!   codebook ([`super::quantize::codebook`], one for the three axes and
//!   one for the three channels);
//! - opacity: 8 bits of the sigmoid;
//! - higher SH bands: an entry of a palette of at most 65,536 vectors
//!   (the largest power of two not above the count, as splat-transform's
//!   size), each coefficient the nearest of a 256-entry codebook; an SH
//!   value that is not finite is written as 0.
//!
//! Values are rounded to the nearest step (splat-transform truncates; the
//! readers only divide, so either reads back the same way). The images are
//! WebP's lossless coding by libwebp (the `webp` crate), the encoder
//! splat-transform and browsers use, with its colour kept exactly under
//! zero alpha.

use std::io::{Cursor, Write};

use rayon::prelude::*;
use serde_json::json;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::quantize::{codebook, nearest, palette};
use crate::three::compressed_ply::write::order;
use crate::three::ply::MAX_LOG_SCALE;
use crate::three::scene::sh_coeffs;
use crate::three::Gaussians;

/// WebP's largest width or height.
const MAX_SIDE: usize = 16_383;

/// The palette's entries at most (labels are 16-bit).
const MAX_PALETTE: usize = 1 << 16;

/// Encodes `g` as a `.sog` file (version 2).
///
/// ```
/// use splat::formats::sog;
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 300, sh_degree: 2, ..Default::default() });
/// let bytes = sog::to_bytes(&g).unwrap();
/// let back = sog::parse(&bytes, "scene.sog".as_ref()).unwrap();
/// assert_eq!((back.len(), back.sh_degree), (300, 2));
/// ```
pub fn to_bytes(g: &Gaussians<f32>) -> Result<Vec<u8>, String> {
    to_bytes_as(g, false)
}

/// [`to_bytes`], declaring Mip-Splatting's antialiased drawing mode in
/// `meta.json` (`"model": "antialiased"`) when `antialiased`. The error
/// names a Gaussian whose position, scale or rotation is not finite or
/// whose log scale is beyond ±[`MAX_LOG_SCALE`] (which no reader here
/// accepts), or a scene too large for WebP's 16,383-pixel sides (about
/// 268 million).
pub fn to_bytes_as(g: &Gaussians<f32>, antialiased: bool) -> Result<Vec<u8>, String> {
    let (meta, files) = encode(g, antialiased)?;
    zip(&meta, &files)
}

/// [`to_bytes_as`] unbundled: the same files as the archive's entries,
/// by name, to be written into one folder (splat-transform's output for
/// a `meta.json` name, which PlayCanvas's engine and SuperSplat load
/// from a server), `meta.json` last so that a folder whose writing
/// stopped half-way holds no `meta.json` that names missing images.
///
/// ```
/// use splat::formats::sog;
/// use splat::three::scene::{random_scene, RandomScene};
/// let g = random_scene::<f32>(&RandomScene { n: 10, ..Default::default() });
/// let files = sog::to_files_as(&g, false).unwrap();
/// assert_eq!(files.last().unwrap().0, "meta.json");
/// assert!(files.iter().any(|(name, _)| name == "means_l.webp"));
/// ```
pub fn to_files_as(
    g: &Gaussians<f32>,
    antialiased: bool,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let (meta, files) = encode(g, antialiased)?;
    let mut out: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect();
    out.push(("meta.json".to_string(), meta));
    Ok(out)
}

/// `meta.json`'s bytes and the images, by name.
type Encoded = (Vec<u8>, Vec<(&'static str, Vec<u8>)>);

/// The files of `g`'s SOG: `meta.json`'s bytes and the images.
fn encode(g: &Gaussians<f32>, antialiased: bool) -> Result<Encoded, String> {
    g.check_shapes()?;
    let n = g.len();
    for i in 0..n {
        let fields = [
            ("position", g.means[i].as_slice()),
            ("log scale", g.log_scales[i].as_slice()),
            ("rotation", g.quats[i].as_slice()),
        ];
        if let Some((what, _)) = fields
            .iter()
            .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
        {
            return Err(format!("Gaussian {i}: its {what} is not finite"));
        }
        if let Some(v) = g.log_scales[i]
            .iter()
            .find(|v| v.abs() as f64 > MAX_LOG_SCALE)
        {
            return Err(format!(
                "Gaussian {i}: its log scale {v} is degenerate \
                 (want |log scale| <= {MAX_LOG_SCALE})"
            ));
        }
    }
    let width = (((n as f64).sqrt() / 4.0).ceil() as usize * 4).max(4);
    let height = (n.div_ceil(width).div_ceil(4) * 4).max(4);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "{n} Gaussians need {width}×{height} pixel images; WebP allows {MAX_SIDE} a side"
        ));
    }
    let order = order(g);
    let image = |fill: &dyn Fn(usize) -> [u8; 4]| {
        let mut rgba = vec![0u8; width * height * 4];
        for (slot, &i) in order.iter().enumerate() {
            rgba[4 * slot..4 * slot + 4].copy_from_slice(&fill(i));
        }
        rgba
    };

    // positions: 16 bits an axis of the log-transformed coordinate
    let log = |x: f32| {
        let x = x as f64;
        x.signum() * x.abs().ln_1p()
    };
    let (mut mins, mut maxs) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for m in &g.means {
        for a in 0..3 {
            mins[a] = mins[a].min(log(m[a]));
            maxs[a] = maxs[a].max(log(m[a]));
        }
    }
    if n == 0 {
        (mins, maxs) = ([0.0; 3], [0.0; 3]);
    }
    // each axis's 16-bit fraction, split into a low and a high image
    let fractions: Vec<[[u8; 2]; 3]> = g
        .means
        .iter()
        .map(|m| {
            [0, 1, 2].map(|a| {
                let range = maxs[a] - mins[a];
                let f = if range > 0.0 {
                    ((log(m[a]) - mins[a]) / range * 65535.0).round() as u16
                } else {
                    0
                };
                f.to_le_bytes()
            })
        })
        .collect();
    let half = |byte: usize| {
        image(&|i| {
            let f = fractions[i];
            [f[0][byte], f[1][byte], f[2][byte], 255]
        })
    };
    let (means_l, means_u) = (half(0), half(1));

    let quats = image(&|i| pack_quat(g.quats[i]));

    let scale_values: Vec<f32> = g.log_scales.iter().flatten().copied().collect();
    let scale_book = codebook(&scale_values, 256);
    let scales = image(&|i| {
        let s = g.log_scales[i].map(|v| nearest(&scale_book, v));
        [s[0], s[1], s[2], 255]
    });

    let k = sh_coeffs(g.sh_degree);
    let stride = 3 * k;
    // (a NaN would take the first entry, the most negative; 0 is neutral)
    let sh = |j: usize| Some(g.sh[j]).filter(|v| v.is_finite()).unwrap_or(0.0);
    let dc: Vec<f32> = (0..n)
        .flat_map(|i| (i * stride..i * stride + 3).map(sh))
        .collect();
    let dc_book = codebook(&dc, 256);
    let sh0 = image(&|i| {
        let c = [0, 1, 2].map(|ch| nearest(&dc_book, sh(i * stride + ch)));
        let o = 1.0 / (1.0 + (-(g.opacity_logits[i] as f64)).exp());
        let a = (o * 255.0).round();
        // (a NaN opacity becomes 0 through the saturating cast)
        [c[0], c[1], c[2], a as u8]
    });

    // the images as pixels (name, RGBA, width, height), encoded together
    // at the end
    let mut raw: Vec<(&str, Vec<u8>, usize, usize)> = vec![
        ("means_l.webp", means_l, width, height),
        ("means_u.webp", means_u, width, height),
        ("quats.webp", quats, width, height),
        ("scales.webp", scales, width, height),
        ("sh0.webp", sh0, width, height),
    ];
    let mut meta = json!({
        "version": 2,
        "asset": { "generator": concat!("chainrule ", env!("CARGO_PKG_VERSION")) },
        "count": n,
        "means": { "mins": mins, "maxs": maxs, "files": ["means_l.webp", "means_u.webp"] },
        "scales": { "codebook": scale_book, "files": ["scales.webp"] },
        "quats": { "files": ["quats.webp"] },
        "sh0": { "codebook": dc_book, "files": ["sh0.webp"] },
    });
    if antialiased {
        meta["model"] = json!("antialiased");
    }

    if g.sh_degree > 0 {
        let coeffs = k - 1;
        let d = 3 * coeffs;
        let rest: Vec<f32> = (0..n)
            .flat_map(|i| (i * stride + 3..(i + 1) * stride).map(sh))
            .collect();
        // the largest power of two not above the count, as splat-transform
        let size = if n == 0 {
            0
        } else {
            MAX_PALETTE.min(1 << n.ilog2())
        };
        let (centroids, labels) = palette(&rest, d, size);
        let entries = centroids.len() / d;
        let rest_book = codebook(&centroids, 256);
        // (one row when there are no entries: WebP has no empty image)
        let rows = entries.div_ceil(64).max(1);
        let mut table = vec![0u8; 64 * coeffs * rows * 4];
        for (e, vector) in centroids.chunks_exact(d).enumerate() {
            for j in 0..coeffs {
                let px = &mut table[4 * (e * coeffs + j)..4 * (e * coeffs + j + 1)];
                for ch in 0..3 {
                    px[ch] = nearest(&rest_book, vector[j * 3 + ch]);
                }
                px[3] = 255;
            }
        }
        let label_image = image(&|i| {
            let [lo, hi, ..] = labels[i].to_le_bytes();
            [lo, hi, 0, 255]
        });
        raw.push(("shN_centroids.webp", table, 64 * coeffs, rows));
        raw.push(("shN_labels.webp", label_image, width, height));
        meta["shN"] = json!({
            "count": entries,
            "bands": g.sh_degree,
            "codebook": rest_book,
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        });
    }
    let meta = serde_json::to_vec(&meta).map_err(|e| format!("meta.json: {e}"))?;
    // libwebp sets up its code paths on first use without a lock (built
    // without its thread support): one small encode first, alone
    static WEBP_READY: std::sync::Once = std::sync::Once::new();
    WEBP_READY.call_once(|| {
        let _ = webp(&[0; 64], 4, 4);
    });
    let files = raw
        .par_iter()
        .map(|(name, rgba, w, h)| Ok((*name, webp(rgba, *w, *h)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok((meta, files))
}

/// A quaternion (w, x, y, z) packed as SOG's pixel: the three smaller
/// components of the unit quaternion whose largest is positive, each
/// `(q √2 + 1) / 2` in a byte, and A = 252 + the largest's index (the
/// first of equals). A zero quaternion is the identity.
fn pack_quat(q: [f32; 4]) -> [u8; 4] {
    let q = q.map(|v| v as f64);
    let norm = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return pack_quat([1.0, 0.0, 0.0, 0.0]);
    }
    let mut largest = 0;
    for c in 1..4 {
        if q[c].abs() > q[largest].abs() {
            largest = c;
        }
    }
    let sign = if q[largest] < 0.0 { -1.0 } else { 1.0 };
    let mut out = [0u8; 4];
    let mut slot = 0;
    for (c, v) in q.iter().enumerate() {
        if c != largest {
            let s = v / norm * sign * std::f64::consts::SQRT_2;
            out[slot] = ((s * 0.5 + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8;
            slot += 1;
        }
    }
    out[3] = 252 + largest as u8;
    out
}

/// Lossless WebP of an RGBA image, by libwebp: `exact` keeps the colour
/// under a zero alpha (SOG's opacity), and method 2 at quality 50 is
/// within 0.1% of method 4's size (libwebp's default) at about a tenth
/// of its time (BENCHMARKS.md, "Thirty-fifth session").
fn webp(rgba: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    let mut cfg = webp::WebPConfig::new().map_err(|()| "WebP encoding: no configuration")?;
    cfg.lossless = 1;
    cfg.exact = 1;
    cfg.method = 2;
    cfg.quality = 50.0;
    let out = webp::Encoder::from_rgba(rgba, width as u32, height as u32)
        .encode_advanced(&cfg)
        .map_err(|e| format!("WebP encoding: {e:?}"))?;
    Ok(out.to_vec())
}

/// The archive: `meta.json` first, then the images, every entry stored as
/// it is (as splat-transform stores them: WebP is already compressed, and
/// PlayCanvas's older bundle reader parses entries without inflating
/// them), dated 1980-01-01 so that the same scene gives the same bytes.
fn zip(meta: &[u8], files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let zip_err = |e: zip::result::ZipError| format!("zip: {e}");
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .compression_method(CompressionMethod::Stored);
    zip.start_file("meta.json", options).map_err(zip_err)?;
    zip.write_all(meta).map_err(|e| format!("zip: {e}"))?;
    for (name, bytes) in files {
        zip.start_file(*name, options).map_err(zip_err)?;
        zip.write_all(bytes).map_err(|e| format!("zip: {e}"))?;
    }
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}
