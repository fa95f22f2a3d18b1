//! `resbak file backup|list|restore`: timestamped copies of single files, kept in `backups/`
//! beside each file. The work is done by [`crate::filebackup`]; this module prints it.

use super::{Outcome, Printer, human_size};
use crate::error::Result;
use crate::filebackup::{self, FileBackupOptions, JsonCheck, Pick};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

/// What `resbak file` should do.
#[derive(Debug, Clone)]
pub enum FileAction {
    /// Copy `path` into its backup folder, then keep only the `keep` newest copies.
    Backup {
        /// The file.
        path: PathBuf,
        /// Copies to keep.
        keep: usize,
    },
    /// List the copies of `path`, newest first.
    List {
        /// The file.
        path: PathBuf,
    },
    /// Save the current `path` as a copy, then replace it with the picked copy.
    Restore {
        /// The file.
        path: PathBuf,
        /// The copy to bring back.
        pick: Pick,
        /// Copies to keep afterwards (the restored one is always kept).
        keep: usize,
    },
}

/// One copy in `resbak file list`; also the JSON shape.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Path of the copy.
    pub path: String,
    /// When the copy was made (UTC, from its name).
    pub created: DateTime<Utc>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the copy.
    pub sha256: String,
    /// Whether it parses as JSON; `None` for files that are not `.json`.
    pub json_valid: Option<bool>,
    /// The parser's message for invalid JSON.
    pub json_error: Option<String>,
    /// Item count per top-level array field (`$` for a top-level array), for valid JSON.
    #[serde(serialize_with = "ordered_map")]
    pub array_counts: Option<Vec<(String, u64)>>,
}

/// Runs one `resbak file` subcommand.
pub fn run(action: &FileAction, printer: &mut Printer) -> Result<Outcome> {
    match action {
        FileAction::Backup { path, keep } => backup(path, *keep, printer)?,
        FileAction::List { path } => list(path, printer)?,
        FileAction::Restore { path, pick, keep } => restore(path, pick, *keep, printer)?,
    }
    Ok(Outcome::Clean)
}

fn backup(path: &Path, keep: usize, printer: &mut Printer) -> Result<()> {
    let opts = FileBackupOptions { keep, strict: true };
    let Some(report) = filebackup::backup_file(path, &opts)? else {
        printer.json_report(&None::<()>)?;
        return printer.line(format_args!(
            "Nothing to back up: {} does not exist.",
            path.display()
        ));
    };
    printer.line(format_args!(
        "Backed up {} -> {} ({}, SHA-256 {})",
        path.display(),
        report.backup.display(),
        human_size(report.checksum.len),
        report.checksum.sha256
    ))?;
    printer.json_report(&report)?;
    cleanup(&report.removed, &report.warnings, printer)
}

fn restore(path: &Path, pick: &Pick, keep: usize, printer: &mut Printer) -> Result<()> {
    let opts = FileBackupOptions { keep, strict: true };
    let report = filebackup::restore(path, pick, &opts)?;
    if let Some(saved) = &report.saved {
        printer.line(format_args!(
            "Saved current {} -> {}",
            path.display(),
            saved.display()
        ))?;
    }
    printer.line(format_args!(
        "Restored {} -> {} ({}, SHA-256 {})",
        report.restored.display(),
        path.display(),
        human_size(report.checksum.len),
        report.checksum.sha256
    ))?;
    printer.json_report(&report)?;
    cleanup(&report.removed, &report.warnings, printer)
}

/// Reports removed copies and cleanup warnings.
fn cleanup(removed: &[PathBuf], warnings: &[String], printer: &mut Printer) -> Result<()> {
    for path in removed {
        printer.line(format_args!("Removed old backup: {}", path.display()))?;
    }
    for warning in warnings {
        printer.warn(warning);
    }
    Ok(())
}

fn list(path: &Path, printer: &mut Printer) -> Result<()> {
    let rows = rows(path)?;
    if printer.json() {
        return printer.json_report(&rows);
    }
    if rows.is_empty() {
        let dir = filebackup::backup_dir(path);
        return printer.line(format_args!(
            "No backups of {} in {}.",
            path.display(),
            dir.display()
        ));
    }
    print_table(&rows, filebackup::is_json(path), printer)
}

/// The copies of `path`, newest first, each read once for its checksum and JSON check.
pub fn rows(path: &Path) -> Result<Vec<Row>> {
    let json = filebackup::is_json(path);
    let mut rows = Vec::new();
    for copy in filebackup::list_backups(path)? {
        let contents = filebackup::inspect(&copy.path, json)?;
        let (json_valid, json_error, array_counts) = match contents.json {
            None => (None, None, None),
            Some(JsonCheck::Valid(counts)) => (Some(true), None, Some(counts)),
            Some(JsonCheck::Invalid(message)) => (Some(false), Some(message), None),
        };
        rows.push(Row {
            path: copy.path.display().to_string(),
            created: copy.created,
            size: contents.checksum.len,
            sha256: contents.checksum.sha256,
            json_valid,
            json_error,
            array_counts,
        });
    }
    Ok(rows)
}

fn print_table(rows: &[Row], json: bool, printer: &mut Printer) -> Result<()> {
    let header = ["BACKUP", "CREATED (UTC)", "SIZE", "SHA256", "JSON"];
    let columns = if json { 5 } else { 4 };
    let cells: Vec<[String; 5]> = rows.iter().map(cells).collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, (col, w)) in cols.iter().zip(widths).enumerate().take(columns) {
            let cell = match i {
                2 => format!("{col:>w$}  "),
                _ => format!("{col:<w$}  "),
            };
            s.push_str(&cell);
        }
        s.trim_end().to_string()
    };
    printer.line(line(header))?;
    for row in &cells {
        printer.line(line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

fn cells(row: &Row) -> [String; 5] {
    let name = Path::new(&row.path)
        .file_name()
        .map_or(row.path.clone(), |n| n.to_string_lossy().into_owned());
    [
        name,
        row.created.format("%Y-%m-%d %H:%M:%S").to_string(),
        human_size(row.size),
        row.sha256.clone(),
        json_summary(row),
    ]
}

/// `valid JSON; experiences: 1520 items`, `invalid JSON: <error>`, or empty for other files.
fn json_summary(row: &Row) -> String {
    match (&row.json_error, &row.array_counts) {
        (Some(error), _) => format!("invalid JSON: {error}"),
        (None, Some(counts)) if counts.is_empty() => "valid JSON".to_string(),
        (None, Some(counts)) => {
            let items: Vec<String> = counts
                .iter()
                .map(|(key, n)| match key.as_str() {
                    "$" => crate::error::count(*n, "item", "items"),
                    _ => format!("{key}: {}", crate::error::count(*n, "item", "items")),
                })
                .collect();
            format!("valid JSON; {}", items.join(", "))
        }
        (None, None) => String::new(),
    }
}

/// Serialises item counts as a JSON object in document order (or `null`).
fn ordered_map<S: Serializer>(
    counts: &Option<Vec<(String, u64)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match counts {
        Some(counts) => s.collect_map(counts.iter().map(|(k, n)| (k, n))),
        None => s.serialize_none(),
    }
}
