//! Reading segmented gzip files (see [`crate::pgzip`]) segment by segment: each segment is
//! inflated on its own, and its length and CRC32 are checked against what was recorded for it.

use crate::pgzip::{Segment, inflate_segment};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Reads the uncompressed bytes of `segments` of a gzip file, one after the other, as one
/// stream. A segment whose bytes do not inflate to its recorded length and CRC32 is an error.
pub struct Segments {
    file: File,
    segments: std::vec::IntoIter<Segment>,
    current: Option<Current>,
}

/// The segment being read.
struct Current {
    reader: Box<dyn Read + Send>,
    segment: Segment,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Segments {
    /// Reads `segments` (in the order given) of the gzip file open as `file`.
    pub fn new(file: File, segments: Vec<Segment>) -> Segments {
        Segments {
            file,
            segments: segments.into_iter(),
            current: None,
        }
    }

    /// Opens the next segment; `false` when none is left.
    fn open_next(&mut self) -> io::Result<bool> {
        let Some(segment) = self.segments.next() else {
            return Ok(false);
        };
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(segment.zoff))?;
        let zbytes = BufReader::with_capacity(1 << 16, file.take(segment.zlen));
        self.current = Some(Current {
            reader: Box::new(inflate_segment(zbytes)),
            segment,
            crc: crc32fast::Hasher::new(),
            len: 0,
        });
        Ok(true)
    }
}

impl Read for Segments {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(cur) = &mut self.current else {
                if !self.open_next()? {
                    return Ok(0);
                }
                continue;
            };
            let n = cur.reader.read(buf)?;
            if n > 0 {
                cur.crc.update(&buf[..n]);
                cur.len += n as u64;
                return Ok(n);
            }
            let crc = std::mem::take(&mut cur.crc).finalize();
            let s = cur.segment;
            if cur.len != s.ulen || crc != s.crc {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the segment at byte {} does not match its CRC32", s.zoff),
                ));
            }
            self.current = None;
        }
    }
}
