//! PlayCanvas's SOG (`.sog`): files written by splat-transform read as that
//! tool decodes them, and malformed files give errors naming the file and
//! the entry, never a panic.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use splat::formats::{declared_antialiased_in, decode_scene, read_scene, sog, SceneFormat};

use crate::three_ply::decoded_columns;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sog")
        .join(name)
}

/// Each of splat-transform's files (SH degree 3, 1 and 0; one declaring
/// the antialiased mode; one unbundled, its `meta.json` and images loose
/// in a folder) reads as the tool's own decoding of it, every value to
/// f32 rounding.
#[test]
fn sog_reads_as_splat_transform_decodes_it() {
    for (name, file, degree, mode) in [
        ("room_sh3", "room_sh3.sog", 3, None),
        ("room_sh1_mip", "room_sh1_mip.sog", 1, Some(true)),
        ("room_sh0", "room_sh0.sog", 0, None),
        (
            "room_sh3_unbundled",
            "room_sh3_unbundled/meta.json",
            3,
            None,
        ),
    ] {
        let sog = fixture(file);
        let g = read_scene(&sog).unwrap();
        let (n, theirs) =
            decoded_columns(&std::fs::read(fixture(&format!("{name}.decoded.ply"))).unwrap());
        assert_eq!((g.len(), g.sh_degree, n), (120, degree, 120), "{name}");
        assert_eq!(declared_antialiased_in(&sog), mode, "{name}");
        let k = g.sh_coeffs();
        let close = |a: f32, b: f64, what: &str| {
            assert!(
                (a as f64 - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "{name} {what}: {a} vs {b}"
            )
        };
        let col = |c: &str, i: usize| theirs[c][i];
        for i in 0..n {
            for c in 0..3 {
                close(g.means[i][c], col(["x", "y", "z"][c], i), "mean");
                close(g.log_scales[i][c], col(&format!("scale_{c}"), i), "scale");
                close(g.sh[i * k * 3 + c], col(&format!("f_dc_{c}"), i), "f_dc");
            }
            for c in 0..4 {
                close(g.quats[i][c], col(&format!("rot_{c}"), i), "rot");
            }
            close(g.opacity_logits[i], col("opacity", i), "opacity");
            for j in 0..3 * (k - 1) {
                let (c, kk) = (j / (k - 1), j % (k - 1) + 1);
                close(
                    g.sh[(i * k + kk) * 3 + c],
                    col(&format!("f_rest_{j}"), i),
                    "f_rest",
                );
            }
        }
    }
}

/// An unbundled SOG is the archive's entries loose in a folder, named by
/// its `meta.json`: each fixture unzipped reads as the archive does, and
/// says the same drawing mode; the folder's files are read only by plain
/// names beside `meta.json`, and a missing one is named.
#[test]
fn an_unbundled_sog_reads_as_its_archive() {
    let dir = crate::common::tmp("sog-unbundled");
    for name in ["room_sh3", "room_sh1_mip", "room_sh0"] {
        let sog = fixture(&format!("{name}.sog"));
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for (entry, bytes) in entries_of(&sog) {
            std::fs::write(folder.join(entry), bytes).unwrap();
        }
        let meta = folder.join("meta.json");
        assert_eq!(SceneFormat::from_path(&meta), Some(SceneFormat::Sog));
        assert_eq!(
            read_scene(&meta).unwrap(),
            read_scene(&sog).unwrap(),
            "{name}"
        );
        assert_eq!(
            declared_antialiased_in(&meta),
            declared_antialiased_in(&sog),
            "{name}"
        );
    }
    let folder = dir.join("room_sh3");
    let meta = folder.join("meta.json");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        f(&mut m);
        std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    };
    for odd in [
        "../room_sh0/quats.webp",
        "sub/quats.webp",
        "/quats.webp",
        "",
    ] {
        edit(&|m| m["quats"]["files"] = serde_json::json!([odd]));
        let e = read_scene(&meta).unwrap_err().to_string();
        assert!(
            e.contains("meta.json") && e.contains(odd) && e.contains("file name"),
            "{e}"
        );
    }
    // `./NAME` is the file beside it, as PlayCanvas resolves it
    edit(&|m| m["quats"]["files"] = serde_json::json!(["./quats.webp"]));
    assert_eq!(
        read_scene(&meta).unwrap(),
        read_scene(&fixture("room_sh3.sog")).unwrap()
    );
    edit(&|m| m["quats"]["files"] = serde_json::json!(["quats.webp"]));
    std::fs::remove_file(folder.join("quats.webp")).unwrap();
    let e = read_scene(&meta).unwrap_err().to_string();
    assert!(e.contains("quats.webp") && e.contains("not there"), "{e}");
    // another tool's meta.json is not taken for a SOG's
    let other = dir.join("other/meta.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, br#"{"name": "x", "version": "1.0"}"#).unwrap();
    assert!(!sog::is_unbundled(&other) && sog::is_unbundled(&meta));
    let e = read_scene(&other).unwrap_err().to_string();
    assert!(e.contains("not a SOG's meta.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The names splat-transform takes for an unbundled SOG's index.
#[test]
fn meta_json_names_follow_splat_transform() {
    for (name, yes) in [
        ("meta.json", true),
        ("a/scene.meta.json", true),
        ("META.JSON", true),
        ("lod-meta.json", false),
        ("meta.json.bak", false),
        ("scene.sog", false),
    ] {
        assert_eq!(sog::is_meta_json(Path::new(name)), yes, "{name}");
    }
}

/// The entries of the archive at `path`, by name.
fn entries_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut e = zip.by_index(i).unwrap();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (e.name().unwrap().to_string(), v)
        })
        .collect()
}

/// The fixture's entries, by name.
fn entries() -> Vec<(String, Vec<u8>)> {
    entries_of(&fixture("room_sh3.sog"))
}

/// The fixture without its entry `name`.
fn without(name: &str) -> Vec<u8> {
    zip_of(
        &entries()
            .into_iter()
            .filter(|e| e.0 != name)
            .collect::<Vec<_>>(),
    )
}

fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in files {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The fixture with `meta.json` edited by `edit`.
fn with_meta(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let mut files = entries();
    for (name, bytes) in &mut files {
        if name == "meta.json" {
            let mut meta: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            edit(&mut meta);
            *bytes = serde_json::to_vec(&meta).unwrap();
        }
    }
    zip_of(&files)
}

fn err(bytes: &[u8]) -> String {
    decode_scene(bytes, SceneFormat::Sog, Path::new("scene.sog"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_sog_files_name_what_is_wrong() {
    // the same entries, rezipped, read as before (and deflated too)
    let same = decode_scene(&zip_of(&entries()), SceneFormat::Sog, Path::new("s.sog")).unwrap();
    assert_eq!(same, read_scene(&fixture("room_sh3.sog")).unwrap());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK not really".to_vec(), "zip"),
        (without("meta.json"), "meta.json"),
        (without("quats.webp"), "quats.webp"),
        (
            with_meta(|m| {
                m.as_object_mut().unwrap().remove("version");
            }),
            "version 1",
        ),
        (with_meta(|m| m["version"] = 3.into()), "version 3"),
        (with_meta(|m| m["count"] = 100_000.into()), "too small"),
        (with_meta(|m| m["count"] = (1u64 << 40).into()), "count"),
        (
            with_meta(|m| m["scales"]["codebook"] = serde_json::json!([0.0, 1.0])),
            "scales.codebook",
        ),
        (
            with_meta(|m| m["sh0"]["codebook"][7] = serde_json::json!(1e39)),
            "sh0.codebook",
        ),
        (
            with_meta(|m| m["shN"]["codebook"][0] = serde_json::json!(-1e39)),
            "shN.codebook",
        ),
        (with_image("quats.webp", 4096, 4096, false), "far too large"),
        (with_meta(|m| m["shN"]["bands"] = 2.into()), "wide"),
        (
            with_meta(|m| m["means"]["files"] = serde_json::json!(["means_l.webp"])),
            "means.files",
        ),
        (
            with_meta(|m| m["means"] = serde_json::json!({"mins": 1})),
            "meta.json",
        ),
        (
            with_meta(|m| m["sh0"]["files"] = serde_json::json!(["meta.json"])),
            "not a WebP",
        ),
    ];
    // a quaternion image whose alpha names no largest component (noise:
    // most alphas are below 252)
    let quats = entries()
        .into_iter()
        .find(|e| e.0 == "quats.webp")
        .unwrap()
        .1;
    let (qw, qh) = image::load_from_memory(&quats)
        .unwrap()
        .to_rgba8()
        .dimensions();
    let mut cases = cases;
    cases.push((
        with_image("quats.webp", qw, qh, true),
        "names no largest component",
    ));
    for (bytes, want) in cases {
        let e = err(&bytes);
        assert!(
            e.contains("scene.sog") && e.contains(want),
            "want {want:?} in: {e}"
        );
    }
    // what the reference reads, this reader reads: a version of 2.0, a
    // model that is not a word (the default), and SH bands it does not
    // know (no higher bands)
    let read = |bytes: &[u8]| decode_scene(bytes, SceneFormat::Sog, Path::new("s.sog")).unwrap();
    assert!(read(&with_meta(|m| m["version"] = serde_json::json!(2.0))) == same);
    assert!(read(&with_meta(|m| m["model"] = serde_json::json!(7))) == same);
    assert_eq!(
        read(&with_meta(|m| m["shN"]["bands"] = 5.into())).sh_degree,
        0
    );
}

/// The fixture with image `name` replaced by a `w` × `h` lossless WebP of
/// noise, or of one colour (a few hundred bytes, whatever its size).
fn with_image(name: &str, w: u32, h: u32, noise: bool) -> Vec<u8> {
    let mut state = 7u32;
    let px: Vec<u8> = (0..w * h * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if noise {
                (state >> 24) as u8
            } else {
                252
            }
        })
        .collect();
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(&px, w, h, image::ExtendedColorType::Rgba8)
        .unwrap();
    let mut files = entries();
    for (n, bytes) in &mut files {
        if n == name {
            *bytes = webp.clone();
        }
    }
    zip_of(&files)
}

/// A palette of 16,384 SH entries (what splat-transform makes of a scene
/// of 16k Gaussians and more): its centroid image, 960 × 256 pixels of
/// noise here (about 1 MB), reads.
#[test]
fn a_large_sh_palette_reads() {
    let big = with_image("shN_centroids.webp", 960, 256, true);
    let mut files = Vec::new();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(big)).unwrap();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        let name = e.name().unwrap().to_string();
        if name == "meta.json" {
            let mut meta: serde_json::Value = serde_json::from_slice(&v).unwrap();
            meta["shN"]["count"] = 16_384.into();
            v = serde_json::to_vec(&meta).unwrap();
        }
        files.push((name, v));
    }
    let centroids = &files
        .iter()
        .find(|f| f.0 == "shN_centroids.webp")
        .unwrap()
        .1;
    assert!(centroids.len() > 600_000, "{} bytes", centroids.len());
    let g = decode_scene(&zip_of(&files), SceneFormat::Sog, Path::new("big.sog")).unwrap();
    assert_eq!((g.len(), g.sh_degree), (120, 3));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Corrupting any bytes of a valid file, or cutting it short, gives a
    /// scene or an error, never a panic.
    #[test]
    fn corrupted_sog_files_never_panic(flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 1..8), cut in 0usize..20_000) {
        let good = std::fs::read(fixture("room_sh3.sog")).unwrap();
        crate::common::decode_corrupted(&good, &flips, cut, SceneFormat::Sog);
    }
}
