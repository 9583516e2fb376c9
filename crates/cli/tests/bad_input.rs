//! Every subcommand on bad arguments and bad files (empty, truncated, wrong
//! magic, huge declared sizes, non-finite numbers, wrong types): exit code 2
//! with a message on stderr, never a panic (exit 101), a signal or a hang.
//! Table-driven; every file is a few hundred bytes, every case fails fast.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest a case may take: every one should fail in milliseconds.
const LIMIT: Duration = Duration::from_secs(10);

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-bad-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header declares `w`×`h` (valid CRC) followed by a tiny,
/// wrong IDAT: the decoder must refuse it, not allocate `w*h*3` bytes.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        v.extend_from_slice(&body);
        v.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    v
}

fn good_png() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(4, 4, |x, y| image::Rgb([(x * 60) as u8, (y * 60) as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const PLY_PROPS: [&str; 14] = [
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
    "rot_0", "rot_1", "rot_2", "rot_3",
];

/// A binary PLY of one vertex with float properties and the given values
/// (14 of them, in `PLY_PROPS` order), declaring `count` vertices.
fn ply(count: &str, vals: [f32; 14]) -> Vec<u8> {
    let mut b =
        format!("ply\nformat binary_little_endian 1.0\nelement vertex {count}\n").into_bytes();
    for p in PLY_PROPS {
        b.extend_from_slice(format!("property float {p}\n").as_bytes());
    }
    b.extend_from_slice(b"end_header\n");
    for v in vals {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

fn good_vals() -> [f32; 14] {
    let mut v = [0.0f32; 14];
    v[6] = 2.0; // opacity logit
    v[7] = -2.0; // log scales
    v[8] = -2.0;
    v[9] = -2.0;
    v[10] = 1.0; // rot_0
    v
}

fn with(i: usize, x: f32) -> [f32; 14] {
    let mut v = good_vals();
    v[i] = x;
    v
}

fn gaussians_json(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v = serde_json::json!({
        "format": "chainrule-gaussians-2d", "version": 1, "width": 8, "height": 8,
        "background": [0.0, 0.0, 0.0], "blend": "over",
        "mean": [[0.5, 0.5]], "chol": [[0.1, 0.0, 0.1]], "color": [[1.0, 0.0, 0.0]],
        "opacity_logit": [0.0]
    });
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// Writes the bad files of the table into `d`.
fn write_files(d: &Path) {
    let png = good_png();
    let good_ply = ply("1", good_vals());
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.png", vec![]),
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("magic.png", b"GIF89a not a png at all".to_vec()),
        ("huge.png", png_declaring(1 << 30, 1 << 30)),
        ("text.png", b"hello".to_vec()),
        ("empty.json", vec![]),
        ("truncated.json", gaussians_json(|_| {})[..40].to_vec()),
        ("magic.json", gaussians_json(|v| v["format"] = "something-else".into())),
        ("version.json", gaussians_json(|v| v["version"] = 99.into())),
        ("types.json", gaussians_json(|v| v["mean"] = "abc".into())),
        ("neg.json", gaussians_json(|v| v["width"] = (-8).into())),
        ("zero.json", gaussians_json(|v| v["width"] = 0.into())),
        ("huge.json", gaussians_json(|v| v["width"] = 1_000_000_000u64.into())),
        ("large.json", gaussians_json(|v| { v["width"] = 30_000.into(); v["height"] = 30_000.into(); })),
        ("lengths.json", gaussians_json(|v| v["chol"] = serde_json::json!([]))),
        ("blend.json", gaussians_json(|v| v["blend"] = "add".into())),
        ("nan.json", br#"{"format":"chainrule-gaussians-2d","version":1,"width":8,"height":8,"background":[0,0,0],"blend":"over","mean":[[NaN,0.5]],"chol":[[0.1,0,0.1]],"color":[[1,0,0]],"opacity_logit":[0]}"#.to_vec()),
        ("inf.json", br#"{"format":"chainrule-gaussians-2d","version":1,"width":8,"height":8,"background":[0,0,0],"blend":"over","mean":[[1e999,0.5]],"chol":[[0.1,0,0.1]],"color":[[1,0,0]],"opacity_logit":[0]}"#.to_vec()),
        ("degenerate.json", gaussians_json(|v| v["chol"] = serde_json::json!([[-1000.0, 0.0, 0.0]]))),
        ("shear.json", gaussians_json(|v| v["chol"] = serde_json::json!([[0.0, 1e300, 0.0]]))),
        ("bigscale.ply", ply("1", with(8, 1000.0))),
        ("tinyquat.ply", ply("1", with(10, 1e-30))),
        ("array.json", b"[1, 2, 3]".to_vec()),
        ("model.txt", gaussians_json(|_| {})),
        ("empty.ply", vec![]),
        ("magic.ply", b"plx\nformat binary_little_endian 1.0\nend_header\n".to_vec()),
        ("truncated.ply", good_ply[..good_ply.len() - 7].to_vec()),
        ("noheader.ply", good_ply[..60].to_vec()),
        ("count.ply", ply("1000000000000000", good_vals())),
        ("count-overflow.ply", ply("99999999999999999999999", good_vals())),
        ("count-negative.ply", ply("-1", good_vals())),
        ("nan.ply", ply("1", with(0, f32::NAN))),
        ("inf.ply", ply("1", with(7, f32::INFINITY))),
        ("neginf.ply", ply("1", with(6, f32::NEG_INFINITY))),
        ("zeroquat.ply", ply("1", with(10, 0.0))),
        ("ascii.ply", String::from_utf8_lossy(&good_ply).replace("binary_little_endian", "ascii").into_bytes()),
        ("type.ply", String::from_utf8_lossy(&good_ply).replacen("property float x", "property string x", 1).into_bytes()),
        ("list.ply", String::from_utf8_lossy(&good_ply).replacen("property float x", "property list uchar int x", 1).into_bytes()),
        ("missing.ply", String::from_utf8_lossy(&good_ply).replacen("property float rot_3", "property float rot_9", 1).into_bytes()),
    ];
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    std::fs::write(d.join("a-file"), b"x").unwrap();
    std::fs::write(d.join("good.ply"), &good_ply).unwrap();
    // datasets for `train` and `render --data`
    let frame = |path: &str| {
        format!(
            "{{\"camera_angle_x\": 0.7, \"frames\": [{{\"file_path\": \"{path}\", \
             \"transform_matrix\": [[1,0,0,0],[0,1,0,0],[0,0,1,4],[0,0,0,1]]}}]}}"
        )
    };
    let datasets: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "ds-badjson",
            "transforms_train.json",
            b"{\"camera_angle_x\": ".to_vec(),
        ),
        (
            "ds-types",
            "transforms_train.json",
            b"{\"camera_angle_x\": \"wide\", \"frames\": []}".to_vec(),
        ),
        (
            "ds-empty",
            "transforms_train.json",
            b"{\"camera_angle_x\": 0.7, \"frames\": []}".to_vec(),
        ),
        (
            "ds-missing",
            "transforms_train.json",
            frame("./train/r_0").into_bytes(),
        ),
        (
            "ds-badimage",
            "transforms_train.json",
            frame("./bad.png").into_bytes(),
        ),
        ("ds-badimage", "bad.png", png[..png.len() / 3].to_vec()),
        (
            "ds-nanpose",
            "transforms_train.json",
            frame("./x")
                .replace("[0,0,1,4]", "[0,0,1,NaN]")
                .into_bytes(),
        ),
        (
            "ds-colmap/sparse/0",
            "cameras.bin",
            5u64.to_le_bytes().to_vec(),
        ),
        ("ds-colmap/sparse/0", "images.bin", vec![]),
        (
            "ds-opencv/sparse/0",
            "cameras.txt",
            b"1 OPENCV 8 8 1 1 4 4 0 0 0 0\n".to_vec(),
        ),
        ("ds-opencv/sparse/0", "images.txt", b"".to_vec()),
    ];
    for (sub, name, bytes) in datasets {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join(name), bytes).unwrap();
    }
}

/// One row: the arguments (`{d}` is the folder of bad files).
const CASES: &[&str] = &[
    // no or unknown subcommand, bad flags
    "",
    "frobnicate",
    "fit --no-such-flag",
    // grad
    "grad",
    "grad x+ x=1",
    "grad (((x x=1",
    "grad x*y x=1",
    "grad x x=abc",
    "grad x x",
    "grad x x=1 x=2",
    "grad x x=nan",
    "grad x x=inf",
    "grad ln(x) x=-1",
    "grad x/0 x=1",
    "grad exp(x) x=1000",
    "grad x x=1 --max-steps abc",
    "grad x x=1 --dot {d}/no-such-dir/g.dot",
    "grad x x=1 --svg {d}/a-file/g.svg",
    // fit: bad arguments (tiny sizes so that nothing long runs)
    "fit --gaussians 0 --iters 1 --size 8 --out {d}/o",
    "fit --gaussians -3 --iters 1 --size 8 --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 0 --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 100000 --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --background nope --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --lr-mean nan --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --lr-chol inf --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --lr-color -1 --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --loss nope --out {d}/o",
    "fit --gaussians 4 --iters 1 --size 8 --out {d}/a-file",
    "fit {d}/no-such.png --gaussians 4 --iters 1 --out {d}/o",
    // fit: bad image files
    "fit {d}/empty.png --gaussians 4 --iters 1 --out {d}/o",
    "fit {d}/truncated.png --gaussians 4 --iters 1 --out {d}/o",
    "fit {d}/magic.png --gaussians 4 --iters 1 --out {d}/o",
    "fit {d}/huge.png --gaussians 4 --iters 1 --out {d}/o",
    "fit {d}/text.png --gaussians 4 --iters 1 --out {d}/o",
    "fit {d} --gaussians 4 --iters 1 --out {d}/o",
    // render: bad arguments
    "render",
    "render {d}/no-such.json --out {d}/r.png",
    "render {d}/model.txt --out {d}/r.png",
    "render {d}/nan.json --out {d}/r.png --scale nan",
    "render {d}/nan.json --out {d}/r.png --scale -1",
    "render {d}/nan.json --out {d}/r.png --scale inf",
    // render: bad fitted-Gaussians files
    "render {d}/empty.json --out {d}/r.png",
    "render {d}/truncated.json --out {d}/r.png",
    "render {d}/magic.json --out {d}/r.png",
    "render {d}/version.json --out {d}/r.png",
    "render {d}/types.json --out {d}/r.png",
    "render {d}/neg.json --out {d}/r.png",
    "render {d}/zero.json --out {d}/r.png",
    "render {d}/huge.json --out {d}/r.png",
    "render {d}/large.json --out {d}/r.png",
    "render {d}/lengths.json --out {d}/r.png",
    "render {d}/blend.json --out {d}/r.png",
    "render {d}/nan.json --out {d}/r.png",
    "render {d}/inf.json --out {d}/r.png",
    "render {d}/degenerate.json --out {d}/r.png",
    "render {d}/shear.json --out {d}/r.png",
    "render {d}/bigscale.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/tinyquat.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/array.json --out {d}/r.png",
    // render: bad PLY files and orbit arguments
    "render {d}/empty.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/magic.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/noheader.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/count.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/count-overflow.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/count-negative.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/nan.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/inf.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/neginf.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/zeroquat.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/ascii.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/type.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/list.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/missing.ply --orbit 1 --size 8x8 --out {d}/p",
    "render {d}/zeroquat.ply --out {d}/p",
    "render {d}/truncated.ply --orbit 0 --size 8x8 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 0x8 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 100000x100000 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8x8 --fov nan --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8x8 --fov 180 --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8x8 --elevation inf --out {d}/p",
    "render {d}/truncated.ply --orbit 1 --size 8x8 --up w --out {d}/p",
    // synth
    "synth",
    "synth {d}/a-file --views 1 --test-views 0 --size 8",
    "synth {d}/s --views 1 --test-views 0 --size 0",
    "synth {d}/s --views 0 --test-views 0 --size 8",
    "synth {d}/s --views 1 --test-views 0 --size 100000",
    "synth {d}/s --views x",
    // train (datasets: malformed JSON, wrong types, empty, missing and
    // truncated images, NaN pose, truncated COLMAP binary, unsupported model)
    "train",
    "train {d}/nope --out {d}/t",
    "train {d}/a-file --out {d}/t",
    "train {d}/ds-badjson --out {d}/t",
    "train {d}/ds-types --out {d}/t",
    "train {d}/ds-empty --out {d}/t",
    "train {d}/ds-missing --out {d}/t",
    "train {d}/ds-badimage --out {d}/t",
    "train {d}/ds-nanpose --out {d}/t",
    "train {d}/ds-colmap --out {d}/t",
    "train {d}/ds-opencv --out {d}/t",
    "train {d}/ds-empty --out {d}/t --iters x",
    "train {d}/ds-empty --out {d}/t --checkpoint-every nan",
    "train {d}/ds-badjson --out {d}/t --resume",
    // render a dataset's cameras
    "render {d}/good.ply --data {d}/ds-badjson --out {d}/p",
    "render {d}/good.ply --data {d}/ds-missing --out {d}/p",
    "render {d}/good.ply --data {d}/ds-colmap --out {d}/p",
    "render {d}/good.ply --data {d}/nope --out {d}/p",
    "render {d}/nan.ply --data {d}/ds-empty --out {d}/p",
    // bench
    "bench",
    "bench nope",
    "bench ad --n 0",
    "bench ad --n x",
    "bench recurrence --n 0",
    "bench fit --size 0",
    "bench fit --gaussians 0",
    "bench render3d --size 0x0",
    "bench render3d --size 100000x100000",
    "bench train --size 0x0",
    "bench train --gaussians 0",
    "bench train --iters 0",
    "bench train --views 0",
];

#[test]
fn every_bad_input_exits_2_with_a_message() {
    let d = dir();
    write_files(&d);
    let ds = d.display().to_string();
    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> = case
            .split_whitespace()
            .map(|a| a.replace("{d}", &ds))
            .collect();
        let t = Instant::now();
        let (out_path, err_path) = (d.join("stdout.txt"), d.join("stderr.txt"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(&args)
            .current_dir(&d)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("binary runs");
        // a hang is a failure: kill the case after the limit
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if t.elapsed() > LIMIT {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let ok = status.is_some_and(|s| s.code() == Some(2))
            && !err.trim().is_empty()
            && !err.contains("panicked");
        if !ok {
            failures.push(format!(
                "`chainrule {case}`: status {status:?} after {:?}, stderr: {}",
                t.elapsed(),
                err.trim()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&d);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// Output that cannot be written is an error (exit 2, saying so), not a
/// panic (exit 101); a closed pipe, as `| head` leaves it, ends the
/// program quietly.
#[test]
fn unwritable_output_exits_2_and_a_closed_pipe_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let full = Path::new("/dev/full");
    if full.exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .args(["grad", "x*x", "x=3"])
            .stdout(std::fs::File::create(full).unwrap())
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(
            e.contains("cannot write to stdout") && !e.contains("panicked"),
            "{e}"
        );
    }
    // an output of about 300 kB (a gradient of 20,000 inputs), far past a
    // pipe's buffer, into a pipe whose reader goes after a few bytes
    let n = 20_000;
    let program = (1..n)
        .map(|i| format!("a{i} = a{} + x{i}", i - 1))
        .collect::<Vec<_>>()
        .join("\n");
    // (a folder of its own: `dir()` is the table test's, which it clears)
    let own = std::env::temp_dir().join(format!("chainrule-closed-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&own).unwrap();
    let path = own.join("long.txt");
    std::fs::write(&path, format!("a0 = x0\n{program}\na{}", n - 1)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("grad")
        .arg(format!("@{}", path.display()))
        .args((0..n).map(|i| format!("x{i}=1")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 4];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // (the reader is dropped: the pipe is closed)
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    std::fs::remove_dir_all(&own).unwrap();
}
