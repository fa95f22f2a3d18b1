//! The checked extraction: the archive is unpacked into a staging folder while its SHA-256 is
//! computed beside it, and both are checked against its manifest entry before anything moves.

use super::READ_BUF;
use crate::archive::{self, Stats};
use crate::checksum::HashingReader;
use crate::commands::Located;
use crate::error::{Error, Result};
use crate::extract::{self, Extracted};
use crate::progress::Progress;
use std::io::BufReader;
use std::path::Path;

/// Extracts `path` into `staging`, hashing it in the same pass, and checks it against its
/// manifest entry. Says how many segments it inflated, of how many, when it read them through
/// the archive's intact index: with `--include` only those it needs (see
/// [`extract::extract_partial`]).
pub(super) fn extract_checked(
    located: &Located,
    staging: &Path,
    strategy: &str,
    include: Option<(&archive::Excludes, &extract::Selection)>,
    progress: &Progress,
) -> Result<(Stats, archive::Counts, Option<extract::SegmentsRead>)> {
    let path = &located.path;
    let index_sha256 = located
        .entry
        .as_ref()
        .and_then(|e| e.index_sha256.as_deref());
    let hashed_beside = |extract: &dyn Fn() -> Result<Extracted>| {
        std::thread::scope(|scope| {
            let whole = scope.spawn(|| extract::scan(path, None, progress));
            let extracted = extract();
            let stopped = || Err(Error::corrupt(path, "hashing stopped unexpectedly"));
            let checksum = whole.join().unwrap_or_else(|_| stopped());
            (checksum.map(|s| s.checksum), extracted)
        })
    };
    if let Some((include, selection)) = include
        && let Some(read) = selection.segments_read()
    {
        let (checksum, extracted) = hashed_beside(&|| {
            extract::extract_partial(path, staging, strategy, include, selection)
        });
        check_checksum(located, &checksum?.sha256)?;
        // Only some entries were read: the archive's counts are proven by its SHA-256.
        let extracted = extracted?;
        return Ok((extracted.written, extracted.counts, Some(read)));
    }
    let (checksum, extracted, read) = match crate::index::segments_of(path, index_sha256) {
        Some(segments) => {
            let total = segments.len() as u64;
            let (checksum, extracted) = hashed_beside(&|| {
                extract::extract_segments(path, segments.clone(), staging, strategy, include)
            });
            let read = extract::SegmentsRead { read: total, total };
            (checksum, extracted, Some(read))
        }
        None => {
            warn_damaged_index(path, index_sha256);
            let file = archive::open_file(path)?;
            let reader = progress.reader(BufReader::with_capacity(READ_BUF, file));
            let mut hashing = HashingReader::new(reader);
            let extracted = match include {
                Some((include, selection)) => {
                    extract::extract_some(&mut hashing, path, staging, strategy, include, selection)
                }
                None => extract::extract(&mut hashing, path, staging, strategy),
            };
            let checksum = hashing
                .finish()
                .map_err(|e| Error::corrupt(path, e.to_string()));
            (checksum, extracted, None)
        }
    };
    check_checksum(located, &checksum?.sha256)?;
    let Some(entry) = located.entry.as_ref().filter(|e| e.has_checksum()) else {
        let extracted = extracted?;
        return Ok((extracted.written, extracted.counts, read));
    };
    let Extracted {
        stats,
        written,
        counts,
        ..
    } = extracted?;
    // Its SHA-256 is the one recorded, so what was restored is what was archived: counts that
    // differ are a wrong entry (a hand edit), said, not a reason to refuse the restore.
    if (stats.files, stats.bytes) != (entry.entries, entry.bytes) {
        super::warn_wrong_entry(
            entry,
            format_args!(
                "it holds {} and {}, the entry says {} and {}; correct its entries to {} and \
                 bytes to {}",
                crate::error::count(stats.files, "entry", "entries"),
                crate::error::count(stats.bytes, "byte", "bytes"),
                entry.entries,
                entry.bytes,
                stats.files,
                stats.bytes
            ),
        );
    }
    Ok((written, counts, read))
}

/// Warns when the manifest records an index for the archive at `path` that is damaged or gone:
/// the restore reads the whole archive instead, as correct but slower.
fn warn_damaged_index(path: &Path, index_sha256: Option<&str>) {
    if let Some(why) = index_sha256.and_then(|sha| crate::index::unusable(path, sha)) {
        crate::commands::warn_unusable_index(&why);
    }
}

/// Refuses an archive whose SHA-256 is not its manifest entry's; an archive the manifest does
/// not know has nothing to be checked against.
pub(super) fn check_checksum(located: &Located, sha256: &str) -> Result<()> {
    match &located.entry {
        Some(entry) if entry.has_checksum() && entry.sha256 != sha256 => Err(Error::corrupt(
            &located.path,
            format!("SHA-256 is {sha256}, manifest says {}", entry.sha256),
        )),
        _ => Ok(()),
    }
}
