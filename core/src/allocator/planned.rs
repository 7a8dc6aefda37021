//! A plan-guided allocator (allocator name `"memplan-plan"`) and the plan builder.
//!
//! [`build_plan`] turns a profiled trace into a [`Plan`]: a *prologue* (warm-up and the first
//! iteration, including the allocations never freed) and one steady-state *iteration*, both
//! packed together with [`crate::pack`] so that the iteration's slots avoid the persistent
//! ones. [`PlannedAllocator`] then serves requests in order from that plan.
//!
//! # Serving
//! - The prologue's slots are served first, then the iteration's, lap after lap. A request is
//!   compared with the next expected slot of the current list and, to survive a skipped or
//!   extra request, the [`LOOKAHEAD`]` - 1` slots after it (wrapping at the end of a lap). The
//!   first slot on the same stream, not occupied, whose memory is clear of every live
//!   allocation the plan does not protect (below), and whose *room* holds the request (a
//!   slot after the expected one: which the request fills at least half of, without room) is
//!   a **hit**: the request gets `base + slot.offset` and the cursor moves past that slot.
//! - A slot's *room* is the slot plus the space above it that no other slot uses while it is
//!   planned to be alive (precomputed). A request larger than its slot — a longer sequence, a
//!   busier expert — still hits when it fits that room.
//! - Anything else is a **miss**. When the next expected slot is on the same stream and the
//!   request is within a factor of 4 of it, the request is taken to be that slot's request
//!   with another size: the cursor moves past the slot and the size is remembered for
//!   re-planning. A miss is placed in the arena, in order of preference:
//!   1. where the plan leaves room at that moment: for a request taken to be slot `c`'s, the
//!      best-fitting gap clear of the slots still to come that are planned to be alive with
//!      `c` (and of every live allocation); for another request, above the highest address
//!      any slot still to come this lap will use (precomputed per position);
//!   2. else the best-fitting gap between live allocations, even where a slot still to come
//!      was planned (that slot's request will then miss in turn: in the worst case the arena
//!      is served best fit, like memplan's online allocator);
//!   3. else at the top of the arena, which grows (in pages; a reservation each time) up to
//!      the capacity.
//! - `free` releases the slot or the in-arena block.
//!
//! # Guided laps
//! Fixed offsets only pay while requests match the plan. When fewer than 95 % of a lap's
//! requests came in order and fill 7/8 to all of their slot (or, within a lap, once a quarter
//! of at least 16 requests missed), the next lap (the rest of this one) is *guided*: no hits;
//! each request is still matched to its position (for the counters and re-planning) and
//! placed best fit between live allocations — except a request planned to be short-lived
//! ([`SHORT_LIVED`]), which goes to the highest gap that holds it. The lap after a guided
//! one is served from the plan again if it matched.
//!
//! # Unprotected allocations
//! The plan guarantees that slots alive together do not overlap. A live allocation is
//! *protected* while it sits in its slot (room included) within its planned lifetime, or is
//! persistent. Every other live allocation in the arena — a planned one freed later than
//! planned or carried over into the next lap (*overdue*), a prologue allocation still live
//! when the laps start, an in-arena miss — is kept in an ordered map, and a hit is checked
//! against its neighbours there, so no hit ever overlaps live memory.
//!
//! # Re-planning
//! At the end of a lap that had more than `max(1, lap / 100)` misses, when some slot saw a
//! larger request than it holds, the iteration is re-planned from what the laps showed: each
//! slot takes the largest size seen at its position, and the slots are placed again (largest
//! first, each at the lowest offset clear of the persistent slots and of the slots already
//! placed that are alive with it). Live allocations are not moved: persistent ones are avoided
//! by construction, the rest are unprotected from then on and hits check against them. The
//! arena grows when the new iteration needs more (never beyond the capacity; then the old
//! plan stays).
//!
//! # Complexity
//! A planned request (hit) costs O(1) amortised when no unprotected allocation is live: a
//! bounded scan of [`LOOKAHEAD`] slots, one hash-map insert, and advancing a pointer over the
//! slots sorted by end, which moves at most once over every slot per lap (a lap has at least
//! `len / LOOKAHEAD` hits). With `k` unprotected allocations the check adds O(log k). The gap
//! searches of a miss read an ordered multiset of the `m` live arena ranges (persistent
//! slots, unprotected allocations, occupied slots), which misses and frees keep up to date
//! in O(log m) each; a hit only marks it stale, and the first miss after a hit rebuilds it in
//! O(m log m). A miss then costs O(m) (one pass over the gaps), plus, for a request taken to
//! be slot `c`'s outside guided laps, O(n + p log p) for the `p` slots still to come that
//! are alive with `c` (found by a scan of the slots after `c`). `free` is O(1) expected (plus
//! O(log k) when unprotected, and O(log m) while the index is kept, from a miss to the next
//! hit). Building the allocator and re-planning cost O(n²) in the slots of a list (the
//! rooms, and the greedy placement, which merges the slots placed, kept in order, with the
//! persistent ones instead of sorting them for every slot).
//!
//! # Stats
//! `allocated` is the requested bytes of live allocations; `reserved` is the arena rounded up
//! to whole pages, counted from the first request on (the arena only grows).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::online::{ALIGN, OnlineConfig};
use super::{Addr, AllocError, AllocStats, Allocator};
use crate::lifetime::{Analysis, Lifetime};
use crate::plan::{Plan, PlanFileError, Slot};
use crate::{Budget, Buffer, Error, Problem, SolveOptions, pack};

