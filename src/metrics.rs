//! Headline metrics of a strategy's results: which files hold them, how they are read, and how
//! their values are parsed.
//!
//! Metrics come from small files at the top of a strategy folder and in each run folder
//! (`runs/NAME/`): `stats.json` and `metrics.json` (objects, nested keys joined with `.`),
//! `stats.csv` (two columns, `key,value`) and `metrics.yaml`. A run folder's keys are prefixed
//! with its path: `runs/fast10_slow50:Sharpe Ratio`. Values are numbers, or strings that are
//! plainly numbers: `12.5`, `12.5%`, `NaN`, `inf`, and pandas Timedelta text
//! (`"12 days 03:00:00"`, in seconds). Anything else (dates, names, lists) is left out, never
//! guessed. backtesting.py's private fields (`_strategy`, `_equity_curve`, `_trades`) are
//! skipped. Reading metrics never fails anything: each unreadable file is a warning.

mod parse;

pub use parse::{number, parse};

use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::path::{Component, Path};

/// Metric name to value.
pub type Metrics = BTreeMap<String, f64>;

/// The files metrics are read from when `[metrics] files` is not set.
pub const DEFAULT_FILES: [&str; 4] = ["stats.json", "metrics.json", "stats.csv", "metrics.yaml"];

/// The folder whose sub-folders are run folders.
pub const RUNS_DIR: &str = "runs";

/// A metrics file larger than this is skipped with a warning, so memory stays small.
pub const MAX_FILE: u64 = crate::archive::COPY_LIMIT;

/// The `[metrics]` table of `resbak.toml`: which files to read, which keys to keep, which
/// direction is better, and what the report draws.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sources {
    /// File names looked for at the top of the strategy folder and in each run folder;
    /// [`DEFAULT_FILES`] when empty.
    pub files: Vec<String>,
    /// Keep only these keys (with or without a run folder's prefix); all when empty.
    pub keys: Vec<String>,
    /// Metrics where a higher value is an improvement (for `diff --metrics` and sorting).
    pub higher_is_better: Vec<String>,
    /// Metrics where a lower value is an improvement.
    pub lower_is_better: Vec<String>,
    /// Metrics `report` draws; a few well-known ones (or the first ones found) when empty.
    pub report: Vec<String>,
}

impl Sources {
    /// Whether a higher value of `key` is better (`Some(true)`), worse (`Some(false)`), or
    /// neither is configured (`None`). A run folder's key matches its bare name too.
    pub fn higher_is_better(&self, key: &str) -> Option<bool> {
        let bare = key.split_once(':').map_or(key, |(_, k)| k);
        let listed = |list: &[String]| list.iter().any(|k| k == key || k == bare);
        match (
            listed(&self.higher_is_better),
            listed(&self.lower_is_better),
        ) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }

    /// The file names to look for.
    pub fn files(&self) -> Vec<&str> {
        match self.files.is_empty() {
            true => DEFAULT_FILES.to_vec(),
            false => self.files.iter().map(String::as_str).collect(),
        }
    }

