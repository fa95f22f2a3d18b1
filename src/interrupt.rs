//! What an interruption does: on SIGINT, SIGTERM or SIGHUP, clear progress bars, remove this
//! process's unfinished work (see [`crate::atomic::remove_in_flight`]), say so in one line and
//! exit with 128 plus the signal number (130, 143, 129).
//!
//! The line says what the running command has done so far, as it told [`so_far`]; a command
//! that told nothing gets a line from whether any file was renamed into place. A step that must
//! not be cut in half (a swap of folders) runs under [`hold`], and the handler waits for it.

use crate::error::{Error, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// Set when a signal arrives: the handler is removing this process's work and will exit.
static STARTED: AtomicBool = AtomicBool::new(false);
/// Set when the main thread has stopped for good (see [`settle`]).
static SETTLED: AtomicBool = AtomicBool::new(false);

/// What the running command said is true if it is interrupted now (see [`so_far`]).
static SAID: Mutex<Option<Said>> = Mutex::new(None);
/// Held for reading while a step runs that an interruption must not cut in half.
static HOLD: RwLock<()> = RwLock::new(());
/// What to call when a signal arrives, before the handler waits for held steps: each tells a
/// step under [`hold`] to stop and clean up (see [`on_interrupt`]).
static WAKERS: Mutex<Vec<(u64, Waker)>> = Mutex::new(Vec::new());
/// The id of the next waker.
static NEXT_WAKER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The commit (see [`crate::atomic::commits`]) that puts the catalogue's change in place; 0
/// while none is under way.
static CATALOGUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Set under `--json`: the line also goes to standard output as a JSON error object.
static JSON: AtomicBool = AtomicBool::new(false);

/// Under `--json`, an interruption also prints `{"error": {"kind": "interrupted", "message":
/// ...}}` on standard output, as every other error does.
pub fn report_as_json(on: bool) {
    JSON.store(on, Ordering::SeqCst);
}

/// Writes the JSON error object for `line` on standard output through a handle of its own,
/// so a report the main thread is writing (holding the standard output lock) cannot block it.
fn json_to_stdout(line: &str) {
    use std::os::fd::AsFd;
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return;
    };
    let message = line.strip_prefix("resbak: ").unwrap_or(line);
    let error = serde_json::json!({ "error": { "kind": "interrupted", "message": message } });
    let _ = writeln!(std::fs::File::from(fd), "{error:#}");
}

struct Said {
    /// True while nothing more is renamed into place.
    now: String,
    /// True once a file was renamed into place after the command said so (the step under way
    /// registered something and the command has not yet said more).
    once_registered: Option<String>,
    /// Files renamed into place when the command said so.
    commits: u64,
}

/// Tells the interrupt handler what is true if the process is interrupted from now on: `now`,
/// or `once_registered` (when given) if a file is renamed into place after this call. Each is
/// printed after `resbak: interrupted: `.
pub fn so_far(now: impl Into<String>, once_registered: Option<String>) {
    let said = Said {
        now: now.into(),
        once_registered,
        commits: crate::atomic::commits(),
    };
    *SAID.lock().unwrap_or_else(|e| e.into_inner()) = Some(said);
}

/// Called just before the manifest is renamed into place: from that rename on, a command that
/// told [`so_far`] nothing is said to have saved its change to the catalogue.
pub fn catalogue_saved_by_next_commit() {
    CATALOGUE.store(crate::atomic::commits() + 1, Ordering::SeqCst);
}

/// Holds an interruption off until the returned value is dropped or [`Held::done`] is called.
/// Keep it short: nothing that can block on output belongs under it.
pub fn hold() -> Held {
    Held(HOLD.read().unwrap_or_else(|e| e.into_inner()))
}

/// A step an interruption waits for (see [`hold`]).
pub struct Held(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>);

impl Held {
    /// The step is done: from now on `now` is what is true (see [`so_far`]).
    pub fn done(self, now: impl Into<String>) {
        so_far(now, None);
    }
}

