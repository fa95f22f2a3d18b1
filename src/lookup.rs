//! Reading single entries of an archive: its listing, and one file's bytes. With an intact
//! index (see [`crate::index`]) the listing comes from the index alone and a file's bytes from
//! inflating its segment only; without one, the archive is read from the start.

use crate::checksum::HashingReader;
use crate::error::{Error, Result};
use crate::index::{self, Record};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An archive to read entries from.
pub struct Archive<'a> {
    /// The archive file.
    pub path: &'a Path,
    /// Its top folder (the strategy).
    pub top: &'a str,
    /// The SHA-256 the manifest records for its index; without it the index is not used.
    pub index_sha256: Option<&'a str>,
}

impl Archive<'_> {
    /// The archive's index file, if the manifest records one and it is intact.
    fn index(&self) -> Option<PathBuf> {
        let path = index::path_for(self.path);
        let sha = self.index_sha256?;
        index::check_file(&path, sha).ok().map(|()| path)
    }

    /// Gives every entry below the top folder (not the top folder itself) to `each`, in
    /// archive order. Says whether the index served.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the archive (read without an index) cannot be decoded.
    pub fn list(&self, mut each: impl FnMut(Record) -> Result<()>) -> Result<bool> {
        let mut visit = |record: Record| match record.path.as_os_str().is_empty() {
            true => Ok(()),
            false => each(record),
        };
        if let Some(index) = self.index() {
            index::read(&index, None, |_, record| visit(record))?;
            return Ok(true);
        }
        let file = crate::archive::open_file(self.path)?;
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 17, file));
        index::each_record(gz, self.path, self.top, false, visit)?;
        Ok(false)
    }

    /// Writes the bytes of the file at `rel` (relative to the top folder) to `out`, checking
    /// them against the SHA-256 the index records. Says whether the index served.
    ///
    /// # Errors
    /// [`Error::NotAFile`] when the archive holds no file at `rel`, [`Error::Corrupt`] when
    /// its bytes cannot be decoded or differ from the index, [`Error::Io`] when `out` fails.
    pub fn cat(&self, rel: &Path, out: &mut dyn Write) -> Result<bool> {
        let Some(index) = self.index() else {
            let file = crate::archive::open_file(self.path)?;
            let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 17, file));
            self.copy_out(gz, rel, None, out)?;
            return Ok(false);
        };
        let mut found = None;
        let read = index::read(&index, None, |segment, record| {
            if found.is_none() && record.path == rel {
                found = Some((segment, record));
            }
            Ok(())
        })?;
        let (segment, record) = found.ok_or_else(|| self.not_a_file(rel, "no such entry"))?;
        match record.kind {
            'f' => {}
            'd' => return Err(self.not_a_file(rel, "a folder, not a file")),
            _ => return Err(self.not_a_file(rel, "a link, not a file")),
        }
        let mut file = crate::archive::open_file(self.path)?;
        let fail = |e: io::Error| Error::io("read", self.path, e);
        match (read.level, read.segments.get(segment)) {
            (Some(_), Some(seg)) => {
                file.seek(SeekFrom::Start(seg.segment.zoff)).map_err(fail)?;
                let zbytes = BufReader::with_capacity(1 << 16, file.take(seg.segment.zlen));
                self.copy_out(
                    crate::pgzip::inflate_segment(zbytes),
                    rel,
                    Some(&record),
                    out,
                )?;
            }
            _ => {
                let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 17, file));
                self.copy_out(gz, rel, Some(&record), out)?;
            }
        }
        Ok(true)
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
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Directory => {
                    return Err(self.not_a_file(rel, "a folder, not a file"));
                }
                _ => return Err(self.not_a_file(rel, "a link, not a file")),
            }
            let mut hashing = HashingReader::new(&mut entry);
            io::copy(&mut hashing, out).map_err(|e| Error::io("write", "standard output", e))?;
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
