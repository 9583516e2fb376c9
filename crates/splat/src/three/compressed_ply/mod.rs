//! The compressed PLY of PlayCanvas's SuperSplat editor and its
//! `splat-transform` tool (`*.compressed.ply`), read so that scenes shared
//! in that form open here too, and written ([`to_bytes`], in [`mod@write`]'s
//! rules) so that scenes trained here can be shared in it: about a
//! quarter of the float PLY's size, and opened by SuperSplat, PlayCanvas
//! and Spark.
//!
//! The file is a binary little-endian PLY with three elements:
//!
//! - `chunk`, one per 256 Gaussians (in file order): float bounds
//!   `min_x min_y min_z max_x max_y max_z`, `min_scale_x … max_scale_z`
//!   (log scales) and, in newer files, `min_r min_g min_b max_r max_g
//!   max_b` (colours);
//! - `vertex`, one per Gaussian: four `uint` words. `packed_position` and
//!   `packed_scale` hold 11, 10 and 11 bits (x in the top bits) of a
//!   fraction between the chunk's bounds; `packed_rotation` holds in its
//!   top 2 bits which of the quaternion's w, x, y, z is largest, and the
//!   other three in w, x, y, z order, 10 bits each (the first in bits
//!   20–29), scaled from ±1/√2; the
//!   largest follows from the unit norm. `packed_color` holds 8 bits each
//!   of r, g, b (a fraction between the chunk's colour bounds, else of
//!   [0, 1]) and the opacity (sigmoid), r in the top byte;
//! - `sh` (optional), one per Gaussian: `uchar f_rest_0 …` (9, 24 or 45),
//!   each byte b standing for `8 (b' − 1/2)` with b' = 0, 1 or
//!   (b + 1/2) / 256 for b = 0, 255 or between.
//!
//! Colours are `0.5 + SH_C0 · f_dc`, so `f_dc = (c − 0.5) / SH_C0`, and the
//! opacity byte a is `sigmoid(opacity)`, so `opacity = ln(a / (1 − a))`
//! (a = 0 and a = 255, whose logits are infinite, are read as 0.5/255 and
//! 254.5/255, the edges of the writer's rounding bins: the first renders
//! as the infinite logit does, below the rasterizer's smallest alpha; the
//! second draws at most 0.2% fainter away from the splat's centre, where
//! the rasterizer's cap of 0.99 does not bind). These are
//! the formulas of splat-transform's own reader (3.10), against whose
//! decoded output the tests check this one.

use std::path::Path;

use chainrule::Scalar;

pub mod write;

pub use write::{to_bytes, to_bytes_as};

use super::ply::{finite_in, Element, PlyError, Ty, MAX_LOG_SCALE};
use super::scene::{sh_coeffs, Gaussians};
use super::sh::SH_C0;

/// Gaussians per `chunk` record.
const CHUNK: usize = 256;

/// A `chunk` record's bounds of positions and log scales, in file order.
const BOUNDS: [&str; 12] = [
    "min_x",
    "min_y",
    "min_z",
    "max_x",
    "max_y",
    "max_z",
    "min_scale_x",
    "min_scale_y",
    "min_scale_z",
    "max_scale_x",
    "max_scale_y",
    "max_scale_z",
];

/// A `chunk` record's colour bounds, after [`BOUNDS`] (absent from the
/// oldest files).
const COLOUR_BOUNDS: [&str; 6] = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"];

/// Whether the header's elements are a compressed PLY's: a `vertex`
/// element with `packed_position` (its `chunk` element is then required).
pub(super) fn is_compressed(elements: &[Element]) -> bool {
    elements
        .iter()
        .any(|e| e.name == "vertex" && e.props.iter().any(|p| p.0 == "packed_position"))
}

/// A fixed-size element's records: where they start in the file, and
/// `(type, offset)` of its properties by name.
struct Records<'a> {
    el: &'a Element,
    start: usize,
}

