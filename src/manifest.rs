//! The catalogue of backups: `manifest.yaml` in the backup folder.
//!
//! The manifest is the source of truth for what exists, in which order and with which checksum.
//! Every change is a read-modify-write under an exclusive OS lock on `manifest.lock` (released by
//! the OS if the process dies) and is written atomically, so concurrent resbak processes never
//! lose an entry and a crash never leaves a half-written manifest. A manifest that does not
//! parse is reported with its line and never overwritten.

use crate::atomic;
use crate::error::{Error, IoContext, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

pub mod legacy;
pub mod metrics;
pub mod name;

/// File name of the manifest inside the backup folder.
pub const FILE_NAME: &str = "manifest.yaml";
/// File name of the lock file inside the backup folder.
pub const LOCK_NAME: &str = "manifest.lock";
/// File name of the checksum list kept beside the manifest.
pub const SUMS_NAME: &str = "SHA256SUMS";
/// The manifest format this resbak writes and understands.
pub const FORMAT_VERSION: u32 = 1;

#[doc(no_inline)]
pub use crate::checks::{CHECKS_NAME, Check, Checks, MISSING_PROBLEM};

/// The whole catalogue. A key resbak does not know is an error, never passed over: a
/// misspelled `pin` must not leave a backup unprotected, nor a rewrite drop it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// Backups in the order they were registered.
    #[serde(default)]
    pub backups: Vec<Entry>,
    /// Read from the older format the Python scripts wrote (see [`legacy`]): its entries have
    /// no checksum yet, and [`Manifest::update`] refuses it until [`Manifest::update_adopting`].
    #[serde(skip)]
    pub legacy: bool,
}

/// One backup archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Strategy name, also the archive's top folder.
    pub strategy: String,
    /// Time of the backup as `YYYYMMDD_HHMMSS`, as in the file name: UTC, but local time for
    /// archives the Python scripts made (see `converted_from`). Written quoted, so YAML 1.1
    /// readers such as PyYAML read text, not a number; a number is still read.
    #[serde(deserialize_with = "stamp")]
    pub timestamp: String,
    /// Archive file name, relative to the manifest's folder.
    pub backup_file: String,
    /// Archive size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole archive file.
    pub sha256: String,
    /// Number of entries in the archive: folders, files and links. Written as `entries`;
    /// manifests from older resbak call it `files`, which is still read.
    #[serde(alias = "files")]
    pub entries: u64,
    /// Total bytes of file contents, uncompressed.
    pub bytes: u64,
    /// The entries by kind (`files` there counts regular files only); absent in entries
    /// written before resbak recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<crate::archive::Counts>,
    /// When the backup was made, RFC 3339 UTC with nanoseconds (written quoted, as text in
    /// YAML 1.1 and 1.2 alike).
    #[serde(deserialize_with = "rfc3339")]
    pub created: DateTime<Utc>,
    /// Digest of the archived tree's paths, kinds, sizes, modes, mtimes and link targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_digest: Option<String>,
    /// Digest of all that plus every file's SHA-256: equal means unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// Why the backup was made; entries without it are regular backups.
    #[serde(default, skip_serializing_if = "Kind::is_regular")]
    pub kind: Kind,
    /// Where `sha256`, `entries` and `bytes` come from when resbak did not record them as it made
    /// the archive; absent for resbak's own backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_source: Option<ChecksumSource>,
    /// For a time converted to UTC from the local time the Python scripts wrote: that time and
    /// its zone, such as `2024-02-20 14:30:00 Europe/Berlin (+01:00)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<String>,
    /// For an entry of the Python scripts' manifest with an absolute `backup_file`: that path
    /// (resbak looks for the archive beside the manifest). Never written.
    #[serde(skip)]
    pub imported_path: Option<PathBuf>,
    /// Headline metrics read from the results when the backup was made (see
    /// [`crate::metrics`]); absent when none were found or for entries from older resbak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<crate::metrics::Metrics>,
    /// SHA-256 of the metrics as [`metrics::FILE_NAME`] holds them, so a record lost, edited or
    /// damaged there is found out rather than shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_sha256: Option<String>,
    /// Labels given with `backup --tag` or `resbak tag`; a tagged backup is never pruned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A free-text note (`backup --note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Kept by retention whatever the rules say (`resbak tag --pin`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin: bool,
    /// SHA-256 of the archive's index file ([`crate::index`]); absent for archives without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_sha256: Option<String>,
}

/// Where an entry's checksum and counts come from, for archives resbak did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumSource {
    /// Taken when resbak adopted the archive, not when it was made.
    Imported,
    /// Not recorded: the archive was missing or did not read when it was adopted. Its size is
    /// all that can be checked against.
    None,
    /// Not taken yet: an entry of the Python scripts' manifest before its upgrade (never
    /// written).
    Pending,
}

/// Why a backup was made, which decides how retention and "latest" treat it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A backup asked for: the strategy's history.
    #[default]
    Regular,
    /// A copy `restore --force` made of a folder before replacing it; kept by its own rule and
    /// never the strategy's latest backup.
    Safety,
}

impl Kind {
    /// Whether this is a regular backup (the manifest leaves `kind` out for those).
    pub fn is_regular(&self) -> bool {
        *self == Kind::Regular
    }
}

