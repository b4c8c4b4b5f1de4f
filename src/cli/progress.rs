//! Progress for long work, on stderr and only when stderr is a terminal (a pipe or a log file
//! gets nothing), with rates rounded for people: `41.8k records/s`, not `41804.123/s`.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Whether progress is shown: stderr is a terminal.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `1234` as `1234`, `41804.1` as `41.8k`, `2_500_000` as `2.5M`: three significant digits
/// at most, for people.
pub fn human(n: f64) -> String {
    if !n.is_finite() || n < 0.0 {
        return "-".to_owned();
    }
    if n < 10.0 && n.fract() != 0.0 {
        return format!("{n:.1}");
    }
    if n < 9999.5 {
        return format!("{n:.0}");
    }
    for (scale, unit) in [(1e3, 'k'), (1e6, 'M'), (1e9, 'G')] {
        let v = n / scale;
        if v < 99.95 {
            return format!("{v:.1}{unit}");
        }
        if v < 999.5 {
            return format!("{v:.0}{unit}");
        }
    }
    format!("{:.0}T", n / 1e12)
}

/// A bar of `what` (e.g. "records") done out of a total learnt later, labelled `doing`; its
/// summary line says `done`.
pub struct Progress {
    bar: ProgressBar,
    what: &'static str,
    done: &'static str,
    started: Instant,
}

impl Progress {
    /// `doing {bar} n/total what (rate what/s, eta)`, e.g. `Progress::new("verifying",
    /// "verified", "records")`.
    pub fn new(doing: &'static str, done: &'static str, what: &'static str) -> Progress {
        Progress::named(doing.to_owned(), done, what)
    }

    /// [`Progress::new`] with a label made at run time (a campaign's name).
    pub fn named(doing: String, done: &'static str, what: &'static str) -> Progress {
        let target = if on_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let template = "{prefix} {wide_bar} {human_pos}/{human_len} {what} ({rate}, {eta}) {msg}";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("what", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(what);
            })
            .with_key("rate", move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{} {what}/s", human(s.per_sec()));
            });
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style).with_prefix(doing);
        Progress { bar, what, done, started: Instant::now() }
    }

    /// A callback for the library's `(done, total)` progress.
    pub fn update(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    /// One more done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Removes the bar and, on a terminal, says how much was done how fast:
    /// `verified 12.3k records in 0.4 s (30.1k records/s)`.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if !on_terminal() {
            return;
        }
        let n = self.bar.position();
        let secs = self.started.elapsed().as_secs_f64();
        if n == 0 && self.bar.length().unwrap_or(0) == 0 {
            eprintln!("{} in {secs:.1} s", self.done);
            return;
        }
        let rate = if secs > 0.0 { human(n as f64 / secs) } else { "-".to_owned() };
        eprintln!("{} {} {} in {secs:.1} s ({rate} {}/s)", self.done, human(n as f64), self.what, self.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(2.5), "2.5");
        assert_eq!(human(812.4), "812");
        assert_eq!(human(9999.4), "9999");
        assert_eq!(human(41_804.123), "41.8k");
        assert_eq!(human(99_960.0), "100k");
        assert_eq!(human(412_000.0), "412k");
        assert_eq!(human(999_600.0), "1.0M");
        assert_eq!(human(2_500_000.0), "2.5M");
        assert_eq!(human(f64::NAN), "-");
    }
}
