//! A wall-clock time limit for the search, read from `std::time::Instant` (feature `std`):
//! the one adapter from a time limit to a [`Budget`], shared by the CLI and the C API.
//!
//! Invariants of a [`Deadline`]: `at` is `started + limit`, or `None` when there is no limit
//! (none was given, or `started + limit` does not fit in an `Instant`); `reached` becomes true
//! the first time the deadline answers "stop" and never goes back.

use core::time::Duration;
use std::time::Instant;

use super::budget::{Budget, Stop};

/// A wall-clock limit on the search of [`pack`](super::pack), whose clock starts when the
/// deadline is made.
///
/// Hand it to the packer with [`Deadline::budget`]; afterwards [`Deadline::reached`] tells
/// whether it cut the search short, and [`Deadline::elapsed`] how long it all took. With a
/// time limit the plan depends on timing; for a reproducible plan use a node budget.
///
/// # Examples
/// ```
/// use core::time::Duration;
/// use memplan_core::{Buffer, PackOptions, Problem, pack, pack::Deadline};
/// let p = Problem::from_buffers([Buffer::new("a", 0, 2, 4), Buffer::new("b", 1, 3, 4)])?;
/// let mut deadline = Deadline::from_now(Some(Duration::from_secs(5)));
/// let plan = pack(&p, PackOptions { capacity: None, budget: deadline.budget(None) })?;
/// assert_eq!(plan.peak, 8);
/// assert!(!deadline.reached()); // optimal at once: the clock was never read
/// # Ok::<(), memplan_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Deadline {
    /// When the clock started.
    started: Instant,
    /// When the search must stop; `None`: never.
    at: Option<Instant>,
    /// True once the deadline has answered "stop".
    reached: bool,
}

impl Deadline {
    /// A deadline `limit` from now: the clock starts here, so make it just before packing.
    /// `None`, or a limit too far ahead for `Instant` to represent, means no limit.
    /// `Some(Duration::ZERO)` stops the search at its first question: heuristics only.
    pub fn from_now(limit: Option<Duration>) -> Self {
        let started = Instant::now();
        Deadline {
            started,
            at: limit.and_then(|d| started.checked_add(d)),
            reached: false,
        }
    }

    /// The search budget: at most `max_nodes` search nodes (when given) and, when this
    /// deadline has a limit, no searching past it. Without a limit the budget has no stop
    /// condition and the clock is never read.
    pub fn budget(&mut self, max_nodes: Option<u64>) -> Budget<'_> {
        let limited = self.at.is_some();
        Budget {
            max_nodes,
            stop: limited.then_some(self as &mut dyn Stop),
        }
    }

    /// True when this deadline stopped a search: it was asked after its limit had passed.
    /// (A search that finished before its first question after the limit was not stopped,
    /// even if it took longer than the limit.)
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// Time since the deadline was made.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Stop for Deadline {
    /// True once the limit has passed (never without a limit); records that in
    /// [`Deadline::reached`].
    fn should_stop(&mut self) -> bool {
        let late = self.at.is_some_and(|at| Instant::now() >= at);
        if late {
            self.reached = true;
        }
        late
    }
}

#[cfg(test)]
mod tests;
