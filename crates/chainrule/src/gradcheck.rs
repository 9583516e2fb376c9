//! Gradient checking: the tape's gradient against finite differences.

use crate::scalar::Scalar;
use crate::tape::{Tape, Var};

/// Settings of [`gradcheck`].
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Relative step: input `x` is perturbed by `step · max(1, |x|)`.
    pub step: f64,
    /// An input passes if its absolute error is at most `atol` ...
    pub atol: f64,
    /// ... or its relative error at most `rtol`.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    /// Five-point differences with step 1e-3 are accurate to about 1e-10
    /// on smooth f64 functions; the tolerances leave room for that.
    fn default() -> Self {
        GradcheckOptions {
            step: 1e-3,
            atol: 1e-7,
            rtol: 1e-6,
        }
    }
}

/// The check of one input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputCheck {
    /// Position among the inputs.
    pub index: usize,
    /// The input's value.
    pub x: f64,
    /// ∂f/∂x from the tape.
    pub analytic: f64,
    /// ∂f/∂x from finite differences.
    pub numeric: f64,
    /// |analytic − numeric|.
    pub abs_error: f64,
    /// |analytic − numeric| / max(|analytic|, |numeric|) (0 when both are 0).
    pub rel_error: f64,
    /// Whether this input is within the tolerances, or within the finite
    /// differences' own rounding noise (see [`gradcheck`]).
    pub passed: bool,
}

/// What [`gradcheck`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// The function's value at the point.
    pub value: f64,
    /// One entry per input.
    pub inputs: Vec<InputCheck>,
}

impl GradcheckReport {
    /// Whether every input passed.
    pub fn passed(&self) -> bool {
        self.inputs.iter().all(|c| c.passed)
    }
    /// The largest absolute error.
    pub fn max_abs_error(&self) -> f64 {
        self.inputs.iter().map(|c| c.abs_error).fold(0.0, f64::max)
    }
    /// The largest relative error.
    pub fn max_rel_error(&self) -> f64 {
        self.inputs.iter().map(|c| c.rel_error).fold(0.0, f64::max)
    }
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "gradcheck at value {}:", self.value)?;
        for c in &self.inputs {
            writeln!(
                f,
                "  input {:>3} x={:<12.6} tape={:<22.15e} fd={:<22.15e} abs={:.2e} rel={:.2e} {}",
                c.index,
                c.x,
                c.analytic,
                c.numeric,
                c.abs_error,
                c.rel_error,
                if c.passed { "ok" } else { "FAIL" }
            )?;
        }
        Ok(())
    }
}

/// Compares the tape's gradient of `f` at `x` with five-point central
/// finite differences, input by input.
///
/// The tolerances of [`GradcheckOptions::default`] suit `f64`. In a
/// scalar type of lower precision the differences themselves are only as
/// good as the function's values: each is rounded to the type's machine
/// epsilon ε, so the quotient carries an error of about
/// ε · (|f(x−2h)| + 8|f(x−h)| + 8|f(x+h)| + |f(x+2h)|) / 12h. An input
/// whose error is within 8 times that also passes: in `f32` a right
/// gradient then passes with the default options, and a wrong one (off by
/// more than about 10⁻⁴ of the function's size) still fails. In `f64`
/// that allowance is some 10⁻¹² of the function's size, below the
/// default tolerances.
///
/// ```
/// use chainrule::{gradcheck, GradcheckOptions};
/// let report = gradcheck(|x| (x[0] * x[1]).sin() + x[0].exp(), &[0.3, -1.2],
///                        GradcheckOptions::default());
/// assert!(report.passed(), "{report}");
/// ```
pub fn gradcheck<T, F>(f: F, x: &[T], opts: GradcheckOptions) -> GradcheckReport
where
    T: Scalar,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let mut tape = Tape::<T>::default();
    let (value, analytic) = {
        let xs = tape.vars(x);
        let y = f(&xs);
        (y.value().to_f64(), y.backward().wrt_all(&xs))
    };
    let mut eval = |pt: &[T]| -> f64 {
        tape.clear();
        let xs = tape.vars(pt);
        f(&xs).value().to_f64()
    };
    let eps = machine_epsilon::<T>();
    let mut inputs = Vec::with_capacity(x.len());
    let mut pt = x.to_vec();
    for i in 0..x.len() {
        let xi = x[i].to_f64();
        let h = opts.step * xi.abs().max(1.0);
        let mut at = |k: f64| {
            pt[i] = T::from_f64(xi + k * h);
            eval(&pt)
        };
        let (m2, m1, p1, p2) = (at(-2.0), at(-1.0), at(1.0), at(2.0));
        pt[i] = x[i];
        let numeric = (m2 - 8.0 * m1 + 8.0 * p1 - p2) / (12.0 * h);
        let noise =
            8.0 * eps * (m2.abs() + 8.0 * m1.abs() + 8.0 * p1.abs() + p2.abs()) / (12.0 * h);
        let a = analytic[i].to_f64();
        let abs_error = (a - numeric).abs();
        let scale = a.abs().max(numeric.abs());
        let rel_error = if scale == 0.0 { 0.0 } else { abs_error / scale };
        inputs.push(InputCheck {
            index: i,
            x: xi,
            analytic: a,
            numeric,
            abs_error,
            rel_error,
            passed: abs_error <= opts.atol || rel_error <= opts.rtol || abs_error <= noise,
        });
    }
    GradcheckReport { value, inputs }
}

/// The machine epsilon of `T`'s values (2⁻⁵² for `f64`, 2⁻²³ for `f32`):
/// the gap between 1 and the next value, found by rounding `1 + e`.
fn machine_epsilon<T: Scalar>() -> f64 {
    let mut e = 1.0f64;
    while e > f64::EPSILON && T::from_f64(1.0 + e / 2.0).to_f64() != 1.0 {
        e /= 2.0;
    }
    e
}
