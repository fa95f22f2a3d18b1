//! The `resbak` binary: parse arguments, run, print errors once, map them to exit codes.

#![forbid(unsafe_code)]

use clap::Parser;
use resbak::{Error, ExitCode, cli::Cli};
use std::io::{self, ErrorKind, Write};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut stdout = io::stdout().lock();
    let code =
        match resbak::run(cli, &mut stdout).and_then(|code| flush(&mut stdout).map(|()| code)) {
            Ok(code) => code,
            Err(err) if is_broken_pipe(&err) => ExitCode::Success,
            Err(err) => {
                let code = ExitCode::for_error(&err);
                eprintln!("resbak: {:#}", anyhow::Error::new(err));
                code
            }
        };
    std::process::ExitCode::from(i32::from(code) as u8)
}

fn flush(out: &mut impl Write) -> resbak::Result<()> {
    out.flush()
        .map_err(|e| Error::io("write to", "standard output", e))
}

fn is_broken_pipe(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. } if source.kind() == ErrorKind::BrokenPipe)
}
