//! Adam with a learning rate per parameter (bias-corrected, as the JAX peer:
//! `p −= lr · m̂ / (√v̂ + ε)`).

use crate::simd::prefetch_bytes;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Adam's state for a flat parameter vector.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate of each parameter, read by [`Adam::step`] only;
    /// empty for a state built with [`Adam::zeroed`] (or
    /// [`Adam::from_state`] without rates), which is stepped at a rate
    /// given with each call ([`Adam::step_uniform`], [`Adam::step_rows`]).
    pub lr: Vec<f64>,
    /// First-moment decay (0.9).
    pub beta1: f64,
    /// Second-moment decay (0.999).
    pub beta2: f64,
    /// Denominator guard (1e-8).
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u32,
    id: u64,
}

/// A new identity for an optimiser state ([`Adam::id`]).
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One step's constants: decays, guard, rate, and the rate and scale
/// that carry the bias corrections.
#[derive(Clone, Copy, Debug)]
struct Step {
    b1: f64,
    b2: f64,
    eps: f64,
    lr: f64,
    /// `lr / bc1`, with `bc1 = 1 − β₁ᵗ`.
    rate: f64,
    /// `1 / √bc2`, with `bc2 = 1 − β₂ᵗ`.
    rsq: f64,
}

impl Step {
    /// The constants of step `t` (counted from 1) at rate `lr`.
    fn new(b1: f64, b2: f64, eps: f64, t: u32, lr: f64) -> Step {
        let (bc1, bc2) = bias_corrections(b1, b2, t);
        Step {
            b1,
            b2,
            eps,
            lr,
            rate: lr / bc1,
            rsq: 1.0 / bc2.sqrt(),
        }
    }

    /// Updates one parameter and its moments from its gradient `g`:
    /// `p −= (lr / bc1) · m / (√v · (1 / √bc2) + ε)`, as [`Adam::step`]
    /// does.
    #[inline(always)]
    fn update(&self, p: &mut f64, m: &mut f64, v: &mut f64, g: f64) {
        *m = self.b1 * *m + (1.0 - self.b1) * g;
        *v = self.b2 * *v + (1.0 - self.b2) * g * g;
        *p -= self.rate * *m / (v.sqrt() * self.rsq + self.eps);
    }
}

/// How many rows ahead [`Step::update_rows`] asks for the gradient and
/// copy rows it will read and write when they lie in longer rows (6 and
/// 12 measured alike).
const ROWS_AHEAD: usize = 12;

/// Adam's bias corrections `(1 − β₁ᵗ, 1 − β₂ᵗ)` at step `t`.
fn bias_corrections(b1: f64, b2: f64, t: u32) -> (f64, f64) {
    (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32))
}

/// A copy of [`Step::update_rows`] built with a target feature (`$name`,
/// `$feature`); callers check that the CPU has it.
macro_rules! update_rows_with {
    ($name:ident, $feature:literal) => {
        #[doc = concat!("[`Step::update_rows`] built with `", $feature, "` (callers check the CPU has it).")]
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name(
            &self,
            pmv: [&mut [f64]; 3],
            g: &[f32],
            c: &mut [f32],
            e: Option<&[f64]>,
            shape: [usize; 6],
            drawn: Option<(&[u32], Undrawn)>,
        ) -> Checked {
            self.update_rows(pmv, g, c, e, shape, drawn)
        }
    };
}

impl Step {
    /// [`Step::update_rows`] compiled for the widest vector unit the CPU
    /// has (AVX-512, AVX2, or the baseline's SSE2). The same operations in
    /// the same order on every path (division and square root are
    /// correctly rounded at any width, and nothing is fused into FMA), so
    /// the same bits.
    fn update_rows_best(
        &self,
        pmv: [&mut [f64]; 3],
        g: &[f32],
        c: &mut [f32],
        e: Option<&[f64]>,
        shape: [usize; 6],
        drawn: Option<(&[u32], Undrawn)>,
    ) -> Checked {
        #[cfg(target_arch = "x86_64")]
        match crate::simd::Simd::best() {
            // SAFETY: `best` returns a set only when the CPU has it
            crate::simd::Simd::Avx512 => {
                return unsafe { self.update_rows_avx512(pmv, g, c, e, shape, drawn) }
            }
            // SAFETY: as above
            crate::simd::Simd::Avx2 => {
                return unsafe { self.update_rows_avx2(pmv, g, c, e, shape, drawn) }
            }
            crate::simd::Simd::Generic => {}
        }
        self.update_rows(pmv, g, c, e, shape, drawn)
    }

    update_rows_with!(update_rows_avx512, "avx512f");
    update_rows_with!(update_rows_avx2, "avx2");

    /// Updates rows of `w` parameters (with their moments `pmv`) from
    /// gradient rows `g[r·gs + go..][..w]` (plus `e`), writing the new
    /// values as `f32` to `c[r·cs + co..][..w]`; `shape` is `[w, live, gs,
    /// go, cs, co]`. Each row's columns from `live` on are left alone
    /// when the update could not change them (see [`Step::quiet`]). With
    /// `drawn`, a row `r` whose `drawn[r]` is 0 is not read from `g`: it
    /// is updated with a gradient of +0 ([`Undrawn::Decay`]) or left alone
    /// ([`Undrawn::Skip`]).
    #[inline(always)]
    fn update_rows(
        &self,
        [p, m, v]: [&mut [f64]; 3],
        g: &[f32],
        c: &mut [f32],
        e: Option<&[f64]>,
        [w, live, gs, go, cs, co]: [usize; 6],
        drawn: Option<(&[u32], Undrawn)>,
    ) -> Checked {
        let mut seen = Checked::FINITE;
        // rows of longer rows (the SH groups' gradient and copy rows of a
        // Gaussian, 192 bytes each, visited with gaps): the group's span of
        // a row asked for ahead, so that the misses overlap (only the span:
        // as fast as the whole row, and no waste for narrow groups of wide
        // rows; `bench train` on a capture, Zen 2:
        // optimiser 14.4–15.3 → 12.1–13.9 ms). An undrawn row's gradients
        // are asked for too, though not read: testing `drawn` per row
        // measured slower (optimiser 12.5–12.6 against 12.1–12.2 ms), a
        // branch on the view that mispredicts
        let (g_at, c_at) = (g.as_ptr(), c.as_ptr());
        let ahead = gs > w || cs > w;
        let n_rows = g.len() / gs;
        let row_bytes = |stride: usize| stride * std::mem::size_of::<f32>();
        let rows = g.chunks_exact(gs).zip(c.chunks_exact_mut(cs));
        for (r, (gr, cr)) in rows.enumerate() {
            let next = r + ROWS_AHEAD;
            if ahead && next < n_rows {
                prefetch_bytes(g_at.wrapping_add(next * gs + go), row_bytes(w));
                prefetch_bytes(c_at.wrapping_add(next * cs + co), row_bytes(w));
            }
            let gr = match drawn {
                Some((d, Undrawn::Skip)) if d[r] == 0 => continue,
                Some((d, Undrawn::Decay)) if d[r] == 0 => None,
                _ => Some(&gr[go..go + w]),
            };
            let cr = &mut cr[co..co + w];
            let at = r * w..r * w + w;
            let (p, m, v) = (&mut p[at.clone()], &mut m[at.clone()], &mut v[at.clone()]);
            let er = e.map(|e| &e[at]);
            let (head, tail) = (0..live, live..w);
            self.update_span([&mut *p, &mut *m, &mut *v], gr, cr, er, head, &mut seen);
            if live < w && !self.quiet([p, m, v], gr, er, tail.clone()) {
                self.update_span([p, m, v], gr, cr, er, tail, &mut seen);
            }
        }
        seen
    }

