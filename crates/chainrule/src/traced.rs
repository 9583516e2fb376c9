//! Plain arithmetic traced once into a compiled program: the inverse step
//! of [`crate::Recurrence::traced_inverse`].
//!
//! A [`Traced`] value stands for a plain number (`f64`, `f32`) in a
//! closure run once, on no values at all: each operation appends one
//! instruction to the trace and returns the register of its result. The
//! trace becomes a values-only [`Program`] (`compiled.rs`) that the
//! interpreter or its native code (`jit.rs`) runs at every step. The
//! arithmetic is the plain number's, not the tape's: `a / b` is one IEEE
//! division (a [`crate::Var`] quotient is `a · (1/b)`), so a traced
//! closure gives the bits of the same closure written on `f64`.

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::compiled::{Instr, Program, Rule};
use crate::scalar::Scalar;

/// Collects the instructions of one trace.
pub(crate) struct Tracer<T: Scalar> {
    code: RefCell<Vec<Instr<T>>>,
    /// Registers before the first node: parameters, state, inputs.
    base: u32,
}

/// A value in a traced closure (see [`crate::Recurrence::traced_inverse`]):
/// `+ − × ÷` with other traced values and with constants on either side,
/// negation, [`Traced::sqrt`], [`Traced::exp`], [`Traced::ln`],
/// [`Traced::sin`] and [`Traced::tanh`], each rounded as the plain number
/// type rounds it. It has no value to look at: a traced closure cannot
/// branch on its inputs.
#[derive(Clone, Copy)]
pub struct Traced<'s, T: Scalar> {
    tr: &'s Tracer<T>,
    reg: u32,
}

impl<T: Scalar> std::fmt::Debug for Traced<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Traced(r{})", self.reg)
    }
}

/// A closure on traced values: `f(next, params, x, prev)` pushes the
/// values of the state before the step onto `prev`, from `next` (the
/// state after it), the parameters and the step's per-step inputs.
pub type TracedFn<T> = dyn for<'s> Fn(&[Traced<'s, T>], &[Traced<'s, T>], &[Traced<'s, T>], &mut Vec<Traced<'s, T>>)
    + Send
    + Sync;

impl<'s, T: Scalar> Traced<'s, T> {
    fn push(self, rule: Rule, b: u32, c: T) -> Self {
        let mut code = self.tr.code.borrow_mut();
        code.push(Instr {
            rule,
            flow: rule.flow(),
            a: self.reg,
            b,
            c,
            a_prev: false,
            b_prev: false,
        });
        Traced {
            tr: self.tr,
            reg: self.tr.base + code.len() as u32 - 1,
        }
    }

    fn unary(self, rule: Rule) -> Self {
        self.push(rule, self.reg, T::zero())
    }

    fn with_const(self, rule: Rule, c: T) -> Self {
        self.push(rule, self.reg, c)
    }

    fn binary(self, rule: Rule, o: Self) -> Self {
        assert!(
            std::ptr::eq(self.tr, o.tr),
            "traced values of two different traces combined"
        );
        self.push(rule, o.reg, T::zero())
    }

    /// Square root.
    pub fn sqrt(self) -> Self {
        self.unary(Rule::Sqrt)
    }

    /// e^x.
    pub fn exp(self) -> Self {
        self.unary(Rule::Exp)
    }

    /// Natural logarithm.
    pub fn ln(self) -> Self {
        self.unary(Rule::Ln)
    }

    /// Sine (the bits of `f64::sin`).
    pub fn sin(self) -> Self {
        self.unary(Rule::Sin)
    }

    /// Hyperbolic tangent.
    pub fn tanh(self) -> Self {
        self.unary(Rule::Tanh)
    }
}

macro_rules! traced_ops {
    ($($tr:ident $f:ident: $both:ident, $cst:ident;)*) => {
        $(
            impl<'s, T: Scalar> $tr for Traced<'s, T> {
                type Output = Traced<'s, T>;
                fn $f(self, o: Self) -> Self {
                    self.binary(Rule::$both, o)
                }
            }
            impl<'s, T: Scalar> $tr<T> for Traced<'s, T> {
                type Output = Traced<'s, T>;
                fn $f(self, c: T) -> Self {
                    self.with_const(Rule::$cst, c)
                }
            }
        )*
    };
}

traced_ops! {
    Add add: Add, AddC;
    Sub sub: Sub, SubC;
    Mul mul: Mul, MulC;
    Div div: Quot, QuotC;
}

impl<T: Scalar> Neg for Traced<'_, T> {
    type Output = Self;
    fn neg(self) -> Self {
        self.unary(Rule::Neg)
    }
}

