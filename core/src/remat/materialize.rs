//! The algorithm behind the engine's calls: `simrd`'s "V2 eager optimized" materialization,
//! eviction and execution, restated in `shared/docs/dtr-log-format.md`.
//!
//! * materializing `t`: stamp the parents' access time, lock the resident parents,
//!   recursively materialize the others (locking each), evict until the op's outputs fit
//!   (and, in arena mode, until each gets a block), run the op (clock += cost), unlock.
//!   Implemented with an explicit stack (chains of evicted activations can be tens of
//!   thousands of ops deep). In swap mode a storage with a host copy comes back by a
//!   transfer instead.
//! * evicting: free the storage, undefine its tensors, update the neighbourhoods; in swap
//!   mode copy it to the host first when that is cheaper than recomputing it.
//! * Running out of evictable storages is [`RematError::OutOfMemory`]; accumulated
//!   recomputation above the limit is [`RematError::Thrashed`]. Either leaves the runtime in
//!   the middle of an operation, for good.

use alloc::vec;
use alloc::vec::Vec;

use super::error::RematError;
use super::heuristic::Heuristic;
use super::ids::{OpId, StorageId, TensorId};
use super::runtime::{Action, Runtime};

impl Runtime {
    /// One more lock on storage `s` (out of the pool).
    pub(super) fn lock_storage(&mut self, s: usize) {
        if self.graph.storages[s].ref_int == 0 {
            self.pool.remove(s);
        }
        self.graph.storages[s].ref_int += 1;
    }

    /// One lock less on storage `s` (back in the pool at 0).
    pub(super) fn unlock_storage(&mut self, s: usize) {
        let st = &mut self.graph.storages[s];
        st.ref_int -= 1;
        if st.ref_int == 0 {
            self.pool.add(s);
        }
    }

