//! What a restore decides before it writes: the archive and its strategy, a destination that
//! overlaps nothing the restore reads or keeps, the strategy that destination holds, what
//! `--include` picks, and what happens to what is there now.

use super::{READ_BUF, RestoreOptions};
use crate::archive;
use crate::atomic;
use crate::commands::backup::{damage, holding};
use crate::commands::{
    ArchiveName, Context, Located, Printer, check_strategy_name, locate_backup, resolved, set_aside,
};
use crate::error::{Error, IoContext, Result};
use crate::extract;
use crate::manifest::{Entry, Kind, Lock, LockFile, Manifest};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Everything a restore decides before it writes anything; the real run and `--dry-run` both
/// start from it, so a dry run refuses exactly what the real run refuses.
pub(super) struct Plan {
    /// The archive.
    pub(super) located: Located,
    /// Its strategy (its top folder).
    pub(super) strategy: String,
    /// Where it goes.
    pub(super) dest: PathBuf,
    /// The strategy whose data the destination holds: its folder name when it lies directly in
    /// the results folder, else the archive's strategy. Its safety copy is filed under it.
    pub(super) holder: String,
    /// What happens to what is at `dest` now.
    pub(super) replace: Replace,
    /// With `--include`: what the patterns pick.
    pub(super) selection: Option<extract::Selection>,
    /// Keeps catalogued archives from being pruned while they are read.
    _reading: Option<Lock>,
}

impl Plan {
    /// The `--include` patterns with what they pick.
    pub(super) fn include<'a>(
        &'a self,
        opts: &'a RestoreOptions,
    ) -> Option<(&'a archive::Excludes, &'a extract::Selection)> {
        opts.include.as_ref().zip(self.selection.as_ref())
    }
}

/// What a restore does with its destination.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Replace {
    /// Nothing is there: the restored folder is moved there.
    Nothing,
    /// An empty folder (with `--force`): replaced, no safety copy needed.
    Empty,
    /// A folder holding something (with `--force`): backed up as a safety copy first.
    Folder,
    /// A folder (with `--force`) unchanged since this intact regular backup or safety copy of
    /// its strategy: that archive keeps it, so no safety copy is made.
    Unchanged(Box<Entry>),
}

/// Makes every check and decision of a restore, in the order the real run needs them: the
/// archive and its strategy, the destination (never overlapping what the restore reads or
/// keeps), the archive's size against its manifest entry, what `--include` picks, and what
/// happens to an existing destination. The checksum is checked as the archive is read.
pub(super) fn plan(ctx: &Context, opts: &RestoreOptions, printer: &mut Printer) -> Result<Plan> {
    let located = locate_backup(ctx, &opts.archive)?;
    let path = &located.path;
    let strategy = located.strategy()?;
    let dest = match &opts.to {
        Some(to) => to.clone(),
        None => default_destination(ctx, &located, &strategy)?,
    };
    check_destination(ctx, &located, &dest, opts)?;
    let holder = holder(ctx, &dest, &strategy)?;
    let reading = match located.entry {
        Some(_) => Some(Lock::shared(atomic::parent_dir(path), LockFile::Archives)?),
        None => None,
    };
    match &located.entry {
        Some(entry) => {
            let size = match fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::Missing { path: path.clone() });
                }
                other => other.at("read", path)?.len(),
            };
            if size != entry.size {
                check_size_only(path, entry, size)?;
            }
        }
        None => printer.warn(format_args!(
            "{} is not in the manifest: it cannot be checked against a recorded checksum",
            path.display()
        )),
    }
    let selection = match &opts.include {
        Some(include) => Some(select(&located, &strategy, include)?),
        None => None,
    };
    let replace = replace(ctx, &dest, &holder, opts)?;
    match (&selection, replace == Replace::Nothing) {
        (Some(selection), false) => check_merge(&dest, selection)?,
        (None, false) => {
            check_room(&dest)?;
            check_movable(&dest)?;
        }
        _ => check_room(&dest)?,
    }
    if let (Replace::Folder, Some(entry)) = (&replace, &located.entry) {
        // Read in full before a safety copy is written: a damaged archive would fail the
        // restore after its safety copy, and each such try would add one.
        if let Some(problem) = damage(atomic::parent_dir(path), entry, opts.dry_run) {
            return Err(Error::corrupt(
                path,
                format!("checked before any safety copy was made, it {problem}"),
            ));
        }
    }
    Ok(Plan {
        located,
        strategy,
        dest,
        holder,
        replace,
        selection,
        _reading: reading,
    })
}

