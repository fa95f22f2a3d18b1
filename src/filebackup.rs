//! Timestamped copies of single files, made just before a program overwrites them.
//!
//! A copy of `dir/name` lives in `dir/backups/` as `name.<YYYYMMDD_HHMMSS>.backup` (UTC), with
//! `_2`, `_3`, ... for further copies in the same second. It is a byte-exact copy that keeps the
//! file's modification time; like `cp`, it gets the file's permission bits less the umask
//! (setuid and setgid are dropped, as the copy may have another owner). There is no catalogue: names are parsed back and name order is creation
//! order. Files in `backups/` that do not match that pattern exactly are never listed or removed.
//!
//! [`backup_file`] and [`write_with_backup`] are the API for programs that rewrite a data file in
//! place; [`list_backups`], [`inspect`] and [`restore`] complete the `resbak file` commands.

use crate::atomic;
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, IoContext, Result};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cmp::Reverse;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, FileTimes, Permissions};
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Copies kept per file unless told otherwise.
pub const DEFAULT_KEEP: usize = 10;

/// Name of the folder, beside the file, that holds its copies.
pub const BACKUP_DIR: &str = "backups";

const EXTENSION: &str = ".backup";
const STAMP_FORMAT: &str = "%Y%m%d_%H%M%S";
const STAMP_LEN: usize = "YYYYMMDD_HHMMSS".len();
const COPY_BUF: usize = 1 << 20;

/// How [`backup_file`], [`write_with_backup`] and [`restore`] behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBackupOptions {
    /// Copies to keep per file, newest first; older ones are removed. The copy just made is
    /// always kept, so 0 behaves like 1.
    pub keep: usize,
    /// Makes a failed backup an error in [`write_with_backup`], which then writes nothing.
    /// Without it the failure becomes a warning and the write goes ahead.
    pub strict: bool,
}

impl Default for FileBackupOptions {
    fn default() -> Self {
        FileBackupOptions {
            keep: DEFAULT_KEEP,
            strict: false,
        }
    }
}

/// A copy [`backup_file`] made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    /// The new copy.
    pub backup: PathBuf,
    /// Size and SHA-256 of what was copied.
    pub checksum: Checksum,
    /// Older copies removed to keep only `keep`.
    pub removed: Vec<PathBuf>,
    /// Cleanup problems; the copy itself is complete.
    pub warnings: Vec<String>,
}

/// What [`write_with_backup`] did besides writing.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    /// The copy of the previous version; `None` when there was no file yet or the copy failed.
    pub backup: Option<PathBuf>,
    /// Older copies removed to keep only `keep`.
    pub removed: Vec<PathBuf>,
    /// A failed backup (without `strict`) and cleanup problems.
    pub warnings: Vec<String>,
}

/// One copy in a file's backup folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBackup {
    /// Where the copy is.
    pub path: PathBuf,
    /// When the copy was made, from its name (UTC, whole seconds).
    pub created: DateTime<Utc>,
    /// 1 for the first copy in that second, 2 for `_2`, and so on.
    pub seq: u32,
}

/// Which copy [`restore`] brings back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The newest copy.
    Latest,
    /// A copy by its file name (with or without `.backup`) or by its path.
    Named(String),
}

/// What [`restore`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The copy brought back.
    pub restored: PathBuf,
    /// Size and SHA-256 of the restored file, read back from disk; equal to the copy's.
    pub checksum: Checksum,
    /// The copy of the file as it was before the restore; `None` when it did not exist.
    pub saved: Option<PathBuf>,
    /// Older copies removed to keep only `keep`.
    pub removed: Vec<PathBuf>,
    /// Cleanup problems.
    pub warnings: Vec<String>,
}

/// Size, SHA-256 and, for JSON, the parse check of one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// Size and SHA-256.
    pub checksum: Checksum,
    /// The JSON check, when asked for.
    pub json: Option<JsonCheck>,
}

