//! Timestamped copies of single files, made just before a program overwrites them.
//!
//! A copy of `dir/name` lives in `dir/backups/` as `name.<YYYYMMDD_HHMMSS>.backup` (UTC), with
//! `_2`, `_3`, ... for further copies in the same second. It is a byte-exact copy that keeps the
//! file's modification time; like `cp`, it gets the file's permission bits less the umask
//! (setuid and setgid are dropped, as the copy may have another owner). Names are parsed back
//! and order the copies; files in `backups/` that do not match the pattern exactly are never
//! listed or removed.
//!
//! The folder keeps a `SHA256SUMS` ([`sums`]) updated atomically with every copy and removal,
//! so each copy can be checked (`sha256sum -c` works there too). Copies with no recorded
//! checksum (made by the older scripts, whose stamps are local time) are listed, rotated and
//! restorable like the others. A copy identical to the newest one is not made again; rotation
//! ([`rotation`]) counts distinct versions and keeps the newest copy that passed the content
//! check ([`json`]: for JSON files, whether it parses).
//!
//! [`backup_file`] and [`write_with_backup`] are the API for programs that rewrite a data file in
//! place; [`list_backups`], [`inspect`], [`verify`] and [`restore`] complete the `resbak file`
//! commands.

mod copying;
pub mod json;
pub(crate) mod names;
mod report;
mod restore;
pub mod rotation;
pub mod sums;
mod verify;

pub use json::{JsonCheck, is_json};
pub use report::{
    BackupReport, ContentCheck, Contents, CopyCheck, CopyStatus, PassedOver, RestoreReport,
    VerifyReport, WriteReport,
};
pub use restore::restore;
pub use sums::{SUMS_NAME, is_copies_folder};
pub use verify::verify;

use crate::checksum::Checksum;
use crate::error::{Error, IoContext, Result};
use chrono::{DateTime, SubsecRound, Utc};
use copying::{copy_to_temp, hash_file, not_a_file, write_keeping_mode, write_target};
use std::cmp::Reverse;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};
use sums::{Sums, lock_folder};

/// Copies kept per file unless told otherwise.
pub const DEFAULT_KEEP: usize = 10;

/// Name of the folder, beside the file, that holds its copies.
pub const BACKUP_DIR: &str = "backups";

/// How [`backup_file`], [`write_with_backup`] and [`restore`] behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBackupOptions {
    /// Distinct versions to keep per file, newest first; older copies are removed. The copy
    /// just made is always kept, so 0 behaves like 1.
    pub keep: usize,
    /// Makes a failed backup an error in [`write_with_backup`], which then writes nothing.
    /// Without it the failure becomes a warning and the write goes ahead.
    pub strict: bool,
}

impl FileBackupOptions {
    /// Refuses a `keep` of 0: rotation would remove every copy.
    fn check(&self) -> Result<()> {
        match self.keep {
            0 => Err(crate::error::Error::InvalidKeep),
            _ => Ok(()),
        }
    }
}

impl Default for FileBackupOptions {
    fn default() -> Self {
        FileBackupOptions {
            keep: DEFAULT_KEEP,
            strict: false,
        }
    }
}

/// One copy in a file's backup folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBackup {
    /// Where the copy is.
    pub path: PathBuf,
    /// When the copy was made, from its name (whole seconds).
    pub created: DateTime<Utc>,
    /// 1 for the first copy in that second, 2 for `_2`, and so on.
    pub seq: u32,
    /// The SHA-256 recorded in `SHA256SUMS`; `None` for a copy made by the older scripts.
    pub recorded: Option<String>,
}

/// Which copy [`restore`] brings back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The newest copy that is intact and passes the content check (for JSON, parses).
    Latest,
    /// The newest copy, whatever it holds (a damaged one is still refused).
    Newest,
    /// A copy by its file name (with or without `.backup`) or by its path.
    Named(String),
}

