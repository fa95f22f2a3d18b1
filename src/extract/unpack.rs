//! The restore policy entry by entry: the state machine that checks each tar entry against the
//! rules of [`crate::extract`] and, when extracting, creates it.

use super::{COPY_BUF, Extracted, Pick};
use crate::archive::{EntryKind, Stats};
use crate::error::{Error, IoContext, Result};
use std::collections::HashSet;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Checks (and with `root`, creates) every entry of the tar stream `tar_stream`.
pub(super) fn unpack_all(
    tar_stream: impl Read,
    archive: &Path,
    root: Option<&Path>,
    top: &str,
    include: Pick,
) -> Result<Extracted> {
    let corrupt = |e: io::Error| Error::corrupt(archive, e);
    let mut tar = crate::targuard::reader(tar_stream);
    let mut state = State::new(archive, root, top);
    state.include = include;
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        state.unpack(&mut entry)?;
    }
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(corrupt)?;
    if state.stats.files == 0 {
        return Err(corrupt(io::Error::other(super::EMPTY)));
    }
    state.finish_dirs()?;
    Ok(Extracted {
        stats: state.stats,
        written: state.written,
        counts: state.counts,
        sums: state.sums,
    })
}

/// One entry that passed the policy.
struct Checked {
    name: String,
    rel: PathBuf,
    kind: EntryKind,
    mode: u32,
    mtime: SystemTime,
    target: Option<PathBuf>,
}

/// Every entry stored so far and what it is, keyed by [`PathSet::key`].
#[derive(Default)]
struct PathMap(std::collections::HashMap<u64, EntryKind>);

impl PathMap {
    fn insert(&mut self, path: &Path, seen: EntryKind) {
        self.0.insert(PathSet::key(path), seen);
    }

    fn get(&self, path: &Path) -> Option<EntryKind> {
        self.0.get(&PathSet::key(path)).copied()
    }
}

/// A set of paths kept as 64-bit digests, so memory grows by 8 bytes per entry rather than by
/// the length of every path (archives may hold hundreds of thousands of entries). A collision
/// can only make a lookup find something that is not there, which refuses an entry (or fails
/// a hard link inside the staging folder): it never lets an unsafe entry through.
#[derive(Default)]
struct PathSet(HashSet<u64>);

impl PathSet {
    fn key(path: &Path) -> u64 {
        use sha2::Digest;
        use std::os::unix::ffi::OsStrExt;
        let digest = sha2::Sha256::digest(path.as_os_str().as_bytes());
        u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }

    /// Adds `path`; false if it was there already.
    fn insert(&mut self, path: &Path) -> bool {
        self.0.insert(Self::key(path))
    }

    fn contains(&self, path: &Path) -> bool {
        self.0.contains(&Self::key(path))
    }
}

struct State<'a> {
    archive: &'a Path,
    root: Option<&'a Path>,
    top: &'a str,
    include: Pick<'a>,
    /// Files not included whose bytes were written where a hard link to them goes.
    relocated: std::collections::HashMap<PathBuf, PathBuf>,
    stats: Stats,
    written: Stats,
    counts: crate::archive::Counts,
    seen: PathMap,
    /// Entries that are not folders: nothing may be stored below them.
    /// Folders that hold entries stored earlier: they may only be stored as folders.
    parents: PathSet,
    /// Folders whose mode and times are set at the end, and whether each was created for its
    /// own entry (else only if something included below it made it).
    dirs: Vec<(PathBuf, u32, SystemTime, bool)>,
    /// With an include filter: each file written, by its path below the root, hashed as written.
    sums: std::collections::HashMap<PathBuf, crate::checksum::Checksum>,
    /// The folder made last for an entry's parent.
    made: Option<PathBuf>,
    buf: Vec<u8>,
}

impl<'a> State<'a> {
    fn new(archive: &'a Path, root: Option<&'a Path>, top: &'a str) -> Self {
        State {
            archive,
            root,
            top,
            include: None,
            relocated: Default::default(),
            stats: Stats::default(),
            written: Stats::default(),
            counts: Default::default(),
            seen: PathMap::default(),
            parents: PathSet::default(),
            dirs: Vec::new(),
            sums: Default::default(),
            made: None,
            buf: vec![0; COPY_BUF],
        }
    }

