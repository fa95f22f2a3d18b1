//! Writing an archive segment by segment: the entries of each segment are either appended to
//! the tar stream (and compressed), or, when an earlier archive holds a segment with the same
//! key, its compressed bytes are copied. Either way each entry is recorded in the index and
//! counted in what was written.

use super::{EntryKind, ExactReader, Stored, TreeDigest, Walked, Written, append, open_regular};
use crate::checksum::{HashingReader, HashingWriter};
use crate::error::{Error, Result};
use crate::index::{self, Record};
use crate::pgzip::ParGzWriter;
use crate::progress::Progress;
use crate::reuse::Source;
use crate::window::Window;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// The tar stream of an archive being written.
pub(super) type TarOut<W> = tar::Builder<ParGzWriter<HashingWriter<W>>>;

/// Segments the walk may run ahead of the writer.
pub(super) const AHEAD: usize = 4;

/// The entries of one segment: path and path below the top folder, and when segments may be
/// copied, what each would store (`None` for a special file) and the earlier archive's group
/// with the same key, if it has one.
pub(super) struct Group {
    entries: Vec<(PathBuf, PathBuf)>,
    looked: Option<Vec<Option<Stored>>>,
    found: Option<Found>,
}

/// A group of the earlier archive with the same key as the one being written: its segments,
/// and whether they are intact when the group is too long to be checked as it is copied (see
/// [`crate::reuse::SMALL`]), checked on the hashing threads rather than by the writer.
struct Found {
    pieces: Vec<crate::pgzip::Segment>,
    intact: Option<bool>,
}

/// Walks `src` and sends its entries to `groups` one segment at a time (see
/// [`index::starts_segment`]), in order, each entry looked at (its file hashed) when segments
/// may be copied from `source` (and a long group found there checked), on up to `workers`
/// threads. Stops at the first error, which it sends, or when the receiver has gone.
pub(super) fn group(
    src: &Path,
    excludes: &super::Excludes,
    (look, source): (bool, Option<&Source>),
    workers: usize,
    groups: &SyncSender<Result<Group>>,
) {
    if !look || workers < 2 {
        walk_groups(src, excludes, |entries| {
            let group = entries.and_then(|entries| make(entries, look, source));
            let failed = group.is_err();
            groups.send(group).is_ok() && !failed
        });
        return;
    }
    // The walk hands out segments by number; workers hash them; this thread puts them back in
    // order. Dropping a channel's far end stops each stage in turn. Every channel is bounded, so
    // hashing waits for a slow writer instead of queueing the tree's groups: this thread takes
    // finished groups whenever it is not handing one on, so the one it waits for always gets
    // through; and a worker starts a group only within the window past the one this thread
    // waits for, so the groups finished early stay few while a long file is hashed.
    let (jobs, queued) = std::sync::mpsc::sync_channel::<Job>(AHEAD);
    let queued = Arc::new(Mutex::new(queued));
    let (done, finished) = std::sync::mpsc::sync_channel::<(usize, Result<Group>)>(AHEAD);
    let window = Window::new(WINDOW);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queued, done, window) = (Arc::clone(&queued), done.clone(), &window);
            scope.spawn(move || {
                let _open = Opening {
                    window,
                    always: false,
                };
                while let Some((seq, entries)) = next_job(&queued) {
                    window.wait_for(seq);
                    let group = entries.and_then(|entries| make(entries, look, source));
                    if done.send((seq, group)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((queued, done));
        scope.spawn(move || {
            let mut seq = 0;
            walk_groups(src, excludes, |entries| {
                let failed = entries.is_err();
                seq += 1;
                jobs.send((seq - 1, entries)).is_ok() && !failed
            });
        });
        let _open = Opening {
            window: &window,
            always: true,
        };
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (seq, group) in finished {
            waiting.insert(seq, group);
            while let Some(group) = waiting.remove(&next) {
                next += 1;
                window.advance(next);
                let failed = group.is_err();
                if groups.send(group).is_err() || failed {
                    return;
                }
            }
        }
    });
}

/// Groups a hashing thread may start past the one the writer waits for.
const WINDOW: usize = 16;

/// Lets the workers waiting in the window go: `always` when the thread ordering their groups
/// ends, so that each finds it gone; when a worker panics, so that the others do not wait for a
/// group that never comes (the scope then passes the panic on).
struct Opening<'a> {
    window: &'a Window,
    always: bool,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if self.always || std::thread::panicking() {
            self.window.open();
        }
    }
}

