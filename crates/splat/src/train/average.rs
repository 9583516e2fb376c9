//! The final model as a moving average of the parameters: from the end of
//! densification (when the set of Gaussians stops changing) every
//! [`EVERY`] iterations the average moves towards the current parameters,
//! an exponential moving average whose time constant is
//! [`TrainConfig::ema_window`] iterations, and the run's last iteration
//! replaces the parameters with it.
//!
//! Why: Adam's steps on the colours, opacities and sizes do not shrink as
//! the run ends (only the positions' rate decays), so the last
//! iterations' parameters carry the noise of the last few photos seen.
//! Their average over the last hundred or so iterations (two epochs of a
//! 52-photo capture) generalises better to the held-out photos
//! (BENCHMARKS.md, thirty-sixth session).

use super::{TrainConfig, GROUPS};
use rayon::prelude::*;

/// Iterations between two updates of the average. Each is one pass over
/// the parameters and the average (about 140 MB for 148,000 Gaussians of
/// SH degree 3). Every 20 iterations scored as every 10 on two captures
/// (−0.004 and −0.005 dB, with the same 100-iteration window) for half the
/// passes: the capture default's 85 updates cost it less time than a
/// sitting's noise (BENCHMARKS.md, thirty-sixth and thirty-seventh
/// sessions).
pub const EVERY: u32 = 20;

/// The running average of every parameter group, and how many updates it
/// has had (0: none yet, the parameters have never been averaged). Kept
/// in `f32`, the precision of the PLY the model is saved to and of the
/// scene the renderer draws: each update is computed in `f64` and rounded
/// once, and the pass reads and writes half the bytes an `f64` average
/// would (and holds half the memory: about 35 MB for 148,000 Gaussians).
/// The rounding costs about half an f32 ulp / (1 − decay): a few ulps at
/// the default window, more for windows of thousands of iterations, whose
/// smallest moves it can lose.
#[derive(Clone, Debug, Default)]
pub(super) struct Average {
    pub(super) params: [Vec<f32>; GROUPS],
    pub(super) updates: u32,
}

/// The average's decay per update for a time constant of `window`
/// iterations: `1 − EVERY / window`, 0 (the average is the current
/// parameters) for windows of [`EVERY`] or fewer.
pub(super) fn decay(window: u32) -> f64 {
    (1.0 - f64::from(EVERY) / f64::from(window.max(1))).max(0.0)
}

/// Whether the average is updated after iteration `it`: with a window,
/// after the densification window (`densify_until`; density control and
/// opacity resets change the set of Gaussians until then, and an average
/// across a change would mix different splats), every [`EVERY`]
/// iterations and at the run's last (which weighs as much as a full
/// update when fewer than [`EVERY`] iterations precede it).
pub(super) fn update_now(cfg: &TrainConfig, it: u32) -> bool {
    cfg.ema_window > 0 && it > cfg.densify_until && (it % EVERY == 0 || it == cfg.iters)
}

/// Whether iteration `it` is the one after which the parameters become
/// their average (updated at that iteration too): the run's last, when
/// the average is updated there.
pub(super) fn apply_now(cfg: &TrainConfig, it: u32) -> bool {
    it == cfg.iters && update_now(cfg, it)
}

impl Average {
    /// Forgets the average: the next update starts it at the parameters.
    /// Density control calls it whenever it rearranges the Gaussians or
    /// resets their opacities, which the schedule only does before the
    /// average starts, unless a run is resumed with a longer `--iters`
    /// (whose densification window then reaches past the checkpoint).
    pub(super) fn restart(&mut self) {
        self.updates = 0;
    }

    /// Moves the average towards `params`: each value becomes
    /// `decay·average + (1 − decay)·param`. The first update, or one after
    /// the number of Gaussians changed (which the schedule rules out after
    /// the densification window), starts it at `params`.
    pub(super) fn update(&mut self, params: &[Vec<f64>; GROUPS], decay: f64) {
        let same = self.updates > 0
            && self
                .params
                .iter()
                .zip(params)
                .all(|(a, p)| a.len() == p.len());
        let decay = if same { decay } else { 0.0 };
        for (a, p) in self.params.iter_mut().zip(params) {
            if !same {
                a.clear();
                a.resize(p.len(), 0.0);
            }
            a.par_iter_mut()
                .zip(p.par_iter())
                .with_min_len(4096)
                .for_each(|(a, &p)| *a = (decay * f64::from(*a) + (1.0 - decay) * p) as f32);
        }
        self.updates = if same { self.updates + 1 } else { 1 };
    }

    /// Whether `params` are the average (as [`Average::apply`] leaves
    /// them).
    pub(super) fn is(&self, params: &[Vec<f64>; GROUPS]) -> bool {
        self.params
            .iter()
            .zip(params)
            .all(|(a, p)| a.len() == p.len() && a.iter().zip(p).all(|(&a, &p)| f64::from(a) == p))
    }

    /// Copies the average into `params` (the run's model becomes it).
    pub(super) fn apply(&self, params: &mut [Vec<f64>; GROUPS]) {
        for (p, a) in params.iter_mut().zip(&self.params) {
            p.clear();
            p.extend(a.iter().map(|&a| f64::from(a)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_weighs_updates_exponentially_and_restarts_on_a_new_set() {
        let mut a = Average::default();
        let p = |v: f64, n: usize| -> [Vec<f64>; GROUPS] { std::array::from_fn(|_| vec![v; n]) };
        a.update(&p(1.0, 2), 0.5);
        assert_eq!((a.params[3][1], a.updates), (1.0, 1));
        a.update(&p(3.0, 2), 0.5);
        assert_eq!((a.params[0][0], a.updates), (2.0, 2));
        a.update(&p(4.0, 2), 0.5);
        assert_eq!(a.params[5][1], 3.0);
        // another number of Gaussians: the average starts again
        a.update(&p(7.0, 3), 0.5);
        assert_eq!((a.params[2].clone(), a.updates), (vec![7.0; 3], 1));
        // kept in f32: the f64 update, rounded
        a.update(&p(0.1, 3), 0.5);
        assert_eq!(a.params[1][0], (0.5 * 7.0 + 0.5 * 0.1) as f32);
        let mut q = p(9.0, 1);
        assert!(!a.is(&q));
        a.apply(&mut q);
        assert_eq!(q[4], vec![f64::from((0.5 * 7.0 + 0.5 * 0.1) as f32); 3]);
        assert!(a.is(&q));
        q[5][2] += 1e-9;
        assert!(!a.is(&q));
    }

    #[test]
    fn updates_start_after_densification_every_twenty_iterations_and_at_the_end() {
        let cfg = TrainConfig {
            iters: 1005,
            densify_until: 500,
            ema_window: 200,
            ..TrainConfig::default()
        };
        let its: Vec<u32> = (1..=cfg.iters).filter(|&i| update_now(&cfg, i)).collect();
        assert_eq!(its[..2], [520, 540]);
        assert_eq!(its[its.len() - 2..], [1000, 1005]);
        assert_eq!(its.len(), 26);
        let off = TrainConfig {
            ema_window: 0,
            ..cfg.clone()
        };
        assert!(!(1..=off.iters).any(|i| update_now(&off, i)));
        // a window that never closes: no average
        let late = TrainConfig {
            densify_until: 2000,
            ..cfg.clone()
        };
        assert!(!(1..=late.iters).any(|i| update_now(&late, i)));
        assert_eq!((decay(200), decay(20), decay(1)), (0.9, 0.0, 0.0));
        assert!(apply_now(&cfg, 1005) && !apply_now(&cfg, 1000) && !apply_now(&late, 1005));
    }
}
