//! No native code on this build (the `jit` feature is off, or the target
//! has no Cranelift code generator): compiled steps run on the
//! instruction-list interpreter (`compiled.rs`).

use crate::compiled::Program;
use crate::scalar::Scalar;

/// Which forward function (as in `jit.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fwd {
    /// Values and every step's partials.
    Parts,
    /// Values only.
    Values,
    /// Values only, rows backwards.
    Back,
}

/// Never built: see the module documentation.
#[derive(Debug)]
pub(crate) enum Code<T> {
    #[allow(dead_code)]
    Never(std::convert::Infallible, std::marker::PhantomData<T>),
}

impl<T: Scalar> Code<T> {
    /// Always says why there is no native code.
    pub(crate) fn build(_: &Program<T>) -> Result<Self, String> {
        Err("built without native code (the `jit` feature)".into())
    }

    fn never(&self) -> ! {
        let Code::Never(never, _) = self;
        match *never {}
    }

    pub(crate) unsafe fn forward(
        &self,
        _: Fwd,
        _: *const T,
        _: *mut T,
        _: *const T,
        _: (usize, *mut T),
    ) {
        self.never()
    }

    pub(crate) unsafe fn rev(
        &self,
        _: *const T,
        _: *mut T,
        _: *const T,
        _: *mut T,
        _: (*mut T, *const T),
        _: usize,
    ) {
        self.never()
    }
}
