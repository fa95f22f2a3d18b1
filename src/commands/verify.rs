//! `resbak verify`: prove archives are intact against the manifest.

use super::{Context, Outcome, Printer};
use crate::archive::Stats;
use crate::error::{Error, Result, printable};
use crate::extract;
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use crate::progress::Progress;
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::checksum::HashingReader;
use crate::remote::{Catalogue, Remote};
use std::io::BufReader;

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
    /// Archive file name.
    pub archive: String,
    /// Its strategy.
    pub strategy: String,
    /// `ok` or `failed`.
    pub status: &'static str,
    /// What is wrong, for `failed`.
    pub problem: Option<String>,
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

    fn outcome(&self) -> Outcome {
        if self.problems == 0 {
            Outcome::Clean
        } else {
            Outcome::ProblemsFound
        }
    }
}

/// Checks each selected backup, several at once, and prints one line for each plus a summary.
pub fn run(ctx: &Context, opts: &VerifyOptions, printer: &mut Printer) -> Result<Outcome> {
    let _reading = Lock::shared(&ctx.backup_dir, LockFile::Archives)?;
    super::warn_leftovers(&ctx.backup_dir, printer);
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let selected = select(&manifest, &opts.targets, &ctx.backup_dir)?;
    let total = selected.iter().map(|e| e.size).sum();
    let progress = printer.progress(total, "verifying");
    let outcomes = check_all(&ctx.backup_dir, &selected, opts.deep, &progress);
    progress.finish();
    let results: Vec<Checked> = selected
        .iter()
        .zip(outcomes)
        .map(|(entry, outcome)| Checked {
            archive: entry.backup_file.clone(),
            strategy: entry.strategy.clone(),
            status: if outcome.is_ok() { "ok" } else { "failed" },
            problem: outcome.err(),
        })
        .collect();
    let report = Report::new(opts.deep, results);
    print(&report, &ctx.backup_dir.display().to_string(), printer)?;
    Ok(report.outcome())
}

/// Checks `entries` on all cores; results in the same order.
fn check_all(
    dir: &Path,
    entries: &[&Entry],
    deep: bool,
    progress: &Progress,
) -> Vec<std::result::Result<(), String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<std::result::Result<(), String>>>> =
        Mutex::new(vec![None; entries.len()]);
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
        .map(|r| r.unwrap_or_else(|| Err("not checked".into())))
        .collect()
}

