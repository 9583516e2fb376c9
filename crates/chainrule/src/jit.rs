//! Native code for a compiled recurrence step (Cranelift).
//!
//! [`Code::build`] turns a [`Program`] into three machine-code functions:
//! the forward pass of `n` steps keeping what every step's sweep needs
//! (`Program::plan`, the layout the interpreter writes), the forward pass
//! of `n` steps on values only (optionally writing every state), and the
//! reverse sweep of `n` steps over those values and the steps' input rows
//! (whence it recomputes what was not saved); and for a traced inverse
//! step (`traced.rs`) one function, its values over `n` steps backwards.
//! Registers of the instruction list become SSA values, so operands live in machine registers instead of memory,
//! and there is no decoding and no jump per node.
//!
//! It is exact: the code performs the interpreter's IEEE operations on
//! the same operands in the same order (Cranelift neither fuses nor
//! reassociates floating-point operations), and every transcendental
//! function (`exp ln sin cos tanh σ`) is a call to the very `ops::rule`
//! function the `Var` operators and the interpreter use. Three liberties
//! are taken where they cannot change a result:
//! - an adjoint known to be `+0` plus `v` is taken as `v` for the
//!   adjoints of the step's nodes, the carried register and the state's
//!   adjoint during the sweep: these are only ever tested for zero
//!   (`is_zero` cannot tell `−0` from `+0`) or, when non-zero, multiplied
//!   and added, where `+0 + v` is `v`;
//! - the state's adjoint handed back (`λ`) is therefore summed without the
//!   interpreter's leading `0 +`, and `+0` is added once at the end: a sum
//!   `((0 + v₁) + v₂) + …` equals `((v₁ + v₂) + …) + 0` bit for bit (both
//!   differ from the bare sum only where it is `−0`);
//! - the parameters' and per-step inputs' adjoints, whose zeros the caller
//!   sees, are summed exactly as the interpreter does.
//!
//! [`Program::compile`] checks the forward code against the recording bit
//! for bit, as it checks the interpreter; if Cranelift does not support
//! the host, or anything fails, the interpreter runs instead.

use std::any::TypeId;

use cranelift_codegen::entity::EntityRef;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlags, Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

use crate::compiled::{Flow, Part, Program, Rule, Save};
use crate::ops::rule;
use crate::scalar::Scalar;

/// `fwd_parts(θ, s, xs, n, parts)`: steps `0..n` from the state at `s`
/// (overwritten by the final state), rows of `xs`, saved values
/// (`Program::plan`) from `parts` on.
type FwdParts<T> = unsafe extern "C" fn(*const T, *mut T, *const T, usize, *mut T);
/// `fwd_values(θ, s, xs, n, states)`: as `FwdParts` on values only; if
/// `states` is not null, the state before each step is written there.
type FwdValues<T> = unsafe extern "C" fn(*const T, *mut T, *const T, usize, *mut T);
/// `rev(θ, θ̄, parts_end, λ, gx, xs, n)`: the sweep of steps `n-1..0` over
/// the saved values ending at `parts_end` (`Program::plan`); `λ` in and
/// out, `θ̄` added into, `gx` (rows `0..n`) added into; `xs` the steps'
/// input rows `0..n`, whence the values not saved are recomputed
/// (`Program::remat`).
type Rev<T> = unsafe extern "C" fn(*const T, *mut T, *const T, *mut T, *mut T, *const T, usize);

/// Which forward function [`Code::forward`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fwd {
    /// Values and every step's partials.
    Parts,
    /// Values only (and optionally every state).
    Values,
    /// Values only, over the rows backwards, ending at `xs` (a traced
    /// inverse step, `Program::inverse_steps`); no states written.
    Back,
}

/// A step's native code (see the module documentation).
pub(crate) struct Code<T> {
    module: Option<JITModule>,
    /// A step's three functions, or (an inverse step) one.
    fns: Fns<T>,
}

/// The functions of a step, or of an inverse step.
enum Fns<T> {
    Step {
        fwd_parts: FwdParts<T>,
        fwd_values: FwdValues<T>,
        rev: Rev<T>,
    },
    Back(FwdValues<T>),
}

// SAFETY: after `finalize_definitions` the module is only touched by
// `Drop` (which owns it); the functions are immutable machine code that
// reads and writes only through the pointers it is given.
unsafe impl<T> Send for Code<T> {}
unsafe impl<T> Sync for Code<T> {}

impl<T> Drop for Code<T> {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no function pointer outlives `self`.
            unsafe { m.free_memory() };
        }
    }
}

impl<T> std::fmt::Debug for Code<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(native)")
    }
}

/// Calls of the transcendental rules: value returned, partial written
/// through the pointer (the slot of the step's partials).
macro_rules! rule_calls {
    ($($name:ident => $rule:path),* $(,)?) => {
        $(
            #[allow(improper_ctypes_definitions)]
            extern "C" fn $name<T: Scalar>(a: T, d: *mut T) -> T {
                let (v, p) = $rule(a);
                if !d.is_null() {
                    // SAFETY: the generated code passes a slot of the
                    // step's partials, or null for values only.
                    unsafe { *d = p };
                }
                v
            }
        )*
    };
}

