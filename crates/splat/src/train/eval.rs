//! Scoring views: render with the current scene, PSNR and SSIM against
//! the photographs.

use super::{camera_of, exposure, TrainError, Trainer};
use crate::data::View;
use crate::loss;
use crate::three::render::render;
use crate::three::scene::Gaussians;
use rayon::prelude::*;

/// The evaluation of one view.
#[derive(Clone, Debug)]
pub struct ViewEval {
    /// The view's name.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The render, clipped to [0, 1], 3 values per pixel.
    pub rgb: Vec<f64>,
    /// PSNR in dB against the photograph (over the view's kept pixels
    /// when it has a mask).
    pub psnr: f64,
    /// Mean SSIM against the photograph (over the kept pixels when it has
    /// a mask: the render is replaced by the photograph in ignored pixels
    /// and the SSIM map averaged over the kept ones).
    pub ssim: f64,
    /// Whether the view has a mask (so the scores are over kept pixels).
    pub masked: bool,
    /// PSNR and SSIM by the original 3DGS's protocol for held-out photos
    /// under exposure compensation (see [`ViewScore::half_fit`]).
    pub half_fit: (f64, f64),
}

impl Trainer {
    /// Renders `views` with the current scene and scores them (PSNR and
    /// SSIM over the kept pixels of views with a mask). Views are scored in
    /// parallel (each on its own, so the same values on any thread count):
    /// the scoring is serial within a view.
    pub fn evaluate(&self, views: &[View]) -> Result<Vec<ViewEval>, TrainError> {
        let g: Gaussians<f32> = self.gaussians();
        let opts = self.render_options();
        let bg = opts.background;
        views
            .par_iter()
            .map(|v| {
                let (img, _) = render(&g, &camera_of(v), &opts)
                    .map_err(|e| TrainError::Render(e.to_string()))?;
                let s = score_view(&img.rgb, v, bg, img.width, img.height);
                Ok(ViewEval {
                    name: v.name.clone(),
                    width: img.width,
                    height: img.height,
                    psnr: s.psnr,
                    ssim: s.ssim,
                    masked: v.mask.is_some(),
                    half_fit: s.half_fit,
                    rgb: s.rgb,
                })
            })
            .collect()
    }
}

/// A render scored against its view's photograph.
#[derive(Clone, Debug)]
pub struct ViewScore {
    /// The render clipped to [0, 1], 3 values per pixel.
    pub rgb: Vec<f64>,
    /// PSNR in dB over the view's kept pixels (all without a mask).
    pub psnr: f64,
    /// Mean SSIM over the kept pixels (all without a mask).
    pub ssim: f64,
    /// PSNR and SSIM by the original 3DGS's protocol for held-out photos
    /// under exposure compensation: a colour transform (3×3 and offset)
    /// fitted by least squares on the left half of the photo (its kept
    /// pixels), applied to the render, and scored over the right half.
    /// Computed for every view, so that a run trained with `--exposure`
    /// and one without compare by the same rule.
    pub half_fit: (f64, f64),
}

/// Scores a `width × height` RGB render of `view` against its photograph
/// on the render's `background` (where the photo has an alpha plane: see
/// [`View::image_on`]), over the kept pixels of its mask: the one scoring
/// rule that training's evaluation and `chainrule render --data` share.
pub fn score_view(
    render_rgb: &[f32],
    view: &View,
    background: [f64; 3],
    width: usize,
    height: usize,
) -> ViewScore {
    let rgb: Vec<f64> = render_rgb
        .iter()
        .map(|&x| (x as f64).clamp(0.0, 1.0))
        .collect();
    let target: Vec<f64> = view
        .image_on(background.map(|c| c as f32))
        .iter()
        .map(|&x| x as f64)
        .collect();
    let mask = mask_f64(view);
    let m = mask.as_deref();
    ViewScore {
        psnr: loss::psnr_masked(&rgb, &target, m, 3),
        ssim: loss::ssim_values_masked(&rgb, &target, m, width, height, 3),
        half_fit: exposure::half_fit_scores(&rgb, &target, m, width, height),
        rgb,
    }
}

fn mask_f64(view: &View) -> Option<Vec<f64>> {
    view.mask
        .as_ref()
        .map(|m| m.iter().map(f64::from).collect())
}
