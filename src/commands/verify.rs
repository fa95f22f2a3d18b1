//! `resbak verify`: prove archives are intact against the manifest, and record each result
//! beside it (see [`checks::Checks`]).

mod remote;
mod remote_index;

pub use remote::{remote_problem, run_remote};

use super::{Context, Located, Outcome, Printer, locate, strategy_of, unknown_name};
use crate::archive::Stats;
use crate::checks;
use crate::error::{Error, Result, count, printable};
use crate::extract;
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use crate::progress::Progress;
use chrono::Utc;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Options of `resbak verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Archive names or strategies; all backups when empty.
    pub targets: Vec<String>,
    /// Also decompress every entry and check counts.
    pub deep: bool,
}

/// One backup's result; also the JSON shape.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// Archive file name (the path given, for an archive the manifest does not know).
    pub archive: String,
    /// Its strategy.
    pub strategy: String,
    /// `ok` or `failed`.
    pub status: &'static str,
    /// What is wrong, for `failed`.
    pub problem: Option<String>,
    /// What kind of problem, for `failed`.
    pub problem_kind: Option<ProblemKind>,
    /// Whether a manifest lists it; an archive no manifest knows is read in full, with no
    /// recorded checksum to compare.
    pub catalogued: bool,
    /// Its SHA-256 as read, for an archive no manifest knows.
    pub sha256: Option<String>,
    /// Whether its entry records a checksum to compare (entries of the Python scripts'
    /// manifest do not until it is upgraded: then only the size and, deep, the entries count).
    pub checksum_recorded: bool,
    /// Whether only its index is damaged or gone (the archive is intact): `reindex` is the
    /// way out, not a fresh backup.
    #[serde(skip)]
    pub index_only: bool,
}

impl Checked {
    fn new(archive: String, strategy: String, outcome: Result<(), Problem>) -> Checked {
        let (problem, problem_kind, index_only) = match outcome {
            Ok(()) => (None, None, false),
            Err(p) => (Some(p.message), Some(p.kind), p.index_only),
        };
        Checked {
            archive,
            strategy,
            status: if problem.is_none() { "ok" } else { "failed" },
            problem,
            problem_kind,
            catalogued: true,
            sha256: None,
            checksum_recorded: true,
            index_only,
        }
    }
}

/// What kind of problem a check found; `problem_kind` in `verify --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    /// The archive file is gone.
    Missing,
    /// The file cannot be opened or read.
    Unreadable,
    /// Its size differs from the recorded one.
    Size,
    /// Its manifest entry is wrong, not the archive: a size, entry count or byte total other
    /// than the file's whose SHA-256 is the recorded one, or a strategy other than its file
    /// name says.
    Record,
    /// Its SHA-256 differs from the recorded one.
    Checksum,
    /// It cannot be decompressed or is not a valid tar.
    Corrupt,
    /// An entry the restore policy refuses.
    Entry,
    /// Its catalogue entry cannot be read (remotes).
    Catalogue,
    /// The local backup of the same name holds other bytes (remotes).
    Conflict,
}

/// A problem a check found: its kind and a one-line description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// What exactly is wrong.
    pub message: String,
    /// Whether only the index beside the archive is wrong: the archive itself is intact.
    pub index_only: bool,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            message: message.into(),
            index_only: false,
        }
    }

    /// The problem an error reading an archive means.
    fn reading(error: Error) -> Problem {
        match error {
            Error::Corrupt { detail, .. } => Problem::new(
                ProblemKind::Corrupt,
                format!("cannot be decompressed: {}", printable(detail)),
            ),
            e @ Error::UnsafeEntry { .. } => Problem::new(ProblemKind::Entry, e.to_string()),
            other => Problem::new(ProblemKind::Unreadable, other.to_string()),
        }
    }
}

/// The whole report; the JSON shape of `verify --json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether entries were decompressed and checked too.
    pub deep: bool,
    /// Backups checked.
    pub checked: usize,
    /// Backups found intact.
    pub intact: usize,
    /// Backups with a problem.
    pub problems: usize,
    /// One result per backup, in catalogue order.
    pub results: Vec<Checked>,
}

impl Report {
    fn new(deep: bool, results: Vec<Checked>) -> Report {
        let problems = results.iter().filter(|r| r.problem.is_some()).count();
        Report {
            deep,
            checked: results.len(),
            intact: results.len() - problems,
            problems,
            results,
        }
    }

