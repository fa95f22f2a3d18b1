use crate::util::{Env, flip_byte, stdout};
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
    let files = || {
        let read = |name: &str| fs::read(env.backups().join(name)).ok();
        (read("manifest.yaml"), read("verified.yaml"))
    };
    let before = files();
    let out = env.run(&["prune", "s", "--keep", "1", "--dry-run"]);
    assert_eq!(out.matches("Would remove old backup: ").count(), 3, "{out}");
    assert!(
        files() == before,
        "the dry run wrote the catalogue or its checks"
    );
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
    let out = env.run_code(&["prune", "--keep", "1"], 0);
    assert!(stray.is_file());
    // Said, not passed over: retention leaves them where they are (a killed prune leaves its
    // removals so), and they can hold much of the disk.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 archive in backups is not catalogued (not in its manifest); retention counts and removes only catalogued backups"),
        "{err}"
    );
}

#[test]
fn a_folder_in_place_of_an_archive_is_left_as_it_is_and_the_rest_goes_on() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 4, "s");
    // A non-empty folder in place of the oldest archive: no usable backup, and not a file to
    // remove. (Deleting a file that fails keeps its entry: see the retention unit tests.)
    let stuck = env.backups().join(&all[0]);
    fs::remove_file(&stuck).unwrap();
    fs::create_dir(&stuck).unwrap();
    fs::write(stuck.join("x"), "x").unwrap();
    let out = env.run_code(&["prune", "--keep", "1"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("not counted as kept, left as it is: {}", all[0])),
        "{err}"
    );
    let mut left = env.archives();
    left.sort();
    assert_eq!(left, vec![all[0].clone(), all[3].clone()]);
    assert!(stdout(&out).contains(&format!("Removed old backup: {}", all[1])));
    assert!(stuck.join("x").exists());
    // A folder in place of an archive is a problem list reports.
    let list = stdout(&env.run_code(&["list"], 1));
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

/// The manifest with its first entry listed a second time, as a hand edit or a merge makes it.
fn duplicate_first_entry(env: &Env) {
    let mut manifest = env.manifest();
    let backups = manifest["backups"].as_sequence_mut().unwrap();
    backups.push(backups[0].clone());
    let text = serde_yaml::to_string(&manifest).unwrap();
    fs::write(env.backups().join("manifest.yaml"), text).unwrap();
}

#[test]
fn duplicate_entries_are_refused_and_prune_deletes_nothing() {
    let env = Env::new();
    env.sample("s");
    let only = backups_of(&env, 1, "s");
    duplicate_first_entry(&env);
    let text = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    let second = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("backup_file:"))
        .nth(1)
        .map(|(n, _)| n + 1)
        .unwrap();
    for args in [&["prune", "--keep", "1"][..], &["list"], &["verify"]] {
        let err = env.fail(args, 2);
        assert!(err.contains(&format!("line {second}:")), "{args:?}: {err}");
        assert!(
            err.contains("listed twice") && err.contains("resbak reindex"),
            "{err}"
        );
        assert_eq!(err.matches("reindex").count(), 1, "one next step: {err}");
    }
    assert!(env.backups().join(&only[0]).is_file(), "{}", env.tree());
    assert_eq!(env.archives(), [only[0].clone(), only[0].clone()]);
    env.run(&["reindex"]);
    assert_eq!(env.archives(), only);
    env.run(&["verify"]);
}

/// Results that differ from the sample, so a backup of them is not "unchanged".
fn change(env: &Env, strategy: &str) {
    crate::util::write(&env.results().join(strategy).join("new.csv"), "changed\n");
}

fn kinds(env: &Env) -> Vec<(String, String)> {
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let kind = r["kind"].as_str().unwrap_or("-").to_string();
            (r["archive"].as_str().unwrap().to_string(), kind)
        })
        .collect()
}

