//! A progress bar over the bytes of a trace, on stderr, only when stderr is
//! a terminal (never in pipes, files or CI logs).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulse_cli::analysis::TraceSet;
use std::io::IsTerminal;
use std::time::Duration;

/// Traces smaller than this finish too fast for a bar to help.
const MIN_BYTES: u64 = 8 << 20;

pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    pub(crate) fn new(set: &TraceSet) -> Bar {
        let total = set.total_bytes();
        if total < MIN_BYTES || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(set.name().display().to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }

    pub(crate) fn update(&self, done: u64, _total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
