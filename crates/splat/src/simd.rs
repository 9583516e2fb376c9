//! The vector instruction sets the crate's hot loops are compiled for,
//! chosen at run time: the rasterizer's tile loops (`raster`) and the
//! L1 + SSIM loss's kernels (`l1_ssim`). Every kernel does the same
//! operations in the same order on every set (no fused multiply-add;
//! division is correctly rounded at any width), so the bits never depend
//! on which one runs.

/// A vector instruction set (chosen at run time; every one gives the same
/// bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Simd {
    /// The target's baseline.
    Generic,
    /// AVX2 (8 lanes of `f32`: a raster tile row in two registers).
    Avx2,
    /// AVX-512F (16 lanes of `f32`: a raster tile row in one register).
    Avx512,
}

/// The environment variable that caps the instruction set
/// ([`Simd::best`]): `generic`, `avx2` or `avx512`.
pub const SIMD_ENV: &str = "CHAINRULE_SIMD";

impl Simd {
    /// The widest set this CPU has, capped by `CHAINRULE_SIMD` when it is
    /// set (`generic`, `avx2`, `avx512`: to measure the narrower kernels on
    /// a wider CPU, as another machine would run them; the bits are the
    /// same). Decided once per process; an empty value counts as unset, an
    /// unknown one is reported on stderr and ignored.
    pub(crate) fn best() -> Simd {
        static BEST: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let widest = Simd::widest();
            match std::env::var(SIMD_ENV) {
                Ok(v) if v.trim().is_empty() => widest,
                Ok(v) => match Simd::parse(&v) {
                    Some(cap) => cap.min(widest),
                    None => {
                        eprintln!(
                            "warning: {SIMD_ENV}={v:?} is not generic, avx2 or avx512; ignored"
                        );
                        widest
                    }
                },
                Err(_) => widest,
            }
        })
    }

    /// The widest set this CPU has.
    fn widest() -> Simd {
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

    /// A set by its name in `CHAINRULE_SIMD` (ASCII case ignored).
    fn parse(name: &str) -> Option<Simd> {
        match name.trim().to_ascii_lowercase().as_str() {
            "generic" => Some(Simd::Generic),
            "avx2" => Some(Simd::Avx2),
            "avx512" | "avx512f" => Some(Simd::Avx512),
            _ => None,
        }
    }

    /// The set's name, as `CHAINRULE_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Generic => "generic",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
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

/// Asks the processor to bring the `len` bytes from `at` into its caches,
/// every cache line of them: for rows of a long buffer visited with gaps
/// (a Gaussian's SH row, skipped when the view did not draw it), which
/// the hardware's prefetchers do not follow. A hint only: nothing is read
/// or written, and an address outside the buffer is never dereferenced
/// (callers may pass rows past the end). Wherever `at` falls in its
/// line: the last byte's line is asked for too.
#[inline(always)]
pub(crate) fn prefetch_bytes<T>(at: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let at = at.cast::<i8>();
        // SAFETY (both): a prefetch never faults (the address is a hint).
        let mut off = 0;
        while off < len {
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(off)) };
            off += 64;
        }
        if len > 0 {
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(len - 1)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}

#[cfg(test)]
mod tests {
    use super::Simd;

    #[test]
    fn names_parse_back_and_caps_order_by_width() {
        for s in [Simd::Generic, Simd::Avx2, Simd::Avx512] {
            assert_eq!(Simd::parse(s.name()), Some(s));
            assert_eq!(Simd::parse(&s.name().to_uppercase()), Some(s));
        }
        assert_eq!(Simd::parse("sse9"), None);
        assert!(Simd::Generic < Simd::Avx2 && Simd::Avx2 < Simd::Avx512);
        // a cap never asks for more than the CPU has
        assert_eq!(Simd::Avx512.min(Simd::widest()), Simd::widest());
        assert!(Simd::available().contains(&Simd::best()));
    }
}
