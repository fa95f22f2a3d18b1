//! Off-site copies on S3-compatible object storage (AWS S3, Garage, MinIO, Ceph RGW, R2, ...).
//!
//! This module owns everything S3 and nothing else: it moves archives and checks them. The local
//! backup folder stays the source of truth for local work; the commands decide what to move.
//!
//! Layout under the remote's prefix: the archive `<name>.tar.gz`, and beside it its manifest
//! entry `<name>.tar.gz.entry.yaml`, written only after the archive landed and was read back
//! with the right size and SHA-256. The remote catalogue is the listing of those entry objects:
//! there is no shared catalogue file that two machines could overwrite, and an archive without
//! its entry (an interrupted push) is invisible.
//!
//! The client is `object_store`'s `AmazonS3`, driven by a private single-threaded tokio runtime:
//! every function here is synchronous, so the rest of resbak never sees async code (and they
//! must not be called from inside another async runtime). Large
//! archives go up as multipart uploads with a bounded number of parts in memory; downloads and
//! read-backs stream. Network errors and 5xx answers are retried with backoff for a bounded
//! time; credentials, a missing bucket or an unreachable endpoint become one clear line.

use crate::checksum::{Checksum, HashingReader, HashingWriter};
use crate::config::RemoteConfig;
use crate::error::{Error, IoContext, Result};
use crate::manifest::Entry;
use bytes::{Buf, Bytes};
use futures_util::stream::{self, BoxStream, FuturesUnordered, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::HttpErrorKind;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig, UploadPart,
};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::time::{Timeout, error::Elapsed, timeout};

/// Suffix of the object that holds an archive's manifest entry, beside the archive.
pub const ENTRY_SUFFIX: &str = ".entry.yaml";
/// Environment variable holding the access key id.
pub const ENV_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable holding the secret access key.
pub const ENV_SECRET: &str = "AWS_SECRET_ACCESS_KEY";
/// Environment variable holding an optional session token.
pub const ENV_TOKEN: &str = "AWS_SESSION_TOKEN";
/// How long a failing request is retried when the configuration does not say.
pub const DEFAULT_RETRY_SECS: u64 = 60;

/// Archives up to this size go up in one request; larger ones as parts of (at least) this size.
const PART_SIZE: u64 = 8 << 20;
/// S3 allows at most this many parts; larger archives get larger parts.
const MAX_PARTS: u64 = 10_000;
/// Parts uploading at once. Memory holds these plus the part being read.
const PARTS_IN_FLIGHT: usize = 2;
/// Entry objects fetched at once when listing the catalogue.
const ENTRY_FETCHES: usize = 8;
/// Bound on sending one request's data (one part, or a small archive), retries included: a
/// server that accepts a connection but stops reading must not hang resbak.
const SEND_LIMIT: Duration = Duration::from_secs(300);
/// Entry objects are a few hundred bytes; anything much larger is not one.
const MAX_ENTRY_BYTES: u64 = 64 << 10;
/// Bound on cleaning up after a failed multipart upload (the server may be gone).
const ABORT_WAIT: Duration = Duration::from_secs(10);

/// Credentials for a remote. They never appear in `Debug` output or in messages.
#[derive(Clone)]
pub struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
}

impl Credentials {
    /// Credentials from an access key id, a secret and an optional session token.
    pub fn new(key_id: String, secret: String, token: Option<String>) -> Credentials {
        Credentials {
            key_id,
            secret,
            token,
        }
    }

    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    ///
    /// # Errors
    /// [`Error::Remote`] when the key id or the secret is not set.
    pub fn from_env(remote: &str) -> Result<Credentials> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var(ENV_KEY_ID), var(ENV_SECRET)) {
            (Some(key_id), Some(secret)) => Ok(Credentials::new(key_id, secret, var(ENV_TOKEN))),
            _ => Err(Error::Remote {
                remote: remote.to_string(),
                message: format!("no credentials: set {ENV_KEY_ID} and {ENV_SECRET}"),
            }),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

/// What a remote holds, from one listing of its prefix.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// Entries of the archives pushed completely, in listing order.
    pub entries: Vec<Entry>,
    /// Entry objects that cannot be used: object name and the problem.
    pub damaged: Vec<(String, String)>,
    /// Every archive object (catalogued or not) and its size.
    pub archives: BTreeMap<String, u64>,
}

