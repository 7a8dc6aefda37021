//! Tensor rematerialization: a DTR-style runtime that decides what to evict and what to
//! recompute, and an exact simulator of `simrd` on top of it ([`sim`]).
//!
//! # The runtime
//!
//! A framework (or the simulator) drives a [`Runtime`]: it registers each operator as it runs
//! ([`Runtime::compute`], or [`Runtime::register`] for a one-output op, [`Runtime::constant`]
//! for a parameter), adds and drops references ([`Runtime::get`], [`Runtime::release`]), pins
//! tensors ([`Runtime::pin`], permanent) or locks them while an op of its own runs
//! ([`Runtime::lock`] / [`Runtime::unlock`]), and asks for memory ([`Runtime::make_room`])
//! or for an evicted tensor back ([`Runtime::materialize`]). Every decision is appended to an
//! action list ([`Action::Evict`] a storage, [`Action::Compute`] an op) that the caller
//! executes in order; [`Runtime::take_actions`] drains it.
//!
//! The model is `simrd`'s "V2 eager optimized" runtime, restated in
//! `shared/docs/dtr-log-format.md`: *storages* are physical buffers; *tensors* are outputs of
//! ops, either owning a fresh storage or viewing (aliasing) an argument's storage. A storage
//! is evictable when it is resident, not locked and not pinned; the evictable storages form
//! an ordered *pool*. The memory counter is a byte count (where the bytes live is ignored).
//!
//! * `materialize(t)`: stamp the parents' access time, lock the resident parents, recursively
//!   materialize the others (locking each), evict until the op's outputs fit, run the op
//!   (clock += cost), unlock. Implemented with an explicit stack (chains of evicted
//!   activations can be tens of thousands of ops deep).
//! * A storage whose last reference is released is evicted at once (eager eviction) unless it
//!   is pinned or locked.
//! * Running out of evictable storages is [`RematError::OutOfMemory`]; accumulated
//!   recomputation above the limit is [`RematError::Thrashed`]. Either leaves the runtime in
//!   the middle of an operation: every later call returns the same error.
//!
//! # Heuristics and scores
//!
//! See [`Heuristic`]. Victim choice is `simrd`'s exact rule: scan the pool in order, keep the
//! *last* minimum (`score ≤ best`), stop at the first score that is exactly 0. Scores are
//! quotients of integers rounded once to `f64`, like Python's `int / int`, so ties are the
//! same ties.
//!
//! The evicted neighbourhoods of h_DTR and h_MSPS are maintained incrementally exactly as
//! `simrd` does (interior set, frontier set and cached cost per storage and direction;
//! *absorb* on eviction, *rebuild* on materialization), not recomputed: the two differ when
//! an op is registered while one of its arguments is evicted (the new, not yet computed
//! output is part of a from-scratch neighbourhood but not of the incremental one). The
//! equivalence classes of h_DTR^eq are a union-find over evicted storages whose classes are
//! never split (a materialized storage only subtracts its cost from its class).
//!
//! Scanning the pool is linear, but each score is O(1) from cached numerators (O(degree) for
//! h_DTR^eq), so a whole run of the largest log takes milliseconds, not minutes. A priority
//! queue cannot reproduce the exact rule: staleness-based scores change their order as the
//! clock advances, and ties go to the later pool element.

mod heuristic;
pub mod sim;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::allocator::Allocator;
use crate::allocator::online::{ALIGN, DEFAULT_BASE, OnlineAllocator, OnlineConfig};
use heuristic::div_round;
pub use heuristic::{Heuristic, UnknownHeuristic};

/// A set of storage ids: a list for iteration plus a bitmap for membership.
#[derive(Default, Clone)]
struct IdSet {
    list: Vec<u32>,
    bits: Vec<u64>,
}

impl IdSet {
    fn contains(&self, x: u32) -> bool {
        self.bits
            .get((x / 64) as usize)
            .is_some_and(|w| w & (1 << (x % 64)) != 0)
    }

    /// Adds `x`; false when it was already there.
    fn insert(&mut self, x: u32) -> bool {
        let w = (x / 64) as usize;
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let m = 1u64 << (x % 64);
        if self.bits[w] & m != 0 {
            return false;
        }
        self.bits[w] |= m;
        self.list.push(x);
        true
    }

    fn remove(&mut self, x: u32) {
        if self.contains(x) {
            self.bits[(x / 64) as usize] &= !(1 << (x % 64));
            self.list.retain(|&y| y != x);
        }
    }

    fn clear(&mut self) {
        for &x in &self.list {
            self.bits[(x / 64) as usize] = 0;
        }
        self.list.clear();
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.list.iter().copied()
    }
}

/// A tensor registered with a [`Runtime`] (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TensorId(pub u32);

/// A storage (physical buffer) of a [`Runtime`] (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageId(pub u32);

/// An operator registered with a [`Runtime`] (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u32);

/// One output of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A fresh storage of this many bytes.
    Fresh(u64),
    /// A view of the storage of argument `k` (0 bytes of its own).
    Alias(usize),
}

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

/// Why the runtime cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RematError {
    /// Memory was needed but nothing is evictable (everything resident is pinned or locked).
    OutOfMemory {
        /// Bytes resident when it happened.
        used: u64,
        /// Bytes that were needed on top.
        need: u64,
        /// The budget.
        budget: u64,
    },
    /// Recomputation exceeded the limit given to [`Runtime::new`].
    Thrashed {
        /// Total recomputation cost so far.
        remat_compute: u64,
        /// The limit.
        limit: u64,
    },
    /// A tensor id that was never registered.
    UnknownTensor(TensorId),
    /// An argument's alias index is out of range, or an op has no outputs.
    BadOp(&'static str),
    /// `release` of a tensor with no references left, or `unlock` of one that is not locked.
    Unbalanced(TensorId),
    /// A size or cost sum overflowed `u64`.
    Overflow,
}

