//! Forward mode: dual numbers.
//!
//! A dual number `a + b·ε` with `ε² = 0` carries a value `a` and a tangent
//! `b`; evaluating a function on `x + v·ε` yields `f(x) + (f'(x)·v)·ε`, so
//! one evaluation gives the function and its directional derivative
//! (a Jacobian-vector product). [`Dual`] has one tangent, [`DualN`] has `N`
//! at once (`N` directions in one pass, e.g. `N` columns of a Jacobian).
//!
//! Both implement [`Scalar`], so they serve in two ways:
//! - **directly**, without a tape: write a function generic over
//!   `S: Scalar` (or on `Dual` itself) and call it on dual numbers;
//!   [`jvp`] does this for a vector function;
//! - **as the number type of a tape**: a `Tape<Dual<f64>>` records local
//!   partials that carry tangents, so the backward sweep returns
//!   `∇f + ε·(H v)`, a Hessian-vector product from one forward and one
//!   backward sweep (forward-over-reverse; see [`crate::hvp`] and
//!   [`crate::hessian`]).
//!
//! Conventions: the elementary functions follow the tape's (`abs'(0) = 0`,
//! `atan2` and `hypot` have derivative 0 at the origin, `powf` has
//! ∂/∂exponent = 0 where the value is 0). A zero tangent stays zero even
//! where the derivative is infinite or undefined (`sqrt` at 0 of a constant
//! is a constant), as with JAX's symbolic zeros. Equality (`==`) compares
//! every part; ordering (`<`, `max`, the branches of `relu` and `min`)
//! compares values only, so `a <= b && a >= b` does not imply `a == b`.
//!
//! Constants in code generic over `S: Scalar` are written `S::from_f64(2.0)`
//! (or `S::one()`, `S::zero()`); for concrete dual numbers `Dual::from(2.0)`,
//! `Dual::constant(2.0)` or a plain `2.0` on either side of `+ - * /` work.
//!
//! ```
//! use chainrule::{Dual, Scalar};
//! // d/dx [x · sin x] at x = 2, by one evaluation on x + 1·ε
//! let x = Dual::variable(2.0);
//! let y = x * x.sin();
//! assert_eq!(y.re, 2.0 * 2f64.sin());
//! assert!((y.eps - (2f64.sin() + 2.0 * 2f64.cos())).abs() < 1e-15);
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::scalar::Scalar;

/// `t · d`, except that a zero tangent stays zero (even if `d` is infinite
/// or NaN): the derivative of a constant is zero whatever the slope.
#[inline(always)]
fn scale<T: Scalar>(t: T, d: T) -> T {
    if t.is_zero() {
        T::zero()
    } else {
        t * d
    }
}

/// A dual number `re + eps·ε` (ε² = 0): a value and one tangent.
///
/// Generic over any [`Scalar`] (`f64`, `f32`, or a dual number again for
/// higher derivatives); `Dual` alone in a type means `Dual<f64>`. Where
/// nothing else fixes the number type, name it: `Dual::<f64>::variable(2.0)`
/// (a default type parameter does not guide inference).
///
/// ```
/// use chainrule::{Dual, Scalar};
/// let x = Dual::new(3.0, 1.0); // seed dx = 1
/// let y = x.powi(3) + x * 2.0;
/// assert_eq!((y.re, y.eps), (33.0, 29.0)); // 3·3² + 2
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<T: Scalar = f64> {
    /// The value (primal part).
    pub re: T,
    /// The tangent (coefficient of ε).
    pub eps: T,
}

impl<T: Scalar> Dual<T> {
    /// `re + eps·ε`.
    #[inline(always)]
    pub fn new(re: T, eps: T) -> Self {
        Dual { re, eps }
    }

    /// A constant: tangent 0.
    #[inline(always)]
    pub fn constant(re: T) -> Self {
        Dual { re, eps: T::zero() }
    }

    /// The variable being differentiated: tangent 1.
    #[inline(always)]
    pub fn variable(re: T) -> Self {
        Dual { re, eps: T::one() }
    }

    /// The value (primal part).
    #[inline(always)]
    pub fn value(self) -> T {
        self.re
    }

    /// The tangent.
    #[inline(always)]
    pub fn tangent(self) -> T {
        self.eps
    }

    /// `f(self)` given `f(re)` and `f'(re)`: the chain rule on the tangent.
    #[inline(always)]
    fn chain(self, re: T, d: T) -> Self {
        Dual {
            re,
            eps: scale(self.eps, d),
        }
    }

