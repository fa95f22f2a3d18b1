//! Atomic file replacement: write a temp file in the target's folder, fsync it, rename it over
//! the target, fsync the folder. Readers see the old file or the new one, never a mix.

use crate::error::{Error, IoContext, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

/// Prefix of every temp file resbak creates, so leftovers of a crash can be recognised.
pub const TEMP_PREFIX: &str = ".resbak-tmp-";

/// Prefix of the folders a restore extracts into.
pub const STAGING_PREFIX: &str = ".resbak-restore-";

/// Prefix of a temp file or folder in the moment before it is locked and renamed to its
/// [`TEMP_PREFIX`] or [`STAGING_PREFIX`] name; [`remove_stale`] never looks at these.
const NEW_PREFIX: &str = ".resbak-new-";

/// Creates a temp file in `dir` whose name marks it as resbak's; it is removed on drop unless
/// persisted. It carries its [`TEMP_PREFIX`] name only once it is locked, and stays locked
/// while open, so [`remove_stale`] can tell a live one from the leftover of a killed process.
pub fn temp_file_in(dir: &Path) -> Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    // 0666 less the umask, as tar and cp create files, so others may read what is kept.
    let new = tempfile::Builder::new()
        .prefix(NEW_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .at("create a temporary file in", dir)?;
    new.as_file().lock().at("lock", new.path())?;
    let target = renamed(new.path(), TEMP_PREFIX);
    let (file, path) = new.into_parts();
    path.persist_noclobber(&target)
        .map_err(|e| Error::io("create a temporary file in", dir, e.error))?;
    let path = tempfile::TempPath::try_from_path(&target).at("create a temporary file in", dir)?;
    Ok(NamedTempFile::from_parts(file, path))
}

/// A locked staging folder, removed with everything in it on drop.
#[derive(Debug)]
pub struct Staging {
    path: std::path::PathBuf,
    _lock: File,
}

impl Staging {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_tree(&self.path);
    }
}

/// Creates a locked staging folder in `dir`, named like [`temp_file_in`]'s files only once
/// it is locked.
pub fn staging_dir_in(dir: &Path) -> Result<Staging> {
    let new = tempfile::Builder::new()
        .prefix(NEW_PREFIX)
        .tempdir_in(dir)
        .at("create a temporary folder in", dir)?;
    let lock = File::open(new.path()).at("open", new.path())?;
    lock.lock().at("lock", new.path())?;
    let path = renamed(new.path(), STAGING_PREFIX);
    std::fs::rename(new.path(), &path).at("create a temporary folder in", dir)?;
    let _ = new.keep();
    Ok(Staging { path, _lock: lock })
}

/// `path` with its [`NEW_PREFIX`] replaced by `prefix`, keeping the random part.
fn renamed(path: &Path, prefix: &str) -> std::path::PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{prefix}{}", name.trim_start_matches(NEW_PREFIX)))
}

/// Removes resbak temp files and staging folders in `dir` left behind by a process that died
/// (their lock is free). Returns what was removed. Live ones are left alone.
pub fn remove_stale(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for item in entries.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(TEMP_PREFIX) && !name.starts_with(STAGING_PREFIX) {
            continue;
        }
        let path = item.path();
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        if handle.try_lock().is_err() {
            continue;
        }
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            // Gone meanwhile (its owner finished and renamed it): nothing to do.
            ignore_gone(remove_tree(&path)).at("remove leftover", &path)?;
        } else {
            ignore_gone(std::fs::remove_file(&path)).at("remove leftover", &path)?;
        }
        removed.push(path);
    }
    Ok(removed)
}

fn ignore_gone(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a folder tree, first making its folders writable (restored folders may be read-only).
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for item in walkdir::WalkDir::new(path).into_iter().flatten() {
        if item.file_type().is_dir() {
            let mode = item
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0o700);
            std::fs::set_permissions(item.path(), std::fs::Permissions::from_mode(mode | 0o700))?;
        }
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
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

    /// Names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_file_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        write_file(&path, |w| w.write_all(b"new").at("write", &path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["f.txt"]);
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
        assert_eq!(names(dir.path()), ["f.txt"]);
    }

    #[test]
    fn stale_temp_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = temp_file_in(dir.path()).unwrap();
        let stale = dir.path().join(format!("{TEMP_PREFIX}dead"));
        std::fs::write(&stale, "half").unwrap();
        let staging = staging_dir_in(dir.path()).unwrap();
        let dead_staging = dir.path().join(format!("{STAGING_PREFIX}dead"));
        std::fs::create_dir_all(dead_staging.join("s/sub")).unwrap();
        let removed = remove_stale(dir.path()).unwrap();
        let mut expected = vec![stale, dead_staging];
        expected.sort();
        let mut removed = removed;
        removed.sort();
        assert_eq!(removed, expected);
        assert!(live.path().exists() && staging.path().exists());
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
