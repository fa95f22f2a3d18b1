//! Moving archives: uploads (one request, or a multipart upload with a bounded number of parts
//! in memory), encrypted on the way when the remote has recipients, read back after landing;
//! and streaming downloads, decrypted on the way when the copy is encrypted.

use super::crypto::{Identities, Recipients, Sealing};
use super::diagnosis::one_line;
use super::sidecar::{IndexObject, Sealed, Sidecar, object_name};
use super::{ABORT_WAIT, MAX_PARTS, PART_SIZE, PARTS_IN_FLIGHT, Remote, SEND_LIMIT};
use crate::checksum::{Checksum, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::manifest::Entry;
use bytes::{Buf, Bytes};
use futures_util::future::{Either, select};
use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt};
use object_store::path::Path as Key;
use object_store::{MultipartUpload, ObjectStoreExt, UploadPart};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::pin;
use tokio::runtime::Runtime;
use tokio::time::{Timeout, error::Elapsed, timeout};

/// Read buffer in front of a download's consumer.
const COPY_BUF: usize = 256 << 10;

impl Remote {
    /// Uploads the archive at `file` (encrypted to `seal` when given) as its object, then reads
    /// back what landed: its size and SHA-256 must be what was sent. The archive is hashed as
    /// it is read, so one that no longer matches `entry` is never completed. Returns the
    /// sidecar to catalogue it with; the sidecar object is not written.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the local file or what landed differs from `entry`;
    /// [`Error::Remote`] or [`Error::Io`] when moving the bytes fails. A
    /// failed multipart upload is aborted, so no object appears.
    pub fn upload(&self, file: &Path, entry: &Entry, seal: Option<&Recipients>) -> Result<Sidecar> {
        let object = object_name(&entry.backup_file, seal.is_some());
        let sent = self.send(file, &object, (entry.size, &entry.sha256), seal)?;
        let sealed = seal.map(|_| Sealed {
            format: "age".into(),
            size: sent.len,
            sha256: sent.sha256,
        });
        // Next to an encrypted copy, the entry says nothing of the results themselves: their
        // headline metrics and note stay in the local manifest (`metrics --refresh` reads the
        // metrics back from a pulled archive). The index is recorded once it is pushed too.
        let entry = match sealed {
            Some(_) => Entry {
                metrics: None,
                metrics_sha256: None,
                note: None,
                index_sha256: None,
                ..entry.clone()
            },
            None => Entry {
                index_sha256: None,
                ..entry.clone()
            },
        };
        Ok(Sidecar {
            entry,
            sealed,
            index: None,
        })
    }

    /// Uploads the index file at `file`, whose SHA-256 must be `sha256`, beside the archive of
    /// `sidecar` (encrypted to `seal` when given, as the archive is), reads it back, and
    /// records it in `sidecar`.
    ///
    /// # Errors
    /// As [`Remote::upload`].
    pub fn upload_index(
        &self,
        file: &Path,
        sha256: &str,
        sidecar: &mut Sidecar,
        seal: Option<&Recipients>,
    ) -> Result<()> {
        let size = std::fs::metadata(file).at("read", file)?.len();
        let name = crate::index::file_name(&sidecar.entry.backup_file);
        let object = object_name(&name, seal.is_some());
        let sent = self.send(file, &object, (size, sha256), seal)?;
        sidecar.entry.index_sha256 = Some(sha256.to_string());
        sidecar.index = Some(IndexObject {
            size: sent.len,
            sha256: sent.sha256,
        });
        Ok(())
    }

    /// Sends the file at `file`, which must have the size and SHA-256 `expected`, as `object`
    /// (encrypted to `seal` when given), then reads back what landed. Returns the checksum of
    /// the object.
    fn send(
        &self,
        file: &Path,
        object: &str,
        expected: (u64, &str),
        seal: Option<&Recipients>,
    ) -> Result<Checksum> {
        let source = File::open(file).at("open", file)?;
        let size = source.metadata().at("read", file)?.len();
        if size != expected.0 {
            return Err(Error::corrupt(
                file,
                format!("size is {size} bytes, manifest says {}", expected.0),
            ));
        }
        let key = self.key(object);
        let plain = HashingReader::new(source);
        let reader = match seal {
            None => Outgoing::Plain(plain),
            Some(r) => Outgoing::Sealed(Box::new(HashingReader::new(
                r.seal(plain).at("encrypt", file)?,
            ))),
        };
        let part = part_size(size);
        let sent = if size <= part {
            self.put_whole(&key, object, reader, file, expected)?
        } else {
            let parts = self.put_parts(&key, object, reader, part, file, expected);
            self.rt.block_on(parts)?
        };
        self.check_landed(object, &sent)?;
        Ok(sent)
    }

