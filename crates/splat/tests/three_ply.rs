//! PLY in the original 3DGS exporter's layout: exact bytes, round trips,
//! fewer SH bands, and malformed files that must give errors naming the
//! file and the property, never a panic or a huge allocation.

use std::path::Path;

use proptest::prelude::*;
use splat::three::ply::{
    parse_ply, parse_points, property_names, read_ply, read_points, to_ply_bytes, PlyError,
};
use splat::three::scene::{random_scene, Gaussians, RandomScene};

fn scene(n: usize, degree: usize, seed: u64) -> Gaussians<f32> {
    random_scene(&RandomScene {
        n,
        sh_degree: degree,
        seed,
        ..Default::default()
    })
}

fn parse(bytes: &[u8]) -> Result<Gaussians<f32>, PlyError> {
    parse_ply(bytes, Path::new("scene.ply"))
}

fn header_len(bytes: &[u8]) -> usize {
    bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .unwrap()
        + 11
}

#[test]
fn writes_the_exporter_layout_exactly() {
    let mut g = scene(2, 3, 1);
    // coefficient k, channel c = 100 k + c, so every slot is identifiable
    for i in 0..2 {
        for k in 0..16 {
            for c in 0..3 {
                g.sh[(i * 16 + k) * 3 + c] = (1000 * i + 100 * k + c) as f32;
            }
        }
    }
    let bytes = to_ply_bytes(&g);
    let h = header_len(&bytes);
    let header = std::str::from_utf8(&bytes[..h]).unwrap();
    let mut want = String::from("ply\nformat binary_little_endian 1.0\nelement vertex 2\n");
    for n in [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ] {
        want += &format!("property float {n}\n");
    }
    for i in 0..45 {
        want += &format!("property float f_rest_{i}\n");
    }
    for n in [
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        want += &format!("property float {n}\n");
    }
    want += "end_header\n";
    assert_eq!(header, want);
    assert_eq!(property_names(3).len(), 62);
    assert_eq!(bytes.len(), h + 2 * 62 * 4);
    let val = |i: usize, p: usize| {
        let o = h + (i * 62 + p) * 4;
        f32::from_le_bytes(bytes[o..o + 4].try_into().unwrap())
    };
    for i in 0..2 {
        assert_eq!([val(i, 0), val(i, 1), val(i, 2)], g.means[i]);
        assert_eq!([val(i, 3), val(i, 4), val(i, 5)], [0.0; 3]);
        // f_dc: coefficient 0 of r, g, b
        assert_eq!(val(i, 6), (1000 * i) as f32);
        assert_eq!(val(i, 8), (1000 * i + 2) as f32);
        // f_rest grouped by channel: f_rest_0..14 red bands 1-15,
        // f_rest_15..29 green, f_rest_30..44 blue
        for c in 0..3 {
            for k in 1..16 {
                assert_eq!(val(i, 9 + c * 15 + k - 1), (1000 * i + 100 * k + c) as f32);
            }
        }
        assert_eq!(val(i, 54), g.opacity_logits[i]);
        assert_eq!([val(i, 55), val(i, 56), val(i, 57)], g.log_scales[i]);
        assert_eq!([val(i, 58), val(i, 59), val(i, 60), val(i, 61)], g.quats[i]);
    }
}

#[test]
fn round_trips_every_degree() {
    for degree in 0..=3 {
        let g = scene(17, degree, degree as u64);
        let back = parse(&to_ply_bytes(&g)).unwrap();
        assert_eq!(back, g);
        assert_eq!(
            property_names(degree).len(),
            9 + 3 * ((degree + 1) * (degree + 1) - 1) + 8
        );
    }
}

