//! The command line, as clap types. They stay here: [`crate::run`] converts them into the plain
//! option structs the commands take.

// These doc comments are the command-line help, where <STRATEGY> is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Safe, verifiable tar.gz backups of strategy results folders.
#[derive(Debug, Parser)]
#[command(
    name = "resbak",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Start with: resbak backup <STRATEGY>, then resbak list and resbak verify.\nExit codes: 0 ok, 1 a check found a problem, 2 usage or operational error."
)]
pub struct Cli {
    /// Folder holding one sub-folder per strategy [env: RESBAK_RESULTS_DIR] [default: results]
    #[arg(long, global = true, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,

    /// Folder holding the archives and manifest.yaml [env: RESBAK_BACKUP_DIR] [default: backups]
    #[arg(long, global = true, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Configuration file [default: resbak.toml in the current folder or the nearest parent]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Zone of the local times the Python scripts wrote in their manifest and archive names: an
    /// IANA name (Europe/Berlin), an offset (+01:00) or local [default: `timezone` from
    /// resbak.toml, else local]
    #[arg(long, global = true, value_name = "ZONE", allow_hyphen_values = true)]
    pub timezone: Option<String>,

    /// Print reports as JSON (see the README's "JSON output" section)
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only problems and warnings; no progress bars
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Archive results/<STRATEGY>/ into backups/<STRATEGY>_<YYYYMMDD_HHMMSS>.tar.gz.
    ///
    /// The timestamp in the name is UTC. The archive is written to a temporary file, verified,
    /// and only then renamed into place and recorded in manifest.yaml.
    #[command(after_help = "Example: resbak backup btc_sma_cross --keep 10")]
    Backup(BackupArgs),

    /// Show the catalogue: one row per backup, oldest first within each strategy.
    #[command(after_help = "Example: resbak list btc_sma_cross --json")]
    List {
        /// Only this strategy.
        strategy: Option<String>,
        /// Show this remote's catalogue beside the local one (STATUS: both, local, remote).
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// Check every archive's size and SHA-256 first (as verify does) and record the results.
        #[arg(long, conflicts_with = "remote")]
        check: bool,
        /// Add these metrics as columns, comma-separated (shortest unique names accepted).
        #[arg(long, value_name = "NAMES")]
        metrics: Option<String>,
        /// Order each strategy's backups by this metric, best first.
        #[arg(long, value_name = "METRIC")]
        sort: Option<String>,
        /// Only backups with this tag.
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },

    /// Check archives against the manifest (size and SHA-256; --deep also decompresses).
    ///
    /// Exits 0 when everything checked is intact, 1 when anything is missing or corrupt.
    #[command(after_help = "Example: resbak verify --deep btc_sma_cross")]
    Verify {
        /// Archive names or strategies; all backups when none is given.
        #[arg(value_name = "ARCHIVE|STRATEGY")]
        targets: Vec<String>,
        /// Also decompress every entry and check the entry count and byte total.
        #[arg(long)]
        deep: bool,
        /// Check the backups on this remote instead, streaming; nothing is written locally.
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
    },