/// In a guided lap, a request whose slot is planned to live less than `1 / SHORT_LIVED` of a
/// lap is placed high in the arena (two-ended placement keeps short-lived blocks from
/// splitting the long-lived ones' free space). Chosen by measurement: of 4, 8, 16, 32 and 64
/// on the DTR logs with `--repeat 5 --dynamic 7`, 32 gave the lowest peak reserved.
pub const SHORT_LIVED: u64 = 32;

/// How many slots, from the next expected one on, a request is compared with.
pub const LOOKAHEAD: usize = 4;

/// `x` rounded up to a multiple of the power of two `g`; `None` on overflow.
fn round_up(x: u64, g: u64) -> Option<u64> {
    Some(x.checked_add(g - 1)? & !(g - 1))
}

/// Bytes a request of `size` takes in the arena: rounded up to [`ALIGN`], at least [`ALIGN`].
fn rounded(size: u64) -> Option<u64> {
    round_up(size.max(1), ALIGN)
}

/// Why a [`PlannedAllocator`] could not be set up.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The plan is invalid.
    Plan(PlanFileError),
    /// The page size is not a power of two at least [`ALIGN`], or the base is not a multiple
    /// of it.
    BadPageSize {
        /// The base given.
        base: Addr,
        /// The page size given.
        page_size: u64,
    },
    /// The arena does not fit above the base in a `u64` address space.
    AddressOverflow {
        /// The base given.
        base: Addr,
        /// The plan's arena size.
        arena_size: u64,
    },
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::Plan(e) => write!(f, "invalid plan: {e}"),
            SetupError::BadPageSize { base, page_size } => write!(
                f,
                "page size {page_size} must be a power of two >= {ALIGN} dividing the base {base:#x}"
            ),
            SetupError::AddressOverflow { base, arena_size } => write!(
                f,
                "an arena of {arena_size} bytes at {base:#x} does not fit the 64-bit address space"
            ),
        }
    }
}

impl core::error::Error for SetupError {}

/// How [`build_plan`] profiles a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Iterations profiled (at least 1; more than the trace has means all of them). The
    /// prologue is everything before the last profiled iteration (at least the first
    /// iteration); the steady iteration is the last profiled one, each slot as large as the
    /// largest request at its position over the profiled iterations that have the same
    /// number of per-iteration allocations.
    pub profile_iterations: usize,
    /// Profile only the first this many events of the trace, as a profiling run stopped
    /// early would record them: allocations made later are not planned, and frees that come
    /// later are not seen (those allocations are planned as never freed). `None`: all.
    pub profile_events: Option<usize>,
    /// Node budget of [`crate::pack`] (deterministic).
    pub max_nodes: u64,
}

impl Default for PlanOptions {
    /// One profiled iteration, 200,000 nodes.
    fn default() -> Self {
        PlanOptions {
            profile_iterations: 1,
            profile_events: None,
            max_nodes: 200_000,
        }
    }
}

