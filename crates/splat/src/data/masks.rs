//! User masks: which pixels of a photo count in training and scoring.
//!
//! A `masks/` folder beside the images holds one file per photo (COLMAP:
//! `DIR/masks/` beside `DIR/images/`, the photo's name relative to
//! `images/` kept; NeRF-synthetic: `masks/` in the folder of each split's
//! images, e.g. `DIR/train/masks/`). A photo `NAME.EXT` has its mask at
//! `masks/NAME.EXT.png` (COLMAP's convention) or `masks/NAME.png`. A pixel
//! whose mask value is 0 in every colour channel is ignored, and so is one
//! that a mask with an alpha channel makes transparent (a cut-out); any
//! other value keeps it (`--invert-masks` swaps the two). A mask has its
//! photo's size, or that size divided or multiplied by 2 to 8. A photo
//! without a mask in the folder is trained and scored without one (the
//! loader says which, in [`super::Dataset::notes`]), as
//! when only the photos that show a passer-by are masked; a folder with no
//! mask for any photo is an error (the files are probably named otherwise).

use std::path::{Path, PathBuf};

use super::DataError;

/// An error when `dir` (a masks folder's place) holds something that is
/// not a folder: a file, or a link whose target is missing (masks left on
/// a drive that is not mounted). Training without the masks the user set
/// up would be silent; nothing there at all is fine (no masks).
pub(super) fn check_folder(dir: &Path) -> Result<(), DataError> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    let what = if meta.file_type().is_symlink() {
        match std::fs::read_link(dir) {
            Ok(to) => format!(
                "is a link to {}, which is not there (or not a folder)",
                to.display()
            ),
            Err(_) => "is a link that cannot be followed".to_string(),
        }
    } else {
        "is a file, not a folder".to_string()
    };
    Err(DataError::invalid(
        dir,
        "masks",
        format!("{what}: masks are read from a folder of PNG files beside the photos"),
    ))
}

/// The note of a load asked to invert masks (`LoadOptions::invert_masks`)
/// that found no mask file for any photo: there is nothing to invert (a
/// mistyped folder, or the flag given by habit).
pub(super) fn nothing_inverted(where_: &str) -> String {
    format!(
        "masks are to be read inverted, but no photo has a mask file ({where_}): there is \
         nothing to invert (the option changes nothing)"
    )
}

/// Where the mask of photo `name` (a path relative to the images folder)
/// would be in `masks_dir`: `name + ".png"` if that file exists, else the
/// name with its extension replaced by `.png`; `None` when neither exists.
pub fn find(masks_dir: &Path, name: &str) -> Option<PathBuf> {
    let (appended, stem) = candidates(masks_dir, name);
    if appended.is_file() {
        return Some(appended);
    }
    stem.is_file().then_some(stem)
}

/// The two files that may hold photo `name`'s mask: `name + ".png"` and
/// the name with its extension replaced by `.png`.
fn candidates(masks_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let appended = masks_dir.join(format!("{name}.png"));
    let stem = masks_dir.join(name).with_extension("png");
    (appended, stem)
}

/// The mask file [`find`] passes over for photo `name`: the one named by
/// the photo's stem, when the one named by its full name is there too.
pub fn passed_over(masks_dir: &Path, name: &str) -> Option<PathBuf> {
    let (appended, stem) = candidates(masks_dir, name);
    (stem != appended && appended.is_file() && stem.is_file()).then_some(stem)
}

/// What a masks folder held for the photos looked up in it: how many,
/// which had none (their names), and the first photo (name and path), for
/// the error when none had one.
#[derive(Debug, Default)]
pub struct Tally {
    /// Photos looked up.
    pub total: usize,
    /// The names of those without a mask.
    pub missing: Vec<String>,
    /// The first photo looked up: its name and path.
    pub first: Option<(String, PathBuf)>,
    /// A second folder searched for the photos the first has no mask for
    /// (the full-size `masks/` beside `masks_N`), named in the messages.
    pub also: Option<PathBuf>,
    /// The photos with two mask files ([`passed_over`]): each photo's name,
    /// the file used and the file passed over.
    pub two: Vec<(String, PathBuf, PathBuf)>,
}