impl Entry {
    /// Whether the entry records the archive's SHA-256 and counts (entries the Python scripts
    /// wrote do not until the manifest is upgraded).
    pub fn has_checksum(&self) -> bool {
        !matches!(
            self.checksum_source,
            Some(ChecksumSource::None | ChecksumSource::Pending)
        )
    }

    /// The size and SHA-256 the archive is checked against, when they are recorded.
    pub fn recorded_checksum(&self) -> Option<crate::checksum::Checksum> {
        self.has_checksum().then(|| crate::checksum::Checksum {
            sha256: self.sha256.clone(),
            len: self.size,
        })
    }

    /// The archive's entries for reports: `13 entries (9 files, 3 folders, 1 link)`, or just
    /// `13 entries` for an entry written before the kinds were recorded.
    pub fn counts_text(&self) -> String {
        match &self.kinds {
            Some(kinds) => kinds.to_string(),
            None => crate::error::count(self.entries, "entry", "entries"),
        }
    }

    /// Whether the entry names a plain `.tar.gz` file in the manifest's own folder and a plain
    /// strategy name, so nothing resbak does with it can reach outside the backup folder.
    pub fn is_sound(&self) -> bool {
        let plain = |name: &str| {
            let mut parts = Path::new(name).components();
            let single = matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(p)), None) if p == name);
            single && !name.contains(char::is_control)
        };
        plain(&self.backup_file) && self.backup_file.ends_with(".tar.gz") && plain(&self.strategy)
    }
}

/// Whether `text` is a lowercase hex SHA-256.
pub(crate) fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: FORMAT_VERSION,
            backups: Vec::new(),
            legacy: false,
        }
    }
}

impl Manifest {
    /// Path of the manifest in `backup_dir`.
    pub fn path(backup_dir: &Path) -> PathBuf {
        backup_dir.join(FILE_NAME)
    }

    /// Reads the manifest of `backup_dir`; a missing file is an empty catalogue.
    ///
    /// # Errors
    /// [`Error::ManifestParse`] when the file exists but is not a manifest resbak understands.
    pub fn load(backup_dir: &Path) -> Result<Manifest> {
        Self::load_file(&Self::path(backup_dir))
    }

    /// Gives each entry the metrics recorded for it in [`metrics::FILE_NAME`]; [`Manifest::load`]
    /// leaves them out, as most commands never read them.
    ///
    /// # Errors
    /// One line on why the metrics file could not be read (the entries are then without).
    pub fn attach_metrics(&mut self, backup_dir: &Path) -> std::result::Result<(), String> {
        metrics::attach(backup_dir, &mut self.backups)
    }

    /// Path of the previous manifest, kept by every update while the manifest was sound.
    pub fn previous_path(backup_dir: &Path) -> PathBuf {
        Self::path(backup_dir).with_extension("yaml.bak")
    }

    /// Reads the manifest at `path` as [`Manifest::load`] does.
    pub(crate) fn load_file(path: &Path) -> Result<Manifest> {
        let path = path.to_path_buf();
        let damaged = |line: usize, message: String| Error::ManifestParse {
            path: path.clone(),
            line,
            message,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) if e.kind() == ErrorKind::InvalidData => return Err(damaged(0, e.to_string())),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if text.trim().is_empty() {
            return Err(damaged(0, "the file is empty".into()));
        }
        // Straight into the structures, in memory near what they hold; the full parse keeps
        // every YAML event first (ten times the text), but reads the scripts' format and gives
        // each error its line, so it runs only when this one fails.
        let parsed = match serde_saphyr::from_str_with_options::<Manifest>(&text, fast_options()) {
            Ok(manifest) => Ok(manifest),
            Err(_) => Self::parse(&text),
        };
        (parsed.and_then(|manifest| manifest.checked(&text)))
            .map_err(|(line, message)| damaged(line, message))
    }

    /// Parses a manifest's text, in this format or the scripts'; an error is its line (0 when
    /// unknown) and what is wrong.
    fn parse(text: &str) -> std::result::Result<Manifest, (usize, String)> {
        // A version this resbak does not read is said first: its keys may be new here.
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        if let Ok(Version { version: Some(v) }) = serde_yaml::from_str(text)
            && v != FORMAT_VERSION
        {
            return Err((1, unsupported(v)));
        }
        // One parse for this format: `version` is required, so the scripts' format (which has
        // none) never parses as it and is recognised only then.
        match serde_yaml::from_str::<Manifest>(text) {
            Ok(manifest) => Ok(manifest),
            Err(_) if legacy::is_legacy(text) => legacy::parse(text, legacy::zone()),
            Err(e) => {
                let at = (e.location().map_or(0, |l| l.line()), e.to_string());
                Err(serde_yaml::from_str::<serde_yaml::Value>(text)
                    .ok()
                    .and_then(|d| legacy::added_later(&d, text))
                    .unwrap_or(at))
            }
        }
    }

