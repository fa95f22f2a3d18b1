//! What the single-file operations report: the shapes of their JSON output too.

use super::json::JsonCheck;
use crate::checksum::Checksum;
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// The content check of one copy: for JSON files, whether it parses and how many items it holds;
/// all `None` for other files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContentCheck {
    /// Whether it parses as JSON; `None` for files that are not JSON.
    pub json_valid: Option<bool>,
    /// The parser's message for invalid JSON.
    pub json_error: Option<String>,
    /// The item count: the length of the top-level array, or of the largest array under the
    /// top object.
    pub items: Option<u64>,
    /// Item count per top-level array field (`$` for a top-level array), for valid JSON.
    #[serde(serialize_with = "ordered_map")]
    pub array_counts: Option<Vec<(String, u64)>>,
}

impl ContentCheck {
    /// Whether it passed: anything but JSON that does not parse.
    pub fn passes(&self) -> bool {
        self.json_valid != Some(false)
    }
}

impl From<Option<JsonCheck>> for ContentCheck {
    fn from(check: Option<JsonCheck>) -> Self {
        let Some(check) = check else {
            return ContentCheck::default();
        };
        let items = check.items();
        match check {
            JsonCheck::Valid(counts) => ContentCheck {
                json_valid: Some(true),
                json_error: None,
                items,
                array_counts: Some(counts),
            },
            JsonCheck::Invalid(message) => ContentCheck {
                json_valid: Some(false),
                json_error: Some(message),
                items: None,
                array_counts: None,
            },
        }
    }
}

/// A copy [`backup_file`](super::backup_file) made, or the newest copy when the file is unchanged since.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The new copy; with `unchanged`, the existing copy that holds the same bytes.
    pub backup: PathBuf,
    /// Size and SHA-256 of what was copied.
    pub checksum: Checksum,
    /// True when no copy was made: the file is identical to its newest copy.
    pub unchanged: bool,
    /// The content check of what was copied.
    #[serde(flatten)]
    pub content: ContentCheck,
    /// Older copies removed to keep only `keep` versions.
    pub removed: Vec<PathBuf>,
    /// A copy that does not parse, and cleanup problems; the copy itself is complete.
    pub warnings: Vec<String>,
}

/// What [`write_with_backup`](super::write_with_backup) did besides writing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// The copy of the previous version; `None` when there was no file yet or the copy failed.
    pub backup: Option<PathBuf>,
    /// True when the previous version was identical to its newest copy, which is `backup`.
    pub unchanged: bool,
    /// The content check of the previous version.
    #[serde(flatten)]
    pub content: ContentCheck,
    /// The file written when the path is a symbolic link: the link's target.
    pub written_through: Option<PathBuf>,
    /// Older copies removed to keep only `keep` versions.
    pub removed: Vec<PathBuf>,
    /// A failed backup (without `strict`), a copy that does not parse, and cleanup problems.
    pub warnings: Vec<String>,
}

/// Whether a copy's bytes match its recorded checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyStatus {
    /// It hashes to its recorded SHA-256.
    Ok,
    /// It does not.
    Damaged,
    /// No checksum was recorded for it (a copy made by the older scripts).
    Unrecorded,
    /// `SHA256SUMS` lists it, but the file is gone.
    Missing,
}

impl CopyStatus {
    /// How `file list` and `file verify` show it.
    pub fn label(self) -> &'static str {
        match self {
            CopyStatus::Ok => "ok",
            CopyStatus::Damaged => "damaged",
            CopyStatus::Unrecorded => "no recorded checksum",
            CopyStatus::Missing => "missing",
        }
    }
}

/// A copy [`restore`](super::restore()) passed over to reach the one it restored.
#[derive(Debug, Clone, Serialize)]
pub struct PassedOver {
    /// The copy.
    pub path: PathBuf,
    /// Why: damaged, or does not parse.
    pub reason: String,
}

/// What [`restore`](super::restore()) did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The copy brought back.
    pub restored: PathBuf,
    /// Size and SHA-256 of the restored file, read back from disk; equal to the copy's.
    pub checksum: Checksum,
    /// Whether the copy's checksum was recorded (`false` for copies of the older scripts).
    pub recorded: bool,
    /// The content check of the restored copy.
    #[serde(flatten)]
    pub content: ContentCheck,
    /// Newer copies passed over, newest first.
    pub passed_over: Vec<PassedOver>,
    /// The copy holding the file as it was before the restore; `None` when it did not exist.
    pub saved: Option<PathBuf>,
    /// True when that was an existing copy (the file was identical to it).
    pub saved_unchanged: bool,
    /// The file written when the path is a symbolic link: the link's target.
    pub written_through: Option<PathBuf>,
    /// Older copies removed to keep only `keep` versions.
    pub removed: Vec<PathBuf>,
    /// Cleanup problems.
    pub warnings: Vec<String>,
}

/// Size, SHA-256 and, for JSON, the parse check of one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// Size and SHA-256.
    pub checksum: Checksum,
    /// The JSON check, when asked for.
    pub json: Option<JsonCheck>,
}

/// One copy as [`verify`](super::verify()) found it.
#[derive(Debug, Clone, Serialize)]
pub struct CopyCheck {
    /// The copy.
    pub path: PathBuf,
    /// What the check found.
    pub status: CopyStatus,
    /// The SHA-256 read now; `None` when missing or unreadable.
    pub sha256: Option<String>,
    /// The SHA-256 in `SHA256SUMS`.
    pub recorded_sha256: Option<String>,
    /// What is wrong, for a damaged or missing copy.
    pub problem: Option<String>,
}

/// What [`verify`](super::verify()) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Copies checked (missing ones included).
    pub checked: usize,
    /// Copies that match their checksum.
    pub ok: usize,
    /// Copies that do not, or are missing.
    pub problems: usize,
    /// Copies with no recorded checksum.
    pub unrecorded: usize,
    /// Each copy, newest first; missing ones last.
    pub results: Vec<CopyCheck>,
}

/// Serialises item counts as a JSON object in document order (or `null`).
fn ordered_map<S: Serializer>(
    counts: &Option<Vec<(String, u64)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match counts {
        Some(counts) => s.collect_map(counts.iter().map(|(k, n)| (k, n))),
        None => s.serialize_none(),
    }
}
