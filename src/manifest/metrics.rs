//! `manifest.metrics.jsonl` beside the manifest: each backup's headline metrics (see
//! [`crate::metrics`]). They live out of `manifest.yaml` because a parameter sweep records tens
//! of thousands of them per backup, and the commands that never read metrics (`ls`, `cat`,
//! `restore`, `verify`, `backup`) must not parse them.
//!
//! JSON Lines: a header `{"version":1}`, then one record per line, `{"archive", "sha256",
//! "metrics"}`, read and rewritten a line at a time, so memory holds one record whatever the
//! number of backups. A record belongs to the entry that names the same archive and SHA-256 and
//! records the SHA-256 of the record's metrics text (`metrics_sha256`): a record lost, edited or
//! damaged is found out, never shown. Metrics are derived data: such a record is a warning where
//! metrics are shown, never a failed command, and `resbak metrics --refresh` reads them back
//! from the archives.

use super::Entry;
use crate::error::{Error, IoContext, Result};
use crate::metrics::Metrics;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// File name of the metrics file inside the backup folder.
pub const FILE_NAME: &str = "manifest.metrics.jsonl";
/// The format this resbak writes and reads.
const VERSION: u32 = 1;

/// The first line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: u32,
}

/// One line after the header: the metrics of one archive, as written (raw JSON text), and the
/// SHA-256 that ties them to its entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<'a> {
    archive: String,
    sha256: String,
    #[serde(borrow)]
    metrics: &'a RawValue,
}

/// Path of the metrics file in `backup_dir`.
pub fn path(backup_dir: &Path) -> PathBuf {
    backup_dir.join(FILE_NAME)
}

/// Gives each of `entries` without metrics those recorded for it: the record of the same
/// archive and SHA-256, whose metrics text has the digest the entry records.
///
/// # Errors
/// One line on the records that could not be given: the file unreadable, or records missing
/// or altered. The entries they belong to stay without metrics; the others get theirs.
pub fn attach(backup_dir: &Path, entries: &mut [Entry]) -> std::result::Result<(), String> {
    let path = path(backup_dir);
    let mut wanted: HashMap<&str, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.metrics.is_none() && e.metrics_sha256.is_some() {
            wanted.insert(&e.backup_file, i);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    let read = each_record(&path, |line, record| {
        let Some(&i) = wanted.get(record.archive.as_str()) else {
            return Ok(());
        };
        let entry = &entries[i];
        let raw = record.metrics.get();
        if record.sha256 == entry.sha256 && entry.metrics_sha256.as_deref() == Some(&sha256(raw)) {
            let Values(metrics) =
                serde_json::from_str(raw).map_err(|e| damaged(&path, line, &e))?;
            found.push((i, metrics));
            wanted.remove(record.archive.as_str());
        }
        Ok(())
    });
    let missing = wanted.len();
    let how = match read {
        Ok(true) => "missing or altered",
        Ok(false) => "missing",
        Err(why) => return Err(why.to_string()),
    };
    for (i, metrics) in found {
        entries[i].metrics = Some(metrics);
    }
    match missing {
        0 => Ok(()),
        n => Err(lost(n, &path, how)),
    }
}

/// Why the metrics file could not be read or written, as one line: an I/O error (`Io`), or
/// what is not this format (`Damaged`).
enum Unread {
    Io(Error),
    Damaged(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Unread::Io(e) => e.fmt(f),
            Unread::Damaged(why) => f.write_str(why),
        }
    }
}

/// The file at `path` is damaged at `line`.
fn damaged(path: &Path, line: usize, e: &dyn std::fmt::Display) -> Unread {
    Unread::Damaged(format!(
        "{} is damaged at line {line} ({e})",
        path.display()
    ))
}

/// Calls `each` with every record of the file at `path` and its line number, skipping lines
/// that are not records (a line cut short, edited, not even text); says whether the file
/// exists.
///
/// # Errors
/// When the file cannot be read or its header is not this format, or the error `each` gave.
fn each_record(
    path: &Path,
    mut each: impl FnMut(usize, Record) -> std::result::Result<(), Unread>,
) -> std::result::Result<bool, Unread> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Unread::Io(Error::io("read", path, e))),
    };
    let mut lines = BufReader::new(file);
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        match lines.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => number += 1,
            Err(e) => return Err(Unread::Io(Error::io("read", path, e))),
        }
        // A line that is not even text is one record lost, like a line cut short.
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if number == 1 {
            match serde_json::from_str::<Header>(text) {
                Ok(Header { version: VERSION }) => continue,
                Ok(Header { version }) => {
                    return Err(damaged(path, 1, &format!("format version {version}")));
                }
                Err(e) => return Err(damaged(path, 1, &e)),
            }
        }
        if let Ok(record) = serde_json::from_str::<Record>(text) {
            each(number, record)?;
        }
    }
    match number {
        0 => Err(damaged(path, 1, &"the file is empty")),
        _ => Ok(true),
    }
}