/// A segment's entries (or the walk's error) and its number in the walk.
type Job = (usize, Result<Vec<(PathBuf, PathBuf)>>);

fn next_job(queued: &Mutex<Receiver<Job>>) -> Option<Job> {
    queued.lock().ok()?.recv().ok()
}

/// The group of `entries`, each looked at when `look`, with the group of `source` that has the
/// same key (see [`Found`]).
fn make(entries: Vec<(PathBuf, PathBuf)>, look: bool, source: Option<&Source>) -> Result<Group> {
    let looked = match look {
        true => Some(
            (entries.iter())
                .map(|(path, _)| self::look(path))
                .collect::<Result<Vec<_>>>()?,
        ),
        false => None,
    };
    let found = match (&looked, source) {
        (Some(looked), Some(source)) => find(&entries, looked, source)?,
        _ => None,
    };
    Ok(Group {
        entries,
        looked,
        found,
    })
}

/// The group of `source` whose key is that of `entries` as `looked` at, if any, checked when
/// it is long.
fn find(
    entries: &[(PathBuf, PathBuf)],
    looked: &[Option<Stored>],
    source: &Source,
) -> Result<Option<Found>> {
    let records: Vec<Record> = (entries.iter().zip(looked))
        .filter_map(|((_, rel), s)| Some(record(rel, s.as_ref()?)))
        .collect();
    if records.is_empty() {
        return Ok(None);
    }
    let Some(pieces) = source.find(&index::key_of(&records)) else {
        return Ok(None);
    };
    let intact = match pieces.iter().map(|s| s.zlen).sum::<u64>() > crate::reuse::SMALL {
        true => {
            let read = |e: io::Error| Error::io("read", source.path(), e);
            Some(source.all_intact(&pieces).map_err(read)?)
        }
        false => None,
    };
    Ok(Some(Found { pieces, intact }))
}

/// Walks `src` and gives `emit` the entries of one segment at a time, or the walk's error;
/// stops when `emit` says so or after an error.
fn walk_groups(
    src: &Path,
    excludes: &super::Excludes,
    mut emit: impl FnMut(Result<Vec<(PathBuf, PathBuf)>>) -> bool,
) {
    let mut entries = Vec::new();
    let mut after_big = false;
    for item in super::walk(src, excludes) {
        let walked = match item {
            Ok(walked) => walked,
            Err(e) => {
                emit(Err(e));
                return;
            }
        };
        let size = walked.size();
        let Walked { path, rel, .. } = walked;
        if index::starts_segment(&rel, size, after_big)
            && !entries.is_empty()
            && !emit(Ok(std::mem::take(&mut entries)))
        {
            return;
        }
        after_big = size >= index::BIG_FILE;
        entries.push((path, rel));
    }
    if !entries.is_empty() {
        emit(Ok(entries));
    }
}

/// Collects the entries of one segment at a time and writes or copies them.
pub(super) struct Segmenter<'a, W: Write, I: Write> {
    tar: TarOut<W>,
    index: index::Writer<I>,
    top: &'a str,
    progress: &'a Progress,
    /// Files whose content is also kept in [`Written::copies`], and the bytes kept so far.
    copies: &'a super::Excludes,
    copied: u64,
    reuse: Option<&'a Source>,
    written: Written,
    digest: TreeDigest,
}

impl<'a, W: Write, I: Write> Segmenter<'a, W, I> {
    pub(super) fn new(
        tar: TarOut<W>,
        index: index::Writer<I>,
        top: &'a str,
        opts: &'a super::Options,
        reuse: Option<&'a Source>,
    ) -> Self {
        Segmenter {
            tar,
            index,
            top,
            progress: &opts.progress,
            copies: &opts.copies,
            copied: 0,
            reuse,
            written: Written::default(),
            digest: TreeDigest::default(),
        }
    }