/// Prints the report: JSON, or one line per backup and a summary naming `place`.
fn print(report: &Report, place: &str, printer: &mut Printer) -> Result<()> {
    if printer.json() {
        return printer.json_report(report);
    }
    if report.checked == 0 {
        return printer.line(format_args!("No backups to verify in {place}."));
    }
    for result in &report.results {
        match &result.problem {
            None => printer.line(format_args!(
                "{}      {}",
                printer.paint("OK", true),
                result.archive
            ))?,
            Some(problem) => {
                let failed = printer.paint("FAILED", false);
                printer.problem(format_args!("{failed}  {}: {problem}", result.archive))?;
            }
        }
    }
    let kind = if report.deep { "deep" } else { "checksum" };
    printer.line(format_args!(
        "Verified {} backups ({kind}): {} intact, {} with problems",
        report.checked, report.intact, report.problems
    ))
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
    for target in targets {
        if !sorted.iter().any(|e| matches(e, target)) {
            return Err(Error::UnknownBackup {
                name: target.clone(),
                dir: backup_dir.to_path_buf(),
            });
        }
    }
    Ok(sorted
        .into_iter()
        .filter(|e| targets.iter().any(|t| matches(e, t)))
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
/// same entry count and byte total. The error says exactly what is wrong.
pub fn check(
    backup_dir: &Path,
    entry: &Entry,
    deep: bool,
    progress: &Progress,
) -> std::result::Result<(), String> {
    let path = backup_dir.join(&entry.backup_file);
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("archive file is missing".into());
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if size != entry.size {
        return Err(format!(
            "size is {size} bytes, manifest says {}",
            entry.size
        ));
    }
    let scan = extract::scan(&path, deep.then_some(entry.strategy.as_str()), progress).map_err(
        |e| match e {
            Error::Corrupt { detail, .. } => {
                format!("cannot be decompressed: {}", printable(detail))
            }
            other => other.to_string(),
        },
    )?;
    judge(entry, &scan)
}

/// Compares what reading an archive found with its entry: SHA-256, and when its entries were
/// read, their count and byte total.
fn judge(entry: &Entry, scan: &extract::Scan) -> std::result::Result<(), String> {
    if scan.checksum.sha256 != entry.sha256 {
        return Err(format!(
            "SHA-256 mismatch: manifest {}, file {}",
            entry.sha256, scan.checksum.sha256
        ));
    }
    let recorded = Stats {
        files: entry.files,
        bytes: entry.bytes,
    };
    match scan.stats {
        Some(found) if found != recorded => Err(format!(
            "holds {} entries and {} bytes, manifest says {} and {}",
            found.files, found.bytes, recorded.files, recorded.bytes
        )),
        _ => Ok(()),
    }
}

/// `verify --remote`: checks every selected remote backup against its stored entry, streaming
/// each archive object once (with `deep`, through the restore policy in the same pass). Nothing
/// is written locally. Entry objects that cannot be read count as problems.
pub fn run_remote(remote: &Remote, opts: &VerifyOptions, printer: &mut Printer) -> Result<Outcome> {
    let catalogue = remote.catalogue()?;
    let manifest = Manifest {
        backups: catalogue.entries.clone(),
        ..Manifest::default()
    };
    let selected = select(&manifest, &opts.targets, Path::new(&remote.location()))?;
    let mut results = Vec::new();
    if opts.targets.is_empty() {
        for (object, problem) in &catalogue.damaged {
            results.push(Checked {
                archive: object.clone(),
                strategy: String::new(),
                status: "failed",
                problem: Some(problem.clone()),
            });
        }
    }
    for entry in &selected {
        let outcome = check_remote(remote, &catalogue, entry, opts.deep)?;
        results.push(Checked {
            archive: entry.backup_file.clone(),
            strategy: entry.strategy.clone(),
            status: if outcome.is_ok() { "ok" } else { "failed" },
            problem: outcome.err(),
        });
    }
    let report = Report::new(opts.deep, results);
    let place = format!("{} ({})", remote.name(), remote.location());
    print(&report, &place, printer)?;
    Ok(report.outcome())
}

/// Checks one remote backup. The outer error is a failure to talk to the remote; the inner
/// one says exactly what is wrong with the backup.
fn check_remote(
    remote: &Remote,
    catalogue: &Catalogue,
    entry: &Entry,
    deep: bool,
) -> Result<std::result::Result<(), String>> {
    let name = &entry.backup_file;
    match catalogue.archives.get(name) {
        None => return Ok(Err("archive object is missing".into())),
        Some(&size) if size != entry.size => {
            return Ok(Err(format!(
                "size is {size} bytes, entry says {}",
                entry.size
            )));
        }
        Some(_) => {}
    }
    let url = remote.url(name);
    let read = remote.read_archive(name, |object| {
        let mut hashing = HashingReader::new(BufReader::with_capacity(1 << 18, object));
        let stats = deep.then(|| extract::check(&mut hashing, Path::new(&url), &entry.strategy));
        (stats.transpose(), hashing.finish())
    })?;
    let (stats, checksum) = match read {
        (Ok(stats), Ok(checksum)) => (stats, checksum),
        (Err(Error::Corrupt { detail, .. }), _) => {
            return Ok(Err(format!("cannot be decompressed: {detail}")));
        }
        (Err(other), _) => return Ok(Err(other.to_string())),
        (_, Err(e)) => return Ok(Err(format!("cannot be read: {e}"))),
    };
    Ok(judge(entry, &extract::Scan { checksum, stats }))
}
