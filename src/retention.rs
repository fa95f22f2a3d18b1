//! Retention: keep the N most recent backups of each strategy, and the newest of each of the
//! last days, weeks and months (as restic's `forget`), and remove the rest.
//!
//! "Most recent" is the manifest's `created` time; periods are UTC. Tagged and pinned backups
//! are always kept. Safety copies (made by `restore --force`)
//! are counted apart from regular backups and kept by their own count. Removal happens under the archive lock
//! (so nothing being verified or restored disappears) and the manifest lock; an archive whose
//! file cannot be deleted keeps its manifest entry. Files the manifest does not know are never
//! touched, and the newest backup of a strategy is never removed. A backup whose archive is
//! missing or was found damaged is neither counted as kept nor removed: it is left as it is,
//! so intact older backups stand in for it.

use crate::checksum::HashingReader;
use crate::error::{Error, Result};
use crate::manifest::{Entry, Kind, Lock, LockFile, Manifest};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
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
    /// Every backup considered, with the rules that keep it (none for those removed).
    pub decisions: Vec<Decision>,
    /// Backups whose archive is missing or was found damaged, with why: not counted as kept,
    /// and left as they are.
    pub left: Vec<Failure>,
    /// What the prune could not do beside its work, for a warning (a check it made that could
    /// not be recorded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why one backup is kept, or that nothing keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Archive file name.
    pub archive: String,
    /// Its strategy.
    pub strategy: String,
    /// The rules that keep it (`newest 10`, `daily 2026-11-30`, `weekly 2026-W48`,
    /// `monthly 2026-11`, `safety newest 3`, `tag NAME`, `pinned`, `no rule given`); empty when
    /// it goes.
    pub kept_by: Vec<String>,
}

/// An archive that could not be removed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Archive file name.
    pub archive: String,
    /// Why.
    pub error: String,
}

/// Default number of safety copies (made by `restore --force`) kept per strategy.
pub const DEFAULT_KEEP_SAFETY: usize = 3;

/// Time-based rules, as restic's `forget`: the newest backup of each of the last N days, ISO
/// weeks or months that have backups, in UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Calendar {
    /// Days (`--keep-daily`).
    pub daily: Option<usize>,
    /// ISO weeks (`--keep-weekly`).
    pub weekly: Option<usize>,
    /// Months (`--keep-monthly`).
    pub monthly: Option<usize>,
}

impl Calendar {
    /// Whether no time-based rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, n, _)| n.is_none())
    }

    /// Each rule: its name, count, and the period (as text) a time falls in.
    fn rules(&self) -> [(&'static str, Option<usize>, &'static str); 3] {
        [
            ("daily", self.daily, "%Y-%m-%d"),
            ("weekly", self.weekly, "%G-W%V"),
            ("monthly", self.monthly, "%Y-%m"),
        ]
    }
}

/// Which backups of each strategy to keep. Regular backups are kept by the union of their
/// rules (the newest N, and the calendar); safety copies are counted separately, so they never
/// push out real backups. Tagged and pinned backups are always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Regular backups to keep per strategy; with no calendar rule either, `None` keeps them all.
    pub keep: Option<usize>,
    /// Safety copies to keep per strategy.
    pub keep_safety: usize,
    /// Time-based rules for regular backups.
    pub calendar: Calendar,
}

impl Rules {
    /// Keep `keep` regular backups and `keep_safety` (default [`DEFAULT_KEEP_SAFETY`]) safety
    /// copies per strategy.
    pub fn new(keep: Option<usize>, keep_safety: Option<usize>) -> Rules {
        Rules {
            keep,
            keep_safety: keep_safety.unwrap_or(DEFAULT_KEEP_SAFETY),
            calendar: Calendar::default(),
        }
    }

    /// These rules with the time-based `calendar` too.
    pub fn with_calendar(self, calendar: Calendar) -> Rules {
        Rules { calendar, ..self }
    }

    /// Whether any count is 0 (the newest backup is always kept, so 0 means a mistake).
    pub fn has_zero(&self) -> bool {
        let calendar = self.calendar.rules().map(|(_, n, _)| n);
        self.keep_safety == 0 || [self.keep].iter().chain(&calendar).any(|n| *n == Some(0))
    }

