use crate::util::{Env, stdout};
use std::fs;

#[test]
fn missing_manifest_is_an_empty_catalogue() {
    let env = Env::new();
    fs::create_dir(env.backups()).unwrap();
    let out = env.run(&["list"]);
    assert!(out.contains("No backups"), "{out}");
    assert_eq!(env.run(&["list", "--json"]).trim(), "[]");
}

/// A record whose sha256 cannot be one (edited by hand, say) is a damaged manifest, said with
/// its line, not a backup listed as `present` that no check can pass.
#[test]
fn a_hand_edited_sha256_that_is_not_one_is_refused() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let sha = env.manifest()["backups"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    env.edit_manifest(|text| text.replace(&sha, &sha[..40]));
    let err = env.fail(&["list"], 2);
    assert!(
        err.contains("is damaged at line") && err.contains("not 64 lowercase hexadecimal"),
        "{err}"
    );
}

#[test]
fn rows_are_grouped_by_strategy_oldest_first() {
    let env = Env::new();
    env.sample("b_strat");
    env.sample("a_strat");
    let b1 = env.backup("b_strat");
    let a1 = env.backup("a_strat");
    let b2 = env.backup("b_strat");
    let out = env.run(&["list"]);
    let pos = |name: &str| {
        out.find(name)
            .unwrap_or_else(|| panic!("{name} missing in\n{out}"))
    };
    assert!(pos(&a1) < pos(&b1) && pos(&b1) < pos(&b2), "{out}");
    let header = out.lines().next().unwrap();
    for col in [
        "ARCHIVE", "STRATEGY", "CREATED", "SIZE", "ENTRIES", "SHA256",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let only_b = env.run(&["list", "b_strat"]);
    assert!(!only_b.contains(&a1) && only_b.contains(&b1), "{only_b}");
}

#[test]
fn json_has_every_field() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    let row = &rows[0];
    let entry = &env.manifest()["backups"][0];
    assert_eq!(row["archive"], archive.as_str());
    assert_eq!(row["strategy"], "s");
    assert_eq!(row["size"].as_u64(), entry["size"].as_u64());
    assert_eq!(row["entries"].as_u64(), Some(13));
    assert_eq!(row["files"].as_u64(), Some(6));
    assert_eq!(row["bytes"].as_u64(), entry["bytes"].as_u64());
    assert_eq!(row["sha256"].as_str(), entry["sha256"].as_str());
    assert_eq!(row["created"].as_str(), entry["created"].as_str());
    assert_eq!(row["kind"], "regular");
    assert_eq!(row["verified"], serde_json::Value::Null);
    assert_eq!(row["status"], "present");
}

#[test]
fn missing_and_untracked_archives_are_flagged() {
    let env = Env::new();
    env.sample("s");
    let gone = env.backup("s");
    let kept = env.backup("s");
    fs::remove_file(env.backups().join(&gone)).unwrap();
    fs::copy(
        env.backups().join(&kept),
        env.backups().join("s_20200101_000000.tar.gz"),
    )
    .unwrap();
    // A missing archive is a problem: exit 1, and the JSON is still one document.
    let json = stdout(&env.run_code(&["list", "--json"], 1));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let status = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["archive"] == name)
            .map(|r| r["status"].clone())
    };
    assert_eq!(status(&gone), Some("missing".into()));
    assert_eq!(status(&kept), Some("present".into()));
    assert_eq!(status("s_20200101_000000.tar.gz"), Some("untracked".into()));
    let table = stdout(&env.run_code(&["list"], 1));
    let line = table.lines().find(|l| l.contains(&gone)).unwrap();
    assert!(line.ends_with("missing"), "{line}");
    let line = table.lines().find(|l| l.contains("s_20200101")).unwrap();
    assert!(line.ends_with("untracked"), "{line}");
    assert_eq!(
        table.lines().last(),
        Some("Problems: 1 of 2 catalogued backups (1 missing)"),
        "{table}"
    );
    // Untracked and never-verified archives are not problems.
    fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    let table = env.run(&["list"]);
    assert!(!table.contains("Problems"), "{table}");
}

#[test]
fn whole_backup_folder_can_move() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    fs::rename(env.backups(), env.path().join("moved")).unwrap();
    let out = env.run(&["verify", "--backup-dir", "moved"]);
    assert!(out.contains("1 intact"), "{out}");
}

