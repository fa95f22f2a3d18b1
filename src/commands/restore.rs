//! `resbak restore`: bring a strategy folder back from an archive, safely.
//!
//! The archive is extracted into a temporary folder beside the destination while its SHA-256 is
//! computed in the same pass; only an archive that matches its manifest entry and extracted
//! completely is moved into place. An existing destination is replaced only with `force`, and
//! only after it was itself backed up.

mod plan;

use super::backup::backup_folder;
use super::{Context, Located, Outcome, Printer, human_size};
use crate::archive::{self, Counts, Stats};
use crate::atomic;
use crate::checksum::HashingReader;
use crate::error::{Error, IoContext, Result};
use crate::extract::{self, Extracted};
use crate::manifest::Entry;
use crate::progress::Progress;
use plan::{Found, Plan, Replace, plan};
use serde::Serialize;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

const READ_BUF: usize = 1 << 20;

/// Options of `resbak restore`.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Archive name from `list`, `STRATEGY`, `STRATEGY~N`, or a path (see
    /// [`locate_backup`](super::locate_backup)).
    pub archive: String,
    /// Destination folder instead of `<results>/<strategy>`.
    pub to: Option<PathBuf>,
    /// Back up and replace an existing destination.
    pub force: bool,
    /// Compression for the backup of an existing destination.
    pub archive_options: archive::Options,
    /// Restore only the paths these patterns cover (see [`archive::Excludes::covers`]).
    pub include: Option<archive::Excludes>,
    /// List what would be written; write nothing.
    pub dry_run: bool,
    /// The configuration file in use, which a restore must never replace.
    pub config_file: Option<PathBuf>,
}

/// Restores one archive: named, at a path, or picked by strategy (see
/// [`locate_backup`](super::locate_backup)). `--dry-run` makes every decision the real run makes
/// (see `plan`) and stops before writing.
pub fn run(ctx: &Context, opts: &RestoreOptions, printer: &mut Printer) -> Result<Outcome> {
    let plan = plan(ctx, opts, printer)?;
    if plan.located.picked.is_some() {
        let verb = if opts.dry_run {
            "Would restore"
        } else {
            "Restoring"
        };
        printer.line(format_args!("{verb} {}", plan.located.describe()))?;
    }
    let include = plan.include(opts);
    if opts.dry_run {
        return dry_run(&plan, include, printer);
    }
    let Plan {
        located,
        strategy,
        dest,
        holder,
        replace,
        ..
    } = &plan;
    let path = &located.path;
    crate::interrupt::so_far(
        format!("nothing was restored; {} is as it was", dest.display()),
        matches!(replace, Replace::Folder).then(|| {
            format!(
                "a safety copy of {0} was made; {0} is as it was",
                dest.display()
            )
        }),
    );
    let replaced = match replace {
        Replace::Nothing => None,
        Replace::Empty => Some(None),
        Replace::Folder => Some(Some(safety_copy(
            ctx, dest, strategy, holder, opts, printer,
        )?)),
        Replace::Unchanged(kept) => {
            printer.line(format_args!(
                "{} is unchanged since {}; {}",
                dest.display(),
                kept.backup_file,
                keeps(kept)
            ))?;
            Some(Some(Entry::clone(kept)))
        }
    };
    let existing = replaced.is_some();

    let parent = atomic::parent_dir(dest);
    fs::create_dir_all(parent).at("create folder", parent)?;
    super::clean_leftovers(parent, printer)?;
    warn_replaced_leftovers(parent, printer);
    let staging = atomic::staging_dir_in(parent)?;
    let restored = staging.path().join(strategy);
    let size = fs::metadata(path).at("read", path)?.len();
    let progress = printer.progress(size, format!("restoring {strategy}"));
    let extracted = extract_checked(located, staging.path(), strategy, include, &progress);
    progress.finish();
    let extracted = extracted.and_then(|(written, segments)| {
        let counts = written_counts(&restored, plan.selection.as_ref())?;
        Ok((written, segments, counts))
    });
    let done = match &replaced {
        Some(Some(kept)) => format!(
            "{} was restored from {}; {} keeps what it held",
            dest.display(),
            path.display(),
            kept.backup_file
        ),
        _ => format!("{} was restored from {}", dest.display(), path.display()),
    };
    let (written, segments, counts) = extracted.and_then(|(written, segments, counts)| {
        match (existing, include) {
            (true, Some(_)) => {
                sync_filesystem(&restored)?;
                // What is about to be overwritten must be what the safety copy holds.
                let saved = replaced.as_ref().and_then(|r| r.as_ref());
                let digest = saved.and_then(|e| e.meta_digest.as_deref());
                if !holds_only(dest, digest)? {
                    return Err(changed_since_copy(dest, saved));
                }
                let held = crate::interrupt::hold();
                merge_into(&restored, dest).map(|()| held.done(done))
            }
            _ => move_into_place(&restored, dest, replaced.as_ref(), &done, printer),
        }
        .map(|()| (written, segments, counts))
    })?;
    drop(staging);
    printer.line(format_args!(
        "Restored {} -> {} ({}, {})",
        path.display(),
        dest.display(),
        crate::error::count(written.files, "entry", "entries"),
        human_size(written.bytes)
    ))?;
    if let (Some(s), true) = (segments, printer.verbose()) {
        printer.line(format_args!("Inflated {} of {} segments", s.read, s.total))?;
    }
    printer.json_report(&Restored {
        archive: path.display().to_string(),
        destination: dest.display().to_string(),
        entries: written.files,
        files: counts.files,
        folders: counts.folders,
        links: counts.links,
        bytes: written.bytes,
        checked_against_manifest: located.entry.is_some(),
        replaced_backed_up_as: replaced.flatten().map(|e| e.backup_file),
        segments_read: segments.map(|s| s.read),
        segments: segments.map(|s| s.total),
    })?;
    Ok(Outcome::Clean)
}

