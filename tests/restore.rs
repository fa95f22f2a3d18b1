use crate::util::{Env, Raw, flip_byte, raw_archive, snapshot, write};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use tar::EntryType;

#[test]
fn round_trip_restores_a_byte_identical_tree() {
    let env = Env::new();
    let root = env.sample("btc_sma_cross");
    let before = snapshot(&root);
    let archive = env.backup("btc_sma_cross");
    env.run(&["list"]);
    env.run(&["verify"]);
    fs::remove_dir_all(&root).unwrap();
    let out = env.run(&["restore", &archive]);
    assert!(out.contains("Restored"), "{out}");
    assert_eq!(snapshot(&root), before);
    assert_no_leftovers(&env.results());
}

#[test]
fn restore_by_path_and_into_another_folder() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    env.run(&["restore", path.to_str().unwrap(), "--to", "copy/of_s"]);
    assert_eq!(snapshot(&env.path().join("copy/of_s")), snapshot(&root));
}

#[test]
fn existing_destination_needs_force_and_is_backed_up_first() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let original = snapshot(&root);
    write(&root.join("new_run.csv"), "newer results\n");
    let changed = snapshot(&root);

    let err = env.fail(&["restore", &archive], 2);
    assert!(
        err.contains("already exists") && err.contains("--force to back it up and replace it"),
        "{err}"
    );
    // With --include, --force merges: the message says so rather than "replace".
    let err = env.fail(&["restore", &archive, "--include", "*.json"], 2);
    assert!(
        err.contains("--force to back it up and merge what --include picks into it"),
        "{err}"
    );
    assert_eq!(snapshot(&root), changed, "untouched without --force");

    let out = env.run(&["restore", &archive, "--force"]);
    assert_eq!(snapshot(&root), original);
    let archives = env.archives();
    assert_eq!(
        archives.len(),
        2,
        "the replaced folder became a listed backup"
    );
    assert!(out.contains(&archives[1]), "{out}");
    let saved = archives[1].clone();
    fs::remove_dir_all(&root).unwrap();
    env.run(&["restore", &saved]);
    assert_eq!(
        snapshot(&root),
        changed,
        "the pre-restore backup holds the replaced folder"
    );
    assert_no_leftovers(&env.results());
    let kept = crate::util::names_with_prefix(&env.results(), "s.replaced-");
    assert!(kept.is_empty(), "unchanged since its safety copy: removed");
}

#[test]
fn corrupt_archive_is_refused_and_results_stay() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let before = snapshot(&root);
    let err = env.fail(&["restore", &archive, "--force"], 1);
    assert!(err.contains(&archive) && err.contains("corrupt"), "{err}");
    assert_eq!(snapshot(&root), before);
    fs::remove_dir_all(&root).unwrap();
    env.fail(&["restore", &archive], 1);
    assert!(!root.exists(), "nothing restored from a corrupt archive");
    assert_no_leftovers(&env.results());
}

#[test]
fn uncatalogued_archive_restores_with_a_warning() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let loose = env.path().join("loose.tar.gz");
    fs::copy(env.backups().join(&archive), &loose).unwrap();
    let before = snapshot(&root);
    fs::remove_dir_all(&root).unwrap();
    let out = env.run_code(&["restore", "loose.tar.gz", "--to", "out"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the manifest"), "{err}");
    assert_eq!(snapshot(&env.path().join("out")), before);
    env.run(&["restore", "./loose.tar.gz"]);
    assert_eq!(snapshot(&root), before);
}

/// Every hostile archive is refused with the offending entry named, nothing is written outside
/// the destination, and an existing results folder stays as it was.
#[test]
fn hostile_entries_are_refused() {
    let cases: Vec<(&str, Vec<Raw>)> = vec![
        (
            "/tmp/evil",
            vec![Raw::dir("s"), Raw::file("/tmp/evil", b"x")],
        ),
        (
            "s/../evil",
            vec![Raw::dir("s"), Raw::file("s/../evil", b"x")],
        ),
        (
            "other/evil",
            vec![Raw::dir("s"), Raw::file("other/evil", b"x")],
        ),
        (
            "s/up",
            vec![
                Raw::dir("s"),
                Raw::link("s/up", EntryType::Symlink, "../.."),
            ],
        ),
        (
            "s/abs",
            vec![
                Raw::dir("s"),
                Raw::link("s/abs", EntryType::Symlink, "/etc/passwd"),
            ],
        ),
        (
            "s/hard",
            vec![
                Raw::dir("s"),
                Raw::link("s/hard", EntryType::Link, "/etc/passwd"),
            ],
        ),
        (
            "s/l/evil",
            vec![
                Raw::dir("s"),
                Raw::link("s/l", EntryType::Symlink, "sub"),
                Raw::dir("s/sub"),
                Raw::file("s/l/evil", b"x"),
            ],
        ),
        (
            "s/dev",
            vec![Raw::dir("s"), Raw::special("s/dev", EntryType::Char)],
        ),
        (
            "s/fifo",
            vec![Raw::dir("s"), Raw::special("s/fifo", EntryType::Fifo)],
        ),
        (
            "s/a",
            vec![
                Raw::dir("s"),
                Raw::file("s/a", b"1"),
                Raw::file("s/a", b"2"),
            ],
        ),
    ];
    for (entry, entries) in cases {
        let env = Env::new();
        let root = env.sample("s");
        let archive = env.path().join("hostile.tar.gz");
        raw_archive(&archive, &entries);
        let (paths, results) = (env.tree(), snapshot(&root));
        let args = [
            "restore",
            archive.to_str().unwrap(),
            "--to",
            "results/restored",
        ];
        let err = env.fail(&args, 1);
        assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
        assert_eq!(env.tree(), paths, "{entry}: nothing written");
        assert_eq!(snapshot(&root), results, "{entry}: results untouched");
        assert!(root.join("trades.csv").is_file());
        assert!(!std::path::Path::new("/tmp/evil").exists());
    }
}

fn assert_no_leftovers(dir: &std::path::Path) {
    let stray: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".resbak"))
        .collect();
    assert!(stray.is_empty(), "temporary folders left: {stray:?}");
}

#[test]
fn include_restores_only_the_chosen_paths() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let args = [
        "restore",
        &archive,
        "--to",
        "part",
        "--include",
        "runs/fast10_slow50",
        "--include",
        "*.json",
    ];
    let dry = env.run(&[&args[..], &["--dry-run"]].concat());
    let out = env.run(&args);
    assert!(out.contains("Restored"), "{out}");
    let part = env.path().join("part");
    let full = snapshot(&root);
    let got = snapshot(&part);
    for path in [
        "runs/fast10_slow50/params.json",
        "runs/fast10_slow50/trades.csv",
        "metrics.json",
    ] {
        assert_eq!(
            got.get(std::path::Path::new(path)),
            full.get(std::path::Path::new(path)),
            "{path}"
        );
    }
    for path in ["trades.csv", "scripts/rerun.sh", "plots/empty"] {
        assert!(!part.join(path).exists(), "{path} should not be restored");
    }
    // The summary tells the files from the folders above them.
    let kinds: Vec<_> = walkdir::WalkDir::new(&part)
        .into_iter()
        .map(|e| e.unwrap().file_type())
        .collect();
    let folders = kinds.iter().filter(|t| t.is_dir()).count();
    let links = kinds.iter().filter(|t| t.is_symlink()).count();
    let files = kinds.len() - folders - links;
    let counts = format!(
        "{} entries ({files} files, {folders} folders, {links} link)",
        kinds.len()
    );
    assert!(out.contains(&counts), "{counts}: {out}");
    let would = format!("Would restore {} entries", kinds.len());
    assert!(dry.contains(&would), "{would}: {dry}");
}