    /// Updates entries `js` of one row (see [`Step::update_rows`]); `g`
    /// `None` is a gradient of +0 throughout (not read).
    #[inline(always)]
    fn update_span(
        &self,
        [p, m, v]: [&mut [f64]; 3],
        g: Option<&[f32]>,
        c: &mut [f32],
        e: Option<&[f64]>,
        js: std::ops::Range<usize>,
        seen: &mut Checked,
    ) {
        // slices of one length, so that the loops have no bounds checks
        let n = js.len();
        let (p, m, v) = (&mut p[js.clone()], &mut m[js.clone()], &mut v[js.clone()]);
        let (c, e) = (&mut c[js.clone()], e.map(|e| &e[js.clone()]));
        let (p, m, v, c) = (&mut p[..n], &mut m[..n], &mut v[..n], &mut c[..n]);
        let e = e.map(|e| &e[..n]);
        let mut one = |j: usize, g: f64| {
            let gi = match e {
                Some(e) => g + e[j],
                None => g,
            };
            self.update(&mut p[j], &mut m[j], &mut v[j], gi);
            seen.params_finite &= p[j].is_finite();
            c[j] = p[j] as f32;
        };
        match g {
            Some(g) => {
                let g = &g[js][..n];
                let mut finite = true;
                for j in 0..n {
                    finite &= g[j].is_finite();
                    one(j, g[j] as f64);
                }
                seen.grads_finite &= finite;
            }
            None => (0..n).for_each(|j| one(j, 0.0)),
        }
    }

    /// Whether the update would leave entries `js` of a row exactly as
    /// they are: every gradient (with `e`) is ±0, both moments +0 and the
    /// parameter finite, with decays in [0, 1], `ε > 0`, and the step's
    /// constants finite with a rate of +0 or above (`lr / bc1`: a finite
    /// `lr` can still overflow it). Then `m` and `v` stay +0 (`β·(+0) +
    /// (1 − β)·(±0) = +0`), the step is `(lr / bc1)·(+0) / (√(+0)·(1 /
    /// √bc2) + ε) = +0`, and `p − (+0) = p` (for `p = −0` too); the checks
    /// would pass, and the `f32` copy, which the caller keeps current, is
    /// unchanged.
    #[inline(always)]
    fn quiet(
        &self,
        [p, m, v]: [&[f64]; 3],
        g: Option<&[f32]>,
        e: Option<&[f64]>,
        js: std::ops::Range<usize>,
    ) -> bool {
        // one pass of plain loads and ORs (a loop the compiler vectorises):
        // `x << 1` drops the sign bit, so it is 0 exactly for ±0
        let n = js.len();
        let (p, m, v) = (&p[js.clone()], &m[js.clone()], &v[js.clone()]);
        let (m, v) = (&m[..n], &v[..n]);
        let e = e.map(|e| &e[js.clone()][..n]);
        let mut bits = 0u64;
        let mut finite = true;
        for j in 0..n {
            bits |= m[j].to_bits() | v[j].to_bits();
            if let Some(e) = e {
                bits |= e[j].to_bits() << 1;
            }
            finite &= p[j].is_finite();
        }
        if let Some(g) = g {
            let g = &g[js][..n];
            bits |= g.iter().fold(0, |b, x| b | u64::from(x.to_bits() << 1));
        }
        let unit = |b: f64| (0.0..=1.0).contains(&b);
        let constants = self.rate.is_finite()
            && self.rate.is_sign_positive()
            && self.rsq.is_finite()
            && self.eps > 0.0
            && unit(self.b1)
            && unit(self.b2);
        bits == 0 && finite && constants
    }
}

/// Rows of `width` values inside a buffer of longer rows: row `i` is
/// `data[i·stride + offset..][..width]` (what [`Adam::step_rows`] reads its
/// gradients from).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a, T> {
    /// The buffer, `stride` values per row.
    pub data: &'a [T],
    /// Values per row of `data`.
    pub stride: usize,
    /// Where in its row of `data` a row starts.
    pub offset: usize,
    /// Values per row.
    pub width: usize,
}

/// Rows inside a buffer of longer rows, written (see [`Rows`]; the width
/// is the [`Rows`] read with it).
#[derive(Debug)]
pub struct RowsMut<'a, T> {
    /// The buffer, `stride` values per row.
    pub data: &'a mut [T],
    /// Values per row of `data`.
    pub stride: usize,
    /// Where in its row of `data` a row starts.
    pub offset: usize,
}

/// What [`Adam::step_rows`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Every gradient read was finite.
    pub grads_finite: bool,
    /// Every updated parameter is finite.
    pub params_finite: bool,
}

impl Checked {
    /// Nothing non-finite seen (what a step over no rows reports).
    const FINITE: Checked = Checked {
        grads_finite: true,
        params_finite: true,
    };

    /// What two parts of one step found together.
    fn and(self, o: Checked) -> Checked {
        Checked {
            grads_finite: self.grads_finite & o.grads_finite,
            params_finite: self.params_finite & o.params_finite,
        }
    }
}

/// What [`Adam::step_rows_live`] does with a row its [`Live::drawn`]
/// marks as not drawn (its gradient row is then never read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undrawn {
    /// The update with a gradient of +0 (the moments decay and the
    /// parameter moves on its momentum): the bits of the plain update
    /// when the row's gradients are ±0, as they are for a Gaussian the
    /// view did not draw, without reading them.
    Decay,
    /// No update: parameters, moments and copy are left as they are
    /// (the step count still advances). A visible-only ("sparse") Adam,
    /// as gsplat's `visible_adam`: a different optimiser, not the same
    /// bits.
    Skip,
}

/// Which parts of the rows [`Adam::step_rows_live`] updates.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    /// Leading columns of a row that can get a gradient; the rest of a
    /// row is skipped while the update cannot change it (see
    /// [`Adam::step_rows_live`]).
    pub columns: usize,
    /// Per row, non-zero when the row can get a gradient (the trainer
    /// passes the projection's radii: 0 for a Gaussian the view did not
    /// draw), with what to do with the others; `None`: every row is read.
    pub drawn: Option<(&'a [u32], Undrawn)>,
}