    /// The manifest read from `text`, if it passes the checks every load makes: a version this
    /// resbak reads, entries that name plain archives here, each archive once.
    fn checked(self, text: &str) -> std::result::Result<Manifest, (usize, String)> {
        if !self.legacy && self.version != FORMAT_VERSION {
            return Err((1, unsupported(self.version)));
        }
        let manifest = self;
        if let Some(i) = manifest.backups.iter().position(|e| !e.is_sound()) {
            let bad = &manifest.backups[i];
            let message = format!(
                "entry {:?} of strategy {:?} does not name a plain .tar.gz in this folder",
                bad.backup_file, bad.strategy
            );
            return Err((entry_line(text, i), message));
        }
        let not_digest = |sha: &str| !sha.is_empty() && !is_digest(sha);
        if let Some(i) = manifest.backups.iter().position(|e| {
            let optional = [&e.index_sha256, &e.metrics_sha256];
            not_digest(&e.sha256)
                || optional
                    .iter()
                    .any(|d| d.as_deref().is_some_and(not_digest))
        }) {
            let bad = &manifest.backups[i];
            let message = format!(
                "entry {:?} has a sha256 that is not 64 lowercase hexadecimal digits",
                bad.backup_file
            );
            return Err((entry_line(text, i), message));
        }
        if let Some((first, second)) = manifest.duplicate() {
            let file = &manifest.backups[second].backup_file;
            let message = format!(
                "{file:?} is listed twice (entries {} and {})",
                first + 1,
                second + 1
            );
            return Err((entry_line(text, second), message));
        }
        Ok(manifest)
    }

    /// The positions of the first two entries naming the same archive file, if any.
    fn duplicate(&self) -> Option<(usize, usize)> {
        let mut seen = std::collections::HashMap::new();
        self.backups.iter().enumerate().find_map(|(i, e)| {
            seen.insert(e.backup_file.as_str(), i)
                .map(|first| (first, i))
        })
    }

    /// Locks `backup_dir`, loads its manifest, applies `change` and saves the result atomically.
    /// Nothing is written when `change` fails. A manifest of the Python scripts' format is
    /// refused (see [`Manifest::update_adopting`]).
    pub fn update<T>(
        backup_dir: &Path,
        change: impl FnOnce(&mut Manifest) -> Result<T>,
    ) -> Result<T> {
        let refuse = &mut |_: &mut Manifest| {
            Err(Error::ManifestParse {
                path: Self::path(backup_dir),
                line: 0,
                message: "it is in the Python scripts' format; resbak reindex upgrades it".into(),
            })
        };
        Self::update_adopting(backup_dir, refuse, change)
    }

    /// [`Manifest::update`] that first hands a manifest of the Python scripts' format to
    /// `adopt`, which gives its entries their checksums; the upgrade and `change` are then saved
    /// together, so `manifest.yaml.bak` keeps the scripts' file.
    pub fn update_adopting<T>(
        backup_dir: &Path,
        adopt: &mut dyn FnMut(&mut Manifest) -> Result<()>,
        change: impl FnOnce(&mut Manifest) -> Result<T>,
    ) -> Result<T> {
        let _lock = Lock::exclusive(backup_dir, LockFile::Manifest)?;
        let mut manifest = Self::load(backup_dir)?;
        if manifest.legacy {
            adopt(&mut manifest)?;
            manifest.legacy = false;
            keep_for_good(&Self::path(backup_dir))?;
        }
        // One that lost entries (cut short, edited by hand) still parses: it never replaces
        // the last copy, which may list them.
        let complete = manifest.lists_every_archive(backup_dir);
        let value = change(&mut manifest)?;
        manifest.save(backup_dir, complete)?;
        Ok(value)
    }

    /// Locks `backup_dir` and replaces its manifest with what `rebuild` makes of the current one
    /// (which may be missing or damaged: `rebuild` gets the load result). For `reindex`.
    pub fn replace<T>(
        backup_dir: &Path,
        rebuild: impl FnOnce(Result<Manifest>) -> Result<(Manifest, T)>,
    ) -> Result<T> {
        let _lock = Lock::exclusive(backup_dir, LockFile::Manifest)?;
        let loaded = Self::load(backup_dir);
        // Damaged, or sound but missing entries (cut short): never the last copy kept.
        let loaded_ok = loaded
            .as_ref()
            .is_ok_and(|m| m.lists_every_archive(backup_dir));
        let (manifest, value) = rebuild(loaded)?;
        manifest.save(backup_dir, loaded_ok)?;
        Ok(value)
    }

    /// Writes the manifest atomically, first keeping the previous version as `manifest.yaml.bak`
    /// when it was sound (a damaged one never replaces the last good copy). Callers hold the
    /// exclusive lock.
    fn save(mut self, backup_dir: &Path, previous_is_sound: bool) -> Result<()> {
        let path = Self::path(backup_dir);
        if previous_is_sound {
            keep_previous(&path)?;
        }
        // The metrics go to their own file, in place before the manifest that lists them.
        let taken: Vec<_> = self.backups.iter_mut().map(|e| e.metrics.take()).collect();
        let with: Vec<_> = self.backups.iter().zip(taken).collect();
        let (tmp, digests) = metrics::prepare(backup_dir, &with)?;
        if let Some(tmp) = tmp {
            atomic::persist(tmp, &metrics::path(backup_dir), true)?;
        }
        for (entry, digest) in self.backups.iter_mut().zip(digests) {
            if digest.is_some() {
                entry.metrics_sha256 = digest;
            }
        }
        // Both are written before either is renamed, so a full disk leaves both as they were;
        // once the manifest is renamed into place, the change is made. Should the checksum
        // list then fail to follow, it is removed rather than left disagreeing (the next
        // change writes it again).
        let sums_path = backup_dir.join(SUMS_NAME);
        let sums = atomic::prepare_file(&sums_path, |out| self.write_sums(out, &sums_path))?;
        let manifest = atomic::prepare_file(&path, |out| self.write_yaml(out).at("write", &path))?;
        crate::interrupt::catalogue_saved_by_next_commit();
        atomic::persist(manifest, &path, true)?;
        if atomic::persist(sums, &sums_path, true).is_err() {
            let _ = std::fs::remove_file(&sums_path);
        }
        Ok(())
    }