/// Builds the plan of a run from the lifetime analysis of its profiled trace (`events` is the
/// trace's number of events, [`crate::trace::Trace::len`]).
///
/// With iterations `0..m` starting at `analysis.iteration_starts` and `k =
/// min(options.profile_iterations, m)` of them profiled, the steady iteration comes from
/// iteration `s = k - 1` and the prologue holds every allocation made before iteration
/// `max(s, 1)` starts (all of them, and no iteration at all, when the trace has one
/// iteration: then nothing is known to repeat, and requests after the prologue are served as
/// misses). Allocations that are
/// neither — never freed and made after the prologue — are not planned (they will be
/// misses). Sizes are rounded up to [`ALIGN`] (at least [`ALIGN`] bytes), offsets are
/// [`ALIGN`]-aligned, and times are event indices: from the start of the trace in the
/// prologue, from the start of iteration `s` in the iteration.
///
/// Prologue and iteration are packed as one problem, the iteration placed right after the
/// prologue in time with the persistent allocations alive over both, so the plan is valid
/// ([`Plan::validate`]) and as tight as [`crate::pack`] makes it.
///
/// # Errors
/// [`Error::InvalidOptions`] when `profile_iterations` is 0; [`Error::Overflow`] when sizes
/// overflow `u64` or event indices do not fit `u32`; any error of [`crate::pack`].
pub fn build_plan(
    analysis: &Analysis,
    events: usize,
    options: &PlanOptions,
) -> Result<Plan, Error> {
    if options.profile_iterations == 0 {
        return Err(Error::InvalidOptions {
            reason: "at least one iteration must be profiled",
        });
    }
    let overflow = |what: usize| Error::Overflow {
        id: format!("{what}"),
    };
    let to_u32 = |x: usize| u32::try_from(x).map_err(|_| overflow(x));
    let starts: &[usize] = if analysis.iteration_starts.is_empty() {
        &[0]
    } else {
        &analysis.iteration_starts
    };
    let m = starts.len();
    let k = options.profile_iterations.min(m);
    let s = k - 1;
    let limit = options.profile_events.unwrap_or(usize::MAX);
    let p_end = if m > 1 { starts[s.max(1)] } else { events }.min(limit);
    let lap_start = starts[s];
    let lap_end = starts.get(s + 1).copied().unwrap_or(events);
    let lap_len = lap_end.saturating_sub(lap_start);

    // The steady iteration, with the envelope of sizes over matching profiled iterations.
    let temps_of = |it: usize| -> Vec<&Lifetime> {
        analysis
            .lifetimes
            .iter()
            .filter(|l| l.iteration == Some(it) && l.free_event.is_some())
            .collect()
    };
    // A trace without repeated iterations is all prologue: nothing is known to repeat.
    let steady = if m > 1 && lap_end <= limit {
        temps_of(s)
    } else {
        Vec::new()
    };
    let mut sizes: Vec<u64> = steady.iter().map(|l| l.size).collect();
    for it in 0..s {
        let other = temps_of(it);
        if other.len() == steady.len()
            && other.iter().zip(&steady).all(|(a, b)| a.stream == b.stream)
        {
            for (sz, o) in sizes.iter_mut().zip(&other) {
                *sz = (*sz).max(o.size);
            }
        }
    }
    let prologue: Vec<&Lifetime> = analysis
        .lifetimes
        .iter()
        .filter(|l| l.alloc_event < p_end)
        .collect();

    // One problem: prologue on the trace's timeline, the iteration right after it.
    let horizon = p_end.checked_add(lap_len).ok_or_else(|| overflow(p_end))?;
    let mut problem = Problem::new();
    let mut plan_prologue = Vec::with_capacity(prologue.len());
    for (i, l) in prologue.iter().enumerate() {
        let size = rounded(l.size).ok_or_else(|| overflow(l.alloc_index))?;
        let (end, joint_end) = match l.free_event.filter(|&f| f < limit) {
            // u32::MAX itself marks a persistent slot.
            Some(f) if f >= u32::MAX as usize => return Err(overflow(f)),
            Some(f) => (to_u32(f)?, f.min(horizon)),
            None => (u32::MAX, horizon + 1),
        };
        problem.push(
            Buffer::new(
                format!("p{i}"),
                l.alloc_event as u64,
                joint_end as u64,
                size,
            )
            .with_alignment(ALIGN),
        )?;
        plan_prologue.push(Slot {
            size,
            stream: l.stream,
            offset: 0,
            start: to_u32(l.alloc_event)?,
            end,
        });
    }
    let mut plan_iteration = Vec::with_capacity(steady.len());
    for (i, (l, &sz)) in steady.iter().zip(&sizes).enumerate() {
        let size = rounded(sz).ok_or_else(|| overflow(l.alloc_index))?;
        let start = l.alloc_event - lap_start;
        let end = l.free_event.unwrap_or(lap_end) - lap_start;
        let end32 = to_u32(end)?;
        if end32 == u32::MAX {
            return Err(overflow(end));
        }
        problem.push(
            Buffer::new(
                format!("i{i}"),
                (p_end + start) as u64,
                (p_end + end.min(lap_len)) as u64,
                size,
            )
            .with_alignment(ALIGN),
        )?;
        plan_iteration.push(Slot {
            size,
            stream: l.stream,
            offset: 0,
            start: to_u32(start)?,
            end: end32,
        });
    }
    let mut arena_size = 0;
    if !problem.is_empty() {
        let solution = pack(
            &problem,
            SolveOptions {
                capacity: None,
                budget: Budget {
                    max_nodes: Some(options.max_nodes),
                    stop: None,
                },
            },
        )?;
        for (slot, &o) in plan_prologue
            .iter_mut()
            .chain(plan_iteration.iter_mut())
            .zip(&solution.offsets)
        {
            slot.offset = o;
        }
        arena_size = solution.peak;
    }
    let plan = Plan {
        arena_size,
        prologue: plan_prologue,
        iteration: plan_iteration,
    };
    debug_assert_eq!(plan.validate(), Ok(()));
    Ok(plan)
}

/// How a [`PlannedAllocator`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedConfig {
    /// Address of arena offset 0; a multiple of `page_size`.
    pub base: Addr,
    /// Granule the arena is reserved and grown in; a power of two at least [`ALIGN`].
    pub page_size: u64,
    /// Most bytes the arena may grow to; `None` for no limit.
    pub capacity: Option<u64>,
    /// Re-plan the iteration after laps with many misses (see the module docs).
    pub replan: bool,
}

impl Default for PlannedConfig {
    /// The online allocator's default base and page size, no capacity, re-planning on.
    fn default() -> Self {
        let o = OnlineConfig::default();
        PlannedConfig {
            base: o.base,
            page_size: o.page_size,
            capacity: None,
            replan: true,
        }
    }
}

/// Counters of a [`PlannedAllocator`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanCounters {
    /// Requests served from a slot.
    pub hits: u64,
    /// Requests not served from a slot.
    pub misses: u64,
    /// Misses placed where the plan leaves room (the rest took a planned slot's place or grew
    /// the arena).
    pub misses_in_room: u64,
    /// Times a miss grew the arena.
    pub growths: u64,
    /// Times the iteration was re-planned.
    pub replans: u64,
    /// Laps of the iteration begun (the first one when the prologue ends).
    pub laps: u64,
    /// Laps served by guided best fit because the lap before did not match the plan.
    pub guided_laps: u64,
}

/// Which slot list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Prologue,
    Iteration,
}

/// Where a live allocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// In slot `k` of a list.
    Slot(List, usize),
    /// A miss inside the arena (always unprotected).
    InArena,
}

/// A live allocation.
#[derive(Debug, Clone, Copy)]
struct Live {
    kind: Kind,
    /// Bytes requested.
    requested: u64,
    /// Arena offset and end of the bytes it occupies.
    off: u64,
    end: u64,
}

