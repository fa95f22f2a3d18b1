//! `resbak backup`: archive strategy folders and register them in the manifest.

use super::{Context, Outcome, Printer, check_strategy_name, human_size, prune, strategies};
use crate::archive::{self, Written};
use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::extract;
use crate::manifest::{Entry, Manifest};
use crate::retention;
use chrono::{DateTime, Utc};
use std::io::{BufWriter, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tempfile::NamedTempFile;

/// Write buffer in front of the archive file.
const WRITE_BUF: usize = 1 << 20;

/// Options of `resbak backup`.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Strategy folder names inside the results folder.
    pub strategies: Vec<String>,
    /// How to compress.
    pub archive: archive::Options,
    /// Prune each strategy to this many backups after its backup succeeded.
    pub keep: Option<usize>,
}

/// Backs up each strategy in turn, pruning it afterwards when `keep` is set. All names are
/// checked before anything is written.
pub fn run(ctx: &Context, opts: &BackupOptions, printer: &mut Printer) -> Result<Outcome> {
    for name in &opts.strategies {
        source_dir(ctx, name)?;
    }
    let mut outcome = Outcome::Clean;
    for name in &opts.strategies {
        let started = Instant::now();
        let entry = backup_folder(ctx, name, &source_dir(ctx, name)?, opts.archive, printer)?;
        printer.line(format_args!(
            "Backed up {name} -> {} ({}, {} files, {:.2} s)",
            ctx.backup_dir.join(&entry.backup_file).display(),
            human_size(entry.size),
            entry.files,
            started.elapsed().as_secs_f64()
        ))?;
        if let Some(keep) = opts.keep {
            let pruned = retention::prune(&ctx.backup_dir, Some(name), keep, false)?;
            prune::report(&pruned, printer)?;
            if prune::outcome(&pruned) != Outcome::Clean {
                outcome = Outcome::Incomplete;
            }
        }
    }
    Ok(outcome)
}

/// The folder of strategy `name`, checked to be a plain name of an existing, non-empty folder.
fn source_dir(ctx: &Context, name: &str) -> Result<PathBuf> {
    check_strategy_name(name)?;
    let dir = ctx.results_dir.join(name);
    if !dir.is_dir() {
        return Err(Error::UnknownStrategy {
            name: name.to_string(),
            dir: ctx.results_dir.clone(),
            available: strategies(&ctx.results_dir),
        });
    }
    if std::fs::read_dir(&dir).at("read", &dir)?.next().is_none() {
        return Err(Error::EmptyResults { path: dir });
    }
    Ok(dir)
}

/// Archives `src` as strategy `name`, verifies the written archive, and registers it.
/// On any failure nothing is left behind: no archive file and no manifest entry.
pub(crate) fn backup_folder(
    ctx: &Context,
    name: &str,
    src: &Path,
    opts: archive::Options,
    printer: &mut Printer,
) -> Result<Entry> {
    let dir = &ctx.backup_dir;
    std::fs::create_dir_all(dir).at("create backup folder", dir)?;
    for leftover in atomic::remove_stale(dir)? {
        printer.warn(format_args!(
            "removed {} left by an interrupted run",
            leftover.display()
        ));
    }
    let created = Utc::now();
    let mut tmp = atomic::temp_file_in(dir)?;
    let written = write_archive(src, name, &mut tmp, opts)?;
    for skipped in &written.skipped {
        printer.warn(format_args!("skipped special file {}", skipped.display()));
    }
    verify_written(tmp.path(), name, &written).map_err(|e| match e {
        Error::UnsafeEntry { entry, reason } => Error::Unrestorable {
            path: src.to_path_buf(),
            entry,
            reason,
        },
        other => other,
    })?;
    register(dir, name, created, tmp, &written)
}

fn write_archive(
    src: &Path,
    name: &str,
    tmp: &mut NamedTempFile,
    opts: archive::Options,
) -> Result<Written> {
    let path = tmp.path().to_path_buf();
    let out = BufWriter::with_capacity(WRITE_BUF, tmp.as_file_mut());
    let (out, written) = archive::write(src, name, out, opts)?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io("write", &path, e.into_error()))?;
    file.sync_all().at("sync", &path)?;
    Ok(written)
}

/// Re-reads the finished archive from disk: same checksum, and it decompresses to what was written.
fn verify_written(path: &Path, top: &str, written: &Written) -> Result<()> {
    let scan = extract::scan(path, Some(top))?;
    let mismatch = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        detail: format!("verification after writing failed: {detail}"),
    };
    if scan.checksum != written.checksum {
        return Err(mismatch(
            "the file on disk differs from what was written".into(),
        ));
    }
    if scan.stats != Some(written.stats) {
        return Err(mismatch(format!(
            "it reads back as {:?}, not {:?}",
            scan.stats, written.stats
        )));
    }
    Ok(())
}

/// Under the manifest lock: picks a free archive name, renames the temp file to it and adds
/// the entry. If the manifest cannot be saved, the renamed archive is removed again.
fn register(
    dir: &Path,
    name: &str,
    created: DateTime<Utc>,
    tmp: NamedTempFile,
    written: &Written,
) -> Result<Entry> {
    let timestamp = created.format("%Y%m%d_%H%M%S").to_string();
    place(dir, tmp, |manifest| {
        Ok(Entry {
            strategy: name.to_string(),
            timestamp: timestamp.clone(),
            backup_file: free_name(manifest, dir, name, &timestamp),
            size: written.checksum.len,
            sha256: written.checksum.sha256.clone(),
            files: written.stats.files,
            bytes: written.stats.bytes,
            created,
        })
    })
}

/// Under the manifest lock: asks `entry_for` for the entry (and so the file name) given the
/// current manifest, renames the finished temp file to that name (never over an existing
/// file) and records the entry, replacing one of the same name. If the manifest cannot be
/// saved, the renamed archive is removed again.
pub(crate) fn place(
    dir: &Path,
    tmp: NamedTempFile,
    entry_for: impl FnOnce(&Manifest) -> Result<Entry>,
) -> Result<Entry> {
    let mut placed: Option<PathBuf> = None;
    let result = Manifest::update(dir, |manifest| {
        let entry = entry_for(manifest)?;
        let path = dir.join(&entry.backup_file);
        atomic::persist(tmp, &path, false)?;
        placed = Some(path);
        manifest
            .backups
            .retain(|e| e.backup_file != entry.backup_file);
        manifest.backups.push(entry.clone());
        Ok(entry)
    });
    if let (Err(_), Some(path)) = (&result, &placed)
        && let Err(e) = std::fs::remove_file(path)
        && e.kind() != ErrorKind::NotFound
    {
        eprintln!(
            "resbak: warning: could not remove unregistered {}: {e}",
            path.display()
        );
    }
    result
}

/// `<name>_<timestamp>.tar.gz`, or with `_2`, `_3`, ... if that is taken in the manifest or on disk.
fn free_name(manifest: &Manifest, dir: &Path, name: &str, timestamp: &str) -> String {
    (1..)
        .map(|n| match n {
            1 => format!("{name}_{timestamp}.tar.gz"),
            n => format!("{name}_{timestamp}_{n}.tar.gz"),
        })
        .find(|file| manifest.find(file).is_none() && !dir.join(file).exists())
        .expect("an unbounded range always yields a free name")
}
