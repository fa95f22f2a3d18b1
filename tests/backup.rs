use crate::datagen::{Spec, generate};
use crate::util::{Env, have, sha256_file, snapshot, stdout, write};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn backup_writes_named_archive_and_manifest_entry() {
    let env = Env::new();
    env.sample("btc_sma_cross");
    let out = env.run(&["backup", "btc_sma_cross"]);
    let archive = env.archives().pop().unwrap();
    assert!(out.contains(&archive), "report names the archive: {out}");
    assert!(out.contains("files"), "report gives the file count: {out}");
    let stem = archive
        .strip_prefix("btc_sma_cross_")
        .unwrap()
        .strip_suffix(".tar.gz")
        .unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(stem, "%Y%m%d_%H%M%S").is_ok(),
        "{archive}"
    );

    let m = env.manifest();
    assert_eq!(m["version"].as_u64(), Some(1));
    let e = &m["backups"][0];
    let path = env.backups().join(&archive);
    assert_eq!(e["strategy"].as_str(), Some("btc_sma_cross"));
    assert_eq!(e["timestamp"].as_str(), Some(stem));
    assert_eq!(e["size"].as_u64(), Some(fs::metadata(&path).unwrap().len()));
    assert_eq!(e["sha256"].as_str().unwrap(), sha256_file(&path));
    // 6 folders (top, runs, runs/fast10_slow50, scripts, plots, plots/empty), 6 files, 1 link
    assert_eq!(e["entries"].as_u64(), Some(13));
    assert!(e["bytes"].as_u64().unwrap() > 3000);
    let created = e["created"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'),
        "{created}"
    );
    assert!(created.contains('.'), "sub-second precision: {created}");
    // A new backup folder is said (a mistyped --backup-dir is a new catalogue), once.
    assert!(
        out.contains("Created backup folder backups for a new catalogue"),
        "{out}"
    );
    let again = env.run(&["backup", "btc_sma_cross", "--always"]);
    assert!(!again.contains("Created backup folder"), "{again}");
}

#[test]
fn archive_is_plain_tar_gz_with_sorted_entries_under_one_top_folder() {
    let env = Env::new();
    env.sample("s1");
    let archive = env.backups().join(env.backup("s1"));
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let names: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    assert!(
        names.iter().all(|n| n == "s1" || n.starts_with("s1/")),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(
        names.contains(&"s1/plots/empty".to_string()),
        "empty folder stored: {names:?}"
    );
    if have("sha256sum") {
        let out = Command::new("sha256sum").arg(&archive).output().unwrap();
        let sum = String::from_utf8(out.stdout).unwrap();
        let recorded = env.manifest()["backups"][0]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            sum.starts_with(&recorded),
            "sha256sum {sum} vs manifest {recorded}"
        );
    }
}

