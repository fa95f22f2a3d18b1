//! The `resbak._resbak` extension module: the library's entry points for Python, and nothing
//! else. Arguments go in, the library's JSON reports (the shapes `--json` prints) come out; the
//! Python package around it (`python/resbak/`) raises the errors and logs.

use pyo3::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

/// An error as `(kind, message)`, the kind as in the JSON error object.
type Failure = (String, String);

/// Runs one command line (without the program name) with `--json` in this process, without
/// installing signal handlers, and returns `(exit_code, report, error)`. The GIL is released
/// while it runs.
#[pyfunction]
fn call(py: Python<'_>, args: Vec<OsString>) -> (i32, String, Option<Failure>) {
    let called = py.detach(|| resbak::entry::call(args));
    let error = called
        .error
        .map(|(kind, message)| (kind.to_string(), message));
    (i32::from(called.code), called.report, error)
}

/// `resbak::filebackup::write_with_backup`: returns `(report, error)`, the report as JSON.
/// The GIL is released while it runs.
#[pyfunction]
fn write_with_backup(
    py: Python<'_>,
    path: PathBuf,
    data: &[u8],
    keep: usize,
    strict: bool,
) -> (Option<String>, Option<Failure>) {
    let opts = resbak::filebackup::FileBackupOptions { keep, strict };
    let done = py.detach(|| resbak::filebackup::write_with_backup(&path, data, &opts));
    match done {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => (Some(json), None),
            Err(e) => (None, Some(("io".to_string(), e.to_string()))),
        },
        Err(e) => {
            let message = resbak::error::printable(resbak::error::chain(&e));
            (None, Some((e.kind().to_string(), message)))
        }
    }
}

/// Runs the `resbak` command line `argv` (the program name first) as the binary does, printing
/// to this process's standard output and error, and returns its exit code.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| i32::from(resbak::entry::main(argv)))
}

#[pymodule]
fn _resbak(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(write_with_backup, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
