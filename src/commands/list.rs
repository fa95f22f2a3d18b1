//! `resbak list`: the catalogue, with archives that are missing or not catalogued flagged.

use super::{ArchiveName, Context, Outcome, Printer, archive_files, human_size};
use crate::error::Result;
use crate::manifest::Manifest;

use crate::manifest::Entry;
use crate::remote::Remote;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// `ok`, `missing` (in the manifest, no file) or `untracked` (file, not in the manifest);
    /// with `--remote`: `both`, `local`, `remote`, or `conflict` (same name, other bytes).
    pub status: &'static str,
}

/// Prints the catalogue.
pub fn run(ctx: &Context, opts: &ListOptions, printer: &mut Printer) -> Result<Outcome> {
    let rows = rows(&ctx.backup_dir, opts.strategy.as_deref())?;
    super::warn_leftovers(&ctx.backup_dir, printer);
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
        .map(|e| {
            let status = if backup_dir.join(&e.backup_file).is_file() {
                "ok"
            } else {
                "missing"
            };
            entry_row(e, status)
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

/// The row of a catalogued backup.
fn entry_row(e: &Entry, status: &'static str) -> Row {
    Row {
        archive: e.backup_file.clone(),
        strategy: Some(e.strategy.clone()),
        created: Some(e.created),
        size: e.size,
        files: Some(e.files),
        bytes: Some(e.bytes),
        sha256: Some(e.sha256.clone()),
        status,
    }
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

/// `list --remote`: the remote's catalogue together with the local one, each backup marked
/// `both`, `local` (here only), `remote` (there only) or `conflict` (same name, other bytes).
pub fn run_remote(
    ctx: &Context,
    remote: &Remote,
    opts: &ListOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let rows = remote_rows(&ctx.backup_dir, remote, opts.strategy.as_deref(), printer)?;
    if printer.json() {
        printer.json_report(&rows)?;
    } else if rows.is_empty() {
        printer.line(format_args!(
            "No backups in {} or on {} ({}).",
            ctx.backup_dir.display(),
            remote.name(),
            remote.location()
        ))?;
    } else {
        print_table(&rows, printer)?;
    }
    Ok(Outcome::Clean)
}

/// Local and remote backups by archive name, grouped by strategy, oldest first. Local backups
/// count only when their file is present. Unreadable remote entries are warned about.
pub fn remote_rows(
    backup_dir: &Path,
    remote: &Remote,
    strategy: Option<&str>,
    printer: &mut Printer,
) -> Result<Vec<Row>> {
    let catalogue = remote.catalogue()?;
    for (object, problem) in &catalogue.damaged {
        printer.warn(format_args!("skipping {}: {problem}", remote.url(object)));
    }
    let local = Manifest::load(backup_dir)?;
    let mut both: BTreeMap<&str, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    let present = local
        .backups
        .iter()
        .filter(|e| backup_dir.join(&e.backup_file).is_file());
    for e in present {
        both.entry(&e.backup_file).or_default().0 = Some(e);
    }
    for e in &catalogue.entries {
        both.entry(&e.backup_file).or_default().1 = Some(e);
    }
    let mut rows: Vec<(&Entry, &'static str)> = both
        .into_values()
        .filter_map(|sides| match sides {
            (Some(l), Some(r)) if l.sha256 == r.sha256 && l.size == r.size => Some((r, "both")),
            (Some(_), Some(r)) => Some((r, "conflict")),
            (Some(l), None) => Some((l, "local")),
            (None, Some(r)) => Some((r, "remote")),
            (None, None) => None,
        })
        .filter(|(e, _)| strategy.is_none_or(|s| s == e.strategy))
        .collect();
    rows.sort_by(|a, b| (&a.0.strategy, a.0.created).cmp(&(&b.0.strategy, b.0.created)));
    Ok(rows.into_iter().map(|(e, s)| entry_row(e, s)).collect())
}
