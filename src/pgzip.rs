//! Deterministic, pigz-style parallel gzip writer.
//!
//! [`ParGzWriter`] owns the whole gzip member: header, deflate data and
//! trailer. The input is cut into fixed [`BLOCK_SIZE`] blocks; each block is
//! raw-deflated on its own, primed with the previous 32 KiB of input as a
//! preset dictionary and ended with a sync flush (the last block with a
//! final block instead), so the blocks concatenate into one ordinary deflate
//! stream. Block boundaries depend only on byte offsets, never on thread
//! count, timing or how the caller splits its writes, so the output is
//! byte-identical for any `threads` value and from run to run.
//!
//! The stream can also be cut into segments ([`ParGzWriter::cut`]): a segment's first block
//! has no dictionary and block boundaries count from the segment's start, so a segment's
//! compressed bytes depend only on its own input and can be copied into another stream
//! ([`ParGzWriter::copy_segment`]). With [`ParGzWriter::pieces`], a segment longer than a
//! piece is cut again every piece's length counted from its start, so that a reader can inflate
//! the pieces of one long segment on several cores. The stream ends with an empty final block,
//! outside every segment; [`ParGzWriter::finish_segments`] reports where each segment lies.
//!
//! Workers compress blocks while the caller keeps producing data; finished
//! blocks are written to the inner writer, in order, from the caller's
//! thread (so `W` needs no `Send`). At most `threads + 2` blocks are in
//! flight, which keeps memory flat whatever the input size.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per independently compressed block.
pub const BLOCK_SIZE: usize = 128 * 1024;

/// Preset dictionary size: the deflate window.
const DICT_SIZE: usize = 32 * 1024;

/// Gzip OS byte: 255 ("unknown"), so output does not depend on the platform.
const OS_UNKNOWN: u8 = 255;

/// Compresses one block in place; swapped out by tests to inject failures.
type CompressFn = fn(&mut Block, Compression) -> io::Result<()>;

/// What a worker sends back: the block (buffers included) and its outcome.
type Reply = (Block, io::Result<()>);

/// One unit of work, with its buffers, which are recycled.
#[derive(Default)]
struct Block {
    seq: u64,
    last: bool,
    /// Starts a segment (and so has no dictionary).
    starts: bool,
    /// `out` holds bytes copied from another stream: nothing to compress.
    copied: bool,
    /// Uncompressed bytes this block stands for.
    len: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
    out: Vec<u8>,
    crc: Hasher,
    /// A compressor made by the writer (see [`ParGzWriter::few_compressed`]): fresh when the
    /// block is handed on, used once, and freed by the writer when the block comes back.
    deflater: Option<Compress>,
}

impl Block {
    /// Prepares `self` to follow `prev`: empty data, dictionary = its tail.
    fn follow(&mut self, prev: &Block) {
        let tail = prev.data.len().saturating_sub(DICT_SIZE);
        self.dict.clear();
        self.dict.extend_from_slice(&prev.data[tail..]);
        self.data.clear();
        self.last = false;
        self.starts = false;
        self.copied = false;
        self.len = 0;
    }

    /// Prepares `self` to start a segment: no data and no dictionary.
    fn start(&mut self) {
        self.dict.clear();
        self.data.clear();
        self.last = false;
        self.starts = true;
        self.copied = false;
        self.len = 0;
    }
}

/// An empty final deflate block: after a segment's bytes, it makes them a whole deflate stream.
pub(crate) const FINAL_BLOCK: [u8; 2] = [3, 0];

/// Reads the uncompressed bytes of one segment from `zbytes`, its compressed bytes.
pub fn inflate_segment<R: Read>(zbytes: R) -> impl Read {
    flate2::read::DeflateDecoder::new(zbytes.chain(&FINAL_BLOCK[..]))
}

/// Where one segment lies in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Offset of its first uncompressed byte.
    pub uoff: u64,
    /// Uncompressed length.
    pub ulen: u64,
    /// Offset of its first compressed byte in the gzip file.
    pub zoff: u64,
    /// Compressed length.
    pub zlen: u64,
    /// CRC32 of the uncompressed bytes.
    pub crc: u32,
    /// CRC32 of the compressed bytes.
    pub zcrc: u32,
    /// Whether its bytes were copied ([`ParGzWriter::copy_segment`]) rather than compressed.
    pub copied: bool,
}

