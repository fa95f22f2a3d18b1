use crate::util::{Env, stdout};
use std::fs;

fn backups_of(env: &Env, n: usize, strategy: &str) -> Vec<String> {
    let args: Vec<&str> = ["backup", "--always"]
        .into_iter()
        .chain(std::iter::repeat_n(strategy, n))
        .collect();
    env.run(&args);
    env.archives()
}

#[test]
fn twelve_backups_keep_ten_removes_the_two_oldest_and_says_so() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 12, "s");
    let out = env.run(&["prune", "--keep", "10"]);
    let removed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Removed old backup: "))
        .collect();
    assert_eq!(removed, [all[0].as_str(), all[1].as_str()], "{out}");
    assert_eq!(env.archives(), all[2..].to_vec());
    assert!(!env.backups().join(&all[0]).exists() && !env.backups().join(&all[1]).exists());
    env.run(&["verify"]);
}

#[test]
fn backup_with_keep_prunes_that_strategy_only() {
    let env = Env::new();
    env.sample("s");
    env.sample("t");
    let s_before = backups_of(&env, 3, "s");
    backups_of(&env, 3, "t");
    let out = env.run(&["backup", "s", "--always", "--keep", "2"]);
    assert_eq!(out.matches("Removed old backup: ").count(), 2, "{out}");
    assert!(
        out.contains(&s_before[0]) && out.contains(&s_before[1]),
        "{out}"
    );
    let left = env.archives();
    assert_eq!(left.iter().filter(|a| a.starts_with("t_")).count(), 3);
    assert_eq!(left.iter().filter(|a| a.starts_with("s_")).count(), 2);
}

#[test]
fn failed_backup_prunes_nothing() {
    let env = Env::new();
    env.sample("s");
    let before = backups_of(&env, 3, "s");
    fs::remove_dir_all(env.results().join("s")).unwrap();
    env.fail(&["backup", "s", "--keep", "1"], 2);
    assert_eq!(env.archives(), before);
}

#[test]
fn dry_run_deletes_nothing() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 4, "s");
    let out = env.run(&["prune", "s", "--keep", "1", "--dry-run"]);
    assert_eq!(out.matches("Would remove old backup: ").count(), 3, "{out}");
    assert_eq!(env.archives(), all);
    for a in &all {
        assert!(env.backups().join(a).is_file());
    }
}

#[test]
fn single_backup_is_always_kept_and_keep_zero_is_refused() {
    let env = Env::new();
    env.sample("s");
    let one = backups_of(&env, 1, "s");
    let out = env.run(&["prune", "--keep", "1"]);
    assert!(out.contains("Removed 0 old backups, kept 1"), "{out}");
    assert_eq!(env.archives(), one);
    env.fail(&["prune", "--keep", "0"], 2);
    assert_eq!(env.archives(), one);
}

#[test]
fn order_comes_from_the_manifest_not_names() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 3, "s");
    // Make the newest by name the oldest by creation time.
    let path = env.backups().join("manifest.yaml");
    let mut m: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["backups"][2]["created"] = "2001-01-01T00:00:00Z".into();
    fs::write(&path, serde_yaml::to_string(&m).unwrap()).unwrap();
    let out = env.run(&["prune", "--keep", "2"]);
    assert!(
        out.contains(&format!("Removed old backup: {}", all[2])),
        "{out}"
    );
}

#[test]
fn untracked_files_are_never_touched() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 3, "s");
    let stray = env.backups().join("s_20000101_000000.tar.gz");
    fs::copy(env.backups().join(&all[0]), &stray).unwrap();
    env.run(&["prune", "--keep", "1"]);
    assert!(stray.is_file());
}

#[test]
fn a_file_that_cannot_be_deleted_keeps_its_entry_and_the_rest_goes_on() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 4, "s");
    // A non-empty folder in place of the oldest archive cannot be removed as a file.
    let stuck = env.backups().join(&all[0]);
    fs::remove_file(&stuck).unwrap();
    fs::create_dir(&stuck).unwrap();
    fs::write(stuck.join("x"), "x").unwrap();
    let out = env.run_code(&["prune", "--keep", "1"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&all[0]) && err.contains("could not remove"),
        "{err}"
    );
    let mut left = env.archives();
    left.sort();
    assert_eq!(
        left,
        vec![all[0].clone(), all[3].clone()],
        "the undeletable one keeps its entry"
    );
    assert!(stdout(&out).contains(&format!("Removed old backup: {}", all[1])));
    let list = env.run(&["list"]);
    assert!(
        list.find(&all[0]) < list.find(&all[3]),
        "still listed oldest first:\n{list}"
    );
}

#[test]
fn json_report_lists_removed_and_kept() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 3, "s");
    let report: serde_json::Value =
        serde_json::from_str(&env.run(&["prune", "--keep", "2", "--json"])).unwrap();
    assert_eq!(report["removed"], serde_json::json!([all[0]]));
    assert_eq!(report["kept"], serde_json::json!([all[1], all[2]]));
    assert_eq!(report["failed"], serde_json::json!([]));
    assert_eq!(report["dry_run"], false);
}

#[test]
fn keep_from_resbak_toml_prunes_after_backup() {
    let env = Env::new();
    env.sample("s");
    fs::write(env.path().join("resbak.toml"), "keep = 2\n").unwrap();
    backups_of(&env, 2, "s");
    let out = env.run(&["backup", "s", "--always"]);
    assert!(out.contains("Removed old backup: "), "{out}");
    assert_eq!(env.archives().len(), 2);
    let config = env.run(&["config"]);
    let line = config.lines().find(|l| l.starts_with("keep")).unwrap();
    assert!(
        line.contains("2") && line.contains("resbak.toml"),
        "{config}"
    );
}
