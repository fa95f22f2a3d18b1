//! `resbak list`: the catalogue, with archives that are missing or not catalogued flagged.

use super::{ArchiveName, Context, Outcome, Printer, archive_files, human_size};
use crate::error::Result;
use crate::manifest::Manifest;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::path::Path;

/// Options of `resbak list`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only this strategy.
    pub strategy: Option<String>,
}

/// One row of the listing; also the JSON shape.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Archive file name.
    pub archive: String,
    /// Strategy, if known.
    pub strategy: Option<String>,
    /// Creation time from the manifest.
    pub created: Option<DateTime<Utc>>,
    /// Size in bytes: from the manifest, or of the file for untracked archives.
    pub size: u64,
    /// Entry count.
    pub files: Option<u64>,
    /// Uncompressed bytes.
    pub bytes: Option<u64>,
    /// SHA-256 from the manifest.
    pub sha256: Option<String>,
    /// `ok`, `missing` (in the manifest, no file) or `untracked` (file, not in the manifest).
    pub status: &'static str,
}

/// Prints the catalogue.
pub fn run(ctx: &Context, opts: &ListOptions, printer: &mut Printer) -> Result<Outcome> {
    let rows = rows(&ctx.backup_dir, opts.strategy.as_deref())?;
    if printer.json() {
        printer.json_report(&rows)?;
    } else if rows.is_empty() {
        printer.line(format_args!("No backups in {}.", ctx.backup_dir.display()))?;
    } else {
        print_table(&rows, printer)?;
    }
    Ok(Outcome::Clean)
}

/// Catalogued backups (grouped by strategy, oldest first), then untracked archive files.
pub fn rows(backup_dir: &Path, strategy: Option<&str>) -> Result<Vec<Row>> {
    let manifest = Manifest::load(backup_dir)?;
    let wanted = |s: &str| strategy.is_none_or(|w| w == s);
    let mut rows: Vec<Row> = manifest
        .sorted()
        .into_iter()
        .filter(|e| wanted(&e.strategy))
        .map(|e| Row {
            archive: e.backup_file.clone(),
            strategy: Some(e.strategy.clone()),
            created: Some(e.created),
            size: e.size,
            files: Some(e.files),
            bytes: Some(e.bytes),
            sha256: Some(e.sha256.clone()),
            status: if backup_dir.join(&e.backup_file).is_file() {
                "ok"
            } else {
                "missing"
            },
        })
        .collect();
    for (file, size) in untracked(backup_dir, &manifest)? {
        let guess = ArchiveName::parse(&file).map(|n| n.strategy);
        if strategy.is_none() || guess.as_deref() == strategy {
            rows.push(Row {
                archive: file,
                strategy: guess,
                created: None,
                size,
                files: None,
                bytes: None,
                sha256: None,
                status: "untracked",
            });
        }
    }
    Ok(rows)
}

/// `.tar.gz` files in the backup folder that the manifest does not know, sorted by name.
fn untracked(backup_dir: &Path, manifest: &Manifest) -> Result<Vec<(String, u64)>> {
    let mut files = archive_files(backup_dir)?;
    files.retain(|(name, _)| manifest.find(name).is_none());
    Ok(files)
}

fn print_table(rows: &[Row], printer: &mut Printer) -> Result<()> {
    let header = [
        "ARCHIVE",
        "STRATEGY",
        "CREATED (UTC)",
        "SIZE",
        "FILES",
        "SHA256",
        "STATUS",
    ];
    let cells: Vec<[String; 7]> = rows.iter().map(cells).collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 7]| {
        let mut s = String::new();
        for (i, (col, w)) in cols.iter().zip(widths).enumerate() {
            let right = i == 3 || i == 4;
            let cell = if right {
                format!("{col:>w$}")
            } else {
                format!("{col:<w$}")
            };
            s.push_str(&cell);
            s.push_str("  ");
        }
        s.trim_end().to_string()
    };
    printer.line(line(header))?;
    for row in &cells {
        printer.line(line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

fn cells(row: &Row) -> [String; 7] {
    let dash = || "-".to_string();
    [
        row.archive.clone(),
        row.strategy.clone().unwrap_or_else(|| "?".into()),
        row.created.map_or_else(dash, |c| {
            c.to_rfc3339_opts(SecondsFormat::Secs, true)
                .replace('T', " ")
                .replace('Z', "")
        }),
        human_size(row.size),
        row.files.map_or_else(dash, |f| f.to_string()),
        row.sha256
            .as_ref()
            .map_or_else(dash, |s| s.chars().take(12).collect()),
        row.status.to_string(),
    ]
}