impl fmt::Display for RematError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RematError::OutOfMemory { used, need, budget } => write!(
                f,
                "out of memory: {used} bytes resident, {need} more needed, budget {budget}, \
                 nothing evictable"
            ),
            RematError::Thrashed {
                remat_compute,
                limit,
            } => write!(
                f,
                "thrashed: recomputation {remat_compute} exceeds limit {limit}"
            ),
            RematError::UnknownTensor(t) => write!(f, "unknown tensor {}", t.0),
            RematError::BadOp(why) => write!(f, "bad op: {why}"),
            RematError::Unbalanced(t) => {
                write!(
                    f,
                    "tensor {}: release or unlock without a matching reference",
                    t.0
                )
            }
            RematError::Overflow => f.write_str("size or cost overflows u64"),
        }
    }
}

struct Op {
    cost: u64,
    args: Vec<TensorId>,
    outputs: Vec<TensorId>,
    /// Bytes of each output (0 for views).
    sizes: Vec<u64>,
    total_size: u64,
}

struct Tensor {
    op: OpId,
    index: u32,
    storage: StorageId,
    defined: bool,
    ref_ext: u64,
    children: Vec<TensorId>,
    /// Next use time given by the caller (memplan heuristic), if any.
    next_use: Option<u64>,
}

#[derive(Default, Clone)]
struct Region {
    interior: IdSet,
    frontier: IdSet,
    compute: u64,
}

struct Storage {
    size: u64,
    material: bool,
    tensors: Vec<TensorId>,
    ref_ext: u64,
    ref_int: u64,
    pinned: bool,
    compute: u64,
    /// `None` is simrd's `-inf` (never accessed).
    last_access: Option<u64>,
    /// Index into `Runtime::pool` while evictable.
    slot: Option<u32>,
    fwd: Region,
    bwd: Region,
    ecn: Option<u32>,
    /// Address of its block while resident in the arena (arena mode only).
    addr: Option<u64>,
    /// A copy is on the host (swap mode): bringing it back costs a transfer, not a
    /// recomputation.
    on_host: bool,
}

const NONE: u32 = u32::MAX;

