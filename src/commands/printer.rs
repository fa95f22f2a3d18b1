//! How commands write: the [`Printer`] for reports, warnings, hints and progress, the [`Ui`]
//! it follows, and the hints given after a check.

use super::check_strategy_name;
use crate::error::{Error, Result, printable, printable_keeping, push_printable_keeping};
use crate::manifest::{Entry, Manifest};
use crate::progress::Progress;
use std::fmt::Display;
use std::io::Write;
use std::path::Path;

/// How output should look, decided once from flags and the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    /// Print JSON instead of text reports.
    pub json: bool,
    /// Print only problems and warnings; no progress.
    pub quiet: bool,
    /// More detail.
    pub verbose: bool,
    /// Colour in reports (standard output is a terminal and `NO_COLOR` is not set).
    pub color: bool,
    /// Progress bars (standard error is a terminal, not quiet, not JSON).
    pub progress: bool,
}

impl Ui {
    /// Decides colour and progress from the terminal and the environment.
    pub fn detect(json: bool, quiet: bool, verbose: bool) -> Ui {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            json,
            quiet,
            verbose,
            color: !json && !no_color && std::io::stdout().is_terminal(),
            progress: !json && !quiet && std::io::stderr().is_terminal(),
        }
    }
}

/// Where commands write: reports to standard output, warnings and progress to standard error.
///
/// Control characters in what is printed are shown as escapes (see [`printable`]), so a name
/// from disk, the manifest or an archive can never forge a line or move the cursor. When
/// standard output breaks (a closed pipe, a full disk), the command goes on with its work:
/// later report lines are dropped and [`Printer::finish`] hands back what went wrong, so the
/// exit code still reflects the work. Warnings that cannot be written are dropped.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    ui: Ui,
    broken: Option<std::io::Error>,
}

impl<'a> Printer<'a> {
    /// Prints reports to `out`, plain text, no progress.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Printer::with_ui(out, Ui::default())
    }

    /// Prints reports to `out` as `ui` says.
    pub fn with_ui(out: &'a mut dyn Write, ui: Ui) -> Self {
        Printer {
            out,
            ui,
            broken: None,
        }
    }

    /// Whether reports are JSON.
    pub fn json(&self) -> bool {
        self.ui.json
    }

    /// Whether more detail was asked for.
    pub fn verbose(&self) -> bool {
        self.ui.verbose && !self.ui.quiet
    }

    /// Writes one line of the report (not with `--quiet` or `--json`).
    pub fn line(&mut self, text: impl Display) -> Result<()> {
        if self.ui.quiet || self.ui.json {
            return Ok(());
        }
        self.write_line(text)
    }

    /// Writes `lines` as [`Printer::line`] writes each, in blocks of about 64 KiB: standard
    /// output is written at each line break otherwise, one system call per line.
    pub fn lines(&mut self, lines: &[String]) -> Result<()> {
        if self.ui.quiet || self.ui.json {
            return Ok(());
        }
        let mut block = String::new();
        for (i, text) in lines.iter().enumerate() {
            push_printable_keeping(&mut block, text, self.kept());
            if block.len() >= 64 << 10 || i + 1 == lines.len() {
                self.write_raw(&block);
                block.clear();
            } else {
                block.push('\n');
            }
        }
        Ok(())
    }

    /// Writes a line about a problem found (not with `--json`, even with `--quiet`).
    pub fn problem(&mut self, text: impl Display) -> Result<()> {
        if self.ui.json {
            return Ok(());
        }
        self.write_line(text)
    }

    /// Writes `value` as pretty JSON (only with `--json`).
    pub fn json_report(&mut self, value: &impl serde::Serialize) -> Result<()> {
        if !self.ui.json {
            return Ok(());
        }
        let json = serde_json::to_string_pretty(value)
            .map_err(|e| Error::io("write JSON to", "standard output", std::io::Error::other(e)))?;
        self.write_raw(&json);
        Ok(())
    }

    /// Writes `text` as it is, whatever the options: output that is the command's product
    /// (such as a generated key), not a report.
    pub fn product(&mut self, text: &str) {
        self.write_raw(text);
    }

    /// Standard output for bytes that are the report themselves (a file `cat` prints).
    pub fn raw(&mut self) -> &mut dyn Write {
        &mut *self.out
    }

    /// Writes one report line with control characters escaped; colour codes from
    /// [`Printer::paint`] pass when colour is on.
    fn write_line(&mut self, text: impl Display) -> Result<()> {
        let line = printable_keeping(&text.to_string(), self.kept());
        self.write_raw(&line);
        Ok(())
    }

    /// The escape sequences a line may keep: the colours, when colour is on.
    fn kept(&self) -> &'static [&'static str] {
        if self.ui.color { &COLOURS } else { &[] }
    }

    /// Writes `text` and a newline unless standard output already broke; remembers a failure.
    fn write_raw(&mut self, text: &str) {
        if self.broken.is_none()
            && let Err(e) = writeln!(self.out, "{text}")
        {
            self.broken = Some(e);
        }
    }

    /// Flushes the report and returns the first error writing it, if any (the lines after it
    /// were dropped).
    pub fn finish(mut self) -> Option<std::io::Error> {
        if self.broken.is_none()
            && let Err(e) = self.out.flush()
        {
            self.broken = Some(e);
        }
        self.broken
    }

    /// Writes a warning to standard error.
    pub fn warn(&mut self, text: impl Display) {
        warn(text);
    }

    /// Writes a hint, a next step worth taking, to standard error.
    pub fn hint(&mut self, text: impl Display) {
        to_stderr(&printable(format_args!("resbak: hint: {text}")));
    }

    /// `text` in green (good) or red (bad) when colour is on.
    pub fn paint(&self, text: &str, good: bool) -> String {
        match (self.ui.color, good) {
            (false, _) => text.to_string(),
            (true, true) => format!("{GREEN}{text}{RESET}"),
            (true, false) => format!("{RED}{text}{RESET}"),
        }
    }

    /// Whether progress bars are shown (so totals are worth computing).
    pub fn shows_progress(&self) -> bool {
        self.ui.progress
    }

    /// A progress bar for `total` bytes, or a hidden one when bars are off.
    pub fn progress(&self, total: u64, message: impl Into<String>) -> Progress {
        if self.ui.progress {
            Progress::bar(total, message)
        } else {
            Progress::hidden()
        }
    }
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";
/// The only control sequences a report line may hold: those [`Printer::paint`] writes.
const COLOURS: [&str; 3] = [GREEN, RED, RESET];