/// The JSON shape of `restore --json`.
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The archive restored.
    pub archive: String,
    /// Where it went.
    pub destination: String,
    /// Entries written: files, folders and links.
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Folders written, the top folder included.
    pub folders: u64,
    /// Symbolic links written.
    pub links: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whether the archive was checked against a manifest entry.
    pub checked_against_manifest: bool,
    /// With `--force`: the backup holding the replaced folder, if it held anything: its new
    /// safety copy, or the newest regular backup or an existing safety copy when the folder was
    /// unchanged since it.
    pub replaced_backed_up_as: Option<String>,
    /// Segments inflated, read through the archive's intact index; `None` when the archive
    /// was read from the start (it has no index, or a damaged one).
    pub segments_read: Option<u64>,
    /// Segments in the archive, when read through its index.
    pub segments: Option<u64>,
}

/// Lists the entries a restore would write to `dest`; with `--include`, whether each is
/// created or overwritten. Says when an existing destination would be backed up first.
fn dry_run(
    plan: &Plan,
    include: Option<(&archive::Excludes, &extract::Selection)>,
    printer: &mut Printer,
) -> Result<Outcome> {
    // The checks a real restore makes as it reads: the restore policy and the checksum.
    let Plan {
        located,
        strategy,
        dest,
        ..
    } = plan;
    let path = &located.path;
    let scan = extract::scan(path, Some(strategy), &Progress::hidden())?;
    check_checksum(located, &scan.checksum.sha256)?;
    let entries: Vec<(PathBuf, bool, u64)> = match include {
        Some((_, selection)) => selection.entries.clone(),
        None => crate::diff::of_archive(path)?
            .into_iter()
            .map(|(rel, signature)| (rel, false, signature.size()))
            .collect(),
    };
    let (mut files, mut bytes, mut overwritten) = (0, 0, 0);
    let mut paths = Vec::new();
    for (rel, dir, size) in &entries {
        let target = dest.join(rel);
        let exists = fs::symlink_metadata(&target).is_ok();
        let mark = match (include.is_some(), exists, dir) {
            (false, ..) => "",
            (true, false, _) => "create     ",
            (true, true, true) => "keep       ",
            (true, true, false) => "overwrite  ",
        };
        overwritten += u64::from(include.is_some() && exists && !dir);
        paths.push(Planned {
            path: target.clone(),
            action: match mark.trim() {
                "" => "restore",
                action => action,
            },
            size: *size,
        });
        printer.line(format_args!(
            "{mark}{}  {}",
            target.display(),
            human_size(*size)
        ))?;
        files += 1;
        bytes += size;
    }
    let of_holder = match plan.holder == *strategy {
        true => String::new(),
        false => format!(" of strategy {}", plan.holder),
    };
    printer.json_report(&DryRun {
        archive: path.clone(),
        destination: dest.clone(),
        safety_copy: matches!(plan.replace, Replace::Folder),
        entries: files,
        bytes,
        overwritten,
        paths,
    })?;
    match (&plan.replace, include) {
        (Replace::Nothing, _) => {}
        (Replace::Empty, _) => printer.line(format_args!(
            "Would replace the empty folder {}",
            dest.display()
        ))?,
        (Replace::Folder, None) => printer.line(format_args!(
            "Would back up existing {} as a safety copy{of_holder}, then replace it",
            dest.display()
        ))?,
        (Replace::Folder, Some(_)) => printer.line(format_args!(
            "Would back up existing {} as a safety copy{of_holder}, then write into it",
            dest.display()
        ))?,
        (Replace::Unchanged(kept), _) => printer.line(format_args!(
            "Would make no safety copy: {} is unchanged since {}; {}",
            dest.display(),
            kept.backup_file,
            keeps(kept)
        ))?,
    }
    let detail = match include {
        Some(_) => format!(", {overwritten} of them overwritten"),
        None => String::new(),
    };
    printer.line(format_args!(
        "Would restore {} ({}) to {}{detail}",
        crate::error::count(files, "entry", "entries"),
        human_size(bytes),
        dest.display()
    ))?;
    Ok(Outcome::Clean)
}