impl Catalogue {
    /// The entry of archive `name`, if it is catalogued.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.backup_file == name)
    }
}

/// An entry object's name and its entry, or what is wrong with it.
type EntryRead = (String, std::result::Result<Entry, String>);

/// What the remote says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The ETag; S3-compatible stores give multipart uploads one ending in `-<parts>`.
    pub e_tag: Option<String>,
}

/// A connection to one remote: an S3 bucket and a key prefix inside it.
pub struct Remote {
    name: String,
    bucket: String,
    endpoint: String,
    prefix: Key,
    retry_secs: u64,
    store: AmazonS3,
    rt: Runtime,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Connects to remote `name` with credentials from the environment.
    ///
    /// # Errors
    /// [`Error::Remote`] when credentials are missing or the table cannot work (a plain HTTP
    /// endpoint without `allow_http`, an invalid prefix).
    pub fn connect(name: &str, config: &RemoteConfig) -> Result<Remote> {
        Remote::open(name, config, Credentials::from_env(name)?)
    }

    /// Connects to remote `name` with the given credentials. Nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::Remote`] when the configuration cannot work.
    pub fn open(name: &str, config: &RemoteConfig, credentials: Credentials) -> Result<Remote> {
        let bad = |message: String| Error::Remote {
            remote: name.to_string(),
            message,
        };
        let endpoint = config.endpoint.as_deref().map(|e| e.trim_end_matches('/'));
        if endpoint.is_some_and(|e| e.starts_with("http://")) && !config.allow_http {
            return Err(bad(format!(
                "endpoint {} is plain HTTP; set allow_http = true in [remote.{name}] to allow it",
                endpoint.unwrap_or_default()
            )));
        }
        let prefix_text = config.prefix.as_deref().unwrap_or("").trim_matches('/');
        let prefix = Key::parse(prefix_text)
            .map_err(|e| bad(format!("invalid prefix {prefix_text:?}: {e}")))?;
        let retry_secs = config.retry_timeout_secs.unwrap_or(DEFAULT_RETRY_SECS);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the network runtime: {e}")))?;
        let store = {
            let _inside = rt.enter();
            builder(config, endpoint, retry_secs, credentials)
                .build()
                .map_err(|e| bad(one_line(&e.to_string())))?
        };
        Ok(Remote {
            name: name.to_string(),
            bucket: config.bucket.clone(),
            endpoint: endpoint.unwrap_or("AWS S3").to_string(),
            prefix,
            retry_secs,
            store,
            rt,
        })
    }

    /// The remote's name from `resbak.toml`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn location(&self) -> String {
        match self.prefix.as_ref() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// `s3://bucket/prefix/object`, for messages.
    pub fn url(&self, object: &str) -> String {
        format!("{}/{object}", self.location())
    }

    fn key(&self, object: &str) -> Key {
        self.prefix.clone().join(object)
    }