    fn corrupt(&self, entry: &str, e: io::Error) -> Error {
        Error::corrupt(self.archive, format_args!("entry {entry:?}: {e}"))
    }

    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let checked = self.check(entry)?;
        let len = match self.root.filter(|_| self.wanted(&checked.rel)) {
            Some(root) => {
                let len = self.create(entry, root, &checked)?;
                self.written.files += 1;
                self.counts.add(match checked.kind {
                    // Written as a file: a second name of one, or a copy (see `link_source`).
                    EntryKind::HardLink => EntryKind::File,
                    kind => kind,
                });
                self.written.bytes += len;
                len
            }
            None => match self.root.zip(self.link_source(&checked)) {
                Some((root, at)) => {
                    let len = self.write_file(entry, &checked, &root.join(&at))?;
                    self.relocated.insert(checked.rel.clone(), at);
                    len
                }
                None => {
                    // A folder left out is still made above what it includes: then as stored.
                    if let (Some(root), EntryKind::Folder) = (self.root, checked.kind) {
                        let dest = root.join(&checked.rel);
                        self.dirs.push((dest, checked.mode, checked.mtime, false));
                    }
                    self.copy(entry, &checked.name, &mut io::sink(), Path::new(""))?
                }
            },
        };
        if checked.kind == EntryKind::File {
            self.stats.bytes += len;
        }
        self.seen.insert(&checked.rel, checked.kind);
        for parent in checked.rel.ancestors().skip(1) {
            if !self.parents.insert(parent) {
                break;
            }
        }
        self.stats.files += 1;
        Ok(())
    }

    /// Whether the entry at `rel` (below the root) is to be created.
    fn wanted(&self, rel: &Path) -> bool {
        let below_top: PathBuf = rel.components().skip(1).collect();
        below_top.as_os_str().is_empty() || self.include.is_none_or(|(g, _)| g.covers(&below_top))
    }

    /// Where the bytes of a file not included go because an included hard link needs them.
    fn link_source(&self, entry: &Checked) -> Option<PathBuf> {
        let file = entry.kind == EntryKind::File;
        let (_, selection) = self.include?;
        file.then(|| selection.link_sources.get(&entry.rel).cloned())
            .flatten()
    }

    /// Applies the policy to one entry's header.
    fn check<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<Checked> {
        let precise = pax_mtime(entry);
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: &str| Error::UnsafeEntry {
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let path = entry.path().map_err(|e| self.corrupt(&name, e))?;
        let rel = inside_top(&path, self.top).map_err(|why| {
            // The first entry is the archive's top folder: another name is another strategy.
            let first = match path.components().next() {
                Some(std::path::Component::Normal(top)) if self.stats.files == 0 => top.to_str(),
                _ => None,
            };
            match first {
                Some(top) if top != self.top => refuse(&format!(
                    "the archive's top folder is {top}, not {}, the strategy its manifest entry \
                     or its name gives",
                    self.top
                )),
                _ => refuse(why),
            }
        })?;
        if self.seen.get(&rel).is_some() {
            return Err(refuse("the archive stores this path twice"));
        }
        let earlier = |a: &Path, what: fn(EntryKind) -> bool| self.seen.get(a).is_some_and(what);
        if let Some(link) = rel
            .ancestors()
            .skip(1)
            .find(|a| earlier(a, |s| s == EntryKind::Symlink))
        {
            let why = format!("it would be written through the link {}", link.display());
            return Err(refuse(&why));
        }
        if let Some(leaf) = rel
            .ancestors()
            .skip(1)
            .find(|a| earlier(a, |s| s != EntryKind::Folder))
        {
            let why = format!(
                "it would be written below {}, which is not a folder",
                leaf.display()
            );
            return Err(refuse(&why));
        }
        let header = entry.header();
        let raw = header.entry_type();
        let kind = EntryKind::of_header(raw);
        if rel.as_os_str() == self.top && kind != EntryKind::Folder {
            return Err(refuse("the top entry must be a folder"));
        }
        if kind != EntryKind::Folder && self.parents.contains(&rel) {
            return Err(refuse("entries stored earlier lie below it"));
        }
        let target = match kind {
            EntryKind::Folder | EntryKind::File => None,
            EntryKind::Symlink => {
                let target = self.link_name(entry, &name)?;
                symlink_stays_inside(&rel, &target).map_err(refuse)?;
                Some(target)
            }
            EntryKind::HardLink => {
                let target = self.link_name(entry, &name)?;
                let target = inside_top(&target, self.top).map_err(refuse)?;
                if self.seen.get(&target) != Some(EntryKind::File) {
                    return Err(refuse("a hard link must point to a file stored earlier"));
                }
                Some(target)
            }
            EntryKind::Special => {
                return Err(refuse("device files and FIFOs are not restored"));
            }
            EntryKind::Other => {
                let why = format!("unsupported entry type {:?}", raw.as_byte() as char);
                return Err(refuse(&why));
            }
        };
        let mode = header.mode().map_err(|e| self.corrupt(&name, e))? & 0o777;
        let mtime = header.mtime().map_err(|e| self.corrupt(&name, e))?;
        let mtime = match precise {
            Some(precise) => precise,
            None => SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(mtime))
                .ok_or_else(|| {
                    let why = format!("modification time {mtime} is out of range");
                    self.corrupt(&name, io::Error::other(why))
                })?,
        };
        Ok(Checked {
            name,
            rel,
            kind,
            mode,
            mtime,
            target,
        })
    }

    /// Creates a checked entry below `root`; returns the bytes of file content written.
    fn create(&mut self, data: &mut impl Read, root: &Path, entry: &Checked) -> Result<u64> {
        let dest = root.join(&entry.rel);
        self.ensure_parent(&dest)?;
        match (entry.kind, &entry.target) {
            (EntryKind::Folder, _) => {
                if !dest.is_dir() {
                    fs::create_dir(&dest).at("create folder", &dest)?;
                }
                self.made = Some(dest.clone());
                self.dirs.push((dest, entry.mode, entry.mtime, true));
            }
            (EntryKind::Symlink, Some(target)) => {
                std::os::unix::fs::symlink(target, &dest).at("create link", &dest)?;
                set_link_times(&dest, entry.mtime).at("set times of", &dest)?;
            }
            (EntryKind::HardLink, Some(target)) => {
                let source = self.relocated.get(target).unwrap_or(target);
                if *source != entry.rel {
                    fs::hard_link(root.join(source), &dest).at("create link", &dest)?;
                }
            }
            _ => return self.write_file(data, entry, &dest),
        }
        Ok(0)
    }

    /// Creates the folder `dest` goes in, unless it was the last one made: entries come in
    /// sorted order, so one folder's files follow each other and cost no `mkdir` each.
    fn ensure_parent(&mut self, dest: &Path) -> Result<()> {
        let Some(parent) = dest.parent() else {
            return Ok(());
        };
        if self.made.as_deref() != Some(parent) {
            create_below(self.root, parent)?;
            self.made = Some(parent.to_path_buf());
        }
        Ok(())
    }

    fn write_file(&mut self, data: &mut impl Read, entry: &Checked, dest: &Path) -> Result<u64> {
        self.ensure_parent(dest)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .at("create", dest)?;
        let len = match (self.include.is_some(), self.root) {
            (true, Some(root)) => {
                let mut hashing = crate::checksum::HashingWriter::new(&mut file);
                let len = self.copy(data, &entry.name, &mut hashing, dest)?;
                let rel = dest.strip_prefix(root).unwrap_or(dest).to_path_buf();
                self.sums.insert(rel, hashing.finish().1);
                len
            }
            _ => self.copy(data, &entry.name, &mut file, dest)?,
        };
        file.set_permissions(fs::Permissions::from_mode(entry.mode))
            .at("set permissions of", dest)?;
        file.set_times(times(entry.mtime))
            .at("set times of", dest)?;
        Ok(len)
    }

    /// Streams an entry's data to `out` (the file `dest`, for messages).
    fn copy(
        &mut self,
        data: &mut impl Read,
        name: &str,
        out: &mut impl Write,
        dest: &Path,
    ) -> Result<u64> {
        let mut len = 0u64;
        loop {
            let n = data
                .read(&mut self.buf)
                .map_err(|e| self.corrupt(name, e))?;
            if n == 0 {
                return Ok(len);
            }
            out.write_all(&self.buf[..n]).at("write", dest)?;
            len += n as u64;
        }
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
        for (dir, mode, mtime, created) in self.dirs.iter().rev() {
            if !created {
                if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                // Left out, but made for what it holds: written as much as its entries are.
                self.written.files += 1;
                self.counts.folders += 1;
            }
            File::open(dir)
                .and_then(|f| f.set_times(times(*mtime)))
                .at("set times of", dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                .at("set permissions of", dir)?;
        }
        Ok(())
    }
}

