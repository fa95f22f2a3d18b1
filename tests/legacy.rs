//! Day one for a team that already has backups made by the Python scripts resbak replaces:
//! archives written by Python's `tarfile` and a `manifest.yaml` in that code's format.

use crate::util::{Env, snapshot, write};
use std::fs;
use std::path::Path;
use std::process::Command;

/// The Python scripts' `backup_results()`: `tarfile.open(..., "w:gz")` with `arcname=strategy`,
/// run from the project folder, named with the local time `stamp`.
const BACKUP_RESULTS: &str = r#"
import os, sys, tarfile
strategy, stamp = sys.argv[1], sys.argv[2]
path = f"backups/{strategy}_{stamp}.tar.gz"
os.makedirs("backups", exist_ok=True)
with tarfile.open(path, "w:gz") as tar:
    tar.add(f"results/{strategy}", arcname=strategy)
print(os.path.getsize(path))
"#;

/// Whether `python3` is here; in CI (`CI` set) its absence fails the test.
fn python() -> bool {
    let found = Command::new("python3").arg("--version").output().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "python3 is needed in CI");
        eprintln!("SKIPPED: no python3");
    }
    found
}

fn run_python(env: &Env, code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .current_dir(env.path())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Backs up `strategy` the way the scripts did and returns the manifest entry they wrote:
/// `backup_file` relative to the working folder, naive local `created`, unquoted timestamp.
fn script_backup(env: &Env, strategy: &str, stamp: &str) -> String {
    let size = run_python(env, BACKUP_RESULTS, &[strategy, stamp]);
    let (d, t) = stamp.split_once('_').unwrap();
    let created = format!(
        "{}-{}-{}T{}:{}:{}",
        &d[..4],
        &d[4..6],
        &d[6..],
        &t[..2],
        &t[2..4],
        &t[4..]
    );
    format!(
        "  - strategy: {strategy}\n    timestamp: {stamp}\n    backup_file: backups/{strategy}_{stamp}.tar.gz\n    size: {}\n    created: {created}\n",
        size.trim()
    )
}

/// A project folder as the scripts left it: two strategies, three archives, their manifest.
fn scripts_folder(env: &Env) -> String {
    env.sample("btc_sma_cross");
    env.sample("eth_mean_revert");
    let mut manifest = String::from("backups:\n");
    manifest += &script_backup(env, "btc_sma_cross", "20240220_143000");
    manifest += &script_backup(env, "eth_mean_revert", "20240221_090000");
    manifest += &script_backup(env, "btc_sma_cross", "20240701_120000");
    write(&env.backups().join("manifest.yaml"), &manifest);
    manifest
}

fn in_new_york(env: &Env, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    cmd.env("TZ", "America/New_York");
    cmd
}

fn ok(mut cmd: Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn the_scripts_folder_is_read_as_it_is_before_any_write() {
    if !python() {
        return;
    }
    let env = Env::new();
    let manifest = scripts_folder(&env);
    let (listing, note) = ok(in_new_york(&env, &["list"]));
    assert!(
        listing.contains("btc_sma_cross_20240220_143000.tar.gz"),
        "{listing}"
    );
    // 14:30 in New York in February is 19:30 UTC; 12:00 in July is 16:00 UTC.
    assert!(listing.contains("2024-02-20 19:30:00*"), "{listing}");
    assert!(listing.contains("2024-07-01 16:00:00*"), "{listing}");
    assert!(listing.contains("converted to UTC"), "{listing}");
    assert_eq!(note.matches("Python scripts' format").count(), 1, "{note}");
    assert!(note.contains("manifest.yaml.bak"), "{note}");

    let (verified, _) = ok(in_new_york(&env, &["verify", "--deep"]));
    assert_eq!(
        verified.matches("no recorded checksum").count(),
        3,
        "{verified}"
    );
    let (json, _) = ok(in_new_york(&env, &["list", "--json"]));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows[0]["converted_from"],
        "2024-02-20 14:30:00 America/New_York (-05:00)"
    );
    assert_eq!(rows[0]["checksum_source"], "pending");

    ok(in_new_york(
        &env,
        &["restore", "btc_sma_cross", "--to", "review"],
    ));
    assert_eq!(
        snapshot(&env.path().join("review")),
        snapshot(&env.results().join("btc_sma_cross"))
    );
    let (diff, _) = ok(in_new_york(
        &env,
        &["diff", "eth_mean_revert_20240221_090000"],
    ));
    assert!(diff.contains("0 added, 0 removed, 0 changed"), "{diff}");

    // The catalogue's commands read the archives as they are: no checksum is no damage.
    let metrics = in_new_york(
        &env,
        &["diff", "btc_sma_cross~1", "btc_sma_cross", "--metrics"],
    )
    .output()
    .unwrap();
    assert_eq!(metrics.status.code(), Some(0), "{metrics:?}");
    let (shown, _) = ok(in_new_york(&env, &["show", "btc_sma_cross"]));
    assert!(shown.contains("not recorded yet"), "{shown}");
    assert!(!shown.contains("0 B of content"), "{shown}");
    let now = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    assert_eq!(
        now, manifest,
        "reading commands leave the manifest as it was"
    );
    assert!(!env.backups().join("manifest.yaml.bak").exists());
}

#[test]
fn the_first_backup_upgrades_the_manifest_and_keeps_the_old_one() {
    if !python() {
        return;
    }
    let env = Env::new();
    let manifest = scripts_folder(&env);
    write(&env.results().join("btc_sma_cross/new_run.csv"), "a,b\n");
    let (out, _) = ok(in_new_york(&env, &["backup", "btc_sma_cross"]));
    assert!(out.contains("Upgraded"), "{out}");
    assert!(out.contains("3 archives checksummed"), "{out}");
    let bak = fs::read_to_string(env.backups().join("manifest.yaml.bak")).unwrap();
    assert_eq!(bak, manifest);
    // manifest.yaml.bak moves on with the next change; the scripts' file is kept for good.
    ok(in_new_york(
        &env,
        &["backup", "--always", "eth_mean_revert"],
    ));
    let kept = fs::read_to_string(env.backups().join("manifest.yaml.pre-resbak")).unwrap();
    assert_eq!(kept, manifest);

    let m = env.manifest();
    assert_eq!(m["version"], 1);
    let entries = m["backups"].as_sequence().unwrap();
    assert_eq!(entries.len(), 5);
    for old in &entries[..3] {
        assert_eq!(old["checksum_source"], "imported", "{old:?}");
        let file = old["backup_file"].as_str().unwrap();
        assert!(
            !file.contains('/'),
            "resolved against the backup folder: {file}"
        );
        let sha = crate::util::sha256_file(&env.backups().join(file));
        assert_eq!(old["sha256"].as_str(), Some(sha.as_str()));
        assert!(old["entries"].as_u64().unwrap() > 5);
    }
    assert_eq!(entries[0]["created"], "2024-02-20T19:30:00Z");
    assert!(entries[3].get("checksum_source").is_none(), "resbak's own");

    let (verified, _) = ok(env.cmd(&["verify", "--deep"]));
    assert!(verified.contains("5 intact, 0 with problems"), "{verified}");
    assert!(!verified.contains("no recorded checksum"), "{verified}");
    let (listing, _) = ok(env.cmd(&["list"]));
    assert!(
        listing.contains("checksum taken when resbak adopted"),
        "{listing}"
    );
    let sums = fs::read_to_string(env.backups().join("SHA256SUMS")).unwrap();
    let archives = sums.lines().filter(|l| l.ends_with(".tar.gz")).count();
    assert_eq!(archives, 5, "{sums}\n{}", env.tree());
}

#[test]
fn an_archive_missing_or_damaged_at_import_keeps_no_checksum_and_stays_a_problem() {
    if !python() {
        return;
    }
    let env = Env::new();
    scripts_folder(&env);
    fs::remove_file(env.backups().join("eth_mean_revert_20240221_090000.tar.gz")).unwrap();
    let damaged = env.backups().join("btc_sma_cross_20240701_120000.tar.gz");
    let len = fs::metadata(&damaged).unwrap().len();
    crate::util::flip_byte(&damaged, len / 2);
    // With no checksum to compare, even a plain verify reads every entry.
    let before = crate::util::stdout(&in_new_york(&env, &["verify"]).output().unwrap());
    assert!(
        before.contains("FAILED  btc_sma_cross_20240701_120000.tar.gz"),
        "{before}"
    );

    let out = in_new_york(&env, &["backup", "btc_sma_cross"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("no checksum recorded").count(),
        2,
        "{stderr}"
    );
    let m = env.manifest();
    let sources: Vec<&str> = m["backups"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| e["checksum_source"].as_str())
        .collect();
    assert_eq!(sources, ["imported", "none", "none"]);
    let verify = env.run_code(&["verify"], 1);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        text.contains("eth_mean_revert_20240221_090000.tar.gz"),
        "{text}"
    );
    assert!(
        text.contains("btc_sma_cross_20240701_120000.tar.gz"),
        "{text}"
    );
    let listing = crate::util::stdout(&env.run_code(&["list", "btc_sma_cross"], 1));
    let damaged = listing
        .lines()
        .find(|l| l.starts_with("btc_sma_cross_20240701_120000.tar.gz"))
        .unwrap();
    assert!(damaged.ends_with("failed"), "{listing}");
}

/// Python's `tarfile` writes PAX headers for long and non-ASCII names and owner names; an
/// archive of single files has no folder entries at all.
#[test]
fn tarfile_archives_with_long_and_non_ascii_names_restore_verify_and_diff() {
    if !python() {
        return;
    }
    let env = Env::new();
    let root = env.sample("btc_sma_cross");
    let long = format!("runs/{}/trades.csv", "p".repeat(120));
    write(&root.join(&long), "id,pnl\n1,2\n");
    write(&root.join("runs/résumé_€/指標.json"), "{\"sharpe\": 2}");
    // tarfile rounds a time of .75 s up in the header and keeps it whole in a PAX record.
    let late_in_the_second =
        std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 750_000_000);
    for item in walkdir::WalkDir::new(&root) {
        let item = item.unwrap();
        if !item.path_is_symlink() {
            let file = fs::File::open(item.path()).unwrap();
            file.set_modified(late_in_the_second).unwrap();
        }
    }
    script_backup(&env, "btc_sma_cross", "20240220_143000");
    // Files only, no folder entries: the folders come from the paths.
    let files_only = r#"
import tarfile
with tarfile.open("backups/btc_sma_cross_20240301_000000.tar.gz", "w:gz") as tar:
    tar.add("results/btc_sma_cross/trades.csv", arcname="btc_sma_cross/trades.csv")
    tar.add("results/btc_sma_cross/runs/résumé_€/指標.json", arcname="btc_sma_cross/runs/résumé_€/指標.json")
"#;
    run_python(&env, files_only, &[]);
    ok(env.cmd(&["reindex"]));
    let (verified, _) = ok(env.cmd(&["verify", "--deep"]));
    assert!(verified.contains("2 intact"), "{verified}");

    ok(env.cmd(&["restore", "btc_sma_cross_20240220_143000", "--to", "full"]));
    assert_eq!(snapshot(&env.path().join("full")), snapshot(&root));
    let (diff, _) = ok(env.cmd(&["diff", "btc_sma_cross_20240220_143000"]));
    assert!(diff.contains("0 added, 0 removed, 0 changed"), "{diff}");

    ok(env.cmd(&["restore", "btc_sma_cross_20240301_000000", "--to", "part"]));
    let part = env.path().join("part");
    assert_eq!(
        fs::read(part.join("runs/résumé_€/指標.json")).unwrap(),
        fs::read(root.join("runs/résumé_€/指標.json")).unwrap()
    );
    assert!(Path::new(&part.join("trades.csv")).is_file());
}