/// Whether a JSON file parses and how many items its top-level arrays hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonCheck {
    /// It parses. Item counts, in document order: one per array-valued field of a top-level
    /// object, or a single one named `$` for a top-level array.
    Valid(Vec<(String, u64)>),
    /// It does not parse; the parser's message.
    Invalid(String),
}

/// Copies `path` into `backups/` beside it, then removes all but the `keep` newest copies.
///
/// Returns `None`, doing nothing, when `path` does not exist: there is nothing to protect yet.
/// Call it just before overwriting the file; [`write_with_backup`] does both.
///
/// # Errors
///
/// When `path` is not a regular file or the copy cannot be made. Problems removing old copies
/// are only warnings in the report. `opts.strict` does not matter here.
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
///     println!("saved {}", report.backup.display());
///     for warning in &report.warnings {
///         eprintln!("warning: {warning}");
///     }
/// }
/// std::fs::write(&store, r#"{"experiences": [1, 2, 3, 4]}"#)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn backup_file(path: &Path, opts: &FileBackupOptions) -> Result<Option<BackupReport>> {
    let Some((backup, checksum)) = save_current(path, "back up")? else {
        return Ok(None);
    };
    let (removed, warnings) = rotate(path, opts.keep, &[&backup]);
    Ok(Some(BackupReport {
        backup,
        checksum,
        removed,
        warnings,
    }))
}

/// Backs `path` up with [`backup_file`], then replaces it with `bytes` atomically (temp file,
/// fsync, rename, folder fsync). An existing file's permission bits are kept; a new file gets
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_with_backup(
    path: &Path,
    bytes: &[u8],
    opts: &FileBackupOptions,
) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    match backup_file(path, opts) {
        Ok(Some(done)) => {
            report.backup = Some(done.backup);
            report.removed = done.removed;
            report.warnings = done.warnings;
        }
        Ok(None) => {}
        Err(e) if opts.strict => return Err(e),
        Err(e) => report.warnings.push(format!(
            "writing {} without a backup: {}",
            path.display(),
            with_causes(&e)
        )),
    }
    write_keeping_mode(path, bytes)?;
    Ok(report)
}

/// Saves the current `path` as a new copy, then replaces it atomically with a copy of the picked
/// backup (bytes and mtime), then removes all but the `keep` newest copies, never
/// the one restored. Like `cp`, the restored file keeps the permission bits `path` had; if it
/// did not exist, it gets the copy's bits less the umask.
///
/// # Errors
///
/// When the picked copy does not exist, the current file cannot be saved (nothing is replaced
/// then), or the restored file cannot be written or does not read back as the copy.
pub fn restore(path: &Path, pick: &Pick, opts: &FileBackupOptions) -> Result<RestoreReport> {
    let copies = list_backups(path)?;
    let restored = find(path, &copies, pick)?.path.clone();
    let saved = save_current(path, "restore")?.map(|(copy, _)| copy);
    let checksum = replace_from(&restored, path)?;
    let protect: Vec<&Path> = [Some(restored.as_path()), saved.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let (removed, warnings) = rotate(path, opts.keep, &protect);
    Ok(RestoreReport {
        restored,
        checksum,
        saved,
        removed,
        warnings,
    })
}

/// The copies of `path`, newest first; none when its backup folder does not exist.
///
/// # Errors
///
/// When `path` has no file name or the backup folder cannot be read.
pub fn list_backups(path: &Path) -> Result<Vec<FileBackup>> {
    let name = file_name(path)?;
    let dir = backup_dir(path);
    let entries = match fs::read_dir(&dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.at("read", &dir)?,
    };
    let mut found = Vec::new();
    for item in entries {
        let item = item.at("read", &dir)?;
        let file = item.file_name();
        if let Some((created, seq)) = parse_backup_name(name, &file)
            && item.file_type().is_ok_and(|t| t.is_file())
        {
            let path = dir.join(file);
            found.push(FileBackup { path, created, seq });
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
    let mut reader = BufReader::with_capacity(COPY_BUF, HashingReader::new(file));
    let json = if json {
        Some(check_json(&mut reader).at("read", copy)?)
    } else {
        None
    };
    let checksum = reader.into_inner().finish().at("read", copy)?;
    Ok(Contents { checksum, json })
}

/// Whether `path` names a JSON file, by its extension.
pub fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
}

/// The folder holding the copies of `path`: `backups/` beside it.
pub fn backup_dir(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("")).join(BACKUP_DIR)
}

/// Copies `path` as it is now, unless it does not exist. `action` names the operation in errors.
fn save_current(path: &Path, action: &'static str) -> Result<Option<(PathBuf, Checksum)>> {
    match fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
        Ok(meta) if !meta.is_file() => Err(not_a_file(action, path)),
        Ok(_) => make_copy(path, Utc::now()).map(Some),
    }
}

