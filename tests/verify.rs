use crate::util::{Env, flip_byte};
use std::fs;

#[test]
fn intact_backups_verify_with_exit_zero() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    env.backup("a");
    env.backup("b");
    let out = env.run(&["verify"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("2 intact, 0 with problems"), "{out}");
    let out = env.run(&["verify", "--deep", "a"]);
    assert!(out.contains("Verified 1 backup (deep)"), "{out}");
}

#[test]
fn one_flipped_byte_is_found_and_named() {
    let env = Env::new();
    env.sample("s");
    let good = env.backup("s");
    let bad = env.backup("s");
    let path = env.backups().join(&bad);
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len / 2);
    for deep in [false, true] {
        let args: &[&str] = if deep {
            &["verify", "--deep"]
        } else {
            &["verify"]
        };
        let out = crate::util::stdout(&env.run_code(args, 1));
        let line = out.lines().find(|l| l.contains(&bad)).unwrap();
        assert!(line.starts_with("FAILED"), "{out}");
        let line = out.lines().find(|l| l.contains(&good)).unwrap();
        assert!(line.starts_with("OK"), "{out}");
    }
}

#[test]
fn missing_and_truncated_archives_fail() {
    let env = Env::new();
    env.sample("s");
    let gone = env.backup("s");
    let short = env.backup("s");
    fs::remove_file(env.backups().join(&gone)).unwrap();
    let path = env.backups().join(&short);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let out = crate::util::stdout(&env.run_code(&["verify"], 1));
    assert!(
        out.contains(&format!("FAILED  {gone}: archive file is missing")),
        "{out}"
    );
    assert!(out.contains(&format!("FAILED  {short}: size is")), "{out}");
}

#[test]
fn deep_verify_checks_entry_count_and_bytes() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("entries: 13", "entries: 14");
    fs::write(&path, text).unwrap();
    env.run(&["verify"]);
    let out = crate::util::stdout(&env.run_code(&["verify", "--deep"], 1));
    assert!(out.contains("holds 13 entries"), "{out}");
}

/// Counts edited by hand in an entry whose SHA-256 still matches: the archive is intact and the
/// entry is wrong. verify called it FAILED with the way to remove it, and restore called it
/// corrupt and refused; now verify names the fix and restore brings the results back, warning.
#[test]
fn edited_counts_of_an_intact_archive_are_a_wrong_entry_not_a_corrupt_archive() {
    let env = Env::new();
    let sample = crate::util::snapshot(&env.sample("s"));
    let archive = env.backup("s");
    env.edit_manifest(|text| text.replace("entries: 13", "entries: 14"));
    let out = env.run_code(&["verify", "--deep", "--json"], 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["problem_kind"], "record", "{report}");
    let problem = result["problem"].as_str().unwrap();
    assert!(
        problem.contains("the archive is intact and its manifest entry is wrong")
            && problem.contains("correct its entries to 13"),
        "{problem}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("move"), "never the way to remove it: {err}");
    let out = env.run_code(&["restore", &archive, "--to", "back"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the manifest entry of {archive} is wrong, not the archive"
        )) && err.contains("correct its entries to 13"),
        "{err}"
    );
    assert_eq!(crate::util::snapshot(&env.path().join("back")), sample);
}

/// A size edited by hand in an entry whose SHA-256 still matches: restore called the archive
/// corrupt and suggested an older backup; it restores, naming the entry's error. An archive
/// really cut short is still refused.
#[test]
fn an_edited_size_of_an_intact_archive_still_restores() {
    let env = Env::new();
    let sample = crate::util::snapshot(&env.sample("s"));
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    let size = fs::metadata(&path).unwrap().len();
    let edit = |from: u64, to: u64| {
        env.edit_manifest(|text| text.replace(&format!("size: {from}\n"), &format!("size: {to}\n")))
    };
    edit(size, size + 1);
    let out = env.run_code(&["restore", "s", "--to", "back"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the manifest entry of {archive} is wrong, not the archive"
        )) && err.contains(&format!("correct its size to {size}")),
        "{err}"
    );
    assert_eq!(crate::util::snapshot(&env.path().join("back")), sample);
    edit(size + 1, size);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = env.fail(&["restore", "s", "--to", "again"], 1);
    assert!(err.contains("is corrupt"), "{err}");
    assert!(!env.path().join("again").exists());
}

