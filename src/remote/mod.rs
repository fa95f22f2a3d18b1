//! Off-site copies on S3-compatible object storage (AWS S3, Garage, MinIO, Ceph RGW, R2, ...).
//!
//! This module owns the remote and nothing else: it moves archives and checks them. The local
//! backup folder stays the source of truth for local work; the commands decide what to move.
//!
//! Layout under the remote's prefix: the archive `<name>.tar.gz` (or, encrypted to the remote's
//! recipients, `<name>.tar.gz.age`), its index `<name>.tar.gz.idx` (or `.idx.age`: it names
//! every path and holds each file's SHA-256, so it is encrypted like the archive), and beside
//! them the sidecar `<name>.tar.gz.entry.yaml`, written only after the archive and its index
//! landed and were read back with the right size and SHA-256.
//! The remote catalogue is the listing of those sidecars: there is no shared catalogue file
//! that two machines could overwrite, and an archive without its sidecar (an interrupted push)
//! is invisible.
//!
//! The parts: [`sidecar`](Sidecar) (what is recorded, and the checks on everything read back),
//! `transfer` (uploads and downloads), `crypto` (age encryption, [`Recipients`] and
//! [`Identities`]) and `diagnosis` (errors as one clear line).
//!
//! The client is `object_store`'s `AmazonS3`, driven by a private single-threaded tokio runtime:
//! every function here is synchronous, so the rest of resbak never sees async code (and they
//! must not be called from inside another async runtime). Large archives go up as multipart
//! uploads with a bounded number of parts in memory; downloads and read-backs stream. Network
//! errors and 5xx answers are retried with backoff for a bounded time; credentials, a missing
//! bucket or an unreachable endpoint become one clear line.

mod crypto;
mod diagnosis;
mod sidecar;
mod transfer;

pub use crypto::{
    ENV_IDENTITY, Identities, KeySource, Recipients, SEALED_SUFFIX, generate_file,
    generate_identity,
};
pub use sidecar::{ENTRY_SUFFIX, IndexObject, Sealed, Sidecar};

use crate::config::RemoteConfig;
use crate::error::{Error, Result};
use crate::manifest::Entry;
use bytes::Bytes;
use diagnosis::{is_missing_object, one_line};
use futures_util::stream::{self, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Environment variable holding the access key id.
pub const ENV_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable holding the secret access key.
pub const ENV_SECRET: &str = "AWS_SECRET_ACCESS_KEY";
/// Environment variable holding an optional session token.
pub const ENV_TOKEN: &str = "AWS_SESSION_TOKEN";
/// How long a failing request is retried when the configuration does not say.
pub const DEFAULT_RETRY_SECS: u64 = 60;

/// Archives up to this size go up in one request; larger ones as parts of (at least) this size.
const PART_SIZE: u64 = 5 << 20;
/// S3 allows at most this many parts; larger archives get larger parts.
const MAX_PARTS: u64 = 10_000;
/// Parts in memory at once: uploading, or one uploading while the next is read.
const PARTS_IN_FLIGHT: usize = 2;
/// Entry objects fetched at once when listing the catalogue.
const ENTRY_FETCHES: usize = 16;
/// Bound on sending one request's data (one part, or a small archive), retries included: a
/// server that accepts a connection but stops reading must not hang resbak.
const SEND_LIMIT: Duration = Duration::from_secs(300);
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
    /// The encrypted objects of the encrypted copies among them, by archive name.
    pub sealed: BTreeMap<String, Sealed>,
    /// Entry objects that cannot be used: object name and the problem.
    pub damaged: Vec<(String, String)>,
    /// Every archive object, `.tar.gz` or `.tar.gz.age` (catalogued or not), and its size.
    pub archives: BTreeMap<String, u64>,
    /// The index objects the entries record, by archive name.
    pub indexes: BTreeMap<String, IndexObject>,
    /// Every index object, `.tar.gz.idx` or `.tar.gz.idx.age` (recorded or not), and its size.
    pub index_objects: BTreeMap<String, u64>,
}

