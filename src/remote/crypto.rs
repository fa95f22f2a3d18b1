//! Encryption of off-site copies in the age format (age-encryption.org/v1), so that what a
//! bucket holds is readable only with the owner's identity, and by any age implementation.
//!
//! [`Recipients`] encrypt (X25519 `age1...` keys and ssh-ed25519 / ssh-rsa public keys),
//! [`Identities`] decrypt. Both stream: [`Sealing`] turns a plaintext reader into a ciphertext
//! reader with a few chunks of 64 KiB in memory, and [`Identities::open`] wraps a ciphertext
//! reader into a plaintext one.

use crate::config::RemoteConfig;
use crate::error::{Error, IoContext, Result};
use age::secrecy::ExposeSecret;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

/// Environment variable naming an identity file (or holding an `AGE-SECRET-KEY-1...` key).
pub const ENV_IDENTITY: &str = "RESBAK_AGE_IDENTITY";
/// Suffix of an encrypted archive object.
pub const SEALED_SUFFIX: &str = ".age";
/// Plaintext read at a time while encrypting (age's chunk size).
const CHUNK: usize = 64 << 10;
/// Bytes of an object's start kept to name its recipient stanzas when no identity fits.
const HEADER_KEPT: usize = 16 << 10;

/// The public keys an archive is encrypted to.
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send>>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.keys.len())
    }
}

impl Recipients {
    /// Parses recipient lines: `age1...` or an ssh-ed25519 / ssh-rsa public key each.
    ///
    /// # Errors
    /// A one-line description of the first line that is not a recipient.
    pub fn parse<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> std::result::Result<Recipients, String> {
        let mut keys: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
        for line in lines.into_iter().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Ok(key) = age::x25519::Recipient::from_str(line) {
                keys.push(Box::new(key));
            } else if let Ok(key) = age::ssh::Recipient::from_str(line) {
                keys.push(Box::new(key));
            } else {
                let shown: String = line.chars().take(24).collect();
                return Err(format!(
                    "{shown:?}... is not an age recipient (age1...) or an ssh-ed25519/ssh-rsa public key"
                ));
            }
        }
        Ok(Recipients { keys })
    }

    /// The recipients `[remote.NAME]` names in `recipients` and `recipients_file`, or `None`
    /// when it names none.
    ///
    /// # Errors
    /// [`Error::Config`] when a recipient does not parse or the file cannot be read.
    pub fn from_config(name: &str, config: &RemoteConfig) -> Result<Option<Recipients>> {
        let bad = |message: String| Error::Remote {
            remote: name.to_string(),
            message,
        };
        let mut lines = config.recipients.clone();
        if let Some(file) = &config.recipients_file {
            let file = expand_home(file);
            let text = std::fs::read_to_string(&file).at("read recipients file", &file)?;
            lines.extend(text.lines().map(str::to_string));
        }
        let recipients = Recipients::parse(lines.iter().map(String::as_str)).map_err(bad)?;
        Ok((!recipients.keys.is_empty()).then_some(recipients))
    }

    /// Wraps `plain` into a reader of its age encryption.
    ///
    /// # Errors
    /// An I/O error when age refuses this set of recipients.
    pub fn seal<R: Read>(&self, plain: R) -> io::Result<Sealing<R>> {
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as _))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let out = Spill::default();
        let writer = encryptor.wrap_output(out.clone())?;
        Ok(Sealing {
            plain,
            writer: Some(writer),
            out,
            buf: vec![0; CHUNK],
        })
    }
}

/// A ciphertext reader over a plaintext reader: reads plaintext a chunk at a time and hands
/// out what age made of it.
pub struct Sealing<R> {
    plain: R,
    writer: Option<age::stream::StreamWriter<Spill>>,
    out: Spill,
    buf: Vec<u8>,
}

impl<R> Sealing<R> {
    /// The plaintext reader, to ask it what it read.
    pub fn into_plain(self) -> R {
        self.plain
    }
}

impl<R: Read> Read for Sealing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.out.take_into(buf);
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(writer) = self.writer.as_mut() else {
                return Ok(0);
            };
            let read = self.plain.read(&mut self.buf)?;
            if read == 0 {
                if let Some(writer) = self.writer.take() {
                    writer.finish()?;
                }
            } else {
                writer.write_all(&self.buf[..read])?;
            }
        }
    }
}

/// Where age writes ciphertext for [`Sealing`] to hand out.
#[derive(Clone, Default)]
struct Spill(Arc<Mutex<(Vec<u8>, usize)>>);