/// The folders above an included file come back with their stored mode and times, as in a
/// full restore, not the defaults of a new folder; into a folder that exists they are filled.
#[test]
fn include_gives_the_folders_above_a_file_their_stored_mode() {
    let env = Env::new();
    let root = env.sample("s");
    let private = root.join("private/deeper");
    fs::create_dir_all(&private).unwrap();
    fs::write(private.join("p.txt"), "x\n").unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o500)).unwrap();
    let secs = |p: &std::path::Path| {
        let t = fs::metadata(p).unwrap().modified().unwrap();
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    };
    let stored = secs(&root.join("private"));
    let archive = env.backup("s");
    let include = ["--include", "private/deeper/p.txt"];
    env.run(&[&["restore", &archive, "--to", "part"][..], &include].concat());
    let part = env.path().join("part/private");
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&part), 0o700);
    assert_eq!(mode(&part.join("deeper")), 0o500);
    assert_eq!(secs(&part), stored);
    assert_eq!(
        fs::read_to_string(part.join("deeper/p.txt")).unwrap(),
        "x\n"
    );
    // Into the live folder, which has them: filled, keeping its own folders.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(private.join("p.txt")).unwrap();
    env.run(&[&["restore", &archive, "--force"][..], &include].concat());
    assert_eq!(fs::read_to_string(private.join("p.txt")).unwrap(), "x\n");
    assert_eq!(mode(&private), 0o700);
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    fs::remove_dir_all(&root).unwrap();
    let out = env.run(&["restore", &archive, "--dry-run", "--include", "scripts"]);
    assert!(out.contains("results/s/scripts/rerun.sh"), "{out}");
    assert!(!out.contains("trades.csv"), "{out}");
    assert!(out.contains("Would restore 3 entries"), "{out}");
    assert!(!root.exists());
}

#[test]
fn force_backs_up_everything_even_configured_excludes() {
    let env = Env::new();
    let root = env.sample("s");
    fs::write(env.path().join("resbak.toml"), "exclude = [\"*.tmp\"]\n").unwrap();
    let archive = env.backup("s");
    write(&root.join("notes.tmp"), "only copy of my notes\n");
    env.run(&["restore", &archive, "--force"]);
    assert!(!root.join("notes.tmp").exists());
    let saved = env.archives().pop().unwrap();
    env.run(&["restore", &saved, "--to", "saved"]);
    let notes = fs::read_to_string(env.path().join("saved/notes.tmp")).unwrap();
    assert_eq!(notes, "only copy of my notes\n");
}

#[test]
fn a_catalogued_archive_that_is_gone_is_a_data_problem() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    fs::remove_file(env.backups().join(&archive)).unwrap();
    let err = env.fail(&["restore", &archive, "--to", "out"], 1);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn dry_run_applies_the_policy_and_the_checksum() {
    let env = Env::new();
    env.sample("s");
    let hostile = env.path().join("hostile.tar.gz");
    raw_archive(
        &hostile,
        &[
            Raw::dir("s"),
            Raw::link("s/up", EntryType::Symlink, "../.."),
        ],
    );
    // --to a new folder: over the existing results/s the dry run refuses first, as a real run.
    let hostile = hostile.to_str().unwrap();
    let err = env.fail(&["restore", hostile, "--dry-run", "--to", "out"], 1);
    assert!(err.contains("s/up"), "{err}");
    let archive = env.backup("s");
    flip_byte(&env.backups().join(&archive), 200);
    env.fail(&["restore", &archive, "--dry-run", "--to", "out"], 1);
}

#[test]
fn a_foreign_damaged_manifest_beside_an_archive_is_ignored() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    fs::copy(
        env.backups().join(&archive),
        env.path().join("loose.tar.gz"),
    )
    .unwrap();
    fs::write(env.path().join("manifest.yaml"), "not: [a manifest\n").unwrap();
    let before = snapshot(&root);
    let out = env.run_code(&["restore", "./loose.tar.gz", "--to", "out"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the manifest"));
    assert_eq!(snapshot(&env.path().join("out")), before);
}

#[test]
fn a_pax_global_header_before_the_top_folder_is_skipped() {
    let env = Env::new();
    let archive = env.path().join("pax.tar.gz");
    let mut global = Raw::file("pax_global_header", b"");
    global.kind = EntryType::XGlobalHeader;
    raw_archive(
        &archive,
        &[global, Raw::dir("s"), Raw::file("s/a.csv", b"1,2\n")],
    );
    env.run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(env.results().join("s/a.csv")).unwrap(),
        "1,2\n"
    );
}

/// A destination that is, contains or lies inside the backup folder, the archive, the manifest
/// or the configuration file in use is refused before anything is touched, however it is
/// spelled (relative, with `..`, through a link, not existing yet).
#[test]
fn a_destination_overlapping_what_restore_keeps_is_refused() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    write(&env.path().join("conf/resbak.toml"), "level = 6\n");
    std::os::unix::fs::symlink(".", env.path().join("here")).unwrap();
    let config = ["--config", "conf/resbak.toml"];
    let cases: [(&str, &[&str]); 8] = [
        (".", &[]),
        ("here", &[]),
        ("backups", &[]),
        ("backups/new/s", &[]),
        ("new/../backups", &[]),
        ("here/backups/manifest.yaml", &[]),
        ("conf", &config),
        ("conf/resbak.toml", &config),
    ];
    for (to, extra) in cases {
        let before = (env.tree(), snapshot(env.path()));
        let mut args = vec!["restore", &archive, "--force", "--to", to];
        args.extend_from_slice(extra);
        let err = env.fail(&args, 2);
        assert!(err.contains("refusing to restore into"), "{to}: {err}");
        assert_eq!(err.lines().count(), 1, "{to}: one line: {err}");
        assert_eq!((env.tree(), snapshot(env.path())), before, "{to}: touched");
    }
    let by_path = env.backups().join(&archive);
    let err = env.fail(
        &[
            "restore",
            by_path.to_str().unwrap(),
            "--force",
            "--to",
            "backups",
        ],
        2,
    );
    assert!(err.contains("refusing to restore into"), "{err}");
}

/// An uncatalogued archive whose name says one strategy and whose folder says another goes
/// nowhere by default; `--to` settles it.
#[test]
fn an_archive_named_for_another_strategy_needs_to() {
    let env = Env::new();
    env.sample("b");
    let archive = env.backup("b");
    env.sample("a");
    let loose = env.path().join("a_20260101_000000.tar.gz");
    fs::copy(env.backups().join(&archive), &loose).unwrap();
    let before = (env.tree(), snapshot(&env.results()));
    let err = env.fail(&["restore", loose.to_str().unwrap(), "--force"], 2);
    assert!(
        err.contains("\"a\"") && err.contains("\"b\"") && err.contains("--to"),
        "{err}"
    );
    assert_eq!((env.tree(), snapshot(&env.results())), before);
    env.run(&["restore", loose.to_str().unwrap(), "--to", "elsewhere"]);
    assert!(env.path().join("elsewhere/trades.csv").is_file());
}

