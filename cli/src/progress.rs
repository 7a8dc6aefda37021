//! Progress on stderr for work that can take more than two seconds (large plans, large
//! replays, remat sweeps, bench), drawn with `indicatif`.
//!
//! Both kinds show only when stderr is a terminal (`IsTerminal`), so piped or captured output
//! (and CI logs) never see them, and only after work has run for [`DELAY`], so quick runs
//! print nothing extra. They never touch stdout. Dropping one clears it.
//!
//! - [`Spinner`]: for one call that cannot report progress (the packer): a thread shows a
//!   spinner with the elapsed time once [`DELAY`] has passed.
//! - [`Bar`]: for work in known steps (runs of a sweep, events of a replay): a bar with the
//!   position, the length and an estimate of the time left.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before progress shows.
pub const DELAY: Duration = Duration::from_secs(1);

/// True when progress may be drawn: stderr is a terminal.
fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner that shows after [`DELAY`] unless dropped first (only when stderr is a terminal).
/// Dropping it clears it.
#[derive(Debug)]
pub struct Spinner {
    /// Closing the channel (dropping the sender) tells the thread to stop.
    done: Option<Sender<()>>,
    /// The drawing thread; `None` when stderr is not a terminal (nothing is drawn).
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts the timer; `message` is shown beside the spinner.
    pub fn start(message: String) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let thread = enabled()
            .then(|| {
                std::thread::Builder::new()
                    .name("memplan-spinner".into())
                    .spawn(move || {
                        if rx.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                            return;
                        }
                        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                            .with_elapsed(DELAY);
                        if let Ok(style) =
                            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        {
                            bar.set_style(style);
                        }
                        bar.set_message(message);
                        bar.enable_steady_tick(Duration::from_millis(120));
                        // Wait until the sender is dropped.
                        let _ = rx.recv();
                        bar.finish_and_clear();
                    })
                    .ok()
            })
            .flatten();
        Spinner {
            done: Some(done),
            thread,
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A progress bar over `len` steps, shown once [`DELAY`] has passed (only when stderr is a
/// terminal). Dropping it clears it.
#[derive(Debug)]
pub struct Bar {
    /// The bar; its draw target is hidden until it is shown.
    bar: ProgressBar,
    /// When the work started.
    start: Instant,
    /// `shown` is true once the bar draws on stderr; it never becomes true when stderr is not
    /// a terminal.
    shown: bool,
    /// Whether stderr is a terminal.
    enabled: bool,
}

impl Bar {
    /// A bar of `len` steps described by `message`.
    pub fn new(len: u64, message: impl Into<String>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.into());
        Bar {
            bar,
            start: Instant::now(),
            shown: false,
            enabled: enabled(),
        }
    }

    /// Advances by `n` steps, showing the bar once [`DELAY`] has passed.
    pub fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        if !self.shown && self.enabled && self.start.elapsed() >= DELAY {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Changes the message (what is being done now).
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::{Bar, Spinner};

    /// Under `cargo test` stderr is captured or piped: nothing may be drawn, and nothing hangs.
    #[test]
    fn quiet_off_a_terminal() {
        let mut b = Bar::new(3, "x");
        b.inc(1);
        b.set_message("y");
        b.inc(2);
        drop(b);
        drop(Spinner::start("z".into()));
    }
}
