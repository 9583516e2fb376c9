//! What Ctrl-C (and SIGTERM, SIGHUP) does: while a training loop is
//! *armed* (`fit`, `train`), the first one asks it to stop after the
//! iteration under way, and the command then saves what it has (`fit`: the
//! model, renders and report; `train`: a checkpoint to `--resume` from, the
//! scene and the report) and exits with code 130. A second one, or one
//! while nothing is armed, ends the process at once with code 130, as the
//! default action would (every output file is written atomically, so
//! nothing already saved is lost).
//!
//! The handler runs on a thread of its own (the `ctrlc` crate), not inside
//! the signal, so it may print.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code of a command stopped by Ctrl-C (128 + SIGINT, as a shell
/// reports a process the signal ended).
pub const EXIT_CODE: i32 = 130;

static ARMED: AtomicBool = AtomicBool::new(false);
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler for the whole process (the binary does, once, at
/// its start). Where it cannot be installed the signals keep their default
/// action, which ends the process. A signal the process was started with
/// ignored stays ignored: `nohup` (SIGHUP) and a shell's background jobs
/// (SIGINT) ask for that, and the handler would undo it.
pub fn install() {
    #[cfg(unix)]
    let ignored: Vec<libc::c_int> = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
        .into_iter()
        .filter(|&s| is_ignored(s))
        .collect();
    let _ = ctrlc::set_handler(on_signal);
    #[cfg(unix)]
    for s in ignored {
        // SAFETY: setting a standard signal's disposition to SIG_IGN, as
        // it was when the process started.
        unsafe { libc::signal(s, libc::SIG_IGN) };
    }
}

/// Whether signal `s` is ignored now.
#[cfg(unix)]
fn is_ignored(s: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current
    // one into `old`, a zeroed plain C struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(s, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn on_signal() {
    if ARMED.load(Ordering::SeqCst) && !REQUESTED.swap(true, Ordering::SeqCst) {
        eprintln!(
            "\nstopping after this iteration to save the result (press Ctrl-C again to quit at once)"
        );
    } else {
        std::process::exit(EXIT_CODE);
    }
}

/// While alive, Ctrl-C asks the loop to stop ([`requested`]) instead of
/// ending the process.
#[derive(Debug)]
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

/// Whether Ctrl-C asked the armed loop to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The line a loop prints when it starts, so that a user knows that
/// stopping it keeps the work done.
pub fn hint(what: &str) -> String {
    format!("{what} (Ctrl-C stops after the current iteration and saves the result)")
}