    /// One request: reads the (small) archive, checks its hash, then sends it. Returns the
    /// checksum of the object sent.
    fn put_whole(
        &self,
        key: &Key,
        object: &str,
        mut reader: Outgoing,
        file: &Path,
        expected: (u64, &str),
    ) -> Result<Checksum> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).at("read", file)?;
        let sent = reader.finish(expected, file)?;
        let what = format!("uploading {object}");
        let put = self.store.put(key, bytes.into());
        let done = self.rt.block_on(async { timeout(SEND_LIMIT, put).await });
        self.settle(&what, done)?;
        Ok(sent)
    }

    /// The outcome of a bounded request: a clear error when it failed or took too long.
    fn settle<T>(
        &self,
        what: &str,
        outcome: std::result::Result<object_store::Result<T>, Elapsed>,
    ) -> Result<T> {
        match outcome {
            Ok(done) => done.map_err(|e| self.fail(what, e)),
            Err(Elapsed { .. }) => Err(Error::Remote {
                remote: self.name.clone(),
                message: format!(
                    "{what}: {} did not take the data within {} s",
                    self.endpoint,
                    SEND_LIMIT.as_secs()
                ),
            }),
        }
    }

    /// A multipart upload: parts of `part` bytes, a few at a time. Aborted on any error and
    /// when the bytes read do not hash to the entry's SHA-256, so nothing becomes visible.
    async fn put_parts(
        &self,
        key: &Key,
        object: &str,
        reader: Outgoing,
        part: u64,
        file: &Path,
        expected: (u64, &str),
    ) -> Result<Checksum> {
        let what = format!("uploading {object}");
        let mut upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| self.fail(&what, e))?;
        // An interruption stops the upload here and waits for it to be aborted.
        let _held = crate::interrupt::hold();
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let _woken = crate::interrupt::on_interrupt({
            let stop = stop.clone();
            move || stop.notify_one()
        });
        let send = self.send_parts(&mut upload, reader, part, &what, file);
        let sent = match select(pin!(send), pin!(stop.notified())).await {
            Either::Left((sent, _)) => sent,
            Either::Right(_) => Err(Error::Remote {
                remote: self.name.clone(),
                message: format!("{what}: interrupted"),
            }),
        };
        let mut outcome = sent.and_then(|reader| reader.finish(expected, file));
        if outcome.is_ok()
            && let Err(e) = upload.complete().await
        {
            outcome = Err(self.fail(&what, e));
        }
        if outcome.is_err() && !abort(upload).await {
            self.note(format!(
                "could not abort the unfinished upload of {object}; its parts stay on the \
                 server until a lifecycle rule or cleanup removes them (no object was created)"
            ));
        }
        outcome
    }

    /// Reads parts and sends them, keeping at most [`PARTS_IN_FLIGHT`] parts in memory: the
    /// next part is read (hashed, encrypted) on a blocking thread while the one before it
    /// uploads, so the work on the bytes and the network overlap. Gives the reader back at its
    /// end.
    async fn send_parts(
        &self,
        upload: &mut Box<dyn MultipartUpload>,
        reader: Outgoing,
        part: u64,
        what: &str,
        file: &Path,
    ) -> Result<Outgoing> {
        let mut in_flight: FuturesUnordered<Timeout<UploadPart>> = FuturesUnordered::new();
        let mut next = tokio::task::spawn_blocking(move || read_part(reader, part));
        let reader = loop {
            let (reader, buf) = next.await.map_err(|e| Error::Remote {
                remote: self.name.clone(),
                message: format!("{what}: reading failed: {e}"),
            })?;
            let buf = buf.at("read", file)?;
            if buf.is_empty() {
                break reader;
            }
            in_flight.push(timeout(SEND_LIMIT, upload.put_part(buf.into())));
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(done) = in_flight.next().await
            {
                self.settle(what, done)?;
            }
            next = tokio::task::spawn_blocking(move || read_part(reader, part));
        };
        while let Some(done) = in_flight.next().await {
            self.settle(what, done)?;
        }
        Ok(reader)
    }

    /// Reads `object` back, streaming: it must be what was sent. A mismatching object is left
    /// alone: without a sidecar it is not part of the catalogue, and it may be another
    /// machine's push of the same name.
    fn check_landed(&self, object: &str, sent: &Checksum) -> Result<()> {
        let sum = self
            .read_archive(object, |r| HashingReader::new(r).finish())?
            .map_err(|e| Error::Remote {
                remote: self.name.clone(),
                message: format!("reading back {object}: {e}"),
            })?;
        if sum == *sent {
            return Ok(());
        }
        Err(Error::corrupt(
            self.url(object),
            format!(
                "what landed ({} bytes, SHA-256 {}) differs from what was sent ({} bytes, {}): \
                 damaged on the way, or replaced by another push of that name; not catalogued",
                sum.len, sum.sha256, sent.len, sent.sha256
            ),
        ))
    }

    /// Streams the backup `sidecar` describes into `out`, decrypting it with `keys` when it is
    /// encrypted. Returns the checksums of what was written (the archive) and of the object.
    ///
    /// # Errors
    /// [`Error::Remote`] when the download fails; [`Error::Key`] when no key opens it;
    /// [`Error::Corrupt`] when it does not decrypt; [`Error::Io`] naming `out_path` when
    /// writing fails.
    pub fn download(
        &self,
        sidecar: &Sidecar,
        keys: Option<&Identities>,
        out: impl Write,
        out_path: &Path,
    ) -> Result<(Checksum, Checksum)> {
        let sealed = sidecar.sealed.is_some();
        self.download_object(&sidecar.object(), sealed, keys, out, out_path)
    }

    /// As [`Remote::download`], for the index pushed with the backup; `None` when none was.
    ///
    /// # Errors
    /// As [`Remote::download`].
    pub fn download_index(
        &self,
        sidecar: &Sidecar,
        keys: Option<&Identities>,
        out: impl Write,
        out_path: &Path,
    ) -> Result<Option<(Checksum, Checksum)>> {
        let Some(object) = sidecar.index_object() else {
            return Ok(None);
        };
        let sealed = sidecar.sealed.is_some();
        self.download_object(&object, sealed, keys, out, out_path)
            .map(Some)
    }

    /// Streams `object` into `out`, decrypted with `keys` when `sealed`.
    fn download_object(
        &self,
        object: &str,
        sealed: bool,
        keys: Option<&Identities>,
        out: impl Write,
        out_path: &Path,
    ) -> Result<(Checksum, Checksum)> {
        let url = self.url(object);
        if sealed && keys.is_none() {
            return Err(Error::Key {
                message: format!("{url} is encrypted and no identity was given"),
            });
        }
        let mut out = crate::checksum::HashingWriter::new(out);
        let (copied, object) = self.read_object(object, sealed, keys, |plain| {
            let mut buf = vec![0; COPY_BUF];
            loop {
                let n = match plain.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::corrupt(url.as_str(), format!("cannot be read: {e}")));
                    }
                };
                out.write_all(&buf[..n]).at("write", out_path)?;
            }
        })?;
        copied?;
        let object =
            object.map_err(|e| Error::corrupt(url.as_str(), format!("cannot be read: {e}")))?;
        let (mut out, sum) = out.finish();
        out.flush().at("write", out_path)?;
        Ok((sum, object))
    }

    /// Streams the backup `sidecar` describes through `use_it`, decrypted with `keys` when it
    /// is encrypted and keys are given (as stored otherwise), and hashes the whole object on the
    /// way (also what `use_it` left unread). Nothing is written locally.
    ///
    /// # Errors
    /// [`Error::Remote`] when the transfer fails; [`Error::Key`] when none of `keys` opens
    /// it; [`Error::Corrupt`] when it is not an age file.
    pub fn read_backup<T>(
        &self,
        sidecar: &Sidecar,
        keys: Option<&Identities>,
        use_it: impl FnOnce(&mut (dyn Read + Send)) -> T,
    ) -> Result<(T, io::Result<Checksum>)> {
        let sealed = sidecar.sealed.is_some();
        self.read_object(&sidecar.object(), sealed, keys, use_it)
    }

    /// As [`Remote::read_backup`], for any object of the remote: `object` is decrypted on the
    /// way when `sealed` and keys are given.
    ///
    /// # Errors
    /// As [`Remote::read_backup`].
    pub fn read_object<T>(
        &self,
        object: &str,
        sealed: bool,
        keys: Option<&Identities>,
        use_it: impl FnOnce(&mut (dyn Read + Send)) -> T,
    ) -> Result<(T, io::Result<Checksum>)> {
        let url = self.url(object);
        let (value, sum) = self.read_archive(object, |raw| {
            let mut hashing = HashingReader::new(raw);
            let value = match keys.filter(|_| sealed) {
                None => Ok(use_it(&mut hashing)),
                Some(keys) => keys
                    .open(&mut hashing, &url)
                    .map(|mut plain| use_it(&mut plain)),
            };
            (value, hashing.finish())
        })?;
        Ok((value?, sum))
    }

    /// Streams archive object `name` through `use_it`. Nothing is written locally.
    ///
    /// # Errors
    /// [`Error::Remote`] when the object cannot be fetched or the transfer fails midway (even
    /// if `use_it` then reported something else).
    pub fn read_archive<T>(
        &self,
        name: &str,
        use_it: impl FnOnce(&mut (dyn Read + Send)) -> T,
    ) -> Result<T> {
        let what = format!("reading {name}");
        let got = self
            .rt
            .block_on(self.store.get(&self.key(name)))
            .map_err(|e| self.fail(&what, e))?;
        let mut reader = ObjectReader {
            rt: &self.rt,
            stream: got.into_stream(),
            chunk: Bytes::new(),
            failed: None,
        };
        let value = use_it(&mut reader);
        match reader.failed.take() {
            Some(e) => Err(self.fail(&what, e)),
            None => Ok(value),
        }
    }
}

