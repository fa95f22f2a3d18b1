//! Hostile and broken archives: every one is refused by `restore` (into a new folder and over
//! existing results) with a one-line message naming the offending entry or archive, nothing is
//! written outside the destination, the results stay byte-identical, and `verify --deep`
//! reports it. The archives are built byte by byte with the helpers in `util`.

use crate::util::{Env, Raw, RawTar, gzip, paths, register, set_mtimes, snapshot, stdout, write};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

/// The name under which each hostile archive is catalogued.
const ARCHIVE: &str = "s_20260101_000000.tar.gz";

/// What resbak must say about an archive.
#[derive(Clone, Copy)]
enum Expect {
    /// The policy refuses it: the message quotes this (part of the) entry name, then the reason.
    Refused(&'static str, &'static str),
    /// It cannot be decoded: the message calls the archive corrupt and says this.
    Corrupt(&'static str),
}

/// One archive, built inside the test folder (so absolute names can point into it).
struct Case {
    what: &'static str,
    archive: fn(&Path) -> Vec<u8>,
    expect: Expect,
}

fn tgz(entries: &[Raw]) -> Vec<u8> {
    entries
        .iter()
        .fold(RawTar::new(), |tar, e| tar.entry(e))
        .gzip()
}

/// `<root>/results/<name>` as an absolute entry name, so anything written there shows in `check`.
fn absolute(root: &Path, name: &str) -> String {
    root.join("results")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn check_all(cases: &[Case]) {
    for case in cases {
        check(case);
    }
}

/// Runs every command on one case and checks what the module doc promises.
fn check(case: &Case) {
    let env = Env::new();
    let root = env.sample("s");
    let bytes = (case.archive)(env.path());
    let loose = env.path().join("hostile.tar.gz");
    fs::write(&loose, &bytes).unwrap();
    fs::create_dir_all(env.backups()).unwrap();
    fs::write(env.backups().join(ARCHIVE), &bytes).unwrap();
    register(&env.backups(), ARCHIVE, "s", 0, 0);
    let results = snapshot(&root);
    let everything = paths(env.path());
    let what = case.what;

    // Not in any manifest: extracted with a warning, into a folder that does not exist yet.
    let err = env.fail(
        &[
            "restore",
            loose.to_str().unwrap(),
            "--to",
            "results/restored",
        ],
        1,
    );
    says(what, "restore --to", &err, case.expect, "hostile.tar.gz");
    assert_eq!(
        paths(env.path()),
        everything,
        "{what}: restore --to changed the folder"
    );
    assert_eq!(snapshot(&root), results, "{what}: results changed");

    // Catalogued with a matching checksum, replacing the existing results.
    let err = env.fail(&["restore", ARCHIVE, "--force"], 1);
    says(what, "restore --force", &err, case.expect, ARCHIVE);
    assert_eq!(
        outside_backups(&paths(env.path())),
        outside_backups(&everything),
        "{what}: restore --force changed something outside the backup folder"
    );
    assert_eq!(snapshot(&root), results, "{what}: results replaced");

    // Only a deep check applies the policy; the checksum alone matches.
    let out = stdout(&env.run_code(&["verify", "--deep", ARCHIVE], 1));
    assert_eq!(out.lines().count(), 2, "{what}: verify --deep:\n{out}");
    let line = out
        .lines()
        .find(|l| l.contains(ARCHIVE))
        .unwrap_or_default();
    assert!(
        line.starts_with(&format!("FAILED  {ARCHIVE}: ")),
        "{what}: verify --deep:\n{out}"
    );
    match case.expect {
        Expect::Refused(entry, reason) => {
            for part in ["refusing archive entry", entry, reason] {
                assert!(
                    line.contains(part),
                    "{what}: verify --deep lacks {part:?}:\n{out}"
                );
            }
        }
        Expect::Corrupt(detail) => {
            for part in ["cannot be decompressed", detail] {
                assert!(
                    line.contains(part),
                    "{what}: verify --deep lacks {part:?}:\n{out}"
                );
            }
        }
    }
    env.run(&["verify", ARCHIVE]);
}

/// Checks a failed command's stderr: warnings and exactly one error line, all prefixed, and the
/// error names the entry and reason, or the archive and what is wrong with it.
fn says(what: &str, command: &str, stderr: &str, expect: Expect, archive: &str) {
    assert!(
        stderr.lines().all(|l| l.starts_with("resbak: ")),
        "{what}: {command}: stray output:\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("resbak: warning: "))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: {command}: one error line:\n{stderr}"
    );
    let parts = match expect {
        Expect::Refused(entry, reason) => vec!["refusing archive entry", entry, reason],
        Expect::Corrupt(detail) => vec![archive, "is corrupt", detail],
    };
    for part in parts {
        assert!(
            errors[0].contains(part),
            "{what}: {command}: the error lacks {part:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{what}: {command}:\n{stderr}");
}

fn outside_backups(paths: &BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    paths
        .iter()
        .filter(|p| !p.starts_with("backups"))
        .cloned()
        .collect()
}

/// Paths that climb out (absolute, `..`, also hidden in PAX, GNU and ustar-prefix names) or
/// leave the top folder. The escaping ones aim into the test folder, where `check` would see
/// anything written.
#[test]
fn entries_outside_the_top_folder_are_refused() {
    let dotdot = "it contains a '..' component";
    let abs = "it is an absolute path";
    let outside = "it lies outside the archive's top folder";
    check_all(&[
        Case {
            what: "absolute path",
            archive: |root| {
                let name = absolute(root, "evil-abs");
                tgz(&[Raw::dir("s"), Raw::file(&name, b"x")])
            },
            expect: Expect::Refused("/results/evil-abs\"", abs),
        },
        Case {
            what: "'..' components",
            archive: |_| tgz(&[Raw::dir("s"), Raw::file("s/../../evil", b"x")]),
            expect: Expect::Refused("\"s/../../evil\"", dotdot),
        },
        Case {
            what: "'..' in a PAX path",
            archive: |_| {
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .pax(&[("path", b"s/../../evil-pax")])
                    .entry(&Raw::file("s/innocent", b"x"))
                    .gzip()
            },
            expect: Expect::Refused("\"s/../../evil-pax\"", dotdot),
        },
        Case {
            what: "absolute PAX path",
            archive: |root| {
                let name = absolute(root, "evil-pax-abs");
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .pax(&[("path", name.as_bytes())])
                    .entry(&Raw::file("s/innocent", b"x"))
                    .gzip()
            },
            expect: Expect::Refused("/results/evil-pax-abs\"", abs),
        },
        Case {
            what: "'..' in a GNU long name",
            archive: |_| {
                let name = format!("s/{}/../../../evil-gnu", "x".repeat(120));
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .gnu_long(EntryType::GNULongName, name.as_bytes())
                    .entry(&Raw::file("s/innocent", b"x"))
                    .gzip()
            },
            expect: Expect::Refused("/../../../evil-gnu\"", dotdot),
        },
        Case {
            what: "'..' in a ustar prefix",
            archive: |_| {
                let mut header = tar::Header::new_ustar();
                let ustar = header.as_ustar_mut().unwrap();
                ustar.prefix[..7].copy_from_slice(b"s/../..");
                ustar.name[..11].copy_from_slice(b"evil-prefix");
                header.set_entry_type(EntryType::Regular);
                header.set_size(1);
                header.set_mode(0o644);
                header.set_cksum();
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .header(&header, b"x")
                    .gzip()
            },
            expect: Expect::Refused("\"s/../../evil-prefix\"", dotdot),
        },
        Case {
            what: "another top folder",
            archive: |_| tgz(&[Raw::dir("s"), Raw::file("other/evil", b"x")]),
            expect: Expect::Refused("\"other/evil\"", outside),
        },
        Case {
            what: "a top folder that only starts with the strategy's name",
            archive: |_| tgz(&[Raw::dir("s"), Raw::file("s-evil/x", b"x")]),
            expect: Expect::Refused("\"s-evil/x\"", outside),
        },
        Case {
            what: "a file beside the top folder",
            archive: |_| tgz(&[Raw::dir("s"), Raw::file("evil", b"x")]),
            expect: Expect::Refused("\"evil\"", outside),
        },
        Case {
            what: "a top folder that is not valid UTF-8",
            archive: |_| {
                tgz(&[
                    Raw {
                        name: b"s\xff",
                        ..Raw::dir("")
                    },
                    Raw {
                        name: b"s\xff/a",
                        ..Raw::file("", b"x")
                    },
                ])
            },
            expect: Expect::Refused("\"s\u{fffd}\"", outside),
        },
        Case {
            what: "a top entry that is a file",
            archive: |_| tgz(&[Raw::file("s", b"x")]),
            expect: Expect::Refused("\"s\"", "the top entry must be a folder"),
        },
    ]);
}

/// Links that point outside, and entries written through a link stored earlier.
#[test]
fn links_pointing_outside_and_writes_through_links_are_refused() {
    let outside = "its target lies outside the archive's top folder";
    let earlier = "a hard link must point to a file stored earlier";
    let through = "it would be written through the link";
    check_all(&[
        Case {
            what: "symlink climbing out",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/up", EntryType::Symlink, "../.."),
                ])
            },
            expect: Expect::Refused("\"s/up\"", outside),
        },
        Case {
            what: "symlink to the top folder's parent",
            archive: |_| tgz(&[Raw::dir("s"), Raw::link("s/up", EntryType::Symlink, "..")]),
            expect: Expect::Refused("\"s/up\"", outside),
        },
        Case {
            what: "symlink to an absolute path",
            archive: |root| {
                let target = absolute(root, "s");
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/abs", EntryType::Symlink, &target),
                ])
            },
            expect: Expect::Refused("\"s/abs\"", "its target is an absolute path"),
        },
        Case {
            what: "symlink with '..' after a folder name",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::dir("s/a"),
                    Raw::link("s/a/l", EntryType::Symlink, "x/../../../.."),
                ])
            },
            expect: Expect::Refused("\"s/a/l\"", "its target uses '..' after a folder name"),
        },
        Case {
            what: "symlink target in a PAX linkpath",
            archive: |_| {
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .pax(&[("linkpath", b"../../evil")])
                    .entry(&Raw::link("s/pax", EntryType::Symlink, "harmless"))
                    .gzip()
            },
            expect: Expect::Refused("\"s/pax\"", outside),
        },
        Case {
            what: "symlink target in a GNU long link",
            archive: |_| {
                let target = "../".repeat(40) + "evil";
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/long", EntryType::Symlink, &target),
                ])
            },
            expect: Expect::Refused("\"s/long\"", outside),
        },
        Case {
            what: "hard link to an absolute path",
            archive: |root| {
                let target = absolute(root, "s/trades.csv");
                tgz(&[Raw::dir("s"), Raw::link("s/hard", EntryType::Link, &target)])
            },
            expect: Expect::Refused("\"s/hard\"", "it is an absolute path"),
        },
        Case {
            what: "hard link with '..'",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/hard", EntryType::Link, "s/../../s/trades.csv"),
                ])
            },
            expect: Expect::Refused("\"s/hard\"", "it contains a '..' component"),
        },
        Case {
            what: "hard link outside the top folder",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/hard", EntryType::Link, "results/s/trades.csv"),
                ])
            },
            expect: Expect::Refused("\"s/hard\"", "it lies outside the archive's top folder"),
        },
        Case {
            what: "hard link to a file stored later",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/hard", EntryType::Link, "s/later"),
                    Raw::file("s/later", b"x"),
                ])
            },
            expect: Expect::Refused("\"s/hard\"", earlier),
        },
        Case {
            what: "hard link to a folder",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::dir("s/d"),
                    Raw::link("s/hard", EntryType::Link, "s/d"),
                ])
            },
            expect: Expect::Refused("\"s/hard\"", earlier),
        },
        Case {
            what: "hard link to a symlink",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/f", b"x"),
                    Raw::link("s/l", EntryType::Symlink, "f"),
                    Raw::link("s/hard", EntryType::Link, "s/l"),
                ])
            },
            expect: Expect::Refused("\"s/hard\"", earlier),
        },
        Case {
            what: "file written through a symlink to a folder inside",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::dir("s/sub"),
                    Raw::link("s/l", EntryType::Symlink, "sub"),
                    Raw::file("s/l/evil", b"x"),
                ])
            },
            expect: Expect::Refused("\"s/l/evil\"", through),
        },
        // Each link alone stays inside, but s/d/l is s, so s/d/l/m would be s/m -> the folder
        // above the top folder, and s/d/l/m/evil a file beside the restored folder.
        Case {
            what: "links chained through an earlier link",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::dir("s/d"),
                    Raw::link("s/d/l", EntryType::Symlink, ".."),
                    Raw::link("s/d/l/m", EntryType::Symlink, "../.."),
                    Raw::file("s/d/l/m/evil", b"x"),
                ])
            },
            expect: Expect::Refused("\"s/d/l/m\"", "written through the link s/d/l"),
        },
    ]);
}

