//! A naive model of the runtime's contract, for property tests and fuzzing (compiled for
//! tests and with the `fuzzing` feature only).
//!
//! [`run`] drives a [`Runtime`] with a script of [`Call`]s and, beside it, a model made of
//! plain `Vec`s (no pool, no neighbourhoods, no caches) that replays the action list and
//! panics at the first disagreement:
//!
//! * every call's result is the one the contract predicts (the validation errors, the output
//!   ids, `Unbalanced` releases and unlocks, a failed runtime repeating its error);
//! * actions are legal: only a resident, unpinned, unlocked storage is evicted, an offload is
//!   followed by its eviction, only a non-resident storage with a host copy is fetched, an
//!   op runs (as a recomputation exactly when it ran before) only when all its arguments are
//!   defined;
//! * the budget holds after every action; in bytes mode every heuristic eviction was needed
//!   (the bytes of the op, fetch or `make_room` it made room for did not fit without it);
//! * a storage left without references, locks or pin by `release` / `unlock` is evicted at
//!   once, and nothing else happens in those calls;
//! * after every call the runtime's residency, definedness, resident bytes and counters equal
//!   the model's, and [`Runtime::check_invariants`] passes.
//!
//! [`run`] returns a [`Transcript`] so that tests can compare runs (determinism, metamorphic
//! relations).

mod script;
mod state;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::error::RematError;
use super::graph::Output;
use super::ids::{OpId, StorageId, TensorId};
use super::runtime::{Action, Runtime, RuntimeOptions};
pub use script::{Call, Reply, Transcript};
use state::{Model, ensure, same_error};

/// Runs `calls` on a runtime created with `options`, checking it against the model after
/// every action and call.
///
/// # Errors
/// [`Runtime::with_options`]'s.
///
/// # Panics
/// At the first disagreement, naming the call.
pub fn run(options: RuntimeOptions, calls: &[Call]) -> Result<Transcript, RematError> {
    let mut rt = Runtime::with_options(options)?;
    let mut m = Model::new(options);
    let mut out = Vec::with_capacity(calls.len());
    for (i, c) in calls.iter().enumerate() {
        let r = m.call(&mut rt, c);
        let r = r.unwrap_or_else(|why| panic!("call {i} ({c:?}): {why}"));
        m.compare(&rt)
            .unwrap_or_else(|why| panic!("after call {i} ({c:?}): {why}"));
        rt.check_invariants();
        out.push(r);
    }
    Ok(Transcript {
        calls: out,
        stats: rt.stats(),
    })
}

type Step = (Result<Reply, RematError>, Vec<Action>);