    /// Restore an archive into results/<STRATEGY>/ (or --to DIR), after checking it.
    ///
    /// A strategy name picks its newest regular backup and STRATEGY~N the Nth one before that
    /// (~0 is the newest, ~1 the one before); safety copies are never picked this way. An
    /// archive name always wins over a strategy of the same name.
    #[command(
        after_help = "Example: resbak restore btc_sma_cross_20261122_004306.tar.gz\n         \
                            resbak restore btc_sma_cross       # its newest regular backup\n         \
                            resbak restore btc_sma_cross~1     # the one before that"
    )]
    Restore {
        /// Archive name from `resbak list`, STRATEGY, STRATEGY~N, or a path to a .tar.gz. With
        /// --remote, an archive name.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// Restore into this folder instead of results/<STRATEGY>.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Replace an existing destination, after backing it up as a safety copy.
        #[arg(long)]
        force: bool,
        /// Pull the archive from this remote first unless the backup folder has it.
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// Restore only paths matching GLOB (repeatable), relative to the strategy folder; a
        /// matching folder brings everything in it. Combine with --to to pick files out.
        #[arg(long, value_name = "PATH_OR_GLOB")]
        include: Vec<String>,
        /// List what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// List the entries of an archive, from its index when it has one (nothing decompressed).
    #[command(after_help = "Example: resbak ls btc_sma_cross 'runs/*'")]
    Ls {
        /// A name from `resbak list`, STRATEGY (its newest regular backup), STRATEGY~N, or a path.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// Only paths matching GLOB, relative to the strategy folder; a matching folder brings
        /// everything in it.
        #[arg(value_name = "GLOB")]
        glob: Option<String>,
    },

    /// Write one file of an archive to standard output, inflating only the part that holds it.
    #[command(after_help = "Example: resbak cat btc_sma_cross runs/fast10_slow50/trades.csv")]
    Cat {
        /// A name from `resbak list`, STRATEGY (its newest regular backup), STRATEGY~N, or a path.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// The file, relative to the strategy folder.
        path: String,
    },

    /// Show what changed between an archive and the current results (or a second archive).
    ///
    /// Compares paths, kinds, permissions and content hashes, reading the archives as streams;
    /// nothing is extracted. `+` added, `-` removed, `~` changed. Either archive may be named
    /// by strategy: STRATEGY is its newest regular backup, STRATEGY~N the Nth one before that
    /// (an archive name always wins over a strategy of the same name).
    #[command(
        after_help = "Example: resbak diff btc_sma_cross_20261122_004306.tar.gz\n         \
                            resbak diff btc_sma_cross                   # newest backup -> results folder\n         \
                            resbak diff btc_sma_cross~1 btc_sma_cross   # the one before -> newest"
    )]
    Diff {
        /// The older archive: a name from `resbak list`, STRATEGY, STRATEGY~N, or a path.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// The newer archive, named the same ways; the older one's results folder when omitted.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        other: Option<String>,
        /// Compare the headline metrics instead: METRIC, old, new, change, change%.
        #[arg(long)]
        metrics: bool,
        /// With --metrics, list unchanged metrics too.
        #[arg(long, requires = "metrics")]
        all: bool,
    },

    /// Keep the N most recent backups of each strategy (and with --keep-daily/weekly/monthly
    /// the newest of each recent day, week, month) and delete the others.
    ///
    /// "Most recent" is the manifest's creation time. The union of the rules is kept, and
    /// tagged or pinned backups always are. Every removal is printed (--dry-run prints which
    /// rules keep each backup); archives the manifest does not know are never touched; the
    /// newest backup is never removed.
    #[command(
        after_help = "Example: resbak prune btc_sma_cross --keep 5 --dry-run\n         \
                            resbak prune --keep 3 --keep-daily 7 --keep-weekly 4 --keep-monthly 12"
    )]
    Prune {
        /// Only this strategy; all strategies when omitted.
        strategy: Option<String>,
        /// Backups to keep per strategy [default: `keep` from resbak.toml, else 10 unless a
        /// --keep-daily/weekly/monthly rule is given]
        #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
        keep: Option<u64>,
        /// Print what would be removed and which rules keep each backup; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply the retention to this remote's catalogue instead.
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// Safety copies (made by restore --force) to keep per strategy [default: 3]
        #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
        keep_safety: Option<u64>,
        /// Time-based rules, kept in addition to --keep.
        #[command(flatten)]
        calendar: CalendarArgs,
    },

    /// Everything the catalogue knows about one backup, and the top of its tree.
    #[command(after_help = "Example: resbak show btc_sma_cross~1")]
    Show {
        /// Archive name from `resbak list`, STRATEGY, STRATEGY~N, or a path to a .tar.gz.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
    },

    /// Tag a backup (a tagged backup is never removed by retention), pin it, or note it.
    #[command(
        after_help = "Example: resbak tag btc_sma_cross paper-v2 --note \"submitted version\""
    )]
    Tag {
        /// Archive name from `resbak list`, STRATEGY or STRATEGY~N.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// Tags to add.
        #[arg(value_name = "TAG")]
        tags: Vec<String>,
        /// Pin it: kept by retention whatever the rules say.
        #[arg(long)]
        pin: bool,
        /// Set its note.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },

    /// Remove tags from a backup, or its pin or note.
    #[command(after_help = "Example: resbak untag btc_sma_cross~1 paper-v2")]
    Untag {
        /// Archive name from `resbak list`, STRATEGY or STRATEGY~N.
        #[arg(value_name = "ARCHIVE|STRATEGY[~N]")]
        archive: String,
        /// Tags to remove.
        #[arg(value_name = "TAG")]
        tags: Vec<String>,
        /// Remove the pin.
        #[arg(long)]
        pin: bool,
        /// Remove the note.
        #[arg(long)]
        note: bool,
    },

    /// Print the headline metrics of backups; --refresh reads them from archives made before
    /// resbak recorded them.
    #[command(after_help = "Example: resbak metrics --refresh")]
    Metrics {
        /// Archive names or strategies; every backup when none is given.
        #[arg(value_name = "ARCHIVE|STRATEGY")]
        targets: Vec<String>,
        /// Read the metrics of backups that have none recorded from their archives.
        #[arg(long)]
        refresh: bool,
    },

    /// Write one self-contained HTML page: metrics and sizes over time, and the backups.
    #[command(after_help = "Example: resbak report btc_sma_cross --html report.html")]
    Report {
        /// Only this strategy; every strategy when omitted.
        strategy: Option<String>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE", required = true)]
        html: PathBuf,
    },

    /// Rebuild manifest.yaml from the archives in the backup folder.
    ///
    /// Keeps entries that still match, adds uncatalogued archives after a full check (strategy
    /// from the top folder, time from the name), drops entries whose file is gone, and saves a
    /// damaged manifest aside first.
    #[command(after_help = "Example: resbak reindex")]
    Reindex,

    /// Print the effective settings and where each came from.
    #[command(after_help = "Example: resbak config")]
    Config,

    /// Print a shell completion script.
    #[command(after_help = "Example: resbak completions bash > /etc/bash_completion.d/resbak")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    #[command(after_help = "Example: resbak man > resbak.1 && man ./resbak.1")]
    Man,

    /// Upload backups the remote lacks, check what landed, and catalogue them there.
    ///
    /// Each archive is read back from the remote (size and SHA-256 must match the manifest)
    /// before its entry is stored beside it. Credentials come from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
    #[command(after_help = "Example: resbak push --all --remote offsite")]
    #[command(group(clap::ArgGroup::new("what").required(true).args(["targets", "all"])))]
    Push {
        /// Archive names or strategies.
        #[arg(value_name = "ARCHIVE|STRATEGY")]
        targets: Vec<String>,
        /// Every local backup.
        #[arg(long)]
        all: bool,
        /// The remote: a [remote.NAME] table in resbak.toml.
        #[arg(long, value_name = "NAME")]
        remote: String,
        /// Also read each copy the remote holds (as verify --remote does) and upload again,
        /// from an intact local archive, those it finds damaged.
        #[arg(long)]
        repair: bool,
    },

    /// Download backups from a remote into the backup folder and add them to the manifest.
    ///
    /// The download goes to a temporary file and is registered only when its size and
    /// SHA-256 match the remote entry.
    #[command(after_help = "Example: resbak pull btc_sma_cross_20261122_004306 --remote offsite")]
    Pull {
        /// Archive names from `resbak list --remote NAME`.
        #[arg(required = true, value_name = "ARCHIVE")]
        archives: Vec<String>,
        /// The remote: a [remote.NAME] table in resbak.toml.
        #[arg(long, value_name = "NAME")]
        remote: String,
    },

    /// age keys for encrypted remotes.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Timestamped copies of single files, kept in backups/ beside each file.
    ///
    /// For data files a program rewrites in place. Each copies folder keeps a SHA256SUMS.
    File(FileArgs),
}

