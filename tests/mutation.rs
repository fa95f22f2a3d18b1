//! Mutation test: seeded random corruptions of a valid archive (byte flips, truncations,
//! insertions, zeroed blocks, changed gzip header fields). For each, `restore` of the loose file
//! and `verify --deep` of it as a catalogued backup (with the mutant's own size and checksum, so
//! the entries really are read) both succeed with a byte-identical tree or both fail cleanly:
//! an exit code (1 or 2) rather than a panic or a signal, one error line, nothing left behind,
//! nothing written outside a sandbox folder. gzip's CRC-32 covers the whole decompressed
//! stream, so a mutant that decodes at all decodes to the original.
//!
//! `RESBAK_MUTATIONS` sets the number of cases (default [`DEFAULT_CASES`]) and
//! `RESBAK_MUTATION_SEED` the first seed (default 1); a failure prints how to replay its case.

use crate::util::{Env, Rng, paths, register, snapshot};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Cases per run: enough to hit every part of the archive, quick enough for CI.
const DEFAULT_CASES: u64 = 500;

/// Name of the mutant in the sandbox's backup folder.
const ARCHIVE: &str = "s_20260101_000000.tar.gz";

#[test]
fn corrupted_archives_restore_exactly_or_fail_cleanly() {
    let cases = setting("RESBAK_MUTATIONS", DEFAULT_CASES);
    let first = setting("RESBAK_MUTATION_SEED", 1);
    let env = Env::new();
    let expected = snapshot(&env.sample("s"));
    let name = env.backup("s");
    let original = fs::read(env.backups().join(&name)).unwrap();
    let recorded = &env.manifest()["backups"][0];
    let (files, bytes) = (
        recorded["entries"].as_u64().unwrap(),
        recorded["bytes"].as_u64().unwrap(),
    );
    let sandbox = env.path().join("sandbox");
    let backups = sandbox.join("backups");
    fs::create_dir_all(&backups).unwrap();
    let loose = sandbox.join("mutant.tar.gz");
    let out = sandbox.join("out");
    let before = outside(&env);

    let (mut restored, mut refused) = (0, 0);
    for seed in first..first + cases {
        let mut mutant = original.clone();
        let what = mutate(&mut mutant, &mut Rng(seed));
        let case = format!(
            "seed {seed} ({what}); replay with RESBAK_MUTATION_SEED={seed} RESBAK_MUTATIONS=1"
        );
        fs::write(&loose, &mutant).unwrap();
        fs::write(backups.join(ARCHIVE), &mutant).unwrap();
        fs::remove_file(backups.join("manifest.yaml")).ok();
        register(&backups, ARCHIVE, "s", files, bytes);

        let restore = env
            .cmd(&["restore", path(&loose), "--to", path(&out)])
            .output()
            .unwrap();
        let restore_ok = restore_ended_cleanly(&restore, &case);
        if restore_ok {
            assert_eq!(snapshot(&out), expected, "{case}: restored tree differs");
            fs::remove_dir_all(&out).unwrap();
        }
        let verify = env
            .cmd(&["verify", "--deep", "--backup-dir", path(&backups)])
            .output()
            .unwrap();
        let verify_ok = verify_ended_cleanly(&verify, &case);
        assert_eq!(
            restore_ok, verify_ok,
            "{case}: restore and verify --deep disagree"
        );

        let left: Vec<PathBuf> = paths(&sandbox)
            .into_iter()
            .filter(|p| p.starts_with("out") || p.to_string_lossy().contains(".resbak"))
            .collect();
        assert!(left.is_empty(), "{case}: left behind {left:?}");
        assert_eq!(outside(&env), before, "{case}: wrote outside the sandbox");
        if restore_ok {
            restored += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("{cases} mutants: {restored} restored exactly, {refused} refused cleanly");
    if cases >= 50 {
        assert!(
            restored > 0 && refused > 0,
            "the mutants must exercise both outcomes"
        );
    }
}

/// Checks that restore exited 0, 1 or 2 (not killed, no panic) and, if it failed, said why in
/// exactly one `resbak:` line besides warnings. Returns whether it succeeded.
fn restore_ended_cleanly(out: &Output, case: &str) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)) && !stderr.contains("panicked"),
        "{case}: restore ended with {:?}\n{stderr}",
        out.status
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("resbak: warning: "))
        .collect();
    if code == Some(0) {
        assert!(
            errors.is_empty(),
            "{case}: restore succeeded with\n{stderr}"
        );
        return true;
    }
    assert!(
        errors.len() == 1 && errors[0].starts_with("resbak: "),
        "{case}: restore must fail with one error line:\n{stderr}"
    );
    false
}

/// Checks that verify exited 0 or 1 with nothing on stderr but hints and reported the archive
/// on one line, `OK` or `FAILED` to match, then the summary. Returns whether it found it intact.
fn verify_ended_cleanly(out: &Output, case: &str) -> bool {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    let only_hints = stderr.lines().all(|l| l.starts_with("resbak: hint: "));
    assert!(
        matches!(code, Some(0 | 1)) && only_hints,
        "{case}: verify --deep ended with {:?}\n{stdout}{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let verdict = if code == Some(0) {
        "OK      "
    } else {
        "FAILED  "
    };
    assert!(
        lines.len() == 2 && lines[0].starts_with(&format!("{verdict}{ARCHIVE}")),
        "{case}: verify --deep exited {code:?} and said:\n{stdout}"
    );
    code == Some(0)
}

/// Everything in the test folder outside the sandbox, byte for byte.
fn outside(env: &Env) -> BTreeMap<PathBuf, String> {
    let mut tree = snapshot(env.path());
    tree.retain(|p, _| !p.starts_with("sandbox"));
    tree
}

/// Applies one corruption chosen by `rng`: flip 1-8 bytes, truncate, insert 1-16 random bytes,
/// zero 512 bytes, or change the gzip header's time, flags or OS byte (bytes 4-9), which
/// nothing checks: those mutants must restore exactly. Returns what it did.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) -> String {
    match rng.below(5) {
        4 => {
            let at = 4 + rng.below(6);
            bytes[at] ^= 1 + rng.below(255) as u8;
            format!("changed gzip header byte {at}")
        }
        0 => {
            let at: Vec<usize> = (0..1 + rng.below(8))
                .map(|_| {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 + rng.below(255) as u8;
                    at
                })
                .collect();
            format!("flipped bytes at {at:?}")
        }
        1 => {
            let len = rng.below(bytes.len());
            bytes.truncate(len);
            format!("truncated to {len} bytes")
        }
        2 => {
            let at = rng.below(bytes.len() + 1);
            let insert: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            let what = format!("inserted {} bytes at {at}", insert.len());
            bytes.splice(at..at, insert);
            what
        }
        _ => {
            let start = rng.below(bytes.len());
            let end = (start + 512).min(bytes.len());
            bytes[start..end].fill(0);
            format!("zeroed bytes {start}..{end}")
        }
    }
}

fn setting(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{var}={value:?} is not a number")),
        Err(_) => default,
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
