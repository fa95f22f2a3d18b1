use crate::util::{Env, have};
use std::process::Command;

#[test]
fn no_arguments_print_an_overview() {
    let env = Env::new();
    let err = env.fail(&[], 2);
    for word in ["backup", "list", "verify", "restore", "prune", "Exit codes"] {
        assert!(err.contains(word), "{word} missing from overview:\n{err}");
    }
}

#[test]
fn every_command_help_has_a_summary_and_an_example() {
    let env = Env::new();
    for cmd in [
        "backup",
        "list",
        "verify",
        "restore",
        "prune",
        "reindex",
        "config",
        "completions",
        "man",
    ] {
        let out = env.run(&[cmd, "--help"]);
        assert!(
            out.lines().next().is_some_and(|l| !l.is_empty()),
            "{cmd}: {out}"
        );
        assert!(
            out.contains(&format!("Example: resbak {cmd}")),
            "{cmd}: {out}"
        );
    }
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let env = Env::new();
    let bash = env.run(&["completions", "bash"]);
    assert!(
        bash.contains("_resbak") && bash.contains("--backup-dir"),
        "{bash}"
    );
    let zsh = env.run(&["completions", "zsh"]);
    assert!(zsh.contains("#compdef resbak"));
    let man = env.run(&["man"]);
    assert!(
        man.contains(".TH resbak 1") && man.contains("backup"),
        "{man}"
    );
    env.fail(&["completions", "cmd.exe"], 2);
}

