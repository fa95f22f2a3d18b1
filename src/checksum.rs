//! SHA-256 on the way through: a writer and a reader wrapper that hash and count every byte
//! they pass on, so an archive is checksummed while it is written or read, never in a second pass.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// A finished checksum: lowercase hex SHA-256 and the number of bytes hashed.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Checksum {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Bytes hashed.
    pub len: u64,
}

#[derive(Default)]
struct Hashing {
    hasher: Sha256,
    len: u64,
}

impl Hashing {
    fn update(&mut self, buf: &[u8]) {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
    }

    fn finish(self) -> Checksum {
        Checksum {
            sha256: hex(&self.hasher.finalize()),
            len: self.len,
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Passes writes through to `inner`, hashing exactly the bytes `inner` accepted.
pub struct HashingWriter<W> {
    inner: W,
    hash: Hashing,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Hashing::default(),
        }
    }

    /// Returns the inner writer and the checksum of everything written (the caller flushes).
    pub fn finish(self) -> (W, Checksum) {
        (self.inner, self.hash.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through from `inner`, hashing every byte returned.
pub struct HashingReader<R> {
    inner: R,
    hash: Hashing,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: Hashing::default(),
        }
    }

    /// Reads whatever is left, then returns the checksum of everything read.
    pub fn finish(mut self) -> io::Result<Checksum> {
        // Large reads once there is much to read: far fewer system calls than `io::copy`'s
        // 8 KiB, without a large buffer for the many readers that are already at their end.
        let mut buf = vec![0; 8 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(self.hash.finish()),
                Ok(n) if n == buf.len() && n < 256 * 1024 => buf.resize(256 * 1024, 0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`HashingReader::finish`], also giving back the inner reader.
    pub fn finish_into_inner(mut self) -> io::Result<(R, Checksum)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.inner, self.hash.finish()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn writer_hashes_what_it_writes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (out, sum) = w.finish();
        assert_eq!(out, b"abc");
        assert_eq!(sum.sha256, ABC);
        assert_eq!(sum.len, 3);
    }

    #[test]
    fn reader_finish_hashes_the_unread_rest() {
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        r.read_exact(&mut first).unwrap();
        let sum = r.finish().unwrap();
        assert_eq!(sum.sha256, ABC);
        assert_eq!(sum.len, 3);
    }
}
