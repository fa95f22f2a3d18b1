//! `resbak list`: the catalogue, with each archive's last verify result, and archives that are
//! missing or not catalogued flagged. `ok` is never claimed for what was not checked.

use super::{
    ArchiveName, Context, Outcome, Printer, archive_files, human_size, strategies, verify,
};
use crate::checks::{Check, Checks};
pub(crate) use crate::checks::{INDEX_DAMAGED, local_status};
use crate::error::{Error, Result};
use crate::manifest::{ChecksumSource, Kind, Lock, LockFile, Manifest};

use crate::manifest::Entry;
use crate::metrics::{self, Metrics};
use crate::remote::Remote;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Options of `resbak list`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only this strategy.
    pub strategy: Option<String>,
    /// Check every listed archive's size and SHA-256 first and record the results.
    pub check: bool,
    /// Metrics shown as extra columns (names or unique beginnings of names).
    pub metrics: Vec<String>,
    /// Order each strategy's backups by this metric, best first.
    pub sort: Option<String>,
    /// Only backups with this tag.
    pub tag: Option<String>,
    /// Which direction of each metric is better (for `sort`).
    pub directions: crate::metrics::Sources,
}

/// One row of the listing; also the JSON shape.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Archive file name.
    pub archive: String,
    /// Strategy, if known.
    pub strategy: Option<String>,
    /// `regular` or `safety` (a copy `restore --force` made); unknown for untracked archives.
    pub kind: Option<Kind>,
    /// Creation time from the manifest.
    pub created: Option<DateTime<Utc>>,
    /// Size in bytes: from the manifest, or of the file for untracked archives.
    pub size: u64,
    /// Entries in the archive: files, folders and links.
    pub entries: Option<u64>,
    /// Regular files; unknown for entries from older resbak that did not record the kinds.
    pub files: Option<u64>,
    /// Folders, the top folder included; unknown as for `files`.
    pub folders: Option<u64>,
    /// Symbolic links; unknown as for `files`.
    pub links: Option<u64>,
    /// Uncompressed bytes.
    pub bytes: Option<u64>,
    /// SHA-256 from the manifest.
    pub sha256: Option<String>,
    /// For archives resbak did not make: `imported` (the checksum was taken when resbak adopted
    /// the archive, not when it was made) or `none` (no checksum recorded yet).
    pub checksum_source: Option<ChecksumSource>,
    /// For the Python scripts' backups: the local time and zone `created` was converted from.
    pub converted_from: Option<String>,
    /// The last verify of these bytes: when, whether deep, and any problem.
    pub verified: Option<Check>,
    /// `verified` (the last verify found it intact and its size is unchanged), `failed` (the
    /// last verify found a problem, or its size changed since), `present` (never verified),
    /// `missing` (in the manifest, no file) or `untracked` (file, not in the manifest); with
    /// `--remote`: `both`, `local`, `remote`, `conflict` (same name, other bytes) or
    /// `damaged` (the remote's archive or index object is missing or of the wrong size).
    pub status: &'static str,
    /// What is wrong, for `failed`.
    pub problem: Option<String>,
    /// Headline metrics recorded with the backup.
    pub metrics: Option<Metrics>,
    /// Tags.
    pub tags: Vec<String>,
    /// Note.
    pub note: Option<String>,
    /// Whether it is pinned.
    pub pin: bool,
}

/// Prints the catalogue; with `check`, verifies the listed archives first. Any listed backup
/// `missing` or `failed` is a problem found.
pub fn run(ctx: &Context, opts: &ListOptions, printer: &mut Printer) -> Result<Outcome> {
    let dir = &ctx.backup_dir;
    if !dir.is_dir() {
        return Err(Error::missing_folder("backup", dir));
    }
    let strategy = opts.strategy.as_deref();
    let (manifest, complete) = super::load_with_metrics(dir, printer)?;
    if let Some(name) = strategy {
        check_known(ctx, &manifest, name)?;
    }
    super::adopt::note(dir, &manifest, printer);
    if opts.check {
        let _reading = Lock::shared(dir, LockFile::Archives)?;
        let selected: Vec<&Entry> = manifest
            .sorted()
            .into_iter()
            .filter(|e| strategy.is_none_or(|s| s == e.strategy))
            .collect();
        verify::check_entries(dir, &selected, false, printer);
    }
    let (rows, columns) = arrange(rows(dir, &manifest, strategy)?, opts, complete)?;
    super::warn_leftovers(dir, printer);
    if printer.json() {
        printer.json_report(&rows)?;
    } else if rows.is_empty() {
        let of = strategy.map_or(String::new(), |s| format!(" of {s}"));
        let tagged = opts
            .tag
            .as_ref()
            .map_or(String::new(), |t| format!(" tagged {t}"));
        printer.line(format_args!("No backups{of}{tagged} in {}.", dir.display()))?;
    } else {
        print_table(&rows, &columns, printer)?;
        print_notes(&rows, printer)?;
        print_problems(&rows, printer)?;
    }
    Ok(match summary(&rows) {
        Some(summary) => {
            printer.problem(summary)?;
            Outcome::ProblemsFound
        }
        None => Outcome::Clean,
    })
}

