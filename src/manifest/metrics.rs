//! `manifest.metrics.json` beside the manifest: each backup's headline metrics (see
//! [`crate::metrics`]). They live out of `manifest.yaml` because a parameter sweep records tens
//! of thousands of them per backup, and the commands that never read metrics (`ls`, `cat`,
//! `restore`, `verify`, `backup`) must not parse them.
//!
//! A record belongs to the entry that names the same archive and SHA-256; any other is ignored
//! when read. Metrics are derived data: a damaged file is a warning, never a failed command,
//! and `resbak metrics --refresh` reads them back from the archives.

use super::Entry;
use crate::error::{Error, IoContext, Result};
use crate::metrics::Metrics;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Gives each of `entries` without metrics those recorded for it.
///
/// # Errors
/// One line on why the file could not be read; `entries` are then left as they were.
pub fn attach(backup_dir: &Path, entries: &mut [Entry]) -> std::result::Result<(), String> {
    let path = path(backup_dir);
    let text = match read(&path) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let damaged = |e: serde_json::Error| format!("{} is damaged ({e})", path.display());
    let file: File<&RawValue> = parse(&text).map_err(damaged)?;
    let mut found = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(record) = file.backups.get(&entry.backup_file)
            && entry.metrics.is_none()
            && record.sha256 == entry.sha256
        {
            let Values(metrics) = serde_json::from_str(record.metrics.get()).map_err(damaged)?;
            found.push((i, metrics));
        }
    }
    for (i, metrics) in found {
        entries[i].metrics = Some(metrics);
    }
    Ok(())
}

/// Writes the file for `entries` to a synced temp file beside it, for the caller to put in
/// place: each entry's metrics in memory, else the record the file already holds for it.
/// Records of archives in `present` (files in the folder) stay too, so a crash before the
/// manifest follows loses none. Nothing is written when there is nothing to record and no file.
pub(super) fn prepare(
    backup_dir: &Path,
    entries: &[(&Entry, Option<Metrics>)],
    present: &HashSet<String>,
) -> Result<Option<tempfile::NamedTempFile>> {
    let path = path(backup_dir);
    let old = read(&path)?;
    // A damaged file cannot be carried over: its records are read again by `metrics --refresh`.
    let old = (old.as_deref())
        .and_then(|text| parse::<&RawValue>(text).ok())
        .map(|f| f.backups)
        .unwrap_or_default();
    let listed: HashMap<&str, &Entry> = entries
        .iter()
        .map(|(e, _)| (e.backup_file.as_str(), *e))
        .collect();
    let mut records: BTreeMap<String, Record<Raw>> = BTreeMap::new();
    for (name, record) in old {
        let keep = match listed.get(name.as_str()) {
            Some(e) => e.sha256 == record.sha256,
            None => present.contains(&name),
        };
        if keep {
            let record = Record {
                sha256: record.sha256,
                metrics: Raw::Text(record.metrics),
            };
            records.insert(name, record);
        }
    }
    for (entry, metrics) in entries {
        if let Some(metrics) = metrics {
            let record = Record {
                sha256: entry.sha256.clone(),
                metrics: Raw::Parsed(metrics),
            };
            records.insert(entry.backup_file.clone(), record);
        }
    }
    if records.is_empty() && !path.exists() {
        return Ok(None);
    }
    let file = File {
        version: VERSION,
        backups: records,
    };
    let tmp = crate::atomic::prepare_file(&path, |out| {
        serde_json::to_writer(&mut *out, &file).map_err(|e| Error::io("write", &path, e.into()))?;
        out.write_all(b"\n").at("write", &path)
    })?;
    Ok(Some(tmp))
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

/// A record's metrics as they are written: carried over as text, or new.
enum Raw<'a> {
    Text(&'a RawValue),
    Parsed(&'a Metrics),
}

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Raw::Text(raw) => raw.serialize(s),
            Raw::Parsed(metrics) => {
                let mut map = s.serialize_map(Some(metrics.len()))?;
                for (key, value) in metrics.iter() {
                    map.serialize_entry(key, &Number(*value))?;
                }
                map.end()
            }
        }
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

/// Metrics read as [`Raw::Parsed`] writes them.
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
