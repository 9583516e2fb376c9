//! Higher-order derivatives and forward mode on the tape: gradients,
//! Hessian-vector products, dense Hessians and Jacobians by forward or
//! reverse mode, all from one engine.
//!
//! The tape is generic over its number type, so the same function recorded
//! on a `Tape<Dual<f64>>` instead of a `Tape<f64>` computes every local
//! partial together with its directional derivative. The backward sweep
//! then accumulates `∇f + ε·(H v)`: a Hessian-vector product from one
//! forward and one backward sweep (*forward-over-reverse*), at a small
//! constant times the cost of a gradient. Recorded on a `Tape<DualN<f64,
//! N>>`, the same sweep yields `N` Hessian columns at once, and a forward
//! evaluation alone yields `N` Jacobian columns (forward mode).
//!
//! A function must therefore run on tapes of several scalar types, which a
//! closure cannot do (it has one type). Implement [`Function`] (real-valued)
//! or [`VectorFunction`] (vector-valued) instead, with a method generic over
//! `S: Scalar`; write constants as `S::from_f64(2.0)`, `S::one()` or
//! `tape.var(..)` leaves:
//!
//! ```
//! use chainrule::{hessian, Function, Scalar, Tape, Var};
//!
//! /// f(x, y) = x²·y + sin y
//! struct F;
//! impl Function for F {
//!     fn eval<'t, S: Scalar>(&self, _tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
//!         x[0].square() * x[1] + x[1].sin()
//!     }
//! }
//!
//! let h = hessian(&F, &[3.0, 0.5]);
//! // [[2y, 2x], [2x, −sin y]]
//! assert_eq!(h[0], vec![1.0, 6.0]);
//! assert_eq!(h[1][0], 6.0);
//! assert!((h[1][1] + 0.5f64.sin()).abs() < 1e-15);
//! ```
//!
//! For `f64` inputs a closure does: [`gradient_of`] takes one on plain
//! `Var`s, and [`hvp_of`] and [`hessian_of`] one on `Var`s of dual
//! numbers, where a plain `2.0` still works on either side of an operator
//! (`|x| x[0].square() * x[1] * 2.0`).
//!
//! Data the function needs (weights, targets) are fields of the
//! implementing struct. A function that can fail implements
//! [`TryFunction`] and uses the `try_` helpers, which return its error.
//!
//! Examples: `examples/newton.rs` (Newton's method with exact Hessians,
//! quadratic convergence) and `examples/second_order_cost.rs` (what an HVP
//! and a dense Hessian cost against a gradient).
//!
//! Custom operations ([`Tape::custom_op`]) take part in second derivatives
//! when their vector-Jacobian product is written over the tape's scalar
//! `S` and computed from the inputs' values as recorded (which, on a tape
//! of dual numbers, carry tangents); a product computed from values
//! converted to `f64` would drop the second-order terms.

use crate::backward::jacobian;
use crate::dual::{Dual, DualN};
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};

/// A real-valued function of `n` inputs, written once for every scalar type
/// so that the helpers of this module can record it on a `Tape<f64>`, a
/// `Tape<Dual<f64>>` or a `Tape<DualN<f64, N>>`.
///
/// `eval` receives the tape and the inputs (recorded on it) and returns the
/// output, recorded on the same tape. See the [module documentation](self)
/// for an example.
pub trait Function {
    /// Computes the output from the inputs `x`, all on `tape`.
    fn eval<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S>;
}

/// A vector-valued function of `n` inputs, written once for every scalar
/// type (see [`Function`]); every [`Function`] is one with a single output.
///
/// ```
/// use chainrule::{jacobian_auto, Scalar, Tape, Var, VectorFunction};
/// /// polar to Cartesian: (r, θ) ↦ (r cos θ, r sin θ)
/// struct Polar;
/// impl VectorFunction for Polar {
///     fn eval_all<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
///         vec![x[0] * x[1].cos(), x[0] * x[1].sin()]
///     }
/// }
/// let j = jacobian_auto(&Polar, &[2.0, 0.0]);
/// assert_eq!(j, vec![vec![1.0, 0.0], vec![0.0, 2.0]]);
/// ```
pub trait VectorFunction {
    /// Computes the outputs from the inputs `x`, all on `tape`.
    fn eval_all<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>>;
}