macro_rules! traced_lhs {
    ($($t:ty),*) => {
        $(
            // (`c + a` and `c · a` are `a + c` and `a · c`, bit for bit)
            impl<'s> Add<Traced<'s, $t>> for $t {
                type Output = Traced<'s, $t>;
                fn add(self, v: Traced<'s, $t>) -> Traced<'s, $t> {
                    v.with_const(Rule::AddC, self)
                }
            }
            impl<'s> Mul<Traced<'s, $t>> for $t {
                type Output = Traced<'s, $t>;
                fn mul(self, v: Traced<'s, $t>) -> Traced<'s, $t> {
                    v.with_const(Rule::MulC, self)
                }
            }
            impl<'s> Sub<Traced<'s, $t>> for $t {
                type Output = Traced<'s, $t>;
                fn sub(self, v: Traced<'s, $t>) -> Traced<'s, $t> {
                    v.with_const(Rule::RSubC, self)
                }
            }
            impl<'s> Div<Traced<'s, $t>> for $t {
                type Output = Traced<'s, $t>;
                fn div(self, v: Traced<'s, $t>) -> Traced<'s, $t> {
                    v.with_const(Rule::RQuotC, self)
                }
            }
        )*
    };
}

traced_lhs!(f64, f32);

/// Traces `f` on `np` parameters, a state of `ns` values and `w` per-step
/// inputs into an inverse program (values only, run backwards); or says
/// why not (the closure returned another number of values).
pub(crate) fn trace_inverse<T: Scalar>(
    f: &TracedFn<T>,
    np: usize,
    ns: usize,
    w: usize,
) -> Result<Program<T>, String> {
    let base = np + ns + w;
    let tr = Tracer {
        code: RefCell::new(Vec::new()),
        base: u32::try_from(base).map_err(|_| "too many inputs to trace")?,
    };
    let out = {
        let regs: Vec<Traced<'_, T>> = (0..base as u32)
            .map(|reg| Traced { tr: &tr, reg })
            .collect();
        let (p, rest) = regs.split_at(np);
        let (s, x) = rest.split_at(ns);
        let mut prev = Vec::with_capacity(ns);
        f(s, p, x, &mut prev);
        if prev.len() != ns {
            return Err(format!(
                "the inverse returned {} values for a state of {ns}",
                prev.len()
            ));
        }
        prev.iter().map(|v| v.reg).collect::<Vec<u32>>()
    };
    Ok(Program::inverse(np, ns, w, tr.code.into_inner(), out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::Work;

    /// The same closure on traced values and on `f64`: the same bits,
    /// on the interpreter and (where built) as native code.
    #[test]
    fn traced_arithmetic_is_plain_arithmetic() {
        let f: Box<TracedFn<f64>> = Box::new(|s, p, x, prev| {
            let t = s[0] / (1.0 - x[1]);
            prev.push(t);
            let u = (s[1] - x[0] * x[1] * t) / p[0] + 2.0 / t - 0.5 * -s[0];
            prev.push(u.sqrt().exp().ln() * 3.0 - t.sin().tanh() + (s[0] + p[0]) / 7.0);
        });
        let plain = |s: &[f64], p: &[f64], x: &[f64]| -> [f64; 2] {
            let t = s[0] / (1.0 - x[1]);
            let u = (s[1] - x[0] * x[1] * t) / p[0] + 2.0 / t - 0.5 * -s[0];
            [
                t,
                u.sqrt().exp().ln() * 3.0 - t.sin().tanh() + (s[0] + p[0]) / 7.0,
            ]
        };
        let prog = trace_inverse(&*f, 1, 2, 2).unwrap();
        let p = [1.37];
        let xs: Vec<f64> = (0..40).map(|i| 0.01 + 0.0123 * i as f64).collect();
        let s_end = [0.123_456_7, 0.765_432_1];
        let mut want = s_end;
        for t in (0..20).rev() {
            want = plain(&want, &p, &xs[2 * t..2 * t + 2]);
        }
        let interp = prog.clone();
        let native = prog.clone().with_native(&s_end, &p, &xs[..2]);
        let jit = cfg!(all(
            feature = "jit",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ));
        if jit && std::env::var_os("CHAINRULE_JIT").is_none_or(|v| v != "0") {
            assert!(native.is_native(), "no native code");
        }
        for prog in [interp, native] {
            let mut work = Work::default();
            prog.prepare(&mut work, &p, 1);
            let mut s = s_end.to_vec();
            // in two calls, as the blocks of a reverse pass
            prog.inverse_steps(&mut work, &mut s, &xs, (7, 20));
            prog.inverse_steps(&mut work, &mut s, &xs, (0, 7));
            assert_eq!(s[0].to_bits(), want[0].to_bits());
            assert_eq!(s[1].to_bits(), want[1].to_bits());
        }
    }

    #[test]
    fn a_wrong_state_length_is_refused() {
        let f: Box<TracedFn<f64>> = Box::new(|s, _p, _x, prev| prev.push(s[0]));
        let e = trace_inverse(&*f, 0, 2, 0).unwrap_err();
        assert!(e.contains("returned 1 values for a state of 2"), "{e}");
    }
}