    /// Writes or copies one segment.
    pub(super) fn flush(&mut self, group: Group) -> Result<()> {
        let Group {
            entries,
            looked,
            found,
        } = group;
        if let (Some(looked), Some(found)) = (looked, found)
            && self.copy(&entries, looked, found)?
        {
            return Ok(());
        }
        let fail = |e: io::Error| Error::io("write", Path::new(self.top), e);
        self.tar.get_mut().cut().map_err(fail)?;
        let before = self.tar.get_ref().segments_started();
        for (path, rel) in entries {
            let name = Path::new(self.top).join(&rel);
            let mut copy = self.copies.matches(&rel).then(Vec::new);
            match append(&mut self.tar, &path, &name, self.progress, &mut copy)? {
                Some(stored) => {
                    self.keep_copy(&rel, &stored, copy);
                    self.tally(path, &rel, &stored)?;
                }
                None => self.written.skipped.push(path),
            }
        }
        // Ended here, so that the pieces it was cut into are counted.
        self.tar.get_mut().cut().map_err(fail)?;
        let pieces = self.tar.get_ref().segments_started() - before;
        self.index.end_segment(pieces);
        Ok(())
    }

    /// The tar stream, the index and what went in, once every segment is flushed.
    pub(super) fn finish(mut self) -> (TarOut<W>, index::Writer<I>, Written) {
        self.written.digests = self.digest.finish();
        (self.tar, self.index, self.written)
    }

    /// Copies the segments `found` in the earlier archive for the group if they are intact;
    /// `false` when the group must be compressed.
    fn copy(
        &mut self,
        group: &[(PathBuf, PathBuf)],
        looked: Vec<Option<Stored>>,
        Found { pieces, intact }: Found,
    ) -> Result<bool> {
        let (mut stored, mut skipped) = (Vec::with_capacity(group.len()), Vec::new());
        for ((path, rel), look) in group.iter().zip(looked) {
            match look {
                Some(s) => stored.push((path, rel, s)),
                None => skipped.push(path.clone()),
            }
        }
        let Some(source) = self.reuse else {
            return Ok(false);
        };
        let source_path = source.path().to_path_buf();
        let read = |e: io::Error| Error::io("read", &source_path, e);
        let gz = self.tar.get_mut();
        let zlen: u64 = pieces.iter().map(|s| s.zlen).sum();
        // Every piece is checked before the first is copied: a copy cannot be taken back.
        let copied = if zlen <= crate::reuse::SMALL {
            let mut checked = Vec::with_capacity(pieces.len());
            for piece in &pieces {
                checked.push(source.read_checked(piece).map_err(read)?);
            }
            checked.into_iter().collect::<Option<Vec<_>>>().map(|all| {
                all.iter().zip(&pieces).try_for_each(|(bytes, s)| {
                    gz.copy_segment(&mut &bytes[..], s.zlen, s.crc, s.ulen)
                })
            })
        } else if match intact {
            Some(intact) => intact,
            None => source.all_intact(&pieces).map_err(read)?,
        } {
            Some(pieces.iter().try_for_each(|s| {
                let copy =
                    |r: &mut crate::reuse::Checked| gz.copy_segment(r, s.zlen, s.crc, s.ulen);
                match source.copy_checked(s, copy)? {
                    true => Ok(()),
                    // Already partly copied: the backup fails, leaving nothing behind.
                    false => Err(io::Error::other(format!(
                        "the segment at byte {} changed while it was copied",
                        s.zoff
                    ))),
                }
            }))
        } else {
            None
        };
        let Some(copied) = copied else {
            self.written.not_reused.push(format!(
                "{}: the segment at byte {} is damaged; compressed again",
                source_path.display(),
                pieces[0].zoff
            ));
            return Ok(false);
        };
        copied.map_err(|e| Error::io("copy a segment from", &source_path, e))?;
        self.written.reused.0 += pieces.len() as u64;
        self.written.reused.1 += pieces.iter().map(|s| s.ulen).sum::<u64>();
        for (path, rel, s) in stored {
            let bytes = s.kind.content_size(s.meta.len());
            self.progress.inc(bytes);
            self.written.reused_stats.files += 1;
            self.written.reused_stats.bytes += bytes;
            if self.copies.matches(rel) {
                self.keep_copy(rel, &s, Some(read_copy(path, &s)));
            }
            self.tally(path.clone(), rel, &s)?;
        }
        self.written.skipped.extend(skipped);
        self.index.end_segment(pieces.len() as u64);
        Ok(true)
    }

