//! Writing one backup: the archive written while a second thread reads it back from disk,
//! the read-back compared with what was written, and the archive registered in the manifest
//! under a free name. On any failure nothing is left behind.

use super::check_outside;
use crate::archive::{self, Written};
use crate::atomic;
use crate::checksum::{Checksum, HashingWriter};
use crate::commands::adopt::Adopter;
use crate::commands::{Context, Printer, clean_leftovers, warn};
use crate::error::{Error, IoContext, Result};
use crate::extract;
use crate::follow::{FailOnDrop, FollowReader, Growth, GrowthWriter};
use crate::index;
use crate::manifest::{Entry, Kind, Manifest};
use crate::progress::Progress;
use chrono::{DateTime, Utc};
use std::io::{BufWriter, ErrorKind, Read};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Write buffer in front of the archive file: as large as a block of the archive, so that a
/// block copied from an earlier archive is written without a copy in between.
const WRITE_BUF: usize = crate::pgzip::BLOCK_SIZE;

/// What the catalogue records about a backup besides its bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct About {
    /// Regular backup or safety copy.
    pub kind: Kind,
    /// Where to read headline metrics from while archiving; none are read when `None`.
    pub metrics: Option<crate::metrics::Sources>,
    /// Tags (`backup --tag`).
    pub tags: Vec<String>,
    /// Note (`backup --note`).
    pub note: Option<String>,
}

impl From<Kind> for About {
    fn from(kind: Kind) -> About {
        About {
            kind,
            ..About::default()
        }
    }
}

/// Archives `src` as strategy `name`, verifies the written archive, and registers it as a
/// backup as `about` says. On any failure nothing is left behind: no archive file and no manifest entry.
/// Also tells whether a file changed while it was read (each is named in a warning): the archive
/// then holds what was read, not necessarily what the folder holds now; and whether the earlier
/// archive it copied segments from turned out damaged (warned, and recorded as `verify` would).
pub(crate) fn backup_folder(
    ctx: &Context,
    name: &str,
    src: &Path,
    opts: &archive::Options,
    about: About,
    printer: &mut Printer,
) -> Result<(Entry, bool, bool)> {
    let kind = about.kind;
    let dir = &ctx.backup_dir;
    check_outside(ctx, src)?;
    let new = std::fs::symlink_metadata(dir).is_err();
    std::fs::create_dir_all(dir).at("create backup folder", dir)?;
    if new {
        // Said, so that a mistyped --backup-dir is not a silent second catalogue.
        printer.line(format_args!(
            "Created backup folder {} for a new catalogue",
            crate::error::printable(dir.display())
        ))?;
    }
    // Loaded once here, and dropped before the archive is written.
    let manifest = Manifest::load(dir)?;
    if kind == Kind::Regular {
        crate::commands::warn_untracked(dir, &manifest, "", printer);
    }
    let mut adopter = Adopter::for_manifest(dir, Some(&manifest), printer);
    clean_leftovers(dir, printer)?;
    let created = Utc::now();
    let mut tmp = atomic::temp_file_in(dir)?;
    let total = match printer.shows_progress() {
        true => archive::survey(src, &opts.excludes)?.stats.bytes,
        false => 0,
    };
    // Metrics never fail a backup: names that make no pattern only cost the metrics.
    let copies = match about
        .metrics
        .as_ref()
        .map(|s| archive::Excludes::new(&s.patterns()))
    {
        Some(Ok(copies)) => copies,
        Some(Err(e)) => {
            printer.warn(format_args!("no metrics read: {e}"));
            archive::Excludes::default()
        }
        None => archive::Excludes::default(),
    };
    let opts = archive::Options {
        progress: printer.progress(total, format!("backing up {name}")),
        copies,
        ..opts.clone()
    };
    let mut index_tmp = atomic::temp_file_in(dir)?;
    let latest = manifest.latest_regular(name).cloned();
    drop(manifest);
    let source = latest
        .as_ref()
        .and_then(|latest| reuse_source(dir, latest, name, &opts, printer));
    let (written, index_sum, scan) = match source.as_ref() {
        Some(source) => write_then_read_back(src, name, (&mut tmp, &mut index_tmp), &opts, source)?,
        None => write_and_read_back(src, name, &mut tmp, &mut index_tmp, &opts)?,
    };
    opts.progress.finish();
    for why in &written.not_reused {
        printer.warn(format_args!("{why}"));
    }
    // The copies are checked as they are made: a damaged one was compressed again instead.
    let source_damaged = !written.not_reused.is_empty();
    if source_damaged && let Some(latest) = &latest {
        let problem = "a segment does not match its CRC32 (found by a backup copying from it)";
        crate::commands::verify::record_problem(dir, latest, problem, false);
    }
    if let (Some(source), true) = (&source, printer.verbose()) {
        let (segments, bytes) = written.reused;
        printer.line(format_args!(
            "  {} ({} of data) copied from {} without compressing",
            crate::error::count(segments, "segment", "segments"),
            crate::commands::human_size(bytes),
            source.path().display()
        ))?;
    }
    for skipped in &written.skipped {
        printer.warn(format_args!("skipped special file {}", skipped.display()));
    }
    let early = &written.before_1970;
    for path in early.iter().take(BEFORE_1970_SHOWN) {
        printer.warn(format_args!(
            "{}: dated before 1970; stored with the date 1970-01-01 00:00 UTC",
            path.display()
        ));
    }
    if early.len() > BEFORE_1970_SHOWN {
        printer.warn(format_args!(
            "and {} more dated before 1970, stored the same way",
            early.len() - BEFORE_1970_SHOWN
        ));
    }
    for changed in &written.changed {
        let padded = written.shrank.iter().find(|(path, _)| path == changed);
        let shrank = match padded {
            Some((_, n)) => format!(
                " (it shrank by {}; padded with zeros)",
                crate::error::count(*n, "byte", "bytes")
            ),
            None => String::new(),
        };
        printer.warn(format_args!(
            "{}: changed while it was read{shrank}",
            changed.display()
        ));
    }
    verify_written(tmp.path(), scan, &written).map_err(|e| match e {
        Error::UnsafeEntry { entry, reason } => Error::Unrestorable {
            path: src.to_path_buf(),
            // A safety copy must hold everything about to be replaced: no exclude helps there.
            reason: match kind {
                Kind::Regular => format!("{reason}; to leave it out, add {}", exclude_for(&entry)),
                Kind::Safety => format!("{reason}; move it out of the folder first"),
            },
            entry,
        },
        other => other,
    })?;
    let changed = !written.changed.is_empty();
    let metrics = about.metrics.as_ref().and_then(|sources| {
        let found = crate::metrics::from_copies(&written.copies, sources);
        for warning in &found.warnings {
            printer.warn(format_args!("{warning}; the backup goes on without it"));
        }
        (!found.metrics.is_empty()).then_some(found.metrics)
    });
    let finished = Finished {
        files: (tmp, index_tmp, index_sum),
        written: &written,
        created,
        metrics,
    };
    let entry = register(dir, name, finished, about, &mut adopter)?;
    adopter.report(printer)?;
    Ok((entry, changed, source_damaged))
}

