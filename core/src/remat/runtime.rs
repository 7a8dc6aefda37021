//! The [`Runtime`] value: its state, grouped by concept, its options, its counters and the
//! action list it fills. The calls that drive it are in `engine.rs`, the algorithm behind
//! them in `materialize.rs`, its invariant checker in `invariants.rs`.
//!
//! # Representation invariants of [`Runtime`]
//!
//! Each part documents its own (`graph.rs`, `pool.rs`, `neighbourhoods.rs`, `arena.rs`,
//! `swap.rs`); across parts, between calls:
//!
//! 1. `counters.memory` is the sum of the sizes of the resident storages, at most `budget`,
//!    at most `counters.peak`.
//! 2. A storage is in the pool iff it is resident and its lock count `ref_int` is 0.
//! 3. `ref_int` is `user_locks` plus 1 when pinned (the runtime's own locks are released
//!    before a call returns — except after a failed call, see below); a pinned or locked
//!    storage is resident.
//! 4. `neighbourhoods` keeps regions iff the heuristic uses them and classes iff it uses
//!    them, each with an entry per storage.
//! 5. `counters.clock` is `1 + model_compute + remat_compute + swap stall` (saturating).
//! 6. `failed` is set by the first [`RematError::OutOfMemory`] or [`RematError::Thrashed`];
//!    the runtime then stays in the middle of that call (its locks held) and every later call
//!    returns the same error.

use alloc::vec::Vec;

use super::arena::ArenaMode;
use super::error::RematError;
use super::graph::{Graph, Tensor};
use super::heuristic::{Heuristic, Lookahead, MemplanParams, Scorer};
use super::ids::{OpId, StorageId, TensorId};
use super::neighbourhoods::{EqClasses, Neighbourhoods, Regions};
use super::pool::Pool;
use super::swap::SwapMode;

/// What the caller must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Free this storage (every tensor living in it becomes undefined).
    Evict(StorageId),
    /// Swap mode: copy this storage to the host first (its [`Action::Evict`] follows).
    Offload(StorageId),
    /// Swap mode: copy this storage back from its host copy (instead of recomputing it).
    Fetch(StorageId),
    /// Run this op (again, when `remat`), producing its outputs that are not resident.
    Compute {
        /// The op.
        op: OpId,
        /// True for a recomputation, false for the first (model) execution.
        remat: bool,
    },
}

/// Counters of a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// The clock: 1 + every op cost executed (model and recomputation).
    pub clock: u64,
    /// Cost of first executions.
    pub model_compute: u64,
    /// Cost of recomputations.
    pub remat_compute: u64,
    /// Storages evicted (by the heuristic and eagerly at release).
    pub evictions: u64,
    /// Highest resident byte count (including an op's transient duplicate outputs).
    pub peak: u64,
    /// Bytes resident now.
    pub memory: u64,
    /// Storages copied to the host instead of dropped (swap mode).
    pub swap_outs: u64,
    /// Storages copied back from the host instead of recomputed (swap mode).
    pub swap_ins: u64,
    /// Transfer time not hidden behind compute (ns, included in `clock`).
    pub swap_stall: u64,
    /// Evictions made because the bytes fitted the budget but no contiguous range of the
    /// arena did (arena mode).
    pub placement_evictions: u64,
}

/// Everything a [`Runtime`] is created with ([`Runtime::with_options`]).
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// The budget in bytes.
    pub budget: u64,
    /// The heuristic.
    pub heuristic: Heuristic,
    /// Recomputation limit above which the runtime reports [`RematError::Thrashed`] (simrd:
    /// the baseline compute); `None` for none.
    pub remat_limit: Option<u64>,
    /// Place storages in memplan's online allocator over one arena of `budget` bytes
    /// ([`Runtime::use_arena`]) instead of counting bytes only (simrd).
    pub arena: bool,
    /// Let evicted storages be copied to the host over a link of this many bytes per second
    /// ([`Runtime::set_swap_bandwidth`]); `None`: drop only (simrd).
    pub swap_bytes_per_second: Option<u64>,
}

/// The byte and time counters the engine keeps (see [`Stats`] for their meaning).
pub(super) struct Counters {
    pub(super) clock: u64,
    pub(super) memory: u64,
    pub(super) peak: u64,
    pub(super) model_compute: u64,
    pub(super) remat_compute: u64,
    pub(super) evictions: u64,
}

