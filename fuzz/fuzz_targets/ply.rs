//! Fuzzes the 3DGS PLY reader: any bytes must give a `PlyError` or
//! Gaussians whose every value is finite and whose quaternions are nonzero,
//! never a panic, hang or huge allocation (declared counts are checked
//! against the file's length before reserving).
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::three::ply::{parse_ply, to_ply_bytes};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.ply");
    if let Ok(g) = parse_ply::<f64>(data, path) {
        let n = g.means.len();
        assert_eq!(g.log_scales.len(), n);
        assert_eq!(g.quats.len(), n);
        assert_eq!(g.opacity_logits.len(), n);
        assert!(g.means.iter().flatten().all(|v| v.is_finite()));
        assert!(g.log_scales.iter().flatten().all(|v| v.is_finite()));
        assert!(g.sh.iter().all(|v| v.is_finite()));
        assert!(g.opacity_logits.iter().all(|v| v.is_finite()));
        assert!(g.quats.iter().all(|q| q.iter().any(|v| *v != 0.0)));
    }
    // f32: values finite in f64 may overflow to infinity in f32
    if let Ok(g) = parse_ply::<f32>(data, path) {
        // what was read writes back and reads again to the same Gaussians
        let back = parse_ply::<f32>(&to_ply_bytes(&g), path).expect("own output reads back");
        assert_eq!(back, g);
    }
});
