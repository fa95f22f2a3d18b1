//! The last verify result of each catalogued archive: `verified.yaml` beside the manifest,
//! written under the manifest's lock.

use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Lock, LockFile, Manifest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

/// File name of the last verify results, kept beside the manifest.
pub const CHECKS_NAME: &str = "verified.yaml";

/// The last verify result of each catalogued archive, kept in [`CHECKS_NAME`] beside the
/// manifest (so verifying never rewrites the manifest or its `.bak`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checks {
    /// By archive file name.
    #[serde(default)]
    pub archives: BTreeMap<String, Check>,
}

/// One verify result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// When the archive was checked.
    pub at: DateTime<Utc>,
    /// The entry's SHA-256 it was checked against, so the result never speaks for other bytes.
    pub sha256: String,
    /// Whether its entries were decompressed and checked too.
    pub deep: bool,
    /// What was wrong, `None` when it was found intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Whether the archive file was missing: then the check read no bytes, and the result
    /// stops applying once a file is there again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    /// Whether only the archive's index was wrong, the archive itself intact: then the problem
    /// stops applying once the index matches its entry again (as `reindex` makes it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub index_only: bool,
    /// The archive file as it was when it was checked; absent in results recorded before
    /// resbak kept it, and when the file could not be looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileStamp>,
}

/// What a file was when it was checked. A result vouches for the file only while all of these
/// are the same: a byte written in place changes its modification and change times.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch (not settable by programs).
    pub ctime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// Device number.
    pub device: u64,
    /// Whether the file had last changed over a second before: only then can no later change
    /// hide in the same tick of the file system's clock, leaving its times as they were.
    #[serde(default)]
    pub settled: bool,
}

impl FileStamp {
    /// The stamp of the file at `path` now; `None` when it cannot be looked at.
    pub fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let ns = |secs: i64, nanos: i64| secs.saturating_mul(1_000_000_000).saturating_add(nanos);
        let ctime_ns = ns(m.ctime(), m.ctime_nsec());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let now = now.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Some(FileStamp {
            size: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns,
            inode: m.ino(),
            device: m.dev(),
            settled: now.saturating_sub(ctime_ns) > 1_000_000_000,
        })
    }

    /// Whether `self` and `other` describe the same file with the same times and size.
    pub fn same_file(&self, other: &FileStamp) -> bool {
        (
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.inode,
            self.device,
        ) == (
            other.size,
            other.mtime_ns,
            other.ctime_ns,
            other.inode,
            other.device,
        )
    }

    /// Whether the file at `path` is still the one this stamp describes.
    pub fn still(&self, path: &Path) -> bool {
        FileStamp::of(path).is_some_and(|now| self.same_file(&now))
    }
}

/// The problem a check records for an archive file that is missing.
pub const MISSING_PROBLEM: &str = "archive file is missing";

impl Check {
    /// Whether the check found no file to read (also for results recorded before
    /// [`Check::missing`] existed, by their message).
    pub fn found_missing(&self) -> bool {
        self.missing || self.problem.as_deref() == Some(MISSING_PROBLEM)
    }

    /// Whether this check read the archive at `path` and found it intact, and the file is
    /// surely still as it was then (see [`FileStamp::settled`]).
    pub fn vouches_for(&self, path: &Path) -> bool {
        (self.problem.is_none() || self.index_only)
            && !self.found_missing()
            && self.file.is_some_and(|f| f.settled && f.still(path))
    }
}

impl Checks {
    /// Reads the results beside the manifest in `backup_dir`; none when the file is missing.
    ///
    /// # Errors
    /// [`Error::ManifestParse`] when the file cannot be read or understood.
    pub fn load(backup_dir: &Path) -> Result<Checks> {
        let path = backup_dir.join(CHECKS_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Checks::default()),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_yaml::from_str(&text).map_err(|e| Error::ManifestParse {
            line: e.location().map_or(0, |l| l.line()),
            message: e.to_string(),
            path,
        })
    }

    /// The last result for `entry`, if it was checked as it is catalogued now.
    pub fn of(&self, entry: &Entry) -> Option<&Check> {
        self.archives
            .get(&entry.backup_file)
            .filter(|c| c.sha256 == entry.sha256)
    }

    /// Under the manifest lock, adds `results` (by archive file name) and drops results of
    /// archives the manifest no longer lists, then writes the file atomically. Unreadable old
    /// results are replaced: they are only a record, never a backup.
    pub fn record(backup_dir: &Path, results: Vec<(String, Check)>) -> Result<()> {
        Checks::update(backup_dir, |checks| checks.archives.extend(results))
    }

