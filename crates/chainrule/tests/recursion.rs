//! Recursion and loops in plain Rust on the tape (issue 4, part 1): the
//! tape records whatever ran, so recursive functions and data-dependent
//! loops are differentiated like any other code.

use chainrule::{gradcheck, GradcheckOptions, Tape, Var};

/// x^n by recursive squaring: x^n = (x^{n/2})² · x^{n mod 2}.
fn pow_rec<'t>(x: Var<'t>, n: u32) -> Var<'t> {
    match n {
        0 => x * 0.0 + 1.0,
        1 => x,
        _ => {
            let h = pow_rec(x, n / 2);
            let sq = h * h;
            if n % 2 == 1 {
                sq * x
            } else {
                sq
            }
        }
    }
}

#[test]
fn power_by_recursion() {
    for n in 0..=13u32 {
        for &x0 in &[0.7, -1.3, 2.0] {
            let tape = Tape::new();
            let x = tape.var(x0);
            let y = pow_rec(x, n);
            let g = y.backward();
            let want = f64::powi(x0, n as i32);
            let dwant = n as f64 * f64::powi(x0, n as i32 - 1);
            assert!((y.value() - want).abs() <= 1e-14 * want.abs().max(1.0));
            assert!(
                (g.wrt(x) - dwant).abs() <= 1e-13 * dwant.abs().max(1.0),
                "n = {n}, x = {x0}: {} vs {dwant}",
                g.wrt(x)
            );
        }
    }
    let rep = gradcheck(|v| pow_rec(v[0], 7), &[1.1], GradcheckOptions::default());
    assert!(rep.passed(), "{rep}");
}

/// Newton's iteration for sqrt(a), written recursively: y ← (y + a/y)/2.
fn newton_sqrt<'t>(a: Var<'t>, y: Var<'t>, depth: usize) -> Var<'t> {
    if depth == 0 || (y.value() * y.value() - a.value()).abs() <= 1e-15 * a.value() {
        y
    } else {
        newton_sqrt(a, (y + a / y) * 0.5, depth - 1)
    }
}

#[test]
fn recursive_newton_sqrt() {
    for &a0 in &[2.0, 0.25, 10.0, 1e4] {
        let tape = Tape::new();
        let a = tape.var(a0);
        let y = newton_sqrt(a, a * 0.0 + 1.0, 60);
        let g = y.backward();
        assert!((y.value() - f64::sqrt(a0)).abs() <= 2e-16 * f64::sqrt(a0));
        // differentiating the converged iteration gives d sqrt(a)/da
        let want = 0.5 / f64::sqrt(a0);
        assert!(
            (g.wrt(a) - want).abs() <= 1e-12 * want,
            "a = {a0}: {} vs {want}",
            g.wrt(a)
        );
    }
}

#[test]
fn data_dependent_while_loop() {
    // grow x by x ← x·r + c until it passes 100; the number of steps
    // depends on the values, the gradient is that of the path taken.
    fn grow<'t>(x0: Var<'t>, r: Var<'t>, c: Var<'t>) -> (Var<'t>, usize) {
        let mut x = x0;
        let mut k = 0;
        while x.value() < 100.0 {
            x = x * r + c;
            k += 1;
        }
        (x, k)
    }
    let tape = Tape::new();
    let (x0, r, c) = (tape.var(1.0), tape.var(1.5), tape.var(0.25));
    let (x, k) = grow(x0, r, c);
    assert_eq!(k, 11);
    let g = x.backward();
    // closed form for k steps: x_k = r^k x0 + c (r^k − 1)/(r − 1)
    let (rv, cv, kf) = (1.5f64, 0.25f64, k as i32);
    let rk = rv.powi(kf);
    assert!((x.value() - (rk + cv * (rk - 1.0) / (rv - 1.0))).abs() < 1e-12);
    assert!((g.wrt(x0) - rk).abs() < 1e-12);
    assert!((g.wrt(c) - (rk - 1.0) / (rv - 1.0)).abs() < 1e-12);
    let drk = kf as f64 * rv.powi(kf - 1);
    let dr = drk + cv * (drk * (rv - 1.0) - (rk - 1.0)) / ((rv - 1.0) * (rv - 1.0));
    assert!((g.wrt(r) - dr).abs() < 1e-10, "{} vs {dr}", g.wrt(r));
    // and against finite differences (the path is locally constant here)
    let rep = gradcheck(
        |v| grow(v[0], v[1], v[2]).0,
        &[1.0, 1.5, 0.25],
        GradcheckOptions::default(),
    );
    assert!(rep.passed(), "{rep}");
}

