//! `resbak reindex`: rebuild the manifest from the archives in the backup folder.
//!
//! Entries whose archive still matches them are kept as they are. Archives the manifest does not
//! know are checked in full (the restore policy, every entry decompressed) and added, with the
//! strategy from their top folder and the time from their name (archives of one strategy named
//! in the same second keep the order of their `_N` suffix, kept entries' precise times included).
//! Entries whose file is gone are dropped. An entry whose archive no longer matches is kept, so
//! `verify` keeps reporting it: reindex never blesses a corrupt archive. A damaged manifest is
//! first copied aside.
//!
//! An archive's name does not say whether it is a safety copy (made by `restore --force`) or a
//! regular backup; only the manifest does. An added archive takes its kind from the previous
//! manifest (`manifest.yaml.bak`) when that lists the same bytes under the same name; otherwise
//! it is added as a regular backup and named in a warning.

use super::adopt::Adopter;
use super::{ArchiveName, Context, Outcome, Printer, archive_files, strategy_of};
use crate::atomic;
use crate::checksum::HashingWriter;
use crate::error::{Error, IoContext, Result};
use crate::extract;
use crate::index;
use crate::manifest::{ChecksumSource, Entry, Lock, LockFile, Manifest};
use crate::metrics::Sources;
use crate::progress::Progress;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Why an archive whose name the manifest cannot hold is left out.
const UNSOUND: &str = "the manifest only holds plain .tar.gz file names without control \
                       characters; rename the file and run reindex again";

/// What reindex did; the JSON shape of `reindex --json`.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    damaged_copy: Option<PathBuf>,
    kept: usize,
    added: Vec<String>,
    dropped: Vec<String>,
    mismatched: Vec<String>,
    skipped: Vec<(String, String)>,
    /// Added archives whose kind came from the previous manifest.
    kinds_recovered: usize,
    /// Added archives whose kind could not be recovered: catalogued as regular backups.
    kinds_unknown: Vec<String>,
    /// Archives whose headline metrics were read from the archive and recorded.
    metrics_read: Vec<String>,
    /// Archives given an index (see [`crate::index`]) they lacked or whose index was damaged.
    indexed: Vec<String>,
    /// Archives left without an index, and why.
    unindexed: Vec<(String, String)>,
}

/// Rebuilds the manifest and prints what changed.
pub fn run(ctx: &Context, sources: &Sources, printer: &mut Printer) -> Result<Outcome> {
    let dir = &ctx.backup_dir;
    if !dir.is_dir() {
        return Err(Error::missing_folder("backup", dir));
    }
    let _archives = Lock::exclusive(dir, LockFile::Archives)?;
    super::clean_leftovers(dir, printer)?;
    let mut adopter = super::adopt::Adopter::new(dir, printer);
    let report = Manifest::replace(dir, |loaded| rebuild(dir, loaded, &mut adopter, sources))?;
    if let Err(e) = crate::checks::Checks::forget(dir, &report.added) {
        printer.warn(format_args!("could not clear the old check results: {e}"));
    }
    adopter.report(printer)?;
    print(&report, printer)?;
    printer.json_report(&report)?;
    let clean = report.mismatched.is_empty() && report.skipped.is_empty();
    Ok(if clean {
        Outcome::Clean
    } else {
        Outcome::ProblemsFound
    })
}

fn rebuild(
    dir: &Path,
    loaded: Result<Manifest>,
    adopter: &mut Adopter,
    sources: &Sources,
) -> Result<(Manifest, Report)> {
    let mut report = Report::default();
    let old = match loaded {
        // The Python scripts' manifest: its entries, with the checksums taken now.
        Ok(mut manifest) if manifest.legacy => {
            adopter.adopt(&mut manifest)?;
            manifest
        }
        // Metrics the file cannot give are read from the archives below.
        Ok(mut manifest) => {
            let _ = manifest.attach_metrics(dir);
            manifest
        }
        Err(Error::ManifestParse { path, .. }) => {
            report.damaged_copy = Some(copy_damaged(&path)?);
            Manifest::default()
        }
        Err(other) => return Err(other),
    };
    let files = archive_files(dir)?;
    let mut manifest = Manifest::default();
    for entry in &old.backups {
        if !files.iter().any(|(name, _)| *name == entry.backup_file) {
            report.dropped.push(entry.backup_file.clone());
            continue;
        }
        let scan = extract::scan(&dir.join(&entry.backup_file), None, &Progress::hidden());
        let matches =
            scan.is_ok_and(|s| s.checksum.sha256 == entry.sha256 && s.checksum.len == entry.size);
        if !matches {
            report.mismatched.push(entry.backup_file.clone());
        }
        report.kept += 1;
        let mut entry = entry.clone();
        if matches && entry.metrics.is_none() {
            fill_metrics(dir, &mut entry, sources, &mut report);
        }
        if !report.mismatched.contains(&entry.backup_file) {
            index_if_needed(dir, &mut entry, &mut report);
        }
        manifest.backups.push(entry);
    }
    let mut added = Vec::new();
    for (file, _) in files.iter().filter(|(f, _)| old.find(f).is_none()) {
        // Never an entry the manifest would refuse to load.
        match entry_for(&dir.join(file), file) {
            Ok(mut entry) if entry.is_sound() => {
                fill_metrics(dir, &mut entry, sources, &mut report);
                added.push(entry);
            }
            Ok(_) => report.skipped.push((file.clone(), UNSOUND.to_string())),
            Err(e) => report.skipped.push((file.clone(), e.to_string())),
        }
    }
    recover_kinds(dir, &mut added, &mut report);
    order_after_kept(&manifest.backups, &mut added);
    for entry in &mut added {
        index_if_needed(dir, entry, &mut report);
    }
    added.sort_by_key(|e| e.created);
    report.added = added.iter().map(|e| e.backup_file.clone()).collect();
    manifest.backups.extend(added);
    Ok((manifest, report))
}

