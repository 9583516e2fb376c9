//! Training gives the same bits whatever the number of threads: every
//! parallel stage of an iteration (render, loss, backward, Adam, the
//! conversions between f64 parameters and f32 kernels, densification)
//! must not depend on how rayon splits the work.

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions};
use splat::train::{TrainConfig, Trainer};

#[test]
fn training_does_not_depend_on_the_thread_count() {
    let d = std::env::temp_dir().join(format!("chainrule-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let opts = SynthOptions {
        train_views: 4,
        test_views: 1,
        size: 32,
        seed: 2,
    };
    write_dataset(&d, &opts).unwrap();
    let ds = data::load(&d, &LoadOptions::default()).unwrap();
    let cfg = TrainConfig {
        iters: 25,
        init_points: 5000,
        sh_degree: 1,
        sh_interval: 10,
        densify_from: 5,
        densify_every: 10,
        densify_until: 24,
        opacity_reset_every: 0,
        ..TrainConfig::default()
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut t = Trainer::new(ds.clone(), cfg.clone()).unwrap();
                let mut losses = Vec::new();
                for _ in 0..25 {
                    losses.push(t.step().unwrap().loss.to_bits());
                }
                let g = t.gaussians::<f64>();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (losses, bits(g.means.as_flattened()), bits(&g.sh), t.len())
            })
    };
    let one = run(1);
    let three = run(3);
    // enough Gaussians that Adam and the conversions split into blocks
    assert!(one.3 > 4096, "{} Gaussians", one.3);
    assert_eq!(one.0, three.0, "losses differ");
    assert_eq!(one.3, three.3, "Gaussian counts differ");
    assert!(one.1 == three.1 && one.2 == three.2, "parameters differ");
    let _ = std::fs::remove_dir_all(&d);
}
