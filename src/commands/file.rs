//! `resbak file backup|list|verify|restore`: timestamped copies of single files, kept in
//! `backups/` beside each file. The work is done by [`crate::filebackup`]; this module prints it.

use super::{Outcome, Printer, human_size};
use crate::error::Result;
use crate::filebackup::{self, ContentCheck, CopyStatus, FileBackupOptions, Pick};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `resbak file` should do.
#[derive(Debug, Clone)]
pub enum FileAction {
    /// Copy `path` into its backup folder unless unchanged, then keep the `keep` newest versions.
    Backup {
        /// The file.
        path: PathBuf,
        /// Versions to keep.
        keep: usize,
    },
    /// List the copies of `path`, newest first.
    List {
        /// The file.
        path: PathBuf,
    },
    /// Check every copy of `path` against its recorded SHA-256.
    Verify {
        /// The file.
        path: PathBuf,
    },
    /// Save the current `path` as a copy, then replace it with the picked copy.
    Restore {
        /// The file.
        path: PathBuf,
        /// The copy to bring back.
        pick: Pick,
        /// Versions to keep afterwards (the restored copy is always kept).
        keep: usize,
    },
}

/// One copy in `resbak file list`; also the JSON shape.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Path of the copy.
    pub path: String,
    /// When the copy was made (UTC; from its name).
    pub created: DateTime<Utc>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the copy, read now.
    pub sha256: String,
    /// The SHA-256 recorded in `SHA256SUMS` when it was made.
    pub recorded_sha256: Option<String>,
    /// Whether it matches: ok, damaged, or unrecorded (no recorded checksum).
    pub status: CopyStatus,
    /// The content check (JSON copies).
    #[serde(flatten)]
    pub content: ContentCheck,
}

/// Runs one `resbak file` subcommand.
pub fn run(action: &FileAction, printer: &mut Printer) -> Result<Outcome> {
    match action {
        FileAction::Backup { path, keep } => backup(path, *keep, printer),
        FileAction::List { path } => list(path, printer),
        FileAction::Verify { path } => verify(path, printer),
        FileAction::Restore { path, pick, keep } => restore(path, pick, *keep, printer),
    }
}

fn backup(path: &Path, keep: usize, printer: &mut Printer) -> Result<Outcome> {
    let opts = FileBackupOptions { keep, strict: true };
    let Some(report) = filebackup::backup_file(path, &opts)? else {
        printer.json_report(&None::<()>)?;
        printer.line(format_args!(
            "Nothing to back up: {} does not exist.",
            path.display()
        ))?;
        return Ok(Outcome::Clean);
    };
    if report.unchanged {
        printer.line(format_args!(
            "{} unchanged since {}; no new copy",
            path.display(),
            report.backup.display()
        ))?;
    } else {
        printer.line(format_args!(
            "Backed up {} -> {} ({}, SHA-256 {}){}",
            path.display(),
            report.backup.display(),
            human_size(report.checksum.len),
            report.checksum.sha256,
            content_suffix(&report.content)
        ))?;
    }
    printer.json_report(&report)?;
    cleanup(&report.removed, &report.warnings, printer)?;
    Ok(Outcome::Clean)
}