    /// Lists the prefix once and reads every entry object in it.
    ///
    /// # Errors
    /// [`Error::Remote`] when the listing or reading an entry fails.
    pub fn catalogue(&self) -> Result<Catalogue> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listing = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix))
            .map_err(|e| self.fail("listing", e))?;
        let mut catalogue = Catalogue::default();
        let mut entry_objects = Vec::new();
        for meta in listing.objects {
            let Some(object) = meta.location.filename().map(str::to_string) else {
                continue;
            };
            if let Some(archive) = object.strip_suffix(ENTRY_SUFFIX) {
                entry_objects.push((object.clone(), archive.to_string()));
            } else if object.ends_with(".tar.gz") {
                catalogue.archives.insert(object, meta.size);
            }
        }
        for (object, read) in self.read_entries(entry_objects)? {
            match read {
                Ok(entry) => catalogue.entries.push(entry),
                Err(problem) => catalogue.damaged.push((object, problem)),
            }
        }
        Ok(catalogue)
    }

    /// Fetches entry objects a few at a time; each is parsed and checked against its name.
    fn read_entries(&self, objects: Vec<(String, String)>) -> Result<Vec<EntryRead>> {
        let fetches = objects.into_iter().map(|(object, archive)| async move {
            let bytes = self.fetch_entry(&object).await;
            (object, archive, bytes)
        });
        let fetched: Vec<_> = self.rt.block_on(
            stream::iter(fetches)
                .buffer_unordered(ENTRY_FETCHES)
                .collect(),
        );
        let mut read = Vec::new();
        for (object, archive, bytes) in fetched {
            match bytes {
                Ok(bytes) => read.push((object, bytes.and_then(|b| parse_entry(&archive, &b)))),
                Err(e) if is_missing_object(&e) => {}
                Err(e) => return Err(self.fail(&format!("reading {object}"), e)),
            }
        }
        read.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(read)
    }

    /// Reads an entry object whole; one too large to be an entry is refused unread.
    async fn fetch_entry(
        &self,
        object: &str,
    ) -> object_store::Result<std::result::Result<Bytes, String>> {
        let got = self.store.get(&self.key(object)).await?;
        if got.meta.size > MAX_ENTRY_BYTES {
            return Ok(Err(format!(
                "not a resbak entry: {} bytes is too large",
                got.meta.size
            )));
        }
        got.bytes().await.map(Ok)
    }

    /// The entry of archive `name`, or `None` if the remote has none.
    ///
    /// # Errors
    /// [`Error::Remote`] when it cannot be read; [`Error::Corrupt`] when it is damaged.
    pub fn read_entry(&self, name: &str) -> Result<Option<Entry>> {
        let object = format!("{name}{ENTRY_SUFFIX}");
        match self.rt.block_on(self.fetch_entry(&object)) {
            Ok(bytes) => bytes
                .and_then(|b| parse_entry(name, &b))
                .map(Some)
                .map_err(|detail| Error::Corrupt {
                    path: self.url(&object).into(),
                    detail,
                }),
            Err(e) if is_missing_object(&e) => Ok(None),
            Err(e) => Err(self.fail(&format!("reading {object}"), e)),
        }
    }

    /// Stores `entry` beside its archive, which makes the archive part of the catalogue. Call
    /// this only after [`Remote::upload`] succeeded.
    ///
    /// # Errors
    /// [`Error::Remote`] when the write fails.
    pub fn write_entry(&self, entry: &Entry) -> Result<()> {
        let yaml = serde_yaml::to_string(entry).map_err(|e| Error::Remote {
            remote: self.name.clone(),
            message: format!("cannot describe {}: {e}", entry.backup_file),
        })?;
        let text = format!("# resbak catalogue entry\n{yaml}");
        self.put_object(&format!("{}{ENTRY_SUFFIX}", entry.backup_file), text)
    }

    /// Stores `bytes` as `object` in one request, replacing any object of that name.
    ///
    /// # Errors
    /// [`Error::Remote`] when the write fails.
    pub fn put_object(&self, object: &str, bytes: impl Into<Vec<u8>>) -> Result<()> {
        let payload = PutPayload::from(bytes.into());
        self.rt
            .block_on(self.store.put(&self.key(object), payload))
            .map(drop)
            .map_err(|e| self.fail(&format!("writing {object}"), e))
    }

    /// Deletes `object`; a missing object is not an error.
    ///
    /// # Errors
    /// [`Error::Remote`] when the delete fails.
    pub fn delete(&self, object: &str) -> Result<()> {
        match self.rt.block_on(self.store.delete(&self.key(object))) {
            Err(e) if !is_missing_object(&e) => Err(self.fail(&format!("deleting {object}"), e)),
            _ => Ok(()),
        }
    }

    /// Size and ETag of `object`, or `None` if there is no such object.
    ///
    /// # Errors
    /// [`Error::Remote`] when the request fails.
    pub fn stat(&self, object: &str) -> Result<Option<ObjectInfo>> {
        match self.rt.block_on(self.store.head(&self.key(object))) {
            Ok(meta) => Ok(Some(ObjectInfo {
                size: meta.size,
                e_tag: meta.e_tag,
            })),
            Err(e) if is_missing_object(&e) => Ok(None),
            Err(e) => Err(self.fail(&format!("looking up {object}"), e)),
        }
    }

    /// Uploads the archive at `file` as `entry.backup_file`, then reads back what landed: its
    /// size and SHA-256 must be the entry's. The bytes sent are hashed on the way, so an archive
    /// that no longer matches its entry is never completed. The entry object is not written.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the local file or what landed differs from `entry` (what landed
    /// is deleted again); [`Error::Remote`] or [`Error::Io`] when moving the bytes fails. A
    /// failed multipart upload is aborted, so no object appears.
    pub fn upload(&self, file: &Path, entry: &Entry) -> Result<()> {
        let source = File::open(file).at("open", file)?;
        let size = source.metadata().at("read", file)?.len();
        let local = |detail: String| Error::Corrupt {
            path: file.to_path_buf(),
            detail,
        };
        if size != entry.size {
            return Err(local(format!(
                "size is {size} bytes, manifest says {}",
                entry.size
            )));
        }
        let key = self.key(&entry.backup_file);
        let reader = HashingReader::new(source);
        let part = part_size(size);
        if size <= part {
            self.put_whole(&key, reader, file, entry)?;
        } else {
            self.rt
                .block_on(self.put_parts(&key, reader, part, file, entry))?;
        }
        self.check_landed(entry)
    }

    /// One request: reads the (small) archive, checks its hash, then sends it.
    fn put_whole(
        &self,
        key: &Key,
        mut reader: HashingReader<File>,
        file: &Path,
        entry: &Entry,
    ) -> Result<()> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).at("read", file)?;
        check_sent(&reader.finish().at("read", file)?, entry, file)?;
        let what = format!("uploading {}", entry.backup_file);
        let put = self.store.put(key, bytes.into());
        let sent = self.rt.block_on(async { timeout(SEND_LIMIT, put).await });
        self.settle(&what, sent).map(drop)
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
        mut reader: HashingReader<File>,
        part: u64,
        file: &Path,
        entry: &Entry,
    ) -> Result<()> {
        let what = format!("uploading {}", entry.backup_file);
        let mut upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| self.fail(&what, e))?;
        let mut outcome = self
            .send_parts(&mut upload, &mut reader, part, &what, file)
            .await;
        if outcome.is_ok() {
            outcome = reader
                .finish()
                .at("read", file)
                .and_then(|sum| check_sent(&sum, entry, file));
        }
        if outcome.is_ok() {
            outcome = upload
                .complete()
                .await
                .map(drop)
                .map_err(|e| self.fail(&what, e));
        }
        if outcome.is_err() {
            abort(upload, &entry.backup_file).await;
        }
        outcome
    }

    /// Reads parts and sends them, keeping at most [`PARTS_IN_FLIGHT`] under way.
    async fn send_parts(
        &self,
        upload: &mut Box<dyn MultipartUpload>,
        reader: &mut HashingReader<File>,
        part: u64,
        what: &str,
        file: &Path,
    ) -> Result<()> {
        let mut in_flight: FuturesUnordered<Timeout<UploadPart>> = FuturesUnordered::new();
        loop {
            let mut buf = Vec::with_capacity(usize::try_from(part).unwrap_or(usize::MAX));
            (&mut *reader)
                .take(part)
                .read_to_end(&mut buf)
                .at("read", file)?;
            if buf.is_empty() {
                break;
            }
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(done) = in_flight.next().await
            {
                self.settle(what, done)?;
            }
            in_flight.push(timeout(SEND_LIMIT, upload.put_part(buf.into())));
        }
        while let Some(done) = in_flight.next().await {
            self.settle(what, done)?;
        }
        Ok(())
    }

    /// Reads `entry`'s archive object back, streaming: it must have the entry's size and
    /// SHA-256. A mismatching object is deleted.
    fn check_landed(&self, entry: &Entry) -> Result<()> {
        let name = &entry.backup_file;
        let sum = self
            .read_archive(name, |r| HashingReader::new(r).finish())?
            .map_err(|e| Error::Remote {
                remote: self.name.clone(),
                message: format!("reading back {name}: {e}"),
            })?;
        if sum.len == entry.size && sum.sha256 == entry.sha256 {
            return Ok(());
        }
        let fate = match self.delete(name) {
            Ok(()) => "it was deleted".to_string(),
            Err(e) => format!("deleting it failed too: {e}"),
        };
        Err(Error::Corrupt {
            path: self.url(name).into(),
            detail: format!(
                "what landed ({} bytes, SHA-256 {}) differs from what was sent ({} bytes, {}); {fate}",
                sum.len, sum.sha256, entry.size, entry.sha256
            ),
        })
    }

    /// Streams archive object `name` into `out`, hashing it on the way.
    ///
    /// # Errors
    /// [`Error::Remote`] when the download fails; [`Error::Io`] naming `out_path` when writing
    /// fails.
    pub fn download(&self, name: &str, out: impl Write, out_path: &Path) -> Result<Checksum> {
        let mut out = HashingWriter::new(out);
        self.read_archive(name, |r| io::copy(r, &mut out))?
            .at("write", out_path)?;
        let (mut out, sum) = out.finish();
        out.flush().at("write", out_path)?;
        Ok(sum)
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

    /// Turns an `object_store` error into one clear line naming this remote.
    fn fail(&self, action: &str, err: object_store::Error) -> Error {
        let diagnosis = Diagnosis::of(&err);
        let message = match (&diagnosis.status, &diagnosis.transport) {
            (Some(403) | Some(401), _) => format!(
                "access denied while {action} ({}): check {ENV_KEY_ID} and {ENV_SECRET}, and the key's rights on bucket {}",
                diagnosis.code_or_status(),
                self.bucket
            ),
            _ if diagnosis.code.as_deref() == Some("NoSuchBucket") => {
                format!("bucket {} does not exist at {}", self.bucket, self.endpoint)
            }
            (_, Some(HttpErrorKind::Connect)) => format!(
                "cannot connect to {} while {action}: {} (retried for up to {} s)",
                self.endpoint, diagnosis.root, self.retry_secs
            ),
            (_, Some(HttpErrorKind::Timeout)) => format!(
                "no answer from {} while {action}: {} (retried for up to {} s)",
                self.endpoint, diagnosis.root, self.retry_secs
            ),
            (None, Some(_)) => format!(
                "connection to {} failed while {action}: {} (retried for up to {} s)",
                self.endpoint, diagnosis.root, self.retry_secs
            ),
            _ => format!("{action} failed: {}", diagnosis.summary()),
        };
        Error::Remote {
            remote: self.name.clone(),
            message,
        }
    }
}