impl Tally {
    /// Counts photo `name` (at `photo`), whose mask in `masks_dir` is
    /// `found` (its path), noting a second file there ([`passed_over`]).
    pub fn add_found(&mut self, name: &str, photo: &Path, masks_dir: &Path, found: Option<&Path>) {
        self.add(name, photo, found.is_some());
        if let (Some(used), Some(other)) = (found, passed_over(masks_dir, name)) {
            self.two.push((name.to_string(), used.to_path_buf(), other));
        }
    }

    /// Counts photo `name` (at `photo`), which has a mask if `found`.
    pub fn add(&mut self, name: &str, photo: &Path, found: bool) {
        self.total += 1;
        if !found {
            self.missing.push(name.to_string());
        }
        if self.first.is_none() {
            self.first = Some((name.to_string(), photo.to_path_buf()));
        }
    }

    /// The verdict on `masks_dir`: an error naming the folder and its
    /// first photo when no photo had a mask there (its files are named
    /// otherwise), else the notes for [`super::Dataset::notes`]: when some
    /// photos had none, and when some had two (empty when every photo had
    /// exactly one).
    pub fn verdict(&self, masks_dir: &Path) -> Result<Vec<String>, DataError> {
        let Some((name, photo)) = &self.first else {
            return Ok(Vec::new());
        };
        let also = match &self.also {
            Some(d) => format!(" or in {}", d.display()),
            None => String::new(),
        };
        if self.missing.len() == self.total {
            let stem = Path::new(name).with_extension("png");
            let other = misnamed(masks_dir, name)
                .map(|m| format!("; {m}"))
                .unwrap_or_default();
            return Err(DataError::invalid(
                masks_dir,
                "masks",
                format!(
                    "no mask for any of the {} photos here{also} (for {} it looked for \
                     {name}.png and {}: a photo's mask is its file name, or its name without \
                     the extension, with .png appended{other})",
                    self.total,
                    photo.display(),
                    stem.display()
                ),
            ));
        }
        let folders = match &self.also {
            Some(d) => format!("{} (nor {})", masks_dir.display(), d.display()),
            None => masks_dir.display().to_string(),
        };
        let mut notes: Vec<String> = note(&folders, &self.missing, self.total)
            .into_iter()
            .collect();
        // a missing mask that is there in another format or case
        if let (Some(first), Some(why)) = (
            notes.first_mut(),
            self.missing
                .iter()
                .take(20)
                .find_map(|n| misnamed(masks_dir, n)),
        ) {
            first.push_str(&format!("; {why}"));
        }
        if let Some((name, used, other)) = self.two.first() {
            let names: Vec<String> = self.two.iter().map(|t| t.0.clone()).collect();
            let (list, _) = name_list(&names).expect("one at least");
            notes.push(format!(
                "{} of the {} photos {} two mask files ({list}): the one named after the \
                 whole file name is used (for {name}, {} and not {})",
                self.two.len(),
                self.total,
                if self.two.len() == 1 { "has" } else { "have" },
                used.display(),
                other.display()
            ));
        }
        Ok(notes)
    }
}

/// What is wrong with the file that looks like photo `name`'s mask in
/// `masks_dir` but is not read as one ([`other_format`]), for a message:
/// `there is masks/IMG_1.jpg, but masks are read from PNG files only …`.
fn misnamed(masks_dir: &Path, name: &str) -> Option<String> {
    let f = other_format(masks_dir, name)?;
    Some(
        if f.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
            format!(
                "there is {}: name the masks' extension .png, in lower case",
                f.display()
            )
        } else {
            format!(
                "there is {}, but masks are read from PNG files only (a lossless format: \
                 JPEG's artefacts would keep pixels meant to be ignored)",
                f.display()
            )
        },
    )
}

