//! Fuzzes the NeRF-synthetic `transforms_*.json` reader: any text must give
//! a `DataError` or frames with finite rigid camera-to-world matrices and a
//! field of view in (0, π), never a panic or stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::data::nerf::parse_transforms;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::path::Path::new("/nonexistent-chainrule-fuzz");
    if let Ok(t) = parse_transforms(text, &dir.join("transforms_train.json"), dir) {
        assert!(t.camera_angle_x > 0.0 && t.camera_angle_x < std::f64::consts::PI);
        for f in &t.frames {
            assert!(f.c2w.iter().flatten().all(|v| v.is_finite()));
        }
    }
});
