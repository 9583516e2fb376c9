//! 3DGS-MCMC (Kheradmand et al. 2024, as gsplat's `MCMCStrategy` runs it):
//! Gaussians are samples of a distribution, so instead of cloning and
//! splitting by gradient, each round moves the dead ones (opacity at most
//! `prune_opacity`) onto live ones drawn with probability proportional to
//! opacity, then adds 5% more the same way, up to `max_gaussians` (more
//! when 5% a round would not reach it before the window closes: see
//! [`Trainer::mcmc_add`]). A
//! Gaussian copied into `N` places keeps what it draws: its opacity
//! becomes `1 − (1 − o)^(1/N)` and its scales are multiplied by
//! `o / Σ_{i=1..N} Σ_{k=0..i−1} C(i−1, k) (−1)^k o'^(k+1) / √(k+1)` (the
//! paper's equation 9). After every update, positions get noise shaped by
//! each Gaussian's covariance, scaled by the position learning rate
//! rescaled to start at the original 3DGS's 1.6·10⁻⁴ (the rate gsplat's
//! factor goes with, whatever rate the positions learn at; it decays on
//! the run's own schedule) times `NOISE_LR`, and gated to the nearly
//! transparent ones. The loss gets
//! `OPACITY_REG · mean(opacity) + SCALE_REG · mean(scale)`.

use super::super::{logit, schedule, TrainConfig, Trainer, GROUPS};
use super::{DensifyScratch, Row, Strategy};
use crate::three::project::quat_to_rotmat;
use crate::three::scene::Rng;
use rayon::prelude::*;

/// Noise scale relative to the original 3DGS's position learning rate
/// (gsplat: 5·10⁵, with that rate).
pub(crate) const NOISE_LR: f64 = 5e5;
/// The original 3DGS's starting position rate (gsplat's), which
/// [`NOISE_LR`] multiplies: the noise does not grow with a higher
/// [`TrainConfig::lr_mean`] (the CLI's is 2 to 8 times it). At gsplat's
/// level the noise scored +0.23 and +0.21 dB over the noise at the CLI's
/// rate on two captures (BENCHMARKS.md, thirty-eighth session).
const NOISE_BASE_LR: f64 = 1.6e-4;
/// Weight of the mean opacity in the loss (gsplat's MCMC setting: 0.01).
pub(crate) const OPACITY_REG: f64 = crate::train::config::OPACITY_REG;
/// Weight of the mean scale in the loss (gsplat's MCMC setting: 0.01).
pub(crate) const SCALE_REG: f64 = 0.01;
/// Growth per round (5%, the paper's and gsplat's), the least a round adds.
const GROWTH: f64 = 1.05;
/// Gaussians per parallel task of the position noise (a few per thread
/// for a capture's budget; the noise does not depend on it).
const NOISE_CHUNK: usize = 8192;
/// Copies of one Gaussian the relocation formula is evaluated up to.
const N_MAX: usize = 51;

/// The MCMC strategy.
pub(crate) struct Mcmc;

impl Strategy for Mcmc {
    fn regularise(&self, t: &Trainer, grads: &mut [Vec<f64>; GROUPS]) -> f64 {
        let n = t.len().max(1) as f64;
        let mut value = super::opacity_regulariser(t, OPACITY_REG, grads);
        for (k, &ls) in t.params[1].iter().enumerate() {
            let s = ls.exp();
            value += SCALE_REG * s / (3.0 * n);
            grads[1][k] += SCALE_REG * s / (3.0 * n);
        }
        value
    }

    fn regularised(&self, _cfg: &TrainConfig) -> [bool; GROUPS] {
        // the scales and the opacity logits
        std::array::from_fn(|g| g == 1 || g == 3)
    }