#[test]
fn selection_by_archive_or_strategy_and_unknown_names() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    let a = env.backup("a");
    env.backup("b");
    let out = env.run(&["verify", a.strip_suffix(".tar.gz").unwrap()]);
    assert!(out.contains("Verified 1 backup "), "{out}");
    let out = env.run(&["verify", "b", &a]);
    assert!(out.contains("Verified 2 backups"), "{out}");
    let err = env.fail(&["verify", "zzz"], 2);
    assert!(err.contains("\"zzz\""), "{err}");
}

#[test]
fn an_archive_no_manifest_knows_is_read_in_full() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    fs::create_dir(env.path().join("elsewhere")).unwrap();
    let copy = env.path().join("elsewhere").join(&archive);
    fs::copy(env.backups().join(&archive), &copy).unwrap();
    let arg = format!("elsewhere/{archive}");
    let out = env.run(&["verify", &arg]);
    assert!(out.contains("no recorded checksum"), "{out}");
    assert!(out.contains("1 intact"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&env.run(&["verify", "--json", &arg])).unwrap();
    assert_eq!(report["results"][0]["catalogued"], false);
    assert_eq!(report["results"][0]["strategy"], "s");
    let len = fs::metadata(&copy).unwrap().len();
    flip_byte(&copy, len / 2);
    let out = crate::util::stdout(&env.run_code(&["verify", &arg], 1));
    assert!(out.contains("FAILED"), "{out}");
}

#[test]
fn json_problems_carry_their_kind() {
    let env = Env::new();
    env.sample("s");
    let gone = env.backup("s");
    let short = env.backup("s");
    let flipped = env.backup("s");
    fs::remove_file(env.backups().join(&gone)).unwrap();
    let path = env.backups().join(&short);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let path = env.backups().join(&flipped);
    flip_byte(&path, fs::metadata(&path).unwrap().len() - 3);
    let out = crate::util::stdout(&env.run_code(&["verify", "--json"], 1));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kind = |name: &str| {
        let results = report["results"].as_array().unwrap();
        results.iter().find(|r| r["archive"] == name).unwrap()["problem_kind"].clone()
    };
    assert_eq!(kind(&gone), "missing");
    assert_eq!(kind(&short), "size");
    assert_eq!(kind(&flipped), "checksum");
}

#[test]
fn missing_folder_and_unknown_names_are_errors() {
    let env = Env::new();
    let err = env.fail(&["verify"], 2);
    assert!(
        err.contains("backup folder backups does not exist"),
        "{err}"
    );
    env.sample("btc_sma_cross");
    env.backup("btc_sma_cross");
    let err = env.fail(&["verify", "btc_sma_cros"], 2);
    assert!(err.contains("did you mean \"btc_sma_cross\"?"), "{err}");
}

