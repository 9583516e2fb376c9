//! The project's seeded random numbers: a thin wrapper over ChaCha8 from
//! `rand_chacha`, whose output stream is fixed across versions and
//! platforms, so fits, scenes and tests are reproducible from their seed.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator with the few draws the project needs.
#[derive(Clone, Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    ///
    /// ```
    /// let mut r = splat::rng::Rng::new(1);
    /// let x = r.uniform();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Moves to the `n`-th 64-bit draw of the stream (counted from its
    /// start), as if `n` draws had been made: each [`Rng::uniform`] is one
    /// draw, each [`Rng::normal`] two. So a stream consumed in known
    /// amounts can be split between threads with the same numbers.
    ///
    /// ```
    /// let (mut a, mut b) = (splat::rng::Rng::new(3), splat::rng::Rng::new(3));
    /// for _ in 0..5 {
    ///     a.normal();
    /// }
    /// b.seek(10);
    /// assert_eq!(a.uniform(), b.uniform());
    /// ```
    pub fn seek(&mut self, n: u64) {
        // a 64-bit draw is two of ChaCha's 32-bit words
        self.0.set_word_pos(2 * u128::from(n));
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
