//! A guard between a decompressor and the tar reader that checks each 512-byte header as the
//! stream passes. The tar crate reads a GNU long-name or long-link body and a PAX header body
//! whole into memory; a small gzip can expand to gigabytes of "long name". The guard refuses
//! such a header whose body is larger than [`MAX_HEADER_BODY`] before any of it is read.
//!
//! It follows the stream as the tar crate does: a zero block ends the archive, a local PAX
//! `size` record sets the size of the next entry, and GNU sparse headers may be followed by
//! extension blocks. A header the tar crate cannot parse either is passed on unchecked, for
//! the tar crate to refuse.

use std::io::{self, Read};

/// The largest long-name, long-link or PAX header body accepted: far beyond any real path.
pub const MAX_HEADER_BODY: u64 = 64 * 1024;

const BLOCK: u64 = 512;

/// Where the guard is in the tar stream.
enum At {
    /// Collecting the next header.
    Header,
    /// Passing `left` bytes of an entry's body (padded); PAX bodies are kept in `pax`.
    Body { left: u64 },
    /// Collecting the GNU sparse extension block that follows a sparse header.
    SparseExt,
    /// After the end of the archive, or after a header the tar crate will refuse.
    Done,
}

/// A tar reader over the tar stream `tar_stream`, guarded: the only way resbak reads a tar
/// stream, so no reader can hold an oversized extension header in memory.
pub fn reader<R: Read>(tar_stream: R) -> tar::Archive<TarGuard<R>> {
    tar::Archive::new(TarGuard::new(tar_stream))
}

/// Passes a tar stream through, refusing oversized extension headers (see the module docs).
pub struct TarGuard<R> {
    inner: R,
    at: At,
    block: Vec<u8>,
    /// A PAX body being collected, and how many of its bytes are still to come.
    pax: Option<(Vec<u8>, u64)>,
    pax_size: Option<u64>,
    /// The body size of a sparse entry whose extension blocks are being read.
    pending_size: u64,
}

impl<R: Read> TarGuard<R> {
    /// Guards the tar stream `inner`.
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            at: At::Header,
            block: Vec::with_capacity(BLOCK as usize),
            pax: None,
            pax_size: None,
            pending_size: 0,
        }
    }

    /// Follows `bytes`, which the stream just returned.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.at {
                At::Done => return Ok(()),
                At::Header | At::SparseExt => {
                    let n = bytes.len().min(BLOCK as usize - self.block.len());
                    self.block.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.block.len() == BLOCK as usize {
                        self.at = self.next_after_block()?;
                        self.block.clear();
                    }
                }
                At::Body { left } => {
                    let n = bytes
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    if let Some((pax, wanted)) = &mut self.pax {
                        let take = n.min(usize::try_from(*wanted).unwrap_or(usize::MAX));
                        pax.extend_from_slice(&bytes[..take]);
                        *wanted -= take as u64;
                    }
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.end_body();
                        self.at = At::Header;
                    }
                }
            }
        }
        Ok(())
    }

    /// What follows the block just collected.
    fn next_after_block(&mut self) -> io::Result<At> {
        if let At::SparseExt = self.at {
            // `isextended` of a GNU sparse extension block.
            return Ok(match self.block[504] {
                0 => self.body(self.pending_size),
                _ => At::SparseExt,
            });
        }
        if self.block.iter().all(|&b| b == 0) {
            return Ok(At::Done);
        }
        let header = tar::Header::from_byte_slice(&self.block);
        let (Ok(size), true) = (header.entry_size(), checksum_ok(header)) else {
            return Ok(At::Done);
        };
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if extension && size > MAX_HEADER_BODY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a long name or extended header of {size} bytes (more than {} KiB)",
                    MAX_HEADER_BODY / 1024
                ),
            ));
        }
        // The tar crate reads recognised L, K and x headers ahead of the entry they describe;
        // that entry (whatever its type) takes a PAX size, unless it is an extension itself.
        let recognised = header.as_gnu().is_some() || header.as_ustar().is_some();
        let ahead = recognised
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions());
        let pax_size = if ahead { None } else { self.pax_size.take() };
        let size = if extension {
            size
        } else {
            pax_size.unwrap_or(size)
        };
        if recognised && kind.is_pax_local_extensions() {
            self.pax = Some((Vec::new(), size));
        }
        let extended = header.as_gnu().is_some_and(|g| g.is_extended());
        if kind.is_gnu_sparse() && extended {
            self.pending_size = size;
            return Ok(At::SparseExt);
        }
        Ok(self.body(size))
    }

    /// The body of `size` bytes, padded to whole blocks.
    fn body(&mut self, size: u64) -> At {
        match size.div_ceil(BLOCK).checked_mul(BLOCK) {
            Some(0) => {
                self.end_body();
                At::Header
            }
            Some(left) => At::Body { left },
            None => At::Done,
        }
    }

    /// Ends an entry's body: a PAX body collected is parsed for the next entry's size.
    fn end_body(&mut self) {
        if let Some((pax, _)) = self.pax.take() {
            self.pax_size = pax_size(&pax);
        }
    }
}

