//! `verify --remote` on the index pushed with a backup: the object is listed with its recorded
//! size and hashes to its recorded SHA-256 (no key needed); with `--deep` and a key, an
//! encrypted index is decrypted too and must hash to the entry's `index_sha256`. A backup
//! pushed without an index has nothing to check here.

use super::{Problem, ProblemKind};
use crate::checksum::HashingReader;
use crate::remote::{Catalogue, Identities, Remote, Sidecar};

/// Checks the index object of `sidecar`, if it records one; `keys` only for a deep check.
pub(super) fn check(
    remote: &Remote,
    catalogue: &Catalogue,
    sidecar: &Sidecar,
    keys: Option<&Identities>,
) -> crate::error::Result<Result<(), Problem>> {
    let (Some(object), Some(want)) = (sidecar.index_object(), &sidecar.index) else {
        return Ok(Ok(()));
    };
    let problem = |kind, message: String| Ok(Err(Problem::new(kind, message)));
    match catalogue.index_objects.get(&object) {
        None => {
            return problem(
                ProblemKind::Missing,
                format!("index object {object} is missing"),
            );
        }
        Some(&found) if found != want.size => {
            let message = format!("index object is {found} bytes, entry says {}", want.size);
            return problem(ProblemKind::Size, message);
        }
        Some(_) => {}
    }
    let sealed = sidecar.sealed.is_some();
    let (plain, stored) =
        remote.read_object(&object, sealed, keys, |r| HashingReader::new(r).finish())?;
    let unreadable = |e: std::io::Error| format!("index object cannot be read: {e}");
    let stored = match stored {
        Ok(sum) => sum,
        Err(e) => return problem(ProblemKind::Unreadable, unreadable(e)),
    };
    if stored.sha256 != want.sha256 {
        let message = format!(
            "index object SHA-256 mismatch: entry {}, object {}",
            want.sha256, stored.sha256
        );
        return problem(ProblemKind::Checksum, message);
    }
    if sealed && keys.is_none() {
        return Ok(Ok(()));
    }
    let plain = match plain {
        Ok(sum) => sum,
        Err(e) => return problem(ProblemKind::Unreadable, unreadable(e)),
    };
    match &sidecar.entry.index_sha256 {
        Some(sha) if *sha != plain.sha256 => {
            let message = format!(
                "index SHA-256 mismatch: entry {sha}, index {}",
                plain.sha256
            );
            problem(ProblemKind::Checksum, message)
        }
        _ => Ok(Ok(())),
    }
}