/// A `restore --include --force` killed while it merges leaves its note beside the folder
/// (`.resbak-merging-NAME`): every later backup and restore says the folder is part restored,
/// naming the safety copy and the command that finishes it, until that restore (same archive,
/// same patterns) or a whole one completes. Another restore into it, a backup of it, or the
/// same patterns from another archive leave the note. A merge that completes leaves none.
#[test]
fn a_merge_cut_short_is_said_until_that_restore_completes() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("metrics.json"), "{}");
    env.run(&["restore", &archive, "--force", "--include", "metrics.json"]);
    let note = env.results().join(".resbak-merging-s");
    assert!(!note.exists(), "{}", env.tree());
    // As a kill during that merge leaves it.
    let text = format!(
        "before: s_19700101_000000.safety.tar.gz\narchive: {archive}\ninclude: metrics.json\n"
    );
    fs::write(&note, text).unwrap();
    let said = format!(
        "results/s is part restored: a restore --include into it was interrupted \
         (s_19700101_000000.safety.tar.gz holds it as it was before); `resbak restore \
         '{archive}' --to 'results/s' --include 'metrics.json' --force` finishes it"
    );
    let stderr = |out: std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let err = stderr(env.run_code(&["backup", "s", "--always"], 0));
    assert!(err.contains(&said), "{err}");
    for other in [
        vec![
            "restore",
            archive.as_str(),
            "--force",
            "--include",
            "trades.csv",
        ],
        vec!["restore", "s", "--force", "--include", "metrics.json"],
    ] {
        let err = stderr(env.run_code(&other, 0));
        assert!(err.contains(&said) && note.exists(), "{other:?}: {err}");
    }
    let finish = [
        "restore",
        &archive,
        "--to",
        "results/s",
        "--include",
        "metrics.json",
        "--force",
    ];
    env.run(&finish);
    assert!(!note.exists(), "{}", env.tree());
    let err = stderr(env.run_code(&["backup", "s", "--always"], 0));
    assert!(!err.contains("part restored"), "{err}");
}

/// With `--include`, a forced restore into a live folder creates or overwrites only the
/// matching paths and leaves every other file as it was; what it overwrites is backed up.
#[test]
fn include_into_a_live_folder_touches_only_the_matching_paths() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let original = snapshot(&root);
    for i in 0..20 {
        write(&root.join(format!("runs/new_{i}.csv")), "later run\n");
    }
    write(&root.join("trades.csv"), "edited since\n");
    write(&root.join("metrics.json"), "{}");
    fs::remove_dir_all(root.join("scripts")).unwrap();
    let live = snapshot(&root);

    let out = env.run(&[
        "restore",
        &archive,
        "--force",
        "--dry-run",
        "--include",
        "metrics.json",
        "--include",
        "scripts",
    ]);
    assert!(
        out.contains("overwrite  ") && out.contains("results/s/metrics.json"),
        "{out}"
    );
    assert!(
        out.contains("create     ") && out.contains("results/s/scripts/rerun.sh"),
        "{out}"
    );
    assert!(!out.contains("trades.csv"), "{out}");
    assert_eq!(snapshot(&root), live, "a dry run writes nothing");

    let out = env.run(&[
        "restore",
        &archive,
        "--force",
        "--include",
        "metrics.json",
        "--include",
        "scripts",
    ]);
    assert!(
        out.contains("as safety copy") && out.contains("before overwriting files in it"),
        "nothing is replaced: {out}"
    );
    assert!(!out.contains("before replacing it"), "{out}");
    let now = snapshot(&root);
    for (path, desc) in &live {
        let picked = path.starts_with("metrics.json") || path.starts_with("scripts");
        if !picked && !path.as_os_str().is_empty() {
            assert_eq!(now.get(path), Some(desc), "{path:?} was touched");
        }
    }
    for path in ["metrics.json", "scripts", "scripts/rerun.sh"] {
        let path = std::path::Path::new(path);
        assert_eq!(now.get(path), original.get(path), "{path:?} restored");
    }
    assert_eq!(
        now.len(),
        live.len() + 2,
        "only scripts/ and its file added"
    );
    let saved = env.archives().pop().unwrap();
    env.run(&["restore", &saved, "--to", "saved"]);
    assert_eq!(snapshot(&env.path().join("saved")), live, "the safety copy");
    assert_no_leftovers(&env.results());
}

/// With `--include` into a live folder, a path the archive and the folder hold as different
/// kinds (a file for a folder, a folder for a file, a link where the archive has a folder or
/// that a path would go through) is refused alike by the dry run and the real run, with the
/// same message and exit code, and before any safety copy is written.
#[test]
fn include_conflicts_are_refused_by_the_dry_run_and_before_any_safety_copy() {
    type Change = fn(&std::path::Path, &std::path::Path);
    let cases: [(&str, &str, &str, Change); 4] = [
        (
            "runs/fast10_slow50",
            "runs/fast10_slow50",
            "the archive holds a folder where it has a file",
            |root, _| {
                fs::remove_dir_all(root.join("runs/fast10_slow50")).unwrap();
                write(&root.join("runs/fast10_slow50"), "file\n");
            },
        ),
        (
            "metrics.json",
            "metrics.json",
            "the archive holds a file where it has a folder",
            |root, _| {
                fs::remove_file(root.join("metrics.json")).unwrap();
                write(&root.join("metrics.json/inside.txt"), "file\n");
            },
        ),
        (
            "runs/fast10_slow50",
            "runs/fast10_slow50",
            "it is a link where the archive holds a folder",
            |root, other| {
                fs::remove_dir_all(root.join("runs/fast10_slow50")).unwrap();
                assert!(other.starts_with(root));
                std::os::unix::fs::symlink("../elsewhere", root.join("runs/fast10_slow50"))
                    .unwrap();
            },
        ),
        (
            "runs/fast10_slow50/params.json",
            "runs/fast10_slow50",
            "it is a link where the archive holds a folder",
            |root, other| {
                fs::remove_dir_all(root.join("runs/fast10_slow50")).unwrap();
                assert!(other.starts_with(root));
                std::os::unix::fs::symlink("../elsewhere", root.join("runs/fast10_slow50"))
                    .unwrap();
            },
        ),
    ];
    for (include, at, why, change) in cases {
        let env = Env::new();
        let root = env.sample("s");
        let archive = env.backup("s");
        // Another folder of the strategy: a link to it can go into a safety copy.
        let other = root.join("elsewhere");
        write(&other.join("params.json"), "elsewhere\n");
        write(&other.join("metrics.json"), "elsewhere\n");
        change(&root, &other);
        let before = (env.archives(), snapshot(&root), snapshot(&other));
        let expected = format!("cannot overwrite results/s/{at}: {why}");
        let args = ["restore", &archive, "--force", "--include", include];
        let dry = env.fail(&[&args[..], &["--dry-run"]].concat(), 2);
        assert!(dry.contains(&expected), "{include}: {dry}");
        let real = env.fail(&args, 2);
        assert_eq!(real, dry, "{include}: the same refusal");
        let after = (env.archives(), snapshot(&root), snapshot(&other));
        assert_eq!(after, before, "{include}: no safety copy, nothing written");
        assert_no_leftovers(&env.results());
    }
}

/// An `--include` pattern that matches nothing is named, exits 1 and touches nothing (not even
/// a safety copy is made).
#[test]
fn an_include_that_matches_nothing_touches_nothing() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("mine.csv"), "only here\n");
    // Lock files are empty coordination files, created on first use: not data. Creating one
    // changes the folder's mtime, so they are made before the snapshot.
    env.run(&["verify"]);
    let stored = || {
        let mut all = snapshot(env.path());
        all.retain(|p, _| p.extension().is_none_or(|e| e != "lock"));
        all
    };
    let before = stored();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["restore", &archive, "--force", "--include", "metrics.json"];
        args.extend_from_slice(&["--include", "no_such_file*"]);
        args.extend_from_slice(extra);
        let err = env.fail(&args, 1);
        assert!(
            err.contains("\"no_such_file*\"") && err.contains("matches nothing"),
            "{err}"
        );
        assert_eq!(stored(), before);
    }
}

