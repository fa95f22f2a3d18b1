//! `resbak backup`: archive strategy folders and register them in the manifest.

mod write;

use super::{Context, Outcome, Printer, check_strategy_name, human_size, prune, strategies};
use crate::archive::{self, Counts};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Kind, Manifest};
use crate::retention;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(crate) use write::{About, backup_folder, place_with_index};

/// Options of `resbak backup`.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Strategy folder names inside the results folder.
    pub strategies: Vec<String>,
    /// Back up every strategy folder (non-empty ones) instead.
    pub all: bool,
    /// How to write archives, including excludes.
    pub archive: archive::Options,
    /// Prune each strategy to this many backups after its backup succeeded.
    pub keep: Option<usize>,
    /// Show what would be archived; write nothing.
    pub dry_run: bool,
    /// Back up even when nothing changed since the latest backup.
    pub always: bool,
    /// Prune each strategy's safety copies to this many after its backup succeeded.
    pub keep_safety: Option<usize>,
    /// Time-based retention applied with `keep` after each backup.
    pub calendar: retention::Calendar,
    /// Where headline metrics are read from.
    pub metrics: crate::metrics::Sources,
    /// Tags for each new backup.
    pub tags: Vec<String>,
    /// A note for each new backup.
    pub note: Option<String>,
}

/// What happened to one strategy; the JSON shape of `backup --json` (an array of these).
#[derive(Debug, Serialize)]
pub struct Backed {
    /// The strategy.
    pub strategy: String,
    /// `backed_up`, `unchanged` (skipped, or would be with `--dry-run`), `dry_run` (would be
    /// backed up) or `failed`.
    pub status: &'static str,
    /// The new archive, or for `unchanged` the latest one.
    pub archive: Option<String>,
    /// Archive size in bytes.
    pub size: Option<u64>,
    /// Entries archived (or that would be): files, folders and links.
    pub entries: Option<u64>,
    /// Regular files archived (or that would be).
    pub files: Option<u64>,
    /// Folders archived (or that would be), the top folder included.
    pub folders: Option<u64>,
    /// Symbolic links archived (or that would be).
    pub links: Option<u64>,
    /// Bytes of file content archived (or that would be).
    pub bytes: Option<u64>,
    /// SHA-256 of the archive.
    pub sha256: Option<String>,
    /// Seconds taken.
    pub seconds: Option<f64>,
    /// Archives removed by `--keep` afterwards.
    pub removed: Vec<String>,
    /// Why nothing changed yet a backup was made: the latest archive is missing or damaged.
    pub reason: Option<String>,
    /// For `failed`: the error.
    pub error: Option<String>,
}

impl Backed {
    fn new(strategy: &str, status: &'static str) -> Backed {
        Backed {
            strategy: strategy.to_string(),
            status,
            archive: None,
            size: None,
            entries: None,
            files: None,
            folders: None,
            links: None,
            bytes: None,
            sha256: None,
            seconds: None,
            removed: Vec::new(),
            reason: None,
            error: None,
        }
    }

    fn with_counts(self, counts: Counts, bytes: u64) -> Backed {
        Backed {
            entries: Some(counts.entries()),
            files: Some(counts.files),
            folders: Some(counts.folders),
            links: Some(counts.links),
            bytes: Some(bytes),
            ..self
        }
    }
}

/// What a run does with one strategy; the real run and `--dry-run` decide alike.
#[derive(Debug)]
enum Plan {
    /// Nothing changed since the latest backup, whose archive is intact.
    Skip {
        /// The latest backup, whose archive holds the strategy as it is now.
        latest: Box<Entry>,
    },
    /// Back up; `why` says why when nothing changed (the latest archive is missing or damaged).
    Backup { why: Option<String> },
}

/// Backs up each strategy in turn, pruning it afterwards when `keep` is set. All names are
/// checked before anything is written. A strategy whose content is unchanged since its latest
/// backup is skipped unless `always` or that backup's archive is missing or damaged. With
/// several strategies, a failing one is reported at the end and the others still run.
pub fn run(ctx: &Context, opts: &BackupOptions, printer: &mut Printer) -> Result<Outcome> {
    super::tag::check_tags(&opts.tags)?;
    let sources = sources(ctx, opts, printer)?;
    let several = sources.len() > 1;
    let mut outcome = Outcome::Clean;
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (name, src) in sources {
        match one(ctx, opts, &name, &src, printer) {
            Ok((backed, result)) => {
                outcome = outcome.max(result);
                report.push(backed);
            }
            Err(e) if several && !is_output_error(&e) => {
                report.push(Backed {
                    error: Some(crate::error::chain(&e)),
                    ..Backed::new(&name, "failed")
                });
                failed.push((name, e));
            }
            Err(e) => return Err(e),
        }
    }
    if !failed.is_empty() {
        report_failures(&failed, report.len(), printer);
        outcome = outcome.max(Outcome::ProblemsFound);
    }
    printer.json_report(&report)?;
    Ok(outcome)
}

