//! Checkpoints: the scene as a 3DGS PLY file, the optimiser's moments and
//! the densification statistics in `state.bin`, published by atomically
//! replacing `latest.json`.

use std::path::{Path, PathBuf};

use super::config::check_config;
use super::exposure::{EXPOSURE_PARAMS, IDENTITY};
use super::{TrainConfig, TrainError, Trainer, GROUPS};
use crate::adam::Adam;
use crate::atomic::write_atomic;
use crate::data::Dataset;
use crate::three::ply;
use crate::three::scene::Gaussians;

fn ck_err(path: &Path, m: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: m.to_string(),
    }
}

/// Reads one of a checkpoint's binary files: `magic`, the count `n` as a
/// little-endian `u64`, then `payload` bytes, which it returns. A file of
/// another length, magic or count is an error naming it as not `what`
/// (for example "a state file for 12 Gaussians").
fn read_counted(
    path: &Path,
    magic: &[u8; 8],
    n: usize,
    payload: usize,
    what: &str,
) -> Result<Vec<u8>, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| ck_err(path, format!("cannot read: {e}")))?;
    let want = 16 + payload;
    if bytes.len() != want || &bytes[..8] != magic || bytes[8..16] != (n as u64).to_le_bytes() {
        return Err(ck_err(
            path,
            format!("not {what} ({} bytes, expected {want})", bytes.len()),
        ));
    }
    Ok(bytes)
}

const STATE_MAGIC: &[u8; 8] = b"CRTRAIN1";
const EXPOSURE_MAGIC: &[u8; 8] = b"CREXPOS1";
/// The exposure transforms' file in a checkpoint folder.
const EXPOSURE_FILE: &str = "exposure.bin";
const AVERAGE_MAGIC: &[u8; 8] = b"CRAVERG1";
/// The parameters' moving average's file in a checkpoint folder.
const AVERAGE_FILE: &str = "average.bin";

/// A checkpoint taken in memory by [`Trainer::checkpoint`]: the files of
/// its folder, ready to be written by [`Checkpoint::write`], on another
/// thread while training goes on if the caller likes (it borrows nothing
/// from the trainer).
#[derive(Clone)]
pub struct Checkpoint {
    /// The folder's name, `ckpt-ITERATION`.
    name: String,
    /// `point_cloud.ply`.
    ply: Vec<u8>,
    /// `state.bin`.
    state: Vec<u8>,
    /// `exposure.bin`, with `--exposure`.
    exposure: Option<Vec<u8>>,
    /// `average.bin`, once the parameters' moving average has started.
    average: Option<Vec<u8>>,
    /// `latest.json`'s text.
    meta: String,
}

impl std::fmt::Debug for Checkpoint {
    // the sizes, not megabytes of bytes
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("name", &self.name)
            .field("ply_bytes", &self.ply.len())
            .field("state_bytes", &self.state.len())
            .field("exposure_bytes", &self.exposure.as_ref().map(Vec::len))
            .field("average_bytes", &self.average.as_ref().map(Vec::len))
            .finish()
    }
}

impl Checkpoint {
    /// The checkpoint's folder name, `ckpt-ITERATION`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes the checkpoint into `dir/ckpt-ITERATION/` (`point_cloud.ply`,
    /// `state.bin`, `exposure.bin` with `--exposure`, and `average.bin`
    /// once the parameters' moving average has started), each file
    /// atomically, then atomically replaces `dir/latest.json` to point at
    /// it and removes the older checkpoint folders. Returns the folder.
    /// Until `latest.json` is replaced, the previous checkpoint stays the
    /// one a resume reads, so a crash part-way loses nothing saved.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, TrainError> {
        let sub = dir.join(&self.name);
        std::fs::create_dir_all(&sub).map_err(|e| ck_err(&sub, format!("cannot create: {e}")))?;
        let mut files = vec![("point_cloud.ply", &self.ply), ("state.bin", &self.state)];
        if let Some(x) = &self.exposure {
            files.push((EXPOSURE_FILE, x));
        }
        if let Some(x) = &self.average {
            files.push((AVERAGE_FILE, x));
        }
        for (file, bytes) in files {
            let path = sub.join(file);
            write_atomic(&path, bytes).map_err(|e| ck_err(&path, format!("cannot write: {e}")))?;
        }
        let latest = dir.join("latest.json");
        write_atomic(&latest, self.meta.as_bytes())
            .map_err(|e| ck_err(&latest, format!("cannot write: {e}")))?;
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if f.starts_with("ckpt-") && *f != self.name {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(sub)
    }
}

