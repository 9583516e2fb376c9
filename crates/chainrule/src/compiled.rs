//! A recurrence step compiled once into a compact instruction list.
//!
//! [`crate::Recurrence::compiled`] declares that the step records the same
//! operations, on the same operands, with the same constants, at every
//! step whatever the values. The step is then recorded once (with
//! tracing on, so that each node's operation is known) and turned into a
//! [`Program`]: one [`Instr`] per node, reading *registers* laid out as
//! `[θ | s | x | the step's nodes]` (a node's register is its index on that
//! recording minus one). The reverse pass of every strategy then runs the
//! program instead of recording the step closure: forward values and
//! partials of a block of steps into a small buffer, then the reverse
//! sweep, with no allocation, no `Var` handles and no dynamic call per
//! node.
//!
//! Values and partials come from the same functions the `Var` operators
//! call (`ops::rule`), and [`Program::compile`] checks them against the
//! recording bit for bit. The sweep adds every contribution into every
//! adjoint in the order the tape's sweep does (`backward::sweep_range`),
//! including its one reordering: the two contributions of a node whose
//! operands are both the node just before it are summed first (the
//! carried register). That holds in every layout the uncompiled reverse
//! passes record a block in, except for the step's first node (its
//! predecessor there is a leaf or the previous step's last node), so a
//! step whose first operation uses one value twice is not compiled; nor is
//! one whose next state repeats a node or passes on an input unchanged
//! (both are rounded differently by the uncompiled passes, see
//! `Scratch::vjp_unrolled`), one with an operation outside [`Rule`], a
//! leaf or a custom operation inside the step, or a scalar for which
//! `x · 1 ≠ x` ([`Scalar::MUL_BY_ONE_EXACT`]). Those steps keep the
//! recording path; the gradient is the same either way.
//!
//! A [`Program`] can also hold a traced inverse step (`traced.rs`,
//! [`Program::inverse`]): plain arithmetic on values only, with IEEE
//! division among its rules, run over the rows backwards
//! ([`Program::inverse_steps`]).

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::jit::{Code, Fwd};
use crate::ops::rule;
use crate::recurrence::StepFn;
use crate::scalar::Scalar;
use crate::tape::{
    Op, Tape, Var, KIND_MASK, K_ADD, K_BINARY, K_COS, K_LEAF, K_PASS, K_SIN, K_UNARY,
};

