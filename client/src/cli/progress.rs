//! Progress bars on stderr for long tile imports and packs, drawn with `indicatif`.
//!
//! A bar is drawn only for text output when stderr is a terminal. With `--output json`, or when
//! stderr goes to a pipe or a file, every call here does nothing, so scripts and logs see no
//! progress text.

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, ProgressBar, ProgressBarIter, ProgressDrawTarget, ProgressState, ProgressStyle,
};

use super::output::OutputFormat;

/// Redraws per second, which is also the rate at which a spinner turns.
const REFRESH_RATE_HZ: u8 = 10;

/// Returns true when a progress bar should be drawn: text output to a terminal on stderr.
pub(crate) fn should_draw(format: OutputFormat, stderr_is_terminal: bool) -> bool {
    matches!(format, OutputFormat::Text) && stderr_is_terminal
}

/// One progress bar, hidden unless [`should_draw`] allows it. Dropping it clears the bar.
pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Bytes read so far by a [`Progress::files`] spinner, whose position counts files.
    bytes_read: Arc<AtomicU64>,
}

impl Progress {
    /// Creates a bar, hidden unless `format` is text and stderr is a terminal.
    fn new(format: OutputFormat, length: Option<u64>) -> Progress {
        let target = if should_draw(format, std::io::stderr().is_terminal()) {
            ProgressDrawTarget::stderr_with_hz(REFRESH_RATE_HZ)
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            bar: ProgressBar::with_draw_target(length, target),
            started: Instant::now(),
            bytes_read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Creates a bar for sending `total_bytes` bytes of `file_name`, showing bytes, bytes per
    /// second and the time left.
    pub(crate) fn upload(format: OutputFormat, file_name: &str, total_bytes: u64) -> Progress {
        let progress = Progress::new(format, Some(total_bytes));
        progress.bar.set_style(style(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
        ));
        progress.bar.set_message(format!("sending {file_name}"));
        progress
    }

    /// Creates a spinner that counts the files and bytes read, with their average rates since
    /// the start.
    pub(crate) fn files(format: OutputFormat, message: &str) -> Progress {
        let progress = Progress::new(format, None);
        let bytes_read = Arc::clone(&progress.bytes_read);
        let template = "{spinner} {msg}: {pos} files, {bytes_read} read ({read_rates}), {elapsed}";
        let style = style(template)
            .with_key(
                "bytes_read",
                {
                    let bytes_read = Arc::clone(&bytes_read);
                    move |_: &ProgressState, writer: &mut dyn std::fmt::Write| {
                        let _ = write!(writer, "{}", HumanBytes(bytes_read.load(Ordering::Relaxed)));
                    }
                },
            )
            .with_key(
                "read_rates",
                move |state: &ProgressState, writer: &mut dyn std::fmt::Write| {
                    let seconds = state.elapsed().as_secs_f64().max(0.001);
                    let bytes = bytes_read.load(Ordering::Relaxed) as f64;
                    let _ = write!(
                        writer,
                        "{:.0} files/s, {}/s",
                        state.pos() as f64 / seconds,
                        HumanBytes((bytes / seconds) as u64)
                    );
                },
            );
        progress.bar.set_style(style);
        progress.bar.set_message(message.to_owned());
        progress
            .bar
            .enable_steady_tick(Duration::from_millis(1000 / u64::from(REFRESH_RATE_HZ)));
        progress
    }

    /// Wraps `inner` so that every byte read from it advances the bar. At the end of `inner`,
    /// the bar turns into a spinner with the message `then`, for the step that follows, such as
    /// the attestor's import after the upload.
    pub(crate) fn upload_reader<R: Read>(&self, inner: R, then: &str) -> UploadReader<R> {
        UploadReader {
            inner: self.bar.wrap_read(inner),
            bar: self.bar.clone(),
            then: then.to_owned(),
            ended: false,
        }
    }

    /// Replaces the message, which names the current step.
    pub(crate) fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Counts one file of `bytes` bytes read, on a [`Progress::files`] spinner.
    pub(crate) fn add_file(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        self.bar.inc(1);
    }

    /// Clears the bar without a closing line, for a step that did no work worth a rate.
    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Clears the bar and prints a closing line with the tiles and the size of the archive, and
    /// their rates since the start, such as
    /// `1200 tiles, 3.50 MiB archive, in 2.0 s: 600 tiles/s, 1.75 MiB/s of archive`. Hidden bars
    /// print nothing.
    pub(crate) fn finish(&self, tiles: u64, archive_bytes: u64) {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let tiles_per_second = tiles as f64 / seconds;
        let bytes_per_second = HumanBytes((archive_bytes as f64 / seconds) as u64);
        self.bar.println(format!(
            "{tiles} tiles, {} archive, in {seconds:.1} s: {tiles_per_second:.0} tiles/s, {bytes_per_second}/s of archive",
            HumanBytes(archive_bytes)
        ));
        self.bar.finish_and_clear();
    }
}

/// Turns `bar` into a spinner with `message`.
fn show_spinner(bar: &ProgressBar, message: &str) {
    bar.set_style(style("{spinner} {msg} ({elapsed})"));
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REFRESH_RATE_HZ)));
}

/// The reader of [`Progress::upload_reader`]. It owns a handle of the bar, so it can move to the
/// thread that reads the file.
pub(crate) struct UploadReader<R> {
    inner: ProgressBarIter<R>,
    bar: ProgressBar,
    then: String,
    ended: bool,
}

impl<R: Read> Read for UploadReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        if count == 0 && !buffer.is_empty() && !self.ended {
            self.ended = true;
            show_spinner(&self.bar, &self.then);
        }
        Ok(count)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// Parses a progress template. The templates are constants of this module, so a parse error is
/// a bug; the default style is used then.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_drawn_only_for_text_on_terminal() {
        assert!(should_draw(OutputFormat::Text, true));
        assert!(!should_draw(OutputFormat::Text, false));
        assert!(!should_draw(OutputFormat::Json, true));
        assert!(!should_draw(OutputFormat::Json, false));
    }

    #[test]
    fn templates_parse() {
        for template in [
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
            "{spinner} {msg}: {pos} files, {bytes_read} read ({read_rates}), {elapsed}",
            "{spinner} {msg} ({elapsed})",
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn hidden_reader_passes_bytes() {
        let progress = Progress::new(OutputFormat::Json, Some(5));
        let mut text = String::new();
        progress
            .upload_reader(&b"tiles"[..], "waiting")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "tiles");
        assert!(progress.bar.is_hidden());
        assert_eq!(progress.bar.position(), 5);
    }

    #[test]
    fn files_spinner_counts_files_and_bytes() {
        let progress = Progress::files(OutputFormat::Json, "packing");
        progress.add_file(10);
        progress.add_file(32);
        assert_eq!(progress.bar.position(), 2);
        assert_eq!(progress.bytes_read.load(Ordering::Relaxed), 42);
    }
}