impl Live<'_> {
    /// Every row read, the first `columns` of each live.
    pub fn columns(columns: usize) -> Self {
        Live {
            columns,
            drawn: None,
        }
    }
}

/// One of the two groups [`Adam::step_rows_pair`] updates together: its
/// state, parameters (rows of `grads.width` back to back), where its
/// gradients are, its columns of the shared copy, its rate and its live
/// columns (as the `columns` of a [`Live`]).
#[derive(Debug)]
pub struct RowGroup<'a> {
    /// The group's optimiser state.
    pub adam: &'a mut Adam,
    /// The group's parameters.
    pub params: &'a mut [f64],
    /// The group's gradient rows.
    pub grads: Rows<'a, f32>,
    /// A regulariser's gradient per parameter, added to `grads`.
    pub extra: Option<&'a [f64]>,
    /// Where the group's columns start in a row of the shared copy.
    pub copy_offset: usize,
    /// The group's learning rate.
    pub lr: f64,
    /// Leading columns of a row that can get a gradient.
    pub columns: usize,
}

impl Adam {
    /// Adam with the peer's constants and the given per-parameter rates.
    pub fn new(lr: Vec<f64>) -> Self {
        let n = lr.len();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            id: next_id(),
        }
    }

    /// Adam's state for `n` parameters that are always stepped at a rate
    /// given with the call ([`Adam::step_uniform`], [`Adam::step_rows`]):
    /// zero moments and no per-parameter rates (`lr` is empty, so
    /// [`Adam::step`] does not apply). The trainer's groups use it: a rate
    /// vector would be 8 bytes per parameter never read (472 MB at 10⁶
    /// Gaussians with SH degree 3).
    ///
    /// ```
    /// let mut a = splat::adam::Adam::zeroed(2);
    /// let mut p = vec![1.0, 1.0];
    /// assert!(a.lr.is_empty() && a.step_uniform(&mut p, &[2.0, 0.0], 0.1));
    /// assert!((p[0] - 0.9).abs() < 1e-6 && p[1] == 1.0);
    /// ```
    pub fn zeroed(n: usize) -> Self {
        Adam::from_state(Vec::new(), vec![0.0; n], vec![0.0; n], 0)
    }

    /// Rebuilds the state for a new parameter vector: entry `i` of the new
    /// state takes old entry `from[i]` (moments kept), or starts at zero
    /// moments when `from[i]` is `None`; `lr` gives the new rates.
    pub fn remap(&mut self, from: &[Option<usize>], lr: Vec<f64>) {
        assert_eq!(from.len(), lr.len(), "adam: remap length");
        let pick =
            |v: &[f64]| -> Vec<f64> { from.iter().map(|f| f.map_or(0.0, |i| v[i])).collect() };
        self.m = pick(&self.m);
        self.v = pick(&self.v);
        self.lr = lr;
        self.id = next_id();
    }

    /// The state's identity: every [`Adam::new`] and [`Adam::from_state`]
    /// gets a new one (a clone keeps it, [`Adam::remap`] gives a new one),
    /// so that a caller can tell that the state it last stepped was
    /// replaced (the trainer's density control rebuilds it whenever it
    /// changes the parameters).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One update of `params` from `grads`.
    ///
    /// ```
    /// let mut adam = splat::adam::Adam::new(vec![0.1]);
    /// let mut p = vec![1.0];
    /// adam.step(&mut p, &[2.0]);
    /// // the first bias-corrected step moves by lr in the gradient's sign
    /// assert!((p[0] - 0.9).abs() < 1e-6);
    /// ```
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        assert_eq!(params.len(), self.lr.len(), "adam: parameter count");
        assert_eq!(grads.len(), self.lr.len(), "adam: gradient count");
        self.t += 1;
        let (bc1, _) = bias_corrections(self.beta1, self.beta2, self.t);
        let mut k = Step::new(self.beta1, self.beta2, self.eps, self.t, 0.0);
        for i in 0..params.len() {
            // the per-parameter rate, in `Step::update`'s arithmetic
            (k.lr, k.rate) = (self.lr[i], self.lr[i] / bc1);
            k.update(&mut params[i], &mut self.m[i], &mut self.v[i], grads[i]);
        }
    }

    /// One update with the same learning rate `lr` for every parameter
    /// (the per-parameter rates are ignored), fused into one pass over
    /// parameters, gradients and moments that runs in parallel over
    /// blocks (each entry is updated on its own, so the result does not
    /// depend on the thread count). Returns whether every updated
    /// parameter is finite.
    ///
    /// ```
    /// let mut a = splat::adam::Adam::new(vec![0.0; 3]);
    /// let mut p = vec![1.0; 3];
    /// assert!(a.step_uniform(&mut p, &[2.0, -2.0, 0.0], 0.1));
    /// assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6 && p[2] == 1.0);
    /// ```
    pub fn step_uniform(&mut self, params: &mut [f64], grads: &[f64], lr: f64) -> bool {
        assert_eq!(params.len(), self.m.len(), "adam: parameter count");
        assert_eq!(grads.len(), self.m.len(), "adam: gradient count");
        let k = self.begin(lr);
        const BLOCK: usize = 4096;
        params
            .par_chunks_mut(BLOCK)
            .zip(grads.par_chunks(BLOCK))
            .zip(self.m.par_chunks_mut(BLOCK))
            .zip(self.v.par_chunks_mut(BLOCK))
            .map(|(((p, g), m), v)| {
                let mut finite = true;
                for i in 0..p.len() {
                    k.update(&mut p[i], &mut m[i], &mut v[i], g[i]);
                    finite &= p[i].is_finite();
                }
                finite
            })
            .reduce(|| true, |a, b| a & b)
    }

    /// Counts a step and returns its constants (uniform rate `lr`).
    fn begin(&mut self, lr: f64) -> Step {
        self.t += 1;
        Step::new(self.beta1, self.beta2, self.eps, self.t, lr)
    }

    /// [`Adam::step_uniform`] fused with the trainer's conversions: the
    /// gradient of parameter row `i` (`grads.width` values; `params` holds
    /// the rows back to back) is read as `f32` from row `i` of `grads`
    /// (plus `extra[j]`, in `f64`, when given: a regulariser's gradient),
    /// and each updated parameter is also written as `f32` into row `i` of
    /// `copy` (the scene the next render reads). One pass over the data,
    /// parallel over fixed blocks of rows, each entry updated on its own:
    /// the same bits as converting the gradients to `f64`, adding `extra`,
    /// [`Adam::step_uniform`] and converting the parameters to `f32`, on
    /// any number of threads.
    ///
    /// ```
    /// use splat::adam::{Adam, Rows, RowsMut};
    /// // two rows of 2 parameters; gradients and copies in rows of 3
    /// let mut a = Adam::new(vec![0.0; 4]);
    /// let mut p = vec![1.0; 4];
    /// let g = [2.0f32, -2.0, 9.0, 0.0, 2.0, 9.0];
    /// let mut copy = [0.0f32; 6];
    /// let grads = Rows { data: &g, stride: 3, offset: 0, width: 2 };
    /// let out = RowsMut { data: &mut copy, stride: 3, offset: 0 };
    /// let r = a.step_rows(&mut p, grads, None, out, 0.1);
    /// assert!(r.grads_finite && r.params_finite);
    /// assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6);
    /// assert!(p[2] == 1.0 && (p[3] - 0.9).abs() < 1e-6);
    /// assert_eq!(copy, [p[0] as f32, p[1] as f32, 0.0, p[2] as f32, p[3] as f32, 0.0]);
    /// ```
    pub fn step_rows(
        &mut self,
        params: &mut [f64],
        grads: Rows<'_, f32>,
        extra: Option<&[f64]>,
        copy: RowsMut<'_, f32>,
        lr: f64,
    ) -> Checked {
        let w = grads.width;
        self.step_rows_live(params, grads, extra, copy, lr, Live::columns(w))
    }

    /// [`Adam::step_rows`] where only the first `live.columns` columns of
    /// each row can be expected to get a gradient (the trainer's SH bands
    /// above the active degree): the rest of a row is updated only when
    /// the update could change it. When its gradients (and `extra`) are
    /// ±0, its moments +0 and its parameters finite (at a finite rate ≥
    /// 0), the update would leave all of it as it is, so it is skipped,
    /// and its `copy` is not written: the caller keeps `copy` holding the
    /// current parameters there. The same bits as [`Adam::step_rows`]
    /// whatever `live.columns` is (tested), only faster when the tails are
    /// quiet.
    ///
    /// With `live.drawn`, the gradient rows of the rows marked 0 are not
    /// read (they may hold anything): with [`Undrawn::Decay`] those rows
    /// get the update of a +0 gradient, the bits of [`Adam::step_rows`]
    /// when their gradients are ±0 (tested); with [`Undrawn::Skip`] they
    /// are left alone (`copy` too).
    ///
    /// ```
    /// use splat::adam::{Adam, Live, Rows, RowsMut, Undrawn};
    /// // two rows of one parameter; the second row's gradient is not read
    /// let (mut a, mut p, mut c) = (Adam::zeroed(2), vec![1.0, 1.0], [0.0f32; 2]);
    /// let gv = [2.0f32, f32::NAN];
    /// let g = Rows { data: &gv, stride: 1, offset: 0, width: 1 };
    /// let out = RowsMut { data: &mut c, stride: 1, offset: 0 };
    /// let radii: [u32; 2] = [3, 0];
    /// let live = Live { columns: 1, drawn: Some((&radii[..], Undrawn::Skip)) };
    /// let r = a.step_rows_live(&mut p, g, None, out, 0.1, live);
    /// assert!(r.grads_finite && (p[0] - 0.9).abs() < 1e-6 && p[1] == 1.0);
    /// assert_eq!(c, [p[0] as f32, 0.0]);
    /// ```
    pub fn step_rows_live(
        &mut self,
        params: &mut [f64],
        grads: Rows<'_, f32>,
        extra: Option<&[f64]>,
        copy: RowsMut<'_, f32>,
        lr: f64,
        live: Live<'_>,
    ) -> Checked {
        let w = grads.width;
        let (drawn, live) = (live.drawn, live.columns.min(w));
        let Some(rows) = self.rows_of(params, grads, extra, drawn) else {
            self.t += 1;
            return Checked::FINITE;
        };
        assert!(
            copy.offset + w <= copy.stride && copy.data.len() == rows * copy.stride,
            "adam: copy rows"
        );
        let k = self.begin(lr);
        // rows per block: about 4096 parameters
        let b = (4096 / w).max(1);
        let (gs, go, cs, co) = (grads.stride, grads.offset, copy.stride, copy.offset);
        // rows back to back in both buffers: a block is one long row (a
        // loop the compiler vectorises)
        let flat = gs == w && cs == w;
        params
            .par_chunks_mut(b * w)
            .zip(self.m.par_chunks_mut(b * w))
            .zip(self.v.par_chunks_mut(b * w))
            .zip(grads.data.par_chunks(b * gs))
            .zip(copy.data.par_chunks_mut(b * cs))
            .enumerate()
            .map(|(bi, ((((p, m), v), g), c))| {
                let e = extra.map(|e| &e[bi * b * w..bi * b * w + p.len()]);
                let n = p.len();
                let d = drawn.map(|(d, u)| (&d[bi * b..bi * b + n / w], u));
                let shape = if flat && live == w && d.is_none() {
                    [n, n, n, 0, n, 0]
                } else {
                    [w, live, gs, go, cs, co]
                };
                k.update_rows_best([p, m, v], g, c, e, shape, d)
            })
            .reduce(|| Checked::FINITE, Checked::and)
    }

    /// Checks the shapes [`Adam::step_rows_live`] and
    /// [`Adam::step_rows_pair`] take and returns the number of rows, or
    /// `None` for rows of width 0 (no parameters).
    fn rows_of(
        &self,
        params: &[f64],
        grads: Rows<'_, f32>,
        extra: Option<&[f64]>,
        drawn: Option<(&[u32], Undrawn)>,
    ) -> Option<usize> {
        let w = grads.width;
        assert_eq!(params.len(), self.m.len(), "adam: parameter count");
        if w == 0 {
            assert!(params.is_empty(), "adam: rows of width 0");
            return None;
        }
        assert_eq!(params.len() % w, 0, "adam: parameters in whole rows");
        let rows = params.len() / w;
        assert!(
            grads.offset + w <= grads.stride && grads.data.len() == rows * grads.stride,
            "adam: gradient rows"
        );
        if let Some(e) = extra {
            assert_eq!(e.len(), params.len(), "adam: extra gradient count");
        }
        if let Some((d, _)) = drawn {
            assert_eq!(d.len(), rows, "adam: one drawn flag per row");
        }
        Some(rows)
    }

    /// [`Adam::step_rows_live`] for two groups whose rows are the same
    /// Gaussians and share one `copy` buffer (rows of `copy_stride`
    /// values; each group writes its own columns, from
    /// [`RowGroup::copy_offset`]): the trainer's SH colours, whose DC and
    /// higher bands are separate groups with their own rates but read one
    /// gradient row and write one scene row per Gaussian. Both groups are
    /// updated block of rows by block of rows, so each row's gradient and
    /// copy are fetched from memory once instead of once per group. Each
    /// group gets exactly the bits [`Adam::step_rows_live`] would give it
    /// (tested), and its own [`Checked`].
    ///
    /// ```
    /// use splat::adam::{Adam, RowGroup, Rows};
    /// // two rows; group a owns column 0, group b columns 1 and 2
    /// let (mut a, mut b) = (Adam::zeroed(2), Adam::zeroed(4));
    /// let (mut pa, mut pb) = (vec![1.0; 2], vec![1.0; 4]);
    /// let g = [2.0f32, -2.0, 0.0, 2.0, 0.0, -2.0];
    /// let mut copy = [0.0f32; 6];
    /// let rows = |offset, width| Rows { data: &g[..], stride: 3, offset, width };
    /// let [ca, cb] = Adam::step_rows_pair(
    ///     [
    ///         RowGroup { adam: &mut a, params: &mut pa, grads: rows(0, 1), extra: None, copy_offset: 0, lr: 0.1, columns: 1 },
    ///         RowGroup { adam: &mut b, params: &mut pb, grads: rows(1, 2), extra: None, copy_offset: 1, lr: 0.01, columns: 2 },
    ///     ],
    ///     &mut copy,
    ///     3,
    ///     None,
    /// );
    /// assert!(ca.grads_finite && cb.params_finite);
    /// assert!((pa[0] - 0.9).abs() < 1e-6 && (pb[0] - 1.01).abs() < 1e-6 && pb[1] == 1.0);
    /// assert_eq!(copy[..3], [pa[0] as f32, pb[0] as f32, pb[1] as f32]);
    /// ```
    pub fn step_rows_pair(
        groups: [RowGroup<'_>; 2],
        copy: &mut [f32],
        copy_stride: usize,
        drawn: Option<(&[u32], Undrawn)>,
    ) -> [Checked; 2] {
        let [a, b] = groups;
        let rows_a = a.adam.rows_of(a.params, a.grads, a.extra, drawn);
        let rows_b = b.adam.rows_of(b.params, b.grads, b.extra, drawn);
        let (ra, rb) = match (rows_a, rows_b) {
            (Some(ra), Some(rb)) => (ra, rb),
            // a group of width 0: nothing to pair; step the other alone
            _ => {
                let mut out = [Checked::FINITE; 2];
                for (i, g) in [a, b].into_iter().enumerate() {
                    let c = RowsMut {
                        data: &mut *copy,
                        stride: copy_stride,
                        offset: g.copy_offset,
                    };
                    let live = Live {
                        columns: g.columns,
                        drawn,
                    };
                    out[i] = g
                        .adam
                        .step_rows_live(g.params, g.grads, g.extra, c, g.lr, live);
                }
                return out;
            }
        };
        assert_eq!(ra, rb, "adam: the paired groups have the same rows");
        for g in [&a, &b] {
            assert!(
                g.copy_offset + g.grads.width <= copy_stride && copy.len() == ra * copy_stride,
                "adam: copy rows"
            );
        }
        let (wa, wb) = (a.grads.width, b.grads.width);
        let (ka, kb) = (a.adam.begin(a.lr), b.adam.begin(b.lr));
        let shape = |g: &RowGroup<'_>| {
            let w = g.grads.width;
            [
                w,
                g.columns.min(w),
                g.grads.stride,
                g.grads.offset,
                copy_stride,
                g.copy_offset,
            ]
        };
        let (sa, sb) = (shape(&a), shape(&b));
        let (gsa, gsb) = (a.grads.stride, b.grads.stride);
        let (ea, eb) = (a.extra, b.extra);
        // rows per block: about 4096 parameters of the two groups together
        let n = (4096 / (wa + wb)).max(1);
        let (ma, va) = (&mut a.adam.m, &mut a.adam.v);
        let (mb, vb) = (&mut b.adam.m, &mut b.adam.v);
        let [ca, cb] = a
            .params
            .par_chunks_mut(n * wa)
            .zip(ma.par_chunks_mut(n * wa))
            .zip(va.par_chunks_mut(n * wa))
            .zip(b.params.par_chunks_mut(n * wb))
            .zip(mb.par_chunks_mut(n * wb))
            .zip(vb.par_chunks_mut(n * wb))
            .zip(a.grads.data.par_chunks(n * gsa))
            .zip(b.grads.data.par_chunks(n * gsb))
            .zip(copy.par_chunks_mut(n * copy_stride))
            .enumerate()
            .map(|(bi, ((((((((pa, ma), va), pb), mb), vb), ga), gb), c))| {
                let r0 = bi * n;
                let d = drawn.map(|(d, u)| (&d[r0..r0 + pa.len() / wa], u));
                let ea = ea.map(|e| &e[r0 * wa..r0 * wa + pa.len()]);
                let eb = eb.map(|e| &e[r0 * wb..r0 * wb + pb.len()]);
                let x = ka.update_rows_best([pa, ma, va], ga, c, ea, sa, d);
                let y = kb.update_rows_best([pb, mb, vb], gb, c, eb, sb, d);
                [x, y]
            })
            .reduce(
                || [Checked::FINITE; 2],
                |x, y| [x[0].and(y[0]), x[1].and(y[1])],
            );
        [ca, cb]
    }

    /// The first and second moments, one of each per parameter.
    pub fn moments(&self) -> (&[f64], &[f64]) {
        (&self.m, &self.v)
    }

    /// The first and second moments, taken out of the state (for a caller
    /// that rewrites them in place and builds a new state on them with
    /// [`Adam::from_state`], as the trainer's density control does).
    ///
    /// ```
    /// let a = splat::adam::Adam::from_state(Vec::new(), vec![0.5; 2], vec![1.0; 2], 7);
    /// assert_eq!(a.into_moments(), (vec![0.5; 2], vec![1.0; 2]));
    /// ```
    pub fn into_moments(self) -> (Vec<f64>, Vec<f64>) {
        (self.m, self.v)
    }

    /// Adam resumed from saved state: rates, moments and the step count
    /// (the moments of the same length; the rates of that length too, or
    /// empty for a state stepped only at a rate given with each call, as
    /// [`Adam::zeroed`]).
    ///
    /// ```
    /// let a = splat::adam::Adam::from_state(vec![0.1; 2], vec![0.5; 2], vec![1.0; 2], 7);
    /// assert_eq!(a.steps(), 7);
    /// assert_eq!(a.moments().0, &[0.5, 0.5]);
    /// ```
    pub fn from_state(lr: Vec<f64>, m: Vec<f64>, v: Vec<f64>, t: u32) -> Self {
        assert!(
            v.len() == m.len() && (lr.is_empty() || lr.len() == m.len()),
            "adam: state lengths"
        );
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m,
            v,
            t,
            id: next_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::three::scene::Rng;

    /// The fused update gives the bits of the unfused steps it replaces:
    /// gradients to `f64`, plus the regulariser's, `step_uniform`, the
    /// parameters to `f32`; over several steps, rows inside longer rows
    /// and a rate that changes.
    #[test]
    fn fused_rows_match_the_unfused_steps() {
        let mut r = Rng::new(7);
        for (rows, w, stride, off, extra) in [
            (5000, 3, 3, 0, false),
            (3001, 3, 48, 0, true),
            (3001, 45, 48, 3, false),
            (9000, 1, 1, 0, true),
        ] {
            let mut p: Vec<f64> = (0..rows * w).map(|_| r.normal()).collect();
            let mut q = p.clone();
            let (mut a, mut b) = (Adam::new(vec![0.0; p.len()]), Adam::new(vec![0.0; p.len()]));
            let mut copy = vec![0.0f32; rows * stride];
            for step in 0..4 {
                let g: Vec<f32> = (0..rows * stride).map(|_| r.normal() as f32).collect();
                let e: Vec<f64> = (0..rows * w).map(|_| 0.1 * r.normal()).collect();
                let lr = 0.01 * (step + 1) as f64;
                let got = a.step_rows(
                    &mut p,
                    Rows {
                        data: &g,
                        stride,
                        offset: off,
                        width: w,
                    },
                    extra.then_some(&e[..]),
                    RowsMut {
                        data: &mut copy,
                        stride,
                        offset: off,
                    },
                    lr,
                );
                assert_eq!(
                    got,
                    Checked {
                        grads_finite: true,
                        params_finite: true
                    }
                );
                let flat: Vec<f64> = (0..rows * w)
                    .map(|i| {
                        g[(i / w) * stride + off + i % w] as f64 + if extra { e[i] } else { 0.0 }
                    })
                    .collect();
                assert!(b.step_uniform(&mut q, &flat, lr));
                assert_eq!(
                    p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    q.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                assert_eq!(a.moments(), b.moments());
                for i in 0..rows * w {
                    assert_eq!(
                        copy[(i / w) * stride + off + i % w].to_bits(),
                        (q[i] as f32).to_bits()
                    );
                }
            }
            assert_eq!(a.steps(), b.steps());
        }
    }

    /// Skipping the quiet tails of rows gives the bits of the full update:
    /// rows whose tail is quiet, and rows that are not (a gradient, a
    /// regulariser's gradient, a moment of −0 or not zero, a non-finite
    /// parameter in the tail), with the copy holding the parameters.
    /// A quiet row skipped gives the full update's bits at every rate:
    /// one whose `lr / bc1` overflows (the full update then makes NaN), −0
    /// (which turns a −0 parameter into +0) and the ordinary ones.
    #[test]
    fn quiet_rows_match_the_full_update_at_extreme_rates() {
        for lr in [1.8e307, f64::MAX, -0.0, 0.0, 1e-300, 0.1] {
            let run = |columns: usize| {
                let mut a = Adam::zeroed(2);
                let mut p = vec![1.0, -0.0];
                let g = [0.0f32, -0.0];
                let mut c = [0.0f32; 2];
                let grads = Rows {
                    data: &g[..],
                    stride: 2,
                    offset: 0,
                    width: 2,
                };
                let out = RowsMut {
                    data: &mut c[..],
                    stride: 2,
                    offset: 0,
                };
                a.step_rows_live(&mut p, grads, None, out, lr, Live::columns(columns));
                let (m, v) = a.moments();
                let bits = |x: &[f64]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                (bits(&p), bits(m), bits(v))
            };
            assert_eq!(run(0), run(2), "lr {lr}");
        }
    }

    #[test]
    fn skipping_quiet_tails_keeps_the_bits() {
        let mut r = Rng::new(5);
        let (rows, w, stride, off, live) = (3001, 45, 48, 3, 9);
        for extra in [false, true] {
            let mut p: Vec<f64> = (0..rows * w).map(|_| r.normal()).collect();
            p[7 * w + 30] = f64::INFINITY;
            let (mut a, mut b) = (Adam::new(vec![0.0; p.len()]), Adam::new(vec![0.0; p.len()]));
            // moments of the tails zero, except in a few rows
            let (mut m0, mut v0) = (vec![0.0; p.len()], vec![0.0; p.len()]);
            for i in 0..rows * w {
                if i % w < live || i % 17 == 0 {
                    (m0[i], v0[i]) = (r.normal(), r.normal().abs());
                }
            }
            m0[11 * w + 40] = -0.0;
            for st in [&mut a, &mut b] {
                *st = Adam::from_state(vec![0.0; p.len()], m0.clone(), v0.clone(), 3);
            }
            let mut q = p.clone();
            let mut copy: Vec<f32> = vec![0.0; rows * stride];
            for i in 0..rows * w {
                copy[(i / w) * stride + off + i % w] = p[i] as f32;
            }
            let mut copy_b = copy.clone();
            for step in 0..3 {
                let g: Vec<f32> = (0..rows * stride)
                    .map(|i| match (i % stride >= off + live, i % 23 == step) {
                        (true, false) => {
                            if i % 2 == 0 {
                                0.0
                            } else {
                                -0.0
                            }
                        }
                        _ => r.normal() as f32,
                    })
                    .collect();
                let e: Vec<f64> = (0..rows * w)
                    .map(|i| {
                        if i % w < live || i % 29 == 0 {
                            r.normal()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let rows_of = |g| Rows {
                    data: g,
                    stride,
                    offset: off,
                    width: w,
                };
                let lr = 0.01 * (step + 1) as f64;
                let e = extra.then_some(&e[..]);
                let out = RowsMut {
                    data: &mut copy,
                    stride,
                    offset: off,
                };
                let got = a.step_rows_live(&mut p, rows_of(&g), e, out, lr, Live::columns(live));
                let out = RowsMut {
                    data: &mut copy_b,
                    stride,
                    offset: off,
                };
                let want = b.step_rows(&mut q, rows_of(&g), e, out, lr);
                assert_eq!(got, want);
                assert!(!got.params_finite, "the infinite parameter is seen");
                let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&p), bits(&q));
                assert_eq!(bits(a.moments().0), bits(b.moments().0));
                assert_eq!(bits(a.moments().1), bits(b.moments().1));
                let cb = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(cb(&copy), cb(&copy_b));
            }
        }
    }

    /// Rows marked as not drawn: with `Decay`, the bits of the plain
    /// update with zero gradients there (their gradient rows, NaN here,
    /// are not read); with `Skip`, left alone while the drawn rows get the
    /// plain update's bits. Rows inside longer rows, a tail of columns
    /// that is quiet in some rows, a regulariser's gradient, several steps.
    #[test]
    fn undrawn_rows_decay_without_reading_or_are_skipped() {
        let mut r = Rng::new(9);
        let (rows, w, stride, off, live) = (2500, 45, 48, 3, 9);
        let drawn: Vec<u32> = (0..rows).map(|i| u32::from(i % 3 == 1) * 7).collect();
        for extra in [false, true] {
            let p0: Vec<f64> = (0..rows * w).map(|_| r.normal()).collect();
            // moments of the tails zero in most rows (quiet tails)
            let (mut m0, mut v0) = (vec![0.0; p0.len()], vec![0.0; p0.len()]);
            for i in 0..rows * w {
                if i % w < live || i % 13 == 0 {
                    (m0[i], v0[i]) = (r.normal(), r.normal().abs());
                }
            }
            let state = || Adam::from_state(Vec::new(), m0.clone(), v0.clone(), 2);
            let (mut a, mut b, mut s) = (state(), state(), state());
            let (mut pa, mut pb, mut ps) = (p0.clone(), p0.clone(), p0.clone());
            let mut c0 = vec![0.0f32; rows * stride];
            for i in 0..rows * w {
                c0[(i / w) * stride + off + i % w] = p0[i] as f32;
            }
            let (mut ca, mut cb, mut cs) = (c0.clone(), c0.clone(), c0.clone());
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let fbits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for step in 0..3 {
                // gradients: NaN in undrawn rows, zero there for the plain update
                let g: Vec<f32> = (0..rows * stride)
                    .map(|i| match (drawn[i / stride], i % stride >= off + live) {
                        (0, _) => f32::NAN,
                        (_, true) if i % 5 != step => 0.0,
                        _ => r.normal() as f32,
                    })
                    .collect();
                let g0: Vec<f32> = g
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| if drawn[i / stride] == 0 { 0.0 } else { x })
                    .collect();
                let e: Vec<f64> = (0..rows * w)
                    .map(|i| if i % 11 == 0 { r.normal() } else { 0.0 })
                    .collect();
                let e = extra.then_some(&e[..]);
                let rows_of = |g| Rows {
                    data: g,
                    stride,
                    offset: off,
                    width: w,
                };
                fn out(data: &mut [f32], (stride, offset): (usize, usize)) -> RowsMut<'_, f32> {
                    RowsMut {
                        data,
                        stride,
                        offset,
                    }
                }
                let so = (stride, off);
                let lr = 0.01 * (step + 1) as f64;
                let mode = |u| Live {
                    columns: live,
                    drawn: Some((&drawn[..], u)),
                };
                let ga = a.step_rows_live(
                    &mut pa,
                    rows_of(&g),
                    e,
                    out(&mut ca, so),
                    lr,
                    mode(Undrawn::Decay),
                );
                let gb = b.step_rows(&mut pb, rows_of(&g0), e, out(&mut cb, so), lr);
                assert_eq!(ga, gb);
                assert_eq!(bits(&pa), bits(&pb));
                assert_eq!(bits(a.moments().0), bits(b.moments().0));
                assert_eq!(bits(a.moments().1), bits(b.moments().1));
                assert_eq!(fbits(&ca), fbits(&cb));
                // skip: the drawn rows as the plain update (from the same
                // state), the others unchanged
                let (pk, mk, vk, ck) = (
                    ps.clone(),
                    s.moments().0.to_vec(),
                    s.moments().1.to_vec(),
                    cs.clone(),
                );
                let mut plain = s.clone();
                let mut pp = ps.clone();
                let mut cp = cs.clone();
                plain.step_rows(&mut pp, rows_of(&g0), e, out(&mut cp, so), lr);
                let gs = s.step_rows_live(
                    &mut ps,
                    rows_of(&g),
                    e,
                    out(&mut cs, so),
                    lr,
                    mode(Undrawn::Skip),
                );
                assert!(gs.grads_finite && gs.params_finite);
                for i in 0..rows * w {
                    let j = (i / w) * stride + off + i % w;
                    let (want_p, want_m, want_v, want_c) = if drawn[i / w] == 0 {
                        (pk[i], mk[i], vk[i], ck[j])
                    } else {
                        (pp[i], plain.moments().0[i], plain.moments().1[i], cp[j])
                    };
                    assert_eq!(ps[i].to_bits(), want_p.to_bits(), "entry {i}");
                    assert_eq!(s.moments().0[i].to_bits(), want_m.to_bits());
                    assert_eq!(s.moments().1[i].to_bits(), want_v.to_bits());
                    assert_eq!(cs[j].to_bits(), want_c.to_bits());
                }
                assert_eq!(s.steps(), plain.steps());
            }
        }
    }

    /// Two groups stepped together give each the bits of stepping it
    /// alone, whatever the drawn rows (read, decayed or skipped), live
    /// columns (quiet tails left alone in most rows), regulariser and the
    /// blocks' boundaries (several blocks, row counts that are not a
    /// multiple of a block), and each its own finiteness report.
    #[test]
    fn paired_groups_match_the_groups_stepped_alone() {
        let mut r = Rng::new(21);
        // a row: 3 values of group a, then 45 of group b (the trainer's SH)
        let (stride, wa, wb) = (48, 3, 45);
        let cases = [
            // rows, drawn mode, group b's live columns, regulariser, a
            // non-finite gradient in group b
            (1usize, None, 9, false, false),
            (85, Some(Undrawn::Decay), 45, true, false),
            (86, None, 0, false, true),
            (1003, Some(Undrawn::Decay), 24, true, false),
            (700, Some(Undrawn::Skip), 9, false, false),
        ];
        for (case, &(rows, mode, live_b, with_extra, inf)) in cases.iter().enumerate() {
            // drawn flags without a short period (a block's slice taken
            // from the wrong row would read other flags)
            let drawn: Vec<u32> = (0..rows)
                .map(|_| u32::from(r.normal() > -0.4) * 3)
                .collect();
            let d = mode.map(|u| (&drawn[..], u));
            // group b's columns from `live_b` on are quiet (zero gradient,
            // moments and regulariser) in three rows of four
            let quiet = |i: usize| i % wb >= live_b && (i / wb) % 4 != 0;
            let pa0: Vec<f64> = (0..rows * wa).map(|_| r.normal()).collect();
            let pb0: Vec<f64> = (0..rows * wb).map(|_| r.normal()).collect();
            let state = |n: usize, r: &mut Rng, zero: &dyn Fn(usize) -> bool| {
                let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
                for i in 0..n {
                    if !zero(i) {
                        (m[i], v[i]) = (r.normal(), r.normal().abs());
                    }
                }
                Adam::from_state(Vec::new(), m, v, 4)
            };
            let sa = state(rows * wa, &mut r, &|i| i % 7 == 0);
            let sb = state(rows * wb, &mut r, &quiet);
            let ea: Vec<f64> = (0..rows * wa).map(|_| r.normal()).collect();
            let eb: Vec<f64> = (0..rows * wb)
                .map(|i| if quiet(i) { 0.0 } else { r.normal() })
                .collect();
            let (ea, eb) = match with_extra {
                true => (Some(&ea[..]), Some(&eb[..])),
                false => (None, None),
            };
            let mut g: Vec<f32> = (0..rows * stride)
                .map(|j| {
                    let (row, col) = (j / stride, j % stride);
                    match col >= 3 && quiet(row * wb + col - 3) {
                        true => 0.0,
                        false => r.normal() as f32,
                    }
                })
                .collect();
            if inf {
                // in a drawn row, in group b's columns only
                let row = drawn.iter().position(|&f| f > 0).expect("a drawn row");
                g[row * stride + 7] = f32::INFINITY;
            }
            let c0: Vec<f32> = (0..rows * stride).map(|_| r.normal() as f32).collect();
            let rows_at = |offset, width| Rows {
                data: &g[..],
                stride,
                offset,
                width,
            };
            // alone, one group after the other
            let (mut a1, mut b1, mut pa1, mut pb1, mut c1) =
                (sa.clone(), sb.clone(), pa0.clone(), pb0.clone(), c0.clone());
            fn out(data: &mut [f32], stride: usize, offset: usize) -> RowsMut<'_, f32> {
                RowsMut {
                    data,
                    stride,
                    offset,
                }
            }
            let live = |columns| Live { columns, drawn: d };
            let alone = [
                a1.step_rows_live(
                    &mut pa1,
                    rows_at(0, wa),
                    ea,
                    out(&mut c1, stride, 0),
                    0.02,
                    live(wa),
                ),
                b1.step_rows_live(
                    &mut pb1,
                    rows_at(3, wb),
                    eb,
                    out(&mut c1, stride, 3),
                    0.001,
                    live(live_b),
                ),
            ];
            // together
            let (mut a2, mut b2, mut pa2, mut pb2, mut c2) =
                (sa.clone(), sb.clone(), pa0.clone(), pb0.clone(), c0.clone());
            let paired = Adam::step_rows_pair(
                [
                    RowGroup {
                        adam: &mut a2,
                        params: &mut pa2,
                        grads: rows_at(0, wa),
                        extra: ea,
                        copy_offset: 0,
                        lr: 0.02,
                        columns: wa,
                    },
                    RowGroup {
                        adam: &mut b2,
                        params: &mut pb2,
                        grads: rows_at(3, wb),
                        extra: eb,
                        copy_offset: 3,
                        lr: 0.001,
                        columns: live_b,
                    },
                ],
                &mut c2,
                stride,
                d,
            );
            assert_eq!(paired, alone, "case {case}");
            assert_eq!(
                (paired[0].grads_finite, paired[1].grads_finite),
                (true, !inf),
                "case {case}"
            );
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&pa1), bits(&pa2), "case {case}");
            assert_eq!(bits(&pb1), bits(&pb2), "case {case}");
            for (x, y) in [(&a1, &a2), (&b1, &b2)] {
                assert_eq!(bits(x.moments().0), bits(y.moments().0), "case {case}");
                assert_eq!(bits(x.moments().1), bits(y.moments().1), "case {case}");
                assert_eq!(x.steps(), y.steps());
            }
            let fbits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(fbits(&c1), fbits(&c2), "case {case}");
            // the quiet tails were skipped: their copy is left as it was
            let kept = (0..rows * wb)
                .filter(|&i| quiet(i))
                .filter(|&i| {
                    let j = (i / wb) * stride + 3 + i % wb;
                    c2[j].to_bits() == c0[j].to_bits()
                })
                .count();
            assert_eq!(kept > 0, live_b < wb && rows > 1, "case {case}");
        }
    }

    /// The AVX-512 and AVX2 builds of the row update give the baseline's
    /// bits (those the CPU has; rows inside longer rows and back to back).
    #[test]
    fn every_vector_path_gives_the_baseline_bits() {
        let mut r = Rng::new(11);
        let k = Step::new(0.9, 0.999, 1e-8, 3, 0.003);
        for (rows, w, gs, go, extra, mode) in [
            (100, 45, 48, 3, true, None),
            (100, 45, 48, 3, true, Some(Undrawn::Decay)),
            (100, 3, 48, 0, false, Some(Undrawn::Skip)),
            (1, 4099, 4099, 0, false, None),
        ] {
            // every third row not drawn
            let drawn = mode.map(|u| ((0..rows).map(|r| (r % 3) as u32).collect::<Vec<_>>(), u));
            let init: Vec<Vec<f64>> = (0..3)
                .map(|j| {
                    (0..rows * w)
                        .map(|_| r.normal().abs() * (j + 1) as f64)
                        .collect()
                })
                .collect();
            let g: Vec<f32> = (0..rows * gs).map(|_| r.normal() as f32).collect();
            let e: Vec<f64> = (0..rows * w).map(|_| r.normal()).collect();
            let e = extra.then_some(&e[..]);
            let run = |path: usize| {
                let [mut p, mut m, mut v] = [0, 1, 2].map(|j| init[j].clone());
                let mut c = vec![0.0f32; rows * gs];
                let shape = [w, w, gs, go, gs, go];
                let pmv = [&mut p[..], &mut m[..], &mut v[..]];
                let d = drawn.as_ref().map(|(d, u)| (&d[..], *u));
                let seen = match path {
                    0 => k.update_rows(pmv, &g, &mut c, e, shape, d),
                    #[cfg(target_arch = "x86_64")]
                    1 => unsafe { k.update_rows_avx2(pmv, &g, &mut c, e, shape, d) },
                    #[cfg(target_arch = "x86_64")]
                    _ => unsafe { k.update_rows_avx512(pmv, &g, &mut c, e, shape, d) },
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!(),
                };
                let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let cb: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                (seen, bits(&p), bits(&m), bits(&v), cb)
            };
            let base = run(0);
            #[cfg(not(target_arch = "x86_64"))]
            let _ = base; // one path elsewhere
            #[cfg(target_arch = "x86_64")]
            for (path, feature) in [
                (1, std::is_x86_feature_detected!("avx2")),
                (2, std::is_x86_feature_detected!("avx512f")),
            ] {
                if feature {
                    assert!(run(path) == base, "path {path} differs");
                }
            }
        }
    }

    /// A non-finite gradient is reported, and so is a parameter it makes
    /// non-finite.
    #[test]
    fn fused_rows_report_non_finite_values() {
        // one step over two rows of two parameters
        fn step(a: &mut Adam, p: &mut [f64], g: &[f32], extra: Option<&[f64]>) -> Checked {
            let mut c = vec![0.0f32; 4];
            let rows = Rows {
                data: g,
                stride: 2,
                offset: 0,
                width: 2,
            };
            let out = RowsMut {
                data: &mut c,
                stride: 2,
                offset: 0,
            };
            a.step_rows(p, rows, extra, out, 0.1)
        }
        let mut a = Adam::new(vec![0.0; 4]);
        assert_eq!(
            step(&mut a, &mut [0.0; 4], &[1.0, f32::NAN, 0.0, 0.0], None),
            Checked {
                grads_finite: false,
                params_finite: false
            }
        );
        assert_eq!(
            step(
                &mut a,
                &mut [0.0; 4],
                &[0.0; 4],
                Some(&[0.0, 0.0, f64::INFINITY, 0.0])
            ),
            Checked {
                grads_finite: true,
                params_finite: false
            }
        );
    }
}