#[test]
fn symlinks_are_stored_not_followed_and_setuid_is_dropped() {
    let env = Env::new();
    let root = env.sample("s");
    fs::set_permissions(
        root.join("scripts/rerun.sh"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let archive = env.backups().join(env.backup("s"));
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let link = listing
        .lines()
        .find(|l| l.contains("latest_metrics.json"))
        .unwrap();
    assert!(
        link.starts_with('l') && link.contains("-> ../metrics.json"),
        "{link}"
    );
    let script = listing.lines().find(|l| l.contains("rerun.sh")).unwrap();
    assert!(script.starts_with("-rwxr-xr-x"), "setuid dropped: {script}");
}

#[test]
fn same_tree_gives_same_archive_bytes() {
    let env = Env::new();
    env.sample("s");
    let a = env.backup("s");
    let b = env.backup("s");
    assert_ne!(a, b);
    assert_eq!(
        sha256_file(&env.backups().join(a)),
        sha256_file(&env.backups().join(b))
    );
}

#[test]
fn two_backups_in_one_second_get_distinct_names() {
    let env = Env::new();
    env.sample("s");
    env.run(&["backup", "--always", "s", "s", "s"]);
    let names = env.archives();
    assert_eq!(names.len(), 3);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{names:?}");
}

#[test]
fn concurrent_backups_all_land_in_the_manifest() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    let procs: Vec<_> = ["a", "b", "a", "b", "a", "b"]
        .iter()
        .map(|s| {
            env.cmd(&["backup", "--always", s])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a concurrent backup failed: {err}");
    }
    let names = env.archives();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in &names {
        assert!(env.backups().join(name).is_file(), "{name} exists");
    }
    env.run(&["verify"]);
}

#[test]
fn environment_variables_choose_the_folders() {
    let env = Env::new();
    let src = env.path().join("elsewhere/res");
    write(&src.join("s/a.csv"), "x\n");
    let out = env
        .cmd(&["backup", "s"])
        .env("RESBAK_RESULTS_DIR", &src)
        .env("RESBAK_BACKUP_DIR", env.path().join("elsewhere/bk"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.path().join("elsewhere/bk/manifest.yaml").is_file());
    assert!(!env.backups().exists());
}

#[test]
fn unknown_strategy_lists_the_existing_ones() {
    let env = Env::new();
    env.sample("btc_sma_cross");
    env.sample("eth_mean_revert");
    let err = env.fail(&["backup", "nope"], 2);
    assert!(
        err.contains("\"nope\"") && err.contains("btc_sma_cross, eth_mean_revert"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(!env.backups().join("manifest.yaml").exists());
}

#[test]
fn names_that_are_not_a_plain_folder_are_refused() {
    let env = Env::new();
    env.sample("s");
    for bad in ["..", "../s", "/etc", "s/runs", "", "."] {
        let err = env.fail(&["backup", bad], 2);
        assert!(err.contains("invalid strategy name"), "{bad:?}: {err}");
    }
}

#[test]
fn empty_results_folder_is_an_error_and_leaves_nothing() {
    let env = Env::new();
    fs::create_dir(env.results().join("empty")).unwrap();
    let err = env.fail(&["backup", "empty"], 2);
    assert!(err.contains("empty"), "{err}");
    assert_no_archives(&env);
}

#[test]
fn unreadable_file_fails_the_backup_and_leaves_nothing() {
    let env = Env::new();
    let root = env.sample("s");
    let secret = root.join("runs/secret.csv");
    write(&secret, "x\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&secret).is_ok() {
        eprintln!(
            "SKIPPED unreadable_file_fails_the_backup: running with privileges that read mode-000 files"
        );
        return;
    }
    let err = env.fail(&["backup", "s"], 2);
    assert!(err.contains("secret.csv"), "{err}");
    assert_no_archives(&env);
}

#[test]
fn unwritable_backup_dir_fails_cleanly() {
    let env = Env::new();
    env.sample("s");
    fs::write(env.path().join("not_a_dir"), "file").unwrap();
    let err = env.fail(&["backup", "s", "--backup-dir", "not_a_dir"], 2);
    assert!(err.contains("not_a_dir"), "{err}");
    assert_eq!(
        fs::read_to_string(env.path().join("not_a_dir")).unwrap(),
        "file"
    );
}

#[test]
fn a_failed_backup_among_several_writes_nothing_when_names_are_bad() {
    let env = Env::new();
    env.sample("s");
    env.fail(&["backup", "s", "missing"], 2);
    assert_no_archives(&env);
}

#[test]
fn damaged_manifest_stops_backup_and_is_not_overwritten() {
    let env = Env::new();
    env.sample("s");
    fs::create_dir(env.backups()).unwrap();
    let damaged = "version: 1\nbackups:\n- strategy: s\n  size: [unclosed\n";
    fs::write(env.backups().join("manifest.yaml"), damaged).unwrap();
    let err = env.fail(&["backup", "s"], 2);
    assert!(
        err.contains("manifest.yaml") && err.contains("line"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(env.backups().join("manifest.yaml")).unwrap(),
        damaged
    );
    let stray: Vec<_> = fs::read_dir(env.backups())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert!(stray.is_empty(), "no archive left behind: {stray:?}");
}

#[test]
fn round_trip_of_a_generated_results_folder() {
    let env = Env::new();
    let spec = Spec {
        size: 8 << 20,
        seed: 3,
        files: None,
    };
    let made = generate(&env.results(), "gen", &spec).unwrap();
    assert_eq!(made.bytes, 8 << 20);
    let before = snapshot(&made.root);
    let archive = env.backup("gen");
    env.run(&["verify", "--deep"]);
    fs::remove_dir_all(&made.root).unwrap();
    env.run(&["restore", &archive]);
    assert_eq!(snapshot(&made.root), before);
}

#[test]
fn the_generator_is_deterministic_and_sized() {
    let env = Env::new();
    let spec = |seed, files| Spec {
        size: 1 << 20,
        seed,
        files,
    };
    let out = |n: &str| env.path().join(n);
    let a = generate(&out("a"), "s", &spec(7, None)).unwrap();
    let b = generate(&out("b"), "s", &spec(7, None)).unwrap();
    let c = generate(&out("c"), "s", &spec(8, None)).unwrap();
    assert_eq!(snapshot(&a.root), snapshot(&b.root));
    assert_ne!(snapshot(&a.root), snapshot(&c.root));
    let metas: Vec<_> = walkdir::WalkDir::new(&a.root)
        .into_iter()
        .map(|e| e.unwrap().path().symlink_metadata().unwrap())
        .collect();
    let files = metas.iter().filter(|m| m.is_file());
    let stored: u64 = files.clone().map(|m| m.len()).sum();
    assert_eq!((a.bytes, stored), (1 << 20, 1 << 20));
    assert_eq!(a.files, files.count() as u64);
    assert_eq!(a.dirs, metas.iter().filter(|m| m.is_dir()).count() as u64);
    for shape in [
        "stats.json",
        "trades.csv",
        "equity_curve.csv",
        "plots/heatmap.png",
        "runs",
        "cache",
    ] {
        assert!(a.root.join(shape).exists(), "{shape}");
    }
    let stats = fs::read_to_string(a.root.join("stats.json")).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["Sharpe Ratio"].is_f64() && stats["# Trades"].is_u64(),
        "{stats}"
    );
    assert!(a.root.join("best_stats.json").is_symlink());
    assert!(
        fs::read(a.root.join("plots/heatmap.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    // Many small files: about as many as asked, none large.
    let small = generate(&out("d"), "s", &spec(2, Some(500))).unwrap();
    assert!((480..=520).contains(&small.files), "{}", small.files);
    assert_eq!(small.bytes, 1 << 20);
    assert!(!small.root.join("plots").exists());
}

fn assert_no_archives(env: &Env) {
    let listing: Vec<String> = fs::read_dir(env.backups())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        listing.iter().all(|n| n.ends_with(".lock")),
        "nothing but lock files may remain: {listing:?}"
    );
}

#[test]
fn a_link_pointing_outside_fails_the_backup_clearly() {
    let env = Env::new();
    let root = env.sample("s");
    std::os::unix::fs::symlink("/etc/hostname", root.join("outside")).unwrap();
    let err = env.fail(&["backup", "s"], 2);
    assert!(
        err.contains("s/outside") && err.contains("refused on restore"),
        "{err}"
    );
    assert!(err.contains("add --exclude 'outside'"), "{err}");
    assert_no_archives(&env);
}

#[test]
fn unchanged_results_are_skipped_unless_always() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    let out = env.run(&["backup", "s"]);
    assert!(
        out.contains("No changes in s") && out.contains(&first),
        "{out}"
    );
    assert_eq!(env.archives().len(), 1);
    env.run(&["backup", "s", "--always"]);
    assert_eq!(env.archives().len(), 2);
    // Same size and mtime, different bytes: the content digest still sees it.
    let meta = fs::metadata(root.join("trades.csv")).unwrap();
    let text = fs::read_to_string(root.join("trades.csv"))
        .unwrap()
        .replace("12.3", "99.9");
    fs::write(root.join("trades.csv"), text).unwrap();
    fs::File::options()
        .write(true)
        .open(root.join("trades.csv"))
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();
    let out = env.run(&["backup", "s"]);
    assert!(out.contains("Backed up s"), "{out}");
    assert_eq!(env.archives().len(), 3);
}

#[test]
fn all_backs_up_every_non_empty_strategy() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    fs::create_dir(env.results().join("empty")).unwrap();
    let out = env.run_code(&["backup", "--all"], 0);
    let stdout = crate::util::stdout(&out);
    assert!(
        stdout.contains("Backed up a") && stdout.contains("Backed up b"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert_eq!(env.archives().len(), 2);
    env.fail(&["backup", "--all", "a"], 2);
}

#[test]
fn excludes_from_flags_and_config_leave_paths_out() {
    let env = Env::new();
    let root = env.sample("s");
    write(&root.join("runs/fast10_slow50/scratch.tmp"), "x");
    write(&root.join("__pycache__/mod.pyc"), "x");
    write(&root.join("runs/fast10_slow50/__pycache__/m.pyc"), "x");
    write(&root.join("plots/big.png"), "x");
    fs::write(
        env.path().join("resbak.toml"),
        "exclude = [\"__pycache__\"]\n",
    )
    .unwrap();
    let archive = env.backups().join({
        env.run(&[
            "backup",
            "s",
            "--exclude",
            "*.tmp",
            "--exclude",
            "plots/*.png",
        ]);
        env.archives().pop().unwrap()
    });
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    for gone in ["scratch.tmp", "__pycache__", "big.png"] {
        assert!(!listing.contains(gone), "{gone} archived:\n{listing}");
    }
    assert!(
        listing.contains("s/plots/empty") && listing.contains("s/trades.csv"),
        "{listing}"
    );
    let err = env.fail(&["backup", "s", "--exclude", "a[b"], 2);
    assert!(err.contains("a[b"), "{err}");
}

#[test]
fn dry_run_lists_what_would_be_archived_and_writes_nothing() {
    let env = Env::new();
    env.sample("s");
    let out = env.run(&["backup", "s", "--dry-run", "--exclude", "scripts"]);
    assert!(out.contains("s/runs/fast10_slow50/params.json"), "{out}");
    assert!(!out.contains("rerun.sh"), "{out}");
    assert!(out.contains("Would back up s: 11 entries"), "{out}");
    assert!(!env.backups().exists());
}

#[test]
fn archive_bytes_do_not_depend_on_the_thread_count() {
    let env = Env::new();
    let root = env.sample("s");
    // Several compression blocks of mixed text and noise.
    fs::write(root.join("runs/noise.bin"), crate::util::noise(9, 700_000)).unwrap();
    fs::write(
        root.join("runs/log.txt"),
        "fill 42,1.5,buy\n".repeat(60_000),
    )
    .unwrap();
    let mut sums = Vec::new();
    for threads in ["1", "2", "4"] {
        env.run(&["backup", "s", "--always", "--threads", threads]);
        let archive = env.archives().pop().unwrap();
        sums.push(sha256_file(&env.backups().join(archive)));
    }
    assert_eq!(sums[0], sums[1]);
    assert_eq!(sums[0], sums[2]);
    env.run(&["verify", "--deep"]);
}

#[test]
fn unchanged_results_are_backed_up_again_when_the_latest_archive_is_gone() {
    let env = Env::new();
    env.sample("s");
    let first = env.backup("s");
    fs::remove_file(env.backups().join(&first)).unwrap();
    let out = env.run_code(&["backup", "s"], 1);
    assert!(stdout(&out).contains("Backed up s"), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{first} is missing")), "{err}");
}

#[test]
fn a_cut_latest_archive_is_said_and_exits_1_when_the_results_changed_too() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    let archive = env.backups().join(&first);
    let len = fs::metadata(&archive).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    fs::write(root.join("extra.json"), b"{\"x\": 1}").unwrap();
    let out = env.run_code(&["backup", "s"], 1);
    assert!(stdout(&out).contains("Backed up s"), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let said = format!(
        "{first} is damaged: size is {} bytes, manifest says {len}; backing up s in full",
        len / 2
    );
    assert!(err.contains(&said), "{err}");
}

#[test]
fn a_dry_run_over_a_missing_latest_archive_says_it_would_back_up() {
    let env = Env::new();
    env.sample("s");
    let first = env.backup("s");
    fs::remove_file(env.backups().join(&first)).unwrap();
    let out = env.run_code(&["backup", "s", "--dry-run"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{first} is missing; would back up s although nothing changed"
        )),
        "{err}"
    );
    assert!(!err.contains("backing up"), "{err}");
    assert_eq!(env.archives(), [first], "nothing written");
}

/// Flips the lowest bit of the byte in the middle of `path`.
fn flip_middle_bit(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_latest_archive_is_not_skipped_over() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    let damaged = env.backup("a");
    env.backup("b");
    flip_middle_bit(&env.backups().join(&damaged));
    let out = env.run_code(&["backup", "--all"], 1);
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("Backed up a") && text.contains("No changes in b"),
        "{text}"
    );
    assert!(
        err.contains(&format!("{damaged} is damaged")) && err.contains("SHA-256"),
        "{err}"
    );
    assert_eq!(env.archives().len(), 3);
    // The new backup is intact: the next run skips again, cleanly.
    let out = env.run(&["backup", "a"]);
    assert!(out.contains("No changes in a"), "{out}");
}

#[test]
fn dry_run_decides_like_the_real_run() {
    let env = Env::new();
    let root = env.sample("s");
    let first = env.backup("s");
    let out = env.run(&["backup", "s", "--dry-run"]);
    assert!(
        out.contains(&format!("No changes in s since {first}; would be skipped")),
        "{out}"
    );
    assert!(!out.contains("Would back up"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["backup", "s", "--dry-run", "--json"])).unwrap();
    assert_eq!(json[0]["status"], "unchanged", "{json}");
    let out = env.run(&["backup", "s", "--dry-run", "--always"]);
    assert!(out.contains("Would back up s"), "{out}");
    flip_middle_bit(&env.backups().join(&first));
    let out = env.run_code(&["backup", "s", "--dry-run"], 1);
    assert!(stdout(&out).contains("Would back up s"), "{}", stdout(&out));
    write(&root.join("new.csv"), "x\n");
    assert!(
        env.run(&["backup", "s", "--dry-run", "--always"])
            .contains("Would back up s")
    );
    assert_eq!(env.archives(), [first]);
}

#[test]
fn all_goes_on_after_a_failing_strategy_and_reports_it_at_the_end() {
    let env = Env::new();
    env.sample("a");
    let bad = env.sample("b");
    env.sample("c");
    std::os::unix::fs::symlink("/etc/hostname", bad.join("runs/outside")).unwrap();
    let out = env.run_code(&["backup", "--all"], 1);
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("Backed up a") && text.contains("Backed up c"),
        "{text}"
    );
    assert!(
        err.contains("backup of b failed") && err.contains("1 of 3 strategies failed: b"),
        "{err}"
    );
    assert!(err.contains("--exclude 'runs/outside'"), "{err}");
    assert_eq!(env.archives().len(), 2);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&env.run_code(&["backup", "b", "a", "--json"], 1))).unwrap();
    assert_eq!(json[0]["status"], "failed", "{json}");
    assert!(json[0]["error"].as_str().unwrap().contains("runs/outside"));
    assert_eq!(json[1]["status"], "unchanged", "{json}");
    // The suggested exclude works.
    env.run(&["backup", "b", "--exclude", "runs/outside"]);
    assert_eq!(env.archives().len(), 3);
}

#[test]
fn counts_say_what_they_count() {
    let env = Env::new();
    env.sample("s");
    let counts = "13 entries (6 files, 6 folders, 1 link)";
    let out = env.run(&["backup", "s", "--dry-run"]);
    assert!(out.contains(counts), "{out}");
    let out = env.run(&["backup", "s"]);
    assert!(out.contains(counts), "{out}");
    let e = &env.manifest()["backups"][0];
    assert_eq!(e["entries"].as_u64(), Some(13), "{e:?}");
    let kinds = &e["kinds"];
    assert_eq!(
        [&kinds["files"], &kinds["folders"], &kinds["links"]].map(|v| v.as_u64()),
        [Some(6), Some(6), Some(1)]
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["backup", "s", "--always", "--json"])).unwrap();
    let b = &json[0];
    assert_eq!(
        ["entries", "files", "folders", "links"].map(|k| b[k].as_u64()),
        [Some(13), Some(6), Some(6), Some(1)]
    );
    assert!(b["bytes"].as_u64().unwrap() > 3000);
    // A manifest written before the kinds were recorded still loads and is used.
    let manifest = env.backups().join("manifest.yaml");
    let old = fs::read_to_string(&manifest).unwrap();
    let old: String = old
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("  kinds:") && !l.starts_with("    "))
        .collect();
    assert!(!old.contains("folders"), "{old}");
    fs::write(&manifest, old).unwrap();
    env.run(&["list"]);
    assert!(env.run(&["backup", "s"]).contains("No changes in s"));
}

#[test]
fn a_named_strategy_in_a_missing_results_folder_names_the_missing_folder() {
    let env = Env::new();
    let out = env.run_code(&["backup", "s", "--results-dir", "nowhere", "--json"], 2);
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "missing_folder", "{err}");
    let err = env.fail(&["backup", "s", "--results-dir", "nowhere"], 2);
    assert!(
        err.contains("results folder nowhere does not exist"),
        "{err}"
    );
    assert!(!err.contains("no strategy folders yet"), "{err}");
}