#[test]
fn safety_copies_are_never_latest_and_never_push_out_backups() {
    let env = Env::new();
    env.sample("s");
    let real = backups_of(&env, 1, "s").remove(0);
    change(&env, "s");
    env.run(&["restore", &real, "--force"]);
    let safety: Vec<String> = env.archives().into_iter().filter(|a| *a != real).collect();
    assert_eq!(safety.len(), 1, "{}", env.tree());
    assert_eq!(env.manifest()["backups"][1]["kind"], "safety");
    assert_eq!(
        kinds(&env),
        [
            (real.clone(), "regular".into()),
            (safety[0].clone(), "safety".into())
        ]
    );
    // The results equal the real backup again: nothing to back up, whatever the safety copy holds.
    let out = env.run(&["backup", "s"]);
    assert!(out.contains(&format!("since {real}")), "{out}");
    assert_eq!(env.archives().len(), 2);
    // keep 1 keeps the real backup; the safety copy is kept by its own rule.
    let out = env.run(&["prune", "--keep", "1"]);
    assert!(out.contains("Removed 0 old backups, kept 2"), "{out}");
    assert_eq!(env.archives(), [real, safety[0].clone()]);
}

#[test]
fn safety_copies_are_pruned_by_their_own_count() {
    let env = Env::new();
    env.sample("s");
    let real = backups_of(&env, 1, "s").remove(0);
    for i in 0..4 {
        // A folder its newest backup, or an earlier safety copy, already holds needs no safety
        // copy: each change differs.
        let new = env.results().join("s/new.csv");
        crate::util::write(&new, &format!("changed {i}\n"));
        env.run(&["restore", &real, "--force"]);
    }
    let safety: Vec<String> = env.archives().into_iter().filter(|a| *a != real).collect();
    assert_eq!(safety.len(), 4);
    let out = env.run(&["prune", "--keep", "10"]);
    assert!(
        out.contains(&format!("Removed old backup: {}", safety[0])),
        "{out}"
    );
    let mut expected = vec![real.clone()];
    expected.extend_from_slice(&safety[1..]);
    assert_eq!(env.archives(), expected);
    env.run(&["backup", "s", "--always", "--keep-safety", "1"]);
    let left = kinds(&env);
    let safety_left: Vec<_> = left.iter().filter(|(_, k)| k == "safety").collect();
    assert_eq!(safety_left.len(), 1, "{left:?}");
    assert_eq!(safety_left[0].0, safety[3], "the newest safety copy stays");
    env.fail(&["prune", "--keep-safety", "0"], 2);
}

#[test]
fn missing_folder_and_unknown_strategy_are_errors() {
    let env = Env::new();
    let err = env.fail(&["prune"], 2);
    assert!(
        err.contains("backups") && err.contains("does not exist"),
        "{err}"
    );
    env.sample("btc_sma_cross");
    let all = backups_of(&env, 2, "btc_sma_cross");
    let err = env.fail(&["prune", "btc_sma_cros", "--keep", "1"], 2);
    assert!(err.contains("did you mean \"btc_sma_cross\"?"), "{err}");
    assert_eq!(env.archives(), all);
}

#[test]
fn one_removal_is_one_old_backup() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    env.backup("s");
    let out = env.run(&["prune", "--keep", "1"]);
    assert!(out.contains("Removed 1 old backup, kept 1"), "{out}");
}

/// A backup whose archive is missing, or which verify found damaged, is not counted as kept:
/// `--keep 2` keeps two usable backups, leaves the unusable one as it is, and says so (exit 1).
#[test]
fn missing_or_damaged_backups_are_not_counted_as_kept() {
    for damage in ["missing", "damaged"] {
        let env = Env::new();
        env.sample("s");
        let all = backups_of(&env, 3, "s");
        let newest = env.backups().join(&all[2]);
        match damage {
            "missing" => fs::remove_file(&newest).unwrap(),
            _ => {
                flip_byte(&newest, fs::metadata(&newest).unwrap().len() / 2);
                env.run_code(&["verify"], 1);
            }
        }
        let out = env.run_code(&["prune", "--keep", "2"], 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout(&out).contains("Removed old backup"),
            "{damage}: {out:?}"
        );
        assert!(
            err.contains(&format!("not counted as kept, left as it is: {}", all[2])),
            "{damage}: {err}"
        );
        for kept in &all[..2] {
            assert!(
                env.backups().join(kept).exists(),
                "{damage}: {kept} removed"
            );
        }
        let listed = env.run_code(&["list", "--json"], 1);
        let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(
            rows.as_array().unwrap().len(),
            3,
            "{damage}: the entry stays"
        );
    }
}

