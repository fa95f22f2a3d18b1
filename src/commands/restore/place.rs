//! Putting a restored folder in place: renamed over the destination, the replaced folder moved
//! aside and removed only while it holds what its safety copy holds (else kept beside it), or
//! with `--include` merged entry by entry into the destination; and what an interrupted forced
//! restore left beside it.

use super::plan::{self, Found};
use crate::archive;
use crate::atomic;
use crate::commands::{MergeNote, Printer};
use crate::error::{Error, IoContext, Result};
use crate::manifest::Entry;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Renames the restored folder to `dest`. An existing `dest` (`replaced`: the entry of its
/// safety copy, if it held anything) is moved aside first and put back if the rename fails;
/// then it is removed only if it still holds exactly what its safety copy holds, else kept
/// beside `dest` as `NAME.replaced-<UTC time>`. An interruption waits for the renames; after
/// them, `done` is what it says (see [`crate::interrupt::so_far`]).
pub(super) fn move_into_place(
    restored: &Path,
    dest: &Path,
    replaced: Option<&Option<Entry>>,
    done: &str,
    printer: &mut Printer,
) -> Result<()> {
    let parent = atomic::parent_dir(dest);
    let mode = make_movable(restored)?;
    sync_filesystem(restored)?;
    let Some(saved) = replaced else {
        let held = crate::interrupt::hold();
        fs::rename(restored, dest).at("move restored folder to", dest)?;
        give_mode_back(dest, mode, printer);
        held.done(done);
        return atomic::sync_dir(parent);
    };
    // The replaced folder waits beside the destination until the new one is in place; it is
    // never removed on a failure path. The folder it waits in is made under the same hold as
    // the renames, so an interruption never leaves it behind holding only its marker.
    let held = crate::interrupt::hold();
    let aside = make_aside(parent)?;
    let old = aside.join("old");
    let old_mode = match make_movable(dest) {
        Ok(old_mode) => old_mode,
        Err(e) => {
            let _ = atomic::remove_tree(&aside);
            return Err(e);
        }
    };
    if let Err(e) = fs::rename(dest, &old) {
        give_mode_back(dest, old_mode, printer);
        let _ = atomic::remove_tree(&aside);
        return Err(Error::io("move aside", dest, e));
    }
    if let Err(e) = fs::rename(restored, dest) {
        fs::rename(&old, dest).at("put back", dest)?;
        give_mode_back(dest, old_mode, printer);
        let _ = atomic::remove_tree(&aside);
        return Err(Error::io("move restored folder to", dest, e));
    }
    // Should this fail, the check below finds the mode changed and keeps the folder.
    let _ = mode_back(&old, old_mode);
    give_mode_back(dest, mode, printer);
    // Until it is checked against its safety copy and removed, an interruption says where
    // the replaced folder waits.
    held.done(format!(
        "{done}; the folder it replaced waits in {} until checked: remove it once you have",
        old.display()
    ));
    atomic::sync_dir(parent)?;
    let digest = saved.as_ref().and_then(|e| e.meta_digest.as_deref());
    let why = if !holds_only(&old, digest)? {
        format!("{} changed after its safety copy was taken", dest.display())
    } else {
        // Backups leave out the copies folders of `resbak file`, so the restored folder lacks
        // them: they move over from the replaced one, which is kept if one cannot.
        carry_copies(&old, dest).unwrap_or_default()
    };
    if !why.is_empty() {
        let kept = keep_beside(&old, dest)?;
        let held = crate::interrupt::hold();
        let _ = atomic::remove_tree(&aside);
        held.done(format!(
            "{done}; the folder it replaced is kept as {}",
            kept.display()
        ));
        printer.warn(format_args!(
            "{why}; the replaced folder is kept as {}",
            kept.display()
        ));
        return Ok(());
    }
    // Its safety copy (or the backup that keeps it) holds the old folder: an interruption waits
    // for the removal to finish rather than leave a half-deleted copy beside the destination.
    // The marker goes last: a folder that could not be removed whole (something in it is not
    // this user's) stays marked, so that it is reported, never taken for a strategy.
    let held = crate::interrupt::hold();
    let removed = atomic::remove_tree(&old).and_then(|()| atomic::remove_tree(&aside));
    held.done(done);
    if let Err(e) = removed {
        let copy = saved.as_ref().map_or(String::new(), |kept| {
            format!(" (its safety copy {} holds all it held)", kept.backup_file)
        });
        printer.warn(format_args!(
            "could not remove all of the replaced folder {}: {e}; remove the rest by hand{copy}",
            old.display()
        ));
    }
    Ok(())
}

/// Moves each copies folder of `resbak file` in `old` (see
/// [`crate::filebackup::copies_folders_in`]) to the same place in `dest`, making the folders
/// above it that `dest` lacks. Every place is checked first: if one is taken (or has a link or
/// file above it), nothing moves and `old` stays whole. Returns why it did not move them all.
fn carry_copies(old: &Path, dest: &Path) -> Option<String> {
    let folders = crate::filebackup::copies_folders_in(old);
    let rel = |folder: &Path| folder.strip_prefix(old).unwrap_or(folder).to_path_buf();
    let taken = folders.iter().find(|folder| {
        let rel = rel(folder);
        fs::symlink_metadata(dest.join(&rel)).is_ok() || !folders_above_fit(dest, &rel)
    });
    if let Some(folder) = taken {
        return Some(format!(
            "the copies folder {} of `resbak file` could not be moved into the restored folder \
             (something else is there)",
            rel(folder).display()
        ));
    }
    for folder in &folders {
        let target = dest.join(rel(folder));
        let moved = make_folders_above(dest, &rel(folder))
            .and_then(|()| fs::rename(folder, &target))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                atomic::sync_dir(atomic::parent_dir(&target)).map_err(|e| e.to_string())
            });
        if let Err(e) = moved {
            return Some(format!(
                "the copies folder {} of `resbak file` could not be moved into the restored \
                 folder ({e}; those before it were)",
                rel(folder).display()
            ));
        }
    }
    None
}