#[test]
fn counts_say_what_they_count_on_every_surface() {
    let env = Env::new();
    let root = env.sample("s");
    env.backup("s");
    let entry = env.manifest()["backups"][0].clone();
    assert_eq!(entry["entries"].as_u64(), Some(13), "{entry:?}");
    assert!(
        entry.get("files").is_none(),
        "files never means entries: {entry:?}"
    );
    assert_eq!(entry["kinds"]["files"].as_u64(), Some(6), "{entry:?}");
    let counts =
        |v: &serde_json::Value| ["entries", "files", "folders", "links"].map(|k| v[k].as_u64());
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    assert_eq!(
        counts(&rows[0]),
        [Some(13), Some(6), Some(6), Some(1)],
        "{rows}"
    );
    let table = env.run(&["list"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("ENTRIES") && !header.contains("FILES"),
        "{table}"
    );

    fs::remove_dir_all(&root).unwrap();
    let restored: serde_json::Value =
        serde_json::from_str(&env.run(&["restore", "s", "--json"])).unwrap();
    assert_eq!(
        counts(&restored),
        [Some(13), Some(6), Some(6), Some(1)],
        "{restored}"
    );

    // An entry from an older resbak: `files` meant entries, no breakdown.
    let old = "s_20260101_000000.tar.gz";
    let archive = entry["backup_file"].as_str().unwrap();
    fs::copy(env.backups().join(archive), env.backups().join(old)).unwrap();
    let bytes = entry["bytes"].as_u64().unwrap();
    crate::util::register(&env.backups(), old, "s", 13, bytes);
    let rows: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"])).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"] == old)
        .unwrap();
    assert_eq!(counts(row), [Some(13), None, None, None], "{row}");
    assert!(row["files"].is_null(), "{row}");
    env.run(&["verify", old]);
}