/// Copies `path` into `backups/` beside it, unless it is identical to the newest copy, then
/// removes copies beyond the `keep` newest versions (keeping the newest that passes the
/// content check).
///
/// Returns `None`, doing nothing, when `path` does not exist: there is nothing to protect yet.
/// Call it just before overwriting the file; [`write_with_backup`] does both.
///
/// # Errors
///
/// When `path` is not a regular file or the copy cannot be made. A copy that does not parse
/// and problems removing old copies are only warnings in the report. `opts.strict` does not
/// matter here.
///
/// # Example
///
/// ```
/// use resbak::filebackup::{FileBackupOptions, backup_file};
///
/// # let dir = tempfile::tempdir()?;
/// let store = dir.path().join("experiences.json");
/// std::fs::write(&store, r#"{"experiences": [1, 2, 3]}"#)?;
/// if let Some(report) = backup_file(&store, &FileBackupOptions::default())? {
///     println!("saved {} ({:?} items)", report.backup.display(), report.content.items);
///     for warning in &report.warnings {
///         eprintln!("warning: {warning}");
///     }
/// }
/// std::fs::write(&store, r#"{"experiences": [1, 2, 3, 4]}"#)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn backup_file(path: &Path, opts: &FileBackupOptions) -> Result<Option<BackupReport>> {
    opts.check()?;
    let Some(dir) = existing_file(path, "back up")? else {
        return Ok(None);
    };
    let _lock = lock_folder(&dir)?;
    let mut warnings = remove_leftovers(&dir);
    let saved = save_current(path)?;
    warnings.extend(saved.warnings(path));
    let (removed, more) = rotate(path, opts.keep, &[&saved.copy], Some(&saved));
    warnings.extend(more);
    Ok(Some(BackupReport {
        backup: saved.copy,
        checksum: saved.checksum,
        unchanged: saved.unchanged,
        content: saved.content,
        removed,
        warnings,
    }))
}

/// Backs `path` up with [`backup_file`], then replaces it with `bytes` atomically (temp file,
/// fsync, rename, folder fsync). When `path` is a symbolic link, the file it points to is
/// replaced and the link stays. An existing file's permission bits are kept; a new file gets
/// 0666 less the umask.
///
/// A failed backup is a warning in the report and the write still happens, since losing the
/// new data is worse than missing one copy; with `opts.strict` it is an error and nothing is
/// written.
///
/// # Errors
///
/// When the file cannot be written, or with `strict` when it cannot be backed up.
///
/// # Example
///
/// ```
/// use resbak::filebackup::{FileBackupOptions, write_with_backup};
///
/// # let dir = tempfile::tempdir()?;
/// let store = dir.path().join("experiences.json");
/// let opts = FileBackupOptions { keep: 5, ..Default::default() };
/// write_with_backup(&store, br#"{"experiences": []}"#, &opts)?; // first write: no copy
/// let report = write_with_backup(&store, br#"{"experiences": [1]}"#, &opts)?;
/// for warning in &report.warnings {
///     eprintln!("warning: {warning}");
/// }
/// assert!(report.backup.is_some());
/// assert_eq!(report.content.json_valid, Some(true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_with_backup(
    path: &Path,
    bytes: &[u8],
    opts: &FileBackupOptions,
) -> Result<WriteReport> {
    // Even when a failed copy is only a warning, keeping no version is never what was meant.
    opts.check()?;
    let (target, through_link) = write_target(path)?;
    let mut report = WriteReport {
        written_through: through_link.then(|| target.clone()),
        ..WriteReport::default()
    };
    match backup_file(path, opts) {
        Ok(Some(done)) => {
            report.backup = Some(done.backup);
            report.unchanged = done.unchanged;
            report.content = done.content;
            report.removed = done.removed;
            report.warnings = done.warnings;
        }
        Ok(None) => {}
        Err(e) if opts.strict => return Err(e),
        Err(e) => report.warnings.push(format!(
            "writing {} without a backup: {}",
            path.display(),
            crate::error::chain(&e)
        )),
    }
    write_keeping_mode(&target, bytes)?;
    Ok(report)
}