#[test]
fn sha256sums_checks_every_archive_without_resbak() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    env.backup("a");
    env.backup("b");
    let gone = env.backup("a");
    env.run(&["prune", "a", "--keep", "1"]);
    let sums = std::fs::read_to_string(env.backups().join("SHA256SUMS")).unwrap();
    // Each archive and its index.
    assert_eq!(sums.lines().count(), 4, "{sums}");
    assert!(sums.contains(&gone) && sums.contains(&format!("{gone}.idx")));
    if !have("sha256sum") {
        eprintln!("SKIPPED sha256sum -c: sha256sum is not installed");
        return;
    }
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(env.backups())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn json_reports_are_complete_and_parse() {
    let env = Env::new();
    env.sample("s");
    let parse = |args: &[&str]| -> serde_json::Value {
        let out = env.run(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
    };
    let backed = parse(&["backup", "s", "--json"]);
    let b = &backed[0];
    let entry = env.manifest()["backups"][0].clone();
    assert_eq!(b["strategy"], "s");
    assert_eq!(b["status"], "backed_up");
    assert_eq!(b["archive"].as_str(), entry["backup_file"].as_str());
    assert_eq!(b["size"].as_u64(), entry["size"].as_u64());
    assert_eq!(b["files"].as_u64(), Some(6));
    assert_eq!(b["entries"].as_u64(), Some(13));
    assert_eq!(b["sha256"].as_str(), entry["sha256"].as_str());
    assert!(b["seconds"].as_f64().is_some());
    let skipped = parse(&["backup", "s", "--json"]);
    assert_eq!(skipped[0]["status"], "unchanged");
    let archive = b["archive"].as_str().unwrap().to_string();

    let verified = parse(&["verify", "--deep", "--json"]);
    assert_eq!(verified["deep"], true);
    assert_eq!(
        (verified["checked"].as_u64(), verified["intact"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(verified["problems"], 0);
    assert_eq!(verified["results"][0]["archive"], archive.as_str());
    assert_eq!(verified["results"][0]["status"], "ok");

    let restored = parse(&["restore", &archive, "--to", "out", "--json"]);
    assert_eq!(restored["entries"], 13);
    assert_eq!(restored["checked_against_manifest"], true);
    assert!(restored["destination"].as_str().unwrap().ends_with("out"));

    let config = parse(&["config", "--json"]);
    assert_eq!(config["backup_dir"]["value"], "backups");
    assert_eq!(config["backup_dir"]["source"], "default");

    std::fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    let reindexed = parse(&["reindex", "--json"]);
    assert_eq!(reindexed["added"], serde_json::json!([archive]));
}

#[test]
fn quiet_prints_only_problems() {
    let env = Env::new();
    env.sample("s");
    assert_eq!(env.run(&["backup", "s", "-q"]), "");
    assert_eq!(env.run(&["verify", "-q"]), "");
    let archive = env.archives()[0].clone();
    crate::util::flip_byte(&env.backups().join(&archive), 40);
    let out = crate::util::stdout(&env.run_code(&["verify", "-q"], 1));
    assert!(out.starts_with("FAILED") && out.contains(&archive), "{out}");
}

#[test]
fn no_progress_or_colour_when_piped() {
    let env = Env::new();
    env.sample("s");
    let out = env.run_code(&["backup", "s"], 0);
    let all = [out.stdout, out.stderr].concat();
    assert!(
        !all.contains(&0x1b),
        "escape codes in piped output: {}",
        String::from_utf8_lossy(&all)
    );
    let out = env.run_code(&["verify"], 0);
    assert!(!out.stdout.contains(&0x1b) && out.stderr.is_empty());
}

/// Runs resbak under a pseudo-terminal (util-linux `script`) and returns all it printed.
fn on_a_terminal(env: &Env, args: &str, no_color: bool) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED terminal check: util-linux `script` is not installed");
        return None;
    }
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_resbak"));
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(env.path());
    if no_color {
        script.env("NO_COLOR", "1");
    } else {
        script.env_remove("NO_COLOR");
    }
    let out = script.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_terminal_gets_a_progress_bar_and_colour_unless_no_color() {
    let env = Env::new();
    let root = env.sample("big");
    for i in 0..48 {
        std::fs::write(
            root.join(format!("runs/blob_{i:02}.bin")),
            crate::util::noise(i, 1 << 20),
        )
        .unwrap();
    }
    let Some(seen) = on_a_terminal(&env, "backup big", false) else {
        return;
    };
    assert!(
        seen.contains("backing up big") && seen.contains("MiB"),
        "no progress bar: {seen:?}"
    );
    let Some(seen) = on_a_terminal(&env, "verify", false) else {
        return;
    };
    assert!(seen.contains("\u{1b}[32mOK"), "no colour: {seen:?}");
    let Some(seen) = on_a_terminal(&env, "verify", true) else {
        return;
    };
    assert!(
        !seen.contains("\u{1b}[32m"),
        "colour despite NO_COLOR: {seen:?}"
    );
}

/// Runs resbak with its standard output a pipe nobody reads (the reader is closed, as after
/// `| head -c0`) and returns the exit code.
fn with_closed_stdout(env: &Env, args: &[&str]) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env.cmd(args).stdout(writer).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code()
}

#[test]
fn a_closed_stdout_neither_hides_a_failure_nor_stops_the_work() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    assert_eq!(with_closed_stdout(&env, &["backup", "a", "b"]), Some(0));
    assert_eq!(env.archives().len(), 2, "the backup stopped halfway");
    let archive = env.archives()[0].clone();
    crate::util::flip_byte(&env.backups().join(&archive), 40);
    assert_eq!(with_closed_stdout(&env, &["verify"]), Some(1));
    assert_eq!(with_closed_stdout(&env, &["verify", "--json"]), Some(1));
    assert_eq!(with_closed_stdout(&env, &["verify", "nope"]), Some(2));
    assert_eq!(with_closed_stdout(&env, &["completions", "bash"]), Some(0));
}

#[test]
fn an_unwritable_stderr_never_panics() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("SKIPPED unwritable stderr: no /dev/full");
        return;
    };
    let env = Env::new();
    std::fs::create_dir(env.backups()).unwrap();
    std::fs::write(env.backups().join("junk.tar.gz"), "not gzip").unwrap();
    let code = |args: &[&str]| {
        let stderr = full.try_clone().unwrap();
        env.cmd(args).stderr(stderr).output().unwrap().status.code()
    };
    assert_eq!(
        code(&["reindex"]),
        Some(1),
        "a warning that cannot be written"
    );
    assert_eq!(
        code(&["verify", "nope"]),
        Some(2),
        "an error that cannot be written"
    );
    assert_eq!(code(&["verify", "--bogus"]), Some(2), "an argument error");
    std::fs::write(env.backups().join("verified.yaml"), "{ damaged").unwrap();
    assert_eq!(
        code(&["list"]),
        Some(0),
        "a warning about damaged verify results that cannot be written"
    );
}