/// Writes `resbak: warning: {text}` to standard error, control characters escaped; a warning
/// that cannot be written is dropped (it must never end the program).
pub fn warn(text: impl Display) {
    to_stderr(&warning_line(text));
}

/// The line [`warn`] writes.
fn warning_line(text: impl Display) -> String {
    printable(format_args!("resbak: warning: {text}"))
}

/// Writes one line to standard error, ignoring failures.
fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One archive's result in a check, for [`hint_after_check`].
pub struct Verdict<'a> {
    /// The archive: its file name in the backup folder, or the path given.
    pub archive: &'a str,
    /// Its strategy.
    pub strategy: &'a str,
    /// Whether it was found intact.
    pub intact: bool,
    /// Whether the archive itself is intact though the check failed (its index, or its
    /// manifest entry, is wrong): the check's own message names the fix, and no hint is given.
    pub archive_intact: bool,
    /// Whether its file is gone.
    pub missing: bool,
}

/// After a check, the next step for each damaged archive (not for an intact archive whose
/// index or manifest entry alone is wrong: the check's message names the fix). When it is its strategy's newest
/// regular backup (or the backup folder's manifest does not know it), `backup --always` makes
/// a fresh one if the results folder is still there. An older backup or a safety copy leaves
/// the newest backup protecting the strategy: the hint says whether that one was found intact
/// and how to remove the damaged archive alone, never proposing to delete intact backups.
pub fn hint_after_check(
    (results_dir, backup_dir): (&Path, &Path),
    manifest: &Manifest,
    verdicts: &[Verdict],
    printer: &mut Printer,
) {
    let mut fresh: Vec<&str> = Vec::new();
    for damaged in verdicts.iter().filter(|v| !v.intact && !v.archive_intact) {
        let strategy = damaged.strategy;
        let newest = manifest.latest_regular(strategy);
        let Some(entry) = manifest.find(damaged.archive) else {
            fresh.push(strategy);
            continue;
        };
        let Some(newest) = newest.filter(|n| n.backup_file != entry.backup_file) else {
            fresh.push(strategy);
            continue;
        };
        let state = match verdicts.iter().find(|v| v.archive == newest.backup_file) {
            Some(v) if v.intact => "is intact".to_string(),
            // Its bytes are, its record or index is not: restore refuses it until that is mended.
            Some(v) if v.archive_intact => {
                "holds intact bytes but failed its check too (see its line): mend that first"
                    .to_string()
            }
            Some(_) => "is damaged too".to_string(),
            None => format!(
                "was not checked here (`resbak verify {}` checks it)",
                newest.backup_file
            ),
        };
        printer.hint(format_args!(
            "{} is not the newest backup of {strategy}: the newest, {}, {state}; {}",
            entry.backup_file,
            newest.backup_file,
            remove_hint(entry, damaged.missing)
        ));
    }
    fresh.sort_unstable();
    fresh.dedup();
    for strategy in fresh {
        let folder = results_dir.join(strategy);
        if check_strategy_name(strategy).is_err() {
            continue;
        }
        if !folder.is_dir() {
            hint_usable(backup_dir, manifest, strategy, &folder, printer);
            continue;
        }
        // A forced restore since the newest backup replaced what the folder held then.
        let newest = manifest.latest_regular(strategy).map(|e| e.created);
        let replaced = manifest
            .newest_first(strategy, crate::manifest::Kind::Safety)
            .into_iter()
            .next()
            .filter(|safety| newest.is_none_or(|t| safety.created > t));
        match replaced {
            Some(safety) => printer.hint(format_args!(
                "{} was replaced by a restore since its newest backup; what it held before that is in \
                 the safety copy {}: restore that first if it is what you want to keep, then \
                 `resbak backup --always {strategy}` makes a fresh backup",
                folder.display(),
                safety.backup_file
            )),
            None => printer.hint(format_args!(
                "{} is still there: `resbak backup --always {strategy}` makes a fresh backup",
                folder.display()
            )),
        }
    }
}

