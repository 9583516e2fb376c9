//! Density control: strategies that add, move and remove Gaussians
//! between iterations, behind one trait ([`Strategy`]), one file each.

use super::{Trainer, GROUPS};
use crate::adam::Adam;
use rayon::prelude::*;
use std::mem::MaybeUninit;

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

impl Row {
    /// Old Gaussian `src` as it is, with its moments.
    pub(super) fn unchanged(src: usize) -> Row {
        Row {
            src,
            fresh: false,
            mean: None,
            log_shift: 0.0,
        }
    }
}

impl Trainer {
    /// Rebuilds the scene from `rows` (parameters and Adam moments; the
    /// densification statistics start over).
    pub(super) fn gather(&mut self, rows: &[Row]) {
        let strides = self.strides();
        let n = rows.len();
        for g in 0..GROUPS {
            let s = strides[g];
            // new vectors filled in parallel row by row, every entry written
            // once (no serial zero-fill first): the same values as a serial
            // copy, on any thread count
            let (mut p, mut nm, mut nv) = (
                Vec::with_capacity(n * s),
                Vec::with_capacity(n * s),
                Vec::with_capacity(n * s),
            );
            if s > 0 {
                let (old, (m, v)) = (&self.params[g], self.adam[g].moments());
                let dp = &mut p.spare_capacity_mut()[..n * s];
                let dm = &mut nm.spare_capacity_mut()[..n * s];
                let dv = &mut nv.spare_capacity_mut()[..n * s];
                let put = |d: &mut [MaybeUninit<f64>], x: &[f64]| {
                    for (d, &x) in d.iter_mut().zip(x) {
                        d.write(x);
                    }
                };
                dp.par_chunks_exact_mut(s)
                    .zip(dm.par_chunks_exact_mut(s))
                    .zip(dv.par_chunks_exact_mut(s))
                    .zip(rows.par_iter())
                    .with_min_len(1024)
                    .for_each(|(((p, nm), nv), r)| {
                        let src = r.src * s..r.src * s + s;
                        match (g, r.mean) {
                            (0, Some(mean)) => put(p, &mean),
                            (1, _) => {
                                for (d, x) in p.iter_mut().zip(&old[src.clone()]) {
                                    d.write(x + r.log_shift);
                                }
                            }
                            _ => put(p, &old[src.clone()]),
                        }
                        if r.fresh {
                            put(nm, &[0.0; 64][..s]);
                            put(nv, &[0.0; 64][..s]);
                        } else {
                            put(nm, &m[src.clone()]);
                            put(nv, &v[src]);
                        }
                    });
                // SAFETY: the pass above wrote entries 0..n·s of each
                unsafe {
                    p.set_len(n * s);
                    nm.set_len(n * s);
                    nv.set_len(n * s);
                }
            }
            let t = self.adam[g].steps();
            // the trainer's groups step at one rate per group: no
            // per-parameter rates are kept
            self.adam[g] = Adam::from_state(Vec::new(), nm, nv, t);
            self.params[g] = p;
        }
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
