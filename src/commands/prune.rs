//! `resbak prune`: keep the N most recent backups per strategy, the newest of the last days,
//! weeks and months, tagged and pinned ones (and the newest safety copies by their own count),
//! remove the rest, say so; a dry run says which rules keep each backup.

use super::{Context, Outcome, Printer};
use crate::error::Result;
use crate::retention::{self, Pruned, Rules};
use std::path::Path;

use crate::error::Error;
use crate::manifest::{Entry, Manifest};
use crate::remote::Remote;
use crate::retention::Failure;

/// Options of `resbak prune`.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Only this strategy; all when `None`.
    pub strategy: Option<String>,
    /// Backups to keep per strategy; only the calendar rules when `None`.
    pub keep: Option<usize>,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
    /// Safety copies to keep per strategy; [`retention::DEFAULT_KEEP_SAFETY`] when `None`.
    pub keep_safety: Option<usize>,
    /// Time-based rules, kept in addition to `keep`.
    pub calendar: retention::Calendar,
}

impl PruneOptions {
    fn rules(&self) -> Rules {
        Rules::new(self.keep, self.keep_safety).with_calendar(self.calendar)
    }
}

/// Checks that `strategy`, if given, is a plain name with backups in `manifest`; else an
/// error with close names as suggestions.
fn check_known(strategy: Option<&str>, manifest: &Manifest, place: &Path) -> Result<()> {
    let known: Vec<&str> = manifest
        .backups
        .iter()
        .map(|e| e.strategy.as_str())
        .collect();
    strategy.map_or(Ok(()), |name| super::check_known(name, &known, place))
}

/// Prunes and reports every removal.
pub fn run(ctx: &Context, opts: &PruneOptions, printer: &mut Printer) -> Result<Outcome> {
    let manifest = match ctx.backup_dir.is_dir() {
        true => Some(Manifest::load(&ctx.backup_dir)?),
        false => None,
    };
    if let Some(manifest) = &manifest {
        check_known(opts.strategy.as_deref(), manifest, &ctx.backup_dir)?;
        if opts.dry_run {
            super::adopt::note(&ctx.backup_dir, manifest, printer);
        }
        // Archives a killed prune left behind, among others: retention counts only what the
        // manifest lists, so they stay until catalogued or moved.
        let so = "; retention counts and removes only catalogued backups";
        let strategy = opts.strategy.as_deref();
        super::warn_untracked_of(&ctx.backup_dir, manifest, strategy, so, printer);
    }
    let mut adopter =
        super::adopt::Adopter::for_manifest(&ctx.backup_dir, manifest.as_ref(), printer);
    crate::interrupt::so_far("nothing was removed", None);
    let pruned = retention::prune(
        &ctx.backup_dir,
        opts.strategy.as_deref(),
        &opts.rules(),
        opts.dry_run,
        &mut |m| adopter.adopt(m),
        &|removed| format!("{}; nothing else was changed", removed_text(removed)),
    )?;
    adopter.report(printer)?;
    print(&pruned, opts, printer)?;
    Ok(outcome(&pruned))
}

/// What was removed, for the line an interruption prints: `removed 2 old backups: A, B`.
pub fn removed_text(removed: &[String]) -> String {
    match removed {
        [] => "no old backup was removed".to_string(),
        files => format!(
            "removed {}: {}",
            crate::error::count(files.len(), "old backup", "old backups"),
            files.join(", ")
        ),
    }
}

/// Prints the whole report: JSON, or one line per removal and a summary.
fn print(pruned: &Pruned, opts: &PruneOptions, printer: &mut Printer) -> Result<()> {
    if printer.json() {
        printer.json_report(pruned)?;
    } else {
        if opts.dry_run {
            reasons(pruned, printer)?;
        }
        report(pruned, printer)?;
        printer.line(format_args!(
            "{} {}, kept {}",
            if opts.dry_run {
                "Would remove"
            } else {
                "Removed"
            },
            crate::error::count(pruned.removed.len(), "old backup", "old backups"),
            pruned.kept.len()
        ))?;
    }
    Ok(())
}