/// `<results>/<strategy>`, unless the archive's file name names another strategy than the
/// folder it holds: then only `--to` may say where it goes.
fn default_destination(ctx: &Context, located: &Located, strategy: &str) -> Result<PathBuf> {
    let dest = ctx.results_dir.join(strategy);
    let file = located
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    match ArchiveName::parse(&file) {
        Some(name) if name.strategy != strategy => Err(Error::UnsafeDestination {
            path: dest,
            reason: match located.entry {
                // The strategy is the entry's, which may be what is wrong.
                Some(_) => format!(
                    "archive {file} is named for strategy {:?} but its manifest entry says \
                     strategy {strategy:?}; correct the entry",
                    name.strategy
                ),
                None => format!(
                    "archive {file} is named for strategy {:?} but holds the folder \
                     {strategy:?}; name the destination with --to",
                    name.strategy
                ),
            },
        }),
        _ => Ok(dest),
    }
}

/// The strategy whose data `dest` holds: its folder name when it lies directly in the results
/// folder (and is a plain name, not one of resbak's own), else the archive's `strategy`.
fn holder(ctx: &Context, dest: &Path, strategy: &str) -> Result<String> {
    let results = resolved(&ctx.results_dir)?;
    let parent = resolved(atomic::parent_dir(dest))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(match name {
        Some(name)
            if parent == results && check_strategy_name(&name).is_ok() && !set_aside(dest) =>
        {
            name
        }
        _ => strategy.to_string(),
    })
}

/// Refuses a destination that equals, contains or lies inside the backup folder, the archive,
/// a manifest involved or the configuration file in use, that equals or contains the results
/// folder (replacing it would replace every strategy), or (with `--force`) that lies nested
/// inside a strategy folder, before anything is touched.
fn check_destination(
    ctx: &Context,
    located: &Located,
    dest: &Path,
    opts: &RestoreOptions,
) -> Result<()> {
    let manifest = crate::manifest::Manifest::path;
    // The manifest beside the archive, when it is the one that catalogues it.
    let catalogue = located
        .entry
        .as_ref()
        .map(|_| atomic::parent_dir(&located.path));
    let kept = [
        ("the backup folder", ctx.backup_dir.clone()),
        ("the manifest", manifest(&ctx.backup_dir)),
        ("the archive", located.path.clone()),
    ];
    let more = [
        catalogue.map(|dir| ("the manifest", manifest(dir))),
        opts.config_file
            .clone()
            .map(|c| ("the configuration file", c)),
    ];
    let to = resolved(dest)?;
    for (what, path) in kept.into_iter().chain(more.into_iter().flatten()) {
        let path = resolved(&path)?;
        let relation = if to == path {
            "is"
        } else if path.starts_with(&to) {
            "contains"
        } else if to.starts_with(&path) {
            "lies inside"
        } else {
            continue;
        };
        return Err(Error::UnsafeDestination {
            path: dest.to_path_buf(),
            reason: format!("it {relation} {what} {}", path.display()),
        });
    }
    // Inside the results folder is where strategies go; the folder itself or above holds
    // every strategy.
    let results = resolved(&ctx.results_dir)?;
    if results.starts_with(&to) {
        let relation = if to == results { "is" } else { "contains" };
        return Err(Error::UnsafeDestination {
            path: dest.to_path_buf(),
            reason: format!(
                "it {relation} the results folder {}, which holds every strategy; restore \
                 into one strategy folder, such as {}",
                ctx.results_dir.display(),
                ctx.results_dir.join(located.strategy()?).display()
            ),
        });
    }
    // Nested inside a strategy folder, what a forced restore replaces is part of that strategy:
    // its safety copy could not be filed under any strategy and restored where it came from.
    if let Ok(inside) = to.strip_prefix(&results)
        && opts.force
        && inside.components().count() > 1
        && let Some(std::path::Component::Normal(name)) = inside.components().next()
    {
        let name = name.to_string_lossy();
        return Err(Error::UnsafeDestination {
            path: dest.to_path_buf(),
            reason: format!(
                "it lies inside strategy {name}'s folder; restore into {} (with --include to \
                 restore part of it) or outside the results folder",
                ctx.results_dir.join(&*name).display()
            ),
        });
    }
    Ok(())
}