/// A hard link that is included, pointing to a file that is not, comes back as a regular file
/// with the same bytes.
#[test]
fn an_included_hard_link_to_a_file_left_out_gets_its_bytes() {
    let env = Env::new();
    let archive = env.path().join("links.tar.gz");
    raw_archive(
        &archive,
        &[
            Raw::dir("s"),
            Raw::file("s/a.csv", b"the bytes\n"),
            Raw::dir("s/sub"),
            Raw::link("s/sub/b.csv", EntryType::Link, "s/a.csv"),
            Raw::link("s/sub/c.csv", EntryType::Link, "s/a.csv"),
        ],
    );
    env.run(&[
        "restore",
        archive.to_str().unwrap(),
        "--to",
        "out",
        "--include",
        "sub",
    ]);
    let out = env.path().join("out");
    assert!(!out.join("a.csv").exists());
    for name in ["sub/b.csv", "sub/c.csv"] {
        assert_eq!(fs::read(out.join(name)).unwrap(), b"the bytes\n", "{name}");
    }
}

/// A pipe whose buffer is already full: a child writing its report to it stops at its first
/// line until the reader drains it. `restore --force` prints its first line right after the
/// safety copy, before extracting, so this holds it at that point without any timing.
pub fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    use std::io::Write;
    let (reader, mut writer) = std::io::pipe().unwrap();
    let flags = fcntl_getfl(&writer).unwrap();
    fcntl_setfl(&writer, flags | OFlags::NONBLOCK).unwrap();
    for chunk in [4096, 1] {
        loop {
            match writer.write(&vec![b'.'; chunk]) {
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling a pipe: {e}"),
            }
        }
    }
    fcntl_setfl(&writer, flags).unwrap();
    (reader, writer)
}

/// A file written between the safety copy and the swap is in neither the safety copy nor the
/// restored folder: the replaced folder is then kept beside the destination, not deleted.
#[test]
fn a_file_written_after_the_safety_copy_is_kept() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let restored = snapshot(&root);
    write(&root.join("mine.csv"), "mine\n");
    let (code, err) =
        with_a_change_after_the_safety_copy(&env, &["restore", &archive, "--force"], || {
            write(&root.join("late.csv"), "written after the safety copy\n")
        });
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(snapshot(&root), restored);
    let kept = crate::util::names_with_prefix(&env.results(), "s.replaced-");
    assert_eq!(kept.len(), 1, "{err}");
    assert!(err.contains(&kept[0]), "{err}");
    let kept = env.results().join(&kept[0]);
    let late = fs::read_to_string(kept.join("late.csv")).unwrap();
    assert_eq!(late, "written after the safety copy\n");
    assert_eq!(fs::read_to_string(kept.join("mine.csv")).unwrap(), "mine\n");
    assert_no_leftovers(&env.results());
}

/// Two regular backups of `s` (the second with a changed metrics file), then a safety copy,
/// newer than both, made when the first replaces changed results. Returns the archive names
/// (first, second, safety copy) and the tree each holds.
fn history(env: &Env) -> ([String; 3], [Tree; 3]) {
    let root = env.sample("s");
    let first = env.backup("s");
    let first_tree = snapshot(&root);
    write(&root.join("metrics.json"), "{\"sharpe\": 2.0}");
    let second = env.backup("s");
    let second_tree = snapshot(&root);
    write(&root.join("extra.csv"), "x\n");
    let safety_tree = snapshot(&root);
    env.run(&["restore", &first, "--force"]);
    let archives = env.archives();
    assert_eq!(archives.len(), 3, "{archives:?}");
    assert_eq!(env.manifest()["backups"][2]["kind"], "safety");
    let names = [first, second, archives[2].clone()];
    (names, [first_tree, second_tree, safety_tree])
}

type Tree = std::collections::BTreeMap<std::path::PathBuf, String>;

#[test]
fn a_strategy_name_restores_its_newest_regular_backup_never_a_safety_copy() {
    let env = Env::new();
    let ([_, second, _], [_, second_tree, _]) = history(&env);
    let out = env.run(&["restore", "s", "--force"]);
    assert!(
        out.starts_with(&format!("Restoring {second} (newest backup of s)\n")),
        "{out}"
    );
    assert_eq!(snapshot(&env.results().join("s")), second_tree);
    let out = env.run(&["restore", "s~0", "--to", "zero"]);
    assert!(out.contains("(newest backup of s)"), "{out}");
    assert_eq!(snapshot(&env.path().join("zero")), second_tree);
    let json = env.run(&["restore", "s", "--to", "as_json", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["archive"], format!("backups/{second}"));
}

#[test]
fn strategy_tilde_n_counts_back_from_the_newest_and_out_of_range_is_an_error() {
    let env = Env::new();
    let ([first, ..], [first_tree, ..]) = history(&env);
    let out = env.run(&["restore", "s~1", "--to", "one"]);
    assert!(
        out.starts_with(&format!(
            "Restoring {first} (1 before the newest backup of s)\n"
        )),
        "{out}"
    );
    assert_eq!(snapshot(&env.path().join("one")), first_tree);
    for arg in ["s~2", "s~99999999999999999999999"] {
        let err = env.fail(&["restore", arg, "--to", "two"], 2);
        assert!(
            err.contains(&format!("{arg} is out of range"))
                && err.contains("has 2 regular backups in backups"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!env.path().join("two").exists());
}

/// With one regular backup, the range of `~N` names the only one rather than a newest and an
/// oldest that are the same.
#[test]
fn tilde_n_out_of_range_with_one_backup_names_the_only_one() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let err = env.fail(&["restore", "s~1", "--to", "one"], 2);
    assert!(
        err.contains("has 1 regular backup in backups (~0 is the only one)"),
        "{err}"
    );
}

#[test]
fn a_strategy_with_only_safety_copies_has_no_regular_backup() {
    let env = Env::new();
    history(&env);
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let backups = value["backups"].as_sequence_mut().unwrap();
    backups.retain(|e| e["kind"] == "safety");
    fs::write(&manifest, serde_yaml::to_string(&value).unwrap()).unwrap();
    let err = env.fail(&["restore", "s", "--to", "out"], 2);
    assert!(
        err.contains("strategy \"s\" has no regular backup in backups, only 1 safety copy"),
        "{err}"
    );
    assert!(!env.path().join("out").exists());
}

#[test]
fn unknown_names_get_suggestions_and_an_archive_name_wins_over_a_strategy() {
    let env = Env::new();
    env.sample("btc_sma_cross");
    let archive = env.backup("btc_sma_cross");
    let err = env.fail(&["restore", "btc_sma_cros"], 2);
    assert!(
        err.contains("no backup or strategy named \"btc_sma_cros\" in backups")
            && err.contains("did you mean \"btc_sma_cross\"?"),
        "{err}"
    );
    let err = env.fail(&["restore", "btc_sma_cros~1"], 2);
    assert!(err.contains("did you mean \"btc_sma_cross~1\"?"), "{err}");
    let stem = archive.strip_suffix(".tar.gz").unwrap();
    let typo = format!("{}x", &stem[..stem.len() - 1]);
    let err = env.fail(&["restore", &typo], 2);
    assert!(err.contains(&format!("did you mean \"{stem}\"")), "{err}");
    // A strategy named like that archive: the archive name wins.
    let twin = env.sample(stem);
    write(&twin.join("twin_only.csv"), "t\n");
    env.backup(stem);
    let out = env.run(&["restore", stem, "--to", "picked"]);
    assert!(!out.contains("Restoring"), "{out}");
    let picked = env.path().join("picked");
    assert!(picked.join("trades.csv").is_file());
    assert!(!picked.join("twin_only.csv").exists(), "the archive won");
    let out = env.run(&["restore", &archive, "--to", "by_file_name"]);
    assert!(
        out.contains(&format!("Restored backups/{archive}")),
        "{out}"
    );
}

#[test]
fn dry_run_refuses_what_the_real_run_refuses() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    for args in [
        vec!["restore", archive.as_str()],
        vec!["restore", &archive, "--to", "backups/inside"],
    ] {
        let real = env.fail(&args, 2);
        let dry = env.fail(&[args.as_slice(), &["--dry-run"]].concat(), 2);
        assert_eq!(dry, real, "{args:?}");
    }
    write(&env.path().join("a_file"), "not a folder\n");
    let args = ["restore", &archive, "--force", "--to", "a_file"];
    let real = env.fail(&args, 2);
    assert_eq!(env.fail(&[&args[..], &["--dry-run"]].concat(), 2), real);
    // An archive named for another strategy than the folder it holds.
    fs::create_dir(env.path().join("loose")).unwrap();
    let renamed = "loose/t_20261122_012255.tar.gz";
    fs::copy(env.backups().join(&archive), env.path().join(renamed)).unwrap();
    let dry = env.fail(&["restore", renamed, "--dry-run"], 2);
    assert!(dry.contains("name the destination with --to"), "{dry}");
    assert_eq!(env.archives(), [archive], "nothing written");
    assert!(root.is_dir());
}

#[test]
fn dry_run_with_force_says_the_destination_would_be_backed_up_first() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("new_run.csv"), "newer results\n");
    let before = snapshot(&root);
    let out = env.run(&["restore", &archive, "--dry-run", "--force"]);
    assert!(
        out.contains("Would back up existing results/s as a safety copy, then replace it"),
        "{out}"
    );
    assert_eq!(snapshot(&root), before);
    assert_eq!(env.archives().len(), 1, "no safety copy made");
    // An empty destination is replaced without a safety copy, and the dry run says so.
    fs::create_dir(env.path().join("empty")).unwrap();
    let out = env.run(&["restore", &archive, "--dry-run", "--force", "--to", "empty"]);
    assert!(
        out.contains("Would replace the empty folder empty"),
        "{out}"
    );
    assert!(!out.contains("safety copy"), "{out}");
}

