//! What a name on the command line means: checked strategy names, resbak archive names, the
//! archive or `STRATEGY~N` pick a name locates, and close names to suggest when none matches.

use super::{Context, same_dir};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};
use std::fmt::Display;
use std::path::{Component, Path, PathBuf};

/// Checks that `name` is a single plain folder name.
pub fn check_strategy_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None)
            if part == name && !name.contains(char::is_control) =>
        {
            Ok(())
        }
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
    /// How it was picked when the command line named a strategy instead of an archive.
    pub picked: Option<Pick>,
}

/// A backup picked by strategy: `STRATEGY` (its newest regular backup) or `STRATEGY~N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The strategy named.
    pub strategy: String,
    /// How many regular backups before the newest: 0 for the newest.
    pub back: usize,
}

impl Display for Pick {
    /// `newest backup of btc` or `2 before the newest backup of btc`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.back {
            0 => write!(f, "newest backup of {}", self.strategy),
            n => write!(f, "{n} before the newest backup of {}", self.strategy),
        }
    }
}

impl Located {
    /// The archive's strategy: from its manifest entry, else its top folder; checked to be a
    /// plain name.
    pub fn strategy(&self) -> Result<String> {
        match &self.entry {
            Some(entry) => {
                check_strategy_name(&entry.strategy)?;
                Ok(entry.strategy.clone())
            }
            None => strategy_of(&self.path),
        }
    }

