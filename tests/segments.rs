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
    // A file cut into three pieces, copied as a group.
    fs::write(root.join("long.bin"), crate::util::noise(3, 2_600_000)).unwrap();
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
    assert!(segment_lines(&reused).iter().any(|f| f[7] == "+"));
    env.run(&["verify", "--deep"]);
}

#[test]
fn a_second_backup_that_compresses_much_again_is_read_back_whole() {
    let env = Env::new();
    let root = sample(&env);
    backup_into(&env, "backups", "2");
    // More new bytes than the read-back streams: inflated whole on a thread of its own.
    fs::write(root.join("new.bin"), crate::util::noise(5, 20 << 20)).unwrap();
    let (reused, out) = backup_into(&env, "backups", "2");
    assert!(out.contains("copied from"), "{out}");
    let (fresh, _) = backup_into(&env, "fresh", "1");
    assert_eq!(sha256_file(&reused), sha256_file(&fresh));
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
    // Said, recorded as verify records damage, and exit 1: the latest archive is damaged.
    let args = ["--backup-dir", "backups", "backup", "--always", "s"];
    let err = String::from_utf8_lossy(&env.run_code(&args, 1).stderr).into_owned();
    assert!(err.contains("is damaged; compressed again"), "{err}");
    let list = env.run_code(&["--backup-dir", "backups", "list", "s"], 1);
    let name = first.file_name().unwrap().to_str().unwrap();
    let row = crate::util::stdout(&list);
    let row = row.lines().find(|l| l.starts_with(name)).unwrap();
    assert!(row.contains("failed"), "{row}");
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

/// The S lines of the index of the archive at `archive`, each split into its fields.
fn segment_lines(archive: &Path) -> Vec<Vec<String>> {
    let index = fs::File::open(format!("{}.idx", archive.display())).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(index)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("S\t"))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Backs up `s` into `backups` again with `-v`, after the archive `first`, expecting exit
/// `code`: the new archive, the standard output and the standard error.
fn backup_after(env: &Env, first: &Path, code: i32) -> (PathBuf, String, String) {
    let args = ["-v", "--backup-dir", "backups", "backup", "--always", "s"];
    let out = env.run_code(&args, code);
    let again = archives_in(&env.backups())
        .into_iter()
        .find(|a| a != first)
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (again, crate::util::stdout(&out), err)
}

/// A file longer than a piece is copied as all its pieces or not at all: damage in its last
/// piece means the whole file is compressed again, and the archive is still the bytes of a
/// fresh backup.
#[test]
fn a_group_of_pieces_with_one_damaged_piece_is_compressed_again_whole() {
    let env = Env::new();
    let root = sample(&env);
    fs::write(root.join("long.bin"), crate::util::noise(3, 2_600_000)).unwrap();
    let (first, _) = backup_into(&env, "backups", "2");
    let want = sha256_file(&first);
    let lines = segment_lines(&first);
    let last_piece = lines
        .windows(2)
        .filter(|w| w[1][7] == "+")
        .map(|w| &w[1])
        .next_back()
        .expect("a group cut into pieces");
    let (zoff, zlen): (u64, u64) = (
        last_piece[3].parse().unwrap(),
        last_piece[4].parse().unwrap(),
    );
    flip_byte(&first, zoff + zlen / 2);
    let (again, stdout, err) = backup_after(&env, &first, 1);
    assert!(stdout.contains("copied from"), "{stdout}");
    assert!(err.contains("is damaged; compressed again"), "{err}");
    assert_eq!(sha256_file(&again), want);
}

/// An index an earlier resbak wrote (format 1, whose segments were cut otherwise) still serves
/// `ls` and `cat`, but is never a source of copied segments: the next backup compresses
/// everything, into the bytes of a fresh backup.
#[test]
fn an_index_of_the_earlier_format_is_read_but_never_copied_from() {
    let env = Env::new();
    let root = sample(&env);
    let (first, _) = backup_into(&env, "backups", "2");
    let want = sha256_file(&first);
    let index = PathBuf::from(format!("{}.idx", first.display()));
    let before = sha256_file(&index);
    let mut text = String::new();
    flate2::read::GzDecoder::new(fs::File::open(&index).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("resbak-index\t2\t"), "{text}");
    let old = text.replacen("resbak-index\t2\t", "resbak-index\t1\t", 1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, old.as_bytes()).unwrap();
    fs::write(&index, gz.finish().unwrap()).unwrap();
    let manifest = env.backups().join("manifest.yaml");
    let yaml = fs::read_to_string(&manifest).unwrap();
    assert!(yaml.contains(&before));
    fs::write(&manifest, yaml.replace(&before, &sha256_file(&index))).unwrap();

    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let file = a_run_file(&root);
    let rel = file
        .strip_prefix(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let listed = env.run(&["ls", &name]);
    assert!(listed.contains(&rel), "{listed}");
    let out = env.run_code(&["cat", &name, &rel], 0);
    assert!(out.stdout == fs::read(&file).unwrap());
    let (again, stdout, err) = backup_after(&env, &first, 0);
    assert!(!stdout.contains("copied from"), "{stdout}");
    assert!(err.contains("cut it into segments otherwise"), "{err}");
    assert_eq!(sha256_file(&again), want);
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