/// What `restore --dry-run --json` reports.
#[derive(Debug, serde::Serialize)]
struct DryRun {
    /// The archive that would be restored.
    archive: PathBuf,
    /// Where.
    destination: PathBuf,
    /// Whether the folder there would first be kept as a safety copy.
    safety_copy: bool,
    /// Entries that would be written, and their bytes.
    entries: u64,
    bytes: u64,
    /// With `--include`: files that would be overwritten.
    overwritten: u64,
    /// Each path, with `restore`, or with `--include` `create`, `overwrite` or `keep`.
    paths: Vec<Planned>,
}

/// One path of a dry run.
#[derive(Debug, serde::Serialize)]
struct Planned {
    path: PathBuf,
    action: &'static str,
    size: u64,
}

/// Says which archive keeps a folder that needs no new safety copy.
fn keeps(kept: &Entry) -> &'static str {
    match kept.kind {
        crate::manifest::Kind::Safety => "that safety copy already holds it",
        crate::manifest::Kind::Regular => "that backup keeps it",
    }
}

/// What the restore wrote into `restored` (before it moves into place), by kind: everything,
/// or with `--include` the entries picked.
fn written_counts(restored: &Path, selection: Option<&extract::Selection>) -> Result<Counts> {
    let Some(selection) = selection else {
        return Ok(archive::survey(restored, &archive::Excludes::default())?.counts);
    };
    let mut counts = Counts::default();
    for (rel, ..) in &selection.entries {
        let path = restored.join(rel);
        let meta = fs::symlink_metadata(&path).at("read", &path)?;
        counts.add(archive::EntryKind::of_metadata(&meta));
    }
    Ok(counts)
}

/// Refuses an archive whose SHA-256 is not its manifest entry's; an archive the manifest does
/// not know has nothing to be checked against.
fn check_checksum(located: &Located, sha256: &str) -> Result<()> {
    match &located.entry {
        Some(entry) if entry.has_checksum() && entry.sha256 != sha256 => Err(Error::corrupt(
            &located.path,
            format!("SHA-256 is {sha256}, manifest says {}", entry.sha256),
        )),
        _ => Ok(()),
    }
}

