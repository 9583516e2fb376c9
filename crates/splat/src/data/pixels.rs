//! [`Pixels8`]: a photo's samples held at 8 bits.

/// Samples in `[0, 1]` stored as bytes (`0` = 0.0, `255` = 1.0), in the
/// order given: `height × width × 3` for colour, `height × width` for an
/// alpha or mask plane. What a camera, a PNG or JPEG and COLMAP's
/// undistorter store, in a quarter of the memory of `f32`.
///
/// A capture's photos are the largest thing a training run holds besides
/// its Gaussians: 185 photos of 1,600×1,040 (a Mip-NeRF 360 scene at the
/// default width) are 3.7 GB as `f32` colour and 0.9 GB at 8 bits, which
/// leaves room for about 600,000 more Gaussians in the default budget on
/// a 24 GiB machine ([`crate::train::budget`]). gsplat holds its photos so
/// too, and the original 3DGS resizes them at 8 bits.
///
/// An 8-bit photo read as it is (no undistortion, no resizing) keeps
/// every value: byte `b` reads back as `b as f32 / 255.0`, the value the
/// `image` crate's conversion gives. A photo that loading resampled
/// (undistorted, scaled down, composited on a background) is rounded to
/// the nearest of the 256 levels, once, as a resampled photo written to a
/// file would be: at most half a level (1/510), far below a model's
/// error. Sixteen-bit photos lose their lower bits. Masks, whose values
/// are 0 and 1, are held exactly.
///
/// ```
/// use splat::data::Pixels8;
/// let p = Pixels8::quantize(&[0.0, 0.5, 1.0, 2.0, -1.0]);
/// assert_eq!(p.bytes(), &[0, 128, 255, 255, 0]);
/// assert_eq!(p.get(2), 1.0);
/// // a value read from an 8-bit file comes back exactly
/// assert_eq!(Pixels8::quantize(&[200.0 / 255.0]).get(0), 200.0 / 255.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pixels8 {
    bytes: Vec<u8>,
}

/// The value of each byte: `b / 255` in `f32`.
static LEVELS: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b as f32 / 255.0;
        b += 1;
    }
    t
};

/// The byte nearest `x` (clamped to `[0, 1]`; NaN reads as 0).
#[inline]
pub(crate) fn level(x: f32) -> u8 {
    // `as` saturates and maps NaN to 0
    (x.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The value of byte `b`: `b / 255`.
#[inline]
pub(crate) fn value(b: u8) -> f32 {
    LEVELS[b as usize]
}

impl Pixels8 {
    /// The samples rounded to the nearest of the 256 levels `b / 255`
    /// (clamped to `[0, 1]`; NaN reads as 0).
    pub fn quantize(values: &[f32]) -> Pixels8 {
        Pixels8 {
            bytes: values.iter().map(|&x| level(x)).collect(),
        }
    }

    /// Bytes as they are (`0` = 0.0, `255` = 1.0).
    pub fn from_bytes(bytes: Vec<u8>) -> Pixels8 {
        Pixels8 { bytes }
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored bytes, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// No samples (a camera without a photo).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Sample `i` as a value in `[0, 1]`.
    ///
    /// # Panics
    ///
    /// If `i` is not below [`Pixels8::len`].
    pub fn get(&self, i: usize) -> f32 {
        value(self.bytes[i])
    }

    /// The samples as values in `[0, 1]`, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = f32> + '_ {
        self.bytes.iter().map(|&b| value(b))
    }

    /// The samples as `f32` values.
    pub fn to_f32(&self) -> Vec<f32> {
        self.iter().collect()
    }

    /// The samples as `f32` values into `out` (cleared first; its
    /// capacity is reused).
    pub fn write_f32(&self, out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.iter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_reads_back_as_the_image_crates_conversion_and_requantizes_to_itself() {
        for b in 0..=255u8 {
            // the `image` crate's u8 → f32 conversion, which the loaders use
            let decoded = image::Rgb([b, b, b]);
            let f = image::DynamicImage::ImageRgb8(image::ImageBuffer::from_pixel(1, 1, decoded))
                .to_rgb32f()
                .into_raw()[0];
            assert_eq!(value(b).to_bits(), f.to_bits(), "byte {b}");
            assert_eq!(level(value(b)), b);
        }
    }

    #[test]
    fn rounding_is_to_the_nearest_level_within_half_a_level() {
        let mut worst = 0.0f32;
        for i in 0..=100_000 {
            let x = i as f32 / 100_000.0;
            let e = (value(level(x)) - x).abs();
            worst = worst.max(e);
            // no other level is nearer
            let b = level(x);
            for n in [b.saturating_sub(1), b.saturating_add(1)] {
                assert!((value(n) - x).abs() >= e - 1e-7, "{x}: {b} against {n}");
            }
        }
        assert!(worst <= 0.5 / 255.0 + 1e-7, "{worst}");
        assert_eq!(level(f32::NAN), 0);
        assert_eq!(level(f32::INFINITY), 255);
        assert_eq!(level(-0.001), 0);
    }

    #[test]
    fn writing_reuses_the_buffer_and_replaces_its_contents() {
        let p = Pixels8::from_bytes(vec![0, 51, 255]);
        let mut out = vec![9.0; 10];
        p.write_f32(&mut out);
        assert_eq!(out, vec![0.0, 0.2, 1.0]);
        assert_eq!(p.to_f32(), out);
        assert_eq!(p.iter().len(), 3);
        assert!(Pixels8::default().is_empty());
    }
}
