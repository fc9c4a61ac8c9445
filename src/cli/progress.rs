//! Progress on stderr for long runs: a live line on a terminal (indicatif), a plain line at most
//! every few seconds otherwise, nothing with `--quiet`. The library reports through its observer;
//! this is the binary's half.

use indicatif::{ProgressBar, ProgressStyle};
use marginflow::flow::FlowProgress;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain progress lines when stderr is not a terminal.
pub const PLAIN_EVERY: f64 = 5.0;

/// Where progress goes.
pub enum Progress {
    /// `--quiet`.
    Off,
    /// A terminal: a spinner line redrawn at most every 100 ms.
    Bar { bar: ProgressBar, last: Instant },
    /// Not a terminal: one line at most every `every`.
    Plain { prefix: String, every: Duration, last: Instant },
}

impl Progress {
    /// Progress for a command named `prefix`: off when `quiet`, a bar on a terminal, else plain
    /// lines every `every` seconds.
    pub fn new(prefix: &str, quiet: bool, every: f64) -> Self {
        if quiet {
            Progress::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar { bar, last: Instant::now() - Duration::from_secs(1) }
        } else {
            Progress::Plain {
                prefix: prefix.into(),
                every: Duration::from_secs_f64(every.max(0.0)),
                last: Instant::now(),
            }
        }
    }

    /// Show a message (a plain line only when one is due, or always when `force`).
    pub fn message(&mut self, msg: &str, force: bool) {
        match self {
            Progress::Off => {}
            Progress::Bar { bar, last } => {
                if force || last.elapsed() >= Duration::from_millis(100) {
                    bar.set_message(msg.to_string());
                    *last = Instant::now();
                }
            }
            Progress::Plain { prefix, every, last } => {
                if force || last.elapsed() >= *every {
                    eprintln!("{prefix}: {msg}");
                    *last = Instant::now();
                }
            }
        }
    }

    /// Clear a bar (plain lines stay).
    pub fn finish(&self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// One line for a flow: s, log10 t, log10 L, steps, kinks, steps per second.
pub fn flow_line(p: &FlowProgress, steps_before: u64, started: Instant) -> String {
    let steps = p.accepted + p.rejected;
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { (steps.saturating_sub(steps_before)) as f64 / secs } else { 0.0 };
    let loss = p.log10_loss.map_or("—".to_string(), |l| format!("{l:.4}"));
    format!(
        "s {:.4e} | log10 t {:.4} | log10 L {loss} | steps {} ({} rejected) | kinks {} | {rate:.0} steps/s",
        p.s, p.log10_time, p.accepted, p.rejected, p.events
    )
}