/// Copies `path` into its backup folder under the next free name for the second `now`.
fn make_copy(path: &Path, now: DateTime<Utc>) -> Result<(PathBuf, Checksum)> {
    let name = file_name(path)?;
    let now = now.trunc_subsecs(0);
    let dir = backup_dir(path);
    fs::create_dir_all(&dir).at("create backup folder", &dir)?;
    let (tmp, checksum) = copy_to_temp(path, &dir, None)?;
    let first = next_seq(&list_backups(path)?, now);
    let names = (first..).map(|seq| dir.join(backup_name(name, now, seq)));
    Ok((atomic::persist_first_free(tmp, names)?, checksum))
}

/// Streams `src` into a synced temp file in `dir` that has `src`'s mtime and the permission
/// bits `mode`, or else, as `cp` gives a new file, `src`'s less the umask.
fn copy_to_temp(src: &Path, dir: &Path, mode: Option<u32>) -> Result<(NamedTempFile, Checksum)> {
    let file = File::open(src).at("open", src)?;
    let meta = file.metadata().at("read", src)?;
    if !meta.is_file() {
        return Err(not_a_file("copy", src));
    }
    let tmp = atomic::temp_file_with_mode(dir, meta.permissions().mode())?;
    let mut reader = HashingReader::new(file);
    let mut out = BufWriter::with_capacity(COPY_BUF, tmp.as_file());
    io::copy(&mut reader, &mut out).at("copy", src)?;
    out.flush().at("write", tmp.path())?;
    drop(out);
    let checksum = reader.finish().at("read", src)?;
    let times = FileTimes::new()
        .set_accessed(meta.accessed().at("read", src)?)
        .set_modified(meta.modified().at("read", src)?);
    let out = tmp.as_file();
    if let Some(mode) = mode {
        out.set_permissions(Permissions::from_mode(mode & 0o777))
            .at("set permissions of", tmp.path())?;
    }
    out.set_times(times).at("set times of", tmp.path())?;
    out.sync_all().at("sync", tmp.path())?;
    Ok((tmp, checksum))
}

/// Replaces `path` atomically with a copy of `source`, checking that the bytes on disk hash to
/// what was read from `source`. An existing `path` keeps its permission bits.
fn replace_from(source: &Path, path: &Path) -> Result<Checksum> {
    let mode = fs::metadata(path).ok().map(|m| m.permissions().mode());
    let (tmp, copied) = copy_to_temp(source, atomic::parent_dir(path), mode)?;
    let file = File::open(tmp.path()).at("open", tmp.path())?;
    let written = HashingReader::new(BufReader::with_capacity(COPY_BUF, file))
        .finish()
        .at("read", tmp.path())?;
    if written != copied {
        let detail = format!(
            "the new file reads back as SHA-256 {}, the copy has {}",
            written.sha256, copied.sha256
        );
        return Err(Error::io("restore", path, io::Error::other(detail)));
    }
    atomic::persist(tmp, path, true)?;
    Ok(written)
}