/// Per-list serving state.
#[derive(Debug, Clone, Default)]
struct Lane {
    /// Room of each slot: bytes from its offset that are free of other slots while it is
    /// planned to be alive.
    room: Vec<u64>,
    /// For each position, the lowest arena offset above every slot alive at or after the
    /// position's start (and every persistent slot): free for the rest of the lap.
    free_above: Vec<u64>,
    /// Slot indices sorted by `(end, index)`.
    by_end: Vec<usize>,
    /// Arena offset and end of the live allocation in each slot (it may sit where an
    /// earlier plan put the slot); `None` when the slot is free.
    occupant: Vec<Option<(u64, u64)>>,
    /// The occupied slots, in no order, and each slot's index in it (while occupied): the
    /// gap searches visit only live slots.
    occupied: Vec<usize>,
    occupied_at: Vec<usize>,
    /// The slots are in order of start (as [`build_plan`] makes them): a scan for slots
    /// alive with one may stop at the first that starts after it ends.
    by_start: bool,
}

/// Serves requests from a [`Plan`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct PlannedAllocator {
    plan: Plan,
    config: PlannedConfig,
    prologue: Lane,
    iteration: Lane,
    /// `(offset, end)` of the persistent slots: in the way of every lap.
    blockers: Vec<(u64, u64)>,
    /// The list being served.
    list: List,
    /// Next expected slot of `list`.
    cursor: usize,
    /// Position in the list's `by_end`: every slot before it has had its planned end pass.
    end_ptr: usize,
    /// Latest slot start the pointer has been advanced to (`u32::MAX` after a list ends).
    now: u32,
    /// Unprotected live allocations in the arena: offset -> end offset.
    outside: BTreeMap<u64, u64>,
    /// While `index_valid`: every range [`Self::live_ranges`] gives for `list`, as a multiset
    /// (`(offset, end)` -> how many times), in order. Kept up to date by misses and frees;
    /// a hit marks it stale (so hits stay O(1)), and the next miss rebuilds it.
    index: BTreeMap<(u64, u64), u32>,
    index_valid: bool,
    /// Live allocations by address.
    live: hashbrown::HashMap<Addr, Live>,
    /// Largest request seen at each iteration position since the last re-plan (0: none).
    seen: Vec<u64>,
    /// A position's request was larger than its slot since the last re-plan.
    grew: bool,
    lap_requests: u64,
    lap_misses: u64,
    /// Requests this lap that came in order with exactly their slot's (rounded) size.
    lap_exact: u64,
    /// Serving this lap by guided best fit instead of hits (see the module docs).
    guided: bool,
    /// Mappings of the arena: 1 for the first request, one more per growth.
    arena_maps: u64,
    counters: PlanCounters,
    allocated: u64,
    started: bool,
    peak_allocated: u64,
    peak_reserved: u64,
}

/// Rooms and free-above heights of `slots`, with `blockers` (offset, end) alive throughout.
fn lane(slots: &[Slot], blockers: &[(u64, u64)], arena: u64, persistent_ok: bool) -> Lane {
    let n = slots.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (slots[i].start, i));
    let mut room = Vec::with_capacity(n);
    for (k, s) in slots.iter().enumerate() {
        if s.is_persistent() && !persistent_ok {
            room.push(s.size);
            continue;
        }
        let top = s.offset + s.size;
        let mut limit = arena;
        for &(o, _) in blockers {
            if o >= top {
                limit = limit.min(o);
            }
        }
        // Slots alive together with k: start before k's end and end after k's start.
        let upto = order.partition_point(|&j| slots[j].start < s.end);
        for &j in &order[..upto] {
            let t = &slots[j];
            if j != k && t.end > s.start && t.offset >= top {
                limit = limit.min(t.offset);
            }
        }
        room.push(limit - s.offset);
    }
    // free_above[k]: max top over slots with end > start_k, and over the blockers.
    let base_top = blockers.iter().map(|&(_, e)| e).max().unwrap_or(0);
    let mut by_end_desc: Vec<usize> = (0..n).collect();
    by_end_desc.sort_by_key(|&i| core::cmp::Reverse(slots[i].end));
    let mut prefix_max = Vec::with_capacity(n);
    let mut m = base_top;
    for &i in &by_end_desc {
        m = m.max(slots[i].offset + slots[i].size);
        prefix_max.push(m);
    }
    let free_above = slots
        .iter()
        .map(|s| {
            let c = by_end_desc.partition_point(|&i| slots[i].end > s.start);
            if c == 0 { base_top } else { prefix_max[c - 1] }
        })
        .collect();
    let mut by_end: Vec<usize> = (0..n).collect();
    by_end.sort_by_key(|&i| (slots[i].end, i));
    Lane {
        room,
        free_above,
        by_end,
        occupant: vec![None; n],
        occupied: Vec::new(),
        occupied_at: vec![usize::MAX; n],
        by_start: slots.windows(2).all(|w| w[0].start <= w[1].start),
    }
}

impl Lane {
    /// Sets slot `k`'s occupant, keeping `occupied` in step. O(1).
    fn occupy(&mut self, k: usize, r: Option<(u64, u64)>) {
        let was = self.occupant[k].is_some();
        self.occupant[k] = r;
        match (was, r.is_some()) {
            (false, true) => {
                self.occupied_at[k] = self.occupied.len();
                self.occupied.push(k);
            }
            (true, false) => {
                let i = self.occupied_at[k];
                self.occupied.swap_remove(i);
                if let Some(&moved) = self.occupied.get(i) {
                    self.occupied_at[moved] = i;
                }
                self.occupied_at[k] = usize::MAX;
            }
            _ => {}
        }
    }
}

