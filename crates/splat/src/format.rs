//! The file format of fitted 2D Gaussians: JSON, versioned.
//!
//! ```json
//! {
//!   "format": "chainrule-gaussians-2d",
//!   "version": 1,
//!   "width": 256, "height": 256,
//!   "background": [0.0, 0.0, 0.0],
//!   "blend": "over",
//!   "mean": [[x, y], ...],
//!   "chol": [[ln_l11, l21_over_l11, ln_l22], ...],
//!   "color": [[r, g, b], ...],
//!   "opacity_logit": [o, ...]
//! }
//! ```
//!
//! `mean` is in `[0, 1]²` of the image (x right, y down); `chol` is the
//! Cholesky factor of the covariance in those units, stored as
//! `(ln l11, l21/l11, ln l22)`; `color` is RGB in the picture's own encoding
//! (its stored values as fractions of their range, so sRGB for an ordinary
//! photo; unclamped);
//! `opacity = sigmoid(opacity_logit)`. `width`/`height` are the size the
//! model was fitted at; rendering at any other size scales the picture.
//! Reading rejects non-finite numbers and degenerate Gaussians (a log
//! factor beyond ±[`MAX_LN_FACTOR`], a shear beyond [`MAX_SHEAR`]).
//! The Gaussians are composited front to back in file order.

use serde::{Deserialize, Serialize};

use crate::model2d::Gaussians2d;
use crate::raster::Blend;

/// The value of the `format` field.
pub const FORMAT_NAME: &str = "chainrule-gaussians-2d";
/// The current version.
pub const FORMAT_VERSION: u32 = 1;
/// Largest `|ln l11|`, `|ln l22|` a file may hold: a standard deviation
/// between `e^-30` and `e^30` image sizes. Beyond it the covariance
/// overflows or vanishes in floating point (degenerate Gaussians), so
/// [`GaussianFile::from_json`] rejects the file instead of rendering NaN.
pub const MAX_LN_FACTOR: f64 = 30.0;
/// Largest `|l21/l11|` a file may hold (same reason as [`MAX_LN_FACTOR`]).
pub const MAX_SHEAR: f64 = 1e6;

/// A fitted model as stored on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianFile {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Width the model was fitted at.
    pub width: usize,
    /// Height the model was fitted at.
    pub height: usize,
    /// Background colour.
    pub background: [f64; 3],
    /// `"over"` or `"sum"`.
    pub blend: String,
    /// Positions.
    pub mean: Vec<[f64; 2]>,
    /// Cholesky factors.
    pub chol: Vec<[f64; 3]>,
    /// Colours.
    pub color: Vec<[f64; 3]>,
    /// Opacity logits.
    pub opacity_logit: Vec<f64>,
}

/// Why a file is not a valid model.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not JSON of the right shape.
    #[error("not a chainrule Gaussians file: {0}")]
    Json(String),
    /// A field has a bad value.
    #[error("field `{field}`: {message}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn blend_name(b: Blend) -> &'static str {
    match b {
        Blend::Over => "over",
        Blend::Sum => "sum",
    }
}

impl GaussianFile {
    /// Packs a model.
    pub fn new(
        g: &Gaussians2d,
        width: usize,
        height: usize,
        background: [f64; 3],
        blend: Blend,
    ) -> Self {
        let n = g.n;
        let p = &g.params;
        GaussianFile {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            width,
            height,
            background,
            blend: blend_name(blend).into(),
            mean: (0..n).map(|k| [p[2 * k], p[2 * k + 1]]).collect(),
            chol: (0..n)
                .map(|k| [p[2 * n + 3 * k], p[2 * n + 3 * k + 1], p[2 * n + 3 * k + 2]])
                .collect(),
            color: (0..n)
                .map(|k| [p[5 * n + 3 * k], p[5 * n + 3 * k + 1], p[5 * n + 3 * k + 2]])
                .collect(),
            opacity_logit: p[8 * n..].to_vec(),
        }
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serialises")
    }

    /// Parses and validates JSON text.
    ///
    /// ```
    /// use splat::{format::GaussianFile, model2d::{Gaussians2d, Init}, raster::Blend};
    /// let g = Gaussians2d::init(3, 1, Init::Peer, None);
    /// let f = GaussianFile::new(&g, 8, 8, [0.0; 3], Blend::Over);
    /// let back = GaussianFile::from_json(&f.to_json()).unwrap();
    /// assert_eq!(back.model().unwrap().0, g);
    /// ```
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        let f: GaussianFile =
            serde_json::from_str(text).map_err(|e| FormatError::Json(e.to_string()))?;
        let field = |field: &str, message: String| FormatError::Field {
            field: field.into(),
            message,
        };
        if f.format != FORMAT_NAME {
            return Err(field(
                "format",
                format!("is {:?}, expected {FORMAT_NAME:?}", f.format),
            ));
        }
        if f.version != FORMAT_VERSION {
            return Err(field(
                "version",
                format!(
                    "is {}, this build reads version {FORMAT_VERSION}",
                    f.version
                ),
            ));
        }
        if f.width == 0 || f.height == 0 {
            return Err(field(
                "width",
                format!("size {}x{} is empty", f.width, f.height),
            ));
        }
        let n = f.mean.len();
        for (name, len) in [
            ("chol", f.chol.len()),
            ("color", f.color.len()),
            ("opacity_logit", f.opacity_logit.len()),
        ] {
            if len != n {
                return Err(field(name, format!("has {len} entries but `mean` has {n}")));
            }
        }
        f.blend()?;
        let all = f
            .mean
            .iter()
            .flatten()
            .chain(f.chol.iter().flatten())
            .chain(f.color.iter().flatten())
            .chain(&f.opacity_logit)
            .chain(&f.background);
        if all.into_iter().any(|v| !v.is_finite()) {
            return Err(field("values", "contain a non-finite number".into()));
        }
        for (i, c) in f.chol.iter().enumerate() {
            if c[0].abs() > MAX_LN_FACTOR || c[2].abs() > MAX_LN_FACTOR || c[1].abs() > MAX_SHEAR {
                return Err(field(
                    "chol",
                    format!(
                        "Gaussian {i}: {c:?} is degenerate (want |ln l11|, |ln l22| <= {MAX_LN_FACTOR} and |l21/l11| <= {MAX_SHEAR:e})"
                    ),
                ));
            }
        }
        Ok(f)
    }

    /// The blend mode.
    pub fn blend(&self) -> Result<Blend, FormatError> {
        match self.blend.as_str() {
            "over" => Ok(Blend::Over),
            "sum" => Ok(Blend::Sum),
            other => Err(FormatError::Field {
                field: "blend".into(),
                message: format!("is {other:?}, expected \"over\" or \"sum\""),
            }),
        }
    }

    /// The model, its background and blend mode.
    pub fn model(&self) -> Result<(Gaussians2d, [f64; 3], Blend), FormatError> {
        let flat = |v: &[[f64; 3]]| -> Vec<f64> { v.iter().flatten().copied().collect() };
        let mean: Vec<f64> = self.mean.iter().flatten().copied().collect();
        let g = Gaussians2d::from_groups(
            &mean,
            &flat(&self.chol),
            &flat(&self.color),
            &self.opacity_logit,
        )
        .ok_or_else(|| FormatError::Json("group lengths differ".into()))?;
        Ok((g, self.background, self.blend()?))
    }
}
