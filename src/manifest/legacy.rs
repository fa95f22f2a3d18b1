//! The manifest the Python scripts wrote before resbak, read as it is.
//!
//! That format has no `version`; its entries hold `strategy`, `timestamp`, `backup_file`
//! (relative to the folder the script ran in, or absolute), `size` and a naive `created` in the
//! machine's local time. It loads as a [`Manifest`] marked [`Manifest::legacy`] whose entries
//! carry no checksum yet ([`ChecksumSource::None`]); the first command that writes upgrades the
//! file (see [`Manifest::update_adopting`]). Naive times, here and in archive names the scripts
//! made, are read in [`zone`]: the machine's zone unless `--timezone` or `timezone` says another.

use super::{ChecksumSource, Entry, Kind, Manifest};
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use serde::Deserialize;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::RwLock;

/// The zone naive times of the Python scripts are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`).
    #[default]
    Local,
    /// A zone of the IANA database, such as `Europe/Berlin` or `UTC`.
    Named(chrono_tz::Tz),
    /// A fixed offset from UTC, such as `+01:00`.
    Fixed(FixedOffset),
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if let Ok(offset) = FixedOffset::from_str(text) {
            return Ok(Zone::Fixed(offset));
        }
        chrono_tz::Tz::from_str(text).map(Zone::Named).map_err(|_| {
            format!(
                "unknown time zone {text:?} (give an IANA name such as Europe/Berlin, UTC, \
                 an offset such as +01:00, or local)"
            )
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Local => write!(f, "local time"),
            Zone::Named(tz) => write!(f, "{}", tz.name()),
            Zone::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

impl Zone {
    /// The UTC time of the naive time `local` in this zone. A time that occurs twice (clocks
    /// going back) is the first; a time that never occurs (clocks going forward) is read as if
    /// the clocks had not moved yet.
    pub fn to_utc(self, local: NaiveDateTime) -> DateTime<Utc> {
        match self {
            Zone::Local => resolve(&chrono::Local, local),
            Zone::Named(tz) => resolve(&tz, local),
            Zone::Fixed(offset) => resolve(&offset, local),
        }
    }

    /// How a time read in this zone is described: `2024-02-20 14:30:00 Europe/Berlin (+01:00)`.
    pub fn describe(self, local: NaiveDateTime) -> String {
        let offset = local - self.to_utc(local).naive_utc();
        let minutes = offset.num_minutes();
        let sign = if minutes < 0 { '-' } else { '+' };
        let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
        format!("{local} {self} ({sign}{h:02}:{m:02})")
    }
}

fn resolve<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let utc = |t: DateTime<Tz>| t.with_timezone(&Utc);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => utc(t),
        LocalResult::None => {
            // In the gap the clocks skipped: an hour later on the new clock is this time on the
            // old one.
            let after = tz.from_local_datetime(&(local + TimeDelta::hours(1)));
            after.earliest().map_or_else(|| local.and_utc(), utc)
        }
    }
}

static ZONE: RwLock<Zone> = RwLock::new(Zone::Local);

/// Sets the zone naive times are read in, for the rest of the process (`resbak::run` sets it
/// from `--timezone` or `timezone` in `resbak.toml`).
pub fn set_zone(zone: Zone) {
    *ZONE.write().unwrap_or_else(|e| e.into_inner()) = zone;
}

/// The zone naive times are read in: [`Zone::Local`] unless [`set_zone`] said otherwise.
pub fn zone() -> Zone {
    *ZONE.read().unwrap_or_else(|e| e.into_inner())
}

/// Whether a parsed YAML document is a manifest of the older format: a mapping with a
/// `backups` list and no `version`.
pub(super) fn is_legacy(doc: &serde_yaml::Value) -> bool {
    doc.as_mapping()
        .is_some_and(|m| !m.contains_key("version") && m.contains_key("backups"))
}

#[derive(Deserialize)]
struct LegacyManifest {
    #[serde(default)]
    backups: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
struct LegacyEntry {
    strategy: String,
    #[serde(default)]
    timestamp: Option<Stamp>,
    backup_file: String,
    size: u64,
    #[serde(default)]
    created: Option<Stamp>,
}

/// A scalar written as text or, by YAML 1.1 writers, as a number (`20240220_143000`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Stamp {
    Text(String),
    Number(u64),
}

impl Stamp {
    /// The text, with a 14-digit number turned back into `YYYYMMDD_HHMMSS`.
    pub(super) fn text(self) -> String {
        match self {
            Stamp::Text(text) => text,
            Stamp::Number(n) if (10_000_000_000_000..100_000_000_000_000).contains(&n) => {
                format!("{:08}_{:06}", n / 1_000_000, n % 1_000_000)
            }
            Stamp::Number(n) => n.to_string(),
        }
    }
}

/// Reads the older format from `text`, with naive times read in `zone`.
pub(super) fn parse(text: &str, zone: Zone) -> Result<Manifest, (usize, String)> {
    let legacy: LegacyManifest = serde_yaml::from_str(text)
        .map_err(|e| (e.location().map_or(0, |l| l.line()), e.to_string()))?;
    let backups = legacy
        .backups
        .into_iter()
        .enumerate()
        .map(|(i, e)| entry(e, zone).map_err(|message| (0, format!("backups[{i}]: {message}"))))
        .collect::<Result<_, _>>()?;
    Ok(Manifest {
        backups,
        legacy: true,
        ..Manifest::default()
    })
}