/// The operations a compiled step may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `a + b`.
    Add,
    /// `a + c`.
    AddC,
    /// `a - c`.
    SubC,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a · c`.
    MulC,
    /// `a / c`.
    DivC,
    /// `c - a`.
    RSubC,
    /// `-a`.
    Neg,
    /// `e^a`.
    Exp,
    /// `ln a`.
    Ln,
    /// `√a`.
    Sqrt,
    /// `sin a`.
    Sin,
    /// `cos a`.
    Cos,
    /// `tanh a`.
    Tanh,
    /// The logistic sigmoid.
    Sigmoid,
    /// `a / b` as one IEEE division (traced plain arithmetic only).
    Quot,
    /// `a / c` as one IEEE division (traced plain arithmetic only).
    QuotC,
    /// `c / a` (traced plain arithmetic only).
    RQuotC,
}

/// How a rule's adjoint reaches its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Two operands, two stored partials.
    Binary,
    /// One operand, one stored partial.
    Unary,
    /// Two operands, partials 1 (passed through).
    Add,
    /// One operand, partial 1 (passed through).
    Pass,
}

impl Rule {
    pub(crate) fn flow(self) -> Flow {
        match self {
            Rule::Add => Flow::Add,
            Rule::AddC | Rule::SubC => Flow::Pass,
            Rule::Sub | Rule::Mul | Rule::Div | Rule::Quot => Flow::Binary,
            _ => Flow::Unary,
        }
    }

    /// Whether the rule is plain arithmetic that a sweep recomputes
    /// (from its operands' values) rather than keep: the value of a node
    /// made of θ and the step's inputs by these rules alone is not saved
    /// ([`Program::plan`], [`Part::Remat`]). One IEEE operation each, so
    /// the recomputed value has the forward pass's bits.
    pub(crate) fn recomputable(self) -> bool {
        matches!(
            self,
            Rule::Add
                | Rule::AddC
                | Rule::SubC
                | Rule::Sub
                | Rule::Mul
                | Rule::MulC
                | Rule::DivC
                | Rule::RSubC
                | Rule::Neg
        )
    }

    /// How many of the rule's partials are computed from the values (the
    /// others are constants, operands' values or the node's own), in
    /// the order [`Rule::exec`] writes them.
    pub(crate) fn computed_parts(self) -> usize {
        match self {
            Rule::Div | Rule::Quot => 2,
            Rule::Ln
            | Rule::Sqrt
            | Rule::Sin
            | Rule::Cos
            | Rule::Tanh
            | Rule::Sigmoid
            | Rule::RQuotC => 1,
            _ => 0,
        }
    }

    /// The rule a recorded node stands for, from its traced operation and
    /// its kind (whether a constant was folded in).
    fn of(op: Op, kind: u64) -> Option<Rule> {
        Some(match (op, kind) {
            (Op::Add, K_ADD) => Rule::Add,
            (Op::Add, K_PASS) => Rule::AddC,
            (Op::Sub, K_PASS) => Rule::SubC,
            (Op::Sub, K_BINARY) => Rule::Sub,
            (Op::Mul, K_BINARY) => Rule::Mul,
            (Op::Div, K_BINARY) => Rule::Div,
            (Op::Mul, K_UNARY) => Rule::MulC,
            (Op::Div, K_UNARY) => Rule::DivC,
            (Op::RSub, K_UNARY) => Rule::RSubC,
            (Op::Neg, K_UNARY) => Rule::Neg,
            (Op::Exp, K_UNARY) => Rule::Exp,
            (Op::Ln, K_UNARY) => Rule::Ln,
            (Op::Sqrt, K_UNARY) => Rule::Sqrt,
            (Op::Sin, K_SIN) => Rule::Sin,
            (Op::Cos, K_COS) => Rule::Cos,
            (Op::Tanh, K_UNARY) => Rule::Tanh,
            (Op::Sigmoid, K_UNARY) => Rule::Sigmoid,
            _ => return None,
        })
    }

    /// Value and partials (the second is zero for one-operand rules; both
    /// are zero for [`Flow::Add`] and [`Flow::Pass`]).
    fn eval<T: Scalar>(self, a: T, b: T, c: T) -> (T, T, T) {
        let mut buf = [T::zero(); 2];
        // SAFETY: a rule writes at most two partials.
        let (v, _) = unsafe { self.exec(a, b, c, buf.as_mut_ptr()) };
        (v, buf[0], buf[1])
    }

    /// The value of the rule on `a`, `b`, `c`; the partials it keeps are
    /// written from `parts` on (two, one or none); returns the value and
    /// past the last partial written. One dispatch per node.
    ///
    /// # Safety
    /// `parts` has room for the rule's partials.
    #[inline(always)]
    unsafe fn exec<T: Scalar>(self, a: T, b: T, c: T, parts: *mut T) -> (T, *mut T) {
        let two = |(v, d0, d1): (T, T, T)| {
            *parts = d0;
            *parts.add(1) = d1;
            (v, parts.add(2))
        };
        let one = |(v, d): (T, T)| {
            *parts = d;
            (v, parts.add(1))
        };
        match self {
            Rule::Add => (rule::add(a, b), parts),
            Rule::AddC => (rule::add(a, c), parts),
            Rule::SubC => (rule::sub_c(a, c), parts),
            Rule::Sub => two(rule::sub(a, b)),
            Rule::Mul => two(rule::mul(a, b)),
            Rule::Div => two(rule::div(a, b)),
            Rule::MulC => one(rule::mul_c(a, c)),
            Rule::DivC => one(rule::div_c(a, c)),
            Rule::RSubC => one(rule::rsub_c(a, c)),
            Rule::Neg => one(rule::neg(a)),
            Rule::Exp => one(rule::exp(a)),
            Rule::Ln => one(rule::ln(a)),
            Rule::Sqrt => one(rule::sqrt(a)),
            Rule::Sin => one(rule::sin(a)),
            Rule::Cos => one(rule::cos(a)),
            Rule::Tanh => one(rule::tanh(a)),
            Rule::Sigmoid => one(rule::sigmoid(a)),
            Rule::Quot => two(rule::quot(a, b)),
            Rule::QuotC => one(rule::quot_c(a, c)),
            Rule::RQuotC => one(rule::rquot_c(a, c)),
        }
    }

    /// The value alone (the same bits as [`Rule::exec`]'s).
    #[inline(always)]
    pub(crate) fn value<T: Scalar>(self, a: T, b: T, c: T) -> T {
        match self {
            Rule::Add => rule::add(a, b),
            Rule::AddC => rule::add(a, c),
            Rule::SubC => rule::sub_c(a, c),
            Rule::Sub => rule::sub(a, b).0,
            Rule::Mul => rule::mul(a, b).0,
            Rule::Div => rule::div(a, b).0,
            Rule::MulC => rule::mul_c(a, c).0,
            Rule::DivC => rule::div_c(a, c).0,
            Rule::RSubC => rule::rsub_c(a, c).0,
            Rule::Neg => rule::neg(a).0,
            Rule::Exp => rule::exp(a).0,
            Rule::Ln => rule::ln(a).0,
            Rule::Sqrt => rule::sqrt(a).0,
            // (`rule::sin` is `a.sin()` and a partial kept from fusing;
            // `rule::cos` likewise `a.cos()`)
            Rule::Sin => a.sin(),
            Rule::Cos => a.cos(),
            Rule::Tanh => rule::tanh(a).0,
            Rule::Sigmoid => rule::sigmoid(a).0,
            Rule::Quot => rule::quot(a, b).0,
            Rule::QuotC => rule::quot_c(a, c).0,
            Rule::RQuotC => rule::rquot_c(a, c).0,
        }
    }
}

/// One node of the step: `regs[base + j] = rule(regs[a], regs[b], c)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Instr<T> {
    pub(crate) rule: Rule,
    pub(crate) flow: Flow,
    pub(crate) a: u32,
    pub(crate) b: u32,
    pub(crate) c: T,
    /// Operand `a` (`b`) is the node just before this one (not for the
    /// first node): its value is read from a register and its adjoint
    /// contribution carried in one, summed before it is added, as the
    /// tape's sweep does.
    pub(crate) a_prev: bool,
    pub(crate) b_prev: bool,
}

/// Where the reverse sweep finds one of a node's partials (the step's
/// *plan*, [`Program::plan`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Part<T> {
    /// A constant: the rule's partial does not depend on the values
    /// (`a - b`, `a · c`, `-a`, ...).
    Const(T),
    /// The value of parameter register `r`, the same at every step (`a · θ`).
    Theta(u32),
    /// Saved value `k` of the step ([`Save`]).
    Slot(u32),
    /// The value of register `r`, recomputed by the sweep from θ and the
    /// step's input row ([`Program::remat`]): an input, or a node made of
    /// those by [`Rule::recomputable`] rules. Not saved.
    Remat(u32),
}

/// A value a step saves for its reverse sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Save {
    /// The value of register `r` (the state or a node; never an input,
    /// which the sweep reads from its row): a partial that is an
    /// operand's value (`a · b`) or the node's own (`e^a`), saved once
    /// however many partials read it.
    Reg(u32),
    /// Partial `k` of instruction `j`, computed in the forward pass
    /// (`cos a` for `sin a`, `1/b` for `a / b`, ...).
    Computed(u32, u8),
}

/// Why a step was not compiled.
pub(crate) type Refusal = String;

/// A compiled step (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct Program<T: Scalar> {
    pub(crate) np: usize,
    pub(crate) ns: usize,
    pub(crate) w: usize,
    pub(crate) code: Vec<Instr<T>>,
    /// The register of each value of the next state (all nodes, distinct).
    pub(crate) out: Vec<u32>,
    /// Where each instruction's partials are found in the sweep (unused
    /// entries for rules with fewer than two, or none).
    pub(crate) parts: Vec<[Part<T>; 2]>,
    /// The values a step saves, in this order ([`Program::plan`]).
    pub(crate) saves: Vec<Save>,
    /// Values a step saves (`saves.len()`).
    pub(crate) n_parts: usize,
    /// The registers the sweep recomputes at each step, in increasing
    /// order (inputs, then nodes in program order): those a [`Part::Remat`]
    /// reads and the nodes they are made of.
    pub(crate) remat: Vec<u32>,
    /// A traced inverse step (`traced.rs`): plain arithmetic on values
    /// only, run over the rows backwards ([`Program::inverse_steps`]).
    pub(crate) back: bool,
    /// The program as native code (`jit.rs`), where built; the
    /// interpreter below runs otherwise.
    native: Option<Arc<Code<T>>>,
}