impl Catalogue {
    /// The entry of archive `name`, if it is catalogued.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.backup_file == name)
    }

    /// The sidecar of archive `name`, if it is catalogued.
    pub fn sidecar(&self, name: &str) -> Option<Sidecar> {
        self.find(name).map(|entry| Sidecar {
            entry: entry.clone(),
            sealed: self.sealed.get(name).cloned(),
            index: self.indexes.get(name).cloned(),
        })
    }

    /// What the listing shows wrong with the objects of catalogued archive `name`: its archive
    /// or index object missing, or not the size its entry object records. `None` when both
    /// look right (a same-size damaged object is found only by reading it: `verify --remote`).
    pub fn object_problem(&self, name: &str) -> Option<String> {
        let sidecar = self.sidecar(name)?;
        let mut wanted = vec![(sidecar.object(), sidecar.object_digest().0, &self.archives)];
        if let (Some(object), Some(index)) = (sidecar.index_object(), &sidecar.index) {
            wanted.push((object, index.size, &self.index_objects));
        }
        wanted
            .into_iter()
            .find_map(|(object, size, listed)| match listed.get(&object) {
                None => Some(format!("its object {object} is missing")),
                Some(&found) if found != size => Some(format!(
                    "its object {object} is {found} bytes, its entry object records {size}"
                )),
                Some(_) => None,
            })
    }
}