/// A file of `masks_dir` named as photo `name`'s mask would be but for
/// its extension (`IMG_1.jpg` or `IMG_1.jpg.jpg` for `IMG_1.jpg`): a user's
/// masks saved in another format than PNG, or as `.PNG`.
fn other_format(masks_dir: &Path, name: &str) -> Option<PathBuf> {
    let name = Path::new(name);
    let (file, stem) = (name.file_name()?, name.file_stem()?);
    let dir = masks_dir.join(name.parent().unwrap_or(Path::new("")));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .find(|p| {
            let s = p.file_stem();
            s == Some(file) || s == Some(stem)
        })
}

/// The note [`super::Dataset::notes`] holds when `masks_dir` has no mask
/// for some of the photos (`missing`, their names, of `total`): they are
/// trained and scored without one. `None` when none is missing.
pub fn missing_note(masks_dir: &Path, missing: &[String], total: usize) -> Option<String> {
    note(&masks_dir.display().to_string(), missing, total)
}

/// [`missing_note`] for the folder (or folders) named `folders`.
fn note(folders: &str, missing: &[String], total: usize) -> Option<String> {
    let (list, pronoun) = name_list(missing)?;
    Some(format!(
        "{folders} has no mask for {} of the {total} photos ({list}): {pronoun} trained and \
         scored without a mask file",
        missing.len(),
    ))
}

/// A short list of photo names for a note (`A`, `A and B`, `A, B and 3
/// more`) and the pronoun that goes with it; `None` for no names.
pub(super) fn name_list(names: &[String]) -> Option<(String, &'static str)> {
    let first = names.first()?;
    Some(match names.len() {
        1 => (first.clone(), "it is"),
        2 => (format!("{first} and {}", names[1]), "they are"),
        k => (
            format!("{first}, {} and {} more", names[1], k - 2),
            "they are",
        ),
    })
}

/// Decodes a mask file's bytes into 1 (keep) / 0 (ignore) per pixel, inverted
/// when `invert`, at `width × height`, the size of `photo`. A mask half,
/// a third, … an eighth of that size or twice, three times … eight times
/// it (the division rounded either way, as in an `images_N` folder) is
/// resampled ([`fit`]:
/// a pixel is kept only where all the mask pixels it covers are); one of
/// any other size is an error that names both files.
pub fn parse(
    path: &Path,
    bytes: &[u8],
    photo: &Path,
    width: u32,
    height: u32,
    invert: bool,
) -> Result<Vec<f32>, DataError> {
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DataError::io(path, e))
    };
    // the size first, from the header: a mask declaring a huge size is
    // refused before anything is allocated for it
    let (mw, mh) = reader()?
        .into_dimensions()
        .map_err(|e| DataError::invalid(path, "mask", crate::image_io::unreadable(bytes, &e)))?;
    if (mw, mh) != (width, height) {
        if !scaled_copy((mw, mh), (width, height)) {
            return Err(DataError::invalid(
                path,
                "mask size",
                format!(
                    "is {mw}×{mh} but its photo {} is {width}×{height} (a mask may also be its \
                     photo's size divided or multiplied by a whole number up to 8)",
                    photo.display()
                ),
            ));
        }
        let kept = kept_pixels(path, bytes, mw, mh)?;
        return Ok(fit_by(mw, mh, |i| kept[i] != invert, width, height));
    }
    let (keep, drop) = if invert { (0.0, 1.0) } else { (1.0, 0.0) };
    Ok(kept_pixels(path, bytes, width, height)?
        .into_iter()
        .map(|k| if k { keep } else { drop })
        .collect())
}