/// Device files and FIFOs are refused, and so is every entry type resbak does not write.
#[test]
fn device_files_fifos_and_other_special_entries_are_refused() {
    let special = "device files and FIFOs are not restored";
    check_all(&[
        Case {
            what: "character device",
            archive: |_| tgz(&[Raw::dir("s"), Raw::special("s/tty", EntryType::Char)]),
            expect: Expect::Refused("\"s/tty\"", special),
        },
        Case {
            what: "block device",
            archive: |_| tgz(&[Raw::dir("s"), Raw::special("s/disk", EntryType::Block)]),
            expect: Expect::Refused("\"s/disk\"", special),
        },
        Case {
            what: "FIFO",
            archive: |_| tgz(&[Raw::dir("s"), Raw::special("s/pipe", EntryType::Fifo)]),
            expect: Expect::Refused("\"s/pipe\"", special),
        },
        Case {
            what: "GNU sparse file",
            archive: |_| {
                // Three bytes of data, then a hole up to 4 KiB.
                let mut header = Raw::file("s/sparse", b"abc").header();
                header.set_entry_type(EntryType::GNUSparse);
                let gnu = header.as_gnu_mut().unwrap();
                gnu.sparse[0].set_offset(0);
                gnu.sparse[0].set_length(3);
                gnu.sparse[1].set_offset(4096);
                gnu.sparse[1].set_length(0);
                gnu.set_real_size(4096);
                header.set_cksum();
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .header(&header, b"abc")
                    .gzip()
            },
            expect: Expect::Refused("\"s/sparse\"", "unsupported entry type 'S'"),
        },
        Case {
            what: "unknown entry type",
            archive: |_| tgz(&[Raw::dir("s"), Raw::special("s/odd", EntryType::new(b'Z'))]),
            expect: Expect::Refused("\"s/odd\"", "unsupported entry type 'Z'"),
        },
    ]);
}

