//! Segments of an earlier archive that a new backup may copy instead of compressing: found by
//! key in the earlier archive's index (its SHA-256 checked against the manifest first), and
//! each checked against the index's CRC32 of its compressed bytes before it is copied.

use crate::error::Result;
use crate::index::{self, Index};
use crate::pgzip::Segment;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes read at once while a segment is checked.
const CHUNK: usize = 256 * 1024;

/// Segments up to this many compressed bytes are read once, into memory, and checked there.
pub const SMALL: u64 = 512 << 10;

/// An earlier archive, open, with its segments by key.
pub struct Source {
    path: PathBuf,
    file: File,
    /// The first segment of each group, by key.
    by_key: HashMap<String, usize>,
    segments: Vec<index::Indexed>,
}

impl Source {
    /// Opens the archive at `archive` (of `size` bytes) as a source for a backup with top
    /// folder `top` at `level`, if its index at [`index::path_for`] has SHA-256 `index_sha256`
    /// and the same top folder and level. `Ok(None)` when it cannot serve, with the reason.
    pub fn open(
        archive: &Path,
        size: u64,
        index_sha256: &str,
        top: &str,
        level: u32,
    ) -> Result<std::result::Result<Source, String>> {
        let index_path = index::path_for(archive);
        let index: Index = match index::read(&index_path, Some(index_sha256), |_, _| Ok(())) {
            Ok(index) => index,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if index.level != Some(level) || index.top != top {
            return Ok(Err("it was written with other settings".into()));
        }
        if index.format != index::FORMAT {
            return Ok(Err(
                "an earlier resbak cut it into segments otherwise, so this backup compresses everything once".into()
            ));
        }
        let file = crate::archive::open_file(archive)?;
        let len = file
            .metadata()
            .map_err(|e| crate::error::Error::io("read", archive, e))?
            .len();
        if len != size {
            return Ok(Err(format!("it is {len} bytes, the manifest says {size}")));
        }
        let by_key = (index.segments.iter().enumerate())
            .filter_map(|(n, s)| Some((s.key.clone()?, n)))
            .collect();
        Ok(Ok(Source {
            path: archive.to_path_buf(),
            file,
            by_key,
            segments: index.segments,
        }))
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The segments of the group with `key`, if the archive has one.
    pub fn find(&self, key: &str) -> Option<Vec<Segment>> {
        let head = *self.by_key.get(key)?;
        let group = &self.segments[index::group(&self.segments, head)];
        Some(group.iter().map(|s| s.segment).collect())
    }

    /// The compressed bytes of `segment` if they have the CRC32 the index records, read at
    /// once (for segments up to [`SMALL`] bytes).
    pub fn read_checked(&self, segment: &Segment) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = Vec::with_capacity(usize::try_from(segment.zlen).unwrap_or(0));
        self.reader(segment).read_to_end(&mut bytes)?;
        let intact = bytes.len() as u64 == segment.zlen && crc32fast::hash(&bytes) == segment.zcrc;
        Ok(intact.then_some(bytes))
    }

    /// Whether the compressed bytes of `segment` have the CRC32 the index records, read
    /// [`CHUNK`] bytes at a time into `buf`.
    fn intact(&self, segment: &Segment, buf: &mut [u8]) -> io::Result<bool> {
        let mut crc = crc32fast::Hasher::new();
        let mut reader = self.reader(segment);
        let mut read = 0u64;
        loop {
            let n = reader.read(buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            read += n as u64;
        }
        Ok(read == segment.zlen && crc.finalize() == segment.zcrc)
    }

    /// Gives `copy` a reader of the compressed bytes of `segment`, and says whether what it read
    /// had the length and CRC32 the index records: they may have changed since they were
    /// checked with [`Source::all_intact`].
    pub fn copy_checked(
        &self,
        segment: &Segment,
        copy: impl FnOnce(&mut Checked<'_>) -> io::Result<()>,
    ) -> io::Result<bool> {
        let mut reader = Checked {
            inner: Box::new(self.reader(segment)),
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        copy(&mut reader)?;
        Ok(reader.len == segment.zlen && reader.crc.finalize() == segment.zcrc)
    }

    /// Whether every one of `pieces` (a group's segments) has the length and CRC32 of its
    /// compressed bytes that the index records.
    pub fn all_intact(&self, pieces: &[Segment]) -> io::Result<bool> {
        let mut buf = vec![0; CHUNK];
        for piece in pieces {
            if !self.intact(piece, &mut buf)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A reader of the compressed bytes of `segment`, by positioned reads: several threads
    /// may read the archive at once. Unbuffered: every caller reads large chunks.
    pub fn reader(&self, segment: &Segment) -> impl Read + '_ {
        At {
            file: &self.file,
            pos: segment.zoff,
            end: segment.zoff + segment.zlen,
        }
    }
}

/// The bytes of `file` from `pos` to `end`, read at their offsets.
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads through, keeping the length and CRC32 of what was read (see [`Source::copy_checked`]).
pub struct Checked<'a> {
    inner: Box<dyn Read + 'a>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}
