use crate::safety::run_with_umask;
use crate::util::{Env, flip_byte, have, names_with_prefix, noise, set_mtimes, sha256_file, write};
use resbak::filebackup::{FileBackupOptions, write_with_backup};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const STORE: &str = "data/experiences.json";

fn store(env: &Env) -> PathBuf {
    env.path().join(STORE)
}

fn copy_dir(env: &Env) -> PathBuf {
    env.path().join("data/backups")
}

/// File names in `data/backups`, sorted, less the checksum list and its lock.
fn copies(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(copy_dir(env))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS" && n != "SHA256SUMS.lock")
        .collect();
    names.sort();
    names
}

/// The hex after `SHA-256 ` in a report line.
fn printed_sha(out: &str) -> String {
    let at = out.find("SHA-256 ").expect("a SHA-256 in the output") + "SHA-256 ".len();
    out[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// Makes `dir/backups` impossible to write: a read-only folder or, where permissions are not
/// enforced (as for root), a regular file in its place.
fn block_backups(dir: &Path) {
    let backups = dir.join("backups");
    fs::create_dir(&backups).unwrap();
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(backups.join("probe"), "").is_ok() {
        fs::remove_dir_all(&backups).unwrap();
        fs::write(&backups, "not a folder").unwrap();
    }
}

#[test]
fn backup_twice_in_one_second_gives_two_copies() {
    let env = Env::new();
    write(&store(&env), r#"{"experiences": [1, 2]}"#);
    env.run(&["file", "backup", STORE]);
    write(&store(&env), r#"{"experiences": [1, 2, 3]}"#);
    env.run(&["file", "backup", STORE]);
    let names = copies(&env);
    assert_eq!(names.len(), 2, "{}", env.tree());
    let contents: Vec<Vec<u8>> = names
        .iter()
        .map(|name| fs::read(copy_dir(&env).join(name)).unwrap())
        .collect();
    assert!(contents.contains(&fs::read(store(&env)).unwrap()));
    let stamp = |name: &str| name["experiences.json.".len()..][..15].to_string();
    if stamp(&names[0]) == stamp(&names[1]) {
        let second = format!("experiences.json.{}_2.backup", stamp(&names[0]));
        assert_eq!(names[1], second);
    }
}

#[test]
fn missing_file_is_not_an_error() {
    let env = Env::new();
    let out = env.run(&["file", "backup", STORE]);
    assert!(
        out.contains("Nothing to back up") && out.contains(STORE),
        "{out}"
    );
    assert!(!env.path().join("data").exists());
}

#[test]
fn a_folder_is_refused() {
    let env = Env::new();
    fs::create_dir(env.path().join("data")).unwrap();
    let err = env.fail(&["file", "backup", "data"], 2);
    assert!(
        err.contains("data") && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn copy_keeps_bytes_mtime_and_permissions() {
    let env = Env::new();
    let path = store(&env);
    write(&path, r#"{"experiences": []}"#);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    set_mtimes(&path, 1_700_000_000);
    let out = env.run(&["file", "backup", STORE]);
    let copy = copy_dir(&env).join(&copies(&env)[0]);
    let (orig, kept) = (fs::metadata(&path).unwrap(), fs::metadata(&copy).unwrap());
    assert_eq!(kept.mode() & 0o7777, 0o640);
    assert_eq!(kept.modified().unwrap(), orig.modified().unwrap());
    assert_eq!(sha256_file(&copy), sha256_file(&path));
    assert_eq!(printed_sha(&out), sha256_file(&path));
}

#[test]
fn rotation_keeps_the_ten_newest_and_reports_each_removal() {
    let env = Env::new();
    write(&store(&env), "current");
    for n in 0..11 {
        let name = format!("experiences.json.20200101_0000{n:02}.backup");
        write(&copy_dir(&env).join(name), &format!("old {n}"));
    }
    let unrelated = [
        "experiences.json.notes.backup",
        "other.json.20190101_000000.backup",
        "experiences.json.20190101_000000.backup.bak",
    ];
    for name in unrelated {
        write(&copy_dir(&env).join(name), "not a copy");
    }
    let out = env.run(&["file", "backup", STORE]);
    let removed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Removed old backup: "))
        .collect();
    let path_of = |n: u32| format!("data/backups/experiences.json.20200101_0000{n:02}.backup");
    assert_eq!(removed, [path_of(1), path_of(0)]);
    let left = copies(&env);
    for n in 2..11 {
        assert!(
            left.iter()
                .any(|c| c.ends_with(&format!("0000{n:02}.backup")))
        );
    }
    for name in unrelated {
        assert!(left.iter().any(|c| c == name), "{name} was removed");
    }
    assert_eq!(left.len(), 10 + unrelated.len());
}

#[test]
fn restore_round_trips_and_saves_the_current_version_first() {
    let env = Env::new();
    let path = store(&env);
    write(&path, r#"{"experiences": [1, 2, 3]}"#);
    let original = fs::read(&path).unwrap();
    env.run(&["file", "backup", STORE]);
    let copy = copies(&env)[0].clone();
    write(&path, r#"{"experiences": [1, 2, 3, 4]}"#);
    let newer = fs::read(&path).unwrap();

    let out = env.run(&["file", "restore", STORE, &copy]);
    assert_eq!(fs::read(&path).unwrap(), original);
    let sha = printed_sha(&out);
    assert_eq!(sha, sha256_file(&copy_dir(&env).join(&copy)));
    assert_eq!(sha, sha256_file(&path));
    let saved: Vec<String> = copies(&env).into_iter().filter(|c| *c != copy).collect();
    assert_eq!(saved.len(), 1, "{}", env.tree());
    assert_eq!(fs::read(copy_dir(&env).join(&saved[0])).unwrap(), newer);
    assert!(out.contains(&saved[0]), "{out}");
}

#[test]
fn restore_latest_takes_the_newest_copy_before_saving_the_current_file() {
    let env = Env::new();
    let path = store(&env);
    write(&path, "[1]");
    env.run(&["file", "backup", STORE]);
    write(&path, "[2]");
    env.run(&["file", "backup", STORE]);
    write(&path, "[3]");
    let out = env.run(&["file", "restore", STORE, "--latest"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "[2]");
    assert_eq!(printed_sha(&out), sha256_file(&path));
    let contents: Vec<String> = copies(&env)
        .iter()
        .map(|c| fs::read_to_string(copy_dir(&env).join(c)).unwrap())
        .collect();
    assert_eq!(contents, ["[1]", "[2]", "[3]"]);
}

#[test]
fn restore_never_rotates_away_the_copy_it_restores() {
    let env = Env::new();
    let path = store(&env);
    let oldest = "experiences.json.20200101_000000.backup";
    write(&copy_dir(&env).join(oldest), "oldest");
    write(
        &copy_dir(&env).join("experiences.json.20200102_000000.backup"),
        "newer",
    );
    write(&path, "current");
    let out = env.run(&["file", "restore", STORE, oldest, "--keep", "1"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "oldest");
    assert!(
        out.contains("Removed old backup: data/backups/experiences.json.20200102_000000.backup"),
        "{out}"
    );
    let left = copies(&env);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&oldest.to_string()));
}

#[test]
fn restore_refuses_unknown_or_missing_choices() {
    let env = Env::new();
    write(&store(&env), "v1");
    let err = env.fail(&["file", "restore", STORE, "--latest"], 2);
    assert!(err.contains("no backups of"), "{err}");
    env.run(&["file", "backup", STORE]);
    let err = env.fail(&["file", "restore", STORE, "nope.backup"], 2);
    assert!(err.contains("no backup named \"nope.backup\""), "{err}");
    let err = env.fail(&["file", "restore", STORE], 2);
    assert!(err.contains("<BACKUP|--latest"), "{err}");
    assert_eq!(fs::read_to_string(store(&env)).unwrap(), "v1");
    assert_eq!(copies(&env).len(), 1);
}

#[test]
fn list_checks_json_copies_and_counts_items() {
    let env = Env::new();
    let path = store(&env);
    write(
        &path,
        r#"{"experiences": [{"pnl": 1}, {"pnl": 2}, {"pnl": 3}], "meta": {}}"#,
    );
    env.run(&["file", "backup", STORE]);
    write(&path, r#"{"experiences": [{"pnl": 1}, {"pnl""#);
    env.run(&["file", "backup", STORE]);

    let out = env.run(&["file", "list", STORE]);
    assert!(out.contains("valid JSON; experiences: 3 items"), "{out}");
    assert!(out.contains("invalid JSON: EOF"), "{out}");
    assert!(out.contains(&sha256_file(&path)), "{out}");

    let rows: serde_json::Value =
        serde_json::from_str(&env.run(&["file", "list", STORE, "--json"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let (newest, older) = (&rows[0], &rows[1]);
    assert_eq!(newest["json_valid"], false);
    assert_eq!(newest["sha256"], sha256_file(&path));
    assert_eq!(older["json_valid"], true);
    assert_eq!(older["array_counts"]["experiences"], 3);
    let older_path = env.path().join(older["path"].as_str().unwrap());
    assert_eq!(older["size"], fs::metadata(older_path).unwrap().len());
}

#[test]
fn list_of_a_file_without_copies() {
    let env = Env::new();
    let out = env.run(&["file", "list", "notes.txt"]);
    assert!(out.contains("No backups of notes.txt"), "{out}");
}

#[test]
fn library_write_warns_and_still_writes_when_the_backup_fails() {
    let env = Env::new();
    let path = store(&env);
    write(&path, "old");
    block_backups(&env.path().join("data"));
    let report = write_with_backup(&path, b"new", &FileBackupOptions::default()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert!(report.backup.is_none());
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains(STORE.split('/').next_back().unwrap()));
}

#[test]
fn library_write_in_strict_mode_fails_and_leaves_the_file() {
    let env = Env::new();
    let path = store(&env);
    write(&path, "old");
    block_backups(&env.path().join("data"));
    let strict = FileBackupOptions {
        strict: true,
        ..Default::default()
    };
    assert!(write_with_backup(&path, b"new", &strict).is_err());
    assert_eq!(fs::read(&path).unwrap(), b"old");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn copies_and_restores_get_their_modes_as_cp_gives_them() {
    for (umask, mask) in [("022", 0o022), ("002", 0o002)] {
        let env = Env::new();
        let path = store(&env);
        write(&path, "v1");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        // A new copy: the file's bits less the umask, never more than the file's.
        run_with_umask(&env, umask, &["file", "backup", STORE]);
        let copy = copy_dir(&env).join(&copies(&env)[0]);
        assert_eq!(mode(&copy), 0o666 & !mask, "copy (umask {umask})");
        write(&path, "v2");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        run_with_umask(&env, umask, &["file", "backup", STORE]);
        let newest = copy_dir(&env).join(&copies(&env)[1]);
        assert_eq!(
            mode(&newest),
            0o600,
            "copy of a private file (umask {umask})"
        );
        // Restoring over the file keeps the file's bits.
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o666)).unwrap();
        let name = copy.file_name().unwrap().to_str().unwrap();
        run_with_umask(&env, umask, &["file", "restore", STORE, name]);
        assert_eq!(fs::read(&path).unwrap(), b"v1");
        assert_eq!(mode(&path), 0o600, "restored over (umask {umask})");
        // Restoring a missing file: the copy's bits less the umask.
        fs::remove_file(&path).unwrap();
        run_with_umask(&env, umask, &["file", "restore", STORE, name]);
        assert_eq!(mode(&path), 0o666 & !mask, "restored anew (umask {umask})");
    }
}

/// Set in a copy of this test binary that runs one test under another umask.
const UMASK_CHILD: &str = "RESBAK_TEST_UMASK_CHILD";

#[test]
fn a_new_file_written_with_backup_gets_0666_less_the_umask() {
    let name = "filebackup::a_new_file_written_with_backup_gets_0666_less_the_umask";
    if let Ok(expected) = std::env::var(UMASK_CHILD) {
        let env = Env::new();
        let path = store(&env);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_with_backup(&path, b"new", &FileBackupOptions::default()).unwrap();
        assert_eq!(format!("{:o}", mode(&path)), expected);
        return;
    }
    for (umask, expected) in [("022", "644"), ("002", "664")] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1"])
            .env(UMASK_CHILD, expected)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "umask {umask}: {text}{err}");
        assert!(text.contains("1 passed"), "umask {umask}: {text}");
    }
}

/// Contents of every copy in `data/backups`, oldest name first.
fn contents(env: &Env) -> Vec<String> {
    copies(env)
        .iter()
        .filter(|n| n.ends_with(".backup"))
        .map(|c| fs::read_to_string(copy_dir(env).join(c)).unwrap())
        .collect()
}

/// Runs resbak with exit code `code` and returns (stdout, stderr).
fn both(env: &Env, args: &[&str], code: i32) -> (String, String) {
    let out = env.run_code(args, code);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (text(&out.stdout), text(&out.stderr))
}

const GOOD_1: &str = r#"{"experiences": [1, 2, 3]}"#;
const GOOD_2: &str = r#"{"experiences": [1, 2, 3, 4]}"#;
const TRUNCATED: &str = r#"{"experiences": [1, 2, 3, 4, 5"#;

#[test]
fn unchanged_saves_make_no_copy_and_rotation_keeps_both_good_versions() {
    let env = Env::new();
    write(&store(&env), GOOD_1);
    env.run(&["file", "backup", STORE, "--keep", "3"]);
    write(&store(&env), GOOD_2);
    env.run(&["file", "backup", STORE, "--keep", "3"]);
    for _ in 0..5 {
        let out = env.run(&["file", "backup", STORE, "--keep", "3"]);
        assert!(out.contains("unchanged since"), "{out}");
    }
    write(&store(&env), TRUNCATED);
    for _ in 0..5 {
        both(&env, &["file", "backup", STORE, "--keep", "3"], 0);
    }
    assert_eq!(contents(&env).len(), 3, "{}", env.tree());
    for good in [GOOD_1, GOOD_2, TRUNCATED] {
        assert!(contents(&env).iter().any(|c| c == good), "{}", env.tree());
    }
}

#[test]
fn rotation_never_removes_the_newest_copy_that_parses() {
    let env = Env::new();
    for content in [GOOD_1, GOOD_2] {
        write(&store(&env), content);
        env.run(&["file", "backup", STORE]);
    }
    for n in 1..=3 {
        write(&store(&env), &TRUNCATED[..TRUNCATED.len() - n]);
        both(&env, &["file", "backup", STORE, "--keep", "2"], 0);
    }
    let left = contents(&env);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&GOOD_2.to_string()), "{left:?}");
    assert!(!left.contains(&GOOD_1.to_string()), "{left:?}");
}

#[test]
fn a_truncated_json_copy_is_flagged_and_restore_latest_passes_it_over() {
    let env = Env::new();
    write(&store(&env), GOOD_2);
    env.run(&["file", "backup", STORE]);
    write(&store(&env), TRUNCATED);
    let (_, err) = both(&env, &["file", "backup", STORE], 0);
    assert!(
        err.contains("warning") && err.contains("does not parse as JSON"),
        "{err}"
    );
    let listed = env.run(&["file", "list", STORE]);
    assert!(listed.contains("invalid JSON"), "{listed}");
    write(&store(&env), "");

    let out = env.run(&["file", "restore", STORE, "--exact", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["json_valid"], false);
    assert_eq!(fs::read_to_string(store(&env)).unwrap(), TRUNCATED);

    // The empty file was saved as the newest copy: both it and the truncated one are passed over.
    let out = env.run(&["file", "restore", STORE, "--latest"]);
    assert_eq!(fs::read_to_string(store(&env)).unwrap(), GOOD_2);
    let passed = out.lines().filter(|l| l.starts_with("Passed over")).count();
    assert_eq!(passed, 2, "{out}");
    assert!(out.contains("newest copy that parses"), "{out}");
    assert!(out.contains("experiences: 4 items"), "{out}");
}

#[test]
fn json_is_recognised_by_content_as_well_as_by_name() {
    let env = Env::new();
    let path = env.path().join("data/store.dat");
    write(&path, r#"[{"pnl": 1}, {"pnl": 2}]"#);
    env.run(&["file", "backup", "data/store.dat"]);
    write(&path, r#"[{"pnl": 1}, {"pnl"#);
    let (_, err) = both(&env, &["file", "backup", "data/store.dat"], 0);
    assert!(err.contains("does not parse as JSON"), "{err}");
    let rows: serde_json::Value =
        serde_json::from_str(&env.run(&["file", "list", "data/store.dat", "--json"])).unwrap();
    assert_eq!(rows[0]["json_valid"], false);
    assert_eq!(rows[1]["json_valid"], true);
    assert_eq!(rows[1]["items"], 2);
}

#[test]
fn library_write_reports_the_content_check_of_the_previous_version() {
    let env = Env::new();
    let path = store(&env);
    write(&path, TRUNCATED);
    let report =
        write_with_backup(&path, GOOD_1.as_bytes(), &FileBackupOptions::default()).unwrap();
    assert_eq!(report.content.json_valid, Some(false));
    assert!(
        report.warnings.iter().any(|w| w.contains("does not parse")),
        "{:?}",
        report.warnings
    );
    let report =
        write_with_backup(&path, GOOD_2.as_bytes(), &FileBackupOptions::default()).unwrap();
    assert_eq!(report.content.items, Some(3));
}

/// The lines of `data/backups/SHA256SUMS`.
fn sums(env: &Env) -> Vec<String> {
    fs::read_to_string(copy_dir(env).join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_copy_and_removal_updates_sha256sums() {
    let env = Env::new();
    for content in ["v1", "v2", "v3"] {
        write(&store(&env), content);
        env.run(&["file", "backup", STORE, "--keep", "2"]);
    }
    let names: Vec<String> = copies(&env)
        .into_iter()
        .filter(|n| n.ends_with(".backup"))
        .collect();
    assert_eq!(names.len(), 2);
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| format!("{}  {n}", sha256_file(&copy_dir(&env).join(n))))
        .collect();
    let mut lines = sums(&env);
    expected.sort();
    lines.sort();
    assert_eq!(lines, expected);
    if have("sha256sum") {
        let check = std::process::Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(copy_dir(&env))
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
    }
}

#[test]
fn a_damaged_copy_is_found_by_verify_and_list_and_refused_by_restore() {
    let env = Env::new();
    for content in ["version one", "version two"] {
        write(&store(&env), content);
        env.run(&["file", "backup", STORE]);
    }
    let oldest = copies(&env)[0].clone();
    assert!(oldest.ends_with(".backup"), "{oldest}");
    flip_byte(&copy_dir(&env).join(&oldest), 0);

    let (out, _) = both(&env, &["file", "verify", STORE], 1);
    assert!(out.contains("DAMAGED") && out.contains(&oldest), "{out}");
    assert!(out.contains("1 ok, 1 with problems"), "{out}");
    let (out, _) = both(&env, &["file", "list", STORE], 1);
    let line = out.lines().find(|l| l.contains(&oldest)).unwrap();
    assert!(line.contains("damaged"), "{out}");

    write(&store(&env), "current");
    let err = env.fail(&["file", "restore", STORE, &oldest], 1);
    assert!(err.contains("is damaged"), "{err}");
    assert_eq!(fs::read_to_string(store(&env)).unwrap(), "current");

    fs::remove_file(copy_dir(&env).join(&oldest)).unwrap();
    let (out, _) = both(&env, &["file", "verify", STORE, "--json"], 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["problems"], 1);
    assert_eq!(report["results"][1]["status"], "missing");
}

#[test]
fn restore_and_library_writes_go_through_a_symlink_to_its_target() {
    let env = Env::new();
    let real = env.path().join("store/experiences.json");
    write(&real, GOOD_1);
    fs::create_dir_all(env.path().join("data")).unwrap();
    std::os::unix::fs::symlink("../store/experiences.json", store(&env)).unwrap();
    env.run(&["file", "backup", STORE]);
    write(&real, GOOD_2);

    let out = env.run(&["file", "restore", STORE, "--latest"]);
    assert!(out.contains("symbolic link"), "{out}");
    let meta = fs::symlink_metadata(store(&env)).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(fs::read_to_string(&real).unwrap(), GOOD_1);

    let report = write_with_backup(&store(&env), b"[]", &FileBackupOptions::default()).unwrap();
    let meta = fs::symlink_metadata(store(&env)).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(fs::read_to_string(&real).unwrap(), "[]");
    let through = report.written_through.unwrap();
    assert_eq!(
        fs::canonicalize(through).unwrap(),
        fs::canonicalize(&real).unwrap()
    );
}

#[test]
fn folder_options_that_do_not_apply_to_file_are_refused() {
    let env = Env::new();
    write(&store(&env), "v1");
    for args in [
        &["file", "backup", STORE, "--backup-dir", "elsewhere"][..],
        &["--backup-dir", "elsewhere", "file", "backup", STORE],
        &["file", "--results-dir", "r", "list", STORE],
        &["--config", "resbak.toml", "file", "list", STORE],
    ] {
        let err = env.fail(args, 2);
        assert!(err.starts_with("resbak: "), "{args:?}: {err}");
    }
    assert!(!copy_dir(&env).exists(), "{}", env.tree());
    assert!(!env.path().join("elsewhere").exists());
    let help = env.run(&["file", "backup", "--help"]);
    assert!(
        !help.contains("--backup-dir") && !help.contains("--results-dir"),
        "{help}"
    );
    assert!(help.contains("--json") && help.contains("--keep"), "{help}");
}

#[test]
fn a_broken_configuration_does_not_stop_file_commands() {
    let env = Env::new();
    write(&env.path().join("resbak.toml"), "not = [valid");
    write(&store(&env), "v1");
    env.run(&["file", "backup", STORE]);
}

#[test]
fn copies_made_by_the_old_scripts_are_listed_verified_and_rotated() {
    let env = Env::new();
    write(&store(&env), r#"{"experiences": []}"#);
    for n in 0..11 {
        let name = format!("experiences.json.20240220_1430{n:02}.backup");
        write(
            &copy_dir(&env).join(name),
            &format!(r#"{{"experiences": [{n}]}}"#),
        );
    }
    let listed = env.run(&["file", "list", STORE]);
    let legacy = listed
        .lines()
        .filter(|l| l.contains("no recorded checksum"))
        .count();
    assert_eq!(legacy, 11, "{listed}");
    let out = env.run(&["file", "verify", STORE]);
    assert!(
        out.contains("0 with problems, 11 with no recorded checksum"),
        "{out}"
    );

    let out = env.run(&["file", "backup", STORE]);
    let removed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Removed old backup: "))
        .collect();
    let path_of = |n: u32| format!("data/backups/experiences.json.20240220_1430{n:02}.backup");
    assert_eq!(removed, [path_of(1), path_of(0)]);
    let out = env.run(&["file", "verify", STORE]);
    assert!(
        out.contains("1 ok, 0 with problems, 9 with no recorded checksum"),
        "{out}"
    );
    assert_eq!(sums(&env).len(), 1);
}

/// Strategy `s1` holding a JSON store with one copy in its copies folder; the store's path.
fn strategy_with_copy(env: &Env) -> PathBuf {
    env.sample("s1");
    let store = env.results().join("s1/experiences.json");
    write(&store, GOOD_1);
    env.run(&["file", "backup", "results/s1/experiences.json"]);
    store
}

/// Entry names in a `.tar.gz`.
fn archive_names(archive: &Path) -> Vec<String> {
    let file = fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn a_copies_folder_inside_a_strategy_is_left_out_of_its_backups() {
    let env = Env::new();
    strategy_with_copy(&env);
    // A folder of the user's own named `backups`, with no SHA256SUMS, is data like any other.
    write(&env.results().join("s1/runs/backups/notes.txt"), "mine");
    let out = env.run(&["backup", "s1", "--verbose"]);
    assert!(
        out.contains("left out") && out.contains("s1/backups"),
        "{out}"
    );
    let archive = env.backups().join(&env.archives()[0]);
    let names = archive_names(&archive);
    assert!(
        names.iter().any(|n| n == "s1/experiences.json"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "s1/runs/backups/notes.txt"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("s1/backups")),
        "{names:?}"
    );
}

#[test]
fn stamps_of_copies_without_a_recorded_checksum_are_local_time() {
    let env = Env::new();
    write(&store(&env), "[]");
    let legacy = "experiences.json.20240220_143000.backup";
    write(&copy_dir(&env).join(legacy), "[1]");
    let out = env
        .cmd(&["file", "list", STORE, "--json"])
        .env("TZ", "JST-9")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["created"], "2024-02-20T05:30:00Z");
    assert_eq!(rows[0]["status"], "unrecorded");
}

/// A copies folder left out of a strategy's backups is still the user's data: a forced restore
/// keeps it in the safety copy, whether or not anything else in the folder changed.
#[test]
fn a_forced_restore_keeps_a_copies_folder_in_its_safety_copy() {
    for other_change in [false, true] {
        let env = Env::new();
        strategy_with_copy(&env);
        let archive = env.backup("s1");
        if other_change {
            write(&env.results().join("s1/trades.csv"), "changed\n");
        }
        env.run(&["restore", &archive, "--force"]);
        let safety = env
            .archives()
            .into_iter()
            .find(|a| a.contains(".safety."))
            .unwrap_or_else(|| panic!("no safety copy (changed: {other_change}): {}", env.tree()));
        let names = archive_names(&env.backups().join(&safety));
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("s1/backups/experiences.json.")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n == "s1/backups/SHA256SUMS"),
            "{names:?}"
        );
    }
}

/// The copies folder stays where it was after a forced restore (backups leave it out, so the
/// restored folder lacks it), with every copy made since the backup, and still verifies.
#[test]
fn a_forced_restore_leaves_the_copies_folder_in_place() {
    let env = Env::new();
    let store = strategy_with_copy(&env);
    let archive = env.backup("s1");
    write(&env.results().join("s1/trades.csv"), "changed\n");
    write(&store, GOOD_2);
    env.run(&["file", "backup", "results/s1/experiences.json"]);
    let copies = env.results().join("s1/backups");
    let mut before = names_with_prefix(&copies, "experiences.json.");
    before.sort();
    assert_eq!(before.len(), 2, "{before:?}");
    env.run(&["restore", &archive, "--force"]);
    let mut after = names_with_prefix(&copies, "experiences.json.");
    after.sort();
    assert_eq!(after, before);
    assert_eq!(fs::read_to_string(&store).unwrap(), GOOD_1);
    env.run(&["file", "verify", "results/s1/experiences.json"]);
    // Nothing of the replaced folder is left beside it.
    assert!(names_with_prefix(&env.results(), "s1.replaced-").is_empty());
}

/// When the restored folder has something where the copies folder was, the replaced folder is
/// kept whole beside it, and the warning names the copies folder by its place in it.
#[test]
fn a_copies_folder_that_cannot_move_over_keeps_the_replaced_folder() {
    let env = Env::new();
    env.sample("s1");
    write(&env.results().join("s1/data/backups/notes.txt"), "mine\n");
    let archive = env.backup("s1");
    fs::remove_dir_all(env.results().join("s1/data/backups")).unwrap();
    write(&env.results().join("s1/data/store.json"), GOOD_1);
    env.run(&["file", "backup", "results/s1/data/store.json"]);
    let out = env.run_code(&["restore", &archive, "--force"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the copies folder data/backups of `resbak file` could not be moved"),
        "{err}"
    );
    let kept = names_with_prefix(&env.results(), "s1.replaced-");
    assert_eq!(kept.len(), 1, "{err}");
    let sums = env.results().join(&kept[0]).join("data/backups/SHA256SUMS");
    assert!(sums.exists(), "{err}");
}

/// A file that is not a copy, kept in a copies folder, is left out with the folder: the backup
/// says so.
#[test]
fn a_backup_names_what_a_copies_folder_holds_besides_copies() {
    let env = Env::new();
    strategy_with_copy(&env);
    write(
        &env.results().join("s1/backups/my_notes.txt"),
        "important\n",
    );
    let out = env.run_code(&["backup", "s1"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("my_notes.txt is not backed up") && err.contains("copies folder"),
        "{err}"
    );
}

#[test]
fn latest_and_exact_together_are_refused() {
    let env = Env::new();
    write(&env.path().join("data/store.json"), "[1]");
    let err = env.fail(
        &["file", "restore", "data/store.json", "--latest", "--exact"],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
}

/// Rewrites `path` over and over, in 64 KiB writes, with `versions` in turn, until `stop`.
fn keep_rewriting(path: PathBuf, versions: Vec<Vec<u8>>, stop: Arc<AtomicBool>) {
    use std::io::Write;
    for version in versions.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut file = fs::File::create(&path).unwrap();
        for chunk in version.chunks(64 * 1024) {
            file.write_all(chunk).unwrap();
        }
    }
}

#[test]
fn a_file_rewritten_during_backups_gets_only_copies_recorded_as_written() {
    let env = Env::new();
    let path = env.path().join("data/trades.csv");
    let versions: Vec<Vec<u8>> = (0..3).map(|seed| noise(seed, 2 << 20)).collect();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &versions[0]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || keep_rewriting(path, versions, stop))
    };
    let outcomes: Vec<_> = (0..6)
        .map(|_| {
            env.cmd(&["file", "backup", "data/trades.csv"])
                .output()
                .unwrap()
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for out in &outcomes {
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => assert!(stderr.is_empty(), "{stderr}"),
            Some(1) => assert!(
                stderr.contains("data/trades.csv changed while it was copied")
                    && stderr.contains("nothing was kept"),
                "{stderr}"
            ),
            other => panic!("exit {other:?}: {stderr}"),
        }
    }
    let names = copies(&env);
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| format!("{}  {n}", sha256_file(&copy_dir(&env).join(n))))
        .collect();
    let mut lines = if names.is_empty() {
        Vec::new()
    } else {
        sums(&env)
    };
    expected.sort();
    lines.sort();
    assert_eq!(lines, expected, "{}", env.tree());
    if !names.is_empty() {
        env.run(&["file", "verify", "data/trades.csv"]);
    }
}

/// A temp file a killed `file backup` left in the copies folder is removed by the next one,
/// which says so; one being written (its owner alive) would be left alone (see
/// `atomic::find_leftovers`).
#[test]
fn the_next_file_backup_removes_what_a_killed_one_left() {
    let env = Env::new();
    write(&store(&env), r#"{"experiences": [1]}"#);
    env.run(&["file", "backup", STORE]);
    let (file, leftover) = resbak::atomic::temp_file_in(&copy_dir(&env))
        .unwrap()
        .keep()
        .unwrap();
    drop(file);
    write(&store(&env), r#"{"experiences": [1, 2]}"#);
    let out = env.run_code(&["file", "backup", STORE], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert!(!leftover.exists());
}