/// One line counting the rows that are `missing` or `failed`, if any: the problems that make
/// `list` exit 1. Untracked and never-verified archives are not problems.
fn summary(rows: &[Row]) -> Option<String> {
    let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
    let (missing, failed, damaged) = (count("missing"), count("failed"), count("damaged"));
    let index_damaged = count(INDEX_DAMAGED);
    let parts: Vec<String> = [
        (missing, "missing"),
        (failed, "failed"),
        (damaged, "damaged on the remote"),
        (index_damaged, "intact with a damaged index"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let listed = rows.iter().filter(|r| r.status != "untracked").count();
    (!parts.is_empty()).then(|| {
        format!(
            "Problems: {} of {listed} catalogued backups ({})",
            missing + failed + damaged + index_damaged,
            parts.join(", ")
        )
    })
}

/// Checks that `name` is a strategy with backups or a results folder; else an error with close
/// names as suggestions.
fn check_known(ctx: &Context, manifest: &Manifest, name: &str) -> Result<()> {
    let mut known: Vec<String> = manifest
        .backups
        .iter()
        .map(|e| e.strategy.clone())
        .collect();
    known.extend(strategies(&ctx.results_dir).unwrap_or_default());
    let untracked = archive_files(&ctx.backup_dir)?.into_iter();
    known.extend(untracked.filter_map(|(f, _)| ArchiveName::parse(&f).map(|n| n.strategy)));
    let file = format!("{}.tar.gz", name.strip_suffix(".tar.gz").unwrap_or(name));
    match manifest.find(&file) {
        Some(entry) if !known.iter().any(|k| k == name) => Err(Error::InvalidArgument {
            message: format!(
                "{file} is a backup, not a strategy: `resbak show {file}` shows it, \
                 `resbak list {}` lists its strategy",
                entry.strategy
            ),
        }),
        _ => super::check_known(name, &known, &ctx.backup_dir),
    }
}

/// Catalogued backups (grouped by strategy, oldest first), then untracked archive files.
pub fn rows(backup_dir: &Path, manifest: &Manifest, strategy: Option<&str>) -> Result<Vec<Row>> {
    let checks = recorded_checks(backup_dir);
    let wanted = |s: &str| strategy.is_none_or(|w| w == s);
    let mut rows: Vec<Row> = manifest
        .sorted()
        .into_iter()
        .filter(|e| wanted(&e.strategy))
        .map(|e| local_row(backup_dir, e, checks.of(e)))
        .collect();
    for (file, size) in untracked(backup_dir, manifest)? {
        let guess = ArchiveName::parse(&file).map(|n| n.strategy);
        if strategy.is_none() || guess.as_deref() == strategy {
            rows.push(Row {
                archive: file,
                strategy: guess,
                kind: None,
                created: None,
                size,
                entries: None,
                files: None,
                folders: None,
                links: None,
                bytes: None,
                sha256: None,
                checksum_source: None,
                converted_from: None,
                verified: None,
                status: "untracked",
                problem: None,
                metrics: None,
                tags: Vec::new(),
                note: None,
                pin: false,
            });
        }
    }
    Ok(rows)
}

/// The verify results recorded beside the manifest; none (with a warning) if unreadable.
pub(crate) fn recorded_checks(backup_dir: &Path) -> Checks {
    Checks::load(backup_dir).unwrap_or_else(|e| {
        super::warn(format_args!("ignoring the recorded verify results: {e}"));
        Checks::default()
    })
}

/// The row of a catalogued backup here: its file's presence and size now, and its last verify
/// of its bytes (a verify that found no file read none: it says nothing about a file there now).
fn local_row(backup_dir: &Path, e: &Entry, check: Option<&Check>) -> Row {
    let check = check.filter(|c| !c.found_missing());
    let (status, problem) = local_status(backup_dir, e, check);
    Row {
        verified: check.cloned(),
        problem,
        ..entry_row(e, status)
    }
}

/// The newest regular backup of `strategy` from the `from`-th on (as `STRATEGY~N` counts them:
/// sound entries, newest first) that `list` would not call `missing` or `failed`, with its N.
pub(crate) fn newest_usable<'m>(
    backup_dir: &Path,
    manifest: &'m Manifest,
    strategy: &str,
    from: usize,
) -> Option<(usize, &'m Entry)> {
    let checks = recorded_checks(backup_dir);
    let regular = manifest.regular_newest_first(strategy);
    let sound = regular.into_iter().filter(|e| e.is_sound()).enumerate();
    sound.skip(from).find(|(_, e)| {
        let check = checks.of(e).filter(|c| !c.found_missing());
        !matches!(local_status(backup_dir, e, check).0, "missing" | "failed")
    })
}

/// The row of a catalogued backup, with no verify result.
fn entry_row(e: &Entry, status: &'static str) -> Row {
    Row {
        archive: e.backup_file.clone(),
        strategy: Some(e.strategy.clone()),
        kind: Some(e.kind),
        created: Some(e.created),
        size: e.size,
        entries: e.has_checksum().then_some(e.entries),
        files: e.kinds.map(|k| k.files),
        folders: e.kinds.map(|k| k.folders),
        links: e.kinds.map(|k| k.links),
        bytes: e.has_checksum().then_some(e.bytes),
        sha256: e.has_checksum().then(|| e.sha256.clone()),
        checksum_source: e.checksum_source,
        converted_from: e.converted_from.clone(),
        verified: None,
        status,
        problem: None,
        metrics: e.metrics.clone(),
        tags: e.tags.clone(),
        note: e.note.clone(),
        pin: e.pin,
    }
}

/// `.tar.gz` files in the backup folder that the manifest does not know, sorted by name.
pub(crate) fn untracked(backup_dir: &Path, manifest: &Manifest) -> Result<Vec<(String, u64)>> {
    let mut files = archive_files(backup_dir)?;
    files.retain(|(name, _)| manifest.find(name).is_none());
    Ok(files)
}

/// After the table, what its marks mean: times converted from local time (`*`) and checksums
/// taken at import rather than when the archive was made (`+`).
fn print_notes(rows: &[Row], printer: &mut Printer) -> Result<()> {
    let converted = rows.iter().filter(|r| r.converted_from.is_some()).count();
    if converted > 0 {
        printer.line(format_args!(
            "* created time converted to UTC from the local time the Python scripts wrote ({}; --json shows each original)",
            crate::error::count(converted, "backup", "backups")
        ))?;
    }
    let imported = rows
        .iter()
        .filter(|r| r.checksum_source == Some(ChecksumSource::Imported))
        .count();
    if imported > 0 {
        printer.line(format_args!(
            "+ checksum taken when resbak adopted the archive, not when it was made ({})",
            crate::error::count(imported, "backup", "backups")
        ))?;
    }
    Ok(())
}

/// One line per failed archive after the table: what is wrong.
fn print_problems(rows: &[Row], printer: &mut Printer) -> Result<()> {
    for row in rows {
        if let Some(problem) = &row.problem {
            printer.problem(format_args!("{}: {problem}", row.archive))?;
        }
    }
    Ok(())
}

/// The rows with `--tag`, ordered by `--sort`, and the metric columns `--metrics` asks for.
/// While some metrics could not be read (`complete` false, already warned of), a name no row
/// holds is a column of its own, empty, not an error.
fn arrange(
    mut rows: Vec<Row>,
    opts: &ListOptions,
    complete: bool,
) -> Result<(Vec<Row>, Vec<String>)> {
    if let Some(tag) = &opts.tag {
        rows.retain(|r| r.tags.contains(tag));
    }
    let columns = columns(&rows, &opts.metrics, complete)?;
    if let Some(name) = &opts.sort {
        let key = columns_of(&rows, std::slice::from_ref(name), complete)?.remove(0);
        sort_by_metric(&mut rows, &key, &opts.directions);
    }
    Ok((rows, columns))
}

/// The metric keys `names` mean among those the rows hold (see [`metrics::resolve`]).
fn columns(rows: &[Row], names: &[String], complete: bool) -> Result<Vec<String>> {
    match names.is_empty() {
        true => Ok(Vec::new()),
        false => columns_of(rows, names, complete),
    }
}

fn columns_of(rows: &[Row], names: &[String], complete: bool) -> Result<Vec<String>> {
    let mut known: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.metrics.as_ref())
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    known.sort_unstable();
    known.dedup();
    names
        .iter()
        .map(|name| match metrics::resolve(name, &known).as_slice() {
            [one] => Ok(one.to_string()),
            [] if !complete => Ok(name.clone()),
            [] => Err(Error::InvalidArgument {
                message: format!(
                    "no metric named {name:?} in the backups listed{}",
                    crate::error::did_you_mean(&super::suggest(name, &known))
                ),
            }),
            many => Err(Error::InvalidArgument {
                message: format!("metric name {name:?} is ambiguous: {}", many.join(", ")),
            }),
        })
        .collect()
}

