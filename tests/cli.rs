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