    /// Clean only when every backup checked is intact and, when `all` were asked for, there
    /// was at least one: an empty catalogue is no proof of anything.
    fn outcome(&self, all: bool) -> Outcome {
        if self.problems == 0 && !(all && self.checked == 0) {
            Outcome::Clean
        } else {
            Outcome::ProblemsFound
        }
    }
}

/// Checks each selected backup, several at once, records the results beside the manifest,
/// and prints one line for each plus a summary. Targets the backup folder's manifest does not
/// know are looked up as archive files (see [`super::locate`]) and checked on their own.
pub fn run(ctx: &Context, opts: &VerifyOptions, printer: &mut Printer) -> Result<Outcome> {
    let dir = &ctx.backup_dir;
    if opts.targets.is_empty() && !dir.is_dir() {
        return Err(Error::missing_folder("backup", dir));
    }
    let _reading = Lock::shared(dir, LockFile::Archives)?;
    super::warn_leftovers(dir, printer);
    let mut manifest = Manifest::load(dir)?;
    // Nothing here reads the metrics: their memory serves the checks and the record instead.
    for entry in &mut manifest.backups {
        entry.metrics = None;
    }
    super::adopt::note(dir, &manifest, printer);
    let (selected, others) = select_or_locate(ctx, &manifest, &opts.targets)?;
    let outcomes = check_entries(dir, &selected, opts.deep, printer);
    let mut results: Vec<Checked> = selected
        .iter()
        .zip(outcomes)
        .map(|(e, outcome)| Checked {
            checksum_recorded: e.has_checksum(),
            ..Checked::new(e.backup_file.clone(), e.strategy.clone(), outcome)
        })
        .collect();
    results.extend(
        others
            .iter()
            .map(|located| check_located(located, opts.deep)),
    );
    let report = Report::new(opts.deep, results);
    let all = opts.targets.is_empty();
    print(&report, &dir.display().to_string(), all, printer)?;
    // Archives the manifest does not list are said, as the manifest cannot show them: one cut
    // short or edited by hand still parses. (A backup or prune under way may show one too.)
    // Not verified, so not a clean check: one may be an archive reindex would not add.
    let untracked = match all {
        true => warn_untracked(dir, &manifest, printer),
        false => 0,
    };
    let verdicts: Vec<super::Verdict> = report
        .results
        .iter()
        .map(|r| super::Verdict {
            archive: &r.archive,
            strategy: &r.strategy,
            intact: r.problem.is_none(),
            archive_intact: r.index_only || r.problem_kind == Some(ProblemKind::Record),
            missing: r.problem_kind == Some(ProblemKind::Missing),
        })
        .collect();
    let folders = (ctx.results_dir.as_path(), dir.as_path());
    super::hint_after_check(folders, &manifest, &verdicts, printer);
    Ok(match untracked {
        0 => report.outcome(all),
        _ => Outcome::ProblemsFound,
    })
}

/// Says the archives in `dir` its manifest does not list, and counts them. Counted under the
/// manifest lock, against the manifest as it is then: a backup that finished meanwhile (it
/// places and catalogues its archive under that lock) is not counted. `manifest` is the one
/// verified, used should the lock or the manifest not be had now.
fn warn_untracked(dir: &Path, manifest: &Manifest, printer: &mut Printer) -> usize {
    let _placing = Lock::exclusive(dir, LockFile::Manifest);
    let now = Manifest::load(dir);
    let manifest = now.as_ref().unwrap_or(manifest);
    super::warn_untracked(dir, manifest, ", so not verified", printer)
}

/// Checks `entries` of the manifest in `dir` on all cores, records the results beside the
/// manifest (a failure to record is a warning) and returns them in the same order.
pub fn check_entries(
    dir: &Path,
    entries: &[&Entry],
    deep: bool,
    printer: &mut Printer,
) -> Vec<Result<(), Problem>> {
    let total = entries.iter().map(|e| e.size).sum();
    let progress = printer.progress(total, "verifying");
    // Taken before the bytes are read: a file changed while it is read no longer matches.
    let stamps: Vec<_> = (entries.iter())
        .map(|e| checks::FileStamp::of(&dir.join(&e.backup_file)))
        .collect();
    let outcomes = check_all(dir, entries, deep, &progress);
    progress.finish();
    let at = Utc::now();
    let records = entries
        .iter()
        .zip(&outcomes)
        .zip(stamps)
        .map(|((entry, outcome), file)| {
            let check = checks::Check {
                at,
                sha256: entry.sha256.clone(),
                deep: deep || !entry.has_checksum(),
                problem: outcome.as_ref().err().map(|p| p.message.clone()),
                missing: outcome
                    .as_ref()
                    .is_err_and(|p| p.kind == ProblemKind::Missing),
                index_only: outcome.as_ref().is_err_and(|p| p.index_only),
                file,
            };
            (entry.backup_file.clone(), check)
        });
    if let Err(e) = checks::Checks::record(dir, records.collect()) {
        printer.warn(format_args!("could not record the results: {e}"));
    }
    outcomes
}

