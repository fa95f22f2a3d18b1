//! One module per subcommand. Each takes plain option structs (no clap types), does its work
//! through the library modules, and reports through a [`Printer`].

pub mod adopt;
pub mod backup;
pub mod browse;
pub mod config;
pub mod diff;
pub mod file;
pub mod key;
pub mod list;
pub mod metrics;
pub mod prune;
pub mod pull;
pub mod push;
pub mod reindex;
pub mod report;
pub mod restore;
pub mod show;
pub mod tag;
pub mod verify;

mod locate;
mod printer;

pub use locate::{
    ArchiveName, Located, Pick, check_known, check_strategy_name, locate, locate_backup,
    strategy_of, suggest, unknown_name,
};
pub use printer::{Printer, Ui, Verdict, hint_after_check, warn};

use crate::error::{Error, IoContext, Result};
use crate::manifest::Manifest;
pub use crate::manifest::archive_files;
use std::path::{Path, PathBuf};

/// Where results and backups live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Folder holding one sub-folder per strategy.
    pub results_dir: PathBuf,
    /// Folder holding the archives and `manifest.yaml`.
    pub backup_dir: PathBuf,
}

/// How a command that ran to its end turned out; later variants are worse (`max` is the worse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Everything asked for was done and found intact.
    Clean,
    /// The command ran, but a check found missing or damaged data.
    ProblemsFound,
    /// The command ran to its end, but part of it failed and was reported.
    Incomplete,
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

/// Warns that the index the manifest records for an archive cannot serve (`why`, from
/// [`crate::index::unusable`]), so the whole archive was read instead, with the way out.
pub(crate) fn warn_unusable_index(why: &str) {
    warn(format_args!(
        "{why}; read the whole archive instead; resbak reindex builds the index again"
    ));
}

/// The manifest of `dir` with each entry's metrics (see [`Manifest::attach_metrics`]), and
/// whether all could be given: those that could not are a warning, and their entries are then
/// without.
pub fn load_with_metrics(dir: &Path, printer: &mut Printer) -> Result<(Manifest, bool)> {
    let mut manifest = Manifest::load(dir)?;
    let attached = manifest.attach_metrics(dir);
    if let Err(why) = &attached {
        warn_no_metrics(why, printer);
    }
    Ok((manifest, attached.is_ok()))
}

/// Gives a located archive's entry its metrics, as [`load_with_metrics`] does.
pub fn attach_metrics(located: &mut Located, printer: &mut Printer) {
    let dir = crate::atomic::parent_dir(&located.path);
    if let Some(entry) = located.entry.as_mut()
        && let Err(why) = crate::manifest::metrics::attach(dir, std::slice::from_mut(entry))
    {
        warn_no_metrics(&why, printer);
    }
}

fn warn_no_metrics(why: &str, printer: &mut Printer) {
    printer.warn(format_args!(
        "{why}; shown without metrics; resbak metrics --refresh reads them again from the archives"
    ));
}

/// What `list` calls the catalogued `entry` of the backup folder `dir` when that is `missing`
/// or `failed`: whether it is missing, and a line naming the problem. `None` otherwise, and for
/// a damaged index alone (reading finds that out). Checks only what is cheap: the file's
/// presence and size, and the recorded verify result.
pub(crate) fn known_damage(dir: &Path, entry: &crate::manifest::Entry) -> Option<(bool, String)> {
    let checks = list::recorded_checks(dir);
    let check = checks.of(entry).filter(|c| !c.found_missing());
    let file = &entry.backup_file;
    match list::local_status(dir, entry, check) {
        ("missing", _) => Some((true, format!("{file} is missing from {}", dir.display()))),
        ("failed", problem) => Some((
            false,
            format!(
                "{file} is damaged ({})",
                problem.as_deref().unwrap_or("its last verify failed")
            ),
        )),
        _ => None,
    }
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

/// Prefix of the note a `restore --include` leaves beside the folder it merges into, while it
/// merges (see `restore`): the folder's name follows.
const MERGE_NOTE_PREFIX: &str = ".resbak-merging-";

/// What a merge note records: the restore that was merging, and what holds the folder as it
/// was before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergeNote {
    /// The safety copy (or backup) that holds the folder as it was, if anything does.
    pub before: Option<String>,
    /// The archive being restored.
    pub archive: String,
    /// Its `--include` patterns.
    pub include: Vec<String>,
}