/// Whether each folder above `rel` below `root` is a real folder or missing (never a link,
/// which could lead out of `root`, nor a file).
fn folders_above_fit(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    rel.parent()
        .into_iter()
        .flat_map(Path::components)
        .all(|part| {
            at.push(part);
            fs::symlink_metadata(&at).map_or(true, |m| m.is_dir())
        })
}

/// Makes the folders above `rel` below `root` that are missing.
fn make_folders_above(root: &Path, rel: &Path) -> std::io::Result<()> {
    let mut at = root.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        at.push(part);
        if fs::symlink_metadata(&at).is_err() {
            fs::create_dir(&at)?;
        }
    }
    Ok(())
}

/// Creates the folder the replaced destination waits in, with the marker that tells it from a
/// user's folder of a similar name (see [`crate::commands::is_aside`]).
fn make_aside(parent: &Path) -> Result<PathBuf> {
    let aside = tempfile::Builder::new()
        .prefix(crate::commands::ASIDE_PREFIX)
        .tempdir_in(parent)
        .at("create a temporary folder in", parent)?
        .keep();
    let marker = aside.join(crate::commands::ASIDE_MARKER);
    let note = "resbak: a forced restore moved the replaced folder into old/ here\n";
    if let Err(e) = fs::write(&marker, note) {
        let _ = fs::remove_dir(&aside);
        return Err(Error::io("create", &marker, e));
    }
    Ok(aside)
}

/// The refusal of an `--include` restore into `dest` after it changed since its safety copy.
pub(super) fn changed_since_copy(dest: &Path, saved: Option<&Entry>) -> Error {
    let copy = saved.map_or("was taken".to_string(), |e| {
        format!("{} was taken", e.backup_file)
    });
    Error::UnsafeDestination {
        path: dest.to_path_buf(),
        reason: format!(
            "it changed after its safety copy {copy}; nothing was overwritten; run the restore \
             again"
        ),
    }
}

/// Whether `folder` holds exactly the tree whose metadata digest (paths, kinds, sizes, modes,
/// mtimes, link targets) is `digest`; with no digest, whether it is empty.
pub(super) fn holds_only(folder: &Path, digest: Option<&str>) -> Result<bool> {
    match digest {
        Some(digest) => {
            let now = archive::digest(folder, &archive::Excludes::default(), false)?;
            Ok(now.meta == digest)
        }
        None => Ok(fs::read_dir(folder).at("read", folder)?.next().is_none()),
    }
}

/// Moves `old` to `<dest>.replaced-<UTC time>` (with `-N` if taken) and returns that path.
/// The marker [`crate::commands::replaced_marker`] is written beside it first, so that a backup of every
/// strategy knows it for a kept folder (a name alone proves nothing); the folder itself keeps
/// exactly what it held.
fn keep_beside(old: &Path, dest: &Path) -> Result<PathBuf> {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let parent = atomic::parent_dir(dest);
    for n in 1.. {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let kept = parent.join(format!("{name}.replaced-{stamp}{suffix}"));
        let marker = crate::commands::replaced_marker(&kept);
        if fs::symlink_metadata(&kept).is_err() && fs::symlink_metadata(&marker).is_err() {
            let mode = make_movable(old)?;
            let text =
                crate::commands::replaced_marker_text(&format!("{name}.replaced-{stamp}{suffix}"));
            atomic::write_file(&marker, |w| {
                w.write_all(text.as_bytes()).at("write", &marker)
            })?;
            if let Err(e) = fs::rename(old, &kept) {
                let _ = fs::remove_file(&marker);
                let _ = mode_back(old, mode);
                return Err(Error::io("keep the replaced folder as", &kept, e));
            }
            let _ = mode_back(&kept, mode);
            atomic::sync_dir(parent)?;
            return Ok(kept);
        }
    }
    unreachable!("some suffix is free")
}

