//! `chainrule export IN --format ply|splat|spz|compressed-ply|sog --out FILE`: convert a scene
//! (any input of [`crate::scene_input`] but a 2D fit) to the formats other
//! viewers read. See [`splat::formats`] for each format's quantisation.

use std::path::PathBuf;

use clap::Args;
use splat::formats::{encode_scene_as, SceneFormat};

use crate::error::{CliError, CliResult};
use crate::output::write_atomic;
use crate::scene_input::{self, SceneInput};
use crate::settings::RenderSettings;

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
    /// PlayCanvas's .sog (lossless WebP images in a zip, SH through a
    /// palette; read by SuperSplat, PlayCanvas and Spark): 8 times
    /// smaller than the PLY, larger than .spz (4.7 against 2.8 MB for a
    /// 148k-Gaussian capture model).
    Sog,
}

impl From<ExportFormat> for SceneFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Ply => SceneFormat::Ply,
            ExportFormat::Splat => SceneFormat::Splat,
            ExportFormat::Spz => SceneFormat::Spz,
            ExportFormat::CompressedPly => SceneFormat::CompressedPly,
            ExportFormat::Sog => SceneFormat::Sog,
        }
    }
}

impl From<SceneFormat> for ExportFormat {
    fn from(f: SceneFormat) -> Self {
        match f {
            SceneFormat::Ply => ExportFormat::Ply,
            SceneFormat::Splat => ExportFormat::Splat,
            SceneFormat::Spz => ExportFormat::Spz,
            SceneFormat::CompressedPly => ExportFormat::CompressedPly,
            SceneFormat::Sog => ExportFormat::Sog,
        }
    }
}

/// Arguments of `chainrule export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The scene: a 3DGS .ply (or .compressed.ply), a .splat, .spz or
    /// .sog file (or an unbundled SOG's meta.json or folder), a `train`
    /// output folder, a site folder written by `view
    /// --export`, or a model folder of the original 3DGS.
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The file to write, named with the format's extension (.ply,
    /// .splat, .spz, .compressed.ply, .sog; with --format sog, a name
    /// meta.json writes the SOG unbundled: meta.json and its WebP images
    /// loose in that folder, as splat-transform does); its folder is made
    /// if missing. Not the scene being exported, nor a `train` folder's
    /// scene in any format (point_cloud.ply, point_cloud.spz, …), nor a
    /// file in one of its checkpoints.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object instead of the sentence: `out`, `format`,
    /// `gaussians`, `sh_degree` and `antialiased` as the file written
    /// declares them (.splat keeps neither), `scene_antialiased` (the
    /// scene's drawing mode), `framed` (whether the file carries the
    /// training's framing and background in its header: a PLY or
    /// compressed PLY of a scene that has them), `bytes`, and the scene
    /// read (`input`, `input_bytes`). Errors are one JSON object
    /// too, `{"error": ..., "path": ...}`, with exit code 2.
    #[arg(long)]
    pub json: bool,
}

/// Writes `g` to `out` in `format` (atomically), declaring it
/// antialiased when `antialiased` (in the file, where the format can say
/// it: see [`splat::formats::declared_antialiased`]) and, in a PLY or
/// compressed PLY, carrying `framing` (the training's settings: up,
/// centre, background; [`RenderSettings::ply_comment`]) in its header;
/// returns the bytes written.
pub fn write_scene(
    g: &splat::three::Gaussians<f32>,
    format: ExportFormat,
    out: &std::path::Path,
    antialiased: bool,
    framing: Option<&RenderSettings>,
) -> CliResult<usize> {
    if format == ExportFormat::Sog && splat::formats::sog::is_meta_json(out) {
        return write_unbundled_sog(g, out, antialiased);
    }
    let mut bytes =
        encode_scene_as(g, format.into(), antialiased).map_err(|e| CliError::file(out, e))?;
    if let Some(f) = framing.filter(|_| SceneFormat::from(format).is_ply()) {
        bytes = splat::formats::with_ply_comment(bytes, &f.ply_comment())
            .map_err(|e| CliError::file(out, e))?;
    }
    write_atomic(out, &bytes)?;
    Ok(bytes.len())
}