impl MergeNote {
    /// The merge note for the folder `dest`.
    pub(crate) fn path(dest: &Path) -> std::path::PathBuf {
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        crate::atomic::parent_dir(dest).join(format!("{MERGE_NOTE_PREFIX}{name}"))
    }

    /// The note beside `dest`, if there is one that reads.
    pub(crate) fn read(dest: &Path) -> Option<MergeNote> {
        Self::parse(&std::fs::read_to_string(Self::path(dest)).ok()?)
    }

    fn parse(text: &str) -> Option<MergeNote> {
        let mut note = MergeNote {
            before: None,
            archive: String::new(),
            include: Vec::new(),
        };
        for line in text.lines() {
            match line.split_once(": ")? {
                ("before", v) => note.before = Some(v.to_string()),
                ("archive", v) => note.archive = v.to_string(),
                ("include", v) => note.include.push(v.to_string()),
                _ => {}
            }
        }
        (!note.archive.is_empty()).then_some(note)
    }

    /// The note as written.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Some(before) = &self.before {
            text += &format!("before: {before}\n");
        }
        text += &format!("archive: {}\n", self.archive);
        for pattern in &self.include {
            text += &format!("include: {pattern}\n");
        }
        text
    }

    /// The command that finishes the merge into `dest`.
    fn command(&self, dest: &Path) -> String {
        let quote = |s: &str| crate::error::shell_quoted(s);
        let mut command = format!(
            "resbak restore {} --to {}",
            quote(&self.archive),
            quote(&dest.display().to_string())
        );
        for pattern in &self.include {
            command += &format!(" --include {}", quote(pattern));
        }
        command + " --force"
    }
}