/// Moves each entry of the restored folder into `dest`, leaving everything else in `dest`
/// alone: a file or link replaces the one at its path (one rename each, so atomically); a
/// folder `dest` lacks moves in whole; a folder it has is kept and filled. Every path is
/// checked first, so a conflict (a folder where the archive has a file, a link or file where
/// it has a folder) stops the restore before anything is moved; the plan refused those before
/// any safety copy was made (see `plan`), so this only guards against a change since.
pub(super) fn merge_into(restored: &Path, dest: &Path) -> Result<()> {
    let mut moves = Vec::new();
    // Entries move out of the staging folder, so it must be writable (it is discarded after);
    // read-only folders that move whole are made movable before anything moves.
    make_movable(restored)?;
    let mut modes = Vec::new();
    let mut walk = walkdir::WalkDir::new(restored)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walk.next() {
        let item = item.map_err(|e| Error::io("read", restored, archive::walk::bare(e)))?;
        let rel = item.path().strip_prefix(restored).unwrap_or(item.path());
        let target = dest.join(rel);
        let folder = item.file_type().is_dir();
        match plan::conflict(&target, folder)? {
            Found::Nothing if folder => {
                walk.skip_current_dir();
                if let Some(mode) = make_movable(item.path())? {
                    modes.push((target.clone(), mode));
                }
            }
            Found::Nothing => {}
            Found::Fits if folder => {
                // Its entries move out of it: it must be writable, whatever mode it was given
                // (the staging copy is discarded, the destination's folder keeps its own).
                let mode = item.metadata().map_or(0o700, |m| m.permissions().mode());
                fs::set_permissions(item.path(), fs::Permissions::from_mode(mode | 0o700))
                    .at("set permissions of", item.path())?;
                continue;
            }
            Found::Fits => {}
            Found::Conflict(why) => {
                return Err(Error::io("overwrite", &target, std::io::Error::other(why)));
            }
        }
        moves.push((item.path().to_path_buf(), target));
    }
    let moved = (moves.iter())
        .try_for_each(|(from, to)| fs::rename(from, to).at("move restored entry to", to));
    // Also after a failure, for the folders that did move.
    let given = (modes.iter())
        .filter(|(folder, _)| moved.is_ok() || fs::symlink_metadata(folder).is_ok())
        .map(|(folder, mode)| set_mode(folder, *mode))
        .fold(Ok(()), Result::and);
    moved.and(given)?;
    sync_filesystem(dest)
}

/// Makes `folder` writable by its owner if it is not, and returns the mode to give it back once
/// moved: moving a folder to another parent rewrites its `..` entry, which needs it writable
/// (root aside), so a folder restored read-only would not move.
fn make_movable(folder: &Path) -> Result<Option<u32>> {
    let mode = fs::symlink_metadata(folder)
        .at("read", folder)?
        .permissions()
        .mode();
    if mode & 0o200 != 0 {
        return Ok(None);
    }
    set_mode(folder, mode | 0o200)?;
    Ok(Some(mode))
}

/// Gives the folder `at`, once moved, the `mode` [`make_movable`] took from it, if it took one;
/// a failure then is a warning: the move is done.
fn give_mode_back(at: &Path, mode: Option<u32>, printer: &mut Printer) {
    if let Err(e) = mode_back(at, mode) {
        printer.warn(format_args!("{e}; it keeps owner write permission"));
    }
}

/// Gives `at` the `mode` [`make_movable`] took from it, if it took one.
fn mode_back(at: &Path, mode: Option<u32>) -> Result<()> {
    mode.map_or(Ok(()), |mode| set_mode(at, mode))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at("set permissions of", path)
}

/// Makes everything written to the file system holding `folder` durable: restored files before
/// they replace anything (one syncfs, not an fsync per file), or the renames that put them in
/// place.
pub(super) fn sync_filesystem(folder: &Path) -> Result<()> {
    let open = File::open(folder).at("open", folder)?;
    rustix::fs::syncfs(&open).map_err(|e| Error::io("sync", folder, e.into()))
}

/// Points at folders an interrupted `--force` restore left beside the destination: they hold
/// the replaced results (which were backed up first), so they are reported, never removed.
/// One that holds only its marker holds nothing of the user's: it is removed.
pub(super) fn warn_replaced_leftovers(parent: &Path, printer: &mut Printer) {
    crate::commands::warn_half_merged(parent, printer);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for item in entries.flatten() {
        if crate::commands::is_aside(&item.path()) {
            if remove_if_only_marker(&item.path()) {
                continue;
            }
            printer.warn(format_args!(
                "{} holds a folder replaced by an interrupted restore; remove it once checked",
                item.path().display()
            ));
        }
    }
}