/// The per-photo colour transforms (`--exposure`) of the latest
/// checkpoint in `dir` (the folder of `latest.json`), by the name of the
/// training photo each was learned for; `None` when the run learned none,
/// or its checkpoint is of an earlier chainrule that did not record whose
/// they are. For scoring the training photos as the run fitted them.
pub fn exposure_transforms(dir: &Path) -> Result<Option<super::exposure::ByPhoto>, TrainError> {
    let latest = dir.join("latest.json");
    let text = std::fs::read_to_string(&latest)
        .map_err(|e| ck_err(&latest, format!("cannot read: {e}")))?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ck_err(&latest, format!("malformed JSON: {e}")))?;
    if meta.get("exposure").and_then(|v| v.as_bool()) != Some(true) {
        return Ok(None);
    }
    let Some(names) = exposure_names(&meta, &latest)? else {
        return Ok(None);
    };
    let sub = meta
        .get("checkpoint")
        .and_then(|v| v.as_str())
        .filter(|n| n.starts_with("ckpt-") && !n.contains(['/', '\\']))
        .ok_or_else(|| ck_err(&latest, "checkpoint: missing or not a folder name ckpt-N"))?;
    let what = names_what(names.len());
    let vals = exposure_values(&dir.join(sub).join(EXPOSURE_FILE), names.len(), &what)?;
    Ok(Some(
        names
            .into_iter()
            .zip(vals.chunks_exact(EXPOSURE_PARAMS))
            .map(|(n, e)| (n, e.try_into().expect("12 numbers")))
            .collect(),
    ))
}

/// The photos whose transforms `exposure.bin` holds, in its order, as
/// `latest.json` (`meta`, read from `latest`) names them; `None` in a
/// checkpoint of an earlier chainrule, which names none.
fn exposure_names(
    meta: &serde_json::Value,
    latest: &Path,
) -> Result<Option<Vec<String>>, TrainError> {
    let Some(v) = meta.get("exposure_views") else {
        return Ok(None);
    };
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
        .map(Some)
        .ok_or_else(|| ck_err(latest, "exposure_views: not a list of photo names"))
}

/// How an exposure file for the `n` photos `latest.json` names is called
/// in errors.
fn names_what(n: usize) -> String {
    format!("an exposure file for the {n} photos latest.json names")
}

