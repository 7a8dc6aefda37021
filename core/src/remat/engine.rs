//! The calls that drive a [`Runtime`]: registering ops, references, pins and locks, and
//! asking for tensors or room. Each mutating call ends with the debug-build invariant check
//! (`invariants.rs`); the algorithm behind them is in `materialize.rs`.

use alloc::vec::Vec;

use super::error::RematError;
use super::graph::Output;
use super::ids::{OpId, StorageId, TensorId};
use super::runtime::{Action, Runtime};

impl Runtime {
    /// Runs one public call `f`, then the debug-build invariant check, whatever `f` returned.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, RematError>,
    ) -> Result<T, RematError> {
        let r = f(self);
        self.debug_check();
        r
    }

    /// Registers and runs a model op: arguments `args`, cost `cost`, the given outputs.
    /// Evicted arguments are recomputed first and memory is freed as needed; the actions say
    /// what to do. Returns the output tensors.
    ///
    /// # Errors
    /// [`RematError::BadOp`], [`RematError::UnknownTensor`] or [`RematError::Overflow`] for
    /// a bad op (nothing is registered then); [`RematError::OutOfMemory`] or
    /// [`RematError::Thrashed`] when running it fails (for good).
    pub fn compute(
        &mut self,
        cost: u64,
        args: &[TensorId],
        outputs: &[Output],
    ) -> Result<Vec<TensorId>, RematError> {
        self.call(|rt| rt.compute_op(cost, args, outputs))
    }

    fn compute_op(
        &mut self,
        cost: u64,
        args: &[TensorId],
        outputs: &[Output],
    ) -> Result<Vec<TensorId>, RematError> {
        self.check_failed()?;
        let (outs, fresh) = self.graph.register_op(cost, args, outputs)?;
        for _ in fresh {
            self.neighbourhoods.add_storage();
        }
        self.materialize_tensor(outs[0], false)?;
        let clock = self.counters.clock;
        for &t in &outs {
            let s = self.st(t);
            self.graph.storages[s].last_access = Some(clock);
        }
        Ok(outs)
    }

    /// Registers and runs a one-output op: `size` bytes, `cost`, the given parents; a
    /// `constant` (parameter, input) has no parents, cost 0 and is pinned for good.
    ///
    /// # Errors
    /// As [`Runtime::compute`]; [`RematError::BadOp`] for a constant with parents.
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
    ///
    /// # Errors
    /// As [`Runtime::compute`].
    pub fn constant(&mut self, size: u64) -> Result<TensorId, RematError> {
        self.call(|rt| {
            let t = rt.compute_op(0, &[], &[Output::Fresh(size)])?[0];
            rt.pin_tensor(t)?;
            Ok(t)
        })
    }

    /// One more reference to `t`.
    ///
    /// # Errors
    /// [`RematError::UnknownTensor`]; the error of a failed runtime.
    pub fn get(&mut self, t: TensorId) -> Result<(), RematError> {
        self.call(|rt| {
            rt.check_failed()?;
            rt.tensor(t)?;
            let s = rt.st(t);
            rt.graph.tensors[t.0 as usize].ref_ext += 1;
            rt.graph.storages[s].ref_ext += 1;
            Ok(())
        })
    }

    /// Drops one reference to `t`; a storage left without references is evicted at once
    /// (unless pinned or locked).
    ///
    /// # Errors
    /// [`RematError::UnknownTensor`]; [`RematError::Unbalanced`] when `t` has no reference
    /// left; the error of a failed runtime.
    pub fn release(&mut self, t: TensorId) -> Result<(), RematError> {
        self.call(|rt| {
            rt.check_failed()?;
            rt.tensor(t)?;
            let s = rt.st(t);
            if rt.graph.tensors[t.0 as usize].ref_ext == 0 || rt.graph.storages[s].ref_ext == 0 {
                return Err(RematError::Unbalanced(t));
            }
            rt.graph.tensors[t.0 as usize].ref_ext -= 1;
            let st = &mut rt.graph.storages[s];
            st.ref_ext -= 1;
            if st.ref_ext == 0 && st.material && !st.pinned && st.ref_int == 0 {
                rt.evict(s);
            }
            Ok(())
        })
    }

    /// Makes `t` resident (recomputing it and whatever it needs) and pins its storage for
    /// good: never evicted again.
    ///
    /// # Errors
    /// [`RematError::UnknownTensor`]; [`RematError::OutOfMemory`] or
    /// [`RematError::Thrashed`] (for good).
    pub fn pin(&mut self, t: TensorId) -> Result<(), RematError> {
        self.call(|rt| rt.pin_tensor(t))
    }

    fn pin_tensor(&mut self, t: TensorId) -> Result<(), RematError> {
        self.check_failed()?;
        self.tensor(t)?;
        if !self.graph.tensors[t.0 as usize].defined {
            self.materialize_tensor(t, true)?;
        }
        let s = self.st(t);
        if !self.graph.storages[s].pinned {
            self.lock_storage(s);
            self.graph.storages[s].pinned = true;
        }
        Ok(())
    }

    /// Makes `t` resident and locks its storage until [`Runtime::unlock`] (e.g. while an op
    /// of the caller's reads it). Locks nest.
    ///
    /// # Errors
    /// As [`Runtime::pin`].
    pub fn lock(&mut self, t: TensorId) -> Result<(), RematError> {
        self.call(|rt| {
            rt.check_failed()?;
            rt.tensor(t)?;
            if !rt.graph.tensors[t.0 as usize].defined {
                rt.materialize_tensor(t, true)?;
            }
            let s = rt.st(t);
            rt.lock_storage(s);
            rt.graph.storages[s].user_locks += 1;
            Ok(())
        })
    }

    /// Releases one lock taken by [`Runtime::lock`].
    ///
    /// # Errors
    /// [`RematError::UnknownTensor`]; [`RematError::Unbalanced`] when `t`'s storage holds
    /// no such lock; the error of a failed runtime.
    pub fn unlock(&mut self, t: TensorId) -> Result<(), RematError> {
        self.call(|rt| {
            rt.check_failed()?;
            rt.tensor(t)?;
            let s = rt.st(t);
            let st = &rt.graph.storages[s];
            // A pinned storage keeps its own permanent lock.
            if st.ref_int <= u64::from(st.pinned) || !st.material {
                return Err(RematError::Unbalanced(t));
            }
            rt.unlock_storage(s);
            let st = &mut rt.graph.storages[s];
            st.user_locks -= 1;
            if st.ref_ext == 0 && st.ref_int == 0 && st.material && !st.pinned {
                rt.evict(s);
            }
            Ok(())
        })
    }

    /// Records an access to `t` now (refreshes its staleness) and makes it resident;
    /// returns the ops recomputed for it, in order (none when recording is off).
    ///
    /// # Errors
    /// As [`Runtime::pin`].
    pub fn access(&mut self, t: TensorId) -> Result<Vec<OpId>, RematError> {
        self.call(|rt| {
            let ops = rt.materialize_call(t)?;
            let s = rt.st(t);
            rt.graph.storages[s].last_access = Some(rt.counters.clock);
            Ok(ops)
        })
    }

    /// Makes `t` resident; returns the ops recomputed, in order (the evictions needed are
    /// in the action list, interleaved; none when recording is off).
    ///
    /// # Errors
    /// As [`Runtime::pin`].
    pub fn materialize(&mut self, t: TensorId) -> Result<Vec<OpId>, RematError> {
        self.call(|rt| rt.materialize_call(t))
    }

    fn materialize_call(&mut self, t: TensorId) -> Result<Vec<OpId>, RematError> {
        self.check_failed()?;
        self.tensor(t)?;
        let start = self.actions.len();
        if !self.graph.tensors[t.0 as usize].defined {
            self.materialize_tensor(t, true)?;
        }
        Ok(self.actions[start..]
            .iter()
            .filter_map(|a| match a {
                Action::Compute { op, .. } => Some(*op),
                _ => None,
            })
            .collect())
    }

    /// Evicts until `need` more bytes fit in the budget; returns the storages evicted (none
    /// when recording is off).
    ///
    /// # Errors
    /// [`RematError::OutOfMemory`] (for good) when not enough is evictable.
    pub fn make_room(&mut self, need: u64) -> Result<Vec<StorageId>, RematError> {
        self.call(|rt| {
            rt.check_failed()?;
            let start = rt.actions.len();
            rt.free(need)?;
            Ok(rt.actions[start..]
                .iter()
                .filter_map(|a| match a {
                    Action::Evict(s) => Some(*s),
                    _ => None,
                })
                .collect())
        })
    }
}