/// Records `problem`, found in the catalogued archive `entry` of `dir` by a command other than
/// `verify` (restore, diff, backup), as its last check, so that `list` and the browsing commands
/// no longer call it verified (`index_only`: the archive is intact, its index is not). A
/// failure to record is a warning.
pub fn record_problem(dir: &Path, entry: &Entry, problem: &str, index_only: bool) {
    let check = checks::Check {
        at: Utc::now(),
        sha256: entry.sha256.clone(),
        deep: false,
        problem: Some(problem.to_string()),
        missing: false,
        index_only,
        file: None,
    };
    if let Err(e) = checks::Checks::record(dir, vec![(entry.backup_file.clone(), check)]) {
        super::warn(format_args!("could not record the problem found: {e}"));
    }
}

/// After a command failed with `error`: if it found a catalogued archive of `dir` corrupt,
/// records that (see [`record_problem`]).
pub fn record_if_corrupt(dir: &Path, error: &crate::error::Error) {
    let crate::error::Error::Corrupt { path, detail } = error else {
        return;
    };
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    if parent != dir {
        return;
    }
    let Ok(manifest) = crate::manifest::Manifest::load(dir) else {
        return;
    };
    if let Some(entry) = manifest.find(&name.to_string_lossy()) {
        record_problem(dir, entry, detail, false);
    }
}

/// Checks an archive found by path: against the manifest beside it when that lists it, else
/// in full on its own (there is no recorded checksum to compare).
fn check_located(located: &Located, deep: bool) -> Checked {
    let archive = located.path.display().to_string();
    if let Some(entry) = &located.entry {
        let dir = crate::atomic::parent_dir(&located.path);
        let outcome = check(dir, entry, deep, &Progress::hidden());
        return Checked::new(archive, entry.strategy.clone(), outcome);
    }
    let read = strategy_of(&located.path).and_then(|strategy| {
        let scan = extract::scan(&located.path, Some(&strategy), &Progress::hidden())?;
        Ok((strategy, scan.checksum.sha256))
    });
    match read {
        Ok((strategy, sha256)) => Checked {
            catalogued: false,
            sha256: Some(sha256),
            ..Checked::new(archive, strategy, Ok(()))
        },
        Err(e) => Checked {
            catalogued: false,
            ..Checked::new(archive, String::new(), Err(Problem::reading(e)))
        },
    }
}

/// Checks `entries` on all cores; results in the same order.
fn check_all(
    dir: &Path,
    entries: &[&Entry],
    deep: bool,
    progress: &Progress,
) -> Vec<Result<(), Problem>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len().max(1));
    if threads == 1 {
        // On this thread: the memory it freed (the manifest's) serves the check.
        return entries
            .iter()
            .map(|entry| check(dir, entry, deep, progress))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<(), Problem>>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(entry) = entries.get(index) else {
                        break;
                    };
                    let outcome = check(dir, entry, deep, progress);
                    results.lock().expect("no thread panics holding it")[index] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no thread panics holding it")
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Problem::new(ProblemKind::Unreadable, "not checked"))))
        .collect()
}

/// Prints the report: JSON, or one line per backup and a summary naming `place`.
fn print(report: &Report, place: &str, all: bool, printer: &mut Printer) -> Result<()> {
    if printer.json() {
        return printer.json_report(report);
    }
    if report.checked == 0 && all {
        return printer.problem(format_args!(
            "Nothing to verify: the catalogue in {place} is empty"
        ));
    }
    if report.checked == 0 {
        return printer.line(format_args!("No backups to verify in {place}."));
    }
    for result in &report.results {
        match &result.problem {
            None => printer.line(format_args!(
                "{}      {}{}",
                printer.paint("OK", true),
                result.archive,
                uncatalogued_note(result)
            ))?,
            Some(problem) => {
                let failed = printer.paint("FAILED", false);
                printer.problem(format_args!("{failed}  {}: {problem}", result.archive))?;
            }
        }
    }
    let kind = if report.deep { "deep" } else { "checksum" };
    printer.line(format_args!(
        "Verified {} ({kind}): {} intact, {} with problems",
        count(report.checked, "backup", "backups"),
        report.intact,
        report.problems
    ))
}