    /// The reasons to keep each of `group` (one strategy's entries of one kind, newest first).
    fn reasons(&self, group: &[&Entry]) -> Vec<Vec<String>> {
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); group.len()];
        let kind = group.first().map_or(Kind::Regular, |e| e.kind);
        let newest = |n: usize, label: String, reasons: &mut Vec<Vec<String>>| {
            for r in reasons.iter_mut().take(n.max(1)) {
                r.push(label.clone());
            }
        };
        match kind {
            Kind::Safety => newest(
                self.keep_safety,
                format!("safety newest {}", self.keep_safety),
                &mut reasons,
            ),
            Kind::Regular if self.keep.is_none() && self.calendar.is_empty() => {
                newest(group.len(), "no rule given".into(), &mut reasons);
            }
            Kind::Regular => {
                if let Some(n) = self.keep {
                    newest(n, format!("newest {}", n.max(1)), &mut reasons);
                }
                for (name, count, format) in self.calendar.rules() {
                    let Some(count) = count else { continue };
                    let mut last: Option<String> = None;
                    let mut used = 0;
                    for (entry, why) in group.iter().zip(reasons.iter_mut()) {
                        let period = entry.created.format(format).to_string();
                        if used < count && last.as_ref() != Some(&period) {
                            why.push(format!("{name} {period}"));
                            used += 1;
                        }
                        last = Some(period);
                    }
                }
            }
        }
        for (entry, why) in group.iter().zip(reasons.iter_mut()) {
            why.extend(entry.tags.iter().map(|t| format!("tag {t}")));
            if entry.pin {
                why.push("pinned".into());
            }
        }
        reasons
    }
}

/// Each entry of each strategy (or only `strategy`) with the rules that keep it, grouped by
/// strategy and kind, oldest first within each group.
fn decide_positions(
    manifest: &Manifest,
    strategy: Option<&str>,
    rules: &Rules,
    left: &HashSet<&str>,
) -> Vec<(usize, Vec<String>)> {
    let mut groups: BTreeMap<(&str, bool), Vec<usize>> = BTreeMap::new();
    for i in manifest.sorted_positions() {
        let entry = &manifest.backups[i];
        let considered = !left.contains(entry.backup_file.as_str());
        if considered && strategy.is_none_or(|s| s == entry.strategy) {
            let key = (entry.strategy.as_str(), entry.kind == Kind::Safety);
            groups.entry(key).or_default().push(i);
        }
    }
    let mut decided = Vec::new();
    for positions in groups.into_values() {
        let newest_first: Vec<&Entry> = positions
            .iter()
            .rev()
            .map(|&i| &manifest.backups[i])
            .collect();
        let mut reasons = rules.reasons(&newest_first);
        reasons.reverse();
        decided.extend(positions.into_iter().zip(reasons));
    }
    decided
}

/// Positions in `manifest.backups` to remove and to keep so that each strategy (or only
/// `strategy`) keeps what `rules` say; oldest first per group.
fn plan_positions(
    manifest: &Manifest,
    strategy: Option<&str>,
    rules: &Rules,
    left: &HashSet<&str>,
) -> (Vec<usize>, Vec<usize>) {
    let (kept, remove): (Vec<_>, Vec<_>) = decide_positions(manifest, strategy, rules, left)
        .into_iter()
        .partition(|(_, why)| !why.is_empty());
    let positions = |v: Vec<(usize, Vec<String>)>| v.into_iter().map(|(i, _)| i).collect();
    (positions(remove), positions(kept))
}

/// The entries to remove and to keep under `rules`, for each strategy or only `strategy`.
pub fn plan<'m>(
    manifest: &'m Manifest,
    strategy: Option<&str>,
    rules: &Rules,
) -> (Vec<&'m Entry>, Vec<&'m Entry>) {
    let (remove, kept) = plan_positions(manifest, strategy, rules, &HashSet::new());
    let entries = |positions: Vec<usize>| positions.into_iter().map(|i| &manifest.backups[i]);
    (entries(remove).collect(), entries(kept).collect())
}

/// Every entry of each strategy (or only `strategy`) with the rules that keep it.
pub fn decide(manifest: &Manifest, strategy: Option<&str>, rules: &Rules) -> Vec<Decision> {
    decide_with(manifest, strategy, rules, &HashSet::new())
}

