//! `resbak diff`: what changed between an archive and the current results, or between two
//! archives, by content hash and without extracting anything.

use super::{Context, Outcome, Printer, locate};
use crate::archive::Excludes;
use crate::diff;
use crate::error::{Error, Result, printable};

/// Options of `resbak diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The older side: an archive name or path.
    pub archive: String,
    /// The newer side: another archive; the strategy's results folder when `None`.
    pub other: Option<String>,
    /// Excludes applied to the results folder side.
    pub excludes: Excludes,
}

/// Prints one line per added (`+`), removed (`-`) or changed (`~`) path and a summary.
pub fn run(ctx: &Context, opts: &DiffOptions, printer: &mut Printer) -> Result<Outcome> {
    let old = locate(ctx, &opts.archive)?;
    let old_tree = diff::of_archive(&old.path)?;
    let (new_label, new_tree) = match &opts.other {
        Some(other) => {
            let new = locate(ctx, other)?;
            (new.path.display().to_string(), diff::of_archive(&new.path)?)
        }
        None => {
            let folder = ctx.results_dir.join(old.strategy()?);
            if !folder.is_dir() {
                return Err(Error::io(
                    "read",
                    &folder,
                    std::io::ErrorKind::NotFound.into(),
                ));
            }
            (
                folder.display().to_string(),
                diff::of_folder(&folder, &opts.excludes)?,
            )
        }
    };
    let changes = diff::compare(&old_tree, &new_tree);
    if printer.json() {
        printer.json_report(&changes)?;
        return Ok(Outcome::Clean);
    }
    for change in &changes {
        let mark = match change.change {
            "added" => "+",
            "removed" => "-",
            _ => "~",
        };
        let what = change.what.map(|w| format!("  ({w})")).unwrap_or_default();
        let path = printable(change.path.display());
        printer.line(format_args!("{mark} {path}{what}"))?;
    }
    let count = |kind: &str| changes.iter().filter(|c| c.change == kind).count();
    printer.line(format_args!(
        "{} -> {new_label}: {} added, {} removed, {} changed",
        old.path.display(),
        count("added"),
        count("removed"),
        count("changed")
    ))?;
    Ok(Outcome::Clean)
}
