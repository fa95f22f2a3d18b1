//! One module per subcommand. Each takes plain option structs (no clap types), does its work
//! through the library modules, and reports through a [`Printer`].

pub mod backup;
pub mod config;
pub mod diff;
pub mod file;
pub mod list;
pub mod prune;
pub mod pull;
pub mod push;
pub mod reindex;
pub mod restore;
pub mod verify;

use crate::error::{Error, IoContext, Result, printable, printable_keeping};
use crate::manifest::{Entry, Manifest};
use crate::progress::Progress;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::fmt::Display;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Where results and backups live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Folder holding one sub-folder per strategy.
    pub results_dir: PathBuf,
    /// Folder holding the archives and `manifest.yaml`.
    pub backup_dir: PathBuf,
}

/// How a command that ran to its end turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done and found intact.
    Clean,
    /// The command ran, but a check found missing or damaged data.
    ProblemsFound,
    /// The command ran to its end, but part of it failed and was reported.
    Incomplete,
}

/// How output should look, decided once from flags and the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// Print JSON instead of text reports.
    pub json: bool,
    /// Print only problems and warnings; no progress.
    pub quiet: bool,
    /// More detail.
    pub verbose: bool,
    /// Colour in reports (standard output is a terminal and `NO_COLOR` is not set).
    pub color: bool,
    /// Progress bars (standard error is a terminal, not quiet, not JSON).
    pub progress: bool,
}

impl Ui {
    /// Decides colour and progress from the terminal and the environment.
    pub fn detect(json: bool, quiet: bool, verbose: bool) -> Ui {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            json,
            quiet,
            verbose,
            color: !json && !no_color && std::io::stdout().is_terminal(),
            progress: !json && !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl From<Outcome> for crate::ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Clean => crate::ExitCode::Success,
            Outcome::ProblemsFound => crate::ExitCode::Problem,
            Outcome::Incomplete => crate::ExitCode::Error,
        }
    }
}

/// Where commands write: reports to standard output, warnings and progress to standard error.
///
/// Control characters in what is printed are shown as escapes (see [`printable`]), so a name
/// from disk, the manifest or an archive can never forge a line or move the cursor. When
/// standard output breaks (a closed pipe, a full disk), the command goes on with its work:
/// later report lines are dropped and [`Printer::finish`] hands back what went wrong, so the
/// exit code still reflects the work. Warnings that cannot be written are dropped.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    ui: Ui,
    broken: Option<std::io::Error>,
}

impl<'a> Printer<'a> {
    /// Prints reports to `out`, plain text, no progress.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Printer::with_ui(out, Ui::default())
    }

    /// Prints reports to `out` as `ui` says.
    pub fn with_ui(out: &'a mut dyn Write, ui: Ui) -> Self {
        Printer {
            out,
            ui,
            broken: None,
        }
    }

    /// Whether reports are JSON.
    pub fn json(&self) -> bool {
        self.ui.json
    }

    /// Whether more detail was asked for.
    pub fn verbose(&self) -> bool {
        self.ui.verbose && !self.ui.quiet
    }

    /// Writes one line of the report (not with `--quiet` or `--json`).
    pub fn line(&mut self, text: impl Display) -> Result<()> {
        if self.ui.quiet || self.ui.json {
            return Ok(());
        }
        self.write_line(text)
    }

    /// Writes a line about a problem found (not with `--json`, even with `--quiet`).
    pub fn problem(&mut self, text: impl Display) -> Result<()> {
        if self.ui.json {
            return Ok(());
        }
        self.write_line(text)
    }

    /// Writes `value` as pretty JSON (only with `--json`).
    pub fn json_report(&mut self, value: &impl serde::Serialize) -> Result<()> {
        if !self.ui.json {
            return Ok(());
        }
        let json = serde_json::to_string_pretty(value)
            .map_err(|e| Error::io("write JSON to", "standard output", std::io::Error::other(e)))?;
        self.write_raw(&json);
        Ok(())
    }

    /// Writes one report line with control characters escaped; colour codes from
    /// [`Printer::paint`] pass when colour is on.
    fn write_line(&mut self, text: impl Display) -> Result<()> {
        let keep: &[&str] = if self.ui.color { &COLOURS } else { &[] };
        let line = printable_keeping(&text.to_string(), keep);
        self.write_raw(&line);
        Ok(())
    }

    /// Writes `text` and a newline unless standard output already broke; remembers a failure.
    fn write_raw(&mut self, text: &str) {
        if self.broken.is_none()
            && let Err(e) = writeln!(self.out, "{text}")
        {
            self.broken = Some(e);
        }
    }

    /// Flushes the report and returns the first error writing it, if any (the lines after it
    /// were dropped).
    pub fn finish(mut self) -> Option<std::io::Error> {
        if self.broken.is_none()
            && let Err(e) = self.out.flush()
        {
            self.broken = Some(e);
        }
        self.broken
    }

    /// Writes a warning to standard error.
    pub fn warn(&mut self, text: impl Display) {
        warn(text);
    }

    /// Writes a hint, a next step worth taking, to standard error.
    pub fn hint(&mut self, text: impl Display) {
        to_stderr(&printable(format_args!("resbak: hint: {text}")));
    }

    /// `text` in green (good) or red (bad) when colour is on.
    pub fn paint(&self, text: &str, good: bool) -> String {
        match (self.ui.color, good) {
            (false, _) => text.to_string(),
            (true, true) => format!("{GREEN}{text}{RESET}"),
            (true, false) => format!("{RED}{text}{RESET}"),
        }
    }

    /// Whether progress bars are shown (so totals are worth computing).
    pub fn shows_progress(&self) -> bool {
        self.ui.progress
    }

    /// A progress bar for `total` bytes, or a hidden one when bars are off.
    pub fn progress(&self, total: u64, message: impl Into<String>) -> Progress {
        if self.ui.progress {
            Progress::bar(total, message)
        } else {
            Progress::hidden()
        }
    }
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";
/// The only control sequences a report line may hold: those [`Printer::paint`] writes.
const COLOURS: [&str; 3] = [GREEN, RED, RESET];

