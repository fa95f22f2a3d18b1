//! Settings and where they come from.
//!
//! Each setting is taken from the first of: a command-line flag, an environment variable, the
//! configuration file (the file named with `--config`, else `resbak.toml` in the current folder
//! or the nearest parent folder that has one), and the built-in default. Relative paths in the
//! file are relative to the file's folder, and so are the default folders when the file was
//! found in a parent folder; flags and environment variables are relative to the current folder.

use crate::error::{Error, Result};
use crate::manifest::legacy::Zone;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the configuration file looked for in the current folder and its parents.
pub const FILE_NAME: &str = "resbak.toml";
/// Environment variable for the results folder.
pub const ENV_RESULTS_DIR: &str = "RESBAK_RESULTS_DIR";
/// Environment variable for the backup folder.
pub const ENV_BACKUP_DIR: &str = "RESBAK_BACKUP_DIR";
/// Backups kept per strategy by `prune` when no count is configured.
pub const DEFAULT_KEEP: usize = 10;
/// gzip level when none is configured.
pub const DEFAULT_LEVEL: u32 = 6;

/// The configuration file's contents. Unknown keys are an error, so typos do not go unnoticed.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Folder holding one sub-folder per strategy.
    pub results_dir: Option<PathBuf>,
    /// Folder holding the archives and manifest.
    pub backup_dir: Option<PathBuf>,
    /// Backups kept per strategy; when set, `backup` also prunes after each backup.
    pub keep: Option<usize>,
    /// gzip level, 0-9.
    pub level: Option<u32>,
    /// Glob patterns left out of every backup.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Off-site copies: `[remote.NAME]` tables.
    #[serde(default)]
    pub remote: BTreeMap<String, RemoteConfig>,
    /// The zone the Python scripts' naive times are read in: an IANA name, an offset, or
    /// `local` (the machine's zone, the default).
    pub timezone: Option<String>,
    /// Keep the newest backup of each of the last N days with backups (UTC).
    pub keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks with backups (UTC).
    pub keep_weekly: Option<usize>,
    /// Keep the newest backup of each of the last N months with backups (UTC).
    pub keep_monthly: Option<usize>,
    /// Headline metrics: the `[metrics]` table.
    #[serde(default)]
    pub metrics: crate::metrics::Sources,
    /// Remotes each new backup is pushed to right after it lands.
    #[serde(default)]
    pub push: Vec<String>,
}

/// One `[remote.NAME]` table: an S3-compatible bucket that holds off-site copies.
///
/// Credentials are never read from the file: they come from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Endpoint URL, such as `http://127.0.0.1:3900`; AWS S3 when omitted.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (a folder inside the bucket); the bucket's top when omitted.
    pub prefix: Option<String>,
    /// Region; `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1` when omitted.
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint (for a server on the local machine or network).
    #[serde(default)]
    pub allow_http: bool,
    /// How long a failing request is retried before giving up, in seconds (default 60).
    pub retry_timeout_secs: Option<u64>,
    /// `false` to push readable archives to a remote without recipients (required then).
    pub encrypt: Option<bool>,
    /// age recipients (`age1...`, `ssh-ed25519 ...`, `ssh-rsa ...`) pushes encrypt to.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A file of recipients, one a line (`#` comments).
    pub recipients_file: Option<PathBuf>,
    /// The age identity (or unprotected ssh key) that decrypts; `~/` is the home folder.
    pub identity_file: Option<PathBuf>,
    /// A command whose standard output is the identity, such as `pass show resbak`.
    pub identity_command: Option<String>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(&'static str),
    /// The configuration file.
    File(PathBuf),
    /// resbak's default.
    Default,
}

impl From<Source> for String {
    fn from(source: Source) -> String {
        source.to_string()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "command line"),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// A value and its source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// Values given on the command line (`None` when the flag was not used).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--results-dir`.
    pub results_dir: Option<PathBuf>,
    /// `--backup-dir`.
    pub backup_dir: Option<PathBuf>,
    /// `--keep`.
    pub keep: Option<usize>,
    /// `--level`.
    pub level: Option<u32>,
    /// `--exclude`, repeated.
    pub exclude: Vec<String>,
    /// `--timezone`.
    pub timezone: Option<String>,
    /// `--keep-daily`, `--keep-weekly`, `--keep-monthly`.
    pub calendar: crate::retention::Calendar,
}

/// The effective settings; the JSON shape of `config --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// Folder holding one sub-folder per strategy.
    pub results_dir: Setting<PathBuf>,
    /// Folder holding the archives and manifest.
    pub backup_dir: Setting<PathBuf>,
    /// Backups kept per strategy; `None` when only the default applies.
    pub keep: Setting<Option<usize>>,
    /// gzip level.
    pub level: Setting<u32>,
    /// Exclude patterns: those from the file, then those from flags.
    pub exclude: Vec<String>,
    /// Remotes configured in the file, by name.
    pub remotes: BTreeMap<String, RemoteConfig>,
    /// The zone the Python scripts' naive times are read in (see [`Zone`]).
    pub timezone: Setting<String>,
    /// Time-based retention: each count from its flag, else the file.
    pub calendar: crate::retention::Calendar,
    /// The `[metrics]` table.
    pub metrics: crate::metrics::Sources,
    /// Remotes `backup` pushes each new backup to (`push` in the file).
    pub push: Vec<String>,
}