/// The rematerialization runtime; see the [module docs](super).
pub struct Runtime {
    // -- configuration (fixed at creation) --
    pub(super) heuristic: Heuristic,
    pub(super) budget: u64,
    pub(super) remat_limit: Option<u64>,
    // -- the engine's state --
    /// Ops, tensors, storages, residency, references, locks, c(S).
    pub(super) graph: Graph,
    /// The evictable storages, in order.
    pub(super) pool: Pool,
    pub(super) counters: Counters,
    /// Recording on: decisions are appended to `actions`.
    pub(super) record: bool,
    pub(super) actions: Vec<Action>,
    pub(super) failed: Option<RematError>,
    // -- scoring state --
    /// Evicted neighbourhoods (regions, equivalence classes) for the heuristics that use
    /// them.
    pub(super) neighbourhoods: Neighbourhoods,
    /// Next uses, for memplan's heuristic.
    pub(super) lookahead: Lookahead,
    /// memplan's constants.
    pub(super) memplan: MemplanParams,
    // -- modes --
    /// Arena mode: resident storages are blocks of an online allocator.
    pub(super) arena: Option<ArenaMode>,
    /// Swap mode: evicted storages may be copied to the host.
    pub(super) swap: Option<SwapMode>,
    /// Public calls since the last full invariant check (debug builds).
    pub(super) calls_since_check: u64,
}

impl Runtime {
    /// A runtime with `budget` bytes, the given heuristic, and (optionally) a limit on total
    /// recomputation cost above which it reports [`RematError::Thrashed`]. Every input is
    /// valid; [`Runtime::with_options`] also chooses the modes.
    pub fn new(budget: u64, heuristic: Heuristic, remat_limit: Option<u64>) -> Self {
        Runtime {
            heuristic,
            budget,
            remat_limit,
            graph: Graph::default(),
            pool: Pool::default(),
            counters: Counters {
                clock: 1,
                memory: 0,
                peak: 0,
                model_compute: 0,
                remat_compute: 0,
                evictions: 0,
            },
            record: true,
            actions: Vec::new(),
            failed: None,
            neighbourhoods: Neighbourhoods {
                regions: heuristic.uses_regions().then(Regions::default),
                classes: heuristic.uses_eq_classes().then(EqClasses::default),
            },
            lookahead: Lookahead::default(),
            memplan: MemplanParams::DEFAULT,
            arena: None,
            swap: None,
            calls_since_check: 0,
        }
    }

    /// A runtime with the given options, modes included.
    ///
    /// # Errors
    /// [`RematError::BadOp`] for a swap bandwidth of 0.
    pub fn with_options(o: RuntimeOptions) -> Result<Self, RematError> {
        let mut rt = Runtime::new(o.budget, o.heuristic, o.remat_limit);
        if o.arena {
            rt.use_arena()?;
        }
        if let Some(bps) = o.swap_bytes_per_second {
            rt.set_swap_bandwidth(bps)?;
        }
        Ok(rt)
    }

    /// Turns the action list on or off (the simulator does not need it).
    pub fn set_recording(&mut self, on: bool) {
        self.record = on;
        if !on {
            self.actions.clear();
        }
    }

