//! The vector instruction sets the crate's hot loops are compiled for,
//! chosen at run time: the rasterizer's tile loops (`raster`) and the
//! L1 + SSIM loss's kernels (`l1_ssim`). Every kernel does the same
//! operations in the same order on every set (no fused multiply-add;
//! division is correctly rounded at any width), so the bits never depend
//! on which one runs.

/// A vector instruction set (chosen at run time; every one gives the same
/// bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    /// The target's baseline.
    Generic,
    /// AVX2 (8 lanes of `f32`: a raster tile row in two registers).
    Avx2,
    /// AVX-512F (16 lanes of `f32`: a raster tile row in one register).
    Avx512,
}

impl Simd {
    /// The widest this CPU has.
    pub(crate) fn best() -> Simd {
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
    pub(crate) fn available() -> Vec<Simd> {
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