/// What is sent: the archive, or its encryption, hashed on the way.
enum Outgoing {
    /// The archive as it is.
    Plain(HashingReader<File>),
    /// The archive's age encryption; the inner reader hashes the archive.
    Sealed(Box<HashingReader<Sealing<HashingReader<File>>>>),
}

impl Read for Outgoing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Outgoing::Plain(r) => r.read(buf),
            Outgoing::Sealed(r) => r.read(buf),
        }
    }
}

impl Outgoing {
    /// Reads what is left and checks that the file read has the size and SHA-256 `expected`;
    /// returns the checksum of what was sent.
    fn finish(self, expected: (u64, &str), file: &Path) -> Result<Checksum> {
        let (archive, sent) = match self {
            Outgoing::Plain(r) => {
                let sum = r.finish().at("read", file)?;
                (sum.clone(), sum)
            }
            Outgoing::Sealed(r) => {
                let (sealing, sent) = (*r).finish_into_inner().at("read", file)?;
                (sealing.into_plain().finish().at("read", file)?, sent)
            }
        };
        check_sent(&archive, expected, file)?;
        Ok(sent)
    }
}

/// Reads the next part of at most `part` bytes (empty at the end), giving the reader back.
fn read_part(mut reader: Outgoing, part: u64) -> (Outgoing, io::Result<Vec<u8>>) {
    let mut buf = Vec::with_capacity(usize::try_from(part).unwrap_or(usize::MAX));
    let read = (&mut reader).take(part).read_to_end(&mut buf);
    (reader, read.map(|_| buf))
}

