//! resbak keeps safe, verifiable tar.gz copies of trading-strategy results folders.
//!
//! The pieces, from the bottom up: [`checksum`] (hash while streaming), [`atomic`] (replace a
//! file atomically), [`archive`] (write and read tar.gz), [`extract`] (the safe restore policy),
//! [`manifest`] (the locked, atomically written catalogue), [`checks`] (the last verify results
//! beside it), [`retention`] (keep the N newest), and [`commands`], which builds the user-facing
//! commands from them. [`config`] resolves settings from flags, environment and `resbak.toml`.
//! [`cli`] holds the clap types and [`run`] ties them together. [`metrics`] reads the headline
//! metrics the catalogue records with each backup, and [`report`] draws them as an HTML page.
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
pub mod entry;
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
pub mod metrics;
pub mod pgzip;
pub mod progress;
pub mod remote;
pub mod report;
pub mod retention;
pub mod reuse;
pub mod targuard;
mod window;

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
    run_with(cli, out, true)
}

/// [`run`] for a program that embeds resbak (such as a Python module): no signal handlers are
/// installed, so the host program keeps its own.
pub fn run_embedded(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    run_with(cli, out, false)
}

fn run_with(cli: Cli, out: &mut dyn Write, signals: bool) -> Result<ExitCode> {
    if let Command::File(_) = &cli.command {
        return run_file(cli, out, signals);
    }
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
    let calendar = match &cli.command {
        Command::Backup(cli::BackupArgs { calendar, .. }) | Command::Prune { calendar, .. } => {
            calendar_of(calendar)
        }
        _ => retention::Calendar::default(),
    };
    let flags = Overrides {
        config: cli.config,
        results_dir: cli.results_dir,
        backup_dir: cli.backup_dir,
        keep: keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        level,
        exclude,
        timezone: cli.timezone,
        calendar,
    };
    let settings = Settings::resolve(&flags, |var| std::env::var(var).ok())?;
    manifest::legacy::set_zone(settings.zone(std::env::var("TZ").ok().as_deref()));
    if signals {
        interrupt::report_as_json(cli.json);
        interrupt::on_signal_clean_up_and_exit()?;
    }
    let ctx = Context {
        results_dir: settings.results_dir.value.clone(),
        backup_dir: settings.backup_dir.value.clone(),
    };
    let archive_options = archive::Options {
        level: settings.level.value,
        threads: threads.map_or_else(archive::default_threads, usize::from),
        excludes: archive::Excludes::new(&settings.exclude)?,
        progress: progress::Progress::hidden(),
        copies: archive::Excludes::default(),
    };
    let ui = commands::Ui::detect(cli.json, cli.quiet, cli.verbose);
    let mut printer = Printer::with_ui(out, ui);
    let dry_run = cli.command.is_dry_run();
    let outcome = dispatch(cli.command, &ctx, &settings, archive_options, &mut printer);
    if let (Err(e), false) = (&outcome, dry_run) {
        commands::verify::record_if_corrupt(&ctx.backup_dir, e);
    }
    finish(printer, outcome)
}

/// Runs `resbak file`, which uses no settings: the global folder options are refused.
fn run_file(cli: Cli, out: &mut dyn Write, signals: bool) -> Result<ExitCode> {
    let refused = [
        (cli.results_dir.is_some(), "--results-dir"),
        (cli.backup_dir.is_some(), "--backup-dir"),
        (cli.config.is_some(), "--config"),
    ];
    if let Some((_, option)) = refused.into_iter().find(|(given, _)| *given) {
        return Err(Error::NotForFile { option });
    }
    if signals {
        interrupt::report_as_json(cli.json);
        interrupt::on_signal_clean_up_and_exit()?;
    }
    let ui = commands::Ui::detect(cli.json, cli.quiet, cli.verbose);
    let mut printer = Printer::with_ui(out, ui);
    let Command::File(args) = cli.command else {
        unreachable!("called for `resbak file` only")
    };
    let outcome = commands::file::run(&file_action(args.command), &mut printer);
    finish(printer, outcome)
}