/// tar has no socket type: backup skips sockets and FIFOs with a warning, so restore never
/// meets them in resbak's own archives.
#[test]
fn backup_skips_sockets_and_fifos() {
    let env = Env::new();
    let root = env.sample("s");
    let expected = snapshot(&root);
    let _socket = std::os::unix::net::UnixListener::bind(root.join("live.sock")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .is_ok_and(|s| s.success());
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    fs::File::open(&root).unwrap().set_modified(t).unwrap();
    let out = env.run_code(&["backup", "s"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped special file") && err.contains("live.sock"),
        "{err}"
    );
    if fifo {
        assert!(err.contains("pipe"), "{err}");
    }
    let archive = env.archives().pop().unwrap();
    env.run(&["restore", &archive, "--to", "restored"]);
    assert_eq!(snapshot(&env.path().join("restored")), expected);
}

/// setuid, setgid and sticky bits in an otherwise legitimate archive are dropped, never applied.
#[test]
fn setuid_setgid_and_sticky_bits_are_dropped() {
    let env = Env::new();
    let archive = env.path().join("modes.tar.gz");
    let entries = [
        Raw {
            mode: 0o1777,
            ..Raw::dir("s")
        },
        Raw {
            mode: 0o6755,
            ..Raw::file("s/run.sh", b"#!/bin/sh\n")
        },
        Raw {
            mode: 0o1644,
            ..Raw::file("s/sticky.csv", b"a,b\n")
        },
        Raw {
            mode: 0o3775,
            ..Raw::dir("s/shared")
        },
    ];
    fs::write(&archive, tgz(&entries)).unwrap();
    env.run(&["restore", archive.to_str().unwrap(), "--to", "out"]);
    let mode = |p: &str| {
        let meta = fs::symlink_metadata(env.path().join("out").join(p)).unwrap();
        meta.permissions().mode() & 0o7777
    };
    assert_eq!(mode(""), 0o777);
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(mode("sticky.csv"), 0o644);
    assert_eq!(mode("shared"), 0o775);
}

/// A small, valid archive for the broken-archive cases to damage.
fn valid() -> Vec<u8> {
    let rows: String = (0..400).map(|i| format!("{i},{}\n", i * 7 % 13)).collect();
    RawTar::new()
        .entry(&Raw::dir("s"))
        .entry(&Raw::file("s/a.csv", rows.as_bytes()))
        .entry(&Raw::file("s/b.csv", b"x,y\n1,2\n"))
        .finish()
}

/// A header declaring `size` bytes, followed by only a few.
fn oversized(size: u64) -> Vec<u8> {
    let mut header = Raw::file("s/big", b"").header();
    header.set_size(size);
    header.set_cksum();
    RawTar::new()
        .entry(&Raw::dir("s"))
        .header(&header, b"only a few bytes")
        .gzip()
}

/// Damaged gzip or tar framing: refused as corrupt, nothing left behind.
#[test]
fn broken_archives_fail_cleanly() {
    check_all(&[
        Case {
            what: "gzip cut in half",
            archive: |_| {
                let gz = gzip(&valid());
                gz[..gz.len() / 2].to_vec()
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "gzip without its trailer",
            archive: |_| {
                let gz = gzip(&valid());
                gz[..gz.len() - 8].to_vec()
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "gzip header only",
            archive: |_| gzip(&valid())[..10].to_vec(),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "bad gzip CRC",
            archive: |_| {
                let mut gz = gzip(&valid());
                let at = gz.len() - 8;
                gz[at] ^= 0x01;
                gz
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "bad gzip length",
            archive: |_| {
                let mut gz = gzip(&valid());
                let at = gz.len() - 1;
                gz[at] ^= 0x01;
                gz
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "garbage after the gzip stream",
            archive: |_| {
                let mut gz = gzip(&valid());
                gz.extend_from_slice(b"trailing garbage");
                gz
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "not gzip at all",
            archive: |_| b"date,close\n2025-01-01,100\n".repeat(40),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "an uncompressed tar",
            archive: |_| valid(),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "an empty file",
            archive: |_| Vec::new(),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "gzip of something that is not a tar",
            archive: |_| gzip(&b"not a tar header ".repeat(100)),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "bad tar header checksum",
            archive: |_| {
                let mut tar = valid();
                tar[512 + 100] ^= 0x01; // the mode field of s/a.csv's header
                gzip(&tar)
            },
            expect: Expect::Corrupt("checksum"),
        },
        Case {
            what: "declared size larger than the data, then the end blocks",
            archive: |_| oversized(8192),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "declared size larger than the data, then nothing",
            archive: |_| {
                let mut header = Raw::file("s/big", b"").header();
                header.set_size(8192);
                header.set_cksum();
                gzip(
                    &RawTar::new()
                        .entry(&Raw::dir("s"))
                        .header(&header, b"few")
                        .bytes,
                )
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "1 PiB declared",
            archive: |_| oversized(1 << 50),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "the largest size a header can declare",
            archive: |_| oversized(u64::MAX),
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "1 PiB declared in a PAX size record",
            archive: |_| {
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .pax(&[("size", b"1125899906842624")])
                    .entry(&Raw::file("s/big", b"few"))
                    .gzip()
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "1 PiB declared for a GNU long name",
            archive: |_| {
                let mut header = Raw {
                    name: b"././@LongLink",
                    ..Raw::special("", EntryType::GNULongName)
                }
                .header();
                header.set_size(1 << 50);
                header.set_cksum();
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .header(&header, b"s/name")
                    .gzip()
            },
            expect: Expect::Corrupt(""),
        },
        Case {
            what: "a modification time no clock can hold",
            archive: |_| {
                let mut header = Raw::file("s/when", b"x").header();
                header.set_mtime(u64::MAX);
                header.set_cksum();
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .header(&header, b"x")
                    .gzip()
            },
            expect: Expect::Corrupt("entry \"s/when\": modification time"),
        },
        Case {
            what: "no entries at all",
            archive: |_| RawTar::new().gzip(),
            expect: Expect::Corrupt("the archive is empty"),
        },
        Case {
            what: "a long name with no entry after it",
            archive: |_| {
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .gnu_long(EntryType::GNULongName, b"s/orphan")
                    .gzip()
            },
            expect: Expect::Corrupt(""),
        },
    ]);
}

/// A path stored twice, or an entry that would have to replace or go below an earlier one.
#[test]
fn duplicate_and_conflicting_paths_are_refused() {
    let twice = "the archive stores this path twice";
    check_all(&[
        Case {
            what: "one file twice",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/a", b"1"),
                    Raw::file("s/a", b"2"),
                ])
            },
            expect: Expect::Refused("\"s/a\"", twice),
        },
        Case {
            what: "one file twice, spelled differently",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/a", b"1"),
                    Raw::file("./s/./a", b"2"),
                ])
            },
            expect: Expect::Refused("\"./s/./a\"", twice),
        },
        Case {
            what: "a folder, then a file of the same name",
            archive: |_| tgz(&[Raw::dir("s"), Raw::dir("s/a/"), Raw::file("s/a", b"2")]),
            expect: Expect::Refused("\"s/a\"", twice),
        },
        Case {
            what: "a symlink, then a file of the same name",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::link("s/a", EntryType::Symlink, "b"),
                    Raw::file("s/a", b"2"),
                ])
            },
            expect: Expect::Refused("\"s/a\"", twice),
        },
        Case {
            what: "the same path again through a PAX record",
            archive: |_| {
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .entry(&Raw::file("s/a", b"1"))
                    .pax(&[("path", b"s/a")])
                    .entry(&Raw::file("s/other", b"2"))
                    .gzip()
            },
            expect: Expect::Refused("\"s/a\"", twice),
        },
        Case {
            what: "a file, then an entry below it",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/f", b"1"),
                    Raw::file("s/f/x", b"2"),
                ])
            },
            expect: Expect::Refused("\"s/f/x\"", "below s/f, which is not a folder"),
        },
        Case {
            what: "a hard link, then an entry below it",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/f", b"1"),
                    Raw::link("s/h", EntryType::Link, "s/f"),
                    Raw::dir("s/h/d"),
                ])
            },
            expect: Expect::Refused("\"s/h/d\"", "below s/h, which is not a folder"),
        },
        Case {
            what: "entries in a folder, then a file in its place",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/d/x", b"1"),
                    Raw::file("s/d", b"2"),
                ])
            },
            expect: Expect::Refused("\"s/d\"", "entries stored earlier lie below it"),
        },
        Case {
            what: "entries in a folder, then a symlink in its place",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::file("s/d/x", b"1"),
                    Raw::link("s/d", EntryType::Symlink, "x"),
                ])
            },
            expect: Expect::Refused("\"s/d\"", "entries stored earlier lie below it"),
        },
        Case {
            what: "the top folder twice",
            archive: |_| tgz(&[Raw::dir("s"), Raw::dir("s/")]),
            expect: Expect::Refused("\"s/\"", twice),
        },
    ]);
}

