//! `resbak report`: the HTML page of one strategy's history, or of every strategy's, written
//! atomically. An existing file is replaced only when it is an earlier resbak report.

use super::{Context, Outcome, Printer, unknown_name};
use crate::error::{Error, IoContext, Result};
use crate::metrics::Sources;
use crate::report::{self, Strategy};
use std::io::Read;
use std::path::Path;

/// The JSON shape of `report --json`.
#[derive(Debug, serde::Serialize)]
struct Written<'a> {
    file: &'a Path,
    strategies: Vec<String>,
    backups: usize,
}

/// Writes the report of `strategy` (or of every strategy) to `file`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `file` exists and is not a resbak report; an unknown
/// strategy; I/O errors writing the file.
pub fn run(
    ctx: &Context,
    strategy: Option<&str>,
    file: &Path,
    sources: &Sources,
    printer: &mut Printer,
) -> Result<Outcome> {
    if !ctx.backup_dir.is_dir() {
        return Err(Error::missing_folder("backup", &ctx.backup_dir));
    }
    let manifest = super::load_with_metrics(&ctx.backup_dir, printer)?.0;
    if let Some(name) = strategy
        && manifest.backups.iter().all(|e| e.strategy != name)
    {
        return Err(unknown_name(name, &manifest, &ctx.backup_dir));
    }
    check_replaceable(file)?;
    let mut names: Vec<&str> = manifest
        .backups
        .iter()
        .map(|e| e.strategy.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let parts: Vec<Strategy> = names
        .into_iter()
        .filter(|n| strategy.is_none_or(|s| s == *n))
        .map(|name| {
            let mut entries = manifest.regular_newest_first(name);
            entries.reverse();
            Strategy::new(name, entries, &sources.report)
        })
        .filter(|s| !s.entries.is_empty())
        .collect();
    let page = report::render(&parts, chrono::Utc::now());
    crate::atomic::write_file(file, |out| out.write_all(page.as_bytes()).at("write", file))?;
    let backups = parts.iter().map(|s| s.entries.len()).sum();
    let strategies: Vec<String> = parts.iter().map(|s| s.name.clone()).collect();
    printer.line(format_args!(
        "Wrote {} ({} of {})",
        file.display(),
        crate::error::count(backups, "backup", "backups"),
        crate::error::count(strategies.len(), "strategy", "strategies")
    ))?;
    printer.json_report(&Written {
        file,
        strategies,
        backups,
    })?;
    Ok(Outcome::Clean)
}

/// Refuses to replace an existing file that is not a resbak report (or is not a file).
fn check_replaceable(file: &Path) -> Result<()> {
    let existing = match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.at("read", file)?,
    };
    let mut head = Vec::new();
    if existing.is_file() {
        std::fs::File::open(file)
            .and_then(|f| f.take(report::MARK.len() as u64).read_to_end(&mut head))
            .at("read", file)?;
    }
    match head == report::MARK.as_bytes() {
        true => Ok(()),
        false => Err(Error::InvalidArgument {
            message: format!(
                "{} exists and is not a resbak report; it is left alone (name another file)",
                file.display()
            ),
        }),
    }
}
