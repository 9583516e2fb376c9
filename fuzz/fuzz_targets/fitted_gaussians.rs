//! Fuzzes the fitted-Gaussians format of `chainrule fit` (`gaussians.json`):
//! any text must give a `FormatError` or a file whose model builds, has
//! finite values and survives a write/read round trip, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::format::GaussianFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = GaussianFile::from_json(text) {
        let (g, bg, _) = f.model().expect("a file that parsed has a model");
        assert!(bg.iter().all(|v| v.is_finite()));
        assert!(g.params.iter().all(|v| v.is_finite()));
        let back = GaussianFile::from_json(&f.to_json()).expect("own output reads back");
        assert_eq!(back.model().expect("model").0, g);
    }
});
