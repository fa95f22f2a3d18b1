use crate::util::{Env, Raw, flip_byte, paths, raw_archive, snapshot, write};
use std::fs;
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
        err.contains("already exists") && err.contains("--force"),
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
        let before = paths(env.path());
        let results = snapshot(&root);
        let err = env.fail(
            &[
                "restore",
                archive.to_str().unwrap(),
                "--to",
                "results/restored",
            ],
            1,
        );
        assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
        assert_eq!(paths(env.path()), before, "{entry}: nothing written");
        assert_eq!(snapshot(&root), results, "{entry}: results untouched");
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
