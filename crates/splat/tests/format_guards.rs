//! The fitted-Gaussians reader rejects degenerate Gaussians (their
//! covariance would overflow or vanish and render as NaN) with a message
//! naming the field and the Gaussian, and accepts the limits themselves.

use splat::format::{GaussianFile, MAX_LN_FACTOR, MAX_SHEAR};

fn file(chol: [f64; 3]) -> String {
    serde_json::json!({
        "format": "chainrule-gaussians-2d", "version": 1, "width": 8, "height": 8,
        "background": [0.0, 0.0, 0.0], "blend": "over",
        "mean": [[0.5, 0.5], [0.1, 0.2]], "chol": [[0.0, 0.0, 0.0], chol],
        "color": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "opacity_logit": [0.0, 1.0]
    })
    .to_string()
}

#[test]
fn degenerate_chol_is_rejected_naming_the_gaussian() {
    for bad in [
        [-MAX_LN_FACTOR - 0.5, 0.0, 0.0],
        [0.0, 0.0, MAX_LN_FACTOR + 0.5],
        [0.0, -2.0 * MAX_SHEAR, 0.0],
        [-1000.0, 0.0, 0.0],
    ] {
        let e = GaussianFile::from_json(&file(bad)).unwrap_err().to_string();
        assert!(
            e.contains("chol") && e.contains("Gaussian 1"),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn limits_are_accepted_and_render_finite() {
    for ok in [
        [MAX_LN_FACTOR, MAX_SHEAR, -MAX_LN_FACTOR],
        [-MAX_LN_FACTOR, -MAX_SHEAR, MAX_LN_FACTOR],
        [-5.0, 0.3, -4.0],
    ] {
        let f = GaussianFile::from_json(&file(ok)).unwrap();
        let (g, bg, blend) = f.model().unwrap();
        let img = splat::model2d::render(&g, 8, 8, bg, blend);
        assert!(img.iter().all(|v| v.is_finite()), "{ok:?}");
    }
}
