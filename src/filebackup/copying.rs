//! Byte-exact copies on disk: into a synced temp file, and atomic replacement of the file a
//! path names (through a symbolic link to its target).

use crate::atomic;
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File, FileTimes, Permissions};
use std::io::{self, BufReader, BufWriter, ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

pub(super) const COPY_BUF: usize = 1 << 20;

/// Links followed at most, as the kernel does.
const MAX_LINKS: usize = 40;

/// Streams `src` into a synced temp file in `dir` that has `src`'s mtime and the permission
/// bits `mode`, or else, as `cp` gives a new file, `src`'s less the umask.
pub(super) fn copy_to_temp(
    src: &Path,
    dir: &Path,
    mode: Option<u32>,
) -> Result<(NamedTempFile, Checksum)> {
    let file = File::open(src).at("open", src)?;
    let meta = file.metadata().at("read", src)?;
    if !meta.is_file() {
        return Err(not_a_file("copy", src));
    }
    let tmp = atomic::temp_file_with_mode(dir, meta.permissions().mode())?;
    let mut reader = HashingReader::new(file);
    let mut out = BufWriter::with_capacity(COPY_BUF, tmp.as_file());
    io::copy(&mut reader, &mut out).at("copy", src)?;
    out.flush().at("write", tmp.path())?;
    drop(out);
    let checksum = reader.finish().at("read", src)?;
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
    Ok((tmp, checksum))
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
    use std::os::unix::fs::symlink;

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
}