/// Buffers a compiled block reuses between calls.
#[derive(Debug, Default)]
pub(crate) struct Work<T> {
    regs: Vec<T>,
    adj: Vec<T>,
    parts: Vec<T>,
}

/// `dst[i] = src[i]` (and `src[i] = 0` if `clear`) for `i < n`, unrolled
/// for the small counts of states and per-step inputs (a loop of unknown
/// count would become a call to `memcpy` and `memset` for two values).
///
/// # Safety
/// Both ranges are valid for `n` values and do not overlap.
#[inline(always)]
unsafe fn move_small<T: Scalar>(dst: *mut T, src: *mut T, n: usize, clear: bool) {
    #[inline(always)]
    unsafe fn one<T: Scalar>(dst: *mut T, src: *mut T, i: usize, clear: bool) {
        *dst.add(i) = *src.add(i);
        if clear {
            *src.add(i) = T::zero();
        }
    }
    match n {
        0 => {}
        1 => one(dst, src, 0, clear),
        2 => {
            one(dst, src, 0, clear);
            one(dst, src, 1, clear);
        }
        3 => {
            one(dst, src, 0, clear);
            one(dst, src, 1, clear);
            one(dst, src, 2, clear);
        }
        _ => {
            for i in 0..n {
                one(dst, src, i, clear);
            }
        }
    }
}

impl<T: Scalar> Program<T> {
    /// Records `step` at step `t` from state `s`, parameters `p` and input
    /// row `x`, and compiles it; or says why it cannot be compiled.
    pub(crate) fn compile(
        step: &StepFn<T>,
        s: &[T],
        p: &[T],
        x: &[T],
        t: usize,
    ) -> Result<Self, Refusal> {
        if !T::MUL_BY_ONE_EXACT {
            return Err("the scalar type multiplies by 1 inexactly".into());
        }
        let (np, ns, w) = (p.len(), s.len(), x.len());
        let base = np + ns + w;
        let mut tape = Tape::<T>::with_capacity(base + 64);
        tape.set_tracing(true);
        let out: Vec<u32> = {
            let pv: Vec<Var<'_, T>> = p.iter().map(|&v| tape.var(v)).collect();
            let sv: Vec<Var<'_, T>> = s.iter().map(|&v| tape.var(v)).collect();
            let xv: Vec<Var<'_, T>> = x.iter().map(|&v| tape.var(v)).collect();
            let mut next = Vec::with_capacity(ns);
            step(&sv, &pv, &xv, t, &mut next);
            if next.len() != ns {
                return Err(format!(
                    "the step returned {} values for a state of {ns}",
                    next.len()
                ));
            }
            next.iter().map(|v| v.idx - 1).collect()
        };
        if !tape.customs_ref().is_empty() {
            return Err("the step contains a custom operation".into());
        }
        let trace = tape.trace();
        let arena = tape.nodes_ref();
        let mut code = Vec::with_capacity(arena.heads.len().saturating_sub(1 + base));
        let mut pc = 0;
        // the leaves store no partials
        for (i, &h) in arena.heads.iter().enumerate().skip(1 + base) {
            let kind = h & KIND_MASK;
            let op = trace[i].op;
            if kind == K_LEAF {
                return Err(format!("the step records a leaf ({op}) of its own"));
            }
            let rule = Rule::of(op, kind)
                .ok_or_else(|| format!("the operation `{op}` is not compiled"))?;
            let (p0, p1) = crate::tape::parents(h);
            let j = code.len();
            let (a, b) = ((p0 - 1) as u32, (p1.max(1) - 1) as u32);
            let two = matches!(rule.flow(), Flow::Binary | Flow::Add);
            let b = if two { b } else { a };
            if a as usize >= base + j || b as usize >= base + j {
                // (parents precede their node; the replay relies on it)
                return Err(format!("node {j} reads a later register"));
            }
            let prev = ((base + j) as u32).wrapping_sub(1);
            if j == 0 && two && a == b {
                return Err("the step's first operation uses one value twice".into());
            }
            let c = trace[i].constant.map_or(T::zero(), T::from_f64);
            let ins = Instr {
                rule,
                flow: rule.flow(),
                a,
                b,
                c,
                a_prev: j > 0 && a == prev,
                b_prev: j > 0 && two && b == prev,
            };
            // the replayed node must be the recorded one, bit for bit
            let v = |r: u32| {
                let r = r as usize;
                if r < np {
                    p[r]
                } else if r < np + ns {
                    s[r - np]
                } else if r < base {
                    x[r - np - ns]
                } else {
                    T::from_f64(trace[r + 1].value)
                }
            };
            let (val, d0, d1) = rule.eval(v(a), v(b), c);
            let n = crate::tape::n_partials(kind);
            let rec = &arena.partials[pc..pc + n];
            let same = |x: T, y: T| x.to_f64().to_bits() == y.to_f64().to_bits();
            let parts_ok = match n {
                0 => true,
                // sin and cos keep their argument, from which the sweep
                // derives the partial `d0` is (`tape::partial`)
                1 if kind == K_SIN || kind == K_COS => same(rec[0], v(a)),
                1 => same(rec[0], d0),
                _ => same(rec[0], d0) && same(rec[1], d1),
            };
            if !same(val, T::from_f64(trace[i].value)) || !parts_ok {
                return Err(format!(
                    "the replay of `{op}` (node {j}) differs from its recording"
                ));
            }
            pc += n;
            code.push(ins);
        }
        if code.is_empty() {
            return Err("the step records no operation".into());
        }
        for (k, &o) in out.iter().enumerate() {
            if (o as usize) < base {
                return Err(format!(
                    "value {k} of the next state is an input of the step"
                ));
            }
            if o as usize >= base + code.len() {
                return Err(format!("value {k} of the next state is not the step's"));
            }
            if out[..k].contains(&o) {
                return Err(format!("value {k} of the next state repeats another"));
            }
        }
        let (parts, saves, remat) = Self::plan(&code, np, ns, base);
        Ok(Program {
            np,
            ns,
            w,
            code,
            out,
            n_parts: saves.len(),
            parts,
            saves,
            remat,
            back: false,
            native: None,
        })
    }

