//! Retention: keep the N most recent backups of each strategy and remove the rest.
//!
//! "Most recent" is the manifest's `created` time. Removal happens under the archive lock
//! (so nothing being verified or restored disappears) and the manifest lock; an archive whose
//! file cannot be deleted keeps its manifest entry. Files the manifest does not know are never
//! touched, and the newest backup of a strategy is never removed.

use crate::error::{Error, Result};
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Default, Serialize)]
pub struct Pruned {
    /// Archives removed (or to be removed), oldest first within each strategy.
    pub removed: Vec<String>,
    /// Archives whose file could not be deleted, with the reason; their entries stay.
    pub failed: Vec<Failure>,
    /// Archives kept.
    pub kept: Vec<String>,
    /// True when nothing was deleted because this was a dry run.
    pub dry_run: bool,
}

/// An archive that could not be removed.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Archive file name.
    pub archive: String,
    /// Why.
    pub error: String,
}

/// The entries to remove so that each strategy (or only `strategy`) keeps its `keep` newest.
pub fn plan<'m>(
    manifest: &'m Manifest,
    strategy: Option<&str>,
    keep: usize,
) -> (Vec<&'m Entry>, Vec<&'m Entry>) {
    let keep = keep.max(1);
    let mut groups: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in manifest.sorted() {
        if strategy.is_none_or(|s| s == entry.strategy) {
            groups.entry(&entry.strategy).or_default().push(entry);
        }
    }
    let (mut remove, mut kept) = (Vec::new(), Vec::new());
    for entries in groups.into_values() {
        let cut = entries.len().saturating_sub(keep);
        remove.extend_from_slice(&entries[..cut]);
        kept.extend_from_slice(&entries[cut..]);
    }
    (remove, kept)
}

/// Removes all but the `keep` newest backups of each strategy (or of `strategy`).
///
/// # Errors
/// [`Error::InvalidKeep`] for `keep == 0`; manifest errors. Files that cannot be deleted are
/// reported in [`Pruned::failed`], not as an error.
pub fn prune(
    backup_dir: &Path,
    strategy: Option<&str>,
    keep: usize,
    dry_run: bool,
) -> Result<Pruned> {
    if keep == 0 {
        return Err(Error::InvalidKeep);
    }
    let names = |entries: &[&Entry]| {
        entries
            .iter()
            .map(|e| e.backup_file.clone())
            .collect::<Vec<_>>()
    };
    if dry_run || !backup_dir.is_dir() {
        let manifest = Manifest::load(backup_dir)?;
        let (remove, kept) = plan(&manifest, strategy, keep);
        let (removed, kept) = (names(&remove), names(&kept));
        return Ok(Pruned {
            removed,
            kept,
            failed: Vec::new(),
            dry_run,
        });
    }
    let _archives = Lock::exclusive(backup_dir, LockFile::Archives)?;
    // First commit the manifest without the doomed entries, then delete their files: a crash in
    // between leaves untracked files, never entries without archives.
    let (doomed, kept) = Manifest::update(backup_dir, |manifest| {
        let (remove, kept) = plan(manifest, strategy, keep);
        let doomed: Vec<Entry> = remove.into_iter().cloned().collect();
        let kept = names(&kept);
        manifest
            .backups
            .retain(|e| !doomed.iter().any(|d| d.backup_file == e.backup_file));
        Ok((doomed, kept))
    })?;
    let mut report = Pruned {
        kept,
        ..Pruned::default()
    };
    let mut undeleted = Vec::new();
    for entry in doomed {
        match std::fs::remove_file(backup_dir.join(&entry.backup_file)) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                report.failed.push(Failure {
                    archive: entry.backup_file.clone(),
                    error: e.to_string(),
                });
                undeleted.push(entry);
            }
            _ => report.removed.push(entry.backup_file),
        }
    }
    if !undeleted.is_empty() {
        Manifest::update(backup_dir, |manifest| {
            manifest.backups.extend(undeleted);
            Ok(())
        })?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn manifest(entries: &[(&str, i64)]) -> Manifest {
        let mut m = Manifest::default();
        for (i, (strategy, secs)) in entries.iter().enumerate() {
            m.backups.push(Entry {
                strategy: strategy.to_string(),
                timestamp: String::new(),
                backup_file: format!("{strategy}_{i}"),
                size: 0,
                sha256: String::new(),
                files: 0,
                bytes: 0,
                kinds: None,
                created: DateTime::from_timestamp(*secs, 0).unwrap(),
                meta_digest: None,
                content_digest: None,
            });
        }
        m
    }

    #[test]
    fn keeps_the_newest_by_creation_time_per_strategy() {
        // Registered out of time order: "a_1" is the oldest.
        let m = manifest(&[("a", 30), ("a", 10), ("b", 5), ("a", 20)]);
        let (remove, kept) = plan(&m, None, 2);
        let files = |v: Vec<&Entry>| v.iter().map(|e| e.backup_file.clone()).collect::<Vec<_>>();
        assert_eq!(files(remove), ["a_1"]);
        assert_eq!(files(kept), ["a_3", "a_0", "b_2"]);
    }

    #[test]
    fn only_the_named_strategy_and_never_the_newest() {
        let m = manifest(&[("a", 1), ("a", 2), ("b", 1), ("b", 2)]);
        let (remove, _) = plan(&m, Some("b"), 1);
        assert_eq!(
            remove
                .iter()
                .map(|e| e.backup_file.as_str())
                .collect::<Vec<_>>(),
            ["b_2"]
        );
        let (remove, _) = plan(&m, None, 0);
        assert_eq!(remove.len(), 2, "keep 0 still keeps the newest of each");
    }
}
