//! Off-site copies against a real S3 server (Garage in CI): push, list, pull, restore, verify
//! and prune, concurrency, large archives and failures. Tests that stop the server live in
//! `remote_faults.rs`, a test binary of their own, so they never disturb these.

use crate::s3::{REMOTE, Server, run_measured, write_noise};
use crate::util::{Env, flip_byte, sha256_file, snapshot, stdout};
use std::fs;

const R: &str = "--remote";

/// Backs up `strategy` in `env` and pushes it; returns the archive name.
pub(crate) fn backup_and_push(env: &Env, strategy: &str) -> String {
    let archive = env.backup(strategy);
    let out = env.run(&["push", &archive, R, REMOTE]);
    assert!(out.contains(&format!("Pushed {archive} -> s3://")), "{out}");
    archive
}

/// Starts `push --all` on every machine at once and waits for all of them.
pub(crate) fn push_all_at_once(machines: &[Env]) -> Vec<std::process::Output> {
    let running: Vec<_> = machines
        .iter()
        .map(|env| {
            env.cmd(&["push", "--all", R, REMOTE])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    running
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The STATUS column of `archive` in `list --remote`.
fn listed_status(env: &Env, archive: &str) -> Option<String> {
    // Exit 1 when a local copy is missing or damaged: the rows are listed all the same.
    let out = env.cmd(&["list", R, REMOTE, "--json"]).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"] == archive)
        .map(|r| r["status"].as_str().unwrap().to_string())
}

#[test]
fn push_list_pull_restore_round_trip_is_byte_identical() {
    let Some(server) = Server::get("push_list_pull_restore_round_trip_is_byte_identical") else {
        return;
    };
    let here = Env::new();
    server.configure(&here);
    let original = snapshot(&here.sample("s"));
    let archive = backup_and_push(&here, "s");
    assert_eq!(listed_status(&here, &archive).as_deref(), Some("both"));
    let again = here.run(&["push", "--all", R, REMOTE]);
    assert!(
        again.contains(&format!("Already on {REMOTE}: {archive}")),
        "{again}"
    );

    let there = Env::new();
    server.configure(&there);
    assert_eq!(listed_status(&there, &archive).as_deref(), Some("remote"));
    let out = there.run(&["pull", archive.trim_end_matches(".tar.gz"), R, REMOTE]);
    assert!(out.contains("Pulled "), "{out}");
    assert_eq!(
        sha256_file(&there.backups().join(&archive)),
        sha256_file(&here.backups().join(&archive))
    );
    // The index travels with the archive: the pulled backup is catalogued as it was pushed.
    assert_eq!(there.manifest()["backups"], here.manifest()["backups"]);
    let index = format!("{archive}.idx");
    assert_eq!(
        sha256_file(&there.backups().join(&index)),
        sha256_file(&here.backups().join(&index))
    );
    assert!(
        there
            .run(&["pull", &archive, R, REMOTE])
            .contains("Already here")
    );
    there.run(&["verify", "--deep"]);
    there.run(&["restore", &archive]);
    assert_eq!(snapshot(&there.results().join("s")), original);

    let third = Env::new();
    server.configure(&third);
    let out = third.run(&["restore", &archive, R, REMOTE]);
    assert!(
        out.contains("Pulled ") && out.contains("Restored "),
        "{out}"
    );
    assert_eq!(snapshot(&third.results().join("s")), original);
    assert_eq!(third.archives(), [archive]);
}

#[test]
fn large_archive_goes_up_in_parts_with_flat_memory() {
    const SIZE: u64 = 300 << 20;
    const BOUND_KIB: u64 = 64 << 10;
    let Some(server) = Server::get("large_archive_goes_up_in_parts_with_flat_memory") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    write_noise(&env.results().join("big/prices.bin"), 7, SIZE);
    env.run(&["backup", "big", "--level", "0"]);
    fs::remove_dir_all(env.results().join("big")).unwrap();
    let archive = env.archives().remove(0);
    let size = fs::metadata(env.backups().join(&archive)).unwrap().len();
    assert!(size > SIZE, "{size}");

    let push = run_measured(env.cmd(&["push", "--all", R, REMOTE]));
    assert!(push.status.success(), "{}\n{}", push.stdout, push.stderr);
    eprintln!(
        "push of {size} bytes: peak RSS {} KiB, {:.1} s",
        push.peak_kib,
        push.elapsed.as_secs_f64()
    );
    assert!(push.peak_kib > 0, "no memory sample was taken");
    assert!(
        push.peak_kib < BOUND_KIB,
        "push peaked at {} KiB",
        push.peak_kib
    );
    let stat = server.remote().stat(&archive).unwrap().unwrap();
    assert_eq!(stat.size, size);
    let e_tag = stat.e_tag.unwrap_or_default();
    assert!(
        e_tag.trim_matches('"').contains('-'),
        "not a multipart ETag: {e_tag}"
    );

    let there = Env::new();
    server.configure(&there);
    let pull = run_measured(there.cmd(&["pull", &archive, R, REMOTE]));
    assert!(pull.status.success(), "{}\n{}", pull.stdout, pull.stderr);
    eprintln!(
        "pull of {size} bytes: peak RSS {} KiB, {:.1} s",
        pull.peak_kib,
        pull.elapsed.as_secs_f64()
    );
    assert!(
        pull.peak_kib < BOUND_KIB,
        "pull peaked at {} KiB",
        pull.peak_kib
    );
    assert_eq!(
        sha256_file(&there.backups().join(&archive)),
        env.manifest()["backups"][0]["sha256"].as_str().unwrap()
    );
}

#[test]
fn concurrent_pushes_from_two_backup_folders_both_land() {
    let Some(server) = Server::get("concurrent_pushes_from_two_backup_folders_both_land") else {
        return;
    };
    let machines = [Env::new(), Env::new()];
    let mut archives = Vec::new();
    for (i, env) in machines.iter().enumerate() {
        server.configure(env);
        let strategy = format!("s{i}");
        env.sample(&strategy);
        for _ in 0..3 {
            archives.push(env.backup(&strategy));
        }
    }
    for out in push_all_at_once(&machines) {
        assert!(
            out.status.success(),
            "{}\n{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let viewer = Env::new();
    server.configure(&viewer);
    for archive in &archives {
        assert_eq!(
            listed_status(&viewer, archive).as_deref(),
            Some("remote"),
            "{archive}"
        );
    }
    viewer.run(&["verify", R, REMOTE]);
}

#[test]
fn verify_detects_an_object_overwritten_with_other_bytes() {
    let Some(server) = Server::get("verify_detects_an_object_overwritten_with_other_bytes") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archive = backup_and_push(&env, "s");
    let out = env.run(&["verify", R, REMOTE, "--deep"]);
    assert!(out.contains(&format!("OK      {archive}")), "{out}");

    let remote = server.remote();
    let mut other = fs::read(env.backups().join(&archive)).unwrap();
    let last = other.len() - 20;
    other[last] ^= 0x55;
    remote.put_object(&archive, other.clone()).unwrap();
    let out = stdout(&env.run_code(&["verify", R, REMOTE], 1));
    assert!(
        out.contains(&format!("FAILED  {archive}: SHA-256 mismatch")),
        "{out}"
    );
    let out = stdout(&env.run_code(&["verify", R, REMOTE, "--deep"], 1));
    assert!(out.contains(&format!("FAILED  {archive}")), "{out}");

    other.truncate(100);
    remote.put_object(&archive, other).unwrap();
    let out = stdout(&env.run_code(&["verify", R, REMOTE], 1));
    assert!(out.contains("size is 100 bytes"), "{out}");

    remote
        .put_object(&format!("{archive}.entry.yaml"), "not: [an entry")
        .unwrap();
    let out = stdout(&env.run_code(&["verify", R, REMOTE], 1));
    assert!(
        out.contains("FAILED  ") && out.contains("not a resbak entry"),
        "{out}"
    );
    assert!(!env.path().join("backups").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".resbak")
    }));
}

#[test]
fn pull_never_registers_a_download_that_does_not_match() {
    let Some(server) = Server::get("pull_never_registers_a_download_that_does_not_match") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archive = backup_and_push(&env, "s");
    let mut other = fs::read(env.backups().join(&archive)).unwrap();
    other[40] ^= 0x55;
    server.remote().put_object(&archive, other).unwrap();

    let there = Env::new();
    server.configure(&there);
    let err = there.fail(&["pull", &archive, R, REMOTE], 1);
    assert!(err.contains("is corrupt"), "{err}");
    assert!(!there.backups().join("manifest.yaml").exists());
    assert!(!there.backups().exists(), "{}", there.tree());
    fs::create_dir(there.backups()).unwrap();
    there.fail(&["pull", &archive, R, REMOTE], 1);
    let left: Vec<_> = fs::read_dir(there.backups()).unwrap().flatten().collect();
    assert!(
        left.iter()
            .all(|e| e.file_name().to_string_lossy().ends_with(".lock")),
        "{}",
        there.tree()
    );
    let err = there.fail(&["restore", &archive, R, REMOTE], 1);
    assert!(!there.results().join("s").exists(), "{err}");
}

#[test]
fn a_local_archive_that_changed_is_never_pushed() {
    let Some(server) = Server::get("a_local_archive_that_changed_is_never_pushed") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    write_noise(&env.results().join("big/ticks.bin"), 3, 20 << 20);
    env.run(&["backup", "big", "--level", "0"]);
    env.sample("s");
    let small = env.backup("s");
    let gone = env.backup("s");
    let big = env.archives().remove(0);
    for archive in [&big, &small] {
        let path = env.backups().join(archive);
        flip_byte(&path, fs::metadata(&path).unwrap().len() - 100);
    }
    fs::remove_file(env.backups().join(&gone)).unwrap();
    let out = stdout(&env.run_code(&["push", "--all", R, REMOTE], 1));
    assert!(
        out.contains(&format!("FAILED  {big}")) && out.contains(&format!("FAILED  {small}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAILED  {gone}: archive file is missing")),
        "{out}"
    );
    let remote = server.remote();
    for archive in [&big, &small, &gone] {
        assert_eq!(remote.stat(archive).unwrap(), None, "{archive} is visible");
        assert_ne!(listed_status(&env, archive).as_deref(), Some("both"));
    }
}

#[test]
fn prune_applies_retention_on_the_remote() {
    let Some(server) = Server::get("prune_applies_retention_on_the_remote") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archives: Vec<String> = (0..3).map(|_| env.backup("s")).collect();
    env.run(&["push", "s", R, REMOTE]);
    let out = env.run(&["prune", "--keep", "1", "--dry-run", R, REMOTE]);
    assert_eq!(out.matches("Would remove old backup: ").count(), 2, "{out}");
    let remote = server.remote();
    assert!(remote.stat(&archives[0]).unwrap().is_some());
    let out = env.run(&["prune", "--keep", "1", R, REMOTE]);
    assert!(
        out.contains(&format!("Removed old backup: {}", archives[0]))
            && out.contains(&format!("Removed old backup: {}", archives[1])),
        "{out}"
    );
    for old in &archives[..2] {
        assert_eq!(remote.stat(old).unwrap(), None);
        assert_eq!(remote.stat(&format!("{old}.idx")).unwrap(), None);
        assert_eq!(remote.stat(&format!("{old}.entry.yaml")).unwrap(), None);
        assert_eq!(listed_status(&env, old).as_deref(), Some("local"));
    }
    assert_eq!(listed_status(&env, &archives[2]).as_deref(), Some("both"));
    let kept = format!("{}.idx", archives[2]);
    assert!(remote.stat(&kept).unwrap().is_some(), "the index went up");
    assert_eq!(env.archives(), archives, "local backups are untouched");
}

#[test]
fn bad_credentials_or_bucket_exit_2_with_one_clear_line() {
    let Some(server) = Server::get("bad_credentials_or_bucket_exit_2_with_one_clear_line") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    env.backup("s");
    let run = |args: &[&str], var: &str, value: &str| {
        let out = env.cmd(args).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("resbak: remote test: "), "{err}");
        err
    };
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    for args in [&["push", "--all", R, REMOTE][..], &["list", R, REMOTE]] {
        let err = run(args, "AWS_SECRET_ACCESS_KEY", wrong);
        assert!(err.contains("access denied"), "{err}");
        assert!(
            !err.contains(wrong) && !err.contains(&server.secret),
            "{err}"
        );
    }
    let err = run(
        &["list", R, REMOTE],
        "AWS_ACCESS_KEY_ID",
        "GK0000000000000000",
    );
    assert!(err.contains("access denied"), "{err}");
    let err = run(&["list", R, REMOTE], "AWS_SECRET_ACCESS_KEY", "");
    assert!(err.contains("no credentials"), "{err}");

    let missing = Env::new();
    let toml = fs::read_to_string(env.path().join("resbak.toml")).unwrap();
    let other = toml.replace(&format!("{:?}", server.bucket), "\"no-such-bucket-resbak\"");
    fs::write(missing.path().join("resbak.toml"), other).unwrap();
    let err = missing.fail(&["list", R, REMOTE], 2);
    assert!(
        err.contains("bucket no-such-bucket-resbak does not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unknown_remote_and_unreachable_endpoint_exit_2() {
    // Needs no server: the endpoint is a closed port on this machine.
    let env = Env::new();
    fs::write(
        env.path().join("resbak.toml"),
        "[remote.nowhere]\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\n\
         allow_http = true\nretry_timeout_secs = 1\n",
    )
    .unwrap();
    let err = env.fail(&["list", R, "elsewhere"], 2);
    assert!(
        err.contains("no remote \"elsewhere\"; configured: nowhere"),
        "{err}"
    );
    let out = env
        .cmd(&["list", R, "nowhere"])
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot connect to http://127.0.0.1:1") && err.lines().count() == 1,
        "{err}"
    );
    let err = env.fail(&["push", R, "nowhere"], 2);
    assert!(err.contains("--all"), "push needs targets or --all: {err}");
}

#[test]
fn push_pull_and_remote_verify_report_json() {
    let Some(server) = Server::get("push_pull_and_remote_verify_report_json") else {
        return;
    };
    let here = Env::new();
    server.configure(&here);
    here.sample("s");
    let archive = here.backup("s");
    let parse = |env: &Env, args: &[&str]| -> serde_json::Value {
        let out = env.run(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
    };
    let pushed = parse(&here, &["push", "--all", R, REMOTE, "--json"]);
    assert_eq!(pushed["pushed"], serde_json::json!([archive]));
    assert_eq!(pushed["failed"], serde_json::json!([]));
    let again = parse(&here, &["push", "--all", R, REMOTE, "--json"]);
    assert_eq!(again["present"], serde_json::json!([archive]));
    let verified = parse(&here, &["verify", R, REMOTE, "--json"]);
    assert_eq!(verified["checked"], 1);
    assert_eq!(verified["results"][0]["status"], "ok");
    let there = Env::new();
    server.configure(&there);
    let pulled = parse(&there, &["pull", &archive, R, REMOTE, "--json"]);
    assert_eq!(pulled[0]["backup_file"], archive.as_str());
    assert_eq!(
        pulled[0]["sha256"],
        here.manifest()["backups"][0]["sha256"].as_str().unwrap()
    );
}

/// `list --remote` exits 1 when an archive here and the one of the same name on the remote hold
/// other bytes: a health check cannot pass while one of them is not what it claims to be.
#[test]
fn list_remote_exits_1_on_a_conflict() {
    let Some(server) = Server::get("list_remote_exits_1_on_a_conflict") else {
        return;
    };
    let env = Env::new();
    server.configure(&env);
    env.sample("s");
    let archive = backup_and_push(&env, "s");
    env.run(&["list", R, REMOTE]);
    // The local catalogue now records other bytes under the same name.
    let sha = env.manifest()["backups"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    env.edit_manifest(|text| text.replace(&sha, &"0".repeat(64)));
    let json = env.run_code(&["list", R, REMOTE, "--json"], 1);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["archive"] == archive.as_str());
    assert_eq!(row.unwrap()["status"], "conflict", "{rows}");
    let out = env.run_code(&["list", R, REMOTE], 1);
    assert!(stdout(&out).contains("conflict"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Problems: 1 backup"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_server_that_is_down_is_retried_until_retry_timeout_secs() {
    // Needs no server: the endpoint is a closed port on this machine.
    let env = Env::new();
    fs::write(
        env.path().join("resbak.toml"),
        "[remote.down]\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\n\
         allow_http = true\nretry_timeout_secs = 2\nencrypt = false\n",
    )
    .unwrap();
    env.sample("s");
    env.backup("s");
    let out = env
        .cmd(&["push", "--all", R, "down"])
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("retry_timeout_secs = 2"), "{err}");
    // The client used to stop after 10 retries whatever the timeout; now only the timeout
    // ends them, and with backoffs of at most a twentieth of it there are more than that.
    let tries: u64 = err
        .split("tried ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of tries: {err}"));
    assert!(tries > 11, "{err}");
}

#[test]
fn verify_remote_warns_when_it_cannot_compare_with_an_unreadable_local_manifest() {
    let Some(server) = Server::get("verify_remote_warns_when_it_cannot_compare") else {
        return;
    };
    let here = Env::new();
    server.configure(&here);
    here.sample("s");
    backup_and_push(&here, "s");
    fs::write(here.backups().join("manifest.yaml"), "backups: [unclosed\n").unwrap();
    let out = here.cmd(&["verify", R, REMOTE]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not comparing with the local backups"),
        "{}\n{err}",
        stdout(&out)
    );
}