/// What `--include` picks from the archive, from its index when the manifest records one and it
/// is intact (then only the segments it needs are read); refuses a pattern that matches nothing.
fn select(
    located: &Located,
    strategy: &str,
    include: &archive::Excludes,
) -> Result<extract::Selection> {
    let path = &located.path;
    let index_sha256 = located
        .entry
        .as_ref()
        .and_then(|e| e.index_sha256.as_deref());
    let indexed = match index_sha256 {
        Some(sha) => {
            let index = crate::index::path_for(path);
            extract::select_indexed(&index, sha, strategy, include)?
        }
        None => None,
    };
    let selection = match indexed {
        Some(selection) => selection,
        None => {
            let file = archive::open_file(path)?;
            let reader = BufReader::with_capacity(READ_BUF, file);
            extract::select(reader, path, strategy, include)?
        }
    };
    match selection.unmatched.first() {
        Some(unmatched) => Err(Error::NotInArchive {
            what: "--include",
            pattern: unmatched.pattern.clone(),
            path: path.clone(),
            meant: unmatched.meant.clone(),
        }),
        None => Ok(selection),
    }
}

/// What to do with the destination: nothing is there, or (only with `force`) an empty folder
/// to replace, a folder its strategy's newest intact regular backup or an intact safety copy
/// already holds (see [`kept_by`]), or a folder to back up as a safety
/// copy of `holder` first.
/// Refuses an existing destination without `force`, one that is not a folder, and one whose
/// safety copy could not be restored (see [`check_restorable`]).
fn replace(ctx: &Context, dest: &Path, holder: &str, opts: &RestoreOptions) -> Result<Replace> {
    let Ok(meta) = fs::symlink_metadata(dest) else {
        return Ok(Replace::Nothing);
    };
    // Not a folder: refused with or without --force, so the way out named is the one that works.
    if !meta.is_dir() {
        return Err(Error::io(
            "replace",
            dest,
            std::io::Error::other("it is not a folder; move it away first"),
        ));
    }
    if !opts.force {
        return Err(Error::DestinationExists {
            path: dest.to_path_buf(),
            merging: opts.include.is_some(),
        });
    }
    if fs::read_dir(dest).at("read", dest)?.next().is_none() {
        return Ok(Replace::Empty);
    }
    check_restorable(dest, holder)?;
    Ok(match kept_by(ctx, holder, dest, opts.dry_run)? {
        Some(kept) => Replace::Unchanged(Box::new(kept)),
        None => Replace::Folder,
    })
}