/// The line for `n` backups whose metrics are `how` in the file at `path`.
fn lost(n: usize, path: &Path, how: &str) -> String {
    let whose = crate::error::count(n, "backup", "backups");
    format!("the metrics of {whose} are {how} in {}", path.display())
}

/// Writes the file for `entries` (with the metrics each holds in memory, if any) to a synced
/// temp file beside it, for the caller to put in place: the new metrics, and for the others
/// the record the file already holds for the same archive and SHA-256, copied as it is, a line
/// at a time. Returns it and, for each entry, the digest of the metrics written for it now.
/// Nothing is written when there is nothing to record and no file.
pub(super) fn prepare(
    backup_dir: &Path,
    entries: &[(&Entry, Option<Metrics>)],
) -> Result<(Option<tempfile::NamedTempFile>, Vec<Option<String>>)> {
    let path = path(backup_dir);
    let exists = path.try_exists().at("read", &path)?;
    if !exists && entries.iter().all(|(_, m)| m.is_none()) {
        return Ok((None, vec![None; entries.len()]));
    }
    let kept: HashMap<&str, &str> = (entries.iter())
        .filter(|(_, metrics)| metrics.is_none())
        .map(|(e, _)| (e.backup_file.as_str(), e.sha256.as_str()))
        .collect();
    let mut digests = Vec::with_capacity(entries.len());
    let tmp = crate::atomic::prepare_file(&path, |out| {
        writeln!(out, "{}", json(&Header { version: VERSION })?).at("write", &path)?;
        // A record that cannot be carried over (a damaged file, a line cut short) is left out:
        // the manifest's digest then tells every command that shows metrics that it is
        // missing, and `metrics --refresh` reads it again.
        let mut written = HashSet::new();
        let read = each_record(&path, |_, record| {
            let name = record.archive.as_str();
            if kept.get(name) == Some(&record.sha256.as_str()) && written.insert(name.to_string()) {
                write_record(out, name, &record.sha256, record.metrics.get())
                    .map_err(|e| Unread::Io(Error::io("write", &path, e)))?;
            }
            Ok(())
        });
        // A file that cannot be read is never replaced by one without its records.
        if let Err(Unread::Io(e)) = read {
            return Err(e);
        }
        for (entry, metrics) in entries {
            let Some(metrics) = metrics else {
                digests.push(None);
                continue;
            };
            let text = json(&Parsed(metrics))?;
            digests.push(Some(sha256(&text)));
            write_record(out, &entry.backup_file, &entry.sha256, &text).at("write", &path)?;
        }
        Ok(())
    })?;
    Ok((Some(tmp), digests))
}

/// Writes one record's line.
fn write_record(
    out: &mut dyn Write,
    archive: &str,
    sha256: &str,
    metrics: &str,
) -> std::io::Result<()> {
    let archive = serde_json::to_string(archive).map_err(std::io::Error::other)?;
    let sha256 = serde_json::to_string(sha256).map_err(std::io::Error::other)?;
    writeln!(
        out,
        "{{\"archive\":{archive},\"sha256\":{sha256},\"metrics\":{metrics}}}"
    )
}

/// `value` as compact JSON.
fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::io("write", FILE_NAME, e.into()))
}

/// Lowercase hex SHA-256 of `text`.
fn sha256(text: &str) -> String {
    use sha2::Digest;
    crate::checksum::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// New metrics, as they are written.
struct Parsed<'a>(&'a Metrics);

impl Serialize for Parsed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(key, &Number(*value))?;
        }
        map.end()
    }
}

/// A metric value; JSON has no NaN or infinity, so those are written as `"NaN"`, `"inf"` and
/// `"-inf"`.
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }
}

/// Metrics read as [`Parsed`] writes them.
struct Values(Metrics);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = Values;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of metric values")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Values, A::Error> {
                let mut metrics = Metrics::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    metrics.insert(key, value.0);
                }
                Ok(Values(metrics))
            }
        }
        d.deserialize_map(Map)
    }
}

/// One value: a number, or one of the three words [`Number`] writes.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Any;
        impl Visitor<'_> for Any {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
                Ok(Value(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
                Ok(Value(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
                Ok(Value(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Value, E> {
                match v {
                    "NaN" => Ok(Value(f64::NAN)),
                    "inf" => Ok(Value(f64::INFINITY)),
                    "-inf" => Ok(Value(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Any)
    }
}