/// Raw-deflates `b.data` into `b.out` and computes its CRC32.
///
/// Each block gets a fresh `Compress` (about 14 µs): zlib-rs's `reset()`
/// keeps the old window bytes, which can change match choices, so a reused
/// compressor would make the output depend on which worker ran which block.
fn compress_block(b: &mut Block, level: Compression) -> io::Result<()> {
    if b.copied {
        return Ok(());
    }
    b.crc = Hasher::new();
    b.crc.update(&b.data);
    let mut own;
    let c = match b.deflater.as_mut() {
        Some(c) => c,
        None => {
            own = Compress::new(level, false);
            &mut own
        }
    };
    if !b.dict.is_empty() {
        c.set_dictionary(&b.dict).map_err(io::Error::other)?;
    }
    let flush = if b.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    deflate_into(c, &b.data, &mut b.out, flush)
}

/// Runs `c` over all of `input` with `flush`. Output space is sized from the
/// input length alone, so the bytes never depend on buffer history.
fn deflate_into(
    c: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    let len = input.len();
    out.clear();
    out.resize(out_bound(len), 0);
    let (mut pos_in, mut pos_out) = (0, 0);
    loop {
        let (in0, out0) = (c.total_in(), c.total_out());
        let status = c
            .compress(&input[pos_in..], &mut out[pos_out..], flush)
            .map_err(io::Error::other)?;
        pos_in += usize::try_from(c.total_in() - in0).map_err(io::Error::other)?;
        pos_out += usize::try_from(c.total_out() - out0).map_err(io::Error::other)?;
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => pos_in == len && pos_out < out.len(),
        };
        if done {
            out.truncate(pos_out);
            return Ok(());
        }
        out.resize(out.len() + len / 4 + 4096, 0);
    }
}

/// The room [`deflate_into`] first gives the output of `len` input bytes.
fn out_bound(len: usize) -> usize {
    len + (len >> 12) + (len >> 14) + 64
}

/// The inner writer plus the running CRC32 and length of the input.
struct Sink<W: Write> {
    inner: W,
    crc: Hasher,
    size: u64,
    header: [u8; 10],
    header_done: bool,
    /// Compressed bytes written so far, header included.
    zsize: u64,
    segments: Vec<Segment>,
    /// CRC32s of the open segment: uncompressed and compressed.
    seg_crc: Hasher,
    seg_zcrc: Hasher,
}

/// The 10-byte gzip header [`ParGzWriter`] writes at `level`.
pub fn header(level: u32) -> [u8; 10] {
    let xfl = match level.min(9) {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNKNOWN]
}

impl<W: Write> Sink<W> {
    fn new(inner: W, level: u32) -> Self {
        Sink {
            inner,
            crc: Hasher::new(),
            size: 0,
            header: header(level),
            header_done: false,
            zsize: 10,
            segments: Vec::new(),
            seg_crc: Hasher::new(),
            seg_zcrc: Hasher::new(),
        }
    }

    /// Writes a compressed block (after the header, the first time).
    fn put(&mut self, b: &Block) -> io::Result<()> {
        if !self.header_done {
            self.inner.write_all(&self.header)?;
            self.header_done = true;
        }
        self.inner.write_all(&b.out)?;
        if b.starts {
            self.close_segment();
            self.segments.push(Segment {
                uoff: self.size,
                zoff: self.zsize,
                copied: b.copied,
                ..Segment::default()
            });
        }
        if !b.last
            && let Some(seg) = self.segments.last_mut()
        {
            seg.ulen += b.len;
            seg.zlen += b.out.len() as u64;
            self.seg_crc.combine(&b.crc);
            self.seg_zcrc.update(&b.out);
        }
        self.crc.combine(&b.crc);
        self.size += b.len;
        self.zsize += b.out.len() as u64;
        Ok(())
    }

    /// Records the CRC32s of the open segment, if any.
    fn close_segment(&mut self) {
        let crc = mem::take(&mut self.seg_crc).finalize();
        let zcrc = mem::take(&mut self.seg_zcrc).finalize();
        if let Some(seg) = self.segments.last_mut() {
            (seg.crc, seg.zcrc) = (crc, zcrc);
        }
    }

