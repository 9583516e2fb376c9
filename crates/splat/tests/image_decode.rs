//! Reading a picture as `fit` does: transparency composited over the
//! background, 16-bit values kept, a JPEG's EXIF orientation applied, and
//! a truncated JPEG refused (the decoder itself fills its missing rows).

use image::ImageFormat;
use splat::image_io::{decode, decode_on, jpeg_complete};

/// A `w × h` RGB JPEG of a gradient (so that its scan is long).
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Jpeg)
        .unwrap();
    out
}

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

#[test]
fn a_truncated_jpeg_is_refused_and_a_whole_one_read() {
    let whole = jpeg(40, 30);
    assert!(jpeg_complete(&whole).is_ok());
    let full = decode(&whole).unwrap();
    assert_eq!((full.width, full.height), (40, 30));
    // cut anywhere after the start-of-image marker, header or scan
    for cut in [3, 20, whole.len() / 2, whole.len() - 3, whole.len() - 1] {
        let err = decode(&whole[..cut]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
    }
    // data after the end (a multi-picture file's next picture, a motion
    // photo's video) is not read, even where it holds marker-like bytes
    let mut longer = whole.clone();
    longer.extend([0xFF, 0xDA, 0x00, 0x08, 0xFF, 0xD8, 0x12]);
    assert_eq!(decode(&longer).unwrap(), full);
    // fill bytes before a marker and restart markers inside a scan
    let n = whole.len();
    let mut filled = whole[..n - 2].to_vec();
    filled.extend([0xFF, 0xFF, 0xD9]);
    assert!(jpeg_complete(&filled).is_ok());
    let mut restart = whole[..n - 2].to_vec();
    restart.extend([0xFF, 0xD3, 0x55, 0xFF, 0x00, 0xFF, 0xD9]);
    assert!(jpeg_complete(&restart).is_ok());
    assert!(jpeg_complete(&restart[..restart.len() - 2]).is_err());
}

/// The same JPEG with an EXIF block saying orientation 6 (rotate 90°
/// clockwise to view): read upright, its width and height swapped.
#[test]
fn exif_orientation_is_applied() {
    let plain = jpeg(40, 30);
    // APP1: "Exif\0\0", a little-endian TIFF header, one IFD entry
    // (tag 0x0112 orientation, SHORT, count 1, value 6)
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut rotated = vec![0xFF, 0xD8, 0xFF, 0xE1];
    rotated.extend(len.to_be_bytes());
    rotated.extend(&app1);
    rotated.extend(&plain[2..]);
    let (a, b) = (decode(&plain).unwrap(), decode(&rotated).unwrap());
    assert_eq!((b.width, b.height), (30, 40));
    // and the size read from the file's header says so too
    let dir = std::env::temp_dir().join(format!("chainrule-exif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (fp, fr) = (dir.join("plain.jpg"), dir.join("rotated.jpg"));
    std::fs::write(&fp, &plain).unwrap();
    std::fs::write(&fr, &rotated).unwrap();
    assert_eq!(splat::image_io::oriented_size(&fp), Some((40, 30)));
    assert_eq!(splat::image_io::oriented_size(&fr), Some((30, 40)));
    assert_eq!(splat::image_io::oriented_size(&dir.join("none.jpg")), None);
    std::fs::remove_dir_all(&dir).unwrap();
    // rotated 90° clockwise: b(x, y) = a(y, H − 1 − x)
    let px = |i: &splat::image_io::Image, x: usize, y: usize| {
        let p = (y * i.width + x) * 3;
        [i.data[p], i.data[p + 1], i.data[p + 2]]
    };
    for (x, y) in [(0, 0), (29, 0), (5, 39), (17, 23)] {
        assert_eq!(px(&b, x, y), px(&a, y, 29 - x), "({x}, {y})");
    }
}

#[test]
fn transparency_is_composited_over_the_background() {
    // alpha 0, 128 and 255 over colour (200, 40, 10)
    let img = image::RgbaImage::from_fn(3, 1, |x, _| {
        image::Rgba([200, 40, 10, [0, 128, 255][x as usize]])
    });
    let bytes = png(&image::DynamicImage::ImageRgba8(img));
    let bg = [1.0, 0.5, 0.0];
    let (got, transparent) = decode_on(&bytes, bg).unwrap();
    assert!(transparent);
    let c = [200.0 / 255.0, 40.0 / 255.0, 10.0 / 255.0];
    for (x, a) in [0.0, 128.0 / 255.0, 1.0].into_iter().enumerate() {
        for ch in 0..3 {
            let want = c[ch] * a + bg[ch] * (1.0 - a);
            assert!(
                (got.data[x * 3 + ch] - want).abs() < 1e-12,
                "pixel {x}, channel {ch}"
            );
        }
    }
    // an opaque RGBA picture is exactly its RGB twin, and says so
    let opaque = image::RgbaImage::from_fn(4, 2, |x, y| {
        image::Rgba([x as u8 * 60, y as u8 * 99, 7, 255])
    });
    let rgb = image::DynamicImage::ImageRgba8(opaque.clone()).to_rgb8();
    let (a, t) = decode_on(&png(&image::DynamicImage::ImageRgba8(opaque)), bg).unwrap();
    assert!(!t);
    assert_eq!(
        a,
        decode(&png(&image::DynamicImage::ImageRgb8(rgb))).unwrap()
    );
}

#[test]
fn sixteen_bit_values_are_kept() {
    let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(2, 1, |x, _| {
        image::Rgb([[257, 40000][x as usize], 65535, 1])
    });
    let bytes = png(&image::DynamicImage::ImageRgb16(img));
    let got = decode(&bytes).unwrap();
    let want = [257.0, 65535.0, 1.0, 40000.0, 65535.0, 1.0].map(|v| v / 65535.0);
    assert_eq!(got.data, want);
    // (one value below 256/65535 would be 0 in 8 bits)
    assert!(got.data[2] > 0.0);
}