    /// Makes the undefined tensor `t` resident: recomputes (`remat`) or computes its op and
    /// whatever evicted parents it needs, evicting as needed.
    pub(super) fn materialize_tensor(
        &mut self,
        t: TensorId,
        remat: bool,
    ) -> Result<(), RematError> {
        struct Frame {
            t: TensorId,
            remat: bool,
            /// Parent positions still to materialize and lock.
            pending: Vec<u32>,
            next: usize,
            /// Waiting for the recursive materialization of `pending[next]`.
            waiting: bool,
        }
        let frame = |t, remat| Frame {
            t,
            remat,
            pending: Vec::new(),
            next: 0,
            waiting: false,
        };
        let mut stack: Vec<Frame> = vec![frame(t, remat)];
        let mut fresh_frame = true;
        while let Some(f) = stack.last_mut() {
            let op = self.graph.tensors[f.t.0 as usize].op.0 as usize;
            if fresh_frame {
                fresh_frame = false;
                let s = self.st(f.t);
                let st = &self.graph.storages[s];
                // A storage with a host copy comes back by a transfer (through its root
                // tensor; views are re-derived from it as usual).
                let on_host = self.swap.as_ref().is_some_and(|w| w.on_host(s));
                if f.remat && on_host && !st.material && st.tensors[0] == f.t {
                    let size = st.size;
                    let t = f.t;
                    stack.pop();
                    if !self.fits(size) {
                        self.free(size)?;
                    }
                    if self.arena.is_some() {
                        self.place(&[s])?;
                    }
                    self.swap_in(t, s);
                    self.check_thrash()?;
                    continue;
                }
                let clock = self.counters.clock;
                let nargs = self.graph.ops[op].args.len();
                for i in 0..nargs {
                    let p = self.graph.ops[op].args[i];
                    let s = self.st(p);
                    self.graph.storages[s].last_access = Some(clock);
                }
                for i in 0..nargs {
                    let p = self.graph.ops[op].args[i];
                    if self.graph.tensors[p.0 as usize].defined {
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
                let p = self.graph.ops[op].args[f.pending[f.next] as usize];
                if !f.waiting && !self.graph.tensors[p.0 as usize].defined {
                    f.waiting = true;
                    stack.push(frame(p, true));
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
            let total = self.graph.ops[op].total_size;
            if !self.fits(total) {
                self.free(total)?;
            }
            if self.arena.is_some() {
                // Placing one output may evict a resident sibling (the op then writes it
                // again): repeat until every output that will be resident has a block.
                let mut fresh: Vec<usize> = Vec::new();
                loop {
                    fresh.clear();
                    let arena = self.arena.as_ref().expect("arena mode");
                    for &u in &self.graph.ops[op].outputs {
                        let s = self.st(u);
                        let st = &self.graph.storages[s];
                        if !st.material
                            && st.size > 0
                            && arena.addr(s).is_none()
                            && !fresh.contains(&s)
                        {
                            fresh.push(s);
                        }
                    }
                    if fresh.is_empty() {
                        break;
                    }
                    self.place(&fresh)?;
                }
            }
            self.execute(f.t, f.remat);
            for i in 0..self.graph.ops[op].args.len() {
                let p = self.graph.ops[op].args[i];
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
            let stall = self.swap.as_ref().map_or(0, |w| w.stall);
            let spent = self.counters.remat_compute.saturating_add(stall);
            if spent > limit {
                return self.fail(RematError::Thrashed {
                    remat_compute: spent,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Whether `need` more bytes fit in the budget (a sum past `u64::MAX` does not).
    fn fits(&self, need: u64) -> bool {
        self.counters
            .memory
            .checked_add(need)
            .is_some_and(|m| m <= self.budget)
    }

    /// Evicts heuristic victims until `need` more bytes fit in the budget.
    pub(super) fn free(&mut self, need: u64) -> Result<(), RematError> {
        while !self.fits(need) {
            if self.pool.is_empty() {
                return self.fail(RematError::OutOfMemory {
                    used: self.counters.memory,
                    need,
                    budget: self.budget,
                });
            }
            let v = self.scorer().choose(&self.pool);
            self.evict_victim(v);
        }
        Ok(())
    }

    /// Arena mode: gives each storage of `fresh` (not resident) a block, evicting victims
    /// in heuristic order (memplan's heuristic: the cheapest window) until one fits.
    fn place(&mut self, fresh: &[usize]) -> Result<(), RematError> {
        for &s in fresh {
            let size = self.graph.storages[s].size;
            let arena = self.arena.as_mut().expect("arena mode");
            if size == 0 || arena.addr(s).is_some() {
                continue;
            }
            while !self.arena.as_mut().expect("arena mode").try_place(s, size) {
                if self.pool.is_empty() {
                    return self.fail(RematError::OutOfMemory {
                        used: self.counters.memory,
                        need: size,
                        budget: self.budget,
                    });
                }
                let arena = self.arena.as_ref().expect("arena mode");
                let window = if self.heuristic == Heuristic::Memplan {
                    let scorer = self.scorer();
                    let pool = &self.pool;
                    let sizes = &self.graph.storages;
                    arena.cheapest_window(size, |st| {
                        if !pool.contains(st) {
                            return None;
                        }
                        let c = scorer.score(st) * sizes[st].size as f64;
                        c.is_finite().then_some(c)
                    })
                } else {
                    None
                };
                let victims = match window {
                    Some(victims) => victims,
                    None => vec![self.scorer().choose(&self.pool) as u32],
                };
                for v in victims {
                    self.arena.as_mut().expect("arena mode").placement_evictions += 1;
                    self.evict_victim(v as usize);
                }
            }
        }
        Ok(())
    }

    /// Evicts a storage the heuristic chose; in swap mode it is copied to the host first
    /// when a copy out and back costs less than recomputing it.
    fn evict_victim(&mut self, v: usize) {
        if let Some(w) = &mut self.swap {
            let st = &self.graph.storages[v];
            let remat = st
                .compute
                .saturating_add(self.neighbourhoods.bwd_compute(v));
            if w.offload_if_cheaper(v, st.size, remat) {
                self.record(Action::Offload(StorageId(v as u32)));
            }
        }
        self.evict(v);
    }

    /// Brings storage `s` (root tensor `t`) back from its host copy.
    fn swap_in(&mut self, t: TensorId, s: usize) {
        let size = self.graph.storages[s].size;
        self.swap.as_mut().expect("swap mode").fetch(size);
        self.record(Action::Fetch(StorageId(s as u32)));
        let c = &mut self.counters;
        c.memory = c.memory.saturating_add(size);
        c.peak = c.peak.max(c.memory);
        self.graph.storages[s].material = true;
        self.graph.tensors[t.0 as usize].defined = true;
        self.pool.add(s);
        self.neighbourhoods.on_materialized(&self.graph, &[s]);
    }

    /// Runs the op of `t` (its arguments resident and locked, room made).
    fn execute(&mut self, t: TensorId, remat: bool) {
        let op = self.graph.tensors[t.0 as usize].op.0 as usize;
        let outs = self.graph.ops[op].outputs.clone();
        let mut fresh: Vec<usize> = Vec::new();
        let mut dup_bytes = 0u64;
        // siblings in order, then t
        for &u in outs.iter().filter(|&&u| u != t).chain(core::iter::once(&t)) {
            let s = self.st(u);
            if !self.graph.storages[s].material {
                fresh.push(s);
            }
        }
        let cost = self.graph.ops[op].cost;
        // Transfers issued for this op run during its compute; only the excess stalls.
        let stall = self.swap.as_mut().map_or(0, |w| w.overlap(cost));
        let c = &mut self.counters;
        c.clock = c.clock.saturating_add(cost).saturating_add(stall);
        c.memory = c.memory.saturating_add(self.graph.ops[op].total_size);
        c.peak = c.peak.max(c.memory);
        if remat {
            c.remat_compute = c.remat_compute.saturating_add(cost);
        } else {
            c.model_compute = c.model_compute.saturating_add(cost);
        }
        self.record(Action::Compute {
            op: OpId(op as u32),
            remat,
        });
        for &u in &outs {
            let ui = u.0 as usize;
            if u != t && self.graph.tensors[ui].defined {
                dup_bytes += self.graph.ops[op].sizes[self.graph.tensors[ui].index as usize];
            }
        }
        for &u in &outs {
            let s = self.st(u);
            self.graph.storages[s].material = true;
            self.graph.tensors[u.0 as usize].defined = true;
        }
        self.counters.memory -= dup_bytes;
        for &s in &fresh {
            self.pool.add(s);
        }
        self.neighbourhoods.on_materialized(&self.graph, &fresh);
    }

    /// Evicts storage `s` (resident, unlocked).
    pub(super) fn evict(&mut self, s: usize) {
        let st = &mut self.graph.storages[s];
        st.material = false;
        self.counters.memory -= st.size;
        if let Some(arena) = &mut self.arena {
            arena.unplace(s);
        }
        self.counters.evictions += 1;
        self.pool.remove(s);
        for i in 0..self.graph.storages[s].tensors.len() {
            let t = self.graph.storages[s].tensors[i];
            self.graph.tensors[t.0 as usize].defined = false;
        }
        self.record(Action::Evict(StorageId(s as u32)));
        self.neighbourhoods.on_evicted(&self.graph, s);
    }
}