/// The `AmazonS3` builder for `config`: explicit credentials (never the instance metadata
/// service), bounded retries, stall detection instead of a cap on whole transfers.
fn builder(
    config: &RemoteConfig,
    endpoint: Option<&str>,
    retry_secs: u64,
    credentials: Credentials,
) -> AmazonS3Builder {
    let region = config
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    let options = ClientOptions::new()
        .with_allow_http(config.allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout_disabled()
        .with_read_timeout(Duration::from_secs(30));
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 10,
        retry_timeout: Duration::from_secs(retry_secs),
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(region)
        .with_access_key_id(credentials.key_id)
        .with_secret_access_key(credentials.secret)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(token) = credentials.token {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder
}

/// Part size for an archive of `size` bytes: [`PART_SIZE`], or more so that at most
/// [`MAX_PARTS`] parts are needed.
fn part_size(size: u64) -> u64 {
    PART_SIZE.max(size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20))
}

/// Aborts a failed multipart upload so its parts do not linger, waiting a bounded time.
async fn abort(mut upload: Box<dyn MultipartUpload>, name: &str) {
    let outcome = tokio::time::timeout(ABORT_WAIT, upload.abort()).await;
    if !matches!(outcome, Ok(Ok(()))) {
        crate::commands::warn(format_args!(
            "could not abort the unfinished upload of {name}; its parts stay on the \
             server until a lifecycle rule or cleanup removes them (no object was created)"
        ));
    }
}

/// Checks that the bytes read for sending are the archive `entry` describes.
fn check_sent(sum: &Checksum, entry: &Entry, file: &Path) -> Result<()> {
    if sum.len == entry.size && sum.sha256 == entry.sha256 {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: file.to_path_buf(),
        detail: format!(
            "it reads as {} bytes with SHA-256 {}, manifest says {} bytes, {}; not pushed",
            sum.len, sum.sha256, entry.size, entry.sha256
        ),
    })
}

