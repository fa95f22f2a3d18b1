//! The index a pull places beside the archive: the one pushed with it, fetched (decrypted like
//! the archive) and checked against the entry object; or, for a backup pushed by a resbak that
//! did not push indexes, or whose pushed index does not check out, one built here from the
//! downloaded archive the way `reindex` builds one. The archive is what matters: an index that
//! cannot be had leaves the archive without one (with a warning), it never stops the pull.

use super::super::Printer;
use crate::atomic;
use crate::checksum::HashingWriter;
use crate::error::{Error, IoContext, Result};
use crate::index;
use crate::remote::{Identities, Remote, Sidecar};
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

/// An index in a temp file of the backup folder, and its SHA-256.
pub type Fetched = (NamedTempFile, String);

/// The index for the archive `sidecar` describes, downloaded to `archive` in `dir`: fetched
/// when the remote has one that checks out, else built from `archive`; `None` when neither
/// works. Problems are warnings.
pub fn index_for(
    remote: &Remote,
    sidecar: &Sidecar,
    keys: Option<&Identities>,
    archive: &Path,
    printer: &mut Printer,
) -> Result<Option<Fetched>> {
    let name = &sidecar.entry.backup_file;
    let dir = atomic::parent_dir(archive);
    if sidecar.index.is_some() {
        match fetch(remote, sidecar, keys, dir) {
            Ok(fetched) => return Ok(Some(fetched)),
            Err(e) => printer.warn(format_args!(
                "the index pushed with {name} is not usable ({e}); building one here"
            )),
        }
    } else {
        printer.line(format_args!(
            "{name} has no index on {} (an older resbak pushed it): building one here",
            remote.name()
        ))?;
    }
    match build(archive, &sidecar.entry.strategy, dir) {
        Ok(built) => Ok(Some(built)),
        Err(e) => {
            printer.warn(format_args!(
                "{name} stays without an index: {e} (ls and cat read the whole archive)"
            ));
            Ok(None)
        }
    }
}

/// Downloads the index pushed with the backup into a temp file in `dir`, and checks the object
/// and the index against the entry object: sizes, SHA-256 and the index's own format.
fn fetch(
    remote: &Remote,
    sidecar: &Sidecar,
    keys: Option<&Identities>,
    dir: &Path,
) -> Result<Fetched> {
    let (Some(object), Some(want), Some(sha256)) = (
        sidecar.index_object(),
        &sidecar.index,
        &sidecar.entry.index_sha256,
    ) else {
        return Err(Error::corrupt(dir, "no index was pushed"));
    };
    let url = remote.url(&object);
    let mut tmp = atomic::temp_file_in(dir)?;
    let path = tmp.path().to_path_buf();
    let out = BufWriter::new(tmp.as_file_mut());
    let got = remote.download_index(sidecar, keys, out, &path)?;
    let Some((plain, stored)) = got else {
        return Err(Error::corrupt(url, "no index was pushed"));
    };
    if stored.len != want.size || stored.sha256 != want.sha256 {
        let message = format!(
            "it downloads as {} bytes with SHA-256 {}, its entry says {} bytes, {}",
            stored.len, stored.sha256, want.size, want.sha256
        );
        return Err(Error::corrupt(url, message));
    }
    if plain.sha256 != *sha256 {
        let message = format!("its SHA-256 is {}, its entry says {sha256}", plain.sha256);
        return Err(Error::corrupt(url, message));
    }
    index::check_file(&path, sha256)?;
    tmp.as_file().sync_all().at("sync", &path)?;
    Ok((tmp, sha256.clone()))
}

/// Builds an index of the archive at `archive` (top folder `top`) into a temp file in `dir`.
fn build(archive: &Path, top: &str, dir: &Path) -> Result<Fetched> {
    let mut tmp = atomic::temp_file_in(dir)?;
    let path = tmp.path().to_path_buf();
    let out = HashingWriter::new(BufWriter::new(tmp.as_file_mut()));
    let (mut out, sum) = index::build(archive, top, out)?.finish();
    out.flush().at("write", &path)?;
    drop(out);
    tmp.as_file().sync_all().at("sync", &path)?;
    Ok((tmp, sum.sha256))
}
