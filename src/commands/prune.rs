//! `resbak prune`: keep the N most recent backups per strategy, remove the rest, say so.

use super::{Context, Outcome, Printer, check_strategy_name};
use crate::error::Result;
use crate::retention::{self, Pruned};

/// Options of `resbak prune`.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Only this strategy; all when `None`.
    pub strategy: Option<String>,
    /// Backups to keep per strategy.
    pub keep: usize,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
}

/// Prunes and reports every removal.
pub fn run(ctx: &Context, opts: &PruneOptions, printer: &mut Printer) -> Result<Outcome> {
    if let Some(strategy) = &opts.strategy {
        check_strategy_name(strategy)?;
    }
    let pruned = retention::prune(
        &ctx.backup_dir,
        opts.strategy.as_deref(),
        opts.keep,
        opts.dry_run,
    )?;
    if printer.json() {
        printer.json_report(&pruned)?;
    } else {
        report(&pruned, printer)?;
        printer.line(format_args!(
            "{} {} old backups, kept {}",
            if opts.dry_run {
                "Would remove"
            } else {
                "Removed"
            },
            pruned.removed.len(),
            pruned.kept.len()
        ))?;
    }
    Ok(outcome(&pruned))
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
    Ok(())
}

/// `Incomplete` when any removal failed.
pub fn outcome(pruned: &Pruned) -> Outcome {
    if pruned.failed.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Incomplete
    }
}