/// Parses an entry object and checks it describes archive `name` with plain names, so a
/// hostile or mistaken entry can never make resbak write outside the backup folder.
fn parse_entry(name: &str, bytes: &[u8]) -> std::result::Result<Entry, String> {
    let entry: Entry =
        serde_yaml::from_slice(bytes).map_err(|e| format!("not a resbak entry: {e}"))?;
    if entry.backup_file != name {
        return Err(format!(
            "it describes {:?}, not {name:?}",
            entry.backup_file
        ));
    }
    if !is_plain(&entry.backup_file) || !entry.backup_file.ends_with(".tar.gz") {
        return Err(format!("invalid archive name {:?}", entry.backup_file));
    }
    if !is_plain(&entry.strategy) {
        return Err(format!("invalid strategy name {:?}", entry.strategy));
    }
    Ok(entry)
}

/// True for a single plain path component.
fn is_plain(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!((parts.next(), parts.next()), (Some(Component::Normal(p)), None) if p == name)
}

/// True when `err` says an object (not the bucket) does not exist.
fn is_missing_object(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
        && Diagnosis::of(err).code.as_deref() != Some("NoSuchBucket")
}

/// What an `object_store` error says, picked apart.
struct Diagnosis {
    /// HTTP status, when the server answered.
    status: Option<u16>,
    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, ...), when the server sent one.
    code: Option<String>,
    /// The S3 error message, when the server sent one.
    message: Option<String>,
    /// The transport failure, when the request got no answer.
    transport: Option<HttpErrorKind>,
    /// The innermost cause, such as "Connection refused (os error 111)".
    root: String,
    /// The whole error as one line.
    text: String,
}