#[test]
fn reads_other_orders_types_and_extra_elements() {
    // double values, shuffled order, an extra property, a face element after
    let mut h = String::from("ply\r\nformat binary_little_endian 1.0\r\ncomment made by hand\r\n");
    h += "element vertex 1\r\n";
    let order = [
        "rot_3", "opacity", "x", "y", "z", "red", "scale_0", "scale_1", "scale_2", "f_dc_0",
        "f_dc_1", "f_dc_2", "rot_0", "rot_1", "rot_2",
    ];
    for n in order {
        h += &format!("property double {n}\r\n");
    }
    h += "element face 0\nproperty list uchar int vertex_indices\nend_header\n";
    let mut bytes = h.into_bytes();
    for (i, _) in order.iter().enumerate() {
        bytes.extend_from_slice(&(i as f64 + 0.5).to_le_bytes());
    }
    let g = parse(&bytes).unwrap();
    assert_eq!(g.sh_degree, 0);
    assert_eq!(g.means[0], [2.5, 3.5, 4.5]);
    assert_eq!(g.quats[0], [12.5, 13.5, 14.5, 0.5]);
    assert_eq!(g.opacity_logits[0], 1.5);
    assert_eq!(g.log_scales[0], [6.5, 7.5, 8.5]);
    assert_eq!(g.sh, vec![9.5, 10.5, 11.5]);
}

/// A header with Windows line ends reads as the same file with Unix
/// ones; `end_header` ends the header only as a line of its own.
#[test]
fn headers_end_at_an_end_header_line_with_either_line_end() {
    let g = scene(6, 2, 9);
    let good = to_ply_bytes(&g);
    let h = header_len(&good);
    let header = std::str::from_utf8(&good[..h]).unwrap();
    let mut crlf = header.replace('\n', "\r\n").into_bytes();
    crlf.extend_from_slice(&good[h..]);
    assert_eq!(parse(&crlf).unwrap(), g);
    let mut commented = header
        .replacen(
            "end_header\n",
            "comment not the end_header\nend_header\n",
            1,
        )
        .into_bytes();
    commented.extend_from_slice(&good[h..]);
    assert_eq!(parse(&commented).unwrap(), g);
    let e = parse(&replace(&good, "end_header\n", "end_header \n")).unwrap_err();
    assert!(e.to_string().contains("no `end_header` line"), "{e}");
}

