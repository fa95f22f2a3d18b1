//! Reading segmented gzip files (see [`crate::pgzip`]) segment by segment: each segment is
//! inflated on its own, and its length and CRC32 are checked against what was recorded for it.
//! Pieces are inflated at once in memory by libdeflate (about 1.6 times zlib-rs's streaming
//! speed on the benchmark's archive); segments longer than a few pieces, which resbak wrote
//! before pieces, are streamed.

use crate::pgzip::{Segment, inflate_segment};
use crate::window::Window;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;

/// Reads the uncompressed bytes of `segments` of a gzip file, one after the other, as one
/// stream. A segment whose bytes do not inflate to its recorded length and CRC32 is an error.
pub struct Segments {
    file: File,
    segments: std::vec::IntoIter<Segment>,
    current: Option<Current>,
}

/// The bytes from `pos` to `end` of a file, read at their offsets.
struct Range {
    file: File,
    pos: u64,
    end: u64,
}

impl Read for Range {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
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
        // Positioned reads: handles cloned from one file share its offset.
        let range = Range {
            file: self.file.try_clone()?,
            pos: segment.zoff,
            end: segment.zoff + segment.zlen,
        };
        let zbytes = BufReader::with_capacity(1 << 16, range);
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

/// Uncompressed bytes a worker hands over at once.
const CHUNK: usize = 256 * 1024;

/// Chunks a worker may inflate ahead of the reader, per segment: a whole piece (see
/// [`crate::index::PIECE`]), so that while one piece is read the next ones inflate on the
/// other cores.
const AHEAD: usize = crate::index::PIECE / CHUNK;

/// What a worker sends for its segment: chunks, then an error if the segment is damaged.
type Chunks = std::sync::mpsc::Receiver<io::Result<Vec<u8>>>;

/// Reads the uncompressed bytes of `segments` of a gzip file in order, as [`Segments`] does,
/// while up to `threads` workers inflate the next segments at the same time. Memory stays
/// bounded whatever the number of segments: workers start a segment only when it is at most
/// `threads` segments past the one being read, inflate at most a few chunks ahead in each, and
/// the channel of a segment is made only when a worker takes it.
pub struct Parallel {
    /// The segment being read: its channel, length, offset, and bytes read so far.
    current: Option<(Chunks, Segment, u64)>,
    /// Segments not yet read.
    left: usize,
    chunk: Vec<u8>,
    pos: usize,
    shared: std::sync::Arc<Shared>,
}

/// What [`Parallel`] and its workers share.
struct Shared {
    /// The segments not yet taken by a worker, numbered.
    jobs: std::sync::Mutex<std::iter::Enumerate<std::vec::IntoIter<Segment>>>,
    /// The channels of the segments taken and not yet read, in order, each with its segment;
    /// and the number of workers still running.
    taken: std::sync::Mutex<(std::collections::VecDeque<(Chunks, Segment)>, usize)>,
    took: std::sync::Condvar,
    /// Chunk buffers the reader is done with, for the workers to fill again.
    spares: std::sync::Mutex<Vec<Vec<u8>>>,
    /// The segment being read, and how far past it a worker may start one.
    window: Window,
}

impl Shared {
    /// The next segment for a worker, with where its chunks go; `None` when none is left.
    /// Its channel is queued for the reader while the jobs are locked, so in order.
    fn take(&self) -> Option<(usize, Segment, SyncSender)> {
        let mut jobs = self.jobs.lock().ok()?;
        let (n, segment) = jobs.next()?;
        let (send, receive) = std::sync::mpsc::sync_channel(AHEAD);
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.0.push_back((receive, segment));
        self.took.notify_all();
        Some((n, segment, send))
    }

    /// Keeps a buffer the reader is done with for a worker to fill again. Each is kept once:
    /// the reader's empty buffer, before its first chunk and between segments, is not one.
    fn spare(&self, used: Vec<u8>) {
        if used.capacity() > 0
            && let Ok(mut spares) = self.spares.lock()
        {
            spares.push(used);
        }
    }