#[test]
fn status_says_only_what_was_checked() {
    let env = Env::new();
    env.sample("s");
    let good = env.backup("s");
    let bad = env.backup("s");
    let path = env.backups().join(&bad);
    crate::util::flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let row = |name: &str| {
        let out = env.cmd(&["list", "--json"]).output().unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["archive"] == name);
        found.unwrap().clone()
    };
    assert_eq!(row(&bad)["status"], "present", "never verified: not ok");
    assert_eq!(row(&bad)["verified"], serde_json::Value::Null);
    env.run_code(&["verify"], 1);
    let bad_row = row(&bad);
    assert_eq!(bad_row["status"], "failed");
    assert!(bad_row["verified"]["at"].is_string(), "{bad_row}");
    assert!(
        bad_row["problem"].as_str().unwrap().contains("SHA-256"),
        "{bad_row}"
    );
    assert_eq!(row(&good)["status"], "verified");
    // A failed row is a problem: exit 1, with a summary after the table.
    env.run_code(&["list", "--json"], 1);
    let table = stdout(&env.run_code(&["list"], 1));
    assert!(
        table.ends_with("Problems: 1 of 2 catalogued backups (1 failed)\n"),
        "{table}"
    );
    let line = table.lines().find(|l| l.contains(&bad)).unwrap();
    assert!(line.ends_with("failed"), "{table}");
    assert!(
        table.contains(&format!("{bad}: SHA-256 mismatch")),
        "{table}"
    );
}

#[test]
fn check_hashes_every_archive_and_records_the_results() {
    let env = Env::new();
    env.sample("s");
    let bad = env.backup("s");
    let path = env.backups().join(&bad);
    crate::util::flip_byte(&path, 100);
    let out = crate::util::stdout(&env.run_code(&["list", "--check"], 1));
    let line = out.lines().find(|l| l.starts_with(&bad)).unwrap();
    assert!(line.ends_with("failed"), "{out}");
    let json = stdout(&env.run_code(&["list", "--json"], 1));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["status"], "failed", "the check was recorded");
    crate::util::flip_byte(&path, 100);
    let out = env.run(&["list", "--check"]);
    assert!(out.lines().nth(1).unwrap().ends_with("verified"), "{out}");
}

#[test]
fn missing_folder_and_unknown_strategy_are_errors() {
    let env = Env::new();
    let err = env.fail(&["list"], 2);
    assert!(
        err.contains("backup folder backups does not exist"),
        "{err}"
    );
    env.sample("btc_sma_cross");
    let archive = env.backup("btc_sma_cross");
    let err = env.fail(&["list", "btc_sma_crss"], 2);
    assert!(err.contains("did you mean \"btc_sma_cross\"?"), "{err}");
    // A backup's name is not taken for a misspelt strategy.
    for name in [archive.as_str(), archive.trim_end_matches(".tar.gz")] {
        let err = env.fail(&["list", name], 2);
        assert!(
            err.contains(&format!(
                "{archive} is a backup, not a strategy: `resbak show {archive}`"
            )),
            "{err}"
        );
    }
    let err = env.fail(&["backup", "--all", "--results-dir", "nowhere"], 2);
    assert!(
        err.contains("results folder nowhere does not exist"),
        "{err}"
    );
}

#[test]
fn a_check_that_found_no_file_says_nothing_once_the_file_is_back() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    let away = env.path().join("away.tar.gz");
    fs::rename(&path, &away).unwrap();
    env.run_code(&["verify"], 1);
    let table = stdout(&env.run_code(&["list"], 1));
    assert!(table.contains("missing"), "{table}");
    fs::rename(&away, &path).unwrap();
    let table = env.run(&["list"]);
    let line = table.lines().find(|l| l.contains(&archive)).unwrap();
    assert!(line.ends_with("present"), "never verified since: {table}");
    assert!(!table.contains("archive file is missing"), "{table}");
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    assert_eq!(rows[0]["status"], "present");
    assert!(rows[0]["verified"].is_null(), "{rows}");
    env.run(&["verify"]);
    let table = env.run(&["list"]);
    let line = table.lines().find(|l| l.contains(&archive)).unwrap();
    assert!(line.ends_with("verified"), "{table}");
}

#[test]
fn the_kind_column_says_what_the_json_says() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let table = env.run(&["list"]);
    let line = table.lines().find(|l| l.contains(&archive)).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    assert_eq!(rows[0]["kind"], "regular");
    assert!(line.contains(" regular "), "{table}");
}

/// A verify result speaks for the bytes it read: an archive changed in place since (same size,
/// its modification time put back) is no longer `verified`, however soon after the backup it
/// was verified.
#[test]
fn an_archive_changed_since_its_verify_is_no_longer_listed_as_verified() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["verify"]);
    let path = env.backups().join(&archive);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    crate::util::flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let listed = env.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows[0]["status"], "present", "{rows}");
}
