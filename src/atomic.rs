//! Atomic file replacement: write a temp file in the target's folder, fsync it, rename it over
//! the target, fsync the folder. Readers see the old file or the new one, never a mix.

use crate::error::{Error, IoContext, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

/// Prefix of every temp file resbak creates, so leftovers of a crash can be recognised.
pub const TEMP_PREFIX: &str = ".resbak-tmp-";

/// Creates a temp file in `dir` whose name marks it as resbak's; it is removed on drop
/// unless persisted.
pub fn temp_file_in(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .at("create a temporary file in", dir)
}

/// Replaces `path` with what `fill` writes, atomically and durably.
pub fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    let tmp = temp_file_in(dir)?;
    let mut out = BufWriter::new(tmp);
    fill(&mut out)?;
    let tmp = out
        .into_inner()
        .map_err(|e| Error::io("write", path, e.into_error()))?;
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    persist(tmp, path, true)
}

/// Renames a finished, synced temp file to `path` and syncs the folder. With `overwrite`
/// false, an existing `path` is an error of kind `AlreadyExists` and the temp file is removed.
pub fn persist(tmp: NamedTempFile, path: &Path, overwrite: bool) -> Result<()> {
    let result = if overwrite {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    result.map_err(|e| Error::io("rename into place", path, e.error))?;
    sync_dir(parent_dir(path))
}

/// Renames a finished, synced temp file to the first of `names` that is free and syncs its
/// folder. No existing file is ever replaced, not even one another process creates meanwhile.
pub fn persist_first_free(
    mut tmp: NamedTempFile,
    names: impl IntoIterator<Item = std::path::PathBuf>,
) -> Result<std::path::PathBuf> {
    use std::io::ErrorKind::AlreadyExists;
    for path in names {
        match tmp.persist_noclobber(&path) {
            Ok(_) => return sync_dir(parent_dir(&path)).map(|()| path),
            Err(e) if e.error.kind() == AlreadyExists => tmp = e.file,
            Err(e) => return Err(Error::io("rename into place", path, e.error)),
        }
    }
    let taken = std::io::Error::new(AlreadyExists, "every name offered is taken");
    Err(Error::io("rename into place", tmp.path(), taken))
}

/// Makes a folder's entries (renames, new files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("sync folder", dir)
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        write_file(&path, |w| w.write_all(b"new").at("write", &path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_file(&path, |w| {
            w.write_all(b"half").at("write", &path)?;
            Err(Error::EmptyResults { path: path.clone() })
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn persist_without_overwrite_refuses_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, "first").unwrap();
        let tmp = temp_file_in(dir.path()).unwrap();
        assert!(persist(tmp, &path, false).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
    }
}
