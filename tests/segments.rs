//! Segmented archives: the same bytes whether written fresh, with segments copied from the
//! previous backup or with any thread count; copying never trusts mtimes or damaged bytes.

use crate::datagen::{Spec, generate};
use crate::util::{Env, flip_byte, have, sha256_file};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A results folder `s` of about 3 MiB with big and small files and a sweep of run folders.
fn sample(env: &Env) -> PathBuf {
    let spec = Spec {
        size: 3 << 20,
        seed: 7,
        files: None,
    };
    generate(&env.results(), "s", &spec).unwrap().root
}

/// Backs up `s` into `dir` (relative to the env) with `threads`; returns the archive path and
/// the standard output.
fn backup_into(env: &Env, dir: &str, threads: &str) -> (PathBuf, String) {
    let backups = env.path().join(dir);
    let before: Vec<_> = archives_in(&backups);
    let args = [
        "-v",
        "--backup-dir",
        dir,
        "backup",
        "--always",
        "--threads",
        threads,
        "s",
    ];
    let out = env.run(&args);
    let new: Vec<_> = archives_in(&backups)
        .into_iter()
        .filter(|a| !before.contains(a))
        .collect();
    assert_eq!(new.len(), 1, "{out}");
    (new[0].clone(), out)
}

fn archives_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect()
}

/// The first file in a run folder of `root`.
fn a_run_file(root: &Path) -> PathBuf {
    let mut runs: Vec<_> = fs::read_dir(root.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    let mut files: Vec<_> = fs::read_dir(&runs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files[0].clone()
}

/// The content of `rel` (below the top folder `s`) in the archive at `archive`.
fn content_in(archive: &Path, rel: &Path) -> Vec<u8> {
    let gz = flate2::read::GzDecoder::new(fs::File::open(archive).unwrap());
    let mut tar = tar::Archive::new(gz);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("s").join(rel) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return data;
        }
    }
    panic!("{} not in {}", rel.display(), archive.display());
}

#[test]
fn the_same_bytes_fresh_with_reuse_and_for_any_thread_count() {
    let env = Env::new();
    let root = sample(&env);
    let (first, _) = backup_into(&env, "backups", "1");
    let (again, out) = backup_into(&env, "backups", "2");
    assert!(out.contains("copied from"), "{out}");
    let (fresh4, _) = backup_into(&env, "fresh4", "4");
    let want = sha256_file(&first);
    assert_eq!(sha256_file(&again), want);
    assert_eq!(sha256_file(&fresh4), want);
    // One run folder rewritten: the rest is copied, and still the bytes of a fresh backup.
    let file = a_run_file(&root);
    let mut data = fs::read(&file).unwrap();
    data.extend_from_slice(b"one more line\n");
    fs::write(&file, &data).unwrap();
    let (reused, out) = backup_into(&env, "backups", "2");
    assert!(!out.contains(" 0 segments"), "{out}");
    let (fresh, _) = backup_into(&env, "fresh1", "1");
    assert_eq!(sha256_file(&reused), sha256_file(&fresh));
    assert_ne!(sha256_file(&reused), want);
    let rel = file.strip_prefix(&root).unwrap();
    assert_eq!(content_in(&reused, rel), data);
    env.run(&["verify", "--deep"]);
}

#[test]
fn a_file_rewritten_behind_its_old_mtime_is_not_copied_from_the_last_backup() {
    let env = Env::new();
    let root = sample(&env);
    backup_into(&env, "backups", "2");
    let file = a_run_file(&root);
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let mut data = fs::read(&file).unwrap();
    data[0] ^= 1;
    fs::write(&file, &data).unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (archive, _) = backup_into(&env, "backups", "2");
    let rel = file.strip_prefix(&root).unwrap();
    assert_eq!(content_in(&archive, rel), data);
    let (fresh, _) = backup_into(&env, "fresh", "1");
    assert_eq!(sha256_file(&archive), sha256_file(&fresh));
}

#[test]
fn a_damaged_previous_archive_is_never_copied_from() {
    let env = Env::new();
    sample(&env);
    let (first, _) = backup_into(&env, "backups", "2");
    let want = sha256_file(&first);
    let size = fs::metadata(&first).unwrap().len();
    flip_byte(&first, size / 2);
    let args = ["--backup-dir", "backups", "backup", "--always", "s"];
    let err = String::from_utf8_lossy(&env.run_code(&args, 0).stderr).into_owned();
    assert!(err.contains("is damaged; compressed again"), "{err}");
    let newest = archives_in(&env.backups())
        .into_iter()
        .find(|a| *a != first)
        .unwrap();
    assert_eq!(sha256_file(&newest), want);
    // A damaged index is no source either: nothing is copied.
    let index = PathBuf::from(format!("{}.idx", newest.display()));
    flip_byte(&index, 40);
    let (last, out) = backup_into(&env, "backups", "2");
    assert!(!out.contains("copied from"), "{out}");
    assert_eq!(sha256_file(&last), want);
}

#[test]
fn gnu_tar_bsdtar_python_and_gzip_accept_segmented_archives() {
    let env = Env::new();
    let root = sample(&env);
    backup_into(&env, "backups", "2");
    fs::write(a_run_file(&root), "rewritten\n").unwrap();
    let (archive, _) = backup_into(&env, "backups", "2");
    let listed = |tool: &str, args: &[&str]| {
        if !have(tool) {
            eprintln!("SKIPPED {tool}: not installed");
            return;
        }
        let out = Command::new(tool)
            .args(args)
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    listed("gzip", &["-t"]);
    listed("tar", &["-tzf"]);
    listed("bsdtar", &["-tzf"]);
    let script = "import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t:\n    for m in t:\n        t.extractfile(m).read() if m.isfile() else None\n";
    listed("python3", &["-c", script]);
}