/// Reads `entry`'s headline metrics from its archive (checked against the entry while it is
/// read) and records them; an archive without metrics or that cannot be read stays without.
fn fill_metrics(dir: &Path, entry: &mut Entry, sources: &Sources, report: &mut Report) {
    let expected = entry.recorded_checksum();
    let path = dir.join(&entry.backup_file);
    if let Ok(found) = crate::metrics::read_archive(&path, expected.as_ref(), sources)
        && !found.metrics.is_empty()
    {
        entry.metrics = Some(found.metrics);
        report.metrics_read.push(entry.backup_file.clone());
    }
}

/// Gives each of `added` the kind the previous manifest records for the same name, size and
/// SHA-256; the others stay regular backups and are listed as of unknown kind.
fn recover_kinds(dir: &Path, added: &mut [Entry], report: &mut Report) {
    let previous = match added.is_empty() {
        true => Manifest::default(),
        false => Manifest::load_file(&Manifest::previous_path(dir)).unwrap_or_default(),
    };
    for entry in added {
        let known = previous.find(&entry.backup_file).filter(|e| {
            e.strategy == entry.strategy && e.size == entry.size && e.sha256 == entry.sha256
        });
        match known {
            // The same bytes under the same name: the entry as it was recorded, but for its
            // time, read from the name like the other added archives' so their order holds.
            Some(known) => {
                *entry = Entry {
                    created: entry.created,
                    timestamp: entry.timestamp.clone(),
                    converted_from: entry.converted_from.clone(),
                    metrics: known.metrics.clone().or_else(|| entry.metrics.take()),
                    ..known.clone()
                };
                report.kinds_recovered += 1;
            }
            None if ArchiveName::parse(&entry.backup_file).is_some_and(|n| n.safety) => {
                entry.kind = crate::manifest::Kind::Safety;
            }
            None => report.kinds_unknown.push(entry.backup_file.clone()),
        }
    }
}

/// Moves each of `added` after the `kept` entries of its strategy named in the same second with
/// a lower `_N` suffix (none is 1), at least a nanosecond per step of suffix: the name's time
/// alone (the second plus N-1 nanoseconds) would sort it before such an entry's precise time.
fn order_after_kept(kept: &[Entry], added: &mut [Entry]) {
    for entry in added {
        let Some(name) = ArchiveName::parse(&entry.backup_file) else {
            continue;
        };
        let after = kept.iter().filter(|k| k.strategy == entry.strategy);
        let floor = after
            .filter_map(|k| {
                let earlier = ArchiveName::parse(&k.backup_file)?;
                let same_second =
                    earlier.strategy == name.strategy && earlier.timestamp == name.timestamp;
                let steps = i64::from(name.n.checked_sub(earlier.n).filter(|&s| s > 0)?);
                same_second.then(|| k.created + chrono::Duration::nanoseconds(steps))
            })
            .max();
        if let Some(floor) = floor {
            entry.created = entry.created.max(floor);
        }
    }
}

/// Builds an index for the archive of `entry` (already checked) when it has none or its index
/// file is missing or damaged. A failure leaves the entry without one, with a warning.
fn index_if_needed(dir: &Path, entry: &mut Entry, report: &mut Report) {
    let path = index::path_for(&dir.join(&entry.backup_file));
    let intact = |sha: &String| index::check_file(&path, sha).is_ok();
    if entry.index_sha256.as_ref().is_some_and(intact) {
        return;
    }
    let mut sha256 = None;
    let built = atomic::write_file(&path, |out| {
        let out = HashingWriter::new(out);
        let archive = dir.join(&entry.backup_file);
        let (_, sum) = index::build(&archive, &entry.strategy, out)?.finish();
        sha256 = Some(sum.sha256);
        Ok(())
    });
    match built {
        Ok(()) => {
            entry.index_sha256 = sha256;
            report.indexed.push(entry.backup_file.clone());
        }
        Err(e) => {
            entry.index_sha256 = None;
            report
                .unindexed
                .push((entry.backup_file.clone(), e.to_string()));
        }
    }
}

