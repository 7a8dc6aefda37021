//! Laps: the prologue ends, the iteration wraps lap after lap, and each lap is served from
//! the plan or, when the lap before did not match it, by guided best fit (the module docs'
//! "Guided laps").

use super::state::{GuidedAllocator, List};
use crate::plan::Slot;

/// In a guided lap, a request whose slot is planned to live less than `1 / SHORT_LIVED` of a
/// lap is placed high in the arena (two-ended placement keeps short-lived blocks from
/// splitting the long-lived ones' free space). Chosen on held-out seeds: of 4, 8, 16, 32 and
/// 64, the highest geometric-mean utilisation over the six DTR logs with `--repeat 5
/// --dynamic SEED` for seeds 1–3 (reported on seeds 4–7 in the README).
pub const SHORT_LIVED: u64 = 64;

impl GuidedAllocator {
    /// The prologue is over (or empty): live non-persistent prologue allocations become
    /// unprotected and the first lap begins.
    pub(super) fn start_laps(&mut self) {
        if self.list == List::Prologue {
            self.advance_ends(None);
        }
        self.list = List::Iteration;
        self.index_valid = false; // another list: other ranges
        self.cursor = 0;
        self.end_ptr = 0;
        self.now = 0;
        self.counters.laps += 1;
    }

    /// Ends a lap: every live iteration slot becomes unprotected; re-plans if warranted.
    pub(super) fn new_lap(&mut self) {
        self.advance_ends(None);
        self.end_ptr = 0;
        self.now = 0;
        self.counters.laps += 1;
        let threshold = (self.lap_requests / 100).max(1);
        if self.config.replan && self.grew && self.lap_misses > threshold {
            self.replan();
        }
        // Sizes that drift from the plan make fixed offsets fragment the arena: serve the
        // next lap by guided best fit unless this one matched the plan almost exactly.
        self.guided = self.lap_exact.saturating_mul(100) < self.lap_requests.saturating_mul(95);
        self.counters.guided_laps += u64::from(self.guided);
        self.lap_requests = 0;
        self.lap_misses = 0;
        self.lap_exact = 0;
    }

    /// Moves the cursor past slot `k` (wrapping a lap or ending the prologue).
    pub(super) fn step_past(&mut self, k: usize) {
        let n = self.slots(self.list).len();
        self.cursor = k + 1;
        if self.cursor >= n {
            match self.list {
                List::Prologue => self.start_laps(),
                List::Iteration => {
                    self.cursor = 0;
                    self.new_lap();
                }
            }
        }
    }

    /// True when `s` is planned to live less than 1/[`SHORT_LIVED`] of a lap.
    pub(super) fn short_lived(&self, s: &Slot) -> bool {
        let lap = self.plan.iteration.last().map_or(1, |l| l.start.max(1));
        u64::from(s.end - s.start) * SHORT_LIVED < u64::from(lap)
    }
}

/// True when a request taking `need` bytes matches a slot of `size` bytes: it fits and fills
/// at least 7/8 of it.
pub(super) fn matches_slot(need: u64, size: u64) -> bool {
    need <= size && need.saturating_mul(8) >= size.saturating_mul(7)
}