    /// Writes the trailer (CRC32, ISIZE), flushes and returns the writer.
    fn finish(mut self) -> io::Result<W> {
        let isize = self.size as u32; // mod 2^32, as gzip wants
        let crc = self.crc.finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&isize.to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Worker threads, the queues to them and the reordering of their results.
struct Pool {
    jobs: Option<Sender<Block>>,
    replies: Receiver<Reply>,
    workers: Vec<JoinHandle<()>>,
    pending: BTreeMap<u64, Block>,
    level: Compression,
    /// Whether the writer makes (and frees) each block's compressor, see
    /// [`ParGzWriter::few_compressed`].
    writer_made: bool,
    submitted: u64,
    written: u64,
    max_in_flight: u64,
}

impl Pool {
    fn new(threads: usize, level: Compression, f: CompressFn) -> io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<Block>();
        let (reply_tx, replies) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut pool = Pool {
            jobs: Some(jobs),
            replies,
            workers: Vec::with_capacity(threads),
            pending: BTreeMap::new(),
            level,
            writer_made: false,
            submitted: 0,
            written: 0,
            max_in_flight: threads as u64 + 2,
        };
        for i in 0..threads {
            let (rx, tx) = (Arc::clone(&job_rx), reply_tx.clone());
            let handle = thread::Builder::new()
                .name(format!("pgzip-{i}"))
                .spawn(move || worker(level, &rx, &tx, f))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    fn in_flight(&self) -> u64 {
        self.submitted - self.written
    }

    fn submit(&mut self, mut b: Block) -> io::Result<()> {
        b.seq = self.submitted;
        let jobs = self.jobs.as_ref().ok_or_else(|| gone("pool shut down"))?;
        jobs.send(b).map_err(|_| gone("all workers exited"))?;
        self.submitted += 1;
        Ok(())
    }

    /// The next block in order if ready; with `wait`, blocks until it is.
    /// `None` when nothing is ready (or nothing is in flight).
    fn next_ready(&mut self, wait: bool) -> io::Result<Option<Block>> {
        loop {
            if let Some(b) = self.pending.remove(&self.written) {
                self.written += 1;
                return Ok(Some(b));
            }
            if self.in_flight() == 0 {
                return Ok(None);
            }
            let (b, res) = if wait {
                self.replies
                    .recv()
                    .map_err(|_| gone("all workers exited"))?
            } else {
                match self.replies.try_recv() {
                    Ok(reply) => reply,
                    Err(TryRecvError::Empty) => return Ok(None),
                    Err(TryRecvError::Disconnected) => return Err(gone("all workers exited")),
                }
            };
            res?;
            self.pending.insert(b.seq, b);
        }
    }

    /// Closes the job queue and joins every worker.
    fn shutdown(&mut self) -> io::Result<()> {
        drop(self.jobs.take());
        let mut result = Ok(());
        for handle in self.workers.drain(..) {
            if handle.join().is_err() {
                result = Err(gone("worker panicked"));
            }
        }
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn gone(what: &str) -> io::Error {
    io::Error::other(format!("pgzip: {what}"))
}

/// Worker loop: compress blocks until the queue closes. A panic is turned
/// into an error reply (so the writer never waits for a lost block) and
/// ends the worker.
fn worker(
    level: Compression,
    jobs: &Mutex<Receiver<Block>>,
    replies: &Sender<Reply>,
    f: CompressFn,
) {
    fill_small_chunk_cache();
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut block) = next else { return };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&mut block, level)));
        let panicked = outcome.is_err();
        let res = outcome.unwrap_or_else(|_| Err(gone("worker panicked")));
        if replies.send((block, res)).is_err() || panicked {
            return;
        }
    }
}

/// Allocates and frees 7 small buffers of each size up to 120 bytes, once per worker thread.
///
/// Measured with glibc: each block's compressor is one 64-byte-aligned allocation of 371 KiB.
/// An aligned allocation leaves small remainders before and after it, and glibc keeps those in
/// the thread's cache of free small chunks, where they are never merged back. Lying between
/// the freed compressor and the free end of the heap, they keep the next compressor from the
/// same place: it goes above, and so on until the cache's 7 entries per size are full, so each
/// worker touched 8 places (2.7 MiB) for one compressor's worth of memory. With the cache
/// full from the start, the remainders are merged back and every compressor of a worker
/// reuses one place. On other allocators this costs a few thousand bytes, once.
fn fill_small_chunk_cache() {
    let small: Vec<Vec<u8>> = (0..7)
        .flat_map(|_| (24..=120).step_by(16).map(Vec::<u8>::with_capacity))
        .collect();
    // Kept from the optimiser, which may drop allocations that are never used.
    std::hint::black_box(&small);
}

