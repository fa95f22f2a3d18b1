//! resbak keeps safe, verifiable tar.gz copies of trading-strategy results folders.
//!
//! The pieces, from the bottom up: [`checksum`] (hash while streaming), [`atomic`] (replace a
//! file atomically), [`archive`] (write and read tar.gz), [`extract`] (the safe restore policy),
//! [`manifest`] (the locked, atomically written catalogue), [`checks`] (the last verify results
//! beside it), [`retention`] (keep the N newest), and [`commands`], which builds the user-facing
//! commands from them. [`config`] resolves settings from flags, environment and `resbak.toml`.
//! [`cli`] holds the clap types and [`run`] ties them together.
//!
//! [`filebackup`] stands apart: timestamped copies of single files beside them, with an API
//! ([`filebackup::write_with_backup`]) for programs that rewrite a data file in place.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
pub mod atomic;
pub mod checks;
pub mod checksum;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diff;
pub mod error;
pub mod exit_codes;
pub mod extract;
pub mod filebackup;
pub mod follow;
pub mod index;
pub mod inflate;
pub mod interrupt;
pub mod lookup;
pub mod manifest;
pub mod pgzip;
pub mod progress;
pub mod remote;
pub mod retention;
pub mod reuse;
pub mod targuard;

pub use error::{Error, Result};
pub use exit_codes::ExitCode;

use cli::{Cli, Command};
use commands::{Context, Printer};
use config::{DEFAULT_KEEP, Overrides, Settings};
use std::io::{ErrorKind, Write};

/// Runs the parsed command line, writing reports to `out`.
///
/// When `out` breaks (say, a reader closed the pipe), the command still does all its work and
/// the exit code reflects that work; report lines after the break are lost. A report that could
/// not be written for another reason (a full disk) turns a success into an error.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "resbak", &mut text);
            return emit(out, &text);
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map_err(|e| Error::io("write", "the man page", e))?;
            return emit(out, &text);
        }
        _ => {}
    }
    let (keep, level, exclude, threads) = match &cli.command {
        Command::Backup(args) => (args.keep, args.level, args.exclude.clone(), args.threads),
        Command::Prune { keep, .. } => (*keep, None, Vec::new(), None),
        _ => (None, None, Vec::new(), None),
    };
    let flags = Overrides {
        config: cli.config,
        results_dir: cli.results_dir,
        backup_dir: cli.backup_dir,
        keep: keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        level,
        exclude,
    };
    let settings = Settings::resolve(&flags, |var| std::env::var(var).ok())?;
    interrupt::report_as_json(cli.json);
    interrupt::on_signal_clean_up_and_exit()?;
    let ctx = Context {
        results_dir: settings.results_dir.value.clone(),
        backup_dir: settings.backup_dir.value.clone(),
    };
    let archive_options = archive::Options {
        level: settings.level.value,
        threads: threads.map_or_else(archive::default_threads, usize::from),
        excludes: archive::Excludes::new(&settings.exclude)?,
        progress: progress::Progress::hidden(),
    };
    let ui = commands::Ui::detect(cli.json, cli.quiet, cli.verbose);
    let mut printer = Printer::with_ui(out, ui);
    let outcome = dispatch(cli.command, &ctx, &settings, archive_options, &mut printer);
    interrupt::settle();
    let broken = printer.finish();
    let code = ExitCode::from(outcome?);
    match broken {
        Some(e) if e.kind() != ErrorKind::BrokenPipe && code == ExitCode::Success => {
            Err(Error::io("write to", "standard output", e))
        }
        _ => Ok(code),
    }
}

/// Writes generated text (completions, man page); a reader that stops early is no failure.
fn emit(out: &mut dyn Write, text: &[u8]) -> Result<ExitCode> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            Err(Error::io("write to", "standard output", e))
        }
        _ => Ok(ExitCode::Success),
    }
}

