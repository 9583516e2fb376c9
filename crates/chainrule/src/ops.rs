//! Elementary operations on [`Var`]: arithmetic operators with a `Var` or a
//! plain number on either side, and the elementary functions.
//!
//! Each computes its value and its local partial derivatives at once, and
//! records one node. Conventions at kinks and poles:
//! - `abs'(0) = 0`, `relu'(0) = 0`;
//! - `min`/`max` send the whole gradient to the *first* argument on a tie,
//!   and give NaN when either argument is NaN (unlike `f64::min`, which
//!   drops it: a NaN should reach the output, where it can be reported);
//! - `atan2` and `hypot` have gradient 0 at the origin;
//! - `pow(x, y)` has ∂/∂y = 0 where the value is 0 (instead of 0·ln 0);
//! - `sqrt` and `cbrt` have an infinite derivative at 0, as in calculus.

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::dual::Dual;
use crate::scalar::Scalar;
use crate::tape::{Op, Var, K_COS, K_SIN};

/// Either a recorded [`Var`] or a constant: the second argument of
/// [`Var::powf`], [`Var::min`], [`Var::max`], [`Var::atan2`] and
/// [`Var::hypot`]. Constants add no node.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'t, T: Scalar> {
    /// A recorded value.
    Var(Var<'t, T>),
    /// A constant.
    Const(T),
}

impl<'t, T: Scalar> From<Var<'t, T>> for Operand<'t, T> {
    fn from(v: Var<'t, T>) -> Self {
        Operand::Var(v)
    }
}

impl<T: Scalar> From<T> for Operand<'_, T> {
    fn from(c: T) -> Self {
        Operand::Const(c)
    }
}

impl<T: Scalar> Operand<'_, T> {
    fn value(&self) -> T {
        match self {
            Operand::Var(v) => v.value(),
            Operand::Const(c) => *c,
        }
    }
}