impl<F: Function> VectorFunction for F {
    fn eval_all<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
        vec![self.eval(tape, x)]
    }
}

/// A real-valued function whose evaluation can fail (an interpreter of
/// user input, say), for [`try_gradient`], [`try_hvp`] and
/// [`try_grad_hessian`]: an error ends the computation and is handed back
/// instead of a panic. Every [`Function`] is one that never fails.
///
/// ```
/// use chainrule::{try_grad_hessian, Scalar, Tape, TryFunction, Var};
/// /// x^k for a k given at run time, which must be non-negative
/// struct Power(i32);
/// impl TryFunction for Power {
///     type Error = String;
///     fn try_eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>])
///         -> Result<Var<'t, S>, String> {
///         if self.0 < 0 { return Err(format!("negative power {}", self.0)); }
///         Ok(x[0].powi(self.0))
///     }
/// }
/// assert_eq!(try_grad_hessian(&Power(3), &[2.0]).unwrap().hessian, vec![vec![12.0]]);
/// assert!(try_grad_hessian(&Power(-1), &[2.0]).is_err());
/// ```
pub trait TryFunction {
    /// What a failed evaluation reports.
    type Error;
    /// Computes the output from the inputs `x`, all on `tape`, or fails.
    fn try_eval<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[Var<'t, S>],
    ) -> Result<Var<'t, S>, Self::Error>;
}

impl<F: Function + ?Sized> TryFunction for F {
    type Error = std::convert::Infallible;
    fn try_eval<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[Var<'t, S>],
    ) -> Result<Var<'t, S>, Self::Error> {
        Ok(self.eval(tape, x))
    }
}

/// A real-valued function that records its own inputs: given their values
/// (which on a tape of dual numbers carry the seeded tangents), it creates
/// one leaf per value on `tape`, in order, and returns those leaves with
/// the output. This suits an interpreter that makes its own leaves (to name
/// them, say); every [`TryFunction`] (and so every [`Function`]) is one,
/// whose leaves are made with [`Tape::vars`]. The helpers [`try_gradient`],
/// [`try_hvp`] and [`try_grad_hessian`] accept any `TryRecord`.
///
/// ```
/// use chainrule::{try_grad_hessian, Scalar, Tape, TryRecord, Var};
/// /// x·y, with leaves made by the function itself
/// struct Product;
/// impl TryRecord for Product {
///     type Error = std::convert::Infallible;
///     fn try_record<'t, S: Scalar>(&self, tape: &'t Tape<S>, x: &[S])
///         -> Result<(Vec<Var<'t, S>>, Var<'t, S>), Self::Error> {
///         let leaves: Vec<Var<'t, S>> = x.iter().map(|&v| tape.var(v)).collect();
///         let y = leaves[0] * leaves[1];
///         Ok((leaves, y))
///     }
/// }
/// let r = try_grad_hessian(&Product, &[2.0, 3.0]).unwrap();
/// assert_eq!(r.gradient, vec![3.0, 2.0]);
/// assert_eq!(r.hessian, vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
/// ```
pub trait TryRecord {
    /// What a failed evaluation reports.
    type Error;
    /// Creates one leaf per value of `x` on `tape` (in order) and computes
    /// the output from them; returns the leaves and the output, or fails.
    #[allow(clippy::type_complexity)]
    fn try_record<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[S],
    ) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), Self::Error>;
}

impl<F: TryFunction + ?Sized> TryRecord for F {
    type Error = F::Error;
    fn try_record<'t, S: Scalar>(
        &self,
        tape: &'t Tape<S>,
        x: &[S],
    ) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), Self::Error> {
        let xs = tape.vars(x);
        let y = self.try_eval(tape, &xs)?;
        Ok((xs, y))
    }
}

/// Runs `f.try_record` and checks what it returned: one leaf per input,
/// everything on `tape`.
#[allow(clippy::type_complexity)]
fn record<'t, S: Scalar, F: TryRecord + ?Sized>(
    f: &F,
    tape: &'t Tape<S>,
    x: &[S],
    what: &str,
) -> Result<(Vec<Var<'t, S>>, Var<'t, S>), F::Error> {
    let (xs, y) = f.try_record(tape, x)?;
    assert_eq!(
        xs.len(),
        x.len(),
        "{what}: the function recorded {} leaves for {} inputs",
        xs.len(),
        x.len()
    );
    for v in xs.iter().chain(std::iter::once(&y)) {
        check_tape(tape, v, what);
    }
    Ok((xs, y))
}

