//! `resbak pull`: bring a backup from a remote into the backup folder.
//!
//! The archive is downloaded into a temp file in the backup folder and hashed on the way (an
//! encrypted copy is decrypted on the way with the remote's identity, its ciphertext hashed
//! too); only when its size and SHA-256 are those of its remote entry is it renamed into place
//! and added to the local manifest (under the manifest lock, like a new backup). A partial or damaged
//! download is never registered. The archive keeps its name. Its index comes with it, checked
//! too, and is placed beside it in the same step (see `index` for a backup without one).

mod index;

use super::backup::place_with_index;
use super::push::same;
use super::{Context, Outcome, Printer, human_size};
use crate::atomic;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Manifest};
use crate::remote::{Identities, Remote, Sidecar};
use std::io::{BufWriter, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Write buffer in front of the downloaded file.
const WRITE_BUF: usize = 1 << 20;

/// Options of `resbak pull`.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Archive names, with or without `.tar.gz`.
    pub archives: Vec<String>,
}

/// Pulls each archive in turn.
pub fn run(
    ctx: &Context,
    remote: &Remote,
    opts: &PullOptions,
    printer: &mut Printer,
) -> Result<Outcome> {
    let mut pulled = Vec::new();
    for arg in &opts.archives {
        pulled.push(pull(ctx, remote, arg, printer)?);
    }
    printer.json_report(&pulled)?;
    Ok(Outcome::Clean)
}

/// The archive file name `arg` stands for: itself, or with `.tar.gz` added.
pub fn archive_name(arg: &str) -> String {
    if arg.ends_with(".tar.gz") {
        arg.to_string()
    } else {
        format!("{arg}.tar.gz")
    }
}

/// Makes archive `arg` of `remote` available in the backup folder and returns its entry. An
/// identical local backup is left as it is; a different one of the same name is refused.
///
/// # Errors
/// [`Error::UnknownBackup`] when the remote has no such backup; [`Error::Corrupt`] when the
/// download does not match the remote entry; [`Error::Remote`] for network problems.
pub fn pull(ctx: &Context, remote: &Remote, arg: &str, printer: &mut Printer) -> Result<Entry> {
    let name = archive_name(arg);
    let sidecar = remote
        .read_entry(&name)?
        .ok_or_else(|| Error::UnknownBackup {
            name: arg.to_string(),
            dir: remote.location().into(),
        })?;
    let entry = &sidecar.entry;
    let dir = &ctx.backup_dir;
    if let Some(have) = Manifest::load(dir)?.find(&name) {
        check_same(ctx, have, entry)?;
        if dir.join(&name).is_file() {
            check_intact(remote, &dir.join(&name), have)?;
            printer.line(format_args!("Already here: {}", dir.join(&name).display()))?;
            return Ok(have.clone());
        }
    }
    let started = Instant::now();
    let placed = download(ctx, remote, &sidecar, printer)?;
    printer.line(format_args!(
        "Pulled {} -> {} ({}, {:.2} s)",
        remote.url(&sidecar.object()),
        dir.join(&name).display(),
        human_size(placed.size),
        started.elapsed().as_secs_f64()
    ))?;
    Ok(placed)
}

/// Downloads into a temp file, checks it against `sidecar`, then renames and registers it. On
/// failure nothing it made stays: the temp file goes, and so does the backup folder if it made it.
fn download(
    ctx: &Context,
    remote: &Remote,
    sidecar: &Sidecar,
    printer: &mut Printer,
) -> Result<Entry> {
    let keys = match sidecar.sealed {
        Some(_) => Some(remote.identities()?),
        None => None,
    };
    let dir = &ctx.backup_dir;
    let made = make_folder(dir)?;
    let fetched = fetch(ctx, remote, sidecar, keys.as_ref(), printer);
    if fetched.is_err()
        && let Some(top) = made
    {
        unmake_folder(dir, &top);
    }
    fetched
}

/// Makes `dir` and any missing parents; the outermost folder made, if any.
fn make_folder(dir: &Path) -> Result<Option<PathBuf>> {
    let missing = |d: &&Path| !d.as_os_str().is_empty() && !d.exists();
    let top = dir.ancestors().take_while(missing).last();
    let top = top.map(Path::to_path_buf);
    std::fs::create_dir_all(dir).at("create backup folder", dir)?;
    Ok(top)
}