    /// `f(self, o)` given its value and both partials.
    #[inline(always)]
    fn chain2(self, o: Self, re: T, da: T, db: T) -> Self {
        Dual {
            re,
            eps: scale(self.eps, da) + scale(o.eps, db),
        }
    }

    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(T, T) -> T) -> Self {
        Dual {
            re: f(self.re, o.re),
            eps: f(self.eps, o.eps),
        }
    }

    #[inline(always)]
    fn parts_zero(self) -> bool {
        self.re.is_zero() && self.eps.is_zero()
    }

    #[inline(always)]
    fn parts_finite(self) -> bool {
        self.re.is_finite() && self.eps.is_finite()
    }
}

impl<T: Scalar> PartialEq for Dual<T> {
    /// Every part: value and tangent.
    fn eq(&self, o: &Self) -> bool {
        self.re == o.re && self.eps == o.eps
    }
}

impl<T: Scalar> fmt::Display for Dual<T> {
    /// `re + epsε`; a precision (`{:.3}`) applies to both parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.re, f)?;
        f.write_str(" + ")?;
        fmt::Display::fmt(&self.eps, f)?;
        f.write_str("ε")
    }
}

/// A dual number with `N` tangents: `re + Σ_k eps[k]·ε_k` (ε_j ε_k = 0).
/// One evaluation propagates `N` directions at once.
///
/// ```
/// use chainrule::{DualN, Scalar};
/// // ∂/∂x and ∂/∂y of x·y + sin x at (2, 3), in one evaluation
/// let x = DualN::new(2.0, [1.0, 0.0]);
/// let y = DualN::new(3.0, [0.0, 1.0]);
/// let f = x * y + x.sin();
/// assert_eq!(f.eps, [3.0 + 2f64.cos(), 2.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DualN<T: Scalar, const N: usize> {
    /// The value (primal part).
    pub re: T,
    /// The tangents.
    pub eps: [T; N],
}

impl<T: Scalar, const N: usize> DualN<T, N> {
    /// `re + Σ eps[k]·ε_k`.
    #[inline(always)]
    pub fn new(re: T, eps: [T; N]) -> Self {
        DualN { re, eps }
    }

    /// A constant: every tangent 0.
    #[inline(always)]
    pub fn constant(re: T) -> Self {
        DualN {
            re,
            eps: [T::zero(); N],
        }
    }

    /// The `k`-th of `N` coordinates: tangent `k` is 1, the others 0.
    ///
    /// # Panics
    /// If `k >= N`.
    pub fn variable(re: T, k: usize) -> Self {
        assert!(k < N, "DualN::variable: direction {k} out of {N}");
        let mut eps = [T::zero(); N];
        eps[k] = T::one();
        DualN { re, eps }
    }

    /// The value (primal part).
    #[inline(always)]
    pub fn value(self) -> T {
        self.re
    }

    /// The tangents.
    #[inline(always)]
    pub fn tangents(self) -> [T; N] {
        self.eps
    }

    #[inline(always)]
    fn chain(self, re: T, d: T) -> Self {
        DualN {
            re,
            eps: std::array::from_fn(|k| scale(self.eps[k], d)),
        }
    }

    #[inline(always)]
    fn chain2(self, o: Self, re: T, da: T, db: T) -> Self {
        DualN {
            re,
            eps: std::array::from_fn(|k| scale(self.eps[k], da) + scale(o.eps[k], db)),
        }
    }

    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(T, T) -> T) -> Self {
        DualN {
            re: f(self.re, o.re),
            eps: std::array::from_fn(|k| f(self.eps[k], o.eps[k])),
        }
    }

    #[inline(always)]
    fn parts_zero(self) -> bool {
        self.re.is_zero() && self.eps.iter().all(|e| e.is_zero())
    }

    #[inline(always)]
    fn parts_finite(self) -> bool {
        self.re.is_finite() && self.eps.iter().all(|e| e.is_finite())
    }
}

impl<T: Scalar, const N: usize> PartialEq for DualN<T, N> {
    /// Every part: value and all tangents.
    fn eq(&self, o: &Self) -> bool {
        self.re == o.re && self.eps == o.eps
    }
}