impl PlannedAllocator {
    /// An allocator serving `plan` under `config`.
    ///
    /// # Errors
    /// [`SetupError::Plan`] when the plan is invalid ([`Plan::validate`]);
    /// [`SetupError::BadPageSize`] when `config.page_size` is not a power of two at least
    /// [`ALIGN`] or `config.base` is not a multiple of it; [`SetupError::AddressOverflow`]
    /// when the arena does not fit the address space above the base.
    pub fn new(plan: Plan, config: PlannedConfig) -> Result<Self, SetupError> {
        plan.validate().map_err(SetupError::Plan)?;
        if !config.page_size.is_power_of_two()
            || config.page_size < ALIGN
            || config.base % config.page_size != 0
        {
            return Err(SetupError::BadPageSize {
                base: config.base,
                page_size: config.page_size,
            });
        }
        let overflow = SetupError::AddressOverflow {
            base: config.base,
            arena_size: plan.arena_size,
        };
        config
            .base
            .checked_add(plan.arena_size)
            .and_then(|end| round_up(end, config.page_size))
            .ok_or(overflow)?;
        let prologue = lane(&plan.prologue, &[], plan.arena_size, false);
        let blockers = persistent_ranges(&plan);
        let iteration = lane(&plan.iteration, &blockers, plan.arena_size, true);
        let n = plan.iteration.len();
        let mut a = PlannedAllocator {
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
            counters: PlanCounters::default(),
            allocated: 0,
            started: false,
            peak_allocated: 0,
            peak_reserved: 0,
        };
        if a.plan.prologue.is_empty() {
            a.start_laps();
        }
        Ok(a)
    }

