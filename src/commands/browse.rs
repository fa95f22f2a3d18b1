//! `resbak ls` and `resbak cat`: one archive's entries, and one file's bytes, read through
//! the archive's index when it has an intact one (see [`crate::lookup`]). When the index the
//! manifest records is damaged or gone, they read the whole archive, checked, say so in one
//! warning and exit 1: the output is right, but a check found a problem worth fixing.
//! Likewise an archive `list` would call `missing` or `failed` (gone, not the size the manifest
//! records, or failed its last verify): what the index still serves is given, with one warning
//! naming the problem and the next step, and exit 1.

use super::{Context, Outcome, Printer, locate_backup};
use crate::archive::{EntryKind, Excludes};
use crate::error::{Error, IoContext, Result, printable};
use crate::extract::Matching;
use crate::index::Record;
use crate::lookup::{Archive, Served};
use chrono::{DateTime, Datelike, Timelike};
use std::io::{Seek, SeekFrom};
use std::path::Path;

/// One entry as `ls --json` shows it.
#[derive(Debug, serde::Serialize)]
struct Listed {
    path: String,
    kind: &'static str,
    mode: String,
    size: u64,
    mtime: u64,
    sha256: Option<String>,
    target: Option<String>,
}

impl From<Record> for Listed {
    fn from(r: Record) -> Listed {
        Listed {
            path: r.path.to_string_lossy().into_owned(),
            kind: r.kind.name(),
            mode: format!("{:04o}", r.mode),
            size: r.size,
            mtime: r.mtime,
            sha256: (!r.sha256.is_empty()).then_some(r.sha256),
            target: (r.kind == EntryKind::Symlink)
                .then(|| String::from_utf8_lossy(&r.target).into_owned()),
        }
    }
}

/// Lists the entries of the backup `archive` names (see [`locate_backup`]) below its top
/// folder, only those `glob` covers when given (a folder brings what is in it); a `glob` that
/// covers nothing is warned about (as [`Error::NotInArchive`]) and a problem found, after the
/// (empty) listing, so `--json` still prints an array.
pub fn ls(
    ctx: &Context,
    archive: &str,
    glob: Option<&str>,
    printer: &mut Printer,
) -> Result<Outcome> {
    let located = locate_backup(ctx, archive)?;
    super::warn_untracked_pick(ctx, &located, archive, printer);
    let top = located.strategy()?;
    let damaged = warn_if_damaged(ctx, &located);
    let filter = glob.map(|g| Excludes::new(&[g.to_string()])).transpose()?;
    let mut matching = filter
        .as_ref()
        .map(|f| Matching::new(f, &top))
        .transpose()?;
    let source = archive_of(&located, &top);
    // Printed only once the read is checked: read whole, an archive is checked at its end.
    let (mut listed, mut lines) = (Vec::new(), Vec::new());
    let json = printer.json();
    let served = source.list(json, |record| {
        if matching.as_mut().is_some_and(|m| !m.includes(&record.path)) {
            return Ok(());
        }
        match json {
            true => listed.push(Listed::from(record)),
            false => lines.push(line(&record)),
        }
        Ok(())
    })?;
    printer.lines(&lines)?;
    printer.json_report(&listed)?;
    let mut outcome = outcome(served).max(damaged);
    for unmatched in matching.map(Matching::unmatched).unwrap_or_default() {
        super::warn(Error::NotInArchive {
            what: "pattern",
            pattern: unmatched.pattern,
            path: located.path.clone(),
            meant: unmatched.meant,
        });
        outcome = Outcome::ProblemsFound;
    }
    Ok(outcome)
}

