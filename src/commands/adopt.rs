//! Day one with the backups the Python scripts made: their manifest is read as it is (see
//! [`crate::manifest::legacy`]) and upgraded by the first command that writes, in the same save
//! as that command's own change, so `manifest.yaml.bak` keeps the scripts' file.

use super::Printer;
use crate::error::{Result, count};
use crate::extract;
use crate::manifest::{ChecksumSource, Entry, Manifest};
use crate::progress::Progress;
use std::path::{Path, PathBuf};

/// Upgrades a manifest of the older format when a command writes its manifest: pass
/// [`Adopter::adopt`] to [`Manifest::update_adopting`], then [`Adopter::report`] what it did.
pub struct Adopter {
    dir: PathBuf,
    progress: Progress,
    problems: Vec<String>,
    upgraded: Option<Vec<bool>>,
}

impl Adopter {
    /// An adopter for the manifest in `dir`, with a progress bar sized for its archives when
    /// the manifest is of the older format.
    pub fn new(dir: &Path, printer: &Printer) -> Adopter {
        Adopter::for_manifest(dir, Manifest::load(dir).ok().as_ref(), printer)
    }

    /// [`Adopter::new`] for `manifest`, the manifest in `dir` already loaded.
    pub fn for_manifest(dir: &Path, manifest: Option<&Manifest>, printer: &Printer) -> Adopter {
        let total = manifest
            .filter(|m| m.legacy)
            .map(|m| m.backups.iter().map(|e| e.size).sum());
        Adopter {
            dir: dir.to_path_buf(),
            progress: match total {
                Some(total) => printer.progress(total, "checksumming the Python scripts' archives"),
                None => Progress::hidden(),
            },
            problems: Vec::new(),
            upgraded: None,
        }
    }

    /// Reads each archive of `manifest` in full once and records its SHA-256 and counts as
    /// imported. An archive that is missing, of another size than recorded, or does not read
    /// keeps no checksum ([`ChecksumSource::None`]) and is reported.
    pub fn adopt(&mut self, manifest: &mut Manifest) -> Result<()> {
        let mut recorded = Vec::new();
        for entry in &mut manifest.backups {
            match import(&self.dir, entry, &self.progress) {
                Ok(()) => recorded.push(true),
                Err(problem) => {
                    entry.checksum_source = Some(ChecksumSource::None);
                    self.problems
                        .push(format!("{}: {problem}", entry.backup_file));
                    recorded.push(false);
                }
            }
        }
        self.progress.finish();
        self.upgraded = Some(recorded);
        Ok(())
    }

    /// Says what [`Adopter::adopt`] did, if it ran: one line, and a warning per archive left
    /// without a checksum.
    pub fn report(self, printer: &mut Printer) -> Result<()> {
        let Some(recorded) = self.upgraded else {
            return Ok(());
        };
        for problem in &self.problems {
            printer.warn(format_args!("{problem}; no checksum recorded"));
        }
        let imported = recorded.iter().filter(|r| **r).count();
        printer.line(format_args!(
            "Upgraded {} from the Python scripts' format: {} checksummed now (checksum_source: imported); the old file is kept as {}",
            Manifest::path(&self.dir).display(),
            count(imported, "archive", "archives"),
            crate::manifest::SCRIPTS_COPY,
        ))
    }
}

/// Upgrades the manifest in `dir` on its own, if it is of the older format.
pub fn upgrade(dir: &Path, printer: &mut Printer) -> Result<()> {
    let manifest = Manifest::load(dir)?;
    if !manifest.legacy {
        return Ok(());
    }
    let mut adopter = Adopter::for_manifest(dir, Some(&manifest), printer);
    Manifest::update_adopting(dir, &mut |m| adopter.adopt(m), |_| Ok(()))?;
    adopter.report(printer)
}

/// Reads `entry`'s archive in full and records its SHA-256 and counts as imported.
fn import(dir: &Path, entry: &mut Entry, progress: &Progress) -> Result<(), String> {
    let path = dir.join(&entry.backup_file);
    if let Some(elsewhere) = outside(dir, entry) {
        return Err(elsewhere);
    }
    let scan = extract::scan(&path, Some(&entry.strategy), progress).map_err(|e| e.to_string())?;
    if scan.checksum.len != entry.size {
        return Err(format!(
            "size is {} bytes, the manifest says {}",
            scan.checksum.len, entry.size
        ));
    }
    let stats = scan.stats.unwrap_or_default();
    entry.sha256 = scan.checksum.sha256;
    entry.entries = stats.files;
    entry.bytes = stats.bytes;
    entry.checksum_source = Some(ChecksumSource::Imported);
    Ok(())
}

/// For an archive the scripts' manifest lists by an absolute path outside `dir`, where it
/// still is: what to do about it.
fn outside(dir: &Path, entry: &Entry) -> Option<String> {
    let listed = entry.imported_path.as_ref()?;
    let here = dir.join(&entry.backup_file);
    (!here.exists() && listed.is_file()).then(|| {
        format!(
            "the scripts' manifest lists it at {}, outside {}; move it there to adopt it",
            listed.display(),
            dir.display()
        )
    })
}

/// The one-time note for commands that only read a manifest of the older format.
pub fn note(dir: &Path, manifest: &Manifest, printer: &mut Printer) {
    if !manifest.legacy {
        return;
    }
    printer.hint(format_args!(
        "{} is in the Python scripts' format ({}, naive times read in {}): read as it is; \
         the first command that writes it (backup, restore --force, prune, reindex, tag, push...) \
         upgrades it in place, recording each archive's SHA-256, and keeps the old file as \
         manifest.yaml.bak and {}",
        Manifest::path(dir).display(),
        count(manifest.backups.len(), "entry", "entries"),
        crate::manifest::legacy::zone().map_or_else(|e| e, |z| z.to_string()),
        crate::manifest::SCRIPTS_COPY
    ));
    for entry in &manifest.backups {
        if let Some(elsewhere) = outside(dir, entry) {
            printer.hint(format_args!("{}: {elsewhere}", entry.backup_file));
        }
    }
}