    /// A traced inverse step (`traced.rs`): registers `[θ | s_{t+1} |
    /// x_t | nodes]`, `out` the registers of `s_t` (any, inputs too).
    pub(crate) fn inverse(
        np: usize,
        ns: usize,
        w: usize,
        code: Vec<Instr<T>>,
        out: Vec<u32>,
    ) -> Self {
        let (parts, saves, remat) = Self::plan(&code, np, ns, np + ns + w);
        Program {
            np,
            ns,
            w,
            n_parts: saves.len(),
            parts,
            saves,
            remat,
            code,
            out,
            back: true,
            native: None,
        }
    }

    /// What a step saves for its reverse sweep, and where the sweep finds
    /// each partial: only what the values of the parameters, the step's
    /// input row and the rules' constants do not already give. A
    /// product's partials are its operands' values (a parameter's is read
    /// from θ, any other value is saved once however many partials read
    /// it), `e^a`'s is the node's own value, a constant partial (`a - b`,
    /// `a · c`, `-a`) is not saved at all, and only the partials computed
    /// from the values (`cos a`, `1/b`, ...) are saved as such. A value
    /// that depends on the state is saved; one made of θ and the input row
    /// by plain arithmetic ([`Rule::recomputable`]) is recomputed by the
    /// sweep from the row, which the sweep reads anyway
    /// ([`Part::Remat`]): compositing's `c·α` and `1 − α` cost two
    /// operations there instead of four saved values (`c`, `α`, `1 − α`,
    /// `c·α`). The sweep
    /// multiplies by the same values as when every partial was stored, so
    /// the bits are the same; `bench ad`'s step saves 3 values instead of
    /// 5, the alpha compositing step 1 instead of 5. Returns the partials'
    /// places, the saves and the registers to recompute
    /// ([`Program::remat`]).
    #[allow(clippy::type_complexity)]
    fn plan(
        code: &[Instr<T>],
        np: usize,
        ns: usize,
        base: usize,
    ) -> (Vec<[Part<T>; 2]>, Vec<Save>, Vec<u32>) {
        fn slot<T>(saves: &mut Vec<Save>, s: Save) -> Part<T> {
            let k = saves.iter().position(|&x| x == s).unwrap_or_else(|| {
                saves.push(s);
                saves.len() - 1
            });
            Part::Slot(k as u32)
        }
        let len = base + code.len();
        // registers the sweep can recompute from θ and the input row
        let mut can = vec![false; len];
        can[np + ns..base].fill(true);
        for (j, ins) in code.iter().enumerate() {
            let from = |r: u32| (r as usize) < np || can[r as usize];
            can[base + j] = ins.rule.recomputable() && from(ins.a) && from(ins.b);
        }
        let mut needed = vec![false; len];
        let mut saves: Vec<Save> = Vec::new();
        let mut parts = Vec::with_capacity(code.len());
        let one = T::one();
        let unused = Part::Const(T::zero());
        for (j, ins) in code.iter().enumerate() {
            let sv = &mut saves;
            let nd = &mut needed;
            let mut reg = |sv: &mut Vec<Save>, r: u32| {
                if (r as usize) < np {
                    Part::Theta(r)
                } else if can[r as usize] {
                    nd[r as usize] = true;
                    Part::Remat(r)
                } else {
                    slot(sv, Save::Reg(r))
                }
            };
            let computed = |sv: &mut Vec<Save>, k: u8| slot(sv, Save::Computed(j as u32, k));
            let p = match ins.rule {
                Rule::Add | Rule::AddC | Rule::SubC => [unused, unused],
                Rule::Sub => [Part::Const(one), Part::Const(-one)],
                Rule::Mul => [reg(sv, ins.b), reg(sv, ins.a)],
                Rule::MulC => [Part::Const(ins.c), unused],
                // (rule::div_c and rule::quot_c round 1/c as here)
                Rule::DivC | Rule::QuotC => [Part::Const(one / ins.c), unused],
                Rule::RSubC | Rule::Neg => [Part::Const(-one), unused],
                Rule::Exp => [reg(sv, (base + j) as u32), unused],
                Rule::Div | Rule::Quot => [computed(sv, 0), computed(sv, 1)],
                Rule::Ln
                | Rule::Sqrt
                | Rule::Sin
                | Rule::Cos
                | Rule::Tanh
                | Rule::Sigmoid
                | Rule::RQuotC => [computed(sv, 0), unused],
            };
            parts.push(p);
        }
        // what the recomputed values are made of (operands precede nodes)
        for r in (base..len).rev() {
            if needed[r] {
                let ins = &code[r - base];
                for o in [ins.a, ins.b] {
                    if o as usize >= np {
                        needed[o as usize] = true;
                    }
                }
            }
        }
        let remat = (0..len).filter(|&r| needed[r]).map(|r| r as u32).collect();
        (parts, saves, remat)
    }

    /// Steps `b - 1` down to `a` of an inverse program: `s` holds `s_b`
    /// on the way in and `s_a` on the way out; rows `a..b` of `xs`. One
    /// native call where there is native code.
    pub(crate) fn inverse_steps(
        &self,
        work: &mut Work<T>,
        s: &mut [T],
        xs: &[T],
        (a, b): (usize, usize),
    ) {
        let (np, ns, w, base) = (self.np, self.ns, self.w, self.base());
        assert!(
            self.back
                && s.len() == ns
                && a <= b
                && xs.len() >= b * w
                && work.regs.len() == base + self.code.len()
        );
        if let Some(code) = &self.native {
            // SAFETY: lengths checked above; θ is `regs[..np]` (prepare);
            // the rows `a..b` end at row `b`.
            unsafe {
                code.forward(
                    Fwd::Back,
                    work.regs.as_ptr(),
                    s.as_mut_ptr(),
                    xs.as_ptr().add(b * w),
                    (b - a, std::ptr::null_mut()),
                );
            }
            return;
        }
        let regs = &mut work.regs;
        for t in (a..b).rev() {
            regs[np..np + ns].copy_from_slice(s);
            regs[np + ns..base].copy_from_slice(&xs[t * w..(t + 1) * w]);
            for (j, ins) in self.code.iter().enumerate() {
                let v = ins
                    .rule
                    .value(regs[ins.a as usize], regs[ins.b as usize], ins.c);
                regs[base + j] = v;
            }
            for (k, &o) in self.out.iter().enumerate() {
                s[k] = regs[o as usize];
            }
        }
    }

