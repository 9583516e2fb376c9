//! The 3DGS paper's adaptive density control ("default"): clone small and
//! split large splats with a high average view-space gradient, prune
//! transparent and oversized ones, reset opacities periodically.

use super::super::{logit, schedule, TrainConfig, Trainer, GROUPS};
use super::{Row, Strategy};
use crate::adam::Adam;
use crate::three::project::quat_to_rotmat;
use crate::three::scene::Rng;
use rayon::prelude::*;

/// Adaptive density control of the 3DGS paper.
pub(crate) struct Adc;

impl Strategy for Adc {
    fn regularise(&self, t: &Trainer, grads: &mut [Vec<f64>; GROUPS]) -> f64 {
        super::opacity_regulariser(t, t.cfg.opacity_reg, grads)
    }

    fn regularised(&self, cfg: &TrainConfig) -> [bool; GROUPS] {
        // the opacity logits only
        std::array::from_fn(|g| g == 3 && cfg.opacity_reg > 0.0)
    }

    fn after_step(&self, t: &mut Trainer) {
        let it = t.iteration;
        if schedule::densify_now(&t.cfg, it) {
            t.densify_and_prune(schedule::prune_big_now(&t.cfg, it));
        }
        if schedule::opacity_reset_now(&t.cfg, it) {
            t.reset_opacity();
        }
    }
}

impl Trainer {
    /// Opacities above 0.01 are set to 0.01 (and their moments cleared;
    /// a parameter average under way starts again).
    pub fn reset_opacity(&mut self) {
        self.average.restart();
        let cap = logit(0.01);
        for v in self.params[3].iter_mut() {
            *v = v.min(cap);
        }
        // the moments cleared in place (no new vectors)
        let t = self.adam[3].steps();
        let (mut m, mut v) = std::mem::replace(&mut self.adam[3], Adam::zeroed(0)).into_moments();
        m.fill(0.0);
        v.fill(0.0);
        self.adam[3] = Adam::from_state(Vec::new(), m, v, t);
    }

    /// Clone small and split large splats whose average view-space gradient
    /// is above the threshold (within `max_gaussians`, making room by
    /// retiring the faintest splats when the budget is full; see
    /// [`TrainConfig::retire_per_round`](crate::train::TrainConfig::retire_per_round)), then prune the
    /// nearly transparent ones and, if `prune_big`, those larger than a
    /// tenth of the scene extent (or than `prune_screen_px` on screen, when
    /// set). Resets the statistics.
    pub fn densify_and_prune(&mut self, prune_big: bool) {
        // the round's buffers, kept between rounds (put back at the end)
        let mut sc = std::mem::take(&mut self.densify_scratch);
        let n = self.len();
        let c = self.cfg.clone();
        let max_scale = |t: &Trainer, i: usize| -> f64 {
            (0..3)
                .map(|k| t.params[1][3 * i + k])
                .fold(f64::NEG_INFINITY, f64::max)
                .exp()
        };
        sc.cand.clear();
        sc.cand.extend((0..n).filter_map(|i| {
            let avg = self.grad_accum[i] / self.grad_count[i].max(1.0);
            (self.grad_count[i] > 0.0 && avg >= c.densify_grad).then_some((avg, i))
        }));
        // by decreasing gradient, ties by index (the order of a stable
        // sort of the index-ordered list, without its buffer)
        sc.cand
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let budget = c.max_gaussians.saturating_sub(n);
        self.faintest_to_retire(&mut sc, budget);
        let room = sc.retired.iter().filter(|&&r| r).count();
        sc.cand.truncate(budget + room);
        let split_at = c.percent_dense * self.extent;
        // rows of the new scene: (source, fresh moments, new mean, log-scale shift)
        sc.split.clear();
        sc.split.resize(n, false);
        sc.extra.clear();
        let mut rng = Rng::new(c.seed ^ 0xD1B5_4A32_D192_ED03 ^ self.iteration as u64);
        for &(_, i) in &sc.cand {
            if max_scale(self, i) <= split_at {
                sc.extra.push(Row {
                    src: i,
                    fresh: true,
                    mean: None,
                    log_shift: 0.0,
                });
            } else {
                sc.split[i] = true;
                let q = &self.params[2][4 * i..4 * i + 4];
                let qn = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                let r = quat_to_rotmat([q[0] / qn, q[1] / qn, q[2] / qn, q[3] / qn]);
                for _ in 0..2 {
                    let s = [0, 1, 2].map(|k| self.params[1][3 * i + k].exp() * rng.normal());
                    let mean = [0, 1, 2].map(|a| {
                        self.params[0][3 * i + a] + (0..3).map(|b| r[a][b] * s[b]).sum::<f64>()
                    });
                    sc.extra.push(Row {
                        src: i,
                        fresh: true,
                        mean: Some(mean),
                        log_shift: -(1.6f64).ln(),
                    });
                }
            }
        }
        let min_op = logit(c.prune_opacity);
        let big_screen = c.prune_screen_px;
        let big_world = 0.1 * self.extent;
        let keep_row = |r: &Row, t: &Trainer| -> bool {
            if t.params[3][r.src] < min_op {
                return false;
            }
            !(prune_big
                && !r.fresh
                && ((big_screen > 0.0 && t.max_radii[r.src] > big_screen)
                    || max_scale(t, r.src) > big_world))
        };
        // which old splats stay, in parallel (the exponentials), then the
        // rows in order
        sc.kept.clear();
        sc.kept.resize(n, false);
        {
            let (split, retired) = (&sc.split, &sc.retired);
            let t = &*self;
            sc.kept
                .par_iter_mut()
                .enumerate()
                .with_min_len(4096)
                .for_each(|(i, k)| {
                    *k = !split[i] && !retired[i] && keep_row(&Row::unchanged(i), t);
                });
        }
        sc.rows.clear();
        let kept = &sc.kept;
        sc.rows
            .extend((0..n).filter(|&i| kept[i]).map(Row::unchanged));
        let t = &*self;
        sc.rows
            .extend(sc.extra.drain(..).filter(|r| keep_row(r, t)));
        let rows = std::mem::take(&mut sc.rows);
        self.densify_scratch = sc;
        self.gather(&rows);
        self.densify_scratch.rows = rows;
    }
}

