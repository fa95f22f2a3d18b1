//! The library's one error type.
//!
//! Each variant names the path, archive or entry involved and reads as a sentence; the underlying
//! cause, when there is one, is reachable through `source()` so the binary can print the chain.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong inside resbak.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a path failed.
    #[error("cannot {action} {}", printable(path.display()))]
    Io {
        /// What was being done, as a verb phrase ("read", "create folder", ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A strategy name that is not a single plain folder name.
    #[error(
        "invalid strategy name {name:?}: it must be a single folder name (no '/', '..', control characters or empty)"
    )]
    InvalidStrategy {
        /// The name given.
        name: String,
    },

    /// The strategy folder does not exist.
    #[error("no strategy {name:?} in {}; {}", printable(dir.display()), available_list(available))]
    UnknownStrategy {
        /// The name given.
        name: String,
        /// The results folder searched.
        dir: PathBuf,
        /// Strategy folders that do exist.
        available: Vec<String>,
    },

    /// The strategy folder holds nothing to back up.
    #[error("results folder {} is empty: nothing to back up", printable(path.display()))]
    EmptyResults {
        /// The empty folder.
        path: PathBuf,
    },

    /// The strategy folder is a symbolic link: its target's top folder would not be the
    /// strategy's, so it is refused rather than archived as a link.
    #[error("cannot back up {}: it is a symbolic link to {}, not a folder; resbak backs up the folders in the results folder (move the folder there, or point --results-dir at the folder that holds it)", printable(path.display()), printable(target.display()))]
    LinkedStrategy {
        /// The link in the results folder.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },

    /// `backup --all` found no strategy folder in the results folder.
    #[error("results folder {} holds no strategy folder: nothing to back up", printable(path.display()))]
    NoStrategies {
        /// The results folder.
        path: PathBuf,
    },

    /// The manifest exists but cannot be understood; it is left untouched.
    #[error("manifest {} is damaged{}: {} (it was not modified); {}", printable(path.display()), at_line(*line), printable(message), manifest_hint(path))]
    ManifestParse {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// What the parser said.
        message: String,
    },

    /// An archive or backup name the manifest does not know and no file matches.
    #[error("no backup named {name:?} in {}{}", printable(dir.display()), if name.contains('/') { ", and no such file" } else { "" })]
    UnknownBackup {
        /// The name given.
        name: String,
        /// The backup folder searched.
        dir: PathBuf,
    },

    /// An archive's bytes do not match what was recorded, or it cannot be decoded.
    #[error("archive {} is corrupt: {}", printable(path.display()), printable(detail))]
    Corrupt {
        /// The archive file.
        path: PathBuf,
        /// What exactly is wrong.
        detail: String,
    },

    /// A catalogued archive whose file is gone.
    #[error("archive {} is missing (the manifest lists it)", printable(path.display()))]
    Missing {
        /// The archive file.
        path: PathBuf,
    },

    /// An archive entry that would write outside the destination or is not allowed.
    #[error("refusing archive entry {entry:?}: {}", printable(reason))]
    UnsafeEntry {
        /// The entry's path as stored in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },

    /// An exclude pattern that is not a valid glob.
    #[error("invalid glob pattern {glob:?}: {}", printable(message))]
    InvalidGlob {
        /// The pattern.
        glob: String,
        /// What is wrong with it.
        message: String,
    },

    /// A keep count of zero, which would remove the newest backup.
    #[error("keep must be at least 1: the newest backup of a strategy is never removed")]
    InvalidKeep,

    /// The configuration file is missing or invalid.
    #[error("configuration {}: {}", printable(path.display()), printable(message))]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The results hold something a restore would refuse, such as a link pointing outside.
    #[error("cannot back up {}: entry {entry:?} would be refused on restore: {}", printable(path.display()), printable(reason))]
    Unrestorable {
        /// The results folder.
        path: PathBuf,
        /// The entry as stored.
        entry: String,
        /// Why restore would refuse it.
        reason: String,
    },

    /// A folder to back up that holds the backup folder: each backup would hold the ones before.
    #[error("cannot back up {}: it holds the backup folder {}; keep backups outside the results (--backup-dir)", printable(path.display()), printable(backup_dir.display()))]
    SourceHoldsBackups {
        /// The folder to back up.
        path: PathBuf,
        /// The backup folder inside it.
        backup_dir: PathBuf,
    },

    /// A restore destination already exists and `--force` was not given.
    #[error("{} already exists; use --force to back it up and {}", printable(path.display()), if *merging { "merge what --include picks into it" } else { "replace it" })]
    DestinationExists {
        /// The destination folder.
        path: PathBuf,
        /// Whether the restore merges (`--include`) rather than replaces.
        merging: bool,
    },

    /// An object store could not be reached or refused a request (credentials, bucket, network).
    #[error("remote {}: {}", printable(remote), printable(message))]
    Remote {
        /// The remote's name from `resbak.toml`.
        remote: String,
        /// What went wrong, as one line.
        message: String,
    },

    /// An age key that is missing, unreadable, or does not open an encrypted copy.
    #[error("{}", printable(message))]
    Key {
        /// What is wrong, naming the key's origin and the object.
        message: String,
    },

    /// A remote object that another push created first; nothing was replaced.
    #[error("{} was created by another push meanwhile; nothing was replaced (check it with resbak verify --remote)", printable(path.display()))]
    Taken {
        /// The object's URL.
        path: PathBuf,
    },

    /// A restore destination that would overlap what the restore reads or keeps, or that the
    /// archive does not clearly name.
    #[error("refusing to restore into {}: {}", printable(path.display()), printable(reason))]
    UnsafeDestination {
        /// The destination folder.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },

    /// An `--include` (or `ls`) pattern that matches nothing in the archive.
    #[error("{what} {pattern:?} matches nothing in archive {}{}", printable(path.display()), meant_hint(meant.as_ref()))]
    NotInArchive {
        /// What the pattern was given as: `--include`, `pattern`.
        what: &'static str,
        /// The pattern.
        pattern: String,
        /// The archive file.
        path: PathBuf,
        /// The pattern the user likely meant, when that matches.
        meant: Option<Meant>,
    },

    /// A path `cat` was asked for that is not a file in the archive.
    #[error("{} in archive {}: {reason}", printable(entry), printable(path.display()))]
    NotAFile {
        /// The path asked for, relative to the strategy folder.
        entry: String,
        /// The archive file.
        path: PathBuf,
        /// What it is instead.
        reason: &'static str,
    },

    /// A single file has no copies to restore from.
    #[error("there are no backups of {} in {}", printable(path.display()), printable(dir.display()))]
    NoFileBackups {
        /// The file.
        path: PathBuf,
        /// The folder searched for its copies.
        dir: PathBuf,
    },

    /// A copy of a single file whose bytes no longer match the SHA-256 its folder recorded.
    #[error("copy {} is damaged: {}", printable(path.display()), printable(detail))]
    DamagedCopy {
        /// The copy.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },

    /// A single file that changed while it was copied, on every attempt; no copy was kept.
    #[error("{} changed while it was copied, {attempts} times in a row; nothing was kept; try again when the program writing it is done", printable(path.display()))]
    ChangedWhileCopied {
        /// The file.
        path: PathBuf,
        /// How many copies were tried.
        attempts: u32,
    },

    /// No copy of a single file is intact and passes its content check (for JSON, parses).
    #[error("none of the {copies} copies of {} in {} is intact and parses; name one (see `resbak file list`) or take the newest with --exact", printable(path.display()), printable(dir.display()))]
    NoGoodCopy {
        /// The file.
        path: PathBuf,
        /// Its copies folder.
        dir: PathBuf,
        /// How many copies there are.
        copies: usize,
    },

    /// A global option that `resbak file` does not use.
    #[error("{option} does not apply to `resbak file`: copies go to backups/ beside the file")]
    NotForFile {
        /// The option, as typed.
        option: &'static str,
    },

    /// A comparison (`diff`) that could not be made, whatever the cause, even a damaged archive:
    /// exit code 2, as for diff(1). Shows the cause's message.
    #[error(transparent)]
    Uncompared(Box<Error>),

    /// A results or backup folder that does not exist.
    #[error("{what} folder {} does not exist", printable(path.display()))]
    MissingFolder {
        /// Which folder: "results" or "backup".
        what: &'static str,
        /// The folder.
        path: PathBuf,
    },

    /// A name that matches nothing in the catalogue, with close names that do.
    #[error("no {what} named {name:?} in {}{}", printable(dir.display()), did_you_mean(suggestions))]
    UnknownName {
        /// What was looked for ("strategy", "backup or strategy").
        what: &'static str,
        /// The name given.
        name: String,
        /// The folder (or remote) searched.
        dir: PathBuf,
        /// Close names that exist, best first.
        suggestions: Vec<String>,
    },

    /// A strategy named for restore or diff whose catalogued backups are all safety copies.
    #[error(
        "strategy {strategy:?} has no regular backup in {}, only {}; name one by its archive name (see `resbak list`)",
        printable(dir.display()),
        count(*safety, "safety copy", "safety copies")
    )]
    NoRegularBackup {
        /// The strategy.
        strategy: String,
        /// How many safety copies it has.
        safety: usize,
        /// The backup folder.
        dir: PathBuf,
    },

    /// `STRATEGY~N` asking for more backups before the newest than the strategy has.
    #[error(
        "{} is out of range: strategy {strategy:?} has {} in {} ({})",
        printable(name),
        count(*regular, "regular backup", "regular backups"),
        printable(dir.display()),
        tilde_range(*regular)
    )]
    BackupOutOfRange {
        /// The name given, `STRATEGY~N`.
        name: String,
        /// The strategy.
        strategy: String,
        /// How many regular backups it has.
        regular: usize,
        /// The backup folder.
        dir: PathBuf,
    },

    /// A tag, metric name or other argument about the catalogue that cannot be used.
    #[error("{}", printable(message))]
    InvalidArgument {
        /// What is wrong with it.
        message: String,
    },

    /// An error with what to do next, said after it (the command line prints it as a
    /// `resbak: hint:` line). Its kind and exit code are the error's.
    #[error("{error}")]
    Hinted {
        /// The error.
        #[source]
        error: Box<Error>,
        /// What to do next.
        hint: String,
    },
}