/// With the recorded verify results unreadable, prune cannot tell damaged backups from intact
/// ones: it removes nothing and says why.
#[test]
fn unreadable_verify_results_stop_prune() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 3, "s");
    fs::write(
        env.backups().join("verified.yaml"),
        "archives: [not: a map\n",
    )
    .unwrap();
    let err = env.fail(&["prune", "--keep", "1"], 2);
    assert!(err.contains("verified.yaml"), "{err}");
    assert_eq!(env.archives(), all);
}

/// A backup damaged after its last verify, or never verified, is read before it is counted as
/// kept: a byte changed in place (same size) must not let it stand in for an intact backup.
#[test]
fn a_backup_damaged_since_its_last_verify_is_not_counted_as_kept() {
    for verified_first in [true, false] {
        let env = Env::new();
        env.sample("s");
        let all = backups_of(&env, 3, "s");
        if verified_first {
            env.run(&["verify"]);
        }
        let newest = env.backups().join(&all[2]);
        flip_byte(&newest, fs::metadata(&newest).unwrap().len() / 2);
        for dry_run in [true, false] {
            let args: &[&str] = match dry_run {
                true => &["prune", "--keep", "1", "--dry-run"],
                false => &["prune", "--keep", "1"],
            };
            let out = env.run_code(args, 1);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("SHA-256 mismatch"), "{verified_first}: {err}");
            let said = stdout(&out);
            let gone = format!("old backup: {}", all[1]);
            assert!(!said.contains(&gone), "{verified_first} {dry_run}: {said}");
            assert!(said.contains(&format!("old backup: {}", all[0])), "{said}");
        }
        assert!(!env.backups().join(&all[0]).exists());
        assert!(env.backups().join(&all[1]).exists(), "{verified_first}");
        assert!(newest.exists(), "left as it is");
        let listed = env.run_code(&["list", "--json"], 1);
        let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let status = |file: &str| {
            let row = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["archive"] == file);
            row.map(|r| r["status"].clone())
        };
        assert_eq!(status(&all[2]), Some("failed".into()), "{rows}");
        assert_eq!(status(&all[1]), Some("verified".into()), "{rows}");
    }
}

/// Reading a kept backup whose index the last verify found damaged proves the archive, not the
/// index: the damaged index stays on record.
#[test]
fn prune_keeps_a_damaged_index_on_record() {
    let env = Env::new();
    env.sample("s");
    let all = backups_of(&env, 2, "s");
    let index = env.backups().join(format!("{}.idx", all[1]));
    flip_byte(&index, 20);
    env.run_code(&["verify"], 1);
    let out = env.run(&["prune", "--keep", "1"]);
    assert!(out.contains(&format!("old backup: {}", all[0])), "{out}");
    let listed = env.run_code(&["list", "--json"], 1);
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["status"], "index-damaged", "{rows}");
}

/// A backup whose strategy was edited by hand to another's (its file name and folder still the
/// first strategy's) is not counted as a backup of the other: prune removes none of that
/// strategy's real backups in its place, plain `verify` reports the entry, and the hint says to
/// correct it.
#[test]
fn a_backup_relabelled_by_hand_is_not_counted_for_the_other_strategy() {
    let env = Env::new();
    env.sample("btc");
    env.sample("eth");
    let eth = env.backup("eth");
    env.backup("btc");
    let btc = env.backup("btc");
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let (head, tail) = text.rsplit_once("- strategy: btc").unwrap();
    fs::write(&manifest, format!("{head}- strategy: eth{tail}")).unwrap();
    let out = env.run_code(&["verify"], 1);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "{btc}: its file name says strategy btc, its manifest entry says eth"
        )),
        "{said}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("move"),
        "no hint to move it out"
    );
    let out = env.run_code(&["prune", "eth", "--keep", "1"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("not counted as kept, left as it is: {btc}")),
        "{err}"
    );
    assert!(
        env.backups().join(&eth).is_file(),
        "eth's only real backup is kept"
    );
    assert!(env.backups().join(&btc).is_file());
}