rule_calls! {
    call_exp => rule::exp,
    call_ln => rule::ln,
    call_sin => rule::sin,
    call_cos => rule::cos,
    call_tanh => rule::tanh,
    call_sigmoid => rule::sigmoid,
}

/// Values only: the same functions with the partial dropped.
macro_rules! value_calls {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(
            #[allow(improper_ctypes_definitions)]
            extern "C" fn $name<T: Scalar>(a: T) -> T {
                #[allow(clippy::redundant_closure_call)]
                ($f)(a)
            }
        )*
    };
}

value_calls! {
    value_exp => |a: T| rule::exp(a).0,
    value_ln => |a: T| rule::ln(a).0,
    value_sin => |a: T| a.sin(),
    value_cos => |a: T| a.cos(),
    value_tanh => |a: T| rule::tanh(a).0,
    value_sigmoid => |a: T| rule::sigmoid(a).0,
}

/// The Cranelift type of `T`, if native code handles it.
fn float_type<T: Scalar>() -> Option<Type> {
    let id = TypeId::of::<T>();
    if id == TypeId::of::<f64>() {
        Some(types::F64)
    } else if id == TypeId::of::<f32>() {
        Some(types::F32)
    } else {
        None
    }
}

/// What a function is being generated for.
struct Gen<'a, T: Scalar> {
    prog: &'a Program<T>,
    ty: Type,
    ptr: Type,
    sz: i32,
    cc: CallConv,
}

const MEM: MemFlags = MemFlags::trusted();