    /// Writes the manifest as YAML, one entry at a time: the text `serde_yaml` makes of the
    /// whole (with [`quote_times`]), without ever holding it all.
    fn write_yaml(&self, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(b"# resbak backup catalogue; edit only while no resbak runs.\n")?;
        writeln!(out, "version: {}", self.version)?;
        if self.backups.is_empty() {
            return out.write_all(b"backups: []\n");
        }
        out.write_all(b"backups:\n")?;
        for entry in &self.backups {
            let yaml =
                serde_yaml::to_string(std::slice::from_ref(entry)).map_err(io::Error::other)?;
            out.write_all(quote_times(&yaml).as_bytes())?;
        }
        Ok(())
    }

    /// Writes `SHA256SUMS` (in `sha256sum` format) for the catalogued archives, so
    /// `sha256sum -c SHA256SUMS` in the backup folder checks them without resbak.
    fn write_sums(&self, out: &mut dyn io::Write, path: &Path) -> Result<()> {
        let sums: String = self
            .sorted()
            .iter()
            .filter(|e| e.has_checksum())
            .flat_map(|e| {
                let index = e.index_sha256.as_ref().map(|sha| {
                    let name = crate::index::file_name(&e.backup_file);
                    format!("{sha}  {name}\n")
                });
                [Some(format!("{}  {}\n", e.sha256, e.backup_file)), index]
            })
            .flatten()
            .collect();
        out.write_all(sums.as_bytes()).at("write", path)
    }

    /// Whether every archive file in `backup_dir` is listed (see [`archive_files`]).
    fn lists_every_archive(&self, backup_dir: &Path) -> bool {
        archive_files(backup_dir)
            .is_ok_and(|files| files.iter().all(|(name, _)| self.find(name).is_some()))
    }

    /// The entry whose archive is `backup_file`.
    pub fn find(&self, backup_file: &str) -> Option<&Entry> {
        self.backups.iter().find(|e| e.backup_file == backup_file)
    }

    /// The newest regular backup of `strategy` (safety copies never count as latest).
    pub fn latest_regular(&self, strategy: &str) -> Option<&Entry> {
        self.regular_newest_first(strategy).first().copied()
    }

    /// The regular backups of `strategy`, newest first (see [`Manifest::newest_first`]); safety
    /// copies are never among them.
    pub fn regular_newest_first(&self, strategy: &str) -> Vec<&Entry> {
        self.newest_first(strategy, Kind::Regular)
    }

    /// The entries of `strategy` of `kind`, newest first by creation time (of two with the same
    /// time, the one registered later first).
    pub fn newest_first(&self, strategy: &str, kind: Kind) -> Vec<&Entry> {
        let mut same: Vec<(usize, &Entry)> = self
            .backups
            .iter()
            .enumerate()
            .filter(|(_, e)| e.strategy == strategy && e.kind == kind)
            .collect();
        same.sort_by_key(|&(i, e)| std::cmp::Reverse((e.created, i)));
        same.into_iter().map(|(_, e)| e).collect()
    }

    /// Entries grouped by strategy name, oldest first within each strategy.
    pub fn sorted(&self) -> Vec<&Entry> {
        self.sorted_positions()
            .into_iter()
            .map(|i| &self.backups[i])
            .collect()
    }

    /// Positions in [`Manifest::backups`] in the order of [`Manifest::sorted`].
    pub fn sorted_positions(&self) -> Vec<usize> {
        let key = |i: &usize| (&self.backups[*i].strategy, self.backups[*i].created);
        let mut positions: Vec<usize> = (0..self.backups.len()).collect();
        positions.sort_by(|a, b| key(a).cmp(&key(b)));
        positions
    }
}

/// How the first parse of a manifest reads: as strictly as the full one (YAML 1.2 booleans,
/// `<<` a plain key, repeated keys handed on as they come, plain scalars with underscores or
/// leading zeros as text where the type is open), with no limit on size but the default one on
/// nesting.
fn fast_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = None;
    budget.max_events = usize::MAX;
    budget.max_nodes = usize::MAX;
    budget.max_total_scalar_bytes = usize::MAX;
    serde_saphyr::options! {
        budget: Some(budget),
        strict_booleans: true,
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        underscored_numbers_as_strings: true,
        leading_zero_numbers_as_strings: true,
    }
}

/// The message for a manifest of format `version`, which this resbak does not read.
fn unsupported(version: u32) -> String {
    format!(
        "format version {version} is not supported (this resbak reads version {FORMAT_VERSION})"
    )
}

/// Reads a timestamp written as text or, by YAML 1.1 writers, as a number.
fn stamp<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    legacy::Stamp::deserialize(d).map(legacy::Stamp::text)
}

/// Reads `created`, saying what is expected when it is not a time with its zone.
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|e| {
        serde::de::Error::custom(format!(
            "created: {text:?} is not a time such as '2026-01-01T09:30:00Z' ({e})"
        ))
    })
}