impl Command {
    /// Whether this is a `--dry-run` of a command that writes: it must write nothing.
    pub fn is_dry_run(&self) -> bool {
        match self {
            Command::Backup(args) => args.dry_run,
            Command::Restore { dry_run, .. } | Command::Prune { dry_run, .. } => *dry_run,
            _ => false,
        }
    }
}

/// `resbak file`: the subcommand. The global folder and configuration options are defined here
/// again, hidden and refused, so that they are not offered to the `file` subcommands.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FileCommand,
    /// Refused: copies go to backups/ beside the file.
    #[arg(long, hide = true, value_name = "DIR", value_parser = not_for_file)]
    pub results_dir: Option<PathBuf>,
    /// Refused: copies go to backups/ beside the file.
    #[arg(long, hide = true, value_name = "DIR", value_parser = not_for_file)]
    pub backup_dir: Option<PathBuf>,
    /// Refused: `resbak file` reads no configuration.
    #[arg(long, hide = true, value_name = "FILE", value_parser = not_for_file)]
    pub config: Option<PathBuf>,
}

/// Refuses a global option given to `resbak file`.
fn not_for_file(_: &str) -> Result<PathBuf, String> {
    Err("this option does not apply to `resbak file`: copies go to backups/ beside the file".into())
}

/// Arguments of `resbak backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Strategy folder names inside the results folder.
    #[arg(
        required_unless_present = "all",
        conflicts_with = "all",
        value_name = "STRATEGY"
    )]
    pub strategies: Vec<String>,
    /// Back up every strategy folder in the results folder.
    #[arg(long)]
    pub all: bool,
    /// Leave out paths matching GLOB (repeatable; adds to `exclude` in resbak.toml). Without
    /// '/', it matches names at any depth (`*.tmp`, `__pycache__`); with '/', paths relative to
    /// the strategy folder.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Show what would be archived and the total size; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Back up even when nothing changed since the strategy's latest backup.
    #[arg(long)]
    pub always: bool,
    /// Push each new backup to this remote right after it lands (repeatable) [default: `push`
    /// from resbak.toml]
    #[arg(long, value_name = "REMOTE")]
    pub push: Vec<String>,
    /// Compression threads [default: all cores]; the archive is byte-identical for any count
    #[arg(long, value_name = "N", value_parser = at_least_one::<u16>)]
    pub threads: Option<u16>,
    /// gzip level [default: `level` from resbak.toml, else 6]. 6 matches gzip's size; 2-3 is
    /// the sweet spot for speed; 1 compresses noticeably worse with this backend
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: Option<u32>,
    /// After a successful backup, keep only the N most recent backups of the strategy
    /// [default: `keep` from resbak.toml, else no pruning]
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    pub keep: Option<u64>,
    /// After a successful backup, keep only the N most recent safety copies (made by
    /// restore --force) of the strategy [default: 3 when pruning]
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    pub keep_safety: Option<u64>,
    /// Time-based rules applied after a successful backup, with --keep.
    #[command(flatten)]
    pub calendar: CalendarArgs,
    /// Tag the new backup (repeatable); a tagged backup is never removed by retention.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A note for the new backup.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Time-based retention, as restic's `forget` (UTC).
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// Keep the newest backup of each of the last N days that have backups
    /// [default: `keep_daily` from resbak.toml]
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    pub keep_daily: Option<u64>,
    /// Keep the newest backup of each of the last N ISO weeks that have backups
    /// [default: `keep_weekly` from resbak.toml]
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    pub keep_weekly: Option<u64>,
    /// Keep the newest backup of each of the last N months that have backups
    /// [default: `keep_monthly` from resbak.toml]
    #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
    pub keep_monthly: Option<u64>,
}