#[test]
fn a_picked_backup_is_announced_only_once_the_checks_passed() {
    let env = Env::new();
    let root = env.sample("s");
    env.backup("s");
    for args in [&["restore", "s"][..], &["restore", "s", "--dry-run"]] {
        let out = env.run_code(args, 2);
        let stdout = crate::util::stdout(&out);
        assert!(
            stdout.is_empty(),
            "{args:?} announced a refused restore: {stdout}"
        );
    }
    fs::remove_dir_all(&root).unwrap();
    let out = env.run(&["restore", "s"]);
    assert!(out.starts_with("Restoring s_"), "{out}");
}

#[test]
fn force_over_a_link_pointing_outside_is_refused_with_a_way_on() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    std::os::unix::fs::symlink("../../elsewhere", root.join("data")).unwrap();
    let before = snapshot(&root);
    let err = env.fail(&["restore", &archive, "--force"], 2);
    assert!(
        err.contains("its link data") && err.contains("move the link out of the folder"),
        "{err}"
    );
    assert!(
        !err.contains("--exclude"),
        "restore applies no excludes: {err}"
    );
    assert_eq!(
        env.fail(&["restore", &archive, "--force", "--dry-run"], 2),
        err
    );
    assert_eq!(snapshot(&root), before, "nothing replaced");
    assert_eq!(env.archives().len(), 1, "no safety copy made");
    fs::rename(root.join("data"), env.path().join("data")).unwrap();
    env.run(&["restore", &archive, "--force"]);
}

#[test]
fn the_results_folder_itself_is_never_a_destination() {
    let env = Env::new();
    env.sample("btc");
    env.sample("eth");
    let archive = env.backup("btc");
    let before = snapshot(&env.results());
    for dest in ["results", "results/", "./results", "results/btc/..", "."] {
        for dry in [&[][..], &["--dry-run"]] {
            let args = [&["restore", &archive, "--to", dest, "--force"][..], dry].concat();
            let err = env.fail(&args, 2);
            assert!(err.contains("refusing to restore into"), "{dest}: {err}");
            if dest != "." {
                assert!(
                    err.contains("is the results folder") && err.contains("results/btc"),
                    "{dest}: {err}"
                );
            }
        }
    }
    assert_eq!(snapshot(&env.results()), before, "every strategy untouched");
    assert_eq!(env.archives(), [archive], "no safety copy made");
}

#[test]
fn a_strategy_folder_replaced_by_another_strategys_archive_is_saved_under_its_own_name() {
    let env = Env::new();
    let btc = env.sample("btc");
    let eth = env.sample("eth");
    write(&eth.join("eth_only.csv"), "unsaved eth work\n");
    let eth_before = snapshot(&eth);
    let archive = env.backup("btc");
    let out = env.run(&["restore", &archive, "--to", "results/eth", "--force"]);
    let archives = env.archives();
    assert_eq!(archives.len(), 2, "{out}");
    let saved = &archives[1];
    assert!(saved.starts_with("eth_"), "{saved}");
    assert!(
        out.contains(&format!(
            "results/eth holds strategy eth; its safety copy is {saved}"
        )),
        "{out}"
    );
    let entry = &env.manifest()["backups"][1];
    assert_eq!(entry["strategy"].as_str(), Some("eth"));
    assert_eq!(entry["kind"].as_str(), Some("safety"));
    assert_eq!(
        snapshot(&eth),
        snapshot(&btc),
        "btc's files are in results/eth"
    );
    env.run(&["restore", saved, "--to", "eth_again"]);
    assert_eq!(snapshot(&env.path().join("eth_again")), eth_before);
}

#[test]
fn force_over_a_folder_its_newest_backup_holds_makes_no_new_safety_copy() {
    let env = Env::new();
    let root = env.sample("big");
    let archive = env.backup("big");
    let before = snapshot(&root);
    for _ in 0..2 {
        let out = env.run(&["restore", &archive, "--force"]);
        assert!(
            out.contains(&format!(
                "results/big is unchanged since {archive}; that backup keeps it"
            )),
            "{out}"
        );
        assert_eq!(
            env.archives(),
            std::slice::from_ref(&archive),
            "no new archive"
        );
        assert_eq!(snapshot(&root), before);
        let kept = crate::util::names_with_prefix(&env.results(), "big.replaced-");
        assert!(
            kept.is_empty(),
            "the replaced folder matched the backup: {kept:?}"
        );
    }
    let out = env.run(&["restore", &archive, "--force", "--dry-run"]);
    assert!(out.contains("Would make no safety copy"), "{out}");
    // A changed folder still gets its safety copy.
    write(&root.join("new_run.csv"), "newer results\n");
    let changed = snapshot(&root);
    env.run(&["restore", &archive, "--force"]);
    let archives = env.archives();
    assert_eq!(archives.len(), 2);
    assert_eq!(
        env.manifest()["backups"][1]["kind"].as_str(),
        Some("safety")
    );
    env.run(&["restore", &archives[1], "--to", "saved"]);
    assert_eq!(snapshot(&env.path().join("saved")), changed);
}

