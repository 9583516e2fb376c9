//! Images in and out: PNG/JPEG decoding to RGB floats in `[0, 1]` (the
//! stored values as fractions of their range, 8-bit `b / 255` or 16-bit
//! `v / 65535`, with no colour-space conversion: an sRGB photo stays
//! sRGB-encoded, as the peer's `img_as_float` keeps it), transparency
//! composited over a background, a JPEG's EXIF orientation applied, a
//! truncated JPEG refused; PNG encoding, the built-in default target, and
//! the side-by-side comparison picture.

use std::path::Path;

use image::{imageops::FilterType, ImageDecoder, ImageFormat, RgbImage};

/// An RGB image, `height × width × 3` values in `[0, 1]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height · width · 3` values.
    pub data: Vec<f64>,
}

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("cannot read image: {0}")]
    Read(String),
    /// Not PNG or JPEG (by content).
    #[error("unsupported image format (expected PNG or JPEG){0}")]
    Format(String),
    /// The file is PNG/JPEG but does not decode.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Zero width or height.
    #[error("image has zero size ({0}x{1})")]
    Empty(usize, usize),
    /// Encoding failed.
    #[error("cannot encode PNG: {0}")]
    Encode(String),
}

impl Image {
    /// From 8-bit RGB.
    pub fn from_rgb8(img: &RgbImage) -> Self {
        Image {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.as_raw().iter().map(|&b| b as f64 / 255.0).collect(),
        }
    }

    /// To 8-bit RGB (clipped to `[0, 1]`, rounded).
    pub fn to_rgb8(&self) -> RgbImage {
        let bytes: Vec<u8> = self
            .data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
            .collect();
        RgbImage::from_raw(self.width as u32, self.height as u32, bytes).expect("size matches")
    }

    /// PNG bytes (8-bit RGB).
    pub fn to_png(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.to_rgb8()
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| ImageError::Encode(e.to_string()))?;
        Ok(out.into_inner())
    }

    /// Resized to `width × height` (Lanczos; aspect ratio not kept).
    pub fn resized(&self, width: usize, height: usize) -> Image {
        if width == self.width && height == self.height {
            return self.clone();
        }
        let r = image::imageops::resize(
            &self.to_rgb8(),
            width as u32,
            height as u32,
            FilterType::Lanczos3,
        );
        Image::from_rgb8(&r)
    }
}

/// Reads a PNG or JPEG file (decided by its content) as RGB, composited
/// over black where it is transparent (see [`decode_on`]).
pub fn load(path: &Path) -> Result<Image, ImageError> {
    Ok(load_on(path, [0.0; 3])?.0)
}

/// [`load`] over `background`; also says whether any pixel was
/// transparent.
pub fn load_on(path: &Path, background: [f64; 3]) -> Result<(Image, bool), ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Read(e.to_string()))?;
    decode_on(&bytes, background)
}

/// The size a photo file decodes to with [`load`]: its header's, with
/// width and height swapped when its EXIF orientation turns it a quarter
/// (a phone's portrait photo stored landscape), read without decoding the
/// pixels; `None` when the file cannot be read as an image.
pub fn oriented_size(path: &Path) -> Option<(u32, u32)> {
    use image::metadata::Orientation as O;
    let mut decoder = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    let (w, h) = decoder.dimensions();
    Some(match decoder.orientation().ok()? {
        O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH => (h, w),
        _ => (w, h),
    })
}

/// Decodes PNG or JPEG bytes, over black (see [`decode_on`]).
pub fn decode(bytes: &[u8]) -> Result<Image, ImageError> {
    Ok(decode_on(bytes, [0.0; 3])?.0)
}