impl<'t, T: Scalar> Var<'t, T> {
    /// Records a two-argument function `f(self, other)` given its value and
    /// both partials; with a constant `other` only the first is recorded.
    #[inline(always)]
    fn with_operand(self, other: Operand<'t, T>, op: Op, value: T, da: T, db: T) -> Var<'t, T> {
        match other {
            Operand::Var(o) => self.binary(o, op, value, da, db),
            Operand::Const(c) => self.unary_c(op, value, da, c),
        }
    }

    /// e^x.
    #[inline]
    pub fn exp(self) -> Self {
        let (e, d) = rule::exp(self.val);
        self.unary(Op::Exp, e, d)
    }

    /// Natural logarithm.
    #[inline]
    pub fn ln(self) -> Self {
        let (v, d) = rule::ln(self.val);
        self.unary(Op::Ln, v, d)
    }

    /// Base-2 logarithm.
    pub fn log2(self) -> Self {
        let ln2 = T::from_f64(std::f64::consts::LN_2);
        self.unary(Op::Log2, self.val.ln() / ln2, T::one() / (self.val * ln2))
    }

    /// Base-10 logarithm.
    pub fn log10(self) -> Self {
        let ln10 = T::from_f64(std::f64::consts::LN_10);
        self.unary(
            Op::Log10,
            self.val.ln() / ln10,
            T::one() / (self.val * ln10),
        )
    }

    /// Square root (derivative +∞ at 0).
    #[inline]
    pub fn sqrt(self) -> Self {
        let (s, d) = rule::sqrt(self.val);
        self.unary(Op::Sqrt, s, d)
    }

    /// Cube root, defined for negative numbers (derivative +∞ at 0).
    pub fn cbrt(self) -> Self {
        let c = self.val.cbrt();
        self.unary(Op::Cbrt, c, T::one() / (T::from_f64(3.0) * c * c))
    }

    /// Power by a constant integer.
    #[inline]
    pub fn powi(self, n: i32) -> Self {
        let d = if n == 0 {
            T::zero()
        } else {
            T::from_f64(n as f64) * self.val.powi(n - 1)
        };
        self.unary_c(Op::Powi, self.val.powi(n), d, T::from_f64(n as f64))
    }

    /// x²: shorthand for `powi(2)`.
    #[inline]
    pub fn square(self) -> Self {
        self.unary_c(
            Op::Powi,
            self.val * self.val,
            self.val + self.val,
            T::from_f64(2.0),
        )
    }

    /// 1/x.
    #[inline]
    pub fn recip(self) -> Self {
        let r = T::one() / self.val;
        self.unary_c(Op::RDiv, r, -(r * r), T::one())
    }

    /// Power by a real exponent, constant or variable:
    /// `x.powf(2.5)` or `x.powf(y)`.
    pub fn powf(self, e: impl Into<Operand<'t, T>>) -> Self {
        let e = e.into();
        let ev = e.value();
        let v = self.val.powf(ev);
        let (dx, de) = pow_partials(self.val, ev, v);
        self.with_operand(e, Op::Pow, v, dx, de)
    }

    /// Sine. The tape keeps the argument, and the sweep computes the
    /// partial `cos` from it (see the `tape` module): one library call on
    /// the forward pass instead of two.
    #[inline]
    pub fn sin(self) -> Self {
        self.unary_arg(Op::Sin, self.val.sin(), K_SIN)
    }

    /// Cosine; like [`Var::sin`], the partial `−sin` is computed by the
    /// sweep from the kept argument.
    #[inline]
    pub fn cos(self) -> Self {
        self.unary_arg(Op::Cos, self.val.cos(), K_COS)
    }

    /// Tangent.
    pub fn tan(self) -> Self {
        let t = self.val.tan();
        self.unary(Op::Tan, t, T::one() + t * t)
    }

    /// Arcsine.
    pub fn asin(self) -> Self {
        let d = T::one() / (T::one() - self.val * self.val).sqrt();
        self.unary(Op::Asin, self.val.asin(), d)
    }

    /// Arccosine.
    pub fn acos(self) -> Self {
        let d = -T::one() / (T::one() - self.val * self.val).sqrt();
        self.unary(Op::Acos, self.val.acos(), d)
    }

    /// Arctangent.
    pub fn atan(self) -> Self {
        let d = T::one() / (T::one() + self.val * self.val);
        self.unary(Op::Atan, self.val.atan(), d)
    }

    /// Four-quadrant arctangent of `self / x` (`self` is y), in (−π, π].
    pub fn atan2(self, x: impl Into<Operand<'t, T>>) -> Self {
        let x = x.into();
        let (yv, xv) = (self.val, x.value());
        let r2 = xv * xv + yv * yv;
        let (dy, dx) = if r2 == T::zero() {
            (T::zero(), T::zero())
        } else {
            (xv / r2, -yv / r2)
        };
        self.with_operand(x, Op::Atan2, yv.atan2(xv), dy, dx)
    }

    /// Hyperbolic sine.
    pub fn sinh(self) -> Self {
        self.unary(Op::Sinh, self.val.sinh(), self.val.cosh())
    }

    /// Hyperbolic cosine.
    pub fn cosh(self) -> Self {
        self.unary(Op::Cosh, self.val.cosh(), self.val.sinh())
    }

    /// Hyperbolic tangent.
    pub fn tanh(self) -> Self {
        let (t, d) = rule::tanh(self.val);
        self.unary(Op::Tanh, t, d)
    }

    /// Inverse hyperbolic sine; its derivative is 1/√(x² + 1), computed
    /// as `1 / hypot(x, 1)` so that it does not round to 0 where x²
    /// overflows.
    pub fn asinh(self) -> Self {
        let x = self.val;
        self.unary(Op::Asinh, x.asinh(), T::one() / x.hypot(T::one()))
    }

    /// Inverse hyperbolic cosine, for x ≥ 1; its derivative
    /// 1/(√(x − 1)·√(x + 1)) is +∞ at 1, and below 1 value and derivative
    /// are NaN.
    pub fn acosh(self) -> Self {
        let x = self.val;
        let d = T::one() / ((x - T::one()).sqrt() * (x + T::one()).sqrt());
        self.unary(Op::Acosh, x.acosh(), d)
    }

    /// Inverse hyperbolic tangent, for −1 < x < 1 (±∞ at ±1); its
    /// derivative is 1/(1 − x²), computed as 1/((1 − x)(1 + x)), which
    /// keeps its digits near ±1.
    pub fn atanh(self) -> Self {
        let x = self.val;
        let d = T::one() / ((T::one() - x) * (T::one() + x));
        self.unary(Op::Atanh, x.atanh(), d)
    }

    /// ln(1 + x), accurate where x is near 0 (where `(1 + x).ln()` loses
    /// the digits of x that 1 + x rounds away); its derivative is
    /// 1/(1 + x).
    ///
    /// ```
    /// use chainrule::Tape;
    /// let tape = Tape::new();
    /// let x = tape.var(1e-12);
    /// let y = x.ln_1p();
    /// // ln(1 + x) = x − x²/2 + …; the plain formula is off by ~1e-16
    /// assert!((y.value() - (1e-12 - 5e-25)).abs() < 1e-27);
    /// assert!(((1.0f64 + 1e-12).ln() - 1e-12).abs() > 1e-17);
    /// assert_eq!(y.backward().wrt(x), 1.0 / (1.0 + 1e-12));
    /// ```
    pub fn ln_1p(self) -> Self {
        let x = self.val;
        self.unary(Op::Ln1p, x.ln_1p(), T::one() / (T::one() + x))
    }

    /// e^x − 1, accurate where x is near 0; its derivative is e^x.
    pub fn exp_m1(self) -> Self {
        let x = self.val;
        self.unary(Op::ExpM1, x.exp_m1(), x.exp())
    }

    /// The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt; its derivative
    /// is 2/√π · e^(−x²). With [`Var::erfc`], the normal distribution's
    /// CDF is `½ erfc(−x/√2)`.
    ///
    /// ```
    /// use chainrule::Tape;
    /// let tape = Tape::new();
    /// let x = tape.var(0.5);
    /// let y = x.erf();
    /// assert!((y.value() - 0.5204998778130465).abs() < 1e-15);
    /// let d = 2.0 / std::f64::consts::PI.sqrt() * (-0.25f64).exp();
    /// assert!((y.backward().wrt(x) - d).abs() < 1e-15);
    /// ```
    pub fn erf(self) -> Self {
        let x = self.val;
        let d = T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp();
        self.unary(Op::Erf, x.erf(), d)
    }

    /// The complementary error function 1 − erf(x), which keeps its digits
    /// where erf(x) is near 1 (erfc(10) = 2.1e-45); its derivative is
    /// −2/√π · e^(−x²).
    pub fn erfc(self) -> Self {
        let x = self.val;
        let d = T::from_f64(-std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp();
        self.unary(Op::Erfc, x.erfc(), d)
    }

    /// `self` limited to `[lo, hi]`: `self.max(lo).min(hi)`, two nodes, so
    /// the gradient passes where `lo ≤ self ≤ hi` (ties included, as
    /// [`Var::min`] and [`Var::max`] send a tie to their first argument)
    /// and goes to the bound that is in force elsewhere. Unlike
    /// `f64::clamp` it does not panic when `lo > hi`: the result is then
    /// `hi`. A NaN in `self` or a bound gives NaN.
    ///
    /// ```
    /// use chainrule::Tape;
    /// let tape = Tape::new();
    /// let x = tape.var(3.0);
    /// let y = x.clamp(0.0, 1.0) + x.clamp(0.0, 5.0);
    /// assert_eq!(y.value(), 4.0);
    /// assert_eq!(y.backward().wrt(x), 1.0);
    /// ```
    pub fn clamp(self, lo: impl Into<Operand<'t, T>>, hi: impl Into<Operand<'t, T>>) -> Self {
        self.max(lo).min(hi)
    }

    /// Logistic sigmoid 1/(1 + e^−x), computed without overflow.
    pub fn sigmoid(self) -> Self {
        let (s, d) = rule::sigmoid(self.val);
        self.unary(Op::Sigmoid, s, d)
    }

    /// max(0, x), with relu'(0) = 0. A NaN stays NaN (with partial 1, so
    /// that it is seen downstream, as with [`max`](Self::max)), not 0.
    pub fn relu(self) -> Self {
        if self.val > T::zero() || self.val.to_f64().is_nan() {
            self.unary(Op::Relu, self.val, T::one())
        } else {
            self.unary(Op::Relu, T::zero(), T::zero())
        }
    }

    /// ln(1 + e^x), computed without overflow; its derivative is the sigmoid.
    pub fn softplus(self) -> Self {
        let x = self.val;
        let v = if x > T::zero() {
            x + (-x).exp().ln_1p()
        } else {
            x.exp().ln_1p()
        };
        self.unary(Op::Softplus, v, sigmoid(x))
    }

    /// |x|, with abs'(0) = 0.
    pub fn abs(self) -> Self {
        let d = if self.val > T::zero() {
            T::one()
        } else if self.val < T::zero() {
            -T::one()
        } else {
            T::zero()
        };
        self.unary(Op::Abs, self.val.abs(), d)
    }

    /// The smaller of the two; a tie goes to `self` (the first argument),
    /// and a NaN in either wins (so that it is seen, not dropped).
    pub fn min(self, other: impl Into<Operand<'t, T>>) -> Self {
        let o = other.into();
        if self.val <= o.value() || self.val.to_f64().is_nan() {
            self.with_operand(o, Op::Min, self.val, T::one(), T::zero())
        } else {
            self.with_operand(o, Op::Min, o.value(), T::zero(), T::one())
        }
    }

    /// The larger of the two; a tie goes to `self` (the first argument),
    /// and a NaN in either wins (so that it is seen, not dropped).
    pub fn max(self, other: impl Into<Operand<'t, T>>) -> Self {
        let o = other.into();
        if self.val >= o.value() || self.val.to_f64().is_nan() {
            self.with_operand(o, Op::Max, self.val, T::one(), T::zero())
        } else {
            self.with_operand(o, Op::Max, o.value(), T::zero(), T::one())
        }
    }

    /// sqrt(self² + other²), with gradient 0 at the origin.
    pub fn hypot(self, other: impl Into<Operand<'t, T>>) -> Self {
        let o = other.into();
        let h = self.val.hypot(o.value());
        let (da, db) = if h == T::zero() {
            (T::zero(), T::zero())
        } else {
            (self.val / h, o.value() / h)
        };
        self.with_operand(o, Op::Hypot, h, da, db)
    }
}

/// The partials of `v = x^e`: `(e·x^(e−1), v·ln x)`, with the conventions
/// ∂/∂x = 0 where e = 0 and ∂/∂e = 0 where v = 0. The conventions test
/// the *value* (`to_f64`), not every part: for a dual number whose value is
/// 0 but whose tangent is not, comparing every part would skip them and
/// give 0·ln 0 = NaN in the gradient where a plain tape gives 0. Where
/// e = 0 with a tangent and x ≠ 0 the product is still formed, so the
/// cross derivative ∂²/∂x∂e = 1/x is kept.
pub(crate) fn pow_partials<T: Scalar>(x: T, e: T, v: T) -> (T, T) {
    let dx = if e.is_zero() || (e.to_f64() == 0.0 && x.to_f64() == 0.0) {
        T::zero()
    } else {
        e * x.powf(e - T::one())
    };
    let de = if v.to_f64() == 0.0 {
        T::zero()
    } else {
        v * x.ln()
    };
    (dx, de)
}

/// Numerically stable logistic sigmoid of a plain number.
pub fn sigmoid<T: Scalar>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

// ---- arithmetic operators -------------------------------------------------

impl<'t, T: Scalar> Add for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.binary_add(o, Op::Add, rule::add(self.val, o.val))
    }
}

