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

/// File inside a staging folder that marks it as resbak's.
const STAGING_MARKER: &str = ".resbak-staging";

/// Creates a temp file in `dir` whose name marks it as resbak's; it is removed on drop unless
/// persisted. It is created under its final name, tracked for an interruption from the moment
/// it exists, and locked while `dir` is locked against [`find_leftovers`], so a cleaner never
/// sees it unlocked while its owner lives.
pub fn temp_file_in(dir: &Path) -> Result<NamedTempFile> {
    // 0666 less the umask, as tar and cp create files, so others may read what is kept.
    temp_file_with_mode(dir, 0o666)
}

/// [`temp_file_in`], created with permission bits `mode` less the umask, as `cp` creates a new
/// file with its source's bits less the umask.
pub fn temp_file_with_mode(dir: &Path, mode: u32) -> Result<NamedTempFile> {
    use std::os::unix::fs::OpenOptionsExt;
    let _creating = lock_dir(dir, false);
    let (file, path) = create_own(dir, TEMP_PREFIX, |path| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(path)
    })?;
    step(dir);
    let made = file.lock().at("lock", &path).and_then(|()| {
        tempfile::TempPath::try_from_path(&path).at("create a temporary file in", dir)
    });
    let temp = match made {
        Ok(temp) => temp,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            in_flight::untrack(&path);
            return Err(e);
        }
    };
    step(dir);
    Ok(NamedTempFile::from_parts(file, temp))
}

/// Creates a working entry `<prefix><random>.<tag>` in `dir` with `create`, trying new random
/// parts while the name is taken. It is tracked for an interruption as it is created: the
/// interrupt handler waits until it is either not created or tracked.
fn create_own<T>(
    dir: &Path,
    prefix: &str,
    mut create: impl FnMut(&Path) -> std::io::Result<T>,
) -> Result<(T, std::path::PathBuf)> {
    for _ in 0..100 {
        let random = random_part();
        let path = dir.join(format!("{prefix}{random}.{}", tag(&random)));
        let _busy = in_flight::busy();
        match create(&path) {
            Ok(made) => {
                in_flight::track(&path);
                return Ok((made, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create a working file in", dir, e)),
        }
    }
    let taken = std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "every name tried is taken",
    );
    Err(Error::io("create a working file in", dir, taken))
}

/// A fresh random part for a working name: unique names come from `create_new`, so it need
/// only make collisions rare.
fn random_part() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Locks the folder `dir` itself: shared while a working entry is created and locked,
/// exclusive while [`find_leftovers`] judges entries, so it never takes one in the moment
/// between its creation and its lock. `None` when `dir` cannot be opened (then no lock).
fn lock_dir(dir: &Path, exclusive: bool) -> Option<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::DIRECTORY | OFlags::NONBLOCK).bits() as i32)
        .open(dir)
        .ok()?;
    let locked = match exclusive {
        true => handle.lock(),
        false => handle.lock_shared(),
    };
    locked.ok().map(|()| handle)
}

/// A point in the making of a working entry, where tests check what is on disk.
#[cfg(test)]
fn step(dir: &Path) {
    tests::STEP.with(|check| {
        if let Some(check) = check.borrow_mut().as_mut() {
            check(dir);
        }
    });
}

#[cfg(not(test))]
fn step(_: &Path) {}

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
        let _ = remove_staging(&self.path);
        in_flight::untrack(&self.path);
    }
}

/// Creates a locked staging folder in `dir`, made like [`temp_file_in`]'s files: under its
/// final name, tracked at once, locked and holding its marker file before `dir` is unlocked.
pub fn staging_dir_in(dir: &Path) -> Result<Staging> {
    use std::os::unix::fs::DirBuilderExt;
    let _creating = lock_dir(dir, false);
    let ((), path) = create_own(dir, STAGING_PREFIX, |path| {
        std::fs::DirBuilder::new().mode(0o700).create(path)
    })?;
    step(dir);
    let locked = (|| {
        let lock = open_no_follow(&path, true).at("open", &path)?;
        lock.lock().at("lock", &path)?;
        let marker = path.join(STAGING_MARKER);
        std::fs::write(&marker, b"resbak staging folder\n").at("create", &marker)?;
        Ok(lock)
    })();
    match locked {
        Ok(lock) => {
            step(dir);
            Ok(Staging { path, _lock: lock })
        }
        Err(e) => {
            let _ = remove_staging(&path);
            in_flight::untrack(&path);
            Err(e)
        }
    }
}