/// A manifest cut short still parses: `verify` says which archives it does not list, so not
/// verified, instead of reporting the rest intact as if that were all.
#[test]
fn verify_names_archives_a_manifest_cut_short_no_longer_lists() {
    let env = Env::new();
    let root = env.sample("s");
    for i in 0..3 {
        fs::write(root.join("stats.json"), format!("{{\"run\": {i}}}")).unwrap();
        env.backup("s");
    }
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let second = text.match_indices("- strategy").nth(1).unwrap().0;
    fs::write(&manifest, &text[..second]).unwrap();
    // Not verified, so not a clean check.
    let out = env.run_code(&["verify"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 archives in backups are not catalogued"),
        "{err}"
    );
    assert!(err.contains("resbak reindex"), "{err}");
    // The next backup says so too, and keeps manifest.yaml.bak, which lists one of them, as it
    // is: the manifest cut short never replaces it.
    let bak = env.backups().join("manifest.yaml.bak");
    let last_good = fs::read_to_string(&bak).unwrap();
    let out = env.run_code(&["backup", "s", "--always"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 archives in backups are not catalogued"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&bak).unwrap(), last_good);
    assert!(err.contains("manifest.yaml.bak is kept"), "{err}");
    // reindex catalogues them without making the cut manifest the last copy; after that,
    // changes rotate the manifest into it again.
    env.run(&["reindex"]);
    assert_eq!(fs::read_to_string(&bak).unwrap(), last_good);
    env.run(&["tag", "s", "kept"]);
    assert_ne!(fs::read_to_string(&bak).unwrap(), last_good);
}

#[test]
fn an_empty_catalogue_is_nothing_verified_and_exits_1() {
    let env = Env::new();
    fs::create_dir(env.backups()).unwrap();
    let out = env.run_code(&["verify"], 1);
    let text = crate::util::stdout(&out);
    assert_eq!(
        text.trim(),
        "Nothing to verify: the catalogue in backups is empty"
    );
    let out = env.run_code(&["verify", "--json", "--deep"], 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 0);
    assert_eq!(report["problems"], 0);
    // An archive no manifest lists: still nothing catalogued, and the way out is named.
    env.sample("s");
    let archive = env.backup("s");
    fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains("1 archive in backups is not catalogued"),
        "{err}"
    );
    // Named targets are checked as before.
    let out = env.run(&["verify", &format!("backups/{archive}")]);
    assert!(out.contains("Verified 1 backup "), "{out}");
}

/// With the newest backup's record wrong (its size edited by hand) and an older backup damaged,
/// the older one's hint does not call the newest intact: restore refuses it until it is mended.
#[test]
fn the_hint_never_calls_a_newest_backup_that_failed_intact() {
    let env = Env::new();
    env.sample("s");
    let old = env.backup("s");
    let new = env.backup("s");
    let path = env.backups().join(&old);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let size = fs::metadata(env.backups().join(&new)).unwrap().len();
    env.edit_manifest(|text| {
        let (head, tail) = text.split_at(text.find(&format!("backup_file: {new}")).unwrap());
        let tail = tail.replacen(&format!("size: {size}"), &format!("size: {}", size + 1), 1);
        format!("{head}{tail}")
    });
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains(&format!(
            "the newest, {new}, holds intact bytes but failed its check too"
        )),
        "{err}"
    );
    assert!(!err.contains(&format!("{new}, is intact")), "{err}");
}

/// A damaged older backup points at removing it alone (moved aside, then `reindex`), never at
/// `prune`, which would take intact older backups with it, nor at a fresh backup.
#[test]
fn a_damaged_older_backup_points_at_moving_it_aside_not_at_prune_or_a_fresh_backup() {
    let env = Env::new();
    env.sample("s");
    let oldest = env.backup("s");
    let old = env.backup("s");
    let new = env.backup("s");
    let path = env.backups().join(&old);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains(&format!(
            "hint: {old} is not the newest backup of s: the newest, {new}, is intact"
        )) && err.contains(&format!(
            "move {old} (and {old}.idx) out of the backup folder"
        )),
        "{err}"
    );
    assert!(!err.contains("prune"), "{err}");
    assert!(!err.contains("backup --always"), "{err}");
    let err = env.fail(&["verify", &old], 1);
    assert!(err.contains("was not checked here"), "{err}");
    // Gone, it is dropped by reindex alone.
    let bytes = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains(&format!(
            "unless {old} can be put back, `resbak reindex` drops its entry"
        )),
        "{err}"
    );
    assert!(!err.contains("prune"), "{err}");
    fs::write(&path, bytes).unwrap();
    // Following the hint removes that backup alone.
    let aside = env.path().join("aside");
    fs::create_dir(&aside).unwrap();
    for file in [old.clone(), format!("{old}.idx")] {
        fs::rename(env.backups().join(&file), aside.join(&file)).unwrap();
    }
    env.run(&["reindex"]);
    env.run(&["verify"]);
    assert_eq!(env.archives(), [oldest, new.clone()]);
    // The newest damaged too: a fresh backup is the way on.
    let path = env.backups().join(&new);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains("`resbak backup --always s` makes a fresh backup"),
        "{err}"
    );
}

