//! The number type a tape records: `f64`, `f32`, or any type that implements
//! [`Scalar`] (forward-mode dual numbers, for derivatives of derivatives).

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real-number type the engine can differentiate over.
///
/// Implemented for `f64` and `f32`. Every elementary function the tape offers
/// is a method here, so a tape over another scalar (a dual number, say) only
/// needs this trait. Comparison (`PartialOrd`) compares *values*: for a dual
/// number it ignores the tangent.
pub trait Scalar:
    Copy
    + Debug
    + Display
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// Whether `x * Self::one()` is `x`, bit for bit, for every `x` (true
    /// for `f32` and `f64`). The tape then stores no partials for sums and
    /// passes a sum's gradient through unmultiplied; for other types (a
    /// dual number's `x · 1` can turn an infinite part into NaN) it stores
    /// and multiplies by 1 as for any operation.
    const MUL_BY_ONE_EXACT: bool = false;
    /// The additive identity.
    fn zero() -> Self;
    /// The multiplicative identity.
    fn one() -> Self;
    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// The value as `f64` (the primal part for a dual number).
    fn to_f64(self) -> f64;
    /// Whether the value (and for dual numbers every tangent) is finite.
    fn is_finite(self) -> bool;
    /// Whether the number is exactly zero (for dual numbers: every part).
    /// The backward sweep skips nodes whose adjoint is zero, so this must
    /// not ignore tangents.
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == Self::zero()
    }
    /// `self` with its value replaced by `v` and any tangents kept: for a
    /// dual number `re.with_value(v) + eps·ε`, for a plain number
    /// `from_f64(v)`. [`Var::logsumexp`](crate::Var::logsumexp) records
    /// `x − m` of an input equal to an infinite m as
    /// `x.with_value(0.0)`: the difference of two equal values, which
    /// `−∞ − (−∞)` would make NaN. The default is `from_f64(v)`, which
    /// drops tangents: a type with tangents overrides it, as
    /// [`crate::Dual`] and [`crate::DualN`] do.
    ///
    /// ```
    /// use chainrule::{Dual, Scalar};
    /// let x = Dual::new(f64::NEG_INFINITY, 2.0);
    /// assert_eq!(x.with_value(0.0), Dual::new(0.0, 2.0));
    /// assert_eq!(f64::NEG_INFINITY.with_value(0.0), 0.0);
    /// ```
    #[inline(always)]
    fn with_value(self, v: f64) -> Self {
        Self::from_f64(v)
    }
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Cube root (defined for negative numbers too).
    fn cbrt(self) -> Self;
    /// Power by a constant integer.
    fn powi(self, n: i32) -> Self;
    /// Power by a real exponent.
    fn powf(self, e: Self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Tangent.
    fn tan(self) -> Self;
    /// Arcsine.
    fn asin(self) -> Self;
    /// Arccosine.
    fn acos(self) -> Self;
    /// Arctangent.
    fn atan(self) -> Self;
    /// Four-quadrant arctangent of `self / x`.
    fn atan2(self, x: Self) -> Self;
    /// Hyperbolic sine.
    fn sinh(self) -> Self;
    /// Hyperbolic cosine.
    fn cosh(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// ln(1 + x), accurate near 0.
    fn ln_1p(self) -> Self;
    /// e^x − 1, accurate near 0. The default builds it from `exp` and
    /// `ln` as `(u − 1)·x / ln u` with `u = e^x` (Kahan's way), without
    /// losing those digits; `f32`, `f64` and the dual numbers use their
    /// own.
    fn exp_m1(self) -> Self {
        default_exp_m1(self)
    }
    /// Inverse hyperbolic sine. The default builds it from `ln_1p` and
    /// `hypot`, accurate near 0 and for large values.
    fn asinh(self) -> Self {
        default_asinh(self)
    }
    /// Inverse hyperbolic cosine (NaN below 1). The default is
    /// `ln(x + √(x − 1)·√(x + 1))`.
    fn acosh(self) -> Self {
        default_acosh(self)
    }
    /// Inverse hyperbolic tangent (±∞ at ±1, NaN beyond). The default
    /// builds it from `ln_1p`, accurate near 0.
    fn atanh(self) -> Self {
        default_atanh(self)
    }
    /// The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt. The default
    /// evaluates it in `f64` ([`libm::erf`]) and converts back, which
    /// drops a dual number's tangent: a type with tangents overrides it,
    /// as [`crate::Dual`] does.
    fn erf(self) -> Self {
        Self::from_f64(libm::erf(self.to_f64()))
    }
    /// The complementary error function 1 − erf(x), accurate where erf
    /// is near 1 (large x). The default is as for [`Scalar::erf`].
    fn erfc(self) -> Self {
        Self::from_f64(libm::erfc(self.to_f64()))
    }
    /// sqrt(self² + y²) without undue overflow.
    fn hypot(self, y: Self) -> Self;
    /// Sine and cosine together (one call where the platform allows).
    fn sin_cos(self) -> (Self, Self) {
        (self.sin(), self.cos())
    }
    /// `e^self` computed without a library call, so that a loop over it
    /// can be vectorised by the compiler; for kernels where the exponential
    /// dominates (Gaussian weights in a rasterizer). It uses only
    /// additions, multiplications and bit operations, so it gives the same
    /// bits in scalar and vector code and on every target.
    ///
    /// For `f32`: a Cody–Waite range reduction and a degree-7 polynomial
    /// (Cephes' `expf`), within 2 ulp of the exact value for normal
    /// results; results below the smallest normal (`self < −87.33`) are
    /// flushed to `0`, `self > 88.72` gives `+∞`, NaN stays NaN. For `f64`
    /// and other types it is [`Scalar::exp`].
    ///
    /// ```
    /// use chainrule::Scalar;
    /// let x = -3.25f32;
    /// assert!((x.exp_fast() - x.exp()).abs() <= 2.0 * f32::EPSILON * x.exp());
    /// assert_eq!((-1000.0f32).exp_fast(), 0.0);
    /// ```
    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }

    /// [`Scalar::exp_fast`]'s value, bit for bit for every input, computed
    /// with its special cases (flush, overflow, NaN) as selects rather than
    /// branches. A short loop that the compiler unrolls may become vector
    /// code only in this form (the rasterizer backward's 8-lane half
    /// blocks did); elsewhere `exp_fast` keeps its branches.
    ///
    /// ```
    /// use chainrule::Scalar;
    /// for x in [-3.25f32, -100.0, 100.0, f32::NAN] {
    ///     assert_eq!(x.exp_fast_select().to_bits(), x.exp_fast().to_bits());
    /// }
    /// ```
    #[inline(always)]
    fn exp_fast_select(self) -> Self {
        self.exp_fast()
    }
}

