//! The SOG writer (`splat::formats::sog::to_bytes`): its files read back
//! within each field's quantisation, here and in splat-transform, and it
//! refuses what it cannot write.

use std::io::Read;
use std::path::{Path, PathBuf};

use splat::formats::{declared_antialiased, read_scene, sog, SceneFormat};
use splat::three::scene::{random_scene, RandomScene};
use splat::three::Gaussians;

use crate::three_ply::decoded_columns;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sog")
        .join(name)
}

/// The scene of the fixture `written.sog`: 300 Gaussians (so a 256-entry
/// SH palette, of which 44 entries stand for two Gaussians), SH degree 1,
/// means spread over ±20 so that the log transform matters.
fn written_scene() -> Gaussians<f32> {
    random_scene::<f32>(&RandomScene {
        n: 300,
        sh_degree: 1,
        extent: 20.0,
        log_scale_min: -6.0,
        log_scale_max: 0.5,
        seed: 11,
    })
}

/// `meta.json` of a `.sog`.
fn meta(bytes: &[u8]) -> serde_json::Value {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = Vec::new();
    zip.by_name("meta.json")
        .unwrap()
        .read_to_end(&mut text)
        .unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn book(meta: &serde_json::Value, field: &str) -> Vec<f32> {
    meta[field]["codebook"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// `got` is the entry of `book` nearest `want` (ties either way; a NaN is
/// written as 0).
fn is_nearest(book: &[f32], want: f32, got: f32, what: &str) {
    let want = if want.is_nan() { 0.0 } else { want };
    assert!(book.contains(&got), "{what}: {got} is not in the codebook");
    let best = book
        .iter()
        .map(|&e| (e as f64 - want as f64).abs())
        .fold(f64::INFINITY, f64::min);
    assert!(
        (got as f64 - want as f64).abs() <= best + 1e-6,
        "{what}: {got} for {want}, but an entry is {best} away"
    );
}

/// `g`'s Gaussians in the order a `.sog` holds them (the compressed PLY's
/// Morton order).
fn in_file_order(g: &Gaussians<f32>) -> Gaussians<f32> {
    let stride = 3 * g.sh_coeffs();
    let mut out = Gaussians::with_capacity(g.sh_degree, g.len());
    for i in splat::three::compressed_ply::write::order(g) {
        out.means.push(g.means[i]);
        out.log_scales.push(g.log_scales[i]);
        out.quats.push(g.quats[i]);
        out.opacity_logits.push(g.opacity_logits[i]);
        out.sh
            .extend_from_slice(&g.sh[i * stride..(i + 1) * stride]);
    }
    out
}

/// Each decoded field against the scene's, within its quantisation: the
/// log-transformed position to half a 16-bit step, the rotation (up to
/// sign) to about half an 8-bit step a component, the opacity to half a
/// step of 1/255, and the log scales and DC colours the nearest entries of
/// their codebooks. The higher bands are checked by the callers.
/// Returns the decoded scene and `g` in the file's order.
fn check_round_trip(
    g: &Gaussians<f32>,
    bytes: &[u8],
    what: &str,
) -> (Gaussians<f32>, Gaussians<f32>) {
    let g = in_file_order(g);
    let back = sog::parse(bytes, Path::new("w.sog")).unwrap();
    assert_eq!(
        (back.len(), back.sh_degree),
        (g.len(), g.sh_degree),
        "{what}"
    );
    let meta = meta(bytes);
    let (scales, dc) = (book(&meta, "scales"), book(&meta, "sh0"));
    let log = |x: f32| (x as f64).signum() * (x as f64).abs().ln_1p();
    let k = g.sh_coeffs();
    for i in 0..g.len() {
        for a in 0..3 {
            let lo = meta["means"]["mins"][a].as_f64().unwrap();
            let hi = meta["means"]["maxs"][a].as_f64().unwrap();
            let step = (hi - lo).max(1e-30) / 65535.0;
            let err = (log(back.means[i][a]) - log(g.means[i][a])).abs();
            assert!(
                err <= 0.5 * step + 1e-6,
                "{what}: mean {i}.{a} off by {err}"
            );
            is_nearest(&scales, g.log_scales[i][a], back.log_scales[i][a], what);
            is_nearest(&dc, g.sh[i * 3 * k + a], back.sh[i * 3 * k + a], what);
        }
        let q = g.quats[i];
        let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt();
        let dot: f32 = (0..4).map(|c| q[c] / norm * back.quats[i][c]).sum();
        assert!(
            dot.abs() > 1.0 - 1e-4,
            "{what}: rotation {i}: |q·q'| = {dot}"
        );
        let o = |l: f32| 1.0 / (1.0 + (-l as f64).exp());
        let err = (o(back.opacity_logits[i]) - o(g.opacity_logits[i])).abs();
        assert!(
            err <= 0.5 / 255.0 + 1e-6,
            "{what}: opacity {i} off by {err}"
        );
    }
    (back, g)
}

/// An archive's entries by name: `meta.json` as bytes, each image as its
/// decoded RGBA pixels (the WebP bytes are the encoder's choice, which
/// may differ between libwebp's code paths for different CPUs).
fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = (0..zip.len())
        .map(|i| {
            let mut e = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            let name = e.name().unwrap().to_string();
            if name.ends_with(".webp") {
                bytes = image::load_from_memory(&bytes)
                    .unwrap()
                    .to_rgba8()
                    .into_raw();
            }
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// The fixture `written.sog` is this writer's file for [`written_scene`]
/// (the test fails when the writer's output changes, `meta.json` or any
/// image's pixels: remake the fixture and its decoding as the README
/// says), and its decoding by splat-transform 3.10.2
/// (`written.decoded.ply`) is ours, value for value: the reference reads
/// our files as we do.
#[test]
fn sog_written_here_reads_in_splat_transform_as_here() {
    let bytes = sog::to_bytes(&written_scene()).unwrap();
    let committed = std::fs::read(fixture("written.sog")).unwrap();
    assert!(
        entries(&bytes) == entries(&committed),
        "the writer's output changed: remake tests/fixtures/sog/written.sog (README)"
    );
    // the archive's layout: `meta.json` first, every entry stored as it
    // is (PlayCanvas's older bundle reader does not inflate), dated
    // 1980-01-01 so the same scene gives the same archive
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!(zip.by_index(0).unwrap().name().unwrap(), "meta.json");
    for i in 0..zip.len() {
        let e = zip.by_index(i).unwrap();
        assert_eq!(e.compression(), zip::CompressionMethod::Stored, "entry {i}");
        assert_eq!(
            e.last_modified(),
            Some(zip::DateTime::default()),
            "entry {i}"
        );
    }
    let ours = read_scene(&fixture("written.sog")).unwrap();
    let (n, theirs) = decoded_columns(&std::fs::read(fixture("written.decoded.ply")).unwrap());
    assert_eq!(n, ours.len());
    let k = ours.sh_coeffs();
    let close = |a: f32, b: f64, what: &str| {
        assert!(
            (a as f64 - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{what}: {a} vs {b}"
        )
    };
    for i in 0..n {
        for c in 0..3 {
            close(ours.means[i][c], theirs[["x", "y", "z"][c]][i], "mean");
            close(
                ours.log_scales[i][c],
                theirs[&format!("scale_{c}")][i],
                "scale",
            );
            close(
                ours.sh[i * k * 3 + c],
                theirs[&format!("f_dc_{c}")][i],
                "f_dc",
            );
        }
        for c in 0..4 {
            close(ours.quats[i][c], theirs[&format!("rot_{c}")][i], "rot");
        }
        close(ours.opacity_logits[i], theirs["opacity"][i], "opacity");
        for j in 0..3 * (k - 1) {
            let (c, kk) = (j / (k - 1), j % (k - 1) + 1);
            close(
                ours.sh[(i * k + kk) * 3 + c],
                theirs[&format!("f_rest_{j}")][i],
                "f_rest",
            );
        }
    }
}

/// Scenes of every SH degree and of 0 to 5,000 Gaussians read back within
/// each field's quantisation; with no more Gaussians than palette entries
/// the higher bands are only their codebook's rounding away, and with
/// more (random bands, the palette's worst case: a fifth to a third of
/// the Gaussians share an entry with another) their squared error stays
/// under a third of their variance; the same scene gives the same bytes.
#[test]
fn sog_round_trips_within_its_quantisation() {
    // transparent Gaussians (opacity byte 0) keep their colours: the WebP
    // encoder must not touch the colour under a zero alpha
    let mut g = random_scene::<f32>(&RandomScene {
        n: 64,
        sh_degree: 0,
        extent: 3.0,
        seed: 7,
        ..Default::default()
    });
    for i in (0..64).step_by(2) {
        g.opacity_logits[i] = -20.0;
    }
    check_round_trip(&g, &sog::to_bytes(&g).unwrap(), "transparent");
    for (n, degree, seed) in [
        (0, 3, 1),
        (1, 0, 2),
        (7, 1, 3),
        (256, 3, 4),
        (300, 2, 5),
        (5000, 3, 6),
    ] {
        let g = random_scene::<f32>(&RandomScene {
            n,
            sh_degree: degree,
            extent: 3.0,
            seed,
            ..Default::default()
        });
        let what = format!("n {n}, degree {degree}");
        let bytes = sog::to_bytes(&g).unwrap();
        assert_eq!(
            sog::to_bytes(&g).unwrap(),
            bytes,
            "{what}: not deterministic"
        );
        let (back, g) = check_round_trip(&g, &bytes, &what);
        let k = g.sh_coeffs();
        if degree > 0 && n.is_power_of_two() {
            let rest = book(&meta(&bytes), "shN");
            for i in 0..n {
                for j in 3..3 * k {
                    is_nearest(&rest, g.sh[i * 3 * k + j], back.sh[i * 3 * k + j], &what);
                }
            }
        } else if degree > 0 && n > 1 {
            let rest = |g: &Gaussians<f32>| -> Vec<f64> {
                (0..n)
                    .flat_map(|i| (3..3 * k).map(move |j| i * 3 * k + j))
                    .map(|x| g.sh[x] as f64)
                    .collect()
            };
            let (want, got) = (rest(&g), rest(&back));
            let mean = want.iter().sum::<f64>() / want.len() as f64;
            let var = want.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
            let err = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>();
            assert!(
                err < var / 3.0,
                "{what}: SH error {err} against variance {var}"
            );
        }
    }
}

/// Gaussians whose higher bands come in 64 kinds (plus a little noise)
/// keep them through a palette smaller than their count: the splits at
/// the least squared error find the kinds.
#[test]
fn sog_palette_keeps_the_kinds_of_view_dependent_colour() {
    let mut g = random_scene::<f32>(&RandomScene {
        n: 3000,
        sh_degree: 3,
        seed: 9,
        ..Default::default()
    });
    let k = g.sh_coeffs();
    let kind = |t: usize, j: usize| (((t * 37 + j * 11) % 29) as f32 - 14.0) * 0.02;
    for i in 0..g.len() {
        for j in 3..3 * k {
            let noise = (((i * 7 + j * 13) % 17) as f32 - 8.0) * 1e-4;
            g.sh[i * 3 * k + j] = kind(i % 64, j) + noise;
        }
    }
    let bytes = sog::to_bytes(&g).unwrap();
    assert_eq!(meta(&bytes)["shN"]["count"], serde_json::json!(2048));
    let (back, g) = check_round_trip(&g, &bytes, "kinds");
    // the codebook's steps over [−0.28, 0.28] with 256 entries, and the
    // noise
    let worst = (0..g.len())
        .flat_map(|i| (3..3 * k).map(move |j| i * 3 * k + j))
        .map(|x| (back.sh[x] - g.sh[x]).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 3e-3, "higher bands off by up to {worst}");
}

/// The drawing mode goes into `meta.json` only when asked; a position,
/// scale or rotation that is not finite, or a log scale no reader takes, is
/// refused with the Gaussian's index, as is a scene of the wrong shape; a
/// colour that is not finite is written as 0.
#[test]
fn sog_writer_declares_the_mode_and_refuses_what_it_cannot_write() {
    let g = random_scene::<f32>(&RandomScene {
        n: 20,
        ..Default::default()
    });
    let mip = sog::to_bytes_as(&g, true).unwrap();
    assert_eq!(declared_antialiased(&mip, SceneFormat::Sog), Some(true));
    assert_eq!(meta(&mip)["model"], serde_json::json!("antialiased"));
    let plain = sog::to_bytes(&g).unwrap();
    assert_eq!(declared_antialiased(&plain, SceneFormat::Sog), None);
    for (field, edit) in [
        (
            "position",
            Box::new(|g: &mut Gaussians<f32>| g.means[4][1] = f32::NAN) as Box<dyn Fn(&mut _)>,
        ),
        (
            "log scale",
            Box::new(|g: &mut Gaussians<f32>| g.log_scales[4][0] = f32::INFINITY),
        ),
        // beyond what every reader here accepts
        (
            "log scale",
            Box::new(|g: &mut Gaussians<f32>| g.log_scales[4][2] = -40.0),
        ),
        (
            "rotation",
            Box::new(|g: &mut Gaussians<f32>| g.quats[4][3] = f32::NEG_INFINITY),
        ),
    ] {
        let mut bad = g.clone();
        edit(&mut bad);
        let e = sog::to_bytes(&bad).unwrap_err();
        assert!(e.contains("Gaussian 4") && e.contains(field), "{e}");
    }
    let mut bad = g.clone();
    bad.opacity_logits.pop();
    assert!(sog::to_bytes(&bad).is_err());
    // a colour that is not finite is written as 0 (the entry nearest it),
    // not as the codebook's first, most negative entry
    let mut nan = g.clone();
    let k = nan.sh_coeffs();
    nan.sh[0] = f32::NAN;
    nan.sh[3 * k + 5] = f32::NAN;
    let (back, sorted) = check_round_trip(&nan, &sog::to_bytes(&nan).unwrap(), "NaN colours");
    let at: Vec<usize> = (0..sorted.sh.len())
        .filter(|&x| sorted.sh[x].is_nan())
        .collect();
    assert_eq!(at.len(), 2);
    for x in at {
        assert!(
            back.sh[x].abs() < 0.1,
            "a NaN colour came back as {}",
            back.sh[x]
        );
    }
}

/// Writes [`written_scene`] as a float PLY to the path in
/// `CHAINRULE_FIXTURE_OUT`, and this writer's `.sog` of it beside it
/// (`written.sog`), from which the fixture's decoding is made (README).
#[test]
#[ignore = "makes a fixture; run by hand"]
fn write_sog_writer_fixture() {
    let out =
        PathBuf::from(std::env::var("CHAINRULE_FIXTURE_OUT").expect("set CHAINRULE_FIXTURE_OUT"));
    let g = written_scene();
    std::fs::write(&out, splat::three::ply::to_ply_bytes(&g)).unwrap();
    std::fs::write(
        out.with_file_name("written.sog"),
        sog::to_bytes(&g).unwrap(),
    )
    .unwrap();
}

/// The unbundled files are the archive's entries, byte for byte, with
/// `meta.json` written last.
#[test]
fn sog_unbundled_files_are_the_archives_entries() {
    let g = written_scene();
    for antialiased in [false, true] {
        let files = splat::formats::sog::to_files_as(&g, antialiased).unwrap();
        assert_eq!(files.last().unwrap().0, "meta.json");
        let zip = splat::formats::sog::to_bytes_as(&g, antialiased).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert_eq!(zip.len(), files.len());
        for (name, bytes) in &files {
            let mut entry = Vec::new();
            zip.by_name(name).unwrap().read_to_end(&mut entry).unwrap();
            assert!(entry == *bytes, "{name}");
        }
    }
}
