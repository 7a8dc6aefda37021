//! How much work the packer may do: the caller's [`PackOptions`] and [`Budget`], the [`Stop`]
//! condition a caller can plug in, and [`Control`], the packer's counter that enforces them.
//!
//! Invariants of [`Control`]: `nodes` never exceeds `max_nodes` (a node is counted only while
//! the budget allows it), and once `stopped` is set it stays set: every later question
//! answers "stop", so the search unwinds without asking the caller's [`Stop`] again.

/// Asked now and then during the search whether to stop it.
///
/// Implemented by every `FnMut() -> bool` closure (returning `true` stops the search) and,
/// with the `std` feature, by `Deadline` (a wall-clock limit). `core` has no clock: a time
/// limit is always a [`Stop`] the caller provides.
pub trait Stop {
    /// True when the search must stop now. Once it has returned `true`, it is not asked again
    /// during the same [`pack`](super::pack) call.
    fn should_stop(&mut self) -> bool;
}

impl<F: FnMut() -> bool + ?Sized> Stop for F {
    fn should_stop(&mut self) -> bool {
        self()
    }
}

/// How much search the packer may do beyond its heuristics.
///
/// The search stops at whichever limit comes first. With neither set, it runs until it proves
/// the best plan optimal — which may take a very long time on hard instances.
#[derive(Default)]
pub struct Budget<'a> {
    /// Most search nodes to expand (deterministic: the same input and the same node budget
    /// give the same plan). `Some(0)` means heuristics only.
    pub max_nodes: Option<u64>,
    /// Asked every 256 search nodes, every 64 candidates tried inside a node and between
    /// heuristic passes; answering `true` stops the search (e.g. a deadline read from a clock
    /// the caller owns, since `core` has none). Plans then depend on timing.
    pub stop: Option<&'a mut dyn Stop>,
}

impl core::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Budget")
            .field("max_nodes", &self.max_nodes)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// Options for [`pack`](super::pack).
#[derive(Debug, Default)]
pub struct PackOptions<'a> {
    /// When set, the packer stops as soon as a plan with peak at most this many bytes is
    /// found, and fails with [`Error::CapacityExceeded`](crate::Error::CapacityExceeded) when it cannot find one.
    pub capacity: Option<u64>,
    /// Search limits.
    pub budget: Budget<'a>,
}

/// Which limit of a [`Budget`] ended the search ([`Control::exhausted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exhausted {
    /// `Budget::max_nodes`.
    Nodes,
    /// `Budget::stop`.
    Caller,
}

/// Counts nodes and asks the caller's [`Stop`] now and then. See the module docs for its
/// invariants.
pub(super) struct Control<'a> {
    nodes: u64,
    max_nodes: Option<u64>,
    stop: Option<&'a mut dyn Stop>,
    stopped: bool,
    /// True when the caller's [`Stop`] answered "stop" (set at most once, with `stopped`).
    by_caller: bool,
    /// Candidates tried (see [`Control::poll`]).
    work: u64,
}

impl<'a> Control<'a> {
    /// A fresh counter enforcing `budget`.
    pub(super) fn new(budget: Budget<'a>) -> Self {
        Control {
            nodes: 0,
            max_nodes: budget.max_nodes,
            stop: budget.stop,
            stopped: false,
            by_caller: false,
            work: 0,
        }
    }

    /// Search nodes counted so far.
    pub(super) fn nodes(&self) -> u64 {
        self.nodes
    }

    /// True once the budget has run out (the node limit, or the caller's [`Stop`]).
    pub(super) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Why the budget ran out, if it has: the caller's [`Stop`] (a time limit, for the CLI
    /// and the C API) or the node limit.
    pub(super) fn exhausted(&self) -> Option<Exhausted> {
        if self.by_caller {
            Some(Exhausted::Caller)
        } else if self.stopped || self.max_nodes.is_some_and(|m| self.nodes >= m) {
            Some(Exhausted::Nodes)
        } else {
            None
        }
    }

    /// Counts one node; true when the search must stop.
    pub(super) fn tick(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        if self.max_nodes.is_some_and(|m| self.nodes >= m) {
            self.stopped = true;
            return true;
        }
        self.nodes += 1;
        if self.nodes % 256 == 0 {
            self.ask();
        }
        self.stopped
    }

    /// Counts one unit of work inside a node (a candidate tried), asking the caller's
    /// [`Stop`] now and then, so that expensive nodes do not overrun a deadline. Does not
    /// count towards the node budget. True when the search must stop.
    pub(super) fn poll(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.work = self.work.wrapping_add(1);
        if self.work % 64 == 0 {
            self.ask();
        }
        self.stopped
    }

    /// True when no more search may start: the node limit is reached, or the caller's
    /// [`Stop`] says so (asked every time).
    pub(super) fn out_of_budget(&mut self) -> bool {
        if self.stopped || self.max_nodes.is_some_and(|m| self.nodes >= m) {
            return true;
        }
        self.ask();
        self.stopped
    }

    /// Asks the caller's [`Stop`], if any, and records a "stop".
    fn ask(&mut self) {
        if let Some(f) = self.stop.as_mut() {
            if f.should_stop() {
                self.stopped = true;
                self.by_caller = true;
            }
        }
    }
}