/// `latest`, the newest regular backup of `name`, as a source of unchanged segments, if it has
/// an intact index written with the same settings. Why it cannot serve is said with `-v`.
fn reuse_source(
    dir: &Path,
    latest: &Entry,
    name: &str,
    opts: &archive::Options,
    printer: &mut Printer,
) -> Option<crate::reuse::Source> {
    let index_sha256 = latest.index_sha256.as_ref()?;
    let path = dir.join(&latest.backup_file);
    let opened = crate::reuse::Source::open(&path, latest.size, index_sha256, name, opts.level);
    match opened {
        Ok(Ok(source)) => Some(source),
        Ok(Err(why)) => {
            if printer.verbose() {
                printer.hint(format_args!("not reusing {}: {why}", latest.backup_file));
            }
            None
        }
        Err(e) => {
            printer.warn(format_args!("not reusing {}: {e}", latest.backup_file));
            None
        }
    }
}

/// The `--exclude` option (quoted for a shell) that leaves out the archive entry `entry`,
/// stored under the strategy's top folder.
fn exclude_for(entry: &str) -> String {
    let rel: PathBuf = Path::new(entry).components().skip(1).collect();
    let glob = globset::escape(&rel.to_string_lossy());
    format!("--exclude {}", crate::error::shell_quoted(&glob))
}