/// A fresh entry for an uncatalogued archive, after a full check.
fn entry_for(path: &Path, file: &str) -> Result<Entry> {
    let top = strategy_of(path)?;
    let scan = extract::scan(path, Some(&top), &Progress::hidden())?;
    let stats = scan.stats.unwrap_or_default();
    let mut converted_from = None;
    let (timestamp, created) = match ArchiveName::parse(file) {
        // Another program's archive (the Python scripts wrote local time in names).
        Some(name) if made_elsewhere(path) => {
            let local = NaiveDateTime::parse_from_str(&name.timestamp, "%Y%m%d_%H%M%S")
                .map_err(|e| Error::corrupt(path, e))?;
            let zone = crate::manifest::legacy::zone().map_err(|e| Error::corrupt(path, e))?;
            let (utc, how) = zone.convert(local, None);
            converted_from = Some(how);
            (name.timestamp, utc)
        }
        Some(name) => (name.timestamp, name.created),
        None => {
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .at("read", path)?;
            let created = DateTime::<Utc>::from(modified);
            (created.format("%Y%m%d_%H%M%S").to_string(), created)
        }
    };
    Ok(Entry {
        strategy: top,
        timestamp,
        backup_file: file.to_string(),
        size: scan.checksum.len,
        sha256: scan.checksum.sha256,
        entries: stats.files,
        bytes: stats.bytes,
        kinds: None,
        created,
        meta_digest: None,
        content_digest: None,
        kind: Default::default(),
        checksum_source: Some(ChecksumSource::Imported),
        converted_from,
        imported_path: None,
        metrics: None,
        tags: Vec::new(),
        note: None,
        pin: false,
        index_sha256: None,
        metrics_sha256: None,
    })
}

/// Whether the gzip header of `path` names a file or a time, as `gzip` and Python's `tarfile`
/// write and resbak never does.
fn made_elsewhere(path: &Path) -> bool {
    const FNAME: u8 = 0x08;
    let mut header = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| header[3] & FNAME != 0 || header[4..8] != [0; 4])
}

/// Copies a damaged manifest to `manifest.yaml.damaged-<UTC time>` before it is replaced.
fn copy_damaged(path: &Path) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%d_%H%M%S%.f");
    let copy = path.with_extension(format!("yaml.damaged-{stamp}"));
    let mut damaged = File::open(path).at("read", path)?;
    atomic::write_file(&copy, |out| {
        std::io::copy(&mut damaged, out).map(drop).at("copy", path)
    })?;
    Ok(copy)
}

fn print(report: &Report, printer: &mut Printer) -> Result<()> {
    if let Some(copy) = &report.damaged_copy {
        printer.line(format_args!("Damaged manifest saved as {}", copy.display()))?;
    }
    for file in &report.added {
        printer.line(format_args!("Added {file}"))?;
    }
    for file in &report.dropped {
        printer.line(format_args!("Dropped {file}: archive file is missing"))?;
    }
    for file in &report.mismatched {
        printer.warn(format_args!(
            "{file} no longer matches its entry; the entry is kept so verify reports it"
        ));
    }
    for (file, why) in &report.skipped {
        printer.warn(format_args!("not added {file}: {why}"));
    }
    if report.kinds_recovered > 0 {
        printer.line(format_args!(
            "Entries of {} added archives taken whole from {}.bak (same name and bytes)",
            report.kinds_recovered,
            crate::manifest::FILE_NAME
        ))?;
        let saved = match &report.damaged_copy {
            Some(copy) => format!(
                " (the damaged manifest, saved as {}, may have it)",
                copy.display()
            ),
            None => String::new(),
        };
        printer.warn(format_args!(
            "{}.bak is one change behind: a tag, note or pin the last change set may be missing \
             from these entries{saved}; `resbak list` shows them, `resbak tag` sets it again",
            crate::manifest::FILE_NAME,
        ));
    }
    if !report.kinds_unknown.is_empty() {
        printer.warn(format_args!(
            "added as regular backups, though whether each is a safety copy made by restore \
             --force could not be recovered (the previous manifest does not list it): {}",
            report.kinds_unknown.join(", ")
        ));
    }
    if !report.metrics_read.is_empty() {
        printer.line(format_args!(
            "Metrics of {} read from their archives",
            crate::error::count(report.metrics_read.len(), "backup", "backups")
        ))?;
    }
    for file in &report.indexed {
        printer.line(format_args!("Indexed {file}"))?;
    }
    for (file, why) in &report.unindexed {
        printer.warn(format_args!("{file} has no index: {why}"));
    }
    printer.line(format_args!(
        "Reindexed: {} kept, {} added, {} dropped, {} not added",
        report.kept,
        report.added.len(),
        report.dropped.len(),
        report.skipped.len()
    ))
}