/// Prints, for every backup considered, the rules that keep it or that none does.
fn reasons(pruned: &Pruned, printer: &mut Printer) -> Result<()> {
    for decision in &pruned.decisions {
        let why = match decision.kept_by.is_empty() {
            true => "no rule keeps it".to_string(),
            false => decision.kept_by.join(", "),
        };
        let verdict = match decision.kept_by.is_empty() {
            true => "remove",
            false => "keep  ",
        };
        printer.line(format_args!("{verdict}  {}  ({why})", decision.archive))?;
    }
    Ok(())
}

/// Prints one line per removal (or planned removal) and per failure.
pub fn report(pruned: &Pruned, printer: &mut Printer) -> Result<()> {
    let verb = if pruned.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    for archive in &pruned.removed {
        printer.line(format_args!("{verb} old backup: {archive}"))?;
    }
    for failure in &pruned.failed {
        printer.warn(format_args!(
            "could not remove old backup {}: {} (kept in the manifest)",
            failure.archive, failure.error
        ));
    }
    for left in &pruned.left {
        printer.warn(format_args!(
            "not counted as kept, left as it is: {} ({}); only backups found usable count \
             toward what is kept",
            left.archive, left.error
        ));
    }
    for note in &pruned.notes {
        printer.warn(note);
    }
    Ok(())
}

/// `Incomplete` when any removal failed.
pub fn outcome(pruned: &Pruned) -> Outcome {
    match (pruned.failed.is_empty(), pruned.left.is_empty()) {
        (false, _) => Outcome::Incomplete,
        (true, false) => Outcome::ProblemsFound,
        (true, true) => Outcome::Clean,
    }
}

/// `prune --remote`: applies the same retention to the remote's catalogue. Each removal deletes
/// the entry object first, then the archive, so a crash never leaves a catalogued backup
/// without its archive.
pub fn run_remote(remote: &Remote, opts: &PruneOptions, printer: &mut Printer) -> Result<Outcome> {
    if opts.rules().has_zero() {
        return Err(Error::InvalidKeep);
    }
    let catalogue = remote.catalogue()?;
    let place = Path::new(remote.name());
    let all = Manifest {
        backups: catalogue.entries.clone(),
        ..Manifest::default()
    };
    check_known(opts.strategy.as_deref(), &all, place)?;
    // A copy the listing shows damaged is not one of the kept: it is left alone, and said so.
    let (damaged, intact): (Vec<Entry>, Vec<Entry>) = all
        .backups
        .into_iter()
        .partition(|e| catalogue.object_problem(&e.backup_file).is_some());
    for entry in &damaged {
        let problem = catalogue.object_problem(&entry.backup_file);
        printer.warn(format_args!(
            "not counted as kept, left as it is: {} ({}; resbak push {} --remote {} repairs it)",
            entry.backup_file,
            problem.unwrap_or_default(),
            entry.backup_file,
            remote.name()
        ));
    }
    let manifest = Manifest {
        backups: intact,
        ..Manifest::default()
    };
    let (remove, kept) = retention::plan(&manifest, opts.strategy.as_deref(), &opts.rules());
    let mut pruned = Pruned {
        kept: kept.iter().map(|e| e.backup_file.clone()).collect(),
        dry_run: opts.dry_run,
        decisions: retention::decide(&manifest, opts.strategy.as_deref(), &opts.rules()),
        ..Pruned::default()
    };
    for entry in remove {
        let archive = entry.backup_file.clone();
        let removed = if opts.dry_run {
            Ok(())
        } else {
            remove_remote(remote, entry)
        };
        match removed {
            Ok(()) => pruned.removed.push(archive),
            Err(error) => pruned.failed.push(Failure { archive, error }),
        }
    }
    print(&pruned, opts, printer)?;
    Ok(outcome(&pruned))
}

/// Deletes one remote backup: its entry object, then its archive and index objects.
fn remove_remote(remote: &Remote, entry: &Entry) -> std::result::Result<(), String> {
    let entry_object = format!("{}{}", entry.backup_file, crate::remote::ENTRY_SUFFIX);
    remote.delete(&entry_object).map_err(|e| e.to_string())?;
    let index = crate::index::file_name(&entry.backup_file);
    let sealed = |name: &str| format!("{name}{}", crate::remote::SEALED_SUFFIX);
    [
        entry.backup_file.clone(),
        sealed(&entry.backup_file),
        sealed(&index),
        index,
    ]
    .iter()
    .try_for_each(|object| remote.delete(object))
    .map_err(|e| format!("its entry was removed, but the archive object was left behind: {e}"))
}
