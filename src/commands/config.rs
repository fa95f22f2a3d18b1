//! `resbak config`: the effective settings and where each came from.

use super::{Outcome, Printer};
use crate::config::{DEFAULT_KEEP, Settings};
use crate::error::Result;

/// Prints each setting with its source.
pub fn run(settings: &Settings, printer: &mut Printer) -> Result<Outcome> {
    printer.json_report(settings)?;
    let file = settings
        .file
        .as_ref()
        .map_or_else(|| "none".to_string(), |f| f.display().to_string());
    printer.line(format_args!("config file  {file}"))?;
    let s = &settings.results_dir;
    printer.line(format_args!(
        "results_dir  {}  ({})",
        s.value.display(),
        s.source
    ))?;
    let s = &settings.backup_dir;
    printer.line(format_args!(
        "backup_dir   {}  ({})",
        s.value.display(),
        s.source
    ))?;
    let s = &settings.keep;
    let keep = match s.value {
        Some(n) => format!("{n}  ({}; backup prunes after each backup)", s.source),
        None if !settings.calendar.is_empty() => {
            "none  (the keep_daily/weekly/monthly rules below apply)".to_string()
        }
        None => format!("{DEFAULT_KEEP}  (default for prune; backup prunes only with --keep)"),
    };
    printer.line(format_args!("keep         {keep}"))?;
    let s = &settings.level;
    printer.line(format_args!("level        {}  ({})", s.value, s.source))?;
    printer.line(format_args!(
        "exclude      {:?}  (resbak.toml, then --exclude)",
        settings.exclude
    ))?;
    let s = &settings.timezone;
    printer.line(format_args!(
        "timezone     {}  ({}; for the Python scripts' local times)",
        s.value, s.source
    ))?;
    let c = &settings.calendar;
    for (name, count) in [
        ("daily", c.daily),
        ("weekly", c.weekly),
        ("monthly", c.monthly),
    ] {
        if let Some(n) = count {
            printer.line(format_args!("keep_{name:<7} {n}"))?;
        }
    }
    print_remotes(settings, printer)?;
    Ok(Outcome::Clean)
}

/// One line per configured remote: where it points (credentials are never shown).
fn print_remotes(settings: &Settings, printer: &mut Printer) -> Result<()> {
    for (name, remote) in &settings.remotes {
        let prefix = remote.prefix.as_deref().unwrap_or("").trim_matches('/');
        printer.line(format_args!(
            "remote       {name}  s3://{}/{prefix}  at {}",
            remote.bucket,
            remote.endpoint.as_deref().unwrap_or("AWS S3")
        ))?;
    }
    Ok(())
}
