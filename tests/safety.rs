//! Crashes, stale locks, concurrency, full disks and manifest recovery.

use crate::util::{Env, names_with_prefix, noise, snapshot, stdout, wait_for, write};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// A results folder big enough that a backup takes a noticeable moment.
fn big_sample(env: &Env, strategy: &str, mib: usize) {
    let root = env.sample(strategy);
    for i in 0..mib {
        fs::write(
            root.join(format!("runs/blob_{i:03}.bin")),
            noise(i as u64, 1 << 20),
        )
        .unwrap();
    }
}

fn wait_ok(child: &mut Child, what: &str) {
    let status = child
        .wait_timeout(Duration::from_secs(120))
        .unwrap()
        .unwrap_or_else(|| panic!("{what} did not finish: deadlock?"));
    assert!(status.success(), "{what} failed: {status}");
}

#[test]
fn a_killed_backup_leaves_no_registered_partial_archive_and_is_cleaned_up() {
    let env = Env::new();
    big_sample(&env, "s", 24);
    env.backup("s");
    // Kill at different points of the write, from "temp file just created" to "mostly written".
    for threshold in [0u64, 1 << 20, 4 << 20, 9 << 20] {
        // Another level: nothing is copied from the first archive, so it compresses it all.
        let mut child = env
            .cmd(&["backup", "s", "--always", "--level", "9"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the temp archive to grow", || {
            names_with_prefix(&env.backups(), ".resbak-tmp-")
                .iter()
                .any(|n| fs::metadata(env.backups().join(n)).is_ok_and(|m| m.len() >= threshold))
        });
        child.kill().unwrap();
        child.wait().unwrap();
        // The manifest still parses and lists only complete archives; the leftover is named.
        let out = env.run_code(&["verify"], 0);
        assert!(stdout(&out).contains("0 with problems"), "{out:?}");
        let listed = env.run_code(&["list"], 0);
        for err in [&out.stderr, &listed.stderr] {
            let err = String::from_utf8_lossy(err);
            assert!(err.contains("left by an interrupted run"), "{err}");
        }
        assert!(
            !names_with_prefix(&env.backups(), ".resbak-tmp-").is_empty(),
            "the kill left a temp file"
        );
        let out = env.run_code(&["backup", "s", "--always"], 0);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("left by an interrupted run"),
            "the next run says so: {err}"
        );
        assert!(names_with_prefix(&env.backups(), ".resbak-tmp-").is_empty());
    }
    env.run(&["verify", "--deep"]);
}