/// The value of a computation that cannot fail.
fn infallible<R>(r: Result<R, std::convert::Infallible>) -> R {
    match r {
        Ok(v) => v,
        Err(e) => match e {},
    }
}

/// Runs `f` on a cleared tape of scalar type `S` that is kept between
/// calls (one per scalar type and thread), so repeated helpers (Newton
/// steps, many Hessian-vector products) reuse warm memory: a fresh large
/// tape costs page faults on every call, which for tapes of dual numbers
/// cost several times the arithmetic. A nested call (a function that calls
/// a helper itself) gets a tape of its own.
fn with_tape<S: Scalar, R>(f: impl FnOnce(&mut Tape<S>) -> R) -> R {
    use std::any::Any;
    use std::cell::RefCell;
    thread_local! {
        static TAPES: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }
    let cached = TAPES.with(|c| {
        let mut c = c.borrow_mut();
        let pos = c.iter().position(|t| t.is::<Tape<S>>())?;
        c.swap_remove(pos).downcast::<Tape<S>>().ok()
    });
    let mut tape = cached.unwrap_or_else(|| Box::new(Tape::<S>::with_capacity(64)));
    tape.clear();
    let r = f(&mut tape);
    tape.clear();
    TAPES.with(|c| {
        let mut c = c.borrow_mut();
        if !c.iter().any(|t| t.is::<Tape<S>>()) {
            c.push(tape);
        }
    });
    r
}

/// Checks that a function's result lives on the tape it was given.
fn check_tape<S: Scalar>(tape: &Tape<S>, y: &Var<'_, S>, what: &str) {
    assert!(
        std::ptr::eq(tape, y.tape()),
        "{what}: the function returned a value recorded on another tape"
    );
}

/// The value and gradient of `f` at `x`, by one forward and one reverse
/// sweep on a `Tape<T>`.
///
/// ```
/// use chainrule::{gradient, Function, Scalar, Tape, Var};
/// struct SumSq;
/// impl Function for SumSq {
///     fn eval<'t, S: Scalar>(&self, t: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
///         x.iter().fold(t.var(S::zero()), |acc, &xi| acc + xi.square())
///     }
/// }
/// let (v, g) = gradient(&SumSq, &[1.0, 2.0]);
/// assert_eq!((v, g), (5.0, vec![2.0, 4.0]));
/// ```
pub fn gradient<T: Scalar, F: Function + ?Sized>(f: &F, x: &[T]) -> (T, Vec<T>) {
    infallible(try_gradient(f, x))
}

/// [`gradient`] of a function that can fail: its first error, if any.
pub fn try_gradient<T: Scalar, F: TryRecord + ?Sized>(
    f: &F,
    x: &[T],
) -> Result<(T, Vec<T>), F::Error> {
    with_tape(|tape: &mut Tape<T>| {
        let tape = &*tape;
        let (xs, y) = record(f, tape, x, "gradient")?;
        let g = y.backward().wrt_all(&xs);
        Ok((y.value(), g))
    })
}

/// A Hessian-vector product and the first-order quantities that come with
/// it (see [`hvp`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Hvp<T> {
    /// f(x).
    pub value: T,
    /// ∇f(x).
    pub gradient: Vec<T>,
    /// H(x)·v, where H is the Hessian of f at x.
    pub hvp: Vec<T>,
}