/// Where blocks get compressed.
enum Engine {
    /// `threads == 1`: compress on the caller's thread.
    Inline(Compression, CompressFn),
    /// Worker threads.
    Pool(Pool),
}

impl Engine {
    /// Compresses `b` and writes every finished block, in order, to `sink`.
    /// For the last block, waits until everything is written.
    fn run<W: Write>(
        &mut self,
        mut b: Block,
        sink: &mut Sink<W>,
        spare: &mut Vec<Block>,
    ) -> io::Result<()> {
        match self {
            Engine::Inline(level, f) => {
                f(&mut b, *level)?;
                sink.put(&b)?;
                spare.push(b);
                Ok(())
            }
            Engine::Pool(pool) if b.copied => {
                // Nothing to compress: written as soon as every block before it is, without
                // a round trip through a worker.
                drain(pool, sink, spare, true)?;
                sink.put(&b)?;
                spare.push(b);
                Ok(())
            }
            Engine::Pool(pool) => {
                let last = b.last;
                // Reserved here, the output buffers come from one allocator arena, not
                // one per worker.
                b.out.clear();
                b.out.reserve(out_bound(b.data.len()));
                if pool.writer_made {
                    b.deflater = Some(Compress::new(pool.level, false));
                }
                pool.submit(b)?;
                drain(pool, sink, spare, last)
            }
        }
    }
}

/// Writes ready blocks; waits while too many are in flight, or for all of
/// them with `all`.
fn drain<W: Write>(
    pool: &mut Pool,
    sink: &mut Sink<W>,
    spare: &mut Vec<Block>,
    all: bool,
) -> io::Result<()> {
    loop {
        let wait = all || pool.in_flight() >= pool.max_in_flight;
        match pool.next_ready(wait)? {
            Some(mut b) => {
                b.deflater = None;
                sink.put(&b)?;
                spare.push(b);
            }
            None => return Ok(()),
        }
    }
}

/// A `Write` adapter producing one deterministic gzip member, compressed by
/// `threads` workers. Call [`ParGzWriter::finish`]; dropping it without
/// finishing leaves a truncated stream.
pub struct ParGzWriter<W: Write> {
    sink: Sink<W>,
    engine: Engine,
    cur: Block,
    spare: Vec<Block>,
    failed: Option<(io::ErrorKind, String)>,
    /// Blocks per piece (see [`ParGzWriter::pieces`]); `None`: segments are not cut again.
    piece_blocks: Option<u64>,
    /// Blocks of the open segment already handed on.
    seg_blocks: u64,
    /// Segments started so far (handed on with their first bytes).
    started: u64,
}