    /// Generates native code for the program (unless `CHAINRULE_JIT=0`
    /// or the host has none), keeping it only if one step from state `s`,
    /// parameters `p` and input row `x` gives the interpreter's values and
    /// partials bit for bit.
    pub(crate) fn attach_native(&mut self, s: &[T], p: &[T], x: &[T]) {
        self.native = None;
        if native_enabled() {
            self.build_native(s, p, x);
        }
    }

    /// [`Program::attach_native`] whatever `CHAINRULE_JIT` says (the
    /// tests that hold native code to the interpreter run under either).
    pub(crate) fn build_native(&mut self, s: &[T], p: &[T], x: &[T]) {
        self.native = None;
        if s.len() != self.ns || p.len() != self.np || x.len() != self.w {
            return;
        }
        let Ok(code) = Code::build(self) else {
            return;
        };
        let mut work = Work::default();
        if self.back {
            // one step back, natively and on the interpreter
            self.prepare(&mut work, p, 1);
            let mut want = s.to_vec();
            self.inverse_steps(&mut work, &mut want, x, (0, 1));
            let mut got = s.to_vec();
            // SAFETY: `p`, `got` and `x` hold the parameters, the state
            // and one input row (checked above).
            unsafe {
                code.forward(
                    Fwd::Back,
                    p.as_ptr(),
                    got.as_mut_ptr(),
                    x.as_ptr().add(x.len()),
                    (1, std::ptr::null_mut()),
                );
            }
            if value_bits(&got) == value_bits(&want) {
                self.native = Some(Arc::new(code));
            }
            return;
        }
        self.prepare(&mut work, p, 1);
        let mut want = Vec::new();
        let next = self.record_parts(&mut work, s, x, 1, &mut want);
        let mut st = s.to_vec();
        let mut got = vec![T::zero(); self.n_parts];
        // SAFETY: `p`, `st` and `x` hold the parameters, the state and one
        // input row (checked above); `got` one step's partials.
        unsafe {
            code.forward(
                Fwd::Parts,
                p.as_ptr(),
                st.as_mut_ptr(),
                x.as_ptr(),
                (1, got.as_mut_ptr()),
            );
        }
        if value_bits(&got) == value_bits(&want) && value_bits(&st) == value_bits(&next) {
            self.native = Some(Arc::new(code));
        }
    }

    /// The program with native code: that of an equal program run
    /// before if it is among the last [`NATIVE_CACHE`] (whatever
    /// recursion ran it), else new code (see [`Program::attach_native`]).
    pub(crate) fn with_native(mut self, s: &[T], p: &[T], x: &[T]) -> Self {
        if !native_enabled() {
            return self;
        }
        let Ok(mut cache) = NATIVE.lock() else {
            return self;
        };
        let hit = cache
            .iter()
            .filter_map(|c| c.downcast_ref::<Program<T>>())
            .find(|c| c.same_as(&self));
        if let Some(hit) = hit {
            self.native = hit.native.clone();
            return self;
        }
        self.attach_native(s, p, x);
        if self.is_native() {
            if cache.len() >= NATIVE_CACHE {
                cache.remove(0);
            }
            cache.push(Box::new(self.clone()));
        }
        self
    }

    /// Whether the step runs as native code.
    pub(crate) fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// The same program on the interpreter only (tests compare the two).
    #[cfg(test)]
    #[allow(dead_code)] // (unused without the `jit` feature)
    pub(crate) fn interpreted(&self) -> Self {
        Program {
            native: None,
            ..self.clone()
        }
    }

    /// Whether `other` runs the same operations on the same operands.
    pub(crate) fn same_as(&self, other: &Program<T>) -> bool {
        (self.np, self.ns, self.w, self.back) == (other.np, other.ns, other.w, other.back)
            && self.out == other.out
            && self.code.len() == other.code.len()
            && self.code.iter().zip(&other.code).all(|(x, y)| {
                x.rule == y.rule
                    && (x.a, x.b) == (y.a, y.b)
                    && x.c.to_f64().to_bits() == y.c.to_f64().to_bits()
            })
    }

    fn base(&self) -> usize {
        self.np + self.ns + self.w
    }

    /// Sizes `work` for blocks of up to `k` steps, with parameters `p`.
    pub(crate) fn prepare(&self, work: &mut Work<T>, p: &[T], k: usize) {
        let n = self.base() + self.code.len();
        work.regs.clear();
        work.regs.resize(n, T::zero());
        work.regs[..self.np].copy_from_slice(p);
        work.adj.clear();
        work.adj.resize(n, T::zero());
        work.parts.clear();
        work.parts.resize(k.max(1) * self.n_parts, T::zero());
    }

    /// Partials one step stores.
    pub(crate) fn parts_per_step(&self) -> usize {
        self.n_parts
    }

    /// One step's values and what it saves for the sweep ([`Program::plan`])
    /// from `parts` on, from the state and input row already in `regs`.
    /// Returns the last node's value.
    ///
    /// # Safety
    /// `regs` holds `base + code.len()` values and `parts` room for
    /// `n_parts`; every operand of instruction `j` is a register
    /// below `base + j` ([`Program::compile`] makes them so).
    #[inline(always)]
    unsafe fn run_step(&self, regs: *mut T, parts: *mut T) -> T {
        let base = self.base();
        // the value just computed, kept in a register for the next node
        let mut last = T::zero();
        for (j, ins) in self.code.iter().enumerate() {
            let x = if ins.a_prev {
                last
            } else {
                *regs.add(ins.a as usize)
            };
            let y = if ins.b_prev {
                last
            } else {
                *regs.add(ins.b as usize)
            };
            let mut d = [T::zero(); 2];
            let (v, _) = ins.rule.exec(x, y, ins.c, d.as_mut_ptr());
            for (k, &dk) in d.iter().enumerate().take(ins.rule.computed_parts()) {
                if let Part::Slot(slot) = self.parts[j][k] {
                    *parts.add(slot as usize) = dk;
                }
            }
            *regs.add(base + j) = v;
            last = v;
        }
        for (k, &sv) in self.saves.iter().enumerate() {
            if let Save::Reg(r) = sv {
                *parts.add(k) = *regs.add(r as usize);
            }
        }
        last
    }

