//! `resbak push`: copy backups to a remote, checked, with their catalogue entries.
//!
//! Only archives the remote's catalogue lacks are uploaded. Each one is hashed while it is sent
//! (a local archive that no longer matches its manifest entry is never completed), read back
//! from the remote (size and SHA-256 must be the entry's), and only then catalogued there by
//! writing its entry object. A push that fails leaves no catalogue entry.

use super::{Context, Outcome, Printer, human_size, verify};
use crate::error::Result;
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use crate::remote::Remote;
use std::path::Path;
use std::time::Instant;

/// Options of `resbak push`.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Archive names or strategies; every local backup when empty.
    pub targets: Vec<String>,
}

/// How many backups went which way.
#[derive(Debug, Default)]
struct Tally {
    pushed: usize,
    present: usize,
    failed: usize,
}

/// Pushes each selected backup the remote lacks and prints one line for each plus a summary.
pub fn run(
    ctx: &Context,
    remote: &Remote,
    opts: &PushOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let _reading = Lock::shared(&ctx.backup_dir, LockFile::Archives)?;
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let selected = verify::select(&manifest, &opts.targets, &ctx.backup_dir)?;
    if selected.is_empty() {
        printer.line(format_args!(
            "No backups to push in {}.",
            ctx.backup_dir.display()
        ))?;
        return Ok(Outcome::Clean);
    }
    let catalogue = remote.catalogue()?;
    let mut tally = Tally::default();
    for entry in selected {
        let name = &entry.backup_file;
        match catalogue.find(name) {
            Some(there) if same(there, entry) => {
                tally.present += 1;
                printer.line(format_args!("Already on {}: {name}", remote.name()))?;
                continue;
            }
            Some(there) => {
                tally.failed += 1;
                printer.line(format_args!(
                    "FAILED  {name}: the remote holds a different backup of that name (SHA-256 {})",
                    there.sha256
                ))?;
                continue;
            }
            None => {}
        }
        let path = ctx.backup_dir.join(name);
        if !path.is_file() {
            tally.failed += 1;
            printer.line(format_args!("FAILED  {name}: archive file is missing"))?;
            continue;
        }
        let started = Instant::now();
        match push_one(remote, &path, entry) {
            Ok(()) => {
                tally.pushed += 1;
                printer.line(format_args!(
                    "Pushed {name} -> {} ({}, {:.2} s)",
                    remote.url(name),
                    human_size(entry.size),
                    started.elapsed().as_secs_f64()
                ))?;
            }
            Err(problem) if problem.is_data_problem() => {
                tally.failed += 1;
                printer.line(format_args!("FAILED  {name}: {problem}"))?;
            }
            Err(e) => return Err(e),
        }
    }
    printer.line(format_args!(
        "Pushed {} backups to {} ({}): {} already there, {} failed",
        tally.pushed,
        remote.name(),
        remote.location(),
        tally.present,
        tally.failed
    ))?;
    Ok(if tally.failed == 0 {
        Outcome::Clean
    } else {
        Outcome::ProblemsFound
    })
}

/// Uploads one archive and, once what landed is checked, catalogues it on the remote.
fn push_one(remote: &Remote, path: &Path, entry: &Entry) -> Result<()> {
    remote.upload(path, entry)?;
    remote.write_entry(entry)
}

/// Whether two entries describe the same archive bytes.
pub fn same(a: &Entry, b: &Entry) -> bool {
    a.backup_file == b.backup_file && a.size == b.size && a.sha256 == b.sha256
}