impl Trainer {
    /// Which splats a round retires to make room for candidates
    /// (`sc.cand`, sorted by decreasing gradient) beyond the `budget` of
    /// free slots, marked in `sc.retired`: up to `retire_per_round` of the
    /// scene, no more than the candidates left out, taken from the least
    /// opaque splats that are not among the candidates kept (ties: the
    /// lower index first).
    fn faintest_to_retire(&self, sc: &mut super::DensifyScratch, budget: usize) {
        let n = self.len();
        sc.retired.clear();
        sc.retired.resize(n, false);
        let frac = self.cfg.retire_per_round;
        if frac <= 0.0 || sc.cand.len() <= budget {
            return;
        }
        let want = ((frac * n as f64) as usize).min(sc.cand.len() - budget);
        sc.kept.clear();
        sc.kept.resize(n, false);
        for &(_, i) in &sc.cand[..budget + want] {
            sc.kept[i] = true;
        }
        let kept = &sc.kept;
        sc.faint.clear();
        sc.faint.extend((0..n).filter(|&i| !kept[i]));
        let op = &self.params[3];
        sc.faint
            .sort_unstable_by(|&a, &b| op[a].total_cmp(&op[b]).then(a.cmp(&b)));
        for &i in sc.faint.iter().take(want) {
            sc.retired[i] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tiny_trainer;
    use super::{Adc, Strategy};
    use crate::train::{TrainConfig, GROUPS};

    /// The opacity regulariser's gradient is its value's derivative
    /// (central differences), on the opacity logits only; with a weight of
    /// 0 it adds nothing.
    #[test]
    fn the_opacity_regulariser_is_differentiated_right() {
        let cfg = TrainConfig {
            opacity_reg: 0.01,
            ..TrainConfig::default()
        };
        let mut t = tiny_trainer("opacity-reg", cfg);
        for (i, v) in t.params[3].iter_mut().enumerate() {
            *v = (i as f64 * 0.37).sin() * 3.0;
        }
        let zero = |t: &crate::train::Trainer| -> [Vec<f64>; GROUPS] {
            std::array::from_fn(|g| vec![0.0; t.params[g].len()])
        };
        let mut g = zero(&t);
        let value = Adc.regularise(&t, &mut g);
        assert!(value > 0.0);
        for (grp, rows) in g.iter().enumerate() {
            assert_eq!(grp != 3, rows.iter().all(|&x| x == 0.0), "group {grp}");
        }
        for idx in [0, 7, 42] {
            let h = 1e-6;
            let mut val = |d: f64| {
                t.params[3][idx] += d;
                let v = Adc.regularise(&t, &mut zero(&t));
                t.params[3][idx] -= d;
                v
            };
            let fd = (val(h) - val(-h)) / (2.0 * h);
            let rel = (fd - g[3][idx]).abs() / g[3][idx].abs();
            assert!(rel < 1e-6, "{idx}: {fd} vs {}", g[3][idx]);
        }
        t.cfg.opacity_reg = 0.0;
        let mut g = zero(&t);
        assert_eq!(Adc.regularise(&t, &mut g), 0.0);
        assert!(g.iter().flatten().all(|&x| x == 0.0));
    }

    /// A training step with the opacity regulariser moves the opacities
    /// (down: it adds a positive gradient) and nothing else, against the
    /// same step without it.
    #[test]
    fn a_step_with_the_opacity_regulariser_moves_only_opacities() {
        let run = |w: f64| {
            let cfg = TrainConfig {
                opacity_reg: w,
                ..TrainConfig::default()
            };
            let mut t = tiny_trainer(&format!("opacity-step-{w}"), cfg);
            t.step().unwrap();
            t.params.clone()
        };
        let (plain, reg) = (run(0.0), run(0.5));
        for g in 0..GROUPS {
            if g == 3 {
                assert!(plain[3].iter().zip(&reg[3]).all(|(p, r)| r < p));
            } else {
                assert_eq!(plain[g], reg[g], "group {g}");
            }
        }
    }

    /// With the budget full, a round retires the faintest splats that are
    /// not candidates (at most `retire_per_round` of the scene, at most
    /// the candidates left out) and clones that many more candidates, the
    /// ones of highest gradient; with `retire_per_round` 0 it adds none.
    #[test]
    fn a_full_budget_retires_the_faintest_for_the_strongest_candidates() {
        for (frac, want_clones) in [(0.0, 0usize), (0.1, 5), (0.5, 8)] {
            let mut t = tiny_trainer(
                "retire",
                TrainConfig {
                    init_points: 50,
                    max_gaussians: 50,
                    retire_per_round: frac,
                    ..TrainConfig::default()
                },
            );
            let n = t.len();
            assert_eq!(n, 50);
            // all small (cloned, not split), opaque enough to survive
            let small = (1e-4 * t.extent()).ln();
            t.params[1].iter_mut().for_each(|v| *v = small);
            t.params[3]
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.1 * i as f64);
            // splats 40..48 are candidates, 47 the strongest
            t.grad_accum.iter_mut().for_each(|v| *v = 0.0);
            t.grad_count.iter_mut().for_each(|v| *v = 1.0);
            for i in 40..48 {
                t.grad_accum[i] = 1.0 + i as f64;
            }
            // the faintest splat is a candidate: never retired
            t.params[3][45] = -5.0;
            let means: Vec<[f64; 3]> = (0..n)
                .map(|i| [0, 1, 2].map(|k| t.params[0][3 * i + k]))
                .collect();
            t.densify_and_prune(false);
            assert_eq!(t.len(), 50, "retire {frac}");
            let now: Vec<[f64; 3]> = (0..t.len())
                .map(|i| [0, 1, 2].map(|k| t.params[0][3 * i + k]))
                .collect();
            let count = |m: &[f64; 3]| now.iter().filter(|x| *x == m).count();
            // the faintest non-candidates (0, 1, ...) are gone, the
            // strongest candidates (47, 46, ...) are there twice
            for i in 0..want_clones {
                assert_eq!(count(&means[i]), 0, "retire {frac}: splat {i} kept");
                assert_eq!(
                    count(&means[47 - i]),
                    2,
                    "retire {frac}: {} not cloned",
                    47 - i
                );
            }
            assert_eq!(count(&means[want_clones]), 1, "retire {frac}");
            assert_eq!(count(&means[45]), 1 + usize::from(want_clones > 2));
        }
    }

    /// AbsGS's statistic sums the per-pixel gradients' absolute values, so
    /// a splat's entry is at least the plain statistic's (|Σ g| ≤ Σ |g|
    /// per axis), and above it for some splat of a textured view (their
    /// pixels pull both ways).
    #[test]
    fn the_absolute_statistic_bounds_the_plain_one() {
        let stat = |absgrad: bool| {
            let mut t = tiny_trainer(
                "absgrad",
                TrainConfig {
                    init_points: 200,
                    absgrad,
                    ..TrainConfig::default()
                },
            );
            t.step().unwrap();
            (t.grad_accum.clone(), t.grad_count.clone())
        };
        let ((plain, n0), (abs, n1)) = (stat(false), stat(true));
        assert_eq!(n0, n1, "the same splats are counted");
        let mut above = 0;
        for (p, a) in plain.iter().zip(&abs) {
            assert!(*a >= p * (1.0 - 1e-5) - 1e-12, "abs {a} < plain {p}");
            above += usize::from(*a > 1.01 * p);
        }
        assert!(above > 0, "no splat's absolute sum exceeds its plain one");
    }

    /// Size pruning removes splats larger than a tenth of the extent in the
    /// world; a large radius on screen alone prunes only when
    /// `prune_screen_px` asks for it (off by default, as in gsplat and in
    /// effect in the original code).
    #[test]
    fn size_pruning_is_by_world_size_unless_a_screen_size_is_set() {
        let base = TrainConfig {
            init_points: 50,
            densify_grad: f64::INFINITY, // no growth
            ..TrainConfig::default()
        };
        for (screen_px, want) in [(0.0, 49), (20.0, 48)] {
            let mut t = tiny_trainer(
                "adc",
                TrainConfig {
                    prune_screen_px: screen_px,
                    ..base.clone()
                },
            );
            // all small, but splat 0 too large in the world and splat 1
            // large on screen
            let small = (0.01 * t.extent()).ln();
            t.params[1].iter_mut().for_each(|v| *v = small);
            let big = (0.2 * t.extent()).ln();
            t.params[1][0..3].copy_from_slice(&[big; 3]);
            t.max_radii[1] = 40.0;
            // not before size pruning starts
            t.densify_and_prune(false);
            assert_eq!(t.len(), 50);
            let big = (0.2 * t.extent()).ln();
            t.params[1][0..3].copy_from_slice(&[big; 3]);
            t.max_radii[1] = 40.0;
            t.densify_and_prune(true);
            assert_eq!(t.len(), want, "prune_screen_px {screen_px}");
        }
    }
}