/// Replaces `path` with `bytes` atomically, keeping its permission bits if it exists. A new file
/// gets the usual permissions for new files (0666 less the umask).
fn write_keeping_mode(path: &Path, bytes: &[u8]) -> Result<()> {
    let old_mode = fs::metadata(path).ok().map(|m| m.permissions().mode());
    let dir = atomic::parent_dir(path);
    let mut tmp = atomic::temp_file_in(dir)?;
    tmp.write_all(bytes).at("write", tmp.path())?;
    // An existing file keeps its permission bits; a new one keeps those it was created with.
    if let Some(mode) = old_mode {
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode & 0o777))
            .at("set permissions of", tmp.path())?;
    }
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    atomic::persist(tmp, path, true)
}

/// Removes the copies of `path` beyond the `keep` newest, never one in `protect`. Returns the
/// removed copies and, as warnings, whatever went wrong.
fn rotate(path: &Path, keep: usize, protect: &[&Path]) -> (Vec<PathBuf>, Vec<String>) {
    let copies = match list_backups(path) {
        Ok(copies) => copies,
        Err(e) => {
            let warning = format!("old backups not cleaned up: {}", with_causes(&e));
            return (Vec::new(), vec![warning]);
        }
    };
    let (mut removed, mut warnings) = (Vec::new(), Vec::new());
    for old in to_remove(&copies, keep, protect) {
        match fs::remove_file(old) {
            Ok(()) => removed.push(old.to_path_buf()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("cannot remove old backup {}: {e}", old.display())),
        }
    }
    (removed, warnings)
}

/// All but the `keep` newest of `copies` (newest first), except those in `protect`.
fn to_remove<'a>(copies: &'a [FileBackup], keep: usize, protect: &[&Path]) -> Vec<&'a Path> {
    copies
        .iter()
        .skip(keep)
        .map(|c| c.path.as_path())
        .filter(|p| !protect.contains(p))
        .collect()
}

/// The copy `pick` names among `copies` (newest first) of `path`.
fn find<'a>(path: &Path, copies: &'a [FileBackup], pick: &Pick) -> Result<&'a FileBackup> {
    let dir = backup_dir(path);
    match pick {
        Pick::Latest => copies.first().ok_or_else(|| Error::NoFileBackups {
            path: path.to_path_buf(),
            dir,
        }),
        Pick::Named(arg) => copies
            .iter()
            .find(|c| names_copy(arg, &c.path))
            .ok_or_else(|| Error::UnknownBackup {
                name: arg.clone(),
                dir,
            }),
    }
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
    file == arg || file == format!("{arg}{EXTENSION}").as_str()
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

/// `<name>.<stamp>.backup` for the first copy in a second, `<name>.<stamp>_<seq>.backup` after.
fn backup_name(name: &OsStr, created: DateTime<Utc>, seq: u32) -> OsString {
    let stamp = created.format(STAMP_FORMAT);
    let mut file = name.to_os_string();
    file.push(match seq {
        0 | 1 => format!(".{stamp}{EXTENSION}"),
        n => format!(".{stamp}_{n}{EXTENSION}"),
    });
    file
}

/// The time and sequence number in `file`, if it is exactly a copy name of `name`.
fn parse_backup_name(name: &OsStr, file: &OsStr) -> Option<(DateTime<Utc>, u32)> {
    let rest = file
        .as_encoded_bytes()
        .strip_prefix(name.as_encoded_bytes())?;
    let rest = std::str::from_utf8(rest.strip_prefix(b".")?).ok()?;
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
    shape_ok.then(|| (created.and_utc(), seq))
}

fn file_name(path: &Path) -> Result<&OsStr> {
    path.file_name().ok_or_else(|| not_a_file("back up", path))
}

fn not_a_file(action: &'static str, path: &Path) -> Error {
    Error::io(action, path, io::Error::other("it is not a regular file"))
}

