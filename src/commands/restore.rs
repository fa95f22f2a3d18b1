//! `resbak restore`: bring a strategy folder back from an archive, safely.
//!
//! The archive is extracted into a temporary folder beside the destination while its SHA-256 is
//! computed in the same pass; only an archive that matches its manifest entry and extracted
//! completely is moved into place. An existing destination is replaced only with `force`, and
//! only after it was itself backed up.

use super::backup::backup_folder;
use super::{Context, Located, Outcome, Printer, check_strategy_name, human_size, locate};
use crate::archive::{self, Stats};
use crate::atomic;
use crate::checksum::HashingReader;
use crate::error::{Error, IoContext, Result};
use crate::extract;
use crate::manifest::{Lock, LockFile};
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

const READ_BUF: usize = 1 << 20;

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
}

/// Restores one archive.
pub fn run(ctx: &Context, opts: &RestoreOptions, printer: &mut Printer) -> Result<Outcome> {
    let Located { path, entry } = locate(ctx, &opts.archive)?;
    let _reading = match entry {
        Some(_) => Some(Lock::shared(atomic::parent_dir(&path), LockFile::Archives)?),
        None => None,
    };
    let strategy = match &entry {
        Some(entry) => {
            let size = fs::metadata(&path).at("read", &path)?.len();
            if size != entry.size {
                return Err(corrupt(
                    &path,
                    format!("size is {size} bytes, manifest says {}", entry.size),
                ));
            }
            entry.strategy.clone()
        }
        None => {
            printer.warn(format_args!(
                "{} is not in the manifest: it cannot be checked against a recorded checksum",
                path.display()
            ));
            top_folder(&path)?
        }
    };
    check_strategy_name(&strategy)?;
    let dest = opts
        .to
        .clone()
        .unwrap_or_else(|| ctx.results_dir.join(&strategy));
    let existing = prepare_destination(ctx, &dest, &strategy, opts, printer)?;

    let parent = atomic::parent_dir(&dest);
    fs::create_dir_all(parent).at("create folder", parent)?;
    for leftover in atomic::remove_stale(parent)? {
        printer.warn(format_args!(
            "removed {} left by an interrupted restore",
            leftover.display()
        ));
    }
    let staging = atomic::staging_dir_in(parent)?;
    let result =
        extract_checked(&path, entry.as_ref(), staging.path(), &strategy).and_then(|stats| {
            move_into_place(&staging.path().join(&strategy), &dest, existing, printer)
                .map(|()| stats)
        });
    if let Err(e) = atomic::remove_tree(staging.path()) {
        printer.warn(format_args!(
            "could not remove {}: {e}",
            staging.path().display()
        ));
    }
    let stats = result?;
    printer.line(format_args!(
        "Restored {} -> {} ({} files, {})",
        path.display(),
        dest.display(),
        stats.files,
        human_size(stats.bytes)
    ))?;
    Ok(Outcome::Clean)
}

fn corrupt(path: &Path, detail: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail,
    }
}

/// The strategy of an uncatalogued archive: its first entry's top folder.
fn top_folder(path: &Path) -> Result<String> {
    let file = File::open(path).at("open", path)?;
    archive::top_folder(BufReader::new(file))
        .map_err(|e| corrupt(path, e.to_string()))?
        .ok_or_else(|| corrupt(path, "the archive is empty".into()))
}

/// Refuses an existing destination unless `force`; with `force`, backs it up first (if it holds
/// anything). Returns whether the destination exists and must be replaced.
fn prepare_destination(
    ctx: &Context,
    dest: &Path,
    strategy: &str,
    opts: &RestoreOptions,
    printer: &mut Printer,
) -> Result<bool> {
    let Ok(meta) = fs::symlink_metadata(dest) else {
        return Ok(false);
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
    if fs::read_dir(dest).at("read", dest)?.next().is_some() {
        let entry = backup_folder(ctx, strategy, dest, opts.archive_options, printer)?;
        printer.line(format_args!(
            "Backed up existing {} -> {} before replacing it",
            dest.display(),
            ctx.backup_dir.join(&entry.backup_file).display()
        ))?;
    }
    Ok(true)
}

/// Extracts `path` into `staging`, hashing it in the same pass, and checks it against `entry`.
fn extract_checked(
    path: &Path,
    entry: Option<&crate::manifest::Entry>,
    staging: &Path,
    strategy: &str,
) -> Result<Stats> {
    let file = File::open(path).at("open", path)?;
    let mut hashing = HashingReader::new(BufReader::with_capacity(READ_BUF, file));
    let extracted = extract::extract(&mut hashing, path, staging, strategy);
    let checksum = hashing.finish().map_err(|e| corrupt(path, e.to_string()))?;
    let Some(entry) = entry else {
        return extracted;
    };
    if checksum.sha256 != entry.sha256 {
        return Err(corrupt(
            path,
            format!(
                "SHA-256 is {}, manifest says {}",
                checksum.sha256, entry.sha256
            ),
        ));
    }
    let stats = extracted?;
    if (stats.files, stats.bytes) != (entry.files, entry.bytes) {
        return Err(corrupt(
            path,
            format!(
                "it holds {} entries and {} bytes, manifest says {} and {}",
                stats.files, stats.bytes, entry.files, entry.bytes
            ),
        ));
    }
    Ok(stats)
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
    if !existing {
        fs::rename(restored, dest).at("move restored folder to", dest)?;
        return atomic::sync_dir(parent);
    }
    let aside = tempfile::Builder::new()
        .prefix(".resbak-replaced-")
        .tempdir_in(parent)
        .at("create a temporary folder in", parent)?;
    let old = aside.path().join("old");
    fs::rename(dest, &old).at("move aside", dest)?;
    if let Err(e) = fs::rename(restored, dest) {
        fs::rename(&old, dest).at("put back", dest)?;
        return Err(Error::io("move restored folder to", dest, e));
    }
    atomic::sync_dir(parent)?;
    if let Err(e) = atomic::remove_tree(aside.path()) {
        printer.warn(format_args!(
            "could not remove the replaced folder {}: {e}",
            old.display()
        ));
    }
    Ok(())
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