/// Decodes PNG or JPEG bytes as RGB: grey repeated; 8-bit values `b / 255`
/// and 16-bit ones `v / 65535`; a pixel of alpha `a < 1` composited over
/// `background` (`a · c + (1 − a) · bg`), the `bool` saying whether any
/// was; an EXIF orientation (a JPEG's, or a PNG's `eXIf` chunk) applied,
/// so that a portrait photo is upright, as viewers show it (`image`
/// 0.25.4 or later reads it). A JPEG that ends before its end-of-image
/// marker (a truncated download) is an error, not an image with its last
/// rows filled in.
pub fn decode_on(bytes: &[u8], background: [f64; 3]) -> Result<(Image, bool), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Decode("the file is empty (0 bytes)".into()));
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::Format(String::new()))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(ImageError::Format(format!(", found {format:?}")));
    }
    if format == ImageFormat::Jpeg {
        jpeg_complete(bytes).map_err(ImageError::Decode)?;
    }
    let decode_err = |e: image::ImageError| ImageError::Decode(unreadable(bytes, &e));
    let mut decoder = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_decoder()
        .map_err(decode_err)?;
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(ImageError::Empty(w, h));
    }
    let wide = matches!(
        img.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
    );
    if !wide && !img.color().has_alpha() {
        return Ok((Image::from_rgb8(&img.to_rgb8()), false));
    }
    // (values as f64 of the stored integers, so that an opaque pixel
    // is exactly what the 8-bit path gives)
    let (px, range): (Vec<u16>, f64) = match wide {
        true => (img.to_rgba16().into_raw(), 65535.0),
        false => (
            img.to_rgba8()
                .into_raw()
                .into_iter()
                .map(u16::from)
                .collect(),
            255.0,
        ),
    };
    let mut data = Vec::with_capacity(w * h * 3);
    let mut transparent = false;
    for p in px.chunks_exact(4) {
        let a = p[3] as f64 / range;
        transparent |= p[3] as f64 != range;
        for c in 0..3 {
            let v = p[c] as f64 / range;
            data.push(if a < 1.0 {
                v * a + background[c] * (1.0 - a)
            } else {
                v
            });
        }
    }
    let img = Image {
        width: w,
        height: h,
        data,
    };
    Ok((img, transparent))
}

/// What went wrong with an image file's `bytes` that `image` could not
/// decode (`err`), in words a user can act on: an empty file, a file that
/// is not an image (with its first bytes when they read as text), or one
/// cut short (a partial copy or download), else `image`'s own message.
///
/// ```
/// use splat::image_io::unreadable;
/// let e = image::load_from_memory(b"").unwrap_err();
/// assert!(unreadable(b"", &e).contains("empty"));
/// let e = image::load_from_memory(b"hello").unwrap_err();
/// assert!(unreadable(b"hello", &e).contains("\"hello\""));
/// ```
pub fn unreadable(bytes: &[u8], err: &image::ImageError) -> String {
    if bytes.is_empty() {
        return "the file is empty (0 bytes)".into();
    }
    if image::guess_format(bytes).is_err() {
        let head = &bytes[..bytes.len().min(16)];
        // (the text before a character the 16 bytes cut in two)
        let head = match std::str::from_utf8(head) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        };
        let head = head.trim_end();
        let text = Some(head)
            .filter(|t| !t.is_empty() && t.chars().all(|c| !c.is_control() || c.is_whitespace()))
            .map(|t| format!(" (it starts with {t:?})"))
            .unwrap_or_default();
        return format!("is not an image this program reads (PNG, JPEG, WebP or GIF){text}");
    }
    let cut_short = match err {
        image::ImageError::IoError(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
        e => e.to_string().contains("end of file"),
    };
    if cut_short {
        return format!(
            "the file is cut short after {} bytes (an incomplete copy or download?)",
            bytes.len()
        );
    }
    err.to_string()
}