/// Writes `resbak: warning: {text}` to standard error, control characters escaped; a warning
/// that cannot be written is dropped (it must never end the program).
pub fn warn(text: impl Display) {
    to_stderr(&warning_line(text));
}

/// The line [`warn`] writes.
fn warning_line(text: impl Display) -> String {
    printable(format_args!("resbak: warning: {text}"))
}

/// Writes one line to standard error, ignoring failures.
fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One archive's result in a check, for [`hint_after_check`].
pub struct Verdict<'a> {
    /// The archive: its file name in the backup folder, or the path given.
    pub archive: &'a str,
    /// Its strategy.
    pub strategy: &'a str,
    /// Whether it was found intact.
    pub intact: bool,
}

/// After a check, the next step for each damaged archive. When it is its strategy's newest
/// regular backup (or the backup folder's manifest does not know it), `backup --always` makes
/// a fresh one if the results folder is still there. An older backup or a safety copy leaves
/// the newest backup protecting the strategy: the hint says whether that one was found intact
/// and how `prune` removes the damaged archive once it is no longer needed.
pub fn hint_after_check(
    results_dir: &Path,
    manifest: &Manifest,
    verdicts: &[Verdict],
    printer: &mut Printer,
) {
    let mut fresh: Vec<&str> = Vec::new();
    for damaged in verdicts.iter().filter(|v| !v.intact) {
        let strategy = damaged.strategy;
        let newest = manifest.latest_regular(strategy);
        let Some(entry) = manifest.find(damaged.archive) else {
            fresh.push(strategy);
            continue;
        };
        let Some(newest) = newest.filter(|n| n.backup_file != entry.backup_file) else {
            fresh.push(strategy);
            continue;
        };
        let state = match verdicts.iter().find(|v| v.archive == newest.backup_file) {
            Some(v) if v.intact => "is intact".to_string(),
            Some(_) => "is damaged too".to_string(),
            None => format!(
                "was not checked here (`resbak verify {}` checks it)",
                newest.backup_file
            ),
        };
        printer.hint(format_args!(
            "{} is not the newest backup of {strategy}: the newest, {}, {state}; {}",
            entry.backup_file,
            newest.backup_file,
            prune_hint(manifest, entry)
        ));
    }
    fresh.sort_unstable();
    fresh.dedup();
    for strategy in fresh {
        let folder = results_dir.join(strategy);
        if check_strategy_name(strategy).is_ok() && folder.is_dir() {
            printer.hint(format_args!(
                "{} is still there: `resbak backup --always {strategy}` makes a fresh backup",
                folder.display()
            ));
        }
    }
}

