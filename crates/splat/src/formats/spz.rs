//! Niantic's `.spz` (<https://github.com/nianticlabs/spz>): quantised
//! Gaussians, compressed. Written as **version 3** (the last gzip version,
//! which Spark, SuperSplat and the reference library read); read as
//! versions 1 to 4.
//!
//! Versions 1–3, inside one gzip stream: a 16-byte header (magic `NGSP` as
//! u32 0x5053474e, version u32, point count u32, SH degree u8, fractional
//! bits u8, flags u8 (0x1: antialiased), reserved u8), then per field for
//! all points: positions (3 × 24-bit signed fixed point; float16 in v1),
//! alphas (u8), colours (3 × u8), scales (3 × u8), rotations (v3: 4 bytes,
//! the smallest three quaternion components; v1/v2: 3 bytes x, y, z), SH
//! (coefficient-major, channel inner, bands ≥ 1 only).
//!
//! Version 4 (what splat-transform writes by default) is not compressed
//! as a whole: a 32-byte header (the same first 15 bytes, then the number
//! of streams u8 and the offset of a table u32), the table (per stream,
//! its compressed and uncompressed sizes, u64 each), then one ZSTD stream
//! per field of version 3's layout, in its order (5 streams, 6 with SH).
//!
//! SPZ stores right-up-back axes (three.js); scenes here use the PLY's
//! right-down-forward, so y and z are negated on the way in and out (with
//! the matching quaternion and SH sign flips), as the reference library
//! does for PLY input. (PlayCanvas's splat-transform 3.10 writes and reads
//! `.spz` in the PLY's axes instead, so its files read here, and ours
//! there, turned half a turn about x.)
//!
//! Quantisation of a round trip, per field (the tests hold these):
//! - `position`: fixed point with 12 fractional bits (fewer, chosen so the
//!   largest |coordinate| fits in 24 bits): within 2⁻¹³ ≈ 1.2e-4;
//! - `scale`: log scale in steps of 1/16 over [−10, 5.94]: within 1/32;
//! - `rotation`: smallest three components in 9 bits + sign: each
//!   normalised component within 2e-3 (the sign of q is free);
//! - `alpha`: sigmoid(logit) in 1/255 steps: within 0.5/255;
//! - `color`: DC coefficient as 255·(0.15·dc + 0.5): within 0.5/(0.15·255)
//!   ≈ 0.013 over dc ∈ [−3.33, 3.33];
//! - `sh`: 8-bit with `x·128 + 128`, rounded to buckets of 8 (band 1, 5
//!   bits) or 16 (bands 2–3, 4 bits): within 4.5/128 and 8.5/128, over
//!   [−1, 1).

use std::io::{Read, Write};
use std::path::Path;

use super::{check_gaussian, logit_clamped, sigmoid, to_u8, unit_quat, SceneError};
use crate::three::scene::sh_coeffs;
use crate::three::Gaussians;

/// The version this module writes.
pub const WRITE_VERSION: u32 = 3;
/// `NGSP` read as a little-endian u32.
pub const MAGIC: u32 = 0x5053_474e;
/// Scale of the DC colour encoding.
const COLOR_SCALE: f32 = 0.15;
/// Largest point count a file may declare (memory still follows the data
/// that is actually there).
pub const MAX_POINTS: u32 = 1 << 28;
/// Opacity bytes 0 and 255 decode as if they were 0.25 and 254.75.
const OPACITY_EPS: f32 = 0.25 / 255.0;
const SQRT1_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Sign of each SH coefficient (bands 1–3, index k − 1) when y and z are
/// negated: the basis functions' parity in y and z.
const SH_FLIP: [f32; 15] = [
    -1.0, -1.0, 1.0, // band 1: y, z, x
    -1.0, 1.0, 1.0, -1.0, 1.0, // band 2: xy, yz, 3z²−1, xz, x²−y²
    -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0, // band 3
];

fn flip_position(m: [f32; 3]) -> [f32; 3] {
    [m[0], -m[1], -m[2]]
}

/// Bytes per point after the header, for a version and SH degree.
fn bytes_per_point(version: u32, degree: usize) -> usize {
    let pos = if version == 1 { 6 } else { 9 };
    let rot = if version >= 3 { 4 } else { 3 };
    pos + 1 + 3 + 3 + rot + 3 * (sh_coeffs(degree) - 1)
}

/// The header's flag of an antialiased scene.
pub const FLAG_ANTIALIASED: u8 = 0x1;

/// The scene as version-3 `.spz` bytes. Fails only when a coordinate is
/// too large for 24-bit fixed point (|x| ≥ 2²³).
pub fn to_bytes(g: &Gaussians<f32>) -> Result<Vec<u8>, String> {
    to_bytes_as(g, false)
}