/// Backs up the folder at `dest`, which a restore of `strategy` is about to replace, as a
/// safety copy of `holder` (the strategy whose data it holds), and says so. Everything in it
/// goes in, whatever the configured excludes.
fn safety_copy(
    ctx: &Context,
    dest: &Path,
    strategy: &str,
    holder: &str,
    opts: &RestoreOptions,
    printer: &mut Printer,
) -> Result<Entry> {
    let everything = archive::Options {
        excludes: archive::Excludes::default(),
        ..opts.archive_options.clone()
    };
    let (entry, changed) = backup_folder(
        ctx,
        holder,
        dest,
        &everything,
        crate::manifest::Kind::Safety.into(),
        printer,
    )?;
    // A file written while the copy was read may be in it torn or padded: that copy is not
    // enough to replace the folder with. It stays; the folder is left alone.
    if changed {
        return Err(Error::UnsafeDestination {
            path: dest.to_path_buf(),
            reason: format!(
                "files in it changed while its safety copy {} was made (named above); nothing \
                 was replaced; run the restore again once nothing writes there",
                entry.backup_file
            ),
        });
    }
    crate::interrupt::so_far(
        format!(
            "the safety copy {} was kept; {} is as it was",
            entry.backup_file,
            dest.display()
        ),
        None,
    );
    printer.line(format_args!(
        "Saved {} as safety copy {} before {}",
        dest.display(),
        ctx.backup_dir.join(&entry.backup_file).display(),
        match opts.include {
            Some(_) => "overwriting files in it",
            None => "replacing it",
        }
    ))?;
    if holder != strategy {
        printer.line(format_args!(
            "{} holds strategy {holder}; its safety copy is {}",
            dest.display(),
            entry.backup_file
        ))?;
    }
    Ok(entry)
}

/// Extracts `path` into `staging`, hashing it in the same pass, and checks it against its
/// manifest entry. Says how many segments it inflated, of how many, when it read them through
/// the archive's intact index: with `--include` only those it needs (see
/// [`extract::extract_partial`]).
fn extract_checked(
    located: &Located,
    staging: &Path,
    strategy: &str,
    include: Option<(&archive::Excludes, &extract::Selection)>,
    progress: &Progress,
) -> Result<(Stats, Option<extract::SegmentsRead>)> {
    let path = &located.path;
    let index_sha256 = located
        .entry
        .as_ref()
        .and_then(|e| e.index_sha256.as_deref());
    let hashed_beside = |extract: &dyn Fn() -> Result<Extracted>| {
        std::thread::scope(|scope| {
            let whole = scope.spawn(|| extract::scan(path, None, progress));
            let extracted = extract();
            let stopped = || Err(Error::corrupt(path, "hashing stopped unexpectedly"));
            let checksum = whole.join().unwrap_or_else(|_| stopped());
            (checksum.map(|s| s.checksum), extracted)
        })
    };
    if let Some((include, selection)) = include
        && let Some(read) = selection.segments_read()
    {
        let (checksum, extracted) = hashed_beside(&|| {
            extract::extract_partial(path, staging, strategy, include, selection)
        });
        check_checksum(located, &checksum?.sha256)?;
        // Only some entries were read: the archive's counts are proven by its SHA-256.
        return Ok((extracted?.written, Some(read)));
    }
    let (checksum, extracted, read) = match crate::index::segments_of(path, index_sha256) {
        Some(segments) => {
            let total = segments.len() as u64;
            let (checksum, extracted) = hashed_beside(&|| {
                extract::extract_segments(path, segments.clone(), staging, strategy, include)
            });
            let read = extract::SegmentsRead { read: total, total };
            (checksum, extracted, Some(read))
        }
        None => {
            warn_damaged_index(path, index_sha256);
            let file = archive::open_file(path)?;
            let reader = progress.reader(BufReader::with_capacity(READ_BUF, file));
            let mut hashing = HashingReader::new(reader);
            let extracted = match include {
                Some((include, selection)) => {
                    extract::extract_some(&mut hashing, path, staging, strategy, include, selection)
                }
                None => extract::extract(&mut hashing, path, staging, strategy),
            };
            let checksum = hashing
                .finish()
                .map_err(|e| Error::corrupt(path, e.to_string()));
            (checksum, extracted, None)
        }
    };
    check_checksum(located, &checksum?.sha256)?;
    let Some(entry) = located.entry.as_ref().filter(|e| e.has_checksum()) else {
        return Ok((extracted?.written, read));
    };
    let Extracted { stats, written } = extracted?;
    if (stats.files, stats.bytes) != (entry.entries, entry.bytes) {
        return Err(Error::corrupt(
            path,
            format!(
                "it holds {} and {}, manifest says {} and {}",
                crate::error::count(stats.files, "entry", "entries"),
                crate::error::count(stats.bytes, "byte", "bytes"),
                entry.entries,
                entry.bytes
            ),
        ));
    }
    Ok((written, read))
}