    /// Drains the actions decided so far, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        core::mem::take(&mut self.actions)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let swap = self.swap.as_ref();
        Stats {
            clock: c.clock,
            model_compute: c.model_compute,
            remat_compute: c.remat_compute,
            evictions: c.evictions,
            peak: c.peak,
            memory: c.memory,
            swap_outs: swap.map_or(0, |w| w.outs),
            swap_ins: swap.map_or(0, |w| w.ins),
            swap_stall: swap.map_or(0, |w| w.stall),
            placement_evictions: self.arena.as_ref().map_or(0, |a| a.placement_evictions),
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The heuristic.
    pub fn heuristic(&self) -> Heuristic {
        self.heuristic
    }

    /// Whether `t` is currently defined (computed and not evicted).
    pub fn is_defined(&self, t: TensorId) -> Result<bool, RematError> {
        Ok(self.graph.tensor(t)?.defined)
    }

    /// The storage `t` lives in.
    pub fn storage_of(&self, t: TensorId) -> Result<StorageId, RematError> {
        Ok(self.graph.tensor(t)?.storage)
    }

    /// Whether storage `s` is resident.
    pub fn is_resident(&self, s: StorageId) -> bool {
        self.graph
            .storages
            .get(s.0 as usize)
            .is_some_and(|s| s.material)
    }

    /// The size of storage `s` (0 if unknown).
    pub fn storage_size(&self, s: StorageId) -> u64 {
        self.graph.storages.get(s.0 as usize).map_or(0, |s| s.size)
    }

    /// The arguments and output tensors of `op`.
    pub fn op_io(&self, op: OpId) -> Option<(&[TensorId], &[TensorId])> {
        self.graph
            .ops
            .get(op.0 as usize)
            .map(|o| (o.args.as_slice(), o.outputs.as_slice()))
    }

    /// The op that produces `t`.
    pub fn producer(&self, t: TensorId) -> Result<OpId, RematError> {
        Ok(self.graph.tensor(t)?.op)
    }

    /// Number of tensors registered.
    pub fn tensor_count(&self) -> usize {
        self.graph.tensors.len()
    }

    /// Number of storages created.
    pub fn storage_count(&self) -> usize {
        self.graph.storages.len()
    }

    /// Tells the memplan heuristic when `t` is next needed, on the caller's time scale (see
    /// [`Runtime::set_now`]); `None` = no known future use. Other heuristics ignore it.
    pub fn set_next_use(&mut self, t: TensorId, at: Option<u64>) -> Result<(), RematError> {
        self.graph.tensor(t)?;
        self.lookahead.set_next_use(t, at);
        Ok(())
    }

    /// Sets the constants of memplan's heuristic (default [`MemplanParams::DEFAULT`]); other
    /// heuristics ignore them.
    pub fn set_memplan_params(&mut self, params: MemplanParams) {
        self.memplan = params;
    }

    /// Sets the current time for next-use distances.
    pub fn set_now(&mut self, now: u64) {
        self.lookahead.now = now;
    }

    /// Arena mode: from now on every resident storage is a block of memplan's online
    /// allocator ([`OnlineAllocator`](crate::allocator::online::OnlineAllocator), best fit,
    /// 512-byte granules) over one arena of `budget` bytes, and the runtime evicts until a
    /// contiguous range fits, not only until the byte count does. Call before registering
    /// anything.
    ///
    /// # Errors
    /// [`RematError::BadOp`] when tensors are already registered.
    pub fn use_arena(&mut self) -> Result<(), RematError> {
        if !self.graph.tensors.is_empty() {
            return Err(RematError::BadOp(
                "arena mode must be chosen before any tensor",
            ));
        }
        self.arena = Some(ArenaMode::new(self.budget)?);
        self.debug_check();
        Ok(())
    }

    /// Swap mode: a storage chosen for eviction is copied to the host (over a link of
    /// `bytes_per_second`) instead of dropped when copying it out and back is cheaper than
    /// recomputing it (its own cost plus its evicted ancestors' when the heuristic tracks
    /// them); bringing it back is then a copy, not a recomputation. Transfers overlap with the
    /// next op's compute; only the excess adds to the clock (see [`Stats::swap_stall`]).
    /// Calling it again changes the bandwidth.
    ///
    /// # Errors
    /// [`RematError::BadOp`] for a bandwidth of 0.
    pub fn set_swap_bandwidth(&mut self, bytes_per_second: u64) -> Result<(), RematError> {
        match &mut self.swap {
            Some(w) => w.set_bandwidth(bytes_per_second)?,
            None => self.swap = Some(SwapMode::new(bytes_per_second)?),
        }
        self.debug_check();
        Ok(())
    }

    // ---- helpers shared by the engine's files -------------------------------------------

    /// The error of the failed call, if any.
    pub(super) fn check_failed(&self) -> Result<(), RematError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Fails for good with `e`.
    pub(super) fn fail<T>(&mut self, e: RematError) -> Result<T, RematError> {
        self.failed = Some(e.clone());
        Err(e)
    }

    pub(super) fn tensor(&self, t: TensorId) -> Result<&Tensor, RematError> {
        self.graph.tensor(t)
    }

    /// The storage index of the (known) tensor `t`.
    pub(super) fn st(&self, t: TensorId) -> usize {
        self.graph.storage_of(t)
    }

    /// Appends `a` to the action list when recording.
    pub(super) fn record(&mut self, a: Action) {
        if self.record {
            self.actions.push(a);
        }
    }

    /// The heuristic's view of the runtime now.
    pub(super) fn scorer(&self) -> Scorer<'_> {
        Scorer {
            heuristic: self.heuristic,
            graph: &self.graph,
            nbhd: &self.neighbourhoods,
            lookahead: &self.lookahead,
            clock: self.counters.clock,
            params: self.memplan,
        }
    }
}
