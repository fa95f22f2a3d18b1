use crate::util::{Env, stdout, write};
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn diff_against_the_results_folder_and_between_archives() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    let out = env.run(&["diff", &first]);
    assert!(
        out.trim_end().ends_with("0 added, 0 removed, 0 changed"),
        "{out}"
    );
    write(&root.join("runs/new.csv"), "n\n");
    fs::remove_file(root.join("trades.csv")).unwrap();
    write(&root.join("metrics.json"), "{\"sharpe\": 2.0}");
    let out = stdout(&env.run_code(&["diff", &first], 1));
    assert!(out.contains("+ runs/new.csv"), "{out}");
    assert!(out.contains("- trades.csv"), "{out}");
    assert!(out.contains("~ metrics.json  (content "), "{out}");
    assert!(out.contains("1 added, 1 removed, 1 changed"), "{out}");
    let second = env.backup("s");
    let changes: serde_json::Value = serde_json::from_str(&stdout(
        &env.run_code(&["diff", &first, &second, "--json"], 1),
    ))
    .unwrap();
    let by_path = |p: &str| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_path("runs/new.csv")["change"], "added");
    assert_eq!(by_path("trades.csv")["change"], "removed");
    assert_eq!(by_path("metrics.json")["what"], "content");
    assert_eq!(changes.as_array().unwrap().len(), 3, "{changes}");
    assert!(!env.results().join(".resbak-restore").exists());
}

#[test]
fn names_with_control_characters_stay_on_one_line() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    write(&root.join("odd\nname.csv"), "x\n");
    let out = stdout(&env.run_code(&["diff", &first], 1));
    assert!(out.contains("+ odd\\nname.csv"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn changes_show_old_and_new_values_and_exit_1() {
    let env = Env::new();
    let root = env.sample("s");
    let mode = |path: &str, mode: u32| {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(mode)).unwrap()
    };
    mode("trades.csv", 0o644);
    mode("metrics.json", 0o644);
    let first = env.backup("s");
    assert!(
        env.run(&["diff", &first]).contains("0 changed"),
        "identical: exit 0"
    );
    let old_size = fs::metadata(root.join("metrics.json")).unwrap().len();
    mode("trades.csv", 0o755);
    write(&root.join("metrics.json"), &"x".repeat(2200));
    mode("metrics.json", 0o600);
    let out = stdout(&env.run_code(&["diff", &first], 1));
    assert!(out.contains("~ trades.csv  (mode 0644 -> 0755)"), "{out}");
    assert!(
        out.contains(&format!(
            "~ metrics.json  (content {old_size} -> 2200 bytes, +2.1 KiB; mode 0644 -> 0600)"
        )),
        "{out}"
    );
    let changes: serde_json::Value =
        serde_json::from_str(&stdout(&env.run_code(&["diff", &first, "--json"], 1))).unwrap();
    let by_path = |p: &str| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .cloned()
            .unwrap()
    };
    let trades = by_path("trades.csv");
    assert_eq!(
        (&trades["what"], &trades["old_mode"], &trades["new_mode"]),
        (&"mode".into(), &"0644".into(), &"0755".into())
    );
    let metrics = by_path("metrics.json");
    assert_eq!(metrics["what"], "content");
    assert_eq!(metrics["old_size"].as_u64(), Some(old_size));
    assert_eq!(metrics["new_size"].as_u64(), Some(2200));
}

#[test]
fn a_damaged_archive_is_trouble_not_a_list_of_changes() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    write(&root.join("metrics.json"), "{}");
    let second = env.backup("s");
    let (first_path, second_path) = (env.backups().join(&first), env.backups().join(&second));
    // A valid archive, but not the one the manifest records: it reads cleanly.
    fs::copy(&second_path, &first_path).unwrap();
    let err = env.fail(&["diff", &first, &second], 2);
    assert!(
        err.contains(&first) && err.contains("corrupt") && err.contains("SHA-256"),
        "{err}"
    );
    // One flipped bit in the newer archive.
    let mut bytes = fs::read(&second_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&second_path, bytes).unwrap();
    let err = env.fail(&["diff", &second], 2);
    assert!(err.contains(&second) && err.contains("corrupt"), "{err}");
    let err = env.fail(&["diff", &second, "--json"], 2);
    assert!(err.contains("corrupt"), "{err}");
}

/// Two regular backups of `s` (the second with a changed metrics file), then a safety copy,
/// newer than both, made when the first replaces results holding an extra file. Returns the
/// two regular archive names; the results folder then holds what the first does.
fn history(env: &Env) -> (String, String) {
    let root = env.sample("s");
    let first = env.backup("s");
    write(&root.join("metrics.json"), "{\"sharpe\": 2.0}");
    let second = env.backup("s");
    write(&root.join("extra.csv"), "x\n");
    env.run(&["restore", &first, "--force"]);
    assert_eq!(env.manifest()["backups"][2]["kind"], "safety");
    (first, second)
}

