//! `settings.json` in a `train` output folder: what a render needs to look
//! like training did (background, SH degree, antialiased mode, the
//! dataset's kind and folder) and how to frame the scene (the cameras'
//! focus, mean up, distance and elevation). `train` writes it atomically
//! (version 1); `view --export` writes a copy into its site without the
//! dataset's folder (version 2: `dataset` is `null`). `render` and `view`
//! of the folder or of a scene file beside it read it, so no flags are
//! needed; flags given override it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use splat::data::{capture, Dataset};

use crate::error::{CliError, CliResult};
use crate::output::write_atomic;

/// The file's name inside the output folder.
pub const FILE: &str = "settings.json";
pub(crate) const FORMAT: &str = "chainrule-render-settings";

/// The settings: version 1 (`train`) always names the dataset; version 2
/// (a site's copy) may not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderSettings {
    /// Always `chainrule-render-settings`.
    pub format: String,
    /// 1, or 2 when `dataset` is `None` (older readers, which expect a
    /// path, then refuse the file by its version rather than misread it).
    pub version: u32,
    /// Background colour, RGB in [0, 1].
    pub background: [f64; 3],
    /// Largest spherical-harmonic degree trained.
    pub sh_degree: usize,
    /// Mip-Splatting's antialiased projection.
    pub antialiased: bool,
    /// `nerf-synthetic` or `colmap`.
    pub dataset_kind: String,
    /// The dataset folder trained on: absolute, so renders from another
    /// working folder find it (older files hold the path as given).
    /// `null` in a site written by `view --export`, which is shared
    /// without the photos.
    pub dataset: Option<PathBuf>,
    /// The cameras' mean up direction (unit).
    pub up: [f64; 3],
    /// The point nearest all the cameras' optical axes.
    pub center: [f64; 3],
    /// The cameras' median distance from `center`.
    pub radius: f64,
    /// The cameras' mean elevation above `center`'s plane, degrees.
    pub elevation_deg: f64,
    /// Where the cameras stand to one side of `center` (a forward-facing
    /// capture): the unit direction toward them in the orbit's plane, so
    /// that an orbit starts there and its first frame (a GIF's thumbnail)
    /// shows the side the photos saw. Absent when they surround it, and
    /// in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facing: Option<[f64; 3]>,
    /// `train --downscale` when given (`None`: photos wider than 1,600
    /// pixels were scaled to 1,600), so renders of the dataset match.
    #[serde(default)]
    pub downscale: Option<u32>,
    /// `train --invert-masks`, so that `render --data` scores the pixels
    /// training scored.
    #[serde(default)]
    pub invert_masks: bool,
    /// `train --exposure`: the run learned a colour transform per training
    /// photo (kept in its checkpoints, not here), so a render of its
    /// training photos from a shared copy says they are scored without
    /// them. Absent when false, and in older files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exposure: bool,
}

/// The dataset path `settings.json` keeps: absolute, so that renders from
/// another working folder find it, and resolved (`canonicalize`), except
/// for a COLMAP model folder (`DATA/sparse/1`), which keeps its names: it
/// may be a link to a folder elsewhere, and only its place under `sparse/`
/// says which dataset's photos it poses.
pub(crate) fn stored_dataset_path(dataset: &Path) -> PathBuf {
    if splat::data::colmap::dataset_of_model(dataset).is_some() {
        if let Ok(abs) = std::path::absolute(dataset) {
            // rebuilt from its parts: no trailing `/` or `.` parts
            return abs.components().collect();
        }
    }
    std::fs::canonicalize(dataset).unwrap_or_else(|_| dataset.to_path_buf())
}

/// What loading `dataset` reads, resolved, so that two paths can be
/// compared: a COLMAP dataset's model folder (the one named, else the one
/// with the most photos), a nerfstudio folder's `transforms.json` (the
/// same whether the folder or the file is named), else the dataset folder
/// itself; `None` when the path cannot be resolved (moved, or not a
/// dataset).
pub(crate) fn loaded_from(dataset: &Path) -> Option<PathBuf> {
    use splat::data::colmap::{dataset_of_model, model_folder};
    let kind = splat::data::detect(dataset);
    let read = if kind == Some("colmap") && dataset_of_model(dataset).is_none() {
        model_folder(dataset)
    } else if kind == Some("nerfstudio") && dataset.is_dir() {
        dataset.join(splat::data::nerfstudio::FILE)
    } else {
        dataset.to_path_buf()
    };
    std::fs::canonicalize(read).ok()
}

