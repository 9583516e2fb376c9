//! Fuzzes the six COLMAP readers (`cameras`, `images`, `points3D`, each in
//! `.bin` and `.txt`). The first byte picks the reader, the rest is the
//! file. Any input must give a `DataError` or a value, never a panic, hang
//! or huge allocation (declared counts are checked against the length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::data::colmap;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let path = std::path::Path::new("sparse/0/fuzz");
    let text = std::str::from_utf8(body);
    match which % 6 {
        0 => {
            let _ = colmap::cameras_bin(path, body);
        }
        1 => {
            let _ = colmap::images_bin(path, body);
        }
        2 => {
            let _ = colmap::points_bin(path, body);
        }
        3 => {
            if let Ok(t) = text {
                let _ = colmap::cameras_txt(path, t);
            }
        }
        4 => {
            if let Ok(t) = text {
                let _ = colmap::images_txt(path, t);
            }
        }
        _ => {
            if let Ok(t) = text {
                let _ = colmap::points_txt(path, t);
            }
        }
    }
});
