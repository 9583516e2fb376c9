//! The instruction sets the tile loops are built for.

/// The instruction sets the tile loops are built for (chosen at run time;
/// every one gives the same bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Simd {
    /// The target's baseline.
    Generic,
    /// AVX2: a tile row of `f32` in two registers.
    Avx2,
    /// AVX-512F: a tile row of `f32` in one register.
    Avx512,
}

impl Simd {
    /// The widest this CPU has.
    pub(super) fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Generic
    }

    /// Every set this CPU has, narrowest first.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut v = vec![Simd::Generic];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                v.push(Simd::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                v.push(Simd::Avx512);
            }
        }
        v
    }
}