/// The copies of `path`, newest first; none when its backup folder does not exist.
///
/// # Errors
///
/// When `path` has no file name or the backup folder or its `SHA256SUMS` cannot be read.
pub fn list_backups(path: &Path) -> Result<Vec<FileBackup>> {
    let name = file_name(path)?;
    let dir = backup_dir(path);
    let entries = match fs::read_dir(&dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.at("read", &dir)?,
    };
    let sums = Sums::read(&dir)?;
    let mut found = Vec::new();
    for item in entries {
        let item = item.at("read", &dir)?;
        let file = item.file_name();
        if let Some((stamp, seq)) = names::parse_backup_name(name, &file)
            && item.file_type().is_ok_and(|t| t.is_file())
        {
            let recorded = sums.get(&file).map(str::to_string);
            let created = names::created(stamp, recorded.is_some());
            let path = dir.join(file);
            found.push(FileBackup {
                path,
                created,
                seq,
                recorded,
            });
        }
    }
    found.sort_by_key(|c| Reverse((c.created, c.seq)));
    Ok(found)
}

/// Reads `copy` once for its size and SHA-256 and, with `json`, parses it as JSON without
/// keeping the document in memory.
///
/// # Errors
///
/// When the copy cannot be read (a copy that is not valid JSON is not an error).
pub fn inspect(copy: &Path, json: bool) -> Result<Contents> {
    let file = File::open(copy).at("open", copy)?;
    let mut reader =
        BufReader::with_capacity(copying::COPY_BUF, crate::checksum::HashingReader::new(file));
    let json = if json {
        Some(json::check_json(&mut reader).at("read", copy)?)
    } else {
        None
    };
    // Whatever the parser left unread still counts.
    std::io::copy(&mut reader, &mut std::io::sink()).at("read", copy)?;
    let checksum = reader.into_inner().finish().at("read", copy)?;
    Ok(Contents { checksum, json })
}

/// The status of `copy` whose bytes hash to `checksum`.
pub fn status(copy: &FileBackup, checksum: &Checksum) -> CopyStatus {
    match &copy.recorded {
        None => CopyStatus::Unrecorded,
        Some(sha) if *sha == checksum.sha256 => CopyStatus::Ok,
        Some(_) => CopyStatus::Damaged,
    }
}

/// Whether the copies of `path` get the JSON check: a `.json` name, or a recent copy that
/// starts like a JSON document.
pub fn checks_json(path: &Path, copies: &[FileBackup]) -> bool {
    is_json(path) || copies.iter().take(3).any(|c| starts_like_json(&c.path))
}

/// The folder holding the copies of `path`: `backups/` beside it.
pub fn backup_dir(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("")).join(BACKUP_DIR)
}

/// Whether a strategy backup leaves `entry` out: a copies folder resbak keeps (see
/// [`is_copies_folder`]).
pub fn leaves_out(entry: &walkdir::DirEntry) -> bool {
    entry.file_type().is_dir() && is_copies_folder(entry.path())
}

/// The copies folders resbak keeps (see [`is_copies_folder`]) below `root`, which strategy
/// backups leave out. Links are not followed.
pub fn copies_folders_in(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(Ok(entry)) = walk.next() {
        if entry.file_type().is_dir() && is_copies_folder(entry.path()) {
            found.push(entry.path().to_path_buf());
            walk.skip_current_dir();
        }
    }
    found
}

/// The copy holding the current file: a new one, or the newest when identical to it.
struct Saved {
    copy: PathBuf,
    checksum: Checksum,
    unchanged: bool,
    content: ContentCheck,
}

