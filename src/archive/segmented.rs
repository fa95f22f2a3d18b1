//! Writing an archive segment by segment: the entries of each segment are either appended to
//! the tar stream (and compressed), or, when an earlier archive holds a segment with the same
//! key, its compressed bytes are copied. Either way each entry is recorded in the index and
//! counted in what was written.

use super::{ExactReader, Stored, TreeDigest, Written, append, open_regular};
use crate::checksum::{HashingReader, HashingWriter};
use crate::error::{Error, Result};
use crate::index::{self, Record};
use crate::pgzip::ParGzWriter;
use crate::progress::Progress;
use crate::reuse::Source;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The tar stream of an archive being written.
pub(super) type TarOut<W> = tar::Builder<ParGzWriter<HashingWriter<W>>>;

/// Collects the entries of one segment at a time and writes or copies them.
pub(super) struct Segmenter<'a, W: Write, I: Write> {
    tar: TarOut<W>,
    index: index::Writer<I>,
    top: &'a str,
    progress: &'a Progress,
    reuse: Option<&'a mut Source>,
    /// The entries of the open segment: path and path below the top folder.
    group: Vec<(PathBuf, PathBuf)>,
    written: Written,
    digest: TreeDigest,
}

impl<'a, W: Write, I: Write> Segmenter<'a, W, I> {
    pub(super) fn new(
        tar: TarOut<W>,
        index: index::Writer<I>,
        top: &'a str,
        progress: &'a Progress,
        reuse: Option<&'a mut Source>,
    ) -> Self {
        Segmenter {
            tar,
            index,
            top,
            progress,
            reuse,
            group: Vec::new(),
            written: Written::default(),
            digest: TreeDigest::default(),
        }
    }

    /// Adds an entry to the open segment.
    pub(super) fn push(&mut self, path: PathBuf, rel: PathBuf) {
        self.group.push((path, rel));
    }

    /// Writes or copies the open segment, if it has entries.
    pub(super) fn flush(&mut self) -> Result<()> {
        let group = std::mem::take(&mut self.group);
        if group.is_empty() {
            return Ok(());
        }
        if self.reuse.is_some() && self.copy(&group)? {
            return Ok(());
        }
        let fail = |e: io::Error| Error::io("write", Path::new(self.top), e);
        self.tar.get_mut().cut().map_err(fail)?;
        for (path, rel) in group {
            let name = Path::new(self.top).join(&rel);
            match append(&mut self.tar, &path, &name, self.progress)? {
                Some(stored) => self.tally(path, &rel, &stored)?,
                None => self.written.skipped.push(path),
            }
        }
        self.index.end_segment();
        Ok(())
    }

    /// The tar stream, the index and what went in, once every segment is flushed.
    pub(super) fn finish(mut self) -> (TarOut<W>, index::Writer<I>, Written) {
        self.written.digests = self.digest.finish();
        (self.tar, self.index, self.written)
    }

    /// Copies the group's segment from the earlier archive if it holds one with the same key
    /// and intact bytes; `false` when the group must be compressed.
    fn copy(&mut self, group: &[(PathBuf, PathBuf)]) -> Result<bool> {
        let (mut stored, mut skipped) = (Vec::with_capacity(group.len()), Vec::new());
        for (path, rel) in group {
            match look(path)? {
                Some(s) => stored.push((path, rel, s)),
                None => skipped.push(path.clone()),
            }
        }
        let records: Vec<Record> = stored.iter().map(|(_, rel, s)| record(rel, s)).collect();
        let Some(source) = self.reuse.as_deref_mut().filter(|_| !records.is_empty()) else {
            return Ok(false);
        };
        let Some(segment) = source.find(&index::key_of(&records)) else {
            return Ok(false);
        };
        let source_path = source.path().to_path_buf();
        let read = |e: io::Error| Error::io("read", &source_path, e);
        if !source.intact(&segment).map_err(read)? {
            self.written.not_reused.push(format!(
                "{}: the segment at byte {} is damaged; compressed again",
                source_path.display(),
                segment.zoff
            ));
            return Ok(false);
        }
        let mut reader = source.reader(&segment).map_err(read)?;
        let gz = self.tar.get_mut();
        gz.copy_segment(&mut reader, segment.zlen, segment.crc, segment.ulen)
            .map_err(read)?;
        drop(reader);
        self.written.reused.0 += 1;
        self.written.reused.1 += segment.ulen;
        for (path, rel, s) in stored {
            self.progress
                .inc(if s.meta.is_file() { s.meta.len() } else { 0 });
            self.tally(path.clone(), rel, &s)?;
        }
        self.written.skipped.extend(skipped);
        self.index.end_segment();
        Ok(true)
    }

    /// Counts one stored entry and records it in the index.
    fn tally(&mut self, path: PathBuf, rel: &Path, s: &Stored) -> Result<()> {
        let w = &mut self.written;
        if !s.same {
            w.changed.push(path.clone());
        }
        if s.padded > 0 {
            w.shrank.push((path.clone(), s.padded));
        }
        w.stats.files += 1;
        w.counts.add(s.meta.file_type());
        w.stats.bytes += if s.meta.is_file() { s.meta.len() } else { 0 };
        self.digest.add(rel, &s.meta, &s.target, &s.sha);
        let fail = |e: io::Error| Error::io("write the index of", &path, e);
        self.index.entry(&record(rel, s)).map_err(fail)
    }
}

/// What [`append`] would store for `path`, reading a file's content for its SHA-256 but
/// writing nothing; `None` for a special file.
fn look(path: &Path) -> Result<Option<Stored>> {
    let fail = |e: io::Error| Error::io("archive", path, e);
    let mut meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let (mut target, mut sha, mut same, mut padded) = (Vec::new(), Vec::new(), true, 0);
    if meta.is_file() {
        let Some(file) = open_regular(path).map_err(fail)? else {
            return Ok(None);
        };
        meta = file.metadata().map_err(fail)?;
        let mut exact = ExactReader::new(&file, meta.len());
        sha = HashingReader::new(&mut exact)
            .finish()
            .map_err(fail)?
            .sha256
            .into_bytes();
        padded = exact.padded;
        let after = file.metadata().map_err(fail)?;
        same = padded == 0
            && after.len() == meta.len()
            && after.modified().ok() == meta.modified().ok();
    } else if meta.is_symlink() {
        let link = std::fs::read_link(path).map_err(fail)?;
        target = link.as_os_str().as_bytes().to_vec();
    } else if !meta.is_dir() {
        return Ok(None);
    }
    Ok(Some(Stored {
        meta,
        target,
        sha,
        same,
        padded,
    }))
}

/// The index record of an entry stored at `rel`.
fn record(rel: &Path, s: &Stored) -> Record {
    let kind = if s.meta.is_dir() {
        'd'
    } else if s.meta.is_symlink() {
        'l'
    } else {
        'f'
    };
    Record {
        kind,
        mode: s.meta.mode() & 0o7777 & !0o6000,
        mtime: s.meta.mtime().max(0) as u64,
        size: if s.meta.is_file() { s.meta.len() } else { 0 },
        sha256: String::from_utf8_lossy(&s.sha).into_owned(),
        path: rel.to_path_buf(),
        target: s.target.clone(),
    }
}