fn restore(path: &Path, pick: &Pick, keep: usize, printer: &mut Printer) -> Result<Outcome> {
    let opts = FileBackupOptions { keep, strict: true };
    let report = filebackup::restore(path, pick, &opts)?;
    for passed in &report.passed_over {
        printer.line(format_args!(
            "Passed over {}: {}",
            passed.path.display(),
            passed.reason
        ))?;
    }
    let which = match pick {
        Pick::Latest if report.content.json_valid.is_some() => "the newest copy that parses",
        Pick::Latest => "the newest intact copy",
        Pick::Newest => "the newest copy",
        Pick::Named(_) => "as named",
    };
    printer.line(format_args!(
        "Restoring {} ({which}){}",
        report.restored.display(),
        content_suffix(&report.content)
    ))?;
    match (&report.saved, report.saved_unchanged) {
        (Some(copy), true) => printer.line(format_args!(
            "Current {} unchanged since {}; no new copy",
            path.display(),
            copy.display()
        ))?,
        (Some(copy), false) => printer.line(format_args!(
            "Saved current {} -> {}",
            path.display(),
            copy.display()
        ))?,
        (None, _) => {}
    }
    if let Some(target) = &report.written_through {
        printer.line(format_args!(
            "{} is a symbolic link: wrote through it to {}",
            path.display(),
            target.display()
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
    if !report.recorded {
        printer.warn(format_args!(
            "{} has no recorded checksum (made before its folder kept SHA256SUMS); it was restored as it is",
            report.restored.display()
        ));
    }
    if let Some(error) = &report.content.json_error {
        printer.warn(format_args!(
            "{} does not parse as JSON ({error})",
            report.restored.display()
        ));
    }
    cleanup(&report.removed, &report.warnings, printer)?;
    Ok(Outcome::Clean)
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

fn verify(path: &Path, printer: &mut Printer) -> Result<Outcome> {
    let report = filebackup::verify(path)?;
    printer.json_report(&report)?;
    for check in &report.results {
        let name = file_name(&check.path.display().to_string());
        match check.status {
            CopyStatus::Ok => {
                printer.line(format_args!("{}  {name}", printer.paint("OK     ", true)))?
            }
            CopyStatus::Unrecorded => {
                printer.line(format_args!("-        {name}: no recorded checksum"))?
            }
            CopyStatus::Damaged | CopyStatus::Missing => {
                let label = printer.paint(
                    &format!("{:<7}", check.status.label().to_uppercase()),
                    false,
                );
                let problem = check.problem.as_deref().unwrap_or_default();
                printer.problem(format_args!("{label}  {name}: {problem}"))?
            }
        }
    }
    printer.problem(format_args!(
        "Verified {} of {}: {} ok, {} with problems, {} with no recorded checksum",
        crate::error::count(report.checked, "copy", "copies"),
        path.display(),
        report.ok,
        report.problems,
        report.unrecorded
    ))?;
    Ok(match report.problems {
        0 => Outcome::Clean,
        _ => Outcome::ProblemsFound,
    })
}

fn list(path: &Path, printer: &mut Printer) -> Result<Outcome> {
    let rows = rows(path)?;
    let outcome = match rows.iter().any(|r| r.status == CopyStatus::Damaged) {
        true => Outcome::ProblemsFound,
        false => Outcome::Clean,
    };
    if printer.json() {
        printer.json_report(&rows)?;
        return Ok(outcome);
    }
    if rows.is_empty() {
        let dir = filebackup::backup_dir(path);
        printer.line(format_args!(
            "No backups of {} in {}.",
            path.display(),
            dir.display()
        ))?;
        return Ok(outcome);
    }
    let json = rows.iter().any(|r| r.content.json_valid.is_some());
    print_table(&rows, json, printer)?;
    Ok(outcome)
}

/// The copies of `path`, newest first, each read once for its checksum and content check.
pub fn rows(path: &Path) -> Result<Vec<Row>> {
    let copies = filebackup::list_backups(path)?;
    let json = filebackup::checks_json(path, &copies);
    let mut rows = Vec::new();
    for copy in copies {
        let contents = filebackup::inspect(&copy.path, json)?;
        rows.push(Row {
            path: copy.path.display().to_string(),
            created: copy.created,
            size: contents.checksum.len,
            status: filebackup::status(&copy, &contents.checksum),
            sha256: contents.checksum.sha256,
            recorded_sha256: copy.recorded,
            content: contents.json.into(),
        });
    }
    Ok(rows)
}

fn print_table(rows: &[Row], json: bool, printer: &mut Printer) -> Result<()> {
    let header = [
        "BACKUP",
        "CREATED (UTC)",
        "SIZE",
        "SHA256",
        "STATUS",
        "JSON",
    ];
    let columns = if json { 6 } else { 5 };
    let cells: Vec<[String; 6]> = rows.iter().map(cells).collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 6]| {
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

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or(path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn cells(row: &Row) -> [String; 6] {
    [
        file_name(&row.path),
        row.created.format("%Y-%m-%d %H:%M:%S").to_string(),
        human_size(row.size),
        row.sha256.clone(),
        row.status.label().to_string(),
        json_summary(&row.content),
    ]
}

/// `; valid JSON, 1520 items` after a report line, or nothing for other files.
fn content_suffix(content: &ContentCheck) -> String {
    match json_summary(content) {
        summary if summary.is_empty() => String::new(),
        summary => format!("; {summary}"),
    }
}

/// `valid JSON; experiences: 1520 items`, `invalid JSON: <error>`, or empty for other files.
fn json_summary(content: &ContentCheck) -> String {
    match (&content.json_error, &content.array_counts) {
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
