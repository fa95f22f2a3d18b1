//! `resbak diff --metrics`: the headline metrics of two backups, or of a backup and the current
//! results folder, side by side. Only what changed unless `--all`; exits like diff(1).

use super::DiffOptions;
use crate::commands::{Context, Located, Outcome, Printer, locate_backup};
use crate::error::{Error, Result};
use crate::metrics::{self, Compared, Metrics, Sources};
use std::collections::BTreeMap;

/// Compares the metrics of `opts.archive` with those of `opts.other`, or of the strategy's
/// results folder. Metrics an entry lacks are read from its archive.
///
/// # Errors
/// [`Error::Uncompared`] holding the cause when either side cannot be read.
pub fn run_metrics(
    ctx: &Context,
    opts: &DiffOptions,
    sources: &Sources,
    all: bool,
    printer: &mut Printer,
) -> Result<Outcome> {
    let ((old_label, old), (new_label, new)) =
        sides(ctx, opts, sources, printer).map_err(|e| Error::Uncompared(Box::new(e)))?;
    let compared = metrics::compare(&old, &new);
    let changed = compared.values().filter(|c| c.changed()).count();
    let shown: BTreeMap<&String, &Compared> = compared
        .iter()
        .filter(|(_, c)| all || c.changed())
        .collect();
    if printer.json() {
        printer.json_report(&shown)?;
    } else {
        print_table(&old_label, &new_label, &shown, sources, printer)?;
        printer.line(format_args!(
            "{old_label} -> {new_label}: {} changed, {} the same",
            crate::error::count(changed, "metric", "metrics"),
            compared.len() - changed
        ))?;
    }
    Ok(match changed {
        0 => Outcome::Clean,
        _ => Outcome::ProblemsFound,
    })
}

type Side = (String, Metrics);

/// Both sides' labels and metrics.
fn sides(
    ctx: &Context,
    opts: &DiffOptions,
    sources: &Sources,
    printer: &mut Printer,
) -> Result<(Side, Side)> {
    let mut old = locate_backup(ctx, &opts.archive)?;
    recorded(&mut old);
    let old_side = (label(&old), of_archive(&old, sources, printer)?);
    let new_side = match &opts.other {
        Some(other) => {
            let mut new = locate_backup(ctx, other)?;
            recorded(&mut new);
            (label(&new), of_archive(&new, sources, printer)?)
        }
        None => {
            let folder = ctx.results_dir.join(old.strategy()?);
            if !folder.is_dir() {
                return Err(Error::missing_folder("results", &folder));
            }
            let found = metrics::read_folder(&folder, sources, &opts.excludes);
            for warning in &found.warnings {
                printer.warn(warning);
            }
            (folder.display().to_string(), found.metrics)
        }
    };
    Ok((old_side, new_side))
}

fn label(located: &Located) -> String {
    let file = located.path.file_name().unwrap_or(located.path.as_os_str());
    file.to_string_lossy().into_owned()
}

/// Gives a located archive's entry the metrics recorded for it, if they can be: those that
/// cannot are read from the archive by [`of_archive`] instead.
fn recorded(located: &mut Located) {
    let dir = crate::atomic::parent_dir(&located.path);
    if let Some(entry) = located.entry.as_mut() {
        let _ = crate::manifest::metrics::attach(dir, std::slice::from_mut(entry));
    }
}

/// The metrics the manifest records for a located archive, else those read from it.
fn of_archive(located: &Located, sources: &Sources, printer: &mut Printer) -> Result<Metrics> {
    if let Some(entry) = &located.entry
        && let Some(metrics) = entry.metrics.clone()
    {
        warn_if_damaged(located, entry, printer);
        return Ok(metrics);
    }
    let expected = located.entry.as_ref().and_then(|e| e.recorded_checksum());
    let found = metrics::read_archive(&located.path, expected.as_ref(), sources)?;
    for warning in &found.warnings {
        printer.warn(warning);
    }
    Ok(found.metrics)
}

/// Warns when the archive whose recorded metrics are shown is what `list` calls `missing` or
/// `failed`: they are what it held when it was made, not proof that it still does.
fn warn_if_damaged(located: &Located, entry: &crate::manifest::Entry, printer: &mut Printer) {
    let dir = crate::atomic::parent_dir(&located.path);
    if let Some((_, why)) = crate::commands::known_damage(dir, entry) {
        printer.warn(format_args!(
            "{why}: its metrics shown are those recorded when it was made; resbak verify {} \
             checks it again",
            entry.backup_file
        ));
    }
}

fn print_table(
    old_label: &str,
    new_label: &str,
    shown: &BTreeMap<&String, &Compared>,
    sources: &Sources,
    printer: &mut Printer,
) -> Result<()> {
    let rows: Vec<[String; 5]> = shown
        .iter()
        .map(|(key, c)| {
            let sign = if c.diff.is_some_and(|d| d > 0.0) {
                "+"
            } else {
                ""
            };
            let (old, new) = metrics::format_pair(c.old, c.new);
            [
                key.to_string(),
                old,
                new,
                c.diff.map_or("-".into(), |d| {
                    format!("{sign}{}", metrics::format_value(d))
                }),
                c.percent()
                    .map_or("-".into(), |p| format!("{sign}{:.1}%", p)),
            ]
        })
        .collect();
    let header = ["METRIC", old_label, new_label, "CHANGE", "CHANGE%"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |i: usize, cell: &str| match i {
        0 => format!("{cell:<w$}", w = widths[0]),
        i => format!("{cell:>w$}", w = widths[i]),
    };
    let line: Vec<String> = header.iter().enumerate().map(|(i, h)| pad(i, h)).collect();
    printer.line(line.join("  ").trim_end())?;
    for ((key, c), row) in shown.iter().zip(&rows) {
        let better = sources
            .higher_is_better(key)
            .zip(c.diff.filter(|d| *d != 0.0))
            .map(|(higher, d)| (d > 0.0) == higher);
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| match (i >= 3, better) {
                (true, Some(good)) => printer.paint(&pad(i, cell), good),
                _ => pad(i, cell),
            })
            .collect();
        printer.line(cells.join("  ").trim_end())?;
    }
    Ok(())
}
