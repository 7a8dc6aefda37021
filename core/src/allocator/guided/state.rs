//! The guided allocator's state: [`GuidedConfig`], the [`GuidedAllocator`] itself with what
//! each field holds, its construction, accessors and stats. The serving logic lives in the
//! sibling files (`serve.rs`, `laps.rs`, `gaps.rs`, `unprotected.rs`, `replan.rs`), which
//! all build on this one.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::counters::GuidedCounters;
use super::lane::Lane;
use crate::allocator::interface::{Addr, AllocStats};
use crate::allocator::layout::{DEFAULT_BASE, DEFAULT_PAGE_SIZE};
use crate::allocator::setup::{SetupError, check_page_layout};
use crate::plan::{Plan, Slot};
use crate::units::round_up;

/// How a [`GuidedAllocator`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuidedConfig {
    /// Address of arena offset 0; a multiple of `page_size`.
    pub base: Addr,
    /// Granule the arena is reserved and grown in; a power of two at least
    /// [`ALIGN`](crate::allocator::layout::ALIGN).
    pub page_size: u64,
    /// Most bytes the arena may grow to; `None` for no limit.
    pub capacity: Option<u64>,
    /// Re-plan the iteration after laps with many misses (see the module docs).
    pub replan: bool,
}

impl Default for GuidedConfig {
    /// The online allocator's default base and page size, no capacity, re-planning on.
    fn default() -> Self {
        GuidedConfig {
            base: DEFAULT_BASE,
            page_size: DEFAULT_PAGE_SIZE,
            capacity: None,
            replan: true,
        }
    }
}

/// Which slot list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum List {
    Prologue,
    Iteration,
}

/// Where a live allocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// In slot `k` of a list.
    Slot(List, usize),
    /// A miss inside the arena (always unprotected).
    InArena,
}

/// A live allocation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Live {
    pub(super) kind: Kind,
    /// Bytes requested.
    pub(super) requested: u64,
    /// Arena offset and end of the bytes it occupies.
    pub(super) off: u64,
    pub(super) end: u64,
}

/// Serves requests from a [`Plan`]; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct GuidedAllocator {
    pub(super) plan: Plan,
    pub(super) config: GuidedConfig,
    pub(super) prologue: Lane,
    pub(super) iteration: Lane,
    /// `(offset, end)` of the persistent slots: in the way of every lap.
    pub(super) blockers: Vec<(u64, u64)>,
    /// The list being served.
    pub(super) list: List,
    /// Next expected slot of `list`.
    pub(super) cursor: usize,
    /// Position in the list's `by_end`: every slot before it has had its planned end pass.
    pub(super) end_ptr: usize,
    /// Latest slot start the pointer has been advanced to (`u32::MAX` after a list ends).
    pub(super) now: u32,
    /// Unprotected live allocations in the arena: offset -> end offset.
    pub(super) outside: BTreeMap<u64, u64>,
    /// While `index_valid`: every range `live_ranges` gives for `list`, as a multiset
    /// (`(offset, end)` -> how many times), in order. Kept up to date by misses and frees;
    /// a hit marks it stale (so hits stay O(1)), and the next miss rebuilds it.
    pub(super) index: BTreeMap<(u64, u64), u32>,
    pub(super) index_valid: bool,
    /// Live allocations by address.
    pub(super) live: hashbrown::HashMap<Addr, Live>,
    /// Largest request seen at each iteration position since the last re-plan (0: none).
    pub(super) seen: Vec<u64>,
    /// A position's request was larger than its slot since the last re-plan.
    pub(super) grew: bool,
    pub(super) lap_requests: u64,
    pub(super) lap_misses: u64,
    /// Requests this lap that came in order with exactly their slot's (rounded) size.
    pub(super) lap_exact: u64,
    /// Serving this lap by guided best fit instead of hits (see the module docs).
    pub(super) guided: bool,
    /// Mappings of the arena: 1 for the first request, one more per growth.
    pub(super) arena_maps: u64,
    pub(super) counters: GuidedCounters,
    pub(super) allocated: u64,
    pub(super) started: bool,
    pub(super) peak_allocated: u64,
    pub(super) peak_reserved: u64,
}

