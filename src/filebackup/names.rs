//! Copy names: `<name>.<YYYYMMDD_HHMMSS>.backup`, then `_2`, `_3`, ... for further copies in
//! the same second. Names are parsed back exactly; anything else is not a copy.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use std::ffi::{OsStr, OsString};

pub(super) const EXTENSION: &str = ".backup";
const STAMP_FORMAT: &str = "%Y%m%d_%H%M%S";
const STAMP_LEN: usize = "YYYYMMDD_HHMMSS".len();

/// `<name>.<stamp>.backup` for the first copy in a second, `<name>.<stamp>_<seq>.backup` after.
pub(super) fn backup_name(name: &OsStr, created: DateTime<Utc>, seq: u32) -> OsString {
    let stamp = created.format(STAMP_FORMAT);
    let mut file = name.to_os_string();
    file.push(match seq {
        0 | 1 => format!(".{stamp}{EXTENSION}"),
        n => format!(".{stamp}_{n}{EXTENSION}"),
    });
    file
}

/// The naive time and sequence number in `file`, if it is exactly a copy name of `name`.
pub(super) fn parse_backup_name(name: &OsStr, file: &OsStr) -> Option<(NaiveDateTime, u32)> {
    let rest = file
        .as_encoded_bytes()
        .strip_prefix(name.as_encoded_bytes())?;
    parse_suffix(std::str::from_utf8(rest.strip_prefix(b".")?).ok()?)
}

/// Whether `file` is a copy name of some file: `<something>.<stamp>[_<seq>].backup`.
pub(super) fn is_copy_name(file: &[u8]) -> bool {
    let Some(rest) = file.strip_suffix(EXTENSION.as_bytes()) else {
        return false;
    };
    // The stamp and its optional `_<seq>` come after the last '.' before the extension.
    let Some(dot) = rest.iter().rposition(|&b| b == b'.') else {
        return false;
    };
    let Ok(tail) = std::str::from_utf8(&file[dot + 1..]) else {
        return false;
    };
    dot > 0 && parse_suffix(tail).is_some()
}

/// Parses `<stamp>[_<seq>].backup`.
fn parse_suffix(rest: &str) -> Option<(NaiveDateTime, u32)> {
    let (stamp, seq) = rest.strip_suffix(EXTENSION)?.split_at_checked(STAMP_LEN)?;
    let seq = match seq {
        "" => 1,
        _ => {
            let digits = seq.strip_prefix('_')?;
            let n: u32 = digits.parse().ok()?;
            (n >= 2 && digits == n.to_string()).then_some(n)?
        }
    };
    let shape_ok = stamp.bytes().enumerate().all(|(i, b)| match i {
        8 => b == b'_',
        _ => b.is_ascii_digit(),
    });
    let created = NaiveDateTime::parse_from_str(stamp, STAMP_FORMAT).ok()?;
    shape_ok.then_some((created, seq))
}

/// When a copy was made: resbak names copies in UTC; the stamp of a copy with no recorded
/// checksum (made by the older scripts, which used the local clock) is local time, read in the
/// zone the scripts' manifest is read in (`--timezone`, else the machine's).
pub(super) fn created(stamp: NaiveDateTime, recorded: bool) -> DateTime<Utc> {
    if recorded {
        return stamp.and_utc();
    }
    if let Ok(zone) = crate::manifest::legacy::zone() {
        return zone.to_utc(stamp);
    }
    chrono::Local
        .from_local_datetime(&stamp)
        .earliest()
        .map_or_else(|| stamp.and_utc(), |t| t.with_timezone(&Utc))
}

/// Entries of the copies folder `dir` that are not resbak's (copies, `SHA256SUMS` and its
/// lock), sorted: a strategy backup leaves them out with the folder.
///
/// # Errors
/// When `dir` cannot be read.
pub fn others_in(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let ours = |name: &OsStr| {
        name == super::SUMS_NAME
            || name == super::sums::LOCK_NAME
            || is_copy_name(name.as_encoded_bytes())
    };
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !ours(&entry.file_name()) || !entry.file_type()?.is_file() {
            others.push(entry.path());
        }
    }
    others.sort();
    Ok(others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(secs: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 0, 49, secs).unwrap()
    }

    #[test]
    fn names_are_built_and_parsed_back() {
        let name = OsStr::new("experiences.json");
        let t = time(7);
        assert_eq!(
            backup_name(name, t, 1),
            "experiences.json.20261122_004907.backup"
        );
        assert_eq!(
            backup_name(name, t, 2),
            "experiences.json.20261122_004907_2.backup"
        );
        for seq in [1, 2, 11] {
            let file = backup_name(name, t, seq);
            assert_eq!(parse_backup_name(name, &file), Some((t.naive_utc(), seq)));
            assert!(is_copy_name(file.as_encoded_bytes()));
        }
    }

    #[test]
    fn only_exact_copy_names_are_recognised() {
        let name = OsStr::new("a.json");
        for other in [
            "a.json",
            "a.json.backup",
            "a.json.20261122_004907",
            "a.json.20261122_004907.backup.tmp",
            "a.json.20261122-004907.backup",
            "a.json.2026112_20049070.backup",
            "a.json.20261322_004907.backup",
            "a.json.20261122_004907_1.backup",
            "a.json.20261122_004907_02.backup",
            "a.json.20261122_004907_+2.backup",
            "a.json.20261122_004907_x.backup",
            "a.json.notes.20261122_004907.backup",
            "b.json.20261122_004907.backup",
            "xa.json.20261122_004907.backup",
            ".resbak-tmp-a.json.20261122_004907.backup",
        ] {
            assert_eq!(parse_backup_name(name, OsStr::new(other)), None, "{other}");
        }
        let longer = OsStr::new("a.json.20261122_004907.backup");
        assert_eq!(parse_backup_name(OsStr::new("a"), longer), None);
        for not_a_copy in [".20261122_004907.backup", "a.tar.gz", "a.json.backup"] {
            assert!(!is_copy_name(not_a_copy.as_bytes()), "{not_a_copy}");
        }
    }
}
