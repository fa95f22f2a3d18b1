//! Safe extraction of a tar.gz archive into a fresh, empty folder.
//!
//! The policy is strict (stricter than Python's `tarfile` "data" filter, PEP 706):
//! every entry must lie under the expected top folder; absolute paths and `..` components are
//! refused; nothing is written through a link stored earlier in the archive; symlink targets must be
//! relative, may use `..` only as leading components and must stay inside the top folder; hard
//! links may only point to a regular file extracted earlier; device files, FIFOs and other special
//! entries are refused; a path stored twice is refused; setuid, setgid and sticky bits are dropped.
//! The first violation stops extraction with an error naming the entry; the caller throws the
//! partly filled folder away.

use crate::archive::Stats;
use crate::error::{Error, IoContext, Result};
use flate2::read::MultiGzDecoder;
use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};
use tar::EntryType;

const COPY_BUF: usize = 256 * 1024;

/// Extracts the tar.gz stream `reader` (the file `archive`, for messages) into the empty folder
/// `root`, requiring every entry to lie under `root/<top>`. Returns what was extracted.
///
/// # Errors
/// [`Error::UnsafeEntry`] for an entry the policy refuses, [`Error::Corrupt`] when the archive
/// cannot be decoded, [`Error::Io`] when writing fails (for example a full disk).
pub fn extract(reader: impl Read, archive: &Path, root: &Path, top: &str) -> Result<Stats> {
    let corrupt = |e: io::Error| Error::Corrupt {
        path: archive.to_path_buf(),
        detail: e.to_string(),
    };
    let mut tar = tar::Archive::new(MultiGzDecoder::new(reader));
    let mut state = State::new(archive, root, top);
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        state.unpack(&mut entry)?;
    }
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(corrupt)?;
    state.finish_dirs()?;
    Ok(state.stats)
}

struct State<'a> {
    archive: &'a Path,
    root: &'a Path,
    top: &'a str,
    stats: Stats,
    seen: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    links: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, u32, u64)>,
    buf: Vec<u8>,
}

impl<'a> State<'a> {
    fn new(archive: &'a Path, root: &'a Path, top: &'a str) -> Self {
        State {
            archive,
            root,
            top,
            stats: Stats::default(),
            seen: HashSet::new(),
            files: HashSet::new(),
            links: HashSet::new(),
            dirs: Vec::new(),
            buf: vec![0; COPY_BUF],
        }
    }

