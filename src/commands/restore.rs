//! `resbak restore`: bring a strategy folder back from an archive, safely.
//!
//! The archive is extracted into a temporary folder beside the destination while its SHA-256 is
//! computed in the same pass; only an archive that matches its manifest entry and extracted
//! completely is moved into place. An existing destination is replaced only with `force`, and
//! only after it was itself backed up.

use super::backup::backup_folder;
use super::{Context, Located, Outcome, Printer, human_size, locate};
use crate::archive::{self, Stats};
use crate::atomic;
use crate::checksum::HashingReader;
use crate::error::{Error, IoContext, Result};
use crate::extract::{self, Extracted};
use crate::manifest::{Lock, LockFile};
use crate::progress::Progress;
use serde::Serialize;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

const READ_BUF: usize = 1 << 20;

/// Prefix of the folder a replaced destination waits in until the restored one is in place.
const REPLACED_PREFIX: &str = ".resbak-replaced-";

/// Options of `resbak restore`.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Archive name from `list`, or a path.
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
}

/// Restores one archive.
pub fn run(ctx: &Context, opts: &RestoreOptions, printer: &mut Printer) -> Result<Outcome> {
    let located = locate(ctx, &opts.archive)?;
    let path = &located.path;
    let _reading = match located.entry {
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
                let detail = format!("size is {size} bytes, manifest says {}", entry.size);
                return Err(Error::corrupt(path, detail));
            }
        }
        None => printer.warn(format_args!(
            "{} is not in the manifest: it cannot be checked against a recorded checksum",
            path.display()
        )),
    }
    let strategy = located.strategy()?;
    let dest = opts
        .to
        .clone()
        .unwrap_or_else(|| ctx.results_dir.join(&strategy));
    if opts.dry_run {
        return dry_run(&located, &strategy, &dest, opts.include.as_ref(), printer);
    }
    let replaced = prepare_destination(ctx, &dest, &strategy, opts, printer)?;
    let existing = replaced.is_some();

    let parent = atomic::parent_dir(&dest);
    fs::create_dir_all(parent).at("create folder", parent)?;
    super::clean_leftovers(parent, printer)?;
    warn_replaced_leftovers(parent, printer);
    let staging = atomic::staging_dir_in(parent)?;
    let restored = staging.path().join(&strategy);
    let size = fs::metadata(path).at("read", path)?.len();
    let progress = printer.progress(size, format!("restoring {strategy}"));
    let extracted = extract_checked(
        &located,
        staging.path(),
        &strategy,
        opts.include.as_ref(),
        &progress,
    );
    progress.finish();
    let written = extracted.and_then(|written| {
        move_into_place(&restored, &dest, existing, printer).map(|()| written)
    })?;
    drop(staging);
    printer.line(format_args!(
        "Restored {} -> {} ({} entries, {})",
        path.display(),
        dest.display(),
        written.files,
        human_size(written.bytes)
    ))?;
    printer.json_report(&Restored {
        archive: path.display().to_string(),
        destination: dest.display().to_string(),
        entries: written.files,
        bytes: written.bytes,
        checked_against_manifest: located.entry.is_some(),
        replaced_backed_up_as: replaced.flatten(),
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
    /// Entries written.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whether the archive was checked against a manifest entry.
    pub checked_against_manifest: bool,
    /// With `--force`: the backup made of the replaced folder, if it held anything.
    pub replaced_backed_up_as: Option<String>,
}

/// Lists the entries a restore would write to `dest`.
fn dry_run(
    located: &Located,
    strategy: &str,
    dest: &Path,
    include: Option<&archive::Excludes>,
    printer: &mut Printer,
) -> Result<Outcome> {
    // The same checks a real restore makes: the restore policy and the checksum.
    let path = &located.path;
    let scan = extract::scan(path, Some(strategy), &Progress::hidden())?;
    if let Some(entry) = &located.entry
        && scan.checksum.sha256 != entry.sha256
    {
        let detail = format!(
            "SHA-256 is {}, manifest says {}",
            scan.checksum.sha256, entry.sha256
        );
        return Err(Error::corrupt(path, detail));
    }
    let tree = crate::diff::of_archive(path)?;
    let (mut files, mut bytes) = (0, 0);
    for (rel, signature) in &tree {
        let top = rel.as_os_str().is_empty();
        if top || include.is_none_or(|g| g.covers(rel)) {
            printer.line(format_args!(
                "{}  {}",
                dest.join(rel).display(),
                human_size(signature.size())
            ))?;
            files += 1;
            bytes += signature.size();
        }
    }
    printer.line(format_args!(
        "Would restore {files} entries ({}) to {}",
        human_size(bytes),
        dest.display()
    ))?;
    Ok(Outcome::Clean)
}

/// Refuses an existing destination unless `force`; with `force`, backs it up first (if it holds
/// anything). Returns `None` when there is nothing to replace, else the backup made of it (if
/// it held anything).
fn prepare_destination(
    ctx: &Context,
    dest: &Path,
    strategy: &str,
    opts: &RestoreOptions,
    printer: &mut Printer,
) -> Result<Option<Option<String>>> {
    let Ok(meta) = fs::symlink_metadata(dest) else {
        return Ok(None);
    };
    if !opts.force {
        return Err(Error::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(Error::io(
            "replace",
            dest,
            std::io::Error::other("it is not a folder; move it away first"),
        ));
    }
    if fs::read_dir(dest).at("read", dest)?.next().is_none() {
        return Ok(Some(None));
    }
    // Everything in the folder, whatever the configured excludes: it is about to be replaced.
    let everything = archive::Options {
        excludes: archive::Excludes::default(),
        ..opts.archive_options.clone()
    };
    let entry = backup_folder(
        ctx,
        strategy,
        dest,
        &everything,
        crate::manifest::Kind::Safety,
        printer,
    )?;
    printer.line(format_args!(
        "Backed up existing {} -> {} before replacing it",
        dest.display(),
        ctx.backup_dir.join(&entry.backup_file).display()
    ))?;
    Ok(Some(Some(entry.backup_file)))
}

/// Extracts `path` into `staging`, hashing it in the same pass, and checks it against `entry`.
fn extract_checked(
    located: &Located,
    staging: &Path,
    strategy: &str,
    include: Option<&archive::Excludes>,
    progress: &Progress,
) -> Result<Stats> {
    let path = &located.path;
    let file = File::open(path).at("open", path)?;
    let reader = progress.reader(BufReader::with_capacity(READ_BUF, file));
    let mut hashing = HashingReader::new(reader);
    let extracted = match include {
        Some(include) => extract::extract_some(&mut hashing, path, staging, strategy, include),
        None => extract::extract(&mut hashing, path, staging, strategy),
    };
    let checksum = hashing
        .finish()
        .map_err(|e| Error::corrupt(path, e.to_string()))?;
    let Some(entry) = &located.entry else {
        return Ok(extracted?.written);
    };
    if checksum.sha256 != entry.sha256 {
        return Err(Error::corrupt(
            path,
            format!(
                "SHA-256 is {}, manifest says {}",
                checksum.sha256, entry.sha256
            ),
        ));
    }
    let Extracted { stats, written } = extracted?;
    if (stats.files, stats.bytes) != (entry.files, entry.bytes) {
        return Err(Error::corrupt(
            path,
            format!(
                "it holds {} entries and {} bytes, manifest says {} and {}",
                stats.files, stats.bytes, entry.files, entry.bytes
            ),
        ));
    }
    Ok(written)
}

/// Renames the restored folder to `dest`; an existing `dest` is moved aside first and put back
/// if the rename fails, then removed.
fn move_into_place(
    restored: &Path,
    dest: &Path,
    existing: bool,
    printer: &mut Printer,
) -> Result<()> {
    let parent = atomic::parent_dir(dest);
    // Make the restored files durable before they replace anything (one syncfs, not an fsync
    // per file).
    let staged = File::open(restored).at("open", restored)?;
    rustix::fs::syncfs(&staged).map_err(|e| Error::io("sync", restored, e.into()))?;
    if !existing {
        fs::rename(restored, dest).at("move restored folder to", dest)?;
        return atomic::sync_dir(parent);
    }
    // The replaced folder waits beside the destination until the new one is in place; it is
    // never removed on a failure path.
    let aside = tempfile::Builder::new()
        .prefix(REPLACED_PREFIX)
        .tempdir_in(parent)
        .at("create a temporary folder in", parent)?
        .keep();
    let old = aside.join("old");
    fs::rename(dest, &old).at("move aside", dest)?;
    if let Err(e) = fs::rename(restored, dest) {
        fs::rename(&old, dest).at("put back", dest)?;
        let _ = fs::remove_dir(&aside);
        return Err(Error::io("move restored folder to", dest, e));
    }
    atomic::sync_dir(parent)?;
    if let Err(e) = atomic::remove_tree(&aside) {
        printer.warn(format_args!(
            "could not remove the replaced folder {}: {e}",
            old.display()
        ));
    }
    Ok(())
}

/// Points at folders an interrupted `--force` restore left beside the destination: they hold
/// the replaced results (which were backed up first), so they are reported, never removed.
fn warn_replaced_leftovers(parent: &Path, printer: &mut Printer) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for item in entries.flatten() {
        if item
            .file_name()
            .to_string_lossy()
            .starts_with(REPLACED_PREFIX)
        {
            printer.warn(format_args!(
                "{} holds a folder replaced by an interrupted restore; remove it once checked",
                item.path().display()
            ));
        }
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
