//! The observer a Python call hands to a long run: it keeps the trajectory rows, appends them to
//! DIR/trajectory.jsonl and writes checkpoints when an output directory is given, and every
//! [`POLL`] re-acquires the GIL briefly to run Python's signal handlers (Ctrl-C → stop the run,
//! then raise `KeyboardInterrupt`) and to update the progress line on `sys.stderr`.

use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::FlowObserver;
use marginflow::io::fsutil::write_atomic;
use pyo3::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a run re-acquires the GIL to check for signals (and redraw the progress line).
pub const POLL: Duration = Duration::from_millis(100);
/// A run shows progress only once it has lasted this long (short calls stay silent).
pub const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// See the module documentation.
pub struct Watch {
    /// Output directory (trajectory.jsonl and checkpoint are written there).
    pub dir: Option<PathBuf>,
    /// DIR/trajectory.jsonl opened for appending.
    pub trajectory: Option<std::io::BufWriter<std::fs::File>>,
    /// Rows of this call (and, on resume, those already in the file), as JSON objects.
    pub rows: Vec<serde_json::Value>,
    /// Seconds between periodic checkpoints (with `dir`).
    pub every: Duration,
    last_checkpoint: Instant,
    last_poll: Instant,
    started: Instant,
    /// What the progress line calls the run ("flow", "descent"); `None`: no progress line.
    pub progress: Option<&'static str>,
    /// A horizon to show in the progress line, e.g. "log10 t → 100".
    pub goal: String,
    drawn: bool,
    /// The exception a signal handler raised (KeyboardInterrupt): the run stops, then raises it.
    /// Shared with [`signal_poll`], which the library's QPs and box QPs poll.
    pub interrupt: Interrupt,
}

impl Watch {
    /// An observer writing into `dir` (if any), checkpointing every `every`.
    pub fn new(dir: Option<PathBuf>, every: Duration, progress: Option<&'static str>, goal: String) -> Self {
        let now = Instant::now();
        Watch {
            dir,
            trajectory: None,
            rows: Vec::new(),
            every,
            last_checkpoint: now,
            last_poll: now,
            started: now,
            progress,
            goal,
            drawn: false,
            interrupt: Interrupt::default(),
        }
    }

    /// Keep a row and append it to the trajectory file.
    pub fn push_row(&mut self, row: &impl Serialize) -> marginflow::Result<()> {
        let value = serde_json::to_value(row).expect("a row serializes");
        if let (Some(f), Some(dir)) = (&mut self.trajectory, &self.dir) {
            let line = serde_json::to_string(&value).expect("a row serializes");
            writeln!(f, "{line}")
                .and_then(|_| f.flush())
                .map_err(|e| marginflow::Error::io(dir.join("trajectory.jsonl"), e))?;
        }
        self.rows.push(value);
        Ok(())
    }

    /// Every [`POLL`]: take the GIL, run the signal handlers, redraw progress. Returns whether
    /// the run must stop.
    pub fn poll(&mut self) -> bool {
        if self.interrupt.raised() {
            return true;
        }
        if self.last_poll.elapsed() < POLL {
            return false;
        }
        self.last_poll = Instant::now();
        let line = match (self.progress, self.started.elapsed() >= PROGRESS_AFTER) {
            (Some(what), true) => Some(self.progress_line(what)),
            _ => None,
        };
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                self.interrupt.set(e);
            }
            if let Some(line) = line {
                // Progress is best effort: a closed or replaced stderr must not end the run.
                if write_stderr(py, &format!("\r{line}")).is_ok() {
                    self.drawn = true;
                }
            }
        });
        self.interrupt.raised()
    }

    fn progress_line(&self, what: &str) -> String {
        let last = self.rows.last();
        let get = |k: &str| last.and_then(|r| r.get(k)).and_then(|v| v.as_f64());
        let fmt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
        let mut s = format!("{what} [{:6.1} s]", self.started.elapsed().as_secs_f64());
        if let Some(step) = get("step") {
            s.push_str(&format!(" step {step}"));
        } else {
            s.push_str(&format!(" s {}", get("s").map_or("-".into(), |v| format!("{v:.3e}"))));
            s.push_str(&format!(" | log10 t {}", fmt(get("log10_time"), 2)));
        }
        s.push_str(&format!(" | log10 L {}", fmt(get("log10_loss"), 2)));
        if let Some(a) = get("accepted") {
            s.push_str(&format!(" | steps {a} (events {})", fmt(get("events"), 0)));
        }
        if !self.goal.is_empty() {
            s.push_str(&format!(" | {}", self.goal));
        }
        s.push_str("   ");
        s
    }

    /// End the progress line (a newline) if one was drawn.
    pub fn finish(&mut self, py: Python<'_>) {
        if self.drawn {
            let _ = write_stderr(py, "\n");
            self.drawn = false;
        }
    }
}

