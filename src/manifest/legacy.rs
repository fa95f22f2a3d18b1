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
    /// The machine's zone when it has no name resbak knows (see [`Zone::machine`]).
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
    /// The machine's zone: the IANA name in `TZ` (`tz` is its value), else the system's zone
    /// by name, else [`Zone::Local`]. A `TZ` that names no zone is an error rather than the
    /// silent UTC the C library would make of it; an empty `TZ` is UTC, a path or a POSIX rule
    /// such as `EST5EDT,M3.2.0,M11.1.0` is left to the system.
    pub fn machine(tz: Option<&str>) -> Result<Zone, String> {
        let named = |name: &str| chrono_tz::Tz::from_str(name).ok().map(Zone::Named);
        let Some(tz) = tz else {
            let system = iana_time_zone::get_timezone().ok();
            return Ok(system.as_deref().and_then(named).unwrap_or(Zone::Local));
        };
        let name = tz.strip_prefix(':').unwrap_or(tz);
        if name.is_empty() {
            return Ok(Zone::Named(chrono_tz::Tz::UTC));
        }
        if let Some(zone) = named(name) {
            return Ok(zone);
        }
        let posix_rule = !name.contains('/')
            && name.len() > 3
            && name[..3].bytes().all(|b| b.is_ascii_alphabetic())
            && name[3..].starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
        if name.starts_with('/') || posix_rule {
            return Ok(Zone::Local);
        }
        Err(format!(
            "TZ={tz:?} names no time zone, so the Python scripts' local times cannot be read; \
             fix TZ or give --timezone (an IANA name such as America/New_York, or an offset)"
        ))
    }

    /// The UTC time of the naive time `local` in this zone. A time that occurs twice (clocks
    /// going back) is the first; a time that never occurs (clocks going forward) is read as if
    /// the clocks had not moved yet.
    pub fn to_utc(self, local: NaiveDateTime) -> DateTime<Utc> {
        self.convert(local, None).0
    }

    /// [`Zone::to_utc`], where a time that occurred twice is the first occurrence not before
    /// `not_before` (the scripts appended entries in time order); also how it was read:
    /// `2024-02-20 14:30:00 Europe/Berlin (+01:00)`, noting a repeated or skipped time.
    pub fn convert(
        self,
        local: NaiveDateTime,
        not_before: Option<DateTime<Utc>>,
    ) -> (DateTime<Utc>, String) {
        let (utc, note) = match self {
            Zone::Local => resolve(&chrono::Local, local, not_before),
            Zone::Named(tz) => resolve(&tz, local, not_before),
            Zone::Fixed(offset) => resolve(&offset, local, not_before),
        };
        let minutes = (local - utc.naive_utc()).num_minutes();
        let sign = if minutes < 0 { '-' } else { '+' };
        let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
        (utc, format!("{local} {self} ({sign}{h:02}:{m:02}{note})"))
    }
}

fn resolve<Tz: TimeZone>(
    tz: &Tz,
    local: NaiveDateTime,
    not_before: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, &'static str) {
    let utc = |t: DateTime<Tz>| t.with_timezone(&Utc);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => (utc(t), ""),
        LocalResult::Ambiguous(first, second) => {
            let later = not_before.is_some_and(|n| utc(first.clone()) < n);
            match later {
                true => (
                    utc(second),
                    "; a time that occurred twice, read as the second",
                ),
                false => (
                    utc(first),
                    "; a time that occurred twice, read as the first",
                ),
            }
        }
        LocalResult::None => {
            // In the gap the clocks skipped: an hour later on the new clock is this time on the
            // old one.
            let after = tz.from_local_datetime(&(local + TimeDelta::hours(1)));
            let utc = after.earliest().map_or_else(|| local.and_utc(), utc);
            (utc, "; a time the clocks skipped")
        }
    }
}

static ZONE: RwLock<Option<Result<Zone, String>>> = RwLock::new(None);

/// Sets the zone naive times are read in, for the rest of the process (`resbak::run` sets it
/// from `--timezone` or `timezone` in `resbak.toml`, else from [`Zone::machine`]); an error is
/// reported when a naive time has to be read.
pub fn set_zone(zone: Result<Zone, String>) {
    *ZONE.write().unwrap_or_else(|e| e.into_inner()) = Some(zone);
}

/// The zone naive times are read in: what [`set_zone`] said, else the machine's.
///
/// # Errors
/// When `TZ` names no zone (see [`Zone::machine`]).
pub fn zone() -> Result<Zone, String> {
    let set = ZONE.read().unwrap_or_else(|e| e.into_inner()).clone();
    set.unwrap_or_else(|| Zone::machine(std::env::var("TZ").ok().as_deref()))
}

/// Whether a parsed YAML document is a manifest of the older format: a mapping with a
/// `backups` list and no `version`, whose entries have no `sha256` (which only resbak writes:
/// a resbak manifest that lost its `version` line is damaged, not the scripts').
pub(super) fn is_legacy(text: &str) -> bool {
    // Only the keys: values are skipped, not built (a manifest's metrics would otherwise be
    // held twice while it loads).
    type Keys = std::collections::HashMap<serde_yaml::Value, serde::de::IgnoredAny>;
    #[derive(Deserialize)]
    struct Top {
        version: Option<serde::de::IgnoredAny>,
        backups: Vec<Keys>,
    }
    let sha256 = serde_yaml::Value::String("sha256".into());
    serde_yaml::from_str::<Top>(text).is_ok_and(|top| {
        top.version.is_none() && !top.backups.iter().any(|e| e.contains_key(&sha256))
    })
}