/// Writes the archive into `tmp` while a second thread reads it back from disk through its own
/// handle (checksum, every entry, the restore policy), following the writer; the check ends
/// with the file's last byte, while both files are synced. Returns what was written and what
/// the read-back found.
fn write_and_read_back(
    src: &Path,
    name: &str,
    tmp: &mut NamedTempFile,
    index_tmp: &mut NamedTempFile,
    opts: &archive::Options,
) -> Result<(Written, Checksum, Result<extract::Scan>)> {
    let path = tmp.path().to_path_buf();
    let reader = std::fs::File::open(&path).at("open", &path)?;
    let growth = Growth::default();
    std::thread::scope(|scope| {
        let follower = FollowReader::new(reader, growth.clone());
        let check =
            scope.spawn(|| extract::scan_reader(follower, &path, Some(name), &Progress::hidden()));
        let writing = FailOnDrop(growth.clone());
        let written = write_archive(src, name, (tmp, index_tmp), opts, None, &growth);
        if written.is_ok() {
            growth.finish();
        }
        drop(writing);
        let synced = written.as_ref().ok().map(|_| sync(tmp, index_tmp));
        let scan = check.join().unwrap_or_else(|_| {
            Err(Error::io(
                "read back",
                &path,
                std::io::Error::other("the check stopped unexpectedly"),
            ))
        });
        let (written, index_sum) = written?;
        synced.unwrap_or(Ok(()))?;
        Ok((written, index_sum, scan))
    })
}

/// Writes the archive into `tmp`, copying unchanged segments from `source`, while a second
/// thread reads it back from disk through its own handle, following the writer; then, while
/// both files are synced, checks what it read against the CRC32 of what was written (the
/// header, every segment and the end, see [`crate::inflate::check_written`]) and inflates every
/// segment it compressed (not those it copied, whose bytes matched the CRC32 in the earlier
/// archive's checked index) through the restore policy. The SHA-256 is that of the
/// bytes written, which the read-back matched; the copied segments count with what their
/// index records.
fn write_then_read_back(
    src: &Path,
    name: &str,
    (tmp, index_tmp): (&mut NamedTempFile, &mut NamedTempFile),
    opts: &archive::Options,
    source: &crate::reuse::Source,
) -> Result<(Written, Checksum, Result<extract::Scan>)> {
    let path = tmp.path().to_path_buf();
    let reader = std::fs::File::open(&path).at("open", &path)?;
    let growth = Growth::default();
    // The file is read back as it is written, on a thread of its own (its CRC32).
    let (written, read) = std::thread::scope(|scope| {
        let follower = FollowReader::new(reader, growth.clone());
        let read = scope.spawn(|| crate::inflate::crc_of(follower));
        let writing = FailOnDrop(growth.clone());
        let written = write_archive(src, name, (tmp, index_tmp), opts, Some(source), &growth);
        if written.is_ok() {
            growth.finish();
        }
        drop(writing);
        let stopped = || std::io::Error::other("the check stopped unexpectedly");
        (written, read.join().unwrap_or_else(|_| Err(stopped())))
    });
    let (written, index_sum) = written?;
    let (tmp, index_tmp) = (&*tmp, &*index_tmp);
    let scan = std::thread::scope(|scope| {
        let synced = scope.spawn(|| sync(tmp, index_tmp));
        let scan = read
            .map_err(|e| Error::io("read back", &path, e))
            .and_then(|read| read_back(&path, name, &written, opts.level, read));
        let stopped = std::io::Error::other("the sync stopped unexpectedly");
        synced
            .join()
            .unwrap_or_else(|_| Err(Error::io("sync", &path, stopped)))?;
        scan
    });
    Ok((written, index_sum, scan))
}

/// The read-back of [`write_then_read_back`], given the CRC32 and length of the file as it was
/// read back.
fn read_back(
    path: &Path,
    name: &str,
    written: &Written,
    level: u32,
    read: (u32, u64),
) -> Result<extract::Scan> {
    let file = archive::open_file(path)?;
    let header = crate::pgzip::header(level);
    let (stats, same) = std::thread::scope(|scope| {
        let same =
            scope.spawn(|| crate::inflate::check_written(&file, &written.segments, &header, read));
        let fresh: Vec<_> = written
            .segments
            .iter()
            .filter(|s| !s.copied)
            .copied()
            .collect();
        // A few changed segments are streamed: inflating them whole on a thread of its own
        // would hold a few megabytes for a few milliseconds saved.
        let few = fresh.iter().map(|s| s.ulen).sum::<u64>() <= FEW_FRESH;
        let stats = match few {
            true => file
                .try_clone()
                .map(|file| Box::new(crate::inflate::Segments::new(file, fresh)) as Box<dyn Read>),
            false => crate::inflate::Parallel::new(&file, fresh, 1)
                .map(|segments| Box::new(segments) as Box<dyn Read>),
        }
        .map_err(|e| Error::io("read back", path, e))
        .and_then(|segments| extract::check_tar(segments, path, name));
        let stopped = || std::io::Error::other("the check stopped unexpectedly");
        (stats, same.join().unwrap_or_else(|_| Err(stopped())))
    });
    same.map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        detail: format!("verification after writing failed: {e}"),
    })?;
    let (fresh, copied) = (stats?, written.reused_stats);
    Ok(extract::Scan {
        checksum: written.checksum.clone(),
        stats: Some(archive::Stats {
            files: fresh.files + copied.files,
            bytes: fresh.bytes + copied.bytes,
        }),
    })
}