/// The numbers of the exposure file at `path` for `n` photos: their
/// transforms, then Adam's first and second moments (12 each a photo);
/// an error naming the file as not `what` when it is not one.
fn exposure_values(path: &Path, n: usize, what: &str) -> Result<Vec<f64>, TrainError> {
    let len = 3 * n * EXPOSURE_PARAMS;
    let bytes = read_counted(path, EXPOSURE_MAGIC, n, 8 * len, what)?;
    Ok(bytes[16..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// Writes checkpoints into one folder on a thread of its own, so that
/// training goes on while the files reach the disk (a capture's
/// checkpoint is about 150 MB, which took this VM 1.6 s to write). One
/// write at a time: [`CheckpointWriter::save`] first waits for the
/// previous one, so they land in order and the folder's cleanup never
/// races. [`CheckpointWriter::finish`] waits for the last and returns its
/// error; dropping the writer waits too but has no one to report an error
/// to, so a caller that cares calls `finish`.
#[derive(Debug)]
pub struct CheckpointWriter {
    dir: PathBuf,
    pending: Option<std::thread::JoinHandle<Result<PathBuf, TrainError>>>,
}

impl CheckpointWriter {
    /// A writer into `dir` (the `dir` of [`Checkpoint::write`]).
    pub fn new(dir: &Path) -> Self {
        CheckpointWriter {
            dir: dir.to_path_buf(),
            pending: None,
        }
    }

    /// Waits for the previous checkpoint's write (returning its error, if
    /// it failed, without starting this one), then starts writing `ck`.
    pub fn save(&mut self, ck: Checkpoint) -> Result<(), TrainError> {
        self.finish()?;
        let dir = self.dir.clone();
        let h = std::thread::Builder::new()
            .name("checkpoint-writer".into())
            .spawn(move || ck.write(&dir))
            .map_err(|e| ck_err(&self.dir, format!("cannot start the writer thread: {e}")))?;
        self.pending = Some(h);
        Ok(())
    }

    /// Waits for the write in progress, if any; returns the folder it
    /// wrote, or its error.
    pub fn finish(&mut self) -> Result<Option<PathBuf>, TrainError> {
        match self.pending.take() {
            None => Ok(None),
            Some(h) => match h.join() {
                Ok(r) => r.map(Some),
                Err(_) => Err(ck_err(&self.dir, "the checkpoint writer panicked")),
            },
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        // an error here has no one to tell; `finish` reports it
        let _ = self.finish();
    }
}

impl Trainer {
    /// Writes a checkpoint into `dir/ckpt-ITERATION/` (see
    /// [`Checkpoint::write`]): [`Trainer::checkpoint`], then its write.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf, TrainError> {
        self.checkpoint().write(dir)
    }

    /// The run's state as checkpoint files in memory, to be written by
    /// [`Checkpoint::write`] (the CLI writes them on another thread while
    /// training goes on).
    pub fn checkpoint(&self) -> Checkpoint {
        let name = format!("ckpt-{:08}", self.iteration);
        let mut meta = serde_json::json!({
            "iteration": self.iteration,
            "checkpoint": name,
            "gaussians": self.len(),
            "sh_active": self.sh_active,
            "sh_degree": self.cfg.sh_degree,
            "antialiased": self.cfg.antialiased,
            "lr_mean": self.cfg.lr_mean,
            "lr_mean_final": self.cfg.lr_mean_final,
            "lr_mean_steps": self.cfg.lr_mean_steps,
            "lr_sh": self.cfg.lr_sh,
            "lr_opacity": self.cfg.lr_opacity,
            "lr_scale": self.cfg.lr_scale,
            "lr_rotation": self.cfg.lr_rotation,
            "adam_steps": self.adam.iter().map(|a| a.steps()).collect::<Vec<_>>(),
            "exposure": self.cfg.exposure,
            "average_updates": self.average.updates,
        });
        // only a run with transforms has their optimiser's steps (and
        // `exposure.bin`)
        if self.cfg.exposure {
            meta["exposure_steps"] = self.exposure_adam.steps().into();
            // whose transforms `exposure.bin` holds, so that a run resumed
            // on other photos carries each to its own photo
            meta["exposure_views"] = self
                .data
                .train
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .into();
        }
        Checkpoint {
            name,
            // declared as trained, for viewers opening the checkpoint's PLY
            ply: ply::to_ply_bytes_as(&self.gaussians::<f64>(), self.cfg.antialiased),
            state: self.state_bytes(),
            exposure: self.cfg.exposure.then(|| self.exposure_bytes()),
            average: (self.average.updates > 0).then(|| self.average_bytes()),
            meta: meta.to_string(),
        }
    }

    /// `exposure.bin`: magic, view count, then the transforms and Adam's
    /// two moments (12 numbers per view each), little-endian `f64`.
    fn exposure_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(EXPOSURE_MAGIC);
        b.extend_from_slice(&(self.exposure.len() as u64).to_le_bytes());
        let (m, v) = self.exposure_adam.moments();
        for x in self.exposure.as_flattened().iter().chain(m).chain(v) {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Reads `exposure.bin` back: the transforms (and their moments) of
    /// the photos `names` lists, in the file's order, each given to the
    /// training photo of that name; a photo the file has none for starts
    /// at the identity. Returns how many photos were matched. Without
    /// `names` (checkpoints written before they were recorded) the file
    /// must hold the run's own photos, in order.
    fn read_exposure(
        &mut self,
        path: &Path,
        steps: u32,
        names: Option<&[String]>,
    ) -> Result<usize, TrainError> {
        let n = self.data.train.len();
        let stored = match names {
            Some(names) => names.len(),
            None => n,
        };
        let len = stored * EXPOSURE_PARAMS;
        let what = match names {
            Some(_) => names_what(stored),
            None => format!(
                "an exposure file for {n} training photos (a checkpoint of an earlier chainrule \
                 records no names, so its transforms carry over only to the same photos)"
            ),
        };
        let vals = exposure_values(path, stored, &what)?;
        // for each training photo, its row in the file
        let rows: Vec<Option<usize>> = match names {
            None => (0..n).map(Some).collect(),
            Some(names) => {
                let at: std::collections::HashMap<&str, usize> = names
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i))
                    .collect();
                self.data
                    .train
                    .iter()
                    .map(|v| at.get(v.name.as_str()).copied())
                    .collect()
            }
        };
        let block = |part: usize, row: Option<usize>| match row {
            Some(r) => {
                let from = part * len + r * EXPOSURE_PARAMS;
                vals[from..from + EXPOSURE_PARAMS].to_vec()
            }
            None if part == 0 => IDENTITY.to_vec(),
            None => vec![0.0; EXPOSURE_PARAMS],
        };
        let part = |k: usize| -> Vec<f64> { rows.iter().flat_map(|&r| block(k, r)).collect() };
        let (e, m, mut v) = (part(0), part(1), part(2));
        self.exposure = e
            .chunks_exact(EXPOSURE_PARAMS)
            .map(|c| c.try_into().expect("12 numbers"))
            .collect();
        // a photo new to the run has no moments, but the optimiser's step
        // count is shared, so its bias correction is spent: with a second
        // moment of 0 its first hundreds of steps would be several times
        // the learning rate. It takes the carried photos' mean second
        // moment instead (and with none carried, the optimiser starts over)
        let matched = rows.iter().filter(|r| r.is_some()).count();
        let steps = if matched == 0 { 0 } else { steps };
        if matched > 0 && matched < n {
            let mut mean = [0.0; EXPOSURE_PARAMS];
            for (row, r) in v.chunks_exact(EXPOSURE_PARAMS).zip(&rows) {
                if r.is_some() {
                    for (a, x) in mean.iter_mut().zip(row) {
                        *a += x / matched as f64;
                    }
                }
            }
            for (row, r) in v.chunks_exact_mut(EXPOSURE_PARAMS).zip(&rows) {
                if r.is_none() {
                    row.copy_from_slice(&mean);
                }
            }
        }
        self.exposure_adam = Adam::from_state(vec![0.0; n * EXPOSURE_PARAMS], m, v, steps);
        Ok(matched)
    }

    /// `average.bin`: magic, Gaussian count, then each group's averaged
    /// parameters in order, little-endian `f32` (the average's own
    /// precision, and the checkpoint's PLY's).
    fn average_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(AVERAGE_MAGIC);
        b.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for x in self.average.params.iter().flatten() {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Reads `average.bin` back (for the checkpoint's `n` Gaussians), as
    /// the average of `updates` updates.
    fn read_average(&mut self, path: &Path, n: usize, updates: u32) -> Result<(), TrainError> {
        let strides = self.strides();
        let payload = 4 * n * strides.iter().sum::<usize>();
        let what = format!("a parameter average for {n} Gaussians");
        let bytes = read_counted(path, AVERAGE_MAGIC, n, payload, &what)?;
        let vals: Vec<f32> = bytes[16..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if let Some(i) = vals.iter().position(|v| !v.is_finite()) {
            return Err(ck_err(
                path,
                format!("value {i} of the parameter average is not finite"),
            ));
        }
        let mut vals = vals.into_iter();
        self.average.params = std::array::from_fn(|g| vals.by_ref().take(n * strides[g]).collect());
        self.average.updates = updates;
        Ok(())
    }

    fn state_bytes(&self) -> Vec<u8> {
        let moments: usize = self.adam.iter().map(|a| 2 * a.moments().0.len()).sum();
        let stats = self.grad_accum.len() + self.grad_count.len() + self.max_radii.len();
        let mut b = Vec::with_capacity(16 + 8 * (moments + stats));
        b.extend_from_slice(STATE_MAGIC);
        b.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let mut put = |xs: &[f64]| {
            for x in xs {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
        for a in &self.adam {
            let (m, v) = a.moments();
            put(m);
            put(v);
        }
        put(&self.grad_accum);
        put(&self.grad_count);
        put(&self.max_radii);
        b
    }

    /// Continues a run from the checkpoint `dir/latest.json` points at (the
    /// settings must match the ones it was trained with, `iters` may grow).
    pub fn resume(data: Dataset, cfg: TrainConfig, dir: &Path) -> Result<Self, TrainError> {
        check_config(&data, &cfg)?;
        let latest = dir.join("latest.json");
        let text = std::fs::read_to_string(&latest)
            .map_err(|e| ck_err(&latest, format!("cannot read: {e}")))?;
        let meta: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ck_err(&latest, format!("malformed JSON: {e}")))?;
        let field = |k: &str| -> Result<u64, TrainError> {
            meta.get(k).and_then(|v| v.as_u64()).ok_or_else(|| {
                ck_err(
                    &latest,
                    format!("{k}: missing or not a non-negative integer"),
                )
            })
        };
        let iteration = u32::try_from(field("iteration")?)
            .map_err(|_| ck_err(&latest, "iteration: too large"))?;
        let n = field("gaussians")? as usize;
        let sh_active = field("sh_active")? as usize;
        if field("sh_degree")? as usize != cfg.sh_degree {
            return Err(ck_err(
                &latest,
                format!(
                    "sh_degree: the checkpoint has {}, this run asks for {}",
                    field("sh_degree")?,
                    cfg.sh_degree
                ),
            ));
        }
        // the projection the model was trained under: a scene trained
        // antialiased and continued without (or the other way) would change
        // every splat's opacity. Checkpoints written before this field
        // existed carry no record and are accepted as they are.
        if let Some(aa) = meta.get("antialiased") {
            let aa = aa
                .as_bool()
                .ok_or_else(|| ck_err(&latest, "antialiased: not true or false"))?;
            if aa != cfg.antialiased {
                let flag = |on: bool| if on { "on" } else { "off" };
                return Err(ck_err(
                    &latest,
                    format!(
                        "antialiased: the checkpoint was trained with --antialiased {}, this run has it {} (resume with the same setting)",
                        flag(aa),
                        flag(cfg.antialiased)
                    ),
                ));
            }
        }
        let name = meta
            .get("checkpoint")
            .and_then(|v| v.as_str())
            .filter(|s| s.starts_with("ckpt-") && !s.contains(['/', '\\']))
            .ok_or_else(|| ck_err(&latest, "checkpoint: missing or not a folder name ckpt-N"))?;
        let steps: Vec<u32> = meta
            .get("adam_steps")
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == GROUPS)
            .and_then(|a| {
                a.iter()
                    .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                    .collect()
            })
            .ok_or_else(|| {
                ck_err(
                    &latest,
                    format!("adam_steps: expected {GROUPS} step counts"),
                )
            })?;
        let sub = dir.join(name);
        // whether the run learned per-photo exposure transforms, as
        // latest.json says (checkpoints written before it did: whether they
        // hold the transforms' file). Continuing without them would drop
        // what the run learned, and with them where there are none has
        // nothing to read: either is refused, as a change of projection is
        let trained_exposure = match meta.get("exposure") {
            Some(x) => x
                .as_bool()
                .ok_or_else(|| ck_err(&latest, "exposure: not true or false"))?,
            None => sub.join(EXPOSURE_FILE).is_file(),
        };
        if trained_exposure != cfg.exposure {
            return Err(ck_err(
                &sub,
                if cfg.exposure {
                    "this checkpoint was trained without --exposure, so it has no per-photo \
                     exposure transforms to continue: resume without --exposure (or train \
                     with it from the start in another folder)"
                } else {
                    "this checkpoint was trained with --exposure: resuming without it would \
                     drop the per-photo exposure transforms it learned (resume with --exposure)"
                },
            ));
        }
        // the PLY error's message without its path, which `ck_err` adds
        let g: Gaussians<f64> =
            ply::read_ply(&sub.join("point_cloud.ply")).map_err(|e| ck_err(&e.path, &e.message))?;
        if g.len() != n || g.sh_degree != cfg.sh_degree {
            return Err(ck_err(
                &sub.join("point_cloud.ply"),
                format!(
                    "{} Gaussians of SH degree {}, latest.json says {n} of degree {}",
                    g.len(),
                    g.sh_degree,
                    cfg.sh_degree
                ),
            ));
        }
        let mut t = Trainer::new_empty(data, cfg);
        Self::set_from_gaussians(&mut t.params, &g);
        t.iteration = iteration;
        t.sh_active = sh_active.min(t.cfg.sh_degree);
        let bin = sub.join("state.bin");
        let strides = t.strides();
        let payload = 8 * n * (2 * strides.iter().sum::<usize>() + 3);
        let what = format!("a state file for {n} Gaussians");
        let bytes = read_counted(&bin, STATE_MAGIC, n, payload, &what)?;
        let mut vals = bytes[16..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
        let mut take = |len: usize| -> Vec<f64> { vals.by_ref().take(len).collect() };
        t.adam = (0..GROUPS)
            .map(|g| {
                let len = n * strides[g];
                let m = take(len);
                let v = take(len);
                Adam::from_state(Vec::new(), m, v, steps[g])
            })
            .collect();
        t.grad_accum = take(n);
        t.grad_count = take(n);
        t.max_radii = take(n);
        if t.cfg.exposure {
            let steps = meta
                .get("exposure_steps")
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    ck_err(
                        &latest,
                        "exposure_steps: missing or not a non-negative integer",
                    )
                })?;
            let names = exposure_names(&meta, &latest)?;
            let matched = t.read_exposure(&sub.join(EXPOSURE_FILE), steps, names.as_deref())?;
            let n = t.data.train.len();
            if matched < n {
                t.data.notes.push(format!(
                    "--exposure: {matched} of the {n} training photos continue with the colour \
                     transforms the checkpoint learned for photos of their names; the other {} \
                     start at the identity",
                    n - matched
                ));
            }
        }
        // the parameters' moving average, once started (checkpoints
        // written before it existed have none); a run resumed without one
        // neither needs nor reads it
        let updates = match meta.get("average_updates") {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| ck_err(&latest, "average_updates: not a non-negative integer"))?,
        };
        if updates > 0 && t.cfg.ema_window > 0 {
            t.read_average(&sub.join(AVERAGE_FILE), n, updates)?;
        }
        Ok(t)
    }

    fn new_empty(data: Dataset, cfg: TrainConfig) -> Self {
        let (_, extent) = data.camera_extent();
        Trainer {
            extent: if extent > 0.0 { extent } else { 1.0 },
            cfg,
            data,
            params: Default::default(),
            adam: Vec::new(),
            iteration: 0,
            sh_active: 0,
            grad_accum: Vec::new(),
            grad_count: Vec::new(),
            max_radii: Vec::new(),
            loss: None,
            d_rgb: Vec::new(),
            bufs: Default::default(),
            densify_scratch: Default::default(),
            exposure: Vec::new(),
            exposure_adam: Adam::new(Vec::new()),
            coarse: (1, Vec::new()),
            average: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{write_dataset, SynthOptions};

    /// Resumed on other photos, a photo new to the run starts its
    /// transform's optimiser with the carried photos' mean second moment
    /// (its steps would otherwise be several times the learning rate, the
    /// shared step count having spent the bias correction), and with no
    /// photo carried the optimiser starts over.
    #[test]
    fn new_photos_take_the_carried_photos_mean_second_moment() {
        let d = std::env::temp_dir().join(format!("splat-ck-moments-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let opts = SynthOptions {
            train_views: 3,
            test_views: 1,
            size: 16,
            seed: 2,
        };
        write_dataset(&d.join("data"), &opts).unwrap();
        let ds = crate::data::load(&d.join("data"), &Default::default()).unwrap();
        let cfg = TrainConfig {
            iters: 10,
            init_points: 50,
            sh_degree: 0,
            exposure: true,
            ..TrainConfig::default().with_densify_until(5)
        };
        let mut t = Trainer::new(ds.clone(), cfg.clone()).unwrap();
        for _ in 0..6 {
            t.step().unwrap();
        }
        t.save_checkpoint(&d.join("ck")).unwrap();
        let (_, v0) = t.exposure_adam.moments();
        let rows: Vec<&[f64]> = v0.chunks_exact(EXPOSURE_PARAMS).collect();
        // photo 1 renamed: new to the run
        let mut other = ds.clone();
        other.train[1].name = "new.png".into();
        let r = Trainer::resume(other.clone(), cfg.clone(), &d.join("ck")).unwrap();
        let (m, v) = r.exposure_adam.moments();
        let (mr, vr): (Vec<&[f64]>, Vec<&[f64]>) = (
            m.chunks_exact(EXPOSURE_PARAMS).collect(),
            v.chunks_exact(EXPOSURE_PARAMS).collect(),
        );
        assert_eq!((vr[0], vr[2]), (rows[0], rows[2]));
        for k in 0..EXPOSURE_PARAMS {
            let mean = (rows[0][k] + rows[2][k]) / 2.0;
            assert!(
                (vr[1][k] - mean).abs() <= 1e-15 * mean.abs().max(1e-300),
                "{k}"
            );
        }
        assert!(mr[1].iter().all(|&x| x == 0.0));
        assert!(vr[1].iter().any(|&x| x > 0.0), "the carried photos trained");
        assert_eq!(r.exposure_adam.steps(), t.exposure_adam.steps());
        // no photo carried: a fresh optimiser
        for v in &mut other.train {
            v.name = format!("other-{}", v.name);
        }
        let r = Trainer::resume(other, cfg, &d.join("ck")).unwrap();
        assert_eq!(r.exposure_adam.steps(), 0);
        assert!(r.exposure_adam.moments().1.iter().all(|&x| x == 0.0));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