/// For a manifest of this format that does not load: the line and an explanation when an
/// entry without `sha256` is one the Python scripts appended after resbak took over.
pub(super) fn added_later(doc: &serde_yaml::Value, text: &str) -> Option<(usize, String)> {
    let index = doc
        .get("backups")?
        .as_sequence()?
        .iter()
        .position(|e| e.get("sha256").is_none() && e.get("backup_file").is_some())?;
    let message = format!(
        "backups[{index}] has no sha256: it looks like an entry the Python scripts added after \
         resbak took over (stop them); resbak reindex adopts its archive"
    );
    Some((super::entry_line(text, index), message))
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

/// Reads the older format from `text`, with naive times read in `zone`. Of two entries for
/// one archive file (the scripts overwrote a name made twice in one second) the later stays.
pub(super) fn parse(text: &str, zone: Result<Zone, String>) -> Result<Manifest, (usize, String)> {
    let legacy: LegacyManifest = serde_yaml::from_str(text)
        .map_err(|e| (e.location().map_or(0, |l| l.line()), e.to_string()))?;
    let mut backups: Vec<Entry> = Vec::new();
    for (i, e) in legacy.backups.into_iter().enumerate() {
        let not_before = backups.last().map(|e| e.created);
        let entry = entry(e, &zone, not_before)
            .map_err(|message| (0, format!("backups[{i}]: {message}")))?;
        backups.retain(|e| e.backup_file != entry.backup_file);
        backups.push(entry);
    }
    Ok(Manifest {
        backups,
        legacy: true,
        ..Manifest::default()
    })
}

fn entry(
    e: LegacyEntry,
    zone: &Result<Zone, String>,
    not_before: Option<DateTime<Utc>>,
) -> Result<Entry, String> {
    let timestamp = e.timestamp.map(Stamp::text);
    let (created, converted_from) = match (e.created.map(Stamp::text), &timestamp) {
        (Some(created), _) => created_time(&created, zone, not_before)?,
        (None, Some(stamp)) => {
            let local = NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S")
                .map_err(|_| format!("timestamp {stamp:?} is not YYYYMMDD_HHMMSS"))?;
            let (utc, how) = zone.clone()?.convert(local, not_before);
            (utc, Some(how))
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
        checksum_source: Some(ChecksumSource::Pending),
        converted_from,
        imported_path: Path::new(&e.backup_file)
            .is_absolute()
            .then(|| e.backup_file.clone().into()),
        metrics: None,
        tags: Vec::new(),
        note: None,
        pin: false,
        index_sha256: None,
        metrics_sha256: None,
    })
}

/// `created` as the scripts wrote it: ISO 8601 with `T` or a space, with or without fractions;
/// naive times are read in `zone` (and described), times with an offset are taken as they are.
fn created_time(
    text: &str,
    zone: &Result<Zone, String>,
    not_before: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, Option<String>), String> {
    let text = text.trim();
    if let Ok(exact) = DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)) {
        return Ok((exact.with_timezone(&Utc), None));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or_else(|| format!("created {text:?} is not an ISO 8601 date and time"))?;
    let (utc, how) = zone.clone()?.convert(local, not_before);
    Ok((utc, Some(how)))
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
        assert!(is_legacy(SCRIPTS));
        let m = parse(SCRIPTS, Ok(berlin())).unwrap();
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
        let m = parse(text, Ok(Zone::Fixed(FixedOffset::east_opt(0).unwrap()))).unwrap();
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
    fn a_repeated_hour_is_read_in_the_order_the_scripts_appended() {
        let text = "backups:
  - {strategy: a, backup_file: a1.tar.gz, size: 1, created: '2026-11-01T01:40:00'}
  - {strategy: a, backup_file: a2.tar.gz, size: 1, created: '2026-11-01T01:10:00'}
  - {strategy: a, backup_file: a2.tar.gz, size: 2, created: '2026-11-01T01:10:00'}
";
        let m = parse(text, Ok("America/New_York".parse().unwrap())).unwrap();
        let [first, second] = &m.backups[..] else {
            panic!("one entry per archive file: {:?}", m.backups)
        };
        assert_eq!(first.created.to_rfc3339(), "2026-11-01T05:40:00+00:00");
        assert_eq!(second.created.to_rfc3339(), "2026-11-01T06:10:00+00:00");
        assert_eq!(second.size, 2, "the later entry for a name stays");
        let how = second.converted_from.as_deref().unwrap();
        assert!(how.contains("read as the second"), "{how}");
    }

    #[test]
    fn the_machine_zone_comes_from_tz_and_a_tz_that_names_none_is_an_error() {
        let named = |tz| match Zone::machine(Some(tz)) {
            Ok(Zone::Named(z)) => z.name().to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(named("America/New_York"), "America/New_York");
        assert_eq!(named(":Europe/Berlin"), "Europe/Berlin");
        assert_eq!(named(""), "UTC");
        assert_eq!(Zone::machine(Some("/etc/localtime")), Ok(Zone::Local));
        assert_eq!(
            Zone::machine(Some("XST5XDT,M3.2.0,M11.1.0")),
            Ok(Zone::Local)
        );
        for bad in ["America/NewYork", "Mars/Olympus", "nonsense"] {
            assert!(Zone::machine(Some(bad)).is_err(), "{bad}");
        }
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
        let (_, message) = parse(text, Ok(berlin())).unwrap_err();
        assert!(
            message.contains("backups[0]") && message.contains("soon"),
            "{message}"
        );
    }
}