impl<T: Scalar> Gen<'_, T> {
    fn konst(&self, b: &mut FunctionBuilder<'_>, v: T) -> Value {
        if self.ty == types::F64 {
            b.ins().f64const(v.to_f64())
        } else {
            b.ins().f32const(v.to_f64() as f32)
        }
    }

    fn load(&self, b: &mut FunctionBuilder<'_>, p: Value, i: usize) -> Value {
        b.ins().load(self.ty, MEM, p, self.sz * i as i32)
    }

    fn store(&self, b: &mut FunctionBuilder<'_>, v: Value, p: Value, i: usize) {
        b.ins().store(MEM, v, p, self.sz * i as i32);
    }

    /// The value of a [`Rule::recomputable`] rule on `x`, `y` and its
    /// constant `c` (one IEEE operation, as the interpreter's), or `None`
    /// for any other rule.
    fn plain(
        &self,
        b: &mut FunctionBuilder<'_>,
        rule: Rule,
        x: Value,
        y: Value,
        c: T,
    ) -> Option<Value> {
        Some(match rule {
            Rule::Add => b.ins().fadd(x, y),
            Rule::AddC => {
                let c = self.konst(b, c);
                b.ins().fadd(x, c)
            }
            Rule::SubC => {
                let c = self.konst(b, c);
                b.ins().fsub(x, c)
            }
            Rule::Sub => b.ins().fsub(x, y),
            Rule::Mul => b.ins().fmul(x, y),
            Rule::MulC => {
                let k = self.konst(b, c);
                b.ins().fmul(x, k)
            }
            Rule::DivC => {
                // rule::div_c: a · (1/c), 1/c rounded as at run time
                let k = self.konst(b, T::one() / c);
                b.ins().fmul(x, k)
            }
            Rule::RSubC => {
                let k = self.konst(b, c);
                b.ins().fsub(k, x)
            }
            Rule::Neg => b.ins().fneg(x),
            _ => return None,
        })
    }

    /// `f(a, d)` (partial through `d`) or `f(a)`.
    fn call(&self, b: &mut FunctionBuilder<'_>, f: usize, a: Value, d: Option<Value>) -> Value {
        let mut sig = Signature::new(self.cc);
        sig.params.push(AbiParam::new(self.ty));
        if d.is_some() {
            sig.params.push(AbiParam::new(self.ptr));
        }
        sig.returns.push(AbiParam::new(self.ty));
        let sig = b.import_signature(sig);
        let callee = b.ins().iconst(self.ptr, f as i64);
        let call = match d {
            Some(d) => b.ins().call_indirect(sig, callee, &[a, d]),
            None => b.ins().call_indirect(sig, callee, &[a]),
        };
        b.inst_results(call)[0]
    }

    /// One step forward: `regs` holds θ, s and x; the nodes' values are
    /// appended. With `parts` (pointer to the step's first saved value)
    /// the step's saved values are stored as the interpreter stores them
    /// (`Program::plan`), each as soon as it is known.
    fn step_forward(
        &self,
        b: &mut FunctionBuilder<'_>,
        regs: &mut Vec<Value>,
        parts: Option<Value>,
    ) {
        let prog = self.prog;
        let base = prog.np + prog.ns + prog.w;
        // the saved register values in `rs`, stored as soon as they exist
        let save = |b: &mut FunctionBuilder<'_>, regs: &[Value], rs: std::ops::Range<usize>| {
            let Some(p) = parts else { return };
            for (k, sv) in prog.saves.iter().enumerate() {
                if let Save::Reg(r) = *sv {
                    if rs.contains(&(r as usize)) {
                        self.store(b, regs[r as usize], p, k);
                    }
                }
            }
        };
        // the state and the input row
        save(b, regs, prog.np..base);
        for (j, ins) in prog.code.iter().enumerate() {
            // the slot of the node's computed partial k
            let off = |k: usize| match prog.parts[j][k] {
                Part::Slot(s) => s as usize,
                _ => unreachable!("a computed partial has a slot"),
            };
            let (x, y) = (regs[ins.a as usize], regs[ins.b as usize]);
            let c = ins.c;
            let one = T::one();
            // the slot of the node's first partial
            let slot = |b: &mut FunctionBuilder<'_>, k: usize| {
                parts.map(|p| b.ins().iadd_imm(p, i64::from(self.sz) * off(k) as i64))
            };
            // (plain arithmetic has constant partials or operands' values:
            // nothing to store here, see `Program::plan`)
            let v = match ins.rule {
                r if r.recomputable() => self
                    .plain(b, r, x, y, c)
                    .expect("plain arithmetic has a value"),
                Rule::Div => {
                    let o = self.konst(b, one);
                    let inv = b.ins().fdiv(o, y);
                    let q = b.ins().fmul(x, inv);
                    if let Some(p) = parts {
                        let nq = b.ins().fneg(q);
                        let d1 = b.ins().fmul(nq, inv);
                        self.store(b, inv, p, off(0));
                        self.store(b, d1, p, off(1));
                    }
                    q
                }
                Rule::Quot => {
                    let q = b.ins().fdiv(x, y);
                    if let Some(p) = parts {
                        let o = self.konst(b, one);
                        let inv = b.ins().fdiv(o, y);
                        let nq = b.ins().fneg(q);
                        let d1 = b.ins().fdiv(nq, y);
                        self.store(b, inv, p, off(0));
                        self.store(b, d1, p, off(1));
                    }
                    q
                }
                Rule::QuotC => {
                    let k = self.konst(b, c);
                    let v = b.ins().fdiv(x, k);
                    if let Some(p) = parts {
                        let d = self.konst(b, one / c);
                        self.store(b, d, p, off(0));
                    }
                    v
                }
                Rule::RQuotC => {
                    let k = self.konst(b, c);
                    let q = b.ins().fdiv(k, x);
                    if let Some(p) = parts {
                        let nq = b.ins().fneg(q);
                        let d = b.ins().fdiv(nq, x);
                        self.store(b, d, p, off(0));
                    }
                    q
                }
                Rule::Sqrt => {
                    let v = b.ins().sqrt(x);
                    if let Some(p) = parts {
                        let h = self.konst(b, T::from_f64(0.5));
                        let d = b.ins().fdiv(h, v);
                        self.store(b, d, p, off(0));
                    }
                    v
                }
                r => {
                    let (with, without): (extern "C" fn(T, *mut T) -> T, extern "C" fn(T) -> T) =
                        match r {
                            Rule::Exp => (call_exp::<T>, value_exp::<T>),
                            Rule::Ln => (call_ln::<T>, value_ln::<T>),
                            Rule::Sin => (call_sin::<T>, value_sin::<T>),
                            Rule::Cos => (call_cos::<T>, value_cos::<T>),
                            Rule::Tanh => (call_tanh::<T>, value_tanh::<T>),
                            _ => (call_sigmoid::<T>, value_sigmoid::<T>),
                        };
                    match slot(b, 0) {
                        Some(d) => self.call(b, with as usize, x, Some(d)),
                        None => self.call(b, without as usize, x, None),
                    }
                }
            };
            regs.push(v);
            save(b, regs, base + j..base + j + 1);
        }
    }

    /// The entry block with the function's parameters, and `(counter
    /// variable, loop header, loop body, exit)`.
    fn frame(
        &self,
        b: &mut FunctionBuilder<'_>,
        counter: Variable,
        n: Value,
    ) -> (Block, Block, Block) {
        let (head, body, exit) = (b.create_block(), b.create_block(), b.create_block());
        b.declare_var(counter, self.ptr);
        b.def_var(counter, n);
        b.ins().jump(head, &[]);
        b.switch_to_block(head);
        let i = b.use_var(counter);
        let done = b.ins().icmp_imm(IntCC::Equal, i, 0);
        b.ins().brif(done, exit, &[], body, &[]);
        b.switch_to_block(body);
        let i = b.use_var(counter);
        let i = b.ins().iadd_imm(i, -1);
        b.def_var(counter, i);
        (head, body, exit)
    }

    /// The forward pass of `n` steps (with partials, or values only;
    /// `back`: values only over the rows backwards, from the row before
    /// `xs`).
    fn forward(&self, b: &mut FunctionBuilder<'_>, with_parts: bool, back: bool) {
        let p = self.prog;
        let (np, ns, w) = (p.np, p.ns, p.w);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let args = b.block_params(entry).to_vec();
        let (theta, s, xs, n, out) = (args[0], args[1], args[2], args[3], args[4]);
        let theta_v: Vec<Value> = (0..np).map(|i| self.load(b, theta, i)).collect();
        // variables: 0 counter, 1 xs row, 2 out pointer, 3.. the state
        let (counter, row, outp) = (Variable::new(0), Variable::new(1), Variable::new(2));
        let state: Vec<Variable> = (0..ns).map(|k| Variable::new(3 + k)).collect();
        b.declare_var(row, self.ptr);
        b.def_var(row, xs);
        b.declare_var(outp, self.ptr);
        b.def_var(outp, out);
        for (k, &v) in state.iter().enumerate() {
            b.declare_var(v, self.ty);
            let x = self.load(b, s, k);
            b.def_var(v, x);
        }
        let (head, _body, exit) = self.frame(b, counter, n);
        let mut regs = theta_v;
        let sv: Vec<Value> = state.iter().map(|&v| b.use_var(v)).collect();
        regs.extend_from_slice(&sv);
        let r = b.use_var(row);
        let row_bytes = i64::from(self.sz) * w as i64;
        let r = if back {
            b.ins().iadd_imm(r, -row_bytes)
        } else {
            r
        };
        for c in 0..w {
            let x = self.load(b, r, c);
            regs.push(x);
        }
        let r = if back {
            r
        } else {
            b.ins().iadd_imm(r, row_bytes)
        };
        b.def_var(row, r);
        let o = b.use_var(outp);
        if back {
            self.step_forward(b, &mut regs, None);
        } else if with_parts {
            self.step_forward(b, &mut regs, Some(o));
            let o = b.ins().iadd_imm(o, i64::from(self.sz) * p.n_parts as i64);
            b.def_var(outp, o);
        } else {
            // the state before the step, if asked for
            let (store, cont) = (b.create_block(), b.create_block());
            b.ins().brif(o, store, &[], cont, &[]);
            b.switch_to_block(store);
            for (k, &v) in sv.iter().enumerate() {
                self.store(b, v, o, k);
            }
            let o2 = b.ins().iadd_imm(o, i64::from(self.sz) * ns as i64);
            b.def_var(outp, o2);
            b.ins().jump(cont, &[]);
            b.switch_to_block(cont);
            self.step_forward(b, &mut regs, None);
        }
        for (k, &o) in p.out.iter().enumerate() {
            b.def_var(state[k], regs[o as usize]);
        }
        b.ins().jump(head, &[]);
        b.switch_to_block(exit);
        for (k, &v) in state.iter().enumerate() {
            let x = b.use_var(v);
            self.store(b, x, s, k);
        }
        b.ins().return_(&[]);
    }

    /// The reverse sweep of `n` steps (see the module documentation for
    /// how its sums are kept equal to the interpreter's).
    fn reverse(&self, b: &mut FunctionBuilder<'_>) {
        let p = self.prog;
        let (np, ns, w) = (p.np, p.ns, p.w);
        let base = np + ns + w;
        let l = p.code.len();
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let args = b.block_params(entry).to_vec();
        let (theta, tadj, parts_end, lam_p, gx, xs, n) = (
            args[0], args[1], args[2], args[3], args[4], args[5], args[6],
        );
        // the parameters' values some partials are (loop invariant)
        let theta_v: Vec<Value> = (0..np).map(|i| self.load(b, theta, i)).collect();
        // variables: 0 counter, 1 partials pointer, 2 gx row, 3 carry,
        // 4.. the adjoint registers, then λ, then the xs row
        let (counter, pp, gxr, carry) = (
            Variable::new(0),
            Variable::new(1),
            Variable::new(2),
            Variable::new(3),
        );
        let adj = |r: usize| Variable::new(4 + r);
        let lam: Vec<Variable> = (0..ns).map(|k| Variable::new(4 + base + l + k)).collect();
        let xr = Variable::new(4 + base + l + ns);
        b.declare_var(pp, self.ptr);
        b.def_var(pp, parts_end);
        b.declare_var(gxr, self.ptr);
        // past the last row
        let nw = b.ins().imul_imm(n, i64::from(self.sz) * w as i64);
        let end = b.ins().iadd(gx, nw);
        b.def_var(gxr, end);
        // the input rows are read only for values recomputed from them
        let reads_x = p.remat.iter().any(|&r| (r as usize) < base);
        if reads_x {
            b.declare_var(xr, self.ptr);
            let end = b.ins().iadd(xs, nw);
            b.def_var(xr, end);
        }
        b.declare_var(carry, self.ty);
        for r in 0..base + l {
            b.declare_var(adj(r), self.ty);
        }
        let zero = self.konst(b, T::zero());
        for r in np..base + l {
            b.def_var(adj(r), zero);
        }
        b.def_var(carry, zero);
        for i in 0..np {
            let x = self.load(b, tadj, i);
            b.def_var(adj(i), x);
        }
        for (k, &v) in lam.iter().enumerate() {
            b.declare_var(v, self.ty);
            let x = self.load(b, lam_p, k);
            b.def_var(v, x);
        }
        let (head, _body, exit) = self.frame(b, counter, n);
        // per step
        let q = b.use_var(pp);
        let q = b
            .ins()
            .iadd_imm(q, -(i64::from(self.sz) * p.n_parts as i64));
        b.def_var(pp, q);
        // the values recomputed from θ and the input row (`Program::plan`)
        let mut re: Vec<Option<Value>> = vec![None; base + l];
        let row = reads_x.then(|| {
            let r = b.use_var(xr);
            let r = b.ins().iadd_imm(r, -(i64::from(self.sz) * w as i64));
            b.def_var(xr, r);
            r
        });
        for &r in &p.remat {
            let r = r as usize;
            let v = match (r.checked_sub(base), row) {
                (None, Some(row)) => self.load(b, row, r - np - ns),
                (Some(j), _) => {
                    let ins = &p.code[j];
                    let of = |o: u32| match re[o as usize] {
                        Some(v) => v,
                        None => theta_v[o as usize],
                    };
                    let (x, y) = (of(ins.a), of(ins.b));
                    self.plain(b, ins.rule, x, y, ins.c)
                        .expect("only plain arithmetic is recomputed")
                }
                (None, None) => unreachable!("an input is recomputed from its row"),
            };
            re[r] = Some(v);
        }
        // "known +0" for every register but θ's, and the carry (index base + l)
        let mut zero_known = vec![true; base + l + 1];
        zero_known[..np].fill(false);
        let carry_ix = base + l;
        let var_of = |r: usize| if r == carry_ix { carry } else { adj(r) };
        // registers whose zeros the caller sees are summed exactly
        let exact = |r: usize| r < np || (np + ns..base).contains(&r);
        let last = (base + l - 1) as u32;
        for (k, &o) in p.out.iter().enumerate() {
            let lv = b.use_var(lam[k]);
            let t = if o == last { carry_ix } else { o as usize };
            b.def_var(var_of(t), lv);
            zero_known[t] = false;
        }
        for (j, ins) in p.code.iter().enumerate().rev() {
            let r = base + j;
            // g = adj[r] + carry
            let g = match (zero_known[r], zero_known[carry_ix]) {
                (true, true) => None,
                (true, false) => Some(b.use_var(carry)),
                (false, true) => Some(b.use_var(adj(r))),
                (false, false) => {
                    let (x, y) = (b.use_var(adj(r)), b.use_var(carry));
                    Some(b.ins().fadd(x, y))
                }
            };
            zero_known[carry_ix] = true;
            let Some(g) = g else { continue };
            let ta = if ins.a_prev { carry_ix } else { ins.a as usize };
            let tb = if ins.b_prev { carry_ix } else { ins.b as usize };
            let two = matches!(ins.flow, Flow::Binary | Flow::Add);
            let targets: &[usize] = if two { &[ta, tb] } else { &[ta] };
            // a target still at +0 gets an explicit +0 for the path that
            // skips (g == 0)
            for &t in targets {
                if zero_known[t] {
                    b.def_var(var_of(t), zero);
                }
            }
            let (doit, merge) = (b.create_block(), b.create_block());
            let z = self.konst(b, T::zero());
            let is_zero = b.ins().fcmp(FloatCC::Equal, g, z);
            b.ins().brif(is_zero, merge, &[], doit, &[]);
            b.switch_to_block(doit);
            let pq = b.use_var(pp);
            // the partial: a constant, θ's value or a saved value
            let part = |b: &mut FunctionBuilder<'_>, k: usize| match p.parts[j][k] {
                Part::Const(c) => self.konst(b, c),
                Part::Theta(r) => theta_v[r as usize],
                Part::Remat(r) => re[r as usize].expect("recomputed above"),
                Part::Slot(s) => self.load(b, pq, s as usize),
            };
            let contribs: Vec<Value> = match ins.flow {
                Flow::Binary => {
                    let (p0, p1) = (part(b, 0), part(b, 1));
                    vec![b.ins().fmul(g, p0), b.ins().fmul(g, p1)]
                }
                Flow::Unary => {
                    let p0 = part(b, 0);
                    vec![b.ins().fmul(g, p0)]
                }
                Flow::Add => vec![g, g],
                Flow::Pass => vec![g],
            };
            let mut zk: Vec<(usize, bool)> = targets.iter().map(|&t| (t, zero_known[t])).collect();
            for (i, &c) in contribs.iter().enumerate() {
                let t = targets[i];
                let first = zk.iter().find(|e| e.0 == t).map(|e| e.1).unwrap_or(false);
                let v = if first && !exact(t) {
                    c
                } else {
                    let old = b.use_var(var_of(t));
                    b.ins().fadd(old, c)
                };
                b.def_var(var_of(t), v);
                for e in zk.iter_mut().filter(|e| e.0 == t) {
                    e.1 = false;
                }
            }
            b.ins().jump(merge, &[]);
            b.switch_to_block(merge);
            for &t in targets {
                zero_known[t] = false;
            }
        }
        // λ ← the state's adjoints (known +0 → +0), reset for the next step
        for k in 0..ns {
            let v = if zero_known[np + k] {
                zero
            } else {
                b.use_var(adj(np + k))
            };
            b.def_var(lam[k], v);
        }
        if w > 0 {
            let row = b.use_var(gxr);
            let row = b.ins().iadd_imm(row, -(i64::from(self.sz) * w as i64));
            b.def_var(gxr, row);
            for c in 0..w {
                let old = self.load(b, row, c);
                let a = b.use_var(adj(np + ns + c));
                let v = b.ins().fadd(old, a);
                self.store(b, v, row, c);
            }
        }
        for r in np..base + l {
            b.def_var(adj(r), zero);
        }
        b.ins().jump(head, &[]);
        b.switch_to_block(exit);
        for i in 0..np {
            let x = b.use_var(adj(i));
            self.store(b, x, tadj, i);
        }
        for (k, &v) in lam.iter().enumerate() {
            // ((v₁ + v₂) + …) + 0 = ((0 + v₁) + v₂) + …, bit for bit
            let x = b.use_var(v);
            let x = b.ins().fadd(x, zero);
            self.store(b, x, lam_p, k);
        }
        b.ins().return_(&[]);
    }
}