/// A short digest of the random part of a working name: written by resbak into the names it
/// creates, so a name merely starting with a resbak prefix is not taken for resbak's.
fn tag(random: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("resbak working name {random}"));
    crate::checksum::hex(&digest[..4])
}

/// Whether `rest` (a name less its prefix) is `<random>.<tag>` with the right tag.
fn is_tagged(rest: &str) -> bool {
    rest.rsplit_once('.')
        .is_some_and(|(random, tag_part)| !random.is_empty() && tag(random) == tag_part)
}

/// A temp file or staging folder left behind by a resbak process that died.
#[derive(Debug)]
pub struct Leftover {
    /// Its path.
    pub path: std::path::PathBuf,
    /// Whether it is a staging folder (else a temp file).
    pub is_dir: bool,
    /// The open, locked handle: it stays resbak's while held.
    handle: File,
}

/// resbak's temp files and staging folders in `dir` whose owner died (their lock is free).
/// Each is recognised by what resbak wrote (the tag in its name and, for a folder, its marker
/// file) and by its kind, checked on an open handle: nothing that merely bears a resbak name
/// is taken, no link is followed and nothing but a regular file or folder is opened.
pub fn find_leftovers(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let _no_creations = lock_dir(dir, true);
    let mut found: Vec<Leftover> = entries
        .flatten()
        .filter_map(|item| leftover(&item.path()))
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// `path` as a [`Leftover`], if it is one.
fn leftover(path: &Path) -> Option<Leftover> {
    let name = path.file_name()?.to_str()?;
    let is_dir = if let Some(rest) = name.strip_prefix(TEMP_PREFIX) {
        is_tagged(rest).then_some(false)?
    } else {
        is_tagged(name.strip_prefix(STAGING_PREFIX)?).then_some(true)?
    };
    let handle = open_no_follow(path, is_dir).ok()?;
    let meta = handle.metadata().ok()?;
    let right_kind = if is_dir {
        meta.is_dir()
    } else {
        meta.is_file()
    };
    // Unmarked, a folder is resbak's only empty: made by a run killed before it wrote the
    // marker, or all but removed by one killed after (the marker goes last).
    let unmarked = is_dir && !has_marker(path) && !is_empty_dir(path);
    if !right_kind || unmarked || handle.try_lock().is_err() {
        return None;
    }
    Some(Leftover {
        path: path.to_path_buf(),
        is_dir,
        handle,
    })
}

/// Whether `path` is a staging folder resbak made, live or left over: its name bears resbak's
/// tag, it is a folder (no link is followed) and it holds resbak's marker file, or nothing.
/// What merely bears a resbak name is not.
pub fn is_own_folder(path: &Path) -> bool {
    let tagged = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(STAGING_PREFIX))
        .is_some_and(is_tagged);
    tagged && open_no_follow(path, true).is_ok() && (has_marker(path) || is_empty_dir(path))
}

/// Whether `dir` is a folder with nothing in it.
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Removes the staging folder `path`, its marker last: a removal cut short leaves what is
/// left marked as resbak's, for a later run to remove.
fn remove_staging(path: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(path) {
        for item in entries.flatten() {
            if item.file_name() != STAGING_MARKER {
                remove_tree(&item.path())?;
            }
        }
    }
    remove_tree(path)
}

/// Whether the staging folder `dir` holds its marker as a regular file.
fn has_marker(dir: &Path) -> bool {
    open_no_follow(&dir.join(STAGING_MARKER), false)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.is_file())
}

/// Opens `path` for reading without following a final link and without blocking (a FIFO
/// opens at once); with `dir`, only a folder opens.
pub fn open_no_follow(path: &Path, dir: bool) -> std::io::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

