//! `--include` from an archive with an intact index (see [`crate::index`]): what is included,
//! read from the index alone; only the segments that hold included entries and the folders
//! above them are inflated; and each included file, once extracted, is checked against the
//! SHA-256 the index records.

use super::{Extracted, Matching, Selection};
use crate::archive::{EntryKind, Excludes};
use crate::error::{Error, Result};
use crate::index::{self, Record};
use crate::pgzip::Segment;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// The segments an `--include` restore reads and the files it checks.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    /// Every segment of the archive, to check the gzip frame around them.
    segments: Vec<Segment>,
    /// Whether each segment is read.
    needed: Vec<bool>,
    /// Each included file below the top folder, with its size and SHA-256.
    files: Vec<(PathBuf, u64, String)>,
}

/// What an `--include` restore of the archive at `archive` (top folder `top`) creates, from
/// its index at `index_path`, which must have SHA-256 `index_sha256`. `None` when the index
/// cannot serve: it is damaged, gone, or of an archive not cut into segments; the caller then
/// reads the archive (see [`super::select`]).
pub fn select_indexed(
    index_path: &Path,
    index_sha256: &str,
    top: &str,
    include: &Excludes,
) -> Result<Option<Selection>> {
    let mut matching = Matching::new(include, top)?;
    let mut selection = Selection::default();
    let mut partial = Partial::default();
    // Where each folder and link lies (what can be above an entry).
    let mut segment_of: HashMap<PathBuf, usize> = HashMap::new();
    let read = index::read(index_path, Some(index_sha256), |segment, record| {
        let Record {
            kind,
            size,
            sha256,
            path,
            ..
        } = record;
        if kind != EntryKind::File {
            segment_of.insert(path.clone(), segment);
        }
        if !matching.includes(&path) {
            return Ok(());
        }
        mark(&mut partial.needed, segment);
        for above in path.ancestors().skip(1) {
            if let Some(&at) = segment_of.get(above) {
                mark(&mut partial.needed, at);
            }
        }
        if kind == EntryKind::File {
            partial.files.push((path.clone(), size, sha256));
        }
        let dir = kind == EntryKind::Folder;
        selection.entries.push((path, dir, size));
        Ok(())
    });
    let Ok(read) = read else {
        return Ok(None);
    };
    if read.level.is_none() || read.top != top {
        return Ok(None);
    }
    if partial.needed.len() > read.segments.len() {
        return Ok(None);
    }
    partial.needed.resize(read.segments.len(), false);
    // A group's pieces are read with its first segment.
    for (n, s) in read.segments.iter().enumerate().skip(1) {
        partial.needed[n] |= s.continues && partial.needed[n - 1];
    }
    partial.segments = read.segments.into_iter().map(|s| s.segment).collect();
    selection.unmatched = matching.unmatched();
    selection.partial = Some(partial);
    Ok(Some(selection))
}

fn mark(needed: &mut Vec<bool>, at: usize) {
    if needed.len() <= at {
        needed.resize(at + 1, false);
    }
    needed[at] = true;
}

/// How many segments a restore inflated, of how many the archive has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentsRead {
    /// Segments inflated.
    pub read: u64,
    /// Segments in the archive.
    pub total: u64,
}

impl Partial {
    /// How many segments it reads, of how many.
    pub fn segments_read(&self) -> SegmentsRead {
        SegmentsRead {
            read: self.needed.iter().filter(|n| **n).count() as u64,
            total: self.segments.len() as u64,
        }
    }
}

/// [`super::extract_some`] of the archive at `archive` with a `selection` from
/// [`select_indexed`]: checks the gzip frame, inflates only the segments needed (on all cores,
/// each checked against its CRC32), and checks each included file written below `root` against
/// the index. The caller checks the archive's SHA-256.
///
/// # Errors
/// As [`super::extract`]; [`Error::Corrupt`] also when an included file differs from its index.
pub fn extract_partial(
    archive: &Path,
    root: &Path,
    top: &str,
    include: &Excludes,
    selection: &Selection,
) -> Result<Extracted> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let Some(partial) = &selection.partial else {
        return Err(corrupt(io::Error::other("no index to read it by")));
    };
    let needed = partial
        .segments
        .iter()
        .zip(&partial.needed)
        .filter(|(_, n)| **n)
        .map(|(s, _)| *s)
        .collect();
    let include = Some((include, selection));
    let extracted = super::unpack_segments(archive, &partial.segments, needed, root, top, include)?;
    for (rel, size, sha256) in &partial.files {
        let differs = || {
            corrupt(io::Error::other(format!(
                "{} differs from its index",
                rel.display()
            )))
        };
        // Hashed as it was written: a file restored without read permission is checked too.
        let written = extracted.sums.get(&Path::new(top).join(rel));
        if written.is_none_or(|sum| sum.len != *size || sum.sha256 != *sha256) {
            return Err(differs());
        }
    }
    Ok(extracted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// The index picks what reading the archive picks, and needs only some segments.
    #[test]
    fn the_index_selects_what_the_archive_selects() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        std::fs::create_dir_all(src.join("runs/a/deep")).unwrap();
        std::fs::create_dir_all(src.join("runs/b")).unwrap();
        for (i, name) in ["runs/a/x.csv", "runs/a/deep/y.csv", "runs/b/z.csv"]
            .iter()
            .enumerate()
        {
            let big = vec![b'a' + i as u8; index::BIG_FILE as usize + i];
            std::fs::write(src.join(name), big).unwrap();
        }
        std::fs::write(src.join("top.json"), "{}").unwrap();
        std::os::unix::fs::symlink("top.json", src.join("runs/link")).unwrap();
        let opts = crate::archive::Options::default();
        let (gz, idx, _) =
            crate::archive::write(&src, "s", Vec::new(), Vec::new(), &opts, None).unwrap();
        let (archive, index_path) = (dir.path().join("a.tar.gz"), dir.path().join("a.idx"));
        std::fs::write(&archive, &gz).unwrap();
        std::fs::write(&index_path, &idx).unwrap();
        let sha = crate::checksum::hex(&sha2::Sha256::digest(&idx));
        for patterns in [
            vec!["runs/a/deep"],
            vec!["*.json", "runs/link"],
            vec!["runs/b/z.csv", "nothing"],
        ] {
            let patterns: Vec<String> = patterns.into_iter().map(String::from).collect();
            let include = Excludes::new(&patterns).unwrap();
            let read = super::super::select(&gz[..], &archive, "s", &include).unwrap();
            let indexed = select_indexed(&index_path, &sha, "s", &include)
                .unwrap()
                .unwrap();
            assert_eq!(indexed.entries, read.entries, "{patterns:?}");
            assert_eq!(indexed.unmatched, read.unmatched, "{patterns:?}");
            let counted = indexed.segments_read().unwrap();
            assert!(counted.read < counted.total, "{patterns:?}: {counted:?}");
        }
        assert!(
            select_indexed(&index_path, &"0".repeat(64), "s", &Excludes::default())
                .unwrap()
                .is_none()
        );
    }
}