/// Plans and carries out the backup of one strategy.
fn one(
    ctx: &Context,
    opts: &BackupOptions,
    name: &str,
    src: &Path,
    printer: &mut Printer,
) -> Result<(Backed, Outcome)> {
    let plan = plan(ctx, opts, name, src)?;
    let mut outcome = Outcome::Clean;
    let cut = match plan {
        Plan::Backup { why: None } => latest_cut(ctx, name, opts.dry_run)?,
        _ => None,
    };
    if let Some(problem) = cut {
        // The folder changed (or --always): backed up as usual, the latest's damage said.
        let verb = match opts.dry_run {
            true => "would back up",
            false => "backing up",
        };
        printer.warn(format_args!("{problem}; {verb} {name} in full"));
        outcome = Outcome::ProblemsFound;
    }
    if let Plan::Backup { why: Some(why) } = &plan {
        let verb = match opts.dry_run {
            true => "would back up",
            false => "backing up",
        };
        printer.warn(format_args!(
            "{why}; {verb} {name} although nothing changed"
        ));
        outcome = Outcome::ProblemsFound;
    }
    let backed = match plan {
        Plan::Skip { latest } => {
            // As a backup that writes would: what a killed run left goes, as the warnings say.
            if !opts.dry_run {
                super::clean_leftovers(&ctx.backup_dir, printer)?;
            }
            skipped(name, latest.backup_file, opts.dry_run, &opts.tags, printer)?
        }
        Plan::Backup { why } if opts.dry_run => Backed {
            reason: why,
            ..dry_run(name, src, &opts.archive, printer)?
        },
        Plan::Backup { why } => {
            let (backed, result) = back_up(ctx, opts, name, src, printer)?;
            outcome = outcome.max(result);
            Backed {
                reason: why,
                ..backed
            }
        }
    };
    Ok((backed, outcome))
}

/// Whether to skip `name` or back it up, and why.
fn plan(ctx: &Context, opts: &BackupOptions, name: &str, src: &Path) -> Result<Plan> {
    check_outside(ctx, src)?;
    if opts.always {
        return Ok(Plan::Backup { why: None });
    }
    let Some(latest) = unchanged_since(ctx, name, src, &opts.archive.excludes)? else {
        return Ok(Plan::Backup { why: None });
    };
    Ok(match damage(&ctx.backup_dir, &latest, opts.dry_run) {
        None => Plan::Skip {
            latest: Box::new(latest),
        },
        Some(problem) => Plan::Backup {
            why: Some(format!(
                "the latest backup {} {problem}",
                latest.backup_file
            )),
        },
    })
}

/// What is wrong with the latest regular backup of `name`, if its archive is missing or not
/// the size the manifest records (see [`super::verify::check_present`]): a look, no full read.
fn latest_cut(ctx: &Context, name: &str, dry_run: bool) -> Result<Option<String>> {
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let Some(latest) = manifest.latest_regular(name) else {
        return Ok(None);
    };
    let problem = super::verify::check_present(&ctx.backup_dir, latest).err();
    Ok(said(&ctx.backup_dir, latest, problem, dry_run)
        .map(|problem| format!("the latest backup {} {problem}", latest.backup_file)))
}

/// Reports a strategy left alone because nothing changed.
fn skipped(
    name: &str,
    latest: String,
    dry_run: bool,
    tagging: &[String],
    printer: &mut Printer,
) -> Result<Backed> {
    let verb = if dry_run {
        "would be skipped"
    } else {
        "skipped"
    };
    printer.line(format_args!(
        "No changes in {name} since {latest}; {verb} (use --always to back up anyway)"
    ))?;
    if !tagging.is_empty() {
        printer.hint(format_args!(
            "{latest} holds {name} as it is: `resbak tag {latest} {}` tags it",
            tagging.join(" ")
        ));
    }
    Ok(Backed {
        archive: Some(latest),
        ..Backed::new(name, "unchanged")
    })
}

