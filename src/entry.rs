//! The command line as a whole: parse, run, print errors once, map them to exit codes. The
//! `resbak` binary is this module's [`main`]; programs that embed resbak (the Python module)
//! use [`main`] for their own `resbak` command and [`call`] for one command with its JSON report.
//!
//! Every error, argument errors included, is one `resbak:` line on standard error; with
//! `--json`, standard output also gets `{"error": {"kind": ..., "message": ...}}`.

use crate::ExitCode;
use crate::cli::Cli;
use crate::error::{chain, printable};
use clap::Parser;
use clap::error::ErrorKind;
use std::ffi::OsString;
use std::io::{self, Write};

/// Runs the command line `args` (the program name first) as the `resbak` binary does.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => {
            let json = cli.json;
            let mut stdout = io::stdout().lock();
            match crate::run(cli, &mut stdout) {
                Ok(code) => code,
                Err(err) => {
                    let code = ExitCode::for_error(&err);
                    fail(err.kind(), &chain(&err), json);
                    say_hint(&err);
                    code
                }
            }
        }
        Err(err) => usage(&err, json_requested(&args)),
    }
}

/// What [`call`] returns.
#[derive(Debug)]
pub struct Called {
    /// The exit code the command line would have.
    pub code: ExitCode,
    /// The JSON report (empty after an error).
    pub report: String,
    /// The error's kind (as in the JSON error object) and one-line message.
    pub error: Option<(&'static str, String)>,
}

/// Runs one command (`args` without the program name) with `--json` and returns its report,
/// without printing anything to standard output or installing signal handlers. Warnings still
/// go to standard error.
pub fn call(args: impl IntoIterator<Item = OsString>) -> Called {
    let argv = std::iter::once(OsString::from("resbak")).chain(args);
    let mut cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => {
            let message = one_line(&err.render().to_string());
            return Called {
                code: ExitCode::Error,
                report: String::new(),
                error: Some(("usage", message)),
            };
        }
    };
    cli.json = true;
    let mut out = Vec::new();
    let result = crate::run_embedded(cli, &mut out);
    let report = String::from_utf8_lossy(&out).into_owned();
    match result {
        Ok(code) => Called {
            code,
            report,
            error: None,
        },
        Err(err) => {
            say_hint(&err);
            Called {
                code: ExitCode::for_error(&err),
                report: String::new(),
                error: Some((err.kind(), printable(chain(&err)))),
            }
        }
    }
}

/// Reports an argument error: help and version as clap prints them, anything else as one line.
fn usage(err: &clap::Error, json: bool) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::Success;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if json {
                print_json_error("usage", "a command is required; see resbak --help");
            }
        }
        _ => fail("usage", &one_line(&err.render().to_string()), json),
    }
    ExitCode::Error
}

/// Clap's rendered message as one line: its non-empty lines joined, without `error: `.
fn one_line(rendered: &str) -> String {
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = lines.join("; ");
    text.strip_prefix("error: ").unwrap_or(&text).to_string()
}

/// Whether `--json` is among the arguments (before a `--`), for errors clap found.
fn json_requested(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints `message` as one `resbak:` line on standard error, and as a JSON error object on
/// standard output when `json`. Output that cannot be written is dropped.
fn fail(kind: &str, message: &str, json: bool) {
    let message = printable(message);
    let _ = writeln!(io::stderr(), "resbak: {message}");
    if json {
        print_json_error(kind, &message);
    }
}

/// The hint of an [`Error::Hinted`](crate::error::Error::Hinted), on standard error after the
/// error itself.
fn say_hint(err: &crate::error::Error) {
    if let crate::error::Error::Hinted { hint, .. } = err {
        let _ = writeln!(io::stderr(), "resbak: hint: {}", printable(hint));
    }
}

fn print_json_error(kind: &str, message: &str) {
    let error = serde_json::json!({ "error": { "kind": kind, "message": message } });
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{error:#}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_returns_the_json_report_or_the_error_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.json");
        std::fs::write(&file, "[1]").unwrap();
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let path = file.to_str().unwrap();
        let done = call(args(&["file", "backup", path]));
        assert_eq!(done.code, ExitCode::Success);
        let report: serde_json::Value = serde_json::from_str(&done.report).unwrap();
        assert_eq!(report["items"], 1);
        let refused = call(args(&["file", "restore", path, "nope"]));
        assert_eq!(refused.error.unwrap().0, "unknown_backup");
        let bad = call(args(&["file", "backup"]));
        assert_eq!(bad.error.unwrap().0, "usage");
    }
}
