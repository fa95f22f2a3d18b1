//! Comparing trees by content: an archive against a folder or against another archive, reading
//! both as streams and extracting nothing to disk.

use crate::archive::{self, EntryKind, Excludes, Walked};
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, IoContext, Result};
use flate2::read::MultiGzDecoder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// What one entry is: kind (a folder, a file or a link), permission bits, size, and the file's
/// SHA-256 or the link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    kind: EntryKind,
    mode: u32,
    size: u64,
    content: String,
}

impl Signature {
    /// File size in bytes (0 for folders and links).
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A tree as paths (relative to the strategy folder) and their signatures.
pub type Tree = BTreeMap<PathBuf, Signature>;

/// One difference between two trees.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Path relative to the strategy folder (shown lossily if it is not UTF-8).
    #[serde(serialize_with = "lossy")]
    pub path: PathBuf,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// For `changed`: what differs (`content`, `mode`, `kind`, `link`).
    pub what: Option<&'static str>,
    /// Permission bits before (`0644`), when they changed (with or without the content).
    pub old_mode: Option<String>,
    /// Permission bits after (`0755`), when they changed.
    pub new_mode: Option<String>,
    /// File size in bytes before, when the content changed.
    pub old_size: Option<u64>,
    /// File size in bytes after, when the content changed.
    pub new_size: Option<u64>,
}

impl Change {
    fn new(path: &Path, change: &'static str, what: Option<&'static str>) -> Change {
        Change {
            path: path.to_path_buf(),
            change,
            what,
            old_mode: None,
            new_mode: None,
            old_size: None,
            new_size: None,
        }
    }

    /// A change of `path` from `a` to `b`, or `None` if they are the same.
    fn between(path: &Path, a: &Signature, b: &Signature) -> Option<Change> {
        let mut change = Change::new(path, "changed", Some(difference(a, b)?));
        if a.kind == b.kind && a.mode != b.mode {
            change.old_mode = Some(format!("{:04o}", a.mode));
            change.new_mode = Some(format!("{:04o}", b.mode));
        }
        if change.what == Some("content") {
            (change.old_size, change.new_size) = (Some(a.size), Some(b.size));
        }
        Some(change)
    }
}

/// The tree of a folder as a backup would store it, hashing every file.
pub fn of_folder(src: &Path, excludes: &Excludes) -> Result<Tree> {
    let mut tree = Tree::new();
    for item in archive::walk(src, excludes) {
        let walked = item?;
        let Walked {
            path, kind, meta, ..
        } = &walked;
        let content = match kind {
            EntryKind::Folder => String::new(),
            EntryKind::Symlink => {
                let target = std::fs::read_link(path).at("read", path)?;
                String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned()
            }
            EntryKind::File => {
                let Some(file) = crate::archive::open_regular(path).at("read", path)? else {
                    continue;
                };
                HashingReader::new(file).finish().at("read", path)?.sha256
            }
            _ => continue,
        };
        let (kind, size) = (*kind, walked.size());
        let mode = meta.mode() & 0o777;
        let rel = walked.rel;
        tree.insert(
            rel,
            Signature {
                kind,
                mode,
                size,
                content,
            },
        );
    }
    Ok(tree)
}

/// The tree of a tar.gz archive, paths taken below its top folder.
pub fn of_archive(path: &Path) -> Result<Tree> {
    of_archive_checked(path, None)
}

/// [`of_archive`], reading the whole file and, when `expected` (the manifest's record) is given,
/// checking its size and SHA-256 on the way.
///
/// # Errors
/// [`Error::Corrupt`] when the archive does not decode or does not match `expected`.
pub fn of_archive_checked(path: &Path, expected: Option<&Checksum>) -> Result<Tree> {
    let file = crate::archive::open_file(path)?;
    let mut hashing = HashingReader::new(file);
    let tree = read_tree(&mut hashing, path);
    let Some(expected) = expected else {
        return tree;
    };
    let sum = hashing.finish().at("read", path)?;
    if sum == *expected {
        return tree;
    }
    Err(Error::corrupt(path, sum.mismatch(expected)))
}