fn entry(e: LegacyEntry, zone: Zone) -> Result<Entry, String> {
    let timestamp = e.timestamp.map(Stamp::text);
    let (created, converted_from) = match (e.created.map(Stamp::text), &timestamp) {
        (Some(created), _) => created_time(&created, zone)?,
        (None, Some(stamp)) => {
            let local = NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S")
                .map_err(|_| format!("timestamp {stamp:?} is not YYYYMMDD_HHMMSS"))?;
            (zone.to_utc(local), Some(zone.describe(local)))
        }
        (None, None) => return Err("has neither created nor timestamp".into()),
    };
    let backup_file = Path::new(&e.backup_file)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("backup_file {:?} names no file", e.backup_file))?
        .to_string();
    Ok(Entry {
        strategy: e.strategy,
        timestamp: timestamp.unwrap_or_else(|| created.format("%Y%m%d_%H%M%S").to_string()),
        backup_file,
        size: e.size,
        sha256: String::new(),
        entries: 0,
        bytes: 0,
        kinds: None,
        created,
        meta_digest: None,
        content_digest: None,
        kind: Kind::Regular,
        checksum_source: Some(ChecksumSource::None),
        converted_from,
    })
}

/// `created` as the scripts wrote it: ISO 8601 with `T` or a space, with or without fractions;
/// naive times are read in `zone` (and described), times with an offset are taken as they are.
fn created_time(text: &str, zone: Zone) -> Result<(DateTime<Utc>, Option<String>), String> {
    let text = text.trim();
    if let Ok(exact) = DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
        return Ok((exact.with_timezone(&Utc), None));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|local| (zone.to_utc(local), Some(zone.describe(local))))
        .ok_or_else(|| format!("created {text:?} is not an ISO 8601 date and time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPTS: &str = "backups:
  - strategy: btc_sma_cross
    timestamp: 20240220_143000
    backup_file: backups/btc_sma_cross_20240220_143000.tar.gz
    size: 1048576
    created: 2024-02-20T14:30:00
  - strategy: eth
    timestamp: '20240701_090000'
    backup_file: /home/me/proj/backups/eth_20240701_090000.tar.gz
    size: 10
    created: '2024-07-01T09:00:00.250000'
";

    fn berlin() -> Zone {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn the_scripts_manifest_is_recognised_and_converted_from_its_zone() {
        let doc: serde_yaml::Value = serde_yaml::from_str(SCRIPTS).unwrap();
        assert!(is_legacy(&doc));
        let m = parse(SCRIPTS, berlin()).unwrap();
        assert!(m.legacy);
        let [btc, eth] = &m.backups[..] else {
            panic!("two entries")
        };
        assert_eq!(btc.backup_file, "btc_sma_cross_20240220_143000.tar.gz");
        assert_eq!(eth.backup_file, "eth_20240701_090000.tar.gz");
        assert_eq!(btc.timestamp, "20240220_143000");
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(btc.created.to_rfc3339(), "2024-02-20T13:30:00+00:00");
        assert_eq!(eth.created.to_rfc3339(), "2024-07-01T07:00:00.250+00:00");
        assert_eq!(
            btc.converted_from.as_deref(),
            Some("2024-02-20 14:30:00 Europe/Berlin (+01:00)")
        );
        assert!(m.backups.iter().all(|e| !e.has_checksum()));
    }

    #[test]
    fn yaml_1_1_numbers_and_other_time_spellings_are_read() {
        let text = "backups:\n  - {strategy: a, timestamp: 20240220143000, backup_file: a.tar.gz, size: 1, created: 2024-02-20 14:30:00.5}\n  - {strategy: a, backup_file: b.tar.gz, size: 1, timestamp: 20240221_000000}\n  - {strategy: a, backup_file: c.tar.gz, size: 1, created: '2024-02-20T14:30:00+05:00'}\n";
        let m = parse(text, Zone::Fixed(FixedOffset::east_opt(0).unwrap())).unwrap();
        assert_eq!(m.backups[0].timestamp, "20240220_143000");
        assert_eq!(
            m.backups[0].created.to_rfc3339(),
            "2024-02-20T14:30:00.500+00:00"
        );
        assert_eq!(
            m.backups[1].created.to_rfc3339(),
            "2024-02-21T00:00:00+00:00"
        );
        assert_eq!(
            m.backups[2].created.to_rfc3339(),
            "2024-02-20T09:30:00+00:00"
        );
        assert_eq!(
            m.backups[2].converted_from, None,
            "an explicit offset is no conversion"
        );
    }

    #[test]
    fn times_in_a_clock_change_resolve_without_failing() {
        let at = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        // 02:30 on 2024-03-31 never happened in Berlin; 02:30 on 2024-10-27 happened twice.
        assert_eq!(
            berlin().to_utc(at("2024-03-31 02:30:00")).to_rfc3339(),
            "2024-03-31T01:30:00+00:00"
        );
        assert_eq!(
            berlin().to_utc(at("2024-10-27 02:30:00")).to_rfc3339(),
            "2024-10-27T00:30:00+00:00"
        );
    }

    #[test]
    fn bad_zones_and_times_are_named() {
        assert!(
            "Mars/Olympus"
                .parse::<Zone>()
                .unwrap_err()
                .contains("Mars/Olympus")
        );
        assert_eq!("+01:00".parse::<Zone>().unwrap().to_string(), "+01:00");
        let text = "backups:\n  - {strategy: a, backup_file: a.tar.gz, size: 1, created: soon}\n";
        let (_, message) = parse(text, berlin()).unwrap_err();
        assert!(
            message.contains("backups[0]") && message.contains("soon"),
            "{message}"
        );
    }
}
