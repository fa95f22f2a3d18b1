//! What an entry is: one classification for the tree walker ([`super::walk`]), the tar reader
//! ([`crate::targuard`] and the code reading archives), the index and `diff`, so every part of
//! resbak agrees on what a folder, a file and a link are and on what is archived at all.

use std::fs::{FileType, Metadata};

/// The kind of an entry on disk or in a tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A folder.
    Folder,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A hard link (tar only; resbak never writes one).
    HardLink,
    /// A device, FIFO or socket: never archived, never restored.
    Special,
    /// Any other tar entry type.
    Other,
}

impl EntryKind {
    /// The kind of an entry with metadata `meta` (not following links).
    pub fn of_metadata(meta: &Metadata) -> EntryKind {
        EntryKind::of_type(meta.file_type())
    }

    /// The kind of a file of type `kind` (not following links).
    pub fn of_type(kind: FileType) -> EntryKind {
        if kind.is_dir() {
            EntryKind::Folder
        } else if kind.is_file() {
            EntryKind::File
        } else if kind.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Special
        }
    }

    /// The kind of a tar entry of type `kind`.
    pub fn of_header(kind: tar::EntryType) -> EntryKind {
        use tar::EntryType as T;
        match kind {
            T::Directory => EntryKind::Folder,
            T::Regular | T::Continuous => EntryKind::File,
            T::Symlink => EntryKind::Symlink,
            T::Link => EntryKind::HardLink,
            T::Char | T::Block | T::Fifo => EntryKind::Special,
            _ => EntryKind::Other,
        }
    }

    /// Whether resbak archives entries of this kind: folders, files and symbolic links.
    pub fn archived(self) -> bool {
        matches!(
            self,
            EntryKind::Folder | EntryKind::File | EntryKind::Symlink
        )
    }

    /// Its letter in the index and in `diff`: `d`, `f`, `l` (hard links too), `?` for others.
    pub fn letter(self) -> char {
        match self {
            EntryKind::Folder => 'd',
            EntryKind::File => 'f',
            EntryKind::Symlink | EntryKind::HardLink => 'l',
            EntryKind::Special | EntryKind::Other => '?',
        }
    }

    /// The archived kind `letter` stands for (see [`EntryKind::letter`]).
    pub fn of_letter(letter: char) -> Option<EntryKind> {
        match letter {
            'd' => Some(EntryKind::Folder),
            'f' => Some(EntryKind::File),
            'l' => Some(EntryKind::Symlink),
            _ => None,
        }
    }

    /// Its name in reports: `folder`, `file`, `link` or `other`.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Folder => "folder",
            EntryKind::File => "file",
            EntryKind::Symlink | EntryKind::HardLink => "link",
            EntryKind::Special | EntryKind::Other => "other",
        }
    }

    /// The size an entry of this kind stores as content: `len` for a file, 0 for the others.
    pub fn content_size(self, len: u64) -> u64 {
        match self {
            EntryKind::File => len,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_and_tar_agree_and_letters_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("f", &link).unwrap();
        let on_disk =
            |p: &std::path::Path| EntryKind::of_metadata(&std::fs::symlink_metadata(p).unwrap());
        assert_eq!(on_disk(dir.path()), EntryKind::Folder);
        assert_eq!(on_disk(&file), EntryKind::File);
        assert_eq!(on_disk(&link), EntryKind::Symlink);
        let on_tar = EntryKind::of_header;
        assert_eq!(on_tar(tar::EntryType::Directory), EntryKind::Folder);
        assert_eq!(on_tar(tar::EntryType::Continuous), EntryKind::File);
        assert_eq!(on_tar(tar::EntryType::Symlink), EntryKind::Symlink);
        assert_eq!(on_tar(tar::EntryType::Link), EntryKind::HardLink);
        assert_eq!(on_tar(tar::EntryType::Fifo), EntryKind::Special);
        assert_eq!(on_tar(tar::EntryType::GNULongName), EntryKind::Other);
        for kind in [EntryKind::Folder, EntryKind::File, EntryKind::Symlink] {
            assert!(kind.archived());
            assert_eq!(EntryKind::of_letter(kind.letter()), Some(kind));
        }
        assert!(!EntryKind::HardLink.archived() && !EntryKind::Special.archived());
        assert_eq!(EntryKind::of_letter('?'), None);
        assert_eq!(EntryKind::File.content_size(7), 7);
        assert_eq!(EntryKind::Folder.content_size(4096), 0);
    }
}
