//! Ctrl-C and SIGTERM: recorded in a flag the sweep loop polls, so the launcher can stop
//! its ranks, flush the journal and exit 130 with everything resumable. A second signal
//! exits at once (still resumable).

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn record_signal(_: libc::c_int) {
    // Only atomics and _exit: async-signal-safe. A second Ctrl-C means "now": the journal
    // already holds every accepted row, and the ranks die with the launcher.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the SIGINT/SIGTERM handlers.
pub fn install() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(record_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            eprintln!("sweeprun: cannot install the {signal} handler: {e}");
        }
    }
}

/// True once SIGINT or SIGTERM has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