impl RenderSettings {
    /// The settings of a training run on `ds` (read from `dataset`).
    pub fn of_training(
        ds: &Dataset,
        dataset: &Path,
        background: [f64; 3],
        sh_degree: usize,
        antialiased: bool,
    ) -> RenderSettings {
        let views: Vec<_> = ds.views().cloned().collect();
        let xyz: Option<Vec<[f64; 3]>> = ds
            .points
            .as_ref()
            .map(|p| p.iter().map(|p| p.xyz).collect());
        let center = capture::focus_within(&views, xyz.as_deref()).unwrap_or([0.0; 3]);
        let up = capture::mean_up(&views).unwrap_or([0.0, 0.0, 1.0]);
        RenderSettings {
            format: FORMAT.into(),
            version: 1,
            background,
            sh_degree,
            antialiased,
            dataset_kind: ds.format.into(),
            dataset: Some(stored_dataset_path(dataset)),
            up,
            center,
            radius: capture::median_distance(&views, center),
            elevation_deg: capture::mean_elevation(&views, center, up).to_degrees(),
            facing: capture::facing(&views, center, up),
            downscale: None,
            invert_masks: false,
            exposure: false,
        }
    }

    /// How to load the dataset for a render as training loaded it.
    pub fn load_options(s: Option<&RenderSettings>) -> (u32, Option<u32>) {
        match s.and_then(|s| s.downscale) {
            Some(d) => (d, None),
            None => (1, Some(1600)),
        }
    }

    /// The file's text (pretty JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// These settings for a site shared without its photos: no dataset,
    /// so version 2.
    pub fn without_dataset(self) -> RenderSettings {
        RenderSettings {
            version: 2,
            dataset: None,
            ..self
        }
    }

    /// Writes `dir/settings.json` atomically.
    pub fn write(&self, dir: &Path) -> CliResult {
        write_atomic(&dir.join(FILE), self.to_json().as_bytes())
    }