/// The error's message followed by its causes.
fn with_causes(err: &Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Parses JSON from `reader` and counts the items of its top-level arrays. I/O errors are
/// errors; anything the parser rejects is an [`JsonCheck::Invalid`].
fn check_json(reader: impl Read) -> io::Result<JsonCheck> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = ShapeOf { top: true }
        .deserialize(&mut de)
        .and_then(|shape| de.end().map(|()| shape));
    match parsed {
        Ok(Shape::Array(n)) => Ok(JsonCheck::Valid(vec![("$".to_string(), n)])),
        Ok(Shape::Object(counts)) => Ok(JsonCheck::Valid(counts)),
        Ok(Shape::Other) => Ok(JsonCheck::Valid(Vec::new())),
        Err(e) if e.is_io() => Err(e.into()),
        Err(e) => Ok(JsonCheck::Invalid(e.to_string())),
    }
}

/// What [`check_json`] keeps of a value: an array's length, or for the top-level object the
/// lengths of its array fields. Everything else is skipped while parsing.
enum Shape {
    Array(u64),
    Object(Vec<(String, u64)>),
    Other,
}

/// Parses one value into its [`Shape`]; only the top level looks into object fields.
#[derive(Clone, Copy)]
struct ShapeOf {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for ShapeOf {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeOf {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Shape::Array(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        if !self.top {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Shape::Other);
        }
        let mut counts = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Shape::Array(n) = map.next_value_seed(ShapeOf { top: false })? {
                counts.push((key, n));
            }
        }
        Ok(Shape::Object(counts))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn time(secs: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 0, 49, secs).unwrap()
    }

    fn names(copies: &[FileBackup]) -> Vec<String> {
        copies
            .iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    /// Makes `dir/backups` impossible to write: a read-only folder or, where permissions are not
    /// enforced (as for root), a regular file in its place.
    fn block_backups(dir: &Path) {
        let backups = dir.join(BACKUP_DIR);
        fs::create_dir(&backups).unwrap();
        fs::set_permissions(&backups, Permissions::from_mode(0o555)).unwrap();
        if fs::write(backups.join("probe"), "").is_ok() {
            fs::remove_dir_all(&backups).unwrap();
            fs::write(&backups, "not a folder").unwrap();
        }
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
            assert_eq!(parse_backup_name(name, &file), Some((t, seq)));
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
    }

    #[test]
    fn rotation_keeps_the_newest_and_never_a_protected_copy() {
        let copies: Vec<FileBackup> = (0..12)
            .rev()
            .map(|i| FileBackup {
                path: PathBuf::from(format!("b/{i}")),
                created: time(i),
                seq: 1,
            })
            .collect();
        let paths = |v: Vec<&Path>| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(to_remove(&copies, 10, &[])), ["b/1", "b/0"]);
        let protect = [Path::new("b/0")];
        assert_eq!(paths(to_remove(&copies, 10, &protect)), ["b/1"]);
        assert!(to_remove(&copies, 12, &[]).is_empty());
        let newest = [Path::new("b/11")];
        assert_eq!(to_remove(&copies, 0, &newest).len(), 11);
    }