impl<'t, T: Scalar> Sub for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let (v, da, db) = rule::sub(self.val, o.val);
        self.binary(o, Op::Sub, v, da, db)
    }
}

impl<'t, T: Scalar> Mul for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        // product rule on the graph: each factor gets the other's value
        let (v, da, db) = rule::mul(self.val, o.val);
        self.binary(o, Op::Mul, v, da, db)
    }
}

impl<'t, T: Scalar> Div for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        let (q, da, db) = rule::div(self.val, o.val);
        self.binary(o, Op::Div, q, da, db)
    }
}

impl<'t, T: Scalar> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn neg(self) -> Self {
        let (v, d) = rule::neg(self.val);
        self.unary(Op::Neg, v, d)
    }
}

impl<'t, T: Scalar> Add<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn add(self, c: T) -> Self {
        self.unary_pass(Op::Add, rule::add(self.val, c), c)
    }
}

impl<'t, T: Scalar> Sub<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn sub(self, c: T) -> Self {
        self.unary_pass(Op::Sub, rule::sub_c(self.val, c), c)
    }
}

impl<'t, T: Scalar> Mul<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn mul(self, c: T) -> Self {
        let (v, d) = rule::mul_c(self.val, c);
        self.unary_c(Op::Mul, v, d, c)
    }
}

