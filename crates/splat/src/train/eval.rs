//! Scoring views: render with the current scene, PSNR and SSIM against
//! the photographs.

use super::{camera_of, TrainError, Trainer};
use crate::data::View;
use crate::loss;
use crate::three::render::render;
use crate::three::scene::Gaussians;

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
    /// PSNR in dB against the photograph.
    pub psnr: f64,
    /// Mean SSIM against the photograph.
    pub ssim: f64,
}

impl Trainer {
    /// Renders `views` with the current scene and scores them.
    pub fn evaluate(&self, views: &[View]) -> Result<Vec<ViewEval>, TrainError> {
        let g: Gaussians<f32> = self.gaussians();
        let opts = self.render_options();
        views
            .iter()
            .map(|v| {
                let (img, _) = render(&g, &camera_of(v), &opts)
                    .map_err(|e| TrainError::Render(e.to_string()))?;
                let rgb: Vec<f64> = img
                    .rgb
                    .iter()
                    .map(|&x| (x as f64).clamp(0.0, 1.0))
                    .collect();
                let target: Vec<f64> = v.image.iter().map(|&x| x as f64).collect();
                Ok(ViewEval {
                    name: v.name.clone(),
                    width: img.width,
                    height: img.height,
                    psnr: loss::psnr(&rgb, &target),
                    ssim: loss::ssim_values(&rgb, &target, img.width, img.height, 3),
                    rgb,
                })
            })
            .collect()
    }
}