/// Removes the leftovers [`find_leftovers`] finds in `dir`. Returns what was removed.
pub fn remove_stale(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut removed = Vec::new();
    for leftover in find_leftovers(dir) {
        let path = &leftover.path;
        // Gone meanwhile (its owner finished and renamed it): nothing to do.
        let result = match leftover.is_dir {
            true => remove_staging(path),
            false => std::fs::remove_file(path),
        };
        ignore_gone(result).at("remove leftover", path)?;
        drop(leftover.handle);
        removed.push(leftover.path);
    }
    Ok(removed)
}

fn ignore_gone(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a folder tree, first giving its owner full access to its folders (restored folders
/// may be read-only, or even without read or search permission). No link is followed: each
/// folder is looked at and opened relative to its parent's handle without following a link,
/// and a link in the tree (or at `path` itself) is removed, not what it points to.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let name = path.file_name().unwrap_or(path.as_os_str());
            // The folder holding `path` is the caller's: a link to it is followed.
            if let Ok(parent) = std::fs::File::open(parent_dir(path)) {
                let _ = make_removable(&parent, name);
            }
            std::fs::remove_dir_all(path)
        }
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    ignore_gone(removed)
}

/// Gives the owner full access to the folder `name` in the folder `parent` and everything
/// below it, following no link. Not a folder: nothing to do.
fn make_removable(parent: impl rustix::fd::AsFd, name: &std::ffi::OsStr) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, FileType, Mode};
    let seen = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(seen.st_mode) != FileType::Directory {
        return Ok(());
    }
    let mode = seen.st_mode & 0o7777;
    if mode & 0o700 != 0o700 {
        rustix::fs::chmodat(
            &parent,
            name,
            Mode::from_raw_mode(mode | 0o700),
            AtFlags::empty(),
        )?;
    }
    let dir = open_dir_at(&parent, name)?;
    let opened = rustix::fs::fstat(&dir)?;
    if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err(std::io::Error::other(
            "a folder was replaced while it was removed",
        ));
    }
    let mut folders = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        let maybe_dir = matches!(entry.file_type(), FileType::Directory | FileType::Unknown);
        if maybe_dir && child != b"." && child != b".." {
            use std::os::unix::ffi::OsStrExt;
            folders.push(std::ffi::OsStr::from_bytes(child).to_os_string());
        }
    }
    let mut first_error = Ok(());
    for child in folders {
        first_error = first_error.and(make_removable(&dir, &child));
    }
    first_error
}

/// Opens the folder `path` relative to `at` for reading, without following a final link.
fn open_dir_at(
    at: impl rustix::fd::AsFd,
    path: impl rustix::path::Arg,
) -> std::io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(at, path, flags, Mode::empty())?)
}

/// Replaces `path` with what `fill` writes, atomically and durably.
pub fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    persist(prepare_file(path, fill)?, path, true)
}

/// A synced temp file beside `path` holding what `fill` writes, for [`persist`] to put in
/// place: several files can be written first (a full disk fails there) and renamed after.
pub fn prepare_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<NamedTempFile> {
    let dir = parent_dir(path);
    let tmp = temp_file_in(dir)?;
    let mut out = BufWriter::new(tmp);
    fill(&mut out)?;
    let tmp = out
        .into_inner()
        .map_err(|e| Error::io("write", path, e.into_error()))?;
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    Ok(tmp)
}

