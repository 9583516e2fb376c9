//! Property tests over random expression graphs: the tape's gradient must
//! match finite differences for any program built from the elementary
//! operations, with fan-out, reuse of a cleared tape and several outputs.

use chainrule::{gradcheck, jacobian, vjp, GradcheckOptions, Tape, Var};
use proptest::prelude::*;

/// One step of a random program: an operation on earlier values.
#[derive(Clone, Debug)]
enum Step {
    Unary(u8, usize),
    Binary(u8, usize, usize),
    Const(u8, usize, f64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..16, any::<usize>()).prop_map(|(o, a)| Step::Unary(o, a)),
        (0u8..7, any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        (0u8..4, any::<usize>(), -2.0f64..2.0).prop_map(|(o, a, c)| Step::Const(o, a, c)),
    ]
}

/// Runs the program on `inputs`; every operation is smooth and defined on
/// all of ℝ (or guarded), so finite differences are meaningful.
fn run<'t>(prog: &[Step], inputs: &[Var<'t>]) -> Vec<Var<'t>> {
    let mut vals: Vec<Var<'t>> = inputs.to_vec();
    for s in prog {
        let n = vals.len();
        let v = match *s {
            Step::Unary(o, a) => {
                let x = vals[a % n];
                match o {
                    0 => x.sin(),
                    1 => x.cos(),
                    2 => x.tanh(),
                    3 => x.sigmoid(),
                    4 => x.tanh().exp(),
                    5 => x.square(),
                    6 => (x.square() + 1.0).ln(),
                    7 => (x.square() + 0.5).sqrt(),
                    8 => x.atan(),
                    9 => -x,
                    10 => x.softplus(),
                    11 => x.asinh(),
                    12 => x.square().ln_1p(),
                    13 => x.tanh().exp_m1(),
                    14 => (x.tanh() * 0.9).atanh(),
                    _ => (x.square() + 1.0).recip(),
                }
            }
            Step::Binary(o, a, b) => {
                let (x, y) = (vals[a % n], vals[b % n]);
                match o {
                    0 => x + y,
                    1 => x - y,
                    2 => x * y,
                    3 => x / (y.square() + 1.0),
                    4 => x.hypot(y + 0.5),
                    5 => (x.square() + 0.5).powf(y.tanh()),
                    _ => (x * y).sin(),
                }
            }
            Step::Const(o, a, c) => {
                let x = vals[a % n];
                match o {
                    0 => x + c,
                    1 => x * c,
                    2 => c - x,
                    _ => x / (c.abs() + 0.5),
                }
            }
        };
        // keep magnitudes moderate so the check is well conditioned
        vals.push(if v.value().abs() > 50.0 { v.tanh() } else { v });
    }
    vals
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_graphs_match_finite_differences(
        prog in prop::collection::vec(step_strategy(), 1..40),
        x in prop::collection::vec(-1.5f64..1.5, 1..5),
    ) {
        let r = gradcheck(|v| *run(&prog, v).last().unwrap(), &x, GradcheckOptions {
            step: 1e-4, atol: 1e-6, rtol: 1e-5,
        });
        prop_assert!(r.passed(), "{:?}\n{}", prog, r);
    }

    #[test]
    fn vjp_is_the_weighted_sum_of_rows_of_the_jacobian(
        prog in prop::collection::vec(step_strategy(), 3..30),
        x in prop::collection::vec(-1.5f64..1.5, 1..4),
        w in prop::collection::vec(-2.0f64..2.0, 3),
    ) {
        let tape = Tape::new();
        let xs = tape.vars(&x);
        let vals = run(&prog, &xs);
        let outs: Vec<Var> = vals[vals.len() - 3..].to_vec();
        let j = jacobian(&outs, &xs);
        let g = vjp(&outs, &w).wrt_all(&xs);
        for (k, gk) in g.iter().enumerate() {
            let expect: f64 = (0..3).map(|i| w[i] * j[i][k]).sum();
            prop_assert!((gk - expect).abs() <= 1e-12 * (1.0 + expect.abs()), "{gk} vs {expect}");
        }
    }

    #[test]
    fn a_cleared_tape_gives_identical_results(
        prog in prop::collection::vec(step_strategy(), 1..30),
        x in prop::collection::vec(-1.5f64..1.5, 1..4),
    ) {
        let first = {
            let tape = Tape::new();
            let xs = tape.vars(&x);
            let y = *run(&prog, &xs).last().unwrap();
            let g = y.backward().wrt_all(&xs);
            (y.value(), g)
        };
        let mut tape = Tape::new();
        for _ in 0..3 {
            tape.clear();
            let xs = tape.vars(&x);
            let y = *run(&prog, &xs).last().unwrap();
            let g = y.backward().wrt_all(&xs);
            prop_assert_eq!(y.value().to_bits(), first.0.to_bits());
            for (a, b) in g.iter().zip(&first.1) {
                prop_assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    }
}