impl<T: Scalar, const N: usize> fmt::Display for DualN<T, N> {
    /// `re + [e0, e1, ...]ε`; a precision applies to every part.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.re, f)?;
        f.write_str(" + [")?;
        for (k, e) in self.eps.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            fmt::Display::fmt(e, f)?;
        }
        f.write_str("]ε")
    }
}

/// The `Scalar` implementation, operators and conversions, written once
/// for both dual types in terms of their `chain`, `chain2` and `zip`.
macro_rules! dual_impls {
    ([$($gen:tt)*] $ty:ty) => {
        impl<$($gen)*> Default for $ty {
            /// Zero in every part.
            fn default() -> Self {
                <$ty>::constant(T::zero())
            }
        }

        impl<$($gen)*> PartialOrd for $ty {
            /// Compares values only (tangents are ignored), so branches
            /// such as `relu` and `max` follow the primal computation.
            #[inline(always)]
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                self.re.partial_cmp(&o.re)
            }
        }

        impl<$($gen)*> From<T> for $ty {
            /// A constant (zero tangents).
            #[inline(always)]
            fn from(re: T) -> Self {
                <$ty>::constant(re)
            }
        }

        impl<$($gen)*> Add for $ty {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.zip(o, |a, b| a + b)
            }
        }

        impl<$($gen)*> Sub for $ty {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self.zip(o, |a, b| a - b)
            }
        }

        impl<$($gen)*> Mul for $ty {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self.chain2(o, self.re * o.re, o.re, self.re)
            }
        }

        impl<$($gen)*> Div for $ty {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                // the value rounds exactly as plain division does
                let q = self.re / o.re;
                let inv = T::one() / o.re;
                self.chain2(o, q, inv, -q * inv)
            }
        }

        impl<$($gen)*> Neg for $ty {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                self.chain(-self.re, -T::one())
            }
        }

        impl<$($gen)*> Add<T> for $ty {
            type Output = Self;
            #[inline(always)]
            fn add(self, c: T) -> Self {
                self + <$ty>::constant(c)
            }
        }

        impl<$($gen)*> Sub<T> for $ty {
            type Output = Self;
            #[inline(always)]
            fn sub(self, c: T) -> Self {
                self - <$ty>::constant(c)
            }
        }

        impl<$($gen)*> Mul<T> for $ty {
            type Output = Self;
            #[inline(always)]
            fn mul(self, c: T) -> Self {
                self.chain(self.re * c, c)
            }
        }

        impl<$($gen)*> Div<T> for $ty {
            type Output = Self;
            #[inline(always)]
            fn div(self, c: T) -> Self {
                self.chain(self.re / c, T::one() / c)
            }
        }

        impl<$($gen)*> AddAssign for $ty {
            #[inline(always)]
            fn add_assign(&mut self, o: Self) {
                *self = *self + o;
            }
        }

        impl<$($gen)*> SubAssign for $ty {
            #[inline(always)]
            fn sub_assign(&mut self, o: Self) {
                *self = *self - o;
            }
        }

        impl<$($gen)*> MulAssign for $ty {
            #[inline(always)]
            fn mul_assign(&mut self, o: Self) {
                *self = *self * o;
            }
        }

        impl<$($gen)*> DivAssign for $ty {
            #[inline(always)]
            fn div_assign(&mut self, o: Self) {
                *self = *self / o;
            }
        }

        impl<$($gen)*> AddAssign<T> for $ty {
            #[inline(always)]
            fn add_assign(&mut self, c: T) {
                *self = *self + c;
            }
        }

        impl<$($gen)*> SubAssign<T> for $ty {
            #[inline(always)]
            fn sub_assign(&mut self, c: T) {
                *self = *self - c;
            }
        }

        impl<$($gen)*> MulAssign<T> for $ty {
            #[inline(always)]
            fn mul_assign(&mut self, c: T) {
                *self = *self * c;
            }
        }

        impl<$($gen)*> DivAssign<T> for $ty {
            #[inline(always)]
            fn div_assign(&mut self, c: T) {
                *self = *self / c;
            }
        }

        impl<$($gen)*> Scalar for $ty {
            #[inline(always)]
            fn zero() -> Self {
                <$ty>::constant(T::zero())
            }
            #[inline(always)]
            fn one() -> Self {
                <$ty>::constant(T::one())
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                <$ty>::constant(T::from_f64(x))
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self.re.to_f64()
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                self.parts_finite()
            }
            #[inline(always)]
            fn is_zero(self) -> bool {
                self.parts_zero()
            }
            #[inline(always)]
            fn with_value(self, v: f64) -> Self {
                let mut d = self;
                d.re = self.re.with_value(v);
                d
            }
            #[inline]
            fn exp(self) -> Self {
                let e = self.re.exp();
                self.chain(e, e)
            }
            #[inline]
            fn ln(self) -> Self {
                self.chain(self.re.ln(), T::one() / self.re)
            }
            #[inline]
            fn sqrt(self) -> Self {
                let s = self.re.sqrt();
                self.chain(s, T::from_f64(0.5) / s)
            }
            fn cbrt(self) -> Self {
                let c = self.re.cbrt();
                self.chain(c, T::one() / (T::from_f64(3.0) * c * c))
            }
            #[inline]
            fn powi(self, n: i32) -> Self {
                let d = if n == 0 {
                    T::zero()
                } else {
                    T::from_f64(n as f64) * self.re.powi(n - 1)
                };
                self.chain(self.re.powi(n), d)
            }
            fn powf(self, e: Self) -> Self {
                let v = self.re.powf(e.re);
                // the tape's conventions, on values (matters when T is
                // itself a dual number)
                let (dx, de) = crate::ops::pow_partials(self.re, e.re, v);
                self.chain2(e, v, dx, de)
            }
            #[inline]
            fn sin(self) -> Self {
                // two calls, not `sin_cos`: the bits of `sin` and `cos`,
                // as the tape records them (`ops::rule::sin`)
                let (s, c) = (self.re.sin(), std::hint::black_box(self.re).cos());
                self.chain(s, c)
            }
            #[inline]
            fn cos(self) -> Self {
                let (s, c) = (std::hint::black_box(self.re).sin(), self.re.cos());
                self.chain(c, -s)
            }
            fn tan(self) -> Self {
                let t = self.re.tan();
                self.chain(t, T::one() + t * t)
            }
            fn asin(self) -> Self {
                let d = T::one() / (T::one() - self.re * self.re).sqrt();
                self.chain(self.re.asin(), d)
            }
            fn acos(self) -> Self {
                let d = -T::one() / (T::one() - self.re * self.re).sqrt();
                self.chain(self.re.acos(), d)
            }
            fn atan(self) -> Self {
                let d = T::one() / (T::one() + self.re * self.re);
                self.chain(self.re.atan(), d)
            }
            fn atan2(self, x: Self) -> Self {
                let (y, xv) = (self.re, x.re);
                let r2 = xv * xv + y * y;
                let (dy, dx) = if r2 == T::zero() {
                    (T::zero(), T::zero())
                } else {
                    (xv / r2, -y / r2)
                };
                self.chain2(x, y.atan2(xv), dy, dx)
            }
            fn sinh(self) -> Self {
                self.chain(self.re.sinh(), self.re.cosh())
            }
            fn cosh(self) -> Self {
                self.chain(self.re.cosh(), self.re.sinh())
            }
            fn tanh(self) -> Self {
                let t = self.re.tanh();
                self.chain(t, T::one() - t * t)
            }
            fn abs(self) -> Self {
                let d = if self.re > T::zero() {
                    T::one()
                } else if self.re < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                };
                self.chain(self.re.abs(), d)
            }
            fn ln_1p(self) -> Self {
                self.chain(self.re.ln_1p(), T::one() / (T::one() + self.re))
            }
            fn exp_m1(self) -> Self {
                self.chain(self.re.exp_m1(), self.re.exp())
            }
            fn erf(self) -> Self {
                let d = T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-(self.re * self.re)).exp();
                self.chain(self.re.erf(), d)
            }
            fn erfc(self) -> Self {
                let d = T::from_f64(-std::f64::consts::FRAC_2_SQRT_PI) * (-(self.re * self.re)).exp();
                self.chain(self.re.erfc(), d)
            }
            fn asinh(self) -> Self {
                let d = T::one() / self.re.hypot(T::one());
                self.chain(self.re.asinh(), d)
            }
            fn acosh(self) -> Self {
                let d = T::one() / ((self.re - T::one()).sqrt() * (self.re + T::one()).sqrt());
                self.chain(self.re.acosh(), d)
            }
            fn atanh(self) -> Self {
                let d = T::one() / ((T::one() - self.re) * (T::one() + self.re));
                self.chain(self.re.atanh(), d)
            }
            fn hypot(self, y: Self) -> Self {
                let h = self.re.hypot(y.re);
                let (da, db) = if h == T::zero() {
                    (T::zero(), T::zero())
                } else {
                    (self.re / h, y.re / h)
                };
                self.chain2(y, h, da, db)
            }
            #[inline]
            fn sin_cos(self) -> (Self, Self) {
                let (s, c) = (self.re.sin(), std::hint::black_box(self.re).cos());
                (self.chain(s, c), self.chain(c, -s))
            }
        }
    };
}

