//! Adam with a learning rate per parameter (bias-corrected, as the JAX peer:
//! `p −= lr · m̂ / (√v̂ + ε)`).

use rayon::prelude::*;

/// Adam's state for a flat parameter vector.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate of each parameter.
    pub lr: Vec<f64>,
    /// First-moment decay (0.9).
    pub beta1: f64,
    /// Second-moment decay (0.999).
    pub beta2: f64,
    /// Denominator guard (1e-8).
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u32,
}

impl Adam {
    /// Adam with the peer's constants and the given per-parameter rates.
    pub fn new(lr: Vec<f64>) -> Self {
        let n = lr.len();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Rebuilds the state for a new parameter vector: entry `i` of the new
    /// state takes old entry `from[i]` (moments kept), or starts at zero
    /// moments when `from[i]` is `None`; `lr` gives the new rates.
    pub fn remap(&mut self, from: &[Option<usize>], lr: Vec<f64>) {
        assert_eq!(from.len(), lr.len(), "adam: remap length");
        let pick =
            |v: &[f64]| -> Vec<f64> { from.iter().map(|f| f.map_or(0.0, |i| v[i])).collect() };
        self.m = pick(&self.m);
        self.v = pick(&self.v);
        self.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One update of `params` from `grads`.
    ///
    /// ```
    /// let mut adam = splat::adam::Adam::new(vec![0.1]);
    /// let mut p = vec![1.0];
    /// adam.step(&mut p, &[2.0]);
    /// // the first bias-corrected step moves by lr in the gradient's sign
    /// assert!((p[0] - 0.9).abs() < 1e-6);
    /// ```
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        assert_eq!(params.len(), self.lr.len(), "adam: parameter count");
        assert_eq!(grads.len(), self.lr.len(), "adam: gradient count");
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        for i in 0..params.len() {
            let g = grads[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let mh = self.m[i] / bc1;
            let vh = self.v[i] / bc2;
            params[i] -= self.lr[i] * mh / (vh.sqrt() + self.eps);
        }
    }

    /// One update with the same learning rate `lr` for every parameter
    /// (the per-parameter rates are ignored), fused into one pass over
    /// parameters, gradients and moments that runs in parallel over
    /// blocks (each entry is updated on its own, so the result does not
    /// depend on the thread count). Returns whether every updated
    /// parameter is finite.
    ///
    /// ```
    /// let mut a = splat::adam::Adam::new(vec![0.0; 3]);
    /// let mut p = vec![1.0; 3];
    /// assert!(a.step_uniform(&mut p, &[2.0, -2.0, 0.0], 0.1));
    /// assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6 && p[2] == 1.0);
    /// ```
    pub fn step_uniform(&mut self, params: &mut [f64], grads: &[f64], lr: f64) -> bool {
        assert_eq!(params.len(), self.m.len(), "adam: parameter count");
        assert_eq!(grads.len(), self.m.len(), "adam: gradient count");
        self.t += 1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        // p −= lr · (m / bc1) / (√(v / bc2) + ε), in the order of `step`
        const BLOCK: usize = 4096;
        params
            .par_chunks_mut(BLOCK)
            .zip(grads.par_chunks(BLOCK))
            .zip(self.m.par_chunks_mut(BLOCK))
            .zip(self.v.par_chunks_mut(BLOCK))
            .map(|(((p, g), m), v)| {
                let mut finite = true;
                for i in 0..p.len() {
                    let gi = g[i];
                    m[i] = b1 * m[i] + (1.0 - b1) * gi;
                    v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                    let (mh, vh) = (m[i] / bc1, v[i] / bc2);
                    p[i] -= lr * mh / (vh.sqrt() + eps);
                    finite &= p[i].is_finite();
                }
                finite
            })
            .reduce(|| true, |a, b| a & b)
    }

    /// The first and second moments, one of each per parameter.
    pub fn moments(&self) -> (&[f64], &[f64]) {
        (&self.m, &self.v)
    }

    /// Adam resumed from saved state: rates, moments and the step count
    /// (all three vectors must have the same length).
    ///
    /// ```
    /// let a = splat::adam::Adam::from_state(vec![0.1; 2], vec![0.5; 2], vec![1.0; 2], 7);
    /// assert_eq!(a.steps(), 7);
    /// assert_eq!(a.moments().0, &[0.5, 0.5]);
    /// ```
    pub fn from_state(lr: Vec<f64>, m: Vec<f64>, v: Vec<f64>, t: u32) -> Self {
        assert!(
            m.len() == lr.len() && v.len() == lr.len(),
            "adam: state lengths"
        );
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m,
            v,
            t,
        }
    }
}