/// The Hessian-vector product `H(x)·v` of a real-valued `f` (with `f(x)`
/// and `∇f(x)`), by forward-over-reverse: one forward and one backward
/// sweep on a `Tape<Dual<T>>` whose inputs are `x + v·ε`. Exact up to
/// rounding (no finite differences); costs a small constant times a
/// gradient, whatever the dimension.
///
/// ```
/// use chainrule::{hvp, Function, Scalar, Tape, Var};
/// /// f = x·y²: H = [[0, 2y], [2y, 2x]]
/// struct F;
/// impl Function for F {
///     fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
///         x[0] * x[1].square()
///     }
/// }
/// let r = hvp(&F, &[2.0, 3.0], &[1.0, -1.0]);
/// assert_eq!(r.value, 18.0);
/// assert_eq!(r.gradient, vec![9.0, 12.0]);
/// assert_eq!(r.hvp, vec![-6.0, 6.0 - 4.0]);
/// ```
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn hvp<T: Scalar, F: Function + ?Sized>(f: &F, x: &[T], v: &[T]) -> Hvp<T> {
    infallible(try_hvp(f, x, v))
}

/// [`hvp`] of a function that can fail: its first error, if any.
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn try_hvp<T: Scalar, F: TryRecord + ?Sized>(
    f: &F,
    x: &[T],
    v: &[T],
) -> Result<Hvp<T>, F::Error> {
    hvp_with(x, v, |tape, seeded| record(f, tape, seeded, "hvp"))
}

/// [`try_hvp`] with the function's recording given as a closure: on a
/// tape of dual numbers, the leaves and the output from the inputs
/// `x + v·ε`.
#[allow(clippy::type_complexity)]
fn hvp_with<T: Scalar, E>(
    x: &[T],
    v: &[T],
    rec: impl for<'t> FnOnce(
        &'t Tape<Dual<T>>,
        &[Dual<T>],
    ) -> Result<(Vec<Var<'t, Dual<T>>>, Var<'t, Dual<T>>), E>,
) -> Result<Hvp<T>, E> {
    assert_eq!(
        x.len(),
        v.len(),
        "hvp: the point has {} coordinates but the direction {}",
        x.len(),
        v.len()
    );
    with_tape(|tape: &mut Tape<Dual<T>>| {
        let tape = &*tape;
        let seeded: Vec<Dual<T>> = x.iter().zip(v).map(|(&a, &b)| Dual::new(a, b)).collect();
        let (xs, y) = rec(tape, &seeded)?;
        let g = y.backward();
        let (gradient, hvp) = xs
            .iter()
            .map(|&xi| {
                let a = g.wrt(xi);
                (a.re, a.eps)
            })
            .unzip();
        Ok(Hvp {
            value: y.value().re,
            gradient,
            hvp,
        })
    })
}

/// The value and gradient of a closure on `f64` inputs: [`gradient`]
/// without a [`Function`] impl.
///
/// Write the closure in the call (or pass an `fn` item): one bound to a
/// name first is not inferred as one for every tape's lifetime, and does
/// not compile.
///
/// ```
/// let (v, g) = chainrule::gradient_of(|x| x[0] * x[1].sin() + 1.0, &[2.0, 0.0]);
/// assert_eq!((v, g), (1.0, vec![0.0, 2.0]));
/// ```
///
/// # Panics
/// If the closure returns a value recorded on another tape.
pub fn gradient_of<F>(f: F, x: &[f64]) -> (f64, Vec<f64>)
where
    F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
{
    with_tape(|tape: &mut Tape<f64>| {
        let (xs, y) = record_closure(&f, tape, x, "gradient_of");
        (y.value(), y.backward().wrt_all(&xs))
    })
}

/// [`hvp`] of a closure on `f64` inputs, given them as `Var`s of
/// [`Dual`] numbers (one forward and one backward sweep); a plain `f64`
/// works on either side of `+ − × ÷` (and in `+=` …) and as the second
/// argument of `min`, `max`, `powf`, `atan2`, `hypot` and `clamp`. A
/// branch on a value reads its real part: `x[0].value().re > 0.0`. Write
/// the closure in the call, as for [`gradient_of`].
///
/// ```
/// // f = x·y²: H = [[0, 2y], [2y, 2x]]
/// let r = chainrule::hvp_of(|x| x[0] * x[1].square(), &[2.0, 3.0], &[1.0, -1.0]);
/// assert_eq!((r.value, r.gradient, r.hvp), (18.0, vec![9.0, 12.0], vec![-6.0, 2.0]));
/// ```
///
/// # Panics
/// If `x` and `v` differ in length, or the closure returns a value
/// recorded on another tape.
pub fn hvp_of<F>(f: F, x: &[f64], v: &[f64]) -> Hvp<f64>
where
    F: for<'t> Fn(&[Var<'t, Dual<f64>>]) -> Var<'t, Dual<f64>>,
{
    infallible(hvp_with(x, v, |tape, seeded| {
        Ok(record_closure(&f, tape, seeded, "hvp_of"))
    }))
}

