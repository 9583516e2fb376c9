//! Criterion benchmarks of the tape: the scalar recursion of `chainrule bench
//! ad` (s ← s·a + sin(s)·b), plain and with its gradient, on a reused tape.
//! Run with `cargo bench -p chainrule`.

use std::hint::black_box;

use chainrule::Tape;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn recursion(c: &mut Criterion) {
    let mut group = c.benchmark_group("scalar_recursion");
    for n in [1_000usize, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("plain", n), &n, |bch, &n| {
            bch.iter(|| {
                let (mut s, a, b) = (black_box(0.5f64), black_box(0.9), black_box(0.1));
                for _ in 0..n {
                    s = s * a + s.sin() * b;
                }
                s
            })
        });
        let mut tape = Tape::with_capacity(4 * n + 8);
        group.bench_with_input(BenchmarkId::new("gradient", n), &n, |bch, &n| {
            bch.iter(|| {
                tape.clear();
                let (s0, a, b) = (tape.var(0.5), tape.var(0.9), tape.var(0.1));
                let mut s = s0;
                for _ in 0..n {
                    s = s * a + s.sin() * b;
                }
                let g = s.backward();
                (g.wrt(s0), g.wrt(a), g.wrt(b))
            })
        });
    }
    group.finish();
}

fn wide_sum(c: &mut Criterion) {
    // a reduction with fan-in: loss = Σ (x_i - t_i)², 10^5 inputs
    let n = 100_000;
    let xs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut tape = Tape::with_capacity(4 * n);
    c.bench_function("sum_of_squares_1e5", |bch| {
        bch.iter(|| {
            tape.clear();
            let v = tape.vars(&xs);
            let mut acc = (v[0] - 0.5).square();
            for x in &v[1..] {
                acc += (*x - 0.5).square();
            }
            acc.backward().wrt(v[n / 2])
        })
    });
}

criterion_group!(benches, recursion, wide_sum);
criterion_main!(benches);