dual_impls!([T: Scalar] Dual<T>);
dual_impls!([T: Scalar, const N: usize] DualN<T, N>);

/// `2.0 * d`, `1.0 - d`, ... with a plain number on the left.
macro_rules! float_lhs {
    ($t:ty) => {
        impl Add<Dual<$t>> for $t {
            type Output = Dual<$t>;
            #[inline(always)]
            fn add(self, d: Dual<$t>) -> Dual<$t> {
                d + self
            }
        }
        impl Sub<Dual<$t>> for $t {
            type Output = Dual<$t>;
            #[inline(always)]
            fn sub(self, d: Dual<$t>) -> Dual<$t> {
                Dual::constant(self) - d
            }
        }
        impl Mul<Dual<$t>> for $t {
            type Output = Dual<$t>;
            #[inline(always)]
            fn mul(self, d: Dual<$t>) -> Dual<$t> {
                d * self
            }
        }
        impl Div<Dual<$t>> for $t {
            type Output = Dual<$t>;
            #[inline(always)]
            fn div(self, d: Dual<$t>) -> Dual<$t> {
                Dual::constant(self) / d
            }
        }
        impl<const N: usize> Add<DualN<$t, N>> for $t {
            type Output = DualN<$t, N>;
            #[inline(always)]
            fn add(self, d: DualN<$t, N>) -> DualN<$t, N> {
                d + self
            }
        }
        impl<const N: usize> Sub<DualN<$t, N>> for $t {
            type Output = DualN<$t, N>;
            #[inline(always)]
            fn sub(self, d: DualN<$t, N>) -> DualN<$t, N> {
                DualN::constant(self) - d
            }
        }
        impl<const N: usize> Mul<DualN<$t, N>> for $t {
            type Output = DualN<$t, N>;
            #[inline(always)]
            fn mul(self, d: DualN<$t, N>) -> DualN<$t, N> {
                d * self
            }
        }
        impl<const N: usize> Div<DualN<$t, N>> for $t {
            type Output = DualN<$t, N>;
            #[inline(always)]
            fn div(self, d: DualN<$t, N>) -> DualN<$t, N> {
                DualN::constant(self) / d
            }
        }
    };
}

