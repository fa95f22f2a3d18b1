//! `resbak show`: one screen with everything the catalogue knows about a backup (times, sizes,
//! entries, digests, tags, note, metrics, last verify) and the top of its tree, read from the
//! first entries of the archive.

use super::{Context, Outcome, Printer, human_size, locate_backup};
use crate::checks::Check;
use crate::error::Result;
use crate::manifest::Entry;
use serde::Serialize;
use std::path::PathBuf;

/// Folders deeper than this below the top are not shown.
const TREE_DEPTH: usize = 2;
/// At most this many tree lines.
const TREE_LINES: usize = 25;

/// One line of the tree.
#[derive(Debug, Serialize)]
pub struct TreeLine {
    /// Path below the top folder.
    pub path: String,
    /// `folder`, `file`, `link` or `other`.
    pub kind: &'static str,
    /// File size in bytes.
    pub size: u64,
}

/// The JSON shape of `show --json`.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// Path of the archive.
    pub path: PathBuf,
    /// Its manifest entry, if the manifest knows it.
    pub entry: Option<Entry>,
    /// The last verify of these bytes.
    pub verified: Option<Check>,
    /// The top of the tree, in archive order.
    pub tree: Vec<TreeLine>,
    /// Whether more entries follow those in `tree`.
    pub tree_truncated: bool,
}

/// Prints what the catalogue knows about the backup `arg` names and the top of its tree.
pub fn run(ctx: &Context, arg: &str, printer: &mut Printer) -> Result<Outcome> {
    let mut located = locate_backup(ctx, arg)?;
    super::attach_metrics(&mut located, printer);
    let checks = super::list::recorded_checks(&ctx.backup_dir);
    let verified = located.entry.as_ref().and_then(|e| checks.of(e)).cloned();
    let (tree, tree_truncated) = match tree(&located.path) {
        Ok(tree) => tree,
        Err(e) => {
            printer.warn(format_args!(
                "cannot read the tree of {}: {e}",
                located.path.display()
            ));
            (Vec::new(), false)
        }
    };
    let shown = Shown {
        path: located.path.clone(),
        entry: located.entry.clone(),
        verified,
        tree,
        tree_truncated,
    };
    if printer.json() {
        printer.json_report(&shown)?;
    } else {
        print(&shown, printer)?;
    }
    Ok(Outcome::Clean)
}

/// The first entries of the archive down to [`TREE_DEPTH`], and whether there are more.
fn tree(path: &std::path::Path) -> std::io::Result<(Vec<TreeLine>, bool)> {
    let file = std::fs::File::open(path)?;
    let mut lines = Vec::new();
    let mut truncated = false;
    crate::archive::visit(std::io::BufReader::new(file), |entry, _| {
        let depth = entry.rel.components().count();
        if depth == 0 || depth > TREE_DEPTH {
            return true;
        }
        if lines.len() == TREE_LINES {
            truncated = true;
            return false;
        }
        lines.push(TreeLine {
            path: entry.rel.to_string_lossy().into_owned(),
            kind: entry.kind.name(),
            size: entry.size,
        });
        true
    })?;
    Ok((lines, truncated))
}

fn print(shown: &Shown, printer: &mut Printer) -> Result<()> {
    let mut row = |key: &str, value: String| printer.line(format_args!("{key:<10} {value}"));
    row("Archive", shown.path.display().to_string())?;
    let Some(e) = &shown.entry else {
        row("Catalogue", "not in the manifest".into())?;
        return print_tree(shown, printer);
    };
    let kind = match e.kind {
        crate::manifest::Kind::Regular => "regular backup",
        crate::manifest::Kind::Safety => "safety copy",
    };
    row("Strategy", format!("{} ({kind})", e.strategy))?;
    row(
        "Created",
        format!("{} UTC", e.created.format("%Y-%m-%d %H:%M:%S")),
    )?;
    let not_recorded = "not recorded yet (the Python scripts' manifest has none)";
    match e.has_checksum() {
        true => {
            let size = human_size(e.size);
            row(
                "Size",
                format!("{size} ({} of content)", human_size(e.bytes)),
            )?;
            row("Entries", e.counts_text())?;
            row("SHA-256", e.sha256.clone())?;
        }
        false => {
            row("Size", human_size(e.size))?;
            row("Entries", not_recorded.to_string())?;
            row("SHA-256", not_recorded.to_string())?;
        }
    }
    row(
        "Digest",
        e.content_digest.clone().unwrap_or_else(|| "-".into()),
    )?;
    row("Tags", super::tag::labels(e))?;
    let verified = match &shown.verified {
        None => "never".to_string(),
        Some(c) => {
            let deep = if c.deep { " (deep)" } else { "" };
            let result = c.problem.as_deref().unwrap_or("intact");
            format!("{} UTC{deep}: {result}", c.at.format("%Y-%m-%d %H:%M:%S"))
        }
    };
    row("Verified", verified)?;
    match &e.metrics {
        None => row("Metrics", "none recorded".into())?,
        Some(metrics) => {
            // The strategy's own metrics; run folders' are only counted, to keep to one screen.
            let (runs, top): (Vec<_>, Vec<_>) = metrics.iter().partition(|(k, _)| k.contains(':'));
            row("Metrics", format!("{}", metrics.len()))?;
            let width = top
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            for (key, value) in top {
                let value = crate::metrics::format_value(*value);
                printer.line(format_args!("  {key:<width$}  {value:>12}"))?;
            }
            let mut folders: Vec<&str> = runs
                .iter()
                .filter_map(|(k, _)| k.split(':').next())
                .collect();
            folders.dedup();
            if !runs.is_empty() {
                printer.line(format_args!(
                    "  and {} of {} (`resbak metrics {}` lists them)",
                    crate::error::count(runs.len(), "metric", "metrics"),
                    crate::error::count(folders.len(), "run folder", "run folders"),
                    e.backup_file
                ))?;
            }
        }
    }
    print_tree(shown, printer)
}

fn print_tree(shown: &Shown, printer: &mut Printer) -> Result<()> {
    printer.line("Tree")?;
    for line in &shown.tree {
        let depth = line.path.matches('/').count();
        let name = line.path.rsplit('/').next().unwrap_or(&line.path);
        let indent = "  ".repeat(depth + 1);
        match line.kind {
            "folder" => printer.line(format_args!("{indent}{name}/"))?,
            "file" => printer.line(format_args!("{indent}{name}  {}", human_size(line.size)))?,
            other => printer.line(format_args!("{indent}{name}  ({other})"))?,
        }
    }
    if shown.tree_truncated {
        printer.line("  ...")?;
    }
    Ok(())
}