/// Quotes the plain `timestamp` and `created` values of the entries of a manifest as
/// `serde_yaml` writes it (`- strategy: ...` then `  key: value` for each entry), which YAML 1.1
/// readers such as PyYAML would read as a number (`20261130_145907`) or a date, so every reader
/// reads the same text. (The YAML writer quotes only what YAML 1.2 would misread.) Only keys at
/// an entry's own level count: a metric or a line of a note spelled the same stays as it is.
fn quote_times(yaml: &str) -> String {
    let plain = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_digit() || b"_:.-+TZ".contains(&b))
    };
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let (lead, field) = (body.get(..2).unwrap_or(""), body.get(2..).unwrap_or(""));
        let quoted = ["timestamp: ", "created: "].iter().find_map(|key| {
            let value = field
                .strip_prefix(key)
                .filter(|_| lead == "  " || lead == "- ")?;
            plain(value).then(|| format!("{lead}{key}'{value}'"))
        });
        match quoted {
            Some(quoted) => {
                out.push_str(&quoted);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The 1-based line of the `backup_file` key of entry `index` in a block-style manifest, or 0.
pub(crate) fn entry_line(text: &str, index: usize) -> usize {
    let is_key = |line: &str| {
        let line = line.trim_start().trim_start_matches("- ").trim_start();
        line.strip_prefix("backup_file")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| is_key(line))
        .nth(index)
        .map_or(0, |(n, _)| n + 1)
}

/// Name of the copy of the Python scripts' manifest kept when resbak upgrades it.
pub const SCRIPTS_COPY: &str = "manifest.yaml.pre-resbak";

/// Copies the Python scripts' manifest at `path` to [`SCRIPTS_COPY`] beside it, unless a copy
/// is there already: `manifest.yaml.bak` holds it only until the next change.
fn keep_for_good(path: &Path) -> Result<()> {
    let copy = path.with_file_name(SCRIPTS_COPY);
    if copy.exists() {
        return Ok(());
    }
    let mut current = File::open(path).at("read", path)?;
    atomic::write_file(&copy, |out| {
        std::io::copy(&mut current, out).map(drop).at("copy", path)
    })
}

/// Copies the manifest at `path`, if any, to `<path>.bak` atomically.
fn keep_previous(path: &Path) -> Result<()> {
    let mut current = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let bak = path.with_extension("yaml.bak");
    atomic::write_file(&bak, |out| {
        std::io::copy(&mut current, out).map(drop).at("copy", path)
    })
}

/// Every `.tar.gz` file in `dir` with its size, sorted by name; empty if `dir` does not exist.
///
/// # Errors
/// When `dir` cannot be read.
pub fn archive_files(dir: &Path) -> Result<Vec<(String, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
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

/// The backup folder's lock files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFile {
    /// Held exclusively while the manifest is read, changed and written.
    Manifest,
    /// Held shared while archives are read (verify, restore), exclusively while they are deleted.
    Archives,
}

impl LockFile {
    /// The lock file's name inside the backup folder.
    pub fn name(self) -> &'static str {
        match self {
            LockFile::Manifest => LOCK_NAME,
            LockFile::Archives => "archives.lock",
        }
    }
}

/// An advisory OS lock on one of the backup folder's lock files, released on drop or when the
/// process dies, so a killed resbak never leaves a stale lock.
#[derive(Debug)]
pub struct Lock {
    _file: Option<File>,
}

impl Lock {
    /// Blocks until this process holds `which` exclusively.
    pub fn exclusive(backup_dir: &Path, which: LockFile) -> Result<Lock> {
        Self::exclusive_at(&backup_dir.join(which.name()))
    }

    /// Blocks until this process holds the lock file at `path` (made if missing) exclusively.
    pub fn exclusive_at(path: &Path) -> Result<Lock> {
        let path = path.to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at("open lock file", &path)?;
        file.lock().at("lock", &path)?;
        Ok(Lock { _file: Some(file) })
    }

    /// Blocks until this process holds `which` shared with other readers. In a folder that does
    /// not exist or where the lock file cannot be created (read-only), nobody can change
    /// anything and no lock is taken.
    pub fn shared(backup_dir: &Path, which: LockFile) -> Result<Lock> {
        let path = backup_dir.join(which.name());
        let opened = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path));
        let file = match opened {
            Ok(file) => file,
            Err(e) if unwritable(&e) => return Ok(Lock { _file: None }),
            Err(e) => return Err(Error::io("open lock file", &path, e)),
        };
        file.lock_shared().at("lock", &path)?;
        Ok(Lock { _file: Some(file) })
    }
}

/// Errors that mean nobody can write in the folder, so no writer needs locking out.
fn unwritable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    )
}