    /// Counts a worker out, however it ends.
    fn stopped(&self) {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
        self.took.notify_all();
    }

    /// The channel of the next segment to read, once a worker has taken it; `None` if every
    /// worker stopped first.
    fn next_taken(&self) -> Option<(Chunks, Segment)> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(next) = taken.0.pop_front() {
                return Some(next);
            }
            if taken.1 == 0 {
                return None;
            }
            taken = self.took.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Counts a worker out of [`Shared`] when it ends, by a panic too.
struct Running(std::sync::Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

/// Where a worker sends a segment's chunks.
type SyncSender = std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>;

impl Parallel {
    /// Starts `threads` workers on `segments` of the gzip file open as `file`.
    pub fn new(file: &File, segments: Vec<Segment>, threads: usize) -> io::Result<Parallel> {
        let threads = threads.max(1);
        let left = segments.len();
        let shared = std::sync::Arc::new(Shared {
            jobs: std::sync::Mutex::new(segments.into_iter().enumerate()),
            taken: std::sync::Mutex::new((std::collections::VecDeque::new(), threads)),
            took: std::sync::Condvar::new(),
            spares: std::sync::Mutex::new(Vec::new()),
            window: Window::new(threads),
        });
        for _ in 0..threads {
            let running = Running(std::sync::Arc::clone(&shared));
            let file = file.try_clone()?;
            std::thread::Builder::new()
                .name("inflate".into())
                .spawn(move || work(&running.0, file))?;
        }
        Ok(Parallel {
            current: None,
            left,
            chunk: Vec::new(),
            pos: 0,
            shared,
        })
    }
}

impl Drop for Parallel {
    /// Lets every waiting worker go: each ends when it finds the reader gone.
    fn drop(&mut self) {
        self.shared.window.open();
    }
}

/// Segments up to this many uncompressed bytes (every piece, see [`crate::index::PIECE`]) are
/// inflated at once, in memory, and sent as one chunk once their length and CRC32 are checked;
/// longer ones (written before pieces) are streamed.
const WHOLE: u64 = 4 << 20;

/// The capacity to give a buffer for `len` bytes: at least a whole piece and its compressed
/// bytes, so that buffers passed between threads are made once and never grow, which keeps
/// the allocator from holding freed copies of them in every thread's arena.
fn room(len: usize) -> usize {
    len.max(crate::index::PIECE + crate::index::PIECE / 64)
}

/// A worker's buffer and decompressor for segments inflated at once.
struct Whole {
    zbytes: Vec<u8>,
    decompressor: libdeflater::Decompressor,
}

impl Whole {
    /// Whether `segment` is inflated at once.
    fn fits(segment: &Segment) -> bool {
        segment.ulen <= WHOLE && segment.zlen <= WHOLE + WHOLE / 2
    }

    /// The uncompressed bytes of `segment` of `file`, in `out`, checked against its length and
    /// CRC32.
    fn inflate(&mut self, file: &File, segment: &Segment, mut out: Vec<u8>) -> io::Result<Vec<u8>> {
        let damaged = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the segment at byte {} does not match its CRC32",
                    segment.zoff
                ),
            )
        };
        let (zlen, ulen) = (segment.zlen as usize, segment.ulen as usize);
        self.zbytes.clear();
        self.zbytes
            .reserve_exact(room(zlen + crate::pgzip::FINAL_BLOCK.len()));
        self.zbytes.resize(zlen, 0);
        file.read_exact_at(&mut self.zbytes, segment.zoff)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "it ends inside the segment at byte {} (cut short?)",
                        segment.zoff
                    ),
                ),
                _ => e,
            })?;
        self.zbytes.extend_from_slice(&crate::pgzip::FINAL_BLOCK);
        out.clear();
        out.reserve_exact(room(ulen));
        out.resize(ulen, 0);
        let n = (self.decompressor)
            .deflate_decompress(&self.zbytes, &mut out)
            .map_err(|_| damaged())?;
        if n != ulen || crc32fast::hash(&out) != segment.crc {
            return Err(damaged());
        }
        Ok(out)
    }
}