/// Records a closure's value on `tape` from one leaf per input.
#[allow(clippy::type_complexity)]
fn record_closure<'t, S: Scalar, F>(
    f: &F,
    tape: &'t Tape<S>,
    x: &[S],
    what: &str,
) -> (Vec<Var<'t, S>>, Var<'t, S>)
where
    F: for<'u> Fn(&[Var<'u, S>]) -> Var<'u, S>,
{
    let xs = tape.vars(x);
    let y = f(&xs);
    check_tape(tape, &y, what);
    (xs, y)
}

/// Value, gradient and dense Hessian of a closure on `f64` inputs (see
/// [`hvp_of`] for what it is given): one Hessian-vector product per input,
/// each one forward and one backward sweep, column `j` being `H·e_j`. As
/// with [`grad_hessian`], the result is symmetric up to rounding (not
/// symmetrised). For many inputs a [`Function`] impl and
/// [`grad_hessian`] are faster (up to 8 columns a sweep).
///
/// ```
/// // Rosenbrock: (1 − x)² + 100 (y − x²)²
/// let r = chainrule::hessian_of(
///     |x| (1.0 - x[0]).square() + (x[1] - x[0].square()).square() * 100.0,
///     &[1.0, 1.0],
/// );
/// assert_eq!((r.value, r.gradient), (0.0, vec![0.0, 0.0]));
/// assert_eq!(r.hessian, vec![vec![802.0, -400.0], vec![-400.0, 200.0]]);
/// ```
///
/// # Panics
/// If the closure returns a value recorded on another tape.
pub fn hessian_of<F>(f: F, x: &[f64]) -> SecondOrder<f64>
where
    F: for<'t> Fn(&[Var<'t, Dual<f64>>]) -> Var<'t, Dual<f64>>,
{
    let n = x.len();
    let mut out = SecondOrder {
        value: 0.0,
        gradient: vec![0.0; n],
        hessian: vec![vec![0.0; n]; n],
    };
    // at least one sweep, so that a function of no inputs has a value
    for j in 0..n.max(1) {
        let mut e = vec![0.0; n];
        if j < n {
            e[j] = 1.0;
        }
        let r = infallible(hvp_with(x, &e, |tape, seeded| {
            Ok(record_closure(&f, tape, seeded, "hessian_of"))
        }));
        out.value = r.value;
        out.gradient = r.gradient;
        // H·e_j is column j
        for (row, h) in out.hessian.iter_mut().zip(r.hvp) {
            row[j] = h;
        }
    }
    out
}

/// Value, gradient and dense Hessian of a real-valued function (see
/// [`grad_hessian`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SecondOrder<T> {
    /// f(x).
    pub value: T,
    /// ∇f(x), one entry per input.
    pub gradient: Vec<T>,
    /// `hessian[i][j] = ∂²f/∂xᵢ∂xⱼ`, in input order.
    pub hessian: Vec<Vec<T>>,
}

/// The dense Hessian `H[i][j] = ∂²f/∂xᵢ∂xⱼ` of a real-valued `f` at `x`,
/// in input order. See [`grad_hessian`] for how it is computed; meant for
/// small inputs (it has n² entries).
///
/// ```
/// use chainrule::{hessian, Function, Scalar, Tape, Var};
/// /// f = exp(x)·y: H = [[e^x y, e^x], [e^x, 0]]
/// struct F;
/// impl Function for F {
///     fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
///         x[0].exp() * x[1]
///     }
/// }
/// assert_eq!(hessian(&F, &[0.0, 2.0]), vec![vec![2.0, 1.0], vec![1.0, 0.0]]);
/// ```
pub fn hessian<T: Scalar, F: Function + ?Sized>(f: &F, x: &[T]) -> Vec<Vec<T>> {
    grad_hessian(f, x).hessian
}