/// Backs up one strategy, reports it and prunes it when `keep` is set.
fn back_up(
    ctx: &Context,
    opts: &BackupOptions,
    name: &str,
    src: &Path,
    printer: &mut Printer,
) -> Result<(Backed, Outcome)> {
    let started = Instant::now();
    let now = match crate::atomic::commits() {
        0 => "nothing was registered".to_string(),
        _ => format!("the backup of {name} was not registered"),
    };
    let then = format!("{name} was backed up; nothing after it was registered");
    crate::interrupt::so_far(now, Some(then));
    let about = About {
        metrics: Some(opts.metrics.clone()),
        // Each tag once, in the order given (`--tag a --tag a` is one tag, as `resbak tag` has it).
        tags: opts.tags.iter().fold(Vec::new(), |mut tags, t| {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
            tags
        }),
        note: opts.note.clone(),
        ..Kind::Regular.into()
    };
    let (entry, changed, source_damaged) =
        backup_folder(ctx, name, src, &opts.archive, about, printer)?;
    crate::interrupt::so_far(
        format!(
            "{name} was backed up as {}; nothing after it was registered",
            entry.backup_file
        ),
        None,
    );
    let seconds = started.elapsed().as_secs_f64();
    printer.line(format_args!(
        "Backed up {name} -> {} ({}, {seconds:.2} s): {}",
        ctx.backup_dir.join(&entry.backup_file).display(),
        human_size(entry.size),
        entry.counts_text(),
    ))?;
    if printer.verbose() {
        let ratio = entry.bytes as f64 / entry.size.max(1) as f64;
        let rate = entry.bytes as f64 / seconds.max(1e-9) / (1 << 20) as f64;
        printer.line(format_args!(
            "  {} of content, compressed {ratio:.2}x, {rate:.0} MiB/s, sha256 {}",
            human_size(entry.bytes),
            entry.sha256
        ))?;
        note_copies_folders(src, printer)?;
    }
    warn_left_out_with_copies(src, printer);
    let mut backed = Backed {
        archive: Some(entry.backup_file.clone()),
        size: Some(entry.size),
        sha256: Some(entry.sha256.clone()),
        seconds: Some(seconds),
        ..Backed::new(name, "backed_up")
    }
    .with_counts(entry.kinds.unwrap_or_default(), entry.bytes);
    let mut outcome = match changed || source_damaged {
        true => Outcome::ProblemsFound,
        false => Outcome::Clean,
    };
    if opts.keep.is_some() || opts.keep_safety.is_some() || !opts.calendar.is_empty() {
        let rules = retention::Rules::new(opts.keep, opts.keep_safety).with_calendar(opts.calendar);
        // The backup is in place and catalogued: a failed prune is reported, never turned
        // into a failed backup.
        let mut adopter = super::adopt::Adopter::new(&ctx.backup_dir, printer);
        let adopt = &mut |m: &mut crate::manifest::Manifest| adopter.adopt(m);
        let said = |removed: &[String]| {
            let removed = prune::removed_text(removed);
            let file = &entry.backup_file;
            format!("{name} was backed up as {file}, then {removed}; nothing after it was done")
        };
        match retention::prune(&ctx.backup_dir, Some(name), &rules, false, adopt, &said) {
            Ok(pruned) => {
                prune::report(&pruned, printer)?;
                outcome = outcome.max(prune::outcome(&pruned));
                backed.removed = pruned.removed;
            }
            Err(e) => {
                printer.warn(format_args!(
                    "{name} was backed up, but pruning its old backups failed: {}",
                    crate::error::chain(&e)
                ));
                outcome = Outcome::Incomplete;
            }
        }
    }
    Ok((backed, outcome))
}

/// Whether `e` is a failure to write the report itself, which ends the run.
fn is_output_error(e: &Error) -> bool {
    matches!(e, Error::Io { path, .. } if path == Path::new("standard output"))
}

/// Prints every failed strategy with its error, then how many failed.
fn report_failures(failed: &[(String, Error)], total: usize, printer: &mut Printer) {
    for (name, e) in failed {
        printer.warn(format_args!(
            "backup of {name} failed: {}",
            crate::error::chain(e)
        ));
    }
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    printer.warn(format_args!(
        "{} of {total} strategies failed: {}",
        failed.len(),
        names.join(", ")
    ));
}