/// Sets a symlink's own times (not its target's), so a restored tree is the tree backed up.
fn set_link_times(link: &Path, mtime: SystemTime) -> io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    let since = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let at = Timespec {
        tv_sec: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: since.subsec_nanos().into(),
    };
    let times = Timestamps {
        last_access: at,
        last_modification: at,
    };
    rustix::fs::utimensat(CWD, link, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)
}

/// The `mtime` of an entry's PAX header with its fraction (`1700000000.25`), as Python's
/// `tarfile` and GNU tar write it (the header field then holds it rounded); `None` when absent,
/// negative or not a plain decimal.
fn pax_mtime<R: Read>(entry: &mut tar::Entry<R>) -> Option<SystemTime> {
    let extensions = entry.pax_extensions().ok()??;
    let value = extensions
        .flatten()
        .find(|e| e.key() == Ok("mtime"))?
        .value()
        .ok()?
        .to_string();
    let (secs, fraction) = value.split_once('.').unwrap_or((&value, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !(fraction.is_empty() || digits(fraction)) {
        return None;
    }
    let nanos: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let since = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    SystemTime::UNIX_EPOCH.checked_add(since)
}

/// Creates `folder` and the folders between it and `root`, but never `root` itself: a staging
/// folder that an interruption removed while a thread was still unpacking stays removed (with
/// `create_dir_all` the thread made it again, and the process left it behind).
fn create_below(root: Option<&Path>, folder: &Path) -> Result<()> {
    let Some((root, below)) = root.and_then(|r| Some((r, folder.strip_prefix(r).ok()?))) else {
        return fs::create_dir_all(folder).at("create folder", folder);
    };
    let mut at = root.to_path_buf();
    for part in below.components() {
        at.push(part);
        match fs::create_dir(&at) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && at.is_dir() => {}
            made => made.at("create folder", &at)?,
        }
    }
    Ok(())
}

fn times(mtime: SystemTime) -> FileTimes {
    FileTimes::new().set_modified(mtime).set_accessed(mtime)
}

/// `path` without `.` components, if it is relative, has no `..` and starts with `top`.
pub(super) fn inside_top(path: &Path, top: &str) -> std::result::Result<PathBuf, &'static str> {
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
pub(crate) fn symlink_stays_inside(
    rel: &Path,
    target: &Path,
) -> std::result::Result<(), &'static str> {
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
    fn folders_are_made_below_the_root_but_a_removed_root_stays_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".resbak-restore-x");
        fs::create_dir(&root).unwrap();
        create_below(Some(&root), &root.join("runs/a")).unwrap();
        assert!(root.join("runs/a").is_dir());
        fs::remove_dir_all(&root).unwrap();
        assert!(create_below(Some(&root), &root.join("runs/b")).is_err());
        assert!(
            !root.exists(),
            "an interrupted restore's staging folder came back"
        );
    }

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
