//! `resbak key generate`: a new age identity for an encrypted remote.

use super::{Outcome, Printer};
use crate::error::Result;
use crate::remote::generate_file;
use std::path::PathBuf;

/// What `key generate --json` reports.
#[derive(Debug, serde::Serialize)]
struct Generated {
    /// The public key, for `recipients`.
    recipient: String,
    /// The identity file written.
    file: PathBuf,
}

/// Writes a new identity to `file` (mode 0600, never over an existing file) and prints its
/// recipient; without `file`, prints the identity itself.
pub fn generate(file: Option<PathBuf>, printer: &mut Printer) -> Result<Outcome> {
    let Some(file) = file else {
        let (text, _) = crate::remote::generate_identity();
        printer.product(text.trim_end());
        return Ok(Outcome::Clean);
    };
    let recipient = generate_file(&file)?;
    printer.line(format_args!("Wrote a new identity to {}", file.display()))?;
    printer.line(format_args!("Public key: {recipient}"))?;
    printer.hint(format_args!(
        "keep a second copy of {} somewhere safe: without it the encrypted copies cannot be read",
        file.display()
    ));
    printer.json_report(&Generated { recipient, file })?;
    Ok(Outcome::Clean)
}