impl Records<'_> {
    fn prop(&self, name: &str) -> Option<(Ty, usize)> {
        self.el.scalar(name)
    }
    fn get(&self, bytes: &[u8], i: usize, (t, o): (Ty, usize)) -> f64 {
        let at = self.start + i * self.el.stride + o;
        t.read(&bytes[at..at + t.size()])
    }
}

fn unorm(v: u32, bits: u32) -> f64 {
    let t = (1u32 << bits) - 1;
    (v & t) as f64 / t as f64
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a * (1.0 - t) + b * t
}

/// Decodes a compressed PLY whose header `elements` [`is_compressed`]
/// found; the records start at `data_start`.
pub(super) fn decode<T: Scalar>(
    bytes: &[u8],
    path: &Path,
    elements: &[Element],
    data_start: usize,
) -> Result<Gaussians<T>, PlyError> {
    let err = |prop: Option<&str>, msg: String| PlyError::new(path, prop, msg);
    // every element's records, in file order (all fixed-size here)
    let mut offset = data_start;
    let mut found: Vec<Records> = Vec::new();
    for el in elements {
        if let Some(p) = el.props.iter().find(|p| p.1.is_none()) {
            return Err(err(
                Some(&p.0),
                format!("list property in element `{}` of a compressed PLY", el.name),
            ));
        }
        found.push(Records { el, start: offset });
        offset = el.end(offset, bytes.len(), path)?;
    }
    let element = |name: &str| found.iter().find(|r| r.el.name == name);
    let chunk = element("chunk").ok_or_else(|| {
        err(
            Some("chunk"),
            "packed vertices (a compressed PLY) but no `chunk` element of bounds".into(),
        )
    })?;
    let vertex =
        element("vertex").ok_or_else(|| err(Some("vertex"), "no `vertex` element".into()))?;
    let n = vertex.el.count;
    let need_chunks = n.div_ceil(CHUNK);
    if chunk.el.count < need_chunks {
        return Err(err(
            Some("chunk"),
            format!(
                "{} chunk records for {n} Gaussians; want at least {need_chunks} (one per {CHUNK})",
                chunk.el.count
            ),
        ));
    }
    let required = |r: &Records, name: &str| {
        r.prop(name).ok_or_else(|| {
            err(
                Some(name),
                format!("missing from the `{}` element", r.el.name),
            )
        })
    };
    let bounds: Vec<(Ty, usize)> = BOUNDS
        .iter()
        .map(|b| required(chunk, b))
        .collect::<Result<_, _>>()?;
    let colour_names = COLOUR_BOUNDS;
    let colour: Option<Vec<(Ty, usize)>> = colour_names.iter().map(|b| chunk.prop(b)).collect();
    if colour.is_none() {
        if let Some(b) = colour_names.iter().find(|b| chunk.prop(b).is_some()) {
            let missing = colour_names.iter().find(|b| chunk.prop(b).is_none());
            return Err(err(
                Some(missing.expect("one is missing")),
                format!("missing from the `chunk` element, which has `{b}`: the colour bounds come as all six or none"),
            ));
        }
    }
    let p_pos = required(vertex, "packed_position")?;
    let p_rot = required(vertex, "packed_rotation")?;
    let p_scale = required(vertex, "packed_scale")?;
    let p_col = required(vertex, "packed_color")?;
    for (name, (t, _)) in [
        ("packed_position", p_pos),
        ("packed_rotation", p_rot),
        ("packed_scale", p_scale),
        ("packed_color", p_col),
    ] {
        if t != Ty::U32 && t != Ty::I32 {
            return Err(err(Some(name), "want a 32-bit `uint`".into()));
        }
    }
    let sh = element("sh");
    let n_rest = match sh {
        None => 0,
        Some(r) => {
            if r.el.count != n {
                return Err(err(
                    Some("sh"),
                    format!("{} records for {n} Gaussians", r.el.count),
                ));
            }
            // at most 46 looked up, however long the header
            let n_rest = (0..46)
                .take_while(|i| r.prop(&format!("f_rest_{i}")).is_some())
                .count();
            if r.el.props.len() != n_rest {
                return Err(err(
                    Some("sh"),
                    format!(
                        "{} properties; want exactly f_rest_0 to f_rest_{} (0, 9, 24 or 45 of them)",
                        r.el.props.len(),
                        n_rest.max(1) - 1
                    ),
                ));
            }
            n_rest
        }
    };
    let degree = super::ply::sh_degree_of(n_rest, path)?;
    let p_rest: Vec<(Ty, usize)> = match sh {
        Some(r) => (0..n_rest)
            .map(|i| r.prop(&format!("f_rest_{i}")).expect("counted above"))
            .collect(),
        None => Vec::new(),
    };
    if let Some(j) = p_rest.iter().position(|p| p.0 != Ty::U8) {
        return Err(err(
            Some(&format!("f_rest_{j}")),
            "want a `uchar` in the `sh` element of a compressed PLY".into(),
        ));
    }

    let k = sh_coeffs(degree);
    let mut g = Gaussians::<T>::with_capacity(degree, n);
    let word = |i: usize, p: (Ty, usize)| vertex.get(bytes, i, p) as i64 as u32;
    let finite = |x: f64, i: usize, name: &str| finite_in::<T>(x, i, name, path);
    let (mut b, mut cb) = (vec![0.0; bounds.len()], vec![0.0; colour_names.len()]);
    for i in 0..n {
        let c = i / CHUNK;
        if i % CHUNK == 0 {
            for (v, &p) in b.iter_mut().zip(&bounds) {
                *v = chunk.get(bytes, c, p);
            }
            if let Some(j) = b.iter().position(|x| !x.is_finite()) {
                return Err(err(
                    Some(BOUNDS[j]),
                    format!("chunk {c}: bound {} is not finite", b[j]),
                ));
            }
            if let Some(cs) = &colour {
                for (v, &p) in cb.iter_mut().zip(cs) {
                    *v = chunk.get(bytes, c, p);
                }
            }
        }
        let unpack = |v: u32| [unorm(v >> 21, 11), unorm(v >> 11, 10), unorm(v, 11)];
        let t = unpack(word(i, p_pos));
        let mut m = [T::zero(); 3];
        for a in 0..3 {
            m[a] = finite(lerp(b[a], b[3 + a], t[a]), i, "packed_position")?;
        }
        let t = unpack(word(i, p_scale));
        let mut s = [T::zero(); 3];
        for a in 0..3 {
            let ls = lerp(b[6 + a], b[9 + a], t[a]);
            if ls.abs() > MAX_LOG_SCALE {
                return Err(err(
                    Some("packed_scale"),
                    format!("vertex {i}: log scale {ls} is degenerate (want |log scale| <= {MAX_LOG_SCALE})"),
                ));
            }
            s[a] = T::from_f64(ls);
        }
        let r = word(i, p_rot);
        let norm = std::f64::consts::SQRT_2;
        let abc = [
            (unorm(r >> 20, 10) - 0.5) * norm,
            (unorm(r >> 10, 10) - 0.5) * norm,
            (unorm(r, 10) - 0.5) * norm,
        ];
        let largest = (1.0 - abc.iter().map(|x| x * x).sum::<f64>())
            .max(0.0)
            .sqrt();
        let big = (r >> 30) as usize;
        let mut q = [0.0; 4];
        let mut rest = abc.iter();
        for (slot, v) in q.iter_mut().enumerate() {
            *v = if slot == big {
                largest
            } else {
                *rest.next().expect("three small components")
            };
        }
        g.means.push(m);
        g.log_scales.push(s);
        g.quats.push(q.map(T::from_f64));
        let col = word(i, p_col);
        let a = ((col & 0xff) as f64).clamp(0.5, 254.5) / 255.0;
        g.opacity_logits.push(T::from_f64((a / (1.0 - a)).ln()));
        let fr = [unorm(col >> 24, 8), unorm(col >> 16, 8), unorm(col >> 8, 8)];
        for ch in 0..3 {
            let v = match colour {
                Some(_) => lerp(cb[ch], cb[3 + ch], fr[ch]),
                None => fr[ch],
            };
            g.sh.push(finite((v - 0.5) / SH_C0, i, colour_names[ch])?);
        }
        if let Some(shr) = sh {
            for kk in 1..k {
                for ch in 0..3 {
                    let j = ch * (k - 1) + kk - 1;
                    let byte = shr.get(bytes, i, p_rest[j]);
                    let v = if byte <= 0.0 {
                        0.0
                    } else if byte >= 255.0 {
                        1.0
                    } else {
                        (byte + 0.5) / 256.0
                    };
                    g.sh.push(T::from_f64((v - 0.5) * 8.0));
                }
            }
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::super::ply::parse_ply;

    /// A compressed PLY of `n` Gaussians in one chunk, each with the given
    /// packed words, and `sh` bytes when given.
    fn file(words: &[[u32; 4]], chunks: usize, sh: Option<&[u8]>) -> Vec<u8> {
        let mut h = String::from("ply\nformat binary_little_endian 1.0\n");
        h += &format!("element chunk {chunks}\n");
        for b in super::BOUNDS {
            h += &format!("property float {b}\n");
        }
        h += &format!("element vertex {}\n", words.len());
        for w in [
            "packed_position",
            "packed_rotation",
            "packed_scale",
            "packed_color",
        ] {
            h += &format!("property uint {w}\n");
        }
        if sh.is_some() {
            h += &format!("element sh {}\n", words.len());
            for i in 0..9 {
                h += &format!("property uchar f_rest_{i}\n");
            }
        }
        h += "end_header\n";
        let mut b = h.into_bytes();
        for _ in 0..chunks {
            for v in [
                -1.0f32, -2.0, -3.0, 1.0, 2.0, 3.0, -5.0, -5.0, -5.0, -1.0, -1.0, -1.0,
            ] {
                b.extend(v.to_le_bytes());
            }
        }
        for w in words {
            for x in w {
                b.extend(x.to_le_bytes());
            }
        }
        if let Some(sh) = sh {
            b.extend(sh);
        }
        b
    }

    #[test]
    fn packed_words_decode_by_the_layout() {
        // position: x at its chunk's max (2047), y at 0, z at the middle-ish
        let pos = (2047 << 21) | 1024;
        // rotation: w largest (index 0), x = y = z = 0 (512 of 1023 ≈ 0)
        let rot = 512 << 20 | 512 << 10 | 512;
        // colour: r = 255, g = 0, b = 128, alpha 0 (an infinite logit)
        let col0 = 255 << 24 | 128 << 8;
        let col1 = col0 | 255;
        let sh = [0u8, 255, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let g = parse_ply::<f64>(
            &file(
                &[[pos, rot, 0, col0], [pos, 3 << 30 | rot, 0, col1]],
                1,
                Some(&sh),
            ),
            "c.ply".as_ref(),
        )
        .unwrap();
        assert_eq!((g.len(), g.sh_degree), (2, 1));
        assert_eq!(g.means[0][0], 1.0);
        assert_eq!(g.means[0][1], -2.0);
        assert!((g.means[0][2] - (-3.0 + 6.0 * 1024.0 / 2047.0)).abs() < 1e-12);
        assert_eq!(g.log_scales[0], [-5.0; 3]);
        // the largest component goes where the top two bits say
        let small = (512.0 / 1023.0 - 0.5) * std::f64::consts::SQRT_2;
        let big = (1.0 - 3.0 * small * small).sqrt();
        assert_eq!(g.quats[0], [big, small, small, small]);
        assert_eq!(g.quats[1], [small, small, small, big]);
        // alpha 0 and 255: the finite logits half a step inside
        let logit = |a: f64| (a / (1.0 - a)).ln();
        assert_eq!(g.opacity_logits[0], logit(0.5 / 255.0));
        assert_eq!(g.opacity_logits[1], logit(254.5 / 255.0));
        // colours without chunk colour bounds are fractions of [0, 1]
        let c0 = 0.282_094_791_773_878_14;
        assert_eq!(g.sh[0], 0.5 / c0);
        assert_eq!(g.sh[1], -0.5 / c0);
        // red's f_rest bytes 0, 255, 128 (bands 1 to 3) → −4, 4 and
        // (128.5/256 − 0.5)·8; green's and blue's 0 → −4
        assert_eq!([g.sh[3], g.sh[6], g.sh[9]], [-4.0, 4.0, 0.015625]);
        assert_eq!([g.sh[4], g.sh[5], g.sh[10], g.sh[11]], [-4.0; 4]);
        assert!(g.sh[15..].iter().all(|&v| v == -4.0));
    }

    #[test]
    fn bad_compressed_files_name_what_is_wrong() {
        let w = [[0u32, 0, 0, 0]; 300];
        let one = || String::from_utf8_lossy(&file(&w[..1], 1, None)).into_owned();
        let fails = |text: &str, want: &[&str]| {
            let e = parse_ply::<f32>(text.as_bytes(), "c.ply".as_ref())
                .unwrap_err()
                .to_string();
            assert!(want.iter().all(|w| e.contains(w)), "{e}");
        };
        // one colour bound without the others (the floats' bytes shift,
        // but the header is refused first)
        fails(
            &one().replace(
                "property float max_scale_z\n",
                "property float max_scale_z\nproperty float min_r\n",
            ),
            &["min_g", "min_r", "all six or none"],
        );
        // packed vertices without chunk bounds
        fails(
            &one().replace("element chunk 1\n", "element other 1\n"),
            &["chunk", "no `chunk` element"],
        );
        // sh properties with a gap, or an extra one
        let sh = String::from_utf8_lossy(&file(&w[..1], 1, Some(&[0; 9]))).into_owned();
        fails(
            &sh.replace("property uchar f_rest_8\n", "property uchar f_rest_20\n"),
            &["sh", "f_rest_0 to f_rest_7"],
        );
        fails(
            &sh.replace(
                "property uchar f_rest_8\n",
                "property uchar f_rest_8\nproperty float junk\n",
            ),
            &["sh", "10 properties"],
        );
        let e = parse_ply::<f32>(&file(&w, 1, None), "c.ply".as_ref()).unwrap_err();
        assert!(
            e.to_string().contains("chunk") && e.to_string().contains("at least 2"),
            "{e}"
        );
        let mut b = file(&w[..3], 1, None);
        b.truncate(b.len() - 1);
        let e = parse_ply::<f32>(&b, "c.ply".as_ref()).unwrap_err();
        assert!(
            e.to_string().contains("vertex") && e.to_string().contains("more than"),
            "{e}"
        );
        let b = String::from_utf8_lossy(&file(&w[..1], 1, None)).replace(
            "property uint packed_color\n",
            "property float packed_color\n",
        );
        let e = parse_ply::<f32>(b.as_bytes(), "c.ply".as_ref()).unwrap_err();
        assert!(e.to_string().contains("packed_color"), "{e}");
        let sh = [0u8; 9];
        let b = String::from_utf8_lossy(&file(&w[..1], 1, Some(&sh)))
            .replace("property uchar f_rest_8\n", "property int8 f_rest_8\n");
        let e = parse_ply::<f32>(b.as_bytes(), "c.ply".as_ref()).unwrap_err();
        assert!(
            e.to_string().contains("f_rest_8") && e.to_string().contains("uchar"),
            "{e}"
        );
        let b = String::from_utf8_lossy(&file(&w[..1], 1, None)).replace(
            "property float min_scale_x\n",
            "property float min_scale_q\n",
        );
        let e = parse_ply::<f32>(b.as_bytes(), "c.ply".as_ref()).unwrap_err();
        assert!(e.to_string().contains("min_scale_x"), "{e}");
    }
}
