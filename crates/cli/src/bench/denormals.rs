//! Flush-to-zero for a measurement: XLA's CPU backend (the JAX peers)
//! computes with subnormal numbers flushed to zero, IEEE arithmetic (Rust's
//! default, and chainrule's) keeps them, and on x86 every operation on a
//! subnormal costs some hundred cycles. Alpha compositing of 10⁶ fragments
//! drives the transmittance below 2⁻¹⁰²² after about 2,500 of them, and
//! (with every 1 − α > ½) it then stays at the smallest subnormal instead
//! of reaching 0: under IEEE nearly every later step is that slow path.
//! `bench recurrence --flush-denormals` measures in JAX's mode.

/// While alive, the current thread computes with flush-to-zero and
/// denormals-are-zero (x86-64: the MXCSR FTZ and DAZ bits; elsewhere
/// nothing). Dropping it restores the previous mode.
#[derive(Debug)]
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

impl FlushDenormals {
    /// Turns flushing on for this thread if `on` (a no-op guard otherwise).
    pub fn new(on: bool) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            if on {
                write_mxcsr(saved | FTZ_DAZ);
            }
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = on;
            FlushDenormals {}
        }
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit MXCSR register into `v`.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads a value read from MXCSR with only the FTZ/DAZ
    // bits changed (both valid on every x86-64 CPU with SSE2).
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly)) };
}

#[cfg(test)]
mod tests {
    use super::FlushDenormals;
    use std::hint::black_box;

    #[test]
    fn flushes_while_alive_and_restores() {
        let tiny = black_box(1e-310f64);
        assert!(black_box(tiny * 0.75) > 0.0);
        {
            let _g = FlushDenormals::new(true);
            if cfg!(target_arch = "x86_64") {
                assert_eq!(black_box(tiny * 0.75), 0.0);
            }
        }
        assert!(black_box(tiny * 0.75) > 0.0);
        let _off = FlushDenormals::new(false);
        assert!(black_box(tiny * 0.75) > 0.0);
    }
}