/// The tree of the archive at `path` from its index (see [`crate::index`]), without
/// decompressing anything, if `index_sha256` (the manifest's) is given and the index has it;
/// `None` otherwise. The archive file itself is still hashed and checked against `expected`.
///
/// # Errors
/// [`Error::Corrupt`] when the archive does not match `expected`.
pub fn of_index(
    path: &Path,
    index_sha256: Option<&str>,
    expected: &Checksum,
) -> Result<Option<Tree>> {
    let Some(sha256) = index_sha256 else {
        return Ok(None);
    };
    let index = crate::index::path_for(path);
    if crate::index::check_file(&index, sha256).is_err() {
        return Ok(None);
    }
    let sum = HashingReader::new(crate::archive::open_file(path)?)
        .finish()
        .at("read", path)?;
    if sum != *expected {
        return Err(Error::corrupt(path, sum.mismatch(expected)));
    }
    let mut tree = Tree::new();
    crate::index::read(&index, Some(sha256), |_, r| {
        let content = match r.kind {
            EntryKind::Symlink => String::from_utf8_lossy(&r.target).into_owned(),
            _ => r.sha256,
        };
        let signature = Signature {
            kind: r.kind,
            mode: r.mode & 0o777,
            size: r.size,
            content,
        };
        tree.insert(r.path, signature);
        Ok(())
    })?;
    Ok(Some(tree))
}

/// Reads the tree of the tar.gz stream `reader` (the archive at `path`), then the rest of the
/// gzip stream so its checksums are checked too.
fn read_tree(reader: impl io::Read, path: &Path) -> Result<Tree> {
    let corrupt = |e: io::Error| Error::corrupt(path, e);
    let gz = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, reader));
    let mut tar = crate::targuard::reader(gz);
    let mut tree = Tree::new();
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let header = entry.header();
        let kind = EntryKind::of_header(header.entry_type());
        if !kind.archived() {
            continue;
        }
        let mode = header.mode().map_err(corrupt)? & 0o777;
        let size = match kind {
            EntryKind::File => header.size().map_err(corrupt)?,
            _ => 0,
        };
        let rel: PathBuf = entry
            .path()
            .map_err(corrupt)?
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .skip(1)
            .collect();
        let content = match kind {
            EntryKind::Symlink => entry
                .link_name()
                .map_err(corrupt)?
                .map(|t| String::from_utf8_lossy(t.as_os_str().as_bytes()).into_owned())
                .unwrap_or_default(),
            EntryKind::File => HashingReader::new(entry).finish().map_err(corrupt)?.sha256,
            _ => String::new(),
        };
        tree.insert(
            rel,
            Signature {
                kind,
                mode,
                size,
                content,
            },
        );
    }
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(corrupt)?;
    Ok(tree)
}

fn lossy<S: serde::Serializer>(path: &Path, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// What changed from `old` to `new`, in path order.
pub fn compare(old: &Tree, new: &Tree) -> Vec<Change> {
    let mut paths: Vec<&PathBuf> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| match (old.get(path), new.get(path)) {
            (None, Some(_)) => Some(Change::new(path, "added", None)),
            (Some(_), None) => Some(Change::new(path, "removed", None)),
            (Some(a), Some(b)) => Change::between(path, a, b),
            (None, None) => None,
        })
        .collect()
}

fn difference(a: &Signature, b: &Signature) -> Option<&'static str> {
    if a.kind != b.kind {
        Some("kind")
    } else if a.content != b.content || a.size != b.size {
        Some(match a.kind {
            EntryKind::Symlink => "link",
            _ => "content",
        })
    } else if a.mode != b.mode {
        Some("mode")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(letter: char, mode: u32, content: &str) -> Signature {
        Signature {
            kind: EntryKind::of_letter(letter).unwrap(),
            mode,
            size: content.len() as u64,
            content: content.into(),
        }
    }

    #[test]
    fn compare_reports_added_removed_and_what_changed() {
        let old: Tree = [
            ("a", sig('f', 0o644, "x")),
            ("b", sig('f', 0o644, "x")),
            ("c", sig('f', 0o644, "x")),
            ("d", sig('l', 0o777, "t")),
        ]
        .into_iter()
        .map(|(p, s)| (PathBuf::from(p), s))
        .collect();
        let mut new = old.clone();
        new.remove(Path::new("a"));
        new.insert("b".into(), sig('f', 0o644, "y"));
        new.insert("c".into(), sig('f', 0o755, "x"));
        new.insert("d".into(), sig('l', 0o777, "u"));
        new.insert("e".into(), sig('d', 0o755, ""));
        let got: Vec<(String, &str, Option<&str>)> = compare(&old, &new)
            .into_iter()
            .map(|c| (c.path.display().to_string(), c.change, c.what))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), "removed", None),
                ("b".into(), "changed", Some("content")),
                ("c".into(), "changed", Some("mode")),
                ("d".into(), "changed", Some("link")),
                ("e".into(), "added", None),
            ]
        );
        let changes = compare(&old, &new);
        let (b, c) = (&changes[1], &changes[2]);
        assert_eq!(
            (b.old_size, b.new_size, &b.old_mode),
            (Some(1), Some(1), &None)
        );
        assert_eq!(
            (c.old_mode.as_deref(), c.new_mode.as_deref()),
            (Some("0644"), Some("0755"))
        );
        assert_eq!(c.old_size, None);
    }
}