impl Error {
    /// Builds an [`Error::MissingFolder`]: the `what` folder ("results" or "backup") at `path`
    /// does not exist.
    pub fn missing_folder(what: &'static str, path: impl Into<PathBuf>) -> Self {
        Error::MissingFolder {
            what,
            path: path.into(),
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Corrupt`] for the archive at `path`.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.to_string(),
        }
    }

    /// A stable snake_case name for the kind of error, as in the `--json` error object.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Hinted { error, .. } => error.kind(),
            Error::Io { .. } => "io",
            Error::InvalidStrategy { .. } => "invalid_strategy",
            Error::UnknownStrategy { .. } => "unknown_strategy",
            Error::EmptyResults { .. } | Error::NoStrategies { .. } => "empty_results",
            Error::LinkedStrategy { .. } => "linked_strategy",
            Error::ManifestParse { .. } => "damaged_manifest",
            Error::UnknownBackup { .. } => "unknown_backup",
            Error::Corrupt { .. } => "corrupt",
            Error::Missing { .. } => "missing",
            Error::UnsafeEntry { .. } => "unsafe_entry",
            Error::InvalidGlob { .. } => "invalid_glob",
            Error::InvalidKeep => "invalid_keep",
            Error::Config { .. } => "config",
            Error::Unrestorable { .. } => "unrestorable",
            Error::SourceHoldsBackups { .. } => "source_holds_backups",
            Error::DestinationExists { .. } => "destination_exists",
            Error::Remote { .. } => "remote",
            Error::Key { .. } => "key",
            Error::Taken { .. } => "taken",
            Error::NoFileBackups { .. } => "no_file_backups",
            Error::DamagedCopy { .. } => "damaged_copy",
            Error::NoGoodCopy { .. } => "no_good_copy",
            Error::ChangedWhileCopied { .. } => "changed_while_copied",
            Error::NotForFile { .. } => "usage",
            Error::UnsafeDestination { .. } => "unsafe_destination",
            Error::NotInArchive { .. } => "not_in_archive",
            Error::NotAFile { .. } => "not_a_file",
            Error::Uncompared(inner) => inner.kind(),
            Error::MissingFolder { .. } => "missing_folder",
            Error::UnknownName { .. } => "unknown_name",
            Error::NoRegularBackup { .. } => "no_regular_backup",
            Error::BackupOutOfRange { .. } => "backup_out_of_range",
            Error::InvalidArgument { .. } => "invalid_argument",
        }
    }

    /// True when the error means stored data is damaged or hostile, or a file changed under
    /// its copy (exit code 1), as opposed to a usage or operational problem (exit code 2).
    pub fn is_data_problem(&self) -> bool {
        if let Error::Hinted { error, .. } = self {
            return error.is_data_problem();
        }
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::Taken { .. }
                | Error::UnsafeEntry { .. }
                | Error::Missing { .. }
                | Error::NotInArchive { .. }
                | Error::DamagedCopy { .. }
                | Error::NoGoodCopy { .. }
                | Error::ChangedWhileCopied { .. }
                | Error::NotAFile { .. }
        )
    }
}

/// `text` with control characters (newlines, terminal escapes) written as escapes, so a message
/// stays on one line and shows exactly what a name from an archive holds.
pub fn printable(text: impl std::fmt::Display) -> String {
    printable_keeping(&text.to_string(), &[])
}

/// `text` in single quotes for a POSIX shell (a quote inside closed, escaped, reopened), made
/// [`printable`]: an option value a hint suggests to type.
pub fn shell_quoted(text: &str) -> String {
    format!("'{}'", printable(text.replace('\'', "'\\''")))
}

/// [`printable`], except that the exact sequences in `keep` (such as colour codes the program
/// itself added) are passed through.
pub fn printable_keeping(text: &str, keep: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    push_printable_keeping(&mut out, text, keep);
    out
}

/// Appends [`printable_keeping`]`(text, keep)` to `out`.
pub fn push_printable_keeping(out: &mut String, text: &str, keep: &[&str]) {
    // No C0 control, DEL, or lead byte of a C1 control (U+0080..U+009F): nothing to escape.
    if !text.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        out.push_str(text);
        return;
    }
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(code) = keep.iter().find(|code| rest.starts_with(**code)) {
            out.push_str(code);
            rest = &rest[code.len()..];
            continue;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
}

/// ` at line N`, or nothing when the line is not known (0).
fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        n => format!(" at line {n}"),
    }
}

/// The next step for a damaged manifest: the previous version, when kept, or a rebuild.
fn manifest_hint(path: &std::path::Path) -> String {
    let previous = path.with_extension("yaml.bak");
    if previous.is_file() {
        format!(
            "correct it by hand, or copy the previous version {} over it (it lacks the latest \
             changes: a tag, note or pin set since may be missing), or rebuild it with `resbak \
             reindex`",
            printable(previous.display())
        )
    } else {
        "correct it by hand, or rebuild it from the archives with `resbak reindex`".to_string()
    }
}

fn available_list(names: &[String]) -> String {
    if names.is_empty() {
        "there are no strategy folders yet".to_string()
    } else {
        format!("available: {}", printable(names.join(", ")))
    }
}

/// `error` and its causes, `: `-separated, on one line. A cause whose text already ends the
/// line is left out: a wrapper that shows its cause's text (as an I/O error made from another
/// error does) would otherwise repeat it.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// `1 thing` or `N things` (`0 things` too).
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    if n == N::from(1) {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Which `~N` a strategy with `regular` regular backups has: `~0` up to the oldest.
fn tilde_range(regular: usize) -> String {
    match regular {
        0 | 1 => "~0 is the only one".to_string(),
        n => format!("~0 is the newest, ~{} the oldest", n - 1),
    }
}

/// `; did you mean "a" or "b"?`, or nothing without suggestions.
pub fn did_you_mean(suggestions: &[String]) -> String {
    let quoted: Vec<String> = suggestions.iter().map(|s| format!("{s:?}")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

/// A pattern that matches where the one given did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meant {
    /// The pattern.
    pub pattern: String,
    /// It is the one given with its glob characters escaped (else: made relative to the
    /// strategy folder).
    pub literal: bool,
}

/// `; paths are relative to the strategy folder: did you mean runs/x?` (or, for a literal
/// name, that glob characters need escaping) for `meant`, if any.
fn meant_hint(meant: Option<&Meant>) -> String {
    meant.map_or_else(String::new, |m| {
        let why = match m.literal {
            true => "glob characters ([ ] * ? { }) match a name only when escaped",
            false => "paths are relative to the strategy folder",
        };
        format!("; {why}: did you mean {}?", printable(&m.pattern))
    })
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds path context to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps an I/O error to [`Error::Io`] naming `action` and `path`.
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_control_characters_in_names() {
        let err = Error::io(
            "remove",
            "backups/a\nresbak: ok",
            io::ErrorKind::NotFound.into(),
        );
        assert_eq!(err.to_string(), "cannot remove backups/a\\nresbak: ok");
        let err = Error::UnknownStrategy {
            name: "x".into(),
            dir: "r".into(),
            available: vec!["a\x1b[2J".into()],
        };
        assert!(err.to_string().ends_with("available: a\\u{1b}[2J"), "{err}");
    }

    /// Shows its cause's text as its own, as an I/O error made from a folder-walk error does.
    #[derive(Debug)]
    struct Showing(io::Error);

    impl std::fmt::Display for Showing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl std::error::Error for Showing {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_shown_once() {
        let denied = || io::Error::from_raw_os_error(13);
        let wrapped = io::Error::new(io::ErrorKind::PermissionDenied, Showing(denied()));
        let err = Error::io("read", "results/s/runs", wrapped);
        let expected = format!("cannot read results/s/runs: {}", denied());
        assert_eq!(chain(&err), expected);
        let plain = Error::io("read", "results/s/runs", denied());
        assert_eq!(chain(&plain), expected);
        let other = io::Error::other(Showing(io::Error::other("disk on fire")));
        let err = Error::io("write", "backups/x", other);
        assert_eq!(chain(&err), "cannot write backups/x: disk on fire");
    }

    #[test]
    fn kinds_are_stable_snake_case_names() {
        let err = Error::corrupt("a", "x");
        assert_eq!(err.kind(), "corrupt");
        assert_eq!(Error::InvalidKeep.kind(), "invalid_keep");
    }

    #[test]
    fn printable_keeping_passes_only_the_listed_sequences() {
        let text = "\x1b[32mOK\x1b[0m \x1b[2J";
        assert_eq!(
            printable_keeping(text, &["\x1b[32m", "\x1b[0m"]),
            "\x1b[32mOK\x1b[0m \\u{1b}[2J"
        );
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("s/a\n\x1b[2Jb\rc"), "s/a\\n\\u{1b}[2Jb\\rc");
        assert_eq!(
            printable("caf\u{e9} \u{1f4c8} a\\nb"),
            "caf\u{e9} \u{1f4c8} a\\nb"
        );
    }
}
