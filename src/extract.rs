//! Safe extraction of a tar.gz archive into a fresh, empty folder.
//!
//! The policy is strict (on paths and links stricter than Python's `tarfile` "data" filter,
//! PEP 706; the README's "Safety" section compares the two):
//! every entry must lie under the expected top folder; absolute paths and `..` components are
//! refused; nothing is written through a link stored earlier in the archive; symlink targets must be
//! relative, may use `..` only as leading components and must stay inside the top folder; hard
//! links may only point to a regular file extracted earlier; device files, FIFOs and other special
//! entries are refused; a path stored twice, below an earlier non-folder, or as a non-folder
//! where earlier entries lie below it is refused; setuid, setgid and sticky bits are dropped.
//! The first violation stops extraction with an error naming the entry; the caller throws the
//! partly filled folder away.

mod matching;
mod partial;
mod unpack;

pub use matching::{Matching, Unmatched};

use crate::archive::{EntryKind, Excludes, Stats};
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, Result};
use crate::progress::Progress;
use flate2::read::MultiGzDecoder;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use unpack::{inside_top, unpack_all};

pub use partial::{SegmentsRead, extract_partial, select_indexed};
pub(crate) use unpack::symlink_stays_inside;

const COPY_BUF: usize = 128 * 1024;

/// Extracts the tar.gz stream `reader` (the file `archive`, for messages) into the empty folder
/// `root`, requiring every entry to lie under `root/<top>`. Returns what was extracted.
///
/// # Errors
/// [`Error::UnsafeEntry`] for an entry the policy refuses, [`Error::Corrupt`] when the archive
/// cannot be decoded or holds no entries, [`Error::Io`] when writing fails (for example a full
/// disk).
pub fn extract(
    reader: impl Read + Send,
    archive: &Path,
    root: &Path,
    top: &str,
) -> Result<Extracted> {
    run(reader, archive, Some(root), top, None)
}

/// Like [`extract`], but creates only the entries `include` covers (see [`Excludes::covers`]),
/// plus the folders above them. Every entry is still read and checked. `selection`, from
/// [`select`], says which files not included a hard link that is included needs: such a link
/// is created as a regular file with the same bytes.
pub fn extract_some(
    reader: impl Read + Send,
    archive: &Path,
    root: &Path,
    top: &str,
    include: &Excludes,
    selection: &Selection,
) -> Result<Extracted> {
    run(reader, archive, Some(root), top, Some((include, selection)))
}

/// [`extract`] or [`extract_some`] (with `include`) of an archive cut into `segments` (from
/// its checked index): the segments are inflated on all cores, each checked against its CRC32,
/// and the gzip frame around them checked (see [`crate::inflate::check_frame`]). The caller
/// checks the archive's SHA-256.
///
/// # Errors
/// As [`extract`].
pub fn extract_segments(
    archive: &Path,
    segments: Vec<crate::pgzip::Segment>,
    root: &Path,
    top: &str,
    include: Option<(&Excludes, &Selection)>,
) -> Result<Extracted> {
    let frame = segments.clone();
    unpack_segments(archive, &frame, segments, root, top, include)
}

/// Checks the gzip frame around all the archive's segments `frame`, then inflates those in
/// `read` on all cores and unpacks them below `root`.
fn unpack_segments(
    archive: &Path,
    frame: &[crate::pgzip::Segment],
    read: Vec<crate::pgzip::Segment>,
    root: &Path,
    top: &str,
    include: Option<(&Excludes, &Selection)>,
) -> Result<Extracted> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let file = crate::archive::open_file(archive)?;
    crate::inflate::check_frame(&file, frame).map_err(corrupt)?;
    let threads = crate::archive::default_threads();
    let tar_stream = crate::inflate::Parallel::new(&file, read, threads).map_err(corrupt)?;
    unpack_all(tar_stream, archive, Some(root), top, include)
}