/// The safety copies of `strategy` in the manifest, in manifest order.
fn safety_copies(env: &Env) -> Vec<String> {
    let manifest = env.manifest();
    let entries = manifest["backups"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .filter(|e| e["kind"] == "safety")
        .map(|e| e["backup_file"].as_str().unwrap().to_string())
        .collect()
}

/// A forced restore from a damaged archive is refused before its safety copy: refused tries
/// add no copies, so retention never prunes the one copy that holds the user's edit.
#[test]
fn a_damaged_archive_is_refused_before_any_safety_copy() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("mine.csv"), "my edit\n");
    let edited = snapshot(&root);
    env.run(&["restore", &archive, "--force"]);
    let first = safety_copies(&env);
    assert_eq!(first.len(), 1, "the edit is in a safety copy");
    let path = env.backups().join(&archive);
    flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    let dry = env.fail(&["restore", &archive, "--force", "--dry-run"], 1);
    let errs: Vec<String> = (0..3)
        .map(|_| env.fail(&["restore", &archive, "--force"], 1))
        .collect();
    assert_eq!(safety_copies(&env), first, "no copy from a refused restore");
    for err in errs {
        assert!(err.contains(&archive) && err.contains("corrupt"), "{err}");
        assert_eq!(err, dry, "refused as the dry run refuses it");
    }
    assert_no_leftovers(&env.results());
    // Exit 1: the backup warns that its latest archive is damaged.
    env.run_code(&["backup", "s", "--keep", "2", "--keep-safety", "3"], 1);
    assert_eq!(
        safety_copies(&env),
        first,
        "the copy holding the edit is kept"
    );
    env.run(&["restore", &first[0], "--to", "check"]);
    assert_eq!(snapshot(&env.path().join("check")), edited);
}

/// A folder identical to an intact safety copy of its strategy gets no second copy; the
/// restore says which copy holds it.
#[test]
fn a_folder_an_intact_safety_copy_holds_gets_no_second_copy() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("mine.csv"), "my edit\n");
    let edited = snapshot(&root);
    env.run(&["restore", &archive, "--force"]);
    let copy = safety_copies(&env)[0].clone();
    // Back to the edit: unchanged since the regular backup, so no copy either.
    env.run(&["restore", &copy, "--force"]);
    assert_eq!(snapshot(&root), edited);
    assert_eq!(safety_copies(&env), std::slice::from_ref(&copy));
    let dry = env.run(&["restore", &archive, "--force", "--dry-run"]);
    assert!(
        dry.contains(&format!(
            "unchanged since {copy}; that safety copy already holds it"
        )),
        "{dry}"
    );
    let out = env.run(&["restore", &archive, "--force"]);
    assert!(
        out.contains(&format!(
            "unchanged since {copy}; that safety copy already holds it"
        )),
        "{out}"
    );
    assert_eq!(
        safety_copies(&env),
        std::slice::from_ref(&copy),
        "no second copy"
    );
    assert_no_leftovers(&env.results());
    let kept = crate::util::names_with_prefix(&env.results(), "s.replaced-");
    assert!(kept.is_empty(), "held by the copy: removed");
    // A damaged copy holds nothing: then a new one is made.
    env.run(&["restore", &copy, "--force"]);
    flip_byte(&env.backups().join(&copy), 100);
    env.run(&["restore", &archive, "--force"]);
    assert_eq!(
        safety_copies(&env).len(),
        2,
        "a new copy beside the damaged one"
    );
}

/// A forced restore into a folder nested inside a strategy folder is refused before anything
/// is touched: its safety copy would be filed under the wrong strategy. Directly in the results
/// folder, or outside it, is as before.
#[test]
fn a_forced_restore_nested_inside_a_strategy_folder_is_refused() {
    let env = Env::new();
    env.sample("btc");
    let eth = env.sample("eth");
    let archive = env.backup("btc");
    let before = snapshot(&eth);
    let archives = env.archives();
    for args in [
        vec!["restore", &archive, "--to", "results/eth/runs", "--force"],
        vec![
            "restore",
            &archive,
            "--to",
            "results/eth/runs",
            "--force",
            "--dry-run",
        ],
        vec![
            "restore",
            &archive,
            "--to",
            "results/eth/new/deeper",
            "--force",
        ],
    ] {
        let err = env.fail(&args, 2);
        assert!(
            err.contains("lies inside strategy eth's folder; restore into results/eth (with --include to restore part of it) or outside the results folder"),
            "{err}"
        );
        assert_eq!(snapshot(&eth), before, "{args:?}");
        assert_eq!(env.archives(), archives, "no safety copy: {args:?}");
    }
    env.run(&["restore", &archive, "--to", "results/eth", "--force"]);
    env.run(&["restore", &archive, "--to", "elsewhere/runs", "--force"]);
    env.run(&["restore", &archive, "--to", "elsewhere/runs", "--force"]);
}

/// A folder a swap waits in that holds only its marker (an interruption before the replaced
/// folder moved in) holds nothing of the user's: the next restore removes it and says nothing
/// about a replaced folder. One holding a replaced folder is still reported and kept.
#[test]
fn an_aside_folder_holding_only_its_marker_is_removed_by_the_next_restore() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    let empty = env.results().join(".resbak-replaced-AbC123");
    fs::create_dir(&empty).unwrap();
    write(&empty.join(".resbak-aside"), "marker\n");
    let full = env.results().join(".resbak-replaced-XyZ789");
    fs::create_dir_all(full.join("old")).unwrap();
    write(&full.join(".resbak-aside"), "marker\n");
    write(&full.join("old/mine.csv"), "mine\n");
    write(&root.join("mine.csv"), "my edit\n");
    let out = env.run_code(&["restore", &archive, "--force"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!empty.exists(), "removed: {err}");
    assert!(!err.contains(".resbak-replaced-AbC123"), "{err}");
    assert!(
        err.contains(".resbak-replaced-XyZ789 holds a folder replaced"),
        "{err}"
    );
    assert!(full.join("old/mine.csv").exists());
}

/// `--include --force` overwrites files only while the folder still holds what its safety copy
/// holds: a file written after the copy was taken makes it overwrite nothing (the copy stays).
#[test]
fn include_overwrites_nothing_once_the_folder_changed_after_its_safety_copy() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("metrics.json"), "{\"sharpe\": 9.9}");
    let args = ["restore", &archive, "--force", "--include", "metrics.json"];
    let (code, err) = with_a_change_after_the_safety_copy(&env, &args, || {
        write(&root.join("late.csv"), "written after the safety copy\n")
    });
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("changed after its safety copy"), "{err}");
    let metrics = fs::read_to_string(root.join("metrics.json")).unwrap();
    assert_eq!(metrics, "{\"sharpe\": 9.9}", "nothing overwritten");
    assert!(root.join("late.csv").is_file());
    assert_eq!(env.archives().len(), 2, "the safety copy is kept");
}

/// Runs resbak with `args` and standard output into a full pipe, so it stops at its first
/// report line; once its safety copy is registered (the line that follows it is held), runs
/// `meanwhile`, then lets it finish. Returns its exit code and standard error.
fn with_a_change_after_the_safety_copy(
    env: &Env,
    args: &[&str],
    meanwhile: impl FnOnce(),
) -> (Option<i32>, String) {
    use std::io::Read;
    let copies = env.archives().len();
    let (mut reader, writer) = full_pipe();
    let mut cmd = env.cmd(args);
    cmd.stdout(writer).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    crate::util::wait_for("the safety copy", || env.archives().len() > copies);
    meanwhile();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    let mut err = String::new();
    let mut stderr = child.stderr.take().unwrap();
    stderr.read_to_string(&mut err).unwrap();
    (child.wait().unwrap().code(), err)
}