/// Front-to-back compositing of one pixel, unrolled on the tape.
fn composite<'t>(c: &[Var<'t>], a: &[Var<'t>]) -> Var<'t> {
    let tape = c[0].tape();
    let mut t = tape.var(1.0);
    let mut acc = tape.var(0.0);
    for (&ci, &ai) in c.iter().zip(a) {
        acc += ci * ai * t;
        t *= 1.0 - ai;
    }
    acc
}

/// The closed-form adjoint of seed-notes.md section 5: dC/dc_i = α_i T_i,
/// dC/dα_i = c_i T_i − S_i/(1 − α_i), S_i = Σ_{j>i} c_j α_j T_j.
fn composite_closed_form(c: &[f64], a: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = c.len();
    let mut t = vec![1.0; n];
    for i in 1..n {
        t[i] = t[i - 1] * (1.0 - a[i - 1]);
    }
    let col: f64 = (0..n).map(|i| c[i] * a[i] * t[i]).sum();
    let mut dc = vec![0.0; n];
    let mut da = vec![0.0; n];
    let mut s = 0.0;
    for i in (0..n).rev() {
        dc[i] = a[i] * t[i];
        da[i] = c[i] * t[i] - s / (1.0 - a[i]);
        s += c[i] * a[i] * t[i];
    }
    (col, dc, da)
}

#[test]
fn alpha_compositing_matches_closed_form() {
    // deterministic pseudo-random fragments
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for &n in &[1usize, 2, 7, 50, 400] {
        let c: Vec<f64> = (0..n).map(|_| rnd()).collect();
        let a: Vec<f64> = (0..n).map(|_| 0.99 * rnd()).collect();
        let tape = Tape::new();
        let (cv, av) = (tape.vars(&c), tape.vars(&a));
        let col = composite(&cv, &av);
        let g = col.backward();
        let (want, dc, da) = composite_closed_form(&c, &a);
        assert!((col.value() - want).abs() <= 1e-15);
        for i in 0..n {
            assert!((g.wrt(cv[i]) - dc[i]).abs() <= 1e-15, "n = {n}, dc[{i}]");
            assert!(
                (g.wrt(av[i]) - da[i]).abs() <= 1e-14,
                "n = {n}, da[{i}]: {} vs {}",
                g.wrt(av[i]),
                da[i]
            );
        }
    }
}

#[test]
fn alpha_compositing_reference_n5() {
    // /work/shared/peers/README.md, "alpha": loss = (C − 0.3)²
    let c = [
        0.31848084366072715,
        0.13489335688193516,
        0.020486761968097345,
        0.008263817764264547,
        0.4066351196001362,
    ];
    let a = [
        0.45637778863886086,
        0.30331788788358993,
        0.3647482804919992,
        0.27181249573271143,
        0.4675362118938841,
    ];
    let dl_dc = [
        -0.0873798130999014,
        -0.03157052672906032,
        -0.02644914988085006,
        -0.012520847670468545,
        -0.015682770591725854,
    ];
    let dl_da = [
        -0.040225729707311746,
        -0.003960325043669331,
        0.008716115410250675,
        0.008376919988917765,
        -0.013639938753397259,
    ];
    let tape = Tape::new();
    let (cv, av) = (tape.vars(&c), tape.vars(&a));
    let col = composite(&cv, &av);
    let loss = (col - 0.3).square();
    let g = loss.backward();
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-15 * y.abs().max(1e-3);
    assert!(close(col.value(), 0.20426811374792117), "{}", col.value());
    assert!(
        close(loss.value(), 0.009164594045380958),
        "{}",
        loss.value()
    );
    for i in 0..5 {
        assert!(
            close(g.wrt(cv[i]), dl_dc[i]),
            "dL/dc[{i}] = {}",
            g.wrt(cv[i])
        );
        assert!(
            close(g.wrt(av[i]), dl_da[i]),
            "dL/da[{i}] = {}",
            g.wrt(av[i])
        );
    }
}