/// Ends a command: waits out an interruption, flushes the report, and picks the exit code.
fn finish(printer: Printer, outcome: Result<commands::Outcome>) -> Result<ExitCode> {
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
    use commands::{
        backup, diff, list, metrics, prune, pull, push, reindex, report, restore, show, tag, verify,
    };
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
                calendar: settings.calendar,
                metrics: settings.metrics.clone(),
                tags: args.tags,
                note: args.note,
            };
            let to = match (args.dry_run, args.push.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => settings.push.clone(),
                (false, false) => args.push,
            };
            let remotes = to.iter().map(|n| connect(n)).collect::<Result<Vec<_>>>()?;
            push::after(ctx, &remotes, printer, |printer| {
                backup::run(ctx, &opts, printer)
            })
        }
        Command::List {
            strategy,
            remote,
            check,
            metrics,
            sort,
            tag,
        } => {
            let strategy = strategy.as_deref().map(folder_name);
            let opts = list::ListOptions {
                strategy,
                check,
                metrics: metrics.map(|m| split_names(&m)).unwrap_or_default(),
                sort,
                tag,
                directions: settings.metrics.clone(),
            };
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
                Some(name) => verify::run_remote(ctx, &connect(&name)?, &opts, printer),
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
            // The default count applies only when no rule at all is given.
            let keep = match settings.calendar.is_empty() {
                true => Some(settings.keep.value.unwrap_or(DEFAULT_KEEP)),
                false => settings.keep.value,
            };
            let opts = prune::PruneOptions {
                strategy: strategy.as_deref().map(folder_name),
                keep,
                dry_run,
                keep_safety: keep_safety.map(count),
                calendar: settings.calendar,
            };
            match remote {
                None => prune::run(ctx, &opts, printer),
                Some(name) => prune::run_remote(&connect(&name)?, &opts, printer),
            }
        }
        Command::Push {
            targets,
            remote,
            repair,
            ..
        } => push::run(
            ctx,
            &connect(&remote)?,
            &push::PushOptions { targets, repair },
            printer,
        ),
        Command::Pull { archives, remote } => pull::run(
            ctx,
            &connect(&remote)?,
            &pull::PullOptions { archives },
            printer,
        ),
        Command::Reindex => reindex::run(ctx, &settings.metrics, printer),
        Command::Ls { archive, glob } => {
            commands::browse::ls(ctx, &archive, glob.as_deref(), printer)
        }
        Command::Cat { archive, path } => commands::browse::cat(ctx, &archive, &path, printer),
        Command::Diff {
            archive,
            other,
            metrics,
            all,
        } => {
            let opts = diff::DiffOptions {
                archive,
                other,
                excludes: archive::Excludes::new(&settings.exclude)?,
            };
            match metrics {
                false => diff::run(ctx, &opts, printer),
                true => diff::run_metrics(ctx, &opts, &settings.metrics, all, printer),
            }
        }
        Command::Show { archive } => show::run(ctx, &archive, printer),
        Command::Tag {
            archive,
            tags,
            pin,
            note,
        } => {
            let change = tag::Change::Add { tags, pin, note };
            tag::run(ctx, &archive, &change, printer)
        }
        Command::Untag {
            archive,
            tags,
            pin,
            note,
        } => {
            let change = tag::Change::Remove { tags, pin, note };
            tag::run(ctx, &archive, &change, printer)
        }
        Command::Metrics { targets, refresh } => {
            let opts = metrics::MetricsOptions { targets, refresh };
            metrics::run(ctx, &opts, &settings.metrics, printer)
        }
        Command::Report { strategy, html } => {
            let strategy = strategy.as_deref().map(folder_name);
            report::run(ctx, strategy.as_deref(), &html, &settings.metrics, printer)
        }
        Command::Config => commands::config::run(settings, printer),
        Command::Completions { .. } | Command::Man => unreachable!("handled above"),
        Command::File(_) => unreachable!("handled by run_file"),
        Command::Key(cli::KeyCommand::Generate { file }) => commands::key::generate(file, printer),
    }
}

/// The time-based retention flags as counts.
fn calendar_of(args: &cli::CalendarArgs) -> retention::Calendar {
    retention::Calendar {
        daily: args.keep_daily.map(count),
        weekly: args.keep_weekly.map(count),
        monthly: args.keep_monthly.map(count),
    }
}

/// Comma-separated names, trimmed, empty ones left out.
fn split_names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
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
        Cmd::Verify { path } => FileAction::Verify { path },
        Cmd::Restore {
            path,
            backup,
            exact,
            keep,
            ..
        } => FileAction::Restore {
            path,
            pick: match (backup, exact) {
                (Some(name), _) => filebackup::Pick::Named(name),
                (None, true) => filebackup::Pick::Newest,
                (None, false) => filebackup::Pick::Latest,
            },
            keep,
        },
    }
}