/// How `prune` can remove `entry`, an older backup or a safety copy of its strategy.
fn prune_hint(manifest: &Manifest, entry: &Entry) -> String {
    let strategy = &entry.strategy;
    let mut same: Vec<(usize, &Entry)> = manifest
        .backups
        .iter()
        .enumerate()
        .filter(|(_, e)| e.strategy == *strategy && e.kind == entry.kind)
        .collect();
    same.sort_by_key(|&(i, e)| std::cmp::Reverse((e.created, i)));
    let newer = same
        .iter()
        .position(|(_, e)| e.backup_file == entry.backup_file)
        .unwrap_or(0);
    let (option, what) = match entry.kind {
        crate::manifest::Kind::Regular => ("--keep", "backups"),
        crate::manifest::Kind::Safety => ("--keep-safety", "safety copies"),
    };
    match newer {
        0 => format!(
            "`resbak prune` keeps {strategy}'s newest safety copy, so it removes {} once a \
             newer safety copy replaces it",
            entry.backup_file
        ),
        n => format!(
            "once it is no longer needed, `resbak prune {strategy} {option} {n}` removes it \
             with any older {what} of {strategy} (see what first with --dry-run)"
        ),
    }
}

/// Checks that `name` is a single plain folder name.
pub fn check_strategy_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None)
            if part == name && !name.contains(char::is_control) =>
        {
            Ok(())
        }
        _ => Err(Error::InvalidStrategy {
            name: name.to_string(),
        }),
    }
}

/// An archive named on the command line: its file and, if the manifest beside it knows it,
/// its entry.
pub struct Located {
    /// Path of the archive file.
    pub path: PathBuf,
    /// Its manifest entry, if any.
    pub entry: Option<Entry>,
    /// How it was picked when the command line named a strategy instead of an archive.
    pub picked: Option<Pick>,
}

/// A backup picked by strategy: `STRATEGY` (its newest regular backup) or `STRATEGY~N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The strategy named.
    pub strategy: String,
    /// How many regular backups before the newest: 0 for the newest.
    pub back: usize,
}

impl Display for Pick {
    /// `newest backup of btc` or `2 before the newest backup of btc`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.back {
            0 => write!(f, "newest backup of {}", self.strategy),
            n => write!(f, "{n} before the newest backup of {}", self.strategy),
        }
    }
}

impl Located {
    /// The archive's strategy: from its manifest entry, else its top folder; checked to be a
    /// plain name.
    pub fn strategy(&self) -> Result<String> {
        match &self.entry {
            Some(entry) => {
                check_strategy_name(&entry.strategy)?;
                Ok(entry.strategy.clone())
            }
            None => strategy_of(&self.path),
        }
    }

