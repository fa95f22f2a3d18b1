//! Reading and writing `.tar.gz` archives of one results folder.
//!
//! Writing streams: walk (sorted) -> tar -> parallel gzip -> SHA-256 -> the caller's writer, so
//! memory stays flat whatever the size of the results. Entries are stored under one top folder with
//! normalised owners, kept modes (without setuid/setgid) and mtimes; links are stored as links,
//! never followed. Reading entries back is [`crate::extract`]'s job. This module knows nothing
//! of the manifest.

use crate::checksum::{Checksum, HashingReader, HashingWriter};
use crate::error::{Error, Result};
use crate::pgzip::ParGzWriter;
use crate::progress::Progress;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Entries: folders, files and links, the top folder included.
    pub files: u64,
    /// Total bytes of file contents.
    pub bytes: u64,
}

/// An archive's entries by kind; shown as `13 entries (9 files, 3 folders, 1 link)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Regular files.
    pub files: u64,
    /// Folders, the top folder included.
    pub folders: u64,
    /// Symbolic links.
    pub links: u64,
}

impl Counts {
    /// All entries.
    pub fn entries(&self) -> u64 {
        self.files + self.folders + self.links
    }

    /// Counts one entry of kind `kind` (folder, file or link; other kinds are not archived).
    pub fn add(&mut self, kind: EntryKind) {
        match kind {
            EntryKind::Folder => self.folders += 1,
            EntryKind::Symlink => self.links += 1,
            EntryKind::File => self.files += 1,
            EntryKind::HardLink | EntryKind::Special | EntryKind::Other => {}
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = crate::error::count::<u64>;
        write!(
            f,
            "{} ({}, {}, {})",
            n(self.entries(), "entry", "entries"),
            n(self.files, "file", "files"),
            n(self.folders, "folder", "folders"),
            n(self.links, "link", "links")
        )
    }
}

mod kind;
mod segmented;
pub(crate) mod walk;

pub use kind::EntryKind;
pub(crate) use walk::{Walked, walk};

/// The result of writing an archive.
#[derive(Debug, Default)]
pub struct Written {
    /// Checksum and size of the compressed archive.
    pub checksum: Checksum,
    /// What went into it.
    pub stats: Stats,
    /// What went into it, by kind.
    pub counts: Counts,
    /// Special files (sockets, FIFOs, devices) that were left out.
    pub skipped: Vec<PathBuf>,
    /// The [`Digests`] of what went in.
    pub digests: Digests,
    /// Files whose size or mtime differed after they were read: the archive holds what was
    /// read, which may mix old and new content.
    pub changed: Vec<PathBuf>,
    /// Those of [`Written::changed`] that shrank while they were read, with the number of
    /// bytes that were missing: their entries are padded with zeros to the size first seen.
    pub shrank: Vec<(PathBuf, u64)>,
    /// Entries dated before 1970: stored with the date 1970-01-01 00:00 UTC.
    pub before_1970: Vec<PathBuf>,
    /// Copies of the files [`Options::copies`] names, as they went into the archive.
    pub copies: Vec<Copied>,
    /// Segments copied from an earlier archive, and their uncompressed bytes.
    pub reused: (u64, u64),
    /// What the copied segments hold.
    pub reused_stats: Stats,
    /// Where each segment lies, and whether it was copied.
    pub segments: Vec<crate::pgzip::Segment>,
    /// Why segments of the earlier archive could not be copied (damaged bytes).
    pub not_reused: Vec<String>,
}

/// A file whose content [`write()`] kept a copy of while archiving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Path relative to the source folder.
    pub rel: PathBuf,
    /// Its size in the archive.
    pub len: u64,
    /// Its bytes; `None` when it is larger than [`COPY_LIMIT`] or the copies so far already
    /// hold [`COPY_BUDGET`] bytes.
    pub bytes: Option<Vec<u8>>,
}

/// Files larger than this are not copied.
pub const COPY_LIMIT: u64 = 4 << 20;
/// At most this many bytes are copied in all, so memory stays bounded.
pub const COPY_BUDGET: u64 = 16 << 20;