    /// The archive's file name, and how it was picked if a strategy named it:
    /// `btc_20261122_012255.tar.gz (newest backup of btc)`.
    pub fn describe(&self) -> String {
        let file = self.path.file_name().unwrap_or(self.path.as_os_str());
        match &self.picked {
            Some(pick) => format!("{} ({pick})", file.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// The strategy of the archive file at `path`: its top folder, checked to be a plain name.
pub fn strategy_of(path: &Path) -> Result<String> {
    let file = crate::archive::open_file(path)?;
    let strategy = crate::archive::top_folder(std::io::BufReader::new(file))
        .map_err(|e| Error::corrupt(path, e))?
        .ok_or_else(|| Error::corrupt(path, "the archive is empty"))?;
    check_strategy_name(&strategy)?;
    Ok(strategy)
}

/// Finds the archive `arg` names: a name from `list` (with or without `.tar.gz`) in the backup
/// folder, else a path. The entry comes from the manifest in the archive's own folder.
pub fn locate(ctx: &Context, arg: &str) -> Result<Located> {
    if let Some(located) = in_backup_folder(ctx, arg)? {
        return Ok(located);
    }
    match found_at(ctx, PathBuf::from(arg))? {
        Some(located) => Ok(located),
        None => Err(Error::UnknownBackup {
            name: arg.to_string(),
            dir: ctx.backup_dir.clone(),
        }),
    }
}

/// Finds the backup `arg` names for `restore` and `diff`, trying in turn:
///
/// 1. an archive name from `list` (with or without `.tar.gz`) in the backup folder, so an
///    archive name always wins over a strategy name;
/// 2. `STRATEGY`: the strategy's newest regular backup in the backup folder's manifest, or
///    `STRATEGY~N`: the Nth regular backup before that (`~0` is the newest, as in git).
///    Safety copies are never picked this way;
/// 3. a path to an archive file (any argument with a `/` is only ever a path).
///
/// # Errors
/// [`Error::BackupOutOfRange`] when `STRATEGY~N` goes past the oldest backup,
/// [`Error::NoRegularBackup`] when the strategy has only safety copies,
/// [`Error::MissingFolder`] when nothing matches and the backup folder does not exist, and
/// [`Error::UnknownName`] with close archive and strategy names when it does.
pub fn locate_backup(ctx: &Context, arg: &str) -> Result<Located> {
    if arg.contains('/') {
        return locate(ctx, arg);
    }
    if let Some(located) = in_backup_folder(ctx, arg)? {
        return Ok(located);
    }
    let manifest = Manifest::load(&ctx.backup_dir)?;
    if let Some(picked) = pick(&ctx.backup_dir, &manifest, arg) {
        return picked;
    }
    if let Some(located) = found_at(ctx, PathBuf::from(arg))? {
        return Ok(located);
    }
    Err(unknown_name(arg, &manifest, &ctx.backup_dir))
}

/// `arg` as `STRATEGY` or `STRATEGY~N`: the name and N (0 without `~N`). An N too large to
/// count is as out of range as it looks.
fn split_pick(arg: &str) -> (&str, usize) {
    match arg.rsplit_once('~') {
        Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (name, n.parse().unwrap_or(usize::MAX))
        }
        _ => (arg, 0),
    }
}

/// The backup `arg` picks as `STRATEGY` or `STRATEGY~N`, or `None` when no catalogued backup
/// has that strategy.
pub(crate) fn pick(backup_dir: &Path, manifest: &Manifest, arg: &str) -> Option<Result<Located>> {
    // A strategy whose name ends like `~N` is that strategy, as `backup` and `list` take it.
    let literal = manifest.backups.iter().any(|e| e.strategy == arg);
    let (strategy, back) = if literal { (arg, 0) } else { split_pick(arg) };
    let sound = |e: &&Entry| e.strategy == strategy && e.is_sound();
    let catalogued = manifest.backups.iter().filter(sound).count();
    if catalogued == 0 {
        return None;
    }
    let regular: Vec<&Entry> = manifest
        .regular_newest_first(strategy)
        .into_iter()
        .filter(|e| e.is_sound())
        .collect();
    let dir = backup_dir.to_path_buf();
    let strategy = strategy.to_string();
    let Some(entry) = regular.get(back) else {
        return Some(Err(match regular.len() {
            0 => Error::NoRegularBackup {
                strategy,
                safety: catalogued,
                dir,
            },
            n => Error::BackupOutOfRange {
                name: arg.to_string(),
                strategy,
                regular: n,
                dir,
            },
        }));
    };
    Some(Ok(Located {
        path: backup_dir.join(&entry.backup_file),
        entry: Some((*entry).clone()),
        picked: Some(Pick { strategy, back }),
    }))
}

/// The error for a backup or strategy name nothing matches: the backup folder is missing, or
/// close archive and strategy names from the manifest (for `NAME~N`, close strategies with the
/// same `~N`).
pub fn unknown_name(name: &str, manifest: &Manifest, backup_dir: &Path) -> Error {
    if !backup_dir.is_dir() {
        return Error::missing_folder("backup", backup_dir);
    }
    let strategies = manifest.backups.iter().map(|e| e.strategy.clone());
    let known: Vec<String> = match name.rsplit_once('~') {
        Some((strategy, n)) if split_pick(name).0 == strategy => {
            strategies.map(|s| format!("{s}~{n}")).collect()
        }
        _ => {
            let stems = manifest
                .backups
                .iter()
                .filter_map(|e| e.backup_file.strip_suffix(".tar.gz"))
                .map(str::to_string);
            strategies.chain(stems).collect()
        }
    };
    unknown("backup or strategy", name, &known, backup_dir)
}

/// Checks that `name` is a plain strategy name and one of `known`; else
/// [`Error::UnknownName`] for it in `place`, with close names as suggestions.
pub fn check_known<S: AsRef<str>>(name: &str, known: &[S], place: &Path) -> Result<()> {
    check_strategy_name(name)?;
    if known.iter().any(|k| k.as_ref() == name) {
        return Ok(());
    }
    Err(unknown("strategy", name, known, place))
}

/// [`Error::UnknownName`]: no `what` named `name` in `place`, suggesting close names of `known`
/// (compared without a `.tar.gz` suffix).
fn unknown<S: AsRef<str>>(what: &'static str, name: &str, known: &[S], place: &Path) -> Error {
    Error::UnknownName {
        what,
        name: name.to_string(),
        dir: place.to_path_buf(),
        suggestions: suggest(name.strip_suffix(".tar.gz").unwrap_or(name), known),
    }
}

/// The archive `arg` names in the backup folder (`arg` or `arg.tar.gz`), if any; never for an
/// `arg` holding a `/`.
fn in_backup_folder(ctx: &Context, arg: &str) -> Result<Option<Located>> {
    if arg.contains('/') {
        return Ok(None);
    }
    for name in [arg.to_string(), format!("{arg}.tar.gz")] {
        if let Some(located) = found_at(ctx, ctx.backup_dir.join(name))? {
            return Ok(Some(located));
        }
    }
    Ok(None)
}

/// The archive at `path` if the manifest beside it lists it or the file exists. The backup
/// folder's manifest must load; a manifest beside an archive elsewhere is used only if it does
/// (a foreign or damaged one just leaves the archive uncatalogued).
fn found_at(ctx: &Context, path: PathBuf) -> Result<Option<Located>> {
    let dir = crate::atomic::parent_dir(&path);
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let manifest = match Manifest::load(dir) {
        Ok(manifest) => Some(manifest),
        Err(e) if same_dir(dir, &ctx.backup_dir) => return Err(e),
        Err(_) => None,
    };
    let entry = manifest.and_then(|m| file.and_then(|f| m.find(&f).cloned()));
    Ok((entry.is_some() || path.is_file()).then_some(Located {
        path,
        entry,
        picked: None,
    }))
}

pub use crate::manifest::name::{ArchiveName, SAFETY_MARK};

/// Up to three of `candidates` close to `name` (edit distance, a swap of two neighbours
/// counting as one edit, at most a third of its length and at least 1), closest first, for
/// "did you mean" hints.
pub fn suggest<S: AsRef<str>>(name: &str, candidates: &[S]) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(1);
    let mut close: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (strsim::osa_distance(name, c.as_ref()), c.as_ref()))
        .filter(|&(d, c)| d <= limit && c != name)
        .collect();
    // Else a name typed short (`btc_sma` for `btc_sma_cross`): the names it begins.
    if close.is_empty() && name.chars().count() >= 3 {
        close = candidates
            .iter()
            .map(|c| (c.as_ref().len(), c.as_ref()))
            .filter(|&(_, c)| c.starts_with(name) && c != name)
            .collect();
    }
    close.sort();
    close.dedup();
    close
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_parsed_back() {
        let parsed = ArchiveName::parse("btc_sma_cross_20261122_004306_2.tar.gz").unwrap();
        assert_eq!(parsed.strategy, "btc_sma_cross");
        assert_eq!(parsed.timestamp, "20261122_004306");
        assert_eq!(
            parsed.created.to_rfc3339(),
            "2026-11-22T00:43:06.000000001+00:00"
        );
        assert!(!parsed.safety);
        assert_eq!(parsed.n, 2);
        let copy = ArchiveName::parse("btc_sma_cross_20261122_004306_2.safety.tar.gz").unwrap();
        assert_eq!(
            (copy.strategy.as_str(), copy.safety),
            ("btc_sma_cross", true)
        );
        assert_eq!(copy.created, parsed.created);
        let plain = ArchiveName::parse("eth_20261122_004306.tar.gz").unwrap();
        assert_eq!((plain.strategy.as_str(), plain.n), ("eth", 1));
        assert!(plain.created < parsed.created);
        assert_eq!(ArchiveName::parse("random.tar.gz"), None);
        assert_eq!(
            ArchiveName::parse("s_20261399_004306.tar.gz"),
            None,
            "not a date"
        );
    }

    #[test]
    fn suggestions_are_close_names_closest_first() {
        let names = ["btc_sma_cross", "btc_sma_crash", "eth_rsi", "btc_sma_cross"];
        assert_eq!(
            suggest("btc_sma_cros", &names),
            ["btc_sma_cross", "btc_sma_crash"]
        );
        assert_eq!(suggest("eth_rs", &names), ["eth_rsi"]);
        assert_eq!(
            suggest("btc_sma", &names),
            ["btc_sma_crash", "btc_sma_cross"]
        );
        assert_eq!(suggest("btc_sma_cros", &names)[0], "btc_sma_cross");
        assert!(suggest("zzz", &names).is_empty());
        assert!(
            suggest("eth_rsi", &names).is_empty(),
            "an exact name is no hint"
        );
        assert_eq!(
            suggest("hgue", &["huge", "hug"]),
            ["huge"],
            "a swap is one edit"
        );
    }

    #[test]
    fn unknown_names_suggest_close_known_ones() {
        let place = Path::new("backups");
        assert!(check_known("btc", &["eth", "btc"], place).is_ok());
        let err = check_known("btcc", &["eth", "btc"], place).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownName { what: "strategy", suggestions, .. } if suggestions == &["btc"]),
            "{err:?}"
        );
        assert!(matches!(
            check_known("a/b", &["a/b"], place),
            Err(Error::InvalidStrategy { .. })
        ));
        let mut manifest = Manifest::default();
        let dir = tempfile::tempdir().unwrap();
        let entry: Entry = serde_yaml::from_str(
            "{strategy: btc, timestamp: '20261122_012255', backup_file: btc_20261122_012255.tar.gz, \
             size: 1, sha256: x, files: 1, bytes: 1, created: '2026-11-22T01:22:55Z'}",
        )
        .unwrap();
        manifest.backups.push(entry);
        let hint = |name: &str| match unknown_name(name, &manifest, dir.path()) {
            Error::UnknownName { suggestions, .. } => suggestions,
            other => panic!("{other:?}"),
        };
        assert_eq!(hint("btd~2"), ["btc~2"]);
        assert_eq!(hint("btc_20261122_012256.tar.gz"), ["btc_20261122_012255"]);
        assert!(matches!(
            unknown_name("btd", &manifest, &dir.path().join("none")),
            Error::MissingFolder { what: "backup", .. }
        ));
    }

    #[test]
    fn strategy_names_must_be_one_plain_component() {
        assert!(check_strategy_name("btc_sma_cross").is_ok());
        assert!(check_strategy_name(".hidden").is_ok());
        for bad in [
            "", ".", "..", "a/b", "/abs", "a/", "./a", "a\0b", "a\nb", "a\tb",
        ] {
            assert!(check_strategy_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
