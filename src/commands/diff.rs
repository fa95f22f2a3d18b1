//! `resbak diff`: what changed between an archive and the current results, or between two
//! archives, by content hash and without extracting anything. Exits like diff(1): 0 when the
//! trees are the same, 1 when they differ, 2 when they could not be compared.

mod metrics;

pub use metrics::run_metrics;

use super::{Context, Located, Outcome, Printer, human_size, locate_backup};
use crate::archive::Excludes;
use crate::diff::{self, Change, Tree};
use crate::error::{Error, Result, printable};
use std::path::PathBuf;

/// Options of `resbak diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The older side: an archive name, `STRATEGY`, `STRATEGY~N` or a path (see
    /// [`super::locate_backup`]).
    pub archive: String,
    /// The newer side: another archive, named the same ways; the strategy's results folder
    /// when `None`.
    pub other: Option<String>,
    /// Excludes applied to the results folder side.
    pub excludes: Excludes,
}

/// Prints one line per added (`+`), removed (`-`) or changed (`~`) path and a summary.
/// Archives the manifest knows are checked against it while they are read.
///
/// # Errors
/// [`Error::Uncompared`] holding the cause when either side cannot be read or an archive is
/// damaged.
pub fn run(ctx: &Context, opts: &DiffOptions, printer: &mut Printer) -> Result<Outcome> {
    let (old_label, new_label, old_tree, new_tree) =
        trees(ctx, opts, printer).map_err(|e| Error::Uncompared(Box::new(e)))?;
    let changes = diff::compare(&old_tree, &new_tree);
    let outcome = match changes.is_empty() {
        true => Outcome::Clean,
        false => Outcome::ProblemsFound,
    };
    if printer.json() {
        printer.json_report(&changes)?;
        return Ok(outcome);
    }
    for change in &changes {
        let mark = match change.change {
            "added" => "+",
            "removed" => "-",
            _ => "~",
        };
        let what = change
            .what
            .map(|_| format!("  ({})", detail(change)))
            .unwrap_or_default();
        let path = printable(change.path.display());
        printer.line(format_args!("{mark} {path}{what}"))?;
    }
    let count = |kind: &str| changes.iter().filter(|c| c.change == kind).count();
    printer.line(format_args!(
        "{old_label} -> {new_label}: {} added, {} removed, {} changed",
        count("added"),
        count("removed"),
        count("changed")
    ))?;
    Ok(outcome)
}

/// Both sides' labels and trees. When a strategy picked either archive, says which archives
/// are compared before reading them.
fn trees(
    ctx: &Context,
    opts: &DiffOptions,
    printer: &mut Printer,
) -> Result<(String, String, Tree, Tree)> {
    let old = locate_backup(ctx, &opts.archive)?;
    super::warn_untracked_pick(ctx, &old, &opts.archive, printer);
    let new = match &opts.other {
        Some(other) => {
            let new = locate_backup(ctx, other)?;
            super::warn_untracked_pick(ctx, &new, other, printer);
            Side::Archive(Box::new(new))
        }
        None => Side::Folder(ctx.results_dir.join(old.strategy()?)),
    };
    if old.picked.is_some() || matches!(&new, Side::Archive(a) if a.picked.is_some()) {
        let with = match &new {
            Side::Archive(archive) => archive.describe(),
            Side::Folder(folder) => folder.display().to_string(),
        };
        printer.line(format_args!("Comparing {} with {with}", old.describe()))?;
    }
    let old_tree = tree_of(&old)?;
    let (new_label, new_tree) = match new {
        Side::Archive(new) => (new.path.display().to_string(), tree_of(&new)?),
        Side::Folder(folder) => {
            if !folder.is_dir() {
                printer.hint(format_args!(
                    "to compare two archives instead: `resbak diff {} OTHER` (OTHER: an \
                     archive name, STRATEGY or STRATEGY~N)",
                    opts.archive
                ));
                return Err(Error::missing_folder("results", &folder));
            }
            let tree = diff::of_folder(&folder, &opts.excludes)?;
            (folder.display().to_string(), tree)
        }
    };
    Ok((
        old.path.display().to_string(),
        new_label,
        old_tree,
        new_tree,
    ))
}

/// The newer side of a comparison.
enum Side {
    /// A second archive.
    Archive(Box<Located>),
    /// The strategy's results folder.
    Folder(PathBuf),
}

/// The tree of a located archive, checked against its manifest entry if it has one; from its
/// index when the entry records an intact one. An index recorded but damaged or gone is warned
/// about (the exit code keeps saying whether the trees differ).
fn tree_of(located: &Located) -> Result<Tree> {
    let expected = located.entry.as_ref().and_then(|e| e.recorded_checksum());
    if let (Some(entry), Some(expected)) = (&located.entry, &expected) {
        let index_sha256 = entry.index_sha256.as_deref();
        if let Some(tree) = diff::of_index(&located.path, index_sha256, expected)? {
            return Ok(tree);
        }
        if let Some(why) = index_sha256.and_then(|sha| crate::index::unusable(&located.path, sha)) {
            super::warn_unusable_index(&why);
        }
    }
    diff::of_archive_checked(&located.path, expected.as_ref())
}

/// What changed, with the old and new values: `content 1000 -> 2200 bytes, +1.2 KiB`,
/// `mode 0644 -> 0755`, or both.
fn detail(change: &Change) -> String {
    let mut parts = Vec::new();
    match (change.what, change.old_size, change.new_size) {
        (Some("content"), Some(old), Some(new)) if old == new => {
            parts.push(format!("content, same size {new} bytes"));
        }
        (Some("content"), Some(old), Some(new)) => {
            let sign = if new > old { '+' } else { '-' };
            let delta = human_size(new.abs_diff(old));
            parts.push(format!("content {old} -> {new} bytes, {sign}{delta}"));
        }
        (Some("mode"), ..) => {}
        (what, ..) => parts.push(what.unwrap_or_default().to_string()),
    }
    if let (Some(old), Some(new)) = (&change.old_mode, &change.new_mode) {
        parts.push(format!("mode {old} -> {new}"));
    }
    parts.join("; ")
}