/// What an `--include` restore will create, read from the archive's headers alone.
#[derive(Debug, Default)]
pub struct Selection {
    /// The entries included, as paths below the top folder (the top folder itself is the empty
    /// path), with whether each is a folder and its size.
    pub entries: Vec<(PathBuf, bool, u64)>,
    /// The patterns that cover no entry.
    pub unmatched: Vec<Unmatched>,
    /// Files not included that an included hard link points to, each with the first such link
    /// (paths below the extraction root): the file's bytes are written there.
    link_sources: std::collections::HashMap<PathBuf, PathBuf>,
    /// From an intact index: the segments to read and the files to check (see
    /// [`select_indexed`]).
    partial: Option<partial::Partial>,
}

impl Selection {
    /// With a selection from an intact index (see [`select_indexed`]), how many segments
    /// [`extract_partial`] reads, of how many.
    pub fn segments_read(&self) -> Option<SegmentsRead> {
        self.partial.as_ref().map(partial::Partial::segments_read)
    }
}

/// Reads the headers of the tar.gz stream `reader` (the file `archive`, for messages) and says
/// what [`extract_some`] with `include` would create. Entries that break the policy are left
/// for the extraction to refuse.
///
/// # Errors
/// [`Error::Corrupt`] when the archive cannot be decoded.
pub fn select(
    reader: impl Read,
    archive: &Path,
    top: &str,
    include: &Excludes,
) -> Result<Selection> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let mut matching = Matching::new(include, top)?;
    let mut selection = Selection::default();
    let mut tar = crate::targuard::reader(MultiGzDecoder::new(reader));
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let Ok(rel) = inside_top(&entry.path().map_err(corrupt)?, top) else {
            continue;
        };
        let below: PathBuf = rel.components().skip(1).collect();
        if !matching.includes(&below) {
            continue;
        }
        let header = entry.header();
        let kind = EntryKind::of_header(header.entry_type());
        if kind == EntryKind::HardLink
            && let Ok(Some(target)) = entry.link_name()
            && let Ok(target) = inside_top(&target, top)
        {
            let target_below: PathBuf = target.components().skip(1).collect();
            if !include.covers(&target_below) {
                selection.link_sources.entry(target).or_insert(rel.clone());
            }
        }
        let size = header.size().map_err(corrupt)?;
        let dir = kind == EntryKind::Folder;
        selection
            .entries
            .push((below, dir, if dir { 0 } else { size }));
    }
    selection.unmatched = matching.unmatched();
    Ok(selection)
}

/// What an extraction read and what it created.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// The whole archive.
    pub stats: Stats,
    /// The entries created.
    pub written: Stats,
    /// The entries created, by kind.
    pub counts: crate::archive::Counts,
    /// With `--include`, the size and SHA-256 of each file written, by its path below the
    /// extraction root, hashed as it was written; empty otherwise.
    pub sums: std::collections::HashMap<PathBuf, crate::checksum::Checksum>,
}

/// Reads the whole archive as [`extract`] would, applying the same policy, but writes nothing.
///
/// # Errors
/// As [`extract`], without the write errors.
pub fn check(reader: impl Read + Send, archive: &Path, top: &str) -> Result<Stats> {
    Ok(run(reader, archive, None, top, None)?.stats)
}

/// Like [`check`], for a tar stream (already decompressed) that need not be a whole archive:
/// entries in a row, as in the segments of one (see [`crate::inflate`]). No entry is no error.
///
/// # Errors
/// As [`check`].
pub fn check_tar(tar_stream: impl Read, archive: &Path, top: &str) -> Result<Stats> {
    match unpack_all(tar_stream, archive, None, top, None) {
        Err(Error::Corrupt { detail, .. }) if detail == EMPTY => Ok(Stats::default()),
        other => Ok(other?.stats),
    }
}

/// Why an archive without entries is corrupt.
pub(crate) const EMPTY: &str = "the archive is empty";

/// The result of reading an archive file end to end.
#[derive(Debug)]
pub struct Scan {
    /// Checksum and size of the archive file.
    pub checksum: Checksum,
    /// What it holds, when its entries were read (`deep`).
    pub stats: Option<Stats>,
}

/// Reads the archive at `path` once: always hashes it; with `deep = Some(top)`, also checks
/// every entry against the restore policy in the same pass and counts them.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Corrupt`] or [`Error::UnsafeEntry`] if
/// reading, decoding or the policy fails.
pub fn scan(path: &Path, deep: Option<&str>, progress: &Progress) -> Result<Scan> {
    let file = crate::archive::open_file(path)?;
    scan_reader(file, path, deep, progress)
}

