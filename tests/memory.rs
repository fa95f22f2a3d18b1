//! Peak memory of resbak on hostile archives. The kernel keeps the largest resident set of the
//! finished children of a process (getrusage); this binary's only children are the ones below,
//! so each bound holds for every command run here.

#[allow(dead_code)]
mod datagen;
#[allow(dead_code)]
mod util;

use std::io::Write;
use util::{Env, Raw, RawTar, register};

/// The bound: resbak streams, so a hostile archive must not make it hold much at once.
const PEAK_LIMIT: u64 = 32 << 20;

/// Largest resident set of any finished child so far, in bytes.
fn children_peak() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    u64::try_from(usage.max_rss()).unwrap_or(0) * 1024
}

/// A tar.gz whose first record is a GNU long name of `len` bytes, streamed through gzip so the
/// test itself stays small.
fn long_name_bomb(path: &std::path::Path, len: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let long = Raw::file("././@LongLink", b"");
    let mut header = long.header();
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(len);
    header.set_cksum();
    gz.write_all(header.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        gz.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    let rest = RawTar::new().entry(&Raw::dir("s")).finish();
    let padding = (512 - len % 512) % 512;
    gz.write_all(&vec![0; padding as usize]).unwrap();
    gz.write_all(&rest).unwrap();
    gz.finish().unwrap();
}

#[test]
fn a_huge_long_name_is_refused_in_bounded_memory() {
    let env = Env::new();
    std::fs::create_dir(env.backups()).unwrap();
    let name = "s_20260101_000000.tar.gz";
    long_name_bomb(&env.backups().join(name), 256 << 20);
    register(&env.backups(), name, "s", 1, 0);
    // diff exits like diff(1): 2 when it cannot compare, a damaged archive included.
    for (args, code) in [
        (&["verify", "--deep"][..], 1),
        (&["restore", name], 1),
        (&["restore", name, "--include", "x"], 1),
        (&["restore", name, "--dry-run"], 1),
        (&["restore", name, "--dry-run", "--include", "x"], 1),
        (&["diff", name], 2),
    ] {
        let out = env.cmd(args).output().unwrap();
        let peak = children_peak();
        assert!(peak < PEAK_LIMIT, "{args:?}: peak RSS {} MiB", peak >> 20);
        let said = format!(
            "{}{}",
            util::stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        let head: String = said.chars().take(400).collect();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {head}");
        assert!(said.contains("more than 64 KiB"), "{args:?}: {head}");
    }
    assert!(!env.results().join("s").exists());
}