#[test]
fn reindex_reads_the_time_in_a_scripts_archive_name_as_local_time() {
    if !python() {
        return;
    }
    let env = Env::new();
    env.sample("btc_sma_cross");
    script_backup(&env, "btc_sma_cross", "20240220_143000");
    let own = env.backup("btc_sma_cross");
    let before = env.manifest()["backups"][0]["created"].clone();
    fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    ok(env.cmd(&["--timezone", "Asia/Tokyo", "reindex"]));
    let m = env.manifest();
    let entries = m["backups"].as_sequence().unwrap();
    let scripts = entries
        .iter()
        .find(|e| e["backup_file"] == "btc_sma_cross_20240220_143000.tar.gz")
        .unwrap();
    assert_eq!(scripts["created"], "2024-02-20T05:30:00Z", "14:30 in Tokyo");
    assert_eq!(scripts["checksum_source"], "imported");
    let ours = entries
        .iter()
        .find(|e| e["backup_file"] == own.as_str())
        .unwrap();
    assert!(
        ours.get("converted_from").is_none(),
        "resbak's names are UTC"
    );
    let ours_created = ours["created"].as_str().unwrap();
    assert_eq!(&ours_created[..19], &before.as_str().unwrap()[..19]);
}

#[test]
fn the_zone_comes_from_the_flag_then_resbak_toml() {
    if !python() {
        return;
    }
    let env = Env::new();
    scripts_folder(&env);
    write(&env.path().join("resbak.toml"), "timezone = \"+05:30\"\n");
    let (listing, _) = ok(in_new_york(&env, &["list", "eth_mean_revert"]));
    assert!(listing.contains("2024-02-21 03:30:00*"), "{listing}");
    let (listing, _) = ok(in_new_york(
        &env,
        &["--timezone", "UTC", "list", "eth_mean_revert"],
    ));
    assert!(listing.contains("2024-02-21 09:00:00*"), "{listing}");
    let (listing, _) = ok(in_new_york(
        &env,
        &["--timezone", "-03:00", "list", "eth_mean_revert"],
    ));
    assert!(listing.contains("2024-02-21 12:00:00*"), "{listing}");
    let err = env.fail(&["--timezone", "Mars/Olympus", "list"], 2);
    assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A TZ that names no zone is an error, not a silent UTC, when a naive time must be read.
    fs::remove_file(env.path().join("resbak.toml")).unwrap();
    let out = env
        .cmd(&["list"])
        .env("TZ", "America/NewYork")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TZ=\"America/NewYork\" names no time zone"),
        "{err}"
    );
}

