//! Byte-exact copies on disk: into a synced temp file, and atomic replacement of the file a
//! path names (through a symbolic link to its target).

use crate::atomic;
use crate::checksum::{Checksum, HashingReader, HashingWriter};
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, FileTimes, Metadata, Permissions};
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

pub(super) const COPY_BUF: usize = 1 << 20;

/// Copies tried of a file that changes while it is copied before giving up.
pub(super) const COPY_ATTEMPTS: u32 = 3;

/// Links followed at most, as the kernel does.
const MAX_LINKS: usize = 40;

/// Streams `src` into a synced temp file in `dir` that has `src`'s mtime and the permission
/// bits `mode`, or else, as `cp` gives a new file, `src`'s less the umask. The checksum is that
/// of the bytes written. A file that changes while it is copied is copied again, up to
/// [`COPY_ATTEMPTS`] times in all, then refused with [`Error::ChangedWhileCopied`].
pub(super) fn copy_to_temp(
    src: &Path,
    dir: &Path,
    mode: Option<u32>,
) -> Result<(NamedTempFile, Checksum)> {
    copy_to_temp_via(src, dir, mode, |file| Box::new(file))
}

/// [`copy_to_temp`], reading the open file through what `read` makes of it.
fn copy_to_temp_via(
    src: &Path,
    dir: &Path,
    mode: Option<u32>,
    read: impl for<'f> Fn(&'f File) -> Box<dyn Read + 'f>,
) -> Result<(NamedTempFile, Checksum)> {
    for _ in 0..COPY_ATTEMPTS {
        if let Some(copied) = copy_once(src, dir, mode, &read)? {
            return Ok(copied);
        }
    }
    Err(Error::ChangedWhileCopied {
        path: src.to_path_buf(),
        attempts: COPY_ATTEMPTS,
    })
}

/// One attempt of [`copy_to_temp`]: `None`, leaving no temp file, when `src` changed meanwhile.
fn copy_once(
    src: &Path,
    dir: &Path,
    mode: Option<u32>,
    read: &impl for<'f> Fn(&'f File) -> Box<dyn Read + 'f>,
) -> Result<Option<(NamedTempFile, Checksum)>> {
    let file = File::open(src).at("open", src)?;
    let meta = file.metadata().at("read", src)?;
    if !meta.is_file() {
        return Err(not_a_file("copy", src));
    }
    let tmp = atomic::temp_file_with_mode(dir, meta.permissions().mode())?;
    let checksum = copy_hashing(&mut read(&file), tmp.as_file()).at("copy", src)?;
    if changed(&meta, &file.metadata().at("read", src)?, checksum.len)
        || fs::metadata(src).map_or(true, |now| changed(&meta, &now, checksum.len))
    {
        return Ok(None);
    }
    let times = FileTimes::new()
        .set_accessed(meta.accessed().at("read", src)?)
        .set_modified(meta.modified().at("read", src)?);
    let out = tmp.as_file();
    if let Some(mode) = mode {
        out.set_permissions(Permissions::from_mode(mode & 0o777))
            .at("set permissions of", tmp.path())?;
    }
    out.set_times(times).at("set times of", tmp.path())?;
    out.sync_all().at("sync", tmp.path())?;
    Ok(Some((tmp, checksum)))
}

/// Streams `reader` into `out`, returning the checksum of exactly the bytes written.
fn copy_hashing(reader: &mut impl Read, out: impl Write) -> io::Result<Checksum> {
    let mut out = HashingWriter::new(BufWriter::with_capacity(COPY_BUF, out));
    io::copy(reader, &mut out)?;
    let (out, checksum) = out.finish();
    out.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok(checksum)
}

/// Whether the file `before` described is another file `after`, or was written to since, or
/// is not the `len` bytes long that were read of it.
fn changed(before: &Metadata, after: &Metadata, len: u64) -> bool {
    let stamp = |m: &Metadata| {
        let times = (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec());
        (m.dev(), m.ino(), m.size(), times)
    };
    stamp(before) != stamp(after) || after.size() != len
}

/// Replaces `target` atomically with a copy of `source`, checking that the bytes read from
/// `source` are `expected` and that those on disk hash the same. An existing `target` keeps its
/// permission bits.
pub(super) fn replace_from(source: &Path, target: &Path, expected: &Checksum) -> Result<Checksum> {
    let mode = fs::metadata(target).ok().map(|m| m.permissions().mode());
    let (tmp, copied) = copy_to_temp(source, atomic::parent_dir(target), mode)?;
    if copied != *expected {
        let detail = "it changed while it was restored".to_string();
        return Err(Error::DamagedCopy {
            path: source.to_path_buf(),
            detail,
        });
    }
    let written = hash_file(tmp.path())?;
    if written != copied {
        let detail = format!(
            "the new file reads back as SHA-256 {}, the copy has {}",
            written.sha256, copied.sha256
        );
        return Err(Error::io("restore", target, io::Error::other(detail)));
    }
    atomic::persist(tmp, target, true)?;
    Ok(written)
}

/// Size and SHA-256 of the file at `path`.
pub(super) fn hash_file(path: &Path) -> Result<Checksum> {
    let file = File::open(path).at("open", path)?;
    HashingReader::new(BufReader::with_capacity(COPY_BUF, file))
        .finish()
        .at("read", path)
}