impl Diagnosis {
    fn of(err: &object_store::Error) -> Diagnosis {
        let text = one_line(&err.to_string());
        let mut transport = None;
        let mut root = text.clone();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cause {
            if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
                transport = Some(http.kind());
            }
            root = one_line(&e.to_string());
            cause = e.source();
        }
        let status = match err {
            object_store::Error::PermissionDenied { .. } => Some(403),
            object_store::Error::Unauthenticated { .. } => Some(401),
            object_store::Error::NotFound { .. } => Some(404),
            _ => between(&text, "status code: ", " ").and_then(|s| s.parse().ok()),
        };
        Diagnosis {
            status,
            code: between(&text, "<Code>", "</Code>"),
            message: between(&text, "<Message>", "</Message>"),
            transport,
            root,
            text,
        }
    }

    /// "HTTP 403 AccessDenied" or "HTTP 403".
    fn code_or_status(&self) -> String {
        let status = self
            .status
            .map_or_else(String::new, |s| format!("HTTP {s}"));
        match &self.code {
            Some(code) => format!("{status} {code}").trim().to_string(),
            None => status,
        }
    }

    /// A short description: status, code and message when the server sent them.
    fn summary(&self) -> String {
        match (&self.code, &self.message) {
            (Some(_), Some(message)) => format!("{}: {message}", self.code_or_status()),
            (Some(_), None) => self.code_or_status(),
            _ => shorten(&self.text, 300),
        }
    }
}

