//! Progress bars on standard error for long work. A [`Progress`] is either a live bar or
//! nothing at all, so the code that reports progress does not care which.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, Read};

/// Counts bytes towards a bar, or does nothing.
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar on standard error for `total` bytes, labelled `message`.
    pub fn bar(total: u64, message: impl Into<String>) -> Progress {
        let style = ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(crate::error::printable(message.into()));
        live().push(bar.clone());
        Progress(Some(bar))
    }

    /// A progress that shows nothing.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Adds `n` bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
            live().retain(|b| !b.is_finished());
        }
    }

    /// Wraps `inner` so every byte read counts.
    pub fn reader<R: Read>(&self, inner: R) -> ProgressReader<R> {
        ProgressReader {
            inner,
            progress: self.clone(),
        }
    }
}

/// Bars on the terminal now.
fn live() -> std::sync::MutexGuard<'static, Vec<ProgressBar>> {
    static LIVE: std::sync::Mutex<Vec<ProgressBar>> = std::sync::Mutex::new(Vec::new());
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every bar from the terminal (on an interruption), so no half-drawn line is left.
pub fn clear_all() {
    for bar in live().drain(..) {
        bar.finish_and_clear();
    }
}

/// A reader that reports the bytes it returns to a [`Progress`].
pub struct ProgressReader<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}