    fn corrupt(&self, entry: &str, e: io::Error) -> Error {
        Error::Corrupt {
            path: self.archive.to_path_buf(),
            detail: format!("entry {entry:?}: {e}"),
        }
    }

    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: &str| Error::UnsafeEntry {
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let path = entry.path().map_err(|e| self.corrupt(&name, e))?;
        let rel = inside_top(&path, self.top).map_err(refuse)?;
        if !self.seen.insert(rel.clone()) {
            return Err(refuse("the archive stores this path twice"));
        }
        if let Some(link) = rel.ancestors().skip(1).find(|a| self.links.contains(*a)) {
            let why = format!("it would be written through the link {}", link.display());
            return Err(refuse(&why));
        }
        let kind = entry.header().entry_type();
        if rel.as_os_str() == self.top && kind != EntryType::Directory {
            return Err(refuse("the top entry must be a folder"));
        }
        let dest = self.root.join(&rel);
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.corrupt(&name, e))? & 0o777;
        let mtime = header.mtime().map_err(|e| self.corrupt(&name, e))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).at("create folder", parent)?;
        }
        match kind {
            EntryType::Directory => {
                if !dest.is_dir() {
                    fs::create_dir(&dest).at("create folder", &dest)?;
                }
                self.dirs.push((dest, mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let len = self.write_file(entry, &name, &dest, (mode, mtime))?;
                self.stats.bytes += len;
                self.files.insert(rel);
            }
            EntryType::Symlink => {
                let target = self.link_name(entry, &name)?;
                symlink_stays_inside(&rel, &target).map_err(refuse)?;
                std::os::unix::fs::symlink(&target, &dest).at("create link", &dest)?;
                self.links.insert(rel);
            }
            EntryType::Link => {
                let target = self.link_name(entry, &name)?;
                let target = inside_top(&target, self.top).map_err(refuse)?;
                if !self.files.contains(&target) {
                    return Err(refuse("a hard link must point to a file stored earlier"));
                }
                fs::hard_link(self.root.join(&target), &dest).at("create link", &dest)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(refuse("device files and FIFOs are not restored"));
            }
            other => {
                let why = format!("unsupported entry type {:?}", other.as_byte() as char);
                return Err(refuse(&why));
            }
        }
        self.stats.files += 1;
        Ok(())
    }

    fn write_file(
        &mut self,
        data: &mut impl Read,
        name: &str,
        dest: &Path,
        (mode, mtime): (u32, u64),
    ) -> Result<u64> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .at("create", dest)?;
        let mut len = 0u64;
        loop {
            let n = data
                .read(&mut self.buf)
                .map_err(|e| self.corrupt(name, e))?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n]).at("write", dest)?;
            len += n as u64;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .at("set permissions of", dest)?;
        file.set_times(times(mtime)).at("set times of", dest)?;
        Ok(len)
    }

    fn link_name<R: Read>(&self, entry: &tar::Entry<R>, name: &str) -> Result<PathBuf> {
        match entry.link_name() {
            Ok(Some(target)) => Ok(target.into_owned()),
            Ok(None) => Err(Error::UnsafeEntry {
                entry: name.to_string(),
                reason: "a link without a target".to_string(),
            }),
            Err(e) => Err(self.corrupt(name, e)),
        }
    }

    /// Applies folder modes and times last, deepest first, so read-only folders can be filled.
    fn finish_dirs(&mut self) -> Result<()> {
        for (dir, mode, mtime) in self.dirs.iter().rev() {
            File::open(dir)
                .and_then(|f| f.set_times(times(*mtime)))
                .at("set times of", dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                .at("set permissions of", dir)?;
        }
        Ok(())
    }
}

fn times(mtime: u64) -> FileTimes {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    FileTimes::new().set_modified(t).set_accessed(t)
}

/// `path` without `.` components, if it is relative, has no `..` and starts with `top`.
fn inside_top(path: &Path, top: &str) -> std::result::Result<PathBuf, &'static str> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains a '..' component"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    match clean.components().next() {
        Some(Component::Normal(first)) if first == top => Ok(clean),
        _ => Err("it lies outside the archive's top folder"),
    }
}

/// Whether a symlink stored at `rel` with `target` resolves inside the top folder: the target is
/// relative, uses `..` only as leading components, and climbs no higher than the top folder.
fn symlink_stays_inside(rel: &Path, target: &Path) -> std::result::Result<(), &'static str> {
    let outside = "its target lies outside the archive's top folder";
    let mut depth = rel.components().count() - 1;
    let mut descended = false;
    for component in target.components() {
        match component {
            Component::ParentDir if descended => {
                return Err("its target uses '..' after a folder name");
            }
            Component::ParentDir => {
                depth = depth.checked_sub(1).filter(|d| *d > 0).ok_or(outside)?
            }
            Component::Normal(_) => descended = true,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err("its target is an absolute path");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_top_accepts_only_plain_paths_under_top() {
        assert_eq!(
            inside_top(Path::new("./s/a/b"), "s").unwrap(),
            Path::new("s/a/b")
        );
        assert!(inside_top(Path::new("s/../x"), "s").is_err());
        assert!(inside_top(Path::new("/s/a"), "s").is_err());
        assert!(inside_top(Path::new("other/a"), "s").is_err());
        assert!(inside_top(Path::new(""), "s").is_err());
    }

    #[test]
    fn symlink_targets_must_stay_under_top() {
        let at = Path::new("s/a/link");
        assert!(symlink_stays_inside(at, Path::new("b")).is_ok());
        assert!(symlink_stays_inside(at, Path::new("../c/d")).is_ok());
        assert!(symlink_stays_inside(at, Path::new("../..")).is_err());
        assert!(symlink_stays_inside(at, Path::new("../../s/c")).is_err());
        assert!(symlink_stays_inside(at, Path::new("/etc/passwd")).is_err());
        assert!(symlink_stays_inside(at, Path::new("x/../../y")).is_err());
        assert!(symlink_stays_inside(Path::new("s/link"), Path::new("..")).is_err());
    }
}