impl<'t, T: Scalar> Div<T> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn div(self, c: T) -> Self {
        let (v, d) = rule::div_c(self.val, c);
        self.unary_c(Op::Div, v, d, c)
    }
}

macro_rules! scalar_lhs {
    ($t:ty) => {
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            fn add(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v + self
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            fn sub(self, v: Var<'t, $t>) -> Var<'t, $t> {
                let (r, d) = rule::rsub_c(v.val, self);
                v.unary_c(Op::RSub, r, d, self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            fn mul(self, v: Var<'t, $t>) -> Var<'t, $t> {
                v * self
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            fn div(self, v: Var<'t, $t>) -> Var<'t, $t> {
                let q = self / v.val;
                v.unary_c(Op::RDiv, q, -q / v.val, self)
            }
        }
    };
}

scalar_lhs!(f64);
scalar_lhs!(f32);

/// A plain number on either side of `+ − × ÷` (and in `+= −= ×= ÷=`) with
/// a `Var` of dual numbers (a constant: tangent 0), and as the second
/// argument of `min`, `max`,
/// `powf`, `atan2`, `hypot` and `clamp`: so that a closure given to
/// [`crate::hessian_of`] or [`crate::hvp_of`] writes `x[0] * 2.0` as it
/// would on a plain tape.
macro_rules! plain_with_dual {
    ($p:ty) => {
        impl<'t> Add<$p> for Var<'t, Dual<$p>> {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn add(self, c: $p) -> Self {
                self + Dual::constant(c)
            }
        }
        impl<'t> Sub<$p> for Var<'t, Dual<$p>> {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn sub(self, c: $p) -> Self {
                self - Dual::constant(c)
            }
        }
        impl<'t> Mul<$p> for Var<'t, Dual<$p>> {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn mul(self, c: $p) -> Self {
                self * Dual::constant(c)
            }
        }
        impl<'t> Div<$p> for Var<'t, Dual<$p>> {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn div(self, c: $p) -> Self {
                self / Dual::constant(c)
            }
        }
        impl<'t> Add<Var<'t, Dual<$p>>> for $p {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn add(self, v: Var<'t, Dual<$p>>) -> Var<'t, Dual<$p>> {
                v + Dual::constant(self)
            }
        }
        impl<'t> Sub<Var<'t, Dual<$p>>> for $p {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn sub(self, v: Var<'t, Dual<$p>>) -> Var<'t, Dual<$p>> {
                let c = Dual::constant(self);
                let (r, d) = rule::rsub_c(v.val, c);
                v.unary_c(Op::RSub, r, d, c)
            }
        }
        impl<'t> Mul<Var<'t, Dual<$p>>> for $p {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn mul(self, v: Var<'t, Dual<$p>>) -> Var<'t, Dual<$p>> {
                v * Dual::constant(self)
            }
        }
        impl<'t> Div<Var<'t, Dual<$p>>> for $p {
            type Output = Var<'t, Dual<$p>>;
            #[inline(always)]
            fn div(self, v: Var<'t, Dual<$p>>) -> Var<'t, Dual<$p>> {
                let c = Dual::constant(self);
                let q = c / v.val;
                v.unary_c(Op::RDiv, q, -q / v.val, c)
            }
        }
        impl<'t> AddAssign<$p> for Var<'t, Dual<$p>> {
            #[inline(always)]
            fn add_assign(&mut self, c: $p) {
                *self = *self + c;
            }
        }
        impl<'t> SubAssign<$p> for Var<'t, Dual<$p>> {
            #[inline(always)]
            fn sub_assign(&mut self, c: $p) {
                *self = *self - c;
            }
        }
        impl<'t> MulAssign<$p> for Var<'t, Dual<$p>> {
            #[inline(always)]
            fn mul_assign(&mut self, c: $p) {
                *self = *self * c;
            }
        }
        impl<'t> DivAssign<$p> for Var<'t, Dual<$p>> {
            #[inline(always)]
            fn div_assign(&mut self, c: $p) {
                *self = *self / c;
            }
        }
        impl<'t> From<$p> for Operand<'t, Dual<$p>> {
            fn from(c: $p) -> Self {
                Operand::Const(Dual::constant(c))
            }
        }
    };
}

plain_with_dual!(f64);
plain_with_dual!(f32);

macro_rules! assign_ops {
    ($tr:ident, $m:ident, $op:tt) => {
        impl<'t, T: Scalar> $tr for Var<'t, T> {
            #[inline(always)]
            fn $m(&mut self, o: Self) {
                *self = *self $op o;
            }
        }
        impl<'t, T: Scalar> $tr<T> for Var<'t, T> {
            #[inline(always)]
            fn $m(&mut self, o: T) {
                *self = *self $op o;
            }
        }
    };
}

assign_ops!(AddAssign, add_assign, +);
assign_ops!(SubAssign, sub_assign, -);
assign_ops!(MulAssign, mul_assign, *);
assign_ops!(DivAssign, div_assign, /);

impl<'t, T: Scalar> Var<'t, T> {
    /// ln(e^x₁ + … + e^xₙ) without overflow, and without losing a result
    /// near 0: with m the largest value, at xₖ (the first such), it is
    /// `m + ln_1p(expm1(xₖ − m) + Σ_{i≠k} e^(xᵢ − m))`. m is a constant
    /// (the result does not depend on it), so the gradient is exact: the
    /// softmax of the inputs. `None` for no inputs. m is the largest value
    /// that is not NaN.
    ///
    /// Infinite inputs give the limit as they tend to their infinity
    /// together, as equal values:
    /// - every input −∞: the value is −∞ and each gradient 1/n, the
    ///   softmax of n equal inputs;
    /// - some inputs +∞: the value is +∞, each of the j inputs at +∞ has
    ///   gradient 1/j, every other input 0;
    /// - a −∞ input beside a larger one has gradient 0, as a very small
    ///   finite input would.
    ///
    /// For that, where m is infinite, xᵢ − m of each xᵢ equal to m is
    /// recorded as 0 (a `sub` node of value 0, not the NaN of ∞ − ∞), and
    /// on a tape of dual numbers keeps xᵢ's tangents
    /// ([`Scalar::with_value`]), so that second derivatives are those of
    /// equal inputs too (the Hessian I/n − J/n² of n inputs at −∞). A NaN
    /// input makes the value and every gradient NaN.
    ///
    /// m is taken from the values, so a [`crate::Recurrence`] whose step
    /// uses `logsumexp` records another constant at each step: it cannot
    /// be [`compiled`](crate::Recurrence::compiled).
    ///
    /// ```
    /// use chainrule::{Tape, Var};
    /// let tape = Tape::new();
    /// let xs = [tape.var(1000.0), tape.var(1000.0)];
    /// let y = Var::logsumexp(&xs).unwrap();
    /// assert!((y.value() - (1000.0 + 2f64.ln())).abs() < 1e-12);
    /// let g = y.backward();
    /// assert_eq!((g.wrt(xs[0]), g.wrt(xs[1])), (0.5, 0.5));
    /// // ln(1 + e^-40) = 4.248e-18 is kept, as softplus keeps it
    /// let y = Var::logsumexp(&[tape.var(-40.0), tape.var(0.0)]).unwrap();
    /// assert!((y.value() - (-40f64).exp()).abs() < 1e-30);
    /// // every input −∞: as n equal inputs
    /// let xs = tape.vars(&[f64::NEG_INFINITY; 4]);
    /// let y = Var::logsumexp(&xs).unwrap();
    /// let g = y.backward();
    /// assert_eq!((y.value(), g.wrt(xs[0]), g.wrt(xs[3])), (f64::NEG_INFINITY, 0.25, 0.25));
    /// ```
    pub fn logsumexp(xs: &[Var<'t, T>]) -> Option<Self> {
        let (k, m) = lse_shift(xs.iter().map(|x| x.val))?;
        let shift = T::from_f64(m);
        // xᵢ − m; where m is infinite, an xᵢ equal to it is taken as equal
        // (a difference of 0 with xᵢ's tangents) instead of ∞ − ∞ = NaN
        let diff = |x: Var<'t, T>| {
            if m.is_infinite() && x.val.to_f64() == m {
                x.unary_pass(Op::Sub, x.val.with_value(0.0), shift)
            } else {
                x - shift
            }
        };
        let lead = diff(xs[k]).exp_m1();
        let rest: Option<Var<'t, T>> = xs
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != k)
            .map(|(_, &x)| diff(x).exp())
            .sum();
        let inner = match rest {
            Some(r) => lead + r,
            None => lead,
        };
        Some(inner.ln_1p() + shift)
    }
}

/// [`Var::logsumexp`]'s shift: the index of the first largest value that
/// is not NaN (0 if all are NaN) and the value itself as `f64` (the value
/// alone, without a dual number's tangent: a true constant). `None` for
/// no values.
fn lse_shift<T: Scalar>(values: impl Iterator<Item = T>) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.enumerate() {
        let v = v.to_f64();
        match best {
            None => best = Some((i, v)),
            Some((_, b)) if v > b || (b.is_nan() && !v.is_nan()) => best = Some((i, v)),
            _ => {}
        }
    }
    best
}

/// The sum of an iterator of [`Var`]s, `None` when it is empty (a tape
/// has no zero of its own to start from): `a₀ + a₁ + …`, left to right.
///
/// ```
/// use chainrule::{Tape, Var};
/// let tape = Tape::new();
/// let xs: Vec<Var> = [1.0, 2.0, 3.0].iter().map(|&v| tape.var(v)).collect();
/// let total: Option<Var> = xs.iter().map(|&x| x * x).sum();
/// let total = total.expect("three terms");
/// assert_eq!(total.value(), 14.0);
/// assert_eq!(total.backward().wrt(xs[2]), 6.0);
/// ```
impl<'t, T: Scalar> std::iter::Sum<Var<'t, T>> for Option<Var<'t, T>> {
    fn sum<I: Iterator<Item = Var<'t, T>>>(mut iter: I) -> Self {
        let first = iter.next()?;
        Some(iter.fold(first, |a, b| a + b))
    }
}

/// The value and local partials of each operation that a compiled
/// recurrence step ([`crate::compiled`]) can replay: the `Var` operators
/// above and the replay call these same functions, so a replayed node has
/// the recorded node's bits by construction.
pub(crate) mod rule {
    use crate::scalar::Scalar;

    /// `a + b` (partials 1 and 1, not stored).
    #[inline(always)]
    pub(crate) fn add<T: Scalar>(a: T, b: T) -> T {
        a + b
    }

    /// `a - c` with a constant `c` (partial 1, not stored).
    #[inline(always)]
    pub(crate) fn sub_c<T: Scalar>(a: T, c: T) -> T {
        a - c
    }

    /// `a - b`.
    #[inline(always)]
    pub(crate) fn sub<T: Scalar>(a: T, b: T) -> (T, T, T) {
        (a - b, T::one(), -T::one())
    }

    /// `a · b`: each factor's partial is the other's value.
    #[inline(always)]
    pub(crate) fn mul<T: Scalar>(a: T, b: T) -> (T, T, T) {
        (a * b, b, a)
    }

    /// `a / b`, as `a · (1/b)`.
    #[inline(always)]
    pub(crate) fn div<T: Scalar>(a: T, b: T) -> (T, T, T) {
        let inv = T::one() / b;
        let q = a * inv;
        (q, inv, -q * inv)
    }

    /// `a / b` as one IEEE division (plain arithmetic, `traced.rs`; the
    /// `Var` quotient is [`div`]).
    #[inline(always)]
    pub(crate) fn quot<T: Scalar>(a: T, b: T) -> (T, T, T) {
        let q = a / b;
        (q, T::one() / b, -q / b)
    }

    /// `a / c` with a constant `c`, as one IEEE division.
    #[inline(always)]
    pub(crate) fn quot_c<T: Scalar>(a: T, c: T) -> (T, T) {
        (a / c, T::one() / c)
    }

    /// `c / a` with a constant `c`, as one IEEE division.
    #[inline(always)]
    pub(crate) fn rquot_c<T: Scalar>(a: T, c: T) -> (T, T) {
        let q = c / a;
        (q, -q / a)
    }

    /// `a · c` with a constant `c`.
    #[inline(always)]
    pub(crate) fn mul_c<T: Scalar>(a: T, c: T) -> (T, T) {
        (a * c, c)
    }

    /// `a / c` with a constant `c`, as `a · (1/c)`.
    #[inline(always)]
    pub(crate) fn div_c<T: Scalar>(a: T, c: T) -> (T, T) {
        let inv = T::one() / c;
        (a * inv, inv)
    }

    /// `c - a` with a constant `c`.
    #[inline(always)]
    pub(crate) fn rsub_c<T: Scalar>(a: T, c: T) -> (T, T) {
        (c - a, -T::one())
    }

    /// `-a`.
    #[inline(always)]
    pub(crate) fn neg<T: Scalar>(a: T) -> (T, T) {
        (-a, -T::one())
    }

    /// `e^a`.
    #[inline(always)]
    pub(crate) fn exp<T: Scalar>(a: T) -> (T, T) {
        let e = a.exp();
        (e, e)
    }

    /// `ln a`.
    #[inline(always)]
    pub(crate) fn ln<T: Scalar>(a: T) -> (T, T) {
        (a.ln(), T::one() / a)
    }

    /// `√a`.
    #[inline(always)]
    pub(crate) fn sqrt<T: Scalar>(a: T) -> (T, T) {
        let s = a.sqrt();
        (s, T::from_f64(0.5) / s)
    }

    /// `sin a` and its partial, for compiled steps (`compiled.rs`,
    /// `jit.rs`; the tape's [`Var::sin`](crate::Var::sin) keeps `a` and
    /// the sweep calls `cos`, `tape::partial`). Two calls rather than
    /// `sin_cos`: the value feeds the rest of the computation (often a
    /// recurrence's critical path) while the derivative does not, so
    /// `sin` alone is on the path. The barrier keeps the compiler from
    /// fusing them into one `sincos` call, which is not the same bits
    /// (see [`cos`]).
    #[inline(always)]
    pub(crate) fn sin<T: Scalar>(a: T) -> (T, T) {
        (a.sin(), std::hint::black_box(a).cos())
    }

    /// `cos a`: the bits of `a.cos()`, and `−a.sin()` as the partial,
    /// two calls as in [`sin`] (glibc's `sincos`, which the compiler
    /// would fuse them into, differs from `sin` by an ulp at some
    /// arguments, such as 1.6762650767948966: for 0.855 ≤ |a| < 2.426 it
    /// splits the reduced argument otherwise than `sin` does).
    #[inline(always)]
    pub(crate) fn cos<T: Scalar>(a: T) -> (T, T) {
        (a.cos(), -std::hint::black_box(a).sin())
    }

    /// `tanh a`.
    #[inline(always)]
    pub(crate) fn tanh<T: Scalar>(a: T) -> (T, T) {
        let t = a.tanh();
        (t, T::one() - t * t)
    }

    /// The logistic sigmoid.
    #[inline(always)]
    pub(crate) fn sigmoid<T: Scalar>(a: T) -> (T, T) {
        let s = super::sigmoid(a);
        (s, s * (T::one() - s))
    }
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    use crate::Tape;

    /// Arguments where glibc's `sincos` (which the compiler makes of a
    /// `sin_cos`) gives another sine than `sin`, and ordinary ones.
    const ARGS: [f64; 3] = [1.6762650767948966, 0.7, -123.456];

    #[test]
    fn sin_and_cos_record_the_bits_of_sin_and_cos() {
        let tape = Tape::new();
        let mut xs = ARGS.to_vec();
        let mut x = 0.123_456_789f64;
        for k in 0..10_000 {
            x = (x * 7.77 + k as f64 * 0.37) % 2000.0 - 1000.0;
            xs.push(x);
        }
        // (each call on its own copy of x, or the compiler fuses them)
        let sin_cos = |x: f64| (black_box(x).sin(), black_box(x).cos());
        for &x in &xs {
            let (s, c) = sin_cos(x);
            let y = tape.var(x);
            let (vs, vc) = (y.sin(), y.cos());
            assert_eq!(vs.value().to_bits(), s.to_bits(), "sin({x})");
            assert_eq!(vc.value().to_bits(), c.to_bits(), "cos({x})");
            assert_eq!(vs.backward().wrt(y).to_bits(), c.to_bits(), "sin'({x})");
            assert_eq!(vc.backward().wrt(y).to_bits(), (-s).to_bits(), "cos'({x})");
        }
        let t32 = Tape::<f32>::default();
        let y = t32.var(0.7f32);
        let (s, c) = (black_box(0.7f32).sin(), black_box(0.7f32).cos());
        assert_eq!(y.sin().value().to_bits(), s.to_bits());
        assert_eq!(y.sin().backward().wrt(y).to_bits(), c.to_bits());
        assert_eq!(y.cos().value().to_bits(), c.to_bits());
        assert_eq!(y.cos().backward().wrt(y).to_bits(), (-s).to_bits());
    }

    /// The tape keeps sin's and cos's argument and the sweep calls the
    /// library for the partial: every sweep (plain, checked for
    /// non-finite values, and through a chain where the adjoint is not 1)
    /// gives the bits of the partial computed when recording.
    #[test]
    fn sin_and_cos_partials_from_the_kept_argument_are_the_recorded_bits() {
        let mut x = 0.731_f64;
        let mut xs = ARGS.to_vec();
        xs.extend([0.0, -0.0, 1e-300, 5e-324, 1e22, -1e300, f64::MAX]);
        for k in 0..20_000 {
            x = (x * 3.1 + k as f64 * 0.013) % 7.0 - 3.5;
            xs.push(x);
            xs.push(x * 1e6);
        }
        let mut checked = Tape::new();
        checked.set_check_finite(true);
        for &x in &xs {
            let (s, c) = (black_box(x).sin(), black_box(x).cos());
            // (added into a zeroed adjoint: −0 becomes +0)
            let (ds, dc) = (0.0 + 1.3 * c, 0.0 + 1.3 * -s);
            for tape in [&Tape::new(), &checked] {
                let y = tape.var(x);
                let (vs, vc) = (y.sin() * 1.3, y.cos() * 1.3);
                let g = vs.try_backward().expect("finite").wrt(y);
                assert_eq!(g.to_bits(), ds.to_bits(), "sin'({x})");
                let g = vc.try_backward().expect("finite").wrt(y);
                assert_eq!(g.to_bits(), dc.to_bits(), "cos'({x})");
            }
        }
    }

    /// Dual numbers (forward mode, Hessians) take the same bits.
    #[test]
    fn dual_sin_and_cos_take_the_bits_of_sin_and_cos() {
        use crate::{Dual, Scalar};
        for x in ARGS {
            let d = Dual::new(x, 1.0);
            let (s, c) = (black_box(x).sin(), black_box(x).cos());
            assert_eq!(
                (d.sin().re.to_bits(), d.sin().eps.to_bits()),
                (s.to_bits(), c.to_bits())
            );
            assert_eq!(
                (d.cos().re.to_bits(), d.cos().eps.to_bits()),
                (c.to_bits(), (-s).to_bits())
            );
            let (ds, dc) = d.sin_cos();
            assert_eq!(
                (ds.re.to_bits(), dc.re.to_bits()),
                (s.to_bits(), c.to_bits())
            );
        }
    }
}
