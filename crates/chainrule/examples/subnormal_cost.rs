//! What IEEE subnormal arithmetic costs on this CPU, without any gradient.
//!
//! `bench recurrence`'s alpha workload composites 10⁶ fragments with every
//! 1 − αᵢ in (½, 1]: the transmittance T falls below 2⁻¹⁰²² (the smallest
//! normal `f64`) after a few thousand fragments, and then stays at the
//! smallest subnormal, since 2⁻¹⁰⁷⁴·(1 − α) rounds back to it. From there
//! on every step multiplies a subnormal. XLA (the JAX peers) flushes
//! subnormals to zero; IEEE arithmetic, which chainrule keeps so that its
//! gradients are exact, takes a slow path for them on some CPUs (x86's
//! microcode assists on Intel).
//!
//! This example times the *plain forward pass* of that compositing,
//! `C += c·α·T; T *= 1 − α`, on `f64` with no tape and no gradient, split
//! at the step where T turns subnormal, and a bare dependent chain of
//! multiplications with normal and with subnormal operands. Where the
//! subnormal tail alone costs more per step than the JAX peer's whole
//! gradient (`run.sh alpha --n 1000000 --dtype float64 --form scan`), no
//! exact IEEE gradient of that workload can match the peer on the CPU.
//!
//! Run with `cargo run --release -p chainrule --example subnormal_cost [N]`
//! (N fragments, default 10⁶). Timings are printed, not asserted.

use std::hint::black_box;
use std::time::Instant;

/// Fragment colours and opacities, both uniform in [0, 0.5), from a fixed
/// 64-bit linear congruential generator (the values, not the generator,
/// matter here: every 1 − α is above ½).
fn inputs(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 0.5
    };
    let c = (0..n).map(|_| next()).collect();
    let a = (0..n).map(|_| next()).collect();
    (c, a)
}

/// Composites fragments `range` from transmittance `t` and colour `acc`.
fn composite(c: &[f64], a: &[f64], mut t: f64, mut acc: f64) -> (f64, f64) {
    for (&ci, &ai) in c.iter().zip(a) {
        acc += ci * ai * t;
        t *= 1.0 - ai;
    }
    (t, acc)
}

/// Best of `reps` timings of `f`, in ns per `per` units.
fn best(reps: usize, per: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e9 / per as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// `n` independent products `x·y`, summed.
fn products(x: f64, y: f64, n: usize) -> f64 {
    let mut sum = 0.0;
    for _ in 0..n {
        sum += black_box(x) * y;
    }
    sum
}

/// A dependent chain of `n` multiplications `x ← x·y`.
fn chain(x: f64, y: f64, n: usize) -> f64 {
    let mut x = x;
    for _ in 0..n {
        x = black_box(x) * y;
    }
    x
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N must be a positive integer"))
        .unwrap_or(1_000_000);
    let (c, a) = inputs(n);
    // The first fragment at which T is subnormal (or zero).
    let mut t = 1.0f64;
    let mut split = n;
    for (i, &ai) in a.iter().enumerate() {
        if t < f64::MIN_POSITIVE {
            split = i;
            break;
        }
        t *= 1.0 - ai;
    }
    println!("{n} fragments; T is subnormal from fragment {split} on");
    let (t_split, acc_split) = composite(&c[..split], &a[..split], 1.0, 0.0);
    let whole = best(10, n, || {
        black_box(composite(black_box(&c), black_box(&a), 1.0, 0.0));
    });
    let head = best(10, split.max(1), || {
        black_box(composite(
            black_box(&c[..split]),
            black_box(&a[..split]),
            1.0,
            0.0,
        ));
    });
    let tail_n = n - split;
    let tail = best(10, tail_n.max(1), || {
        black_box(composite(
            black_box(&c[split..]),
            black_box(&a[split..]),
            t_split,
            acc_split,
        ));
    });
    println!("plain forward, ns per fragment: all {whole:.2}, normal T {head:.2}, subnormal T {tail:.2} ({tail_n} fragments)");
    let m = 1_000_000;
    let normal = best(10, m, || {
        black_box(chain(0.75, 0.999_999, m));
    });
    let sub_sub = best(10, m, || {
        black_box(chain(f64::from_bits(1), 0.75, m));
    });
    let normal_sum = best(10, m, || {
        black_box(products(0.75, 0.5, m));
    });
    let to_zero = best(10, m, || {
        black_box(products(f64::from_bits(1), 0.25, m));
    });
    println!(
        "dependent multiplications x ← x·y, ns each: normal {normal:.2}, subnormal → subnormal {sub_sub:.2}"
    );
    println!(
        "summed products x·y, ns each: normal {normal_sum:.2}, subnormal x, product 0 {to_zero:.2}"
    );
}