/// The text between the first `start` and the next `end` in `text`.
fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let rest = &text[text.find(start)? + start.len()..];
    let value = rest.find(end).map_or(rest, |i| &rest[..i]);
    Some(value.to_string()).filter(|v| !v.is_empty())
}

/// `text` on one line, with runs of whitespace collapsed.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters of `text`, marked when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
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

    fn entry(name: &str, strategy: &str) -> Entry {
        Entry::sample(strategy, name, 1)
    }

    #[test]
    fn entries_must_describe_their_own_plain_archive_name() {
        let good = entry("s_20260101_000000.tar.gz", "s");
        let yaml = serde_yaml::to_string(&good).unwrap();
        assert_eq!(
            parse_entry("s_20260101_000000.tar.gz", yaml.as_bytes()),
            Ok(good)
        );
        assert!(parse_entry("other.tar.gz", yaml.as_bytes()).is_err());
        for (name, strategy) in [
            ("../x.tar.gz", "s"),
            ("a/b.tar.gz", "s"),
            ("x.tar.gz", ".."),
        ] {
            let yaml = serde_yaml::to_string(&entry(name, strategy)).unwrap();
            assert!(
                parse_entry(name, yaml.as_bytes()).is_err(),
                "{name} {strategy}"
            );
        }
        assert!(parse_entry("x.tar.gz", b"not: [yaml").is_err());
    }

    #[test]
    fn part_sizes_stay_within_the_part_limit() {
        assert_eq!(part_size(1), PART_SIZE);
        assert_eq!(part_size(300 << 20), PART_SIZE);
        let huge = 200u64 << 30;
        assert!(huge.div_ceil(part_size(huge)) <= MAX_PARTS);
    }

    #[test]
    fn credentials_never_show() {
        let c = Credentials::new("AKIDEXAMPLE".into(), "s3cr3t".into(), Some("tok".into()));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("AKID") && !shown.contains("tok"));
    }

    #[test]
    fn plain_http_needs_allow_http() {
        let config = RemoteConfig {
            endpoint: Some("http://127.0.0.1:3900".into()),
            bucket: "b".into(),
            ..RemoteConfig::default()
        };
        let creds = Credentials::new("k".into(), "s".into(), None);
        let err = Remote::open("r", &config, creds.clone()).unwrap_err();
        assert!(err.to_string().contains("allow_http"), "{err}");
        let allowed = RemoteConfig {
            allow_http: true,
            prefix: Some("/lab/results/".into()),
            ..config
        };
        let remote = Remote::open("r", &allowed, creds).unwrap();
        assert_eq!(remote.url("a.tar.gz"), "s3://b/lab/results/a.tar.gz");
        assert!(!format!("{remote:?}").contains("\"s\""));
    }

    #[test]
    fn server_error_texts_are_picked_apart() {
        let text = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code><Message>Forbidden: bad key</Message></Error>";
        assert_eq!(
            between(text, "<Code>", "</Code>").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(between(text, "status code: ", " ").as_deref(), Some("403"));
        assert!(!one_line(text).contains('\n'));
        assert_eq!(shorten("abcdef", 3), "abc...");
    }
}
