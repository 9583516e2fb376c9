//! What Ctrl-C (and SIGTERM, SIGHUP) does: while a training loop is
//! *armed* (`fit`, `train`), the first one asks it to stop after the
//! iteration under way, and the command then saves what it has (`fit`: the
//! model, renders and report; `train`: a checkpoint to `--resume` from, the
//! scene and the report) and ends as the signal would have ended it. A
//! second one, or one while nothing is armed, ends the process at once, as
//! the default action does (every output file is written atomically, so
//! nothing already saved is lost).
//!
//! On Unix the process ends *by the signal* (its default action, raised
//! again), not with an exit code, so that a shell running the command in a
//! loop stops the loop on Ctrl-C as it does for any program; a signal the
//! process was started with ignored (`nohup`, a shell's background job)
//! stays ignored. Elsewhere (Windows) the `ctrlc` crate catches Ctrl-C and
//! the process exits with code 130.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The exit code of a command stopped by Ctrl-C where the signal cannot be
/// raised again (128 + SIGINT, as a shell reports a process the signal
/// ended).
pub const EXIT_CODE: i32 = 130;

static ARMED: AtomicBool = AtomicBool::new(false);
/// The signal that asked the armed loop to stop (0: none).
static REQUESTED: AtomicI32 = AtomicI32::new(0);

const STOPPING: &[u8] =
    b"\nstopping after this iteration to save the result (press Ctrl-C again to quit at once)\n";

/// Installs the handler for the whole process (the binary does, once, at
/// its start). Where it cannot be installed the signals keep their default
/// action, which ends the process.
pub fn install() {
    #[cfg(unix)]
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        if !unix::is_ignored(s) {
            unix::catch(s);
        }
    }
    #[cfg(not(unix))]
    let _ = ctrlc::set_handler(|| {
        if ARMED.load(Ordering::SeqCst)
            && REQUESTED
                .compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            use std::io::Write;
            let _ = std::io::stderr().write_all(STOPPING);
        } else {
            std::process::exit(EXIT_CODE);
        }
    });
}

#[cfg(unix)]
mod unix {
    use super::{ARMED, REQUESTED, STOPPING};
    use std::sync::atomic::Ordering;

    /// Whether signal `s` is ignored now.
    pub(super) fn is_ignored(s: libc::c_int) -> bool {
        // SAFETY: sigaction with a null new action only reads the current
        // one into `old`, a zeroed plain C struct.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(s, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
        }
    }

    /// Makes [`on_signal`] the handler of `s`.
    pub(super) fn catch(s: libc::c_int) {
        // SAFETY: installs a handler that only touches atomics and calls
        // async-signal-safe functions (write, signal, raise); the struct
        // is zeroed (an empty mask, no flags but SA_RESTART) before use.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(s, &act, std::ptr::null_mut());
        }
    }

    /// The first signal while armed asks the loop to stop; any other ends
    /// the process by the signal's default action.
    extern "C" fn on_signal(s: libc::c_int) {
        if ARMED.load(Ordering::SeqCst)
            && REQUESTED
                .compare_exchange(0, s, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            // SAFETY: write(2) is async-signal-safe; a failed write is
            // only a lost message.
            unsafe { libc::write(2, STOPPING.as_ptr().cast(), STOPPING.len()) };
        } else {
            die_by(s);
        }
    }

    /// Ends the process by signal `s`'s default action.
    pub(super) fn die_by(s: libc::c_int) {
        // SAFETY: signal and raise are async-signal-safe; with the default
        // action back, raising the signal ends the process (a signal being
        // handled is blocked until the handler returns, and then acts).
        unsafe {
            libc::signal(s, libc::SIG_DFL);
            libc::raise(s);
        }
    }
}

/// While alive, Ctrl-C asks the loop to stop ([`requested`]) instead of
/// ending the process.
#[derive(Debug)]
#[must_use = "the handler is disarmed when the guard is dropped"]
pub struct Armed(());

/// Arms the handler for a loop that checks [`requested`] after every
/// iteration; dropping the guard disarms it, so that Ctrl-C ends a
/// command that waits afterwards (a viewer still serving) at once.
pub fn arm() -> Armed {
    ARMED.store(true, Ordering::SeqCst);
    Armed(())
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C (or SIGTERM, SIGHUP) asked the armed loop to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst) != 0
}

/// Ends a process whose loop a signal stopped, once its result is saved:
/// by that signal on Unix (as a shell expects of a program it interrupted),
/// else with [`EXIT_CODE`]. Returns when no signal asked for a stop.
pub fn end_if_requested() {
    let s = REQUESTED.load(Ordering::SeqCst);
    if s == 0 {
        return;
    }
    #[cfg(unix)]
    unix::die_by(s);
    std::process::exit(EXIT_CODE);
}

/// The line a loop prints when it starts, so that a user knows that
/// stopping it keeps the work done.
pub fn hint(what: &str) -> String {
    format!("{what} (Ctrl-C stops after the current iteration and saves the result)")
}