/// The scripts kept running after resbak took over and appended an entry of their format.
#[test]
fn an_entry_the_scripts_add_after_the_upgrade_is_explained() {
    if !python() {
        return;
    }
    let env = Env::new();
    scripts_folder(&env);
    ok(in_new_york(&env, &["backup", "eth_mean_revert"]));
    let mut text = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    let added = script_backup(&env, "btc_sma_cross", "20240801_100000");
    text += &added.replace("  - ", "- ").replace("\n    ", "\n  ");
    fs::write(env.backups().join("manifest.yaml"), text).unwrap();
    let err = env.fail(&["list"], 2);
    assert!(err.contains("backups[4] has no sha256"), "{err}");
    assert!(err.contains("Python scripts added after"), "{err}");
}

#[test]
fn an_archive_listed_outside_the_backup_folder_is_pointed_at() {
    if !python() {
        return;
    }
    let env = Env::new();
    scripts_folder(&env);
    let elsewhere = env.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let name = "eth_mean_revert_20240221_090000.tar.gz";
    fs::rename(env.backups().join(name), elsewhere.join(name)).unwrap();
    let manifest = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    let moved = manifest.replace(
        &format!("backups/{name}"),
        &elsewhere.join(name).display().to_string(),
    );
    fs::write(env.backups().join("manifest.yaml"), moved).unwrap();
    let out = in_new_york(&env, &["list"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let at = format!("lists it at {}", elsewhere.join(name).display());
    assert!(err.contains(&at), "{err}");
}

/// PyYAML (YAML 1.1) reads an unquoted `20261130_145907` as a number: resbak writes it quoted
/// and reads a manifest that a Python program loaded and dumped again.
#[test]
fn the_manifest_means_the_same_to_pyyaml() {
    if !python() {
        return;
    }
    let env = Env::new();
    env.sample("btc_sma_cross");
    env.backup("btc_sma_cross");
    let types = r#"
try:
    import yaml
except ImportError:
    print("no-pyyaml"); raise SystemExit
m = yaml.safe_load(open("backups/manifest.yaml"))
e = m["backups"][0]
print(type(e["timestamp"]).__name__, type(e["created"]).__name__)
yaml.safe_dump(m, open("backups/manifest.yaml", "w"))
"#;
    let seen = run_python(&env, types, &[]);
    if seen.trim() == "no-pyyaml" {
        assert!(std::env::var_os("CI").is_none(), "PyYAML is needed in CI");
        eprintln!("SKIPPED: no PyYAML");
        return;
    }
    assert_eq!(seen.trim(), "str str");
    // Dumped again by PyYAML (which quotes what YAML 1.1 would misread): still resbak's manifest.
    ok(env.cmd(&["verify"]));
    // A YAML 1.1 number, as a writer that took the timestamp for one would leave it.
    let mut m = env.manifest();
    let stamp = m["backups"][0]["timestamp"]
        .as_str()
        .unwrap()
        .replace('_', "");
    m["backups"][0]["timestamp"] = serde_yaml::Value::Number(stamp.parse::<u64>().unwrap().into());
    fs::write(
        env.backups().join("manifest.yaml"),
        serde_yaml::to_string(&m).unwrap(),
    )
    .unwrap();
    ok(env.cmd(&["verify"]));
    env.backup("btc_sma_cross");
    let text = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    let expected = format!("timestamp: '{}_{}'", &stamp[..8], &stamp[8..]);
    assert!(text.contains(&expected), "{text}");
}