/// Renames a finished, synced temp file to `path` and syncs the folder. With `overwrite`
/// false, an existing `path` is an error of kind `AlreadyExists` and the temp file is removed.
pub fn persist(tmp: NamedTempFile, path: &Path, overwrite: bool) -> Result<()> {
    let _renaming = in_flight::busy();
    let from = tmp.path().to_path_buf();
    let result = if overwrite {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    result.map_err(|e| Error::io("rename into place", path, e.error))?;
    in_flight::persisted(&from);
    sync_dir(parent_dir(path))
}

/// Renames a finished, synced temp file to the first of `names` that is free and syncs its
/// folder. No existing file is ever replaced, not even one another process creates meanwhile.
pub fn persist_first_free(
    mut tmp: NamedTempFile,
    names: impl IntoIterator<Item = std::path::PathBuf>,
) -> Result<std::path::PathBuf> {
    use std::io::ErrorKind::AlreadyExists;
    let _renaming = in_flight::busy();
    let from = tmp.path().to_path_buf();
    for path in names {
        match tmp.persist_noclobber(&path) {
            Ok(_) => {
                in_flight::persisted(&from);
                return sync_dir(parent_dir(&path)).map(|()| path);
            }
            Err(e) if e.error.kind() == AlreadyExists => tmp = e.file,
            Err(e) => return Err(Error::io("rename into place", path, e.error)),
        }
    }
    let taken = std::io::Error::new(AlreadyExists, "every name offered is taken");
    Err(Error::io("rename into place", tmp.path(), taken))
}

/// The temp files and staging folders of this process that are not finished yet, so that an
/// interruption can remove them (see [`remove_in_flight`]).
mod in_flight {
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, RwLock};

    pub(super) static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    /// Held for reading while a working entry is created and tracked or a temp file is renamed
    /// into place; [`super::remove_in_flight`] takes it for writing, so it never cuts either
    /// in half.
    pub(super) static RENAMES: RwLock<u64> = RwLock::new(0);

    pub(super) fn track(path: &Path) {
        PATHS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_path_buf());
    }

    pub(super) fn untrack(path: &Path) {
        PATHS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != path);
    }

    pub(super) fn busy() -> std::sync::RwLockReadGuard<'static, u64> {
        RENAMES.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A temp file was renamed into place: it is no longer in flight.
    pub(super) fn persisted(path: &Path) {
        untrack(path);
        COMMITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Files this process renamed into place.
    pub(super) static COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Everything in flight, forgotten.
    pub(super) fn take() -> Vec<PathBuf> {
        std::mem::take(&mut *PATHS.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How many files this process has renamed into place so far.
pub fn commits() -> u64 {
    in_flight::COMMITS.load(std::sync::atomic::Ordering::SeqCst)
}

/// Held by [`remove_in_flight`]'s caller: while it lives no temp file is renamed into place.
#[derive(Debug)]
pub struct Halted {
    _no_renames: std::sync::RwLockWriteGuard<'static, u64>,
    committed: bool,
}

impl Halted {
    /// Whether this process renamed any file into place before it was halted.
    pub fn committed(&self) -> bool {
        self.committed
    }
}

/// Stops renames into place (waiting for one under way to finish) and removes this process's
/// unfinished temp files and staging folders. Renames stay stopped while the returned value
/// lives, so the caller can end the process without a rename being cut in half or a removed
/// file coming back under its final name.
///
/// Another thread may still be adding entries to a staging folder, so a removal that fails is
/// tried again until it succeeds, or until `writers_stopped` says nothing writes any more and
/// one more try fails, or after many tries.
pub fn remove_in_flight(writers_stopped: impl Fn() -> bool) -> Halted {
    const TRIES: u32 = 1_000_000;
    let no_renames = in_flight::RENAMES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    for path in in_flight::take() {
        for _ in 0..TRIES {
            let last = writers_stopped();
            if remove_tree(&path).is_ok() || last {
                break;
            }
            std::thread::yield_now();
        }
    }
    let committed = in_flight::COMMITS.load(std::sync::atomic::Ordering::SeqCst) > 0;
    Halted {
        _no_renames: no_renames,
        committed,
    }
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

/// Names in `dir`, sorted: for tests.
#[cfg(test)]
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = Box<dyn FnMut(&Path)>;

    thread_local! {
        /// Called at each step of the making of a working entry, with its folder.
        pub(super) static STEP: std::cell::RefCell<Option<Check>> =
            const { std::cell::RefCell::new(None) };
    }

    #[test]
    fn a_working_entry_is_tracked_and_cleanable_at_every_step_of_its_making() {
        let dir = tempfile::tempdir().unwrap();
        let steps = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = steps.clone();
        STEP.with(|step| {
            *step.borrow_mut() = Some(Box::new(move |dir: &Path| {
                seen.set(seen.get() + 1);
                let tracked = in_flight::PATHS.lock().unwrap().clone();
                for name in names_in(dir) {
                    let path = dir.join(&name);
                    // Interrupted now, it is removed: it is tracked.
                    assert!(tracked.contains(&path), "{name} is not tracked");
                    // Killed now, a later cleaner knows it for resbak's by its name alone.
                    let rest = name.strip_prefix(TEMP_PREFIX);
                    let rest = rest.or_else(|| name.strip_prefix(STAGING_PREFIX));
                    assert!(rest.is_some_and(is_tagged), "{name} is no working name");
                }
                // And no cleaner judges it while its owner may not have locked it yet.
                let other = File::open(dir).unwrap();
                assert!(
                    other.try_lock().is_err(),
                    "a cleaner could take it unlocked"
                );
            }));
        });
        let file = temp_file_in(dir.path()).unwrap();
        let staging = staging_dir_in(dir.path()).unwrap();
        STEP.with(|step| step.borrow_mut().take());
        assert_eq!(steps.get(), 4);
        assert!(file.path().is_file() && staging.path().is_dir());
        assert_eq!(
            remove_stale(dir.path()).unwrap(),
            Vec::<std::path::PathBuf>::new()
        );
        drop(file);
        drop(staging);
        assert_eq!(names_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn write_file_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        write_file(&path, |w| w.write_all(b"new").at("write", &path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names_in(dir.path()), ["f.txt"]);
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
        assert_eq!(names_in(dir.path()), ["f.txt"]);
    }

    /// A name resbak would give, with the tag, for a random part `random`.
    fn own_name(prefix: &str, random: &str) -> String {
        format!("{prefix}{random}.{}", tag(random))
    }

    #[test]
    fn stale_temp_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = temp_file_in(dir.path()).unwrap();
        let stale = dir.path().join(own_name(TEMP_PREFIX, "dead"));
        std::fs::write(&stale, "half").unwrap();
        let staging = staging_dir_in(dir.path()).unwrap();
        let dead_staging = dir.path().join(own_name(STAGING_PREFIX, "dead"));
        std::fs::create_dir_all(dead_staging.join("s/sub")).unwrap();
        std::fs::write(dead_staging.join(STAGING_MARKER), "").unwrap();
        // Killed between making its staging folder and marking it: empty, and resbak's name.
        let unmarked = dir.path().join(own_name(STAGING_PREFIX, "early"));
        std::fs::create_dir(&unmarked).unwrap();
        assert!(is_own_folder(&unmarked));
        let removed = remove_stale(dir.path()).unwrap();
        assert_eq!(removed, [dead_staging, unmarked, stale]);
        assert!(live.path().exists() && staging.path().exists());
    }

    #[test]
    fn only_what_resbak_marked_is_a_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Bare resbak names, a folder where a file is expected and the other way round, a
        // tagged staging folder that holds something but not its marker, links and a FIFO:
        // none is resbak's.
        std::fs::create_dir_all(d.join(".resbak-tmp-mine/data")).unwrap();
        std::fs::create_dir_all(d.join(".resbak-restore-mine/data")).unwrap();
        std::fs::create_dir_all(d.join(own_name(TEMP_PREFIX, "a"))).unwrap();
        std::fs::write(d.join(own_name(STAGING_PREFIX, "b")), "").unwrap();
        std::fs::create_dir_all(d.join(own_name(STAGING_PREFIX, "c")).join("data")).unwrap();
        std::fs::create_dir(d.join("target")).unwrap();
        std::fs::write(d.join("target").join(STAGING_MARKER), "").unwrap();
        std::os::unix::fs::symlink("target", d.join(own_name(STAGING_PREFIX, "d"))).unwrap();
        std::fs::write(d.join("file"), "keep").unwrap();
        std::os::unix::fs::symlink("file", d.join(own_name(TEMP_PREFIX, "e"))).unwrap();
        let fifo = d.join(own_name(TEMP_PREFIX, "f"));
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let before = names_in(d);
        assert_eq!(remove_stale(d).unwrap(), Vec::<std::path::PathBuf>::new());
        assert_eq!(names_in(d), before);
    }

    #[test]
    fn removing_a_tree_follows_no_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("locked")).unwrap();
        std::fs::write(outside.join("locked/f"), "keep").unwrap();
        let read_only = std::fs::Permissions::from_mode(0o555);
        std::fs::set_permissions(outside.join("locked"), read_only).unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        let root_link = dir.path().join("root_link");
        std::os::unix::fs::symlink(&outside, &root_link).unwrap();
        remove_tree(&tree).unwrap();
        remove_tree(&root_link).unwrap();
        assert!(!tree.exists() && root_link.symlink_metadata().is_err());
        let mode = std::fs::metadata(outside.join("locked"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555, "a mode was changed through a link");
        assert_eq!(
            std::fs::read_to_string(outside.join("locked/f")).unwrap(),
            "keep"
        );
    }

    /// Runs the test `name` again as an unprivileged user when this process runs as root (who
    /// may read and search any folder), in the folder `dir`, which that user is given.
    /// Returns false when it ran elsewhere (the caller stops), true to run here.
    fn as_unprivileged(name: &str, dir: &Path) -> bool {
        const CHILD: &str = "RESBAK_TEST_UNPRIVILEGED_DIR";
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // `dir` was just created by this process: its owner is who this process runs as.
        if std::fs::metadata(dir).unwrap().uid() != 0 {
            return true;
        }
        if std::env::var_os(CHILD).is_some() {
            panic!("still root after dropping privileges");
        }
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
        // A copy of this test binary that the user can run wherever the build folder lies
        // (a checkout under a private home folder is out of its reach).
        let exe_dir = tempfile::tempdir().unwrap();
        let exe = exe_dir.path().join("tests");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(exe_dir.path(), open.clone()).unwrap();
        std::fs::set_permissions(&exe, open).unwrap();
        let status = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(["--exact", name, "--test-threads=1"])
            .env(CHILD, dir)
            .status();
        match status {
            Ok(status) => assert!(status.success(), "{name} as an unprivileged user"),
            Err(e) => panic!("root cannot test permissions without setpriv: {e}"),
        }
        false
    }

    #[test]
    fn removing_a_tree_opens_folders_without_read_or_search_permission() {
        use std::os::unix::fs::PermissionsExt;
        let name = "atomic::tests::removing_a_tree_opens_folders_without_read_or_search_permission";
        let owned;
        let dir = match std::env::var_os("RESBAK_TEST_UNPRIVILEGED_DIR") {
            Some(dir) => std::path::PathBuf::from(dir),
            None => {
                owned = tempfile::tempdir().unwrap();
                if !as_unprivileged(name, owned.path()) {
                    assert_eq!(names_in(owned.path()), ["outside"]);
                    return;
                }
                owned.path().to_path_buf()
            }
        };
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        let outside = dir.join("outside");
        std::fs::create_dir_all(outside.join("shut")).unwrap();
        let tree = dir.join(own_name(STAGING_PREFIX, "t"));
        for sub in ["none/deeper", "write_search/none", "read_only"] {
            std::fs::create_dir_all(tree.join(sub)).unwrap();
            std::fs::write(tree.join(sub).join("f"), "x").unwrap();
        }
        std::os::unix::fs::symlink(&outside, tree.join("write_search/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("shut"), tree.join("none/link")).unwrap();
        set(&outside.join("shut"), 0o000).unwrap();
        set(&outside, 0o500).unwrap();
        for (sub, m) in [
            ("none/deeper", 0o000),
            ("none", 0o000),
            ("write_search/none", 0o000),
            ("write_search", 0o300),
            ("read_only", 0o500),
        ] {
            set(&tree.join(sub), m).unwrap();
        }
        remove_tree(&tree).unwrap();
        assert!(tree.symlink_metadata().is_err(), "the tree is gone");
        assert_eq!(mode(&outside), 0o500, "a mode was changed through a link");
        set(&outside, 0o700).unwrap();
        assert_eq!(mode(&outside.join("shut")), 0o000, "changed through a link");
        set(&outside.join("shut"), 0o700).unwrap();
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
