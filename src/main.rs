//! The `resbak` binary: parse arguments, run, print errors once, map them to exit codes.
//!
//! Every error, argument errors included, is one `resbak:` line on standard error; with
//! `--json`, standard output also gets `{"error": {"kind": ..., "message": ...}}`.

#![forbid(unsafe_code)]

use clap::Parser;
use clap::error::ErrorKind;
use resbak::{
    ExitCode,
    cli::Cli,
    error::{chain, printable},
};
use std::io::{self, Write};

fn main() -> std::process::ExitCode {
    let code = match Cli::try_parse() {
        Ok(cli) => {
            let json = cli.json;
            let mut stdout = io::stdout().lock();
            match resbak::run(cli, &mut stdout) {
                Ok(code) => code,
                Err(err) => {
                    let kind = err.kind();
                    let code = ExitCode::for_error(&err);
                    fail(kind, &chain(&err), json);
                    code
                }
            }
        }
        Err(err) => usage(&err),
    };
    std::process::ExitCode::from(u8::try_from(i32::from(code)).unwrap_or(2))
}

/// Reports an argument error: help and version as clap prints them, anything else as one line.
fn usage(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::Success;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if json_requested() {
                print_json_error("usage", "a command is required; see resbak --help");
            }
        }
        _ => fail(
            "usage",
            &one_line(&err.render().to_string()),
            json_requested(),
        ),
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
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
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

fn print_json_error(kind: &str, message: &str) {
    let error = serde_json::json!({ "error": { "kind": kind, "message": message } });
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{error:#}").and_then(|()| out.flush());
}