impl<T: Scalar> Code<T> {
    /// Native code for `prog`, or why there is none (the interpreter runs).
    pub(crate) fn build(prog: &Program<T>) -> Result<Self, String> {
        let ty = float_type::<T>().ok_or("no native code for this scalar type")?;
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v)
                .map_err(|e| format!("cranelift setting {k}: {e}"))
        };
        // "none", not "speed": the optimiser's elaboration places each
        // pure operation at its first use, which moves a step's products
        // of the state after a library call (`sin`), so the state lives
        // across the call and the register allocator keeps it in a stack
        // slot across the loop's back edge: a store and a reload on the
        // recursion's chain (`bench ad`: about 10% of the step). Without
        // it the code keeps the instruction list's order; the sweep's
        // code is the same length either way, and it generates faster.
        set(&mut flags, "opt_level", "none")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        // (the generated functions are checked against the interpreter
        // and by tests; Cranelift's IR verifier would double the time)
        set(
            &mut flags,
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("no code generator for this host: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("cranelift: {e}"))?;
        let cc = isa.default_call_conv();
        let ptr = isa.pointer_type();
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let gen = Gen {
            prog,
            ty,
            ptr,
            sz: std::mem::size_of::<T>() as i32,
            cc,
        };
        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        let mut ids = Vec::with_capacity(3);
        let fns: &[(&str, u8)] = if prog.back {
            &[("back", 3)]
        } else {
            &[("fwd_parts", 0), ("fwd_values", 1), ("rev", 2)]
        };
        for &(name, which) in fns {
            ctx.func.signature = Signature::new(cc);
            // (five pointer-sized arguments, seven for the sweep)
            for _ in 0..if which == 2 { 7 } else { 5 } {
                ctx.func.signature.params.push(AbiParam::new(ptr));
            }
            let id = module
                .declare_function(name, Linkage::Local, &ctx.func.signature)
                .map_err(|e| format!("cranelift: {e}"))?;
            {
                let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                match which {
                    0 => gen.forward(&mut b, true, false),
                    1 => gen.forward(&mut b, false, false),
                    2 => gen.reverse(&mut b),
                    _ => gen.forward(&mut b, false, true),
                }
                b.seal_all_blocks();
                b.finalize();
            }
            ctx.set_disasm(std::env::var_os("CHAINRULE_JIT_DUMP").is_some());
            module
                .define_function(id, &mut ctx)
                .map_err(|e| format!("cranelift: {e:?}"))?;
            if let Some(v) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                eprintln!("{name}:\n{v}");
            }
            module.clear_context(&mut ctx);
            ids.push(id);
        }
        module
            .finalize_definitions()
            .map_err(|e| format!("cranelift: {e}"))?;
        let f = |i: usize| module.get_finalized_function(ids[i]);
        // SAFETY: each function was generated with exactly this signature
        // (five pointer-sized arguments, seven for `rev`, no result, the
        // host's C calling convention).
        let fns = unsafe {
            if prog.back {
                Fns::Back(std::mem::transmute::<*const u8, FwdValues<T>>(f(0)))
            } else {
                Fns::Step {
                    fwd_parts: std::mem::transmute::<*const u8, FwdParts<T>>(f(0)),
                    fwd_values: std::mem::transmute::<*const u8, FwdValues<T>>(f(1)),
                    rev: std::mem::transmute::<*const u8, Rev<T>>(f(2)),
                }
            }
        };
        Ok(Code {
            module: Some(module),
            fns,
        })
    }

    /// Steps `0..n` from the state at `s` (overwritten by the final one),
    /// rows of `xs`: with `Fwd::Parts`, every step's partials written from
    /// `out` on; with `Fwd::Values`, values only, each state before its
    /// step written from `out` on unless it is null; with `Fwd::Back`
    /// (the code of an inverse step), values only over the `n` rows
    /// before `xs`, last first, `out` unused.
    ///
    /// # Safety
    /// `theta` holds the parameters, `s` the state, `xs` `n` rows (or
    /// ends them) and `out` room for `n` steps' partials (or states).
    ///
    /// # Panics
    /// If the kind is not one this code has (`Back` only for an inverse
    /// step, which has no other).
    pub(crate) unsafe fn forward(
        &self,
        kind: Fwd,
        theta: *const T,
        s: *mut T,
        xs: *const T,
        (n, out): (usize, *mut T),
    ) {
        match (kind, &self.fns) {
            (Fwd::Parts, Fns::Step { fwd_parts, .. }) => fwd_parts(theta, s, xs, n, out),
            (Fwd::Values, Fns::Step { fwd_values, .. }) => fwd_values(theta, s, xs, n, out),
            (Fwd::Back, Fns::Back(back)) => back(theta, s, xs, n, out),
            _ => panic!("native code: no {kind:?} function here"),
        }
    }

    /// The sweep of steps `n-1..0`: `lam` in and out, `theta_adj` and the
    /// rows `0..n` of `gx` added into; `parts_end` is past the saved
    /// values; `theta` holds the parameters, `xs` the steps' input rows.
    ///
    /// # Safety
    /// `theta` holds the parameters, `theta_adj` their adjoints, `lam` the
    /// state's, `gx` and `xs` `n` rows each, and `n` steps' saved values
    /// end at `parts_end`.
    pub(crate) unsafe fn rev(
        &self,
        theta: *const T,
        theta_adj: *mut T,
        parts_end: *const T,
        lam: *mut T,
        (gx, xs): (*mut T, *const T),
        n: usize,
    ) {
        let Fns::Step { rev, .. } = &self.fns else {
            panic!("native code: an inverse step has no sweep");
        };
        if n > 0 {
            rev(theta, theta_adj, parts_end, lam, gx, xs, n)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The native code against the interpreter, bit for bit, on random
    //! steps fed special values: zeros of either sign (adjoints that are
    //! skipped, `−0` sums), infinite partials (`ln 0`, `√0`), NaN.

    use proptest::prelude::*;

    use crate::compiled::{value_bits, Program, Work};
    use crate::recurrence::StepFn;
    use crate::scalar::Scalar;
    use crate::tape::Var;

    /// Values chosen to hit every special case of the sweep.
    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(-1.0),
            Just(0.5),
            -3.0f64..3.0,
        ]
    }

    /// Operation `k` on `a`, `b` (every rule the program knows).
    fn op<'t, T>(k: u8, a: Var<'t, T>, b: Var<'t, T>, c: f64) -> Var<'t, T>
    where
        T: Scalar + std::ops::Sub<Var<'t, T>, Output = Var<'t, T>>,
    {
        let c = T::from_f64(c);
        match k % 17 {
            0 => a + b,
            1 => a - b,
            2 => a * b,
            3 => a / b,
            4 => a + c,
            5 => a - c,
            6 => a * c,
            7 => a / c,
            8 => c - a,
            9 => -a,
            10 => a.exp(),
            11 => a.ln(),
            12 => a.sqrt(),
            13 => a.sin(),
            14 => a.cos(),
            15 => a.tanh(),
            _ => a.sigmoid(),
        }
    }

    /// Everything both passes of `prog` produce, on the interpreter or not.
    #[allow(clippy::too_many_arguments)]
    fn run<T: Scalar>(
        prog: &Program<T>,
        s0: &[T],
        p: &[T],
        xs: &[T],
        n: usize,
        seed: &[T],
        theta0: &[T],
        gx0: &[T],
    ) -> Vec<Vec<u64>> {
        let mut work = Work::default();
        prog.prepare(&mut work, p, n);
        let mut parts = Vec::new();
        let last = prog.record_parts(&mut work, s0, xs, n, &mut parts);
        let (mut lam, mut th, mut gx) = (seed.to_vec(), theta0.to_vec(), gx0.to_vec());
        prog.vjp_parts(&mut work, &parts, xs, n, &mut lam, &mut th, &mut gx);
        // the same steps as two blocks, from the stored first state
        let (mut lam2, mut th2, mut gx2) = (seed.to_vec(), theta0.to_vec(), gx0.to_vec());
        let mid = n / 2;
        let mut s_mid = s0.to_vec();
        for t in 0..mid {
            prog.values(&mut work, &mut s_mid, &xs[t * prog.w..(t + 1) * prog.w]);
        }
        prog.vjp_block(
            &mut work,
            &s_mid,
            xs,
            (mid, n),
            &mut lam2,
            &mut th2,
            &mut gx2,
        );
        prog.vjp_block(&mut work, s0, xs, (0, mid), &mut lam2, &mut th2, &mut gx2);
        vec![
            value_bits(&last),
            value_bits(&parts),
            value_bits(&lam),
            value_bits(&th),
            value_bits(&gx),
            value_bits(&s_mid),
            value_bits(&lam2),
            value_bits(&th2),
            value_bits(&gx2),
        ]
    }

    fn check<T>(
        ops: &[(u8, usize, usize, f64)],
        ns: usize,
        vals: &[f64],
        n: usize,
    ) -> Result<(), TestCaseError>
    where
        T: Scalar + for<'t> std::ops::Sub<Var<'t, T>, Output = Var<'t, T>>,
    {
        let (np, w) = (2, 1);
        let ops = ops.to_vec();
        let step: Box<StepFn<T>> = Box::new(move |s, p, x, _t, next| {
            let mut v: Vec<Var<'_, T>> = p.iter().chain(s).chain(x).copied().collect();
            for &(k, a, b, c) in &ops {
                let len = v.len();
                let r = op(
                    k,
                    v[len - 1 - a % len.min(3)],
                    v[len - 1 - b % len.min(3)],
                    c,
                );
                v.push(r);
            }
            let len = v.len();
            for k in 0..ns {
                next.push(v[len - 1 - k] * T::from_f64(0.5));
            }
        });
        native_against_interpreter(&*step, (ns, np, w), vals, n)
    }

    /// `step` (state, parameters and row sizes `ns, np, w`) compiled, on
    /// values drawn from `vals`, over `n` steps: its native code against
    /// the interpreter, every output bit for bit (a step that does not
    /// compile passes).
    fn native_against_interpreter<T: Scalar>(
        step: &StepFn<T>,
        (ns, np, w): (usize, usize, usize),
        vals: &[f64],
        n: usize,
    ) -> Result<(), TestCaseError> {
        let t = |i: usize| T::from_f64(vals[i % vals.len()]);
        let s0: Vec<T> = (0..ns).map(t).collect();
        let p: Vec<T> = (ns..ns + np).map(t).collect();
        let xs: Vec<T> = (10..10 + n * w).map(t).collect();
        let seed: Vec<T> = (5..5 + ns).map(t).collect();
        let theta0: Vec<T> = (8..8 + np).map(t).collect();
        let gx0: Vec<T> = (3..3 + n * w).map(t).collect();
        let Ok(mut prog) = Program::compile(step, &s0, &p, &xs[..w], 0) else {
            return Ok(());
        };
        // (the native code is built even under `CHAINRULE_JIT=0`, which
        // only keeps `attach_native` from attaching it)
        prog.build_native(&s0, &p, &xs[..w]);
        prop_assert!(prog.is_native(), "no native code");
        let want = run(&prog.interpreted(), &s0, &p, &xs, n, &seed, &theta0, &gx0);
        let got = run(&prog, &s0, &p, &xs, n, &seed, &theta0, &gx0);
        prop_assert_eq!(got, want);
        Ok(())
    }

    /// Operands anywhere in the step (θ and the input row often, so many
    /// nodes are recomputed by the sweep), rows up to 3 wide, values
    /// including NaN, infinities and subnormals: native code against the
    /// interpreter, exact.
    fn check_wide<T>(
        ops: &[(u8, usize, usize, f64)],
        ns: usize,
        np: usize,
        w: usize,
        vals: &[f64],
        n: usize,
    ) -> Result<(), TestCaseError>
    where
        T: Scalar + for<'t> std::ops::Sub<Var<'t, T>, Output = Var<'t, T>>,
    {
        let ops = ops.to_vec();
        let step: Box<StepFn<T>> = Box::new(move |s, p, x, _t, next| {
            let mut v: Vec<Var<'_, T>> = p.iter().chain(s).chain(x).copied().collect();
            for &(k, a, b, c) in &ops {
                let len = v.len();
                let pick = |a: usize| {
                    if a < 40 && np + w > 0 {
                        let q = a % (np + w);
                        if q < np {
                            q
                        } else {
                            np + ns + (q - np)
                        }
                    } else {
                        a % len
                    }
                };
                let k = if k >= 17 { 2 } else { k };
                let r = op(k, v[pick(a)], v[pick(b)], c);
                v.push(r);
            }
            let len = v.len();
            for k in 0..ns {
                next.push(
                    v[len - 1 - k % (len - np - ns - w).max(1)] * T::from_f64(0.5 + k as f64),
                );
            }
        });
        native_against_interpreter(&*step, (ns, np, w), vals, n)
    }

    fn wide_special() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e-310),
            Just(1e300),
            -3.0f64..3.0,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn native_is_interpreter_with_operands_anywhere(
            ops in proptest::collection::vec((0u8..26, 0usize..64, 0usize..64, wide_special()), 1..10),
            ns in 1usize..4,
            np in 0usize..4,
            w in 1usize..4,
            vals in proptest::collection::vec(wide_special(), 1..24),
            n in 1usize..6,
            single in any::<bool>(),
        ) {
            if single {
                check_wide::<f32>(&ops, ns, np, w, &vals, n)?;
            } else {
                check_wide::<f64>(&ops, ns, np, w, &vals, n)?;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn native_code_gives_the_interpreters_bits(
            ops in proptest::collection::vec((0u8..17, 0usize..3, 0usize..3, special()), 2..8),
            ns in 1usize..3,
            vals in proptest::collection::vec(special(), 1..24),
            n in 1usize..6,
            single in any::<bool>(),
        ) {
            if single {
                check::<f32>(&ops, ns, &vals, n)?;
            } else {
                check::<f64>(&ops, ns, &vals, n)?;
            }
        }
    }
}
