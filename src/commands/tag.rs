//! `resbak tag` and `resbak untag`: labels, a pin and a note on a catalogued backup. A tagged or
//! pinned backup is never removed by retention.

use super::{Context, Located, Outcome, Printer, locate_backup};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};

/// What to change on the backup.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add tags, pin it when `pin`, set the note when given.
    Add {
        /// Tags to add.
        tags: Vec<String>,
        /// Pin it.
        pin: bool,
        /// The new note.
        note: Option<String>,
    },
    /// Remove tags, the pin when `pin`, the note when `note`.
    Remove {
        /// Tags to remove.
        tags: Vec<String>,
        /// Remove the pin.
        pin: bool,
        /// Remove the note.
        note: bool,
    },
}

/// Applies `change` to the backup `archive` names (see [`locate_backup`]) and prints its tags.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad tag, nothing to change, or an archive the backup
/// folder's manifest does not know; the errors of [`locate_backup`].
pub fn run(
    ctx: &Context,
    archive: &str,
    change: &Change,
    printer: &mut Printer,
) -> Result<Outcome> {
    check(change)?;
    if ctx.backup_dir.is_dir() {
        super::adopt::upgrade(&ctx.backup_dir, printer)?;
    }
    let located = locate_backup(ctx, archive)?;
    let entry = catalogued(ctx, &located, archive)?;
    if let Change::Remove { tags, pin, .. } = change {
        // A typo in `untag` changes nothing: say so rather than report success in silence.
        for tag in tags.iter().filter(|t| !entry.tags.contains(t)) {
            printer.warn(format_args!("{} has no tag {tag}", entry.backup_file));
        }
        if *pin && !entry.pin {
            printer.warn(format_args!("{} is not pinned", entry.backup_file));
        }
    }
    if let Change::Add { tags, pin, .. } = change {
        // Kept by retention or not, a backup whose file is gone holds nothing to protect.
        if (*pin || !tags.is_empty()) && std::fs::symlink_metadata(&located.path).is_err() {
            printer.warn(format_args!(
                "the archive {} is missing: keeping its entry protects nothing (`resbak list` \
                 says missing)",
                entry.backup_file
            ));
        }
    }
    let updated = Manifest::update(&ctx.backup_dir, |manifest| {
        let target = manifest
            .backups
            .iter_mut()
            .find(|e| e.backup_file == entry.backup_file && e.sha256 == entry.sha256)
            .ok_or_else(|| Error::UnknownBackup {
                name: entry.backup_file.clone(),
                dir: ctx.backup_dir.clone(),
            })?;
        apply(target, change);
        Ok(target.clone())
    })?;
    printer.json_report(&updated)?;
    printer.line(format_args!(
        "{}: {}",
        updated.backup_file,
        labels(&updated)
    ))?;
    Ok(Outcome::Clean)
}

/// The entry of a located archive, which must be in the backup folder's manifest.
pub(crate) fn catalogued(ctx: &Context, located: &Located, arg: &str) -> Result<Entry> {
    let in_folder = located.path.parent().is_some_and(|p| {
        super::same_dir(
            if p.as_os_str().is_empty() {
                ".".as_ref()
            } else {
                p
            },
            &ctx.backup_dir,
        )
    });
    match (&located.entry, in_folder) {
        (Some(entry), true) => Ok(entry.clone()),
        _ => Err(Error::InvalidArgument {
            message: format!(
                "{arg:?} is not a backup in the catalogue of {}; only catalogued backups carry tags",
                ctx.backup_dir.display()
            ),
        }),
    }
}

/// Refuses a change that changes nothing or a tag that is not one plain word.
fn check(change: &Change) -> Result<()> {
    let (tags, nothing) = match change {
        Change::Add { tags, pin, note } => (tags, tags.is_empty() && !pin && note.is_none()),
        Change::Remove { tags, pin, note } => (tags, tags.is_empty() && !pin && !note),
    };
    if nothing {
        return Err(Error::InvalidArgument {
            message: "nothing to change: name tags, or use --pin or --note".into(),
        });
    }
    check_tags(tags)
}

/// Refuses a tag that is not one plain word (no spaces, commas or control characters).
pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    let bad = |t: &&String| {
        t.is_empty()
            || t.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    };
    match tags.iter().find(bad) {
        Some(tag) => Err(Error::InvalidArgument {
            message: format!("invalid tag {tag:?}: a tag is one word without spaces or commas"),
        }),
        None => Ok(()),
    }
}

fn apply(entry: &mut Entry, change: &Change) {
    match change {
        Change::Add { tags, pin, note } => {
            for tag in tags {
                if !entry.tags.contains(tag) {
                    entry.tags.push(tag.clone());
                }
            }
            entry.pin |= pin;
            if let Some(note) = note {
                entry.note = Some(note.clone());
            }
        }
        Change::Remove { tags, pin, note } => {
            entry.tags.retain(|t| !tags.contains(t));
            entry.pin &= !pin;
            if *note {
                entry.note = None;
            }
        }
    }
}

/// `tags a, b; pinned; note "..."`, or `no tags`.
pub(crate) fn labels(entry: &Entry) -> String {
    let mut parts = vec![match entry.tags.is_empty() {
        true => "no tags".to_string(),
        false => format!("tags {}", entry.tags.join(", ")),
    }];
    if entry.pin {
        parts.push("pinned".into());
    }
    if let Some(note) = &entry.note {
        parts.push(format!("note {note:?}"));
    }
    parts.join("; ")
}
