//! Comparing trees by content: an archive against a folder or against another archive, reading
//! both as streams and extracting nothing to disk.

use crate::archive::{self, Excludes};
use crate::checksum::HashingReader;
use crate::error::{Error, IoContext, Result};
use flate2::read::MultiGzDecoder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// What one entry is: kind (`d`, `f`, `l`), permission bits, size, and the file's SHA-256 or
/// the link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    kind: char,
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
}

/// The tree of a folder as a backup would store it, hashing every file.
pub fn of_folder(src: &Path, excludes: &Excludes) -> Result<Tree> {
    let mut tree = Tree::new();
    for item in archive::walk(src, excludes) {
        let (entry, rel) = item?;
        let meta = std::fs::symlink_metadata(entry.path()).at("read", entry.path())?;
        let (kind, content) = if meta.is_dir() {
            ('d', String::new())
        } else if meta.is_symlink() {
            let target = std::fs::read_link(entry.path()).at("read", entry.path())?;
            (
                'l',
                String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned(),
            )
        } else if meta.is_file() {
            let file = File::open(entry.path()).at("read", entry.path())?;
            (
                'f',
                HashingReader::new(file)
                    .finish()
                    .at("read", entry.path())?
                    .sha256,
            )
        } else {
            continue;
        };
        let size = if meta.is_file() { meta.len() } else { 0 };
        let mode = meta.mode() & 0o777;
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
    let corrupt = |e: io::Error| Error::corrupt(path, e);
    let file = File::open(path).at("open", path)?;
    let gz = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut tar = tar::Archive::new(crate::targuard::TarGuard::new(gz));
    let mut tree = Tree::new();
    for entry in tar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
            _ => continue,
        };
        let mode = header.mode().map_err(corrupt)? & 0o777;
        let size = if kind == 'f' {
            header.size().map_err(corrupt)?
        } else {
            0
        };
        let rel: PathBuf = entry
            .path()
            .map_err(corrupt)?
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .skip(1)
            .collect();
        let content = match kind {
            'l' => entry
                .link_name()
                .map_err(corrupt)?
                .map(|t| String::from_utf8_lossy(t.as_os_str().as_bytes()).into_owned())
                .unwrap_or_default(),
            'f' => HashingReader::new(entry).finish().map_err(corrupt)?.sha256,
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
        .filter_map(|path| {
            let (change, what) = match (old.get(path), new.get(path)) {
                (None, Some(_)) => ("added", None),
                (Some(_), None) => ("removed", None),
                (Some(a), Some(b)) => ("changed", Some(difference(a, b)?)),
                (None, None) => return None,
            };
            Some(Change {
                path: path.clone(),
                change,
                what,
            })
        })
        .collect()
}

fn difference(a: &Signature, b: &Signature) -> Option<&'static str> {
    if a.kind != b.kind {
        Some("kind")
    } else if a.content != b.content || a.size != b.size {
        Some(if a.kind == 'l' { "link" } else { "content" })
    } else if a.mode != b.mode {
        Some("mode")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(kind: char, mode: u32, content: &str) -> Signature {
        Signature {
            kind,
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
    }
}