#[test]
fn points_are_read_from_a_point_cloud_or_a_scene() {
    // a point cloud as COLMAP's and train.py's writers make it: doubles
    // here, colours as bytes, an element before `vertex`
    let mut h = String::from("ply\nformat binary_little_endian 1.0\nelement camera 1\n");
    h += "property float k\nelement vertex 2\nproperty uchar red\nproperty double z\n";
    h += "property double x\nproperty double y\nend_header\n";
    let mut bytes = h.into_bytes();
    bytes.extend_from_slice(&9f32.to_le_bytes());
    for (i, xyz) in [[1.0, 2.0, 3.0], [-4.5, 0.25, 1e10]].iter().enumerate() {
        bytes.push(i as u8);
        for c in [2, 0, 1] {
            bytes.extend_from_slice(&f64::to_le_bytes(xyz[c]));
        }
    }
    let p = parse_points(&bytes, "input.ply".as_ref()).unwrap();
    assert_eq!(p, vec![[1.0, 2.0, 3.0], [-4.5, 0.25, 1e10]]);
    // a 3DGS scene gives its means; so does a compressed one
    let g = scene(5, 1, 3);
    let m = parse_points(&to_ply_bytes(&g), "s.ply".as_ref()).unwrap();
    let want: Vec<[f64; 3]> = g.means.iter().map(|m| m.map(f64::from)).collect();
    assert_eq!(m, want);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compressed_ply");
    let c = dir.join("room.compressed.ply");
    let want: Vec<[f64; 3]> = read_ply::<f64>(&c).unwrap().means;
    assert_eq!(read_points(&c).unwrap(), want);
    // what is wrong is named: a missing coordinate, a value, the length
    let e = parse_points(
        &replace(&bytes, "double y", "double w"),
        "input.ply".as_ref(),
    )
    .unwrap_err();
    assert_eq!(e.property.as_deref(), Some("y"));
    assert!(e.to_string().contains("input.ply"), "{e}");
    let mut nan = bytes.clone();
    let at = nan.len() - 8;
    nan[at..].copy_from_slice(&f64::NAN.to_le_bytes());
    let e = parse_points(&nan, "input.ply".as_ref()).unwrap_err();
    assert!(
        e.to_string().contains("vertex 1") && e.property.as_deref() == Some("y"),
        "{e}"
    );
    let e = parse_points(&bytes[..bytes.len() - 1], "input.ply".as_ref()).unwrap_err();
    assert!(e.to_string().contains("2 vertices"), "{e}");
    let e = read_points("/nonexistent/input.ply".as_ref()).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

fn err_of(bytes: &[u8]) -> PlyError {
    match parse(bytes) {
        Ok(_) => panic!("malformed file accepted"),
        Err(e) => e,
    }
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let h = header_len(bytes);
    let header = std::str::from_utf8(&bytes[..h])
        .unwrap()
        .replacen(from, to, 1);
    let mut out = header.into_bytes();
    out.extend_from_slice(&bytes[h..]);
    out
}

#[test]
fn malformed_files_name_file_and_property() {
    let good = to_ply_bytes(&scene(4, 3, 7));
    let check = |bytes: &[u8], prop: Option<&str>, words: &str| {
        let e = err_of(bytes);
        let msg = e.to_string();
        assert!(msg.starts_with("scene.ply: "), "{msg}");
        assert!(msg.contains(words), "{msg:?} lacks {words:?}");
        assert_eq!(e.property.as_deref(), prop, "{msg}");
        if let Some(p) = prop {
            assert!(msg.contains(&format!("`{p}`")), "{msg}");
        }
    };
    // truncated data: the declared count does not fit
    check(&good[..good.len() - 1], Some("vertex"), "holds");
    // a count far beyond the file is caught before allocating
    check(
        &replace(&good, "element vertex 4", "element vertex 99999999999999"),
        Some("vertex"),
        "holds",
    );
    check(
        &replace(
            &good,
            "element vertex 4",
            "element vertex 18446744073709551615",
        ),
        Some("vertex"),
        "holds",
    );
    check(
        &replace(&good, "float opacity", "float opacityy"),
        Some("opacity"),
        "missing",
    );
    check(
        &replace(&good, "float rot_2", "float rot_9"),
        Some("rot_2"),
        "missing",
    );
    check(
        &replace(&good, "binary_little_endian", "ascii"),
        Some("format"),
        "not supported",
    );
    check(
        &replace(&good, "float x", "quaternion x"),
        Some("x"),
        "unknown property type",
    );
    check(
        &replace(&good, "float f_rest_44", "float other"),
        Some("f_rest_44"),
        "44 f_rest",
    );
    check(
        &replace(&good, "float f_rest_3\n", "float other\n"),
        Some("f_rest_3"),
        "f_rest",
    );
    check(&good[..20], None, "end_header");
    check(b"", None, "magic");
    check(b"PK\x03\x04 zip", None, "magic");
    // a NaN value names the property and the vertex
    let mut nan = good.clone();
    let h = header_len(&nan);
    let o = h + (2 * 62 + 54) * 4;
    nan[o..o + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    check(&nan, Some("opacity"), "vertex 2");
    // a zero quaternion cannot be normalised
    let mut zq = good.clone();
    for p in 58..62 {
        let o = h + (62 + p) * 4;
        zq[o..o + 4].copy_from_slice(&0f32.to_le_bytes());
    }
    check(&zq, Some("rot_0"), "vertex 1");
}

#[test]
fn missing_file_is_an_error() {
    let e = splat::three::ply::read_ply::<f32>(Path::new("/nonexistent/x.ply")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.ply"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Random corruption of header or data: an error or a scene, never a
    /// panic.
    #[test]
    fn corrupted_files_never_panic(
        pos in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000, which in 0u8..3,
    ) {
        let good = to_ply_bytes(&scene(3, 2, 5));
        let mut b = good.clone();
        match which {
            0 => { let p = pos % b.len(); b[p] = byte; }
            1 => { b.truncate(cut % b.len()); }
            _ => { let p = pos % b.len(); b.insert(p, byte); }
        }
        let _ = parse(&b);
    }
}

/// Fuzzing regression (fuzz/fuzz_targets/ply.rs): a `double` property that
/// is finite as f64 but overflows f32 was read as infinity by
/// `parse_ply::<f32>`; it must be rejected, naming the property.
#[test]
fn double_overflowing_f32_is_rejected() {
    let mut bytes = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\n".to_vec();
    for p in [
        "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
        "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        bytes.extend_from_slice(format!("property double {p}\n").as_bytes());
    }
    bytes.extend_from_slice(b"end_header\n");
    let mut vals = [0.0f64; 14];
    vals[0] = -1e300; // x
    vals[10] = 1.0; // rot_0
    for v in vals {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let path = std::path::Path::new("big.ply");
    let g = splat::three::ply::parse_ply::<f64>(&bytes, path).expect("finite in f64");
    assert_eq!(g.means[0][0], -1e300);
    let e = splat::three::ply::parse_ply::<f32>(&bytes, path).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`x`") && msg.contains("not finite"), "{msg}");
}

/// splat-transform's decoding of the fixture: a plain PLY of float
/// properties only, read here by name, because its opacities for the bytes
/// 0 and 255 are infinite (which `read_ply` rightly refuses).
pub(crate) fn decoded_columns(
    bytes: &[u8],
) -> (usize, std::collections::HashMap<String, Vec<f64>>) {
    let end = bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .unwrap()
        + 11;
    let header = std::str::from_utf8(&bytes[..end]).unwrap();
    let n: usize = header
        .lines()
        .find_map(|l| l.strip_prefix("element vertex "))
        .unwrap()
        .parse()
        .unwrap();
    let names: Vec<&str> = header
        .lines()
        .filter_map(|l| l.strip_prefix("property float "))
        .collect();
    let mut cols = std::collections::HashMap::new();
    for (k, name) in names.iter().enumerate() {
        let col = (0..n)
            .map(|i| {
                let at = end + (i * names.len() + k) * 4;
                f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as f64
            })
            .collect();
        cols.insert(name.to_string(), col);
    }
    (n, cols)
}

/// A compressed PLY written by PlayCanvas's splat-transform reads as that
/// tool itself decodes it (its decoding is committed beside it): every
/// value to f32 rounding, but the opacity bytes 0 and 255, which the tool
/// decodes to infinite logits and this reader to the finite logits of
/// 0.5/255 and 254.5/255. The fixture holds both bytes, log scales at the
/// writer's clamp, each quaternion component as the largest, and large
/// colours and SH coefficients.
#[test]
fn compressed_ply_reads_as_splat_transform_decodes_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compressed_ply");
    let ours = read_ply::<f64>(&dir.join("room.compressed.ply")).unwrap();
    let (n, theirs) = decoded_columns(&std::fs::read(dir.join("room.decoded.ply")).unwrap());
    assert_eq!((ours.len(), ours.sh_degree, n), (389, 3, 389));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
    let col = |name: &str, i: usize| theirs[name][i];
    let logit = |a: f64| (a / (1.0 - a)).ln();
    let (mut zeros, mut full) = (0, 0);
    for i in 0..n {
        for c in 0..3 {
            assert!(
                close(ours.means[i][c], col(["x", "y", "z"][c], i)),
                "mean {i}"
            );
            let s = col(&format!("scale_{c}"), i);
            assert!(close(ours.log_scales[i][c], s), "scale {i}");
            assert!(
                close(ours.sh[i * 48 + c], col(&format!("f_dc_{c}"), i)),
                "f_dc {i}"
            );
        }
        for c in 0..4 {
            assert!(
                close(ours.quats[i][c], col(&format!("rot_{c}"), i)),
                "quat {i}"
            );
        }
        let (o, t) = (ours.opacity_logits[i], col("opacity", i));
        if t == f64::INFINITY {
            full += 1;
            assert_eq!(o, logit(254.5 / 255.0), "opacity {i}");
        } else if t == f64::NEG_INFINITY {
            zeros += 1;
            assert_eq!(o, logit(0.5 / 255.0), "opacity {i}");
        } else {
            assert!(close(o, t), "opacity {i}: {o} {t}");
        }
        // f_rest_j is channel c = j / 15, band k = j % 15 + 1
        for j in 0..45 {
            let (c, k) = (j / 15, j % 15 + 1);
            let v = ours.sh[(i * 16 + k) * 3 + c];
            assert!(
                close(v, col(&format!("f_rest_{j}"), i)),
                "f_rest_{j} of {i}"
            );
        }
    }
    assert!(zeros >= 20 && full >= 20, "{zeros} {full}");
}

/// The scene behind `fixtures/compressed_ply/edges.compressed.ply`: the
/// room fixture's 389 Gaussians moved off its quantisation grid, some of
/// them at the format's edges (rotations with tied, negative and zero
/// components, log scales past the writer's ±20 clamp, opacities past
/// the byte's range, SH past ±4, large colours), and a cluster of 520 in
/// a 10⁻⁴ cube at the origin, 480 of them at it (as −0 and +0) and all
/// with nearly one scale,
/// so that the Morton order refines a run of equal codes, meets a run of
/// identical positions, and a whole chunk has log scales within 10⁻⁵ of
/// each other (packed as the bound) and others exactly equal.
fn compressed_writer_edges() -> Gaussians<f32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compressed_ply");
    let mut g = read_ply::<f32>(&dir.join("room.compressed.ply")).unwrap();
    // splitmix64: a fixed stream, independent of any crate's generator
    let mut state = 0x5eed_u64;
    let mut u = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    };
    let k = g.sh_coeffs();
    for i in 0..g.len() {
        for c in 0..3 {
            g.means[i][c] += 1e-3 * u();
            g.log_scales[i][c] += 0.01 * u();
        }
        for c in 0..4 {
            g.quats[i][c] += 0.01 * u();
        }
        g.opacity_logits[i] += 0.1 * u();
        for v in &mut g.sh[i * k * 3..(i + 1) * k * 3] {
            *v += 0.01 * u();
        }
    }
    let edges: [[f32; 4]; 6] = [
        [0.5, 0.5, 0.5, 0.5],
        [-0.9, 0.1, 0.1, 0.1],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [1e-30, 0.0, 2e-30, 0.0],
        [0.3, -0.6, 0.6, 0.1],
    ];
    for (j, q) in edges.iter().enumerate() {
        g.quats[7 * j] = *q;
    }
    g.log_scales[3] = [25.0, -25.0, 20.0];
    g.log_scales[4] = [-20.0, 19.9, -21.0];
    g.opacity_logits[5] = 40.0;
    g.opacity_logits[6] = -40.0;
    g.sh[(8 * k + 1) * 3] = 6.0;
    g.sh[(8 * k + 2) * 3 + 1] = -6.0;
    g.sh[(8 * k + 3) * 3 + 2] = 4.0;
    g.sh[(9 * k + 1) * 3] = -4.0;
    g.sh[9 * k * 3] = 10.0;
    g.sh[10 * k * 3 + 1] = -10.0;
    for j in 0..520 {
        // at the origin, as −0 and +0 in turn: the bounds' zeros keep the
        // reference's signs
        let mut m = if j % 2 == 0 { [-0.0; 3] } else { [0.0; 3] };
        if j >= 480 {
            for v in &mut m {
                *v += 1e-4 * u();
            }
        }
        g.means.push(m);
        g.log_scales.push([-3.0 + 2e-6 * u(), -3.5, -4.0]);
        g.quats.push([u(), u(), u(), u()]);
        g.opacity_logits.push(3.0 * u());
        for _ in 0..k * 3 {
            g.sh.push(u());
        }
    }
    g
}

/// The compressed PLY written here is the file PlayCanvas's
/// splat-transform 3.10.2 writes for the same scene, byte for byte but
/// for the header's `comment` line (its output is committed beside the
/// fixture's README, which says how it was made).
#[test]
fn compressed_ply_writes_as_splat_transform_writes_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compressed_ply");
    let strip = |bytes: &[u8]| -> Vec<u8> {
        let end = header_len(bytes);
        let text = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut out: Vec<u8> = text
            .lines()
            .filter(|l| !l.starts_with("comment "))
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect();
        out.extend_from_slice(&bytes[end..]);
        out
    };
    let g = compressed_writer_edges();
    assert_eq!((g.len(), g.sh_degree), (909, 3));
    let ours = splat::three::compressed_ply::to_bytes(&g);
    let theirs = std::fs::read(dir.join("edges.compressed.ply")).unwrap();
    let (ours, theirs) = (strip(&ours), strip(&theirs));
    assert_eq!(ours.len(), theirs.len());
    let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
    assert_eq!(first, None, "first differing byte (comment lines removed)");
}