/// Names from an archive may hold newlines and terminal escapes; messages show them escaped, on
/// one line.
#[test]
fn control_characters_in_names_are_escaped_in_messages() {
    check_all(&[
        Case {
            what: "a bad header field in an entry with control characters in its name",
            archive: |_| {
                let mut header = Raw::file("", b"x").header();
                let gnu = header.as_gnu_mut().unwrap();
                let name = b"s/a\n\x1b[2Jb\rc";
                gnu.name[..name.len()].copy_from_slice(name);
                gnu.mode.copy_from_slice(b"garbage\0");
                header.set_cksum();
                RawTar::new()
                    .entry(&Raw::dir("s"))
                    .header(&header, b"x")
                    .gzip()
            },
            expect: Expect::Corrupt("when getting mode for s/a\\n\\u{1b}[2Jb\\rc"),
        },
        Case {
            what: "a file written through a link with control characters in its name",
            archive: |_| {
                tgz(&[
                    Raw::dir("s"),
                    Raw::dir("s/d"),
                    Raw::link("s/l\n\x1b[31m", EntryType::Symlink, "d"),
                    Raw::file("s/l\n\x1b[31m/x", b"x"),
                ])
            },
            expect: Expect::Refused(
                "\"s/l\\n\\u{1b}[31m/x\"",
                "written through the link s/l\\n\\u{1b}[31m",
            ),
        },
    ]);
}