/// Value, gradient and dense Hessian of a real-valued `f` at `x`.
///
/// Forward-over-reverse with several tangents at once: the inputs are
/// recorded on a `Tape<DualN<T, N>>` seeded with `N` unit directions, and
/// one backward sweep returns `N` Hessian columns (and the gradient). So
/// `n` inputs cost `⌈n/N⌉` forward-and-backward sweeps, `N` up to 8. The
/// result is symmetric up to rounding (it is not symmetrised).
///
/// ```
/// use chainrule::{grad_hessian, Function, Scalar, Tape, Var};
/// /// Rosenbrock: (1 − x)² + 100 (y − x²)²
/// struct Rosenbrock;
/// impl Function for Rosenbrock {
///     fn eval<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Var<'t, S> {
///         (-x[0] + S::one()).square() + (x[1] - x[0].square()).square() * S::from_f64(100.0)
///     }
/// }
/// let r = grad_hessian(&Rosenbrock, &[1.0, 1.0]);
/// assert_eq!(r.value, 0.0);
/// assert_eq!(r.gradient, vec![0.0, 0.0]);
/// assert_eq!(r.hessian, vec![vec![802.0, -400.0], vec![-400.0, 200.0]]);
/// ```
pub fn grad_hessian<T: Scalar, F: Function + ?Sized>(f: &F, x: &[T]) -> SecondOrder<T> {
    infallible(try_grad_hessian(f, x))
}

/// [`grad_hessian`] of a function that can fail: its first error, if any.
/// This is what a command-line `--hessian` over a parsed expression uses.
pub fn try_grad_hessian<T: Scalar, F: TryRecord + ?Sized>(
    f: &F,
    x: &[T],
) -> Result<SecondOrder<T>, F::Error> {
    match x.len() {
        0 | 1 => grad_hessian_n::<T, F, 1>(f, x),
        2 => grad_hessian_n::<T, F, 2>(f, x),
        3 | 4 => grad_hessian_n::<T, F, 4>(f, x),
        _ => grad_hessian_n::<T, F, 8>(f, x),
    }
}

/// The inputs of one chunk: `x` with unit tangents on `start..start + N`.
fn seed_chunk<T: Scalar, const N: usize>(x: &[T], start: usize) -> Vec<DualN<T, N>> {
    x.iter()
        .enumerate()
        .map(|(i, &xi)| {
            let mut eps = [T::zero(); N];
            if (start..start + N).contains(&i) {
                eps[i - start] = T::one();
            }
            DualN::new(xi, eps)
        })
        .collect()
}

fn grad_hessian_n<T: Scalar, F: TryRecord + ?Sized, const N: usize>(
    f: &F,
    x: &[T],
) -> Result<SecondOrder<T>, F::Error> {
    let n = x.len();
    let mut out = SecondOrder {
        value: T::zero(),
        gradient: vec![T::zero(); n],
        hessian: vec![vec![T::zero(); n]; n],
    };
    with_tape(|tape: &mut Tape<DualN<T, N>>| {
        // At least one pass, so that a function of no inputs still has a value.
        let mut start = 0;
        loop {
            tape.clear();
            let tape = &*tape;
            let (xs, y) = record(f, tape, &seed_chunk(x, start), "hessian")?;
            out.value = y.value().re;
            let g = y.backward();
            let width = N.min(n.saturating_sub(start));
            for (i, &xi) in xs.iter().enumerate() {
                let a = g.wrt(xi);
                out.gradient[i] = a.re;
                out.hessian[i][start..start + width].copy_from_slice(&a.eps[..width]);
            }
            start += N;
            if start >= n {
                return Ok(());
            }
        }
    })?;
    Ok(out)
}

