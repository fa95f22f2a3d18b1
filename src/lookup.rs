//! Reading single entries of an archive: its listing, and one file's bytes. With an intact
//! index (see [`crate::index`]) the listing comes from the index alone and a file's bytes from
//! inflating its segments only; without one, or with one that is damaged, the whole archive is
//! read and checked (its gzip checksums, and its size and SHA-256 when the manifest records
//! them), and a damaged index is said so.

use crate::archive::EntryKind;
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, Result};
use crate::index::{self, Record};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// An archive to read entries from.
pub struct Archive<'a> {
    /// The archive file.
    pub path: &'a Path,
    /// Its top folder (the strategy).
    pub top: &'a str,
    /// The SHA-256 the manifest records for its index; without it the index is not used.
    pub index_sha256: Option<&'a str>,
    /// The size and SHA-256 the manifest records for the archive, checked when it is read whole.
    pub checksum: Option<Checksum>,
}

/// What served a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// The intact index (and, for a file, its segment).
    Index,
    /// The whole archive, checked; no index is recorded for it.
    Archive,
    /// The whole archive, checked, because the index the manifest records is unusable: the
    /// one-line reason, naming the index.
    DamagedIndex(String),
}

/// The index the manifest records for an archive, as found.
enum Found {
    None,
    Intact(PathBuf, String),
    Damaged(String),
}