/// Decodes a mask file's bytes, of the size `width × height` that its
/// header declares, into whether each pixel is kept: a colour channel
/// above 0 and, in a mask with an alpha channel, not transparent (alpha
/// above 0), as cut-out tools write masks; a mask whose colour is black
/// throughout and whose alpha is not opaque throughout is read by its
/// alpha alone. The decoded samples are read as
/// they are: a byte a pixel beside the decoded image, not a converted copy
/// (an 8× mask of a 1,600-pixel photo has 123 million pixels).
fn kept_pixels(path: &Path, bytes: &[u8], width: u32, height: u32) -> Result<Vec<bool>, DataError> {
    use image::DynamicImage as D;
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::invalid(path, "mask", crate::image_io::unreadable(bytes, &e)))?;
    if (img.width(), img.height()) != (width, height) {
        return Err(DataError::invalid(
            path,
            "mask",
            "decoded size differs from the header's",
        ));
    }
    // pixels of `channels` samples: the colour's `colour`, then an alpha
    // when there is one more
    fn kept<T: Copy + PartialOrd + Default>(
        raw: &[T],
        channels: usize,
        colour: usize,
    ) -> Vec<bool> {
        let zero = T::default();
        let lit = |p: &[T]| p[..colour].iter().any(|&c| c > zero);
        if channels == colour {
            return raw.chunks_exact(channels).map(lit).collect();
        }
        // drawn in the alpha alone: black throughout, some of it
        // transparent (black and opaque throughout ignores every pixel)
        let by_alpha = !raw.chunks_exact(channels).any(lit)
            && raw.chunks_exact(channels).any(|p| p[colour] <= zero);
        raw.chunks_exact(channels)
            .map(|p| (by_alpha || lit(p)) && p[colour] > zero)
            .collect()
    }
    Ok(match &img {
        D::ImageLuma8(b) => kept(b.as_raw(), 1, 1),
        D::ImageLumaA8(b) => kept(b.as_raw(), 2, 1),
        D::ImageRgb8(b) => kept(b.as_raw(), 3, 3),
        D::ImageRgba8(b) => kept(b.as_raw(), 4, 3),
        D::ImageLuma16(b) => kept(b.as_raw(), 1, 1),
        D::ImageLumaA16(b) => kept(b.as_raw(), 2, 1),
        D::ImageRgb16(b) => kept(b.as_raw(), 3, 3),
        D::ImageRgba16(b) => kept(b.as_raw(), 4, 3),
        D::ImageRgb32F(b) => kept(b.as_raw(), 3, 3),
        D::ImageRgba32F(b) => kept(b.as_raw(), 4, 3),
        other if other.color().has_alpha() => kept(other.to_rgba32f().as_raw(), 4, 3),
        other => kept(other.to_rgb32f().as_raw(), 3, 3),
    })
}

/// Whether an `m`-sized picture is a scaled copy of a `p`-sized one by an
/// integer factor N from 2 to 8, as an `images_N` folder's photos are
/// (the original 3DGS's are `images_2`, `_4` and `_8`): `p ÷ N` or `p × N`
/// along both axes, the division rounded either way. (A larger N would
/// take almost any small mask for a copy: 7×5 is 64×48 ÷ 9.)
fn scaled_copy(m: (u32, u32), p: (u32, u32)) -> bool {
    // `small` is `large ÷ n` to a pixel along both axes
    let divides = |small: (u32, u32), large: (u32, u32)| {
        if small.0 == 0 || small.1 == 0 {
            return false;
        }
        let n = (f64::from(large.0) / f64::from(small.0)).round() as u64;
        let near = |s: u32, l: u32| (u64::from(s) * n).abs_diff(u64::from(l)) < n;
        (2..=8).contains(&n) && near(small.0, large.0) && near(small.1, large.1)
    };
    divides(m, p) || divides(p, m)
}

/// Reads and decodes a mask file (see [`parse`]).
pub fn load(
    path: &Path,
    photo: &Path,
    width: u32,
    height: u32,
    invert: bool,
) -> Result<Vec<f32>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse(path, &bytes, photo, width, height, invert)
}

/// A mask file's size from its header, its format guessed from its bytes
/// as [`load`] reads it (a `.png` holding another format included);
/// `None` when it cannot be read or is zero.
pub fn dimensions(path: &Path) -> Option<(u32, u32)> {
    super::photo_size(path)
}

/// The mask an alpha channel implies: pixels with no coverage at all are
/// ignored (a COLMAP photo with transparency).
pub fn from_alpha(alpha: &[f32]) -> Vec<f32> {
    alpha
        .iter()
        .map(|&a| if a > 0.0 { 1.0 } else { 0.0 })
        .collect()
}

