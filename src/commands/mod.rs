//! One module per subcommand. Each takes plain option structs (no clap types), does its work
//! through the library modules, and reports through a [`Printer`].

pub mod backup;
pub mod config;
pub mod file;
pub mod list;
pub mod prune;
pub mod pull;
pub mod push;
pub mod reindex;
pub mod restore;
pub mod verify;

use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Manifest};
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

/// Where commands write: reports to standard output, warnings to standard error.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    /// Prints reports to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Printer { out }
    }

    /// Writes one line of the report.
    pub fn line(&mut self, text: impl Display) -> Result<()> {
        writeln!(self.out, "{text}").at("write to", Path::new("standard output"))
    }

    /// Writes a warning to standard error.
    pub fn warn(&mut self, text: impl Display) {
        eprintln!("resbak: warning: {text}");
    }
}

/// Checks that `name` is a single plain folder name.
pub fn check_strategy_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name && !name.contains('\0') => Ok(()),
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
}

/// Finds the archive `arg` names: a name from `list` (with or without `.tar.gz`) in the backup
/// folder, else a path. The entry comes from the manifest in the archive's own folder.
pub fn locate(ctx: &Context, arg: &str) -> Result<Located> {
    let by_name = !arg.contains('/');
    let candidates: Vec<PathBuf> = if by_name {
        let in_backups = [arg.to_string(), format!("{arg}.tar.gz")].map(|n| ctx.backup_dir.join(n));
        in_backups.into_iter().chain([PathBuf::from(arg)]).collect()
    } else {
        vec![PathBuf::from(arg)]
    };
    let manifest_of = |path: &Path| -> Result<Option<Entry>> {
        let dir = crate::atomic::parent_dir(path);
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let manifest = Manifest::load(dir)?;
        Ok(file.and_then(|f| manifest.find(&f).cloned()))
    };
    for path in candidates {
        let entry = manifest_of(&path)?;
        if entry.is_some() || path.is_file() {
            return Ok(Located { path, entry });
        }
    }
    Err(Error::UnknownBackup {
        name: arg.to_string(),
        dir: ctx.backup_dir.clone(),
    })
}

/// Strategy folders present in `results_dir`, sorted; empty if it does not exist.
pub fn strategies(results_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(results_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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

    #[test]
    fn strategy_names_must_be_one_plain_component() {
        assert!(check_strategy_name("btc_sma_cross").is_ok());
        assert!(check_strategy_name(".hidden").is_ok());
        for bad in ["", ".", "..", "a/b", "/abs", "a/", "./a", "a\0b"] {
            assert!(check_strategy_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