/// For an archive with no recorded checksum: what was and was not checked.
fn uncatalogued_note(result: &Checked) -> String {
    match (&result.sha256, result.catalogued) {
        (Some(sha256), false) => format!(
            " (no manifest lists it, so there is no recorded checksum: read in full, sha256 {sha256})"
        ),
        _ if result.checksum_recorded => String::new(),
        _ => " (no recorded checksum: size checked and every entry read)".into(),
    }
}

/// The backup folder's entries named by `targets` (see [`select`]), and archive files for the
/// targets no entry matches; every entry when `targets` is empty.
fn select_or_locate<'m>(
    ctx: &Context,
    manifest: &'m Manifest,
    targets: &[String],
) -> Result<(Vec<&'m Entry>, Vec<Located>)> {
    let sorted = manifest.sorted();
    let by_path = |t: &String| t.contains('/');
    let (mut named, mut others) = (Vec::new(), Vec::new());
    for target in targets {
        if !by_path(target) && sorted.iter().any(|e| matches(e, target)) {
            named.push(target.clone());
            continue;
        }
        if !by_path(target)
            && let Some(picked) = super::locate::pick(&ctx.backup_dir, manifest, target)
        {
            picked?;
            named.push(target.clone());
            continue;
        }
        match locate(ctx, target) {
            Ok(located) if in_folder(&located.path, &ctx.backup_dir) => named.push(target.clone()),
            Ok(located) => others.push(located),
            Err(Error::UnknownBackup { .. }) => {
                return Err(unknown_name(target, manifest, &ctx.backup_dir));
            }
            Err(e) => return Err(e),
        }
    }
    let entries = match (targets.is_empty(), named.is_empty()) {
        (true, _) => sorted,
        (false, true) => Vec::new(),
        (false, false) => select(manifest, &named, &ctx.backup_dir)?,
    };
    Ok((entries, others))
}

/// Whether `path` is a catalogued archive of the backup folder `dir`.
fn in_folder(path: &Path, dir: &Path) -> bool {
    super::same_dir(crate::atomic::parent_dir(path), dir)
        && Manifest::load(dir).is_ok_and(|m| {
            path.file_name()
                .is_some_and(|f| m.find(&f.to_string_lossy()).is_some())
        })
}

/// Entries named by `targets` (archive names, with or without `.tar.gz`, or strategies), in
/// catalogue order without repeats; every entry when `targets` is empty.
pub fn select<'m>(
    manifest: &'m Manifest,
    targets: &[String],
    backup_dir: &Path,
) -> Result<Vec<&'m Entry>> {
    let sorted = manifest.sorted();
    if targets.is_empty() {
        return Ok(sorted);
    }
    // `STRATEGY~N` names one backup, as it does for show, diff and restore.
    let mut picked = Vec::new();
    for target in targets {
        if sorted.iter().any(|e| matches(e, target)) {
            continue;
        }
        match super::locate::pick(backup_dir, manifest, target) {
            Some(Ok(located)) => picked.extend(located.entry.map(|e| e.backup_file)),
            Some(Err(e)) => return Err(e),
            None => return Err(unknown_name(target, manifest, backup_dir)),
        }
    }
    Ok(sorted
        .into_iter()
        .filter(|e| targets.iter().any(|t| matches(e, t)) || picked.contains(&e.backup_file))
        .collect())
}

fn matches(entry: &Entry, target: &str) -> bool {
    let name = Path::new(target)
        .file_name()
        .map_or(target.into(), |n| n.to_string_lossy());
    entry.strategy == target
        || entry.backup_file == name
        || entry.backup_file.strip_suffix(".tar.gz") == Some(&name)
}

/// Checks one backup against its entry: present, same size and SHA-256, and with `deep` the
/// same entry count and byte total. The problem says exactly what is wrong.
pub fn check(
    backup_dir: &Path,
    entry: &Entry,
    deep: bool,
    progress: &Progress,
) -> Result<(), Problem> {
    let path = check_present(backup_dir, entry)?;
    if let Some(problem) = crate::manifest::name::misnamed(entry) {
        return Err(Problem::new(ProblemKind::Record, problem));
    }
    // With no checksum to compare, reading every entry is the only check of the bytes.
    let deep = deep || !entry.has_checksum();
    let index_sha256 = entry.index_sha256.as_deref();
    let segments = deep
        .then(|| crate::index::segments_of(&path, index_sha256))
        .flatten();
    let scan = match segments {
        Some(segments) => extract::scan_segments(&path, &entry.strategy, segments, progress),
        None => extract::scan(&path, deep.then_some(entry.strategy.as_str()), progress),
    };
    judge(entry, &scan.map_err(Problem::reading)?)?;
    check_index(&path, index_sha256)
}