/// Warns when the manifest records an index for the archive at `path` that is damaged or gone:
/// the restore reads the whole archive instead, as correct but slower.
fn warn_damaged_index(path: &Path, index_sha256: Option<&str>) {
    if let Some(why) = index_sha256.and_then(|sha| crate::index::unusable(path, sha)) {
        super::warn_unusable_index(&why);
    }
}

/// Renames the restored folder to `dest`. An existing `dest` (`replaced`: the entry of its
/// safety copy, if it held anything) is moved aside first and put back if the rename fails;
/// then it is removed only if it still holds exactly what its safety copy holds, else kept
/// beside `dest` as `NAME.replaced-<UTC time>`. An interruption waits for the renames; after
/// them, `done` is what it says (see [`crate::interrupt::so_far`]).
fn move_into_place(
    restored: &Path,
    dest: &Path,
    replaced: Option<&Option<Entry>>,
    done: &str,
    printer: &mut Printer,
) -> Result<()> {
    let parent = atomic::parent_dir(dest);
    sync_filesystem(restored)?;
    let Some(saved) = replaced else {
        let held = crate::interrupt::hold();
        fs::rename(restored, dest).at("move restored folder to", dest)?;
        held.done(done);
        return atomic::sync_dir(parent);
    };
    // The replaced folder waits beside the destination until the new one is in place; it is
    // never removed on a failure path. The folder it waits in is made under the same hold as
    // the renames, so an interruption never leaves it behind holding only its marker.
    let held = crate::interrupt::hold();
    let aside = make_aside(parent)?;
    let old = aside.join("old");
    if let Err(e) = fs::rename(dest, &old) {
        let _ = atomic::remove_tree(&aside);
        return Err(Error::io("move aside", dest, e));
    }
    if let Err(e) = fs::rename(restored, dest) {
        fs::rename(&old, dest).at("put back", dest)?;
        let _ = atomic::remove_tree(&aside);
        return Err(Error::io("move restored folder to", dest, e));
    }
    held.done(done);
    atomic::sync_dir(parent)?;
    let digest = saved.as_ref().and_then(|e| e.meta_digest.as_deref());
    if !holds_only(&old, digest)? {
        let kept = keep_beside(&old, dest)?;
        let held = crate::interrupt::hold();
        let _ = atomic::remove_tree(&aside);
        drop(held);
        printer.warn(format_args!(
            "{} changed after its safety copy was taken; the replaced folder is kept as {}",
            dest.display(),
            kept.display()
        ));
        return Ok(());
    }
    // Its safety copy (or the backup that keeps it) holds the old folder: an interruption waits
    // for the removal to finish rather than leave a half-deleted copy beside the destination.
    let held = crate::interrupt::hold();
    let removed = atomic::remove_tree(&aside);
    drop(held);
    if let Err(e) = removed {
        printer.warn(format_args!(
            "could not remove the replaced folder {}: {e}",
            old.display()
        ));
    }
    Ok(())
}

/// Creates the folder the replaced destination waits in, with the marker that tells it from a
/// user's folder of a similar name (see [`super::is_aside`]).
fn make_aside(parent: &Path) -> Result<PathBuf> {
    let aside = tempfile::Builder::new()
        .prefix(super::ASIDE_PREFIX)
        .tempdir_in(parent)
        .at("create a temporary folder in", parent)?
        .keep();
    let marker = aside.join(super::ASIDE_MARKER);
    let note = "resbak: a forced restore moved the replaced folder into old/ here\n";
    if let Err(e) = fs::write(&marker, note) {
        let _ = fs::remove_dir(&aside);
        return Err(Error::io("create", &marker, e));
    }
    Ok(aside)
}