/// Orders each strategy's rows by metric `key`, best first (highest, unless it is configured
/// as lower is better); rows without a value (or NaN) last, untracked archives at the end.
fn sort_by_metric(rows: &mut [Row], key: &str, directions: &metrics::Sources) {
    let lower_first = directions.higher_is_better(key) == Some(false);
    let value = |r: &Row| {
        r.metrics
            .as_ref()
            .and_then(|m| m.get(key))
            .copied()
            .filter(|v| !v.is_nan())
    };
    rows.sort_by(|a, b| {
        let group = |r: &Row| (r.status == "untracked", r.strategy.clone());
        group(a)
            .cmp(&group(b))
            .then_with(|| match (value(a), value(b)) {
                (Some(x), Some(y)) if lower_first => x.total_cmp(&y),
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
}

const COLUMNS: usize = 9;

fn print_table(rows: &[Row], extra: &[String], printer: &mut Printer) -> Result<()> {
    let header = [
        "ARCHIVE",
        "STRATEGY",
        "KIND",
        "CREATED (UTC)",
        "SIZE",
        "ENTRIES",
        "SHA256",
        "VERIFIED (UTC)",
        "STATUS",
    ];
    let header: Vec<String> = header
        .iter()
        .map(|h| h.to_string())
        .chain(extra.iter().map(|k| k.to_uppercase()))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let values = extra.iter().map(|key| {
                let value = row.metrics.as_ref().and_then(|m| m.get(key));
                value.map_or("-".to_string(), |v| metrics::format_value(*v))
            });
            cells(row).into_iter().chain(values).collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (col, w)) in cols.iter().zip(&widths).enumerate() {
            let w = *w;
            let right = i == 4 || i == 5 || i >= COLUMNS;
            let cell = if right {
                format!("{col:>w$}")
            } else {
                format!("{col:<w$}")
            };
            s.push_str(&cell);
            s.push_str("  ");
        }
        s.trim_end().to_string()
    };
    printer.line(line(&header))?;
    for row in &cells {
        printer.line(line(row))?;
    }
    Ok(())
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
        .replace('T', " ")
        .replace('Z', "")
}

fn cells(row: &Row) -> [String; COLUMNS] {
    let dash = || "-".to_string();
    [
        row.archive.clone(),
        row.strategy.clone().unwrap_or_else(|| "?".into()),
        match row.kind {
            Some(Kind::Regular) => "regular".into(),
            Some(Kind::Safety) => "safety".into(),
            None => dash(),
        },
        row.created.as_ref().map_or_else(dash, |t| {
            time(t)
                + if row.converted_from.is_some() {
                    "*"
                } else {
                    ""
                }
        }),
        human_size(row.size),
        row.entries.map_or_else(dash, |n| n.to_string()),
        row.sha256.as_ref().map_or_else(dash, |s| {
            let mark = match row.checksum_source {
                Some(ChecksumSource::Imported) => "+",
                _ => "",
            };
            s.chars().take(12).collect::<String>() + mark
        }),
        row.verified.as_ref().map_or_else(dash, |c| {
            format!("{}{}", time(&c.at), if c.deep { " deep" } else { "" })
        }),
        row.status.to_string(),
    ]
}

/// `list --remote`: the remote's catalogue together with the local one, each backup marked
/// `both`, `local` (here only), `remote` (there only) or `conflict` (same name, other bytes).
pub fn run_remote(
    ctx: &Context,
    remote: &Remote,
    opts: &ListOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let (rows, complete) = remote_rows(&ctx.backup_dir, remote, opts.strategy.as_deref(), printer)?;
    let (rows, columns) = arrange(rows, opts, complete)?;
    if printer.json() {
        printer.json_report(&rows)?;
    } else if rows.is_empty() {
        printer.line(format_args!(
            "No backups in {} or on {} ({}).",
            ctx.backup_dir.display(),
            remote.name(),
            remote.location()
        ))?;
    } else {
        print_table(&rows, &columns, printer)?;
        print_problems(&rows, printer)?;
    }
    let mut outcome = Outcome::Clean;
    if let Some(summary) = summary(&rows) {
        printer.problem(summary)?;
        outcome = Outcome::ProblemsFound;
    }
    // Same name, other bytes: one of the two copies is not the backup it claims to be.
    let conflicts = rows.iter().filter(|r| r.status == "conflict").count();
    if conflicts == 0 {
        return Ok(outcome);
    }
    printer.problem(format_args!(
        "Problems: {} here and on {} with other bytes (conflict); run resbak verify and resbak verify --remote {}",
        crate::error::count(conflicts, "backup", "backups"),
        remote.name(),
        remote.name()
    ))?;
    Ok(Outcome::ProblemsFound)
}

/// Local and remote backups by archive name, grouped by strategy, oldest first. Local backups
/// count only when their file is present. Unreadable remote entries are warned about.
pub fn remote_rows(
    backup_dir: &Path,
    remote: &Remote,
    strategy: Option<&str>,
    printer: &mut Printer,
) -> Result<(Vec<Row>, bool)> {
    let catalogue = remote.catalogue()?;
    for (object, problem) in &catalogue.damaged {
        printer.warn(format_args!("skipping {}: {problem}", remote.url(object)));
    }
    let (local, complete) = super::load_with_metrics(backup_dir, printer)?;
    let checks = recorded_checks(backup_dir);
    let mut both: BTreeMap<&str, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    for e in &local.backups {
        both.entry(&e.backup_file).or_default().0 = Some(e);
    }
    for e in &catalogue.entries {
        both.entry(&e.backup_file).or_default().1 = Some(e);
    }
    let mut rows: Vec<Row> = both
        .into_values()
        .filter_map(|sides| match sides {
            (Some(l), Some(r)) if !super::push::same(l, r) => Some(entry_row(r, "conflict")),
            (Some(l), there) => {
                let broken = there.and_then(|r| catalogue.object_problem(&r.backup_file));
                let there = there.filter(|_| broken.is_none());
                let row = local_side(backup_dir, l, checks.of(l), there, remote);
                Some(broken_there(row, broken, remote))
            }
            (None, Some(r)) => {
                let broken = catalogue.object_problem(&r.backup_file);
                Some(broken_there(entry_row(r, "remote"), broken, remote))
            }
            (None, None) => None,
        })
        .filter(|row| strategy.is_none_or(|s| row.strategy.as_deref() == Some(s)))
        .collect();
    rows.sort_by(|a, b| (&a.strategy, a.created).cmp(&(&b.strategy, b.created)));
    Ok((rows, complete))
}

/// `row` marked `damaged` when the remote's copy is `broken` (an object missing or of the
/// wrong size), with what to do: push it again from an intact copy here, if there is one.
fn broken_there(row: Row, broken: Option<String>, remote: &Remote) -> Row {
    let Some(broken) = broken else {
        return row;
    };
    let name = remote.name();
    let there = format!("the copy on {name} is damaged ({broken})");
    let problem = match (row.status, &row.problem) {
        ("remote", _) => format!("{there}; there is no copy here"),
        (_, Some(here)) => format!("{here}; {there}"),
        _ => format!(
            "{there}; resbak push {} --remote {name} uploads it again",
            row.archive
        ),
    };
    let status = if row.status == "remote" || row.problem.is_none() {
        "damaged"
    } else {
        row.status
    };
    Row {
        status,
        problem: Some(problem),
        ..row
    }
}

/// The row of a backup catalogued here, with `there` its remote entry if the remote holds the
/// same bytes: `both` or `local`, or, when the local copy is `missing` or `failed` as plain
/// `list` sees it (file, size, recorded verify results), that status and its problem.
fn local_side(
    backup_dir: &Path,
    entry: &Entry,
    check: Option<&Check>,
    there: Option<&Entry>,
    remote: &Remote,
) -> Row {
    let row = local_row(backup_dir, entry, check);
    if !matches!(row.status, "missing" | "failed") {
        return entry_row(entry, if there.is_some() { "both" } else { "local" });
    }
    let here = row
        .problem
        .clone()
        .unwrap_or_else(|| "archive file is missing".into());
    let problem = match there {
        Some(_) => format!(
            "{here} here; {} holds an intact copy (resbak pull {} --remote {} after moving this one away)",
            remote.name(),
            entry.backup_file,
            remote.name()
        ),
        None => format!("{here} here"),
    };
    Row {
        problem: Some(problem),
        ..row
    }
}