impl Saved {
    /// The warning for a copy that does not parse.
    fn warnings(&self, path: &Path) -> Vec<String> {
        match &self.content.json_error {
            Some(error) => vec![format!(
                "{} does not parse as JSON ({error}); its copy {} is kept and flagged in `file list`",
                path.display(),
                self.copy.display()
            )],
            None => Vec::new(),
        }
    }
}

/// `None` when `path` does not exist; else the folder for its copies, created if need be.
fn existing_file(path: &Path, action: &'static str) -> Result<Option<PathBuf>> {
    match fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
        Ok(meta) if !meta.is_file() => Err(not_a_file(action, path)),
        Ok(_) => {
            file_name(path)?;
            let dir = backup_dir(path);
            fs::create_dir_all(&dir).at("create backup folder", &dir)?;
            Ok(Some(dir))
        }
    }
}

/// Removes the temp files a killed run left in the backup folder `dir` (their owner's lock is
/// free, so never one being written), each said as a warning.
fn remove_leftovers(dir: &Path) -> Vec<String> {
    match crate::atomic::remove_stale(dir) {
        Ok(removed) => (removed.iter())
            .map(|p| format!("removed {} left by an interrupted run", p.display()))
            .collect(),
        Err(e) => vec![format!(
            "leftovers not removed: {}",
            crate::error::chain(&e)
        )],
    }
}

/// Copies `path` as it is now into its backup folder (which the caller holds locked) under the
/// next free name, and records its checksum; or, when it is identical to the newest copy and
/// that copy is intact, makes no copy.
fn save_current(path: &Path) -> Result<Saved> {
    save_current_at(path, Utc::now())
}

fn save_current_at(path: &Path, now: DateTime<Utc>) -> Result<Saved> {
    let name = file_name(path)?;
    let dir = backup_dir(path);
    let (tmp, checksum) = copy_to_temp(path, &dir, None)?;
    let copies = list_backups(path)?;
    let json = checks_json(path, &copies) || starts_like_json(tmp.path());
    let content: ContentCheck = if json {
        let file = File::open(tmp.path()).at("open", tmp.path())?;
        let reader = BufReader::with_capacity(copying::COPY_BUF, file);
        Some(json::check_json(reader).at("read", tmp.path())?).into()
    } else {
        ContentCheck::default()
    };
    if let Some(newest) = copies.first()
        && holds(newest, &checksum)
    {
        return Ok(Saved {
            copy: newest.path.clone(),
            checksum,
            unchanged: true,
            content,
        });
    }
    let now = now.trunc_subsecs(0);
    let first = next_seq(&copies, now);
    let names = (first..).map(|seq| dir.join(names::backup_name(name, now, seq)));
    let copy = crate::atomic::persist_first_free(tmp, names)?;
    let recorded = Sums::read(&dir).and_then(|mut sums| {
        sums.set(copy.file_name().unwrap_or_default(), &checksum.sha256);
        sums.write(&dir)
    });
    if let Err(e) = recorded {
        // A copy without its line would pass for one of the Python scripts' copies (no
        // checksum, a local time): it goes, and the backup fails whole.
        let _ = fs::remove_file(&copy);
        return Err(e);
    }
    Ok(Saved {
        copy,
        checksum,
        unchanged: false,
        content,
    })
}

/// Whether `copy` holds exactly `checksum`'s bytes: as recorded and as read now.
fn holds(copy: &FileBackup, checksum: &Checksum) -> bool {
    copy.recorded
        .as_ref()
        .is_none_or(|sha| *sha == checksum.sha256)
        && hash_file(&copy.path).is_ok_and(|read| read == *checksum)
}

fn mismatch(recorded: &str, read: &str) -> String {
    format!("SHA-256 is {read}, SHA256SUMS records {recorded}")
}