    /// The archive's file name, and how it was picked if a strategy named it:
    /// `btc_20261122_012255.tar.gz (newest backup of btc)`.
    pub fn describe(&self) -> String {
        let file = self.path.file_name().unwrap_or(self.path.as_os_str());
        match &self.picked {
            Some(pick) => format!("{} ({pick})", file.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// The strategy of the archive file at `path`: its top folder, checked to be a plain name.
pub fn strategy_of(path: &Path) -> Result<String> {
    let file = crate::archive::open_file(path)?;
    let strategy = crate::archive::top_folder(std::io::BufReader::new(file))
        .map_err(|e| Error::corrupt(path, e))?
        .ok_or_else(|| Error::corrupt(path, "the archive is empty"))?;
    check_strategy_name(&strategy)?;
    Ok(strategy)
}

/// Finds the archive `arg` names: a name from `list` (with or without `.tar.gz`) in the backup
/// folder, else a path. The entry comes from the manifest in the archive's own folder.
pub fn locate(ctx: &Context, arg: &str) -> Result<Located> {
    if let Some(located) = in_backup_folder(ctx, arg)? {
        return Ok(located);
    }
    match found_at(ctx, PathBuf::from(arg))? {
        Some(located) => Ok(located),
        None => Err(Error::UnknownBackup {
            name: arg.to_string(),
            dir: ctx.backup_dir.clone(),
        }),
    }
}

/// Finds the backup `arg` names for `restore` and `diff`, trying in turn:
///
/// 1. an archive name from `list` (with or without `.tar.gz`) in the backup folder, so an
///    archive name always wins over a strategy name;
/// 2. `STRATEGY`: the strategy's newest regular backup in the backup folder's manifest, or
///    `STRATEGY~N`: the Nth regular backup before that (`~0` is the newest, as in git).
///    Safety copies are never picked this way;
/// 3. a path to an archive file (any argument with a `/` is only ever a path).
///
/// # Errors
/// [`Error::BackupOutOfRange`] when `STRATEGY~N` goes past the oldest backup,
/// [`Error::NoRegularBackup`] when the strategy has only safety copies,
/// [`Error::MissingFolder`] when nothing matches and the backup folder does not exist, and
/// [`Error::UnknownName`] with close archive and strategy names when it does.
pub fn locate_backup(ctx: &Context, arg: &str) -> Result<Located> {
    if arg.contains('/') {
        return locate(ctx, arg);
    }
    if let Some(located) = in_backup_folder(ctx, arg)? {
        return Ok(located);
    }
    let manifest = Manifest::load(&ctx.backup_dir)?;
    if let Some(picked) = pick(ctx, &manifest, arg) {
        return picked;
    }
    if let Some(located) = found_at(ctx, PathBuf::from(arg))? {
        return Ok(located);
    }
    Err(unknown_name(arg, &manifest, &ctx.backup_dir))
}

/// `arg` as `STRATEGY` or `STRATEGY~N`: the name and N (0 without `~N`). An N too large to
/// count is as out of range as it looks.
fn split_pick(arg: &str) -> (&str, usize) {
    match arg.rsplit_once('~') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (name, n.parse().unwrap_or(usize::MAX))
        }
        _ => (arg, 0),
    }
}

/// The backup `arg` picks as `STRATEGY` or `STRATEGY~N`, or `None` when no catalogued backup
/// has that strategy.
fn pick(ctx: &Context, manifest: &Manifest, arg: &str) -> Option<Result<Located>> {
    let (strategy, back) = split_pick(arg);
    let sound = |e: &&Entry| e.strategy == strategy && e.is_sound();
    let catalogued = manifest.backups.iter().filter(sound).count();
    if catalogued == 0 {
        return None;
    }
    let regular: Vec<&Entry> = manifest
        .regular_newest_first(strategy)
        .into_iter()
        .filter(|e| e.is_sound())
        .collect();
    let dir = ctx.backup_dir.clone();
    let strategy = strategy.to_string();
    let Some(entry) = regular.get(back) else {
        return Some(Err(match regular.len() {
            0 => Error::NoRegularBackup {
                strategy,
                safety: catalogued,
                dir,
            },
            n => Error::BackupOutOfRange {
                name: arg.to_string(),
                strategy,
                regular: n,
                dir,
            },
        }));
    };
    Some(Ok(Located {
        path: ctx.backup_dir.join(&entry.backup_file),
        entry: Some((*entry).clone()),
        picked: Some(Pick { strategy, back }),
    }))
}

/// The error for a backup or strategy name nothing matches: the backup folder is missing, or
/// close archive and strategy names from the manifest (for `NAME~N`, close strategies with the
/// same `~N`).
pub fn unknown_name(name: &str, manifest: &Manifest, backup_dir: &Path) -> Error {
    if !backup_dir.is_dir() {
        return Error::missing_folder("backup", backup_dir);
    }
    let strategies = manifest.backups.iter().map(|e| e.strategy.clone());
    let known: Vec<String> = match name.rsplit_once('~') {
        Some((strategy, n)) if split_pick(name).0 == strategy => {
            strategies.map(|s| format!("{s}~{n}")).collect()
        }
        _ => {
            let stems = manifest
                .backups
                .iter()
                .filter_map(|e| e.backup_file.strip_suffix(".tar.gz"))
                .map(str::to_string);
            strategies.chain(stems).collect()
        }
    };
    unknown("backup or strategy", name, &known, backup_dir)
}

/// Checks that `name` is a plain strategy name and one of `known`; else
/// [`Error::UnknownName`] for it in `place`, with close names as suggestions.
pub fn check_known<S: AsRef<str>>(name: &str, known: &[S], place: &Path) -> Result<()> {
    check_strategy_name(name)?;
    if known.iter().any(|k| k.as_ref() == name) {
        return Ok(());
    }
    Err(unknown("strategy", name, known, place))
}

/// [`Error::UnknownName`]: no `what` named `name` in `place`, suggesting close names of `known`
/// (compared without a `.tar.gz` suffix).
fn unknown<S: AsRef<str>>(what: &'static str, name: &str, known: &[S], place: &Path) -> Error {
    Error::UnknownName {
        what,
        name: name.to_string(),
        dir: place.to_path_buf(),
        suggestions: suggest(name.strip_suffix(".tar.gz").unwrap_or(name), known),
    }
}

/// The archive `arg` names in the backup folder (`arg` or `arg.tar.gz`), if any; never for an
/// `arg` holding a `/`.
fn in_backup_folder(ctx: &Context, arg: &str) -> Result<Option<Located>> {
    if arg.contains('/') {
        return Ok(None);
    }
    for name in [arg.to_string(), format!("{arg}.tar.gz")] {
        if let Some(located) = found_at(ctx, ctx.backup_dir.join(name))? {
            return Ok(Some(located));
        }
    }
    Ok(None)
}

/// The archive at `path` if the manifest beside it lists it or the file exists. The backup
/// folder's manifest must load; a manifest beside an archive elsewhere is used only if it does
/// (a foreign or damaged one just leaves the archive uncatalogued).
fn found_at(ctx: &Context, path: PathBuf) -> Result<Option<Located>> {
    let dir = crate::atomic::parent_dir(&path);
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let manifest = match Manifest::load(dir) {
        Ok(manifest) => Some(manifest),
        Err(e) if same_dir(dir, &ctx.backup_dir) => return Err(e),
        Err(_) => None,
    };
    let entry = manifest.and_then(|m| file.and_then(|f| m.find(&f).cloned()));
    Ok((entry.is_some() || path.is_file()).then_some(Located {
        path,
        entry,
        picked: None,
    }))
}

/// Removes temp files and staging folders in `dir` whose owner died, and says so.
pub fn clean_leftovers(dir: &Path, printer: &mut Printer) -> Result<()> {
    for leftover in crate::atomic::remove_stale(dir)? {
        printer.warn(format_args!(
            "removed {} left by an interrupted run",
            leftover.display()
        ));
    }
    Ok(())
}

/// Mentions temp files and staging folders in `dir` that a killed run left behind, without
/// removing them (commands that write remove them).
pub fn warn_leftovers(dir: &Path, printer: &mut Printer) {
    for leftover in crate::atomic::find_leftovers(dir) {
        printer.warn(format_args!(
            "{} was left by an interrupted run; the next backup removes it",
            leftover.path.display()
        ));
    }
}

/// Says which folders in `results_dir` a restore replaced and kept: they are not backed up
/// as strategies.
pub fn note_replaced_copies(results_dir: &Path, printer: &mut Printer) {
    let Ok(entries) = std::fs::read_dir(results_dir) else {
        return;
    };
    for item in entries.flatten() {
        if item.file_type().is_ok_and(|t| t.is_dir()) && is_replaced_copy(&item.path()) {
            printer.warn(format_args!(
                "skipped {}: a folder replaced by a restore, kept as it was, not a strategy",
                item.path().display()
            ));
        }
    }
}

/// Whether two paths name the same existing folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Strategy folders present in `results_dir`, sorted.
///
/// # Errors
/// [`Error::MissingFolder`] when the folder does not exist; [`Error::Io`] when it cannot be read.
pub fn strategies(results_dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(results_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::missing_folder("results", results_dir));
        }
        other => other.at("read", results_dir)?,
    };
    let mut names = Vec::new();
    for item in entries {
        let item = item.at("read", results_dir)?;
        let name = item.file_name().to_string_lossy().into_owned();
        if item.file_type().is_ok_and(|t| t.is_dir()) && !set_aside(&item.path()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Whether the folder `path` in the results folder is no strategy: a staging folder resbak
/// made (see [`crate::atomic::is_own_folder`]) or a folder a restore replaced and kept (see
/// [`is_replaced_copy`]). Each is known by what resbak wrote, never by its name alone: any other
/// folder is a strategy, whatever it is called.
pub fn set_aside(path: &Path) -> bool {
    crate::atomic::is_own_folder(path) || is_replaced_copy(path)
}

/// Whether the folder `path` is `NAME.replaced-<time>`, a folder a restore replaced and kept:
/// its name says so and the marker restore writes beside it (see [`replaced_marker`]) is
/// there, a regular file holding exactly what restore writes into it.
pub fn is_replaced_copy(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let named = name
        .split_once(".replaced-")
        .is_some_and(|(strategy, time)| {
            !strategy.is_empty() && time.starts_with(|c: char| c.is_ascii_digit())
        });
    named
        && crate::atomic::open_no_follow(&replaced_marker(path), false)
            .and_then(|mut f| {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
            })
            .is_ok_and(|text| text == replaced_marker_text(name))
}

/// The marker file restore writes beside a replaced folder it keeps, `.NAME.replaced-<time>.resbak`
/// for the folder `NAME.replaced-<time>`. It lies beside the folder, not in it, so the folder
/// holds exactly what it held when it was replaced (and a backup of it holds nothing of
/// resbak's); being hidden and not named `NAME.replaced-...`, it is neither a strategy nor taken
/// for a kept folder.
pub fn replaced_marker(kept: &Path) -> PathBuf {
    let name = kept.file_name().unwrap_or_default().to_string_lossy();
    crate::atomic::parent_dir(kept).join(format!(".{name}.resbak"))
}

/// What the marker of the kept folder `name` holds: one line saying what the folder is.
pub fn replaced_marker_text(name: &str) -> String {
    format!("resbak: {name} is a folder a restore replaced, kept as it was; it is not a strategy\n")
}

/// The parts of a resbak archive name `<strategy>_<YYYYMMDD>_<HHMMSS>[_N].tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// The strategy.
    pub strategy: String,
    /// `YYYYMMDD_HHMMSS`, UTC.
    pub timestamp: String,
    /// The time in the name, plus N-1 nanoseconds for a `_N` suffix so same-second backups
    /// keep their order.
    pub created: DateTime<Utc>,
}

impl ArchiveName {
    /// Parses `file`, or `None` if it is not a resbak archive name.
    pub fn parse(file: &str) -> Option<ArchiveName> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let stem = file.strip_suffix(".tar.gz")?;
        let (stem, n) = match stem.rsplit_once('_') {
            Some((head, n)) if (1..6).any(|len| digits(n, len)) => (head, n.parse::<u32>().ok()?),
            _ => (stem, 1),
        };
        let (rest, time) = stem.rsplit_once('_')?;
        let (strategy, date) = rest.rsplit_once('_')?;
        if !(digits(date, 8) && digits(time, 6)) || strategy.is_empty() {
            return None;
        }
        let timestamp = format!("{date}_{time}");
        let naive = NaiveDateTime::parse_from_str(&timestamp, "%Y%m%d_%H%M%S").ok()?;
        let created = naive.and_utc() + chrono::Duration::nanoseconds(i64::from(n.max(1) - 1));
        Some(ArchiveName {
            strategy: strategy.to_string(),
            timestamp,
            created,
        })
    }
}

/// Every `.tar.gz` file in `dir` with its size, sorted by name; empty if `dir` does not exist.
pub fn archive_files(dir: &Path) -> Result<Vec<(String, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.at("read", dir)?,
    };
    let mut found = Vec::new();
    for item in entries {
        let item = item.at("read", dir)?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tar.gz") && item.file_type().is_ok_and(|t| t.is_file()) {
            found.push((name, item.metadata().map_or(0, |m| m.len())));
        }
    }
    found.sort();
    Ok(found)
}