#[cfg(test)]
impl Entry {
    /// A regular entry for unit tests: `file` of `strategy`, created `secs` (plus 7 ns) after
    /// the epoch, one entry of one byte, no digests.
    pub(crate) fn sample(strategy: &str, file: &str, secs: i64) -> Entry {
        Entry {
            strategy: strategy.into(),
            timestamp: "20260101_000000".into(),
            backup_file: file.into(),
            size: 1,
            sha256: "0".repeat(64),
            entries: 1,
            bytes: 0,
            kinds: None,
            created: DateTime::from_timestamp(secs, 7).expect("a time in range"),
            meta_digest: None,
            content_digest: None,
            kind: Kind::Regular,
            checksum_source: None,
            converted_from: None,
            imported_path: None,
            metrics: None,
            tags: Vec::new(),
            note: None,
            pin: false,
            index_sha256: None,
            metrics_sha256: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(strategy: &str, file: &str, secs: i64) -> Entry {
        Entry::sample(strategy, file, secs)
    }

    #[test]
    fn missing_manifest_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
    }

    #[test]
    fn update_round_trips_with_nanosecond_times() {
        let dir = tempfile::tempdir().unwrap();
        Manifest::update(dir.path(), |m| {
            m.backups.push(entry("a", "a_1.tar.gz", 100));
            Ok(())
        })
        .unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.backups, vec![entry("a", "a_1.tar.gz", 100)]);
    }

