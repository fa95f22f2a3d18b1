use crate::util::{Env, write};
use std::fs;
use std::process::Command;

#[test]
fn precedence_is_flag_then_env_then_file_then_default() {
    let env = Env::new();
    for dir in ["r_flag", "r_env", "r_file", "results"] {
        write(&env.path().join(dir).join("s/a.csv"), dir);
    }
    fs::write(
        env.path().join("resbak.toml"),
        "results_dir = \"r_file\"\nbackup_dir = \"b_file\"\n",
    )
    .unwrap();
    let backed_up_from = |args: &[&str], env_value: Option<&str>| {
        let mut cmd = env.cmd(args);
        if let Some(v) = env_value {
            cmd.env("RESBAK_RESULTS_DIR", v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = env
            .cmd(&["config"])
            .envs(env_value.map(|v| ("RESBAK_RESULTS_DIR", v)))
            .output()
            .unwrap();
        String::from_utf8_lossy(&config.stdout).into_owned()
    };
    let config = backed_up_from(&["backup", "s", "--results-dir", "r_flag"], Some("r_env"));
    assert!(
        config.contains("r_env  (environment RESBAK_RESULTS_DIR)"),
        "{config}"
    );
    let config = backed_up_from(&["backup", "s"], None);
    assert!(config.contains("r_file  (resbak.toml)"), "{config}");
    assert!(
        config.contains("backup_dir   b_file  (resbak.toml)"),
        "{config}"
    );
    let m: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(env.path().join("b_file/manifest.yaml")).unwrap())
            .unwrap();
    assert_eq!(m["backups"].as_sequence().unwrap().len(), 2);
    // Which folder each backup came from: restore both and read the marker file.
    for (i, expected) in ["r_flag", "r_file"].iter().enumerate() {
        let name = m["backups"][i]["backup_file"].as_str().unwrap();
        let to = format!("out{i}");
        env.run(&["restore", name, "--to", &to]);
        assert_eq!(
            fs::read_to_string(env.path().join(&to).join("a.csv")).unwrap(),
            *expected
        );
    }
    fs::remove_file(env.path().join("resbak.toml")).unwrap();
    let config = env.run(&["config"]);
    assert!(
        config.contains("results_dir  results  (default)"),
        "{config}"
    );
}

#[test]
fn bad_config_is_a_one_line_error() {
    let env = Env::new();
    fs::write(env.path().join("resbak.toml"), "kep = 3\n").unwrap();
    let err = env.fail(&["list"], 2);
    assert!(err.contains("resbak.toml") && err.contains("kep"), "{err}");
    let err = env.fail(&["list", "--config", "nope.toml"], 2);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn the_nearest_resbak_toml_in_a_parent_folder_is_used() {
    let env = Env::new();
    write(&env.path().join("r/s/a.csv"), "from r");
    fs::write(
        env.path().join("resbak.toml"),
        "results_dir = \"r\"\nbackup_dir = \"b\"\n",
    )
    .unwrap();
    let deep = env.path().join("notebooks/today");
    fs::create_dir_all(&deep).unwrap();
    let run = |args: &[&str]| {
        let out = env.cmd(args).current_dir(&deep).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let config = run(&["config"]);
    let root = env.path().canonicalize().unwrap();
    let file = root.join("resbak.toml");
    assert!(
        config.contains(&format!("config file  {}", file.display())),
        "{config}"
    );
    assert!(
        config.contains(&format!("results_dir  {}", root.join("r").display())),
        "{config}"
    );
    run(&["backup", "s"]);
    let manifest = fs::read_to_string(env.path().join("b/manifest.yaml")).unwrap();
    assert!(manifest.contains("strategy: s"), "{manifest}");
}

/// A backup folder inside the results is never archived: `--all` skips the folder that holds
/// it, and a strategy that holds it is refused, so no backup holds the ones before it.
#[test]
fn a_backup_folder_inside_the_results_is_never_archived() {
    let env = Env::new();
    env.sample("s");
    let inside = ["--backup-dir", "results/_bk"];
    let all = |code| {
        env.run_code(
            &[&inside[..], &["backup", "--all", "--always"]].concat(),
            code,
        )
    };
    all(0);
    let out = all(0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped _bk: it is the backup folder"),
        "{err}"
    );
    let archives: Vec<_> = fs::read_dir(env.results().join("_bk"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 2, "only s, twice: {archives:?}");
    assert!(archives.iter().all(|n| n.starts_with("s_")), "{archives:?}");
    let nested = ["--backup-dir", "results/s/runs/bk"];
    let out = env.run_code(&[&nested[..], &["backup", "s"]].concat(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds the backup folder"), "{err}");
    let made = env.results().join("s/runs/bk");
    assert!(
        !made.exists(),
        "the refused backup made its folder inside s"
    );
    // With several strategies, one that holds the backup folder is a failure, not a note: the
    // run exits 1 and the JSON report names it.
    env.sample("t");
    let out = env.run_code(&[&nested[..], &["--json", "backup", "--all"]].concat(), 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str| {
        let rows = report.as_array().unwrap();
        let row = rows.iter().find(|r| r["strategy"] == name);
        row.map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("s").as_deref(), Some("failed"), "{report}");
    assert_eq!(status("t").as_deref(), Some("backed_up"), "{report}");
    let out = env.run_code(&[&nested[..], &["backup", "s", "--dry-run"]].concat(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds the backup folder"), "{err}");
}

/// `results/s/` as a shell completes it: the trailing slash does not make the name invalid.
#[test]
fn a_strategy_name_with_a_trailing_slash_is_the_strategy() {
    let env = Env::new();
    env.sample("s");
    env.run(&["backup", "s/"]);
    env.run(&["list", "s/"]);
    env.run(&["prune", "s/", "--keep", "1"]);
    env.run_code(&["backup", "/"], 2);
}

#[test]
fn a_configuration_that_does_not_parse_says_where() {
    let env = Env::new();
    write(
        &env.path().join("resbak.toml"),
        "keep = 3\nlevel = \"six\"\n",
    );
    let err = env.fail(&["config"], 2);
    assert!(err.contains("resbak.toml: line 2, column 9:"), "{err}");
}

/// `reindex` where there is no backup folder names it, like every other command.
#[test]
fn reindex_without_a_backup_folder_names_it() {
    let env = Env::new();
    let out = env.run_code(&["--json", "reindex"], 2);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["error"]["kind"], "missing_folder", "{value}");
}

/// Run from inside the results folder, a `resbak.toml` found in a parent folder gives the
/// default folders beside it (an empty file too); folders given with a flag or variable stay
/// relative to the current folder.
#[test]
fn default_folders_of_a_found_resbak_toml_are_beside_it_flags_stay_relative_to_here() {
    let env = Env::new();
    env.sample("s");
    fs::write(env.path().join("resbak.toml"), "keep = 5\n").unwrap();
    let inside = env.results().join("s");
    let run = |cmd: &mut Command| {
        let out = cmd.current_dir(&inside).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&mut env.cmd(&["backup", "s"]));
    let manifest = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    assert!(manifest.contains("strategy: s"), "{manifest}");
    assert!(run(&mut env.cmd(&["list"])).contains("s_"));
    // A flag is relative to the current folder: here, results/s/runs.
    let args = [
        "--results-dir",
        "runs",
        "--backup-dir",
        "here",
        "backup",
        "--all",
    ];
    run(&mut env.cmd(&args));
    assert!(inside.join("here/manifest.yaml").is_file());
    let manifest = fs::read_to_string(inside.join("here/manifest.yaml")).unwrap();
    assert!(manifest.contains("strategy: fast10_slow50"), "{manifest}");
    // So is a variable.
    run(env
        .cmd(&["--results-dir", "runs", "backup", "--all"])
        .env("RESBAK_BACKUP_DIR", "there"));
    assert!(inside.join("there/manifest.yaml").is_file());
}
