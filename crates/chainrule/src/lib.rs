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
//! Loops and recursion are just code: the tape records what ran. Long
//! recursions can instead join the tape as one operation whose reverse pass
//! stores every state, checkpoints, or inverts the step ([`Recurrence`]). Fused
//! kernels with hand-written backward passes join the tape through
//! [`Tape::custom_op`]; [`gradcheck`] compares any gradient with finite
//! differences.
#![warn(missing_docs)]

mod backward;
mod gradcheck;
mod ops;
pub mod recurrence;
mod scalar;
mod tape;

pub use backward::{jacobian, vjp, Gradients};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport, InputCheck};
pub use ops::{sigmoid, Operand};
pub use recurrence::{
    InverseFn, Recurrence, RecurrenceOutput, RecurrenceStats, StepFn, Strategy, Trajectory,
    UntilFn, DEFAULT_BLOCK,
};
pub use scalar::Scalar;
pub use tape::{NonFinite, Op, Tape, TraceEntry, Var, Vjp};