    /// Runs steps `a..b` from state `s`, writing their partials from
    /// `parts` on; returns past the last one written.
    ///
    /// # Safety
    /// As [`Program::run_step`], with room for `b - a` steps' partials,
    /// `s.len() == ns` and rows `a..b` in `xs`.
    #[inline(always)]
    unsafe fn run_steps(
        &self,
        regs: *mut T,
        s: &[T],
        xs: &[T],
        (a, b): (usize, usize),
        mut parts: *mut T,
    ) -> *mut T {
        let (np, ns, w) = (self.np, self.ns, self.w);
        move_small(regs.add(np), s.as_ptr().cast_mut(), ns, false);
        for t in a..b {
            move_small(
                regs.add(np + ns),
                xs.as_ptr().add(t * w).cast_mut(),
                w,
                false,
            );
            let last = self.run_step(regs, parts);
            parts = parts.add(self.n_parts);
            self.advance(regs, last);
        }
        parts
    }

    /// Copies the next state's registers into the state's; `last` is the
    /// last node's value (taken from the register it is in).
    ///
    /// # Safety
    /// As [`Program::run_step`].
    #[inline(always)]
    unsafe fn advance(&self, regs: *mut T, last: T) {
        let last_reg = (self.base() + self.code.len() - 1) as u32;
        for (k, &o) in self.out.iter().enumerate() {
            *regs.add(self.np + k) = if o == last_reg {
                last
            } else {
                *regs.add(o as usize)
            };
        }
    }

    /// One step's reverse sweep: `lam` (∂/∂ its next state) in, ∂/∂ its
    /// state out; its parameters' contributions added into `adj[..np]`
    /// and its input row's into `gx`. `parts` points past the values the
    /// step saved; returns where they begin. `regs` holds the parameters;
    /// the registers the step recomputes ([`Program::remat`]) are
    /// written there from its input row `x`.
    ///
    /// # Safety
    /// `adj` and `regs` hold `base + code.len()` values, `adj` zero but
    /// for θ's; `lam` `ns`, `gx` and `x` `w`; `parts` is past `n_parts`
    /// saved values of this step.
    #[inline(always)]
    unsafe fn reverse_step(
        &self,
        adj: *mut T,
        regs: *mut T,
        parts: *const T,
        x: *const T,
        lam: *mut T,
        gx: *mut T,
    ) -> *const T {
        let (np, ns, w, base) = (self.np, self.ns, self.w, self.base());
        let start = parts.sub(self.n_parts);
        for &r in &self.remat {
            let r = r as usize;
            *regs.add(r) = if r < base {
                *x.add(r - np - ns)
            } else {
                let ins = &self.code[r - base];
                let (a, b) = (*regs.add(ins.a as usize), *regs.add(ins.b as usize));
                ins.rule.value(a, b, ins.c)
            };
        }
        // SAFETY: slots are below `n_parts`, registers below `regs.len()`.
        let part = |p: Part<T>| unsafe {
            match p {
                Part::Const(c) => c,
                Part::Theta(r) | Part::Remat(r) => *regs.add(r as usize),
                Part::Slot(k) => *start.add(k as usize),
            }
        };
        // contributions to the node just before, carried in a register
        // (the last node's seed starts there: 0 + (0 + λ) either way)
        let mut carry = T::zero();
        let last = (base + self.code.len() - 1) as u32;
        for (k, &o) in self.out.iter().enumerate() {
            if o == last {
                carry = T::zero() + *lam.add(k);
            } else {
                *adj.add(o as usize) += *lam.add(k);
            }
        }
        for (j, ins) in self.code.iter().enumerate().rev() {
            let g = *adj.add(base + j) + carry;
            carry = T::zero();
            // every adjoint register but θ's is left zero for the next step
            *adj.add(base + j) = T::zero();
            let (pa, pb) = (adj.add(ins.a as usize), adj.add(ins.b as usize));
            macro_rules! give {
                ($prev:expr, $p:expr, $g:expr) => {
                    if $prev {
                        carry += $g;
                    } else {
                        *$p += $g;
                    }
                };
            }
            match ins.flow {
                Flow::Binary => {
                    if g.is_zero() {
                        continue;
                    }
                    let [p0, p1] = self.parts[j];
                    give!(ins.a_prev, pa, g * part(p0));
                    give!(ins.b_prev, pb, g * part(p1));
                }
                Flow::Unary => {
                    if g.is_zero() {
                        continue;
                    }
                    give!(ins.a_prev, pa, g * part(self.parts[j][0]));
                }
                Flow::Add => {
                    if g.is_zero() {
                        continue;
                    }
                    give!(ins.a_prev, pa, g);
                    give!(ins.b_prev, pb, g);
                }
                Flow::Pass => {
                    if !g.is_zero() {
                        give!(ins.a_prev, pa, g);
                    }
                }
            }
        }
        move_small(lam, adj.add(np), ns, true);
        // (unrolled for small rows: a loop would be a call to `memset`)
        let xa = adj.add(np + ns);
        match w {
            0 => {}
            1 => {
                *gx += *xa;
                *xa = T::zero();
            }
            2 => {
                *gx += *xa;
                *gx.add(1) += *xa.add(1);
                *xa = T::zero();
                *xa.add(1) = T::zero();
            }
            _ => {
                for c in 0..w {
                    *gx.add(c) += *xa.add(c);
                    *xa.add(c) = T::zero();
                }
            }
        }
        start
    }