/// Replaces `target` with `bytes` atomically, keeping its permission bits if it exists. A new
/// file gets the usual permissions for new files (0666 less the umask).
pub(super) fn write_keeping_mode(target: &Path, bytes: &[u8]) -> Result<()> {
    let old_mode = fs::metadata(target).ok().map(|m| m.permissions().mode());
    let dir = atomic::parent_dir(target);
    let mut tmp = atomic::temp_file_in(dir)?;
    tmp.write_all(bytes).at("write", tmp.path())?;
    // An existing file keeps its permission bits; a new one keeps those it was created with.
    if let Some(mode) = old_mode {
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode & 0o777))
            .at("set permissions of", tmp.path())?;
    }
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    atomic::persist(tmp, target, true)
}

/// The file a write to `path` must replace: `path` itself, or, when it is a symbolic link, the
/// file at the end of its links (which need not exist yet). Returns the target and whether
/// links were followed.
pub(super) fn write_target(path: &Path) -> Result<(PathBuf, bool)> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).at("read link", &current)?;
                current = atomic::parent_dir(&current).join(target);
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(Error::io("read", current, e)),
            _ => return Ok((current.clone(), current != path)),
        }
    }
    let looped = io::Error::other("too many levels of symbolic links");
    Err(Error::io("follow links of", path, looped))
}

pub(super) fn not_a_file(action: &'static str, path: &Path) -> Error {
    Error::io(action, path, io::Error::other("it is not a regular file"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::fs::OpenOptions;
    use std::os::unix::fs::{FileExt, symlink};
    use std::rc::Rc;

    #[test]
    fn links_are_followed_to_the_file_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        let link = dir.path().join("store.json");
        symlink("data/real.json", &link).unwrap();
        assert_eq!(write_target(&link).unwrap(), (data.join("real.json"), true));
        let plain = dir.path().join("plain.json");
        assert_eq!(write_target(&plain).unwrap(), (plain.clone(), false));
        let looped = dir.path().join("loop");
        symlink("loop", &looped).unwrap();
        assert!(write_target(&looped).is_err());
    }

    /// Reads a file and, the first `left` times it reaches the end, first runs `change` on
    /// it, as a program writing the file meanwhile would.
    struct ChangesAtEnd {
        file: File,
        left: Rc<Cell<u32>>,
        change: Rc<dyn Fn()>,
    }

    impl Read for ChangesAtEnd {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.file.read(buf)?;
            if n == 0 && self.left.get() > 0 {
                self.left.set(self.left.get() - 1);
                (self.change)();
            }
            Ok(n)
        }
    }

    /// Copies `src` into `dir`, running `change` the first `changes` times the copy reaches
    /// the end of the file.
    fn copy_changing(
        src: &Path,
        dir: &Path,
        changes: u32,
        change: impl Fn() + 'static,
    ) -> Result<(NamedTempFile, Checksum)> {
        let left = Rc::new(Cell::new(changes));
        let change: Rc<dyn Fn()> = Rc::new(change);
        copy_to_temp_via(src, dir, None, |file| {
            Box::new(ChangesAtEnd {
                file: file.try_clone().unwrap(),
                left: left.clone(),
                change: change.clone(),
            })
        })
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn a_file_that_grows_while_copied_is_copied_again_and_hashed_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("trades.csv");
        fs::write(&src, "1,aaaa\n2,aaaa\n").unwrap();
        let path = src.clone();
        let grow = move || append(&path, b"3,aaaa\n");
        let (tmp, checksum) = copy_changing(&src, dir.path(), 1, grow).unwrap();
        assert_eq!(hash_file(tmp.path()).unwrap(), checksum);
        assert_eq!(fs::read(tmp.path()).unwrap(), fs::read(&src).unwrap());
    }

    #[test]
    fn a_file_that_keeps_changing_while_copied_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("trades.csv");
        fs::write(&src, "1,aaaa\n").unwrap();
        let path = src.clone();
        let grow = move || append(&path, b"2,aaaa\n");
        let err = copy_changing(&src, dir.path(), COPY_ATTEMPTS, grow).unwrap_err();
        assert!(
            matches!(&err, Error::ChangedWhileCopied { path, attempts }
                if *path == src && *attempts == COPY_ATTEMPTS),
            "{err}"
        );
        assert!(err.is_data_problem());
        assert_eq!(crate::atomic::names_in(dir.path()), ["trades.csv"]);
    }

    #[test]
    fn a_same_size_rewrite_while_copied_is_caught_by_its_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("trades.csv");
        fs::write(&src, "1,aaaa\n").unwrap();
        let old = fs::metadata(&src).unwrap().modified().unwrap();
        let minutes = Cell::new(0);
        let path = src.clone();
        let rewrite = move || {
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.write_all_at(b"1,bbbb\n", 0).unwrap();
            minutes.set(minutes.get() + 1);
            let later = old + std::time::Duration::from_secs(60 * minutes.get());
            file.set_modified(later).unwrap();
        };
        let err = copy_changing(&src, dir.path(), COPY_ATTEMPTS, rewrite).unwrap_err();
        assert!(matches!(err, Error::ChangedWhileCopied { .. }), "{err}");
        assert_eq!(crate::atomic::names_in(dir.path()), ["trades.csv"]);
    }
}