/// An intact archive whose index alone is damaged has one way out, `reindex`: no hint of a
/// fresh backup.
#[test]
fn a_damaged_index_points_at_reindex_only() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    flip_byte(&env.backups().join(format!("{archive}.idx")), 20);
    let out = env.run_code(&["verify"], 1);
    let (stdout, err) = (
        crate::util::stdout(&out),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("resbak reindex builds it again"),
        "{stdout}"
    );
    assert!(!err.contains("hint:"), "{err}");
}

/// An intact archive whose index alone `verify` found damaged is listed as such, not as a
/// failed archive, `ls` does not call it damaged, and once `reindex` mends the index `list`
/// shows it verified again (the archive itself was found intact).
#[test]
fn an_index_found_damaged_is_no_failed_archive_and_is_mended_by_reindex() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    flip_byte(&env.backups().join(format!("{archive}.idx")), 20);
    env.run_code(&["verify"], 1);
    let status = |env: &Env, code: i32| {
        let out = env.run_code(&["list", "--json"], code);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows[0]["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status(&env, 1), "index-damaged");
    let out = env.run_code(&["list"], 1);
    let stdout = crate::util::stdout(&out);
    assert!(
        stdout.contains("1 intact with a damaged index") && !stdout.contains("failed"),
        "{stdout}"
    );
    let err = env.fail(&["ls", &archive], 1);
    assert!(!err.contains("is damaged ("), "{err}");
    env.run(&["reindex"]);
    assert_eq!(status(&env, 0), "verified");
}

/// Damage that `restore` (or `diff`, or a backup checking the latest archive) finds is recorded
/// as the archive's last check, as `verify` would: `list` no longer calls it verified, and `cat`
/// from it warns and exits 1.
#[test]
fn damage_found_by_restore_is_recorded_for_list_and_cat() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(root.join("big.bin"), crate::util::noise(3, 3 << 20)).unwrap();
    let archive = env.backup("s");
    env.run(&["verify"]);
    let path = env.backups().join(&archive);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    env.fail(&["restore", &archive, "--to", "elsewhere/s"], 1);
    let out = env.run_code(&["list", "--json"], 1);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "failed", "{rows}");
    assert!(
        rows[0]["problem"].as_str().unwrap().contains("SHA-256"),
        "{rows}"
    );
    let err = env.fail(&["cat", &archive, "stats.json"], 1);
    assert!(err.contains("is damaged"), "{err}");
}

/// A size edited by hand in the manifest fails `verify` blaming the entry, not the archive
/// (whose SHA-256 is still the recorded one), with no hint to move the intact archive out.
#[test]
fn a_wrong_size_in_the_manifest_is_blamed_on_the_entry() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let size = env.manifest()["backups"][0]["size"].as_u64().unwrap();
    env.edit_manifest(|text| text.replace(&format!("size: {size}"), "size: 26000"));
    let out = env.run_code(&["verify", "--json"], 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"][0]["problem_kind"], "record", "{report}");
    let problem = report["results"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains(&format!(
            "manifest entry is wrong; correct its size to {size}"
        )),
        "{problem}"
    );
    let err = env.fail(&["verify"], 1);
    assert!(!err.contains("move"), "{err}");
}