/// How to write an archive.
#[derive(Debug, Clone)]
pub struct Options {
    /// gzip level, 0-9.
    pub level: u32,
    /// Compression threads; the archive bytes are the same for any count.
    pub threads: usize,
    /// Paths left out.
    pub excludes: Excludes,
    /// Counts the bytes of file content archived.
    pub progress: Progress,
    /// Regular files whose content is also kept in [`Written::copies`] (small files only).
    pub copies: Excludes,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            level: 6,
            threads: default_threads(),
            excludes: Excludes::default(),
            progress: Progress::hidden(),
            copies: Excludes::default(),
        }
    }
}

/// All cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Glob patterns for paths to leave out (or, with [`Excludes::covers`], to pick). A pattern without `/` matches the name of a file or
/// folder at any depth (`*.tmp`, `__pycache__`); one with `/` matches the path relative to the
/// strategy folder (`runs/*/plots`). An excluded folder is left out with everything in it.
/// Excludes made with [`Excludes::new`] (a backup's) also leave out the copies folders of
/// `resbak file`; the default (everything, as a safety copy holds it) leaves out nothing.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    names: globset::GlobSet,
    paths: globset::GlobSet,
    patterns: Vec<String>,
    copies_folders: bool,
}

impl Excludes {
    /// Compiles `patterns`.
    ///
    /// # Errors
    /// [`Error::InvalidGlob`] naming the first pattern that does not compile.
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let (mut names, mut paths) = (
            globset::GlobSetBuilder::new(),
            globset::GlobSetBuilder::new(),
        );
        for pattern in patterns {
            let glob = globset::GlobBuilder::new(pattern.trim_end_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| Error::InvalidGlob {
                    glob: pattern.clone(),
                    message: e.kind().to_string(),
                })?;
            if pattern.trim_end_matches('/').contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: globset::GlobSetBuilder| b.build().expect("globs compiled one by one");
        Ok(Excludes {
            names: build(names),
            paths: build(paths),
            patterns: patterns.to_vec(),
            copies_folders: true,
        })
    }

    /// The patterns, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `rel` or a folder above it matches: used as an include filter.
    pub fn covers(&self, rel: &Path) -> bool {
        rel.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| self.matches(a))
    }

    /// Whether `rel`, a path relative to the strategy folder, is left out.
    pub fn matches(&self, rel: &Path) -> bool {
        rel.file_name()
            .is_some_and(|name| self.names.is_match(name))
            || self.paths.is_match(rel)
    }
}

/// What a backup of a folder would hold.
#[derive(Debug, Default)]
pub struct Survey {
    /// Entries and bytes.
    pub stats: Stats,
    /// Entries by kind.
    pub counts: Counts,
    /// Paths relative to the folder, in archive order, with their sizes.
    pub paths: Vec<(PathBuf, u64)>,
}

/// Lists what [`write()`] would archive from `src`, without reading file contents.
pub fn survey(src: &Path, excludes: &Excludes) -> Result<Survey> {
    let mut survey = Survey::default();
    for item in walk(src, excludes) {
        let item = item?;
        if item.kind.archived() {
            let len = item.size();
            survey.stats.files += 1;
            survey.counts.add(item.kind);
            survey.stats.bytes += len;
            survey.paths.push((item.rel, len));
        }
    }
    Ok(survey)
}

/// Digests of a tree as it would be archived. The metadata digest covers paths, kinds, sizes,
/// modes, mtimes and link targets; the content digest covers all that plus every file's
/// SHA-256. Equal content digests mean an archive would hold the same thing.
#[derive(Default)]
pub struct TreeDigest {
    meta: sha2::Sha256,
    content: sha2::Sha256,
}

/// The two digests, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digests {
    /// Of the metadata.
    pub meta: String,
    /// Of the metadata and file contents.
    pub content: String,
}