/// The refusal of an `--include` restore into `dest` after it changed since its safety copy.
fn changed_since_copy(dest: &Path, saved: Option<&Entry>) -> Error {
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
fn holds_only(folder: &Path, digest: Option<&str>) -> Result<bool> {
    match digest {
        Some(digest) => {
            let now = archive::digest(folder, &archive::Excludes::default(), false)?;
            Ok(now.meta == digest)
        }
        None => Ok(fs::read_dir(folder).at("read", folder)?.next().is_none()),
    }
}

/// Moves `old` to `<dest>.replaced-<UTC time>` (with `-N` if taken) and returns that path.
/// The marker [`super::replaced_marker`] is written beside it first, so that a backup of every
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
        let marker = super::replaced_marker(&kept);
        if fs::symlink_metadata(&kept).is_err() && fs::symlink_metadata(&marker).is_err() {
            let text = super::replaced_marker_text(&format!("{name}.replaced-{stamp}{suffix}"));
            atomic::write_file(&marker, |w| {
                w.write_all(text.as_bytes()).at("write", &marker)
            })?;
            if let Err(e) = fs::rename(old, &kept) {
                let _ = fs::remove_file(&marker);
                return Err(Error::io("keep the replaced folder as", &kept, e));
            }
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
fn merge_into(restored: &Path, dest: &Path) -> Result<()> {
    let mut moves = Vec::new();
    let mut walk = walkdir::WalkDir::new(restored)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(item) = walk.next() {
        let item = item.map_err(|e| Error::io("read", restored, e.into()))?;
        let rel = item.path().strip_prefix(restored).unwrap_or(item.path());
        let target = dest.join(rel);
        let folder = item.file_type().is_dir();
        match plan::conflict(&target, folder)? {
            Found::Nothing => {
                if folder {
                    walk.skip_current_dir();
                }
            }
            Found::Fits if folder => continue,
            Found::Fits => {}
            Found::Conflict(why) => {
                return Err(Error::io("overwrite", &target, std::io::Error::other(why)));
            }
        }
        moves.push((item.path().to_path_buf(), target));
    }
    for (from, to) in &moves {
        fs::rename(from, to).at("move restored entry to", to)?;
    }
    sync_filesystem(dest)
}

/// Makes everything written to the file system holding `folder` durable: restored files before
/// they replace anything (one syncfs, not an fsync per file), or the renames that put them in
/// place.
fn sync_filesystem(folder: &Path) -> Result<()> {
    let open = File::open(folder).at("open", folder)?;
    rustix::fs::syncfs(&open).map_err(|e| Error::io("sync", folder, e.into()))
}

/// Points at folders an interrupted `--force` restore left beside the destination: they hold
/// the replaced results (which were backed up first), so they are reported, never removed.
/// One that holds only its marker holds nothing of the user's: it is removed.
fn warn_replaced_leftovers(parent: &Path, printer: &mut Printer) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for item in entries.flatten() {
        if super::is_aside(&item.path()) {
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
        names == [std::ffi::OsStr::new(super::ASIDE_MARKER)]
    });
    if !only_marker {
        return false;
    }
    let marker = aside.join(super::ASIDE_MARKER);
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

/// `restore --remote`: pulls the archive from the remote unless the backup folder already has
/// it, then restores as usual (with the same checks).
pub fn run_remote(
    ctx: &Context,
    remote: &crate::remote::Remote,
    opts: &RestoreOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let name = super::pull::archive_name(&opts.archive);
    let manifest = crate::manifest::Manifest::load(&ctx.backup_dir)?;
    let here = manifest.find(&name).is_some() && ctx.backup_dir.join(&name).is_file();
    if !here {
        super::pull::pull(ctx, remote, &opts.archive, printer)?;
    }
    let local = RestoreOptions {
        archive: name,
        ..opts.clone()
    };
    run(ctx, &local, printer)
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
        assert!(super::super::is_aside(&full), "kept with its marker");
    }

    #[test]
    fn the_folder_a_swap_waits_in_is_known_by_its_marker_not_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let aside = make_aside(dir.path()).unwrap();
        fs::create_dir(aside.join("old")).unwrap();
        assert!(
            super::super::set_aside(&aside),
            "resbak's: never a strategy"
        );
        let mine = dir
            .path()
            .join(format!("{}mine", super::super::ASIDE_PREFIX));
        fs::create_dir_all(mine.join("old")).unwrap();
        assert!(
            !super::super::set_aside(&mine),
            "a user's folder of that name"
        );
        let linked = dir
            .path()
            .join(format!("{}linked", super::super::ASIDE_PREFIX));
        fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(
            aside.join(super::super::ASIDE_MARKER),
            linked.join(".resbak-aside"),
        )
        .unwrap();
        assert!(
            !super::super::set_aside(&linked),
            "a marker behind a link proves nothing"
        );
    }
}
