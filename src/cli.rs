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
    },

    /// Keep the N most recent backups of each strategy and delete the older ones.
    ///
    /// "Most recent" is the manifest's creation time. Every removal is printed; archives the
    /// manifest does not know are never touched; the newest backup is never removed.
    #[command(after_help = "Example: resbak prune btc_sma_cross --keep 5 --dry-run")]
    Prune {
        /// Only this strategy; all strategies when omitted.
        strategy: Option<String>,
        /// Backups to keep per strategy [default: `keep` from resbak.toml, else 10]
        #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
        keep: Option<u64>,
        /// Print what would be removed; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply the retention to this remote's catalogue instead.
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// Safety copies (made by restore --force) to keep per strategy [default: 3]
        #[arg(long, value_name = "N", value_parser = at_least_one::<u64>)]
        keep_safety: Option<u64>,
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

    /// Timestamped copies of single files, kept in backups/ beside each file.
    ///
    /// For data files a program rewrites in place. --results-dir and --backup-dir do not apply.
    #[command(subcommand)]
    File(FileCommand),
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
}

/// The `resbak file` subcommands.
#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Copy PATH to <dir of PATH>/backups/<name>.<YYYYMMDD_HHMMSS>.backup, then keep the newest.
    ///
    /// The copy is exact and keeps the file's mtime; as with cp, it gets the file's permissions
    /// less the umask. The timestamp is UTC and further copies in the same second get _2, _3,
    /// ... A missing PATH is not an error: there is nothing to protect yet.
    #[command(after_help = "Example: resbak file backup data/experiences.json --keep 20")]
    Backup {
        /// The file to copy.
        path: PathBuf,
        /// Copies of this file to keep; older ones are removed.
        #[arg(long, value_name = "N", default_value_t = crate::filebackup::DEFAULT_KEEP,
              value_parser = parse_keep)]
        keep: usize,
    },

    /// List PATH's copies, newest first, with time, size and SHA-256.
    ///
    /// For .json files also whether each copy parses and how many items each top-level array
    /// holds.
    #[command(after_help = "Example: resbak file list data/experiences.json")]
    List {
        /// The file whose copies to list.
        path: PathBuf,
    },

    /// Save the current PATH as a new copy, then replace PATH with BACKUP or the newest copy.
    ///
    /// Prints the SHA-256 of the restored file, which equals the copy's.
    #[command(after_help = "Example: resbak file restore data/experiences.json --latest")]
    #[command(group(clap::ArgGroup::new("which").required(true).args(["backup", "latest"])))]
    #[command(override_usage = "resbak file restore [OPTIONS] <PATH> <BACKUP|--latest>")]
    Restore {
        /// The file to restore.
        path: PathBuf,
        /// A copy's name from `resbak file list` (or its path).
        backup: Option<String>,
        /// Restore the newest copy (taken before the current file is saved).
        #[arg(long)]
        latest: bool,
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