/// The KeyboardInterrupt of a call, once raised (shared between the observer and the poll).
#[derive(Clone, Default)]
pub struct Interrupt(Arc<Mutex<Option<PyErr>>>);

impl Interrupt {
    /// Keep the first exception.
    fn set(&self, e: PyErr) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(e);
        }
    }
    /// Whether a signal handler raised.
    pub fn raised(&self) -> bool {
        self.0.lock().map(|s| s.is_some()).unwrap_or(false)
    }
    /// The exception, to raise once the call has written its files.
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// A stop poll for [`marginflow_solvers::interrupt::with_poll`]: every [`POLL`], take the GIL
/// and run Python's signal handlers; true once one raised (kept in `slot`).
pub fn signal_poll(slot: Interrupt) -> impl FnMut() -> bool + 'static {
    let mut last = Instant::now();
    move || {
        if slot.raised() {
            return true;
        }
        if last.elapsed() < POLL {
            return false;
        }
        last = Instant::now();
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                slot.set(e);
            }
        });
        slot.raised()
    }
}

/// Run `f` with the GIL released and [`signal_poll`] as its stop poll; a `KeyboardInterrupt`
/// raised meanwhile is returned instead of `f`'s result.
pub fn detach_polled<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> PyResult<R> {
    let interrupt = Interrupt::default();
    let poll = interrupt.clone();
    let r = py.detach(|| marginflow_solvers::interrupt::with_poll(signal_poll(poll), f));
    interrupt.take().map_or(Ok(r), Err)
}

/// Write to Python's `sys.stderr` (a notebook's stream or the terminal) and flush.
fn write_stderr(py: Python<'_>, text: &str) -> PyResult<()> {
    let err = py.import("sys")?.getattr("stderr")?;
    err.call_method1("write", (text,))?;
    err.call_method0("flush")?;
    Ok(())
}

impl FlowObserver for Watch {
    fn row(&mut self, row: &marginflow::flow::summary::TrajectoryRow) -> marginflow::Result<()> {
        self.push_row(&marginflow::metrics::to_json_value(row))
    }
    fn checkpoint_due(&mut self) -> bool {
        self.dir.is_some() && self.last_checkpoint.elapsed() >= self.every
    }
    fn checkpoint(&mut self, cp: &Checkpoint) -> marginflow::Result<()> {
        self.last_checkpoint = Instant::now();
        if let Some(dir) = &self.dir {
            if let Some(f) = &mut self.trajectory {
                let tpath = dir.join("trajectory.jsonl");
                f.flush().map_err(|e| marginflow::Error::io(tpath.clone(), e))?;
                f.get_ref().sync_data().map_err(|e| marginflow::Error::io(tpath, e))?;
            }
            write_atomic(&dir.join("checkpoint"), &cp.to_bytes())?;
        }
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        self.poll()
    }
}

impl marginflow::descent::DescentObserver for Watch {
    fn row(&mut self, row: &marginflow::descent::summary::DescentRow) -> marginflow::Result<()> {
        self.push_row(&marginflow::metrics::to_json_value(row))
    }
    fn stop_requested(&mut self) -> bool {
        self.poll()
    }
}
