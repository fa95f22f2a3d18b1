//! Archives the manifest does not list (it was cut short or edited by hand and still parses):
//! how `reindex` orders them among the entries it keeps, and what `restore` by strategy name
//! says of them.

use crate::util::{Env, stdout};
use std::fs;

/// Backs up `b` once per content in `stats`, each with `stats.json` holding it; the archives.
fn backups_of_b(env: &Env, stats: &[&str]) -> Vec<String> {
    if !env.results().join("b").exists() {
        env.sample("b");
    }
    let stats_file = env.results().join("b/stats.json");
    stats
        .iter()
        .map(|content| {
            fs::write(&stats_file, content).unwrap();
            env.backup("b")
        })
        .collect()
}

/// Cuts the manifest short after its first `keep` entries.
fn cut_manifest(env: &Env, keep: usize) {
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let end = text.match_indices("- strategy").nth(keep).unwrap().0;
    fs::write(&manifest, &text[..end]).unwrap();
}

/// Renames the archive `from` (and its index) to `to` in the backup folder.
fn rename_archive(env: &Env, from: &str, to: &str) {
    for ext in ["", ".idx"] {
        let from = env.backups().join(format!("{from}{ext}"));
        if from != env.backups().join(format!("{to}{ext}")) && from.exists() {
            fs::rename(&from, env.backups().join(format!("{to}{ext}"))).unwrap();
        }
    }
}

/// What `restore ARG` puts in `stats.json`.
fn restored_stats(env: &Env, arg: &str, to: &str) -> String {
    env.run(&["restore", arg, "--to", to]);
    fs::read_to_string(env.path().join(to).join("stats.json")).unwrap()
}

/// Archives named in the same second (`_2`, `_3` after the plain name) that reindex catalogues
/// beside a kept entry of that second sort after it, in the order of their suffix, though the
/// kept entry's time has fractions of a second and the name's has none: the newest stays
/// `b`, and prune never takes a newer backup for an older one.
#[test]
fn reindex_keeps_same_second_archives_in_suffix_order_after_a_kept_entry() {
    let env = Env::new();
    let made = backups_of_b(&env, &["1", "2", "3"]);
    // As if all three were made in the same second (whichever second they were made in).
    let stem = made[0].strip_suffix(".tar.gz").unwrap();
    let (second, third) = (format!("{stem}_2.tar.gz"), format!("{stem}_3.tar.gz"));
    rename_archive(&env, &made[1], &second);
    rename_archive(&env, &made[2], &third);
    cut_manifest(&env, 1);
    let out = env.run(&["reindex"]);
    assert!(out.contains("1 kept, 2 added"), "{out}");
    let manifest = env.manifest();
    let created = |file: &str| -> chrono::DateTime<chrono::Utc> {
        let entries = manifest["backups"].as_sequence().unwrap();
        let entry = entries.iter().find(|e| e["backup_file"] == file).unwrap();
        entry["created"].as_str().unwrap().parse().unwrap()
    };
    let times = [created(&made[0]), created(&second), created(&third)];
    assert!(times[0] < times[1] && times[1] < times[2], "{times:?}");
    assert_eq!(restored_stats(&env, "b", "newest"), "3");
    assert_eq!(restored_stats(&env, "b~1", "one"), "2");
    assert_eq!(restored_stats(&env, "b~2", "two"), "1");
    let dry = env.run(&["prune", "b", "--keep", "1", "--dry-run", "--json"]);
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(
        dry["removed"],
        serde_json::json!([made[0], second]),
        "{dry}"
    );
}

/// `restore b` (or `b~N`) warns when archives of `b` the manifest does not list are in the
/// backup folder, one of which may be newer than the backup it picks, and restores it all the
/// same; archives of other strategies are not counted, and an archive named by its file is
/// restored without the warning.
#[test]
fn restore_by_strategy_warns_of_uncatalogued_archives_of_that_strategy() {
    let env = Env::new();
    let made = backups_of_b(&env, &["1"]);
    env.sample("c");
    env.backup("c");
    let newer = backups_of_b(&env, &["2"]);
    cut_manifest(&env, 1);
    let warning = "1 archive of b in backups is not catalogued";
    for arg in ["b", "b~0"] {
        let out = env.run_code(&["restore", arg, "--to", &format!("to_{arg}")], 0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(warning) && err.contains("resbak reindex"),
            "{err}"
        );
        assert!(stdout(&out).contains(&made[0]), "{}", stdout(&out));
        let restored = env.path().join(format!("to_{arg}/stats.json"));
        assert_eq!(fs::read_to_string(restored).unwrap(), "1");
    }
    let out = env.run_code(&["restore", "b", "--to", "dry", "--dry-run"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains(warning));
    let out = env.run_code(&["restore", &made[0], "--to", "named"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not catalogued"), "{err}");
    env.run(&["reindex"]);
    let out = env.run_code(&["restore", "b", "--to", "after"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not catalogued"), "{err}");
    assert!(stdout(&out).contains(&newer[0]), "{}", stdout(&out));
}

/// `diff`, `ls` and `cat` of a backup picked by strategy warn of uncatalogued archives of that
/// strategy as `restore` does (each may be newer than the pick); named by file, they do not.
#[test]
fn diff_ls_and_cat_by_strategy_warn_of_uncatalogued_archives_too() {
    let env = Env::new();
    let made = backups_of_b(&env, &["1"]);
    backups_of_b(&env, &["2"]);
    cut_manifest(&env, 1);
    let warning = "1 archive of b in backups is not catalogued";
    for (args, code) in [
        (vec!["diff", "b"], 1),
        (vec!["ls", "b"], 0),
        (vec!["cat", "b", "stats.json"], 0),
    ] {
        let out = env.run_code(&args, code);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(warning), "{args:?}: {err}");
    }
    let out = env.run_code(&["ls", &made[0]], 0);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not catalogued"));
}