/// Removes the folders [`make_folder`] made, from `dir` up to `top`, each only while it is
/// empty (a lock file or anything another run put there keeps it).
fn unmake_folder(dir: &Path, top: &Path) {
    for folder in dir.ancestors() {
        if std::fs::remove_dir(folder).is_err() || folder == top {
            return;
        }
    }
}

/// [`download`] once the backup folder exists.
fn fetch(
    ctx: &Context,
    remote: &Remote,
    sidecar: &Sidecar,
    keys: Option<&Identities>,
    printer: &mut Printer,
) -> Result<Entry> {
    let entry = &sidecar.entry;
    let dir = &ctx.backup_dir;
    super::clean_leftovers(dir, printer)?;
    let mut tmp = atomic::temp_file_in(dir)?;
    let tmp_path = tmp.path().to_path_buf();
    let out = BufWriter::with_capacity(WRITE_BUF, tmp.as_file_mut());
    let (sum, object) = remote.download(sidecar, keys, out, &tmp_path)?;
    let (size, sha256) = sidecar.object_digest();
    let url = remote.url(&sidecar.object());
    if object.len != size || object.sha256 != sha256 {
        return Err(Error::corrupt(
            url,
            format!(
                "it downloads as {} bytes with SHA-256 {}, its entry says {size} bytes, {sha256}",
                object.len, object.sha256
            ),
        ));
    }
    if sum.len != entry.size || sum.sha256 != entry.sha256 {
        return Err(Error::corrupt(
            url,
            format!(
                "it decrypts to {} bytes with SHA-256 {}, its entry says {} bytes, {}",
                sum.len, sum.sha256, entry.size, entry.sha256
            ),
        ));
    }
    tmp.as_file().sync_all().at("sync", &tmp_path)?;
    let index = index::index_for(remote, sidecar, keys, &tmp_path, printer)?;
    let index_sha256 = index.as_ref().map(|(_, sha)| sha.clone());
    let index_tmp = index.map(|(tmp, _)| tmp);
    let mut adopter = super::adopt::Adopter::new(dir, printer);
    let placed = place_with_index(dir, tmp, index_tmp, &mut adopter, |manifest| {
        if let Some(have) = manifest.find(&entry.backup_file) {
            check_same(ctx, have, entry)?;
        }
        // The metrics file here gets the metrics and their digest anew.
        Ok(Entry {
            index_sha256,
            metrics_sha256: None,
            ..entry.clone()
        })
    })?;
    adopter.report(printer)?;
    Ok(placed)
}

/// Refuses a local backup with the same name but other bytes than the remote one.
fn check_same(ctx: &Context, have: &Entry, entry: &Entry) -> Result<()> {
    if same(have, entry) {
        return Ok(());
    }
    Err(Error::io(
        "pull over",
        ctx.backup_dir.join(&have.backup_file),
        std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "a different backup of that name is catalogued here (SHA-256 {}, the remote's is {})",
                have.sha256, entry.sha256
            ),
        ),
    ))
}

/// Checks the local archive at `path` against its manifest entry `have` (size and SHA-256, as
/// `verify` does) before it is taken for the remote's copy: a damaged one is never replaced
/// silently, and the error says how to put it aside and pull the remote's.
fn check_intact(remote: &Remote, path: &Path, have: &Entry) -> Result<()> {
    let file = std::fs::File::open(path).at("open", path)?;
    let sum = crate::checksum::HashingReader::new(file)
        .finish()
        .at("read", path)?;
    // An entry with no recorded checksum (adopted without one) is checked by size alone.
    if sum.len == have.size && (!have.has_checksum() || sum.sha256 == have.sha256) {
        return Ok(());
    }
    Err(Error::corrupt(
        path,
        format!(
            "the local copy is damaged (it reads as {} bytes with SHA-256 {}, manifest says {} \
             bytes, {}); {}",
            sum.len,
            sum.sha256,
            have.size,
            have.sha256,
            intact_there(remote, path, &have.backup_file)
        ),
    ))
}

/// What to do when the local copy at `path` of backup `name` is damaged and `remote` holds it.
pub fn intact_there(remote: &Remote, path: &Path, name: &str) -> String {
    let shown = path.display();
    format!(
        "{0} holds an intact copy: mv {shown} {shown}.damaged && resbak pull {name} --remote {0}",
        remote.name()
    )
}