    fn after_step(&self, t: &mut Trainer) {
        let it = t.iteration;
        if schedule::densify_now(&t.cfg, it) {
            t.mcmc_relocate();
            t.mcmc_add();
        }
        t.mcmc_noise();
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Binomial coefficients `C(n, k)` for `n, k < N_MAX`, made once per
/// process (a round evaluates [`relocation`] once per sampled Gaussian).
fn binomials() -> &'static [[f64; N_MAX]] {
    static TABLE: std::sync::OnceLock<Vec<[f64; N_MAX]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut b = vec![[0.0; N_MAX]; N_MAX];
        for n in 0..N_MAX {
            b[n][0] = 1.0;
            for k in 1..=n {
                b[n][k] = b[n - 1][k - 1] + if k < n { b[n - 1][k] } else { 0.0 };
            }
        }
        b
    })
}

/// The opacity and scale factor of a Gaussian of opacity `o` that now
/// stands in `copies` places (itself included), so that the copies
/// together draw as it did (3DGS-MCMC, equation 9).
pub(crate) fn relocation(o: f64, copies: usize) -> (f64, f64) {
    let n = copies.clamp(1, N_MAX);
    let b = binomials();
    let o_new = 1.0 - (1.0 - o).powf(1.0 / n as f64);
    let mut denom = 0.0;
    for i in 1..=n {
        for k in 0..i {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            denom += b[i - 1][k] * sign * o_new.powi(k as i32 + 1) / ((k + 1) as f64).sqrt();
        }
    }
    (o_new, o / denom)
}

/// `n` indices drawn with replacement, with probability proportional to
/// `weights`.
#[cfg(test)]
fn multinomial(weights: &[f64], n: usize, rng: &mut Rng) -> Vec<usize> {
    let (mut cdf, mut out) = (Vec::new(), Vec::new());
    multinomial_into(weights, n, rng, &mut cdf, &mut out);
    out
}

/// [`multinomial`] into `out`, with `cdf` as scratch (both reused).
fn multinomial_into(
    weights: &[f64],
    n: usize,
    rng: &mut Rng,
    cdf: &mut Vec<f64>,
    out: &mut Vec<usize>,
) {
    cdf.clear();
    let mut s = 0.0;
    for w in weights {
        s += w.max(0.0);
        cdf.push(s);
    }
    out.clear();
    out.extend((0..n).map(|_| {
        let u = rng.uniform() * s;
        cdf.partition_point(|&c| c <= u).min(weights.len() - 1)
    }));
}

impl Trainer {
    /// Sets the opacity and scales of each Gaussian in `sc.sampled` for
    /// the number of places it will stand in (itself plus its copies
    /// there), then starts `sc.rows` as the unchanged scene. Each
    /// Gaussian's update reads and writes only its own entries, so the
    /// order they are visited in does not matter; `sc.copies` is left all
    /// zero.
    fn mcmc_share(&mut self, sc: &mut DensifyScratch) {
        let n = self.len();
        let DensifyScratch {
            sampled,
            copies,
            touched,
            rows,
            ..
        } = sc;
        if copies.len() < n {
            copies.resize(n, 0);
        }
        touched.clear();
        for &i in sampled.iter() {
            if copies[i] == 0 {
                touched.push(i);
            }
            copies[i] += 1;
        }
        let eps = f64::EPSILON;
        let min_op = self.cfg.prune_opacity;
        for &i in touched.iter() {
            let c = std::mem::take(&mut copies[i]) as usize;
            let o = sigmoid(self.params[3][i]);
            let (o_new, f) = relocation(o, c + 1);
            self.params[3][i] = logit(o_new.clamp(min_op, 1.0 - eps));
            for k in 0..3 {
                self.params[1][3 * i + k] += f.ln();
            }
        }
        rows.clear();
        rows.extend((0..n).map(Row::unchanged));
    }

    /// Draws `count` indices into `sc.sampled` with probability
    /// proportional to `sc.weights`, from this round's stream `salt`.
    fn mcmc_draw(&self, sc: &mut DensifyScratch, count: usize, salt: u64) {
        let mut rng = self.mcmc_rng(salt);
        multinomial_into(&sc.weights, count, &mut rng, &mut sc.cdf, &mut sc.sampled);
    }