    /// The next state from `s` (values only): `s` is overwritten.
    pub(crate) fn values(&self, work: &mut Work<T>, s: &mut [T], x: &[T]) {
        let (np, ns, w) = (self.np, self.ns, self.w);
        assert!(
            s.len() == ns
                && x.len() == w
                && work.regs.len() == self.base() + self.code.len()
                && work.parts.len() >= self.n_parts
        );
        let regs = work.regs.as_mut_ptr();
        if let Some(code) = &self.native {
            // SAFETY: lengths checked above; θ is `regs[..np]` (prepare).
            unsafe {
                code.forward(
                    Fwd::Values,
                    regs,
                    s.as_mut_ptr(),
                    x.as_ptr(),
                    (1, std::ptr::null_mut()),
                );
            }
            return;
        }
        // SAFETY: the lengths are checked above; `out` and the operands
        // are registers below `regs.len()` (compile).
        unsafe {
            move_small(regs.add(np), s.as_ptr().cast_mut(), ns, false);
            move_small(regs.add(np + ns), x.as_ptr().cast_mut(), w, false);
            // (the partials go to the block buffer, unused)
            self.run_step(regs, work.parts.as_mut_ptr());
            for (k, &o) in self.out.iter().enumerate() {
                *s.get_unchecked_mut(k) = *regs.add(o as usize);
            }
        }
    }

    /// Runs steps `0..n` on values from `s` (overwritten by `s_n`), rows
    /// `0..n` of `xs`, appending every state before its step to `states`
    /// if given; in one call of the native code. `None` (nothing run)
    /// without native code or with fewer than `n` rows.
    pub(crate) fn values_steps(
        &self,
        work: &mut Work<T>,
        s: &mut [T],
        xs: &[T],
        n: usize,
        states: Option<&mut Vec<T>>,
    ) -> Option<()> {
        let code = self.native.as_ref()?;
        if s.len() != self.ns
            || xs.len() < n.checked_mul(self.w)?
            || work.regs.len() != self.base() + self.code.len()
        {
            return None;
        }
        let theta = work.regs.as_ptr();
        match states {
            Some(v) => {
                let len = v.len();
                v.reserve(n.checked_mul(self.ns)?);
                // SAFETY: θ is `regs[..np]` (prepare); `s` and the rows are
                // checked above; `n` states fit past `len` (reserved), and
                // are written before `set_len`.
                unsafe {
                    code.forward(
                        Fwd::Values,
                        theta,
                        s.as_mut_ptr(),
                        xs.as_ptr(),
                        (n, v.as_mut_ptr().add(len)),
                    );
                    v.set_len(len + n * self.ns);
                }
            }
            // SAFETY: as above, no states written.
            None => unsafe {
                code.forward(
                    Fwd::Values,
                    theta,
                    s.as_mut_ptr(),
                    xs.as_ptr(),
                    (n, std::ptr::null_mut()),
                );
            },
        }
        Some(())
    }

    /// Runs steps `0..n` from `s0`, appending every step's partials to
    /// `parts` (a tape without heads: the program says what each one
    /// is); returns the final state. [`Program::vjp_parts`] reverses it.
    pub(crate) fn record_parts(
        &self,
        work: &mut Work<T>,
        s0: &[T],
        xs: &[T],
        n: usize,
        parts: &mut Vec<T>,
    ) -> Vec<T> {
        let (np, ns, w) = (self.np, self.ns, self.w);
        assert!(
            s0.len() == ns && xs.len() >= n * w && work.regs.len() == self.base() + self.code.len()
        );
        parts.clear();
        parts.reserve_exact(n * self.n_parts);
        let regs = work.regs.as_mut_ptr();
        // SAFETY: lengths checked above; `parts` has room for `n` steps.
        unsafe {
            if let Some(code) = &self.native {
                move_small(regs.add(np), s0.as_ptr().cast_mut(), ns, false);
                code.forward(
                    Fwd::Parts,
                    regs,
                    regs.add(np),
                    xs.as_ptr(),
                    (n, parts.as_mut_ptr()),
                );
            } else {
                self.run_steps(regs, s0, xs, (0, n), parts.as_mut_ptr());
            }
            parts.set_len(n * self.n_parts);
        }
        work.regs[np..np + ns].to_vec()
    }

