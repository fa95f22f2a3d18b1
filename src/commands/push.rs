//! `resbak push`: copy backups to a remote, checked, with their catalogue entries.
//!
//! Only archives the remote's catalogue lacks are uploaded. Each one is hashed while it is sent
//! (a local archive that no longer matches its manifest entry is never completed), read back
//! from the remote (size and SHA-256 must be the entry's), and only then catalogued there by
//! writing its entry object. The archive's index (`NAME.tar.gz.idx`) goes up with it, encrypted
//! like it, and is recorded in the entry object. A push that fails leaves no catalogue entry. A remote with
//! recipients gets each archive encrypted while it streams up (`<name>.tar.gz.age`); one
//! without them takes plaintext only when configured with `encrypt = false`.

use super::{Context, Outcome, Printer, human_size, verify};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use crate::remote::{ENTRY_SUFFIX, Recipients, Remote};
use std::path::Path;
use std::time::Instant;

/// Options of `resbak push`.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Archive names or strategies; every local backup when empty.
    pub targets: Vec<String>,
    /// Read each copy the remote holds and upload again those found damaged.
    pub repair: bool,
}

/// Which backups went which way; the JSON shape of `push --json`.
#[derive(Debug, Default, serde::Serialize)]
pub struct Tally {
    /// Archives uploaded and catalogued on the remote.
    pub pushed: Vec<String>,
    /// Archives the remote already held, identical.
    pub present: Vec<String>,
    /// Archives whose remote copy had an object missing or of the wrong size, uploaded again.
    pub repaired: Vec<String>,
    /// Archives that could not be pushed, with the problem.
    pub failed: Vec<Failed>,
}

/// One archive that could not be pushed.
#[derive(Debug, serde::Serialize)]
pub struct Failed {
    /// Archive file name.
    pub archive: String,
    /// What is wrong.
    pub problem: String,
}

/// Pushes each selected backup the remote lacks and prints one line for each plus a summary.
pub fn run(
    ctx: &Context,
    remote: &Remote,
    opts: &PushOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let (tally, outcome) = push(ctx, remote, opts, printer)?;
    if let Some(tally) = tally {
        printer.json_report(&tally)?;
    }
    Ok(outcome)
}

/// Runs `backup` (through `run_backup`), then pushes the backups it made to each of `remotes`
/// (`backup --push`, `push = [...]`). A remote that would refuse them is found before anything
/// is backed up.
pub fn after(
    ctx: &Context,
    remotes: &[Remote],
    printer: &mut Printer,
    run_backup: impl FnOnce(&mut Printer) -> Result<Outcome>,
) -> Result<Outcome> {
    if remotes.is_empty() {
        return run_backup(printer);
    }
    for remote in remotes {
        remote.sealing()?;
    }
    let before = archive_names(ctx)?;
    let mut outcome = run_backup(printer)?;
    let new: Vec<String> = archive_names(ctx)?
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    if new.is_empty() {
        return Ok(outcome);
    }
    let opts = PushOptions {
        targets: new,
        repair: false,
    };
    for remote in remotes {
        outcome = outcome.max(push(ctx, remote, &opts, printer)?.1);
    }
    Ok(outcome)
}

/// The archives the manifest of `ctx`'s backup folder lists.
fn archive_names(ctx: &Context) -> Result<Vec<String>> {
    let manifest = Manifest::load(&ctx.backup_dir)?;
    Ok(manifest
        .backups
        .into_iter()
        .map(|e| e.backup_file)
        .collect())
}

