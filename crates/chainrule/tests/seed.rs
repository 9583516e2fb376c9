//! The seed article's worked examples, with the exact numbers of
//! `seed-notes.md`.

use chainrule::{gradcheck, jacobian, GradcheckOptions, Tape};

#[test]
fn chain_of_three_functions() {
    // w = x*2; u = w + 3; y = u / 2 at x = 5: y = 6.5, dy/dx = 1/2 * 1 * 2
    let tape = Tape::new();
    let x = tape.var(5.0);
    let w = x * 2.0;
    let u = w + 3.0;
    let y = u / 2.0;
    let g = y.backward();
    assert_eq!(y.value(), 6.5);
    assert_eq!(g.wrt(x), 1.0);
    assert_eq!(g.wrt(w), 0.5);
    assert_eq!(g.wrt(u), 0.5);
}

#[test]
fn product_and_sum_rules() {
    let tape = Tape::new();
    let (x, y, z) = (tape.var(-2.0), tape.var(5.0), tape.var(-4.0));
    let q = x + y;
    let f = q * z;
    let g = f.backward();
    assert_eq!(q.value(), 3.0);
    assert_eq!(f.value(), -12.0);
    assert_eq!(g.wrt(z), 3.0); // the other branch's value
    assert_eq!(g.wrt(q), -4.0);
    assert_eq!(g.wrt(x), -4.0); // addition passes it through
    assert_eq!(g.wrt(y), -4.0);
}

#[test]
fn sigmoid_neuron() {
    let tape = Tape::new();
    let w = tape.vars(&[2.0, -3.0, -3.0]);
    let x = tape.vars(&[-1.0, -2.0]);
    let z = w[0] * x[0] + w[1] * x[1] + w[2];
    let f = 1.0 / (1.0 + (-z).exp());
    let g = f.backward();
    let close = |a: f64, b: f64| (a - b).abs() < 5e-5;
    assert!(close(f.value(), 0.7311));
    let dw = g.wrt_all(&w);
    let dx = g.wrt_all(&x);
    for (a, b) in dw.iter().zip([-0.1966, -0.3932, 0.1966]) {
        assert!(close(*a, b), "dw {dw:?}");
    }
    for (a, b) in dx.iter().zip([0.3932, -0.5898]) {
        assert!(close(*a, b), "dx {dx:?}");
    }
    // exact: s(1-s) times the other factor
    let s = f.value();
    assert!((dw[0] - -(s * (1.0 - s))).abs() < 1e-15);
    // the sigmoid method gives the same graph in one node
    let f2 = z.sigmoid();
    let g2 = f2.backward();
    assert!((f2.value() - s).abs() < 1e-15);
    assert!((g2.wrt(w[1]) - dw[1]).abs() < 1e-15);
}

#[test]
fn fan_out_adds_gradients() {
    let tape = Tape::new();
    let x = tape.var(3.0);
    let y = x * x + x.sin() * x + x;
    let g = y.backward();
    let expect = 2.0 * 3.0 + (3.0f64.cos() * 3.0 + 3.0f64.sin()) + 1.0;
    assert!((g.wrt(x) - expect).abs() < 1e-14);
}

#[test]
fn readme_example_and_reuse() {
    let tape = Tape::new();
    let x = tape.var(5.0);
    let y = (x * 2.0 + 3.0) / 2.0;
    let grads = y.backward();
    assert_eq!(y.value(), 6.5);
    assert_eq!(grads.wrt(x), 1.0);

    let mut tape = Tape::new();
    let mut cap = 0;
    for step in 0..3 {
        tape.clear();
        let x = tape.var(step as f64);
        let y = x * x;
        assert_eq!(y.backward().wrt(x), 2.0 * step as f64);
        if step == 1 {
            cap = tape.capacity_bytes();
        }
    }
    assert_eq!(tape.capacity_bytes(), cap, "clear keeps the allocation");
}

#[test]
fn unrelated_and_later_inputs_get_zero() {
    let tape = Tape::new();
    let a = tape.var(1.0);
    let b = tape.var(2.0);
    let y = a * 3.0;
    let c = tape.var(4.0);
    let g = y.backward();
    assert_eq!(g.wrt(b), 0.0);
    assert_eq!(g.wrt(c), 0.0);
    assert_eq!(g.wrt(a), 3.0);
}

#[test]
fn jacobian_of_two_outputs() {
    let tape = Tape::new();
    let (x, y) = (tape.var(2.0), tape.var(3.0));
    let j = jacobian(&[x * y, x.exp() + y], &[x, y]);
    assert_eq!(j[0], vec![3.0, 2.0]);
    assert_eq!(j[1], vec![2.0f64.exp(), 1.0]);
}

#[test]
fn gradcheck_detects_a_wrong_gradient() {
    // A custom op with a deliberately wrong VJP must fail the check.
    let report = gradcheck(
        |x| {
            let tape = x[0].tape();
            let v = x[0].value();
            tape.custom_op("bad_square", &x[..1], vec![v * v], move |gy, gx| {
                gx[0] += 3.0 * v * gy[0]
            })[0]
        },
        &[1.5],
        GradcheckOptions::default(),
    );
    assert!(!report.passed(), "{report}");
    let ok = gradcheck(|x| x[0] * x[0], &[1.5], GradcheckOptions::default());
    assert!(ok.passed(), "{ok}");
    assert!(ok.max_abs_error() < 1e-9);
}

#[test]
fn gradcheck_in_f32_passes_right_gradients_and_fails_wrong_ones() {
    // f32 values carry ~1e-7 relative rounding, so the differences carry
    // ~1e-5: the default (f64) tolerances alone failed this right gradient
    let ok = gradcheck(
        |x| x[0].tanh() * x[1],
        &[0.3f32, 0.7],
        GradcheckOptions::default(),
    );
    assert!(ok.passed(), "{ok}");
    for f in [0.5f32, -2.0, 40.0] {
        let ok = gradcheck(
            |x| (x[0] * 0.1).sin().exp() * x[0],
            &[f],
            GradcheckOptions::default(),
        );
        assert!(ok.passed(), "{ok}");
    }
    // a gradient off by 1e-3 of itself still fails
    let bad = gradcheck(
        |x| {
            let tape = x[0].tape();
            let v = x[0].value();
            tape.custom_op("bad_cube", &x[..1], vec![v * v * v], move |gy, gx| {
                gx[0] += 3.0 * v * v * 1.001 * gy[0]
            })[0]
        },
        &[1.5f32],
        GradcheckOptions::default(),
    );
    assert!(!bad.passed(), "{bad}");
}

#[test]
fn powf_accepts_constant_and_var() {
    let tape = Tape::new();
    let x = tape.var(2.0);
    let y = tape.var(3.0);
    let a = x.powf(2.5);
    let b = x.powf(y);
    let ga = a.backward();
    assert!((ga.wrt(x) - 2.5 * 2.0f64.powf(1.5)).abs() < 1e-12);
    let gb = b.backward();
    assert!((gb.wrt(y) - 8.0 * 2.0f64.ln()).abs() < 1e-12);
    assert!((gb.wrt(x) - 3.0 * 4.0).abs() < 1e-12);
    let m = x.min(1.0).max(y);
    assert_eq!(m.value(), 3.0);
}
