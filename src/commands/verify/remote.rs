//! `verify --remote`: checks the copies a remote holds against their stored entries, without
//! writing anything locally.

use super::{Checked, Problem, ProblemKind, Report, VerifyOptions, judge, print, select};
use crate::checksum::HashingReader;
use crate::commands::{Context, Outcome, Printer};
use crate::error::Result;
use crate::extract;
use crate::manifest::{Entry, Manifest};
use crate::remote::{Catalogue, Identities, Remote};
use std::io::BufReader;
use std::path::Path;

/// `verify --remote`: checks every selected remote backup against its stored entry, streaming
/// each archive object once. An encrypted copy's object is checked against the size and SHA-256
/// of its ciphertext, which needs no key; with `deep`, it is also decrypted on the way (the
/// remote's identity is needed then) and the archive inside goes through the restore policy
/// in the same pass. Nothing is written locally. Entry objects that cannot be read, and backups
/// whose local namesake holds other bytes (two machines pushed one name), count as problems.
pub fn run_remote(
    ctx: &Context,
    remote: &Remote,
    opts: &VerifyOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let local = Manifest::load(&ctx.backup_dir)
        .inspect_err(|e| {
            printer.warn(format_args!(
                "not comparing with the local backups, the manifest is unreadable: {e}"
            ));
        })
        .ok();
    let catalogue = remote.catalogue()?;
    let manifest = Manifest {
        backups: catalogue.entries.clone(),
        ..Manifest::default()
    };
    let selected = select(&manifest, &opts.targets, Path::new(&remote.location()))?;
    let mut results = Vec::new();
    if opts.targets.is_empty() {
        for (object, problem) in &catalogue.damaged {
            let problem = Problem::new(ProblemKind::Catalogue, problem.clone());
            results.push(Checked::new(object.clone(), String::new(), Err(problem)));
        }
    }
    let sealed = |e: &&Entry| catalogue.sealed.contains_key(&e.backup_file);
    let keys = if opts.deep && selected.iter().any(sealed) {
        Some(remote.identities()?)
    } else {
        None
    };
    for entry in &selected {
        let mut outcome = check_remote(remote, &catalogue, entry, opts.deep, keys.as_ref())?;
        if let Some(have) = local.as_ref().and_then(|m| m.find(&entry.backup_file))
            && outcome.is_ok()
            && !super::super::push::same(have, entry)
        {
            let message = format!(
                "the local backup of that name holds other bytes (SHA-256 {}): one of the two came from another machine",
                have.sha256
            );
            outcome = Err(Problem::new(ProblemKind::Conflict, message));
        }
        let (archive, strategy) = (entry.backup_file.clone(), entry.strategy.clone());
        results.push(Checked::new(archive, strategy, outcome));
    }
    let report = Report::new(opts.deep, results);
    let place = format!("{} ({})", remote.name(), remote.location());
    let all = opts.targets.is_empty();
    print(&report, &place, all, printer)?;
    Ok(report.outcome(all))
}

/// What `verify --remote` (not deep) finds wrong with the remote copy of `entry`, if anything.
///
/// # Errors
/// As [`run_remote`]: a failure to talk to the remote.
pub fn remote_problem(
    remote: &Remote,
    catalogue: &Catalogue,
    entry: &Entry,
) -> Result<Option<String>> {
    let checked = check_remote(remote, catalogue, entry, false, None)?;
    Ok(checked.err().map(|p| p.message))
}

/// Checks one remote backup, then the index pushed with it. The outer error is a failure to
/// talk to the remote (or a key that does not open it); the inner one says exactly what is
/// wrong with the backup.
fn check_remote(
    remote: &Remote,
    catalogue: &Catalogue,
    entry: &Entry,
    deep: bool,
    keys: Option<&Identities>,
) -> crate::error::Result<Result<(), Problem>> {
    let Some(sidecar) = catalogue.sidecar(&entry.backup_file) else {
        let missing = Problem::new(ProblemKind::Missing, "its entry is gone");
        return Ok(Err(missing));
    };
    match check_remote_archive(remote, catalogue, &sidecar, deep, keys)? {
        Ok(()) => super::remote_index::check(remote, catalogue, &sidecar, keys.filter(|_| deep)),
        problem => Ok(problem),
    }
}

/// The archive part of [`check_remote`].
fn check_remote_archive(
    remote: &Remote,
    catalogue: &Catalogue,
    sidecar: &crate::remote::Sidecar,
    deep: bool,
    keys: Option<&Identities>,
) -> crate::error::Result<Result<(), Problem>> {
    let entry = &sidecar.entry;
    let object = sidecar.object();
    let (size, sha256) = sidecar.object_digest();
    match catalogue.archives.get(&object) {
        None => {
            let message = format!("archive object is missing{}", push_again(remote, entry));
            return Ok(Err(Problem::new(ProblemKind::Missing, message)));
        }
        Some(&found) if found != size => {
            let again = push_again(remote, entry);
            let message = format!("size is {found} bytes, entry says {size}{again}");
            return Ok(Err(Problem::new(ProblemKind::Size, message)));
        }
        Some(_) => {}
    }
    let url = remote.url(&entry.backup_file);
    let keys = keys.filter(|_| deep);
    let (read, object_sum) = remote.read_backup(sidecar, keys, |plain| {
        let mut hashing = HashingReader::new(BufReader::with_capacity(1 << 18, plain));
        let stats = deep.then(|| extract::check(&mut hashing, Path::new(&url), &entry.strategy));
        (stats.transpose(), hashing.finish())
    })?;
    let object_sum = match object_sum {
        Ok(sum) => sum,
        Err(e) => {
            let message = format!("cannot be read: {e}");
            return Ok(Err(Problem::new(ProblemKind::Unreadable, message)));
        }
    };
    if object_sum.sha256 != sha256 {
        let message = format!(
            "SHA-256 mismatch: entry {sha256}, object {}; resbak push {} --remote {} --repair \
             uploads it again from an intact local copy",
            object_sum.sha256,
            entry.backup_file,
            remote.name()
        );
        return Ok(Err(Problem::new(ProblemKind::Checksum, message)));
    }
    if sidecar.sealed.is_some() && !deep {
        return Ok(Ok(()));
    }
    let (stats, checksum) = match read {
        (Ok(stats), Ok(checksum)) => (stats, checksum),
        (Err(e), _) => return Ok(Err(Problem::reading(e))),
        (_, Err(e)) => {
            let message = format!("cannot be read: {e}");
            return Ok(Err(Problem::new(ProblemKind::Unreadable, message)));
        }
    };
    Ok(judge(entry, &extract::Scan { checksum, stats }))
}

/// The hint after a remote object that is missing or of the wrong size: `push` uploads it again
/// from an intact local copy.
fn push_again(remote: &Remote, entry: &Entry) -> String {
    format!(
        "; resbak push {} --remote {} uploads it again from an intact local copy",
        entry.backup_file,
        remote.name()
    )
}