/// ln of the smallest normal `f32`: [`Scalar::exp_fast`] flushes below it.
const EXP_LO: f32 = -87.336_55;
/// ln of `f32::MAX`: [`Scalar::exp_fast`] gives `+∞` above it.
const EXP_HI: f32 = 88.722_84;

/// The `f32` body of [`Scalar::exp_fast`]: the special cases as branches.
#[inline(always)]
fn exp_fast_f32(x: f32) -> f32 {
    let y = exp_fast_f32_core(x);
    if x < EXP_LO {
        0.0
    } else if x > EXP_HI {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// The `f32` body of [`Scalar::exp_fast_select`]: the same value as
/// [`exp_fast_f32`] for every input, with the special cases as selects.
#[inline(always)]
fn exp_fast_f32_select(x: f32) -> f32 {
    let y = exp_fast_f32_core(x);
    let y = if x.is_nan() { x } else { y };
    let y = if x > EXP_HI { f32::INFINITY } else { y };
    if x < EXP_LO {
        0.0
    } else {
        y
    }
}

/// The polynomial of [`exp_fast_f32`] on `x` clamped to its normal range.
#[inline(always)]
fn exp_fast_f32_core(x: f32) -> f32 {
    const LO: f32 = EXP_LO;
    const HI: f32 = EXP_HI;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| ≤ 2^15
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // adding 1.5 · 2^23 rounds to an integer held in the low mantissa bits
    const ROUND: f32 = 12_582_912.0;
    let xc = if x > HI { HI } else { x };
    let xc = if xc < LO { LO } else { xc };
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    // 2^n as two factors so neither leaves the normal range (n ∈ [−126, 128])
    let ni = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    (y * s1) * s2
}

macro_rules! impl_scalar_float {
    ($t:ty, $erf:path, $erfc:path $(, $fast:ident, $select:ident)?) => {
        impl Scalar for $t {
            const MUL_BY_ONE_EXACT: bool = true;
            #[inline(always)]
            fn zero() -> Self {
                0.0
            }
            #[inline(always)]
            fn one() -> Self {
                1.0
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn cbrt(self) -> Self {
                <$t>::cbrt(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            #[inline(always)]
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            #[inline(always)]
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            #[inline(always)]
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            #[inline(always)]
            fn atan2(self, x: Self) -> Self {
                <$t>::atan2(self, x)
            }
            #[inline(always)]
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            #[inline(always)]
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn erfc(self) -> Self {
                $erfc(self)
            }
            #[inline(always)]
            fn asinh(self) -> Self {
                <$t>::asinh(self)
            }
            #[inline(always)]
            fn acosh(self) -> Self {
                <$t>::acosh(self)
            }
            #[inline(always)]
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
            #[inline(always)]
            fn hypot(self, y: Self) -> Self {
                <$t>::hypot(self, y)
            }
            #[inline(always)]
            fn sin_cos(self) -> (Self, Self) {
                <$t>::sin_cos(self)
            }
            $(
                #[inline(always)]
                fn exp_fast(self) -> Self {
                    $fast(self)
                }
                #[inline(always)]
                fn exp_fast_select(self) -> Self {
                    $select(self)
                }
            )?
        }
    };
}

/// [`Scalar::exp_m1`]'s default: `e^x − 1` as `(u − 1)·x / ln u` with
/// `u = e^x` (Kahan's way), which keeps the digits that `u − 1` alone
/// loses near 0.
pub(crate) fn default_exp_m1<S: Scalar>(x: S) -> S {
    let one = S::one();
    let u = x.exp();
    if u == one {
        return x;
    }
    let um1 = u - one;
    if um1 == -one || !u.is_finite() {
        return um1;
    }
    // (x / ln u is about 1; (u − 1)·x first would overflow above ~703)
    um1 * (x / u.ln())
}

/// [`Scalar::asinh`]'s default: `sign(x) · ln_1p(a + a²/(1 + √(a² + 1)))`
/// with `a = |x|` and the root as `hypot(a, 1)`, so that neither a small
/// `x` nor `x²`'s overflow loses the result.
pub(crate) fn default_asinh<S: Scalar>(x: S) -> S {
    let a = x.abs();
    odd(x, (a + a * (a / (S::one() + a.hypot(S::one())))).ln_1p())
}

/// [`Scalar::acosh`]'s default: `ln(x + √(x − 1)·√(x + 1))`, as
/// `ln_1p((x − 1) + √(x − 1)·√(x + 1))` so that it keeps its digits near
/// 1 (and no `x²` to overflow).
pub(crate) fn default_acosh<S: Scalar>(x: S) -> S {
    let d = x - S::one();
    (d + d.sqrt() * (x + S::one()).sqrt()).ln_1p()
}

/// [`Scalar::atanh`]'s default: `sign(x) · ½ ln_1p(2a / (1 − a))` with
/// `a = |x|`, accurate near 0.
pub(crate) fn default_atanh<S: Scalar>(x: S) -> S {
    let a = x.abs();
    odd(
        x,
        S::from_f64(0.5) * (S::from_f64(2.0) * a / (S::one() - a)).ln_1p(),
    )
}

/// An odd function's value at `x` from its value `v` at `|x|`; ±0 keeps
/// its sign.
fn odd<S: Scalar>(x: S, v: S) -> S {
    if x < S::zero() {
        -v
    } else if v == S::zero() {
        x
    } else {
        v
    }
}

impl_scalar_float!(f64, libm::erf, libm::erfc);
impl_scalar_float!(
    f32,
    libm::erff,
    libm::erfcf,
    exp_fast_f32,
    exp_fast_f32_select
);

#[cfg(test)]
mod tests {
    use super::Scalar;

    /// The defaults for types without their own, on f64 against std's.
    #[test]
    fn default_bodies_match_std() {
        use super::{default_acosh, default_asinh, default_atanh, default_exp_m1};
        let rel = |got: f64, want: f64| {
            if want == 0.0 || want.is_infinite() {
                got == want
            } else {
                ((got - want) / want).abs() <= 4.0 * f64::EPSILON
            }
        };
        let mut xs = vec![
            0.0, 1e-300, 1e-20, 3e-9, 0.1, 0.5, 0.99, 1.0, 2.0, 30.0, 1e10,
        ];
        xs.extend([1e154, 1e200, 700.0, 704.0, 709.7]);
        for &a in &xs {
            for x in [a, -a] {
                assert!(rel(default_asinh(x), x.asinh()), "asinh({x})");
                if x.abs() <= 1.0 {
                    assert!(rel(default_atanh(x), x.atanh()), "atanh({x})");
                }
                if x >= 1.0 {
                    assert!(rel(default_acosh(x), x.acosh()), "acosh({x})");
                }
                if x.abs() < 710.0 {
                    let (g, w) = (default_exp_m1(x), x.exp_m1());
                    assert!(
                        rel(g, w) || (g - w).abs() <= 2.0 * f64::EPSILON * w.abs(),
                        "exp_m1({x}): {g} vs {w}"
                    );
                }
            }
        }
        assert!(default_acosh(0.5f64).is_nan());
        // acosh(1 + d) = √(2d)(1 − d/12 + …), where std's formula loses digits
        let x = 1.0 + 1e-10;
        let d = x - 1.0; // exact
        let want = (2.0 * d).sqrt() * (1.0 - d / 12.0);
        let got = default_acosh(x);
        assert!(
            ((got - want) / want).abs() <= 8.0 * f64::EPSILON,
            "{got} vs {want}"
        );
        // −0 stays −0
        for f in [default_asinh::<f64>, default_atanh::<f64>] {
            assert!(f(-0.0).is_sign_negative() && f(0.0).is_sign_positive());
        }
        assert_eq!(default_exp_m1(f64::INFINITY), f64::INFINITY);
        assert_eq!(default_exp_m1(f64::NEG_INFINITY), -1.0);
    }

    /// Distance in units of the last place between an f32 and the exact value.
    fn ulps(got: f32, exact: f64) -> f64 {
        let e = exact as f32;
        let ulp = (f32::from_bits(e.to_bits() + 1) - e) as f64;
        (got as f64 - exact).abs() / ulp
    }

    #[test]
    fn exp_fast_f32_is_within_two_ulp_over_its_normal_range() {
        // a dense sweep of the whole normal range, plus every float near 0
        let (lo, hi) = (-87.3f64, 88.7f64);
        let n = 2_000_000;
        let mut worst = (0.0f64, 0.0f32);
        for i in 0..=n {
            let x = (lo + (hi - lo) * i as f64 / n as f64) as f32;
            let u = ulps(x.exp_fast(), (x as f64).exp());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        for i in -20_000..20_000 {
            let x = i as f32 * 1e-6;
            let u = ulps(x.exp_fast(), (x as f64).exp());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_fast_select_is_exp_fast_bit_for_bit() {
        // every 997th bit pattern covers all signs, exponents (NaNs,
        // infinities, subnormals included) and many mantissas
        let edges = [super::EXP_LO, super::EXP_HI, -0.0, 0.0, f32::MIN, f32::MAX];
        let sweep = (0..u32::MAX / 997).map(|i| f32::from_bits(i * 997));
        for x in edges.into_iter().chain(sweep) {
            let (a, b) = (x.exp_fast(), x.exp_fast_select());
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{x:e}: {a:e} vs {b:e}"
            );
        }
    }

    #[test]
    fn exp_fast_f32_edges() {
        assert_eq!(0.0f32.exp_fast(), 1.0);
        assert_eq!((-88.0f32).exp_fast(), 0.0);
        assert_eq!(f32::NEG_INFINITY.exp_fast(), 0.0);
        assert_eq!(89.0f32.exp_fast(), f32::INFINITY);
        assert_eq!(f32::INFINITY.exp_fast(), f32::INFINITY);
        assert!(f32::NAN.exp_fast().is_nan());
        let top = 88.72f32.exp_fast();
        assert!(top.is_finite());
        assert!(ulps(top, (88.72f32 as f64).exp()) <= 2.0);
        let bottom = (-87.33f32).exp_fast();
        assert!(bottom.is_normal());
        assert!(ulps(bottom, (-87.33f32 as f64).exp()) <= 2.0);
        // f64 keeps the library exponential
        assert_eq!(1.5f64.exp_fast(), 1.5f64.exp());
    }
}
