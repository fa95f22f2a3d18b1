//! The `resbak` binary: the command line of [`resbak::entry::main`] as a process.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let code = resbak::entry::main(std::env::args_os());
    std::process::ExitCode::from(u8::try_from(i32::from(code)).unwrap_or(2))
}
