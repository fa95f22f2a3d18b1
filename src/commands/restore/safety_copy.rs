//! The safety copy a forced restore makes of the folder it is about to replace: a backup of
//! everything in it, refused as a basis for replacing it when a file changed while it was read.

use super::RestoreOptions;
use crate::archive;
use crate::commands::backup::backup_folder;
use crate::commands::{Context, Printer};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use std::path::Path;

/// Backs up the folder at `dest`, which a restore of `strategy` is about to replace, as a
/// safety copy of `holder` (the strategy whose data it holds), and says so. Everything in it
/// goes in, whatever the configured excludes.
pub(super) fn safety_copy(
    ctx: &Context,
    dest: &Path,
    strategy: &str,
    holder: &str,
    opts: &RestoreOptions,
    printer: &mut Printer,
) -> Result<Entry> {
    let everything = archive::Options {
        excludes: archive::Excludes::default(),
        ..opts.archive_options.clone()
    };
    let (entry, changed, _) = backup_folder(
        ctx,
        holder,
        dest,
        &everything,
        crate::manifest::Kind::Safety.into(),
        printer,
    )?;
    // A file written while the copy was read may be in it torn or padded: that copy is not
    // enough to replace the folder with. It stays; the folder is left alone.
    if changed {
        return Err(Error::UnsafeDestination {
            path: dest.to_path_buf(),
            reason: format!(
                "files in it changed while its safety copy {} was made (named above); nothing \
                 was replaced; run the restore again once nothing writes there",
                entry.backup_file
            ),
        });
    }
    crate::interrupt::so_far(
        format!(
            "the safety copy {} was kept; {} is as it was",
            entry.backup_file,
            dest.display()
        ),
        None,
    );
    printer.line(format_args!(
        "Saved {} as safety copy {} before {}",
        dest.display(),
        ctx.backup_dir.join(&entry.backup_file).display(),
        match opts.include {
            Some(_) => "overwriting files in it",
            None => "replacing it",
        }
    ))?;
    if holder != strategy {
        printer.line(format_args!(
            "{} holds strategy {holder}; its safety copy is {}",
            dest.display(),
            entry.backup_file
        ))?;
    }
    Ok(entry)
}