impl Settings {
    /// Resolves settings from flags, the environment (through `env`) and the configuration file.
    ///
    /// # Errors
    /// [`Error::Config`] when the file named with `--config` is missing, or a file does not parse.
    pub fn resolve(flags: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let (file, config) = load(flags.config.as_deref())?;
        let timezone = pick(
            flags.timezone.clone(),
            None,
            config
                .timezone
                .clone()
                .map(|z| (z, Source::File(file.clone().unwrap_or_default()))),
            "local".to_string(),
        );
        if let Err(message) = timezone.value.parse::<Zone>() {
            let path = match &timezone.source {
                Source::File(path) => path.clone(),
                _ => PathBuf::from("--timezone"),
            };
            return Err(Error::Config { path, message });
        }
        let base = file
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty());
        let from_file =
            |v: &Option<PathBuf>| v.as_ref().map(|p| base.map_or(p.clone(), |b| b.join(p)));
        let src = || Source::File(file.clone().unwrap_or_default());
        // A file found in a parent folder marks the project: the default folders are beside it.
        let found_base = base.filter(|_| flags.config.is_none());
        let path =
            |flag: &Option<PathBuf>, var: &'static str, conf: Option<PathBuf>, default: &str| {
                pick(
                    flag.clone(),
                    env(var)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                        .map(|v| (v, var)),
                    conf.map(|v| (v, src())),
                    found_base.map_or_else(|| PathBuf::from(default), |b| b.join(default)),
                )
            };
        Ok(Settings {
            results_dir: path(
                &flags.results_dir,
                ENV_RESULTS_DIR,
                from_file(&config.results_dir),
                "results",
            ),
            backup_dir: path(
                &flags.backup_dir,
                ENV_BACKUP_DIR,
                from_file(&config.backup_dir),
                "backups",
            ),
            keep: pick(
                flags.keep.map(Some),
                None,
                config.keep.map(|k| (Some(k), src())),
                None,
            ),
            level: pick(
                flags.level,
                None,
                config.level.map(|l| (l, src())),
                DEFAULT_LEVEL,
            ),
            exclude: config
                .exclude
                .iter()
                .chain(&flags.exclude)
                .cloned()
                .collect(),
            timezone,
            calendar: crate::retention::Calendar {
                daily: flags.calendar.daily.or(config.keep_daily),
                weekly: flags.calendar.weekly.or(config.keep_weekly),
                monthly: flags.calendar.monthly.or(config.keep_monthly),
            },
            metrics: config.metrics,
            push: config.push,
            remotes: config
                .remote
                .into_iter()
                .map(|(name, mut r)| {
                    // Key files are relative to this file's folder; `~/` is left for later.
                    let key_file = |v: &Option<PathBuf>| match v {
                        Some(p) if p.starts_with("~") => v.clone(),
                        _ => from_file(v),
                    };
                    r.recipients_file = key_file(&r.recipients_file);
                    r.identity_file = key_file(&r.identity_file);
                    (name, r)
                })
                .collect(),
            file,
        })
    }

    /// The zone the Python scripts' naive times are read in: the one configured, else the
    /// machine's (see [`Zone::machine`], which may fail on a `TZ` that names no zone).
    pub fn zone(&self, tz: Option<&str>) -> std::result::Result<Zone, String> {
        match self.timezone.value.parse()? {
            Zone::Local => Zone::machine(tz),
            zone => Ok(zone),
        }
    }

    /// The configuration of remote `name`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the remotes that are configured when `name` is not one of them.
    pub fn remote(&self, name: &str) -> Result<&RemoteConfig> {
        self.remotes.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
            let message = if known.is_empty() {
                format!("no remote {name:?}: no [remote.NAME] table is configured")
            } else {
                format!("no remote {name:?}; configured: {}", known.join(", "))
            };
            Error::Config {
                path: self
                    .file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(FILE_NAME)),
                message,
            }
        })
    }
}