    /// The reverse of [`Program::record_parts`]: one sweep over every
    /// step, `lam` from ∂/∂s_n to ∂/∂s_0, θ's adjoints added into
    /// `theta_adj` (in sweep order), ∂/∂x into `g_x`; `xs` the rows the
    /// forward pass read (the sweep recomputes from them what the steps did
    /// not save).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vjp_parts(
        &self,
        work: &mut Work<T>,
        parts: &[T],
        xs: &[T],
        n: usize,
        lam: &mut [T],
        theta_adj: &mut [T],
        g_x: &mut [T],
    ) {
        let (np, w, base) = (self.np, self.w, self.base());
        let Work { regs, adj, .. } = work;
        assert!(
            adj.len() == base + self.code.len()
                && regs.len() == base + self.code.len()
                && parts.len() == n * self.n_parts
                && lam.len() == self.ns
                && theta_adj.len() == np
                && g_x.len() >= n * w
                && xs.len() >= n * w
        );
        if let Some(code) = &self.native {
            // SAFETY: lengths checked above.
            unsafe {
                code.rev(
                    regs.as_ptr(),
                    theta_adj.as_mut_ptr(),
                    parts.as_ptr().add(parts.len()),
                    lam.as_mut_ptr(),
                    (g_x.as_mut_ptr(), xs.as_ptr()),
                    n,
                );
            }
            return;
        }
        adj[..np].copy_from_slice(theta_adj);
        let (adjp, regs) = (adj.as_mut_ptr(), regs.as_mut_ptr());
        // SAFETY: lengths checked above; each step walks back over its
        // own `n_parts` saved values.
        unsafe {
            let mut src = parts.as_ptr().add(parts.len());
            for t in (0..n).rev() {
                let (gx, x) = (g_x.as_mut_ptr().add(t * w), xs.as_ptr().add(t * w));
                src = self.reverse_step(adjp, regs, src, x, lam.as_mut_ptr(), gx);
            }
        }
        theta_adj.copy_from_slice(&adj[..np]);
    }

    /// The first half of [`Program::vjp_block`] in native code: steps
    /// `a..b` from state `s` (at `a`), their saved values into the block
    /// buffer; `false` (nothing run) without native code. Then
    /// [`Program::block_rev`] sweeps the block back in pieces, so that a
    /// caller can interleave other work (an inverse walk) with the sweep.
    pub(crate) fn block_forward(
        &self,
        work: &mut Work<T>,
        s: &[T],
        xs: &[T],
        (a, b): (usize, usize),
    ) -> bool {
        let Some(code) = &self.native else {
            return false;
        };
        let (np, ns, w, l) = (self.np, self.ns, self.w, self.code.len());
        let Work { regs, parts, .. } = work;
        assert!(
            regs.len() == self.base() + l
                && parts.len() >= (b - a) * self.n_parts
                && s.len() == ns
                && xs.len() >= b * w
                && a <= b
        );
        let regs = regs.as_mut_ptr();
        // SAFETY: lengths checked above; θ is `regs[..np]` (prepare), the
        // state goes to `regs[np..np + ns]`, the block's saved values to
        // `parts`.
        unsafe {
            move_small(regs.add(np), s.as_ptr().cast_mut(), ns, false);
            code.forward(
                Fwd::Parts,
                regs,
                regs.add(np),
                xs.as_ptr().add(a * w),
                (b - a, parts.as_mut_ptr()),
            );
        }
        true
    }

    /// The sweep of steps `c1 - 1` down to `c0` of the block `a..b` whose
    /// saved values [`Program::block_forward`] wrote: `lam`, `theta_adj`
    /// and `g_x` as in [`Program::vjp_block`]. Sweeping `a..b` in pieces
    /// from the end gives the bits of one sweep: θ's adjoints and the rows
    /// are summed in the same order, and `λ` leaves each piece as `0 + λ`,
    /// which the next step starts from anyway (`jit.rs`). `xs` holds the
    /// per-step input rows (from row 0), whence the sweep recomputes what
    /// the step did not save ([`Part::Remat`]).
    ///
    /// # Panics
    /// Without native code, or if `a <= c0 <= c1 <= b` does not hold.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn block_rev(
        &self,
        work: &mut Work<T>,
        xs: &[T],
        (a, b): (usize, usize),
        (c0, c1): (usize, usize),
        lam: &mut [T],
        theta_adj: &mut [T],
        g_x: &mut [T],
    ) {
        let code = self.native.as_ref().expect("block_rev: native code only");
        let w = self.w;
        let Work { regs, parts, .. } = work;
        assert!(
            a <= c0
                && c0 <= c1
                && c1 <= b
                && regs.len() >= self.np
                && parts.len() >= (b - a) * self.n_parts
                && lam.len() == self.ns
                && theta_adj.len() == self.np
                && g_x.len() >= c1 * w
                && xs.len() >= c1 * w
        );
        // SAFETY: lengths checked above; steps `c0..c1` of the block keep
        // their saved values at `(c0 - a)..(c1 - a)` of the buffer.
        unsafe {
            code.rev(
                regs.as_ptr(),
                theta_adj.as_mut_ptr(),
                parts.as_ptr().add((c1 - a) * self.n_parts),
                lam.as_mut_ptr(),
                (g_x.as_mut_ptr().add(c0 * w), xs.as_ptr().add(c0 * w)),
                c1 - c0,
            );
        }
    }

    /// The vector-Jacobian product of steps `a..b` from state `s` (at
    /// `a`): `lam` is ∂/∂s_b on the way in and ∂/∂s_a on the way out; the
    /// parameters' contributions are added into `theta_adj` (in sweep
    /// order) and ∂/∂x_t of rows `a..b` into `g_x`. See the module
    /// documentation for why this is the recorded block's sweep, bit for
    /// bit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vjp_block(
        &self,
        work: &mut Work<T>,
        s: &[T],
        xs: &[T],
        (a, b): (usize, usize),
        lam: &mut [T],
        theta_adj: &mut [T],
        g_x: &mut [T],
    ) {
        // native code: the block's forward pass, then its whole sweep
        if self.block_forward(work, s, xs, (a, b)) {
            self.block_rev(work, xs, (a, b), (a, b), lam, theta_adj, g_x);
            return;
        }
        let (np, ns, w, base, l) = (self.np, self.ns, self.w, self.base(), self.code.len());
        let Work { regs, adj, parts } = work;
        assert!(
            regs.len() == base + l
                && adj.len() == base + l
                && parts.len() >= (b - a) * self.n_parts
                && s.len() == ns
                && lam.len() == ns
                && theta_adj.len() == np
                && xs.len() >= b * w
                && g_x.len() >= b * w
                && a <= b
        );
        adj[..np].copy_from_slice(theta_adj);
        let (regs, adjp, parts) = (regs.as_mut_ptr(), adj.as_mut_ptr(), parts.as_mut_ptr());
        // SAFETY: the lengths are checked above; operands and outputs are
        // registers below `base + l` (compile); rows `a..b` lie in `xs`
        // and `g_x`; each step writes and then reads back its own partials.
        unsafe {
            let mut src = self.run_steps(regs, s, xs, (a, b), parts).cast_const();
            for t in (a..b).rev() {
                let (gx, x) = (g_x.as_mut_ptr().add(t * w), xs.as_ptr().add(t * w));
                src = self.reverse_step(adjp, regs, src, x, lam.as_mut_ptr(), gx);
            }
        }
        theta_adj.copy_from_slice(&adj[..np]);
    }
}

/// Whether compiled steps may run as native code: yes unless the
/// environment variable `CHAINRULE_JIT` is `0` (the interpreter then runs
/// everywhere; the two give the same bits).
fn native_enabled() -> bool {
    std::env::var_os("CHAINRULE_JIT").is_none_or(|v| v != "0")
}

/// Programs with native code, most recent last: a recursion run again
/// (or another with the same step) does not generate its code again.
static NATIVE: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());

/// How many programs [`NATIVE`] keeps.
const NATIVE_CACHE: usize = 16;

/// The bits of each value, every NaN as one. Which NaN an operation on
/// two NaNs returns (its sign and payload) depends on the order of its
/// operands, which neither Rust nor the code generators keep for
/// commutative operations (LLVM may swap a product's operands, and Rust
/// promises no NaN's sign or payload): native code and the interpreter
/// agree when they agree on every number and on which values are NaN.
pub(crate) fn value_bits<T: Scalar>(v: &[T]) -> Vec<u64> {
    v.iter()
        .map(|x| {
            let x = x.to_f64();
            if x.is_nan() {
                f64::NAN.to_bits()
            } else {
                x.to_bits()
            }
        })
        .collect()
}