    /// The plan served (after any re-plans).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Hits, misses, re-plans and laps so far.
    pub fn counters(&self) -> PlanCounters {
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

    fn slots(&self, list: List) -> &[Slot] {
        match list {
            List::Prologue => &self.plan.prologue,
            List::Iteration => &self.plan.iteration,
        }
    }

    fn lane_mut(&mut self, list: List) -> &mut Lane {
        match list {
            List::Prologue => &mut self.prologue,
            List::Iteration => &mut self.iteration,
        }
    }

    fn lane_of(&self, list: List) -> &Lane {
        match list {
            List::Prologue => &self.prologue,
            List::Iteration => &self.iteration,
        }
    }

    /// Marks every live slot of the current list whose planned end is at most `t` (all of
    /// them for `None`) as unprotected.
    fn advance_ends(&mut self, t: Option<u32>) {
        self.now = self.now.max(t.unwrap_or(u32::MAX));
        let list = self.list;
        loop {
            let lane = self.lane_of(list);
            let Some(&j) = lane.by_end.get(self.end_ptr) else {
                break;
            };
            let s = self.slots(list)[j];
            if t.is_some_and(|t| s.end > t) {
                break;
            }
            if let Some((off, end)) = lane.occupant[j] {
                // Persistent prologue slots stay where every lap expects them; an iteration
                // slot is never persistent, whatever its end.
                if list == List::Iteration || !s.is_persistent() {
                    self.outside_insert(off, end);
                }
            }
            self.end_ptr += 1;
        }
    }

    /// The prologue is over (or empty): live non-persistent prologue allocations become
    /// unprotected and the first lap begins.
    fn start_laps(&mut self) {
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
    fn new_lap(&mut self) {
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

    /// Re-plans the iteration from the largest sizes seen (see the module docs).
    fn replan(&mut self) {
        let mut slots = self.plan.iteration.clone();
        for (s, &seen) in slots.iter_mut().zip(&self.seen) {
            if let Some(r) = rounded(seen) {
                s.size = s.size.max(r);
            }
        }
        let Some(top) = place_around(&mut slots, &self.blockers) else {
            return;
        };
        // Never grow the arena for a re-plan: growth only serves requests that came. A plan
        // that does not fit the arena as it is waits for misses to grow it.
        if top > self.plan.arena_size {
            return;
        }
        self.plan.iteration = slots;
        debug_assert_eq!(self.plan.validate(), Ok(()));
        let old = core::mem::take(&mut self.iteration);
        // Live allocations stay where they are: the occupants carry over.
        self.iteration = Lane {
            occupant: old.occupant,
            occupied: old.occupied,
            occupied_at: old.occupied_at,
            ..lane(
                &self.plan.iteration,
                &self.blockers,
                self.plan.arena_size,
                true,
            )
        };
        self.seen.iter_mut().for_each(|x| *x = 0);
        self.grew = false;
        self.counters.replans += 1;
    }

    /// True when `[off, end)` meets no unprotected allocation.
    fn clear_of_outside(&self, off: u64, end: u64) -> bool {
        if self.outside.is_empty() {
            return true;
        }
        let before = self.outside.range(..=off).next_back();
        let after = self.outside.range(off..).next();
        !(before.is_some_and(|(_, &e)| e > off) || after.is_some_and(|(&o, _)| o < end))
    }

    /// Moves the cursor past slot `k` (wrapping a lap or ending the prologue).
    fn step_past(&mut self, k: usize) {
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

    fn try_hit(&mut self, size: u64, need: u64, stream: u32) -> Option<Addr> {
        let list = self.list;
        let n = self.slots(list).len();
        for d in 0..LOOKAHEAD.min(n) {
            let mut k = self.cursor + d;
            if k >= n {
                if list == List::Prologue {
                    break;
                }
                k -= n;
            }
            let s = self.slots(list)[k];
            let lane = self.lane_of(list);
            if stream != s.stream || lane.occupant[k].is_some() || need > lane.room[k] {
                continue;
            }
            if d > 0 && (need > s.size || s.size / 2 > need) {
                // Skipping ahead only for a request that looks like that slot's.
                continue;
            }
            if k < self.cursor {
                // Wrapped within the lookahead: the lap ends here.
                self.cursor = 0;
                self.new_lap();
                if self.slots(list).get(k) != Some(&s) || need > self.lane_of(list).room[k] {
                    return None; // re-planned under our feet: try again next request
                }
            }
            self.advance_ends(Some(s.start));
            if s.end <= self.now {
                // Its planned lifetime is over (a slot further on was served): the plan no
                // longer keeps its range apart from the live allocations.
                continue;
            }
            let end = s.offset + need;
            if !self.clear_of_outside(s.offset, end) {
                continue;
            }
            if list == List::Iteration {
                self.seen[k] = self.seen[k].max(size);
                self.lap_exact += u64::from(d == 0 && matches_slot(need, s.size));
            }
            // Hits do not keep the index of live ranges: the next miss rebuilds it.
            self.index_valid = false;
            self.lane_mut(list).occupy(k, Some((s.offset, end)));
            if need > s.size {
                // Grown into its room: in-arena misses must see it.
                self.outside_insert(s.offset, end);
            }
            self.step_past(k);
            let addr = self.config.base + s.offset;
            self.live.insert(
                addr,
                Live {
                    kind: Kind::Slot(list, k),
                    requested: size,
                    off: s.offset,
                    end,
                },
            );
            return Some(addr);
        }
        None
    }

    /// A miss: remembers the size when the request looks like the expected slot's, then
    /// places it in the arena (see the module docs for the order of preference).
    fn serve_miss(&mut self, size: u64, need: u64, stream: u32) -> Result<Addr, AllocError> {
        let (list, c) = (self.list, self.cursor);
        let mut room = None;
        let mut matched = false;
        if let Some(&s) = self.slots(list).get(c) {
            // Allocations past their planned end must be seen by the gap searches.
            self.advance_ends(Some(s.start));
            matched = s.stream == stream
                && self.lane_of(list).occupant[c].is_none()
                && need <= s.size.saturating_mul(4)
                && s.size <= need.saturating_mul(4);
            if matched {
                if list == List::Iteration {
                    self.seen[c] = self.seen[c].max(size);
                    if need > s.size {
                        self.grew = true;
                    }
                    self.lap_exact += u64::from(matches_slot(need, s.size));
                }
                room = if !self.guided {
                    self.gap_beside(list, c, need)
                } else if self.short_lived(&s) {
                    self.ensure_index();
                    high_gap(self.index.keys().copied(), need, self.plan.arena_size)
                } else {
                    None // best fit between live allocations, below
                };
            } else {
                room = self.gap_above(self.lane_of(list).free_above[c], need);
            }
        }
        let off = match room {
            Some(off) => {
                self.counters.misses_in_room += 1;
                off
            }
            None => self.gap_between_live(need),
        };
        let end = off.checked_add(need).ok_or(AllocError::OutOfMemory {
            size,
            reserved: self.reserved_now(),
        })?;
        if end > self.plan.arena_size {
            if !self.can_grow_to(end) {
                return Err(AllocError::OutOfMemory {
                    size,
                    reserved: self.reserved_now(),
                });
            }
            self.plan.arena_size = end;
            self.arena_maps += 1;
            self.counters.growths += 1;
        }
        if matched {
            // After the search: stepping past the last slot may end the lap and re-plan.
            self.step_past(c);
        }
        self.outside_insert(off, end);
        let addr = self.config.base + off;
        self.live.insert(
            addr,
            Live {
                kind: Kind::InArena,
                requested: size,
                off,
                end,
            },
        );
        Ok(addr)
    }

    /// True when `s` is planned to live less than 1/[`SHORT_LIVED`] of a lap.
    fn short_lived(&self, s: &Slot) -> bool {
        let lap = self.plan.iteration.last().map_or(1, |l| l.start.max(1));
        u64::from(s.end - s.start) * SHORT_LIVED < u64::from(lap)
    }

    /// True when the arena may grow to `bytes`: within the capacity (in whole pages) and the
    /// address space.
    fn can_grow_to(&self, bytes: u64) -> bool {
        let Some(pages) = round_up(bytes, self.config.page_size) else {
            return false;
        };
        self.config.base.checked_add(pages).is_some()
            && self.config.capacity.is_none_or(|c| pages <= c)
    }

    /// Records an unprotected allocation (replacing any at the same offset), keeping the
    /// index of live ranges in step. O(log n).
    fn outside_insert(&mut self, off: u64, end: u64) {
        let old = self.outside.insert(off, end);
        if self.index_valid {
            if let Some(old) = old {
                self.index_remove(off, old);
            }
            *self.index.entry((off, end)).or_insert(0) += 1;
        }
    }

    /// Takes one `(off, end)` out of the index of live ranges. O(log n).
    fn index_remove(&mut self, off: u64, end: u64) {
        if let Some(n) = self.index.get_mut(&(off, end)) {
            *n -= 1;
            if *n == 0 {
                self.index.remove(&(off, end));
            }
        } else {
            debug_assert!(false, "index of live ranges out of step");
        }
    }

    /// Rebuilds the index of live ranges when a hit left it stale. O(n log n).
    fn ensure_index(&mut self) {
        if self.index_valid {
            debug_assert!(self.index_in_step());
            return;
        }
        let mut index = core::mem::take(&mut self.index);
        index.clear();
        for r in self.live_ranges(self.list) {
            *index.entry(r).or_insert(0) += 1;
        }
        self.index = index;
        self.index_valid = true;
    }

    /// True when the index of live ranges holds exactly [`Self::live_ranges`] (debug checks).
    fn index_in_step(&self) -> bool {
        let mut fresh: BTreeMap<(u64, u64), u32> = BTreeMap::new();
        for r in self.live_ranges(self.list) {
            *fresh.entry(r).or_insert(0) += 1;
        }
        fresh == self.index
    }

    /// Everything live in the arena, as `(offset, end)`: persistent slots (laps only),
    /// unprotected allocations and the list's occupied slots. Unsorted.
    fn live_ranges(&self, list: List) -> Vec<(u64, u64)> {
        let mut busy: Vec<(u64, u64)> = Vec::new();
        if list == List::Iteration {
            busy.extend_from_slice(&self.blockers);
        }
        busy.extend(self.outside.iter().map(|(&o, &e)| (o, e)));
        let lane = self.lane_of(list);
        busy.extend(lane.occupied.iter().filter_map(|&j| lane.occupant[j]));
        busy
    }

    /// The best-fitting gap between live allocations inside the arena, or else the lowest
    /// offset above all of them (the arena then grows). O(n) in the live ranges, plus
    /// rebuilding their index after a hit.
    fn gap_between_live(&mut self, need: u64) -> u64 {
        self.ensure_index();
        let (best, top) = best_gap(self.index.keys().copied(), need, self.plan.arena_size);
        best.unwrap_or_else(|| round_up(top, ALIGN).unwrap_or(u64::MAX))
    }

    /// The best-fitting arena gap for a request taken to be slot `c`'s (the expected one):
    /// clear of the persistent slots, of every unprotected allocation, of the list's live
    /// allocations and of every slot still to come this lap that is planned to be alive
    /// together with slot `c` (so later hits are not blocked while it lives as planned).
    /// Slots whose turn has passed without being occupied leave their range to it. The
    /// smallest gap that holds `need`, the lowest among equal ones. O(n + p log p) in the
    /// live ranges and the `p` slots to come alive with slot `c` (the scan for them may
    /// visit every slot after `c`), plus rebuilding the index of live ranges after a hit.
    fn gap_beside(&mut self, list: List, c: usize, need: u64) -> Option<u64> {
        self.ensure_index();
        let slots = self.slots(list);
        let s = slots[c];
        let mut busy = Vec::new();
        let lane = self.lane_of(list);
        for (j, t) in slots.iter().enumerate().skip(c + 1) {
            if lane.by_start && t.start >= s.end {
                break;
            }
            if lane.occupant[j].is_none() && t.start < s.end && s.start < t.end {
                // Still to come this lap, and planned to be alive together with slot c.
                busy.push((t.offset, t.offset + t.size));
            }
        }
        busy.sort_unstable();
        let live = self.index.keys().copied();
        best_gap(merged(live, &busy), need, self.plan.arena_size).0
    }

    /// Lowest offset in `[floor, arena_size)` where `need` bytes are clear of unprotected
    /// allocations (the plan uses none of that range for the rest of the lap).
    fn gap_above(&self, floor: u64, need: u64) -> Option<u64> {
        let arena = self.plan.arena_size;
        let mut at = round_up(floor, ALIGN)?;
        if let Some((_, &e)) = self.outside.range(..at).next_back() {
            at = at.max(e);
        }
        for (&o, &e) in self.outside.range(at..) {
            if o >= at.checked_add(need)? {
                break;
            }
            at = e;
        }
        (at.checked_add(need)? <= arena).then_some(at)
    }

    fn update_peaks(&mut self) {
        let s = self.stats_now();
        self.peak_allocated = self.peak_allocated.max(s.allocated);
        self.peak_reserved = self.peak_reserved.max(s.reserved);
    }

    /// The arena in whole pages once the first request came, 0 before.
    fn reserved_now(&self) -> u64 {
        if self.started {
            // Cannot overflow: `new` and `can_grow_to` checked the rounded arena fits.
            round_up(self.plan.arena_size, self.config.page_size).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    fn stats_now(&self) -> AllocStats {
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

/// The sorted ranges `a` and `b` merged into one sorted sequence.
fn merged<'a>(
    a: impl Iterator<Item = (u64, u64)> + 'a,
    b: &'a [(u64, u64)],
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let mut a = a.peekable();
    let mut b = b.iter().copied().peekable();
    core::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The best-fitting gap for `need` bytes among the sorted `busy` ranges inside `[0, arena)`
/// (the smallest that holds it, the lowest among equal ones; gaps start at [`ALIGN`]-aligned
/// offsets), and the end of the highest busy range. Repeated ranges change nothing.
fn best_gap(
    busy: impl IntoIterator<Item = (u64, u64)>,
    need: u64,
    arena: u64,
) -> (Option<u64>, u64) {
    let mut best: Option<(u64, u64)> = None; // (gap size, offset)
    let mut consider = |at: u64, until: u64| {
        let Some(at) = round_up(at, ALIGN) else {
            return;
        };
        if until > at && until - at >= need && best.is_none_or(|(g, _)| until - at < g) {
            best = Some((until - at, at));
        }
    };
    let mut at = 0u64;
    for (o, e) in busy {
        if o > at {
            consider(at, o.min(arena));
        }
        at = at.max(e);
    }
    consider(at, arena);
    (best.map(|(_, o)| o), at)
}

/// The highest place for `need` bytes among the sorted `busy` ranges inside `[0, arena)`:
/// the end of the highest gap that holds it, aligned down. Repeated ranges change nothing.
fn high_gap(busy: impl IntoIterator<Item = (u64, u64)>, need: u64, arena: u64) -> Option<u64> {
    let mut best = None;
    let mut at = 0u64;
    let mut consider = |at: u64, until: u64| {
        if until >= need {
            let o = (until - need) & !(ALIGN - 1);
            if o >= at {
                best = Some(o);
            }
        }
    };
    for (o, e) in busy {
        if o > at {
            consider(at, o.min(arena));
        }
        at = at.max(e);
    }
    consider(at, arena);
    best
}

/// True when a request taking `need` bytes matches a slot of `size` bytes: it fits and fills
/// at least 7/8 of it.
fn matches_slot(need: u64, size: u64) -> bool {
    need <= size && need.saturating_mul(8) >= size.saturating_mul(7)
}

/// `(offset, end)` of the plan's persistent slots.
fn persistent_ranges(plan: &Plan) -> Vec<(u64, u64)> {
    plan.prologue
        .iter()
        .filter(|s| s.is_persistent())
        .map(|s| (s.offset, s.offset + s.size))
        .collect()
}

/// Places `slots` greedily, largest first (ties: earlier start, lower index), each at the
/// lowest [`ALIGN`]-aligned offset clear of `blockers` (alive throughout) and of the slots
/// already placed that are alive with it. Returns the highest end (`None` on overflow).
/// O(n²) in the slots: the slots placed are kept in order of `(offset, end)`, so each
/// placement merges them with the sorted blockers instead of sorting.
fn place_around(slots: &mut [Slot], blockers: &[(u64, u64)]) -> Option<u64> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| (core::cmp::Reverse(slots[i].size), slots[i].start, i));
    let mut blockers = blockers.to_vec();
    blockers.sort_unstable();
    // (offset, end, start, slot end) of the slots placed, in order.
    let mut placed: Vec<(u64, u64, u32, u32)> = Vec::with_capacity(slots.len());
    let mut top = blockers.iter().map(|&(_, e)| e).max().unwrap_or(0);
    let mut busy: Vec<(u64, u64)> = Vec::new();
    for &i in &order {
        let s = slots[i];
        busy.clear();
        busy.extend(
            placed
                .iter()
                .filter(|&&(_, _, start, end)| start < s.end && s.start < end)
                .map(|&(o, e, _, _)| (o, e)),
        );
        let mut at = 0u64;
        for (o, e) in merged(blockers.iter().copied(), &busy) {
            if o >= at.checked_add(s.size)? {
                break;
            }
            at = at.max(round_up(e, ALIGN)?);
        }
        slots[i].offset = at;
        let end = at.checked_add(s.size)?;
        top = top.max(end);
        let p = (at, end, s.start, s.end);
        let k = placed.partition_point(|&(o, e, _, _)| (o, e) <= (at, end));
        placed.insert(k, p);
    }
    Some(top)
}

impl Allocator for PlannedAllocator {
    fn alloc(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError> {
        if !self.started && !self.can_grow_to(self.plan.arena_size) {
            // The plan's arena alone exceeds the capacity.
            return Err(AllocError::OutOfMemory { size, reserved: 0 });
        }
        self.started = true;
        let need = rounded(size).ok_or(AllocError::OutOfMemory {
            size,
            reserved: self.reserved_now(),
        })?;
        if self.list == List::Iteration {
            self.lap_requests += 1;
        }
        let hit = if self.guided {
            None
        } else {
            self.try_hit(size, need, stream)
        };
        let addr = if let Some(addr) = hit {
            self.counters.hits += 1;
            addr
        } else {
            let addr = self.serve_miss(size, need, stream)?;
            self.counters.misses += 1;
            if self.list == List::Iteration {
                self.lap_misses += 1;
                // Many misses already: the rest of this lap is guided too.
                if !self.guided && self.lap_misses >= 16 && self.lap_misses * 4 > self.lap_requests
                {
                    self.guided = true;
                    self.counters.guided_laps += 1;
                }
            }
            addr
        };
        self.allocated += size;
        self.update_peaks();
        Ok(addr)
    }

    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let Some(l) = self.live.remove(&addr) else {
            return Err(AllocError::UnknownAddress { addr });
        };
        match l.kind {
            Kind::Slot(list, k) => {
                let lane = self.lane_mut(list);
                let occupant = lane.occupant[k];
                lane.occupy(k, None);
                if self.index_valid && list == self.list {
                    if let Some((o, e)) = occupant {
                        self.index_remove(o, e);
                    }
                }
            }
            Kind::InArena => {}
        }
        self.allocated -= l.requested;
        if self.outside.get(&l.off) == Some(&l.end) {
            self.outside.remove(&l.off);
            if self.index_valid {
                self.index_remove(l.off, l.end);
            }
        }
        Ok(())
    }

    fn stats(&self) -> AllocStats {
        AllocStats {
            peak_allocated: self.peak_allocated,
            peak_reserved: self.peak_reserved,
            ..self.stats_now()
        }
    }

    fn name(&self) -> &'static str {
        "memplan-plan"
    }
}