    #[test]
    fn both_parses_read_what_resbak_writes_alike_and_it_is_written_as_one_document() {
        let tricky = [
            "yes",
            "null",
            "~",
            "1e3",
            "0x1F",
            "# not a comment",
            "a: b",
            "'\"",
            "",
        ];
        let metrics = [
            ("Sharpe Ratio".to_string(), 1.25),
            ("# Trades".into(), 1633.0),
            ("runs/0001_sma10_50:Return [%]".into(), -0.5),
            ("Duration".into(), f64::INFINITY),
            ("tiny".into(), 1e-300),
        ];
        let full = Entry {
            kind: Kind::Safety,
            checksum_source: Some(ChecksumSource::Imported),
            converted_from: Some("2024-02-20 14:30:00 Europe/Berlin (+01:00)".into()),
            metrics: Some(metrics.into_iter().collect()),
            tags: tricky.iter().map(|t| t.to_string()).collect(),
            note: Some(tricky.join("\n")),
            pin: true,
            index_sha256: Some("ab".repeat(32)),
            kinds: Some(crate::archive::Counts {
                files: 3,
                folders: 2,
                links: 1,
            }),
            ..entry("a", "a_20260101_000000.tar.gz", 100)
        };
        let manifest = Manifest {
            backups: vec![full, entry("b", "b_1.tar.gz", 7)],
            ..Manifest::default()
        };
        let header = "# resbak backup catalogue; edit only while no resbak runs.\n";
        let text = serde_yaml::to_string(&manifest).unwrap();
        let mut streamed = Vec::new();
        manifest.write_yaml(&mut streamed).unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            format!("{header}{}", quote_times(&text))
        );
        let empty = Manifest::default();
        let mut streamed = Vec::new();
        empty.write_yaml(&mut streamed).unwrap();
        let whole = serde_yaml::to_string(&empty).unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            format!("{header}{whole}")
        );
        let fast: Manifest = serde_saphyr::from_str_with_options(&text, fast_options()).unwrap();
        assert_eq!(fast, Manifest::parse(&text).unwrap());
        assert_eq!(fast.checked(&text).unwrap(), manifest);
    }

    /// Whatever the first parse takes from a hand-edited manifest, the full parse takes alike:
    /// resbak never acts on (and writes back) a value only the faster reader saw. (The first
    /// also reads a number or boolean where the full parse refuses its spelling, `size: 1_000`
    /// or `pin: 'true'`, as the value it spells.)
    #[test]
    fn a_hand_edit_the_first_parse_takes_the_full_parse_takes_alike() {
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        let text = quote_times(&serde_yaml::to_string(&m).unwrap());
        let edits = [
            ("pin: true", "pin: yes"),
            ("pin: true", "pin: on"),
            (
                "timestamp: '20260101_000000'",
                "timestamp: 2026_0101_000000",
            ),
            ("timestamp: '20260101_000000'", "timestamp: 020260101000000"),
            ("pin: true", "<<: {pin: true}"),
            ("pin: true", "metrics: {a: 1, a: 2}"),
            ("pin: true", "pin: true\n  pin: false"),
        ];
        let with_pin = text.replace("  bytes: 0\n", "  bytes: 0\n  pin: true\n");
        assert_ne!(with_pin, text);
        for (from, to) in edits {
            let edited = with_pin.replace(from, to);
            assert_ne!(edited, with_pin, "{to}");
            let fast = serde_saphyr::from_str_with_options::<Manifest>(&edited, fast_options());
            if let Ok(fast) = fast {
                let full = serde_yaml::from_str::<Manifest>(&edited);
                assert_eq!(full.ok(), Some(fast), "{to}");
            }
        }
        for (from, to, size, pin) in [
            ("size: 1\n", "size: 1_000\n", 1000, true),
            ("size: 1\n", "size: 0x10\n", 16, true),
            ("pin: true\n", "pin: 'true'\n", 1, true),
            ("pin: true\n", "pin: \"false\"\n", 1, false),
        ] {
            let edited = with_pin.replace(from, to);
            let fast: Manifest =
                serde_saphyr::from_str_with_options(&edited, fast_options()).unwrap();
            assert_eq!(
                (fast.backups[0].size, fast.backups[0].pin),
                (size, pin),
                "{to}"
            );
        }
    }

    #[test]
    fn a_manifest_of_a_later_format_says_so_before_any_key_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        let text = serde_yaml::to_string(&m)
            .unwrap()
            .replace("version: 1", "version: 2");
        let text = text.replace("  bytes: 0\n", "  bytes: 0\n  added_later: x\n");
        std::fs::write(Manifest::path(dir.path()), text).unwrap();
        match Manifest::load(dir.path()).unwrap_err() {
            Error::ManifestParse { line, message, .. } => {
                assert_eq!(line, 1);
                assert!(
                    message.contains("format version 2 is not supported"),
                    "{message}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let result: Result<()> = Manifest::update(dir.path(), |m| {
            m.backups.push(entry("a", "a_1.tar.gz", 100));
            Err(Error::EmptyResults { path: "x".into() })
        });
        assert!(result.is_err());
        assert!(!Manifest::path(dir.path()).exists());
    }

    #[test]
    fn every_update_keeps_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let add = |file: &'static str| {
            Manifest::update(dir.path(), |m| {
                m.backups.push(entry("a", file, 1));
                Ok(())
            })
        };
        add("a_1.tar.gz").unwrap();
        assert!(!dir.path().join("manifest.yaml.bak").exists());
        add("a_2.tar.gz").unwrap();
        let sums = std::fs::read_to_string(dir.path().join(SUMS_NAME)).unwrap();
        let zeros = "0".repeat(64);
        assert_eq!(sums, format!("{zeros}  a_1.tar.gz\n{zeros}  a_2.tar.gz\n"));
        let bak = std::fs::read_to_string(dir.path().join("manifest.yaml.bak")).unwrap();
        let previous: Manifest = serde_yaml::from_str(&bak).unwrap();
        assert_eq!(previous.backups, vec![entry("a", "a_1.tar.gz", 1)]);
    }

    #[test]
    fn entries_that_reach_outside_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (strategy, file) in [
            ("a", "../x.tar.gz"),
            ("a", "/etc/x.tar.gz"),
            ("a", "x.txt"),
            ("..", "a.tar.gz"),
        ] {
            let mut m = Manifest::default();
            m.backups.push(entry(strategy, file, 1));
            std::fs::write(
                Manifest::path(dir.path()),
                serde_yaml::to_string(&m).unwrap(),
            )
            .unwrap();
            assert!(Manifest::load(dir.path()).is_err(), "{strategy} {file}");
        }
    }

    #[test]
    fn damaged_manifest_names_line_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = Manifest::path(dir.path());
        std::fs::write(&path, "version: 1\nbackups:\n  - strategy: [oops\n").unwrap();
        let err = Manifest::update(dir.path(), |_| Ok(())).unwrap_err();
        match &err {
            Error::ManifestParse { line, .. } => assert!(*line >= 3, "line {line}"),
            other => panic!("unexpected {other}"),
        }
        assert!(std::fs::read_to_string(&path).unwrap().contains("[oops"));
    }

    #[test]
    fn hand_edits_that_cannot_be_read_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        m.backups.push(entry("a", "a_2.tar.gz", 2));
        let text = quote_times(&serde_yaml::to_string(&m).unwrap());
        let created = text
            .lines()
            .filter(|l| l.starts_with("  created: "))
            .nth(1)
            .unwrap();
        let created = created.trim_start_matches("  created: ");
        let second = 1 + text.lines().position(|l| l.contains("a_2.tar.gz")).unwrap();
        for (edited, says, line) in [
            (
                text.replace(created, "2026-12-01 05:13:22"),
                "is not a time such as",
                second,
            ),
            (text.replace(created, "~"), "created", second),
            (
                text.replace("a_2.tar.gz", "../victim.tar.gz"),
                "plain .tar.gz",
                second,
            ),
            ("\n  \n".to_string(), "the file is empty", 0),
        ] {
            std::fs::write(Manifest::path(dir.path()), &edited).unwrap();
            match Manifest::load(dir.path()).unwrap_err() {
                Error::ManifestParse {
                    line: at, message, ..
                } => {
                    assert!(message.contains(says), "{message}");
                    assert!(
                        line == 0 || (line - 3..line + 9).contains(&at),
                        "{at}: {message}"
                    );
                }
                other => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn two_entries_for_one_archive_are_refused_at_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        m.backups.push(entry("a", "a_2.tar.gz", 2));
        m.backups.push(entry("b", "a_1.tar.gz", 3));
        let text = serde_yaml::to_string(&m).unwrap();
        std::fs::write(Manifest::path(dir.path()), &text).unwrap();
        let second = text
            .lines()
            .position(|l| l.contains("strategy: b"))
            .unwrap();
        match Manifest::load(dir.path()).unwrap_err() {
            Error::ManifestParse { line, message, .. } => {
                assert!((second..second + 4).contains(&line), "line {line}");
                assert!(message.contains("entries 1 and 3"), "{message}");
                let hint = Manifest::load(dir.path()).unwrap_err().to_string();
                assert_eq!(hint.matches("resbak reindex").count(), 1, "{hint}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_sha256_that_is_not_one_is_refused_and_an_empty_one_loads() {
        let dir = tempfile::tempdir().unwrap();
        let write = |edit: &dyn Fn(&mut Entry)| {
            let mut m = Manifest::default();
            m.backups.push(entry("a", "a_1.tar.gz", 1));
            m.backups.push(entry("a", "a_2.tar.gz", 2));
            edit(&mut m.backups[1]);
            std::fs::write(
                Manifest::path(dir.path()),
                serde_yaml::to_string(&m).unwrap(),
            )
            .unwrap();
        };
        let hand_edited: [&dyn Fn(&mut Entry); 3] = [
            &|e| e.sha256 = "a37420732d088e45".into(),
            &|e| e.sha256 = "Z".repeat(64),
            &|e| e.index_sha256 = Some("A".repeat(64)),
        ];
        for edit in hand_edited {
            write(edit);
            match Manifest::load(dir.path()).unwrap_err() {
                Error::ManifestParse { line, message, .. } => {
                    assert!(
                        line > 3 && message.contains("\"a_2.tar.gz\""),
                        "{line} {message}"
                    );
                }
                other => panic!("unexpected {other}"),
            }
        }
        // Adopted from the scripts' manifest without a checksum (the archive was unreadable).
        write(&|e| e.sha256 = String::new());
        assert_eq!(Manifest::load(dir.path()).unwrap().backups.len(), 2);
    }

    #[test]
    fn kind_defaults_to_regular_and_safety_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        m.backups.push(Entry {
            kind: Kind::Safety,
            ..entry("a", "a_2.tar.gz", 2)
        });
        let text = serde_yaml::to_string(&m).unwrap();
        assert_eq!(
            text.matches("kind:").count(),
            1,
            "old manifests stay as they were"
        );
        std::fs::write(Manifest::path(dir.path()), &text).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded, m);
        assert_eq!(
            loaded.latest_regular("a").unwrap().backup_file,
            "a_1.tar.gz"
        );
    }

    #[test]
    fn regular_backups_newest_first_skip_safety_copies() {
        let mut m = Manifest::default();
        m.backups.push(entry("a", "a_3.tar.gz", 3));
        m.backups.push(entry("a", "a_1.tar.gz", 1));
        m.backups.push(entry("b", "b_9.tar.gz", 9));
        m.backups.push(Entry {
            kind: Kind::Safety,
            ..entry("a", "a_4.tar.gz", 4)
        });
        m.backups.push(entry("a", "a_3b.tar.gz", 3));
        let files: Vec<&str> = m
            .regular_newest_first("a")
            .iter()
            .map(|e| e.backup_file.as_str())
            .collect();
        assert_eq!(files, ["a_3b.tar.gz", "a_3.tar.gz", "a_1.tar.gz"]);
        assert_eq!(m.latest_regular("a").unwrap().backup_file, "a_3b.tar.gz");
        assert!(m.regular_newest_first("c").is_empty());
    }

    #[test]
    fn times_are_written_quoted_and_numeric_timestamps_are_read() {
        let dir = tempfile::tempdir().unwrap();
        Manifest::update(dir.path(), |m| {
            m.backups.push(entry("a", "a_1.tar.gz", 100));
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(Manifest::path(dir.path())).unwrap();
        assert!(text.contains("  timestamp: '20260101_000000'\n"), "{text}");
        assert!(
            text.contains("  created: '1970-01-01T00:01:40.000000007Z'\n"),
            "{text}"
        );
        let numeric = text.replace("'20260101_000000'", "20260101000000");
        std::fs::write(Manifest::path(dir.path()), numeric).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.backups[0].timestamp, "20260101_000000");
    }

    #[test]
    fn only_the_entries_own_times_are_quoted_never_a_note_or_a_metric() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = [
            ("timestamp".to_string(), 20260101.0),
            ("created".into(), 2.0),
        ];
        let sample = Entry {
            note: Some("first line\ncreated: 2026-01-01\ntimestamp: 1".into()),
            metrics: Some(metrics.into_iter().collect()),
            ..entry("a", "a_1.tar.gz", 100)
        };
        Manifest::update(dir.path(), |m| {
            m.backups.push(sample.clone());
            Ok(())
        })
        .unwrap();
        let mut loaded = Manifest::load(dir.path()).unwrap();
        loaded.attach_metrics(dir.path()).unwrap();
        let digest = loaded.backups[0].metrics_sha256.clone();
        assert!(digest.as_deref().is_some_and(is_digest), "{digest:?}");
        assert_eq!(
            loaded.backups,
            vec![Entry {
                metrics_sha256: digest,
                ..sample
            }]
        );
    }

    #[test]
    fn an_older_manifest_loads_unchanged_and_gains_no_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let old = format!(
            "version: 1\nbackups:\n- strategy: a\n  timestamp: 20260101_000000\n  \
             backup_file: a_1.tar.gz\n  size: 10\n  sha256: '{}'\n  files: 3\n  \
             bytes: 5\n  created: 2026-01-01T00:00:00Z\n",
            "0".repeat(64)
        );
        std::fs::write(Manifest::path(dir.path()), old).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        let e = &loaded.backups[0];
        assert_eq!(
            (e.metrics.as_ref(), e.tags.len(), &e.note, e.pin),
            (None, 0, &None, false)
        );
        let text = serde_yaml::to_string(&loaded).unwrap();
        for key in ["metrics", "tags", "note", "pin"] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }

    #[test]
    fn sorted_groups_by_strategy_then_time() {
        let mut m = Manifest::default();
        m.backups.push(entry("b", "b_2", 20));
        m.backups.push(entry("a", "a_2", 20));
        m.backups.push(entry("b", "b_1", 10));
        let order: Vec<&str> = m.sorted().iter().map(|e| e.backup_file.as_str()).collect();
        assert_eq!(order, ["a_2", "b_1", "b_2"]);
    }
}