impl GuidedAllocator {
    /// An allocator serving `plan` under `config`.
    ///
    /// # Errors
    /// [`SetupError::Plan`] when the plan is invalid ([`Plan::validate`]);
    /// [`SetupError::BadPageSize`] when `config.page_size` is not a power of two at least
    /// [`ALIGN`](crate::allocator::layout::ALIGN) or `config.base` is not a multiple of it;
    /// [`SetupError::AddressOverflow`] when the arena does not fit the address space above
    /// the base.
    pub fn new(plan: Plan, config: GuidedConfig) -> Result<Self, SetupError> {
        plan.validate().map_err(SetupError::Plan)?;
        check_page_layout(config.base, config.page_size)?;
        let overflow = SetupError::AddressOverflow {
            base: config.base,
            arena_size: plan.arena_size,
        };
        config
            .base
            .checked_add(plan.arena_size)
            .and_then(|end| round_up(end, config.page_size))
            .ok_or(overflow)?;
        let prologue = Lane::new(&plan.prologue, &[], plan.arena_size, false);
        let blockers = persistent_ranges(&plan);
        let iteration = Lane::new(&plan.iteration, &blockers, plan.arena_size, true);
        let n = plan.iteration.len();
        let mut a = GuidedAllocator {
            plan,
            config,
            prologue,
            iteration,
            blockers,
            list: List::Prologue,
            cursor: 0,
            end_ptr: 0,
            now: 0,
            outside: BTreeMap::new(),
            index: BTreeMap::new(),
            index_valid: false,
            live: hashbrown::HashMap::new(),
            seen: vec![0; n],
            grew: false,
            lap_requests: 0,
            lap_misses: 0,
            lap_exact: 0,
            guided: false,
            arena_maps: 1,
            counters: GuidedCounters::default(),
            allocated: 0,
            started: false,
            peak_allocated: 0,
            peak_reserved: 0,
        };
        if a.plan.prologue.is_empty() {
            a.start_laps();
        }
        a.check_invariants();
        Ok(a)
    }

    /// The plan served (after any re-plans).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The configuration.
    pub fn config(&self) -> &GuidedConfig {
        &self.config
    }

    /// Hits, misses, re-plans and laps so far.
    pub fn counters(&self) -> GuidedCounters {
        self.counters
    }

    /// Requests served from the plan.
    pub fn hits(&self) -> u64 {
        self.counters.hits
    }

    /// Requests not served from the plan.
    pub fn misses(&self) -> u64 {
        self.counters.misses
    }

    pub(super) fn slots(&self, list: List) -> &[Slot] {
        match list {
            List::Prologue => &self.plan.prologue,
            List::Iteration => &self.plan.iteration,
        }
    }

    pub(super) fn lane_mut(&mut self, list: List) -> &mut Lane {
        match list {
            List::Prologue => &mut self.prologue,
            List::Iteration => &mut self.iteration,
        }
    }

    pub(super) fn lane_of(&self, list: List) -> &Lane {
        match list {
            List::Prologue => &self.prologue,
            List::Iteration => &self.iteration,
        }
    }

    /// True when the arena may grow to `bytes`: within the capacity (in whole pages) and the
    /// address space.
    pub(super) fn can_grow_to(&self, bytes: u64) -> bool {
        let Some(pages) = round_up(bytes, self.config.page_size) else {
            return false;
        };
        self.config.base.checked_add(pages).is_some()
            && self.config.capacity.is_none_or(|c| pages <= c)
    }

    pub(super) fn update_peaks(&mut self) {
        let s = self.stats_now();
        self.peak_allocated = self.peak_allocated.max(s.allocated);
        self.peak_reserved = self.peak_reserved.max(s.reserved);
    }

    /// The arena in whole pages once the first request came, 0 before.
    pub(super) fn reserved_now(&self) -> u64 {
        if self.started {
            // Cannot overflow: `new` and `can_grow_to` checked the rounded arena fits.
            round_up(self.plan.arena_size, self.config.page_size).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    /// The stats without the peaks.
    pub(super) fn stats_now(&self) -> AllocStats {
        let reserved = self.reserved_now();
        let mapped = u64::from(reserved > 0);
        AllocStats {
            allocated: self.allocated,
            peak_allocated: 0,
            reserved,
            peak_reserved: 0,
            segments: mapped,
            reservations: mapped * self.arena_maps,
        }
    }
}

/// `(offset, end)` of the plan's persistent slots.
fn persistent_ranges(plan: &Plan) -> Vec<(u64, u64)> {
    plan.prologue
        .iter()
        .filter(|s| s.is_persistent())
        .map(|s| (s.offset, s.offset + s.size))
        .collect()
}
