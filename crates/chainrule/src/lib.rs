//! # chainrule
//!
//! Reverse-mode automatic differentiation on a tape, built on the recursive
//! chain rule. Write the forward pass as ordinary Rust on [`Var`]s; the
//! [`Tape`] records each operation with its local partial derivatives as it
//! runs; [`Var::backward`] walks the tape from the output back to every
//! input, multiplying and adding (product: incoming gradient times the other
//! branch; sum: pass it through; fan-out: add).
//!
//! ```
//! use chainrule::Tape;
//! // f(x, y, z) = (x + y) · z at (-2, 5, -4)
//! let tape = Tape::new();
//! let (x, y, z) = (tape.var(-2.0), tape.var(5.0), tape.var(-4.0));
//! let f = (x + y) * z;
//! let g = f.backward();
//! assert_eq!(f.value(), -12.0);
//! assert_eq!((g.wrt(x), g.wrt(y), g.wrt(z)), (-4.0, -4.0, 3.0));
//! ```
//!
//! For a function of a slice of `f64`s, [`gradient_of`] does the taping:
//!
//! ```
//! // f(x, y) = x · sin(y) + 1 at (2, 0): value 1, gradient (0, 2)
//! let (v, g) = chainrule::gradient_of(|x| x[0] * x[1].sin() + 1.0, &[2.0, 0.0]);
//! assert_eq!((v, g), (1.0, vec![0.0, 2.0]));
//! ```
//!
//! Code generic over the number type (for second derivatives, see below)
//! is written on [`Var`]`<S>` with `S:` [`Scalar`], where a literal is
//! `S::from_f64(2.0)`: `x * 2.0` compiles on an `f64` (or `f32`) tape
//! only.
//!
//! [`Gradients`] borrow their tape. A function that builds a tape and
//! returns one derivative, `(x * x).backward().wrt(x)` as its last
//! expression, compiles in edition 2024; in edition 2021 the temporary
//! outlives the tape, so bind it first: `let d = (x * x).backward().wrt(x);
//! d`.
//!
//! A sum over many [`Var`]s is an iterator's `sum` into `Option<Var>`
//! (`None` for no terms). A NaN or infinity is not an error by itself:
//! [`Var::try_backward`] reports the first one on its output's path,
//! naming its operation, once [`Tape::set_check_finite`] is on.
//!
//! Loops and recursion are just code: the tape records what ran. Long
//! recursions can instead join the tape as one operation whose reverse pass
//! stores every state, checkpoints, or inverts the step ([`Recurrence`]). Fused
//! kernels with hand-written backward passes join the tape through
//! [`Tape::custom_op`]; [`gradcheck`] compares any gradient with finite
//! differences.
//!
//! Derivatives of derivatives come from the same engine: the tape is
//! generic over its number type, and on a tape of forward-mode [`Dual`]
//! numbers one backward sweep gives a Hessian-vector product ([`hvp`],
//! [`hessian`]; of a closure on `f64` inputs: [`hvp_of`], [`hessian_of`]);
//! [`jvp`] and [`jacobian_forward`] are forward mode.
//!
//! Which function for which job:
//!
//! | you have | you want | call |
//! |---|---|---|
//! | [`Var`]s you recorded, one output | its gradient | [`Var::backward`] then [`Gradients::wrt`] ([`Var::try_backward`] to catch NaN) |
//! | [`Var`]s you recorded, several outputs | a weighted sum's gradient, or the Jacobian | [`vjp`], [`jacobian`] |
//! | a closure of `&[Var]` on `f64` | gradient, Hessian, Hessian-vector product | [`gradient_of`], [`hessian_of`], [`hvp_of`] |
//! | a [`Function`] (generic over the scalar) | the same, on any scalar | [`gradient`], [`hessian`] or [`grad_hessian`], [`hvp`] |
//! | a [`TryRecord`] (its recording can fail) | the same, with its error | [`try_gradient`], [`try_grad_hessian`], [`try_hvp`] |
//! | a [`VectorFunction`] | its Jacobian | [`jacobian_auto`] (picks [`jacobian_forward`] or [`jacobian_reverse`] by shape) |
//! | a function of `&[S]` for any [`Scalar`] `S` (no tape) | a directional derivative, forward mode | [`jvp`] at `S =` [`Dual`] |
//! | a step `s ← f(s, x)` run many times | gradients in bounded memory | [`Recurrence`] |
//!
//! A backward pass over more than a million nodes, many of them `sin` or
//! `cos`, starts a second thread for its duration that computes those
//! nodes' derivatives (a `cos` or `sin` call each) ahead of the sweep: the
//! same values, added in the same order, so the same gradients to the bit.
//! Set `CHAINRULE_SWEEP_HELPER=0` to keep every pass on the calling thread
//! (it is also single-threaded on a one-core machine).
#![warn(missing_docs)]

mod backward;
mod compiled;
pub mod dual;
mod gradcheck;
pub mod graph;
pub mod higher;
#[cfg(all(feature = "jit", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod jit;
#[cfg(not(all(feature = "jit", any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[path = "jit_none.rs"]
mod jit;
mod lookahead;
mod ops;
pub mod recurrence;
mod scalar;
mod tape;
mod traced;

pub use backward::{jacobian, vjp, Gradients};
pub use dual::{jvp, Dual, DualN};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport, InputCheck};
pub use graph::{to_dot, Graph, GraphNode};
pub use higher::{
    grad_hessian, gradient, gradient_of, hessian, hessian_of, hvp, hvp_of, jacobian_auto,
    jacobian_forward, jacobian_reverse, try_grad_hessian, try_gradient, try_hvp, Function, Hvp,
    SecondOrder, TryFunction, TryRecord, VectorFunction,
};
pub use ops::{sigmoid, Operand};
pub use recurrence::{
    InverseFn, Recurrence, RecurrenceOutput, RecurrenceStats, StepFn, Strategy, Trajectory,
    UntilFn, DEFAULT_BLOCK, STORE_ALL_TAPE_BYTES,
};
pub use scalar::Scalar;
pub use tape::{NonFinite, Op, Tape, TraceEntry, Var, Vjp};
pub use traced::{Traced, TracedFn};
