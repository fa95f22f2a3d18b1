use super::*;
use chrono::TimeZone;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;

fn time(secs: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 49, secs).unwrap()
}

fn names(copies: &[FileBackup]) -> Vec<String> {
    copies
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Writes `content` to `path` and copies it as made at `now`.
fn copy_as_of(path: &Path, content: &str, now: DateTime<Utc>) -> PathBuf {
    fs::write(path, content).unwrap();
    existing_file(path, "back up").unwrap();
    save_current_at(path, now).unwrap().copy
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
fn same_second_copies_get_increasing_suffixes_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    for n in 0..3 {
        copy_as_of(&path, &format!("[{n}]"), time(7));
    }
    copy_as_of(&path, "[3]", time(6));
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
    let copy = copy_as_of(&path, "[4]", time(7));
    assert!(
        copy.ends_with("a.json.20261122_004907_4.backup"),
        "{copy:?}"
    );
}

#[test]
fn ten_copies_in_one_second_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    for n in 0..10 {
        copy_as_of(&path, &n.to_string(), time(7));
    }
    let seqs: Vec<u32> = list_backups(&path).unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=10).rev().collect::<Vec<_>>());
}

#[test]
fn a_copy_identical_to_the_newest_is_not_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    let first = copy_as_of(&path, "[1]", time(1));
    let again = copy_as_of(&path, "[1]", time(2));
    assert_eq!(again, first);
    assert_eq!(list_backups(&path).unwrap().len(), 1);
    // A damaged newest copy is no reason to skip.
    fs::write(&first, "[2]").unwrap();
    let fresh = copy_as_of(&path, "[1]", time(3));
    assert_ne!(fresh, first);
}

#[test]
fn copies_are_recorded_in_sha256sums() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    let copy = copy_as_of(&path, "[1]", time(1));
    let copies = list_backups(&path).unwrap();
    let sha = hash_file(&copy).unwrap().sha256;
    assert_eq!(copies[0].recorded.as_deref(), Some(sha.as_str()));
    assert!(is_copies_folder(&backup_dir(&path)));
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
    assert_eq!(report.content.items, Some(2));
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
    let oldest = copy_as_of(&path, "oldest", time(1));
    copy_as_of(&path, "newer", time(2));
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
fn rotation_keeps_the_newest_copy_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    copy_as_of(&path, "[1]", time(1));
    let good = copy_as_of(&path, "[1, 2]", time(2));
    for n in 3..6 {
        copy_as_of(&path, &"[1, 2".repeat(n), time(n as u32));
    }
    let opts = FileBackupOptions {
        keep: 2,
        ..Default::default()
    };
    fs::write(&path, "[1, 2, 3").unwrap();
    let report = backup_file(&path, &opts).unwrap().unwrap();
    assert_eq!(report.content.json_valid, Some(false));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let left = list_backups(&path).unwrap();
    assert_eq!(left.len(), 3, "{:?}", names(&left));
    assert_eq!(left[2].path, good);
}

#[test]
fn inspect_hashes_what_the_parser_left_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    fs::write(&path, "[1] trailing").unwrap();
    let contents = inspect(&path, true).unwrap();
    assert_eq!(contents.checksum.len, 12);
    assert!(matches!(contents.json, Some(JsonCheck::Invalid(_))));
}

#[test]
fn keeping_no_version_is_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let keep = |keep| FileBackupOptions {
        keep,
        ..FileBackupOptions::default()
    };
    write_with_backup(&path, b"[1]", &keep(3)).unwrap();
    write_with_backup(&path, b"[1,2]", &keep(3)).unwrap();
    let copies = || fs::read_dir(dir.path().join("backups")).unwrap().count();
    let before = copies();
    let err = write_with_backup(&path, b"[1,2,3]", &keep(0)).unwrap_err();
    assert!(matches!(err, crate::error::Error::InvalidKeep), "{err}");
    assert!(backup_file(&path, &keep(0)).is_err());
    assert_eq!(copies(), before);
    assert_eq!(fs::read(&path).unwrap(), b"[1,2]");
}
