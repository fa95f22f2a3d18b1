//! The `SHA256SUMS` a copies folder keeps (in `sha256sum` format, so `sha256sum -c SHA256SUMS`
//! works there), the lock that serialises changes to the folder, and how resbak recognises a
//! copies folder of its own.

use super::names::is_copy_name;
use crate::atomic;
use crate::error::{IoContext, Result};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// The checksum list's file name.
pub const SUMS_NAME: &str = "SHA256SUMS";

/// A larger `SHA256SUMS` is not one resbak wrote for a copies folder.
const MAX_SUMS_LEN: u64 = 4 << 20;

/// The lines of a copies folder's `SHA256SUMS`. Lines resbak does not understand are kept.
#[derive(Debug, Default)]
pub(super) struct Sums {
    lines: Vec<Line>,
}

#[derive(Debug)]
enum Line {
    Entry { name: Vec<u8>, sha256: String },
    Other(Vec<u8>),
}

impl Sums {
    /// Reads `dir/SHA256SUMS`; none yet is an empty list.
    pub(super) fn read(dir: &Path) -> Result<Sums> {
        let path = dir.join(SUMS_NAME);
        let text = match fs::read(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Sums::default()),
            other => other.at("read", &path)?,
        };
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match parse_line(l) {
                Some((name, sha256)) => Line::Entry { name, sha256 },
                None => Line::Other(l.to_vec()),
            })
            .collect();
        Ok(Sums { lines })
    }

    /// The SHA-256 recorded for the copy named `name`.
    pub(super) fn get(&self, name: &OsStr) -> Option<&str> {
        let name = name.as_encoded_bytes();
        self.lines.iter().rev().find_map(|l| match l {
            Line::Entry { name: n, sha256 } if n == name => Some(sha256.as_str()),
            _ => None,
        })
    }

    /// The names of the copies with a recorded checksum.
    pub(super) fn names(&self) -> impl Iterator<Item = OsString> + '_ {
        self.lines.iter().filter_map(|l| match l {
            // The names came from the OS or from this file, as bytes.
            Line::Entry { name, .. } => Some(os_string(name)),
            Line::Other(_) => None,
        })
    }

    /// Records `sha256` for the copy named `name`.
    pub(super) fn set(&mut self, name: &OsStr, sha256: &str) {
        self.remove(name);
        self.lines.push(Line::Entry {
            name: name.as_encoded_bytes().to_vec(),
            sha256: sha256.to_string(),
        });
    }

    /// Forgets the copy named `name`.
    pub(super) fn remove(&mut self, name: &OsStr) {
        let name = name.as_encoded_bytes();
        self.lines
            .retain(|l| !matches!(l, Line::Entry { name: n, .. } if n == name));
    }

    /// Replaces `dir/SHA256SUMS` atomically.
    pub(super) fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SUMS_NAME);
        atomic::write_file(&path, |out| {
            for line in &self.lines {
                let bytes = match line {
                    Line::Entry { name, sha256 } => format_line(name, sha256),
                    Line::Other(raw) => raw.clone(),
                };
                out.write_all(&bytes)
                    .and_then(|()| out.write_all(b"\n"))
                    .at("write", &path)?;
            }
            Ok(())
        })
    }
}

#[cfg(unix)]
fn os_string(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}

/// `<sha256>  <name>`, escaped as `sha256sum` does when the name holds `\`, CR or LF.
fn format_line(name: &[u8], sha256: &str) -> Vec<u8> {
    let escape = name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut line = Vec::with_capacity(name.len() + 67);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(sha256.as_bytes());
    line.extend_from_slice(b"  ");
    for &b in name {
        match b {
            b'\\' if escape => line.extend_from_slice(b"\\\\"),
            b'\n' if escape => line.extend_from_slice(b"\\n"),
            b'\r' if escape => line.extend_from_slice(b"\\r"),
            b => line.push(b),
        }
    }
    line
}

