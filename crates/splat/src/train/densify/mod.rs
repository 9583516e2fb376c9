//! Density control: strategies that add, move and remove Gaussians
//! between iterations, behind one trait ([`Strategy`]), one file each.

use super::{TrainConfig, Trainer, GROUPS};
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
    /// The parameter groups [`Strategy::regularise`] adds gradients to
    /// under `cfg` (none by default): only their rows are zeroed and read
    /// (the SH rows alone are 48 numbers a Gaussian).
    fn regularised(&self, _cfg: &TrainConfig) -> [bool; GROUPS] {
        [false; GROUPS]
    }
    /// Runs after the update of iteration `t.iteration()`.
    fn after_step(&self, t: &mut Trainer);
}

/// Adds `weight · mean(opacity)`'s gradient to the opacity logits' rows
/// of `grads` and returns its value (3DGS-MCMC's opacity regulariser).
pub(super) fn opacity_regulariser(t: &Trainer, weight: f64, grads: &mut [Vec<f64>; GROUPS]) -> f64 {
    let n = t.len().max(1) as f64;
    let mut value = 0.0;
    for (i, &l) in t.params[3].iter().enumerate() {
        let o = 1.0 / (1.0 + (-l).exp());
        value += weight * o / n;
        grads[3][i] += weight * o * (1.0 - o) / n;
    }
    value
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
#[derive(Debug)]
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

/// Buffers of the density rounds, kept between rounds so that a round in
/// steady state allocates nothing (they grow, with `Vec`'s headroom, only
/// when a round needs more than any before it).
#[derive(Debug, Default)]
pub(super) struct DensifyScratch {
    /// Candidates (average gradient, index), by decreasing gradient.
    pub(super) cand: Vec<(f64, usize)>,
    /// Per old splat: split into two new ones.
    pub(super) split: Vec<bool>,
    /// Per old splat: retired to make room.
    pub(super) retired: Vec<bool>,
    /// Per old splat: kept (as a candidate, or as it is).
    pub(super) kept: Vec<bool>,
    /// Indices of the non-candidates, faintest first.
    pub(super) faint: Vec<usize>,
    /// The new splats a round adds (clones and split halves).
    pub(super) extra: Vec<Row>,
    /// Rows of the new scene, for [`Trainer::gather`].
    pub(super) rows: Vec<Row>,
    /// `gather`'s copies of the rows whose source an in-place pass would
    /// overwrite first: parameters, first and second moments.
    moved: [Vec<f64>; 3],
    /// MCMC: every splat's opacity.
    opacity: Vec<f64>,
    /// MCMC: the dead splats (opacity at most `prune_opacity`).
    dead: Vec<usize>,
    /// MCMC: the live ones.
    alive: Vec<usize>,
    /// MCMC: the weights of the draw.
    weights: Vec<f64>,
    /// MCMC: the draw's cumulative weights.
    cdf: Vec<f64>,
    /// MCMC: the splats drawn.
    sampled: Vec<usize>,
    /// MCMC: per splat, how many times it was drawn (zero between rounds).
    copies: Vec<u32>,
    /// MCMC: the splats drawn at least once, in the order first drawn.
    touched: Vec<usize>,
}

impl Row {
    /// Whether the row copies its source with its moments and unchanged.
    fn is_unchanged(&self) -> bool {
        !self.fresh && self.mean.is_none() && self.log_shift == 0.0
    }

    /// Writes the row's parameters of group `g` (stride `s`) to `p` and
    /// its moments to `m` and `v`, from its source's `old` values
    /// (parameters, moments).
    fn write(&self, g: usize, old: [&[f64]; 3], [p, m, v]: [&mut [f64]; 3]) {
        let s = p.len();
        let src = self.src * s..self.src * s + s;
        match (g, self.mean) {
            (0, Some(mean)) => p.copy_from_slice(&mean),
            (1, _) => {
                for (d, x) in p.iter_mut().zip(&old[0][src.clone()]) {
                    *d = x + self.log_shift;
                }
            }
            _ => p.copy_from_slice(&old[0][src.clone()]),
        }
        if self.fresh {
            m.fill(0.0);
            v.fill(0.0);
        } else {
            m.copy_from_slice(&old[1][src.clone()]);
            v.copy_from_slice(&old[2][src]);
        }
    }
}

impl Trainer {
    /// Rebuilds the scene from `rows` (parameters and Adam moments; the
    /// densification statistics start over), in place: the parameter and
    /// moment vectors are rewritten where they are, so that a round
    /// allocates only when the scene outgrows their capacity.
    ///
    /// One pass in row order writes row `k` from its source `src ≥ k`
    /// directly (entries at and after `k` are still the old ones when row
    /// `k` is written); the rows whose source comes before them (new
    /// splats appended after the kept ones, or moved to a lower index by
    /// a relocation) are first copied aside. The values are those of a
    /// copy into new vectors, on any thread count.
    pub(super) fn gather(&mut self, rows: &[Row]) {
        // the rows are other splats now: a parameter average starts again
        self.average.restart();
        let strides = self.strides();
        let n = rows.len();
        let mut moved = std::mem::take(&mut self.densify_scratch.moved);
        for g in 0..GROUPS {
            let s = strides[g];
            let t = self.adam[g].steps();
            let (mut m, mut v) =
                std::mem::replace(&mut self.adam[g], Adam::zeroed(0)).into_moments();
            let p = &mut self.params[g];
            if s > 0 {
                // the rows read before the pass overwrites their source
                for b in moved.iter_mut() {
                    b.clear();
                }
                for (k, r) in rows.iter().enumerate() {
                    if r.src < k {
                        let at = moved[0].len();
                        for b in moved.iter_mut() {
                            b.resize(at + s, 0.0);
                        }
                        let [mp, mm, mv] = &mut moved;
                        r.write(
                            g,
                            [p, &m, &v],
                            [&mut mp[at..], &mut mm[at..], &mut mv[at..]],
                        );
                    }
                }
                let len = p.len().max(n * s);
                for x in [&mut *p, &mut m, &mut v] {
                    x.resize(len, 0.0);
                }
                let mut next = 0;
                for (k, r) in rows.iter().enumerate() {
                    let at = k * s..k * s + s;
                    if r.src < k {
                        let from = next..next + s;
                        next += s;
                        p[at.clone()].copy_from_slice(&moved[0][from.clone()]);
                        m[at.clone()].copy_from_slice(&moved[1][from.clone()]);
                        v[at].copy_from_slice(&moved[2][from]);
                    } else if r.src > k || !r.is_unchanged() {
                        // the source's entries (at or after k·s) are still
                        // the old ones: read them through one copy of
                        // the row (s ≤ 45 entries)
                        let mut old = [[0.0f64; 64]; 3];
                        let src = r.src * s..r.src * s + s;
                        old[0][..s].copy_from_slice(&p[src.clone()]);
                        old[1][..s].copy_from_slice(&m[src.clone()]);
                        old[2][..s].copy_from_slice(&v[src]);
                        let local = Row {
                            src: 0,
                            fresh: r.fresh,
                            mean: r.mean,
                            log_shift: r.log_shift,
                        };
                        local.write(
                            g,
                            [&old[0][..s], &old[1][..s], &old[2][..s]],
                            [&mut p[at.clone()], &mut m[at.clone()], &mut v[at]],
                        );
                    }
                }
                for x in [&mut *p, &mut m, &mut v] {
                    x.truncate(n * s);
                }
            }
            // the trainer's groups step at one rate per group: no
            // per-parameter rates are kept
            self.adam[g] = Adam::from_state(Vec::new(), m, v, t);
        }
        self.densify_scratch.moved = moved;
        for x in [
            &mut self.grad_accum,
            &mut self.grad_count,
            &mut self.max_radii,
        ] {
            x.clear();
            x.resize(n, 0.0);
        }
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