/// Pixel-wise product of two optional masks (`None` keeps everything).
pub fn combine(a: Option<Vec<f32>>, b: Option<Vec<f32>>) -> Option<Vec<f32>> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            for (x, y) in a.iter_mut().zip(b) {
                *x *= y;
            }
            Some(a)
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// The mask of an image circle: a pixel of a `w`×`h` photo is kept (1)
/// when its centre lies within `radius` of the middle pixel's centre (row
/// `h / 2`, column `w / 2`, rounded down: the circle nerfstudio draws for
/// `fisheye_crop_radius`), else ignored (0).
///
/// ```
/// let m = splat::data::masks::circle(4, 3, 1.5);
/// // the middle pixel is column 2, row 1: column 0 lies 2 or more from it
/// let row = [0.0, 1.0, 1.0, 1.0];
/// assert_eq!(m, [row, row, row].concat());
/// ```
pub fn circle(w: u32, h: u32, radius: f64) -> Vec<f32> {
    let (mx, my) = ((w / 2) as f64, (h / 2) as f64);
    let r2 = radius * radius;
    (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let (dx, dy) = (x as f64 - mx, y as f64 - my);
                f32::from(u8::from(dx * dx + dy * dy < r2))
            })
        })
        .collect()
}

/// A mask downscaled by an integer factor: a pixel is kept only when every
/// pixel of its block is (its colour averages them all).
pub fn downscale(w: u32, h: u32, mask: &[f32], f: u32) -> Vec<f32> {
    super::downscale_box(w, h, mask, 1, f)
        .2
        .into_iter()
        .map(|m| if m > 1.0 - 1e-4 { 1.0 } else { 0.0 })
        .collect()
}

/// A `mw × mh` mask resampled to `w × h`, another size of its photo (an
/// `images_N` folder's smaller copy, or the full-size photo read in its
/// place): a pixel is kept only when every mask pixel its area covers is
/// (when enlarging, the one it falls in).
pub fn fit(mw: u32, mh: u32, mask: &[f32], w: u32, h: u32) -> Vec<f32> {
    fit_by(mw, mh, |i| mask[i] >= 1.0, w, h)
}

/// [`fit`] of the mask whose pixel `i` (row-major) is kept when `kept(i)`.
fn fit_by(mw: u32, mh: u32, kept: impl Fn(usize) -> bool, w: u32, h: u32) -> Vec<f32> {
    let span = |i: u32, n: u32, m: u32| {
        let a = (i as u64 * m as u64 / n as u64) as u32;
        let b = ((i as u64 + 1) * m as u64).div_ceil(n as u64) as u32;
        a.min(m.saturating_sub(1))..b.clamp(a + 1, m.max(a + 1))
    };
    let mut out = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        let ys = span(y, h, mh);
        for x in 0..w {
            let xs = span(x, w, mw);
            let kept = ys
                .clone()
                .all(|sy| xs.clone().all(|sx| kept((sy * mw + sx) as usize)));
            out.push(if kept { 1.0 } else { 0.0 });
        }
    }
    out
}

