//! `chainrule export IN --format ply|splat|spz|compressed-ply --out FILE`: convert a scene
//! (any input of [`crate::scene_input`] but a 2D fit) to the formats other
//! viewers read. See [`splat::formats`] for each format's quantisation.

use std::path::PathBuf;

use clap::Args;
use splat::formats::{encode_scene, SceneFormat};

use crate::error::{CliError, CliResult};
use crate::output::write_atomic;
use crate::scene_input::{self, SceneInput};

/// Output formats of `export` (and `train --export`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The original 3DGS exporter's PLY (float32, full SH).
    Ply,
    /// antimatter15's 32-byte records (DC colour only).
    Splat,
    /// Niantic's .spz version 3 (gzip, quantised, SH kept).
    Spz,
    /// SuperSplat's .compressed.ply (quantised in chunks of 256, SH kept;
    /// as PlayCanvas's splat-transform writes it).
    CompressedPly,
}

impl From<ExportFormat> for SceneFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Ply => SceneFormat::Ply,
            ExportFormat::Splat => SceneFormat::Splat,
            ExportFormat::Spz => SceneFormat::Spz,
            ExportFormat::CompressedPly => SceneFormat::CompressedPly,
        }
    }
}

/// Arguments of `chainrule export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The scene: a 3DGS .ply, a .splat or .spz file, a `train` output
    /// folder, or a site folder written by `view --export`.
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes `g` to `out` in `format` (atomically); returns the bytes written.
pub fn write_scene(
    g: &splat::three::Gaussians<f32>,
    format: ExportFormat,
    out: &std::path::Path,
) -> CliResult<usize> {
    let bytes = encode_scene(g, format.into()).map_err(|e| CliError::file(out, e))?;
    write_atomic(out, &bytes)?;
    Ok(bytes.len())
}

/// Runs `chainrule export`.
pub fn run(a: ExportArgs) -> CliResult {
    let (file, g) = match scene_input::open(&a.input)? {
        SceneInput::Scene3d { file, gaussians } => (file, gaussians),
        SceneInput::Fit2d { file } => {
            return Err(CliError::file(
                &file,
                "a 2D fit has no 3D scene to export (use `chainrule render` for an image)",
            ))
        }
    };
    let n = write_scene(&g, a.format, &a.out)?;
    let before = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({} Gaussians, SH degree {}, {n} bytes; {} was {before} bytes)",
        a.out.display(),
        g.len(),
        g.sh_degree,
        file.display()
    );
    Ok(())
}