/// Up to three of `candidates` close to `name` (edit distance at most a third of its length,
/// at least 1), closest first, for "did you mean" hints.
pub fn suggest<S: AsRef<str>>(name: &str, candidates: &[S]) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(1);
    let mut close: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (edit_distance(name, c.as_ref()), c.as_ref()))
        .filter(|&(d, c)| d <= limit && c != name)
        .collect();
    close.sort();
    close.dedup();
    close
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Levenshtein distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `bytes` as a human-readable size.
pub fn human_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_parsed_back() {
        let parsed = ArchiveName::parse("btc_sma_cross_20261122_004306_2.tar.gz").unwrap();
        assert_eq!(parsed.strategy, "btc_sma_cross");
        assert_eq!(parsed.timestamp, "20261122_004306");
        assert_eq!(
            parsed.created.to_rfc3339(),
            "2026-11-22T00:43:06.000000001+00:00"
        );
        let plain = ArchiveName::parse("eth_20261122_004306.tar.gz").unwrap();
        assert_eq!(plain.strategy, "eth");
        assert!(plain.created < parsed.created);
        assert_eq!(ArchiveName::parse("random.tar.gz"), None);
        assert_eq!(
            ArchiveName::parse("s_20261399_004306.tar.gz"),
            None,
            "not a date"
        );
    }

    /// Fails every write with `kind`, counting the attempts.
    struct Broken(std::io::ErrorKind, usize);

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.1 += 1;
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn report_and_problem_lines_escape_control_characters() {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out);
        printer
            .line("Removed old backup: a\nRemoved old backup: b")
            .unwrap();
        printer.problem("FAILED  x\x1b[2J\ry.tar.gz").unwrap();
        assert!(printer.finish().is_none());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Removed old backup: a\\nRemoved old backup: b\nFAILED  x\\u{1b}[2J\\ry.tar.gz\n"
        );
    }

    #[test]
    fn colour_codes_pass_only_when_colour_is_on() {
        let ui = Ui {
            color: true,
            ..Ui::default()
        };
        let mut out = Vec::new();
        let mut printer = Printer::with_ui(&mut out, ui);
        let ok = printer.paint("OK", true);
        printer.line(format_args!("{ok} a\x1b[2Jb")).unwrap();
        drop(printer);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\x1b[32mOK\x1b[0m a\\u{1b}[2Jb\n");
    }

    #[test]
    fn warnings_escape_control_characters() {
        assert_eq!(
            warning_line("removed a\nresbak: all good"),
            "resbak: warning: removed a\\nresbak: all good"
        );
    }

    #[test]
    fn a_broken_stdout_is_remembered_and_later_lines_dropped() {
        let mut out = Broken(std::io::ErrorKind::BrokenPipe, 0);
        let mut printer = Printer::new(&mut out);
        printer.line("one").unwrap();
        printer.problem("two").unwrap();
        let broken = printer.finish().expect("the failure is reported");
        assert_eq!(broken.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(out.1, 1, "nothing is written after the break");
    }

    #[test]
    fn suggestions_are_close_names_closest_first() {
        let names = ["btc_sma_cross", "btc_sma_crash", "eth_rsi", "btc_sma_cross"];
        assert_eq!(
            suggest("btc_sma_cros", &names),
            ["btc_sma_cross", "btc_sma_crash"]
        );
        assert_eq!(suggest("eth_rs", &names), ["eth_rsi"]);
        assert!(suggest("zzz", &names).is_empty());
        assert!(
            suggest("eth_rsi", &names).is_empty(),
            "an exact name is no hint"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_names_suggest_close_known_ones() {
        let place = Path::new("backups");
        assert!(check_known("btc", &["eth", "btc"], place).is_ok());
        let err = check_known("btcc", &["eth", "btc"], place).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownName { what: "strategy", suggestions, .. } if suggestions == &["btc"]),
            "{err:?}"
        );
        assert!(matches!(
            check_known("a/b", &["a/b"], place),
            Err(Error::InvalidStrategy { .. })
        ));
        let mut manifest = Manifest::default();
        let dir = tempfile::tempdir().unwrap();
        let entry: Entry = serde_yaml::from_str(
            "{strategy: btc, timestamp: '20261122_012255', backup_file: btc_20261122_012255.tar.gz, \
             size: 1, sha256: x, files: 1, bytes: 1, created: '2026-11-22T01:22:55Z'}",
        )
        .unwrap();
        manifest.backups.push(entry);
        let hint = |name: &str| match unknown_name(name, &manifest, dir.path()) {
            Error::UnknownName { suggestions, .. } => suggestions,
            other => panic!("{other:?}"),
        };
        assert_eq!(hint("btd~2"), ["btc~2"]);
        assert_eq!(hint("btc_20261122_012256.tar.gz"), ["btc_20261122_012255"]);
        assert!(matches!(
            unknown_name("btd", &manifest, &dir.path().join("none")),
            Error::MissingFolder { what: "backup", .. }
        ));
    }

    #[test]
    fn strategy_names_must_be_one_plain_component() {
        assert!(check_strategy_name("btc_sma_cross").is_ok());
        assert!(check_strategy_name(".hidden").is_ok());
        for bad in [
            "", ".", "..", "a/b", "/abs", "a/", "./a", "a\0b", "a\nb", "a\tb",
        ] {
            assert!(check_strategy_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