float_lhs!(f64);
float_lhs!(f32);

/// Forward-mode Jacobian-vector product without a tape: evaluates `f` once
/// at `x + v·ε` and returns `(f(x), J(x)·v)`.
///
/// `f` takes and returns dual numbers; a function written generically over
/// `S: Scalar` is passed as `|x| f(x)` or `f::<Dual<f64>>`. Cost: one
/// evaluation of `f` at about three times the arithmetic, no memory beyond
/// `f`'s own.
///
/// ```
/// use chainrule::{jvp, Dual, Scalar};
/// // f(x, y) = (x·y, sin x); J = [[y, x], [cos x, 0]]
/// fn f<S: Scalar>(x: &[S]) -> Vec<S> {
///     vec![x[0] * x[1], x[0].sin()]
/// }
/// let (fx, jv) = jvp(f::<Dual>, &[2.0, 3.0], &[1.0, 0.5]);
/// assert_eq!(fx, vec![6.0, 2f64.sin()]);
/// assert_eq!(jv, vec![3.0 + 2.0 * 0.5, 2f64.cos()]);
/// ```
///
/// # Panics
/// If `x` and `v` differ in length.
pub fn jvp<T, F>(f: F, x: &[T], v: &[T]) -> (Vec<T>, Vec<T>)
where
    T: Scalar,
    F: FnOnce(&[Dual<T>]) -> Vec<Dual<T>>,
{
    assert_eq!(
        x.len(),
        v.len(),
        "jvp: the point has {} coordinates but the direction {}",
        x.len(),
        v.len()
    );
    let xs: Vec<Dual<T>> = x.iter().zip(v).map(|(&a, &b)| Dual::new(a, b)).collect();
    f(&xs).into_iter().map(|y| (y.re, y.eps)).unzip()
}