/// A call that tells a held step to stop.
type Waker = Box<dyn Fn() + Send>;

/// Calls `wake` when a signal arrives (at once if one has), until the returned value is dropped.
/// A long step that must clean up on the way out (abort an upload) runs under [`hold`] and stops
/// when woken: the handler waits for it to drop its hold before exiting.
pub fn on_interrupt(wake: impl Fn() + Send + 'static) -> Registered {
    let id = NEXT_WAKER.fetch_add(1, Ordering::SeqCst);
    wakers().push((id, Box::new(wake)));
    if STARTED.load(Ordering::SeqCst) {
        wake_all();
    }
    Registered(id)
}

/// A call registered with [`on_interrupt`]; dropping it removes the call.
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        wakers().retain(|(id, _)| *id != self.0);
    }
}

fn wakers() -> std::sync::MutexGuard<'static, Vec<(u64, Waker)>> {
    WAKERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn wake_all() {
    for (_, wake) in wakers().iter() {
        wake();
    }
}

/// The line an interruption prints, after `halted` stopped this process's work.
fn line(halted: &crate::atomic::Halted) -> String {
    let said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    let catalogue = CATALOGUE.load(Ordering::SeqCst);
    say(
        said.as_ref(),
        crate::atomic::commits(),
        catalogue,
        halted.committed(),
    )
}

/// The line for what the command `said`, after `commits` files were renamed into place (the
/// manifest as commit `catalogue`, 0 if none), `committed` telling whether any was.
fn say(said: Option<&Said>, commits: u64, catalogue: u64, committed: bool) -> String {
    match said {
        Some(said) => {
            let registered = commits > said.commits;
            let what = match &said.once_registered {
                Some(then) if registered => then,
                _ => &said.now,
            };
            format!("resbak: interrupted: {what}")
        }
        None if (1..=commits).contains(&catalogue) => {
            "resbak: interrupted: the change to the catalogue was saved".into()
        }
        None if committed => "resbak: interrupted: the work in progress was not registered".into(),
        None => "resbak: interrupted: nothing was registered".into(),
    }
}

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
            wake_all();
            let _held_off = HOLD.write().unwrap_or_else(|e| e.into_inner());
            let halted = crate::atomic::remove_in_flight(|| SETTLED.load(Ordering::SeqCst));
            crate::progress::clear_all();
            let said = line(&halted);
            let _ = writeln!(std::io::stderr(), "{said}");
            if JSON.load(Ordering::SeqCst) {
                json_to_stdout(&said);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A command that says nothing itself (`tag`, `untag`, `metrics --refresh`) and is
    /// interrupted once its manifest is in place says the change was saved: it said "not
    /// registered" after any file was renamed, so a user could believe a removed pin still
    /// protected a backup.
    #[test]
    fn a_change_whose_manifest_is_in_place_is_said_to_be_saved() {
        let saved = "resbak: interrupted: the change to the catalogue was saved";
        let not = "resbak: interrupted: the work in progress was not registered";
        // The metrics file (commit 3) is in place, the manifest (commit 4) not yet.
        assert_eq!(say(None, 3, 4, true), not);
        assert_eq!(say(None, 4, 4, true), saved);
        assert_eq!(say(None, 5, 4, true), saved);
        assert_eq!(
            say(None, 0, 0, false),
            "resbak: interrupted: nothing was registered"
        );
        assert_eq!(say(None, 2, 0, true), not);
        // What a command said comes first.
        let said = Said {
            now: "nothing was removed".into(),
            once_registered: Some("a was removed".into()),
            commits: 4,
        };
        assert_eq!(
            say(Some(&said), 4, 4, true),
            "resbak: interrupted: nothing was removed"
        );
        assert_eq!(
            say(Some(&said), 5, 4, true),
            "resbak: interrupted: a was removed"
        );
    }
}
