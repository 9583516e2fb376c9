//! Replays every committed fuzz input (`fuzz/corpus/TARGET/`,
//! `fuzz/seeds/TARGET/`, `fuzz/regressions/TARGET/`) through its target's
//! body in `chainrule_cli::fuzzing`, on stable Rust, so CI guards every
//! reader without nightly tools. Every corpus folder must belong to a
//! registered target. Also a short seeded random search over camera
//! parameters (cheap, so it runs here too).

use std::path::Path;

use chainrule_cli::fuzzing::TARGETS;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz"))
}

#[test]
fn every_committed_fuzz_input_replays_without_a_panic() {
    let mut replayed = 0usize;
    let mut corpora = 0usize;
    for kind in ["corpus", "seeds", "regressions"] {
        let Ok(dirs) = std::fs::read_dir(root().join(kind)) else {
            continue;
        };
        for d in dirs {
            let d = d.unwrap().path();
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            let Some((_, body)) = TARGETS.iter().find(|t| t.0 == name) else {
                panic!(
                    "{}: no target named {name} in chainrule_cli::fuzzing::TARGETS",
                    d.display()
                );
            };
            corpora += 1;
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                let data = std::fs::read(&f).unwrap();
                let r = std::panic::catch_unwind(|| body(&data));
                assert!(r.is_ok(), "{} panicked", f.display());
                replayed += 1;
            }
        }
    }
    // every target has a corpus
    for (name, _) in TARGETS {
        assert!(
            root().join("corpus").join(name).is_dir(),
            "fuzz/corpus/{name} missing"
        );
    }
    assert!(
        corpora >= TARGETS.len() && replayed > 1000,
        "{corpora} folders, {replayed} inputs"
    );
}

#[test]
fn random_camera_parameters_never_panic() {
    // xorshift: mutate the committed camera_params inputs byte by byte
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(root().join("corpus/camera_params"))
        .unwrap()
        .map(|f| std::fs::read(f.unwrap().path()).unwrap())
        .collect();
    for i in 0..600 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            if data.len() > 3 {
                let k = 3 + (next() as usize) % (data.len() - 3);
                // flip a bit, mostly in exponents and signs
                data[k] ^= 1 << (next() % 8);
            }
        }
        chainrule_cli::fuzzing::camera_params(&data);
    }
}