/// Removes the copies of `path` beyond the `keep` newest versions, never one in `protect` nor
/// the newest copy that passes the content check. `SHA256SUMS` is updated first. Returns the
/// removed copies and, as warnings, whatever went wrong.
fn rotate(
    path: &Path,
    keep: usize,
    protect: &[&Path],
    saved: Option<&Saved>,
) -> (Vec<PathBuf>, Vec<String>) {
    let mut warnings = Vec::new();
    let copies = match list_backups(path) {
        Ok(copies) => copies,
        Err(e) => {
            let warning = format!("old backups not cleaned up: {}", crate::error::chain(&e));
            return (Vec::new(), vec![warning]);
        }
    };
    let hashed: Vec<Option<String>> = copies
        .iter()
        .map(|c| match &c.recorded {
            Some(sha) => Some(sha.clone()),
            None => hash_file(&c.path).ok().map(|c| c.sha256),
        })
        .collect();
    let candidates: Vec<rotation::Candidate> = copies
        .iter()
        .zip(&hashed)
        .map(|(c, sha)| rotation::Candidate {
            path: &c.path,
            version: sha.as_deref(),
        })
        .collect();
    let good = newest_passing(path, &copies, saved);
    let mut protect = protect.to_vec();
    protect.extend(good.as_deref());
    let doomed = rotation::to_remove(&candidates, keep, &protect);
    if doomed.is_empty() {
        return (Vec::new(), warnings);
    }
    let dir = backup_dir(path);
    let forget = Sums::read(&dir).and_then(|mut sums| {
        for old in &doomed {
            sums.remove(old.file_name().unwrap_or_default());
        }
        sums.write(&dir)
    });
    if let Err(e) = forget {
        let warning = format!("old backups not cleaned up: {}", crate::error::chain(&e));
        return (Vec::new(), vec![warning]);
    }
    let mut removed = Vec::new();
    for old in doomed {
        match fs::remove_file(old) {
            Ok(()) => removed.push(old.to_path_buf()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("cannot remove old backup {}: {e}", old.display())),
        }
    }
    (removed, warnings)
}

/// The newest copy that passes the content check, for a file that gets one; `saved` is a copy
/// already checked.
fn newest_passing(path: &Path, copies: &[FileBackup], saved: Option<&Saved>) -> Option<PathBuf> {
    if !checks_json(path, copies) {
        return None;
    }
    copies.iter().find_map(|copy| {
        let passes = match saved {
            Some(s) if s.copy == copy.path && s.content.json_valid.is_some() => s.content.passes(),
            _ => inspect(&copy.path, true).is_ok_and(|c| {
                status(copy, &c.checksum) != CopyStatus::Damaged
                    && c.json.is_some_and(|j| j.parses())
            }),
        };
        passes.then(|| copy.path.clone())
    })
}

/// Whether the file at `path` starts like a JSON document.
fn starts_like_json(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut n = 0;
    let mut reader = file.take(head.len() as u64);
    while let Ok(read) = reader.read(&mut head[n..]) {
        if read == 0 {
            break;
        }
        n += read;
    }
    json::looks_like_json(&head[..n])
}

/// Whether `arg` names `copy`: its file name with or without `.backup`, or a path to it.
fn names_copy(arg: &str, copy: &Path) -> bool {
    if arg.contains('/') {
        return matches!(
            (fs::canonicalize(arg), fs::canonicalize(copy)),
            (Ok(a), Ok(b)) if a == b
        );
    }
    let file = copy.file_name().unwrap_or_default();
    file == arg || file == format!("{arg}{}", names::EXTENSION).as_str()
}

/// The sequence number for a new copy made in the second `created`: one past the highest in
/// use, so that name order stays creation order even after rotation freed lower numbers.
fn next_seq(existing: &[FileBackup], created: DateTime<Utc>) -> u32 {
    existing
        .iter()
        .filter(|c| c.created == created)
        .map(|c| c.seq.saturating_add(1))
        .max()
        .unwrap_or(1)
}

fn file_name(path: &Path) -> Result<&OsStr> {
    path.file_name().ok_or_else(|| not_a_file("back up", path))
}

#[cfg(test)]
mod tests;