    /// The metrics prefix for `rel`, a path inside the strategy folder, if it is a metrics file:
    /// `""` at the top, `runs/NAME:` in a run folder.
    pub fn prefix_of(&self, rel: &Path) -> Option<String> {
        let parts: Vec<&str> = rel
            .components()
            .map(|c| match c {
                Component::Normal(p) => p.to_str(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let name = *parts.last()?;
        if !self.files().contains(&name) {
            return None;
        }
        match parts.as_slice() {
            [_] => Some(String::new()),
            [runs, run, _] if *runs == RUNS_DIR => Some(format!("{RUNS_DIR}/{run}:")),
            _ => None,
        }
    }

    /// Glob patterns (for [`crate::archive::Options::copies`]) matching the metrics files
    /// anywhere; [`Sources::prefix_of`] then picks those at the top and in run folders.
    pub fn patterns(&self) -> Vec<String> {
        self.files().iter().map(|f| globset::escape(f)).collect()
    }

    /// Whether `key` (with its run prefix, if any) is kept.
    fn keeps(&self, key: &str) -> bool {
        let bare = key.split_once(':').map_or(key, |(_, k)| k);
        self.keys.is_empty() || self.keys.iter().any(|k| k == key || k == bare)
    }
}

/// What reading metrics found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    /// The metrics, from all files.
    pub metrics: Metrics,
    /// One line per file that could not be read or parsed.
    pub warnings: Vec<String>,
}

/// Metrics files read so far, merged by [`Reading::finish`] in a fixed order, so a folder and
/// its archive (which lists files in another order) give the same metrics.
#[derive(Debug, Default)]
pub struct Reading {
    /// Each file's metrics by its place: run prefix, then position in the file list.
    parts: Vec<((String, usize), Metrics)>,
    warnings: Vec<String>,
}

impl Reading {
    /// Adds the metrics of the file `rel` (its contents in `reader`, `len` bytes) with `prefix`.
    pub fn add_file(
        &mut self,
        sources: &Sources,
        rel: &Path,
        prefix: &str,
        len: u64,
        reader: impl Read,
    ) {
        let shown = rel.display();
        if len > MAX_FILE {
            self.warnings.push(format!(
                "metrics file {shown} is larger than {} MiB; skipped",
                MAX_FILE >> 20
            ));
            return;
        }
        let mut text = String::new();
        if let Err(e) = reader.take(MAX_FILE).read_to_string(&mut text) {
            self.warnings
                .push(format!("cannot read metrics file {shown}: {e}"));
            return;
        }
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let rank = sources.files().iter().position(|f| *f == name);
        match parse(rel, &text) {
            Ok(values) => {
                let kept = values
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .filter(|(k, _)| sources.keeps(k))
                    .collect();
                let place = (prefix.to_string(), rank.unwrap_or(usize::MAX));
                self.parts.push((place, kept));
            }
            Err(e) => self
                .warnings
                .push(format!("cannot parse metrics file {shown}: {e}")),
        }
    }

    /// All metrics; when two files of a folder give the same key, the file listed first in
    /// the file list wins (`stats.json` before `stats.csv`).
    pub fn finish(mut self) -> Found {
        self.parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut metrics = Metrics::new();
        for (_, part) in self.parts {
            for (key, value) in part {
                metrics.entry(key).or_insert(value);
            }
        }
        Found {
            metrics,
            warnings: self.warnings,
        }
    }
}

/// Reads the metrics of the strategy folder `root`: the metrics files at its top and in each
/// run folder, less what `excludes` leaves out of a backup. Never fails: what cannot be read
/// is in [`Found::warnings`].
pub fn read_folder(root: &Path, sources: &Sources, excludes: &crate::archive::Excludes) -> Found {
    let mut found = Reading::default();
    let mut candidates: Vec<std::path::PathBuf> =
        sources.files().iter().map(|f| f.into()).collect();
    if let Ok(runs) = std::fs::read_dir(root.join(RUNS_DIR)) {
        let mut names: Vec<_> = runs
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for run in names {
            for file in sources.files() {
                candidates.push(Path::new(RUNS_DIR).join(&run).join(file));
            }
        }
    }
    for rel in candidates {
        let Some(prefix) = sources.prefix_of(&rel) else {
            continue;
        };
        let excluded = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| excludes.matches(a));
        if excluded {
            continue;
        }
        // Only regular files, never through a link: what a backup stores as a file.
        match crate::archive::open_regular(&root.join(&rel)) {
            Ok(Some(file)) => {
                let len = file.metadata().map_or(0, |m| m.len());
                found.add_file(sources, &rel, &prefix, len, file);
            }
            Ok(None) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => found
                .warnings
                .push(format!("cannot read metrics file {}: {e}", rel.display())),
        }
    }
    found.finish()
}

/// The metrics in the copies of metrics files [`crate::archive::write()`] kept while it archived
/// them (see [`Sources::patterns`]). Never fails: what cannot be parsed is a warning.
pub fn from_copies(copies: &[crate::archive::Copied], sources: &Sources) -> Found {
    let mut found = Reading::default();
    for copy in copies {
        let Some(prefix) = sources.prefix_of(&copy.rel) else {
            continue;
        };
        match &copy.bytes {
            Some(bytes) => found.add_file(sources, &copy.rel, &prefix, copy.len, bytes.as_slice()),
            None if copy.len > MAX_FILE => {
                found.add_file(sources, &copy.rel, &prefix, copy.len, std::io::empty())
            }
            None => found.warnings.push(format!(
                "metrics file {} was not kept: the metrics files hold more than {} MiB in all",
                copy.rel.display(),
                crate::archive::COPY_BUDGET >> 20
            )),
        }
    }
    found.finish()
}

/// Reads the metrics stored in the archive at `path` (for backups made before resbak
/// recorded them), checking the whole file against `expected` while it is read.
///
/// # Errors
/// [`Error::Corrupt`] when the archive cannot be decoded or does not match `expected`;
/// [`Error::Io`] when it cannot be opened.
pub fn read_archive(path: &Path, expected: Option<&Checksum>, sources: &Sources) -> Result<Found> {
    let file = crate::archive::open_file(path)?;
    let mut hashing = HashingReader::new(std::io::BufReader::new(file));
    let mut found = Reading::default();
    crate::archive::visit(&mut hashing, |entry, content| {
        if let (Some(prefix), crate::archive::EntryKind::File) =
            (sources.prefix_of(entry.rel), entry.kind)
        {
            found.add_file(sources, entry.rel, &prefix, entry.size, content);
        }
        true
    })
    .map_err(|e| Error::corrupt(path, e))?;
    let checksum = hashing.finish().at("read", path)?;
    match expected {
        Some(expected) if *expected != checksum => Err(Error::corrupt(
            path,
            "its size or SHA-256 is not the one the manifest records",
        )),
        _ => Ok(found.finish()),
    }
}

/// The metric keys among `known` that `name` means: the key itself, else the keys `name`
/// begins (ignoring case). Shortest unique names are accepted.
pub fn resolve<'k>(name: &str, known: &[&'k str]) -> Vec<&'k str> {
    if let Some(exact) = known.iter().find(|k| **k == name) {
        return vec![exact];
    }
    let lower = name.to_lowercase();
    let mut hits: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| k.to_lowercase().starts_with(&lower))
        .collect();
    hits.dedup();
    hits
}