#[test]
fn a_dry_run_reports_json_and_writes_nothing() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let out = env.run(&["restore", &archive, "--to", "out", "--dry-run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["destination"], "out");
    assert_eq!(report["safety_copy"], false);
    assert!(report["entries"].as_u64().unwrap() > 5, "{report}");
    assert_eq!(report["paths"][0]["action"], "restore");
    assert!(!env.path().join("out").exists());
}

/// A restore by strategy whose backup turns out damaged or gone names the next older backup not
/// known to be damaged (skipping one `verify` recorded as failed) as `STRATEGY~N`; none when
/// there is none.
#[test]
fn a_damaged_newest_backup_points_at_the_next_older_intact_one() {
    let env = Env::new();
    env.sample("s");
    let oldest = env.backup("s");
    let old = env.backup("s");
    let new = env.backup("s");
    for archive in [&old, &new] {
        let path = env.backups().join(archive);
        flip_byte(&path, fs::metadata(&path).unwrap().len() / 2);
    }
    env.run_code(&["verify", &old], 1);
    let err = env.fail(&["restore", "s", "--to", "out"], 1);
    assert!(
        err.contains(&format!("the next older backup, {oldest} (s~2)"))
            && err.contains("`resbak restore s~2 --to 'out'` restores it"),
        "{err}"
    );
    // The error first, then what to do about it.
    let lines: Vec<&str> = err.lines().collect();
    let error = lines.iter().position(|l| l.contains("is corrupt"));
    let hint = lines.iter().position(|l| l.starts_with("resbak: hint:"));
    assert!(error.is_some() && hint == Some(lines.len() - 1), "{err}");
    let err = env.fail(&["restore", "s~1", "--to", "out"], 1);
    assert!(err.contains("`resbak restore s~2 --to 'out'`"), "{err}");
    // The options given come with it.
    let err = env.fail(&["restore", "s", "--force", "--dry-run"], 1);
    assert!(
        err.contains("`resbak restore s~2 --force --dry-run`"),
        "{err}"
    );
    fs::remove_file(env.backups().join(&oldest)).unwrap();
    let err = env.fail(&["restore", "s", "--to", "out"], 1);
    assert!(!err.contains("hint"), "{err}");
}

/// A destination that is a file is refused with or without `--force`, naming the way out that
/// works (moving it away), not `--force`; the file is untouched.
#[test]
fn a_destination_that_is_a_file_is_refused_without_suggesting_force() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let file = env.path().join("afile");
    fs::write(&file, "mine\n").unwrap();
    for force in [false, true] {
        let mut args = vec!["restore", archive.as_str(), "--to", "afile"];
        if force {
            args.push("--force");
        }
        let err = env.fail(&args, 2);
        assert!(err.contains("not a folder; move it away first"), "{err}");
        assert!(!err.contains("use --force"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "mine\n");
    }
}

/// A failed restore leaves no folder it made for the destination behind (a damaged archive,
/// restored to a path whose parents do not exist yet).
#[test]
fn a_failed_restore_removes_the_folders_it_made_for_the_destination() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len / 2);
    env.fail(&["restore", &archive, "--to", "newparent/deeper/s"], 1);
    assert!(!env.path().join("newparent").exists(), "{}", env.tree());
    // An existing parent stays, as it was.
    fs::create_dir(env.path().join("mine")).unwrap();
    env.fail(&["restore", &archive, "--to", "mine/new/s"], 1);
    assert!(env.path().join("mine").is_dir());
    assert!(!env.path().join("mine/new").exists(), "{}", env.tree());
}

/// A strategy whose name ends like `~N` is that strategy for `restore` too, as for `backup`,
/// `list` and `verify`: not the N-th older backup of another.
#[test]
fn a_strategy_named_like_a_pick_is_that_strategy() {
    let env = Env::new();
    env.sample("alpha");
    env.backup("alpha");
    write(&env.results().join("alpha/stats.json"), "{\"v\": 2}");
    env.backup("alpha");
    let odd = env.results().join("alpha~1");
    fs::create_dir_all(&odd).unwrap();
    write(&odd.join("only.txt"), "the strategy alpha~1\n");
    env.backup("alpha~1");
    env.run(&["restore", "alpha~1", "--to", "out/alpha~1"]);
    let got = env.path().join("out/alpha~1/only.txt");
    assert_eq!(fs::read_to_string(got).unwrap(), "the strategy alpha~1\n");
}

/// An archive whose top folder is not the strategy its manifest entry names (an entry edited
/// by hand) is refused saying so, not as an entry lying outside the archive.
#[test]
fn an_archive_of_another_strategy_than_its_entry_says_is_named_as_such() {
    let env = Env::new();
    env.sample("s4");
    let archive = env.backup("s4");
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("strategy: s4", "strategy: s1")).unwrap();
    let err = env.fail(&["restore", &archive, "--to", "out/s1"], 1);
    assert!(
        err.contains("the archive's top folder is s4, not s1"),
        "{err}"
    );
}

/// Restored to its default place, an archive whose manifest entry names another strategy than
/// its file name is refused blaming the entry, not saying the archive holds that folder.
#[test]
fn a_mistyped_strategy_in_the_manifest_is_blamed_on_the_entry() {
    let env = Env::new();
    env.sample("s4");
    let archive = env.backup("s4");
    let manifest = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("strategy: s4", "strategy: s4x")).unwrap();
    let err = env.fail(&["restore", &archive, "--dry-run"], 2);
    assert!(
        err.contains(r#"is named for strategy "s4" but its manifest entry says strategy "s4x""#),
        "{err}"
    );
    assert!(!err.contains("holds the folder"), "{err}");
}

