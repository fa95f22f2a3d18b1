//! Test environment: a fresh temp folder with `results/` and `backups/`, the real binary, and
//! helpers that print everything useful when a command does not do what a test expects.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// A temp folder to run resbak in.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("resbak-test-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("results")).unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn results(&self) -> PathBuf {
        self.path().join("results")
    }

    pub fn backups(&self) -> PathBuf {
        self.path().join("backups")
    }

    /// A `resbak` command running in the temp folder, with no resbak variables inherited.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_resbak"));
        cmd.current_dir(self.path())
            .env_remove("RESBAK_RESULTS_DIR")
            .env_remove("RESBAK_BACKUP_DIR")
            .env_remove("RESBAK_AGE_IDENTITY")
            .args(args);
        cmd
    }

    /// Runs resbak and asserts the exit code; on mismatch prints command, output and tree.
    pub fn run_code(&self, args: &[&str], code: i32) -> Output {
        let out = self.cmd(args).output().unwrap();
        if out.status.code() != Some(code) {
            panic!(
                "resbak {args:?} exited {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}\n--- tree\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.tree()
            );
        }
        out
    }

    /// Runs resbak, asserts success and returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        stdout(&self.run_code(args, 0))
    }

    /// Runs resbak, asserts exit code `code` and returns stderr.
    pub fn fail(&self, args: &[&str], code: i32) -> String {
        String::from_utf8_lossy(&self.run_code(args, code).stderr).into_owned()
    }

    /// Every path below the temp folder, for failure messages.
    pub fn tree(&self) -> String {
        walkdir::WalkDir::new(self.path())
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .map(|e| {
                e.path()
                    .strip_prefix(self.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes a small but realistic strategy folder: nested runs, an empty folder, a symlink,
    /// an executable script and fixed mtimes.
    pub fn sample(&self, strategy: &str) -> PathBuf {
        let root = self.results().join(strategy);
        write(
            &root.join("trades.csv"),
            "id,side,qty,pnl\n1,long,0.5,12.3\n2,short,0.2,-4.1\n",
        );
        write(
            &root.join("equity_curve.csv"),
            &"2025-01-01,10000\n".repeat(200),
        );
        write(
            &root.join("metrics.json"),
            r#"{"sharpe": 1.4, "trades": 2}"#,
        );
        write(
            &root.join("runs/fast10_slow50/params.json"),
            r#"{"fast": 10, "slow": 50}"#,
        );
        write(
            &root.join("runs/fast10_slow50/trades.csv"),
            "id,pnl\n1,3.2\n",
        );
        write(&root.join("scripts/rerun.sh"), "#!/bin/sh\necho rerun\n");
        fs::set_permissions(
            root.join("scripts/rerun.sh"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        fs::create_dir_all(root.join("plots/empty")).unwrap();
        std::os::unix::fs::symlink("../metrics.json", root.join("runs/latest_metrics.json"))
            .unwrap();
        set_mtimes(&root, 1_700_000_000);
        root
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> serde_yaml::Value {
        let text = fs::read_to_string(self.backups().join("manifest.yaml")).unwrap();
        serde_yaml::from_str(&text).unwrap()
    }

    /// Rewrites the manifest as `edit` makes its text, as a hand edit would.
    pub fn edit_manifest(&self, edit: impl FnOnce(String) -> String) {
        let path = self.backups().join("manifest.yaml");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, edit(text)).unwrap();
    }

    /// `backup_file` of every manifest entry, in manifest order.
    pub fn archives(&self) -> Vec<String> {
        match self.manifest()["backups"].as_sequence() {
            Some(entries) => entries
                .iter()
                .map(|e| e["backup_file"].as_str().unwrap().to_string())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Backs up `strategy` and returns the new archive's file name.
    pub fn backup(&self, strategy: &str) -> String {
        let before = self.archives_if_any();
        self.run(&["backup", "--always", strategy]);
        let after = self.archives();
        let new: Vec<_> = after.into_iter().filter(|a| !before.contains(a)).collect();
        assert_eq!(new.len(), 1, "expected one new archive, got {new:?}");
        new[0].clone()
    }

    fn archives_if_any(&self) -> Vec<String> {
        if self.backups().join("manifest.yaml").exists() {
            self.archives()
        } else {
            Vec::new()
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Sets the mtime of every file and folder below `root` (not following links).
pub fn set_mtimes(root: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    for item in walkdir::WalkDir::new(root).contents_first(true) {
        let item = item.unwrap();
        if item.path_is_symlink() {
            let at = rustix::fs::Timespec {
                tv_sec: secs as i64,
                tv_nsec: 0,
            };
            let times = rustix::fs::Timestamps {
                last_access: at,
                last_modification: at,
            };
            let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
            rustix::fs::utimensat(rustix::fs::CWD, item.path(), &times, nofollow).unwrap();
        } else {
            let f = fs::File::open(item.path()).unwrap();
            f.set_modified(t).unwrap();
        }
    }
}

/// What a tree holds, for byte-identical comparisons: per relative path its kind, mode, mtime
/// and content hash (files) or target (links, byte-exact even when not UTF-8).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut map = BTreeMap::new();
    for item in walkdir::WalkDir::new(root).sort_by_file_name() {
        let item = item.unwrap();
        let rel = item.path().strip_prefix(root).unwrap().to_path_buf();
        let meta = item.path().symlink_metadata().unwrap();
        let desc = if meta.is_symlink() {
            format!("link -> {:?}", fs::read_link(item.path()).unwrap())
        } else if meta.is_dir() {
            format!("dir mode {:o} mtime {}", meta.mode() & 0o7777, meta.mtime())
        } else {
            let hash = sha256_file(item.path());
            format!(
                "file mode {:o} mtime {} sha {hash}",
                meta.mode() & 0o7777,
                meta.mtime()
            )
        };
        map.insert(rel, desc);
    }
    map
}

/// Every path below `root`, relative to it, without following links: what exists, whatever
/// its times (folders get new mtimes when temporary entries come and go inside them).
pub fn paths(root: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|item| {
            let item = item.unwrap();
            item.path().strip_prefix(root).unwrap().to_path_buf()
        })
        .collect()
}

/// Adds a manifest entry to `backup_dir` for its file `file`, with the file's real size and
/// SHA-256, so resbak treats whatever bytes it holds as a catalogued backup of `strategy`.
pub fn register(backup_dir: &Path, file: &str, strategy: &str, files: u64, bytes: u64) {
    let path = backup_dir.join(file);
    let manifest = backup_dir.join("manifest.yaml");
    let mut catalogue: serde_yaml::Value = match fs::read_to_string(&manifest) {
        Ok(text) => serde_yaml::from_str(&text).unwrap(),
        Err(_) => serde_yaml::from_str("version: 1\nbackups: []").unwrap(),
    };
    let entry = format!(
        "strategy: {strategy}\ntimestamp: '20260101_000000'\nbackup_file: {file}\n\
         size: {}\nsha256: {}\nfiles: {files}\nbytes: {bytes}\n\
         created: 2026-01-01T00:00:00Z\n",
        fs::metadata(&path).unwrap().len(),
        sha256_file(&path)
    );
    catalogue["backups"]
        .as_sequence_mut()
        .unwrap()
        .push(serde_yaml::from_str(&entry).unwrap());
    fs::write(manifest, serde_yaml::to_string(&catalogue).unwrap()).unwrap();
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    resbak::checksum::hex(&Sha256::digest(fs::read(path).unwrap()))
}

/// Flips one byte of a file in place.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

/// Whether an external tool is installed.
pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// One raw tar entry for building hostile archives: the name and link target bytes go into the
/// header as they are, with no checks.
pub struct Raw<'a> {
    pub name: &'a [u8],
    pub kind: tar::EntryType,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
}

impl<'a> Raw<'a> {
    pub fn dir(name: &'a str) -> Raw<'a> {
        Raw {
            name: name.as_bytes(),
            kind: tar::EntryType::Directory,
            data: b"",
            link: b"",
            mode: 0o755,
        }
    }
    pub fn file(name: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw {
            name: name.as_bytes(),
            kind: tar::EntryType::Regular,
            data,
            link: b"",
            mode: 0o644,
        }
    }
    pub fn link(name: &'a str, kind: tar::EntryType, target: &'a str) -> Raw<'a> {
        Raw {
            name: name.as_bytes(),
            kind,
            data: b"",
            link: target.as_bytes(),
            mode: 0o777,
        }
    }
    pub fn special(name: &'a str, kind: tar::EntryType) -> Raw<'a> {
        Raw {
            name: name.as_bytes(),
            kind,
            data: b"",
            link: b"",
            mode: 0o644,
        }
    }
}

/// Writes a tar.gz of `entries` exactly as given.
pub fn raw_archive(path: &Path, entries: &[Raw]) {
    let tar = entries.iter().fold(RawTar::new(), |tar, e| tar.entry(e));
    fs::write(path, tar.gzip()).unwrap();
}

impl Raw<'_> {
    /// The GNU header of this entry: name and link target as they are (cut to the 100 bytes a
    /// header holds; [`RawTar::entry`] adds GNU long-name records for longer ones).
    pub fn header(&self) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        let name = &self.name[..self.name.len().min(gnu.name.len())];
        gnu.name[..name.len()].copy_from_slice(name);
        let link = &self.link[..self.link.len().min(gnu.linkname.len())];
        gnu.linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(self.kind);
        header.set_size(self.data.len() as u64);
        header.set_mode(self.mode);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        header
    }
}

/// A tar stream written block by block, for archives no well-behaved writer produces: raw
/// headers, PAX and GNU long-name records, data shorter than declared, missing end blocks.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    /// Appends `header` and then `data`, padded to whole 512-byte blocks. The header is written
    /// as it is: its size and checksum need not match.
    pub fn header(mut self, header: &tar::Header, data: &[u8]) -> RawTar {
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.resize(self.bytes.len() + padding, 0);
        self
    }

    /// Appends an entry, preceded by a GNU long name ('L') and long link ('K') record when its
    /// name or link target does not fit the header.
    pub fn entry(mut self, e: &Raw) -> RawTar {
        if e.name.len() > 100 {
            self = self.gnu_long(tar::EntryType::GNULongName, e.name);
        }
        if e.link.len() > 100 {
            self = self.gnu_long(tar::EntryType::GNULongLink, e.link);
        }
        self.header(&e.header(), e.data)
    }

    /// Appends a GNU long name ('L') or long link ('K') record: a `././@LongLink` entry whose
    /// data is `value`, which replaces the name or link target of the next entry.
    pub fn gnu_long(self, kind: tar::EntryType, value: &[u8]) -> RawTar {
        let mut data = value.to_vec();
        data.push(0);
        let long = Raw {
            name: b"././@LongLink",
            kind,
            data: &data,
            link: b"",
            mode: 0o644,
        };
        self.header(&long.header(), &data)
    }

    /// Appends a PAX extended header ('x') whose records (`path`, `linkpath`, `size`, ...)
    /// override the fields of the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> RawTar {
        let mut data = Vec::new();
        for (key, value) in records {
            data.extend_from_slice(&pax_record(key, value));
        }
        let mut header = tar::Header::new_ustar();
        header.set_path("PaxHeaders/next").unwrap();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.header(&header, &data)
    }

    /// The stream ended by the two zero blocks of a complete archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(self.bytes.len() + 1024, 0);
        self.bytes
    }

    /// [`RawTar::finish`], gzipped.
    pub fn gzip(self) -> Vec<u8> {
        gzip(&self.finish())
    }
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// `data` as one gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub use crate::datagen::Rng;

/// Deterministic pseudo-random bytes, for incompressible test data.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Waits until `ready` holds, checking every millisecond, and fails the test with `what` after
/// a generous bound. This waits for an observable state; it is not a timing assertion.
pub fn wait_for(what: &str, ready: impl FnMut() -> bool) {
    wait_within(
        what,
        Duration::from_secs(60),
        Duration::from_millis(1),
        ready,
    );
}

/// Waits until `ready` holds, checking it `every` so often, and fails the test with `what`
/// after `limit`.
pub fn wait_within(what: &str, limit: Duration, every: Duration, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(every);
    }
}

/// Names in `dir` that start with `prefix`.
pub fn names_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