impl<W: Write> ParGzWriter<W> {
    /// Wraps `inner`. `level` is 0-9 (higher values are clamped to 9);
    /// `threads` below 1 counts as 1. Every `threads` value produces the same
    /// bytes; with 1 (or if no thread can be spawned), blocks are compressed
    /// on the caller's thread.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        Self::with_compressor(inner, level, threads, compress_block)
    }

    /// `new` with a replaceable block compressor (tests inject failures).
    fn with_compressor(inner: W, level: u32, threads: usize, f: CompressFn) -> Self {
        let level = level.min(9);
        let compression = Compression::new(level);
        let pool = match threads {
            0 | 1 => None,
            n => Pool::new(n, compression, f).ok(),
        };
        let engine = match pool {
            Some(pool) => Engine::Pool(pool),
            None => Engine::Inline(compression, f),
        };
        let mut cur = Block::default();
        cur.start();
        ParGzWriter {
            sink: Sink::new(inner, level),
            engine,
            cur,
            spare: Vec::new(),
            failed: None,
            piece_blocks: None,
            seg_blocks: 0,
            started: 0,
        }
    }

    /// Cuts every segment again each `piece` bytes from its start (rounded down to whole
    /// blocks, at least one), so that its pieces can be inflated apart: each piece is a
    /// segment of its own, and where the pieces start depends only on the segment's bytes.
    pub fn pieces(mut self, piece: usize) -> Self {
        self.piece_blocks = Some((piece / BLOCK_SIZE).max(1) as u64);
        self
    }

    /// For a stream mostly copied ([`ParGzWriter::copy_segment`]): each block's compressor
    /// is made and freed by the writer, so that a worker compressing a few blocks does not grow
    /// an allocator arena of its own (megabytes each, measured). Streams mostly compressed
    /// keep memory lower with the workers making their own. The bytes are the same.
    pub fn few_compressed(mut self) -> Self {
        if let Engine::Pool(pool) = &mut self.engine {
            pool.writer_made = true;
        }
        self
    }

    /// How many segments have been started so far: after a [`ParGzWriter::cut`], every
    /// segment written or copied before it.
    pub fn segments_started(&self) -> u64 {
        self.started
    }

    /// Compresses the remaining data, writes the trailer (CRC32 and length),
    /// flushes and returns the inner writer. Reports every error.
    pub fn finish(self) -> io::Result<W> {
        self.finish_segments().map(|(w, _)| w)
    }

    /// [`ParGzWriter::finish`], also returning where each segment lies.
    pub fn finish_segments(mut self) -> io::Result<(W, Vec<Segment>)> {
        self.cut()?;
        self.cur.last = true;
        self.cur.starts = false;
        self.dispatch(false)?;
        let ParGzWriter {
            mut sink, engine, ..
        } = self;
        if let Engine::Pool(mut pool) = engine {
            pool.shutdown()?;
        }
        sink.close_segment();
        let segments = mem::take(&mut sink.segments);
        Ok((sink.finish()?, segments))
    }

    /// Ends the current segment: what is written next starts a new one, compressed without
    /// any dictionary. Does nothing when the current segment is still empty.
    pub fn cut(&mut self) -> io::Result<()> {
        if self.cur.data.is_empty() {
            self.cur.start();
            self.seg_blocks = 0;
            return Ok(());
        }
        self.dispatch(true)
    }

    /// Appends a whole segment compressed elsewhere: `zlen` bytes of `src`, raw deflate ending
    /// byte-aligned without a final block, standing for `len` bytes with CRC32 `crc`. Ends the
    /// current segment first; what is written next starts a new one.
    pub fn copy_segment(
        &mut self,
        src: &mut impl Read,
        zlen: u64,
        crc: u32,
        len: u64,
    ) -> io::Result<()> {
        self.cut()?;
        let mut left = zlen;
        let mut first = true;
        while left > 0 || first {
            self.check()?;
            let mut b = self.spare.pop().unwrap_or_default();
            b.start();
            (b.starts, b.copied) = (first, true);
            self.started += u64::from(first);
            (b.len, b.crc) = match first {
                true => (len, Hasher::new_with_initial_len(crc, len)),
                false => (0, Hasher::new()),
            };
            let n = left.min(BLOCK_SIZE as u64);
            b.out.clear();
            let read = src.by_ref().take(n).read_to_end(&mut b.out);
            let res = read.and_then(|got| match got as u64 == n {
                true => self.engine.run(b, &mut self.sink, &mut self.spare),
                false => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment ends early",
                )),
            });
            self.record(res)?;
            left -= n;
            first = false;
        }
        Ok(())
    }

    /// Hands the current block to the engine and starts the next one, a new segment with
    /// `fresh`, else a continuation of this one.
    fn dispatch(&mut self, fresh: bool) -> io::Result<()> {
        self.check()?;
        let mut next = self.spare.pop().unwrap_or_default();
        match fresh {
            true => next.start(),
            false => next.follow(&self.cur),
        }
        let mut block = mem::replace(&mut self.cur, next);
        block.len = block.data.len() as u64;
        self.started += u64::from(block.starts);
        self.seg_blocks = if fresh { 0 } else { self.seg_blocks + 1 };
        let res = self.engine.run(block, &mut self.sink, &mut self.spare);
        self.record(res)
    }

    /// Fails fast after an earlier error: the stream is already broken.
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, msg)) => Err(io::Error::new(
                *kind,
                format!("pgzip: earlier error: {msg}"),
            )),
            None => Ok(()),
        }
    }

    fn record<T>(&mut self, res: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &res {
            self.failed = Some((e.kind(), e.to_string()));
        }
        res
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        self.check()?;
        let total = data.len();
        while !data.is_empty() {
            // A full block is sent only once more data arrives, so the last
            // block (sent by `finish`) is never empty unless the input is.
            if self.cur.data.len() == BLOCK_SIZE {
                let piece_full = self
                    .piece_blocks
                    .is_some_and(|blocks| self.seg_blocks + 1 >= blocks);
                self.dispatch(piece_full)?;
            }
            let n = data.len().min(BLOCK_SIZE - self.cur.data.len());
            self.cur.data.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(total)
    }

    /// Writes every block already handed to the workers and flushes the
    /// inner writer. It does not cut the current block short, so flushing
    /// never changes the output bytes.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        let res = match &mut self.engine {
            Engine::Pool(pool) => drain(pool, &mut self.sink, &mut self.spare, true),
            _ => Ok(()),
        };
        self.record(res)?;
        let res = self.sink.inner.flush();
        self.record(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};
    use flate2::write::GzEncoder;
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::process::Command;

    /// SplitMix64: small deterministic PRNG for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// CSV-like text of about `len` bytes.
    fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
        const SYMS: [&str; 5] = ["AAPL", "MSFT", "ES_F", "EURUSD", "BTCUSDT"];
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            let line = format!(
                "2024-{:02}-{:02}T{:02}:{:02}:{:02},{},{}.{:02},{}\n",
                rng.below(12) + 1,
                rng.below(28) + 1,
                rng.below(24),
                rng.below(60),
                rng.below(60),
                SYMS[rng.below(5) as usize],
                rng.below(5000),
                rng.below(100),
                rng.below(10_000)
            );
            out.extend_from_slice(line.as_bytes());
        }
        out.truncate(len);
        out
    }

    fn random(rng: &mut Rng, len: usize) -> Vec<u8> {
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// Alternating runs of text and random bytes, `len` bytes in all.
    fn mixed(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = Rng(seed);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let run = rng.below(100_000) as usize + 1;
            let chunk = if rng.below(4) == 0 {
                random(&mut rng, run)
            } else {
                text(&mut rng, run)
            };
            out.extend_from_slice(&chunk);
        }
        out.truncate(len);
        out
    }

    fn compress(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), level, threads);
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn sha(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Asserts that both flate2 decoders give back `data`.
    fn assert_round_trip(gz: &[u8], data: &[u8]) {
        let mut out = Vec::new();
        GzDecoder::new(gz).read_to_end(&mut out).unwrap();
        assert!(out == data, "GzDecoder mismatch ({} bytes)", data.len());
        out.clear();
        MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
        assert!(
            out == data,
            "MultiGzDecoder mismatch ({} bytes)",
            data.len()
        );
    }

    #[test]
    fn round_trip_edge_sizes() {
        let data = mixed(1, 5 * BLOCK_SIZE + 77);
        let sizes = [0, 1, DICT_SIZE, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1];
        for n in sizes.into_iter().chain([2 * BLOCK_SIZE, data.len()]) {
            for threads in [1, 3] {
                assert_round_trip(&compress(&data[..n], 6, threads), &data[..n]);
            }
        }
    }

    #[test]
    fn empty_input_is_minimal_member() {
        let gz = compress(&[], 6, 2);
        assert_eq!(gz.len(), 10 + 2 + 8);
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
    }

    #[test]
    fn round_trip_many_mixed_blocks() {
        let data = mixed(2, 40 * BLOCK_SIZE + 12_345);
        assert_round_trip(&compress(&data, 6, 2), &data);
    }

    #[test]
    fn all_levels_round_trip_and_agree() {
        let data = mixed(3, 700_000);
        for level in 0..=9 {
            let gz = compress(&data, level, 2);
            assert_round_trip(&gz, &data);
            assert_eq!(gz[8], [0, 4, 0, 0, 0, 0, 0, 0, 0, 2][level as usize]);
            assert!(gz == compress(&data, level, 1), "level {level}");
        }
    }

    #[test]
    fn same_bytes_for_any_thread_count() {
        let data = mixed(4, 2_000_000);
        let want = sha(&compress(&data, 6, 1));
        for threads in [2, 3, 4, 1, 4] {
            assert_eq!(sha(&compress(&data, 6, threads)), want, "threads {threads}");
        }
    }

    #[test]
    fn same_bytes_for_any_write_split() {
        let data = mixed(5, 1_500_000);
        let want = compress(&data, 6, 3);
        for threads in [1, 3] {
            let mut rng = Rng(99);
            let mut w = ParGzWriter::new(Vec::new(), 6, threads);
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = (rng.below(3 * BLOCK_SIZE as u64 / 2) as usize).min(rest.len());
                w.write_all(&rest[..n]).unwrap();
                if rng.below(5) == 0 {
                    w.flush().unwrap();
                }
                rest = &rest[n..];
            }
            assert!(w.finish().unwrap() == want, "threads {threads}");
        }
    }

    #[test]
    fn gzip_tool_accepts_output() {
        if Command::new("gzip").arg("--version").output().is_err() {
            println!("note: gzip not found, skipping gzip -t check");
            return;
        }
        let data = mixed(6, 2_000_000);
        let dir = tempfile::tempdir().unwrap();
        for (level, threads) in [(0, 2), (1, 1), (6, 2), (9, 3)] {
            let path = dir.path().join(format!("t{level}.gz"));
            std::fs::write(&path, compress(&data, level, threads)).unwrap();
            let test = Command::new("gzip").arg("-t").arg(&path).status().unwrap();
            assert!(test.success(), "gzip -t failed at level {level}");
            let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
            assert!(
                out.status.success() && out.stdout == data,
                "gzip -d level {level}"
            );
        }
    }

    /// Accepts `budget` bytes, then fails every write.
    struct FailAfter {
        budget: usize,
    }

    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Writes `data` then finishes; returns the first error.
    fn write_and_finish<W: Write>(mut w: ParGzWriter<W>, data: &[u8]) -> io::Result<W> {
        for chunk in data.chunks(10_000) {
            w.write_all(chunk)?;
        }
        w.finish()
    }

    #[test]
    fn inner_write_error_surfaces() {
        let data = mixed(7, 4_000_000);
        for threads in [1, 2, 4] {
            for budget in [0, 5, 10, 100_000, 1_000_000] {
                let w = ParGzWriter::new(FailAfter { budget }, 6, threads);
                let err = write_and_finish(w, &data).err().expect("must fail");
                assert_eq!(err.kind(), io::ErrorKind::StorageFull);
            }
        }
    }

    #[test]
    fn error_is_sticky() {
        let mut w = ParGzWriter::new(FailAfter { budget: 0 }, 6, 2);
        let block = mixed(8, BLOCK_SIZE + 1);
        let first = (0..20).find_map(|_| w.write_all(&block).err());
        assert!(first.is_some());
        assert!(w.write_all(b"x").is_err());
        assert!(w.finish().is_err());
    }

    fn fail_on_third(b: &mut Block, level: Compression) -> io::Result<()> {
        if b.seq == 3 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "boom"));
        }
        compress_block(b, level)
    }

    fn panic_on_third(b: &mut Block, level: Compression) -> io::Result<()> {
        assert!(b.seq != 3, "injected worker panic");
        compress_block(b, level)
    }

    #[test]
    fn worker_error_and_panic_surface() {
        let data = mixed(9, 20 * BLOCK_SIZE);
        for threads in [2, 4] {
            let w = ParGzWriter::with_compressor(Vec::new(), 6, threads, fail_on_third);
            let err = write_and_finish(w, &data).expect_err("must fail");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let w = ParGzWriter::with_compressor(Vec::new(), 6, threads, panic_on_third);
            let err = write_and_finish(w, &data).expect_err("must fail");
            assert!(err.to_string().contains("panicked"), "{err}");
        }
    }

    #[test]
    fn every_worker_panicking_does_not_hang() {
        fn always(_: &mut Block, _: Compression) -> io::Result<()> {
            panic!("injected worker panic");
        }
        let data = mixed(10, 30 * BLOCK_SIZE);
        let w = ParGzWriter::with_compressor(Vec::new(), 6, 3, always);
        assert!(write_and_finish(w, &data).is_err());
    }

    #[test]
    fn drop_without_finish_does_not_hang() {
        let data = mixed(11, 10 * BLOCK_SIZE + 5);
        let mut w = ParGzWriter::new(Vec::new(), 6, 4);
        w.write_all(&data).unwrap();
        drop(w);
    }

    /// `parts` compressed with a cut before each; returns the stream and its segments.
    fn segmented(parts: &[&[u8]], threads: usize) -> (Vec<u8>, Vec<Segment>) {
        let mut w = ParGzWriter::new(Vec::new(), 6, threads);
        for part in parts {
            w.cut().unwrap();
            w.write_all(part).unwrap();
        }
        w.finish_segments().unwrap()
    }

    #[test]
    fn segments_are_independent_and_copy_into_identical_bytes() {
        let (a, b, c) = (
            mixed(20, 3 * BLOCK_SIZE + 5),
            mixed(21, 999),
            mixed(22, 70_000),
        );
        let parts: [&[u8]; 3] = [&a, &b, &c];
        let (gz, segs) = segmented(&parts, 1);
        let whole: Vec<u8> = parts.concat();
        assert_round_trip(&gz, &whole);
        assert_eq!(segs.len(), 3);
        for threads in [2, 4] {
            assert!(segmented(&parts, threads) == (gz.clone(), segs.clone()));
        }
        for (seg, part) in segs.iter().zip(parts) {
            let z = &gz[seg.zoff as usize..(seg.zoff + seg.zlen) as usize];
            let mut out = Vec::new();
            inflate_segment(z).read_to_end(&mut out).unwrap();
            assert!(out == part);
            assert_eq!(seg.crc, crc32fast::hash(part));
            assert_eq!(seg.zcrc, crc32fast::hash(z));
        }
        for threads in [1, 3] {
            let mut w = ParGzWriter::new(Vec::new(), 6, threads);
            w.write_all(&a).unwrap();
            let s = segs[1];
            let mut src = &gz[s.zoff as usize..];
            w.copy_segment(&mut src, s.zlen, s.crc, s.ulen).unwrap();
            w.cut().unwrap();
            w.write_all(&c).unwrap();
            let (copy, mut copy_segs) = w.finish_segments().unwrap();
            assert!(copy_segs[1].copied && !copy_segs[0].copied);
            copy_segs[1].copied = false;
            assert!(copy == gz && copy_segs == segs);
        }
    }

    #[test]
    fn pieces_cut_long_segments_at_offsets_counted_from_their_start() {
        const PIECE: usize = 2 * BLOCK_SIZE;
        let (a, b) = (mixed(30, 5 * BLOCK_SIZE + 7), mixed(31, 1000));
        let write = |threads: usize| {
            let mut w = ParGzWriter::new(Vec::new(), 6, threads).pieces(PIECE);
            w.write_all(&b).unwrap();
            w.cut().unwrap();
            assert_eq!(w.segments_started(), 1);
            w.write_all(&a).unwrap();
            w.cut().unwrap();
            assert_eq!(w.segments_started(), 4);
            w.finish_segments().unwrap()
        };
        let (gz, segs) = write(1);
        assert_round_trip(&gz, &[&b[..], &a[..]].concat());
        let lens: Vec<u64> = segs.iter().map(|s| s.ulen).collect();
        let piece = PIECE as u64;
        assert_eq!(lens, [1000, piece, piece, a.len() as u64 - 2 * piece]);
        for threads in [2, 4] {
            assert!(
                write(threads) == (gz.clone(), segs.clone()),
                "threads {threads}"
            );
        }
        // Each piece inflates on its own; the pieces of `a` are `a`, and they are the bytes a
        // stream that starts with `a` has (offsets count from the segment's start).
        let mut pieces = Vec::new();
        for s in &segs[1..] {
            let z = &gz[s.zoff as usize..(s.zoff + s.zlen) as usize];
            inflate_segment(z).read_to_end(&mut pieces).unwrap();
        }
        assert!(pieces == a);
        let mut w = ParGzWriter::new(Vec::new(), 6, 2).pieces(PIECE);
        w.write_all(&a).unwrap();
        let (alone, alone_segs) = w.finish_segments().unwrap();
        let bytes =
            |gz: &[u8], s: &Segment| gz[s.zoff as usize..(s.zoff + s.zlen) as usize].to_vec();
        for (x, y) in segs[1..].iter().zip(&alone_segs) {
            assert!(bytes(&gz, x) == bytes(&alone, y));
        }
    }

    #[test]
    fn size_close_to_single_stream_gzencoder() {
        let data = text(&mut Rng(12), 8 << 20);
        let ours = compress(&data, 6, 2).len();
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
        enc.write_all(&data).unwrap();
        let base = enc.finish().unwrap().len();
        let overhead = (ours as f64 / base as f64 - 1.0) * 100.0;
        println!("level 6: ParGzWriter {ours} B, GzEncoder {base} B ({overhead:+.3}%)");
        assert!(overhead.abs() < 1.0, "{overhead:+.3}%");
    }
}
