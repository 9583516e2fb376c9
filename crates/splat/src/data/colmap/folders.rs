//! Which folder holds the model: a dataset's `sparse/N` (of several, the
//! one that registers the most photos) or `sparse/` itself, and the dataset
//! around a model named by its own folder.

use std::path::{Path, PathBuf};

use super::read::images_txt;

/// When `path` is one model of a COLMAP dataset rather than the dataset
/// (`D/sparse/1`, or `D/sparse` in `image_undistorter`'s layout: a folder
/// named `sparse`, or inside one, that holds a `cameras` or an `images`
/// file and no `sparse/` of its own), the dataset folder `D` whose photos
/// it poses. This is how a user picks a model other than the one
/// [`model_folder`] would: `chainrule train D/sparse/1`.
///
/// ```
/// let d = std::env::temp_dir().join(format!("cr-model-of-{}", std::process::id()));
/// std::fs::create_dir_all(d.join("sparse/1")).unwrap();
/// for f in ["cameras.txt", "images.txt"] {
///     std::fs::write(d.join("sparse/1").join(f), "").unwrap();
/// }
/// use splat::data::colmap::dataset_of_model;
/// assert_eq!(dataset_of_model(&d.join("sparse/1")), Some(d.clone()));
/// assert_eq!(dataset_of_model(&d), None);
/// std::fs::remove_dir_all(&d).unwrap();
/// ```
pub fn dataset_of_model(path: &Path) -> Option<PathBuf> {
    // a model's cameras or its poses (one missing is then `load`'s error,
    // which names the file); a `sparse/` holding numbered models is a
    // folder of models, whatever stray file lies beside them
    if !has_model_file(path) || path.join("sparse").is_dir() || !numbered_models(path).is_empty() {
        return None;
    }
    // by the names as given, else (`0` from inside `sparse/`) as resolved
    let root = root_of_model_path(path)
        .or_else(|| root_of_model_path(&std::fs::canonicalize(path).ok()?))?;
    // nerfstudio's layout (`ns-process-data`): DATA/colmap/sparse/0 poses
    // the photos of DATA/images
    let outer = root
        .parent()
        .filter(|_| root.file_name().is_some_and(|n| n == "colmap"));
    match outer {
        Some(o) if !root.join("images").is_dir() && o.join("images").is_dir() => {
            Some(if o.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                o.to_path_buf()
            })
        }
        _ => Some(root),
    }
}

/// The folder of a dataset's models: `dir/sparse`, or in nerfstudio's
/// layout (`ns-process-data`: the photos in `dir/images`, COLMAP's output
/// in `dir/colmap`) `dir/colmap/sparse` when `dir/sparse` is not there.
pub fn sparse_dir(dir: &Path) -> PathBuf {
    let nerfstudio = dir.join("colmap/sparse");
    if !dir.join("sparse").is_dir() && nerfstudio.is_dir() {
        nerfstudio
    } else {
        dir.join("sparse")
    }
}

/// Why `dir` is not a COLMAP dataset although it looks like part of one,
/// for the error that refuses it: a model outside a `sparse/` folder (its
/// photos cannot be found), or a `sparse/` folder of numbered models.
/// `None` when it looks like neither.
pub fn not_a_dataset_hint(dir: &Path) -> Option<String> {
    let numbered = numbered_models(dir);
    if !numbered.is_empty() {
        return Some(format!(
            "it holds COLMAP models ({}): give the dataset folder whose sparse/ holds them \
             (the model with the most photos is trained), or one model, as {}",
            numbered.join(", "),
            dir.join(&numbered[0]).display()
        ));
    }
    has_model_file(dir).then(|| {
        "it has a COLMAP model's files (cameras or images), but a model is read from \
         inside its dataset, DATA/sparse/N (or DATA/sparse) beside the photos in \
         DATA/images: move it there, or give DATA"
            .into()
    })
}

/// The names of `dir`'s numbered subfolders that hold a model file
/// (cameras or images), in numeric order.
fn numbered_models(dir: &Path) -> Vec<String> {
    let mut found: Vec<(u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| has_model_file(&e.path()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((name.parse().ok()?, name))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

/// Whether `dir` holds a model's cameras or images file (`.bin` or `.txt`).
fn has_model_file(dir: &Path) -> bool {
    ["cameras.bin", "cameras.txt", "images.bin", "images.txt"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// The dataset folder of a model folder's path by its names alone:
/// `D` for `D/sparse` and `D/sparse/N` (`.` when `D` is empty), else
/// `None`.
pub(super) fn root_of_model_path(path: &Path) -> Option<PathBuf> {
    // `Path::parent` of a relative `sparse` is "", which names the
    // current folder
    let parent_of = |p: &Path| match p.parent() {
        Some(q) if q.as_os_str().is_empty() => Some(PathBuf::from(".")),
        q => q.map(Path::to_path_buf),
    };
    let named_sparse = |p: &Path| p.file_name().is_some_and(|n| n == "sparse");
    if named_sparse(path) {
        return parent_of(path);
    }
    let parent = path.parent()?;
    named_sparse(parent).then(|| parent_of(parent)).flatten()
}

/// The models of a COLMAP folder, as COLMAP's mapper writes them when it
/// cannot register every photo into one (`sparse/0`, `sparse/1`, …, in no
/// order of size), and `sparse/` itself when it holds a model
/// (`image_undistorter`'s layout): each with an `images.bin` or
/// `images.txt`, with the number of photos it registers (0 when that file
/// cannot be read), `sparse/` first, then by number.
pub fn models(dir: &Path) -> Vec<(PathBuf, usize)> {
    let sparse = sparse_dir(dir);
    let holds = |p: &Path| p.join("images.bin").is_file() || p.join("images.txt").is_file();
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&sparse)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u64>().ok()?;
            let path = e.path();
            holds(&path).then_some((n, path))
        })
        .collect();
    found.sort();
    let top = holds(&sparse).then_some(sparse.clone());
    top.into_iter()
        .chain(found.into_iter().map(|(_, p)| p))
        .map(|path| {
            let count = photo_count(&path).unwrap_or(0);
            (path, count)
        })
        .collect()
}

/// The number of photos a model registers: `images.bin`'s declared count,
/// or the records of `images.txt`.
fn photo_count(model: &Path) -> Option<usize> {
    use std::io::Read;
    let bin = model.join("images.bin");
    if bin.is_file() {
        let mut head = [0u8; 8];
        std::fs::File::open(&bin).ok()?.read_exact(&mut head).ok()?;
        return usize::try_from(u64::from_le_bytes(head)).ok();
    }
    let txt = model.join("images.txt");
    let text = std::fs::read_to_string(&txt).ok()?;
    images_txt(&txt, &text).ok().map(|v| v.len())
}

/// The model [`load`](super::load) reads: of those [`models`] finds, the one that
/// registers the most photos (the first of equals); `sparse/0` (or
/// `sparse/`) when there is none, for the error that names what is missing.
pub fn model_folder(dir: &Path) -> PathBuf {
    let all = models(dir);
    let best = all
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.1.cmp(&b.1).then(j.cmp(i)))
        .map(|(_, m)| m.0.clone());
    let sparse = sparse_dir(dir);
    match best {
        Some(m) => m,
        None if sparse.join("0").is_dir() => sparse.join("0"),
        None => sparse,
    }
}
