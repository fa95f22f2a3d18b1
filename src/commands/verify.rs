//! `resbak verify`: prove archives are intact against the manifest.

use super::{Context, Outcome, Printer};
use crate::archive::Stats;
use crate::error::{Error, Result};
use crate::extract;
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use std::path::Path;

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

/// Checks each selected backup and prints one line for each plus a summary.
pub fn run(ctx: &Context, opts: &VerifyOptions, printer: &mut Printer) -> Result<Outcome> {
    let _reading = Lock::shared(&ctx.backup_dir, LockFile::Archives)?;
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let selected = select(&manifest, &opts.targets, &ctx.backup_dir)?;
    if selected.is_empty() {
        printer.line(format_args!(
            "No backups to verify in {}.",
            ctx.backup_dir.display()
        ))?;
        return Ok(Outcome::Clean);
    }
    let mut problems = 0;
    for entry in &selected {
        match check(&ctx.backup_dir, entry, opts.deep) {
            Ok(()) => printer.line(format_args!("OK      {}", entry.backup_file))?,
            Err(problem) => {
                problems += 1;
                printer.line(format_args!("FAILED  {}: {problem}", entry.backup_file))?;
            }
        }
    }
    let kind = if opts.deep { "deep" } else { "checksum" };
    printer.line(format_args!(
        "Verified {} backups ({kind}): {} intact, {problems} with problems",
        selected.len(),
        selected.len() - problems
    ))?;
    Ok(if problems == 0 {
        Outcome::Clean
    } else {
        Outcome::ProblemsFound
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
pub fn check(backup_dir: &Path, entry: &Entry, deep: bool) -> std::result::Result<(), String> {
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
    let scan =
        extract::scan(&path, deep.then_some(entry.strategy.as_str())).map_err(|e| match e {
            Error::Corrupt { detail, .. } => format!("cannot be decompressed: {detail}"),
            other => other.to_string(),
        })?;
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
    if selected.is_empty() && catalogue.damaged.is_empty() {
        printer.line(format_args!(
            "No backups to verify on {} ({}).",
            remote.name(),
            remote.location()
        ))?;
        return Ok(Outcome::Clean);
    }
    let damaged = if opts.targets.is_empty() {
        catalogue.damaged.len()
    } else {
        0
    };
    let mut problems = damaged;
    for (object, problem) in catalogue.damaged.iter().take(damaged) {
        printer.line(format_args!("FAILED  {object}: {problem}"))?;
    }
    for entry in &selected {
        match check_remote(remote, &catalogue, entry, opts.deep)? {
            Ok(()) => printer.line(format_args!("OK      {}", entry.backup_file))?,
            Err(problem) => {
                problems += 1;
                printer.line(format_args!("FAILED  {}: {problem}", entry.backup_file))?;
            }
        }
    }
    let checked = selected.len() + damaged;
    let kind = if opts.deep { "deep" } else { "checksum" };
    printer.line(format_args!(
        "Verified {checked} backups on {} ({kind}): {} intact, {problems} with problems",
        remote.name(),
        checked - problems
    ))?;
    Ok(if problems == 0 {
        Outcome::Clean
    } else {
        Outcome::ProblemsFound
    })
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
