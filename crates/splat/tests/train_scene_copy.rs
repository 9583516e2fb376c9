//! The optimiser's fused update writes the f32 scene the next render
//! reads, and the trainer reuses it when density control leaves the
//! parameters alone. `Trainer::step` checks in debug builds that the scene
//! it renders is the parameters' (a `debug_assert`): these runs step
//! across every kind of change density control makes (clone, split and
//! prune rounds, opacity resets, MCMC relocation, growth and position
//! noise), so a stale copy fails them.
#![cfg(debug_assertions)]

use splat::data::synth::{write_dataset, SynthOptions};
use splat::data::{self, LoadOptions};
use splat::train::{Strategy, TrainConfig, Trainer};

#[test]
fn the_rendered_scene_follows_the_parameters_through_density_control() {
    let d = std::env::temp_dir().join(format!("chainrule-scene-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let opts = SynthOptions {
        train_views: 4,
        test_views: 1,
        size: 24,
        seed: 3,
    };
    write_dataset(&d, &opts).unwrap();
    let ds = data::load(&d, &LoadOptions::default()).unwrap();
    for strategy in [Strategy::Default, Strategy::Mcmc] {
        let cfg = TrainConfig {
            iters: 40,
            init_points: 400,
            max_gaussians: 600,
            sh_degree: 1,
            sh_interval: 5,
            densify_from: 2,
            densify_every: 3,
            densify_until: 30,
            densify_grad: 1e-7,
            opacity_reset_every: 7,
            strategy,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(ds.clone(), cfg).unwrap();
        let n0 = t.len();
        let mut counts = vec![n0];
        for _ in 0..25 {
            t.step().unwrap();
            counts.push(t.len());
        }
        // density control did change the scene
        assert!(counts.iter().any(|&n| n != n0), "{strategy:?}: {counts:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