impl Model {
    /// One call: predicts its validation, runs it, replays its actions.
    fn call(&mut self, rt: &mut Runtime, c: &Call) -> Result<Step, String> {
        let c = &c.resolved(self.tensors.len());
        match c {
            Call::Compute {
                cost,
                args,
                outputs,
            } => {
                let r = rt.compute(*cost, &ids(args), outputs).map(Reply::Tensors);
                self.compute(rt, r, *cost, args, outputs, false)
            }
            Call::Register {
                size,
                cost,
                parents,
                constant,
            } => {
                let r = rt
                    .register(*size, *cost, &ids(parents), *constant)
                    .map(|t| Reply::Tensors(alloc::vec![t]));
                if *constant && !parents.is_empty() {
                    return self.expect_error(rt, r, &RematError::BadOp(""));
                }
                let cost = if *constant { 0 } else { *cost };
                self.compute(rt, r, cost, parents, &[Output::Fresh(*size)], *constant)
            }
            Call::Constant(size) => {
                let r = rt.constant(*size).map(|t| Reply::Tensors(alloc::vec![t]));
                self.compute(rt, r, 0, &[], &[Output::Fresh(*size)], true)
            }
            Call::Get(t) => {
                let r = rt.get(TensorId(*t)).map(|()| Reply::Unit);
                if let Some(e) = self.precheck(*t) {
                    return self.expect_error(rt, r, &e);
                }
                let s = self.storage_of(*t);
                self.tensors[*t as usize].refs += 1;
                self.storages[s].refs += 1;
                self.expect_quiet(rt, r)
            }
            Call::Release(t) => {
                let r = rt.release(TensorId(*t)).map(|()| Reply::Unit);
                let mut e = self.precheck(*t);
                if e.is_none() && self.tensors[*t as usize].refs == 0 {
                    e = Some(RematError::Unbalanced(TensorId(*t)));
                }
                if let Some(e) = e {
                    return self.expect_error(rt, r, &e);
                }
                let s = self.storage_of(*t);
                self.tensors[*t as usize].refs -= 1;
                self.storages[s].refs -= 1;
                self.expect_eager_eviction(rt, r, s)
            }
            Call::Unlock(t) => {
                let r = rt.unlock(TensorId(*t)).map(|()| Reply::Unit);
                let mut e = self.precheck(*t);
                if e.is_none() && self.storages[self.storage_of(*t)].locks == 0 {
                    e = Some(RematError::Unbalanced(TensorId(*t)));
                }
                if let Some(e) = e {
                    return self.expect_error(rt, r, &e);
                }
                let s = self.storage_of(*t);
                self.storages[s].locks -= 1;
                self.expect_eager_eviction(rt, r, s)
            }
            Call::Pin(t) | Call::Lock(t) | Call::Access(t) | Call::Materialize(t) => {
                let tid = TensorId(*t);
                let r = match c {
                    Call::Pin(_) => rt.pin(tid).map(|()| Reply::Unit),
                    Call::Lock(_) => rt.lock(tid).map(|()| Reply::Unit),
                    Call::Access(_) => rt.access(tid).map(Reply::Ops),
                    _ => rt.materialize(tid).map(Reply::Ops),
                };
                if let Some(e) = self.precheck(*t) {
                    return self.expect_error(rt, r, &e);
                }
                let actions = rt.take_actions();
                self.replay(&actions, None)?;
                let r = self.settle(r)?;
                if r.is_ok() {
                    ensure(self.tensors[*t as usize].defined, || {
                        "the tensor asked for is not defined".into()
                    })?;
                    let s = self.storage_of(*t);
                    match c {
                        Call::Pin(_) => self.storages[s].pinned = true,
                        Call::Lock(_) => self.storages[s].locks += 1,
                        _ => {}
                    }
                }
                if let Ok(Reply::Ops(ops)) = &r {
                    let computed: Vec<OpId> = actions
                        .iter()
                        .filter_map(|a| match a {
                            Action::Compute { op, .. } => Some(*op),
                            _ => None,
                        })
                        .collect();
                    ensure(*ops == computed, || {
                        format!("returned ops {ops:?}, computed {computed:?}")
                    })?;
                }
                Ok((r, actions))
            }
            Call::MakeRoom(n) => {
                let r = rt.make_room(*n).map(Reply::Storages);
                if let Some(e) = &self.failed {
                    let e = e.clone();
                    return self.expect_error(rt, r, &e);
                }
                let actions = rt.take_actions();
                self.replay(&actions, Some(*n))?;
                let r = self.settle(r)?;
                if r.is_ok() {
                    ensure(
                        self.bytes.checked_add(*n).is_some_and(|m| m <= self.budget),
                        || format!("make_room({n}) returned with {} bytes resident", self.bytes),
                    )?;
                }
                if let Ok(Reply::Storages(ss)) = &r {
                    let evicted: Vec<StorageId> = actions
                        .iter()
                        .filter_map(|a| match a {
                            Action::Evict(s) => Some(*s),
                            _ => None,
                        })
                        .collect();
                    ensure(*ss == evicted, || {
                        format!("returned {ss:?}, evicted {evicted:?}")
                    })?;
                }
                Ok((r, actions))
            }
            Call::SetNextUse(t, at) => {
                let r = rt.set_next_use(TensorId(*t), *at).map(|()| Reply::Unit);
                if let Err(e) = self.tensor(*t) {
                    return self.expect_error(rt, r, &e);
                }
                self.expect_quiet(rt, r)
            }
            Call::SetNow(now) => {
                rt.set_now(*now);
                self.expect_quiet(rt, Ok(Reply::Unit))
            }
            Call::UseArena => {
                let r = rt.use_arena().map(|()| Reply::Unit);
                if !self.tensors.is_empty() {
                    return self.expect_error(rt, r, &RematError::BadOp(""));
                }
                self.arena = true;
                self.expect_quiet(rt, r)
            }
            Call::SetSwapBandwidth(bps) => {
                let r = rt.set_swap_bandwidth(*bps).map(|()| Reply::Unit);
                if *bps == 0 {
                    return self.expect_error(rt, r, &RematError::BadOp(""));
                }
                self.swap = true;
                self.expect_quiet(rt, r)
            }
        }
    }