/// Writes the archive into `tmp` and its index into `index_tmp` (the caller syncs both, see
/// [`sync`]). Returns what went in, and the index's checksum.
fn write_archive(
    src: &Path,
    name: &str,
    (tmp, index_tmp): (&mut NamedTempFile, &mut NamedTempFile),
    opts: &archive::Options,
    reuse: Option<&crate::reuse::Source>,
    growth: &Growth,
) -> Result<(Written, crate::checksum::Checksum)> {
    let path = tmp.path().to_path_buf();
    let index_path = index_tmp.path().to_path_buf();
    // Synced as it grows, on a second handle, so the caller's final sync finds little to do.
    let syncing = tmp.as_file().try_clone().at("open", &path)?;
    let grown = Growth::default();
    std::thread::scope(|scope| {
        let syncer = scope.spawn(|| crate::follow::sync_behind(&syncing, &grown, SYNC_EVERY));
        let ended = FailOnDrop(grown.clone());
        let file = GrowthWriter::new(tmp.as_file_mut(), growth.clone());
        let file = GrowthWriter::new(file, grown.clone());
        let out = BufWriter::with_capacity(WRITE_BUF, file);
        let index_out = HashingWriter::new(BufWriter::new(index_tmp.as_file_mut()));
        let written = archive::write(src, name, out, index_out, opts, reuse).and_then(
            |(out, index_out, written)| {
                out.into_inner()
                    .map_err(|e| Error::io("write", &path, e.into_error()))?;
                let (index_out, index_sum) = index_out.finish();
                index_out
                    .into_inner()
                    .map_err(|e| Error::io("write", &index_path, e.into_error()))?;
                Ok((written, index_sum))
            },
        );
        let written = written.map_err(|e| blame_full_disk(e, &path));
        if written.is_ok() {
            grown.finish();
        }
        drop(ended);
        let stopped = || std::io::Error::other("the sync stopped unexpectedly");
        let synced = syncer.join().unwrap_or_else(|_| Err(stopped()));
        let written = written?;
        synced.at("sync", &path)?;
        Ok(written)
    })
}

/// A full disk met while writing the archive `tmp`, blamed on the archive being written in its
/// folder, not on the file being archived (or copied from) when it struck.
fn blame_full_disk(e: Error, tmp: &Path) -> Error {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    match e {
        Error::Io { source, .. } if matches!(source.kind(), StorageFull | QuotaExceeded) => {
            Error::io(
                "write the new archive in",
                crate::atomic::parent_dir(tmp),
                source,
            )
        }
        e => e,
    }
}

/// Entries dated before 1970 named one by one; the rest are counted.
const BEFORE_1970_SHOWN: usize = 10;

/// Uncompressed bytes of the segments a backup compressed, at most, for its read-back to
/// stream them rather than inflate them whole on a thread of their own.
const FEW_FRESH: u64 = 16 << 20;

/// Bytes written between the syncs of an archive as it grows.
const SYNC_EVERY: u64 = 32 << 20;

/// Syncs the archive and its index to disk.
fn sync(tmp: &NamedTempFile, index_tmp: &NamedTempFile) -> Result<()> {
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    index_tmp.as_file().sync_all().at("sync", index_tmp.path())
}

/// Compares the read-back of the archive on disk with what was written: same checksum, and it
/// decompresses to the same entries and bytes.
fn verify_written(path: &Path, scan: Result<extract::Scan>, written: &Written) -> Result<()> {
    let scan = scan?;
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

/// A written and checked archive, still in its temp file, and what was read making it.
struct Finished<'w> {
    /// The archive and its index, in their temp files, and the index's checksum.
    files: (NamedTempFile, NamedTempFile, Checksum),
    written: &'w Written,
    created: DateTime<Utc>,
    metrics: Option<crate::metrics::Metrics>,
}