/// The rematerialization runtime; see the module docs.
pub struct Runtime {
    heuristic: Heuristic,
    budget: u64,
    remat_limit: Option<u64>,
    clock: u64,
    memory: u64,
    peak: u64,
    model_compute: u64,
    remat_compute: u64,
    evictions: u64,
    ops: Vec<Op>,
    tensors: Vec<Tensor>,
    storages: Vec<Storage>,
    /// Evictable storages in pool order; `NONE` marks a removed entry.
    pool: Vec<u32>,
    pool_live: usize,
    /// Union-find: parent (NONE = root) and value.
    uf_parent: Vec<u32>,
    uf_value: Vec<i64>,
    record: bool,
    actions: Vec<Action>,
    failed: Option<RematError>,
    /// Current time for next-use distances (memplan heuristic).
    now: u64,
    /// Storage-level graph: child storages and parent storages of each storage (no self
    /// edges, no duplicates; edges are never removed).
    adj_out: Vec<Vec<u32>>,
    adj_in: Vec<Vec<u32>>,
    scratch: Vec<u32>,
    /// Arena mode: resident storages are blocks of memplan's online allocator over one arena
    /// of `budget` bytes.
    arena: Option<OnlineAllocator>,
    /// Arena mode: the storage at each block address.
    placed: BTreeMap<u64, u32>,
    /// Swap mode: host link bandwidth in bytes per second.
    swap_bps: Option<u64>,
    /// Transfer time (ns) issued since the last executed op, hidden behind its compute.
    pending_transfer: u64,
    swap_outs: u64,
    swap_ins: u64,
    swap_stall: u64,
    placement_evictions: u64,
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

impl Runtime {
    /// A runtime with `budget` bytes, the given heuristic, and (optionally) a limit on total
    /// recomputation cost above which it reports [`RematError::Thrashed`].
    pub fn new(budget: u64, heuristic: Heuristic, remat_limit: Option<u64>) -> Self {
        Runtime {
            heuristic,
            budget,
            remat_limit,
            clock: 1,
            memory: 0,
            peak: 0,
            model_compute: 0,
            remat_compute: 0,
            evictions: 0,
            ops: Vec::new(),
            tensors: Vec::new(),
            storages: Vec::new(),
            pool: Vec::new(),
            pool_live: 0,
            uf_parent: Vec::new(),
            uf_value: Vec::new(),
            record: true,
            actions: Vec::new(),
            failed: None,
            now: 0,
            adj_out: Vec::new(),
            adj_in: Vec::new(),
            scratch: Vec::new(),
            arena: None,
            placed: BTreeMap::new(),
            swap_bps: None,
            pending_transfer: 0,
            swap_outs: 0,
            swap_ins: 0,
            swap_stall: 0,
            placement_evictions: 0,
        }
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
        Stats {
            clock: self.clock,
            model_compute: self.model_compute,
            remat_compute: self.remat_compute,
            evictions: self.evictions,
            peak: self.peak,
            memory: self.memory,
            swap_outs: self.swap_outs,
            swap_ins: self.swap_ins,
            swap_stall: self.swap_stall,
            placement_evictions: self.placement_evictions,
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
        Ok(self.tensor(t)?.defined)
    }

    /// The storage `t` lives in.
    pub fn storage_of(&self, t: TensorId) -> Result<StorageId, RematError> {
        Ok(self.tensor(t)?.storage)
    }

    /// Whether storage `s` is resident.
    pub fn is_resident(&self, s: StorageId) -> bool {
        self.storages.get(s.0 as usize).is_some_and(|s| s.material)
    }

    /// The size of storage `s` (0 if unknown).
    pub fn storage_size(&self, s: StorageId) -> u64 {
        self.storages.get(s.0 as usize).map_or(0, |s| s.size)
    }

    /// The arguments and output tensors of `op`.
    pub fn op_io(&self, op: OpId) -> Option<(&[TensorId], &[TensorId])> {
        self.ops
            .get(op.0 as usize)
            .map(|o| (o.args.as_slice(), o.outputs.as_slice()))
    }

    /// The op that produces `t`.
    pub fn producer(&self, t: TensorId) -> Result<OpId, RematError> {
        Ok(self.tensor(t)?.op)
    }

    /// Number of tensors registered.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// Tells the memplan heuristic when `t` is next needed, on the caller's time scale (see
    /// [`Runtime::set_now`]); `None` = no known future use. Other heuristics ignore it.
    pub fn set_next_use(&mut self, t: TensorId, at: Option<u64>) -> Result<(), RematError> {
        self.tensor(t)?;
        self.tensors[t.0 as usize].next_use = at;
        Ok(())
    }

    /// Sets the current time for next-use distances.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Arena mode: from now on every resident storage is a block of memplan's online
    /// allocator ([`OnlineAllocator`], best fit, 512-byte granules) over one arena of
    /// `budget` bytes, and the runtime evicts until a contiguous range fits, not only until
    /// the byte count does. Call before registering anything.
    ///
    /// # Errors
    /// [`RematError::BadOp`] when tensors are already registered.
    pub fn use_arena(&mut self) -> Result<(), RematError> {
        if !self.tensors.is_empty() {
            return Err(RematError::BadOp(
                "arena mode must be chosen before any tensor",
            ));
        }
        self.arena = Some(OnlineAllocator::new(OnlineConfig {
            base: DEFAULT_BASE,
            page_size: ALIGN,
            capacity: Some(self.budget),
        }));
        Ok(())
    }

    /// Swap mode: a storage chosen for eviction is copied to the host (over a link of
    /// `bytes_per_second`) instead of dropped when copying it out and back is cheaper than
    /// recomputing it (its own cost plus its evicted ancestors' when the heuristic tracks
    /// them); bringing it back is then a copy, not a recomputation. Transfers overlap with the
    /// next op's compute; only the excess adds to the clock (see [`Stats::swap_stall`]).
    ///
    /// # Errors
    /// [`RematError::BadOp`] for a bandwidth of 0.
    pub fn set_swap_bandwidth(&mut self, bytes_per_second: u64) -> Result<(), RematError> {
        if bytes_per_second == 0 {
            return Err(RematError::BadOp("swap bandwidth must be positive"));
        }
        self.swap_bps = Some(bytes_per_second);
        Ok(())
    }

    /// Nanoseconds to copy `size` bytes over the host link (rounded up); 0 without one.
    fn transfer_ns(&self, size: u64) -> u64 {
        self.swap_bps.map_or(0, |bps| {
            let ns = (u128::from(size) * 1_000_000_000).div_ceil(u128::from(bps));
            u64::try_from(ns).unwrap_or(u64::MAX)
        })
    }

    fn check(&self) -> Result<(), RematError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail<T>(&mut self, e: RematError) -> Result<T, RematError> {
        self.failed = Some(e.clone());
        Err(e)
    }

    fn tensor(&self, t: TensorId) -> Result<&Tensor, RematError> {
        self.tensors
            .get(t.0 as usize)
            .ok_or(RematError::UnknownTensor(t))
    }

    fn st(&self, t: TensorId) -> usize {
        self.tensors[t.0 as usize].storage.0 as usize
    }

    // ---- pool -------------------------------------------------------------------------

    fn pool_add(&mut self, s: usize) {
        if self.storages[s].slot.is_some() {
            return;
        }
        self.storages[s].slot = Some(self.pool.len() as u32);
        self.pool.push(s as u32);
        self.pool_live += 1;
    }

    fn pool_remove(&mut self, s: usize) {
        if let Some(i) = self.storages[s].slot.take() {
            self.pool[i as usize] = NONE;
            self.pool_live -= 1;
            if self.pool.len() > 64 && self.pool_live * 2 < self.pool.len() {
                self.pool.retain(|&x| x != NONE);
                for (i, &x) in self.pool.iter().enumerate() {
                    self.storages[x as usize].slot = Some(i as u32);
                }
            }
        }
    }

    // ---- registration -----------------------------------------------------------------

    /// Registers and runs a model op: arguments `args`, cost `cost`, the given outputs.
    /// Evicted arguments are recomputed first and memory is freed as needed; the actions say
    /// what to do. Returns the output tensors.
    pub fn compute(
        &mut self,
        cost: u64,
        args: &[TensorId],
        outputs: &[Output],
    ) -> Result<Vec<TensorId>, RematError> {
        self.check()?;
        if outputs.is_empty() {
            return Err(RematError::BadOp("an op needs at least one output"));
        }
        for &a in args {
            self.tensor(a)?;
        }
        let mut total: u64 = 0;
        for o in outputs {
            match *o {
                Output::Fresh(n) => total = total.checked_add(n).ok_or(RematError::Overflow)?,
                Output::Alias(k) if k >= args.len() => {
                    return Err(RematError::BadOp("alias index past the arguments"));
                }
                Output::Alias(_) => {}
            }
        }
        let op = OpId(self.ops.len() as u32);
        let first = self.tensors.len() as u32;
        let mut sizes = Vec::with_capacity(outputs.len());
        let mut outs = Vec::with_capacity(outputs.len());
        for (i, o) in outputs.iter().enumerate() {
            let t = TensorId(first + i as u32);
            let s = match *o {
                Output::Fresh(n) => {
                    sizes.push(n);
                    let id = self.storages.len();
                    let ecn = if self.heuristic.uses_eq_classes() {
                        Some(self.uf_new(0))
                    } else {
                        None
                    };
                    self.adj_out.push(Vec::new());
                    self.adj_in.push(Vec::new());
                    self.storages.push(Storage {
                        size: n,
                        material: false,
                        tensors: Vec::new(),
                        ref_ext: 0,
                        ref_int: 0,
                        pinned: false,
                        compute: 0,
                        last_access: None,
                        slot: None,
                        fwd: Region::default(),
                        bwd: Region::default(),
                        ecn,
                        addr: None,
                        on_host: false,
                    });
                    id
                }
                Output::Alias(k) => {
                    sizes.push(0);
                    self.st(args[k])
                }
            };
            let st = &mut self.storages[s];
            // c(S): distinct ops over the storage's tensors (the new op is the last one).
            let seen = st
                .tensors
                .iter()
                .any(|&u| self.tensors[u.0 as usize].op == op);
            if !seen {
                st.compute = st.compute.checked_add(cost).ok_or(RematError::Overflow)?;
            }
            st.tensors.push(t);
            st.ref_ext += 1;
            self.tensors.push(Tensor {
                op,
                index: i as u32,
                storage: StorageId(s as u32),
                defined: false,
                ref_ext: 1,
                children: Vec::new(),
                next_use: None,
            });
            outs.push(t);
        }
        for &a in args {
            self.tensors[a.0 as usize].children.extend_from_slice(&outs);
            let p = self.st(a) as u32;
            for &t in &outs {
                let u = self.st(t) as u32;
                if u != p && !self.adj_out[p as usize].contains(&u) {
                    self.adj_out[p as usize].push(u);
                    self.adj_in[u as usize].push(p);
                }
            }
        }
        self.ops.push(Op {
            cost,
            args: args.to_vec(),
            outputs: outs.clone(),
            sizes,
            total_size: total,
        });
        self.materialize_inner(outs[0], false)?;
        let clock = self.clock;
        for &t in &outs {
            let s = self.st(t);
            self.storages[s].last_access = Some(clock);
        }
        Ok(outs)
    }

    /// Registers and runs a one-output op: `size` bytes, `cost`, the given parents; a
    /// `constant` (parameter, input) has no parents, cost 0 and is pinned for good.
    pub fn register(
        &mut self,
        size: u64,
        cost: u64,
        parents: &[TensorId],
        constant: bool,
    ) -> Result<TensorId, RematError> {
        if constant {
            if !parents.is_empty() {
                return Err(RematError::BadOp("a constant has no parents"));
            }
            return self.constant(size);
        }
        Ok(self.compute(cost, parents, &[Output::Fresh(size)])?[0])
    }

    /// Registers a constant of `size` bytes (cost 0, no parents) and pins it.
    pub fn constant(&mut self, size: u64) -> Result<TensorId, RematError> {
        let t = self.compute(0, &[], &[Output::Fresh(size)])?[0];
        self.pin(t)?;
        Ok(t)
    }

    /// One more reference to `t`.
    pub fn get(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check()?;
        self.tensor(t)?;
        let s = self.st(t);
        self.tensors[t.0 as usize].ref_ext += 1;
        self.storages[s].ref_ext += 1;
        Ok(())
    }

    /// Drops one reference to `t`; a storage left without references is evicted at once
    /// (unless pinned or locked).
    pub fn release(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check()?;
        self.tensor(t)?;
        let s = self.st(t);
        if self.tensors[t.0 as usize].ref_ext == 0 || self.storages[s].ref_ext == 0 {
            return Err(RematError::Unbalanced(t));
        }
        self.tensors[t.0 as usize].ref_ext -= 1;
        let st = &mut self.storages[s];
        st.ref_ext -= 1;
        if st.ref_ext == 0 && st.material && !st.pinned && st.ref_int == 0 {
            self.evict(s);
        }
        Ok(())
    }

    /// Makes `t` resident (recomputing it and whatever it needs) and pins its storage for
    /// good: never evicted again.
    pub fn pin(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check()?;
        self.tensor(t)?;
        if !self.tensors[t.0 as usize].defined {
            self.materialize_inner(t, true)?;
        }
        let s = self.st(t);
        if !self.storages[s].pinned {
            self.lock_storage(s);
            self.storages[s].pinned = true;
        }
        Ok(())
    }

    /// Makes `t` resident and locks its storage until [`Runtime::unlock`] (e.g. while an op
    /// of the caller's reads it). Locks nest.
    pub fn lock(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check()?;
        self.tensor(t)?;
        if !self.tensors[t.0 as usize].defined {
            self.materialize_inner(t, true)?;
        }
        let s = self.st(t);
        self.lock_storage(s);
        Ok(())
    }

    /// Releases one lock taken by [`Runtime::lock`].
    pub fn unlock(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check()?;
        self.tensor(t)?;
        let s = self.st(t);
        let st = &self.storages[s];
        // A pinned storage keeps its own permanent lock.
        if st.ref_int <= u64::from(st.pinned) || !st.material {
            return Err(RematError::Unbalanced(t));
        }
        self.unlock_storage(s);
        let st = &self.storages[s];
        if st.ref_ext == 0 && st.ref_int == 0 && st.material && !st.pinned {
            self.evict(s);
        }
        Ok(())
    }

    /// Records an access to `t` now (refreshes its staleness) and makes it resident;
    /// returns the ops recomputed for it, in order.
    pub fn access(&mut self, t: TensorId) -> Result<Vec<OpId>, RematError> {
        let ops = self.materialize(t)?;
        let s = self.st(t);
        self.storages[s].last_access = Some(self.clock);
        Ok(ops)
    }

    /// Makes `t` resident; returns the ops recomputed, in order (the evictions needed are
    /// in the action list, interleaved).
    pub fn materialize(&mut self, t: TensorId) -> Result<Vec<OpId>, RematError> {
        self.check()?;
        self.tensor(t)?;
        let start = self.actions.len();
        if !self.tensors[t.0 as usize].defined {
            self.materialize_inner(t, true)?;
        }
        Ok(self.actions[start..]
            .iter()
            .filter_map(|a| match a {
                Action::Compute { op, .. } => Some(*op),
                _ => None,
            })
            .collect())
    }

    /// Evicts until `need` more bytes fit in the budget; returns the storages evicted.
    pub fn make_room(&mut self, need: u64) -> Result<Vec<StorageId>, RematError> {
        self.check()?;
        let before = self.evict_log_start();
        self.free(need)?;
        Ok(self.evicted_since(before))
    }

    fn evict_log_start(&self) -> usize {
        self.actions.len()
    }

    fn evicted_since(&self, start: usize) -> Vec<StorageId> {
        self.actions[start.min(self.actions.len())..]
            .iter()
            .filter_map(|a| match a {
                Action::Evict(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    // ---- core algorithm ---------------------------------------------------------------

    fn lock_storage(&mut self, s: usize) {
        if self.storages[s].ref_int == 0 {
            self.pool_remove(s);
        }
        self.storages[s].ref_int += 1;
    }

    fn unlock_storage(&mut self, s: usize) {
        let st = &mut self.storages[s];
        st.ref_int -= 1;
        if st.ref_int == 0 {
            self.pool_add(s);
        }
    }

    fn materialize_inner(&mut self, t: TensorId, remat: bool) -> Result<(), RematError> {
        struct Frame {
            t: TensorId,
            remat: bool,
            /// Parent positions still to materialize and lock.
            pending: Vec<u32>,
            next: usize,
            /// Waiting for the recursive materialization of `pending[next]`.
            waiting: bool,
            /// Brought back from the host instead of recomputed (no parents needed).
            swap: bool,
        }
        let mut stack: Vec<Frame> = vec![Frame {
            t,
            remat,
            pending: Vec::new(),
            next: 0,
            waiting: false,
            swap: false,
        }];
        let mut fresh_frame = true;
        while let Some(f) = stack.last_mut() {
            let op = self.tensors[f.t.0 as usize].op.0 as usize;
            if fresh_frame {
                fresh_frame = false;
                let s = self.st(f.t);
                let st = &self.storages[s];
                // A storage with a host copy comes back by a transfer (through its root
                // tensor; views are re-derived from it as usual).
                f.swap = f.remat && st.on_host && !st.material && st.tensors[0] == f.t;
                if f.swap {
                    let f = stack.pop().expect("frame");
                    let s = self.st(f.t);
                    let size = self.storages[s].size;
                    if self.memory.saturating_add(size) > self.budget {
                        self.free(size)?;
                    }
                    if self.arena.is_some() {
                        self.place(&[s])?;
                    }
                    self.swap_in(f.t, s);
                    self.check_thrash()?;
                    continue;
                }
                let clock = self.clock;
                let nargs = self.ops[op].args.len();
                for i in 0..nargs {
                    let p = self.ops[op].args[i];
                    let s = self.st(p);
                    self.storages[s].last_access = Some(clock);
                }
                for i in 0..nargs {
                    let p = self.ops[op].args[i];
                    if self.tensors[p.0 as usize].defined {
                        let s = self.st(p);
                        self.lock_storage(s);
                    } else {
                        f.pending.push(i as u32);
                    }
                }
            }
            // Materialize and lock the parents that were undefined.
            let mut pushed = false;
            while f.next < f.pending.len() {
                let p = self.ops[op].args[f.pending[f.next] as usize];
                if !f.waiting && !self.tensors[p.0 as usize].defined {
                    f.waiting = true;
                    stack.push(Frame {
                        t: p,
                        remat: true,
                        pending: Vec::new(),
                        next: 0,
                        waiting: false,
                        swap: false,
                    });
                    fresh_frame = true;
                    pushed = true;
                    break;
                }
                f.waiting = false;
                let s = self.st(p);
                self.lock_storage(s);
                f.next += 1;
            }
            if pushed {
                continue;
            }
            let f = stack.pop().expect("frame");
            let total = self.ops[op].total_size;
            if self.memory.saturating_add(total) > self.budget {
                self.free(total)?;
            }
            if self.arena.is_some() {
                let mut fresh: Vec<usize> = Vec::new();
                for &u in &self.ops[op].outputs {
                    let s = self.st(u);
                    if !self.storages[s].material && !fresh.contains(&s) {
                        fresh.push(s);
                    }
                }
                self.place(&fresh)?;
            }
            self.execute(f.t, f.remat);
            for i in 0..self.ops[op].args.len() {
                let p = self.ops[op].args[i];
                let s = self.st(p);
                self.unlock_storage(s);
            }
            self.check_thrash()?;
        }
        Ok(())
    }

    /// [`RematError::Thrashed`] once recomputation plus unhidden transfer time passes the
    /// limit.
    fn check_thrash(&mut self) -> Result<(), RematError> {
        if let Some(limit) = self.remat_limit {
            let spent = self.remat_compute.saturating_add(self.swap_stall);
            if spent > limit {
                return self.fail(RematError::Thrashed {
                    remat_compute: spent,
                    limit,
                });
            }
        }
        Ok(())
    }

    fn free(&mut self, need: u64) -> Result<(), RematError> {
        while self.memory.saturating_add(need) > self.budget {
            if self.pool_live == 0 {
                return self.fail(RematError::OutOfMemory {
                    used: self.memory,
                    need,
                    budget: self.budget,
                });
            }
            let v = self.choose();
            self.evict_victim(v);
        }
        Ok(())
    }

    /// Arena mode: gives each storage of `fresh` (not resident) a block, evicting victims
    /// in heuristic order until one fits.
    fn place(&mut self, fresh: &[usize]) -> Result<(), RematError> {
        for &s in fresh {
            let size = self.storages[s].size;
            if size == 0 || self.storages[s].addr.is_some() {
                continue;
            }
            loop {
                let arena = self.arena.as_mut().expect("arena mode");
                match arena.alloc(size, 0) {
                    Ok(a) => {
                        self.storages[s].addr = Some(a);
                        self.placed.insert(a, s as u32);
                        break;
                    }
                    Err(_) => {
                        if self.pool_live == 0 {
                            return self.fail(RematError::OutOfMemory {
                                used: self.memory,
                                need: size,
                                budget: self.budget,
                            });
                        }
                        let window = if self.heuristic == Heuristic::Memplan {
                            self.cheapest_window(size)
                        } else {
                            None
                        };
                        match window {
                            Some(victims) => {
                                for v in victims {
                                    self.placement_evictions += 1;
                                    self.evict_victim(v as usize);
                                }
                            }
                            None => {
                                let v = self.choose();
                                self.placement_evictions += 1;
                                self.evict_victim(v);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// memplan's fragmentation-aware choice (arena mode): the contiguous address range of
    /// the arena, made of free space and evictable storages only, that can hold `size` bytes
    /// and whose storages cost least to evict (Σ score × size, i.e. the heuristic's cost
    /// without the size credit); returns those storages, or `None` when no range qualifies
    /// (a locked, pinned or just-used storage splits every candidate).
    fn cheapest_window(&self, size: u64) -> Option<Vec<u32>> {
        let need = size.max(1).div_ceil(ALIGN) * ALIGN;
        let cap_end = DEFAULT_BASE + self.budget / ALIGN * ALIGN;
        // Segments in address order: (start, end, cost, storage); cost None = blocked.
        let mut segs: Vec<(u64, u64, Option<f64>, u32)> = Vec::new();
        let mut at = DEFAULT_BASE;
        for (&a, &st) in &self.placed {
            if a > at {
                segs.push((at, a, Some(0.0), NONE));
            }
            let s = &self.storages[st as usize];
            let end = a + s.size.max(1).div_ceil(ALIGN) * ALIGN;
            let cost = if s.slot.is_some() {
                let c = self.score(st as usize) * s.size as f64;
                c.is_finite().then_some(c)
            } else {
                None
            };
            segs.push((a, end, cost, st));
            at = end;
        }
        if cap_end > at {
            segs.push((at, cap_end, Some(0.0), NONE));
        }
        let mut best: Option<(f64, usize, usize)> = None;
        let (mut left, mut sum) = (0usize, 0.0f64);
        for right in 0..segs.len() {
            let Some(c) = segs[right].2 else {
                left = right + 1;
                sum = 0.0;
                continue;
            };
            sum += c;
            while left < right && segs[right].1 - segs[left + 1].0 >= need {
                sum -= segs[left].2.unwrap_or(0.0);
                left += 1;
            }
            if segs[right].1 - segs[left].0 >= need && best.is_none_or(|(b, _, _)| sum < b) {
                best = Some((sum, left, right));
            }
        }
        let (_, l, r) = best?;
        let victims: Vec<u32> = segs[l..=r]
            .iter()
            .filter(|x| x.3 != NONE)
            .map(|x| x.3)
            .collect();
        (!victims.is_empty()).then_some(victims)
    }

    /// Evicts a storage the heuristic chose; in swap mode it is copied to the host first
    /// when a copy out and back costs less than recomputing it.
    fn evict_victim(&mut self, v: usize) {
        if self.swap_bps.is_some() {
            let st = &self.storages[v];
            let back = self.transfer_ns(st.size);
            let out = if st.on_host { 0 } else { back };
            let remat = st.compute.saturating_add(st.bwd.compute);
            if !st.on_host && out.saturating_add(back) < remat {
                self.storages[v].on_host = true;
                self.swap_outs += 1;
                if self.record {
                    self.actions.push(Action::Offload(StorageId(v as u32)));
                }
                self.pending_transfer = self.pending_transfer.saturating_add(out);
            }
        }
        self.evict(v);
    }

    /// Brings storage `s` (root tensor `t`) back from its host copy.
    fn swap_in(&mut self, t: TensorId, s: usize) {
        let size = self.storages[s].size;
        self.pending_transfer = self.pending_transfer.saturating_add(self.transfer_ns(size));
        self.swap_ins += 1;
        if self.record {
            self.actions.push(Action::Fetch(StorageId(s as u32)));
        }
        self.memory = self.memory.saturating_add(size);
        self.peak = self.peak.max(self.memory);
        self.storages[s].material = true;
        self.tensors[t.0 as usize].defined = true;
        self.pool_add(s);
        self.after_materialized(&[s]);
    }

    fn execute(&mut self, t: TensorId, remat: bool) {
        let op = self.tensors[t.0 as usize].op.0 as usize;
        let outs = self.ops[op].outputs.clone();
        let mut fresh: Vec<usize> = Vec::new();
        let mut dup_bytes = 0u64;
        // siblings in order, then t
        for &u in outs.iter().filter(|&&u| u != t).chain(core::iter::once(&t)) {
            let s = self.st(u);
            if !self.storages[s].material {
                fresh.push(s);
            }
        }
        let cost = self.ops[op].cost;
        self.clock = self.clock.saturating_add(cost);
        // Transfers issued for this op run during its compute; only the excess stalls.
        let stall = self.pending_transfer.saturating_sub(cost);
        self.pending_transfer = 0;
        self.clock = self.clock.saturating_add(stall);
        self.swap_stall = self.swap_stall.saturating_add(stall);
        self.memory = self.memory.saturating_add(self.ops[op].total_size);
        self.peak = self.peak.max(self.memory);
        if remat {
            self.remat_compute = self.remat_compute.saturating_add(cost);
        } else {
            self.model_compute = self.model_compute.saturating_add(cost);
        }
        if self.record {
            self.actions.push(Action::Compute {
                op: OpId(op as u32),
                remat,
            });
        }
        for &u in &outs {
            let ui = u.0 as usize;
            if u != t && self.tensors[ui].defined {
                dup_bytes += self.ops[op].sizes[self.tensors[ui].index as usize];
            }
        }
        for &u in &outs {
            let s = self.st(u);
            self.storages[s].material = true;
            self.tensors[u.0 as usize].defined = true;
        }
        self.memory -= dup_bytes;
        for &s in &fresh {
            self.pool_add(s);
        }
        self.after_materialized(&fresh);
    }

    /// Heuristic bookkeeping after the storages `fresh` became resident: rebuild their
    /// regions and their frontier neighbours', detach them from their equivalence classes.
    fn after_materialized(&mut self, fresh: &[usize]) {
        if self.heuristic.uses_regions() {
            let mut aff_fwd: Vec<u32> = Vec::new();
            let mut aff_bwd: Vec<u32> = Vec::new();
            for &s in fresh {
                self.rebuild(s, false);
                self.rebuild(s, true);
                aff_fwd.extend(self.storages[s].bwd.frontier.iter());
                aff_bwd.extend(self.storages[s].fwd.frontier.iter());
            }
            aff_fwd.sort_unstable();
            aff_fwd.dedup();
            aff_bwd.sort_unstable();
            aff_bwd.dedup();
            for s in aff_fwd {
                self.rebuild(s as usize, false);
            }
            for s in aff_bwd {
                self.rebuild(s as usize, true);
            }
        }
        if self.heuristic.uses_eq_classes() {
            for &s in fresh {
                if let Some(n) = self.storages[s].ecn.take() {
                    let r = self.uf_find(n);
                    self.uf_value[r as usize] -= self.storages[s].compute as i64;
                }
            }
        }
    }

    fn evict(&mut self, s: usize) {
        let st = &mut self.storages[s];
        st.material = false;
        self.memory -= st.size;
        if let Some(a) = st.addr.take() {
            self.placed.remove(&a);
            let arena = self.arena.as_mut().expect("arena mode");
            let freed = arena.free(a);
            debug_assert!(freed.is_ok());
        }
        self.evictions += 1;
        self.pool_remove(s);
        for i in 0..self.storages[s].tensors.len() {
            let t = self.storages[s].tensors[i];
            self.tensors[t.0 as usize].defined = false;
        }
        if self.record {
            self.actions.push(Action::Evict(StorageId(s as u32)));
        }
        if self.heuristic.uses_regions() {
            let bwd_frontier: Vec<u32> = self.storages[s].bwd.frontier.iter().collect();
            let fwd_frontier: Vec<u32> = self.storages[s].fwd.frontier.iter().collect();
            for p in bwd_frontier {
                self.absorb(p as usize, s, false);
            }
            for c in fwd_frontier {
                self.absorb(c as usize, s, true);
            }
            let st = &mut self.storages[s];
            st.fwd = Region::default();
            st.bwd = Region::default();
        }
        if self.heuristic.uses_eq_classes() {
            let c = self.storages[s].compute as i64;
            let n = self.uf_new(c);
            self.storages[s].ecn = Some(n);
            let ns = self.evicted_neighbors(s);
            for m in ns {
                if let Some(e) = self.storages[m as usize].ecn {
                    self.uf_union(e, n);
                }
            }
        }
    }

    /// Storages of the parents and children of every tensor in `s` that are not resident.
    fn evicted_neighbors(&self, s: usize) -> Vec<u32> {
        let mut out: Vec<u32> = self.adj_in[s]
            .iter()
            .chain(self.adj_out[s].iter())
            .copied()
            .filter(|&u| !self.storages[u as usize].material)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn region(&self, s: usize, reverse: bool) -> &Region {
        if reverse {
            &self.storages[s].bwd
        } else {
            &self.storages[s].fwd
        }
    }

    fn region_mut(&mut self, s: usize, reverse: bool) -> &mut Region {
        if reverse {
            &mut self.storages[s].bwd
        } else {
            &mut self.storages[s].fwd
        }
    }

    fn rebuild(&mut self, base: usize, reverse: bool) {
        // A pinned storage is never scored nor evicted (so never absorbed into another
        // region): its regions are dead weight, and the largest ones (a weight's forward
        // region spans much of the evicted graph). Skipping them changes no decision.
        if self.storages[base].pinned {
            *self.region_mut(base, reverse) = Region::default();
            return;
        }
        let mut r = core::mem::take(self.region_mut(base, reverse));
        r.interior.clear();
        r.frontier.clear();
        r.compute = 0;
        let mut stack = core::mem::take(&mut self.scratch);
        stack.clear();
        stack.push(base as u32);
        while let Some(s) = stack.pop() {
            let adj = if reverse {
                &self.adj_in[s as usize]
            } else {
                &self.adj_out[s as usize]
            };
            for &u in adj {
                let us = &self.storages[u as usize];
                if us.material {
                    if u as usize != base {
                        r.frontier.insert(u);
                    }
                    continue;
                }
                if r.interior.insert(u) {
                    r.compute += us.compute;
                    stack.push(u);
                }
            }
        }
        self.scratch = stack;
        *self.region_mut(base, reverse) = r;
    }

    /// `p`'s region (direction `reverse`) absorbs the just-evicted `s`.
    fn absorb(&mut self, p: usize, s: usize, reverse: bool) {
        if p == s || self.storages[p].pinned {
            return;
        }
        let mut r = core::mem::take(self.region_mut(p, reverse));
        let sr = self.region(s, reverse);
        r.frontier.remove(s as u32);
        for x in sr.frontier.iter() {
            r.frontier.insert(x);
        }
        let mut add = self.storages[s].compute;
        for x in sr.interior.iter() {
            if x as usize != s && r.interior.insert(x) {
                add += self.storages[x as usize].compute;
            }
        }
        r.interior.insert(s as u32);
        r.compute += add;
        *self.region_mut(p, reverse) = r;
    }

    fn uf_new(&mut self, v: i64) -> u32 {
        self.uf_parent.push(NONE);
        self.uf_value.push(v);
        (self.uf_parent.len() - 1) as u32
    }

    fn uf_find(&mut self, mut x: u32) -> u32 {
        let mut root = x;
        while self.uf_parent[root as usize] != NONE {
            root = self.uf_parent[root as usize];
        }
        while self.uf_parent[x as usize] != NONE {
            let next = self.uf_parent[x as usize];
            self.uf_parent[x as usize] = root;
            x = next;
        }
        root
    }

    fn uf_root(&self, mut x: u32) -> u32 {
        while self.uf_parent[x as usize] != NONE {
            x = self.uf_parent[x as usize];
        }
        x
    }

    fn uf_union(&mut self, a: u32, b: u32) {
        let l = self.uf_find(a);
        let r = self.uf_find(b);
        if l != r {
            self.uf_parent[l as usize] = r;
            self.uf_value[r as usize] += self.uf_value[l as usize];
        }
    }

    // ---- scores -----------------------------------------------------------------------

    fn staleness_score(&self, num: i128, st: &Storage) -> f64 {
        match st.last_access {
            // simrd: staleness = clock - (-inf) = inf; size * inf = inf (nan for size 0).
            None => {
                if st.size == 0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            }
            Some(last) => {
                let stale = u128::from(self.clock - last.min(self.clock));
                div_round(num, u128::from(st.size) * stale)
            }
        }
    }

    fn score(&self, s: usize) -> f64 {
        let st = &self.storages[s];
        match self.heuristic {
            Heuristic::Dtr => self.staleness_score(
                i128::from(st.compute) + i128::from(st.fwd.compute) + i128::from(st.bwd.compute),
                st,
            ),
            Heuristic::DtrLocal => self.staleness_score(i128::from(st.compute), st),
            Heuristic::DtrEq => {
                let mut roots: Vec<u32> = Vec::new();
                for n in self.evicted_neighbors(s) {
                    if let Some(e) = self.storages[n as usize].ecn {
                        roots.push(self.uf_root(e));
                    }
                }
                roots.sort_unstable();
                roots.dedup();
                let mut num = i128::from(st.compute);
                for r in roots {
                    num += i128::from(self.uf_value[r as usize]);
                }
                self.staleness_score(num, st)
            }
            Heuristic::Msps => div_round(
                i128::from(st.compute) + i128::from(st.bwd.compute),
                u128::from(st.size),
            ),
            Heuristic::Lru => match st.last_access {
                None => f64::NEG_INFINITY,
                Some(l) => l as f64,
            },
            Heuristic::Largest => div_round(1, u128::from(st.size)),
            Heuristic::Memplan => self.memplan_score(s),
        }
    }

    /// memplan's score: h_MSPS's numerator (own cost plus the evicted ancestors that a
    /// recomputation would also need) per byte, divided by the length of the storage's idle
    /// interval around now: time since its last access (DTR's staleness) plus time until its
    /// next use (Belady's lookahead). Staleness alone when no future is known.
    fn memplan_score(&self, s: usize) -> f64 {
        let st = &self.storages[s];
        let num = i128::from(st.compute) + i128::from(st.bwd.compute);
        let mut next: Option<u64> = None;
        let mut known = false;
        for &t in &st.tensors {
            if let Some(n) = self.tensors[t.0 as usize].next_use {
                known = true;
                next = Some(next.map_or(n, |m: u64| m.min(n)));
            }
        }
        if !known {
            return self.staleness_score(num, st);
        }
        // Both distances in clock units (ns), +1 so that neither is ever 0; a storage never
        // accessed or never used again gets a huge distance (score ≈ 0: evicted first).
        let dist = next.map_or(u64::MAX / 4, |n| n.saturating_sub(self.now)) + 1;
        let stale = st
            .last_access
            .map_or(u64::MAX / 4, |l| self.clock - l.min(self.clock))
            + 1;
        div_round(
            num,
            u128::from(st.size) * u128::from(dist.saturating_add(stale)),
        )
    }

    fn choose(&self) -> usize {
        let mut best = f64::INFINITY;
        let mut victim = NONE;
        for &s in &self.pool {
            if s == NONE {
                continue;
            }
            let score = self.score(s as usize);
            if score <= best {
                best = score;
                victim = s;
            }
            if score == 0.0 {
                break;
            }
        }
        if victim == NONE {
            // Only NaN scores (cannot happen with the formulas above): take the last.
            victim = *self.pool.iter().rev().find(|&&s| s != NONE).expect("pool");
        }
        victim as usize
    }
}