    /// The error a call on tensor `t` must return before doing anything, if any.
    fn precheck(&self, t: u32) -> Option<RematError> {
        if let Some(e) = &self.failed {
            return Some(e.clone());
        }
        self.tensor(t).err()
    }

    fn expect_error(
        &mut self,
        rt: &mut Runtime,
        r: Result<Reply, RematError>,
        want: &RematError,
    ) -> Result<Step, String> {
        let actions = rt.take_actions();
        ensure(r.as_ref().is_err_and(|e| same_error(e, want)), || {
            format!("returned {r:?}, the model expects {want:?}")
        })?;
        ensure(actions.is_empty(), || {
            format!("a refused call decided {actions:?}")
        })?;
        Ok((r, actions))
    }

    /// A call that must succeed without any action.
    fn expect_quiet(
        &mut self,
        rt: &mut Runtime,
        r: Result<Reply, RematError>,
    ) -> Result<Step, String> {
        let actions = rt.take_actions();
        ensure(r.is_ok() && actions.is_empty(), || {
            format!("returned {r:?} with {actions:?}, the model expects Ok and no action")
        })?;
        Ok((r, actions))
    }

    /// A successful release or unlock: storage `s` is evicted iff nothing keeps it.
    fn expect_eager_eviction(
        &mut self,
        rt: &mut Runtime,
        r: Result<Reply, RematError>,
        s: usize,
    ) -> Result<Step, String> {
        let actions = rt.take_actions();
        ensure(r.is_ok(), || format!("returned {r:?}"))?;
        let st = &self.storages[s];
        let drop = st.resident && st.refs == 0 && st.locks == 0 && !st.pinned;
        let want: Vec<Action> = if drop {
            alloc::vec![Action::Evict(StorageId(s as u32))]
        } else {
            Vec::new()
        };
        ensure(actions == want, || {
            format!("decided {actions:?}, the model expects {want:?}")
        })?;
        self.replay(&actions, None)?;
        Ok((r, actions))
    }

    /// The runtime registered (when valid) and ran an op, then pinned its output when
    /// `constant`, and returned `r`.
    fn compute(
        &mut self,
        rt: &mut Runtime,
        r: Result<Reply, RematError>,
        cost: u64,
        args: &[u32],
        outputs: &[Output],
        constant: bool,
    ) -> Result<Step, String> {
        if let Some(e) = self.validate(cost, args, outputs) {
            return self.expect_error(rt, r, &e);
        }
        let first = self.register(cost, args, outputs);
        let actions = rt.take_actions();
        self.replay(&actions, None)?;
        let r = self.settle(r)?;
        if r.is_ok() {
            let want: Vec<TensorId> = (first..first + outputs.len() as u32)
                .map(TensorId)
                .collect();
            ensure(r == Ok(Reply::Tensors(want.clone())), || {
                format!("returned {r:?}, the model expects {want:?}")
            })?;
            for t in first..first + outputs.len() as u32 {
                ensure(self.tensors[t as usize].defined, || {
                    format!("output {t} is not defined")
                })?;
            }
            if constant {
                let s = self.storage_of(first);
                self.storages[s].pinned = true;
            }
        }
        Ok((r, actions))
    }
}

fn ids(ts: &[u32]) -> Vec<TensorId> {
    ts.iter().map(|&t| TensorId(t)).collect()
}