/// An entry object's name and its sidecar, or what is wrong with it.
type EntryRead = (String, std::result::Result<Sidecar, String>);

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
    recipients: Option<Recipients>,
    plaintext_allowed: bool,
    keys: KeySource,
    notes: Mutex<Vec<String>>,
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
        let recipients = Recipients::from_config(name, config)?;
        match (config.encrypt, &recipients) {
            (Some(true), None) => {
                return Err(bad(format!(
                    "encrypt = true needs recipients or recipients_file in [remote.{name}]"
                )));
            }
            (Some(false), Some(_)) => {
                return Err(bad(format!(
                    "encrypt = false contradicts the recipients in [remote.{name}]; remove one"
                )));
            }
            _ => {}
        }
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
            plaintext_allowed: config.encrypt == Some(false),
            recipients,
            keys: KeySource::from_config(name, config),
            notes: Mutex::new(Vec::new()),
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

    /// The recipients new copies are encrypted to, or `None` for a remote configured with
    /// `encrypt = false`.
    ///
    /// # Errors
    /// [`Error::Remote`] when the remote has no recipients and plaintext was not allowed.
    pub fn sealing(&self) -> Result<Option<&Recipients>> {
        match (&self.recipients, self.plaintext_allowed) {
            (Some(r), _) => Ok(Some(r)),
            (None, true) => Ok(None),
            (None, false) => Err(Error::Remote {
                remote: self.name.clone(),
                message: format!(
                    "refusing to push readable archives: set recipients (or recipients_file) in [remote.{0}] to encrypt, or encrypt = false to store plaintext",
                    self.name
                ),
            }),
        }
    }

    /// The identities that decrypt this remote's encrypted copies.
    ///
    /// # Errors
    /// [`Error::Key`] when none is configured or it cannot be read.
    pub fn identities(&self) -> Result<Identities> {
        self.keys.load()
    }

    /// Keeps a warning for the command to show.
    fn note(&self, text: String) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(text);
        }
    }

    /// Warnings gathered since the last call (such as an upload that could not be aborted).
    pub fn take_notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
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
            } else if object.ends_with(".tar.gz") || object.ends_with(".tar.gz.age") {
                catalogue.archives.insert(object, meta.size);
            } else if object.ends_with(".tar.gz.idx") || object.ends_with(".tar.gz.idx.age") {
                catalogue.index_objects.insert(object, meta.size);
            }
        }
        for (object, read) in self.read_entries(entry_objects)? {
            match read {
                Ok(Sidecar {
                    entry,
                    sealed,
                    index,
                }) => {
                    if let Some(sealed) = sealed {
                        catalogue.sealed.insert(entry.backup_file.clone(), sealed);
                    }
                    if let Some(index) = index {
                        catalogue.indexes.insert(entry.backup_file.clone(), index);
                    }
                    catalogue.entries.push(entry);
                }
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
                Ok(bytes) => read.push((object, bytes.and_then(|b| Sidecar::parse(&archive, &b)))),
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
        if got.meta.size > sidecar::MAX_BYTES {
            return Ok(Err(format!(
                "not a resbak entry: {} bytes is too large",
                got.meta.size
            )));
        }
        got.bytes().await.map(Ok)
    }

    /// The sidecar of archive `name`, or `None` if the remote has none.
    ///
    /// # Errors
    /// [`Error::Remote`] when it cannot be read; [`Error::Corrupt`] when it is damaged.
    pub fn read_entry(&self, name: &str) -> Result<Option<Sidecar>> {
        let object = format!("{name}{ENTRY_SUFFIX}");
        match self.rt.block_on(self.fetch_entry(&object)) {
            Ok(bytes) => bytes
                .and_then(|b| Sidecar::parse(name, &b))
                .map(Some)
                .map_err(|detail| Error::Corrupt {
                    path: self.url(&object).into(),
                    detail,
                }),
            Err(e) if is_missing_object(&e) => Ok(None),
            Err(e) => Err(self.fail(&format!("reading {object}"), e)),
        }
    }

    /// Stores `sidecar` beside its archive, which makes the archive part of the catalogue. Call
    /// this only after [`Remote::upload`] succeeded. The write is a conditional create
    /// (`If-None-Match: *`): on a server that honours it, an existing sidecar is never replaced.
    ///
    /// # Errors
    /// [`Error::Taken`] when the server refused because a sidecar of that name exists;
    /// [`Error::Remote`] when the write fails.
    pub fn write_entry(&self, sidecar: &Sidecar) -> Result<()> {
        self.put_entry(sidecar, PutMode::Create)
    }

    /// Replaces the sidecar of an archive whose objects were uploaded again (a repair of a
    /// copy whose archive or index object was missing or damaged).
    ///
    /// # Errors
    /// [`Error::Remote`] when the write fails.
    pub fn rewrite_entry(&self, sidecar: &Sidecar) -> Result<()> {
        self.put_entry(sidecar, PutMode::Overwrite)
    }

    /// Writes `sidecar`'s entry object with `mode`.
    fn put_entry(&self, sidecar: &Sidecar, mode: PutMode) -> Result<()> {
        let name = &sidecar.entry.backup_file;
        let cannot = |e: String| Error::Remote {
            remote: self.name.clone(),
            message: format!("cannot describe {name}: {e}"),
        };
        let text = sidecar.render().map_err(cannot)?;
        if text.len() as u64 > sidecar::MAX_BYTES {
            let limit = sidecar::MAX_BYTES;
            return Err(cannot(format!(
                "its entry takes {} bytes, more than {limit}",
                text.len()
            )));
        }
        let object = format!("{name}{ENTRY_SUFFIX}");
        let opts = PutOptions::from(mode);
        let key = self.key(&object);
        let put = self
            .store
            .put_opts(&key, PutPayload::from(text.into_bytes()), opts);
        match self.rt.block_on(put) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::Taken {
                path: self.url(&object).into(),
            }),
            Err(e) => Err(self.fail(&format!("writing {object}"), e)),
        }
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
    // Retries stop when `retry_timeout_secs` has passed, not after a count: the backoff is
    // capped at a twentieth of it (100 ms to 3 s), so a server that is down for a while is
    // tried again all along.
    let cap = Duration::from_millis(retry_secs.saturating_mul(50).clamp(100, 3_000));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            max_backoff: cap,
            ..BackoffConfig::default()
        },
        max_retries: usize::MAX,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
