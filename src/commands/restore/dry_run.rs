//! `restore --dry-run`: what a restore would write, and what it would do with an existing
//! destination, from the same plan the real run follows; nothing is written.

use super::extraction::check_checksum;
use super::keeps;
use super::plan::{Plan, Replace};
use crate::archive;
use crate::commands::{Outcome, Printer, human_size};
use crate::error::Result;
use crate::extract;
use crate::progress::Progress;
use std::fs;
use std::path::{Path, PathBuf};

/// `entries` with the folders a restore makes above them, each before the first it holds.
fn with_folders_above(entries: &[(PathBuf, bool, u64)]) -> Vec<(PathBuf, bool, u64)> {
    let mut seen: std::collections::HashSet<&Path> =
        entries.iter().map(|e| e.0.as_path()).collect();
    let mut all = Vec::with_capacity(entries.len());
    for entry in entries {
        let above: Vec<&Path> = entry
            .0
            .ancestors()
            .skip(1)
            .take_while(|a| seen.insert(a))
            .collect();
        all.extend(above.into_iter().rev().map(|a| (a.to_path_buf(), true, 0)));
        all.push(entry.clone());
    }
    all
}

/// Lists the entries a restore would write to `dest`; with `--include`, whether each is
/// created or overwritten. Says when an existing destination would be backed up first.
pub(super) fn dry_run(
    plan: &Plan,
    include: Option<(&archive::Excludes, &extract::Selection)>,
    printer: &mut Printer,
) -> Result<Outcome> {
    // The checks a real restore makes as it reads: the restore policy and the checksum.
    let Plan {
        located,
        strategy,
        dest,
        ..
    } = plan;
    let path = &located.path;
    let scan = extract::scan(path, Some(strategy), &Progress::hidden())?;
    check_checksum(located, &scan.checksum.sha256)?;
    let entries: Vec<(PathBuf, bool, u64)> = match include {
        Some((_, selection)) => with_folders_above(&selection.entries),
        None => crate::diff::of_archive(path)?
            .into_iter()
            .map(|(rel, signature)| (rel, false, signature.size()))
            .collect(),
    };
    let (mut files, mut bytes, mut overwritten) = (0, 0, 0);
    let mut paths = Vec::new();
    for (rel, dir, size) in &entries {
        let target = dest.join(rel);
        let exists = fs::symlink_metadata(&target).is_ok();
        let mark = match (include.is_some(), exists, dir) {
            (false, ..) => "",
            (true, false, _) => "create     ",
            (true, true, true) => "keep       ",
            (true, true, false) => "overwrite  ",
        };
        overwritten += u64::from(include.is_some() && exists && !dir);
        paths.push(Planned {
            path: target.clone(),
            action: match mark.trim() {
                "" => "restore",
                action => action,
            },
            size: *size,
        });
        printer.line(format_args!(
            "{mark}{}  {}",
            target.display(),
            human_size(*size)
        ))?;
        files += 1;
        bytes += size;
    }
    let of_holder = match plan.holder == *strategy {
        true => String::new(),
        false => format!(" of strategy {}", plan.holder),
    };
    printer.json_report(&DryRun {
        archive: path.clone(),
        destination: dest.clone(),
        safety_copy: matches!(plan.replace, Replace::Folder),
        entries: files,
        bytes,
        overwritten,
        paths,
    })?;
    match (&plan.replace, include) {
        (Replace::Nothing, _) => {}
        (Replace::Empty, _) => printer.line(format_args!(
            "Would replace the empty folder {}",
            dest.display()
        ))?,
        (Replace::Folder, None) => printer.line(format_args!(
            "Would back up existing {} as a safety copy{of_holder}, then replace it",
            dest.display()
        ))?,
        (Replace::Folder, Some(_)) => printer.line(format_args!(
            "Would back up existing {} as a safety copy{of_holder}, then write into it",
            dest.display()
        ))?,
        (Replace::Unchanged(kept), _) => printer.line(format_args!(
            "Would make no safety copy: {} is unchanged since {}; {}",
            dest.display(),
            kept.backup_file,
            keeps(kept)
        ))?,
    }
    let detail = match include {
        Some(_) => format!(", {overwritten} of them overwritten"),
        None => String::new(),
    };
    printer.line(format_args!(
        "Would restore {} ({}) to {}{detail}",
        crate::error::count(files, "entry", "entries"),
        human_size(bytes),
        dest.display()
    ))?;
    Ok(Outcome::Clean)
}

/// What `restore --dry-run --json` reports.
#[derive(Debug, serde::Serialize)]
struct DryRun {
    /// The archive that would be restored.
    archive: PathBuf,
    /// Where.
    destination: PathBuf,
    /// Whether the folder there would first be kept as a safety copy.
    safety_copy: bool,
    /// Entries that would be written, and their bytes.
    entries: u64,
    bytes: u64,
    /// With `--include`: files that would be overwritten.
    overwritten: u64,
    /// Each path, with `restore`, or with `--include` `create`, `overwrite` or `keep`.
    paths: Vec<Planned>,
}

/// One path of a dry run.
#[derive(Debug, serde::Serialize)]
struct Planned {
    path: PathBuf,
    action: &'static str,
    size: u64,
}
