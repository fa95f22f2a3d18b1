//! `resbak restore`: bring a strategy folder back from an archive, safely.
//!
//! The archive is extracted into a temporary folder beside the destination while its SHA-256 is
//! computed in the same pass; only an archive that matches its manifest entry and extracted
//! completely is moved into place. An existing destination is replaced only with `force`, and
//! only after it was itself backed up.
//!
//! This file runs the steps in order; each lives in its own module: `plan` (every decision made
//! before writing), `safety_copy`, `extraction` (the checked extraction), `place` (moving into
//! place or merging, and the replaced folder) and `dry_run`.

mod dry_run;
mod extraction;
mod place;
mod plan;
mod safety_copy;

use super::{Context, Outcome, Printer, human_size};
use crate::archive;
use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Manifest};
use dry_run::dry_run;
use extraction::extract_checked;
use place::{
    begin_merge, changed_since_copy, end_merge, holds_only, merge_into, move_into_place,
    sync_filesystem, warn_replaced_leftovers,
};
use plan::{Plan, Replace, plan};
use safety_copy::safety_copy;
use serde::Serialize;
use std::fs;
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
    crate::interrupt::so_far("nothing was changed", None);
    restore(ctx, opts, printer).map_err(|error| match &error {
        Error::Corrupt { .. } | Error::Missing { .. } => match hint_older(ctx, opts) {
            Some(hint) => Error::Hinted {
                error: Box::new(error),
                hint,
            },
            None => error,
        },
        _ => error,
    })
}

/// After a backup picked as `STRATEGY` or `STRATEGY~N` turned out damaged or gone, a hint
/// naming the next older regular backup that `list` would not call `missing` or `failed`, if any, with the
/// Warns that `entry` is wrong, not its archive, whose SHA-256 is the recorded one: `detail`
/// says what differs and the value to correct. The restore goes on; the bytes are proven.
fn warn_wrong_entry(entry: &Entry, detail: impl std::fmt::Display) {
    super::warn(format_args!(
        "the manifest entry of {} is wrong, not the archive (its SHA-256 is the one recorded): \
         {detail}",
        entry.backup_file
    ));
}

/// destination the restore was given.
fn hint_older(ctx: &Context, opts: &RestoreOptions) -> Option<String> {
    let Ok(super::Located {
        picked: Some(pick), ..
    }) = super::locate_backup(ctx, &opts.archive)
    else {
        return None;
    };
    let manifest = crate::manifest::Manifest::load(&ctx.backup_dir).ok()?;
    let older =
        super::list::newest_usable(&ctx.backup_dir, &manifest, &pick.strategy, pick.back + 1);
    let (n, entry) = older?;
    let name = format!("{}~{n}", pick.strategy);
    let mut to = opts.to.as_ref().map_or(String::new(), |to| {
        format!(
            " --to {}",
            crate::error::shell_quoted(&to.display().to_string())
        )
    });
    // The options given, but for --include, whose patterns would need quoting each.
    for (given, option) in [(opts.force, " --force"), (opts.dry_run, " --dry-run")] {
        if given {
            to.push_str(option);
        }
    }
    Some(format!(
        "the next older backup, {} ({name}), is not known to be damaged: `resbak restore \
         {name}{to}` restores it",
        entry.backup_file
    ))
}