/// [`scan`] of what `reader` returns (the archive `path`, for messages).
pub fn scan_reader(
    reader: impl Read + Send,
    path: &Path,
    deep: Option<&str>,
    progress: &Progress,
) -> Result<Scan> {
    let reader = progress.reader(reader);
    let (checksum, stats) = match deep {
        Some(top) => {
            let mut hashing = HashingReader::new(BufReader::with_capacity(COPY_BUF, reader));
            let stats = check(&mut hashing, path, top)?;
            (hashing.finish(), Some(stats))
        }
        // Only hashing: its own large reads need no buffer in between.
        None => (HashingReader::new(reader).finish(), None),
    };
    let checksum = checksum.map_err(|e| Error::corrupt(path, e))?;
    Ok(Scan { checksum, stats })
}

/// [`scan`] with `deep`, for an archive cut into `segments` (from its checked index): the
/// segments are inflated on all cores, each checked against its CRC32, the gzip frame around
/// them checked (see [`crate::inflate::check_frame`]), and the file hashed at the same time.
///
/// # Errors
/// As [`scan`].
pub fn scan_segments(
    path: &Path,
    top: &str,
    segments: Vec<crate::pgzip::Segment>,
    progress: &Progress,
) -> Result<Scan> {
    let corrupt = |e: io::Error| Error::corrupt(path, e);
    let file = crate::archive::open_file(path)?;
    crate::inflate::check_frame(&file, &segments).map_err(corrupt)?;
    std::thread::scope(|scope| {
        let whole = scope.spawn(|| scan(path, None, progress));
        let threads = crate::archive::default_threads();
        let stats = crate::inflate::Parallel::new(&file, segments, threads)
            .map_err(corrupt)
            .and_then(|tar_stream| check_tar(tar_stream, path, top));
        let checksum = whole
            .join()
            .unwrap_or_else(|_| Err(corrupt(io::Error::other("hashing stopped unexpectedly"))))?
            .checksum;
        Ok(Scan {
            checksum,
            stats: Some(stats?),
        })
    })
}

/// Files to create: everything, or those included (and the bytes hard links need).
type Pick<'a> = Option<(&'a Excludes, &'a Selection)>;

fn run(
    reader: impl Read + Send,
    archive: &Path,
    root: Option<&Path>,
    top: &str,
    include: Pick,
) -> Result<Extracted> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    if root.is_none() {
        // Only checking: the decompression is most of the work, so one thread does it all.
        return unpack_all(MultiGzDecoder::new(reader), archive, root, top, include);
    }
    // Extracting: decompression runs on its own thread, a few blocks ahead of the entries
    // being checked and written here.
    std::thread::scope(|scope| {
        let (blocks, tar_stream) = std::sync::mpsc::sync_channel(INFLATE_AHEAD);
        let inflater = scope.spawn(move || inflate(reader, &blocks));
        let unpacked = unpack_all(ChannelReader::new(tar_stream), archive, root, top, include);
        match inflater.join() {
            Ok(()) => unpacked,
            Err(_) => Err(corrupt(io::Error::other(
                "decompression stopped unexpectedly",
            ))),
        }
    })
}

/// Blocks of decompressed data that may wait between the two threads of [`run`].
const INFLATE_AHEAD: usize = 4;

/// Decompresses `reader` into blocks sent on `blocks`, ending with the first error. Stops when
/// the receiving side has gone.
fn inflate(reader: impl Read, blocks: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>) {
    let mut decoder = MultiGzDecoder::new(reader);
    loop {
        let mut block = vec![0; COPY_BUF];
        let sent = match decoder.read(&mut block) {
            Ok(0) => return,
            Ok(n) => {
                block.truncate(n);
                blocks.send(Ok(block))
            }
            Err(e) => {
                let _ = blocks.send(Err(e));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Reads the blocks [`inflate`] sends as one stream; the end of the channel is the end.
struct ChannelReader {
    blocks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    fn new(blocks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        ChannelReader {
            blocks,
            block: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            match self.blocks.recv() {
                Ok(block) => {
                    self.block = block?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