/// The `size` record of a PAX body, read as the tar crate reads it.
fn pax_size(body: &[u8]) -> Option<u64> {
    for record in tar::PaxExtensions::new(body) {
        let record = record.ok()?;
        if record.key() == Ok("size") {
            return record.value().ok()?.parse().ok();
        }
    }
    None
}

/// Whether a header's checksum holds, as the tar crate checks it.
fn checksum_ok(header: &tar::Header) -> bool {
    let bytes = header.as_bytes();
    let sum = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .fold(0u32, |a, &b| a + u32::from(b))
        + 8 * 32;
    header.cksum().is_ok_and(|c| c == sum)
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One header block of `kind` declaring `size` bytes, named `name`.
    fn header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    fn pax(records: &str) -> Vec<u8> {
        let mut block = header(
            "PaxHeaders/x",
            tar::EntryType::XHeader,
            records.len() as u64,
        );
        block.extend_from_slice(records.as_bytes());
        block.resize(block.len().next_multiple_of(512), 0);
        block
    }

    /// Everything the tar crate reads through the guard, or its error.
    fn read_all(stream: impl Read) -> io::Result<Vec<String>> {
        let mut archive = tar::Archive::new(TarGuard::new(stream));
        let mut names = Vec::new();
        for entry in archive.entries()? {
            names.push(entry?.path()?.display().to_string());
        }
        Ok(names)
    }

    #[test]
    fn real_archives_pass_unchanged() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("s/{}/f", "d".repeat(300));
        for (name, data) in [("s/a", &b"x"[..]), (long.as_str(), &[7u8; 1000][..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            builder.append_data(&mut h, name, data).unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        let mut through = Vec::new();
        TarGuard::new(&bytes[..]).read_to_end(&mut through).unwrap();
        assert_eq!(through, bytes);
        assert_eq!(read_all(&bytes[..]).unwrap(), ["s/a", long.as_str()]);
    }

    #[test]
    fn oversized_extension_headers_are_refused_before_their_body_is_read() {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
        ] {
            let endless = io::repeat(b'a');
            let head = header("././@LongLink", kind, 4 << 30);
            let err = read_all(io::Read::chain(&head[..], endless)).unwrap_err();
            assert!(
                err.to_string().contains("more than 64 KiB"),
                "{kind:?}: {err}"
            );
        }
        let fits = header(
            "././@LongLink",
            tar::EntryType::GNULongName,
            MAX_HEADER_BODY,
        );
        let mut guard = TarGuard::new(io::Read::chain(&fits[..], io::repeat(b'a')));
        let mut body = vec![0; 600 + MAX_HEADER_BODY as usize];
        guard.read_exact(&mut body).unwrap();
    }

    #[test]
    fn a_pax_size_is_followed_as_the_tar_crate_follows_it() {
        // The PAX size 0 makes the file's declared 512 bytes of body the next header, which
        // declares a huge long name: the guard must see it where the tar crate does.
        let mut stream = pax("9 size=0\n");
        stream.extend(header("s/f", tar::EntryType::Regular, 512));
        stream.extend(header(
            "././@LongLink",
            tar::EntryType::GNULongName,
            1 << 40,
        ));
        let err = read_all(io::Read::chain(&stream[..], io::repeat(b'a'))).unwrap_err();
        assert!(err.to_string().contains("more than 64 KiB"), "{err}");
    }
}