/// One metric on both sides of a comparison; the JSON shape of `diff --metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Compared {
    /// The value before, if that side has the metric.
    pub old: Option<f64>,
    /// The value after.
    pub new: Option<f64>,
    /// `new - old` when both are numbers.
    pub diff: Option<f64>,
}

impl Compared {
    /// Whether the two sides differ (NaN equals NaN here: the metric did not change).
    pub fn changed(&self) -> bool {
        match (self.old, self.new) {
            (Some(a), Some(b)) => !(a == b || a.is_nan() && b.is_nan()),
            (a, b) => a.is_some() != b.is_some(),
        }
    }

    /// The change relative to the old value, in percent, when that means something.
    pub fn percent(&self) -> Option<f64> {
        let (old, diff) = (self.old?, self.diff?);
        (old != 0.0 && old.is_finite() && diff.is_finite()).then(|| diff / old.abs() * 100.0)
    }
}

/// Every metric of `old` and `new`, by name, with both values and the difference.
pub fn compare(old: &Metrics, new: &Metrics) -> BTreeMap<String, Compared> {
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let (a, b) = (old.get(key).copied(), new.get(key).copied());
            let diff = a.zip(b).map(|(a, b)| b - a).filter(|d| !d.is_nan());
            (
                key.clone(),
                Compared {
                    old: a,
                    new: b,
                    diff,
                },
            )
        })
        .collect()
}

/// Two values for one row of a table, as [`format_value`] shows them, or in full (the shortest
/// text that reads back as the same number) when that would show two different values alike.
pub fn format_pair(old: Option<f64>, new: Option<f64>) -> (String, String) {
    let shown = |v: Option<f64>| v.map_or("-".to_string(), format_value);
    let (a, b) = (shown(old), shown(new));
    match (old, new) {
        (Some(x), Some(y)) if a == b && x != y && !(x.is_nan() && y.is_nan()) => {
            (x.to_string(), y.to_string())
        }
        _ => (a, b),
    }
}