    /// Reads and checks a settings file.
    pub fn read(path: &Path) -> CliResult<RenderSettings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::file(path, format!("cannot read: {e}")))?;
        Self::parse(&text, path)
    }

    /// The header comment that carries these settings inside a PLY file
    /// (without the dataset, as a site's copy: a shared file does not
    /// name a folder of the machine it was made on), so that a scene file
    /// shared alone still opens framed and drawn as training did:
    /// `comment chainrule-render-settings {JSON}`, the JSON on one line.
    pub fn ply_comment(&self) -> String {
        let json =
            serde_json::to_string(&self.clone().without_dataset()).expect("plain data serialises");
        format!("{FORMAT} {json}")
    }

    /// The settings a PLY or compressed PLY file carries in its header
    /// ([`RenderSettings::ply_comment`]); `None` when it carries none. A
    /// comment that cannot be read is warned about, naming the file, and
    /// left out: the scene itself is still drawn.
    pub fn embedded_in(file: &Path) -> Option<RenderSettings> {
        if !splat::formats::SceneFormat::from_path(file).is_some_and(|f| f.is_ply()) {
            return None;
        }
        let comments = splat::formats::ply_comments_in(file)?;
        // the last such comment decides, as for the drawing mode (one
        // with nothing after the keyword is warned about as any other
        // that cannot be read)
        let json = comments.iter().rev().find_map(|c| {
            let rest = c.strip_prefix(FORMAT)?;
            (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
        })?;
        let parsed = match json {
            "" => Err(CliError::file(file, "the comment holds no settings")),
            json => Self::parse(json, file),
        };
        match parsed {
            // (a shared file does not send a render to a folder of its
            // choosing: a carried dataset is dropped, as writers leave it)
            Ok(s) => Some(s.without_dataset()),
            Err(e) => {
                let why = match e {
                    CliError::File { message, .. } => message,
                    other => other.to_string(),
                };
                crate::output::warn(format!(
                    "{}: its header comment {FORMAT} is left out: {why}",
                    file.display()
                ));
                None
            }
        }
    }

    /// Checks the text of settings read from `path` (named in errors).
    fn parse(text: &str, path: &Path) -> CliResult<RenderSettings> {
        let bad = |what: &str| Err(CliError::file(path, what.to_string()));
        // the format and version first: a newer file's fields are not ours
        // to name as missing
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            let version = v.get("version").and_then(|x| x.as_u64());
            if v.get("format").and_then(|x| x.as_str()) == Some(FORMAT)
                && !version.is_some_and(|n| (1..=2).contains(&n))
            {
                let newer = if version.is_some_and(|n| n > 2) {
                    " (written by a newer chainrule?)"
                } else {
                    ""
                };
                return bad(&format!(
                    "version {}: this chainrule reads versions 1 and 2 of \
                     chainrule-render-settings{newer}",
                    v.get("version")
                        .map_or("missing".to_string(), |x| x.to_string())
                ));
            }
        }
        let mut s: RenderSettings =
            serde_json::from_str(text).map_err(|e| CliError::file(path, e.to_string()))?;
        if s.format != FORMAT || !(1..=2).contains(&s.version) {
            return bad("not a version 1 or 2 chainrule-render-settings file");
        }
        if s.version == 1 && s.dataset.is_none() {
            return bad("dataset: a version 1 file names its dataset");
        }
        if !s.is_finite() {
            return bad("every number must be finite");
        }
        if s.background.iter().any(|c| !(0.0..=1.0).contains(c)) {
            return bad("background: each value must be in [0, 1]");
        }
        if s.sh_degree > 3 {
            return bad("sh_degree: must be 0 to 3");
        }
        let norm = s.up.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-6 {
            return bad("up: must not be zero");
        }
        // (a unit vector for every reader: the orbit and the page assume
        // one; a unit one to rounding, as `train` writes it, is kept)
        if (norm - 1.0).abs() > 1e-9 {
            s.up = s.up.map(|x| x / norm);
        }
        if s.radius < 0.0 {
            return bad("radius: must not be negative");
        }
        if s.downscale.is_some_and(|d| !(1..=64).contains(&d)) {
            return bad("downscale: must be 1 to 64");
        }
        Ok(s)
    }

    /// Where the settings of `scene` (a `train` folder, or a scene file
    /// in one) are: `settings.json` in that folder.
    pub fn path_for(scene: &Path) -> PathBuf {
        crate::scene_input::scene_folder(scene).join(FILE)
    }

    /// The settings that go with a scene: `settings.json` in the folder
    /// itself (a `train` output) or beside the file (its PLY), else those
    /// of an original 3DGS model folder that the scene is in (framed by
    /// its `cameras.json` and `input.ply`: [`crate::original_3dgs`]), else
    /// those the file carries in its header (a PLY shared alone:
    /// [`RenderSettings::embedded_in`]); `None` when there are none.
    pub fn find(scene: &Path) -> CliResult<Option<RenderSettings>> {
        Ok(Self::find_with_model(scene)?.0)
    }

    /// [`RenderSettings::find`], with the original 3DGS model folder the
    /// settings came from when they came from one (its cameras are then
    /// `render --path`'s and `view`'s).
    pub fn find_with_model(
        scene: &Path,
    ) -> CliResult<(Option<RenderSettings>, Option<crate::original_3dgs::Model>)> {
        let file = Self::path_for(scene);
        // ours, read (and an error when it cannot be: render, view and
        // export all refuse it alike); another program's file of that
        // name, left out with a warning
        if file.is_file() {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::file(&file, format!("cannot read: {e}")))?;
            // (by the format's name anywhere in it: ours, however broken)
            let ours = text.contains(FORMAT);
            if ours {
                return Ok((Some(Self::parse(&text, &file)?), None));
            }
            crate::output::warn(format!(
                "{}: not chainrule's settings (it does not name {FORMAT}), left out",
                file.display()
            ));
        }
        Ok(match crate::original_3dgs::find_or_warn(scene) {
            Some((m, s)) => (Some(s), Some(m)),
            None => {
                // a folder's scene: a train folder's file, without its
                // settings.json
                let file = match scene.is_dir() {
                    true => scene.join("point_cloud.ply"),
                    false => scene.to_path_buf(),
                };
                (
                    file.is_file().then(|| Self::embedded_in(&file)).flatten(),
                    None,
                )
            }
        })
    }

    /// Whether every number is finite (as [`RenderSettings::read`] requires).
    pub fn is_finite(&self) -> bool {
        self.background
            .iter()
            .chain(&self.up)
            .chain(&self.center)
            .chain([&self.radius, &self.elevation_deg])
            .all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RenderSettings {
        RenderSettings {
            format: FORMAT.into(),
            version: 1,
            background: [0.0; 3],
            sh_degree: 3,
            antialiased: false,
            dataset_kind: "colmap".into(),
            dataset: Some("data/room".into()),
            up: [0.0, -0.8, -0.6],
            center: [0.1, 0.2, 0.3],
            radius: 2.5,
            elevation_deg: 10.0,
            facing: Some([0.6, 0.0, -0.8]),
            downscale: Some(2),
            invert_masks: true,
            exposure: true,
        }
    }

    #[test]
    fn written_settings_read_back_beside_the_ply() {
        let d = std::env::temp_dir().join(format!("chainrule-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        // `exposure` is left out when false, and a file without it (an
        // older one) reads as false; an up of any length reads as a unit one
        let plain = RenderSettings {
            exposure: false,
            up: [0.0, 0.0, 2.0],
            ..sample()
        };
        let text = plain.to_json();
        assert!(!text.contains("exposure"), "{text}");
        let back = RenderSettings::parse(&text, Path::new("s.json")).unwrap();
        assert_eq!(back.up, [0.0, 0.0, 1.0]);
        assert!(!back.exposure);
        assert!(sample().to_json().contains("\"exposure\": true"));
        assert_eq!(RenderSettings::find(&d).unwrap(), None);
        sample().write(&d).unwrap();
        assert_eq!(RenderSettings::find(&d).unwrap(), Some(sample()));
        assert_eq!(
            RenderSettings::find(&d.join("point_cloud.ply")).unwrap(),
            Some(sample())
        );
        let mut bad = sample();
        bad.sh_degree = 9;
        bad.write(&d).unwrap();
        let e = RenderSettings::find(&d).unwrap_err().to_string();
        assert!(
            e.contains("settings.json") && e.contains("sh_degree"),
            "{e}"
        );
        // a site's copy: version 2, no dataset; version 1 must name one
        let site = sample().without_dataset();
        site.write(&d).unwrap();
        assert_eq!(RenderSettings::find(&d).unwrap(), Some(site.clone()));
        let v1 = RenderSettings { version: 1, ..site };
        v1.write(&d).unwrap();
        let e = RenderSettings::find(&d).unwrap_err().to_string();
        assert!(e.contains("dataset"), "{e}");
        std::fs::write(d.join(FILE), format!(r#"{{"format": "{FORMAT}", "#)).unwrap();
        let e = RenderSettings::find(&d).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        // another program's settings.json: left out (with a warning)
        std::fs::write(d.join(FILE), r#"{"theme": "dark"}"#).unwrap();
        assert_eq!(RenderSettings::find(&d).unwrap(), None);
        std::fs::write(d.join(FILE), "{").unwrap();
        assert_eq!(RenderSettings::find(&d).unwrap(), None);
        // a newer version's file: its version is named, not a field it lacks
        let newer = format!(r#"{{"format": "{FORMAT}", "version": 99, "fields": "of its own"}}"#);
        std::fs::write(d.join(FILE), newer).unwrap();
        let e = RenderSettings::find(&d).unwrap_err().to_string();
        assert!(
            e.contains("version 99") && !e.contains("missing field"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
