//! Retention: keep the N most recent backups of each strategy and remove the rest.
//!
//! "Most recent" is the manifest's `created` time. Safety copies (made by `restore --force`)
//! are counted apart from regular backups and kept by their own count. Removal happens under the archive lock
//! (so nothing being verified or restored disappears) and the manifest lock; an archive whose
//! file cannot be deleted keeps its manifest entry. Files the manifest does not know are never
//! touched, and the newest backup of a strategy is never removed.

use crate::error::{Error, Result};
use crate::manifest::{Entry, Kind, Lock, LockFile, Manifest};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
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

/// Default number of safety copies (made by `restore --force`) kept per strategy.
pub const DEFAULT_KEEP_SAFETY: usize = 3;

/// How many backups of each strategy to keep; regular backups and safety copies are counted
/// separately, so safety copies never push out real backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Regular backups to keep per strategy; `None` leaves them all.
    pub keep: Option<usize>,
    /// Safety copies to keep per strategy.
    pub keep_safety: usize,
}

impl Rules {
    /// Keep `keep` regular backups and `keep_safety` (default [`DEFAULT_KEEP_SAFETY`]) safety
    /// copies per strategy.
    pub fn new(keep: Option<usize>, keep_safety: Option<usize>) -> Rules {
        Rules {
            keep,
            keep_safety: keep_safety.unwrap_or(DEFAULT_KEEP_SAFETY),
        }
    }

    /// How many entries of `kind` to keep per strategy, `None` for all; never fewer than 1.
    fn limit(&self, kind: Kind) -> Option<usize> {
        match kind {
            Kind::Regular => self.keep.map(|k| k.max(1)),
            Kind::Safety => Some(self.keep_safety.max(1)),
        }
    }
}

/// Positions in `manifest.backups` to remove and to keep so that each strategy (or only
/// `strategy`) keeps its newest entries of each kind as `rules` say; oldest first per group.
fn plan_positions(
    manifest: &Manifest,
    strategy: Option<&str>,
    rules: &Rules,
) -> (Vec<usize>, Vec<usize>) {
    let mut groups: BTreeMap<(&str, bool), Vec<usize>> = BTreeMap::new();
    for i in manifest.sorted_positions() {
        let entry = &manifest.backups[i];
        if strategy.is_none_or(|s| s == entry.strategy) {
            let key = (entry.strategy.as_str(), entry.kind == Kind::Safety);
            groups.entry(key).or_default().push(i);
        }
    }
    let (mut remove, mut kept) = (Vec::new(), Vec::new());
    for positions in groups.into_values() {
        let kind = manifest.backups[positions[0]].kind;
        let keep = rules.limit(kind).unwrap_or(positions.len());
        let cut = positions.len().saturating_sub(keep);
        remove.extend_from_slice(&positions[..cut]);
        kept.extend_from_slice(&positions[cut..]);
    }
    (remove, kept)
}

/// The entries to remove and to keep under `rules`, for each strategy or only `strategy`.
pub fn plan<'m>(
    manifest: &'m Manifest,
    strategy: Option<&str>,
    rules: &Rules,
) -> (Vec<&'m Entry>, Vec<&'m Entry>) {
    let (remove, kept) = plan_positions(manifest, strategy, rules);
    let entries = |positions: Vec<usize>| positions.into_iter().map(|i| &manifest.backups[i]);
    (entries(remove).collect(), entries(kept).collect())
}

/// Removes the entries at `positions` (by position, so an entry is never mistaken for another
/// naming the same file) and returns those whose archive no remaining entry names.
/// Linear in the manifest's length: a mask of the positions, a set of the names kept.
fn take(manifest: &mut Manifest, positions: &[usize]) -> Vec<Entry> {
    let mut doomed = vec![false; manifest.backups.len()];
    for &i in positions {
        if let Some(slot) = doomed.get_mut(i) {
            *slot = true;
        }
    }
    let mut taken = Vec::new();
    for (entry, doomed) in std::mem::take(&mut manifest.backups)
        .into_iter()
        .zip(doomed)
    {
        if doomed {
            taken.push(entry);
        } else {
            manifest.backups.push(entry);
        }
    }
    let named: HashSet<&str> = manifest
        .backups
        .iter()
        .map(|e| e.backup_file.as_str())
        .collect();
    taken
        .into_iter()
        .filter(|entry| !named.contains(entry.backup_file.as_str()))
        .collect()
}