/// Whether JPEG `bytes` run to their end-of-image marker: the segments
/// are walked by their lengths from the start-of-image marker, and each
/// scan's entropy-coded data to the next marker (a `0xFF` byte not
/// followed by a stuffed `0x00` or a restart marker), until `EOI`. Data
/// after it (another picture of a multi-picture file, a motion photo's
/// video) is not read.
pub fn jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let truncated = |at: usize| {
        Err(format!(
            "the JPEG is truncated: it ends at byte {} before its end-of-image marker \
             (an incomplete download or copy?)",
            at.min(bytes.len())
        ))
    };
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG (no start-of-image marker)".into());
    }
    let mut i = 2;
    loop {
        // a marker, after any fill bytes (and stray bytes, which decoders
        // skip with a warning)
        match bytes[i.min(bytes.len())..].iter().position(|&b| b == 0xFF) {
            Some(k) => i += k,
            None => return truncated(bytes.len()),
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return truncated(i);
        };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // markers without a length
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return truncated(i);
        };
        if len < 2 {
            return Err(format!(
                "the JPEG is damaged: a segment of length {len} at byte {i}"
            ));
        }
        i += len;
        if i > bytes.len() {
            return truncated(i);
        }
        if marker == 0xDA {
            // the scan's data, to the next marker that is not a restart
            loop {
                let Some(k) = bytes[i..].iter().position(|&b| b == 0xFF) else {
                    return truncated(bytes.len());
                };
                i += k;
                match bytes.get(i + 1) {
                    None => return truncated(bytes.len()),
                    Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                    // fill bytes before a marker
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// The built-in target: smooth colour gradients, shapes with sharp edges
/// (a disc, a triangle, a bar) and fine texture (stripes, a checkerboard
/// and rings), `size × size`, generated by code so it needs no file.
pub fn default_target(size: usize) -> Image {
    let s = size.max(1) as f64;
    let mut data = Vec::with_capacity(size * size * 3);
    for i in 0..size {
        for j in 0..size {
            let (x, y) = ((j as f64 + 0.5) / s, (i as f64 + 0.5) / s);
            // smooth background
            let mut c = [
                0.15 + 0.6 * x,
                0.25 + 0.5 * y,
                0.55 + 0.35 * (3.0 * x + 2.0 * y).sin() * 0.5,
            ];
            // sharp disc
            if (x - 0.3).powi(2) + (y - 0.32).powi(2) < 0.17f64.powi(2) {
                c = [0.92, 0.25, 0.18];
            }
            // triangle
            if y > 0.55 && y < 0.92 && (x - 0.28).abs() < (y - 0.55) * 0.6 {
                c = [0.1, 0.15, 0.45];
            }
            // diagonal bar
            let t = (x - y + 0.2).abs();
            if t < 0.03 && x > 0.45 {
                c = [0.98, 0.9, 0.3];
            }
            // fine stripes, top right
            if x > 0.62 && x < 0.92 && y > 0.08 && y < 0.36 {
                let v = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * x * s / 6.0).sin();
                c = [v, 0.3 + 0.4 * v, 1.0 - v];
            }
            // checkerboard, bottom right
            if x > 0.58 && x < 0.9 && y > 0.6 && y < 0.9 {
                let cell = (s / 32.0).max(1.0);
                let k = ((j as f64 / cell) as i64 + (i as f64 / cell) as i64) % 2;
                c = if k == 0 {
                    [0.95, 0.95, 0.9]
                } else {
                    [0.2, 0.35, 0.2]
                };
            }
            // rings inside the disc area's neighbour
            let r = ((x - 0.5).powi(2) + (y - 0.5).powi(2)).sqrt();
            if r < 0.09 {
                let v = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * r * s / 5.0).cos();
                c = [0.3 + 0.6 * v, 0.6 * v, 0.2];
            }
            data.extend(c.iter().map(|v| v.clamp(0.0, 1.0)));
        }
    }
    Image {
        width: size,
        height: size,
        data,
    }
}

/// `target | render | error` side by side, the error as a heat map of the
/// mean absolute error over the channels (black 0, red, yellow, white at
/// 0.25 and above).
pub fn compare(target: &Image, render: &Image) -> Image {
    compare_masked(target, render, None)
}

/// [`compare`] for a photo with a mask (`height × width`, 0 = ignored):
/// ignored pixels show dark blue in the error panel, since they take no
/// part in the loss or the scores.
///
/// # Panics
/// If `render` or `mask` is not the size of `target`.
pub fn compare_masked(target: &Image, render: &Image, mask: Option<&[f32]>) -> Image {
    let (w, h) = (target.width, target.height);
    assert_eq!((render.width, render.height), (w, h), "render size");
    assert!(mask.is_none_or(|m| m.len() == w * h), "mask size");
    let mut data = vec![0.0; h * 3 * w * 3];
    for i in 0..h {
        for j in 0..w {
            let p = (i * w + j) * 3;
            let row = i * 3 * w;
            let mut err = 0.0;
            for c in 0..3 {
                data[(row + j) * 3 + c] = target.data[p + c];
                let r = render.data[p + c].clamp(0.0, 1.0);
                data[(row + w + j) * 3 + c] = r;
                err += (r - target.data[p + c]).abs() / 3.0;
            }
            let e = (err / 0.25).clamp(0.0, 1.0) * 3.0;
            let heat = if mask.is_some_and(|m| m[i * w + j] == 0.0) {
                [0.0, 0.0, 0.35]
            } else {
                [
                    e.min(1.0),
                    (e - 1.0).clamp(0.0, 1.0),
                    (e - 2.0).clamp(0.0, 1.0),
                ]
            };
            for c in 0..3 {
                data[(row + 2 * w + j) * 3 + c] = heat[c];
            }
        }
    }
    Image {
        width: 3 * w,
        height: h,
        data,
    }
}