/// The strategies to back up with their folders, all checked before anything is written.
/// With `all`, every strategy folder; empty ones are skipped with a warning.
fn sources(
    ctx: &Context,
    opts: &BackupOptions,
    printer: &mut Printer,
) -> Result<Vec<(String, PathBuf)>> {
    super::warn_half_merged(&ctx.results_dir, printer);
    if !opts.all {
        return opts
            .strategies
            .iter()
            .map(|name| Ok((name.clone(), source_dir(ctx, name)?)))
            .collect();
    }
    let (mut found, mut skipped_empty) = (Vec::new(), false);
    super::note_replaced_copies(&ctx.results_dir, printer);
    for name in strategies(&ctx.results_dir)? {
        if is_backup_dir(ctx, &ctx.results_dir.join(&name)) {
            printer.warn(format_args!("skipped {name}: it is the backup folder"));
            continue;
        }
        match source_dir(ctx, &name) {
            Ok(dir) => found.push((name, dir)),
            Err(Error::EmptyResults { path }) => {
                printer.warn(format_args!("skipped {}: it is empty", path.display()));
                skipped_empty = true;
            }
            Err(e) => return Err(e),
        }
    }
    for link in linked_folders(&ctx.results_dir) {
        printer.warn(format_args!(
            "skipped {}: a symbolic link to a folder, not a strategy folder (resbak backs up \
             the folders in the results folder)",
            link.display()
        ));
    }
    if found.is_empty() {
        return Err(match skipped_empty {
            true => Error::EmptyResults {
                path: ctx.results_dir.clone(),
            },
            false => Error::NoStrategies {
                path: ctx.results_dir.clone(),
            },
        });
    }
    Ok(found)
}

/// The symbolic links to folders in `results_dir`, which `--all` passes over, sorted.
fn linked_folders(results_dir: &Path) -> Vec<PathBuf> {
    let mut links: Vec<PathBuf> = std::fs::read_dir(results_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()) && e.path().is_dir())
        .map(|e| e.path())
        .collect();
    links.sort();
    links
}

/// Names the copies folders of `resbak file` that the backup of `src` left out.
fn note_copies_folders(src: &Path, printer: &mut Printer) -> Result<()> {
    for folder in crate::filebackup::copies_folders_in(src) {
        printer.line(format_args!(
            "  left out {}: a copies folder of `resbak file` (it keeps their SHA256SUMS)",
            folder.display()
        ))?;
    }
    Ok(())
}

/// Warns of what the copies folders of `resbak file` below `src` hold besides copies: left out
/// with the folder, it is not backed up.
fn warn_left_out_with_copies(src: &Path, printer: &mut Printer) {
    for folder in crate::filebackup::copies_folders_in(src) {
        let others = match crate::filebackup::names::others_in(&folder) {
            Ok(others) => others,
            Err(e) => {
                let folder = folder.display();
                printer.warn(format_args!(
                    "cannot read {folder}, a copies folder of `resbak file` that backups leave \
                     out: what else it holds is not backed up ({e})"
                ));
                continue;
            }
        };
        let Some(first) = others.first() else {
            continue;
        };
        let (more, verb) = match others.len() {
            1 => (String::new(), "is"),
            n => (format!(" and {} more", n - 1), "are"),
        };
        printer.warn(format_args!(
            "{} {verb} not backed up: {} is a copies folder of `resbak file`, which backups leave \
             out; move what is not a copy out of it to back it up",
            crate::error::printable(format!("{}{more}", first.display())),
            folder.display(),
        ));
    }
}

/// Prints what a backup of `src` would hold.
fn dry_run(
    name: &str,
    src: &Path,
    opts: &archive::Options,
    printer: &mut Printer,
) -> Result<Backed> {
    let survey = archive::survey(src, &opts.excludes)?;
    for (path, len) in &survey.paths {
        printer.line(format_args!(
            "{name}/{}  {}",
            path.display(),
            human_size(*len)
        ))?;
    }
    if printer.verbose() {
        note_copies_folders(src, printer)?;
    }
    warn_left_out_with_copies(src, printer);
    printer.line(format_args!(
        "Would back up {name}: {}, {} before compression",
        survey.counts,
        human_size(survey.stats.bytes)
    ))?;
    Ok(Backed::new(name, "dry_run").with_counts(survey.counts, survey.stats.bytes))
}