/// Under the manifest lock: picks a free archive name, renames the temp file to it and adds
/// the entry. If the manifest cannot be saved, the renamed archive is removed again.
fn register(
    dir: &Path,
    name: &str,
    finished: Finished,
    about: About,
    adopter: &mut Adopter,
) -> Result<Entry> {
    let Finished {
        files: (tmp, index_tmp, index_sum),
        written,
        created,
        metrics,
    } = finished;
    let kind = about.kind;
    let timestamp = created.format("%Y%m%d_%H%M%S").to_string();
    let mut metrics = metrics;
    place_with_index(dir, tmp, Some(index_tmp), adopter, |manifest| {
        Ok(Entry {
            strategy: name.to_string(),
            timestamp: timestamp.clone(),
            backup_file: free_name(manifest, dir, name, &timestamp, kind),
            size: written.checksum.len,
            sha256: written.checksum.sha256.clone(),
            entries: written.stats.files,
            bytes: written.stats.bytes,
            kinds: Some(written.counts),
            created,
            meta_digest: Some(written.digests.meta.clone()),
            content_digest: Some(written.digests.content.clone()),
            kind,
            checksum_source: None,
            converted_from: None,
            imported_path: None,
            metrics: metrics.take(),
            tags: about.tags.clone(),
            note: about.note.clone(),
            pin: false,
            index_sha256: Some(index_sum.sha256.clone()),
            metrics_sha256: None,
        })
    })
}

/// Under the manifest lock: asks `entry_for` for the entry (and so the file name) given the
/// current manifest, renames the finished temp file to that name (never over an existing
/// file) and records the entry, replacing one of the same name, and returns it without its
/// metrics (they are in the manifest's care). If the manifest cannot be
/// saved, the renamed archive is removed again. The archive's index (see [`crate::index`]),
/// when given, is placed beside it first.
pub(crate) fn place_with_index(
    dir: &Path,
    tmp: NamedTempFile,
    index_tmp: Option<NamedTempFile>,
    adopter: &mut Adopter,
    entry_for: impl FnOnce(&Manifest) -> Result<Entry>,
) -> Result<Entry> {
    let mut placed: Option<PathBuf> = None;
    // An interruption waits until the archive is both in place and in the manifest (or neither),
    // so it never leaves a finished archive that the catalogue does not know.
    let _whole = crate::interrupt::hold();
    let result = Manifest::update_adopting(dir, &mut |m| adopter.adopt(m), |manifest| {
        let entry = entry_for(manifest)?;
        let path = dir.join(&entry.backup_file);
        if let Some(index_tmp) = index_tmp {
            // An index left by an archive that is gone belongs to no backup: replaced.
            atomic::persist(index_tmp, &index::path_for(&path), true)?;
        }
        atomic::persist(tmp, &path, false)?;
        placed = Some(path);
        manifest
            .backups
            .retain(|e| e.backup_file != entry.backup_file);
        // The metrics (a sweep's tens of thousands) go to the manifest alone, never copied.
        let mut recorded = entry;
        let metrics = recorded.metrics.take();
        let entry = recorded.clone();
        recorded.metrics = metrics;
        manifest.backups.push(recorded);
        Ok(entry)
    });
    if let (Err(_), Some(path)) = (&result, &placed) {
        remove_unregistered(dir, path);
    }
    result
}

/// After a failed registration: removes the placed archive, unless the manifest on disk lists
/// it after all (the rename of the new manifest succeeded and only a later step failed).
fn remove_unregistered(dir: &Path, path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let listed = Manifest::load(dir).is_ok_and(|m| m.find(&name).is_some());
    if listed {
        return;
    }
    let _ = std::fs::remove_file(index::path_for(path));
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != ErrorKind::NotFound
    {
        warn(format_args!(
            "could not remove unregistered {}: {e}",
            path.display()
        ));
    }
}

/// `<name>_<timestamp>.tar.gz`, or with `_2`, `_3`, ... if that is taken in the manifest or on
/// disk; a safety copy's name ends `.safety.tar.gz`, so its kind is known from the name alone.
fn free_name(manifest: &Manifest, dir: &Path, name: &str, timestamp: &str, kind: Kind) -> String {
    let end = match kind {
        Kind::Safety => format!("{}.tar.gz", crate::commands::locate::SAFETY_MARK),
        Kind::Regular => ".tar.gz".to_string(),
    };
    (1..)
        .map(|n| match n {
            1 => format!("{name}_{timestamp}{end}"),
            n => format!("{name}_{timestamp}_{n}{end}"),
        })
        .find(|file| manifest.find(file).is_none() && !dir.join(file).exists())
        .expect("an unbounded range always yields a free name")
}