fn pick<T>(
    flag: Option<T>,
    env: Option<(T, &'static str)>,
    file: Option<(T, Source)>,
    default: T,
) -> Setting<T> {
    let setting = |value, source| Setting { value, source };
    match (flag, env, file) {
        (Some(v), _, _) => setting(v, Source::Flag),
        (None, Some((v, var)), _) => setting(v, Source::Env(var)),
        (None, None, Some((v, source))) => setting(v, source),
        (None, None, None) => setting(default, Source::Default),
    }
}

/// Reads the file named with `--config`, else the nearest `resbak.toml` (see [`discover`]).
fn load(named: Option<&Path>) -> Result<(Option<PathBuf>, FileConfig)> {
    let Some(path) = named.map(Path::to_path_buf).or_else(discover) else {
        return Ok((None, FileConfig::default()));
    };
    let bad = |message: String| Error::Config {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let config: FileConfig = toml::from_str(&text).map_err(|e| {
        let message = e.message().trim_end();
        bad(match e.span() {
            Some(span) => {
                let (line, column) = line_and_column(&text, span.start);
                format!("line {line}, column {column}: {message}")
            }
            None => message.to_string(),
        })
    })?;
    if config.level.is_some_and(|l| l > 9) {
        return Err(bad("level must be between 0 and 9".into()));
    }
    let counts = [
        ("keep", config.keep),
        ("keep_daily", config.keep_daily),
        ("keep_weekly", config.keep_weekly),
        ("keep_monthly", config.keep_monthly),
    ];
    if let Some((name, _)) = counts.iter().find(|(_, n)| *n == Some(0)) {
        return Err(bad(format!("{name} must be at least 1")));
    }
    if let Some((name, _)) = config.remote.iter().find(|(_, r)| r.bucket.is_empty()) {
        return Err(bad(format!("remote {name:?}: bucket must not be empty")));
    }
    if let Some(name) = config.push.iter().find(|n| !config.remote.contains_key(*n)) {
        return Err(bad(format!(
            "push names {name:?}, which has no [remote.{name}] table"
        )));
    }
    Ok((Some(path), config))
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// `resbak.toml` in the current folder (as a relative path), else in the nearest parent folder
/// that has one (as an absolute path), as cargo and git look for theirs.
pub fn discover() -> Option<PathBuf> {
    if Path::new(FILE_NAME).is_file() {
        return Some(PathBuf::from(FILE_NAME));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .skip(1)
        .map(|dir| dir.join(FILE_NAME))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resbak.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let (dir, path) =
            with_file("results_dir = \"r_file\"\nbackup_dir = \"b_file\"\nkeep = 4\n");
        let env = |var: &str| {
            (var == ENV_RESULTS_DIR || var == ENV_BACKUP_DIR).then(|| format!("{var}_env"))
        };
        let mut flags = Overrides {
            config: Some(path.clone()),
            results_dir: Some("r_flag".into()),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, env).unwrap();
        assert_eq!(s.results_dir.value, PathBuf::from("r_flag"));
        assert_eq!(s.results_dir.source, Source::Flag);
        assert_eq!(s.backup_dir.value, PathBuf::from("RESBAK_BACKUP_DIR_env"));
        assert_eq!(s.backup_dir.source, Source::Env(ENV_BACKUP_DIR));
        flags.results_dir = None;
        let s = Settings::resolve(&flags, |_| None).unwrap();
        assert_eq!(s.results_dir.value, dir.path().join("r_file"));
        assert_eq!(s.keep.value, Some(4));
        assert_eq!(s.keep.source, Source::File(path));
        assert_eq!(
            s.level,
            Setting {
                value: DEFAULT_LEVEL,
                source: Source::Default
            }
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let flags = Overrides {
            config: None,
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, |_| None).unwrap();
        assert_eq!(s.file, None, "no resbak.toml in the package root");
        assert_eq!(s.backup_dir.value, PathBuf::from("backups"));
        assert_eq!(s.keep.value, None);
    }

    #[test]
    fn remotes_are_read_and_unknown_names_list_the_configured_ones() {
        let (_dir, path) = with_file(
            "[remote.garage]\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"b\"\n\
             allow_http = true\n\n[remote.aws]\nbucket = \"c\"\nprefix = \"lab\"\n",
        );
        let flags = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, |_| None).unwrap();
        let garage = s.remote("garage").unwrap();
        assert!(garage.allow_http);
        assert_eq!(garage.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s.remote("aws").unwrap().prefix.as_deref(), Some("lab"));
        let err = s.remote("nas").unwrap_err().to_string();
        assert!(
            err.contains("no remote \"nas\"; configured: aws, garage"),
            "{err}"
        );
        let bad = [
            "[remote.r]\nbucket = \"b\"\nsecret = \"x\"\n",
            "[remote.r]\nendpoint = \"http://x\"\n",
            "[remote.r]\nbucket = \"\"\n",
        ];
        for text in bad {
            let (_dir, path) = with_file(text);
            let flags = Overrides {
                config: Some(path),
                ..Overrides::default()
            };
            assert!(Settings::resolve(&flags, |_| None).is_err(), "{text}");
        }
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        for text in ["kepp = 3\n", "keep = 0\n", "level = 12\n", "keep = \"x\"\n"] {
            let (_dir, path) = with_file(text);
            let flags = Overrides {
                config: Some(path),
                ..Overrides::default()
            };
            assert!(Settings::resolve(&flags, |_| None).is_err(), "{text}");
        }
    }
}