/// Writes `g` as an unbundled SOG: `out` is its `meta.json`, and the
/// images go beside it, each atomically and `meta.json` last. An earlier
/// `meta.json` there is removed first: the images have fixed names, so a
/// run stopped half-way would otherwise leave it naming a mix of its own
/// images and new ones; this way the folder holds a whole SOG or no
/// `meta.json`. The earlier SOG's images that the new one does not use
/// (higher SH bands) are removed after. Refused when the folder holds
/// another unbundled SOG (another `*meta.json`), whose images these would
/// overwrite. Returns the bytes written.
fn write_unbundled_sog(
    g: &splat::three::Gaussians<f32>,
    out: &std::path::Path,
    antialiased: bool,
) -> CliResult<usize> {
    use splat::formats::sog;
    let dir = scene_input::scene_folder(out);
    let own = out.file_name().map(|n| n.to_os_string());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let other = e.path();
            if Some(e.file_name()) != own && sog::is_unbundled(&other) {
                return Err(CliError::file(
                    out,
                    format!(
                        "its folder holds another unbundled SOG, {}, whose images this one's \
                         would overwrite (they have fixed names); write to another folder",
                        other.display()
                    ),
                ));
            }
        }
    }
    let earlier = sog::unbundled_files(out).unwrap_or_default();
    let files = sog::to_files_as(g, antialiased).map_err(|e| CliError::file(out, e))?;
    match std::fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(CliError::file(out, format!("cannot replace: {e}")));
        }
        _ => {}
    }
    let mut total = 0;
    for (name, bytes) in &files {
        let file = if name == "meta.json" {
            out.to_path_buf()
        } else {
            dir.join(name)
        };
        write_atomic(&file, bytes)?;
        total += bytes.len();
    }
    // (the first of `earlier` is the meta.json itself, rewritten)
    for stale in earlier.iter().skip(1) {
        if !files.iter().any(|(n, _)| n == stale) {
            let path = dir.join(stale);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::output::warn(format!(
                        "{}: cannot remove the earlier SOG's image: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(total)
}

/// Whether the scene at `input` (read from `file`) is antialiased, as
/// [`scene_input::antialiased`] decides, and the settings that frame it
/// (its training's, or those made up for an original 3DGS model folder),
/// with that drawing mode; training settings that cannot be read are an
/// error, as `render` and `view` make them (a shared copy would silently
/// lose its framing).
pub fn scene_settings(
    input: &std::path::Path,
    file: &std::path::Path,
) -> CliResult<(bool, Option<RenderSettings>)> {
    let (settings, model) = RenderSettings::find_with_model(input)?;
    let antialiased = scene_input::antialiased(settings.as_ref(), model.as_ref(), input, file);
    let framing = settings.map(|s| RenderSettings { antialiased, ..s });
    Ok((antialiased, framing))
}

/// Refuses an `--out` whose name says another format than `--format` (the
/// file would not read back as the name promises), or that would replace
/// the scene being exported or a `train` folder's own scene
/// (`point_cloud.*`), or go into a checkpoint (a folder with `state.bin`).
fn check_out(a: &ExportArgs, file: &std::path::Path) -> CliResult {
    let want = SceneFormat::from(a.format);
    let named = SceneFormat::from_path(&a.out);
    if named != Some(want) {
        let read_as = match named {
            Some(_) if splat::formats::sog::is_meta_json(&a.out) => {
                " (a meta.json name is read as an unbundled SOG)".to_string()
            }
            Some(f) => format!(" (a .{} name is read as that format)", f.extension()),
            None => String::new(),
        };
        let or_unbundled = match want {
            SceneFormat::Sog => ", or DIR/meta.json for its files unbundled in DIR",
            _ => "",
        };
        return Err(CliError::file(
            &a.out,
            format!(
                "--out: this --format writes a .{} file{or_unbundled}; name it so (readers here \
                 and elsewhere choose the format by the name){read_as}",
                want.extension()
            ),
        ));
    }
    if crate::output::same_file(&a.out, file) {
        return Err(CliError::file(
            &a.out,
            "--out: that is the scene being exported; write to another file",
        ));
    }
    let folder = scene_input::scene_folder(&a.out);
    if folder.join("state.bin").is_file() {
        return Err(CliError::file(
            &a.out,
            "--out: that folder is a training checkpoint (it holds state.bin), which a resume \
             reads whole; write to another folder",
        ));
    }
    // a train folder's scene in any format (`train --export` writes
    // point_cloud.spz and the like beside point_cloud.ply)
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    let own_scene = name.as_deref().is_some_and(|n| {
        n.strip_prefix("point_cloud.").is_some_and(|ext| {
            SceneFormat::from_path(std::path::Path::new(&format!("x.{ext}"))).is_some()
        })
    });
    if own_scene
        && (folder.join(crate::settings::FILE).is_file()
            || crate::original_3dgs::root_of(&a.out).is_some())
    {
        return Err(CliError::usage(format!(
            "--out {}: that is the scene of a `chainrule train` folder, a site or an \
             original 3DGS model; write to another file",
            a.out.display()
        )));
    }
    Ok(())
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
    // (an empty file is most often a failed copy or download: a valid
    // empty scene written from it would hide that, as view and render
    // refuse it)
    if g.is_empty() {
        return Err(CliError::file(&file, "the scene has no Gaussians"));
    }
    // the drawing mode goes with the scene, so other viewers draw it as
    // it was trained
    check_out(&a, &file)?;
    let (antialiased, framing) = scene_settings(&a.input, &file)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::output::ensure_dir(dir)?;
    }
    let n = write_scene(&g, a.format, &a.out, antialiased, framing.as_ref())?;
    // (the formats whose header carries the framing)
    let ply = SceneFormat::from(a.format).is_ply();
    let before = match splat::formats::sog::is_meta_json(&file) {
        // the SOG's files together, not its meta.json alone
        true => splat::formats::sog::unbundled_size(&file).unwrap_or(0),
        false => std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
    };
    if a.json {
        use clap::ValueEnum;
        let format = a
            .format
            .to_possible_value()
            .map(|v| v.get_name().to_string());
        let sh_degree = match a.format {
            ExportFormat::Splat => 0,
            _ => g.sh_degree,
        };
        println!(
            "{}",
            crate::output::with_warnings(serde_json::json!({
                "out": a.out.display().to_string(), "format": format,
                "gaussians": g.len(), "sh_degree": sh_degree,
                // as the file declares it (.splat cannot)
                "antialiased": antialiased && a.format != ExportFormat::Splat,
                "scene_antialiased": antialiased, "bytes": n,
                "framed": framing.is_some() && ply,
                "input": file.display().to_string(), "input_bytes": before,
            }))
        );
        return Ok(());
    }
    if framing.is_some() && !ply {
        eprintln!(
            "note: a .{} file has no room for the training's framing and background (up, \
             centre, the cameras' side), which a .ply or .compressed.ply carries in its header \
             and a site (`view --export`) in its settings.json: on its own it opens framed about \
             its splats, up +z",
            SceneFormat::from(a.format).extension()
        );
    }
    println!(
        "wrote {} ({} Gaussians, SH degree {}{}, {n} bytes; {} was {before} bytes)",
        a.out.display(),
        g.len(),
        match a.format {
            ExportFormat::Splat => "0 (.splat keeps the colour only)".to_string(),
            _ => g.sh_degree.to_string(),
        },
        match (antialiased, a.format) {
            (false, _) => "",
            (true, ExportFormat::Splat) => ", antialiased (which .splat cannot record)",
            (true, _) => ", antialiased",
        },
        file.display()
    );
    Ok(())
}