/// [`to_bytes`], with the header's [`FLAG_ANTIALIASED`] set when
/// `antialiased`.
pub fn to_bytes_as(g: &Gaussians<f32>, antialiased: bool) -> Result<Vec<u8>, String> {
    let n = g.len();
    let k = g.sh_coeffs();
    let max_abs = g
        .means
        .iter()
        .flat_map(|m| m.iter())
        .fold(0.0f32, |a, &x| a.max(x.abs()));
    let limit = (1u32 << 23) as f32 - 1.0;
    let frac_bits = (0..=12u8)
        .rev()
        .find(|&b| max_abs * (1u32 << b) as f32 <= limit)
        .ok_or_else(|| {
            format!("a coordinate of {max_abs} is too large for .spz (24-bit fixed point)")
        })?;
    let u32n = u32::try_from(n).map_err(|_| "too many Gaussians for .spz".to_string())?;
    let mut raw = Vec::with_capacity(16 + n * bytes_per_point(WRITE_VERSION, g.sh_degree));
    raw.extend_from_slice(&MAGIC.to_le_bytes());
    raw.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    raw.extend_from_slice(&u32n.to_le_bytes());
    let flags = if antialiased { FLAG_ANTIALIASED } else { 0 };
    raw.extend_from_slice(&[g.sh_degree as u8, frac_bits, flags, 0]);
    let fscale = (1u32 << frac_bits) as f32;
    for m in &g.means {
        for x in flip_position(*m) {
            let v = (x * fscale).round() as i32;
            raw.extend_from_slice(&v.to_le_bytes()[..3]);
        }
    }
    for &o in &g.opacity_logits {
        raw.push(to_u8(sigmoid(o) * 255.0));
    }
    for i in 0..n {
        for c in 0..3 {
            raw.push(to_u8(
                g.sh[i * k * 3 + c] * (COLOR_SCALE * 255.0) + 0.5 * 255.0,
            ));
        }
    }
    for s in &g.log_scales {
        for &x in s {
            raw.push(to_u8((x + 10.0) * 16.0));
        }
    }
    for q in &g.quats {
        raw.extend_from_slice(&pack_smallest_three(*q));
    }
    for i in 0..n {
        for kk in 1..k {
            let bucket = if kk < 4 { 8 } else { 16 };
            for c in 0..3 {
                let x = g.sh[(i * k + kk) * 3 + c] * SH_FLIP[kk - 1];
                raw.push(quantize_sh(x, bucket));
            }
        }
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

fn quantize_sh(x: f32, bucket: i32) -> u8 {
    let q = (x * 128.0).round() as i32 + 128;
    let q = (q + bucket / 2) / bucket * bucket;
    q.clamp(0, 255) as u8
}

/// w-x-y-z quaternion (ours, PLY axes) → the 4 bytes of SPZ v3 (x-y-z-w,
/// SPZ axes).
fn pack_smallest_three(q: [f32; 4]) -> [u8; 4] {
    // to x, y, z, w with the axis flip (w, x, −y, −z)
    let [w, x, y, z] = unit_quat(q);
    let q = [x, -y, -z, w];
    let mut largest = 0;
    for i in 1..4 {
        if q[i].abs() > q[largest].abs() {
            largest = i;
        }
    }
    let negate = q[largest] < 0.0;
    let mut comp = largest as u32;
    for i in 0..4 {
        if i != largest {
            let negbit = ((q[i] < 0.0) ^ negate) as u32;
            let mag = ((511.0 * q[i].abs() / SQRT1_2 + 0.5) as u32).min(511);
            comp = (comp << 10) | (negbit << 9) | mag;
        }
    }
    comp.to_le_bytes()
}

/// The 4 bytes of SPZ v3 → a w-x-y-z quaternion in PLY axes.
fn unpack_smallest_three(b: [u8; 4]) -> [f32; 4] {
    let mut comp = u32::from_le_bytes(b);
    let largest = (comp >> 30) as usize;
    let mut r = [0.0f32; 4];
    let mut sum = 0.0;
    for i in (0..4).rev() {
        if i != largest {
            let mag = comp & 511;
            let neg = (comp >> 9) & 1 == 1;
            comp >>= 10;
            let v = SQRT1_2 * mag as f32 / 511.0;
            r[i] = if neg { -v } else { v };
            sum += r[i] * r[i];
        }
    }
    r[largest] = (1.0 - sum).max(0.0).sqrt();
    [r[3], r[0], -r[1], -r[2]]
}

fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Version 4's fields, decompressed from their ZSTD streams and laid end
/// to end as version 3 lays them out (so that one decoder reads both).
/// Each stream's sizes are checked against what `n` points of SH degree
/// `degree` need before anything is decompressed, and a stream may not
/// inflate more than [`MAX_ZSTD_RATIO`] times its compressed size.
fn zstd_streams(bytes: &[u8], n: usize, degree: usize, path: &Path) -> Result<Vec<u8>, SceneError> {
    let err = |field: &str, msg: String| SceneError::new(path, Some(field), msg);
    if bytes.len() < 32 {
        return Err(err(
            "header",
            format!("{} bytes; the header alone is 32", bytes.len()),
        ));
    }
    let sizes = [
        9 * n,
        n,
        3 * n,
        3 * n,
        4 * n,
        3 * (sh_coeffs(degree) - 1) * n,
    ];
    let want = if degree == 0 { 5 } else { 6 };
    let streams = bytes[15] as usize;
    if streams != want {
        return Err(err(
            "numStreams",
            format!("{streams}; want {want} for SH degree {degree}"),
        ));
    }
    let toc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    let data = toc
        .checked_add(16 * streams)
        .filter(|&d| toc >= 32 && d <= bytes.len())
        .ok_or_else(|| {
            err(
                "tocByteOffset",
                format!(
                    "{toc}: the table of {streams} streams does not fit in the file's {} bytes",
                    bytes.len()
                ),
            )
        })?;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let names = ["positions", "alphas", "colors", "scales", "rotations", "sh"];
    let mut at = data;
    let mut raw = Vec::with_capacity(sizes[..streams].iter().sum::<usize>().min(bytes.len() * 64));
    for (s, &size) in sizes[..streams].iter().enumerate() {
        let (packed, unpacked) = (u64_at(toc + 16 * s), u64_at(toc + 16 * s + 8));
        if unpacked != size as u64 {
            return Err(err(
                names[s],
                format!("{unpacked} bytes uncompressed; {n} points need {size}"),
            ));
        }
        let end = (at as u64)
            .checked_add(packed)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| {
                err(
                    names[s],
                    format!("{packed} compressed bytes at {at}, past the file's end"),
                )
            })? as usize;
        if unpacked > packed.max(1) * MAX_ZSTD_RATIO {
            return Err(err(
                names[s],
                format!(
                    "{packed} compressed bytes would inflate {}-fold (at most {MAX_ZSTD_RATIO})",
                    unpacked / packed.max(1)
                ),
            ));
        }
        let before = raw.len();
        let mut dec = ruzstd::decoding::StreamingDecoder::new(&bytes[at..end])
            .map_err(|e| err(names[s], format!("not a ZSTD stream: {e}")))?;
        (&mut dec)
            .take(unpacked + 1)
            .read_to_end(&mut raw)
            .map_err(|e| err(names[s], format!("corrupt ZSTD stream: {e}")))?;
        if (raw.len() - before) as u64 != unpacked {
            return Err(err(
                names[s],
                format!(
                    "{} bytes decompressed; the table says {unpacked}",
                    raw.len() - before
                ),
            ));
        }
        at = end;
    }
    Ok(raw)
}

/// The most a version-4 stream may inflate (its quantised fields compress
/// a few-fold; a ZSTD stream can claim millions-fold).
const MAX_ZSTD_RATIO: u64 = 1000;

/// The flags byte of a `.spz` file's header (the start of its gzip stream,
/// or of a version-4 file, is enough), or `None` when the bytes do not
/// start an `.spz`.
pub fn flags(bytes: &[u8]) -> Option<u8> {
    if bytes.starts_with(b"NGSP") {
        return bytes.get(14).copied();
    }
    let mut header = [0u8; 16];
    flate2::read::GzDecoder::new(bytes)
        .read_exact(&mut header)
        .ok()?;
    (u32::from_le_bytes([header[0], header[1], header[2], header[3]]) == MAGIC)
        .then_some(header[14])
}

/// Parses `.spz` bytes (versions 1–4); `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Gaussians<f32>, SceneError> {
    let err = |field: Option<&str>, msg: String| SceneError::new(path, field, msg);
    let version4 = bytes.starts_with(b"NGSP");
    if !version4 && !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(err(
            None,
            "not an .spz file (no gzip magic, no NGSP header)".into(),
        ));
    }
    let mut dec = flate2::read::GzDecoder::new(bytes);
    let mut header = [0u8; 16];
    if version4 {
        match bytes.get(..16) {
            Some(h) => header.copy_from_slice(h),
            None => {
                return Err(err(
                    Some("header"),
                    format!("{} bytes; the header alone is 32", bytes.len()),
                ))
            }
        }
    } else {
        dec.read_exact(&mut header).map_err(|e| {
            err(
                Some("header"),
                format!("cannot read the 16-byte header: {e}"),
            )
        })?;
    }
    let u = |o: usize| u32::from_le_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
    if u(0) != MAGIC {
        return Err(err(
            Some("magic"),
            format!("{:#010x}; want {MAGIC:#010x} (NGSP)", u(0)),
        ));
    }
    let version = u(4);
    if version4 != (version == 4) || !(1..=4).contains(&version) {
        return Err(err(
            Some("version"),
            format!(
                "{version} in a {} file: versions 1 to 3 are gzip streams, version 4 is not",
                if version4 { "plain" } else { "gzip" }
            ),
        ));
    }
    let n = u(8);
    if n > MAX_POINTS {
        return Err(err(
            Some("numPoints"),
            format!("{n} is more than the {MAX_POINTS} supported"),
        ));
    }
    let degree = header[12] as usize;
    if degree > 3 {
        return Err(err(
            Some("shDegree"),
            format!("{degree}: only SH degrees 0 to 3 are supported"),
        ));
    }
    let frac_bits = header[13] as i32;
    if frac_bits > 24 {
        return Err(err(
            Some("fractionalBits"),
            format!("{frac_bits}: more than the 24 bits a coordinate has"),
        ));
    }
    let n = n as usize;
    let expected = n * bytes_per_point(version, degree);
    let mut raw = Vec::new();
    if version4 {
        raw = zstd_streams(bytes, n, degree, path)?;
    } else {
        // memory follows the data actually decompressed, never the declared count
        (&mut dec)
            .take(expected as u64)
            .read_to_end(&mut raw)
            .map_err(|e| err(None, format!("corrupt gzip stream: {e}")))?;
    }
    if raw.len() < expected {
        return Err(err(
            Some("numPoints"),
            format!(
                "the header declares {n} points of SH degree {degree} ({expected} bytes) but the data holds {}",
                raw.len()
            ),
        ));
    }
    let k = sh_coeffs(degree);
    let pos_len = n * if version == 1 { 6 } else { 9 };
    let (pos, rest) = raw.split_at(pos_len);
    let (alphas, rest) = rest.split_at(n);
    let (colors, rest) = rest.split_at(3 * n);
    let (scales, rest) = rest.split_at(3 * n);
    let rot_len = if version >= 3 { 4 } else { 3 };
    let (rots, sh) = rest.split_at(rot_len * n);
    let fscale = 2f32.powi(-frac_bits);
    let mut g = Gaussians::<f32>::with_capacity(degree, n);
    for i in 0..n {
        let m = if version == 1 {
            [0, 1, 2].map(|c| {
                let o = 6 * i + 2 * c;
                half_to_f32(u16::from_le_bytes([pos[o], pos[o + 1]]))
            })
        } else {
            [0, 1, 2].map(|c| {
                let o = 9 * i + 3 * c;
                let v = (pos[o] as i32) | (pos[o + 1] as i32) << 8 | (pos[o + 2] as i32) << 16;
                let v = (v << 8) >> 8; // sign-extend 24 bits
                v as f32 * fscale
            })
        };
        let mean = flip_position(m);
        let log_scale = [0, 1, 2].map(|c| scales[3 * i + c] as f32 / 16.0 - 10.0);
        let quat = if version >= 3 {
            let b = &rots[4 * i..4 * i + 4];
            unpack_smallest_three([b[0], b[1], b[2], b[3]])
        } else {
            let xyz = [0, 1, 2].map(|c| rots[3 * i + c] as f32 / 127.5 - 1.0);
            let w = (1.0 - xyz.iter().map(|v| v * v).sum::<f32>())
                .max(0.0)
                .sqrt();
            [w, xyz[0], -xyz[1], -xyz[2]]
        };
        check_gaussian(path, i, mean, log_scale, quat)?;
        g.means.push(mean);
        g.log_scales.push(log_scale);
        g.quats.push(quat);
        g.opacity_logits
            .push(logit_clamped(alphas[i] as f32 / 255.0, OPACITY_EPS));
        for c in 0..3 {
            g.sh.push((colors[3 * i + c] as f32 / 255.0 - 0.5) / COLOR_SCALE);
        }
        for kk in 1..k {
            for c in 0..3 {
                let b = sh[(i * (k - 1) + kk - 1) * 3 + c];
                g.sh.push((b as f32 - 128.0) / 128.0 * SH_FLIP[kk - 1]);
            }
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn smallest_three_round_trips_the_axes() {
        for q in [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.5, -0.5, 0.5, -0.5],
        ] {
            let back = unpack_smallest_three(pack_smallest_three(q));
            let dot: f32 = q.iter().zip(back).map(|(a, b)| a * b).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-5, "{q:?} -> {back:?}");
        }
    }
}
