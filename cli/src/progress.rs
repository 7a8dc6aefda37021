//! A spinner on stderr that appears only when work takes more than a second.
//!
//! Quick runs print nothing extra; slow ones show what is being done and for how long. The
//! spinner never touches stdout, and indicatif hides it when stderr is not a terminal, so
//! piped or captured output stays clean.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before the spinner shows.
const DELAY: Duration = Duration::from_secs(1);

/// A spinner that shows after a second (`DELAY`) unless dropped first. Dropping it clears it.
#[derive(Debug)]
pub struct Spinner {
    /// Closing the channel (dropping the sender) tells the thread to stop.
    done: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts the timer; `message` is shown beside the spinner.
    pub fn start(message: String) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("memplan-spinner".into())
            .spawn(move || {
                if rx.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_elapsed(DELAY);
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                    bar.set_style(style);
                }
                bar.set_message(message);
                bar.enable_steady_tick(Duration::from_millis(120));
                // Wait until the sender is dropped.
                let _ = rx.recv();
                bar.finish_and_clear();
            })
            .ok();
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