/// A problem `verify --deep` found with a hand-edited entry (a mistyped strategy) is not
/// shown against the entry `reindex` makes anew once the manifest is removed: `list` no
/// longer calls the intact archive failed.
#[test]
fn reindex_forgets_what_was_found_wrong_with_the_old_entry() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("strategy: s\n", "strategy: sx\n")).unwrap();
    let out = env.run_code(&["verify", "--deep"], 1);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("its manifest entry says sx"), "{said}");
    fs::remove_file(&manifest).unwrap();
    env.run(&["reindex"]);
    let out = env.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["archive"], archive.as_str(), "{rows}");
    assert_eq!(rows[0]["status"], "present", "{rows}");
}

/// Dry runs write nothing, not even the damage they find: `backup --dry-run` over a damaged
/// latest backup and `restore --dry-run` of it (whole, over an existing folder, or into a new
/// one) leave `verified.yaml` and the manifest as they were, and say what they found.
#[test]
fn dry_runs_that_find_damage_record_nothing() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["verify"]);
    let path = env.backups().join(&archive);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let state = || {
        let read = |name: &str| fs::read(env.backups().join(name)).unwrap();
        (read("verified.yaml"), read("manifest.yaml"))
    };
    let before = state();
    let out = env.run_code(&["backup", "s", "--dry-run"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is damaged"), "{err}");
    for args in [&["--force"][..], &["--to", "elsewhere/s"]] {
        let err = env.fail(&[&["restore", &archive, "--dry-run"][..], args].concat(), 1);
        assert!(err.contains("is corrupt"), "{err}");
    }
    assert!(state() == before, "a dry run changed the catalogue's files");
    let out = env.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["status"], "present", "{rows}");
}

/// With the newest backup damaged after a forced restore of an older one replaced the results
/// folder, the hint does not send the user to back up the folder as it is now (the older data)
/// as if it were what the damaged backup held: it names the safety copy that holds that.
#[test]
fn the_hint_for_a_damaged_newest_backup_names_the_safety_copy_of_a_forced_restore() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    fs::write(root.join("stats.json"), "{\"run\": 2}").unwrap();
    let newest = env.backup("s");
    let path = env.backups().join(&newest);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    env.run(&["restore", &first, "--force"]);
    let safety = env
        .archives()
        .into_iter()
        .find(|a| a.contains(".safety."))
        .expect("a safety copy");
    let err = env.fail(&["verify", &newest], 1);
    assert!(
        err.contains(&format!(
            "what it held before that is in the safety copy {safety}"
        )),
        "{err}"
    );
    assert!(!err.contains("is still there"), "{err}");
}

/// With the newest backup damaged and the results folder gone, `verify` names the older backup
/// to restore, as `STRATEGY~N`.
#[test]
fn a_damaged_newest_backup_without_results_points_at_the_older_one() {
    let env = Env::new();
    let root = env.sample("s");
    let older = env.backup("s");
    fs::write(root.join("stats.json"), "{\"run\": 2}").unwrap();
    let newest = env.backup("s");
    let path = env.backups().join(&newest);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    fs::remove_dir_all(&root).unwrap();
    let err = env.fail(&["verify"], 1);
    assert!(
        err.contains(&format!("`resbak restore s~1` restores {older}")),
        "{err}"
    );
    env.run(&["restore", "s~1"]);
}

/// A forced restore whose archive has a damaged index alone goes on (it reads the archive
/// whole), and records the index, not the archive, as damaged: `list` says `index-damaged`.
#[test]
fn a_forced_restore_over_a_damaged_index_restores_and_records_only_the_index() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    flip_byte(&env.backups().join(format!("{archive}.idx")), 20);
    fs::write(root.join("stats.json"), "{\"run\": 2}").unwrap();
    env.run(&["restore", &archive, "--force"]);
    let out = env.run_code(&["list", "--json"], 1);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"] == archive.as_str());
    assert_eq!(row.unwrap()["status"], "index-damaged", "{rows}");
}