/// The `resbak key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new age identity and print its recipient (the public key for `recipients`).
    ///
    /// FILE is created with mode 0600 and never replaces an existing file; without FILE the
    /// identity is printed. Keep a second copy somewhere safe: without it the encrypted
    /// off-site copies cannot be read.
    #[command(after_help = "Example: resbak key generate ~/.config/resbak/offsite.key")]
    Generate {
        /// Where to write the identity.
        file: Option<PathBuf>,
    },
}

/// The `resbak file` subcommands.
#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Copy PATH to <dir of PATH>/backups/<name>.<YYYYMMDD_HHMMSS>.backup, then keep the newest.
    ///
    /// The copy is exact and keeps the file's mtime; as with cp, it gets the file's permissions
    /// less the umask. The timestamp is UTC and further copies in the same second get _2, _3,
    /// ... Its SHA-256 goes into the folder's SHA256SUMS. A PATH identical to its newest copy
    /// is not copied again; a JSON file that does not parse is copied with a warning. A missing
    /// PATH is not an error: there is nothing to protect yet.
    #[command(after_help = "Example: resbak file backup data/experiences.json --keep 20")]
    Backup {
        /// The file to copy.
        path: PathBuf,
        /// Distinct versions of this file to keep; older copies are removed (never the newest
        /// copy that parses).
        #[arg(long, value_name = "N", default_value_t = crate::filebackup::DEFAULT_KEEP,
              value_parser = parse_keep)]
        keep: usize,
    },

    /// List PATH's copies, newest first, with time, size, SHA-256 and status.
    ///
    /// STATUS is ok (matches SHA256SUMS), damaged, or "no recorded checksum". For JSON files
    /// also whether each copy parses and how many items each top-level array holds. Exits 1
    /// when a copy is damaged.
    #[command(after_help = "Example: resbak file list data/experiences.json")]
    List {
        /// The file whose copies to list.
        path: PathBuf,
    },

    /// Check every copy of PATH against the SHA256SUMS of its copies folder.
    ///
    /// Exits 1 when a copy is damaged or missing; copies with no recorded checksum (made
    /// before the folder kept one) are reported, not counted as problems.
    #[command(after_help = "Example: resbak file verify data/experiences.json")]
    Verify {
        /// The file whose copies to check.
        path: PathBuf,
    },

    /// Save the current PATH as a new copy, then replace PATH with BACKUP or the newest copy.
    ///
    /// A damaged copy is refused. Prints the SHA-256 of the restored file, which equals the
    /// copy's. A PATH that is a symbolic link is written through to its target.
    #[command(after_help = "Example: resbak file restore data/experiences.json --latest")]
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["backup", "latest", "exact"])))]
    #[command(override_usage = "resbak file restore [OPTIONS] <PATH> <BACKUP|--latest|--exact>")]
    Restore {
        /// The file to restore.
        path: PathBuf,
        /// A copy's name from `resbak file list` (or its path).
        #[arg(conflicts_with_all = ["latest", "exact"])]
        backup: Option<String>,
        /// Restore the newest intact copy that parses (for JSON files), passing over newer ones
        /// (chosen before the current file is saved).
        #[arg(long)]
        latest: bool,
        /// Restore the newest copy whatever it holds (a damaged one is still refused).
        #[arg(long, conflicts_with = "latest")]
        exact: bool,
        /// Copies of this file to keep afterwards; the restored copy is always kept.
        #[arg(long, value_name = "N", default_value_t = crate::filebackup::DEFAULT_KEEP,
              value_parser = parse_keep)]
        keep: usize,
    },
}

/// Parses `--keep`: a count of at least 1, since the copy just made is always kept.
fn parse_keep(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(0) => Err("at least 1 copy is always kept".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a count that must be at least 1, saying so when it is 0.
fn at_least_one<N: std::str::FromStr + PartialEq + From<u8>>(text: &str) -> Result<N, String> {
    match text.parse::<N>() {
        Ok(n) if n == N::from(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number, at least 1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