/// With the newest backup of `strategy` damaged and its results `folder` gone: names the newest
/// backup not known to be damaged (by the checks just recorded), as `restore` picks it.
fn hint_usable(
    backup_dir: &Path,
    manifest: &Manifest,
    strategy: &str,
    folder: &Path,
    printer: &mut Printer,
) {
    if let Some((n, entry)) = super::list::newest_usable(backup_dir, manifest, strategy, 0) {
        let pick = match n {
            0 => strategy.to_string(),
            n => format!("{strategy}~{n}"),
        };
        printer.hint(format_args!(
            "{} is gone: `resbak restore {pick}` restores {}, the newest backup not found \
             damaged",
            folder.display(),
            entry.backup_file
        ));
    }
}

/// How to remove the damaged archive of `entry` alone (its file is gone when `missing`):
/// `prune` would take intact older backups with it, so the archive is moved out of the backup
/// folder and `reindex` drops its entry.
fn remove_hint(entry: &Entry, missing: bool) -> String {
    let file = &entry.backup_file;
    if missing {
        return format!("unless {file} can be put back, `resbak reindex` drops its entry");
    }
    format!(
        "to remove it alone, move {file} (and {file}.idx) out of the backup folder; \
         `resbak reindex` then drops its entry"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every write with `kind`, counting the attempts.
    struct Broken(std::io::ErrorKind, usize);

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.1 += 1;
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn report_and_problem_lines_escape_control_characters() {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out);
        printer
            .line("Removed old backup: a\nRemoved old backup: b")
            .unwrap();
        printer.problem("FAILED  x\x1b[2J\ry.tar.gz").unwrap();
        assert!(printer.finish().is_none());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Removed old backup: a\\nRemoved old backup: b\nFAILED  x\\u{1b}[2J\\ry.tar.gz\n"
        );
    }

    #[test]
    fn colour_codes_pass_only_when_colour_is_on() {
        let ui = Ui {
            color: true,
            ..Ui::default()
        };
        let mut out = Vec::new();
        let mut printer = Printer::with_ui(&mut out, ui);
        let ok = printer.paint("OK", true);
        printer.line(format_args!("{ok} a\x1b[2Jb")).unwrap();
        drop(printer);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\x1b[32mOK\x1b[0m a\\u{1b}[2Jb\n");
    }

    #[test]
    fn warnings_escape_control_characters() {
        assert_eq!(
            warning_line("removed a\nresbak: all good"),
            "resbak: warning: removed a\\nresbak: all good"
        );
    }

    #[test]
    fn a_broken_stdout_is_remembered_and_later_lines_dropped() {
        let mut out = Broken(std::io::ErrorKind::BrokenPipe, 0);
        let mut printer = Printer::new(&mut out);
        printer.line("one").unwrap();
        printer.problem("two").unwrap();
        let broken = printer.finish().expect("the failure is reported");
        assert_eq!(broken.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(out.1, 1, "nothing is written after the break");
    }
}