/// `backup --all` of a results folder that holds files but no strategy folder says so, rather
/// than calling the folder empty.
#[test]
fn backup_all_of_a_results_folder_without_strategy_folders_says_so() {
    let env = Env::new();
    fs::create_dir_all(env.results()).unwrap();
    fs::write(env.results().join("notes.txt"), "not a strategy\n").unwrap();
    let err = env.fail(&["backup", "--all"], 2);
    assert!(err.contains("holds no strategy folder"), "{err}");
}

/// A file dated before 1970 is stored with the date 1970-01-01 (the archive format resbak
/// writes has no earlier date), and the backup says so instead of changing it silently.
#[test]
fn a_file_dated_before_1970_is_named_in_a_warning() {
    let env = Env::new();
    let root = env.sample("s");
    let old = root.join("old.csv");
    fs::write(&old, "a,b\n").unwrap();
    let t = std::time::UNIX_EPOCH - std::time::Duration::from_secs(315_619_200);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let out = env.run_code(&["backup", "s"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("old.csv: dated before 1970"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A strategy folder that is a symbolic link is never passed over silently: `--all` names it,
/// and backing it up by name says why it cannot be (no advice that cannot work).
#[test]
fn a_strategy_folder_that_is_a_link_is_named_not_skipped_silently() {
    let env = Env::new();
    env.sample("s");
    let real = env.path().join("elsewhere/real");
    fs::create_dir_all(&real).unwrap();
    fs::write(real.join("r.txt"), "r\n").unwrap();
    std::os::unix::fs::symlink("../elsewhere/real", env.results().join("linked")).unwrap();
    let out = env.run_code(&["backup", "--all"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped results/linked: a symbolic link to a folder"),
        "{err}"
    );
    let err = env.fail(&["backup", "linked"], 2);
    assert!(
        err.contains("is a symbolic link to ../elsewhere/real, not a folder"),
        "{err}"
    );
    assert!(!err.contains("--exclude"), "{err}");
}

/// A folder its user cannot read stops the backup with one line naming it once (not again in
/// the walk's own words), exit 2, and no archive.
#[test]
fn an_unreadable_folder_is_named_once() {
    let env = Env::new();
    let root = env.sample("s");
    fs::create_dir(root.join("locked")).unwrap();
    let handed = crate::restore::hand_over(&env);
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = crate::restore::run_as(&env, &["backup", "s"], handed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("results/s/locked").count(), 1, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let archives = fs::read_dir(env.backups()).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
            .count()
    });
    assert_eq!(archives, 0);
}