/// The path of `entry`'s archive in `backup_dir` if it is there with the size recorded: a look at
/// the file, no read (unless the size differs: then it may be the record that is wrong).
pub fn check_present(backup_dir: &Path, entry: &Entry) -> Result<PathBuf, Problem> {
    let path = backup_dir.join(&entry.backup_file);
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::new(ProblemKind::Missing, checks::MISSING_PROBLEM));
        }
        Err(e) => {
            return Err(Problem::new(
                ProblemKind::Unreadable,
                format!("cannot read it: {e}"),
            ));
        }
    };
    if size != entry.size {
        return Err(size_problem(&path, entry, size));
    }
    Ok(path)
}

/// An archive of another size than its entry records. With its SHA-256 still the recorded one,
/// the entry's size is what is wrong (a hand edit): the archive is intact and the fix is one
/// line of the manifest, never removing the archive.
fn size_problem(path: &Path, entry: &Entry, size: u64) -> Problem {
    match (intact_despite_size(path, entry), entry.recorded_checksum()) {
        (Some(sum), Some(recorded)) => Problem::new(ProblemKind::Record, sum.mismatch(&recorded)),
        _ => Problem::new(
            ProblemKind::Size,
            format!("size is {size} bytes, manifest says {}", entry.size),
        ),
    }
}

/// The checksum of the archive at `path`, whose size is not the one `entry` records, if its
/// SHA-256 is still the recorded one: the bytes are intact and the entry's size was edited.
/// Only a regular file is read: a FIFO in its place must not hang the check.
pub(crate) fn intact_despite_size(path: &Path, entry: &Entry) -> Option<crate::checksum::Checksum> {
    let file = crate::archive::open_regular(path).ok().flatten()?;
    let sum = crate::checksum::HashingReader::new(std::io::BufReader::new(file)).finish();
    sum.ok()
        .filter(|sum| entry.has_checksum() && sum.sha256 == entry.sha256)
}

/// The index beside an archive (see [`crate::index`]) against the SHA-256 its entry records: an
/// intact archive whose index is damaged or gone is reported too, with the way to a new one.
fn check_index(archive: &Path, index_sha256: Option<&str>) -> Result<(), Problem> {
    let Some(expected) = index_sha256 else {
        return Ok(());
    };
    let index = crate::index::path_for(archive);
    let what = match crate::index::matches(archive, expected) {
        Ok(true) => return Ok(()),
        Ok(false) => "is damaged",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing",
        Err(_) => "cannot be read",
    };
    let name = index.file_name().unwrap_or_default().to_string_lossy();
    Err(Problem {
        index_only: true,
        ..Problem::new(
            ProblemKind::Checksum,
            format!(
                "the archive is intact, but its index {name} {what}; resbak reindex builds it again"
            ),
        )
    })
}

/// Compares what reading an archive found with its entry: SHA-256, and when its entries were
/// read, their count and byte total.
fn judge(entry: &Entry, scan: &extract::Scan) -> Result<(), Problem> {
    if !entry.has_checksum() {
        return Ok(());
    }
    if scan.checksum.sha256 != entry.sha256 {
        return Err(Problem::new(
            ProblemKind::Checksum,
            format!(
                "SHA-256 mismatch: manifest {}, file {}",
                entry.sha256, scan.checksum.sha256
            ),
        ));
    }
    let recorded = Stats {
        files: entry.entries,
        bytes: entry.bytes,
    };
    // The SHA-256 is the one recorded: these are the bytes resbak wrote, so counts that differ
    // are a wrong entry (a hand edit), never a reason to give up the archive.
    match scan.stats {
        Some(found) if found != recorded => Err(Problem::new(
            ProblemKind::Record,
            format!(
                "holds {} and {}, manifest says {} and {}, but its SHA-256 is the one recorded: \
                 the archive is intact and its manifest entry is wrong; correct its entries to \
                 {} and bytes to {}",
                count(found.files, "entry", "entries"),
                count(found.bytes, "byte", "bytes"),
                recorded.files,
                recorded.bytes,
                found.files,
                found.bytes
            ),
        )),
        _ => Ok(()),
    }
}
