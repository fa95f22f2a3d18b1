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

impl Checksum {
    /// What differs between this checksum of a file and the `recorded` one. With the same
    /// SHA-256 only the recorded size can be wrong: the file is intact and its entry is not.
    pub fn mismatch(&self, recorded: &Checksum) -> String {
        if self.sha256 == recorded.sha256 {
            return format!(
                "size is {} bytes, manifest says {}, but its SHA-256 is the one recorded: the \
                 archive is intact and its manifest entry is wrong; correct its size to {}",
                self.len, recorded.len, self.len
            );
        }
        let mut detail = format!(
            "SHA-256 is {}, manifest says {}",
            self.sha256, recorded.sha256
        );
        if self.len != recorded.len {
            detail += &format!(" ({} bytes, manifest says {})", self.len, recorded.len);
        }
        detail
    }
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
    hash: Hash,
}

/// Where a [`HashingWriter`] hashes.
enum Hash {
    Here(Hashing),
    Away(Background),
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Hash::Here(Hashing::default()),
        }
    }

    /// Wraps `inner`, hashing on a thread of its own (or here, if none can be started), so
    /// that the writer's thread only copies the bytes.
    pub fn in_background(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Background::start().map_or_else(|| Hash::Here(Hashing::default()), Hash::Away),
        }
    }

    /// Returns the inner writer and the checksum of everything written (the caller flushes).
    pub fn finish(self) -> (W, Checksum) {
        let sum = match self.hash {
            Hash::Here(hash) => hash.finish(),
            Hash::Away(background) => background.finish(),
        };
        (self.inner, sum)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match &mut self.hash {
            Hash::Here(hash) => hash.update(&buf[..n]),
            Hash::Away(background) => background.update(&buf[..n]),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes handed to the hashing thread of [`HashingWriter::in_background`] at once.
const HANDED: usize = 64 * 1024;

/// A SHA-256 computed on a thread of its own, fed [`HANDED`] bytes at a time; a few buffers go
/// back and forth, so memory stays bounded.
struct Background {
    pending: Vec<u8>,
    len: u64,
    full: std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: std::thread::JoinHandle<Sha256>,
}

impl Background {
    fn start() -> Option<Background> {
        let (full, to_hash) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (hashed, empty) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut buf in to_hash {
                    hasher.update(&buf);
                    buf.clear();
                    let _ = hashed.send(buf);
                }
                hasher
            })
            .ok()?;
        Some(Background {
            pending: Vec::with_capacity(HANDED),
            len: 0,
            full,
            empty,
            thread,
        })
    }

    fn update(&mut self, mut buf: &[u8]) {
        self.len += buf.len() as u64;
        while !buf.is_empty() {
            let n = buf.len().min(HANDED - self.pending.len());
            self.pending.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.pending.len() == HANDED {
                self.hand_over();
            }
        }
    }

    /// Sends the pending bytes to the hashing thread, taking an empty buffer back if one is
    /// there. The thread ends only when `full` is dropped, so the send cannot fail.
    fn hand_over(&mut self) {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(HANDED));
        let _ = self.full.send(std::mem::replace(&mut self.pending, next));
    }

    fn finish(mut self) -> Checksum {
        if !self.pending.is_empty() {
            self.hand_over();
        }
        let Background {
            full, thread, len, ..
        } = self;
        drop(full);
        // The hashing thread only hashes: it cannot panic short of running out of memory.
        let hasher = thread
            .join()
            .expect("the hashing thread ends when its input does");
        Checksum {
            sha256: hex(&hasher.finalize()),
            len,
        }
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
    fn a_writer_hashing_in_the_background_gives_the_same_checksum() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut here = HashingWriter::new(Vec::new());
        let mut away = HashingWriter::in_background(Vec::new());
        for chunk in data.chunks(70_001) {
            here.write_all(chunk).unwrap();
            away.write_all(chunk).unwrap();
        }
        let (_, want) = here.finish();
        let (out, sum) = away.finish();
        assert!(out == data);
        assert_eq!(sum, want);
        assert_eq!(
            HashingWriter::in_background(Vec::new()).finish().1.sha256,
            EMPTY
        );
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