/// Warns when the catalogued archive `located` names is what `list` calls `missing` or
/// `failed` (see [`super::list::local_status`]), naming the problem and the next step: a
/// problem found. Checks only what is cheap: the file's presence and size, and the recorded
/// verify results.
fn warn_if_damaged(ctx: &Context, located: &super::Located) -> Outcome {
    let Some(entry) = &located.entry else {
        return Outcome::Clean;
    };
    let file = &entry.backup_file;
    match super::known_damage(&ctx.backup_dir, entry) {
        Some((true, missing)) => super::warn(format_args!(
            "{missing}: only its index can serve; put the archive back (resbak pull fetches a pushed copy)"
        )),
        Some((false, damaged)) => super::warn(format_args!(
            "{damaged}; resbak verify {file} checks it again"
        )),
        None => return Outcome::Clean,
    }
    Outcome::ProblemsFound
}

/// The outcome of a read `served` so: a damaged index is warned about (with the way out) and
/// is a problem found, though what was read is right.
fn outcome(served: Served) -> Outcome {
    match served {
        Served::DamagedIndex(why) => {
            super::warn_unusable_index(&why);
            Outcome::ProblemsFound
        }
        Served::Index | Served::Archive => Outcome::Clean,
    }
}

/// `-rw-r--r--  1234  2024-06-01 00:00  runs/a/trades.csv` (and ` -> target` for a link).
fn line(r: &Record) -> String {
    let kind = match r.kind {
        EntryKind::File => '-',
        kind => kind.letter(),
    };
    let bits: String = (0..9)
        .map(|i| match r.mode & (0o400 >> i) != 0 {
            true => ['r', 'w', 'x'][i % 3],
            false => '-',
        })
        .collect();
    // Written field by field: a format string would be parsed again for every line.
    let when = i64::try_from(r.mtime)
        .ok()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map_or_else(String::new, |t| {
            let (day, time) = (t.date_naive(), t.time());
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                day.year(),
                day.month(),
                day.day(),
                time.hour(),
                time.minute()
            )
        });
    let target = match r.kind {
        EntryKind::Symlink => format!(" -> {}", String::from_utf8_lossy(&r.target)),
        _ => String::new(),
    };
    let path = printable(r.path.display());
    format!("{kind}{bits} {:>12}  {when}  {path}{target}", r.size)
}

/// The located archive, with the index and checksum its manifest entry records, if any.
fn archive_of<'a>(located: &'a super::Located, top: &'a str) -> Archive<'a> {
    let entry = located.entry.as_ref();
    Archive {
        path: &located.path,
        top,
        index_sha256: entry.and_then(|e| e.index_sha256.as_deref()),
        checksum: entry.and_then(|e| e.recorded_checksum()),
    }
}

/// Writes the bytes of the file at `path` (relative to the strategy folder) in the backup
/// `archive` names to standard output, only once they are checked: against the index's SHA-256
/// of the file, or, read without an index, by reading the whole archive (its gzip checksums,
/// and its SHA-256 when the manifest records one). Until then they wait in a temporary file,
/// so a damaged archive never leaves a full-size wrong file behind a redirect.
pub fn cat(ctx: &Context, archive: &str, path: &str, printer: &mut Printer) -> Result<Outcome> {
    let located = locate_backup(ctx, archive)?;
    super::warn_untracked_pick(ctx, &located, archive, printer);
    let top = located.strategy()?;
    // An index holds no file's bytes: with the archive gone there is nothing to serve.
    let gone = std::fs::symlink_metadata(&located.path)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if located.entry.is_some() && gone {
        return Err(Error::Missing { path: located.path });
    }
    let damaged = warn_if_damaged(ctx, &located);
    let source = archive_of(&located, &top);
    let rel: std::path::PathBuf = Path::new(path)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let spool_dir = std::env::temp_dir();
    let mut spool = tempfile::tempfile().at("create a temporary file in", &spool_dir)?;
    let served = source.cat(&rel, &mut spool)?;
    spool.seek(SeekFrom::Start(0)).at("read", &spool_dir)?;
    std::io::copy(&mut spool, printer.raw()).at("write to", Path::new("standard output"))?;
    Ok(outcome(served).max(damaged))
}
