//! Reading and writing `.tar.gz` archives of one results folder.
//!
//! Writing streams: walk (sorted) -> tar -> gzip -> SHA-256 -> the caller's writer, so memory
//! stays flat whatever the size of the results. Entries are stored under one top folder with
//! normalised owners, kept modes (without setuid/setgid) and mtimes; links are stored as links,
//! never followed. Reading entries back is [`crate::extract`]'s job. This module knows nothing
//! of the manifest.

use crate::checksum::{Checksum, HashingWriter};
use crate::error::{Error, Result};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};
use walkdir::WalkDir;

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Entries: folders, files and links, the top folder included.
    pub files: u64,
    /// Total bytes of file contents.
    pub bytes: u64,
}

/// The result of writing an archive.
#[derive(Debug)]
pub struct Written {
    /// Checksum and size of the compressed archive.
    pub checksum: Checksum,
    /// What went into it.
    pub stats: Stats,
    /// Special files (sockets, FIFOs, devices) that were left out.
    pub skipped: Vec<PathBuf>,
}

/// How to compress.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// gzip level, 0-9.
    pub level: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { level: 6 }
    }
}

/// Writes `src` as a tar.gz whose single top folder is `top` into `out`, and returns `out`.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be read or written.
pub fn write<W: Write>(src: &Path, top: &str, out: W, opts: Options) -> Result<(W, Written)> {
    let gz = GzEncoder::new(HashingWriter::new(out), Compression::new(opts.level));
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut stats = Stats::default();
    let mut skipped = Vec::new();
    for item in WalkDir::new(src).follow_links(false).sort_by_file_name() {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            Error::io("read", path, e.into())
        })?;
        let name = Path::new(top).join(item.path().strip_prefix(src).unwrap_or(item.path()));
        match append(&mut tar, item.path(), &name)? {
            Some(len) => {
                stats.files += 1;
                stats.bytes += len;
            }
            None => skipped.push(item.path().to_path_buf()),
        }
    }
    let fail = |e: io::Error| Error::io("finish archive of", src, e);
    let gz = tar.into_inner().map_err(fail)?;
    let (out, checksum) = gz.finish().map_err(fail)?.finish();
    Ok((
        out,
        Written {
            checksum,
            stats,
            skipped,
        },
    ))
}

/// Appends one filesystem entry; returns its content length, or `None` if it was skipped.
fn append<W: Write>(tar: &mut tar::Builder<W>, path: &Path, name: &Path) -> Result<Option<u64>> {
    let fail = |e: io::Error| Error::io("archive", path, e);
    let meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let kind = meta.file_type();
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777 & !0o6000);
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    if kind.is_dir() {
        header.set_entry_type(EntryType::Directory);
        tar.append_data(&mut header, name, io::empty())
            .map_err(fail)?;
        Ok(Some(0))
    } else if kind.is_file() {
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        let file = File::open(path).map_err(fail)?;
        let exact = ExactReader {
            inner: file,
            left: meta.len(),
        };
        tar.append_data(&mut header, name, exact).map_err(fail)?;
        Ok(Some(meta.len()))
    } else if kind.is_symlink() {
        header.set_entry_type(EntryType::Symlink);
        let target = std::fs::read_link(path).map_err(fail)?;
        tar.append_link(&mut header, name, target).map_err(fail)?;
        Ok(Some(0))
    } else {
        debug_assert!(
            kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device()
        );
        Ok(None)
    }
}

/// Reads exactly `left` bytes: a file that shrinks while it is archived is an error, and bytes
/// appended meanwhile are not read, so the tar header's size always holds.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being backed up",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The top folder name of a tar.gz stream: the first component of its first entry.
pub fn top_folder(reader: impl Read) -> io::Result<Option<String>> {
    let mut archive = tar::Archive::new(MultiGzDecoder::new(reader));
    let Some(first) = archive.entries()?.next() else {
        return Ok(None);
    };
    let path = first?.path()?.into_owned();
    Ok(path.components().find_map(|c| match c {
        std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
        _ => None,
    }))
}
