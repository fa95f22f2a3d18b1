//! Reading a file back while another thread is still writing it.
//!
//! The writer reports every byte it has handed to the file through a [`GrowthWriter`]; a
//! [`FollowReader`] on a second handle of the same file reads up to that point and waits for
//! more, until the writer says it is done. A backup uses this to check its archive from disk
//! while it is being compressed, instead of reading it all again afterwards, and
//! [`sync_behind`] to send it to disk as it grows.

use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    written: u64,
    done: bool,
    failed: bool,
}

/// How far a file has been written, shared by a writer and its followers.
#[derive(Debug, Clone, Default)]
pub struct Growth(Arc<(Mutex<State>, Condvar)>);

impl Growth {
    fn update(&self, change: impl FnOnce(&mut State)) {
        let (state, grown) = &*self.0;
        change(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
        grown.notify_all();
    }

    /// The file is complete: followers read to its end.
    pub fn finish(&self) {
        self.update(|s| s.done = true);
    }

    /// The writer gave up: followers get an error instead of waiting.
    pub fn fail(&self) {
        self.update(|s| s.failed = true);
    }

    /// Blocks until at least `pos` bytes are written (`Some` of how many), or the writer
    /// finished or failed (`None`).
    fn wait_for(&self, pos: u64) -> Option<u64> {
        let (state, grown) = &*self.0;
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.failed || state.done {
                return None;
            }
            if state.written >= pos {
                return Some(state.written);
            }
            state = grown.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until more than `pos` bytes are written or the writer finished or failed; returns
    /// how many bytes may be read from `pos` (0 at the end).
    fn wait_past(&self, pos: u64) -> io::Result<u64> {
        let (state, grown) = &*self.0;
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.failed {
                return Err(io::Error::other("the writer stopped before the end"));
            }
            if state.written > pos || state.done {
                return Ok(state.written.saturating_sub(pos));
            }
            state = grown.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Syncs `file` (a second handle on the file being written) each time at least `every` more
/// bytes have been written, until the writer is done or gone: the data goes to disk while the
/// rest is written, so the writer's own last sync has little left to wait for.
///
/// # Errors
/// The first sync that fails.
pub fn sync_behind(file: &std::fs::File, growth: &Growth, every: u64) -> io::Result<()> {
    let mut synced = 0;
    while let Some(written) = growth.wait_for(synced + every.max(1)) {
        file.sync_data()?;
        synced = written;
    }
    Ok(())
}

/// Marks the growth failed when dropped before [`Growth::finish`], so followers never wait for a
/// writer that is gone.
pub struct FailOnDrop(pub Growth);

impl Drop for FailOnDrop {
    fn drop(&mut self) {
        let (state, _) = &*(self.0).0;
        let done = state.lock().map(|s| s.done).unwrap_or(false);
        if !done {
            self.0.fail();
        }
    }
}

/// Passes writes to `inner` and reports each byte written to a [`Growth`].
pub struct GrowthWriter<W> {
    inner: W,
    growth: Growth,
}

impl<W: Write> GrowthWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, growth: Growth) -> Self {
        GrowthWriter { inner, growth }
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for GrowthWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.growth.update(|s| s.written += n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a file only as far as its writer has written it, waiting for more until it is done.
pub struct FollowReader<R> {
    inner: R,
    growth: Growth,
    pos: u64,
}

impl<R: Read> FollowReader<R> {
    /// Follows `inner` (a fresh handle on the file, at its start) as `growth` reports.
    pub fn new(inner: R, growth: Growth) -> Self {
        FollowReader {
            inner,
            growth,
            pos: 0,
        }
    }
}

impl<R: Read> Read for FollowReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ready = self.growth.wait_past(self.pos)?;
        let max = buf.len().min(usize::try_from(ready).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_reads_everything_written_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let growth = Growth::default();
        let mut writer = GrowthWriter::new(std::fs::File::create(&path).unwrap(), growth.clone());
        let reader = FollowReader::new(std::fs::File::open(&path).unwrap(), growth.clone());
        let follower = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut reader = reader;
            reader.read_to_end(&mut all).map(|_| all)
        });
        for i in 0..200u32 {
            writer.write_all(&i.to_le_bytes().repeat(100)).unwrap();
        }
        growth.finish();
        let expected: Vec<u8> = (0..200u32)
            .flat_map(|i| i.to_le_bytes().repeat(100))
            .collect();
        assert_eq!(follower.join().unwrap().unwrap(), expected);
    }

    #[test]
    fn a_follower_gets_an_error_when_the_writer_goes_away() {
        let growth = Growth::default();
        let reader = FollowReader::new(io::empty(), growth.clone());
        let follower = std::thread::spawn(move || {
            let mut reader = reader;
            reader.read_to_end(&mut Vec::new())
        });
        drop(FailOnDrop(growth));
        assert!(follower.join().unwrap().is_err());
    }

    #[test]
    fn syncing_behind_a_writer_ends_when_it_is_done_or_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for finish in [true, false] {
            let growth = Growth::default();
            let mut writer =
                GrowthWriter::new(std::fs::File::create(&path).unwrap(), growth.clone());
            let file = std::fs::File::open(&path).unwrap();
            let syncer = {
                let growth = growth.clone();
                std::thread::spawn(move || sync_behind(&file, &growth, 1000))
            };
            for _ in 0..50 {
                writer.write_all(&[7; 300]).unwrap();
            }
            match finish {
                true => growth.finish(),
                false => drop(FailOnDrop(growth)),
            }
            syncer.join().unwrap().unwrap();
        }
    }
}