/// Writes [`compressed_writer_edges`] as a float PLY to the path in
/// `CHAINRULE_FIXTURE_OUT`, the input from which the fixture's
/// `edges.compressed.ply` is made (see its README).
#[test]
#[ignore = "makes a fixture's input; run by hand"]
fn write_compressed_writer_edges_input() {
    let out = std::env::var("CHAINRULE_FIXTURE_OUT").expect("set CHAINRULE_FIXTURE_OUT");
    std::fs::write(out, to_ply_bytes(&compressed_writer_edges())).unwrap();
}

/// A diverged run's NaNs: `parse_ply` refuses them, `parse_ply_skipping`
/// leaves out exactly the Gaussians that hold one (in any property) or a
/// degenerate scale or rotation, keeps the rest bit for bit and in order,
/// and refuses a file with nothing drawable left.
#[test]
fn skipping_leaves_out_exactly_the_undrawable_gaussians() {
    use splat::three::ply::parse_ply_skipping;
    let g = random_scene::<f32>(&RandomScene {
        n: 12,
        sh_degree: 1,
        ..Default::default()
    });
    let mut bad = g.clone();
    bad.means[2][1] = f32::NAN;
    bad.opacity_logits[5] = f32::INFINITY;
    bad.sh[7 * 12 + 11] = f32::NAN; // the last f_rest of Gaussian 7
    bad.log_scales[9][0] = 40.0;
    bad.quats[10] = [0.0; 4];
    let path = Path::new("diverged.ply");
    let bytes = to_ply_bytes(&bad);
    let e = parse_ply::<f32>(&bytes, path).unwrap_err();
    assert!(e.message.contains("vertex 2"), "{}", e.message);
    let (kept, skipped) = parse_ply_skipping::<f32>(&bytes, path).unwrap();
    assert_eq!((skipped.count, skipped.of), (5, 12));
    let keep: Vec<usize> = (0..12).filter(|i| ![2, 5, 7, 9, 10].contains(i)).collect();
    assert_eq!(kept.len(), keep.len());
    for (j, &i) in keep.iter().enumerate() {
        assert_eq!(kept.means[j], g.means[i]);
        assert_eq!(kept.log_scales[j], g.log_scales[i]);
        assert_eq!(kept.quats[j], g.quats[i]);
        assert_eq!(kept.opacity_logits[j], g.opacity_logits[i]);
        assert_eq!(kept.sh[j * 12..(j + 1) * 12], g.sh[i * 12..(i + 1) * 12]);
    }
    let w = skipped.warning().unwrap();
    assert!(
        w.contains("diverged.ply") && w.contains("5 of 12") && w.contains("vertex 2"),
        "{w}"
    );
    // a clean file: nothing left out, no warning
    let (all, none) = parse_ply_skipping::<f32>(&to_ply_bytes(&g), path).unwrap();
    assert_eq!((all, none.count, none.warning()), (g.clone(), 0, None));
    // nothing drawable: the first reason is the error
    let mut worse = g.clone();
    for m in &mut worse.means {
        m[0] = f32::NAN;
    }
    let e = parse_ply_skipping::<f32>(&to_ply_bytes(&worse), path).unwrap_err();
    assert!(e.message.contains("vertex 0"), "{}", e.message);
}