/// Refuses an `--include` restore into the existing folder `dest` that would have to put a
/// file where `dest` has a folder, a folder where it has a file, or write where it has a link
/// in place of a folder (into the link, or through it), or put an entry into a folder this
/// user cannot write: checked against what `selection` picks, and every folder above it,
/// before anything is written (and before any safety copy).
fn check_merge(dest: &Path, selection: &extract::Selection) -> Result<()> {
    for (rel, folder, _) in &selection.entries {
        let mut target = dest.to_path_buf();
        let mut parts = rel.components().peekable();
        while let Some(part) = parts.next() {
            target.push(part);
            // Every folder above a picked entry is a folder in the archive too.
            let folder = *folder || parts.peek().is_some();
            let found = conflict(&target, folder)?;
            // What is not a folder kept and filled is moved into the folder above it.
            if !(folder && matches!(found, Found::Fits)) {
                check_writable(atomic::parent_dir(&target))?;
            }
            match found {
                Found::Nothing => break,
                Found::Fits => {}
                Found::Conflict(why) => {
                    return Err(Error::io("overwrite", target, std::io::Error::other(why)));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a destination whose folder this user cannot write (or, where folders above it are
/// missing, the nearest that exists): the restore is staged there and renamed into place.
fn check_room(dest: &Path) -> Result<()> {
    let mut at = atomic::parent_dir(dest);
    while fs::symlink_metadata(at).is_err() && atomic::parent_dir(at) != at {
        at = atomic::parent_dir(at);
    }
    check_writable(at)
}

/// An archive of another size than its entry records: corrupt, unless its SHA-256 is still the
/// recorded one, which proves the bytes and makes the size a hand edit of the entry (said, as
/// `verify` says it, and the restore goes on).
fn check_size_only(path: &Path, entry: &Entry, size: u64) -> Result<()> {
    let detail = format!("size is {size} bytes, manifest says {}", entry.size);
    match crate::commands::verify::intact_despite_size(path, entry) {
        Some(_) => {
            super::warn_wrong_entry(entry, format_args!("{detail}; correct its size to {size}"));
            Ok(())
        }
        None => Err(Error::corrupt(path, detail)),
    }
}

/// Refuses the folder `at` unless this user can create entries in it.
fn check_writable(at: &Path) -> Result<()> {
    let (w, x) = (rustix::fs::Access::WRITE_OK, rustix::fs::Access::EXEC_OK);
    rustix::fs::access(at, w | x).map_err(|e| Error::io("write into", at, e.into()))
}

/// Refuses an existing destination this user can neither write nor make writable (another
/// user's read-only folder): it is moved aside whole, which needs it writable.
fn check_movable(dest: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if rustix::fs::access(dest, rustix::fs::Access::WRITE_OK).is_ok() {
        return Ok(());
    }
    let meta = fs::symlink_metadata(dest).at("read", dest)?;
    match meta.uid() == rustix::process::geteuid().as_raw() {
        true => Ok(()),
        false => Err(Error::io(
            "move aside",
            dest,
            std::io::Error::other("it is read-only and another user's"),
        )),
    }
}

/// What is at a path a restore writes an entry to (a `folder` or not) into an existing folder.
pub(super) enum Found {
    /// Nothing: the entry is created, a folder with all it holds.
    Nothing,
    /// The same kind of thing: a file or link is overwritten, a folder kept and filled.
    Fits,
    /// Something the entry cannot replace, and why.
    Conflict(&'static str),
}

/// What is at `target`, where the restore writes an entry of the archive (a `folder` or not).
pub(super) fn conflict(target: &Path, folder: bool) -> Result<Found> {
    let meta = match fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        other => other.at("read", target)?,
    };
    use archive::EntryKind;
    Ok(match (folder, EntryKind::of_metadata(&meta)) {
        (true, EntryKind::Folder) => Found::Fits,
        (false, EntryKind::Folder) => {
            Found::Conflict("the archive holds a file where it has a folder")
        }
        (false, _) => Found::Fits,
        (true, EntryKind::Symlink) => Found::Conflict(
            "it is a link where the archive holds a folder; a restore never writes through a \
             link, so move the link away first",
        ),
        (true, _) => Found::Conflict("the archive holds a folder where it has a file"),
    })
}

/// The backup that already holds everything in `folder` as it is now (nothing excluded) and
/// whose archive still matches the manifest: the newest regular backup of `strategy`, else its
/// newest such safety copy. A new safety copy would only repeat it, and copies would pile up
/// until retention prunes older, different ones.
fn kept_by(ctx: &Context, strategy: &str, folder: &Path, dry_run: bool) -> Result<Option<Entry>> {
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let copies = manifest.newest_first(strategy, Kind::Safety);
    let candidates: Vec<&Entry> = manifest
        .latest_regular(strategy)
        .into_iter()
        .chain(copies)
        .collect();
    let everything = archive::Excludes::default();
    Ok(holding(folder, &everything, &candidates)?
        .into_iter()
        .find(|e| damage(&ctx.backup_dir, e, dry_run).is_none())
        .cloned())
}

/// Refuses to replace `dest` when it holds a link the restore policy refuses (its target lies
/// outside the folder, or climbs with `..` after a name): a safety copy holds everything about
/// to be deleted, excludes or not, and a safety copy with such a link could not be restored.
/// The way on is to move the link out of the folder, not to leave it out of the copy.
fn check_restorable(dest: &Path, strategy: &str) -> Result<()> {
    for item in archive::walk(dest, &archive::Excludes::default()) {
        let archive::Walked {
            path, rel, kind, ..
        } = item?;
        if kind != archive::EntryKind::Symlink {
            continue;
        }
        let target = fs::read_link(&path).at("read link", &path)?;
        if let Err(reason) = extract::symlink_stays_inside(&Path::new(strategy).join(&rel), &target)
        {
            return Err(Error::UnsafeDestination {
                path: dest.to_path_buf(),
                reason: format!(
                    "its link {} cannot go into the safety copy taken before replacing it: \
                     {reason}, so the copy could not be restored; move the link out of the \
                     folder, then run the restore again",
                    rel.display()
                ),
            });
        }
    }
    Ok(())
}
