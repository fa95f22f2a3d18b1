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
        self.run(&["backup", strategy]);
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
        if !item.path_is_symlink() {
            let f = fs::File::open(item.path()).unwrap();
            f.set_modified(t).unwrap();
        }
    }
}

/// What a tree holds, for byte-identical comparisons: per relative path its kind, mode, mtime
/// and content hash (files) or target (links).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut map = BTreeMap::new();
    for item in walkdir::WalkDir::new(root).sort_by_file_name() {
        let item = item.unwrap();
        let rel = item.path().strip_prefix(root).unwrap().to_path_buf();
        let meta = item.path().symlink_metadata().unwrap();
        let desc = if meta.is_symlink() {
            format!("link -> {}", fs::read_link(item.path()).unwrap().display())
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
    let gz = flate2::write::GzEncoder::new(
        fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    for e in entries {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..e.name.len()].copy_from_slice(e.name);
        gnu.linkname[..e.link.len()].copy_from_slice(e.link);
        header.set_entry_type(e.kind);
        header.set_size(e.data.len() as u64);
        header.set_mode(e.mode);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, e.data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}
