//! What an interruption does: on SIGINT, SIGTERM or SIGHUP, clear progress bars, remove this
//! process's unfinished work (see [`crate::atomic::remove_in_flight`]), say so in one line and
//! exit with 128 plus the signal number (130, 143, 129).

use crate::error::{Error, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when a signal arrives: the handler is removing this process's work and will exit.
static STARTED: AtomicBool = AtomicBool::new(false);
/// Set when the main thread has stopped for good (see [`settle`]).
static SETTLED: AtomicBool = AtomicBool::new(false);

/// Starts a thread that handles SIGINT, SIGTERM and SIGHUP as the module docs say. Nothing it
/// does can panic on an unwritable standard error: the process always exits.
///
/// # Errors
/// [`Error::Io`] when the handlers cannot be installed.
pub fn on_signal_clean_up_and_exit() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::io("handle signals of", "this process", e))?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            STARTED.store(true, Ordering::SeqCst);
            let halted = crate::atomic::remove_in_flight(|| SETTLED.load(Ordering::SeqCst));
            crate::progress::clear_all();
            let said = match halted.committed() {
                false => "resbak: interrupted: nothing was registered",
                true => "resbak: interrupted: the work in progress was not registered",
            };
            let _ = writeln!(std::io::stderr(), "{said}");
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Called by the main thread when its command is over, before it reports anything: when an
/// interruption is being handled, waits for the handler to exit the process, so that an error
/// caused by the handler removing work in progress never becomes the exit code.
pub fn settle() {
    if STARTED.load(Ordering::SeqCst) {
        SETTLED.store(true, Ordering::SeqCst);
        loop {
            std::thread::park();
        }
    }
}
