//! `manifest.metrics.json` beside the manifest: each backup's headline metrics (see
//! [`crate::metrics`]). They live out of `manifest.yaml` because a parameter sweep records tens
//! of thousands of them per backup, and the commands that never read metrics (`ls`, `cat`,
//! `restore`, `verify`, `backup`) must not parse them.
//!
//! A record belongs to the entry that names the same archive and SHA-256 and records the
//! SHA-256 of the record's metrics (`metrics_sha256`): a record lost, edited or damaged is found
//! out, never shown. Metrics are derived data: such a record is a warning where metrics are
//! shown, never a failed command, and `resbak metrics --refresh` reads them back from the
//! archives.

use super::Entry;
use crate::error::{Error, IoContext, Result};
use crate::metrics::Metrics;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// File name of the metrics file inside the backup folder.
pub const FILE_NAME: &str = "manifest.metrics.json";
/// The format this resbak writes and reads.
const VERSION: u32 = 1;

/// The whole file; `M` is a record's metrics, parsed or still raw text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File<M> {
    version: u32,
    backups: BTreeMap<String, Record<M>>,
}

/// The metrics of one archive, and the SHA-256 that ties them to its entry.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<M> {
    sha256: String,
    metrics: M,
}

/// Path of the metrics file in `backup_dir`.
pub fn path(backup_dir: &Path) -> PathBuf {
    backup_dir.join(FILE_NAME)
}

/// Gives each of `entries` without metrics those recorded for it: the record of the same
/// archive and SHA-256, whose own digest is the one the entry records.
///
/// # Errors
/// One line on the records that could not be given: the file unreadable, or records missing
/// or altered. The entries they belong to stay without metrics; the others get theirs.
pub fn attach(backup_dir: &Path, entries: &mut [Entry]) -> std::result::Result<(), String> {
    let path = path(backup_dir);
    let expected = entries
        .iter()
        .filter(|e| e.metrics.is_none() && e.metrics_sha256.is_some());
    let expected = expected.count();
    let text = match read(&path) {
        Ok(Some(text)) => text,
        Ok(None) if expected == 0 => return Ok(()),
        Ok(None) => return Err(lost(expected, &path, "missing")),
        Err(e) => return Err(e.to_string()),
    };
    let file = match parse::<&RawValue>(&text) {
        Ok(file) => file,
        Err(_) if expected == 0 => return Ok(()),
        Err(e) => return Err(format!("{} is damaged ({e})", path.display())),
    };
    let mut altered = 0;
    for entry in entries.iter_mut().filter(|e| e.metrics.is_none()) {
        let Some(digest) = &entry.metrics_sha256 else {
            continue;
        };
        let record = file.backups.get(&entry.backup_file);
        let record = record.filter(|r| r.sha256 == entry.sha256);
        let raw = record.map(|r| r.metrics.get()).unwrap_or_default();
        match serde_json::from_str::<Values>(raw) {
            Ok(Values(metrics)) if sha256(raw) == *digest => entry.metrics = Some(metrics),
            _ => altered += 1,
        }
    }
    match altered {
        0 => Ok(()),
        n => Err(lost(n, &path, "missing or altered")),
    }
}

/// The line for `n` backups whose metrics are `how` in the file at `path`.
fn lost(n: usize, path: &Path, how: &str) -> String {
    let whose = crate::error::count(n, "backup", "backups");
    format!("the metrics of {whose} are {how} in {}", path.display())
}

/// Writes the file for `entries` (with the metrics each holds in memory, if any) to a synced
/// temp file beside it, for the caller to put in place: the new metrics, and for the others
/// the record the file already holds for the same archive and SHA-256. Returns it and, for
/// each entry, the digest of the metrics written for it now. Nothing is written when there is
/// nothing to record and no file.
pub(super) fn prepare(
    backup_dir: &Path,
    entries: &[(&Entry, Option<Metrics>)],
) -> Result<(Option<tempfile::NamedTempFile>, Vec<Option<String>>)> {
    let path = path(backup_dir);
    let old = read(&path)?;
    // A damaged file cannot be carried over: the manifest's digests then tell every command
    // that shows metrics that they are missing, and `metrics --refresh` reads them again.
    let mut old = (old.as_deref())
        .and_then(|text| parse::<&RawValue>(text).ok())
        .map(|f| f.backups)
        .unwrap_or_default();
    let mut records: BTreeMap<String, Record<Raw>> = BTreeMap::new();
    let mut digests = Vec::with_capacity(entries.len());
    for (entry, metrics) in entries {
        let name = &entry.backup_file;
        let record = match metrics {
            Some(metrics) => {
                let text = serde_json::to_string(&Parsed(metrics))
                    .map_err(|e| Error::io("write", &path, e.into()))?;
                digests.push(Some(sha256(&text)));
                let metrics = RawValue::from_string(text).map(Raw::Owned);
                let metrics = metrics.map_err(|e| Error::io("write", &path, e.into()))?;
                Some((entry.sha256.clone(), metrics))
            }
            None => {
                digests.push(None);
                let kept = old.remove(name).filter(|r| r.sha256 == entry.sha256);
                kept.map(|r| (r.sha256, Raw::Text(r.metrics)))
            }
        };
        if let Some((sha256, metrics)) = record {
            records.insert(name.clone(), Record { sha256, metrics });
        }
    }
    if records.is_empty() && !path.exists() {
        return Ok((None, digests));
    }
    let file = File {
        version: VERSION,
        backups: records,
    };
    let tmp = crate::atomic::prepare_file(&path, |out| {
        serde_json::to_writer(&mut *out, &file).map_err(|e| Error::io("write", &path, e.into()))?;
        out.write_all(b"\n").at("write", &path)
    })?;
    Ok((Some(tmp), digests))
}

/// Lowercase hex SHA-256 of `text`.
fn sha256(text: &str) -> String {
    use sha2::Digest;
    crate::checksum::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// The file's text; `None` when there is none.
fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// The file parsed from `text`, if it is of this version.
fn parse<'a, M: Deserialize<'a>>(text: &'a str) -> serde_json::Result<File<M>> {
    let file: File<M> = serde_json::from_str(text)?;
    match file.version {
        VERSION => Ok(file),
        v => Err(de::Error::custom(format!(
            "format version {v} is not {VERSION}"
        ))),
    }
}

/// A record's metrics as they are written: carried over as they were, or new.
enum Raw<'a> {
    Text(&'a RawValue),
    Owned(Box<RawValue>),
}

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Raw::Text(raw) => raw.serialize(s),
            Raw::Owned(raw) => raw.serialize(s),
        }
    }
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