    #[test]
    fn same_second_copies_get_increasing_suffixes_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(&path, "[]").unwrap();
        for _ in 0..3 {
            make_copy(&path, time(7)).unwrap();
        }
        make_copy(&path, time(6)).unwrap();
        let expected = [
            "a.json.20261122_004907_3.backup",
            "a.json.20261122_004907_2.backup",
            "a.json.20261122_004907.backup",
            "a.json.20261122_004906.backup",
        ];
        assert_eq!(names(&list_backups(&path).unwrap()), expected);
        for old in &expected[1..] {
            fs::remove_file(dir.path().join(BACKUP_DIR).join(old)).unwrap();
        }
        let (copy, _) = make_copy(&path, time(7)).unwrap();
        assert!(
            copy.ends_with("a.json.20261122_004907_4.backup"),
            "{copy:?}"
        );
    }

    #[test]
    fn ten_copies_in_one_second_sort_numerically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        fs::write(&path, "x").unwrap();
        for _ in 0..10 {
            make_copy(&path, time(7)).unwrap();
        }
        let seqs: Vec<u32> = list_backups(&path).unwrap().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=10).rev().collect::<Vec<_>>());
    }

    #[test]
    fn copy_keeps_bytes_mtime_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        fs::write(&path, r#"{"experiences": [1, 2]}"#).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123);
        File::open(&path).unwrap().set_modified(mtime).unwrap();
        let report = backup_file(&path, &FileBackupOptions::default())
            .unwrap()
            .unwrap();
        let meta = fs::metadata(&report.backup).unwrap();
        assert_eq!(fs::read(&report.backup).unwrap(), fs::read(&path).unwrap());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(meta.modified().unwrap(), mtime);
        assert_eq!(report.checksum.len, meta.len());
    }

    #[test]
    fn missing_file_is_not_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.json");
        assert!(
            backup_file(&path, &FileBackupOptions::default())
                .unwrap()
                .is_none()
        );
        assert!(!dir.path().join(BACKUP_DIR).exists());
    }

    #[test]
    fn write_with_backup_copies_the_previous_version_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let opts = FileBackupOptions::default();
        let first = write_with_backup(&path, b"v1", &opts).unwrap();
        assert!(first.backup.is_none() && first.warnings.is_empty());
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let second = write_with_backup(&path, b"v2", &opts).unwrap();
        assert_eq!(fs::read(second.backup.unwrap()).unwrap(), b"v1");
        assert_eq!(fs::read(&path).unwrap(), b"v2");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn failed_backup_warns_and_still_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        fs::write(&path, "old").unwrap();
        block_backups(dir.path());
        let report = write_with_backup(&path, b"new", &FileBackupOptions::default()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert!(report.backup.is_none());
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("without a backup"));
    }

    #[test]
    fn failed_backup_in_strict_mode_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        fs::write(&path, "old").unwrap();
        block_backups(dir.path());
        let opts = FileBackupOptions {
            strict: true,
            ..Default::default()
        };
        assert!(write_with_backup(&path, b"new", &opts).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn restore_never_rotates_away_the_copy_it_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        fs::write(&path, "oldest").unwrap();
        let (oldest, _) = make_copy(&path, time(1)).unwrap();
        fs::write(&path, "newer").unwrap();
        make_copy(&path, time(2)).unwrap();
        fs::write(&path, "current").unwrap();
        let name = oldest.file_name().unwrap().to_string_lossy().into_owned();
        let opts = FileBackupOptions {
            keep: 1,
            ..Default::default()
        };
        let report = restore(&path, &Pick::Named(name), &opts).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"oldest");
        assert_eq!(report.checksum, inspect(&oldest, false).unwrap().checksum);
        let saved = report.saved.unwrap();
        assert_eq!(fs::read(&saved).unwrap(), b"current");
        let left: Vec<PathBuf> = list_backups(&path)
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(left, [saved, oldest]);
        assert_eq!(report.removed.len(), 1);
    }

    #[test]
    fn json_check_counts_top_level_arrays() {
        let check = |text: &str| check_json(text.as_bytes()).unwrap();
        let counts = |pairs: &[(&str, u64)]| {
            JsonCheck::Valid(pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect())
        };
        assert_eq!(
            check(
                r#"{"experiences": [1, {"a": [1, 2]}, []], "meta": {"x": [1]}, "runs": [], "n": 1}"#
            ),
            counts(&[("experiences", 3), ("runs", 0)])
        );
        assert_eq!(check("[1, 2, 3]\n"), counts(&[("$", 3)]));
        assert_eq!(check("42"), counts(&[]));
        assert!(matches!(check(r#"{"a": [1, 2"#), JsonCheck::Invalid(m) if m.contains("EOF")));
        assert!(matches!(check(r#"{"a": []} x"#), JsonCheck::Invalid(_)));
    }
}