/// Removes the aside folder `aside` when it holds nothing but its marker, and says whether it
/// did. Should another restore move its replaced folder in meanwhile, the folder is not empty,
/// stays, and gets its marker back.
fn remove_if_only_marker(aside: &Path) -> bool {
    let only_marker = fs::read_dir(aside).is_ok_and(|entries| {
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names == [std::ffi::OsStr::new(crate::commands::ASIDE_MARKER)]
    });
    if !only_marker {
        return false;
    }
    let marker = aside.join(crate::commands::ASIDE_MARKER);
    let Ok(note) = fs::read(&marker) else {
        return false;
    };
    if fs::remove_file(&marker).is_err() {
        return false;
    }
    if fs::remove_dir(aside).is_err() {
        let _ = fs::write(&marker, note);
        return false;
    }
    true
}

/// Notes, beside `dest`, that a restore of `archive` with the `include` patterns is merging
/// into it: a merge cut short (the process killed) leaves `dest` part restored, and the note
/// says so to every later backup and restore until that restore, or a whole one, completes
/// (see [`end_merge`]). An earlier note stays: it names the copy of `dest` from before the
/// first merge. `kept` holds `dest` as it was before, if anything does.
pub(super) fn begin_merge(
    dest: &Path,
    archive: &str,
    include: &[String],
    kept: Option<&Entry>,
) -> Result<()> {
    let path = MergeNote::path(dest);
    if fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    let note = MergeNote {
        before: kept.map(|e| e.backup_file.clone()),
        archive: archive.to_string(),
        include: include.to_vec(),
    };
    atomic::write_file(&path, |w| {
        w.write_all(note.render().as_bytes()).at("write", &path)
    })
}

/// A restore of `archive` into `dest` completed, with the `include` patterns or whole (`None`):
/// removes the note of [`begin_merge`] when that finishes what it records (a note that does not
/// read is finished only by a whole restore). The restore is done either way: a note that
/// cannot be removed is warned about, and warns again until it is.
pub(super) fn end_merge(
    dest: &Path,
    archive: &str,
    include: Option<&[String]>,
    printer: &mut Printer,
) {
    let finished = match (include, MergeNote::read(dest)) {
        (None, _) => true,
        (Some(include), Some(note)) => note.archive == archive && note.include == include,
        (Some(_), None) => false,
    };
    let path = MergeNote::path(dest);
    if finished
        && let Err(e) = fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        printer.warn(format_args!("cannot remove {}: {e}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holds_only_its_safety_copy_until_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path();
        assert!(holds_only(folder, None).unwrap(), "empty, no copy");
        fs::write(folder.join("a.csv"), "1\n").unwrap();
        assert!(!holds_only(folder, None).unwrap(), "not empty, no copy");
        let everything = archive::Excludes::default();
        let saved = archive::digest(folder, &everything, false).unwrap().meta;
        assert!(holds_only(folder, Some(&saved)).unwrap());
        fs::write(folder.join("b.csv"), "2\n").unwrap();
        assert!(!holds_only(folder, Some(&saved)).unwrap(), "a file added");
        fs::remove_file(folder.join("b.csv")).unwrap();
        fs::write(folder.join("a.csv"), "12\n").unwrap();
        assert!(!holds_only(folder, Some(&saved)).unwrap(), "a file grew");
    }

    #[test]
    fn an_aside_folder_is_removed_only_while_it_holds_nothing_but_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let empty = make_aside(dir.path()).unwrap();
        assert!(remove_if_only_marker(&empty));
        assert!(!empty.exists());
        let full = make_aside(dir.path()).unwrap();
        fs::create_dir(full.join("old")).unwrap();
        assert!(!remove_if_only_marker(&full));
        assert!(crate::commands::is_aside(&full), "kept with its marker");
    }

    #[test]
    fn the_folder_a_swap_waits_in_is_known_by_its_marker_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let aside = make_aside(dir.path()).unwrap();
        fs::create_dir(aside.join("old")).unwrap();
        assert!(
            crate::commands::set_aside(&aside),
            "resbak's: never a strategy"
        );
        let mine = dir
            .path()
            .join(format!("{}mine", crate::commands::ASIDE_PREFIX));
        fs::create_dir_all(mine.join("old")).unwrap();
        assert!(
            !crate::commands::set_aside(&mine),
            "a user's folder of that name"
        );
        let linked = dir
            .path()
            .join(format!("{}linked", crate::commands::ASIDE_PREFIX));
        fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(
            aside.join(crate::commands::ASIDE_MARKER),
            linked.join(".resbak-aside"),
        )
        .unwrap();
        assert!(
            !crate::commands::set_aside(&linked),
            "a marker behind a link proves nothing"
        );
    }
}