impl Archive<'_> {
    /// The archive's index, if the manifest records one: intact (its SHA-256 is the manifest's
    /// and it parses) or damaged, with why.
    fn index(&self) -> Found {
        let Some(sha) = self.index_sha256 else {
            return Found::None;
        };
        match index::unusable(self.path, sha) {
            None => Found::Intact(index::path_for(self.path), sha.to_string()),
            Some(why) => Found::Damaged(why),
        }
    }

    /// Runs `read` over the tar stream of the whole archive, then reads the rest of it so its
    /// gzip checksums are checked, and compares its size and SHA-256 with [`Archive::checksum`].
    fn whole<T>(&self, read: impl FnOnce(&mut dyn Read) -> Result<T>) -> Result<T> {
        let file = crate::archive::open_file(self.path)?;
        let mut hashing = HashingReader::new(BufReader::with_capacity(1 << 17, file));
        let mut gz = flate2::read::MultiGzDecoder::new(&mut hashing);
        let value = read(&mut gz)?;
        let corrupt = |e: io::Error| Error::corrupt(self.path, e);
        io::copy(&mut gz, &mut io::sink()).map_err(corrupt)?;
        drop(gz);
        let sum = hashing.finish().map_err(corrupt)?;
        match &self.checksum {
            Some(want) if *want != sum => Err(Error::corrupt(self.path, sum.mismatch(want))),
            _ => Ok(value),
        }
    }

    /// Gives every entry below the top folder (not the top folder itself) to `each`, in
    /// archive order, and says what served. Files' SHA-256 come from the index, or, read
    /// whole, are computed only `with_content` (else left empty). Read whole, the archive is checked only at its
    /// end: a caller that must not act on unchecked entries keeps them until then.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the archive (read whole) cannot be decoded or differs from
    /// [`Archive::checksum`], or the index changed while it was read.
    pub fn list(
        &self,
        with_content: bool,
        mut each: impl FnMut(Record) -> Result<()>,
    ) -> Result<Served> {
        let mut visit = |record: Record| match record.path.as_os_str().is_empty() {
            true => Ok(()),
            false => each(record),
        };
        let served = match self.index() {
            Found::Intact(index, sha) => {
                index::read(&index, Some(&sha), |_, record| visit(record))?;
                return Ok(Served::Index);
            }
            Found::None => Served::Archive,
            Found::Damaged(why) => Served::DamagedIndex(why),
        };
        self.whole(|gz| index::each_record(gz, self.path, self.top, with_content, visit))?;
        Ok(served)
    }

    /// Writes the bytes of the file at `rel` (relative to the top folder) to `out`, and says
    /// what served. From the index they are checked against the SHA-256 it records; read
    /// whole, the archive is checked only at its end, so `out` holds them until then.
    ///
    /// # Errors
    /// [`Error::NotAFile`] when the archive holds no file at `rel`, [`Error::Corrupt`] when
    /// its bytes cannot be decoded or differ from the index or [`Archive::checksum`],
    /// [`Error::Io`] when `out` fails.
    pub fn cat(&self, rel: &Path, out: &mut dyn Write) -> Result<Served> {
        let (index, sha) = match self.index() {
            Found::Intact(index, sha) => (index, sha),
            found => {
                self.whole(|gz| self.copy_out(gz, rel, None, out))?;
                return Ok(match found {
                    Found::Damaged(why) => Served::DamagedIndex(why),
                    _ => Served::Archive,
                });
            }
        };
        let mut found = None;
        let read = index::read(&index, Some(&sha), |segment, record| {
            if found.is_none() && record.path == rel {
                found = Some((segment, record));
            }
            Ok(())
        })?;
        let (segment, record) = found.ok_or_else(|| self.not_a_file(rel, "no such entry"))?;
        match record.kind {
            EntryKind::File => {}
            EntryKind::Folder => return Err(self.not_a_file(rel, "a folder, not a file")),
            _ => return Err(self.not_a_file(rel, "a link, not a file")),
        }
        let file = crate::archive::open_file(self.path)?;
        let group = index::group(&read.segments, segment);
        match (read.level, &read.segments[group.clone()]) {
            (Some(_), [_, ..]) => {
                // The file's group, its pieces inflated on all cores, each checked against
                // its CRC32.
                let pieces = read.segments[group].iter().map(|s| s.segment).collect();
                let threads = crate::archive::default_threads();
                let fail = |e: io::Error| Error::corrupt(self.path, e);
                let tar_stream =
                    crate::inflate::Parallel::new(&file, pieces, threads).map_err(fail)?;
                self.copy_out(tar_stream, rel, Some(&record), out)?;
            }
            _ => {
                let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 17, file));
                self.copy_out(gz, rel, Some(&record), out)?;
            }
        }
        Ok(Served::Index)
    }

    fn not_a_file(&self, rel: &Path, reason: &'static str) -> Error {
        Error::NotAFile {
            entry: rel.display().to_string(),
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// Finds the file at `rel` in the tar stream `tar_stream` and copies its bytes to `out`;
    /// with `record`, they must have its size and SHA-256.
    fn copy_out(
        &self,
        tar_stream: impl Read,
        rel: &Path,
        record: Option<&Record>,
        out: &mut dyn Write,
    ) -> Result<()> {
        let corrupt = |e: io::Error| Error::corrupt(self.path, e);
        let name = Path::new(self.top).join(rel);
        let mut tar = crate::targuard::reader(tar_stream);
        for entry in tar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            if entry.path().map_err(corrupt)? != name {
                continue;
            }
            match EntryKind::of_header(entry.header().entry_type()) {
                EntryKind::File => {}
                EntryKind::Folder => return Err(self.not_a_file(rel, "a folder, not a file")),
                _ => return Err(self.not_a_file(rel, "a link, not a file")),
            }
            let mut hashing = HashingReader::new(&mut entry);
            // Read and write errors apart: bytes that do not inflate are a damaged archive.
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = match hashing.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(corrupt(e)),
                };
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io("write", "standard output", e))?;
            }
            let sum = hashing.finish().map_err(corrupt)?;
            return match record {
                Some(r) if r.sha256 != sum.sha256 || r.size != sum.len => Err(corrupt(
                    io::Error::other(format!("{} differs from its index", rel.display())),
                )),
                _ => Ok(()),
            };
        }
        Err(match record {
            Some(_) => corrupt(io::Error::other(format!(
                "{} is not where its index says",
                rel.display()
            ))),
            None => self.not_a_file(rel, "no such entry"),
        })
    }
}
