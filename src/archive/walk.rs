//! The one tree walker: a results folder in archive order, each entry with its paths, its
//! metadata and its [`EntryKind`], for backup, survey, digest and `diff` alike.

use super::{EntryKind, Excludes};
use crate::error::{Error, Result};
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// One entry the walk found.
#[derive(Debug)]
pub(crate) struct Walked {
    /// Its path.
    pub(crate) path: PathBuf,
    /// Its path relative to the folder walked (empty for the folder itself).
    pub(crate) rel: PathBuf,
    /// Its metadata, not following a link.
    pub(crate) meta: Metadata,
    /// What it is.
    pub(crate) kind: EntryKind,
}

impl Walked {
    /// The bytes of content it stores: a file's size, 0 for the others.
    pub(crate) fn size(&self) -> u64 {
        self.kind.content_size(self.meta.len())
    }
}

/// Walks `src` in sorted order without following links, leaving out excluded paths and the
/// copies folders of `resbak file`. Yields each entry, special files included (each caller
/// decides what to do with kinds that are not [archived](EntryKind::archived)).
pub(crate) fn walk<'a>(
    src: &'a Path,
    excludes: &'a Excludes,
) -> impl Iterator<Item = Result<Walked>> + 'a {
    let relative = move |entry: &walkdir::DirEntry| {
        entry
            .path()
            .strip_prefix(src)
            .unwrap_or(entry.path())
            .to_path_buf()
    };
    WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            let copies = excludes.copies_folders && crate::filebackup::leaves_out(e);
            e.depth() == 0 || !(excludes.matches(&relative(e)) || copies)
        })
        .map(move |item| {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(src).to_path_buf();
                Error::io("read", path, bare(e))
            })?;
            let rel = relative(&item);
            let meta = item
                .metadata()
                .map_err(|e| Error::io("read", item.path(), bare(e)))?;
            Ok(Walked {
                kind: EntryKind::of_metadata(&meta),
                path: item.into_path(),
                rel,
                meta,
            })
        })
}

/// The system's error inside a walk's error, without the path walkdir adds to its message
/// (the caller names it); a link loop stays walkdir's error.
pub(crate) fn bare(e: walkdir::Error) -> std::io::Error {
    if e.io_error().is_none() {
        return std::io::Error::other(e);
    }
    e.into_io_error()
        .unwrap_or_else(|| std::io::Error::other("walk failed"))
}
