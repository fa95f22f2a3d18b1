//! `resbak file restore`: pick a copy (never a damaged one), keep the current file, replace it.

use super::copying::{replace_from, write_target};
use super::sums::lock_folder;
use super::{
    Contents, FileBackup, FileBackupOptions, JsonCheck, PassedOver, Pick, RestoreReport,
    backup_dir, checks_json, existing_file, inspect, list_backups, mismatch, names_copy, rotate,
    save_current,
};
use crate::error::{Error, Result};
use std::path::Path;

/// Brings back a copy: picks it (see [`Pick`]; a damaged copy is refused), saves the current
/// `path` as a copy unless it is identical to the newest, replaces the file atomically with the
/// copy (bytes and mtime; through a symbolic link to its target), then rotates, never removing
/// the copy restored. Like `cp`, the restored file keeps the permission bits it had; if it did
/// not exist, it gets the copy's bits less the umask.
///
/// # Errors
///
/// When the picked copy does not exist or is damaged, no copy qualifies for [`Pick::Latest`],
/// the current file cannot be saved (nothing is replaced then), or the restored file cannot be
/// written or does not read back as the copy.
pub fn restore(path: &Path, pick: &Pick, opts: &FileBackupOptions) -> Result<RestoreReport> {
    let copies = list_backups(path)?;
    let json = checks_json(path, &copies);
    let (chosen, contents, passed_over) = choose(path, &copies, pick, json)?;
    let (target, through_link) = write_target(path)?;
    let dir = backup_dir(path);
    let _lock = lock_folder(&dir)?;
    let saved = match existing_file(path, "restore")? {
        Some(_) => Some(save_current(path)?),
        None => None,
    };
    let checksum = replace_from(&chosen.path, &target, &contents.checksum)?;
    let protect: Vec<&Path> = [
        Some(chosen.path.as_path()),
        saved.as_ref().map(|s| s.copy.as_path()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut warnings = saved.as_ref().map_or_else(Vec::new, |s| s.warnings(path));
    let (removed, more) = rotate(path, opts.keep, &protect, saved.as_ref());
    warnings.extend(more);
    Ok(RestoreReport {
        restored: chosen.path.clone(),
        checksum,
        recorded: chosen.recorded.is_some(),
        content: contents.json.into(),
        passed_over,
        saved_unchanged: saved.as_ref().is_some_and(|s| s.unchanged),
        saved: saved.map(|s| s.copy),
        written_through: through_link.then_some(target),
        removed,
        warnings,
    })
}

/// Picks the copy to restore: returns it, what it holds, and the newer copies passed over.
fn choose<'a>(
    path: &Path,
    copies: &'a [FileBackup],
    pick: &Pick,
    json: bool,
) -> Result<(&'a FileBackup, Contents, Vec<PassedOver>)> {
    let dir = backup_dir(path);
    let no_copies = || Error::NoFileBackups {
        path: path.to_path_buf(),
        dir: dir.clone(),
    };
    let intact = |copy: &FileBackup| -> Result<Contents> {
        let contents = inspect(&copy.path, json)?;
        match &copy.recorded {
            Some(sha) if *sha != contents.checksum.sha256 => Err(Error::DamagedCopy {
                path: copy.path.clone(),
                detail: mismatch(sha, &contents.checksum.sha256),
            }),
            _ => Ok(contents),
        }
    };
    match pick {
        Pick::Named(arg) => {
            let copy = copies
                .iter()
                .find(|c| names_copy(arg, &c.path))
                .ok_or_else(|| Error::UnknownBackup {
                    name: arg.clone(),
                    dir: dir.clone(),
                })?;
            Ok((copy, intact(copy)?, Vec::new()))
        }
        Pick::Newest => {
            let copy = copies.first().ok_or_else(no_copies)?;
            Ok((copy, intact(copy)?, Vec::new()))
        }
        Pick::Latest => {
            let mut passed = Vec::new();
            for copy in copies {
                let reason = match intact(copy) {
                    Ok(contents) => match &contents.json {
                        Some(JsonCheck::Invalid(e)) => format!("does not parse as JSON: {e}"),
                        _ => return Ok((copy, contents, passed)),
                    },
                    Err(e @ Error::DamagedCopy { .. }) => e.to_string(),
                    Err(e) => return Err(e),
                };
                passed.push(PassedOver {
                    path: copy.path.clone(),
                    reason,
                });
            }
            match copies.len() {
                0 => Err(no_copies()),
                n => Err(Error::NoGoodCopy {
                    path: path.to_path_buf(),
                    dir,
                    copies: n,
                }),
            }
        }
    }
}