/// The Jacobian `J[i][j] = ∂fᵢ/∂xⱼ` of a vector function by forward mode:
/// the inputs are recorded on a `Tape<DualN<T, N>>` seeded with `N` unit
/// directions, and the outputs' tangents are `N` columns; no backward
/// sweep. `n` inputs cost `⌈n/N⌉` evaluations (`N` up to 8): the cheap
/// direction when inputs are few and outputs many.
///
/// ```
/// use chainrule::{jacobian_forward, Scalar, Tape, Var, VectorFunction};
/// struct F; // (x·y, x + y, sin x)
/// impl VectorFunction for F {
///     fn eval_all<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
///         vec![x[0] * x[1], x[0] + x[1], x[0].sin()]
///     }
/// }
/// let j = jacobian_forward(&F, &[2.0, 3.0]);
/// assert_eq!(j, vec![vec![3.0, 2.0], vec![1.0, 1.0], vec![2f64.cos(), 0.0]]);
/// ```
pub fn jacobian_forward<T: Scalar, F: VectorFunction + ?Sized>(f: &F, x: &[T]) -> Vec<Vec<T>> {
    match x.len() {
        0 | 1 => jacobian_forward_n::<T, F, 1>(f, x),
        2 => jacobian_forward_n::<T, F, 2>(f, x),
        3 | 4 => jacobian_forward_n::<T, F, 4>(f, x),
        _ => jacobian_forward_n::<T, F, 8>(f, x),
    }
}

fn jacobian_forward_n<T: Scalar, F: VectorFunction + ?Sized, const N: usize>(
    f: &F,
    x: &[T],
) -> Vec<Vec<T>> {
    let n = x.len();
    let mut jac: Vec<Vec<T>> = Vec::new();
    with_tape(|tape: &mut Tape<DualN<T, N>>| {
        let mut start = 0;
        loop {
            tape.clear();
            let tape = &*tape;
            let xs = tape.vars(&seed_chunk(x, start));
            let ys = f.eval_all(tape, &xs);
            if start == 0 {
                jac = vec![vec![T::zero(); n]; ys.len()];
            }
            assert_eq!(
                ys.len(),
                jac.len(),
                "jacobian_forward: the function returned a different number of outputs"
            );
            let width = N.min(n.saturating_sub(start));
            for (row, y) in jac.iter_mut().zip(&ys) {
                check_tape(tape, y, "jacobian_forward");
                row[start..start + width].copy_from_slice(&y.value().eps[..width]);
            }
            start += N;
            if start >= n {
                break;
            }
        }
    });
    jac
}

/// The Jacobian `J[i][j] = ∂fᵢ/∂xⱼ` of a vector function by reverse mode:
/// one forward evaluation on a `Tape<T>`, then one backward sweep per
/// output (see [`crate::jacobian`]): the cheap direction when outputs are
/// few and inputs many.
///
/// ```
/// use chainrule::{jacobian_reverse, Scalar, Tape, Var, VectorFunction};
/// struct F; // x·y
/// impl VectorFunction for F {
///     fn eval_all<'t, S: Scalar>(&self, _: &'t Tape<S>, x: &[Var<'t, S>]) -> Vec<Var<'t, S>> {
///         vec![x[0] * x[1]]
///     }
/// }
/// assert_eq!(jacobian_reverse(&F, &[2.0, 3.0]), vec![vec![3.0, 2.0]]);
/// ```
pub fn jacobian_reverse<T: Scalar, F: VectorFunction + ?Sized>(f: &F, x: &[T]) -> Vec<Vec<T>> {
    with_tape(|tape: &mut Tape<T>| {
        let tape = &*tape;
        let xs = tape.vars(x);
        let ys = f.eval_all(tape, &xs);
        for y in &ys {
            check_tape(tape, y, "jacobian_reverse");
        }
        jacobian(&ys, &xs)
    })
}

/// The Jacobian `J[i][j] = ∂fᵢ/∂xⱼ` by whichever mode is cheaper for its
/// shape: forward ([`jacobian_forward`]) when there are at most as many
/// inputs as outputs, reverse ([`jacobian_reverse`]) otherwise. The two
/// agree up to rounding.
///
/// The number of outputs is found by one evaluation on a `Tape<T>`, which
/// reverse mode then reuses.
pub fn jacobian_auto<T: Scalar, F: VectorFunction + ?Sized>(f: &F, x: &[T]) -> Vec<Vec<T>> {
    let reverse = with_tape(|tape: &mut Tape<T>| {
        let tape = &*tape;
        let xs = tape.vars(x);
        let ys = f.eval_all(tape, &xs);
        if x.len() <= ys.len() {
            return None;
        }
        for y in &ys {
            check_tape(tape, y, "jacobian_auto");
        }
        Some(jacobian(&ys, &xs))
    });
    reverse.unwrap_or_else(|| jacobian_forward(f, x))
}