/// Removes the backups `rules` do not keep, of each strategy (or of `strategy`).
///
/// # Errors
/// [`Error::InvalidKeep`] for a count of 0; [`Error::MissingFolder`] when `backup_dir` does not
/// exist; manifest errors. Files that cannot be deleted are reported in [`Pruned::failed`],
/// not as an error.
pub fn prune(
    backup_dir: &Path,
    strategy: Option<&str>,
    rules: &Rules,
    dry_run: bool,
) -> Result<Pruned> {
    if rules.keep == Some(0) || rules.keep_safety == 0 {
        return Err(Error::InvalidKeep);
    }
    if !backup_dir.is_dir() {
        return Err(Error::missing_folder("backup", backup_dir));
    }
    let names = |manifest: &Manifest, positions: &[usize]| {
        positions
            .iter()
            .map(|&i| manifest.backups[i].backup_file.clone())
            .collect::<Vec<_>>()
    };
    if dry_run {
        let manifest = Manifest::load(backup_dir)?;
        let (remove, kept) = plan_positions(&manifest, strategy, rules);
        return Ok(Pruned {
            removed: names(&manifest, &remove),
            kept: names(&manifest, &kept),
            failed: Vec::new(),
            dry_run,
        });
    }
    let _archives = Lock::exclusive(backup_dir, LockFile::Archives)?;
    // First commit the manifest without the doomed entries, then delete their files: a crash in
    // between leaves untracked files, never entries without archives.
    let (doomed, kept) = Manifest::update(backup_dir, |manifest| {
        let (remove, kept) = plan_positions(manifest, strategy, rules);
        let kept = names(manifest, &kept);
        Ok((take(manifest, &remove), kept))
    })?;
    delete(backup_dir, doomed, kept)
}

/// Deletes the archives of `doomed` entries (already out of the manifest); an archive that
/// cannot be deleted gets its entry back.
fn delete(backup_dir: &Path, doomed: Vec<Entry>, kept: Vec<String>) -> Result<Pruned> {
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
            _ => {
                // An index left behind is harmless: a later archive of that name replaces it.
                let _ = std::fs::remove_file(crate::index::path_for(
                    &backup_dir.join(&entry.backup_file),
                ));
                report.removed.push(entry.backup_file)
            }
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

    fn entry(strategy: &str, file: String, secs: i64, kind: Kind) -> Entry {
        Entry {
            kind,
            ..Entry::sample(strategy, &file, secs)
        }
    }

    fn manifest(entries: &[(&str, i64)]) -> Manifest {
        let mut m = Manifest::default();
        for (i, (strategy, secs)) in entries.iter().enumerate() {
            let file = format!("{strategy}_{i}");
            m.backups.push(entry(strategy, file, *secs, Kind::Regular));
        }
        m
    }

    fn keep(n: usize) -> Rules {
        Rules::new(Some(n), None)
    }

    fn files(v: Vec<&Entry>) -> Vec<String> {
        v.iter().map(|e| e.backup_file.clone()).collect()
    }

    #[test]
    fn keeps_the_newest_by_creation_time_per_strategy() {
        // Registered out of time order: "a_1" is the oldest.
        let m = manifest(&[("a", 30), ("a", 10), ("b", 5), ("a", 20)]);
        let (remove, kept) = plan(&m, None, &keep(2));
        assert_eq!(files(remove), ["a_1"]);
        assert_eq!(files(kept), ["a_3", "a_0", "b_2"]);
    }

    #[test]
    fn only_the_named_strategy_and_never_the_newest() {
        let m = manifest(&[("a", 1), ("a", 2), ("b", 1), ("b", 2)]);
        let (remove, _) = plan(&m, Some("b"), &keep(1));
        assert_eq!(files(remove), ["b_2"]);
        let (remove, _) = plan(&m, None, &keep(0));
        assert_eq!(remove.len(), 2, "keep 0 still keeps the newest of each");
    }

    #[test]
    fn safety_copies_are_counted_and_kept_apart() {
        let mut m = manifest(&[("a", 1), ("a", 2), ("a", 3)]);
        for (i, secs) in [10, 11, 12, 13].into_iter().enumerate() {
            m.backups
                .push(entry("a", format!("safe_{i}"), secs, Kind::Safety));
        }
        let (remove, kept) = plan(&m, None, &keep(3));
        assert_eq!(files(remove), ["safe_0"], "the newest 3 safety copies stay");
        assert_eq!(
            files(kept),
            ["a_0", "a_1", "a_2", "safe_1", "safe_2", "safe_3"]
        );
        let (remove, _) = plan(&m, None, &Rules::new(None, Some(1)));
        assert_eq!(files(remove), ["safe_0", "safe_1", "safe_2"]);
    }

    #[test]
    fn removal_is_by_entry_never_by_file_name() {
        // Two entries for one file: removing one must leave the other and its archive.
        let mut m = manifest(&[("a", 1), ("a", 2)]);
        m.backups[1].backup_file = m.backups[0].backup_file.clone();
        let (remove, _) = plan_positions(&m, None, &keep(1));
        let doomed = take(&mut m, &remove);
        assert_eq!(m.backups.len(), 1, "exactly the planned entry goes");
        assert!(
            doomed.is_empty(),
            "a file a kept entry names is never deleted"
        );
    }

    #[test]
    fn removal_takes_exactly_the_positions_in_any_order() {
        let mut m = manifest(&[("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]);
        let doomed = take(&mut m, &[3, 0, 3, 99]);
        assert_eq!(files(doomed.iter().collect()), ["a_0", "b_3"]);
        assert_eq!(files(m.backups.iter().collect()), ["a_1", "a_2", "b_4"]);
    }
}