/// [`decide`], leaving out the backups named in `left`.
fn decide_with(
    manifest: &Manifest,
    strategy: Option<&str>,
    rules: &Rules,
    left: &HashSet<&str>,
) -> Vec<Decision> {
    decide_positions(manifest, strategy, rules, left)
        .into_iter()
        .map(|(i, kept_by)| Decision {
            archive: manifest.backups[i].backup_file.clone(),
            strategy: manifest.backups[i].strategy.clone(),
            kept_by,
        })
        .collect()
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
/// not as an error. A manifest of the Python scripts' format is handed to `adopt` first (see
/// [`Manifest::update_adopting`]). `said` gives, from the archives removed, what an
/// interruption says once they are (see [`crate::interrupt::so_far`]).
pub fn prune(
    backup_dir: &Path,
    strategy: Option<&str>,
    rules: &Rules,
    dry_run: bool,
    adopt: &mut dyn FnMut(&mut Manifest) -> Result<()>,
    said: &dyn Fn(&[String]) -> String,
) -> Result<Pruned> {
    if rules.has_zero() {
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
    let manifest = Manifest::load(backup_dir)?;
    let (left, notes, _archives) = left_out(backup_dir, &manifest, strategy, rules, dry_run)?;
    let skip: HashSet<&str> = left.iter().map(|f| f.archive.as_str()).collect();
    let (remove, kept) = plan_positions(&manifest, strategy, rules, &skip);
    // Nothing to remove: nothing to write (a backup racing in only adds what a later prune sees).
    if dry_run || remove.is_empty() {
        let decisions = decide_with(&manifest, strategy, rules, &skip);
        return Ok(Pruned {
            removed: names(&manifest, &remove),
            kept: names(&manifest, &kept),
            failed: Vec::new(),
            dry_run,
            decisions,
            left,
            notes,
        });
    }
    // First commit the manifest without the doomed entries, then delete their files: a crash in
    // between leaves untracked files, never entries without archives. An interruption waits
    // for both (held from when the manifest lock is taken), then says what was removed.
    let (doomed, kept, decisions, left, held) =
        Manifest::update_adopting(backup_dir, adopt, |manifest| {
            let held = crate::interrupt::hold();
            // What was found damaged above counts too, should its record have failed.
            let mut now = unusable(backup_dir, manifest, strategy)?;
            let found = left
                .iter()
                .filter(|f| !now.iter().any(|n| n.archive == f.archive));
            let found: Vec<Failure> = found.cloned().collect();
            now.extend(found);
            let left = now;
            let skip: HashSet<&str> = left.iter().map(|f| f.archive.as_str()).collect();
            let decisions = decide_with(manifest, strategy, rules, &skip);
            let (remove, kept) = plan_positions(manifest, strategy, rules, &skip);
            let kept = names(manifest, &kept);
            Ok((take(manifest, &remove), kept, decisions, left, held))
        })?;
    let mut pruned = delete(backup_dir, doomed, kept)?;
    held.done(said(&pruned.removed));
    pruned.decisions = decisions;
    pruned.left = left;
    pruned.notes = notes;
    Ok(pruned)
}

/// The backups of `strategy` (or all) not to count as kept: those `list` calls `missing` or
/// `failed`, and those found damaged now among the backups that would stand in for removed
/// ones (see [`disproved`]), until no more are. When something is to be read, the archives lock
/// is taken first (shared for a dry run) and returned held. What is read is recorded, except
/// in a dry run; a record that fails is a note, not an error.
fn left_out(
    backup_dir: &Path,
    manifest: &Manifest,
    strategy: Option<&str>,
    rules: &Rules,
    dry_run: bool,
) -> Result<(Vec<Failure>, Vec<String>, Option<Lock>)> {
    let mut left = unusable(backup_dir, manifest, strategy)?;
    let mut notes = Vec::new();
    let mut lock = None;
    loop {
        let skip: HashSet<&str> = left.iter().map(|f| f.archive.as_str()).collect();
        let (remove, kept) = plan_positions(manifest, strategy, rules, &skip);
        if remove.is_empty() {
            return Ok((left, notes, lock));
        }
        if lock.is_none() {
            lock = Some(match dry_run {
                true => Lock::shared(backup_dir, LockFile::Archives)?,
                false => Lock::exclusive(backup_dir, LockFile::Archives)?,
            });
        }
        let counted = counted(manifest, &remove, &kept);
        let (damaged, unrecorded) = disproved(backup_dir, manifest, &counted, !dry_run)?;
        notes.extend(unrecorded);
        if damaged.is_empty() {
            return Ok((left, notes, lock));
        }
        left.extend(damaged);
    }
}

/// Of `kept`, those of a strategy that loses a backup in `remove`: the backups that stand in
/// for the removed ones.
fn counted(manifest: &Manifest, remove: &[usize], kept: &[usize]) -> Vec<usize> {
    let losing: HashSet<&str> = (remove.iter())
        .map(|&i| manifest.backups[i].strategy.as_str())
        .collect();
    (kept.iter().copied())
        .filter(|&i| losing.contains(manifest.backups[i].strategy.as_str()))
        .collect()
}

/// Of the backups at `positions`, those whose archive does not have its recorded SHA-256 now.
/// Each is read unless its last check vouches for its file as it is (see
/// [`crate::checks::Check::vouches_for`]); what is read is recorded as its last check.
fn disproved(
    backup_dir: &Path,
    manifest: &Manifest,
    positions: &[usize],
    record: bool,
) -> Result<(Vec<Failure>, Option<String>)> {
    let checks = crate::checks::Checks::load(backup_dir)?;
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    for e in positions.iter().map(|&i| &manifest.backups[i]) {
        let path = backup_dir.join(&e.backup_file);
        if !e.has_checksum() || checks.of(e).is_some_and(|c| c.vouches_for(&path)) {
            continue;
        }
        let file = crate::checks::FileStamp::of(&path);
        let problem = match File::open(&path).and_then(|f| HashingReader::new(f).finish()) {
            Ok(sum) if sum.sha256 == e.sha256 => None,
            Ok(_) => Some("SHA-256 mismatch: the archive changed after it was made".to_string()),
            Err(err) => Some(format!("cannot read it: {err}")),
        };
        if let Some(error) = &problem {
            damaged.push(Failure {
                archive: e.backup_file.clone(),
                error: error.clone(),
            });
        }
        // An archive found intact keeps a damaged index on record (reindex mends that).
        let index_problem = checks.of(e).filter(|c| c.index_only && problem.is_none());
        let check = crate::checks::Check {
            at: chrono::Utc::now(),
            sha256: e.sha256.clone(),
            deep: false,
            problem: problem.or_else(|| index_problem.and_then(|c| c.problem.clone())),
            missing: false,
            index_only: index_problem.is_some(),
            file,
        };
        records.push((e.backup_file.clone(), check));
    }
    // Only a record: the prune goes on without it (on a full disk, say), and says so.
    let unrecorded = match record && !records.is_empty() {
        true => crate::checks::Checks::record(backup_dir, records)
            .err()
            .map(|e| format!("the checks just made were not recorded: {e}")),
        false => None,
    };
    Ok((damaged, unrecorded))
}

/// The backups of `strategy` (or all) that `list` calls `missing` or `failed` (see
/// [`crate::checks::local_status`]), with why. Recorded checks that cannot be read are an
/// error: without them a damaged backup would count as kept.
fn unusable(
    backup_dir: &Path,
    manifest: &Manifest,
    strategy: Option<&str>,
) -> Result<Vec<Failure>> {
    let checks = crate::checks::Checks::load(backup_dir)?;
    let why = |e: &Entry| {
        // A strategy edited by hand: the backup is another strategy's, not one of this one's.
        if let Some(problem) = crate::manifest::name::misnamed(e) {
            return Some(problem);
        }
        let check = checks.of(e).filter(|c| !c.found_missing());
        match crate::checks::local_status(backup_dir, e, check) {
            ("missing", _) => Some("its archive is missing".to_string()),
            ("failed", problem) => Some(problem.unwrap_or_else(|| "its last check failed".into())),
            _ => None,
        }
    };
    Ok((manifest.backups.iter())
        .filter(|e| strategy.is_none_or(|s| s == e.strategy))
        .filter_map(|e| {
            why(e).map(|error| Failure {
                archive: e.backup_file.clone(),
                error,
            })
        })
        .collect())
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
    fn an_archive_that_cannot_be_deleted_gets_its_entry_back() {
        let dir = tempfile::tempdir().unwrap();
        let stuck = entry("s", "s_1.tar.gz".into(), 1, Kind::Regular);
        std::fs::create_dir_all(dir.path().join("s_1.tar.gz/x")).unwrap();
        let pruned = delete(dir.path(), vec![stuck], Vec::new()).unwrap();
        assert_eq!(pruned.failed.len(), 1);
        assert!(pruned.removed.is_empty());
        let manifest = Manifest::load(dir.path()).unwrap();
        assert!(manifest.find("s_1.tar.gz").is_some());
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
        let (remove, _) = plan_positions(&m, None, &keep(1), &HashSet::new());
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

    /// An entry of strategy `a` created at `when` (UTC, `YYYY-MM-DD HH:MM`).
    fn at(when: &str) -> Entry {
        let created = chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc();
        Entry {
            created,
            ..Entry::sample("a", &format!("a {when}"), 0)
        }
    }

    fn kept_by(m: &Manifest, rules: &Rules) -> Vec<(String, Vec<String>)> {
        decide(m, None, rules)
            .into_iter()
            .map(|d| (d.archive.trim_start_matches("a ").to_string(), d.kept_by))
            .collect()
    }

    #[test]
    fn calendar_rules_keep_the_newest_of_each_period_and_union_with_the_rest() {
        let mut m = Manifest::default();
        // Registered out of order: only creation times count.
        for when in [
            "2026-03-09 18:00",
            "2026-01-05 10:00",
            "2026-01-20 09:00",
            "2026-02-10 08:00",
            "2026-02-27 12:00",
            "2026-03-02 08:00",
            "2026-03-02 20:00",
            "2026-03-04 09:00",
            "2026-03-08 23:00",
            "2026-03-09 00:30",
        ] {
            m.backups.push(at(when));
        }
        m.backups[1].tags = vec!["paper".into()];
        m.backups[5].pin = true;
        let rules = Rules::new(Some(1), None).with_calendar(Calendar {
            daily: Some(3),
            weekly: Some(2),
            monthly: Some(3),
        });
        let s = |v: &[&str]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        let expected = [
            ("2026-01-05 10:00", s(&["tag paper"])),
            ("2026-01-20 09:00", s(&["monthly 2026-01"])),
            ("2026-02-10 08:00", s(&[])),
            ("2026-02-27 12:00", s(&["monthly 2026-02"])),
            ("2026-03-02 08:00", s(&["pinned"])),
            ("2026-03-02 20:00", s(&[])),
            ("2026-03-04 09:00", s(&["daily 2026-03-04"])),
            (
                "2026-03-08 23:00",
                s(&["daily 2026-03-08", "weekly 2026-W10"]),
            ),
            ("2026-03-09 00:30", s(&[])),
            (
                "2026-03-09 18:00",
                s(&[
                    "newest 1",
                    "daily 2026-03-09",
                    "weekly 2026-W11",
                    "monthly 2026-03",
                ]),
            ),
        ];
        let expected: Vec<(String, Vec<String>)> = expected
            .into_iter()
            .map(|(w, r)| (w.to_string(), r))
            .collect();
        assert_eq!(kept_by(&m, &rules), expected);
        let (remove, _) = plan(&m, None, &rules);
        assert_eq!(remove.len(), 3);
    }

    #[test]
    fn iso_weeks_cross_the_new_year_and_counts_skip_empty_periods() {
        let mut m = Manifest::default();
        for when in ["2025-11-03 12:00", "2025-12-29 12:00", "2026-01-02 12:00"] {
            m.backups.push(at(when));
        }
        let weekly = Rules::new(None, None).with_calendar(Calendar {
            weekly: Some(2),
            ..Calendar::default()
        });
        let kept: Vec<Vec<String>> = kept_by(&m, &weekly).into_iter().map(|(_, r)| r).collect();
        // 2025-12-29 and 2026-01-02 share ISO week 2026-W01; the second week with backups
        // is 2025-W45, two months back: periods without backups do not count.
        assert_eq!(kept[0], ["weekly 2025-W45"]);
        assert!(kept[1].is_empty());
        assert_eq!(kept[2], ["weekly 2026-W01"]);
        let monthly = Rules::new(None, None).with_calendar(Calendar {
            monthly: Some(2),
            ..Calendar::default()
        });
        let kept: Vec<Vec<String>> = kept_by(&m, &monthly).into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            kept,
            [
                vec![],
                vec!["monthly 2025-12".to_string()],
                vec!["monthly 2026-01".to_string()]
            ]
        );
        assert!(
            Rules::new(Some(1), None)
                .with_calendar(Calendar {
                    daily: Some(0),
                    ..Calendar::default()
                })
                .has_zero()
        );
    }

    #[test]
    fn without_any_rule_everything_is_kept_and_tags_protect_safety_copies_too() {
        let mut m = manifest(&[("a", 1), ("a", 2)]);
        for (i, secs) in [10, 11].into_iter().enumerate() {
            m.backups
                .push(entry("a", format!("safe_{i}"), secs, Kind::Safety));
        }
        m.backups[2].tags = vec!["keep-me".into()];
        let (remove, _) = plan(&m, None, &Rules::new(None, Some(1)));
        assert!(remove.is_empty(), "{:?}", files(remove));
        let decisions = decide(&m, None, &Rules::new(None, Some(1)));
        assert_eq!(decisions[0].kept_by, ["no rule given"]);
        assert_eq!(decisions[2].kept_by, ["tag keep-me"]);
        assert_eq!(decisions[3].kept_by, ["safety newest 1"]);
    }
}