#[test]
fn errors_under_json_are_one_json_object_on_stdout() {
    let env = Env::new();
    env.sample("s");
    let error = |args: &[&str], code: i32| -> serde_json::Value {
        let out = env.run_code(args, code);
        let text = crate::util::stdout(&out);
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("resbak: "), "{stderr}");
        value["error"].clone()
    };
    let err = error(&["verify", "nope", "--json"], 2);
    assert_eq!(err["kind"], "missing_folder", "no backup folder yet");
    let archive = env.backup("s");
    let err = error(&["verify", "nope", "--json"], 2);
    assert_eq!(err["kind"], "unknown_name");
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
    let err = error(&["backup", "absent", "--json"], 2);
    assert_eq!(err["kind"], "unknown_strategy");
    crate::util::flip_byte(&env.backups().join(&archive), 40);
    let err = error(&["restore", &archive, "--to", "out", "--json"], 1);
    assert_eq!(err["kind"], "corrupt");
    let err = error(&["--json", "backup", "--bogus"], 2);
    assert_eq!(err["kind"], "usage");
}

#[test]
fn argument_errors_are_one_resbak_line_and_help_is_not_an_error() {
    let env = Env::new();
    for args in [
        &["backup", "--bogus"][..],
        &["bogus"],
        &["prune", "--keep", "0"],
    ] {
        let err = env.fail(args, 2);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("resbak: "), "{args:?}: {err}");
    }
    assert!(env.run(&["--help"]).contains("Usage: resbak"));
    assert!(
        env.run(&["backup", "--help"])
            .contains("Usage: resbak backup")
    );
    assert!(env.run(&["--version"]).starts_with("resbak "));
}

#[test]
fn names_with_control_characters_cannot_forge_report_lines() {
    let env = Env::new();
    let name = "evil\nRemoved old backup: keep.csv";
    let path = env.path().join("d").join(name);
    crate::util::write(&path, "1");
    let arg = format!("d/{name}");
    env.run(&["file", "backup", &arg]);
    crate::util::write(&path, "2");
    let out = env.run(&["file", "backup", &arg, "--keep", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("Backed up d/evil\\nRemoved"), "{out}");
    assert!(
        lines[1].starts_with("Removed old backup: d/backups/evil\\nRemoved"),
        "{out}"
    );
}

#[test]
fn reindex_leaves_out_archives_the_manifest_could_not_hold() {
    use crate::util::{Raw, raw_archive};
    let env = Env::new();
    env.sample("s");
    let good = env.backup("s");
    let forged = "s_20260101_000000\nRemoved old backup: x.tar.gz";
    std::fs::copy(env.backups().join(&good), env.backups().join(forged)).unwrap();
    let dotdot = env.backups().join("dots_20260101_000000.tar.gz");
    raw_archive(&dotdot, &[Raw::dir("../"), Raw::file("../a", b"x")]);
    std::fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    let out = env.run_code(&["reindex"], 1);
    let stdout = crate::util::stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("\nRemoved"), "{stdout}");
    assert!(
        stderr.contains("not added s_20260101_000000\\nRemoved"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not added dots_20260101_000000.tar.gz"),
        "{stderr}"
    );
    assert_eq!(env.archives(), vec![good]);
    env.run(&["list"]);
}

#[test]
fn a_damaged_manifest_points_to_its_previous_version_and_reindex() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    env.backup("s");
    let manifest = env.backups().join("manifest.yaml");
    std::fs::write(&manifest, "backups: [oops\n").unwrap();
    let err = env.fail(&["list"], 2);
    assert!(
        err.contains("manifest.yaml.bak") && err.contains("resbak reindex"),
        "{err}"
    );
    std::fs::remove_file(env.backups().join("manifest.yaml.bak")).unwrap();
    let err = env.fail(&["list"], 2);
    assert!(
        !err.contains(".bak") && err.contains("resbak reindex"),
        "{err}"
    );
}

#[test]
fn a_failed_verify_suggests_a_fresh_backup_while_the_results_are_there() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    crate::util::flip_byte(&env.backups().join(&archive), 40);
    let err = env.fail(&["verify"], 1);
    assert!(err.contains("resbak backup --always s"), "{err}");
    std::fs::remove_dir_all(env.results().join("s")).unwrap();
    let err = env.fail(&["verify"], 1);
    assert!(!err.contains("backup --always"), "{err}");
}

#[test]
fn a_count_of_zero_says_it_must_be_at_least_one() {
    let env = Env::new();
    for args in [
        &["prune", "--keep", "0"][..],
        &["prune", "--keep-safety", "0"],
        &["backup", "--all", "--keep", "0"],
        &["backup", "--all", "--threads", "0"],
    ] {
        let err = env.fail(args, 2);
        assert!(
            err.contains("'0'") && err.contains("must be at least 1"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("18446744073709551615"), "{err}");
    }
}