/// `restore --include` checks each file against the index as it writes it, not by reading it
/// back: a file stored without read permission (mode 000) restores for a user other than root,
/// who could not read it back. (As root, the restore runs as another user to show it.)
#[test]
fn include_restores_a_file_its_user_cannot_read_back() {
    let env = Env::new();
    let root = env.sample("s");
    let secret = root.join("secret.csv");
    fs::write(&secret, "a,b\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let archive = env.backup("s");
    let include = ["--include", "secret.csv"];
    let handed = hand_over(&env);
    let out = run_as(
        &env,
        &[&["restore", &archive, "--to", "out/s"][..], &include].concat(),
        handed,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = env.path().join("out/s/secret.csv");
    assert_eq!(
        fs::metadata(&restored).unwrap().permissions().mode() & 0o777,
        0
    );
}

/// Folders stored without read or search permission (modes 000 and 200) restore for a user
/// other than root: what was restored is counted as it is made, never by walking the result.
#[test]
fn folders_without_permissions_restore_for_another_user() {
    let env = Env::new();
    let root = env.sample("s");
    for (folder, mode) in [("d000", 0o000), ("d200", 0o200)] {
        write(&root.join(folder).join("f.txt"), "x\n");
        fs::set_permissions(root.join(folder), fs::Permissions::from_mode(mode)).unwrap();
    }
    let archive = env.backup("s");
    let handed = hand_over(&env);
    let out = run_as(&env, &["restore", &archive, "--to", "out/s"], handed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &str| {
        fs::metadata(env.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!((mode("out/s/d000"), mode("out/s/d200")), (0o000, 0o200));
}

/// `restore --force --include` into a live folder this user cannot write (a read-only folder
/// of theirs) is refused before anything is done: no safety copy, nothing moved, as its dry
/// run says.
#[test]
fn include_into_a_folder_its_user_cannot_write_is_refused_first() {
    let env = Env::new();
    let root = env.sample("s");
    let sub = root.join("ro/sub");
    write(&sub.join("f.txt"), "as backed up\n");
    let archive = env.backup("s");
    write(&sub.join("f.txt"), "changed since\n");
    let handed = hand_over(&env);
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o500)).unwrap();
    let before = env.archives();
    for extra in [&["--dry-run"][..], &[]] {
        let args = [
            &["restore", &archive, "--force", "--include", "ro/sub/f.txt"][..],
            extra,
        ];
        let out = run_as(&env, &args.concat(), handed);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains("cannot write into") && err.contains("ro/sub"),
            "{err}"
        );
    }
    assert_eq!(env.archives(), before, "no safety copy");
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        fs::read_to_string(sub.join("f.txt")).unwrap(),
        "changed since\n"
    );
}

/// `restore --include` of read-only folders (mode 555) that the destination lacks, for a user
/// other than root: moving a folder to a new parent needs it writable, so a restore that moved
/// them as stored stopped part way, with some files replaced and the rest not. Every entry is
/// in place, with the folders' stored modes, and the replaced file is the archive's.
#[test]
fn include_moves_read_only_folders_the_destination_lacks() {
    let env = Env::new();
    let root = env.sample("s");
    write(&root.join("ro/sub/f.txt"), "as backed up\n");
    write(&root.join("ro2/g.txt"), "also backed up\n");
    // The strategy folder too: entries move out of its staged copy.
    for folder in ["ro/sub", "ro", "ro2", ""] {
        fs::set_permissions(root.join(folder), fs::Permissions::from_mode(0o555)).unwrap();
    }
    let archive = env.backup("s");
    for folder in ["", "ro", "ro/sub", "ro2"] {
        fs::set_permissions(root.join(folder), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::remove_dir_all(root.join("ro")).unwrap();
    fs::remove_dir_all(root.join("ro2")).unwrap();
    write(&root.join("trades.csv"), "changed since\n");
    let handed = hand_over(&env);
    let args = ["restore", &archive, "--force", "--include", "*.csv"];
    let args = [&args[..], &["--include", "ro/**", "--include", "ro2/**"]].concat();
    let out = run_as(&env, &args, handed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode("ro"), mode("ro/sub"), mode("ro2")),
        (0o555, 0o555, 0o555)
    );
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("ro/sub/f.txt"), "as backed up\n");
    assert_eq!(read("ro2/g.txt"), "also backed up\n");
    assert!(read("trades.csv").starts_with("id,side"));
}

/// A strategy folder stored read-only (mode 555) restores whole for a user other than root,
/// new and over an existing folder: the staged folder moves to the destination's parent, which
/// needs it writable while it moves.
#[test]
fn a_read_only_strategy_folder_restores_for_another_user() {
    let env = Env::new();
    let root = env.sample("s");
    fs::set_permissions(&root, fs::Permissions::from_mode(0o555)).unwrap();
    let archive = env.backup("s");
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    let handed = hand_over(&env);
    for args in [&["--to", "out/s"][..], &["--force"]] {
        let out = run_as(&env, &[&["restore", &archive][..], args].concat(), handed);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for folder in [env.path().join("out/s"), root] {
        let mode = fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o555, "{}", folder.display());
        assert!(folder.join("runs/fast10_slow50/params.json").is_file());
    }
}

/// A forced restore whose replaced folder holds something its user cannot remove (a folder a
/// container made as root) restores, warns, and leaves the rest marked as resbak's, so that
/// `backup --all` does not take it for a strategy. (Needs root to make such a folder.)
#[test]
fn a_replaced_folder_that_cannot_be_removed_whole_stays_marked() {
    let env = Env::new();
    let root = env.sample("s");
    write(&root.join("dockerout/log.txt"), "made by a container\n");
    let first = env.backup("s");
    write(&root.join("trades.csv"), "changed since\n");
    if !hand_over(&env) {
        return;
    }
    for path in [root.join("dockerout"), root.join("dockerout/log.txt")] {
        std::os::unix::fs::lchown(&path, Some(0), Some(0)).unwrap();
    }
    fs::set_permissions(root.join("dockerout"), fs::Permissions::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| {
        let out = run_as(&env, args, true);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        err
    };
    let err = run(&["restore", &first, "--force"]);
    assert!(
        err.contains("could not remove all of the replaced folder"),
        "{err}"
    );
    assert!(err.contains(".safety.tar.gz holds all it held"), "{err}");
    assert_eq!(
        fs::read_to_string(root.join("trades.csv")).unwrap(),
        "id,side,qty,pnl\n1,long,0.5,12.3\n2,short,0.2,-4.1\n"
    );
    let left: Vec<_> = fs::read_dir(env.results())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".resbak")
        })
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].join(".resbak-aside").is_file(), "still marked");
    let before = env.archives();
    run(&["backup", "--all"]);
    let new: Vec<_> = env
        .archives()
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    assert!(new.iter().all(|a| a.starts_with("s_")), "{new:?}");
}

/// `restore --force` over a strategy folder its user made read-only (mode 555) replaces it, as
/// its dry run says: the folder is made writable to move it aside (which rewrites its `..`).
/// The replaced folder, held by the safety copy, is removed; nothing else is left.
#[test]
fn force_replaces_a_read_only_folder_of_its_user() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("trades.csv"), "changed since\n");
    let handed = hand_over(&env);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o555)).unwrap();
    for extra in [&["--dry-run"][..], &[]] {
        let out = run_as(
            &env,
            &[&["restore", &archive, "--force"][..], extra].concat(),
            handed,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{extra:?}: {err}");
    }
    assert!(
        fs::read_to_string(root.join("trades.csv"))
            .unwrap()
            .starts_with("id,side")
    );
    let names: Vec<_> = fs::read_dir(env.results())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["s"], "nothing left beside it");
    assert_eq!(
        env.archives()
            .iter()
            .filter(|a| a.contains(".safety."))
            .count(),
        1
    );
}

/// `restore --force` over a read-only folder of another user (which this user cannot make
/// writable to move it aside) is refused by the dry run and the real run before any safety
/// copy. (Needs root to make such a folder.)
#[test]
fn force_over_another_users_read_only_folder_is_refused_first() {
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("trades.csv"), "changed since\n");
    if !hand_over(&env) {
        return;
    }
    std::os::unix::fs::lchown(&root, Some(0), Some(0)).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o555)).unwrap();
    let before = env.archives();
    for extra in [&["--dry-run"][..], &[]] {
        let out = run_as(
            &env,
            &[&["restore", &archive, "--force"][..], extra].concat(),
            true,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("it is read-only and another user's"), "{err}");
    }
    assert_eq!(env.archives(), before, "no safety copy");
    assert_eq!(
        fs::read_to_string(root.join("trades.csv")).unwrap(),
        "changed since\n"
    );
}

/// A restore into a folder its user cannot write (`--to ro/x`, `ro` read-only) is refused by
/// its dry run as by the real run, before anything is written.
#[test]
fn a_destination_in_a_read_only_folder_is_refused_by_the_dry_run_too() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let ro = env.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let handed = hand_over(&env);
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    for to in ["ro/x", "ro/deeper/x"] {
        for extra in [&["--dry-run"][..], &[]] {
            let out = run_as(
                &env,
                &[&["restore", &archive, "--to", to][..], extra].concat(),
                handed,
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{to} {extra:?}: {err}");
            assert!(err.contains("cannot write into ro"), "{err}");
        }
    }
    assert_eq!(fs::read_dir(&ro).unwrap().count(), 0);
}

/// The user the tests run commands as when they run as root: `nobody`.
const NOBODY: u32 = 65534;

/// When the tests run as root, gives the whole test folder to [`NOBODY`], who is to run the
/// commands (`true`), so that what only root could do shows; otherwise does nothing (`false`).
pub(crate) fn hand_over(env: &Env) -> bool {
    use std::os::unix::fs::MetadataExt;
    if fs::metadata(env.path()).unwrap().uid() != 0 {
        return false;
    }
    for entry in walkdir::WalkDir::new(env.path()) {
        let entry = entry.unwrap();
        std::os::unix::fs::lchown(entry.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        let mode = if entry.file_type().is_dir() {
            0o777
        } else {
            0o666
        };
        if !entry.file_type().is_symlink() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    true
}

/// Runs resbak with `args` in `env`, as [`NOBODY`] when the test folder was `handed` over.
pub(crate) fn run_as(env: &Env, args: &[&str], handed: bool) -> std::process::Output {
    as_user(&mut env.cmd(args), handed).output().unwrap()
}

/// `cmd`, run as [`NOBODY`] when the test folder was `handed` over.
fn as_user(cmd: &mut std::process::Command, handed: bool) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    if handed {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd
}