/// A backup with nothing to write still removes what a killed run left, as the warnings that
/// name such leftovers say the next backup does.
#[test]
fn a_skipped_backup_removes_what_a_killed_run_left() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    // A temp file as a backup makes it, its process gone.
    let tmp = resbak::atomic::temp_file_in(&env.backups()).unwrap();
    let (file, leftover) = tmp.keep().unwrap();
    drop(file);
    let err = env.fail(&["list"], 0);
    assert!(err.contains("the next backup removes it"), "{err}");
    let out = env.run_code(&["backup", "s"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(stdout(&out).contains("skipped"), "{out:?}");
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert!(!leftover.exists());
}

#[test]
fn a_lock_held_by_a_killed_process_does_not_block() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let lock = env.backups().join("manifest.lock");
    let script = "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(600)\n";
    let Ok(mut holder) = Command::new("python3")
        .args(["-c", script])
        .arg(&lock)
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED a_lock_held_by_a_killed_process_does_not_block: no python3");
        return;
    };
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let mut backup = env
        .cmd(&["backup", "s", "--always"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    wait_ok(&mut backup, "backup after the lock holder died");
    assert_eq!(env.archives().len(), 2);
}

#[test]
fn concurrent_backups_prunes_and_verifies_lose_nothing() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    env.backup("a");
    let mut backups: Vec<Child> = ["a", "b"]
        .iter()
        .cycle()
        .take(8)
        .map(|s| {
            env.cmd(&["backup", "--always", s])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut prunes: Vec<Child> = (0..2)
        .map(|_| {
            env.cmd(&["prune", "--keep", "3", "--json"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut verifies: Vec<Child> = (0..3)
        .map(|_| {
            env.cmd(&["verify", "--deep"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut made = Vec::new();
    for child in &mut backups {
        wait_ok(child, "backup");
        let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
        let name = out.split(" -> ").nth(1).unwrap().split(' ').next().unwrap();
        made.push(
            Path::new(name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut removed = Vec::new();
    for child in &mut prunes {
        wait_ok(child, "prune");
        let report: serde_json::Value =
            serde_json::from_reader(child.stdout.take().unwrap()).unwrap();
        removed.extend(
            report["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string()),
        );
    }
    for child in &mut verifies {
        wait_ok(
            child,
            "verify (an archive vanished while it was being verified?)",
        );
    }
    let listed = env.archives();
    for name in &made {
        // A name can be both: pruned, then reused by a backup made in the same second.
        let (is_listed, was_removed) = (listed.contains(name), removed.contains(name));
        assert!(
            is_listed || was_removed,
            "{name} was lost: neither listed nor reported removed"
        );
        assert!(
            !is_listed || env.backups().join(name).is_file(),
            "{name} listed without its file"
        );
    }
    assert_eq!(
        listed.len(),
        9 - removed.len(),
        "listed {listed:?}, removed {removed:?}"
    );
    env.run(&["verify", "--deep"]);
    assert!(names_with_prefix(&env.backups(), ".resbak-tmp-").is_empty());
}

#[test]
fn every_manifest_update_keeps_the_previous_version() {
    let env = Env::new();
    env.sample("s");
    let first = env.backup("s");
    let second = env.backup("s");
    let bak = fs::read_to_string(env.backups().join("manifest.yaml.bak")).unwrap();
    assert!(bak.contains(&first) && !bak.contains(&second), "{bak}");
}

#[test]
fn reindex_rebuilds_a_lost_manifest() {
    let env = Env::new();
    env.sample("a");
    env.sample("b");
    let names = [env.backup("a"), env.backup("b"), env.backup("a")];
    let original = fs::read_to_string(env.backups().join("manifest.yaml")).unwrap();
    fs::remove_file(env.backups().join("manifest.yaml")).unwrap();
    let out = env.run(&["reindex"]);
    assert!(out.contains("3 added"), "{out}");
    let rebuilt = env.manifest();
    let original: serde_yaml::Value = serde_yaml::from_str(&original).unwrap();
    for (i, name) in names.iter().enumerate() {
        let new = rebuilt["backups"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["backup_file"] == name.as_str())
            .unwrap();
        for key in [
            "strategy",
            "timestamp",
            "size",
            "sha256",
            "entries",
            "bytes",
        ] {
            assert_eq!(new[key], original["backups"][i][key], "{name} {key}");
        }
    }
    env.run(&["verify", "--deep"]);
}

#[test]
fn reindex_saves_a_damaged_manifest_and_never_blesses_corruption() {
    let env = Env::new();
    env.sample("s");
    let good = env.backup("s");
    let gone = env.backup("s");
    let bad = env.backup("s");
    fs::remove_file(env.backups().join(&gone)).unwrap();
    crate::util::flip_byte(&env.backups().join(&bad), 100);
    // Not damaged yet: keeps the good entry, keeps the corrupt one (so verify reports it),
    // drops the missing one.
    let out = env.run_code(&["reindex"], 1);
    let stdout = crate::util::stdout(&out);
    assert!(stdout.contains(&format!("Dropped {gone}")), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad));
    assert_eq!(env.archives(), [good.clone(), bad.clone()]);
    env.run_code(&["verify"], 1);
    // Damaged: saved aside, rebuilt from the archives that pass a full check.
    let damaged = "version: 1\nbackups: [\n";
    fs::write(env.backups().join("manifest.yaml"), damaged).unwrap();
    let out = env.run_code(&["reindex"], 1);
    let stdout = crate::util::stdout(&out);
    assert!(stdout.contains("Damaged manifest saved as"), "{stdout}");
    let copies = names_with_prefix(&env.backups(), "manifest.yaml.damaged-");
    assert_eq!(copies.len(), 1);
    assert_eq!(
        fs::read_to_string(env.backups().join(&copies[0])).unwrap(),
        damaged
    );
    assert_eq!(env.archives(), [good]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("not added {bad}")));
}

#[test]
fn reindex_of_a_damaged_manifest_says_its_last_change_may_be_only_in_the_saved_copy() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    env.run(&["tag", &archive, "paper", "--note", "sent to the PM"]);
    let path = env.backups().join("manifest.yaml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("garbage: [\n");
    fs::write(&path, &text).unwrap();
    let out = env.run_code(&["reindex"], 0);
    let copies = names_with_prefix(&env.backups(), "manifest.yaml.damaged-");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("one change behind"), "{stderr}");
    assert!(stderr.contains(&copies[0]), "{stderr}");
    assert!(
        fs::read_to_string(env.backups().join(&copies[0]))
            .unwrap()
            .contains("sent to the PM")
    );
}

#[test]
fn reindex_of_an_entry_deleted_by_hand_says_its_last_change_may_be_missing() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    env.backup("s");
    env.run(&["tag", &archive, "--pin"]);
    let path = env.backups().join("manifest.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let (head, rest) = text.split_at(text.find("- strategy").unwrap());
    let second = rest[1..].find("- strategy").unwrap() + 1;
    assert!(rest[..second].contains(&archive));
    fs::write(&path, format!("{head}{}", &rest[second..])).unwrap();
    let out = env.run_code(&["reindex"], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("one change behind"), "{stderr}");
}

/// A size-capped tmpfs, unmounted on drop; `None` where mounting is not permitted.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(&at).unwrap();
        let opts = format!("size={size}");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(at))
    }
}

impl SmallDisk {
    /// Fills the disk with the file `filler`, leaving `free` bytes (a page's precision).
    fn fill_leaving(&self, free: u64) -> PathBuf {
        let filler = self.0.join("filler");
        let _ = fs::remove_file(&filler);
        let stat = rustix::fs::statvfs(&self.0).unwrap();
        let fill = (stat.f_bavail * stat.f_frsize).saturating_sub(free);
        fs::write(&filler, vec![0u8; usize::try_from(fill).unwrap()]).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly() {
    let env = Env::new();
    big_sample(&env, "s", 3);
    let Some(disk) = SmallDisk::mount(env.path().join("small"), "1m") else {
        eprintln!(
            "SKIPPED a_full_disk_fails_cleanly: mounting a size-capped tmpfs is not permitted here"
        );
        return;
    };
    // Backup onto the full disk: clear error, nothing registered, nothing left behind.
    let bk = disk.0.join("bk");
    let err = env.fail(&["backup", "s", "--backup-dir", bk.to_str().unwrap()], 2);
    assert!(err.contains("No space left on device"), "{err}");
    // Blamed on the archive being written, not on the results file read when the disk filled.
    let blamed = format!("cannot write the new archive in {}: No space", bk.display());
    assert!(err.contains(&blamed), "{err}");
    let left: Vec<String> = names_with_prefix(&bk, "")
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Restore onto the full disk: clear error, the existing folder there untouched.
    let archive = env.backup("s");
    let existing = disk.0.join("res/s");
    write(&existing.join("keep.csv"), "mine\n");
    let before = snapshot(&existing);
    let err = env.fail(
        &[
            "restore",
            &archive,
            "--to",
            existing.to_str().unwrap(),
            "--force",
        ],
        2,
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(snapshot(&existing), before);
    assert!(names_with_prefix(&disk.0.join("res"), ".resbak").is_empty());
    assert_eq!(
        env.archives().len(),
        2,
        "the --force backup of the existing folder was made first"
    );
}

/// A backup whose manifest no longer fits on the disk (its archive did) fails with the
/// manifest and `SHA256SUMS` both as they were: `sha256sum -c` lists no archive that is gone.
#[test]
fn a_manifest_that_does_not_fit_leaves_the_checksum_list_as_it_was() {
    let env = Env::new();
    let root = env.sample("s");
    for run in 0..400 {
        let stats = format!("{{\"Sharpe Ratio\": 1.{run}, \"Return [%]\": {run}.5}}");
        write(&root.join(format!("runs/r{run:03}/stats.json")), &stats);
    }
    let Some(disk) = SmallDisk::mount(env.path().join("small"), "4m") else {
        eprintln!("SKIPPED a_manifest_that_does_not_fit: mounting a tmpfs is not permitted here");
        return;
    };
    let bk = disk.0.join("bk");
    let bk_arg = ["--backup-dir", bk.to_str().unwrap()];
    env.run(&[&["backup", "s"][..], &bk_arg].concat());
    let sums = || fs::read_to_string(bk.join("SHA256SUMS")).unwrap();
    // Leaves less and less room until a backup fails writing its manifest.
    for free_kib in (1..100u64).rev().map(|n| n * 4) {
        disk.fill_leaving(free_kib * 1024);
        let before = (sums(), fs::read(bk.join("manifest.yaml")).unwrap());
        let out = env
            .cmd(&[&["backup", "s", "--always"][..], &bk_arg].concat())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains("manifest.yaml") {
            continue;
        }
        assert!(err.contains("No space left on device"), "{err}");
        assert!((sums(), fs::read(bk.join("manifest.yaml")).unwrap()) == before);
        for line in sums().lines() {
            let name = line.split_once("  ").unwrap().1;
            assert!(
                bk.join(name).is_file(),
                "SHA256SUMS lists {name}, which is gone"
            );
        }
        return;
    }
    panic!("no backup failed writing its manifest");
}

/// A `file backup` whose copy fits on the disk but whose `SHA256SUMS` line does not fails and
/// keeps no copy: left, it would pass for one of the Python scripts' copies (no checksum, its
/// time read as local) and could sort as the newest.
#[test]
fn a_file_copy_whose_checksum_does_not_fit_is_not_kept() {
    let env = Env::new();
    let Some(disk) = SmallDisk::mount(env.path().join("small"), "2m") else {
        eprintln!(
            "SKIPPED a_file_copy_whose_checksum_does_not_fit: mounting a tmpfs is not permitted here"
        );
        return;
    };
    let store = env.path().join("data/exp.json");
    let copies = disk.0.join("copies");
    fs::create_dir_all(&copies).unwrap();
    fs::create_dir_all(env.path().join("data")).unwrap();
    std::os::unix::fs::symlink(&copies, env.path().join("data/backups")).unwrap();
    let json = |n: usize| format!("{{\"experiences\": [{}]}}", vec!["1"; n].join(", "));
    write(&store, &json(20_000));
    env.run(&["file", "backup", "data/exp.json"]);
    let names = || {
        let mut n: Vec<_> = fs::read_dir(&copies)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        n.sort();
        n
    };
    let page = 4096u64;
    // Leaves room for the copy and up to three pages more: the first fits the copy only.
    for extra_pages in 0..4u64 {
        write(&store, &json(20_001 + extra_pages as usize));
        let need = fs::metadata(&store).unwrap().len().div_ceil(page) * page + extra_pages * page;
        disk.fill_leaving(need);
        let before = names();
        let out = env
            .cmd(&["file", "backup", "data/exp.json"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains("SHA256SUMS") {
            continue;
        }
        assert_eq!(names(), before, "{err}");
        return;
    }
    panic!("no file backup failed writing SHA256SUMS");
}

/// Killing `restore --force` at any point leaves the old folder, the new one, or a safety copy
/// that holds everything the old folder held. Each point is reached for real, and checked to
/// have been: right after the safety copy (the report line is held by a full pipe, the
/// restore seen waiting to write it); while extracting (the staging folder growing, the
/// restore alive, and after the kill the destination still old and the staging folder left);
/// and while swapping (the replaced folder moved aside and the new one in place, the restore
/// alive, and after the kill the aside folder left). The old folder holds thousands of small
/// files, so checking and removing it after the renames takes a while. The instant between
/// the two renames of the swap is not singled out.
#[test]
fn a_killed_forced_restore_always_leaves_the_old_folder_or_its_copy() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    big_sample(&env, "s", 12);
    let archive = env.backup("s");
    let root = env.results().join("s");
    let new = snapshot(&root);
    let make_old = || {
        let _ = fs::remove_dir_all(&root);
        env.run(&["restore", &archive]);
        write(&root.join("old_only.csv"), "only in the old folder\n");
        for i in 0..4000 {
            write(&root.join(format!("old_runs/{:02}/{i}.csv", i % 40)), "x\n");
        }
        crate::util::set_mtimes(&root, 1_700_000_100);
        snapshot(&root)
    };
    let staged = |prefix: &str| -> u64 {
        names_with_prefix(&env.results(), prefix)
            .iter()
            .flat_map(|n| walkdir::WalkDir::new(env.results().join(n)))
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let aside = || names_with_prefix(&env.results(), ".resbak-replaced-");
    for point in ["safety copy taken", "extracting", "swapping"] {
        let old = make_old();
        let copies = env.archives().len();
        let mut cmd = env.cmd(&["restore", &archive, "--force"]);
        let reader = match point {
            "safety copy taken" => {
                let (reader, writer) = crate::restore::full_pipe();
                cmd.stdout(writer);
                Some(reader)
            }
            _ => {
                cmd.stdout(Stdio::null());
                None
            }
        };
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let mut done = false;
        wait_for(point, || {
            done = child.try_wait().unwrap().is_some();
            done || match point {
                "safety copy taken" => blocked_writing(child.id()),
                "extracting" => staged(".resbak-restore-") > 0,
                // The new folder is in place (the old one alone has `old_only.csv`).
                _ => !aside().is_empty() && root.is_dir() && !root.join("old_only.csv").exists(),
            }
        });
        assert!(!done, "{point}: the restore ended before it was killed");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        drop(reader);
        assert_eq!(status.signal(), Some(9), "{point}: killed, not finished");
        match point {
            "safety copy taken" => {
                assert_eq!(
                    env.archives().len(),
                    copies + 1,
                    "the safety copy is registered"
                );
                assert_eq!(snapshot(&root), old, "{point}: nothing replaced yet");
            }
            "extracting" => {
                assert_eq!(snapshot(&root), old, "{point}: nothing replaced yet");
                assert!(staged(".resbak-restore-") > 0, "{point}: staging left");
            }
            _ => {
                assert!(!aside().is_empty(), "{point}: the aside folder is left");
                assert_eq!(snapshot(&root), new, "{point}: the new folder is in place");
            }
        }
        assert_old_data_kept(&env, &root, &old, &new, copies, point);
        for leftover in names_with_prefix(&env.results(), ".resbak-restore-") {
            fs::remove_dir_all(env.results().join(leftover)).unwrap();
        }
    }
}

/// Interrupted after the swap, while it checks the replaced folder against its safety copy,
/// `restore --force` keeps that folder and says where in its one `interrupted` line.
#[test]
fn an_interrupted_forced_restore_names_the_replaced_folder_it_keeps() {
    let env = Env::new();
    big_sample(&env, "s", 12);
    let archive = env.backup("s");
    let root = env.results().join("s");
    write(&root.join("old_only.csv"), "only in the old folder\n");
    // Enough that checking the replaced folder takes long past the swap, on a busy machine too.
    for i in 0..10_000 {
        write(&root.join(format!("old_runs/{:02}/{i}.csv", i % 40)), "x\n");
    }
    let aside = || names_with_prefix(&env.results(), ".resbak-replaced-");
    let mut child = env
        .cmd(&["restore", &archive, "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut done = false;
    wait_for("the swap", || {
        done = child.try_wait().unwrap().is_some();
        done || (!aside().is_empty() && root.is_dir() && !root.join("old_only.csv").exists())
    });
    assert!(!done, "the restore ended before it was interrupted");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let kept = aside();
    assert_eq!(kept.len(), 1, "{err}");
    let old = env.results().join(&kept[0]).join("old");
    assert!(old.join("old_only.csv").exists(), "{err}");
    assert!(err.contains(&format!("{}/old", kept[0])), "{err}");
}

/// The invariant of a killed restore: the destination holds the old or the new folder, or the
/// old folder waits beside it, or a safety copy made by the restore holds all of it.
fn assert_old_data_kept(
    env: &Env,
    root: &Path,
    old: &std::collections::BTreeMap<PathBuf, String>,
    new: &std::collections::BTreeMap<PathBuf, String>,
    copies: usize,
    point: &str,
) {
    let now = root.exists().then(|| snapshot(root));
    if now.as_ref() == Some(old) {
        return;
    }
    let aside = names_with_prefix(&env.results(), ".resbak-replaced-")
        .into_iter()
        .map(|n| env.results().join(n).join("old"))
        .chain(
            names_with_prefix(&env.results(), "s.replaced-")
                .into_iter()
                .map(|n| env.results().join(n)),
        )
        .any(|p| p.exists() && snapshot(&p) == *old);
    let archives = env.archives();
    let copy_holds_old = archives.len() > copies && {
        let check = format!("check_{}", archives.len());
        env.run(&["restore", archives.last().unwrap(), "--to", &check]);
        snapshot(&env.path().join(check)) == *old
    };
    assert!(
        copy_holds_old || aside,
        "killed at {point}: the old folder is lost (destination holds the new one: {})",
        now.as_ref() == Some(new)
    );
    for leftover in names_with_prefix(&env.results(), ".resbak-replaced-")
        .into_iter()
        .chain(names_with_prefix(&env.results(), "s.replaced-"))
    {
        fs::remove_dir_all(env.results().join(leftover)).unwrap();
    }
}

/// Runs resbak with `umask` in force, as a shell would.
pub(crate) fn run_with_umask(env: &Env, umask: &str, args: &[&str]) {
    let resbak = env!("CARGO_BIN_EXE_resbak");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(resbak)
        .args(args)
        .current_dir(env.path())
        .env_remove("RESBAK_RESULTS_DIR")
        .env_remove("RESBAK_BACKUP_DIR")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "resbak {args:?}: {status}");
}

#[test]
fn what_resbak_keeps_is_created_0666_less_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    for (umask, mode) in [("022", 0o644), ("002", 0o664)] {
        let env = Env::new();
        env.sample("s");
        run_with_umask(&env, umask, &["backup", "s"]);
        run_with_umask(&env, umask, &["backup", "s", "--always"]);
        let mut seen = Vec::new();
        for item in fs::read_dir(env.backups()).unwrap().flatten() {
            let meta = item.metadata().unwrap();
            if meta.is_file() {
                let name = item.file_name().to_string_lossy().into_owned();
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    mode,
                    "{name} (umask {umask})"
                );
                seen.push(name);
            }
        }
        for expected in ["manifest.yaml", "SHA256SUMS", "manifest.lock"] {
            assert!(seen.iter().any(|n| n == expected), "{expected} in {seen:?}");
        }
        assert!(seen.iter().filter(|n| n.ends_with(".tar.gz")).count() == 2);
    }
}

/// Runs resbak to its end, failing the test if it has not ended after a generous bound (a
/// hang), and returns its output.
fn run_bounded(env: &Env, args: &[&str]) -> std::process::Output {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if child
        .wait_timeout(Duration::from_secs(60))
        .unwrap()
        .is_none()
    {
        child.kill().unwrap();
        panic!("resbak {args:?} hangs");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn folders_named_like_resbak_working_folders_are_left_alone() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    // A user's own folders that merely bear resbak names, beside the restore destination.
    for name in [".resbak-tmp-mine", ".resbak-restore-mine"] {
        write(&env.results().join(name).join("notes.txt"), "mine");
    }
    fs::remove_dir_all(env.results().join("s")).unwrap();
    env.run(&["restore", &archive]);
    for name in [".resbak-tmp-mine", ".resbak-restore-mine"] {
        let notes = env.results().join(name).join("notes.txt");
        assert_eq!(fs::read_to_string(&notes).unwrap(), "mine", "{name}");
    }
}

#[test]
fn a_fifo_with_a_resbak_name_hangs_nothing() {
    let env = Env::new();
    env.sample("s");
    env.backup("s");
    let fifo = env.backups().join(".resbak-tmp-x");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for args in [
        &["backup", "s", "--always"][..],
        &["reindex"],
        &["verify"],
        &["list"],
    ] {
        let out = run_bounded(&env, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
}

#[test]
fn a_fifo_where_a_catalogued_archive_was_hangs_nothing() {
    let env = Env::new();
    env.sample("s");
    let archive = env.backup("s");
    let path = env.backups().join(&archive);
    fs::remove_file(&path).unwrap();
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    // backup checks the latest archive before it skips an unchanged folder; the others read it.
    for (args, code) in [
        (&["backup", "s"][..], 1),
        (&["verify", archive.as_str()], 1),
        (&["verify", "--deep", archive.as_str()], 1),
        (&["diff", archive.as_str()], 2),
        (&["restore", archive.as_str(), "--to", "elsewhere/s"], 1),
    ] {
        let out = run_bounded(&env, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
    }
    assert!(path.symlink_metadata().unwrap().file_type().is_fifo());
}

/// Makes a restore keep the replaced folder `s` beside it for real: a file is written into it
/// after its safety copy (the report line held by a full pipe). Returns the kept folder's name
/// and what it holds.
fn keep_a_replaced_folder(env: &Env) -> (String, std::collections::BTreeMap<PathBuf, String>) {
    let archive = env.backup("s");
    let root = env.results().join("s");
    write(&root.join("mine.csv"), "mine\n");
    let copies = env.archives().len();
    let (reader, writer) = crate::restore::full_pipe();
    let mut cmd = env.cmd(&["restore", &archive, "--force"]);
    cmd.stdout(writer).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    wait_for("the safety copy", || env.archives().len() > copies);
    write(&root.join("late.csv"), "written after the safety copy\n");
    let held = snapshot(&root);
    std::io::read_to_string(reader).unwrap();
    wait_ok(&mut child, "restore");
    let kept = names_with_prefix(&env.results(), "s.replaced-");
    assert_eq!(kept.len(), 1, "{kept:?}");
    (kept[0].clone(), held)
}

/// Only what resbak provably made is left out of `backup --all`: its staging folders (tag and
/// marker) and the folders a restore kept (the marker beside them). A user's folders named
/// like them are strategies; a kept folder holds nothing but what it held.
#[test]
fn backup_all_leaves_out_only_what_resbak_made() {
    let env = Env::new();
    env.sample("s");
    let (kept, held) = keep_a_replaced_folder(&env);
    // A live staging folder of this process, made as resbak makes it.
    let staging = resbak::atomic::staging_dir_in(&env.results()).unwrap();
    let users = [
        ".resbak-notes",
        ".resbak-restore-x",
        ".resbak-replaced-y",
        ".resbak-tmp-z",
        "model.replaced-2",
        "s.replaced-20260101T000000Z",
    ];
    for name in users {
        write(&env.results().join(name).join("old/trades.csv"), "id\n1\n");
    }
    let before = env.archives().len();
    let out = env.run_code(&["backup", "--all"], 0);
    let mut strategies: Vec<String> = env.manifest()["backups"]
        .as_sequence()
        .unwrap()
        .iter()
        .skip(before)
        .map(|e| e["strategy"].as_str().unwrap().to_string())
        .collect();
    strategies.sort();
    // `s` itself is unchanged since the archive it was restored from: not backed up again.
    let mut expected: Vec<String> = users.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(strategies, expected);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{kept}: a folder replaced by a restore")),
        "{err}"
    );
    for name in users {
        assert!(!err.contains(name), "{name} is called resbak's: {err}");
    }
    // The kept folder holds what the replaced one held, nothing of resbak's; moving it may
    // touch only its own times.
    let (mut now, mut was) = (snapshot(&env.results().join(&kept)), held);
    now.remove(Path::new(""));
    was.remove(Path::new(""));
    assert_eq!(now, was);
    drop(staging);
}

#[test]
fn an_interrupted_backup_or_restore_says_so_and_leaves_nothing() {
    use nix::sys::signal::Signal::{SIGHUP, SIGINT, SIGTERM};
    let env = Env::new();
    big_sample(&env, "s", 24);
    let archive = env.backup("s");
    let manifest = fs::read(env.backups().join("manifest.yaml")).unwrap();
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
        // Another level: nothing is copied from the first archive, so it compresses it all.
        let backup = env.cmd(&["backup", "s", "--always", "--level", "9"]);
        let said = "nothing was registered";
        interrupt(backup, &env.backups(), ".resbak-tmp-", signal, code, said);
        assert_eq!(
            fs::read(env.backups().join("manifest.yaml")).unwrap(),
            manifest
        );
        let restore = env.cmd(&["restore", &archive, "--to", "elsewhere/s"]);
        let parent = env.path().join("elsewhere");
        let said = "nothing was restored; elsewhere/s was not made";
        interrupt(restore, &parent, ".resbak-restore-", signal, code, said);
        assert!(!parent.join("s").exists());
    }
}

/// Whether a thread of `pid` waits to write into a full pipe.
fn blocked_writing(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
    })
}

/// Interrupted after its safety copy was registered, a forced restore says that the copy was
/// kept and the destination is as it was; and so it is. The restore is held right after the
/// safety copy by a full pipe on its standard output.
#[test]
fn an_interrupted_forced_restore_names_the_safety_copy_it_kept() {
    use nix::sys::signal::Signal::SIGINT;
    let env = Env::new();
    let root = env.sample("s");
    let archive = env.backup("s");
    write(&root.join("mine.csv"), "mine\n");
    let before = snapshot(&root);
    let (reader, writer) = crate::restore::full_pipe();
    let mut cmd = env.cmd(&["restore", &archive, "--force"]);
    cmd.stdout(writer).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(cmd);
    wait_for("the restore to be held by the full pipe", || {
        blocked_writing(child.id())
    });
    assert_eq!(env.archives().len(), 2, "the safety copy is registered");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(reader);
    let copy = env.archives()[1].clone();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("resbak: interrupted: the safety copy {copy} was kept; results/s is as it was\n")
    );
    assert_eq!(snapshot(&root), before);
    env.run(&["restore", &copy, "--to", "check"]);
    assert_eq!(snapshot(&env.path().join("check")), before);
}

#[test]
fn an_interrupt_with_an_unwritable_stderr_still_exits_and_leaves_nothing() {
    use nix::sys::signal::Signal::SIGINT;
    let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("SKIPPED unwritable stderr: no /dev/full");
        return;
    };
    let env = Env::new();
    big_sample(&env, "s", 24);
    let archive = env.backup("s");
    let manifest = fs::read(env.backups().join("manifest.yaml")).unwrap();
    // Another level: nothing is copied from the first archive, so it compresses it all.
    let mut backup = env.cmd(&["backup", "s", "--always", "--level", "9"]);
    backup.stderr(full.try_clone().unwrap());
    signal_and_check(backup, &env.backups(), ".resbak-tmp-", SIGINT, 130);
    assert_eq!(
        fs::read(env.backups().join("manifest.yaml")).unwrap(),
        manifest
    );
    let mut restore = env.cmd(&["restore", &archive, "--to", "elsewhere/s"]);
    restore.stderr(full);
    let parent = env.path().join("elsewhere");
    signal_and_check(restore, &parent, ".resbak-restore-", SIGINT, 130);
    assert!(!parent.join("s").exists());
}

/// Starts `cmd`, waits until it has created a working entry named `prefix...` in `dir`, sends
/// `signal` and checks the exit code, the one line it prints (`said`) and that nothing is left
/// in `dir` but what was there before.
fn interrupt(
    mut cmd: Command,
    dir: &Path,
    prefix: &str,
    signal: nix::sys::signal::Signal,
    code: i32,
    said: &str,
) {
    cmd.stderr(Stdio::piped());
    let err = signal_and_check(cmd, dir, prefix, signal, code);
    assert_eq!(err, format!("resbak: interrupted: {said}\n"), "{signal}");
}

/// Starts `cmd` (its standard error as set), waits until it has created a working entry named
/// `prefix...` in `dir`, sends `signal` and checks the exit code and that nothing is left in
/// `dir` but what was there before. Returns what it printed to a piped standard error.
fn signal_and_check(
    mut cmd: Command,
    dir: &Path,
    prefix: &str,
    signal: nix::sys::signal::Signal,
    code: i32,
) -> String {
    let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
    wait_for("the working entry", || {
        !names_with_prefix(dir, prefix).is_empty()
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let status = child.wait_timeout(Duration::from_secs(120)).unwrap();
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("{signal}: it goes on after the signal");
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    }
    assert_eq!(status.code(), Some(code), "{signal}: {err}");
    let left: Vec<_> = names_with_prefix(dir, ".resbak-");
    assert!(left.is_empty(), "{signal} left {left:?}");
    err
}

/// The file grows while the backup is stopped part way through reading it (see
/// [`changing_mid_read`]), as in the shrinking-file test.
#[test]
fn a_file_that_changes_while_it_is_read_is_named_and_the_backup_exits_1() {
    let env = Env::new();
    big_sample(&env, "s", 8);
    let growing = env.results().join("s/runs/blob_000.bin");
    let len: u64 = 32 << 20;
    fs::File::options()
        .write(true)
        .open(&growing)
        .unwrap()
        .set_len(len)
        .unwrap();
    let out = backup_changing_mid_read(&env, &growing, len, |file| {
        let mut file = fs::OpenOptions::new().append(true).open(file).unwrap();
        std::io::Write::write_all(&mut file, b"more\n").unwrap();
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("s/runs/blob_000.bin: changed while it was read"),
        "{err}"
    );
    assert_eq!(env.archives().len(), 1, "the archive is registered");
    env.run(&["verify", "--deep"]);
}

/// Runs `backup s` and calls `change` on `file` (of `len` bytes) once, while the backup reads
/// it to write the archive (see [`changing_mid_read`]).
fn backup_changing_mid_read(
    env: &Env,
    file: &Path,
    len: u64,
    change: impl Fn(&Path) + Send + Sync,
) -> std::process::Output {
    changing_mid_read(env, &["backup", "s"], file, len, change)
}

/// Runs resbak with `args` and calls `change` on `file` (of `len` bytes) once, while resbak
/// is stopped part way through reading it for an archive it writes: its handle on the file is
/// past the start and short of the end, and it has an archive open for writing in the backup
/// folder. A read in another pass (a check of what the folder holds) goes on untouched.
fn changing_mid_read(
    env: &Env,
    args: &[&str],
    file: &Path,
    len: u64,
    change: impl Fn(&Path) + Send + Sync,
) -> std::process::Output {
    let child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let file = fs::canonicalize(file).unwrap();
    let backups = fs::canonicalize(env.path()).unwrap().join("backups");
    let in_pass = || {
        let mid_read = read_position(pid, &file).is_some_and(|pos| pos > 0 && pos < len);
        mid_read && writes_archive(pid, &backups)
    };
    std::thread::scope(|scope| {
        let changed = scope.spawn(|| {
            while fs::read_dir(format!("/proc/{pid}/fd")).is_ok() {
                if !in_pass() {
                    continue;
                }
                // Stopped, nothing moves: the pass it is in and its position are as seen.
                let Some(_stopped) = Stopped::new(pid) else {
                    return false;
                };
                if in_pass() {
                    change(&file);
                    return true;
                }
            }
            false
        });
        let out = child.wait_with_output().unwrap();
        assert!(
            changed.join().unwrap(),
            "the file changed while it was read for the archive"
        );
        out
    })
}

/// A process held with SIGSTOP until dropped, which sends SIGCONT.
struct Stopped(nix::unistd::Pid);

impl Stopped {
    /// Stops `pid` and waits until every thread of it has stopped (`t` under a debugger);
    /// `None` if it exits first.
    fn new(pid: u32) -> Option<Stopped> {
        use nix::sys::signal::{Signal, kill};
        let id = nix::unistd::Pid::from_raw(pid as i32);
        kill(id, Signal::SIGSTOP).ok()?;
        let stopped = Stopped(id);
        loop {
            let states: Vec<char> = fs::read_dir(format!("/proc/{pid}/task"))
                .ok()?
                .flatten()
                .filter_map(|task| fs::read_to_string(task.path().join("stat")).ok())
                .filter_map(|stat| stat.rsplit_once(") ")?.1.chars().next())
                .collect();
            if states.is_empty() || states.contains(&'Z') || states.contains(&'X') {
                return None;
            }
            if states.iter().all(|&s| s == 'T' || s == 't') {
                return Some(stopped);
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// Whether `pid` has a temporary file in `backups` open for writing: an archive being written.
fn writes_archive(pid: u32, backups: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let Ok(target) = fs::read_link(fd.path()) else {
            return false;
        };
        let temp = target.parent() == Some(backups)
            && target
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".resbak-tmp-"));
        let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
        let flags = fs::read_to_string(info).ok().and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            u32::from_str_radix(flags.trim(), 8).ok()
        });
        // O_WRONLY is 1, O_RDWR 2: the low two bits say how the file was opened.
        temp && flags.is_some_and(|f| f & 0o3 != 0)
    })
}

/// The position of `pid`'s open handle on `path`, if it has one.
fn read_position(pid: u32, path: &Path) -> Option<u64> {
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if fs::read_link(fd.path()).is_ok_and(|target| target == path) {
            let info = fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .ok()?;
            let pos = info.lines().find_map(|l| l.strip_prefix("pos:"))?;
            return pos.trim().parse().ok();
        }
    }
    None
}

#[test]
fn a_file_that_shrinks_while_it_is_read_is_padded_named_and_registered() {
    let env = Env::new();
    env.sample("s");
    let shrinking = env.results().join("s/runs/big.bin");
    let len: u64 = 32 << 20;
    fs::File::create(&shrinking).unwrap().set_len(len).unwrap();
    let out = backup_changing_mid_read(&env, &shrinking, len, |file| {
        let file = fs::File::options().write(true).open(file).unwrap();
        file.set_len(0).unwrap();
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("s/runs/big.bin: changed while it was read (it shrank by "),
        "{err}"
    );
    assert!(err.contains("bytes; padded with zeros)"), "{err}");
    assert_eq!(env.archives().len(), 1, "the archive is registered");
    let manifest = env.manifest();
    let entry = &manifest["backups"][0];
    assert!(entry["bytes"].as_u64().unwrap() >= len, "{entry:?}");
    env.run(&["verify", "--deep"]);
    // The archive holds the file at the size it had when reading began, padded with zeros.
    let archive = entry["backup_file"].as_str().unwrap();
    env.run(&["restore", archive, "--to", "out"]);
    let restored = fs::metadata(env.path().join("out/runs/big.bin")).unwrap();
    assert_eq!(restored.len(), len);
    // The next backup sees the file as changed, not as what the archive holds.
    let next = env.run(&["backup", "s"]);
    assert!(next.contains("Backed up s"), "{next}");
    assert_eq!(env.archives().len(), 2);
}

#[test]
fn reindex_takes_safety_kinds_from_the_previous_manifest() {
    let env = Env::new();
    env.sample("s");
    let first = env.backup("s");
    write(&env.results().join("s/notes.txt"), "changed\n");
    env.run(&["restore", &first, "--force"]);
    let kinds = |env: &Env| -> Vec<(String, String)> {
        let manifest = env.manifest();
        let entries = manifest["backups"].as_sequence().unwrap().iter();
        entries
            .map(|e| {
                let kind = e["kind"].as_str().unwrap_or("regular").to_string();
                (e["backup_file"].as_str().unwrap().to_string(), kind)
            })
            .collect()
    };
    let before = kinds(&env);
    let safety = before
        .iter()
        .find(|(_, k)| k == "safety")
        .unwrap()
        .0
        .clone();
    // One more update, so the previous manifest lists the safety copy; this backup is in
    // the damaged manifest only.
    let last = env.backup("s");
    fs::write(
        env.backups().join("manifest.yaml"),
        "version: 1\nbackups: [\n",
    )
    .unwrap();
    let out = env.run_code(&["reindex"], 0);
    let mut after = kinds(&env);
    after.sort();
    let mut expected = before.clone();
    expected.push((last.clone(), "regular".into()));
    expected.sort();
    assert_eq!(after, expected, "{}", stdout(&out));
    assert!(after.contains(&(safety, "safety".into())));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not be recovered") && err.contains(&last),
        "{err}"
    );
    // The safety copy never becomes the strategy's latest backup.
    let restored = env.run(&["restore", "s", "--to", "latest"]);
    assert!(restored.contains(&last), "{restored}");
}

/// An interruption the moment a backup's archive gets its final name waits until the archive
/// is in the manifest too: never a finished archive the catalogue does not know, and the line
/// it prints says what was registered.
#[test]
fn an_interrupt_as_the_archive_is_placed_leaves_it_registered() {
    use nix::sys::signal::Signal::SIGINT;
    let env = Env::new();
    big_sample(&env, "s", 24);
    env.backup("s");
    let on_disk = || {
        let mut names: Vec<String> = fs::read_dir(env.backups())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tar.gz"))
            .collect();
        names.sort();
        names
    };
    let before = on_disk();
    let mut child = env
        .cmd(&["backup", "s", "--always"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the archive under its final name", || {
        on_disk().len() > before.len() || child.try_wait().unwrap().is_some()
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, SIGINT);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let mut catalogued = env.archives();
    catalogued.sort();
    assert_eq!(on_disk(), catalogued, "every archive is catalogued: {err}");
    match out.status.code() {
        Some(0) => {}
        Some(130) => assert!(
            err.starts_with("resbak: interrupted: s was backed up")
                && err.ends_with("; nothing after it was registered\n")
                && err.lines().count() == 1,
            "{err}"
        ),
        other => panic!("exit {other:?}: {err}"),
    }
}

/// Under `--json`, an interruption is still one JSON error object on standard output, so a
/// wrapper that parses standard output always can.
#[test]
fn an_interruption_under_json_prints_a_json_error() {
    use nix::sys::signal::Signal::SIGINT;
    let env = Env::new();
    big_sample(&env, "s", 24);
    env.backup("s");
    let mut child = env
        .cmd(&["--json", "backup", "s", "--always"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the working entry", || {
        !names_with_prefix(&env.backups(), ".resbak-tmp-").is_empty()
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, SIGINT).unwrap();
    let status = child.wait_timeout(Duration::from_secs(120)).unwrap();
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("it goes on after the signal");
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(130), "{out}");
    let value: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(value["error"]["kind"], "interrupted", "{value}");
    assert_eq!(
        value["error"]["message"],
        "interrupted: nothing was registered"
    );
}

/// A safety copy's name says what it is, so even with the manifest and its previous version
/// both lost, `reindex` brings it back as a safety copy: it never becomes the strategy's latest
/// backup nor pushes a real backup out.
#[test]
fn reindex_knows_a_safety_copy_by_its_name_with_no_manifest_left() {
    let env = Env::new();
    env.sample("s");
    let first = env.backup("s");
    write(&env.results().join("s/notes.txt"), "changed\n");
    env.run(&["restore", &first, "--force"]);
    let copy = env
        .archives()
        .into_iter()
        .find(|a| *a != first)
        .expect("a safety copy");
    assert!(copy.ends_with(".safety.tar.gz"), "{copy}");
    for name in ["manifest.yaml", "manifest.yaml.bak", "verified.yaml"] {
        let _ = fs::remove_file(env.backups().join(name));
    }
    env.run(&["reindex"]);
    let manifest = env.manifest();
    let kind_of = |file: &str| {
        let entries = manifest["backups"].as_sequence().unwrap();
        let entry = entries.iter().find(|e| e["backup_file"] == file).unwrap();
        entry["kind"].as_str().unwrap_or("regular").to_string()
    };
    assert_eq!(kind_of(&copy), "safety");
    assert_eq!(kind_of(&first), "regular");
    let out = env.run(&[
        "prune",
        "s",
        "--keep",
        "1",
        "--keep-safety",
        "1",
        "--dry-run",
    ]);
    assert!(!out.contains("Would remove old backup"), "{out}");
}

/// A file written while `restore --force` makes its safety copy may be in the copy torn: the
/// restore then replaces nothing, keeps the copy and says so. The folder's metadata is the
/// backup's, so the restore first reads every file to compare contents: the file changes in
/// the later read, for the copy, not in that one.
#[test]
fn a_forced_restore_whose_safety_copy_saw_a_file_change_replaces_nothing() {
    let env = Env::new();
    let root = env.sample("s");
    let big = root.join("runs/big.bin");
    // Hashed at gigabytes a second: long enough to be caught mid-read on a busy machine too.
    let len: u64 = 128 << 20;
    fs::File::create(&big).unwrap().set_len(len).unwrap();
    write(&root.join("notes.txt"), "as backed up\n");
    crate::util::set_mtimes(&root, 1_700_000_000);
    let archive = env.backup("s");
    write(&root.join("notes.txt"), "changed then\n");
    crate::util::set_mtimes(&root, 1_700_000_000);
    let args = ["restore", archive.as_str(), "--force"];
    let out = changing_mid_read(&env, &args, &big, len, |file| {
        let mut file = fs::OpenOptions::new().append(true).open(file).unwrap();
        std::io::Write::write_all(&mut file, b"more\n").unwrap();
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("changed while its safety copy"), "{err}");
    assert!(err.contains("nothing was replaced"), "{err}");
    let notes = fs::read_to_string(root.join("notes.txt")).unwrap();
    assert_eq!(notes, "changed then\n", "the folder is left alone");
    assert_eq!(fs::metadata(&big).unwrap().len(), len + 5);
    assert_eq!(env.archives().len(), 2, "the safety copy is kept");
}

/// Interrupted once it has begun to remove old backups, prune finishes removing them and its one
/// `interrupted` line names each one: no removal goes unlogged, no entry is dropped with its
/// archive left on disk.
#[test]
fn an_interrupted_prune_names_every_backup_it_removed() {
    let env = Env::new();
    env.sample("s");
    let args: Vec<&str> = ["backup", "--always"]
        .into_iter()
        .chain(std::iter::repeat_n("s", 40))
        .collect();
    env.run(&args);
    let all = env.archives();
    let manifest = env.backups().join("manifest.yaml");
    let child = env
        .cmd(&["prune", "--keep", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the manifest without the oldest backup", || {
        !fs::read_to_string(&manifest).unwrap().contains(&all[0])
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!([Some(0), Some(130)].contains(&out.status.code()), "{said}");
    for archive in &all[..39] {
        assert!(
            !env.backups().join(archive).exists(),
            "{archive} left: {said}"
        );
        assert!(
            said.contains(archive.as_str()),
            "{archive} removed unsaid: {said}"
        );
    }
    assert_eq!(env.archives(), [all[39].clone()]);
}
