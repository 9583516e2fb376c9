//! Density control: strategies that add, move and remove Gaussians
//! between iterations, behind one trait ([`Strategy`]), one file each.

use super::{Trainer, GROUPS};
use crate::adam::Adam;

mod default;
mod mcmc;

/// A density-control strategy: what happens to the set of Gaussians after
/// each optimiser update (densify, prune, relocate, reset). It reads and
/// rewrites the trainer's parameters, moments and statistics; the
/// schedules in `schedule` say when.
pub(crate) trait Strategy {
    /// Adds the gradient of the strategy's regularisers (if any) to
    /// `grads` (per parameter group) and returns their value.
    fn regularise(&self, _t: &Trainer, _grads: &mut [Vec<f64>; GROUPS]) -> f64 {
        0.0
    }
    /// Runs after the update of iteration `t.iteration()`.
    fn after_step(&self, t: &mut Trainer);
}

/// The strategy a setting names.
pub(super) fn strategy(s: super::Strategy) -> &'static dyn Strategy {
    match s {
        super::Strategy::Default => &Adc,
        super::Strategy::Mcmc => &Mcmc,
    }
}

pub(super) use default::Adc;
use mcmc::Mcmc;

/// One Gaussian of the rearranged scene: which old one it copies, whether
/// its optimiser moments start at zero, its new position if moved, and the
/// shift of its log-scales.
pub(super) struct Row {
    pub(super) src: usize,
    pub(super) fresh: bool,
    pub(super) mean: Option<[f64; 3]>,
    pub(super) log_shift: f64,
}

impl Trainer {
    /// Rebuilds the scene from `rows` (parameters and Adam moments; the
    /// densification statistics start over).
    pub(super) fn gather(&mut self, rows: &[Row]) {
        let strides = self.strides();
        for g in 0..GROUPS {
            let s = strides[g];
            let (m, v) = self.adam[g].moments();
            let mut p = Vec::with_capacity(rows.len() * s);
            let mut nm = Vec::with_capacity(rows.len() * s);
            let mut nv = Vec::with_capacity(rows.len() * s);
            for r in rows {
                let src = r.src * s..r.src * s + s;
                match (g, r.mean) {
                    (0, Some(mean)) => p.extend_from_slice(&mean),
                    (1, _) => p.extend(self.params[1][src.clone()].iter().map(|x| x + r.log_shift)),
                    _ => p.extend_from_slice(&self.params[g][src.clone()]),
                }
                if r.fresh {
                    nm.extend(std::iter::repeat_n(0.0, s));
                    nv.extend(std::iter::repeat_n(0.0, s));
                } else {
                    nm.extend_from_slice(&m[src.clone()]);
                    nv.extend_from_slice(&v[src]);
                }
            }
            let t = self.adam[g].steps();
            self.adam[g] = Adam::from_state(vec![0.0; p.len()], nm, nv, t);
            self.params[g] = p;
        }
        let n = rows.len();
        self.grad_accum = vec![0.0; n];
        self.grad_count = vec![0.0; n];
        self.max_radii = vec![0.0; n];
    }
}

/// A trainer on a tiny synthetic dataset (4 training views of 16×16) for
/// the strategies' tests; `tag` names its temporary folder.
#[cfg(test)]
fn tiny_trainer(tag: &str, cfg: super::TrainConfig) -> Trainer {
    use crate::data::synth::{write_dataset, SynthOptions};
    let d = std::env::temp_dir().join(format!("chainrule-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let opts = SynthOptions {
        train_views: 4,
        test_views: 1,
        size: 16,
        seed: 2,
    };
    write_dataset(&d, &opts).unwrap();
    let data = crate::data::load(&d, &crate::data::LoadOptions::default()).unwrap();
    Trainer::new(data, cfg).unwrap()
}