    fn mcmc_rng(&self, salt: u64) -> Rng {
        Rng::new(self.cfg.seed ^ salt ^ (self.iteration as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Moves every dead Gaussian (opacity ≤ `prune_opacity`) onto a live
    /// one sampled by opacity. Returns how many moved.
    ///
    /// Its lists are the density rounds' scratch, kept between rounds: a
    /// round allocates nothing once they have grown to the scene's size.
    pub(crate) fn mcmc_relocate(&mut self) -> usize {
        let mut sc = std::mem::take(&mut self.densify_scratch);
        let moved = self.mcmc_relocation_rows(&mut sc);
        self.densify_scratch = sc;
        if moved > 0 {
            self.gather_scratch_rows();
        }
        moved
    }

    /// Rebuilds the scene from the scratch's rows (see [`Trainer::gather`]).
    fn gather_scratch_rows(&mut self) {
        let rows = std::mem::take(&mut self.densify_scratch.rows);
        self.gather(&rows);
        self.densify_scratch.rows = rows;
    }

    /// [`Trainer::mcmc_relocate`] up to the new scene's rows, left in
    /// `sc.rows`: returns how many moved (0: no rows made).
    fn mcmc_relocation_rows(&mut self, sc: &mut DensifyScratch) -> usize {
        let n = self.len();
        let min_op = self.cfg.prune_opacity;
        sc.opacity.clear();
        sc.opacity
            .extend(self.params[3].iter().map(|&l| sigmoid(l)));
        let op = &sc.opacity;
        sc.dead.clear();
        sc.dead.extend((0..n).filter(|&i| op[i] <= min_op));
        sc.alive.clear();
        sc.alive.extend((0..n).filter(|&i| op[i] > min_op));
        if sc.dead.is_empty() || sc.alive.is_empty() {
            return 0;
        }
        sc.weights.clear();
        sc.weights.extend(sc.alive.iter().map(|&i| op[i]));
        self.mcmc_draw(sc, sc.dead.len(), 0x005E_ED0F_DEAD);
        for k in sc.sampled.iter_mut() {
            *k = sc.alive[*k];
        }
        self.mcmc_share(sc);
        for (&d, &s) in sc.dead.iter().zip(&sc.sampled) {
            sc.rows[d].src = s;
            sc.rows[d].fresh = true;
            sc.rows[s].fresh = true;
        }
        sc.dead.len()
    }

    /// Adds Gaussians, copies of existing ones sampled by opacity, up to
    /// `max_gaussians`. Returns how many were added.
    ///
    /// 3DGS-MCMC grows 5% a round and, over its 245 rounds of a
    /// 30,000-iteration run, reaches any cap: the cap is the model's size.
    /// Our window (half of `--iters`, 19 rounds at 4,000 iterations) would
    /// leave 5% a round at 2.5 times the initial points, far below the
    /// budget, so a round grows by the larger of 5% and the constant rate
    /// that reaches the cap in the rounds left, `(cap / n)^(1 / rounds)`:
    /// the last round of the window fills it.
    pub(crate) fn mcmc_add(&mut self) -> usize {
        let n = self.len();
        let cap = self.cfg.max_gaussians;
        let left = schedule::densify_rounds_left(&self.cfg, self.iteration);
        let target = if left <= 1 {
            cap
        } else {
            let rate = GROWTH.max((cap as f64 / n.max(1) as f64).powf(1.0 / left as f64));
            ((rate * n as f64) as usize).min(cap)
        };
        let add = target.saturating_sub(n);
        if add == 0 {
            return 0;
        }
        let mut sc = std::mem::take(&mut self.densify_scratch);
        sc.weights.clear();
        sc.weights
            .extend(self.params[3].iter().map(|&l| sigmoid(l)));
        self.mcmc_draw(&mut sc, add, 0x0ADD_5A3E);
        self.mcmc_share(&mut sc);
        for &s in &sc.sampled {
            sc.rows[s].fresh = true;
        }
        sc.rows.extend(sc.sampled.iter().map(|&s| Row {
            src: s,
            fresh: true,
            mean: None,
            log_shift: 0.0,
        }));
        self.densify_scratch = sc;
        self.gather_scratch_rows();
        add
    }

    /// Position noise `Σ·z·lr·NOISE_LR·σ(100·(1 − o − 0.995))` per
    /// Gaussian (`Σ = R S² Rᵀ`, `z` standard normal, `lr` the position rate
    /// rescaled to start at [`NOISE_BASE_LR`]): nearly transparent
    /// Gaussians explore, opaque ones stay.
    fn mcmc_noise(&mut self) {
        self.mcmc_noise_in_chunks(NOISE_CHUNK);
    }

    /// [`Trainer::mcmc_noise`] in parallel over chunks of `chunk`
    /// Gaussians: Gaussian `i` draws the stream's normals `3i` to `3i + 2`
    /// (each chunk moves its copy of the stream to its first Gaussian's),
    /// so the noise is the same for any chunk size and thread count.
    fn mcmc_noise_in_chunks(&mut self, chunk: usize) {
        let chunk = chunk.max(1);
        let scaler = self.group_lr(0) * (NOISE_BASE_LR / self.cfg.lr_mean) * NOISE_LR;
        let rng = self.mcmc_rng(0x0015_E000);
        let [means, scales, quats, opacities, ..] = &mut self.params;
        let (scales, quats, opacities) = (&*scales, &*quats, &*opacities);
        means
            .par_chunks_mut(3 * chunk)
            .enumerate()
            .for_each(|(c, m)| {
                let first = c * chunk;
                let mut rng = rng.clone();
                // three normals of two draws each per Gaussian
                rng.seek(6 * first as u64);
                for (j, m) in m.chunks_exact_mut(3).enumerate() {
                    let i = first + j;
                    let gate = sigmoid(100.0 * (1.0 - sigmoid(opacities[i]) - 0.995));
                    let z = [rng.normal(), rng.normal(), rng.normal()];
                    if gate * scaler < 1e-300 {
                        continue;
                    }
                    let q = &quats[4 * i..4 * i + 4];
                    let qn = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                    let r = quat_to_rotmat([q[0] / qn, q[1] / qn, q[2] / qn, q[3] / qn]);
                    let s2 = [0, 1, 2].map(|k| (2.0 * scales[3 * i + k]).exp());
                    // Σ z = R S² Rᵀ z
                    let rz = [0, 1, 2].map(|b| (0..3).map(|a| r[a][b] * z[a]).sum::<f64>() * s2[b]);
                    for (a, ma) in m.iter_mut().enumerate() {
                        let d: f64 = (0..3).map(|b| r[a][b] * rz[b]).sum();
                        *ma += d * scaler * gate;
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equation 9 against its closed forms: one copy changes nothing; for
    /// two, `1 − (1 − o')² = o` (the stack is as opaque at the centre) and
    /// the scale factor is `o / (o' + o' − o'²/√2)`.
    #[test]
    fn relocation_matches_the_closed_forms() {
        for &o in &[0.05, 0.3, 0.7, 0.95] {
            let (o1, f1) = relocation(o, 1);
            assert!((o1 - o).abs() < 1e-12 && (f1 - 1.0).abs() < 1e-12);
            let (o2, f2) = relocation(o, 2);
            // 1 − (1 − o')² = o at the centre
            assert!((1.0 - (1.0 - o2).powi(2) - o).abs() < 1e-12);
            // N = 2: denominator o' + (o' − o'²/√2)
            let d = o2 + (o2 - o2 * o2 / 2f64.sqrt());
            assert!((f2 - o / d).abs() < 1e-12);
            // more copies: fainter, and the scale shrinks less than the opacity
            let (o5, f5) = relocation(o, 5);
            assert!(o5 < o2 && f5 > 0.0);
        }
        assert_eq!(binomials()[5][2], 10.0);
        assert_eq!(binomials()[50][25], 126_410_606_437_752.0);
    }

    #[test]
    fn multinomial_follows_the_weights() {
        let mut rng = Rng::new(1);
        let s = multinomial(&[0.0, 1.0, 3.0], 4000, &mut rng);
        let c2 = s.iter().filter(|&&i| i == 2).count() as f64 / 4000.0;
        assert!(!s.contains(&0));
        assert!((c2 - 0.75).abs() < 0.03, "{c2}");
    }
}

#[cfg(test)]
mod trainer_tests {
    use super::super::tiny_trainer;
    use super::*;
    use crate::train::{Strategy as Setting, TrainConfig};

    fn trainer(tag: &str) -> Trainer {
        let cfg = TrainConfig {
            iters: 40,
            init_points: 100,
            sh_degree: 0,
            max_gaussians: 130,
            strategy: Setting::Mcmc,
            // a round every iteration (a scaled schedule has at least 100
            // between rounds)
            densify_every: 1,
            ..TrainConfig::default().with_densify_until(30)
        };
        tiny_trainer(&format!("mcmc-{tag}"), cfg)
    }

    /// The regularisers' gradient is their derivative (central differences
    /// of the value they return).
    #[test]
    fn regulariser_gradient_matches_finite_differences() {
        let mut t = trainer("reg");
        for (i, v) in t.params[3].iter_mut().enumerate() {
            *v = (i as f64 * 0.37).sin() * 3.0;
        }
        let zero =
            || -> [Vec<f64>; GROUPS] { std::array::from_fn(|g| vec![0.0; t.params[g].len()]) };
        let mut g = zero();
        Mcmc.regularise(&t, &mut g);
        for (grp, idx) in [(3usize, 7usize), (1, 11), (1, 0), (3, 42)] {
            let h = 1e-6;
            let val = |d: f64, t: &mut Trainer| {
                t.params[grp][idx] += d;
                let mut scratch: [Vec<f64>; GROUPS] = Default::default();
                for (k, s) in scratch.iter_mut().enumerate() {
                    *s = vec![0.0; t.params[k].len()];
                }
                let v = Mcmc.regularise(t, &mut scratch);
                t.params[grp][idx] -= d;
                v
            };
            let fd = (val(h, &mut t) - val(-h, &mut t)) / (2.0 * h);
            assert!(
                (fd - g[grp][idx]).abs() < 1e-8,
                "{grp}/{idx}: {fd} vs {}",
                g[grp][idx]
            );
        }
    }

    /// The position noise moves only the nearly transparent Gaussians, by
    /// the original 3DGS's position rate times `NOISE_LR` whatever rate
    /// the positions learn at: a run at twice the rate (start and end)
    /// gets the same noise.
    #[test]
    fn noise_follows_the_original_position_rate() {
        let moves = |scale: f64| {
            let mut t = trainer(&format!("noise{scale}"));
            t.cfg.lr_mean *= scale;
            t.cfg.lr_mean_final *= scale;
            t.iteration = 7;
            let n = t.len();
            for i in 0..n {
                t.params[3][i] = logit(if i % 2 == 0 { 0.001 } else { 0.9 });
            }
            let before = t.params[0].clone();
            t.mcmc_noise();
            (0..n)
                .map(|i| {
                    (0..3)
                        .map(|a| t.params[0][3 * i + a] - before[3 * i + a])
                        .collect()
                })
                .collect::<Vec<Vec<f64>>>()
        };
        let (base, doubled) = (moves(1.0), moves(2.0));
        for (i, (a, b)) in base.iter().zip(&doubled).enumerate() {
            let size: f64 = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            if i % 2 == 0 {
                assert!(size > 0.0, "splat {i}: a transparent splat did not move");
            } else {
                // the gate σ(100·(0.1 − 0.995)) ≈ e⁻⁸⁹
                assert!(size < 1e-30, "splat {i}: an opaque splat moved {size}");
            }
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-300), "{x} vs {y}");
            }
        }
        // at the library's default rate (the original's), the noise is the
        // position rate times NOISE_LR: one splat's move, computed here
        let mut t = trainer("noise-check");
        t.iteration = 7;
        t.params[3][0] = logit(0.001);
        let (q, ls) = (t.params[2][..4].to_vec(), t.params[1][..3].to_vec());
        let z = {
            let mut rng = t.mcmc_rng(0x0015_E000);
            [rng.normal(), rng.normal(), rng.normal()]
        };
        let before: Vec<f64> = t.params[0][..3].to_vec();
        let lr = t.group_lr(0);
        t.mcmc_noise();
        let qn = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        let r = quat_to_rotmat([q[0] / qn, q[1] / qn, q[2] / qn, q[3] / qn]);
        let gate = sigmoid(100.0 * (1.0 - 0.001 - 0.995));
        for a in 0..3 {
            // (R S² Rᵀ z)_a
            let want: f64 = (0..3)
                .map(|b| {
                    r[a][b] * (2.0 * ls[b]).exp() * (0..3).map(|c| r[c][b] * z[c]).sum::<f64>()
                })
                .sum::<f64>()
                * lr
                * NOISE_LR
                * gate;
            let got = t.params[0][a] - before[a];
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
        }
    }

    /// The parallel noise is the serial loop's to the bit, whatever the
    /// chunk size: each Gaussian draws its own three normals of the stream
    /// (one chunk of all the Gaussians is the serial loop: one stream,
    /// Gaussian after Gaussian; `noise_follows_the_original_position_rate`
    /// checks its formula).
    #[test]
    fn chunked_noise_is_the_serial_noise() {
        let noised = |chunk: usize| {
            let mut t = trainer("noise-chunks");
            t.iteration = 5;
            for i in 0..t.len() {
                t.params[3][i] = logit(if i % 3 == 0 { 0.002 } else { 0.4 });
            }
            let before = t.params[0].clone();
            t.mcmc_noise_in_chunks(chunk);
            (before, t.params[0].clone())
        };
        let n = trainer("noise-chunks").len();
        let (before, serial) = noised(n);
        assert_ne!(serial, before);
        for chunk in [1, 7, NOISE_CHUNK] {
            assert_eq!(noised(chunk).1, serial, "chunk {chunk}");
        }
    }

    /// Relocation leaves no dead Gaussian and keeps the count; adding grows
    /// by 5% up to the cap; training with MCMC stays finite and reaches it.
    #[test]
    fn relocation_revives_the_dead_and_growth_stops_at_the_cap() {
        let mut t = trainer("reloc");
        let n = t.len();
        for i in (0..n).step_by(3) {
            t.params[3][i] = logit(0.001);
        }
        let moved = t.mcmc_relocate();
        assert_eq!(moved, n.div_ceil(3));
        assert_eq!(t.len(), n);
        assert!(t.params[3]
            .iter()
            .all(|&l| sigmoid(l) > t.cfg.prune_opacity));
        assert_eq!(t.mcmc_add(), 5);
        assert_eq!(t.len(), 105);
        while t.iteration() < t.cfg.iters {
            t.step().unwrap();
        }
        assert_eq!(t.len(), 130);
        t.gaussians::<f64>().check_shapes().unwrap();
    }

    /// A budget that 5% a round would not reach in the window is filled by
    /// its last round, and no round grows by less than 5%.
    #[test]
    fn growth_fills_the_budget_by_the_end_of_the_window() {
        let mut t = tiny_trainer(
            "mcmc-fill",
            TrainConfig {
                iters: 40,
                init_points: 100,
                sh_degree: 0,
                max_gaussians: 2000,
                strategy: Setting::Mcmc,
                densify_every: 1,
                ..TrainConfig::default().with_densify_until(30)
            },
        );
        // 28 rounds (iterations 2 to 29): 1.05^28 = 3.9 would stop at 392
        assert_eq!(schedule::densify_rounds_left(&t.cfg, 0), 28);
        let mut last = t.len();
        while t.iteration() < t.cfg.iters {
            t.step().unwrap();
            let n = t.len();
            assert!(
                n == last || n >= (1.05 * last as f64) as usize || n == 2000,
                "{last} -> {n}"
            );
            last = n;
        }
        assert_eq!(t.len(), 2000);
    }
}
