//! The `.splat` files of antimatter15's WebGL viewer: a headerless array of
//! 32-byte little-endian records, one per Gaussian, in the scene's own
//! coordinates (no axis conversion):
//!
//! | bytes | field      | encoding                                             |
//! |-------|------------|------------------------------------------------------|
//! | 0–11  | `position` | x, y, z as f32                                       |
//! | 12–23 | `scale`    | the three scales as f32 (linear, not logarithms)     |
//! | 24–27 | `color`    | R, G, B = 255·(0.5 + C0·dc), A = 255·sigmoid(logit)  |
//! | 28–31 | `rotation` | w, x, y, z of the normalised quaternion, 128 + 128·q |
//!
//! There is no view-dependent colour: SH bands above 0 are dropped when
//! writing and read back as degree 0. Quantisation of a round trip (the
//! tests hold these): position exact; log scale within 1e-6 (f32 `exp`/`ln`);
//! DC colour within 0.5/255/C0 ≈ 0.007 when 0.5 + C0·dc lies in [0, 1] (it
//! is clamped there); opacity sigmoid(logit) within 0.5/255 (logits read
//! back from bytes 0 and 255 are ±7.6); each normalised quaternion component
//! within 1/128.

use std::path::Path;

use super::{check_gaussian, logit_clamped, sigmoid, to_u8, unit_quat, SceneError, SH_C0};
use crate::three::ply::{PlyError, Skipped};
use crate::three::Gaussians;

/// Bytes per record.
pub const RECORD: usize = 32;

/// Opacity bytes 0 and 255 decode as if they were 0.25 and 254.75: finite
/// logits that encode back to the same byte.
const OPACITY_EPS: f32 = 0.25 / 255.0;

/// The scene as `.splat` bytes (SH degree > 0 is dropped).
pub fn to_bytes(g: &Gaussians<f32>) -> Vec<u8> {
    let k = g.sh_coeffs();
    let mut out = Vec::with_capacity(g.len() * RECORD);
    for i in 0..g.len() {
        for c in 0..3 {
            out.extend_from_slice(&g.means[i][c].to_le_bytes());
        }
        for c in 0..3 {
            out.extend_from_slice(&g.log_scales[i][c].exp().to_le_bytes());
        }
        for c in 0..3 {
            out.push(to_u8((0.5 + SH_C0 * g.sh[i * k * 3 + c]) * 255.0));
        }
        out.push(to_u8(sigmoid(g.opacity_logits[i]) * 255.0));
        for x in unit_quat(g.quats[i]) {
            out.push(to_u8(128.0 + 128.0 * x));
        }
    }
    out
}

/// Parses `.splat` bytes; `path` only names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Gaussians<f32>, SceneError> {
    parse_with(bytes, path, false).map(|(g, _)| g)
}

/// [`parse`] that leaves out, rather than refuses, records that cannot be
/// drawn (a position or scale not finite, a degenerate scale or rotation,
/// as a diverged run writes), and says how many it left out. A file whose
/// every record is such is still an error, as is a length that is not a
/// whole number of records.
///
/// ```
/// use splat::formats::splat_file::{parse, parse_skipping, to_bytes};
/// use splat::three::scene::{random_scene, RandomScene};
/// let mut g = random_scene::<f32>(&RandomScene { n: 3, ..Default::default() });
/// g.means[1][2] = f32::NAN;
/// let bytes = to_bytes(&g);
/// assert!(parse(&bytes, "s.splat".as_ref()).is_err());
/// let (kept, skipped) = parse_skipping(&bytes, "s.splat".as_ref()).unwrap();
/// assert_eq!((kept.len(), skipped.count, skipped.of), (2, 1, 3));
/// ```
pub fn parse_skipping(bytes: &[u8], path: &Path) -> Result<(Gaussians<f32>, Skipped), SceneError> {
    parse_with(bytes, path, true)
}

fn parse_with(
    bytes: &[u8],
    path: &Path,
    skip: bool,
) -> Result<(Gaussians<f32>, Skipped), SceneError> {
    if bytes.len() % RECORD != 0 {
        return Err(SceneError::new(
            path,
            None,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte .splat records",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut g = Gaussians::<f32>::with_capacity(0, n);
    let mut skipped = Skipped {
        of: n,
        ..Default::default()
    };
    let f = |r: &[u8], o: usize| f32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
    for (i, r) in bytes.chunks_exact(RECORD).enumerate() {
        let record = || {
            let mean = [f(r, 0), f(r, 4), f(r, 8)];
            let scale = [f(r, 12), f(r, 16), f(r, 20)];
            if let Some(c) = (0..3).find(|&c| !(scale[c] > 0.0 && scale[c].is_finite())) {
                return Err(SceneError::new(
                    path,
                    Some("scale"),
                    format!(
                        "record {i}: scale {c} is {} (want a positive finite number)",
                        scale[c]
                    ),
                ));
            }
            let log_scale = scale.map(f32::ln);
            let quat = [0, 1, 2, 3].map(|c| (r[28 + c] as f32 - 128.0) / 128.0);
            check_gaussian(path, i, mean, log_scale, quat)?;
            Ok((mean, log_scale, quat))
        };
        let (mean, log_scale, quat) = match record() {
            Ok(v) => v,
            Err(e) if skip => {
                skipped.count += 1;
                skipped.first.get_or_insert(PlyError {
                    path: e.path,
                    property: e.field,
                    message: e.message,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        g.means.push(mean);
        g.log_scales.push(log_scale);
        g.quats.push(quat);
        for c in 0..3 {
            g.sh.push((r[24 + c] as f32 / 255.0 - 0.5) / SH_C0);
        }
        g.opacity_logits
            .push(logit_clamped(r[27] as f32 / 255.0, OPACITY_EPS));
    }
    if n > 0 && skipped.count == n {
        let e = skipped.first.expect("one was skipped");
        return Err(SceneError {
            path: e.path,
            field: e.property,
            message: e.message,
        });
    }
    Ok((g, skipped))
}
