//! One module per subcommand. Each takes plain option structs (no clap types), does its work
//! through the library modules, and reports through a [`Printer`].

pub mod backup;
pub mod file;
pub mod list;
pub mod restore;
pub mod verify;

use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, Manifest};
use std::fmt::Display;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Where results and backups live.
#[derive(Debug, Clone)]
pub struct Context {
    /// Folder holding one sub-folder per strategy.
    pub results_dir: PathBuf,
    /// Folder holding the archives and `manifest.yaml`.
    pub backup_dir: PathBuf,
}

/// How a command that ran to its end turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done and found intact.
    Clean,
    /// The command ran, but a check found missing or damaged data.
    ProblemsFound,
}

/// Where commands write: reports to standard output, warnings to standard error.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    /// Prints reports to `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Printer { out }
    }

    /// Writes one line of the report.
    pub fn line(&mut self, text: impl Display) -> Result<()> {
        writeln!(self.out, "{text}").at("write to", Path::new("standard output"))
    }

    /// Writes a warning to standard error.
    pub fn warn(&mut self, text: impl Display) {
        eprintln!("resbak: warning: {text}");
    }
}

/// Checks that `name` is a single plain folder name.
pub fn check_strategy_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None) if part == name && !name.contains('\0') => Ok(()),
        _ => Err(Error::InvalidStrategy {
            name: name.to_string(),
        }),
    }
}

/// An archive named on the command line: its file and, if the manifest beside it knows it,
/// its entry.
pub struct Located {
    /// Path of the archive file.
    pub path: PathBuf,
    /// Its manifest entry, if any.
    pub entry: Option<Entry>,
}

/// Finds the archive `arg` names: a name from `list` (with or without `.tar.gz`) in the backup
/// folder, else a path. The entry comes from the manifest in the archive's own folder.
pub fn locate(ctx: &Context, arg: &str) -> Result<Located> {
    let by_name = !arg.contains('/');
    let candidates: Vec<PathBuf> = if by_name {
        let in_backups = [arg.to_string(), format!("{arg}.tar.gz")].map(|n| ctx.backup_dir.join(n));
        in_backups.into_iter().chain([PathBuf::from(arg)]).collect()
    } else {
        vec![PathBuf::from(arg)]
    };
    let manifest_of = |path: &Path| -> Result<Option<Entry>> {
        let dir = crate::atomic::parent_dir(path);
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let manifest = Manifest::load(dir)?;
        Ok(file.and_then(|f| manifest.find(&f).cloned()))
    };
    for path in candidates {
        let entry = manifest_of(&path)?;
        if entry.is_some() || path.is_file() {
            return Ok(Located { path, entry });
        }
    }
    Err(Error::UnknownBackup {
        name: arg.to_string(),
        dir: ctx.backup_dir.clone(),
    })
}

/// Strategy folders present in `results_dir`, sorted; empty if it does not exist.
pub fn strategies(results_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(results_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `bytes` as a human-readable size.
pub fn human_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_must_be_one_plain_component() {
        assert!(check_strategy_name("btc_sma_cross").is_ok());
        assert!(check_strategy_name(".hidden").is_ok());
        for bad in ["", ".", "..", "a/b", "/abs", "a/", "./a", "a\0b"] {
            assert!(check_strategy_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