/// Parses a `sha256sum` line (text or binary mode, escaped or not).
fn parse_line(line: &[u8]) -> Option<(Vec<u8>, String)> {
    let (escaped, line) = match line.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let sha = line.get(..64)?;
    if !sha
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let name = line.get(64..)?;
    let name = name
        .strip_prefix(b"  ")
        .or_else(|| name.strip_prefix(b" *"))?;
    let name = if escaped {
        unescape(name)?
    } else {
        name.to_vec()
    };
    let sha = String::from_utf8(sha.to_vec()).ok()?;
    (!name.is_empty()).then_some((name, sha))
}

fn unescape(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len());
    let mut bytes = name.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'\\' => match bytes.next()? {
                b'\\' => b'\\',
                b'n' => b'\n',
                b'r' => b'\r',
                _ => return None,
            },
            b => b,
        });
    }
    Some(out)
}

/// The lock file beside `SHA256SUMS`.
pub const LOCK_NAME: &str = "SHA256SUMS.lock";

/// Blocks until this process holds an exclusive OS lock on the copies folder `dir`, held while
/// copies and `SHA256SUMS` change, so that two programs backing up at once lose no line.
/// Released on drop or when the process dies, so a killed program never leaves a stale lock.
pub(super) fn lock_folder(dir: &Path) -> Result<crate::manifest::Lock> {
    crate::manifest::Lock::exclusive_at(&dir.join(LOCK_NAME))
}

/// Whether `dir` is a copies folder resbak keeps: it holds a `SHA256SUMS` (a regular file) whose
/// every line records a copy (`<name>.<YYYYMMDD_HHMMSS>.backup`). A folder merely named like
/// one is not.
pub fn is_copies_folder(dir: &Path) -> bool {
    let path = dir.join(SUMS_NAME);
    let small_file =
        fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_SUMS_LEN);
    if !small_file {
        return false;
    }
    let Ok(text) = fs::read(&path) else {
        return false;
    };
    let mut lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .peekable();
    lines.peek().is_some()
        && lines.all(|l| parse_line(l).is_some_and(|(name, _)| is_copy_name(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "71113fdc5e1fca8e1ff8ab4bcac6b72ad66b8ff0cd3a3a8ab7d5b8fb2e3e4e1f";

    #[test]
    fn lines_round_trip_with_sha256sum_escapes() {
        for name in [&b"a.json.20261122_004907.backup"[..], b"a\\b\nc.backup"] {
            let line = format_line(name, SHA);
            assert_eq!(parse_line(&line), Some((name.to_vec(), SHA.to_string())));
        }
        assert_eq!(
            format_line(b"a\nb", SHA),
            format!("\\{SHA}  a\\nb").into_bytes()
        );
        let binary = format!("{SHA} *x");
        assert_eq!(parse_line(binary.as_bytes()).unwrap().0, b"x");
        assert_eq!(parse_line(b"not a line"), None);
    }

    #[test]
    fn a_copies_folder_is_recognised_by_its_checksum_list() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_copies_folder(dir.path()));
        let sums = dir.path().join(SUMS_NAME);
        fs::write(&sums, format!("{SHA}  a.json.20261122_004907.backup\n")).unwrap();
        assert!(is_copies_folder(dir.path()));
        fs::write(&sums, format!("{SHA}  btc_20261122_004907.tar.gz\n")).unwrap();
        assert!(!is_copies_folder(dir.path()), "a backup folder's list");
        fs::write(&sums, "").unwrap();
        assert!(!is_copies_folder(dir.path()));
    }

    #[test]
    fn other_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SUMS_NAME), "a note\n").unwrap();
        let mut sums = Sums::read(dir.path()).unwrap();
        sums.set(OsStr::new("x.20261122_004907.backup"), SHA);
        sums.write(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(SUMS_NAME)).unwrap();
        assert_eq!(text, format!("a note\n{SHA}  x.20261122_004907.backup\n"));
        let names: Vec<OsString> = Sums::read(dir.path()).unwrap().names().collect();
        assert_eq!(names, ["x.20261122_004907.backup"]);
    }
}