/// Names a filesystem may hold all come back byte-identical.
#[test]
fn deep_long_and_odd_names_round_trip() {
    let env = Env::new();
    let root = env.results().join("s");
    let deep = root.join("d/".repeat(200));
    write(&deep.join("bottom.csv"), "1,2\n");
    write(&root.join("top.csv"), "top\n");
    std::os::unix::fs::symlink("../".repeat(200) + "top.csv", deep.join("up_to_top.csv")).unwrap();
    let component = |c: char, n: usize| c.to_string().repeat(n);
    write(&root.join(component('n', 255)), "longest name\n");
    write(&root.join("short").join(component('m', 240)), "long name\n");
    let mut long = root.join("long");
    for i in 0..15 {
        long.push(component(char::from(b'a' + i), 200));
    }
    write(&long.join("at_3000_bytes.csv"), "far down\n");
    let odd: [&[u8]; 9] = [
        b"caf\xe9.csv",
        b"\xff\xfe",
        b"line1\nline2.csv",
        b"tab\there",
        b"carriage\rreturn",
        b"back\\slash",
        b" leading space",
        b"-dash",
        "equity \u{1f4c8}.csv".as_bytes(),
    ];
    for name in odd {
        let name = std::ffi::OsStr::from_bytes(name);
        write(&root.join("odd").join(name), "odd\n");
        write(&root.join("odd_dirs").join(name).join("inside"), "odd\n");
    }
    std::os::unix::fs::symlink(
        std::ffi::OsStr::from_bytes(b"caf\xe9.csv"),
        root.join("odd").join("link\nto non-UTF-8"),
    )
    .unwrap();
    set_mtimes(&root, 1_700_000_000);
    assert!(
        long.join("at_3000_bytes.csv")
            .strip_prefix(&root)
            .unwrap()
            .as_os_str()
            .len()
            > 3000
    );
    let before = snapshot(&root);
    let archive = env.backup("s");
    env.run(&["verify", "--deep"]);
    fs::remove_dir_all(&root).unwrap();
    env.run(&["restore", &archive]);
    assert_eq!(snapshot(&root), before);
    let copy = env.path().join("copy");
    env.run(&["restore", &archive, "--to", copy.to_str().unwrap()]);
    assert_eq!(snapshot(&copy), before);
}

