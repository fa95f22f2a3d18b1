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
    #[error("no strategy {name:?} in {}; {}", dir.display(), available_list(available))]
    UnknownStrategy {
        /// The name given.
        name: String,
        /// The results folder searched.
        dir: PathBuf,
        /// Strategy folders that do exist.
        available: Vec<String>,
    },

    /// The strategy folder holds nothing to back up.
    #[error("results folder {} is empty: nothing to back up", path.display())]
    EmptyResults {
        /// The empty folder.
        path: PathBuf,
    },

    /// The manifest exists but cannot be understood; it is left untouched.
    #[error("manifest {} is damaged at line {line}: {message} (it was not modified)", path.display())]
    ManifestParse {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// What the parser said.
        message: String,
    },

    /// An archive or backup name the manifest does not know and no file matches.
    #[error("no backup named {name:?} in {}", dir.display())]
    UnknownBackup {
        /// The name given.
        name: String,
        /// The backup folder searched.
        dir: PathBuf,
    },

    /// An archive's bytes do not match what was recorded, or it cannot be decoded.
    #[error("archive {} is corrupt: {}", path.display(), printable(detail))]
    Corrupt {
        /// The archive file.
        path: PathBuf,
        /// What exactly is wrong.
        detail: String,
    },

    /// A catalogued archive whose file is gone.
    #[error("archive {} is missing (the manifest lists it)", path.display())]
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
    #[error("invalid exclude pattern {glob:?}: {message}")]
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
    #[error("configuration {}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The results hold something a restore would refuse, such as a link pointing outside.
    #[error("cannot back up {}: entry {entry:?} would be refused on restore: {reason}", path.display())]
    Unrestorable {
        /// The results folder.
        path: PathBuf,
        /// The entry as stored.
        entry: String,
        /// Why restore would refuse it.
        reason: String,
    },

    /// A restore destination already exists and `--force` was not given.
    #[error("{} already exists; use --force to back it up and replace it", path.display())]
    DestinationExists {
        /// The destination folder.
        path: PathBuf,
    },

    /// An object store could not be reached or refused a request (credentials, bucket, network).
    #[error("remote {remote}: {message}")]
    Remote {
        /// The remote's name from `resbak.toml`.
        remote: String,
        /// What went wrong, as one line.
        message: String,
    },

    /// A single file has no copies to restore from.
    #[error("there are no backups of {} in {}", path.display(), dir.display())]
    NoFileBackups {
        /// The file.
        path: PathBuf,
        /// The folder searched for its copies.
        dir: PathBuf,
    },

    /// A results or backup folder that does not exist.
    #[error("{what} folder {} does not exist", printable(path.display()))]
    MissingFolder {
        /// Which folder: "results" or "backup".
        what: &'static str,
        /// The folder.
        path: PathBuf,
    },

    /// A name that matches nothing in the catalogue, with close names that do.
    #[error("no {what} named {name:?} in {}{}", dir.display(), did_you_mean(suggestions))]
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
}

impl Error {
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

    /// True when the error means stored data is damaged or hostile (exit code 1), as opposed
    /// to a usage or operational problem (exit code 2).
    pub fn is_data_problem(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::UnsafeEntry { .. } | Error::Missing { .. }
        )
    }
}

/// `text` with control characters (newlines, terminal escapes) written as escapes, so a message
/// stays on one line and shows exactly what a name from an archive holds.
pub(crate) fn printable(text: impl std::fmt::Display) -> String {
    text.to_string()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn available_list(names: &[String]) -> String {
    if names.is_empty() {
        "there are no strategy folders yet".to_string()
    } else {
        format!("available: {}", names.join(", "))
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    let quoted: Vec<String> = suggestions.iter().map(|s| format!("{s:?}")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
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
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("s/a\n\x1b[2Jb\rc"), "s/a\\n\\u{1b}[2Jb\\rc");
        assert_eq!(
            printable("caf\u{e9} \u{1f4c8} a\\nb"),
            "caf\u{e9} \u{1f4c8} a\\nb"
        );
    }
}