/// Restores as [`run`] says.
fn restore(ctx: &Context, opts: &RestoreOptions, printer: &mut Printer) -> Result<Outcome> {
    let plan = plan(ctx, opts, printer)?;
    if plan.located.picked.is_some() {
        let verb = if opts.dry_run {
            "Would restore"
        } else {
            "Restoring"
        };
        printer.line(format_args!("{verb} {}", plan.located.describe()))?;
        super::warn_untracked_pick(ctx, &plan.located, &opts.archive, printer);
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
        match fs::symlink_metadata(dest) {
            Ok(_) => format!("nothing was restored; {} is as it was", dest.display()),
            Err(_) => format!("nothing was restored; {} was not made", dest.display()),
        },
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
    // Folders made for the destination are removed again if the restore fails.
    let made = MadeFolders::create(parent)?;
    super::clean_leftovers(parent, printer)?;
    warn_replaced_leftovers(parent, printer);
    let staging = atomic::staging_dir_in(parent)?;
    let restored = staging.path().join(strategy);
    let size = fs::metadata(path).at("read", path)?.len();
    let progress = printer.progress(size, format!("restoring {strategy}"));
    let extracted = extract_checked(located, staging.path(), strategy, include, &progress);
    progress.finish();
    let done = match &replaced {
        Some(Some(kept)) => format!(
            "{} was restored from {}; {} keeps what it held",
            dest.display(),
            path.display(),
            kept.backup_file
        ),
        _ => format!("{} was restored from {}", dest.display(), path.display()),
    };
    // Counts come from the extraction: a folder restored without read permission cannot be walked.
    let (written, counts, segments) = extracted.and_then(|(written, counts, segments)| {
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
                let patterns = include.map_or(&[][..], |(e, _)| e.patterns());
                begin_merge(dest, &name_of(path), patterns, saved)?;
                merge_into(&restored, dest).map(|()| held.done(done))
            }
            _ => move_into_place(&restored, dest, replaced.as_ref(), &done, printer),
        }
        .map(|()| (written, counts, segments))
    })?;
    made.keep();
    let patterns = include.map(|(e, _)| e.patterns());
    end_merge(dest, &name_of(path), patterns, printer);
    drop(staging);
    printer.line(format_args!(
        "Restored {} -> {} ({}): {counts}",
        path.display(),
        dest.display(),
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

/// The file name of the archive at `path`.
fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
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

/// Says which archive keeps a folder that needs no new safety copy.
fn keeps(kept: &Entry) -> &'static str {
    match kept.kind {
        crate::manifest::Kind::Safety => "that safety copy already holds it",
        crate::manifest::Kind::Regular => "that backup keeps it",
    }
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
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let here = manifest.find(&name).is_some() && ctx.backup_dir.join(&name).is_file();
    if !here {
        super::pull::pull(ctx, remote, &opts.archive, printer)?;
    }
    let local = RestoreOptions {
        archive: name.clone(),
        ..opts.clone()
    };
    match run(ctx, &local, printer) {
        // The archive here is damaged: say that the remote holds the backup.
        Err(Error::Corrupt { path, detail }) if here && holds(remote, &manifest, &name) => {
            let there = super::pull::intact_there(remote, &path, &name);
            Err(Error::Corrupt {
                detail: format!("{detail}; {there}"),
                path,
            })
        }
        done => done,
    }
}

/// Whether `remote` catalogues the same backup as `manifest` under archive `name` (no when it
/// cannot be asked: the error at hand is the one to report).
fn holds(remote: &crate::remote::Remote, manifest: &Manifest, name: &str) -> bool {
    match (manifest.find(name), remote.read_entry(name).ok().flatten()) {
        (Some(here), Some(there)) => super::push::same(here, &there.entry),
        _ => false,
    }
}

/// The folders [`MadeFolders::create`] made above a destination, removed again (if still
/// empty) when dropped before [`MadeFolders::keep`]: a failed restore leaves none behind.
struct MadeFolders(Vec<std::path::PathBuf>);

impl MadeFolders {
    /// Creates `dir` and the folders above it that are missing.
    fn create(dir: &Path) -> Result<MadeFolders> {
        let missing = dir
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(dir).at("create folder", dir)?;
        Ok(MadeFolders(missing))
    }

    /// The restore succeeded: the folders stay.
    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for MadeFolders {
    fn drop(&mut self) {
        // Deepest first; a folder something else was put in meanwhile stays.
        for dir in &self.0 {
            let _ = fs::remove_dir(dir);
        }
    }
}
