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
    assert_eq!(sums.lines().count(), 2, "{sums}");
    assert!(sums.contains(&gone));
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