/// `None` for a mask that keeps every pixel (the cheaper form for
/// training).
pub fn simplify(mask: Option<Vec<f32>>) -> Option<Vec<f32>> {
    mask.filter(|m| m.iter().any(|&x| x < 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A mask of any colour type PNG stores (grey, grey and alpha,
        /// RGB, RGBA; 8 or 16 bits) keeps the pixels whose colour, read as
        /// RGB in [0, 1], is above 0 anywhere and whose alpha is (by the
        /// alpha alone when the colour is black throughout and the alpha
        /// not opaque throughout), and its
        /// inverse the others; fitting a 2× copy of it keeps a pixel
        /// only where its whole block is kept.
        #[test]
        fn every_colour_type_keeps_the_pixels_with_some_colour(
            kind in 0usize..8,
            samples in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(0u16), proptest::strategy::Just(1u16), 0u16..=65535], 6 * 4 * 4),
            invert: bool,
        ) {
            use image::{DynamicImage as D, ImageBuffer};
            let (w, h) = (6u32, 4u32);
            let n = (w * h) as usize;
            let of8 = |c: usize| samples[..n * c].iter().map(|&v| (v >> 8) as u8 | (v & 1) as u8).collect::<Vec<u8>>();
            let of16 = |c: usize| samples[..n * c].to_vec();
            let img = match kind {
                0 => D::ImageLuma8(ImageBuffer::from_raw(w, h, of8(1)).unwrap()),
                1 => D::ImageLumaA8(ImageBuffer::from_raw(w, h, of8(2)).unwrap()),
                2 => D::ImageRgb8(ImageBuffer::from_raw(w, h, of8(3)).unwrap()),
                3 => D::ImageRgba8(ImageBuffer::from_raw(w, h, of8(4)).unwrap()),
                4 => D::ImageLuma16(ImageBuffer::from_raw(w, h, of16(1)).unwrap()),
                5 => D::ImageLumaA16(ImageBuffer::from_raw(w, h, of16(2)).unwrap()),
                6 => D::ImageRgb16(ImageBuffer::from_raw(w, h, of16(3)).unwrap()),
                _ => D::ImageRgba16(ImageBuffer::from_raw(w, h, of16(4)).unwrap()),
            };
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
            // colour above 0 and not transparent; by the alpha alone when
            // the colour is black throughout
            let rgba = img.to_rgba32f();
            let lit = |p: &image::Rgba<f32>| p.0[..3].iter().any(|&c| c > 0.0);
            let black = !rgba.pixels().any(lit) && rgba.pixels().any(|p| p.0[3] <= 0.0);
            let want: Vec<f32> = rgba
                .pixels()
                .map(|p| {
                    let keep = (black && img.color().has_alpha() || lit(p)) && p.0[3] > 0.0;
                    if keep != invert { 1.0 } else { 0.0 }
                })
                .collect();
            let (m, photo) = (Path::new("m.png"), Path::new("p.png"));
            proptest::prop_assert_eq!(&parse(m, &png, photo, w, h, invert).unwrap(), &want);
            let half = parse(m, &png, photo, w / 2, h / 2, invert).unwrap();
            proptest::prop_assert_eq!(half, fit(w, h, &want, w / 2, h / 2));
        }
    }

    /// A cut-out's transparency is a mask: white where kept, transparent
    /// where not (the trial's RGBA and grey-and-alpha masks, which were
    /// read as keeping everything); and a mask drawn in the alpha alone,
    /// black throughout, is read by its alpha (but black and opaque
    /// throughout ignores every pixel).
    #[test]
    fn a_mask_files_transparency_ignores_its_pixels() {
        use image::{DynamicImage as D, ImageBuffer};
        let png = |img: D| {
            let mut b = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
                .unwrap();
            b
        };
        let (m, photo) = (Path::new("m.png"), Path::new("p.png"));
        // 2×1: the left pixel transparent, the right opaque
        let cutouts = [
            png(D::ImageRgba8(
                ImageBuffer::from_raw(2, 1, vec![255, 255, 255, 0, 255, 255, 255, 255]).unwrap(),
            )),
            png(D::ImageLumaA8(
                ImageBuffer::from_raw(2, 1, vec![255, 0, 255, 255]).unwrap(),
            )),
            png(D::ImageRgba8(
                ImageBuffer::from_raw(2, 1, vec![0, 0, 0, 0, 0, 0, 0, 255]).unwrap(),
            )),
        ];
        for bytes in &cutouts {
            assert_eq!(parse(m, bytes, photo, 2, 1, false).unwrap(), [0.0, 1.0]);
            assert_eq!(parse(m, bytes, photo, 2, 1, true).unwrap(), [1.0, 0.0]);
        }
        // black and opaque is ignored, as without an alpha channel
        let bytes = png(D::ImageRgba8(
            ImageBuffer::from_raw(2, 1, vec![0, 0, 0, 255, 9, 0, 0, 255]).unwrap(),
        ));
        assert_eq!(parse(m, &bytes, photo, 2, 1, false).unwrap(), [0.0, 1.0]);
        let bytes = png(D::ImageLuma8(
            ImageBuffer::from_raw(2, 1, vec![0, 0]).unwrap(),
        ));
        assert_eq!(parse(m, &bytes, photo, 2, 1, false).unwrap(), [0.0, 0.0]);
        // black and opaque throughout, with an alpha channel: every pixel
        // ignored (a photo to leave out whole), not read by the alpha
        for bytes in [
            png(D::ImageRgba8(
                ImageBuffer::from_raw(2, 1, vec![0, 0, 0, 255, 0, 0, 0, 255]).unwrap(),
            )),
            png(D::ImageLumaA8(
                ImageBuffer::from_raw(2, 1, vec![0, 255, 0, 255]).unwrap(),
            )),
        ] {
            assert_eq!(parse(m, &bytes, photo, 2, 1, false).unwrap(), [0.0, 0.0]);
            assert_eq!(parse(m, &bytes, photo, 2, 1, true).unwrap(), [1.0, 1.0]);
        }
    }

    #[test]
    fn a_mask_fits_a_smaller_copy_of_its_photo_conservatively() {
        // 4×2 → 2×1: a block is kept only when all of it is
        let m = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(fit(4, 2, &m, 2, 1), vec![1.0, 0.0]);
        // 5×3 → 2×1 (not a whole factor): the blocks overlap at the seam
        let m = [1.0; 15];
        assert_eq!(fit(5, 3, &m, 2, 1), vec![1.0, 1.0]);
        let mut m = [1.0; 15];
        m[2] = 0.0; // the middle column belongs to both blocks
        assert_eq!(fit(5, 3, &m, 2, 1), vec![0.0, 0.0]);
    }

    fn png(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::GrayImage::from_raw(w, h, px.to_vec())
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn zero_ignores_anything_else_keeps_and_invert_swaps() {
        let b = png(3, 1, &[0, 1, 255]);
        let p = Path::new("m.png");
        let photo = Path::new("a.jpg");
        assert_eq!(parse(p, &b, photo, 3, 1, false).unwrap(), [0.0, 1.0, 1.0]);
        assert_eq!(parse(p, &b, photo, 3, 1, true).unwrap(), [1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_mask_of_the_wrong_size_names_both_files() {
        let b = png(3, 1, &[0, 1, 255]);
        let e = parse(
            Path::new("masks/a.png"),
            &b,
            Path::new("images/a.jpg"),
            4,
            4,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("masks/a.png") && e.contains("images/a.jpg") && e.contains("3×1"),
            "{e}"
        );
        let e = parse(
            Path::new("m.png"),
            b"not a png",
            Path::new("a"),
            1,
            1,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("m.png") && e.contains("\"not a png\""), "{e}");
    }

    #[test]
    fn an_empty_or_cut_short_mask_says_so() {
        let b = png(64, 64, &[7; 64 * 64]);
        let (p, photo) = (Path::new("m.png"), Path::new("a.jpg"));
        let e = parse(p, &[], photo, 64, 64, false).unwrap_err().to_string();
        assert!(e.contains("m.png") && e.contains("empty"), "{e}");
        let e = parse(p, &b[..b.len() - 20], photo, 64, 64, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.png") && e.contains("cut short"), "{e}");
    }

    #[test]
    fn a_scaled_copy_of_the_photo_is_resampled() {
        // a half-size mask of a 4×2 photo: each of its pixels covers 2×2
        let half = png(2, 1, &[0, 255]);
        let (p, photo) = (Path::new("m.png"), Path::new("a.jpg"));
        assert_eq!(
            parse(p, &half, photo, 4, 2, false).unwrap(),
            [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
        );
        // a double-size one: a pixel is kept only when all it covers are
        let double = png(4, 2, &[255, 255, 255, 0, 255, 255, 255, 255]);
        assert_eq!(parse(p, &double, photo, 2, 1, false).unwrap(), [1.0, 0.0]);
        assert_eq!(parse(p, &double, photo, 2, 1, true).unwrap(), [0.0, 0.0]);
        // another shape is still refused
        let e = parse(p, &half, photo, 4, 8, false).unwrap_err().to_string();
        assert!(e.contains("2×1") && e.contains("4×8"), "{e}");
    }

    #[test]
    fn a_scaled_copy_is_a_whole_factor_along_both_axes_to_a_pixel() {
        assert!(scaled_copy((160, 120), (320, 240)));
        assert!(scaled_copy((106, 80), (320, 240))); // ÷ 3, rounded down
        assert!(scaled_copy((107, 80), (320, 240))); // ÷ 3, rounded up
        assert!(scaled_copy((640, 480), (320, 240)));
        assert!(scaled_copy((960, 720), (320, 240)));
        assert!(scaled_copy((480, 270), (1920, 1080)));
        assert!(!scaled_copy((160, 100), (320, 240)));
        assert!(!scaled_copy((240, 320), (320, 240)));
        assert!(!scaled_copy((17, 12), (16, 12)));
        assert!(!scaled_copy((1000, 563), (1920, 1080))); // not a whole factor
        assert!(!scaled_copy((3, 1), (4, 8)));
        assert!(!scaled_copy((7, 5), (64, 48))); // ÷ 9
        assert!(scaled_copy((8, 6), (64, 48))); // ÷ 8
        assert!(!scaled_copy((0, 4), (3, 1)));
    }

    #[test]
    fn masks_are_found_by_full_name_or_stem() {
        let d = std::env::temp_dir().join(format!("splat-masks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.jpg.png"), b"").unwrap();
        std::fs::write(d.join("sub/b.png"), b"").unwrap();
        assert_eq!(find(&d, "a.jpg"), Some(d.join("a.jpg.png")));
        assert_eq!(find(&d, "sub/b.jpg"), Some(d.join("sub/b.png")));
        assert_eq!(find(&d, "c.jpg"), None);
        let (a, c) = (Path::new("images/a.jpg"), Path::new("images/c.jpg"));
        let tally = |photos: &[(&str, &Path)]| {
            let mut t = Tally::default();
            for (name, photo) in photos {
                t.add(name, photo, find(&d, name).is_some());
            }
            t.verdict(&d)
        };
        let notes = tally(&[("c.jpg", c), ("a.jpg", a)]).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("1 of the 2 photos (c.jpg): it is"),
            "{notes:?}"
        );
        assert!(tally(&[("a.jpg", a)]).unwrap().is_empty());
        let e = tally(&[("c.jpg", c)]).unwrap_err().to_string();
        assert!(
            e.contains("images/c.jpg") && e.contains("c.jpg.png") && e.contains("c.png"),
            "{e}"
        );
        assert!(!e.contains("cannot read"), "{e}");
        // a photo with both files: the whole name's is used, and said
        std::fs::write(d.join("a.png"), b"").unwrap();
        assert_eq!(find(&d, "a.jpg"), Some(d.join("a.jpg.png")));
        assert_eq!(passed_over(&d, "a.jpg"), Some(d.join("a.png")));
        assert_eq!(passed_over(&d, "sub/b.jpg"), None);
        let mut t = Tally::default();
        for name in ["a.jpg", "sub/b.jpg"] {
            let found = find(&d, name);
            t.add_found(name, a, &d, found.as_deref());
        }
        let notes = t.verdict(&d).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("1 of the 2 photos has two mask files (a.jpg)")
                && notes[0].contains("a.jpg.png and not")
                && notes[0].ends_with("a.png)"),
            "{notes:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn downscaled_masks_keep_only_whole_blocks() {
        let m = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(downscale(4, 2, &m, 2), [1.0, 0.0]);
        assert_eq!(
            combine(Some(vec![1.0, 0.0]), Some(vec![0.0, 1.0])),
            Some(vec![0.0, 0.0])
        );
        assert_eq!(simplify(Some(vec![1.0, 1.0])), None);
    }
}