/// Warns of every folder in `dir` that a `restore --include` was merging into when it was
/// killed: part of it is restored, part is as it was.
pub fn warn_half_merged(dir: &Path, printer: &mut Printer) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for item in entries.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(folder) = name.strip_prefix(MERGE_NOTE_PREFIX) else {
            continue;
        };
        let dest = dir.join(folder);
        let Some(note) = MergeNote::read(&dest) else {
            printer.warn(format_args!(
                "{} may be part restored: {} is a note of an interrupted restore --include that \
                 does not read; check the folder, then remove the note",
                dest.display(),
                item.path().display()
            ));
            continue;
        };
        let before = match &note.before {
            Some(copy) => format!("{copy} holds it as it was before"),
            None => "nothing held it before".to_string(),
        };
        printer.warn(format_args!(
            "{} is part restored: a restore --include into it was interrupted ({before}); `{}` \
             finishes it",
            dest.display(),
            note.command(&dest)
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
pub(crate) fn same_dir(a: &Path, b: &Path) -> bool {
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
    crate::atomic::is_own_folder(path) || is_replaced_copy(path) || is_aside(path)
}

/// Prefix of the folder a replaced destination waits in while a `--force` restore swaps folders.
pub const ASIDE_PREFIX: &str = ".resbak-replaced-";

/// The marker file restore writes into that folder (beside `old/`, the replaced folder).
pub const ASIDE_MARKER: &str = ".resbak-aside";

/// Whether `path` is a folder a `--force` restore moved the replaced destination into: named
/// [`ASIDE_PREFIX`]..., a real folder (no link followed), holding the [`ASIDE_MARKER`] file.
/// One left by a killed restore holds the user's old folder: it is reported, never a strategy.
pub fn is_aside(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(ASIDE_PREFIX));
    named
        && crate::atomic::open_no_follow(path, true).is_ok()
        && crate::atomic::open_no_follow(&path.join(ASIDE_MARKER), false)
            .and_then(|f| f.metadata())
            .is_ok_and(|m| m.is_file())
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

/// Warns when `dir` holds archive files `manifest` does not list (one cut short or edited by
/// hand still parses; as `list` finds them), adding `so` to what the warning says of them.
/// A folder that cannot be read is said instead: it never fails the command.
pub fn warn_untracked(
    dir: &Path,
    manifest: &crate::manifest::Manifest,
    so: &str,
    printer: &mut Printer,
) -> usize {
    warn_untracked_of(dir, manifest, None, so, printer)
}

/// Warns, for a backup `arg` picked by strategy (`STRATEGY` or `STRATEGY~N`), when the backup
/// folder holds archives of that strategy its manifest does not list: one may be newer than the
/// pick. Nothing for an archive named by its file.
pub fn warn_untracked_pick(ctx: &Context, located: &Located, arg: &str, printer: &mut Printer) {
    let Some(pick) = &located.picked else {
        return;
    };
    if let Ok(manifest) = crate::manifest::Manifest::load(&ctx.backup_dir) {
        let so = format!(", so not among the backups `{arg}` picks from");
        warn_untracked_of(
            &ctx.backup_dir,
            &manifest,
            Some(&pick.strategy),
            &so,
            printer,
        );
    }
}

/// [`warn_untracked`] for the archives `list` counts as of `strategy` (by their name), or all.
pub fn warn_untracked_of(
    dir: &Path,
    manifest: &crate::manifest::Manifest,
    strategy: Option<&str>,
    so: &str,
    printer: &mut Printer,
) -> usize {
    let untracked = match list::untracked(dir, manifest) {
        Ok(files) => files
            .iter()
            .filter(|(file, _)| {
                strategy.is_none_or(|s| ArchiveName::parse(file).is_some_and(|n| n.strategy == s))
            })
            .count(),
        Err(e) => {
            printer.warn(format_args!("{}", crate::error::chain(&e)));
            return 0;
        }
    };
    if untracked > 0 {
        let (verb, them) = if untracked == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        let of = strategy.map(|s| format!(" of {s}")).unwrap_or_default();
        printer.warn(format_args!(
            "{}{of} in {} {verb} not catalogued (not in its manifest){so}: `resbak list` shows \
             {them}, `resbak reindex` catalogues {them} (move one it cannot add out of the \
             folder); until then manifest.yaml.bak is kept as it is",
            crate::error::count(untracked as u64, "archive", "archives"),
            dir.display(),
        ));
    }
    untracked
}

/// `bytes` as a human-readable size.
pub fn human_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// `path` made absolute with every link resolved: its nearest existing ancestor canonicalised,
/// the rest (which does not exist yet, so holds no links) appended with `..` applied.
pub(crate) fn resolved(path: &Path) -> crate::error::Result<std::path::PathBuf> {
    let absolute = std::path::absolute(path).at("resolve", path)?;
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    let base = loop {
        match existing.canonicalize() {
            Ok(base) => break base,
            Err(_) => match existing.parent() {
                Some(parent) => {
                    missing.push(existing.components().next_back());
                    existing = parent;
                }
                None => break existing.to_path_buf(),
            },
        }
    };
    let mut out = base;
    for part in missing.into_iter().rev().flatten() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::MergeNote;

    #[test]
    fn a_merge_note_reads_back_as_written() {
        let note = MergeNote {
            before: Some("s_20260101_000000.safety.tar.gz".into()),
            archive: "s_20260101_000000.tar.gz".into(),
            include: vec!["runs/*/metrics.json".into(), "a: b".into()],
        };
        assert_eq!(MergeNote::parse(&note.render()), Some(note.clone()));
        let none_before = MergeNote {
            before: None,
            ..note
        };
        assert_eq!(MergeNote::parse(&none_before.render()), Some(none_before));
        assert_eq!(MergeNote::parse("not a note"), None);
    }
}