#[test]
fn a_strategy_name_compares_its_newest_regular_backup_with_the_results() {
    let env = Env::new();
    let (_, second) = history(&env);
    let out = stdout(&env.run_code(&["diff", "s"], 1));
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("Comparing {second} (newest backup of s) with results/s").as_str()),
        "{out}"
    );
    assert!(out.contains("~ metrics.json"), "{out}");
    assert!(!out.contains("extra.csv"), "not the safety copy: {out}");
    assert!(
        out.contains(&format!(
            "backups/{second} -> results/s: 0 added, 0 removed, 1 changed"
        )),
        "{out}"
    );
    let json = stdout(&env.run_code(&["diff", "s", "--json"], 1));
    let changes: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
}

#[test]
fn strategy_tilde_n_picks_older_backups_on_either_side() {
    let env = Env::new();
    let (first, second) = history(&env);
    let out = env.run(&["diff", "s~1"]);
    assert!(
        out.starts_with(&format!(
            "Comparing {first} (1 before the newest backup of s) with results/s\n"
        )),
        "{out}"
    );
    assert!(out.contains("0 added, 0 removed, 0 changed"), "{out}");
    let out = stdout(&env.run_code(&["diff", "s~1", "s"], 1));
    assert!(
        out.starts_with(&format!(
            "Comparing {first} (1 before the newest backup of s) with {second} (newest backup of s)\n"
        )),
        "{out}"
    );
    assert!(out.contains("~ metrics.json"), "{out}");
    assert!(out.contains("0 added, 0 removed, 1 changed"), "{out}");
    let err = env.fail(&["diff", "s~2"], 2);
    assert!(
        err.contains("s~2 is out of range") && err.contains("has 2 regular backups"),
        "{err}"
    );
    let err = env.fail(&["diff", &first, "s~5"], 2);
    assert!(err.contains("s~5 is out of range"), "{err}");
}

#[test]
fn unknown_names_get_suggestions_and_archive_names_print_no_pick() {
    let env = Env::new();
    env.sample("eth_rsi");
    let archive = env.backup("eth_rsi");
    let err = env.fail(&["diff", "eth_rs"], 2);
    assert!(
        err.contains("no backup or strategy named \"eth_rs\"")
            && err.contains("did you mean \"eth_rsi\"?"),
        "{err}"
    );
    let err = env.fail(&["diff", &archive, "eth_rsj~1"], 2);
    assert!(err.contains("did you mean \"eth_rsi~1\"?"), "{err}");
    let out = env.run(&["diff", &archive]);
    assert!(!out.contains("Comparing"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// A restored tree is the tree that was backed up, links' own times included: it diffs
/// identical and the next backup skips it as unchanged.
#[test]
fn a_restored_tree_is_unchanged_for_diff_and_backup() {
    let env = Env::new();
    let root = env.sample("s");
    crate::util::set_mtimes(&root, 1_600_000_000);
    let archive = env.backup("s");
    fs::remove_dir_all(&root).unwrap();
    env.run(&["restore", &archive]);
    let link = fs::symlink_metadata(root.join("runs/latest_metrics.json")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mtime(&link), 1_600_000_000);
    let out = env.run(&["diff", &archive]);
    assert!(out.contains("0 added, 0 removed, 0 changed"), "{out}");
    let out = env.run(&["backup", "s"]);
    assert!(out.starts_with("No changes in s"), "{out}");
}

/// A bad `--include` pattern is named as what it is, not as an exclude pattern.
#[test]
fn a_bad_include_pattern_is_not_called_an_exclude() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let out = env.run_code(&["restore", &archive, "--to", "out", "--include", "["], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid glob pattern \"[\""), "{err}");
    assert!(!err.contains("exclude"), "{err}");
}

#[test]
fn a_missing_results_folder_is_named_with_a_way_on() {
    let env = Env::new();
    let root = env.sample("s1");
    env.backup("s1");
    fs::rename(&root, env.path().join("elsewhere")).unwrap();
    let err = env.fail(&["diff", "s1"], 2);
    assert!(
        err.contains("resbak: results folder results/s1 does not exist"),
        "{err}"
    );
    assert!(err.contains("`resbak diff s1 OTHER`"), "{err}");
    assert!(!err.contains("entity not found"), "{err}");
    let json = stdout(&env.run_code(&["diff", "s1", "--json"], 2));
    assert!(json.contains("\"missing_folder\""), "{json}");
}

/// A size edited by hand in an entry whose SHA-256 still matches: diff named two equal
/// SHA-256 as the difference ("SHA-256 is X, manifest says X"); it says what is wrong.
#[test]
fn a_hand_edited_size_is_named_not_an_equal_sha256() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let size = std::fs::metadata(env.backups().join(&archive))
        .unwrap()
        .len();
    env.edit_manifest(|text| {
        text.replace(&format!("size: {size}\n"), &format!("size: {}\n", size + 1))
    });
    for args in [vec!["diff", archive.as_str()], vec!["diff", "s"]] {
        let err = env.fail(&args, 2);
        assert!(
            err.contains(&format!("size is {size} bytes, manifest says {}", size + 1))
                && err.contains(&format!("correct its size to {size}")),
            "{args:?}: {err}"
        );
    }
}