impl Spill {
    /// Moves what is waiting into `buf`; returns how many bytes.
    fn take_into(&self, buf: &mut [u8]) -> usize {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (data, pos) = &mut *inner;
        let n = buf.len().min(data.len() - *pos);
        buf[..n].copy_from_slice(&data[*pos..*pos + n]);
        *pos += n;
        if *pos == data.len() {
            data.clear();
            *pos = 0;
        }
        n
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the identity that decrypts a remote's archives comes from.
#[derive(Debug, Clone, Default)]
pub struct KeySource {
    remote: String,
    file: Option<PathBuf>,
    command: Option<String>,
}

impl KeySource {
    /// The identity settings of `[remote.NAME]`.
    pub fn from_config(name: &str, config: &RemoteConfig) -> KeySource {
        KeySource {
            remote: name.to_string(),
            file: config.identity_file.clone(),
            command: config.identity_command.clone(),
        }
    }

    /// Loads the identities: `RESBAK_AGE_IDENTITY` (a file, or the key itself), else
    /// `identity_file`, else the standard output of `identity_command`.
    ///
    /// # Errors
    /// [`Error::Key`] when none is configured or it cannot be read or parsed.
    pub fn load(&self) -> Result<Identities> {
        let env = std::env::var(ENV_IDENTITY).ok().filter(|v| !v.is_empty());
        let (text, origin) = if let Some(value) = env {
            if value.trim_start().starts_with("AGE-SECRET-KEY-") {
                (value, ENV_IDENTITY.to_string())
            } else {
                read_key_file(&expand_home(Path::new(&value)))?
            }
        } else if let Some(file) = &self.file {
            read_key_file(&expand_home(file))?
        } else if let Some(command) = &self.command {
            (
                run_key_command(command)?,
                format!("identity_command {command:?}"),
            )
        } else {
            return Err(Error::Key {
                message: format!(
                    "no identity to decrypt with: set identity_file or identity_command in [remote.{}], or {ENV_IDENTITY}",
                    self.remote
                ),
            });
        };
        Identities::parse(&text, &origin)
    }
}

/// Reads an identity file, refusing one that is not a file.
fn read_key_file(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Key {
        message: format!("cannot read identity file {}: {e}", path.display()),
    })?;
    Ok((text, format!("identity file {}", path.display())))
}

/// Runs `command` with `sh -c`; its standard output is the key.
fn run_key_command(command: &str) -> Result<String> {
    let failed = |why: String| Error::Key {
        message: format!("identity_command {command:?} {why}"),
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| failed(format!("could not run: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!("failed ({})", out.status)));
    }
    String::from_utf8(out.stdout).map_err(|_| failed("printed something that is not text".into()))
}

/// `~/rest` as `$HOME/rest`; other paths as they are.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The private keys that decrypt, and where they came from (for messages).
pub struct Identities {
    keys: Vec<Box<dyn age::Identity>>,
    origin: String,
}

impl Identities {
    /// Parses an age identity file (`AGE-SECRET-KEY-1...` lines) or an unencrypted OpenSSH
    /// private key; `origin` names where it came from.
    ///
    /// # Errors
    /// [`Error::Key`] when it is neither.
    pub fn parse(text: &str, origin: &str) -> Result<Identities> {
        let bad = |why: &str| Error::Key {
            message: format!("{origin}: {why}"),
        };
        if text.contains("-----BEGIN") {
            return match age::ssh::Identity::from_buffer(text.as_bytes(), None) {
                Ok(age::ssh::Identity::Unencrypted(key)) => Ok(Identities {
                    keys: vec![Box::new(age::ssh::Identity::Unencrypted(key))],
                    origin: origin.to_string(),
                }),
                Ok(age::ssh::Identity::Encrypted(_)) => Err(bad(
                    "a passphrase-protected ssh key; use an unprotected copy or an age identity",
                )),
                _ => Err(bad("not an ssh-ed25519 or ssh-rsa private key")),
            };
        }
        let file = age::IdentityFile::from_buffer(text.as_bytes())
            .map_err(|_| bad("not an age identity (AGE-SECRET-KEY-1...)"))?;
        let keys = file
            .into_identities()
            .map_err(|_| bad("not an age identity (AGE-SECRET-KEY-1...)"))?;
        if keys.is_empty() {
            return Err(bad("holds no identity"));
        }
        let keys = keys
            .into_iter()
            .map(|k| k as Box<dyn age::Identity>)
            .collect();
        Ok(Identities {
            keys,
            origin: origin.to_string(),
        })
    }

    /// Wraps the age file `sealed` (named `object` in messages) into a plaintext reader.
    ///
    /// # Errors
    /// [`Error::Key`] naming the object's recipient stanzas when no identity fits;
    /// [`Error::Corrupt`] when it is not an age file.
    pub fn open<'r, R: Read + 'r>(&self, sealed: R, object: &str) -> Result<impl Read + 'r> {
        let mut kept = HeadKeeper {
            inner: sealed,
            head: Vec::new(),
        };
        let decryptor = match age::Decryptor::new(&mut kept) {
            Ok(d) => d,
            Err(e) => return Err(Error::corrupt(object, format!("not an age file: {e}"))),
        };
        match decryptor.decrypt(self.keys.iter().map(|k| k.as_ref() as _)) {
            Ok(_) => {}
            Err(age::DecryptError::NoMatchingKeys) => {
                return Err(Error::Key {
                    message: format!(
                        "cannot decrypt {object}: no key in {} matches its recipient stanzas ({})",
                        self.origin,
                        stanzas(&kept.head)
                    ),
                });
            }
            Err(e) => return Err(Error::corrupt(object, format!("cannot decrypt: {e}"))),
        }
        // The header checked out; open again over the kept bytes and the rest of the stream.
        let HeadKeeper { inner, head } = kept;
        let again = io::Cursor::new(head).chain(inner);
        let decryptor = age::Decryptor::new_buffered(BufReader::new(again))
            .map_err(|e| Error::corrupt(object, format!("not an age file: {e}")))?;
        decryptor
            .decrypt(self.keys.iter().map(|k| k.as_ref() as _))
            .map_err(|e| Error::corrupt(object, format!("cannot decrypt: {e}")))
    }
}

/// Passes reads through and keeps the first [`HEADER_KEPT`] bytes.
struct HeadKeeper<R> {
    inner: R,
    head: Vec<u8>,
}

impl<R: Read> Read for HeadKeeper<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = HEADER_KEPT.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..room]);
        if self.head.len() >= HEADER_KEPT && room < n {
            return Err(io::Error::other("age header too long"));
        }
        Ok(n)
    }
}

