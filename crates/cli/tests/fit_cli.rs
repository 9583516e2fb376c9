//! `chainrule fit` and `chainrule render` end to end through the binary:
//! outputs, JSON, and exit code 2 with a clear message on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-fit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    assert!(e.contains(needle), "stderr lacks {needle:?}: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
}

fn write_png(path: &Path, w: u32, h: u32) {
    let img =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 128]));
    img.save(path).unwrap();
}

#[test]
fn fit_builtin_target_writes_outputs_and_json() {
    let d = tmp("builtin");
    let out = d.join("out");
    let o = run(&[
        "fit",
        "--gaussians",
        "40",
        "--iters",
        "15",
        "--size",
        "32",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for key in [
        "psnr",
        "ssim",
        "gaussians",
        "iterations",
        "seconds",
        "seconds_per_iteration",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["gaussians"], 40);
    assert_eq!(v["iterations"], 15);
    assert!(v["psnr"].as_f64().unwrap() > 5.0);
    let render = image::open(out.join("render.png")).unwrap();
    assert_eq!((render.width(), render.height()), (32, 32));
    let cmp = image::open(out.join("compare.png")).unwrap();
    assert_eq!((cmp.width(), cmp.height()), (96, 32));
    assert!(out.join("gaussians.json").is_file());

    // render again at twice the size
    let big = d.join("big.png");
    let o = run(&[
        "render",
        out.join("gaussians.json").to_str().unwrap(),
        "--out",
        big.to_str().unwrap(),
        "--scale",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&big).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    // and at scale 1 it reproduces render.png exactly
    let same = d.join("same.png");
    let o = run(&[
        "render",
        out.join("gaussians.json").to_str().unwrap(),
        "--out",
        same.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&same).unwrap().to_rgb8(), render.to_rgb8());
}

#[test]
fn fit_is_deterministic_for_a_seed() {
    let d = tmp("det");
    let mut files = Vec::new();
    for k in 0..2 {
        let out = d.join(format!("o{k}"));
        let o = run(&[
            "fit",
            "--gaussians",
            "30",
            "--iters",
            "10",
            "--size",
            "24",
            "--seed",
            "7",
            "--loss",
            "mse",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        files.push(std::fs::read(out.join("gaussians.json")).unwrap());
    }
    assert_eq!(files[0], files[1]);
}

#[test]
fn fit_png_and_jpeg_of_any_size() {
    let d = tmp("formats");
    let png = d.join("t.png");
    write_png(&png, 20, 13);
    let jpg = d.join("t.jpg");
    image::open(&png).unwrap().to_rgb8().save(&jpg).unwrap();
    for input in [&png, &jpg] {
        let out = d.join("out");
        let o = run(&[
            "fit",
            input.to_str().unwrap(),
            "--gaussians",
            "10",
            "--iters",
            "5",
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--blend",
            "sum",
            "--background",
            "white",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let img = image::open(out.join("render.png")).unwrap();
        assert_eq!((img.width(), img.height()), (20, 13));
    }
}

#[test]
fn a_long_photo_is_fitted_at_1024_pixels_unless_size_says_otherwise() {
    let d = tmp("long");
    let png = d.join("long.png");
    write_png(&png, 1100, 40);
    let fit = |extra: &[&str]| {
        let out = d.join("out");
        let mut args = vec![
            "fit",
            png.to_str().unwrap(),
            "--gaussians",
            "10",
            "--iters",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let img = image::open(out.join("render.png")).unwrap();
        ((img.width(), img.height()), stderr(&o))
    };
    let (size, err) = fit(&[]);
    assert_eq!(size, (1024, 37));
    assert!(
        err.contains("long.png is 1100x40: fitting a 1024x37 copy") && err.contains("--size 1100"),
        "{err}"
    );
    let (size, err) = fit(&["--size", "1100"]);
    assert_eq!(size, (1100, 40));
    assert!(!err.contains("note:"), "{err}");
}

#[test]
fn missing_image_is_exit_2() {
    let d = tmp("missing");
    let o = run(&[
        "fit",
        d.join("nope.png").to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "nope.png");
}

#[test]
fn unsupported_format_is_exit_2() {
    let d = tmp("format");
    let f = d.join("notes.txt");
    std::fs::write(&f, "hello, not an image").unwrap();
    let o = run(&["fit", f.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert_usage_error(&o, "unsupported image format");
    // a GIF decodes in the image crate but is not accepted
    let gif = d.join("a.gif");
    image::RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 255]))
        .save(&gif)
        .unwrap();
    let o = run(&["fit", gif.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert_usage_error(&o, "unsupported image format");
}

#[test]
fn corrupt_png_is_exit_2() {
    let d = tmp("corrupt");
    let png = d.join("t.png");
    write_png(&png, 8, 8);
    let mut bytes = std::fs::read(&png).unwrap();
    bytes.truncate(40);
    std::fs::write(&png, bytes).unwrap();
    let o = run(&["fit", png.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert_usage_error(&o, "t.png");
}

#[test]
fn zero_sized_image_is_exit_2() {
    let d = tmp("zero");
    // a PNG header declaring 0x5 pixels
    let mut png = Vec::new();
    png.extend_from_slice(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&0u32.to_be_bytes());
    ihdr.extend_from_slice(&5u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let f = d.join("zero.png");
    std::fs::write(&f, png).unwrap();
    let o = run(&["fit", f.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("zero.png"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn zero_gaussians_is_exit_2() {
    let o = run(&["fit", "--gaussians", "0"]);
    assert_usage_error(&o, "--gaussians");
    let o = run(&["fit", "--gaussians", "10", "--initial-gaussians", "11"]);
    assert_usage_error(&o, "--initial-gaussians");
}

#[test]
fn non_numeric_flags_are_exit_2() {
    for args in [
        &["fit", "--iters", "many"][..],
        &["fit", "--gaussians", "1e3x"][..],
        &["fit", "--seed", "-"][..],
        &["fit", "--lr-mean", "fast"][..],
        &["fit", "--background", "purple"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn unwritable_output_directory_is_exit_2() {
    let d = tmp("unwritable");
    let file = d.join("a-file");
    std::fs::write(&file, "x").unwrap();
    // a directory below a regular file cannot be created
    let out = file.join("sub");
    let o = run(&[
        "fit",
        "--gaussians",
        "5",
        "--iters",
        "1",
        "--size",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "a-file");
}

#[test]
fn render_rejects_bad_models() {
    let d = tmp("render-bad");
    let f = d.join("m.json");
    std::fs::write(&f, r#"{"format":"chainrule-gaussians-2d","version":2}"#).unwrap();
    let o = run(&[
        "render",
        f.to_str().unwrap(),
        "--out",
        d.join("x.png").to_str().unwrap(),
    ]);
    assert_usage_error(&o, "m.json");
    let o = run(&[
        "render",
        d.join("absent.json").to_str().unwrap(),
        "--out",
        d.join("x.png").to_str().unwrap(),
    ]);
    assert_usage_error(&o, "absent.json");
    let o = run(&[
        "render",
        f.to_str().unwrap(),
        "--out",
        d.join("x.png").to_str().unwrap(),
        "--scale",
        "0",
    ]);
    assert_usage_error(&o, "--scale");
    let ply = d.join("scene.xyz");
    std::fs::write(&ply, "x").unwrap();
    let o = run(&[
        "render",
        ply.to_str().unwrap(),
        "--out",
        d.join("x.png").to_str().unwrap(),
    ]);
    assert_usage_error(&o, "unsupported model file");
}

#[test]
fn grow_adds_gaussians_during_the_fit() {
    let d = tmp("grow");
    let o = run(&[
        "fit",
        "--gaussians",
        "33",
        "--initial-gaussians",
        "20",
        "--grow-rounds",
        "3",
        "--iters",
        "12",
        "--size",
        "24",
        "--out",
        d.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["gaussians"], 33);
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("gaussians.json")).unwrap()).unwrap();
    assert_eq!(model["mean"].as_array().unwrap().len(), 33);
}

/// A picture's transparent pixels are fitted as composited over the
/// background (the colour the render shows there), with a note; not as
/// the colour hidden under alpha 0.
#[test]
fn transparent_pixels_are_fitted_over_the_background() {
    let d = tmp("transparent");
    let pic = d.join("disc.png");
    // a red disc on pixels of alpha 0 that hide pure green
    let img = image::RgbaImage::from_fn(24, 24, |x, y| {
        let inside = (x as i32 - 12).pow(2) + (y as i32 - 12).pow(2) < 36;
        match inside {
            true => image::Rgba([220, 30, 30, 255]),
            false => image::Rgba([0, 255, 0, 0]),
        }
    });
    img.save(&pic).unwrap();
    let out = d.join("out");
    let o = run(&[
        "fit",
        pic.to_str().unwrap(),
        "--gaussians",
        "60",
        "--iters",
        "60",
        "--background",
        "white",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("transparent pixels") && stderr(&o).contains("white"));
    // the corner is fitted white, not green
    let render = image::open(out.join("render.png")).unwrap().to_rgb8();
    let corner = render.get_pixel(0, 0).0;
    assert!(
        corner[0] > 200 && corner[1] > 200 && corner[2] > 200,
        "{corner:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A fit whose model its own reader would refuse (too large a rate
/// grows a factor past e^±30) fails, and writes nothing.
#[test]
fn a_diverged_fit_writes_no_model() {
    let d = tmp("diverged");
    let pic = d.join("p.png");
    write_png(&pic, 32, 24);
    let out = d.join("out");
    let o = run(&[
        "fit",
        pic.to_str().unwrap(),
        "--lr-chol",
        "5",
        "--iters",
        "200",
        "--gaussians",
        "100",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "diverged");
    assert!(stderr(&o).contains("--lr-chol 5"), "{}", stderr(&o));
    for f in ["render.png", "compare.png", "gaussians.json"] {
        assert!(!out.join(f).exists(), "{f}");
    }
    // a target too small for the Gaussians asked says it got fewer
    write_png(&pic, 6, 5);
    let o = run(&[
        "fit",
        pic.to_str().unwrap(),
        "--gaussians",
        "400",
        "--iters",
        "10",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = v["gaussians"].as_u64().unwrap();
    assert!(got < 400, "{v}");
    assert!(stderr(&o).contains(&format!(
        "note: {got} Gaussians, fewer than --gaussians 400"
    )));
    assert!(!stderr(&o).contains("loss rose"), "{}", stderr(&o));
    // a rate so large that the splats scatter without a NaN is said
    write_png(&pic, 40, 30);
    let o = run(&[
        "fit",
        pic.to_str().unwrap(),
        "--lr-mean",
        "1e6",
        "--iters",
        "60",
        "--gaussians",
        "100",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the loss rose"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `render` of a 2D fit: the folder `fit` wrote names its model; `--out`
/// may be `.png` or `.jpg` (written as such) in a folder it makes, and
/// another extension is refused; `--background` replaces the fitted one;
/// a 3D scene's flag is refused rather than ignored; `--json` says what
/// was written. An output that exists and is no folder is said so.
#[test]
fn render_of_a_fit_folder_and_its_outputs() {
    let d = tmp("render-2d");
    let fit_out = d.join("fit");
    let o = run(&[
        "fit",
        "--size",
        "24",
        "--gaussians",
        "30",
        "--iters",
        "10",
        "--out",
        fit_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = fit_out.to_str().unwrap();
    let jpg = d.join("new/deeper/r.jpg");
    let o = run(&["render", f, "--out", jpg.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(24), Some(24))
    );
    let bytes = std::fs::read(&jpg).unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Jpeg
    );
    // at scale 1, the PNG is the fit's own render
    let png = d.join("r.png");
    let o = run(&["render", f, "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&png).unwrap(),
        std::fs::read(fit_out.join("render.png")).unwrap()
    );
    // on white: a different picture
    let white = d.join("w.png");
    let o = run(&[
        "render",
        f,
        "--out",
        white.to_str().unwrap(),
        "--background",
        "white",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&white).unwrap(), std::fs::read(&png).unwrap());
    let o = run(&["render", f, "--out", d.join("r.gif").to_str().unwrap()]);
    assert_usage_error(&o, "not .gif");
    for flag in [&["--size", "10x10"][..], &["--orbit", "3"], &["--compare"]] {
        let mut args = vec!["render", f, "--out", png.to_str().unwrap()];
        args.extend(flag);
        assert_usage_error(&run(&args), &format!("{}: for 3D scenes", flag[0]));
    }
    #[cfg(unix)]
    assert_usage_error(
        &run(&["fit", "--out", "/dev/null"]),
        "exists and is not a folder",
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A target whose fit would not fit in memory is refused before anything
/// is decoded or allocated (an allocation failure would abort), with a
/// --size that fits.
#[test]
fn a_target_too_large_for_memory_is_refused() {
    // 8192² pixels at ~675 bytes each (l1-ssim in f64): about 45 GB
    if splat::machine::memory().is_none_or(|m| m > 55_000_000_000) {
        eprintln!("skipped: this machine's memory is unknown or holds the fit");
        return;
    }
    let d = tmp("too-large");
    let out = d.join("out");
    let o = run(&[
        "fit",
        "--size",
        "8192",
        "--loss",
        "l1-ssim",
        "--precision",
        "f64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "8192x8192 target needs about");
    let e = stderr(&o);
    let size: u32 = e
        .split("--size ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!((1..8192).contains(&size), "{e}");
    assert!(!out.exists(), "made its folder before refusing");
    std::fs::remove_dir_all(&d).unwrap();
}
