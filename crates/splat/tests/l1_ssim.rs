//! The trainer's fused L1 + SSIM loss and gradient ([`splat::l1_ssim`])
//! against the same loss recorded on the tape, in f32 against f64, with
//! reused buffers, and across thread counts.

use chainrule::Tape;
use splat::l1_ssim::L1Ssim;
use splat::loss::{loss, Loss};
use splat::three::scene::Rng;

fn images(seed: u64, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = (0..n).map(|_| rng.uniform()).collect();
    let y = (0..n).map(|_| rng.uniform()).collect();
    (x, y)
}

/// Sizes with rows longer than one 64-lane block, images shorter and
/// narrower than the blur window, and a single pixel.
const SIZES: [(usize, usize, usize); 5] =
    [(37, 23, 3), (2, 17, 3), (19, 4, 1), (1, 1, 3), (70, 12, 4)];

#[test]
fn equals_the_tape() {
    for (s, &(w, h, ch)) in SIZES.iter().enumerate() {
        let (x, y) = images(s as u64, w * h * ch);
        let mut g = vec![0.0; x.len()];
        let v = L1Ssim::new(w, h, ch).value_grad(&x, &y, None, &mut g);
        let tape = Tape::new();
        let xv = tape.vars(&x);
        let l = loss(Loss::L1Ssim, &xv, &y, w, h, ch);
        let gt = l.backward();
        assert!(
            (v - l.value()).abs() < 1e-12,
            "{w}x{h}x{ch}: {v} vs {}",
            l.value()
        );
        for (a, xi) in g.iter().zip(&xv) {
            let b = gt.wrt(*xi);
            assert!(
                (a - b).abs() < 1e-9 * (1.0 + b.abs()),
                "{w}x{h}x{ch}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn f32_agrees_with_f64_and_buffers_can_be_reused() {
    let (w, h, ch) = (53, 41, 3);
    let mut l64 = L1Ssim::<f64>::new(w, h, ch);
    let mut l32 = L1Ssim::<f32>::new(w, h, ch);
    let fresh = |x: &[f32], y: &[f32]| {
        let mut g = vec![0.0f32; x.len()];
        let v = L1Ssim::<f32>::new(w, h, ch).value_grad(x, y, None, &mut g);
        (v, g)
    };
    for seed in 0..3 {
        let (x, y) = images(seed + 10, w * h * ch);
        // a render close to its target, as in training
        let x: Vec<f64> = x.iter().zip(&y).map(|(a, b)| 0.8 * b + 0.2 * a).collect();
        let (x32, y32): (Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            y.iter().map(|&v| v as f32).collect(),
        );
        let mut g64 = vec![0.0; x.len()];
        let mut g32 = vec![0.0f32; x.len()];
        let v64 = l64.value_grad(&x, &y, None, &mut g64);
        let v32 = l32.value_grad(&x32, &y32, None, &mut g32);
        assert!((v64 - v32).abs() < 1e-5 * v64.abs(), "{v64} vs {v32}");
        let gmax = g64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g64.iter().zip(&g32) {
            assert!((a - *b as f64).abs() < 1e-4 * gmax, "{a} vs {b}");
        }
        // the reused buffers give the bits a fresh workspace gives
        let (vf, gf) = fresh(&x32, &y32);
        assert_eq!(vf.to_bits(), v32.to_bits());
        assert_eq!(gf, g32);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (w, h, ch) = (64, 48, 3);
    let (x, y) = images(7, w * h * ch);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut g = vec![0.0f32; x.len()];
                let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let y: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                let v = L1Ssim::<f32>::new(w, h, ch).value_grad(&x, &y, None, &mut g);
                (
                    v.to_bits(),
                    g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, run(2));
}