/// The recipient stanzas an age header lists: their types, and the key tag of ssh ones.
fn stanzas(head: &[u8]) -> String {
    let mut found = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        if line.starts_with(b"---") {
            break;
        }
        let Some(rest) = line.strip_prefix(b"-> ") else {
            continue;
        };
        let text = String::from_utf8_lossy(rest);
        let mut words = text.split(' ');
        let kind = words.next().unwrap_or_default();
        // age adds a random stanza (`...-grease`) that no key is for: not worth naming.
        if kind.ends_with("-grease") {
            continue;
        }
        let shown: String = kind
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        found.push(match (kind.starts_with("ssh-"), words.next()) {
            (true, Some(tag)) => format!(
                "{shown} key tag {}",
                tag.chars().take(12).collect::<String>()
            ),
            _ => shown,
        });
    }
    if found.is_empty() {
        "none".to_string()
    } else {
        found.join(", ")
    }
}

/// A new X25519 identity: the identity file's text and its recipient.
pub fn generate_identity() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    (text, recipient)
}

/// Writes a new identity to `path` (mode 0600, never over an existing file) and returns its
/// recipient.
///
/// # Errors
/// [`Error::Io`] when `path` exists or cannot be written.
pub fn generate_file(path: &Path) -> Result<String> {
    if std::fs::symlink_metadata(path).is_ok() {
        let exists = io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it already exists, and an identity is never written over a file",
        );
        return Err(Error::io("write a new identity to", path, exists));
    }
    let (text, recipient) = generate_identity();
    let dir = crate::atomic::parent_dir(path);
    let mut tmp = crate::atomic::temp_file_with_mode(dir, 0o600)?;
    tmp.write_all(text.as_bytes()).at("write", tmp.path())?;
    tmp.as_file().sync_all().at("sync", tmp.path())?;
    crate::atomic::persist(tmp, path, false)?;
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stanzas_named_leave_out_age_grease() {
        let head = b"age-encryption.org/v1\n-> X25519 abc\nxyz\n-> N,uk-grease q\nw\n-> ssh-ed25519 Tag123 k\nv\n--- mac\n";
        assert_eq!(stanzas(head), "X25519, ssh-ed25519 key tag Tag123");
    }

    #[test]
    fn sealing_streams_and_opens_again() {
        let (text, recipient) = generate_identity();
        let recipients = Recipients::parse([recipient.as_str()]).unwrap();
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        let mut reader = recipients.seal(&plain[..]).unwrap();
        let mut small = [0u8; 1000];
        loop {
            let n = reader.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            sealed.extend_from_slice(&small[..n]);
        }
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
        let ids = Identities::parse(&text, "test").unwrap();
        let mut back = Vec::new();
        ids.open(&sealed[..], "x.age")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);

        let (other, _) = generate_identity();
        let err = Identities::parse(&other, "other key")
            .unwrap()
            .open(&sealed[..], "x.age")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("X25519") && err.contains("other key"), "{err}");
    }

    #[test]
    fn recipients_must_be_keys() {
        assert!(Recipients::parse(["age1nope"]).is_err());
        assert!(
            Recipients::parse(["# comment", ""])
                .unwrap()
                .keys
                .is_empty()
        );
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN user@host";
        assert_eq!(Recipients::parse([ssh]).unwrap().keys.len(), 1);
    }
}