/// `value` for a table: six significant digits without trailing zeros (`0.7373`, `317.014`,
/// `0.000345`), in scientific notation when very small or large (`1.2e-5`, `1.23457e19`);
/// `NaN`, `inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    let trim = |text: &str| {
        let text = match text.contains('.') {
            true => text.trim_end_matches('0').trim_end_matches('.'),
            false => text,
        };
        if text == "-0" {
            "0".to_string()
        } else {
            text.to_string()
        }
    };
    let abs = value.abs();
    if abs != 0.0 && !(1e-4..1e15).contains(&abs) {
        let text = format!("{value:.5e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        return format!("{}e{exponent}", trim(mantissa));
    }
    let magnitude = if abs == 0.0 {
        0
    } else {
        abs.log10().floor() as i32
    };
    let decimals = (5 - magnitude).clamp(0, 9) as usize;
    trim(&format!("{value:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_six_significant_digits() {
        let shown: Vec<String> = [
            0.7373,
            317.01384,
            0.000345,
            1.2e-5,
            0.00004,
            1e308,
            1.2345678901234567e19,
            0.0,
            -0.0,
            -42.5,
            94.0,
            f64::NAN,
            f64::NEG_INFINITY,
        ]
        .into_iter()
        .map(format_value)
        .collect();
        assert_eq!(
            shown,
            [
                "0.7373",
                "317.014",
                "0.000345",
                "1.2e-5",
                "4e-5",
                "1e308",
                "1.23457e19",
                "0",
                "0",
                "-42.5",
                "94",
                "NaN",
                "-inf"
            ]
        );
    }

    #[test]
    fn metrics_files_are_found_at_the_top_and_in_run_folders() {
        let sources = Sources::default();
        let prefix = |p: &str| sources.prefix_of(Path::new(p));
        assert_eq!(prefix("stats.json").as_deref(), Some(""));
        assert_eq!(
            prefix("runs/fast10_slow50/metrics.yaml").as_deref(),
            Some("runs/fast10_slow50:")
        );
        assert_eq!(prefix("other/stats.json"), None);
        assert_eq!(prefix("runs/a/b/stats.json"), None);
        assert_eq!(prefix("trades.csv"), None);
        let only = Sources {
            keys: vec!["Sharpe Ratio".into()],
            ..Sources::default()
        };
        assert!(only.keeps("runs/a:Sharpe Ratio") && !only.keeps("Return [%]"));
    }

    #[test]
    fn comparison_has_both_sides_and_the_difference() {
        let old: Metrics = [("a".into(), 1.0), ("b".into(), f64::NAN), ("c".into(), 2.0)].into();
        let new: Metrics = [("a".into(), 1.5), ("b".into(), f64::NAN), ("d".into(), 0.0)].into();
        let c = compare(&old, &new);
        assert_eq!(c["a"].diff, Some(0.5));
        assert_eq!(c["a"].percent(), Some(50.0));
        assert!(c["a"].changed() && !c["b"].changed());
        assert!(c["c"].changed() && c["c"].new.is_none() && c["c"].diff.is_none());
        assert!(c["d"].changed() && c["d"].old.is_none());
    }

    #[test]
    fn names_resolve_exactly_or_by_unique_prefix() {
        let known = [
            "Return [%]",
            "Return (Ann.) [%]",
            "Sharpe Ratio",
            "Sortino Ratio",
        ];
        assert_eq!(resolve("Sharpe Ratio", &known), ["Sharpe Ratio"]);
        assert_eq!(resolve("sha", &known), ["Sharpe Ratio"]);
        assert_eq!(resolve("Return [%]", &known), ["Return [%]"]);
        assert_eq!(resolve("Return", &known).len(), 2);
        assert!(resolve("Calmar", &known).is_empty());
        assert_eq!(format_value(1.234567), "1.23457");
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn two_values_that_would_look_alike_are_shown_in_full() {
        let pair = |a: f64, b: f64| format_pair(Some(a), Some(b));
        assert_eq!(pair(1.0, 2.0), ("1".into(), "2".into()));
        assert_eq!(
            pair(0.3, 0.1 + 0.2),
            ("0.3".into(), "0.30000000000000004".into())
        );
        assert_eq!(
            pair(1_234_567.891, 1_234_567.991),
            ("1234567.891".into(), "1234567.991".into())
        );
        assert_eq!(pair(1.5, 1.5), ("1.5".into(), "1.5".into()));
        assert_eq!(pair(0.0, -0.0), ("0".into(), "0".into()));
        assert_eq!(pair(f64::NAN, f64::NAN), ("NaN".into(), "NaN".into()));
        assert_eq!(format_pair(None, Some(2.0)), ("-".into(), "2".into()));
    }

    #[test]
    fn whole_numbers_keep_their_zeros() {
        for (value, shown) in [
            (100_000.0, "100000"),
            (273_600.0, "273600"),
            (1e6, "1000000"),
            (-500_000.0, "-500000"),
            (94_694_400.0, "94694400"),
            (120_000.5, "120000"),
            (10.0, "10"),
            (0.0, "0"),
            (-0.0, "0"),
            (-0.000_01, "-1e-5"),
            (0.105, "0.105"),
            (2e20, "2e20"),
        ] {
            assert_eq!(format_value(value), shown, "{value}");
        }
    }
}