/// Runs the command itself.
fn dispatch(
    command: Command,
    ctx: &Context,
    settings: &Settings,
    archive_options: archive::Options,
    printer: &mut Printer,
) -> Result<commands::Outcome> {
    let connect = |name: &str| remote::Remote::connect(name, settings.remote(name)?);
    use commands::{backup, diff, list, prune, pull, push, reindex, restore, verify};
    match command {
        Command::Backup(args) => {
            let opts = backup::BackupOptions {
                strategies: args.strategies.iter().map(|s| folder_name(s)).collect(),
                all: args.all,
                archive: archive_options,
                keep: settings.keep.value,
                dry_run: args.dry_run,
                always: args.always,
                keep_safety: args.keep_safety.map(count),
            };
            backup::run(ctx, &opts, printer)
        }
        Command::List {
            strategy,
            remote,
            check,
        } => {
            let strategy = strategy.as_deref().map(folder_name);
            let opts = list::ListOptions { strategy, check };
            match remote {
                None => list::run(ctx, &opts, printer),
                Some(name) => list::run_remote(ctx, &connect(&name)?, &opts, printer),
            }
        }
        Command::Verify {
            targets,
            deep,
            remote,
        } => {
            let opts = verify::VerifyOptions { targets, deep };
            match remote {
                None => verify::run(ctx, &opts, printer),
                Some(name) => verify::run_remote(&connect(&name)?, &opts, printer),
            }
        }
        Command::Restore {
            archive,
            to,
            force,
            include,
            dry_run,
            remote,
        } => {
            let opts = restore::RestoreOptions {
                archive,
                to,
                force,
                archive_options,
                include: include_filter(&include)?,
                dry_run,
                config_file: settings.file.clone(),
            };
            match remote {
                None => restore::run(ctx, &opts, printer),
                Some(name) => restore::run_remote(ctx, &connect(&name)?, &opts, printer),
            }
        }
        Command::Prune {
            strategy,
            dry_run,
            remote,
            keep_safety,
            ..
        } => {
            let opts = prune::PruneOptions {
                strategy: strategy.as_deref().map(folder_name),
                keep: settings.keep.value.unwrap_or(DEFAULT_KEEP),
                dry_run,
                keep_safety: keep_safety.map(count),
            };
            match remote {
                None => prune::run(ctx, &opts, printer),
                Some(name) => prune::run_remote(&connect(&name)?, &opts, printer),
            }
        }
        Command::Push {
            targets, remote, ..
        } => push::run(
            ctx,
            &connect(&remote)?,
            &push::PushOptions { targets },
            printer,
        ),
        Command::Pull { archives, remote } => pull::run(
            ctx,
            &connect(&remote)?,
            &pull::PullOptions { archives },
            printer,
        ),
        Command::Reindex => reindex::run(ctx, printer),
        Command::Ls { archive, glob } => {
            commands::browse::ls(ctx, &archive, glob.as_deref(), printer)
        }
        Command::Cat { archive, path } => commands::browse::cat(ctx, &archive, &path, printer),
        Command::Diff { archive, other } => {
            let opts = diff::DiffOptions {
                archive,
                other,
                excludes: archive::Excludes::new(&settings.exclude)?,
            };
            diff::run(ctx, &opts, printer)
        }
        Command::Config => commands::config::run(settings, printer),
        Command::Completions { .. } | Command::Man => unreachable!("handled above"),
        Command::File(cmd) => commands::file::run(&file_action(cmd), printer),
    }
}

/// A count from the command line as `usize`.
fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A strategy named on the command line, without the trailing `/` that a shell's completion of
/// `results/NAME` leaves (the name is checked later).
fn folder_name(arg: &str) -> String {
    match arg.trim_end_matches('/') {
        "" => arg.to_string(),
        name => name.to_string(),
    }
}

/// `--include` patterns as a filter, or `None` when there are none.
fn include_filter(patterns: &[String]) -> Result<Option<archive::Excludes>> {
    (!patterns.is_empty())
        .then(|| archive::Excludes::new(patterns))
        .transpose()
}

/// Converts `resbak file` arguments into the command's plain options.
fn file_action(cmd: cli::FileCommand) -> commands::file::FileAction {
    use cli::FileCommand as Cmd;
    use commands::file::FileAction;
    match cmd {
        Cmd::Backup { path, keep } => FileAction::Backup { path, keep },
        Cmd::List { path } => FileAction::List { path },
        Cmd::Restore {
            path, backup, keep, ..
        } => FileAction::Restore {
            path,
            pick: backup.map_or(filebackup::Pick::Latest, filebackup::Pick::Named),
            keep,
        },
    }
}
