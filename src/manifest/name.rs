//! The names resbak gives archives, `<strategy>_<YYYYMMDD>_<HHMMSS>[_N][.safety].tar.gz`: what
//! a file name says of its strategy, time and kind, which holds even without a manifest.

use super::Entry;
use chrono::{DateTime, NaiveDateTime, Utc};

/// What a safety copy's name carries before `.tar.gz`, so its kind survives a lost manifest.
pub const SAFETY_MARK: &str = ".safety";

/// The parts of a resbak archive name `<strategy>_<YYYYMMDD>_<HHMMSS>[_N][.safety].tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// The strategy.
    pub strategy: String,
    /// `YYYYMMDD_HHMMSS`, UTC.
    pub timestamp: String,
    /// The time in the name, plus N-1 nanoseconds for a `_N` suffix so same-second backups
    /// keep their order.
    pub created: DateTime<Utc>,
    /// N of a `_N` suffix (further backups in the same second); 1 without one.
    pub n: u32,
    /// Whether the name marks a safety copy made by `restore --force` (`....safety.tar.gz`).
    pub safety: bool,
}

impl ArchiveName {
    /// Parses `file`, or `None` if it is not a resbak archive name.
    pub fn parse(file: &str) -> Option<ArchiveName> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let stem = file.strip_suffix(".tar.gz")?;
        let (stem, safety) = match stem.strip_suffix(SAFETY_MARK) {
            Some(stem) => (stem, true),
            None => (stem, false),
        };
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
        let n = n.max(1);
        let created = naive.and_utc() + chrono::Duration::nanoseconds(i64::from(n - 1));
        Some(ArchiveName {
            strategy: strategy.to_string(),
            timestamp,
            created,
            n,
            safety,
        })
    }
}

/// Why `entry` cannot be counted as a backup of its strategy when its file name says another
/// strategy (its strategy edited by hand, or its file renamed): restore refuses it as such.
pub fn misnamed(entry: &Entry) -> Option<String> {
    let name = ArchiveName::parse(&entry.backup_file)?;
    (name.strategy != entry.strategy).then(|| {
        format!(
            "its file name says strategy {}, its manifest entry says {}; correct the entry",
            name.strategy, entry.strategy
        )
    })
}