/// [`run`] without the JSON report; the tally is `None` when there was nothing to push.
fn push(
    ctx: &Context,
    remote: &Remote,
    opts: &PushOptions,
    printer: &mut Printer,
) -> Result<(Option<Tally>, Outcome)> {
    super::adopt::upgrade(&ctx.backup_dir, printer)?;
    let _reading = Lock::shared(&ctx.backup_dir, LockFile::Archives)?;
    let manifest = super::load_with_metrics(&ctx.backup_dir, printer)?.0;
    let selected = verify::select(&manifest, &opts.targets, &ctx.backup_dir)?;
    if selected.is_empty() {
        printer.line(format_args!(
            "No backups to push in {}.",
            ctx.backup_dir.display()
        ))?;
        return Ok((None, Outcome::Clean));
    }
    let seal = remote.sealing()?;
    let catalogue = remote.catalogue()?;
    let mut tally = Tally::default();
    for entry in selected {
        let name = &entry.backup_file;
        let broken = match catalogue.object_problem(name) {
            None if opts.repair && catalogue.find(name).is_some_and(|t| same(t, entry)) => {
                verify::remote_problem(remote, &catalogue, entry)?
            }
            listed => listed,
        };
        match catalogue.find(name) {
            Some(there) if same(there, entry) && broken.is_some() => {}
            Some(there) if same(there, entry) => {
                tally.present.push(name.clone());
                printer.line(format_args!("Already on {}: {name}", remote.name()))?;
                continue;
            }
            Some(there) => {
                let problem = format!(
                    "the remote holds a different backup of that name (SHA-256 {})",
                    there.sha256
                );
                fail(&mut tally, name, problem, printer)?;
                continue;
            }
            None => {}
        }
        let path = ctx.backup_dir.join(name);
        // A damaged remote copy is replaced only from a local archive that is what its entry
        // object records (the upload hashes it and stops at the first difference).
        let damaged = |problem: String| match &broken {
            Some(b) => format!("the copy on {} is damaged ({b}); {problem}", remote.name()),
            None => problem,
        };
        if !path.is_file() {
            fail(
                &mut tally,
                name,
                damaged("archive file is missing".into()),
                printer,
            )?;
            continue;
        }
        let started = Instant::now();
        let pushed = push_one(remote, &path, entry, seal, broken.is_some(), printer);
        for note in remote.take_notes() {
            printer.warn(note);
        }
        match pushed {
            Ok(object) if broken.is_some() => {
                tally.repaired.push(name.clone());
                printer.line(format_args!(
                    "Repaired {name} on {}: {}; uploaded again -> {}",
                    remote.name(),
                    broken.as_deref().unwrap_or_default(),
                    remote.url(&object)
                ))?;
            }
            Ok(object) => {
                tally.pushed.push(name.clone());
                printer.line(format_args!(
                    "Pushed {name} -> {} ({}, {:.2} s)",
                    remote.url(&object),
                    human_size(entry.size),
                    started.elapsed().as_secs_f64()
                ))?;
            }
            Err(problem) if problem.is_data_problem() => {
                fail(&mut tally, name, damaged(problem.to_string()), printer)?;
            }
            Err(e) => return Err(e),
        }
    }
    let repaired = match tally.repaired.len() {
        0 => String::new(),
        n => format!(", {n} repaired"),
    };
    printer.line(format_args!(
        "Pushed {} to {} ({}): {} already there{repaired}, {} failed",
        crate::error::count(tally.pushed.len(), "backup", "backups"),
        remote.name(),
        remote.location(),
        tally.present.len(),
        tally.failed.len()
    ))?;
    let outcome = if tally.failed.is_empty() {
        Outcome::Clean
    } else {
        Outcome::ProblemsFound
    };
    Ok((Some(tally), outcome))
}

/// Records and reports an archive that could not be pushed.
fn fail(tally: &mut Tally, name: &str, problem: String, printer: &mut Printer) -> Result<()> {
    printer.problem(format_args!("FAILED  {name}: {problem}"))?;
    tally.failed.push(Failed {
        archive: name.to_string(),
        problem,
    });
    Ok(())
}

/// Uploads one archive (encrypted to `seal` when given) and its index and, once what landed is
/// checked, catalogues it on the remote; returns the object's name. The sidecar is written with
/// a conditional create (replacing the sidecar of a damaged copy when `repair`), then both
/// objects are looked at again: on a server that ignores the condition, a push of the same name
/// from elsewhere that replaced either is caught here.
fn push_one(
    remote: &Remote,
    path: &Path,
    entry: &Entry,
    seal: Option<&Recipients>,
    repair: bool,
    printer: &mut Printer,
) -> Result<String> {
    let mut sidecar = remote.upload(path, entry, seal)?;
    let object = sidecar.object();
    let landed = remote.stat(&object)?;
    if let Some(sha256) = &entry.index_sha256 {
        let index = crate::index::path_for(path);
        match crate::index::check_file(&index, sha256) {
            Ok(()) => remote.upload_index(&index, sha256, &mut sidecar, seal)?,
            Err(e) => printer.warn(format_args!(
                "pushing {} without its index: {e} (resbak reindex builds it again)",
                entry.backup_file
            )),
        }
    }
    let sidecar = sidecar.within_limit();
    match repair {
        true => remote.rewrite_entry(&sidecar)?,
        false => remote.write_entry(&sidecar)?,
    }
    let catalogued = remote.read_entry(&entry.backup_file)?;
    if catalogued.as_ref() != Some(&sidecar) {
        let entry_object = format!("{}{ENTRY_SUFFIX}", entry.backup_file);
        return Err(Error::Taken {
            path: remote.url(&entry_object).into(),
        });
    }
    if landed.is_none() || remote.stat(&object)? != landed {
        return Err(Error::Taken {
            path: remote.url(&object).into(),
        });
    }
    Ok(object)
}

/// Whether two entries describe the same archive bytes.
pub fn same(a: &Entry, b: &Entry) -> bool {
    a.backup_file == b.backup_file && a.size == b.size && a.sha256 == b.sha256
}