impl TreeDigest {
    /// Adds one entry of an archived kind; `target` is a link's target, `sha` a file's
    /// SHA-256 (when known).
    pub(crate) fn add(&mut self, rel: &Path, stored: &Stored) {
        use sha2::Digest;
        use std::os::unix::ffi::OsStrExt;
        let Stored {
            kind,
            meta,
            target,
            sha,
            ..
        } = stored;
        let size = kind.content_size(meta.len());
        let kind = kind.letter();
        let mode = meta.mode() & 0o7777 & !0o6000;
        let mut record = format!("{kind} {mode:o} {} {size} ", meta.mtime().max(0)).into_bytes();
        record.extend_from_slice(target);
        record.push(b'\t');
        record.extend_from_slice(rel.as_os_str().as_bytes());
        record.push(b'\n');
        self.meta.update(&record);
        self.content.update(sha);
        self.content.update(&record);
    }

    pub(crate) fn finish(self) -> Digests {
        use sha2::Digest;
        Digests {
            meta: crate::checksum::hex(&self.meta.finalize()),
            content: crate::checksum::hex(&self.content.finalize()),
        }
    }
}

/// Opens `path` for reading if it is a regular file, without blocking or following a link: a
/// file swapped for a FIFO, a link or anything else since it was looked at gives `None`,
/// never a wait. The kind is checked on the open handle, which then reads as usual.
pub fn open_regular(path: &Path) -> io::Result<Option<File>> {
    use rustix::fs::OFlags;
    let file = match crate::atomic::open_no_follow(path, false) {
        Ok(file) => file,
        Err(_) if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(Some(file))
}

/// [`open_regular`] for a file that must be one, such as an archive: anything else is an
/// error naming `path`.
pub fn open_file(path: &Path) -> Result<File> {
    match open_regular(path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(Error::io(
            "open",
            path,
            io::Error::other("not a regular file"),
        )),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// The [`Digests`] of `src` as [`write()`] would archive it. Reads every file when
/// `with_content`; otherwise only metadata, and the content digest is meaningless.
pub fn digest(src: &Path, excludes: &Excludes, with_content: bool) -> Result<Digests> {
    use std::os::unix::ffi::OsStrExt;
    let mut digest = TreeDigest::default();
    for item in walk(src, excludes) {
        let Walked {
            path,
            rel,
            mut meta,
            kind,
        } = item?;
        let fail = |e: io::Error| Error::io("read", &path, e);
        let (mut target, mut sha) = (Vec::new(), Vec::new());
        match kind {
            EntryKind::Symlink => {
                let link = std::fs::read_link(&path).map_err(fail)?;
                target = link.as_os_str().as_bytes().to_vec();
            }
            EntryKind::File if with_content => {
                // Swapped for something else since the walk: skipped, as [`write`] skips it.
                let Some(file) = open_regular(&path).map_err(fail)? else {
                    continue;
                };
                (sha, meta) = hashed(&file, &file, meta).map_err(fail)?;
            }
            EntryKind::File | EntryKind::Folder => {}
            _ => continue,
        }
        let stored = Stored::new(kind, meta, target, sha);
        digest.add(&rel, &stored);
    }
    Ok(digest.finish())
}

/// The SHA-256 of what `reader` gives (the content of `file`, seen as `meta` before), and the
/// metadata to record with it: `file`'s after the read when its size or mtime changed meanwhile,
/// so that a digest never pairs what was read before a change with the metadata from before it
/// (and a folder written to while it is checked never passes for unchanged).
fn hashed(
    file: &File,
    reader: impl Read,
    meta: std::fs::Metadata,
) -> io::Result<(Vec<u8>, std::fs::Metadata)> {
    let sha = HashingReader::new(reader).finish()?.sha256.into_bytes();
    let after = file.metadata()?;
    let changed = after.len() != meta.len() || after.modified().ok() != meta.modified().ok();
    Ok((sha, if changed { after } else { meta }))
}

/// Writes `src` as a tar.gz whose single top folder is `top` into `out`, and its index (see
/// [`crate::index`]) into `index_out`; returns both writers. With `reuse`, segments whose
/// entries that archive holds unchanged are copied from it instead of compressed: the bytes are
/// the same either way.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be read or written.
pub fn write<W: Write, I: Write>(
    src: &Path,
    top: &str,
    out: W,
    index_out: I,
    opts: &Options,
    reuse: Option<&crate::reuse::Source>,
) -> Result<(W, I, Written)> {
    let fail = |e: io::Error| Error::io("finish archive of", src, e);
    // Copying segments leaves a core free for the archive's SHA-256; compressing does not.
    let out = match reuse.is_some() {
        true => HashingWriter::in_background(out),
        false => HashingWriter::new(out),
    };
    let gz = ParGzWriter::new(out, opts.level, opts.threads.max(1)).pieces(crate::index::PIECE);
    let gz = match reuse.is_some() {
        true => gz.few_compressed(),
        false => gz,
    };
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let index = crate::index::Writer::new(index_out, opts.level, top).map_err(fail)?;
    let mut seg = segmented::Segmenter::new(tar, index, top, opts, reuse);
    // The walk (and, when segments may be copied, the hashing of each file, on as many
    // threads as compression may use) runs a few segments ahead of the writer.
    std::thread::scope(|scope| {
        let (groups, received) = std::sync::mpsc::sync_channel(segmented::AHEAD);
        let look = (reuse.is_some(), reuse);
        scope.spawn(move || segmented::group(src, &opts.excludes, look, opts.threads, &groups));
        for group in received {
            seg.flush(group?)?;
        }
        Ok::<_, Error>(())
    })?;
    let (mut tar, index, mut written) = seg.finish();
    tar.get_mut().cut().map_err(fail)?;
    let gz = tar.into_inner().map_err(fail)?;
    let (out, segments) = gz.finish_segments().map_err(fail)?;
    let index_out = index.finish(&segments).map_err(fail)?;
    let (out, checksum) = out.finish();
    written.checksum = checksum;
    written.segments = segments;
    Ok((out, index_out, written))
}

/// One entry as stored.
pub(crate) struct Stored {
    /// What it is (an archived kind).
    pub(crate) kind: EntryKind,
    /// Its metadata as first seen; a file's entry has this size whatever was read.
    pub(crate) meta: std::fs::Metadata,
    /// A link's target, else empty.
    pub(crate) target: Vec<u8>,
    /// The SHA-256 of a file's entry content, padding included; else empty.
    pub(crate) sha: Vec<u8>,
    /// Whether the file was unchanged by the time it was read.
    pub(crate) same: bool,
    /// Zero bytes added because the file shrank while it was read.
    pub(crate) padded: u64,
}

impl Stored {
    /// An entry of kind `kind` read in full and unchanged.
    pub(crate) fn new(
        kind: EntryKind,
        meta: std::fs::Metadata,
        target: Vec<u8>,
        sha: Vec<u8>,
    ) -> Self {
        Stored {
            kind,
            meta,
            target,
            sha,
            same: true,
            padded: 0,
        }
    }
}

/// Appends one filesystem entry, or returns `None` for a special file that was skipped. A file
/// is opened without blocking or following a link, and its header comes from the open handle:
/// a file swapped for a FIFO or link since the walk saw it is skipped, never waited on. With
/// `copy`, a regular file of at most [`COPY_LIMIT`] bytes is also copied there as it is
/// stored; a larger one leaves `copy` empty.
pub(crate) fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    progress: &Progress,
    copy: &mut Option<Vec<u8>>,
) -> Result<Option<Stored>> {
    use std::os::unix::ffi::OsStrExt;
    let fail = |e: io::Error| Error::io("archive", path, e);
    let mut meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let kind = EntryKind::of_metadata(&meta);
    let mut file = None;
    if kind == EntryKind::File {
        // Replaced by a link, a FIFO or anything else meanwhile: skipped like any non-file.
        let Some(opened) = open_regular(path).map_err(fail)? else {
            return Ok(None);
        };
        meta = opened.metadata().map_err(fail)?;
        file = Some(opened);
    }
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777 & !0o6000);
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    let (mut target, mut sha, mut same, mut padded) = (Vec::new(), Vec::new(), true, 0);
    if kind == EntryKind::Folder {
        header.set_entry_type(EntryType::Directory);
        tar.append_data(&mut header, name, io::empty())
            .map_err(fail)?;
    } else if let Some(file) = file {
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        let mut exact = ExactReader::new(&file, meta.len());
        let copy = copy.as_mut().filter(|_| meta.len() <= COPY_LIMIT);
        let mut tee = Tee {
            inner: &mut exact,
            copy,
        };
        let mut hashing = HashingReader::new(progress.reader(&mut tee));
        tar.append_data(&mut header, name, &mut hashing)
            .map_err(fail)?;
        sha = hashing.finish().map_err(fail)?.sha256.into_bytes();
        padded = exact.padded;
        same = unchanged_while_read(&file, &meta, padded).map_err(fail)?;
    } else if kind == EntryKind::Symlink {
        header.set_entry_type(EntryType::Symlink);
        let link = std::fs::read_link(path).map_err(fail)?;
        tar.append_link(&mut header, name, &link).map_err(fail)?;
        target = link.as_os_str().as_bytes().to_vec();
    } else {
        debug_assert_eq!(kind, EntryKind::Special);
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

/// Whether the open `file`, first seen as `meta`, read in full (no `padded` zeros) and still has
/// the size and mtime it had: else it changed while it was read.
pub(crate) fn unchanged_while_read(
    file: &std::fs::File,
    meta: &std::fs::Metadata,
    padded: u64,
) -> io::Result<bool> {
    let after = file.metadata()?;
    Ok(padded == 0 && after.len() == meta.len() && after.modified().ok() == meta.modified().ok())
}

/// Passes reads through, keeping a copy of what was read when `copy` is set.
struct Tee<'a, R> {
    inner: R,
    copy: Option<&'a mut Vec<u8>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(copy) = self.copy.as_mut() {
            copy.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// Reads exactly `left` bytes, so the tar header's size always holds: bytes appended meanwhile
/// are not read, and if the file ends early (it shrank while it was read) the rest is zeros,
/// counted in `padded`, as GNU tar does.
pub(crate) struct ExactReader<R> {
    inner: R,
    left: u64,
    pub(crate) padded: u64,
}

impl<R> ExactReader<R> {
    pub(crate) fn new(inner: R, len: u64) -> ExactReader<R> {
        ExactReader {
            inner,
            left: len,
            padded: 0,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.padded {
            0 => self.inner.read(&mut buf[..max])?,
            _ => 0,
        };
        let n = match n {
            0 => {
                buf[..max].fill(0);
                self.padded += max as u64;
                max
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// What [`visit`] shows of one entry.
pub struct Visited<'a> {
    /// Path below the top folder (empty for the top folder itself).
    pub rel: &'a Path,
    /// What it is.
    pub kind: EntryKind,
    /// Size of a file's content.
    pub size: u64,
}

/// Calls `visit` with each entry of the tar.gz stream `reader` in archive order, with a reader
/// of its content, until `visit` returns `false`. Nothing is written anywhere.
pub fn visit(
    reader: impl Read,
    mut visit: impl FnMut(&Visited, &mut dyn Read) -> bool,
) -> io::Result<()> {
    let mut archive = crate::targuard::reader(MultiGzDecoder::new(reader));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let path = entry.path()?.into_owned();
        let rel: PathBuf = path.components().skip(1).collect();
        let kind = EntryKind::of_header(kind);
        let size = entry.header().size()?;
        if !visit(
            &Visited {
                rel: &rel,
                kind,
                size,
            },
            &mut entry,
        ) {
            break;
        }
    }
    Ok(())
}

/// The top folder name of a tar.gz stream: the first component of its first entry.
pub fn top_folder(reader: impl Read) -> io::Result<Option<String>> {
    let mut archive = crate::targuard::reader(MultiGzDecoder::new(reader));
    let mut entries = archive.entries()?;
    let first = loop {
        match entries.next() {
            None => return Ok(None),
            Some(entry) => {
                let entry = entry?;
                if !entry.header().entry_type().is_pax_global_extensions() {
                    break entry;
                }
            }
        }
    };
    let path = first.path()?.into_owned();
    Ok(path.components().find_map(|c| match c {
        std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::{File, HashingReader, hashed};
    use std::io::{self, Read};

    #[test]
    fn a_file_that_ends_early_is_padded_with_zeros_to_its_header_size() {
        let mut exact = super::ExactReader::new(&b"abc"[..], 8);
        let mut read = Vec::new();
        exact.read_to_end(&mut read).unwrap();
        assert_eq!(read, b"abc\0\0\0\0\0");
        assert_eq!(exact.padded, 5);
        let mut exact = super::ExactReader::new(&b"abcdef"[..], 4);
        let mut read = Vec::new();
        exact.read_to_end(&mut read).unwrap();
        assert_eq!((&read[..], exact.padded), (&b"abcd"[..], 0));
    }

    #[test]
    fn a_file_written_while_it_is_hashed_is_recorded_with_its_new_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("equity.csv");
        std::fs::write(&path, b"old content\n").unwrap();
        let file = File::open(&path).unwrap();
        let before = file.metadata().unwrap();
        let then = before.modified().unwrap();
        // Reads the old content, then the file is written (with a later mtime) behind it.
        let reader = std::io::Cursor::new(std::fs::read(&path).unwrap());
        let mut written_behind = Some(());
        let reader = Behind {
            inner: reader,
            on_end: || {
                if written_behind.take().is_some() {
                    std::fs::write(&path, b"new content\n").unwrap();
                    let later = then + std::time::Duration::from_secs(1);
                    File::options()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_modified(later)
                        .unwrap();
                }
            },
        };
        let (sha, meta) = hashed(&file, reader, before).unwrap();
        let old = HashingReader::new(&b"old content\n"[..]).finish().unwrap();
        assert_eq!(sha, old.sha256.into_bytes());
        assert_ne!(meta.modified().unwrap(), then);
        // An unchanged file keeps the metadata it was first seen with.
        let before = file.metadata().unwrap();
        let (_, meta) = hashed(&file, &file, before.clone()).unwrap();
        assert_eq!(meta.modified().unwrap(), before.modified().unwrap());
    }

    /// Passes reads through; calls `on_end` when `inner` is at its end.
    struct Behind<R, F> {
        inner: R,
        on_end: F,
    }

    impl<R: Read, F: FnMut()> Read for Behind<R, F> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            if n == 0 {
                (self.on_end)();
            }
            Ok(n)
        }
    }

    #[test]
    fn a_fifo_where_a_file_was_is_skipped_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        // Opened as append opens a file the walk saw as regular: at once, no writer needed.
        let (sender, opened) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(super::open_regular(&fifo).map(|f| f.is_none())));
        let skipped = opened
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("opening a FIFO hangs")
            .unwrap();
        assert!(skipped, "a FIFO opened as a regular file");
    }

    #[test]
    fn named_files_are_copied_as_stored_and_big_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        std::fs::create_dir_all(src.join("runs/a")).unwrap();
        std::fs::write(src.join("stats.json"), "{\"x\": 1}").unwrap();
        std::fs::write(src.join("runs/a/stats.json"), "{}").unwrap();
        std::fs::write(src.join("trades.csv"), "pnl\n").unwrap();
        let big = vec![b' '; super::COPY_LIMIT as usize + 1];
        std::fs::write(src.join("runs/big.json"), big).unwrap();
        let opts = super::Options {
            copies: super::Excludes::new(&["stats.json".into(), "big.json".into()]).unwrap(),
            ..super::Options::default()
        };
        let (_, _, written) = super::write(&src, "s", Vec::new(), Vec::new(), &opts, None).unwrap();
        let copies: Vec<(String, u64, Option<&[u8]>)> = written
            .copies
            .iter()
            .map(|c| (c.rel.display().to_string(), c.len, c.bytes.as_deref()))
            .collect();
        assert_eq!(
            copies,
            [
                ("runs/a/stats.json".into(), 2, Some(&b"{}"[..])),
                ("runs/big.json".into(), super::COPY_LIMIT + 1, None),
                ("stats.json".into(), 8, Some(&b"{\"x\": 1}"[..])),
            ]
        );
    }
}