    /// Drops the results of `files`, whose entries were made anew (by `reindex`): a problem
    /// found with an entry's old fields says nothing of the new entry.
    pub fn forget(backup_dir: &Path, files: &[String]) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        Checks::update(backup_dir, |checks| {
            checks.archives.retain(|file, _| !files.contains(file));
        })
    }

    /// Applies `change` to the results under the manifest lock, as [`Checks::record`] says.
    fn update(backup_dir: &Path, change: impl FnOnce(&mut Checks)) -> Result<()> {
        let _lock = Lock::exclusive(backup_dir, LockFile::Manifest)?;
        let manifest = Manifest::load(backup_dir)?;
        let mut checks = Checks::load(backup_dir).unwrap_or_default();
        change(&mut checks);
        checks
            .archives
            .retain(|file, _| manifest.find(file).is_some());
        let path = backup_dir.join(CHECKS_NAME);
        let yaml = serde_yaml::to_string(&checks).map_err(|e| Error::ManifestParse {
            path: path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        atomic::write_file(&path, |out| {
            out.write_all(b"# resbak: the last verify result of each archive.\n")
                .and_then(|()| out.write_all(yaml.as_bytes()))
                .at("write", &path)
        })
    }
}

/// The status `list` gives the catalogued backup `e` here (`missing`, `failed`, `verified` or
/// `present`) and, for `failed`, what is wrong: from its file's presence and size now and
/// `check`, its last verify that read its bytes, when that read the file as it is now.
pub fn local_status(
    backup_dir: &Path,
    e: &Entry,
    check: Option<&Check>,
) -> (&'static str, Option<String>) {
    let path = backup_dir.join(&e.backup_file);
    let on_disk = std::fs::metadata(&path);
    // A check that found the file intact speaks only for the file it read: one changed since
    // (another inode, size or time) has not been checked. A failure stays until a new check.
    let check = check.filter(|c| {
        (c.problem.is_some() && !c.index_only) || c.file.is_none_or(|f| f.still(&path))
    });
    match (on_disk, check) {
        (Err(_), _) => ("missing", None),
        (Ok(m), _) if m.len() != e.size => (
            "failed",
            Some(format!(
                "size is {} bytes, manifest says {}",
                m.len(),
                e.size
            )),
        ),
        // The archive was intact; its index is judged as it is now (reindex mends it).
        (Ok(_), Some(c)) if c.index_only && index_mended(backup_dir, e) => ("verified", None),
        (Ok(_), Some(c)) if c.index_only => (INDEX_DAMAGED, c.problem.clone()),
        (Ok(_), Some(c)) if c.problem.is_some() => ("failed", c.problem.clone()),
        (Ok(_), Some(_)) => ("verified", None),
        (Ok(_), None) => ("present", None),
    }
}

/// The status of an intact archive whose index the last `verify` found damaged or gone.
pub const INDEX_DAMAGED: &str = "index-damaged";

/// Whether the index beside `e`'s archive matches the SHA-256 its entry records.
fn index_mended(backup_dir: &Path, e: &Entry) -> bool {
    let archive = backup_dir.join(&e.backup_file);
    e.index_sha256
        .as_ref()
        .is_some_and(|sha| crate::index::matches(&archive, sha).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(file: &str) -> Entry {
        Entry::sample("a", file, 1)
    }

    #[test]
    fn checks_speak_only_for_the_bytes_checked() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry("a_1.tar.gz");
        let gone = entry("gone.tar.gz");
        Manifest::update(dir.path(), |m| {
            m.backups.push(e.clone());
            Ok(())
        })
        .unwrap();
        let check = Check {
            at: e.created,
            sha256: e.sha256.clone(),
            deep: false,
            problem: None,
            missing: false,
            index_only: false,
            file: None,
        };
        let records = vec![
            (e.backup_file.clone(), check.clone()),
            (gone.backup_file.clone(), check.clone()),
        ];
        Checks::record(dir.path(), records).unwrap();
        let checks = Checks::load(dir.path()).unwrap();
        assert_eq!(checks.of(&e), Some(&check));
        assert_eq!(
            checks.archives.len(),
            1,
            "results of uncatalogued files are dropped"
        );
        let other_bytes = Entry {
            sha256: "ff".into(),
            ..e
        };
        assert_eq!(checks.of(&other_bytes), None);
    }

    #[test]
    fn a_check_of_a_file_since_replaced_or_changed_says_nothing_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = Entry {
            size: 7,
            ..entry("a_1.tar.gz")
        };
        std::fs::write(dir.path().join(&e.backup_file), b"archive").unwrap();
        let now = FileStamp::of(&dir.path().join(&e.backup_file)).unwrap();
        let check = |file: Option<FileStamp>, problem: Option<&str>| Check {
            at: e.created,
            sha256: e.sha256.clone(),
            deep: false,
            problem: problem.map(String::from),
            missing: false,
            index_only: false,
            file,
        };
        let other = FileStamp {
            inode: now.inode + 1,
            ..now
        };
        let status = |c: &Check| local_status(dir.path(), &e, Some(c)).0;
        assert_eq!(status(&check(Some(now), None)), "verified");
        assert_eq!(
            status(&check(None, None)),
            "verified",
            "recorded before stamps"
        );
        assert_eq!(status(&check(Some(other), None)), "present");
        assert_eq!(status(&check(Some(now), Some("bad"))), "failed");
        assert_eq!(status(&check(Some(other), Some("bad"))), "failed");
        let index_only = Check {
            index_only: true,
            ..check(Some(other), Some("the index is damaged"))
        };
        assert_eq!(status(&index_only), "present", "the archive changed since");
    }

    #[test]
    fn a_check_vouches_only_for_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a_1.tar.gz");
        std::fs::write(&path, b"archive").unwrap();
        assert!(!FileStamp::of(&path).unwrap().settled, "just written");
        let check = Check {
            at: chrono::Utc::now(),
            sha256: String::new(),
            deep: false,
            problem: None,
            missing: false,
            index_only: false,
            file: FileStamp::of(&path).map(|f| FileStamp { settled: true, ..f }),
        };
        assert!(check.vouches_for(&path));
        let unsettled = Check {
            file: FileStamp::of(&path),
            ..check.clone()
        };
        assert!(
            !unsettled.vouches_for(&path),
            "a change may hide in the same tick"
        );
        let failed = Check {
            problem: Some("SHA-256 mismatch".into()),
            ..check.clone()
        };
        assert!(!failed.vouches_for(&path));
        std::fs::write(&path, b"archivf!").unwrap();
        assert!(!check.vouches_for(&path));
        std::fs::remove_file(&path).unwrap();
        assert!(!check.vouches_for(&path));
    }
}