/// A worker: takes the next segment, waits until it is close enough to the one being read,
/// sends its chunks, until none is left or the reader has gone.
fn work(shared: &Shared, file: File) {
    let mut whole = Whole {
        zbytes: Vec::new(),
        decompressor: libdeflater::Decompressor::new(),
    };
    while let Some((n, segment, send)) = shared.take() {
        shared.window.wait_for(n);
        if Whole::fits(&segment) {
            let spare = shared.spares.lock().ok().and_then(|mut s| s.pop());
            let inflated = whole.inflate(&file, &segment, spare.unwrap_or_default());
            if send.send(inflated).is_err() {
                return;
            }
            continue;
        }
        let file = match file.try_clone() {
            Ok(file) => file,
            Err(e) => {
                let _ = send.send(Err(e));
                return;
            }
        };
        let mut reader = Segments::new(file, vec![segment]);
        loop {
            // A chunk the reader is done with, else a new one: only a few are ever made.
            let spare = shared
                .spares
                .lock()
                .ok()
                .and_then(|mut spares| spares.pop());
            let mut chunk = spare.unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let sent = match read_full(&mut reader, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    send.send(Ok(chunk))
                }
                Err(e) => {
                    let _ = send.send(Err(e));
                    break;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// Fills `buf` as far as `reader` goes; the count read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Read for Parallel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            let Some((chunks, segment, read)) = &mut self.current else {
                if self.left == 0 {
                    return Ok(0);
                }
                let stopped = || io::Error::other("the inflating threads stopped unexpectedly");
                let (chunks, segment) = self.shared.next_taken().ok_or_else(stopped)?;
                self.current = Some((chunks, segment, 0));
                self.left -= 1;
                continue;
            };
            match chunks.recv() {
                Ok(chunk) => {
                    let used = std::mem::replace(&mut self.chunk, chunk?);
                    *read += self.chunk.len() as u64;
                    self.pos = 0;
                    self.shared.spare(used);
                }
                // Its worker is done with it: whole, unless the worker stopped unexpectedly.
                Err(_) if *read != segment.ulen => {
                    return Err(io::Error::other(format!(
                        "the segment at byte {} was not read whole",
                        segment.zoff
                    )));
                }
                Err(_) => {
                    self.current = None;
                    // Spare before the window lets the next segment start, which then takes
                    // this buffer rather than making one more.
                    self.shared.spare(std::mem::take(&mut self.chunk));
                    self.pos = 0;
                    let window = &self.shared.window;
                    window.advance(window.front().saturating_add(1));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Checks that `segments` make up the whole gzip file open as `file`, as resbak writes it: a
/// plain 10-byte header, the segments back to back, an empty final block, and a trailer whose
/// CRC32 and length are those of the segments together. With each segment's bytes checked
/// against its CRC32 as it is inflated, this proves what a full decompression proves.
///
/// # Errors
/// An [`io::ErrorKind::InvalidData`] error saying what does not fit.
pub fn check_frame(file: &File, segments: &[Segment]) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut header = [0u8; 10];
    read_at(file, 0, &mut header)?;
    if header[..4] != [0x1f, 0x8b, 8, 0] {
        return Err(bad("not a gzip file resbak wrote"));
    }
    let mut at = 10;
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    for s in segments {
        if s.zoff != at {
            return Err(bad("its segments are not back to back"));
        }
        at += s.zlen;
        len += s.ulen;
        crc.combine(&crc32fast::Hasher::new_with_initial_len(s.crc, s.ulen));
    }
    let mut end = [0u8; 10];
    read_at(file, at, &mut end)?;
    let size = file.metadata()?.len();
    let want_crc = crc.finalize().to_le_bytes();
    let want_len = (len as u32).to_le_bytes();
    if end[..2] != [3, 0] || end[2..6] != want_crc || end[6..] != want_len || size != at + 10 {
        return Err(bad("its end does not match its segments"));
    }
    Ok(())
}

/// Checks that the gzip file open as `file` holds the bytes a [`crate::pgzip::ParGzWriter`]
/// wrote: `header`, then each of `segments`, then the end [`check_frame`] checks, given `read`,
/// the CRC32 and length of the whole file as it was read back (by a reader following the
/// writer, see [`crate::follow`]). That must be the CRC32 of the header, of each segment's
/// compressed bytes as they were written (`zcrc`) and of the end, combined.
///
/// # Errors
/// An [`io::ErrorKind::InvalidData`] error saying what differs.
pub fn check_written(
    file: &File,
    segments: &[Segment],
    header: &[u8; 10],
    read: (u32, u64),
) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut head = [0u8; 10];
    read_at(file, 0, &mut head)?;
    if &head != header {
        return Err(bad("its header is not the one written"));
    }
    check_frame(file, segments)?;
    let mut whole = crc32fast::Hasher::new();
    whole.update(header);
    for s in segments {
        whole.combine(&crc32fast::Hasher::new_with_initial_len(s.zcrc, s.zlen));
    }
    let mut end = [0u8; 10];
    read_at(
        file,
        segments.last().map_or(10, |s| s.zoff + s.zlen),
        &mut end,
    )?;
    whole.update(&end);
    let len = file.metadata()?.len();
    if (whole.finalize(), len) != read {
        return Err(bad("the file read back is not what was written"));
    }
    Ok(())
}

/// The CRC32 and length of everything `reader` gives.
///
/// # Errors
/// The first read error.
pub fn crc_of(mut reader: impl Read) -> io::Result<(u32, u64)> {
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0; CHECK_BUF];
    let mut len = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((crc.finalize(), len)),
            Ok(n) => {
                crc.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Bytes read at once by [`crc_of`].
const CHECK_BUF: usize = 256 * 1024;

/// Reads exactly `buf.len()` bytes at `offset`.
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgzip::ParGzWriter;
    use std::io::Write;

    /// A segmented gzip file of `parts` and its segments.
    fn segmented(parts: &[Vec<u8>]) -> (tempfile::NamedTempFile, Vec<Segment>) {
        let mut w = ParGzWriter::new(Vec::new(), 6, 2);
        for part in parts {
            w.cut().unwrap();
            w.write_all(part).unwrap();
        }
        let (gz, segments) = w.finish_segments().unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&gz).unwrap();
        (file, segments)
    }

    fn parts() -> Vec<Vec<u8>> {
        (0..9u8)
            .map(|i| {
                let line = format!("row {i},{}\n", u32::from(i) * 7919);
                line.repeat(1000 + 20_000 * usize::from(i % 3)).into_bytes()
            })
            .collect()
    }

    #[test]
    fn parallel_reads_the_segments_in_order_with_any_thread_count() {
        let parts = parts();
        let (file, segments) = segmented(&parts);
        check_frame(file.as_file(), &segments).unwrap();
        for threads in [1, 2, 4] {
            let mut read = Vec::new();
            Parallel::new(file.as_file(), segments.clone(), threads)
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert!(read == parts.concat(), "threads {threads}");
        }
    }

    #[test]
    fn parallel_holds_channels_only_for_the_segments_near_the_one_read() {
        let parts: Vec<Vec<u8>> = (0..2000u32).map(|i| format!("{i}\n").into()).collect();
        let (file, segments) = segmented(&parts);
        let mut reader = Parallel::new(file.as_file(), segments, 2).unwrap();
        let mut first = [0u8; 2];
        reader.read_exact(&mut first).unwrap();
        let queued = reader.shared.taken.lock().unwrap().0.len();
        // The window past the segment being read, and one more taken by each waiting worker.
        assert!(queued <= 2 + 2, "{queued} channels queued");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!([&first[..], &rest].concat() == parts.concat());
    }

    #[test]
    fn parallel_makes_one_buffer_per_thread_and_one_for_the_reader() {
        let parts: Vec<Vec<u8>> = (0..300u32).map(|i| format!("{i}\n").into()).collect();
        let (file, segments) = segmented(&parts);
        for threads in [1, 2, 4] {
            let mut reader = Parallel::new(file.as_file(), segments.clone(), threads).unwrap();
            let mut read = Vec::new();
            reader.read_to_end(&mut read).unwrap();
            assert!(read == parts.concat());
            // Every buffer made is back with the workers once all is read.
            let made = reader.shared.spares.lock().unwrap().len();
            assert!(
                (1..=threads + 1).contains(&made),
                "threads {threads}: {made}"
            );
        }
    }

    #[test]
    fn the_written_bytes_check_finds_any_changed_byte() {
        let (file, segments) = segmented(&parts());
        let header = crate::pgzip::header(6);
        let read = |f: &tempfile::NamedTempFile| crc_of(std::fs::File::open(f.path()).unwrap());
        check_written(file.as_file(), &segments, &header, read(&file).unwrap()).unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        for at in [
            3,
            9,
            10,
            segments[4].zoff as usize + 7,
            bytes.len() - 12,
            bytes.len() - 5,
        ] {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            let copy = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(copy.path(), &changed).unwrap();
            let whole = read(&copy).unwrap();
            let err = check_written(copy.as_file(), &segments, &header, whole).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {at}: {err}");
        }
        let header9 = crate::pgzip::header(9);
        let whole = read(&file).unwrap();
        assert!(check_written(file.as_file(), &segments, &header9, whole).is_err());
        let mut other = segments.clone();
        other[3].zcrc ^= 1;
        assert!(check_written(file.as_file(), &other, &header, whole).is_err());
    }

    #[test]
    fn a_segment_that_does_not_match_its_crc_or_the_frame_is_an_error() {
        let (file, mut segments) = segmented(&parts());
        segments[4].crc ^= 1;
        let mut read = Vec::new();
        let parallel = Parallel::new(file.as_file(), segments.clone(), 2).unwrap();
        let err = { parallel }.read_to_end(&mut read).unwrap_err();
        assert!(err.to_string().contains("CRC32"), "{err}");
        assert!(check_frame(file.as_file(), &segments).is_err());
        segments[4].crc ^= 1;
        segments.pop();
        assert!(check_frame(file.as_file(), &segments).is_err());
    }

    #[test]
    fn pieces_inflated_at_once_and_longer_segments_streamed_read_the_same_and_fail_alike() {
        let long = "a longer segment, as resbak wrote before pieces\n".repeat(120_000);
        let parts = vec![b"short".repeat(1000), long.into_bytes(), b"end".to_vec()];
        let (file, segments) = segmented(&parts);
        assert!(!Whole::fits(&segments[1]) && Whole::fits(&segments[0]));
        let mut read = Vec::new();
        Parallel::new(file.as_file(), segments.clone(), 2)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert!(read == parts.concat());
        for damaged in [0, 1] {
            let mut bytes = std::fs::read(file.path()).unwrap();
            let s = segments[damaged];
            bytes[(s.zoff + s.zlen / 2) as usize] ^= 0x40;
            let copy = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(copy.path(), &bytes).unwrap();
            let parallel = Parallel::new(copy.as_file(), segments.clone(), 2).unwrap();
            let err = { parallel }.read_to_end(&mut Vec::new()).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidData,
                "segment {damaged}: {err}"
            );
        }
    }
}