/// The latest backup of `name`, if `src` is unchanged since it: same metadata digest first
/// (cheap), then the same content digest (reads every file).
fn unchanged_since(
    ctx: &Context,
    name: &str,
    src: &Path,
    excludes: &archive::Excludes,
) -> Result<Option<Entry>> {
    let manifest = Manifest::load(&ctx.backup_dir)?;
    let latest = manifest
        .latest_regular(name)
        .into_iter()
        .collect::<Vec<_>>();
    Ok(holding(src, excludes, &latest)?
        .first()
        .map(|e| (*e).clone()))
}

/// Those of `candidates` that hold `folder` (less `excludes`) exactly as it is now: the same
/// metadata digest, then the same content digest. The folder is digested once for each, the
/// content only when some metadata matches.
pub(crate) fn holding<'e>(
    folder: &Path,
    excludes: &archive::Excludes,
    candidates: &[&'e Entry],
) -> Result<Vec<&'e Entry>> {
    let meta = archive::digest(folder, excludes, false)?.meta;
    let mut same: Vec<&Entry> = candidates
        .iter()
        .copied()
        .filter(|e| e.meta_digest.as_deref() == Some(meta.as_str()))
        .collect();
    if !same.is_empty() {
        let content = archive::digest(folder, excludes, true)?.content;
        same.retain(|e| e.content_digest.as_deref() == Some(content.as_str()));
    }
    Ok(same)
}

/// What is wrong with `entry`'s archive in `dir`, if anything, as `verify` (without `--deep`)
/// finds it: missing, unreadable, or its size or SHA-256 not the manifest's. One streaming read.
/// A problem found is recorded as the archive's last check, unless `dry_run`; a damaged index
/// alone is no damage of the archive (restore reads it whole, and `reindex` mends the index).
pub(crate) fn damage(dir: &Path, entry: &Entry, dry_run: bool) -> Option<String> {
    let check = super::verify::check(dir, entry, false, &crate::progress::Progress::hidden());
    said(dir, entry, check.err(), dry_run)
}

/// `problem`, found with `entry`'s archive in `dir`, recorded as its last check (unless
/// `dry_run` or the archive is missing) and said as [`damage`] says it.
fn said(
    dir: &Path,
    entry: &Entry,
    problem: Option<super::verify::Problem>,
    dry_run: bool,
) -> Option<String> {
    use super::verify::{self, ProblemKind};
    let problem = problem?;
    if problem.kind != ProblemKind::Missing && !dry_run {
        verify::record_problem(dir, entry, &problem.message, problem.index_only);
    }
    if problem.index_only {
        return None;
    }
    Some(match problem.kind {
        ProblemKind::Missing => "is missing".to_string(),
        _ => format!("is damaged: {}", problem.message),
    })
}

/// The folder of strategy `name`, checked to be a plain name of an existing, non-empty folder.
/// A missing results folder is [`Error::MissingFolder`], not an unknown strategy.
fn source_dir(ctx: &Context, name: &str) -> Result<PathBuf> {
    check_strategy_name(name)?;
    let dir = ctx.results_dir.join(name);
    if let Ok(target) = std::fs::read_link(&dir) {
        return Err(Error::LinkedStrategy { path: dir, target });
    }
    if !dir.is_dir() {
        return Err(Error::UnknownStrategy {
            name: name.to_string(),
            dir: ctx.results_dir.clone(),
            available: strategies(&ctx.results_dir)?,
        });
    }
    if std::fs::read_dir(&dir).at("read", &dir)?.next().is_none() {
        return Err(Error::EmptyResults { path: dir });
    }
    Ok(dir)
}

/// Whether `dir` is the backup folder itself (a folder of archives, not a strategy).
fn is_backup_dir(ctx: &Context, dir: &Path) -> bool {
    super::same_dir(dir, &ctx.backup_dir)
}

/// Refuses `src` when the backup folder lies inside it (or is it), whether the backup folder
/// exists yet or not: each backup would hold the ones before it.
pub(crate) fn check_outside(ctx: &Context, src: &Path) -> Result<()> {
    let (Ok(src), Ok(dir)) = (src.canonicalize(), super::resolved(&ctx.backup_dir)) else {
        return Ok(());
    };
    match dir.starts_with(&src) {
        true => Err(Error::SourceHoldsBackups {
            path: src,
            backup_dir: dir,
        }),
        false => Ok(()),
    }
}