    /// Keeps `copy`, the content of a file [`Segmenter::copies`] names, within the budget.
    fn keep_copy(&mut self, rel: &Path, s: &Stored, copy: Option<Vec<u8>>) {
        let (Some(bytes), EntryKind::File) = (copy, s.kind) else {
            return;
        };
        self.copied += bytes.len() as u64;
        let kept = self.copied <= super::COPY_BUDGET && bytes.len() as u64 == s.meta.len();
        self.written.copies.push(super::Copied {
            rel: rel.to_path_buf(),
            len: s.meta.len(),
            bytes: kept.then_some(bytes),
        });
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
        if s.meta.mtime() < 0 {
            w.before_1970.push(path.clone());
        }
        w.stats.files += 1;
        w.counts.add(s.kind);
        w.stats.bytes += s.kind.content_size(s.meta.len());
        self.digest.add(rel, s);
        let fail = |e: io::Error| Error::io("write the index of", &path, e);
        self.index.entry(&record(rel, s)).map_err(fail)
    }
}

/// The content of a file in a copied segment, read again for [`Written::copies`]: its bytes
/// when it is small and still what was hashed, else nothing (the copy then counts as not kept).
fn read_copy(path: &Path, s: &Stored) -> Vec<u8> {
    if s.meta.len() > super::COPY_LIMIT {
        return Vec::new();
    }
    let Ok(Some(file)) = open_regular(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    let read = io::Read::read_to_end(
        &mut io::Read::take(&file, super::COPY_LIMIT + 1),
        &mut bytes,
    );
    let same = read.is_ok()
        && HashingReader::new(&bytes[..])
            .finish()
            .is_ok_and(|sum| sum.sha256.as_bytes() == s.sha.as_slice());
    if same { bytes } else { Vec::new() }
}

/// What [`append`] would store for `path`, reading a file's content for its SHA-256 but
/// writing nothing; `None` for a special file.
fn look(path: &Path) -> Result<Option<Stored>> {
    let fail = |e: io::Error| Error::io("archive", path, e);
    let mut meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let kind = EntryKind::of_metadata(&meta);
    let (mut target, mut sha, mut same, mut padded) = (Vec::new(), Vec::new(), true, 0);
    if kind == EntryKind::File {
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
        same = super::unchanged_while_read(&file, &meta, padded).map_err(fail)?;
    } else if kind == EntryKind::Symlink {
        let link = std::fs::read_link(path).map_err(fail)?;
        target = link.as_os_str().as_bytes().to_vec();
    } else if kind != EntryKind::Folder {
        return Ok(None);
    }
    Ok(Some(Stored {
        kind,
        meta,
        target,
        sha,
        same,
        padded,
    }))
}

/// The index record of an entry stored at `rel`.
fn record(rel: &Path, s: &Stored) -> Record {
    Record {
        kind: s.kind,
        mode: s.meta.mode() & 0o7777 & !0o6000,
        mtime: s.meta.mtime().max(0) as u64,
        size: s.kind.content_size(s.meta.len()),
        sha256: String::from_utf8_lossy(&s.sha).into_owned(),
        path: rel.to_path_buf(),
        target: s.target.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups `group` sends for `src`: each segment's paths and its files' SHA-256.
    fn groups_of(src: &Path, workers: usize) -> Vec<Vec<(PathBuf, Vec<u8>)>> {
        let excludes = super::super::Excludes::default();
        let (sender, received) = std::sync::mpsc::sync_channel(AHEAD);
        std::thread::scope(|scope| {
            scope.spawn(move || group(src, &excludes, (true, None), workers, &sender));
            let mut all = Vec::new();
            for group in received {
                let Group {
                    entries, looked, ..
                } = group.unwrap();
                let looked = looked.unwrap();
                let shas = looked
                    .into_iter()
                    .map(|s| s.map(|s| s.sha).unwrap_or_default());
                all.push(entries.into_iter().map(|(_, rel)| rel).zip(shas).collect());
            }
            all
        })
    }

    #[test]
    fn hashing_on_several_threads_sends_the_groups_of_one_thread_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        for run in 0..12 {
            let folder = src.join(format!("runs/r{run:02}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("small.csv"), format!("run {run}\n")).unwrap();
            let big = vec![run as u8; (index::BIG_FILE as usize) + run * 4096];
            std::fs::write(folder.join("big.bin"), big).unwrap();
        }
        let one = groups_of(&src, 1);
        assert!(one.len() > 24, "{} groups", one.len());
        assert_eq!(groups_of(&src, 2), one);
        assert_eq!(groups_of(&src, 4), one);
    }
}
