//! `resbak metrics`: the headline metrics the catalogue records; with `--refresh`, those of
//! backups made before resbak recorded them, read from their archives (checked against the
//! manifest while they are read).

use super::{Context, Outcome, Printer, verify};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use crate::metrics::{self, Metrics, Sources};
use serde::Serialize;

/// Options of `resbak metrics`.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Archive names or strategies; every backup when empty.
    pub targets: Vec<String>,
    /// Read the metrics of backups without any from their archives.
    pub refresh: bool,
}

/// One backup's metrics; the JSON shape of `metrics --json` (an array of these).
#[derive(Debug, Serialize)]
pub struct Listed {
    /// Archive file name.
    pub archive: String,
    /// Its strategy.
    pub strategy: String,
    /// Its metrics, if any are recorded.
    pub metrics: Option<Metrics>,
    /// Whether `--refresh` read them from the archive just now.
    pub refreshed: bool,
}

/// Prints the metrics of the selected backups, refreshing first when asked. A backup whose
/// archive could not be read is a problem found (exit 1).
pub fn run(
    ctx: &Context,
    opts: &MetricsOptions,
    sources: &Sources,
    printer: &mut Printer,
) -> Result<Outcome> {
    let dir = &ctx.backup_dir;
    if !dir.is_dir() {
        return Err(Error::missing_folder("backup", dir));
    }
    if opts.refresh {
        super::adopt::upgrade(dir, printer)?;
    }
    // A refresh reads again what the file cannot give: nothing to warn of first.
    let manifest = match opts.refresh {
        true => {
            let mut manifest = Manifest::load(dir)?;
            let _ = manifest.attach_metrics(dir);
            manifest
        }
        false => super::load_with_metrics(dir, printer)?.0,
    };
    let selected: Vec<Entry> = verify::select(&manifest, &opts.targets, dir)?
        .into_iter()
        .cloned()
        .collect();
    let mut outcome = Outcome::Clean;
    let mut refreshed = Vec::new();
    if opts.refresh {
        let missing: Vec<&Entry> = selected.iter().filter(|e| e.metrics.is_none()).collect();
        let (read, failed) = refresh(ctx, &missing, sources, printer)?;
        if failed > 0 {
            outcome = Outcome::ProblemsFound;
        }
        refreshed = read;
    }
    let manifest = match opts.refresh {
        true => super::load_with_metrics(dir, printer)?.0,
        false => manifest,
    };
    let listed: Vec<Listed> = selected
        .iter()
        .map(|e| {
            let now = manifest.find(&e.backup_file).unwrap_or(e);
            Listed {
                archive: e.backup_file.clone(),
                strategy: e.strategy.clone(),
                metrics: now.metrics.clone(),
                refreshed: refreshed.contains(&e.backup_file),
            }
        })
        .collect();
    if printer.json() {
        printer.json_report(&listed)?;
    } else {
        print(&listed, opts.refresh, printer)?;
    }
    Ok(outcome)
}

/// Reads the metrics of `entries` from their archives and records those found. Returns the
/// archives that got metrics and how many could not be read.
pub(crate) fn refresh(
    ctx: &Context,
    entries: &[&Entry],
    sources: &Sources,
    printer: &mut Printer,
) -> Result<(Vec<String>, usize)> {
    let dir = &ctx.backup_dir;
    let mut found = Vec::new();
    let mut failed = 0;
    {
        let _reading = Lock::shared(dir, LockFile::Archives)?;
        for entry in entries {
            let expected = entry.recorded_checksum();
            let path = dir.join(&entry.backup_file);
            match metrics::read_archive(&path, expected.as_ref(), sources) {
                Ok(read) => {
                    for warning in &read.warnings {
                        printer.warn(format_args!("{}: {warning}", entry.backup_file));
                    }
                    if !read.metrics.is_empty() {
                        found.push(((*entry).clone(), read.metrics));
                    }
                }
                Err(e) => {
                    printer.warn(format_args!("no metrics read: {e}"));
                    failed += 1;
                }
            }
        }
    }
    if found.is_empty() {
        return Ok((Vec::new(), failed));
    }
    let recorded = Manifest::update(dir, |manifest| Ok(record(manifest, found)))?;
    Ok((recorded, failed))
}

/// Gives each entry of `found` (still the same bytes, still without metrics) its metrics.
fn record(manifest: &mut Manifest, found: Vec<(Entry, Metrics)>) -> Vec<String> {
    let mut recorded = Vec::new();
    for (entry, metrics) in found {
        let same = manifest
            .backups
            .iter_mut()
            .find(|e| e.backup_file == entry.backup_file && e.sha256 == entry.sha256);
        if let Some(target) = same.filter(|e| e.metrics.is_none()) {
            target.metrics = Some(metrics);
            recorded.push(entry.backup_file);
        }
    }
    recorded
}

fn print(listed: &[Listed], refreshed: bool, printer: &mut Printer) -> Result<()> {
    for item in listed {
        let refreshed = if item.refreshed {
            " (read from the archive)"
        } else {
            ""
        };
        let Some(metrics) = &item.metrics else {
            printer.line(format_args!("{}: no metrics recorded", item.archive))?;
            continue;
        };
        printer.line(format_args!("{}{refreshed}", item.archive))?;
        let width = metrics.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (key, value) in metrics {
            let value = metrics::format_value(*value);
            printer.line(format_args!("  {key:<width$}  {value:>12}"))?;
        }
    }
    let without = listed.iter().filter(|l| l.metrics.is_none()).count();
    let without = crate::error::count(without, "backup", "backups");
    match (without.starts_with("0 "), refreshed) {
        (true, _) => {}
        (false, true) => printer.line(format_args!(
            "{without} without metrics: their archives hold no metrics file resbak could read"
        ))?,
        (false, false) => printer.line(format_args!(
            "{without} without metrics; `resbak metrics --refresh` reads them from the archives"
        ))?,
    }
    Ok(())
}