/// Checks that the bytes read for sending have the size and SHA-256 `expected`.
fn check_sent(sum: &Checksum, expected: (u64, &str), file: &Path) -> Result<()> {
    let (size, sha256) = expected;
    if sum.len == size && sum.sha256 == sha256 {
        return Ok(());
    }
    Err(Error::corrupt(
        file,
        format!(
            "it reads as {} bytes with SHA-256 {}, manifest says {size} bytes, {sha256}; not pushed",
            sum.len, sum.sha256
        ),
    ))
}

/// Part size for an archive of `size` bytes: [`PART_SIZE`], or more so that at most
/// [`MAX_PARTS`] parts are needed.
fn part_size(size: u64) -> u64 {
    PART_SIZE.max(size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20))
}

/// Aborts a failed multipart upload so its parts do not linger, waiting a bounded time;
/// whether that worked.
async fn abort(mut upload: Box<dyn MultipartUpload>) -> bool {
    let outcome = tokio::time::timeout(ABORT_WAIT, upload.abort()).await;
    matches!(outcome, Ok(Ok(())))
}

/// A blocking reader over an object's byte stream, driven by the remote's runtime. A transfer
/// error is kept for the caller (so it is reported as a network problem, not as corrupt data)
/// and surfaces to the consumer as an I/O error.
struct ObjectReader<'a> {
    rt: &'a Runtime,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    failed: Option<object_store::Error>,
}

impl Read for ObjectReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if self.failed.is_some() {
                return Err(io::Error::other("the download failed"));
            }
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(e)) => {
                    let shown = io::Error::other(one_line(&e.to_string()));
                    self.failed = Some(e);
                    return Err(shown);
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_stay_within_the_part_limit() {
        assert_eq!(part_size(1), PART_SIZE);
        assert_eq!(part_size(300 << 20), PART_SIZE);
        let huge = 200u64 << 30;
        assert!(huge.div_ceil(part_size(huge)) <= MAX_PARTS);
    }
}
