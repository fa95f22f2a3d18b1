//! `resbak file verify`: every copy of a file against its folder's `SHA256SUMS`.

use super::copying::hash_file;
use super::sums::Sums;
use super::{
    CopyCheck, CopyStatus, FileBackup, VerifyReport, backup_dir, file_name, list_backups, mismatch,
    names,
};
use crate::error::Result;
use std::fs;
use std::path::Path;

/// Checks every copy of `path` against `SHA256SUMS`: newest first, then those the list names
/// whose file is gone.
///
/// # Errors
///
/// When the backup folder or `SHA256SUMS` cannot be read. A copy that cannot be read is
/// reported as damaged.
pub fn verify(path: &Path) -> Result<VerifyReport> {
    let copies = list_backups(path)?;
    let mut report = VerifyReport::default();
    for copy in &copies {
        let check = match (&copy.recorded, hash_file(&copy.path)) {
            (None, read) => CopyCheck {
                path: copy.path.clone(),
                status: CopyStatus::Unrecorded,
                sha256: read.ok().map(|c| c.sha256),
                recorded_sha256: None,
                problem: None,
            },
            (Some(recorded), Ok(read)) => {
                let ok = read.sha256 == *recorded;
                CopyCheck {
                    path: copy.path.clone(),
                    status: if ok {
                        CopyStatus::Ok
                    } else {
                        CopyStatus::Damaged
                    },
                    problem: (!ok).then(|| mismatch(recorded, &read.sha256)),
                    sha256: Some(read.sha256),
                    recorded_sha256: Some(recorded.clone()),
                }
            }
            (Some(recorded), Err(e)) => CopyCheck {
                path: copy.path.clone(),
                status: CopyStatus::Damaged,
                sha256: None,
                recorded_sha256: Some(recorded.clone()),
                problem: Some(crate::error::chain(&e)),
            },
        };
        report.results.push(check);
    }
    report.results.extend(missing_copies(path, &copies)?);
    for check in &report.results {
        match check.status {
            CopyStatus::Ok => report.ok += 1,
            CopyStatus::Unrecorded => report.unrecorded += 1,
            CopyStatus::Damaged | CopyStatus::Missing => report.problems += 1,
        }
    }
    report.checked = report.results.len();
    Ok(report)
}

/// Copies `SHA256SUMS` lists for `path` whose file is gone.
fn missing_copies(path: &Path, copies: &[FileBackup]) -> Result<Vec<CopyCheck>> {
    let name = file_name(path)?;
    let dir = backup_dir(path);
    let sums = Sums::read(&dir)?;
    let mut missing = Vec::new();
    for file in sums.names() {
        let present = copies.iter().any(|c| c.path.file_name() == Some(&file));
        if present || names::parse_backup_name(name, &file).is_none() {
            continue;
        }
        let path = dir.join(&file);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        missing.push(CopyCheck {
            recorded_sha256: sums.get(&file).map(str::to_string),
            path,
            status: CopyStatus::Missing,
            sha256: None,
            problem: Some("SHA256SUMS lists it, but the file is gone".to_string()),
        });
    }
    Ok(missing)
}