/// Names no filesystem holds (a component over 255 bytes, a path over 4096) fail cleanly:
/// non-zero exit, one line naming the entry, nothing left behind, results untouched.
#[test]
fn unrepresentable_names_fail_cleanly() {
    let long_component = format!("s/{}", "x".repeat(256));
    let long_path = format!("s/{}", format!("{}/", "y".repeat(250)).repeat(20));
    let with_newline = format!("s/line\nbreak{}", "z".repeat(250));
    for name in [long_component, long_path + "f", with_newline] {
        let env = Env::new();
        let root = env.sample("s");
        let loose = env.path().join("long.tar.gz");
        fs::write(&loose, tgz(&[Raw::dir("s"), Raw::file(&name, b"x")])).unwrap();
        fs::create_dir_all(env.backups()).unwrap();
        fs::copy(&loose, env.backups().join(ARCHIVE)).unwrap();
        register(&env.backups(), ARCHIVE, "s", 2, 1);
        let results = snapshot(&root);
        let everything = paths(env.path());
        let short = name[..60].replace('\n', "\\n");
        for args in [
            vec![
                "restore",
                loose.to_str().unwrap(),
                "--to",
                "results/restored",
            ],
            vec!["restore", ARCHIVE, "--force"],
        ] {
            let out = env.cmd(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(1 | 2)),
                "{short}: {args:?}: {:?}\n{err}",
                out.status
            );
            let errors: Vec<&str> = err
                .lines()
                .filter(|l| !l.starts_with("resbak: warning: "))
                .collect();
            assert!(
                errors.len() == 1
                    && errors[0].starts_with("resbak: ")
                    && errors[0].contains(&short),
                "{short}: {args:?}: one line naming the entry:\n{err}"
            );
            assert_eq!(
                outside_backups(&paths(env.path())),
                outside_backups(&everything),
                "{short}: {args:?}: left something behind"
            );
            assert_eq!(snapshot(&root), results, "{short}: {args:?}");
        }
    }
}
