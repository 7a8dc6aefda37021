//! The naive model's state (plain `Vec`s: no pool, no neighbourhoods, no caches) and its
//! checks: replaying a call's actions, settling its result, comparing with the runtime.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::remat::error::RematError;
use crate::remat::graph::Output;
use crate::remat::ids::{StorageId, TensorId};
use crate::remat::runtime::{Action, Runtime, RuntimeOptions};

use super::script::Reply;

pub(super) struct MStorage {
    pub(super) size: u64,
    pub(super) resident: bool,
    pub(super) host_copy: bool,
    pub(super) pinned: bool,
    pub(super) locks: u64,
    pub(super) refs: u64,
    pub(super) tensors: Vec<u32>,
    /// c(S), and the last op counted in it.
    pub(super) compute: u64,
    pub(super) last_op: u32,
}

pub(super) struct MTensor {
    pub(super) storage: u32,
    pub(super) refs: u64,
    pub(super) defined: bool,
}

pub(super) struct MOp {
    pub(super) cost: u64,
    pub(super) args: Vec<u32>,
    pub(super) outputs: Vec<u32>,
    /// Sum of the fresh outputs' sizes.
    pub(super) bytes: u64,
    pub(super) ran: bool,
}

/// The model's state.
pub(super) struct Model {
    pub(super) budget: u64,
    pub(super) arena: bool,
    pub(super) swap: bool,
    pub(super) remat_limit: Option<u64>,
    pub(super) storages: Vec<MStorage>,
    pub(super) tensors: Vec<MTensor>,
    pub(super) ops: Vec<MOp>,
    pub(super) bytes: u64,
    pub(super) failed: Option<RematError>,
    pub(super) evictions: u64,
    pub(super) model_compute: u64,
    pub(super) remat_compute: u64,
    pub(super) outs: u64,
    pub(super) ins: u64,
}

/// `Err(message)` unless `cond`.
pub(super) fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}

/// Same error (any message for [`RematError::BadOp`]).
pub(super) fn same_error(a: &RematError, b: &RematError) -> bool {
    match (a, b) {
        (RematError::BadOp(_), RematError::BadOp(_)) => true,
        _ => a == b,
    }
}

impl Model {
    /// The model of a runtime created with `o`.
    pub(super) fn new(o: RuntimeOptions) -> Self {
        Model {
            budget: o.budget,
            arena: o.arena,
            swap: o.swap_bytes_per_second.is_some(),
            remat_limit: o.remat_limit,
            storages: Vec::new(),
            tensors: Vec::new(),
            ops: Vec::new(),
            bytes: 0,
            failed: None,
            evictions: 0,
            model_compute: 0,
            remat_compute: 0,
            outs: 0,
            ins: 0,
        }
    }

    pub(super) fn tensor(&self, t: u32) -> Result<&MTensor, RematError> {
        self.tensors
            .get(t as usize)
            .ok_or(RematError::UnknownTensor(TensorId(t)))
    }

    pub(super) fn storage_of(&self, t: u32) -> usize {
        self.tensors[t as usize].storage as usize
    }

    /// Registers a valid op (not run yet); returns its first output.
    pub(super) fn register(&mut self, cost: u64, args: &[u32], outputs: &[Output]) -> u32 {
        let op = self.ops.len() as u32;
        let first = self.tensors.len() as u32;
        let mut bytes = 0;
        for (i, o) in outputs.iter().enumerate() {
            let s = match *o {
                Output::Fresh(n) => {
                    bytes += n;
                    self.storages.push(MStorage {
                        size: n,
                        resident: false,
                        host_copy: false,
                        pinned: false,
                        locks: 0,
                        refs: 0,
                        tensors: Vec::new(),
                        compute: 0,
                        last_op: u32::MAX,
                    });
                    self.storages.len() - 1
                }
                Output::Alias(k) => self.storage_of(args[k]),
            };
            let st = &mut self.storages[s];
            if st.last_op != op {
                st.last_op = op;
                st.compute += cost;
            }
            st.tensors.push(first + i as u32);
            st.refs += 1;
            self.tensors.push(MTensor {
                storage: s as u32,
                refs: 1,
                defined: false,
            });
        }
        self.ops.push(MOp {
            cost,
            args: args.to_vec(),
            outputs: (first..first + outputs.len() as u32).collect(),
            bytes,
            ran: false,
        });
        first
    }

    /// The error registering this op must give, if any (in the documented order).
    pub(super) fn validate(
        &self,
        cost: u64,
        args: &[u32],
        outputs: &[Output],
    ) -> Option<RematError> {
        if let Some(e) = &self.failed {
            return Some(e.clone());
        }
        if outputs.is_empty() {
            return Some(RematError::BadOp(""));
        }
        for &a in args {
            if let Err(e) = self.tensor(a) {
                return Some(e);
            }
        }
        let mut total: u64 = 0;
        for o in outputs {
            match *o {
                Output::Fresh(n) => match total.checked_add(n) {
                    Some(x) => total = x,
                    None => return Some(RematError::Overflow),
                },
                Output::Alias(k) if k >= args.len() => return Some(RematError::BadOp("")),
                Output::Alias(k) => {
                    if self.storages[self.storage_of(args[k])]
                        .compute
                        .checked_add(cost)
                        .is_none()
                    {
                        return Some(RematError::Overflow);
                    }
                }
            }
        }
        None
    }

    /// A running call ended with `r`: only out-of-memory or thrashing may stop it, and they
    /// stop the runtime for good.
    pub(super) fn settle(
        &mut self,
        r: Result<Reply, RematError>,
    ) -> Result<Result<Reply, RematError>, String> {
        match &r {
            Ok(_) => {}
            Err(e @ RematError::OutOfMemory { used, need, budget }) => {
                ensure(*used == self.bytes && *budget == self.budget, || {
                    format!("{e:?} with {} bytes resident", self.bytes)
                })?;
                if !self.arena {
                    ensure(used.checked_add(*need).is_none_or(|m| m > *budget), || {
                        format!("{e:?}, but it fits")
                    })?;
                }
                self.failed = Some(e.clone());
            }
            Err(
                e @ RematError::Thrashed {
                    remat_compute,
                    limit,
                },
            ) => {
                ensure(
                    self.remat_limit == Some(*limit) && remat_compute > limit,
                    || format!("{e:?} under limit {:?}", self.remat_limit),
                )?;
                self.failed = Some(e.clone());
            }
            Err(e) => return Err(format!("a running call failed with {e:?}")),
        }
        Ok(r)
    }

    /// Replays a call's actions on the model, checking each. `make_room` is the bytes a
    /// trailing run of evictions made room for (`make_room`'s argument).
    pub(super) fn replay(
        &mut self,
        actions: &[Action],
        make_room: Option<u64>,
    ) -> Result<(), String> {
        // Bytes resident before each eviction of the current run (bytes mode check).
        let mut run: Vec<u64> = Vec::new();
        let mut offloaded: Option<StorageId> = None;
        for (i, a) in actions.iter().enumerate() {
            if let Some(o) = offloaded.take() {
                ensure(*a == Action::Evict(o), || {
                    format!("action {i}: {a:?} after Offload({})", o.0)
                })?;
            }
            match *a {
                Action::Evict(s) => {
                    let st = self.storage(s)?;
                    ensure(st.resident && !st.pinned && st.locks == 0, || {
                        format!(
                            "action {i}: evicts storage {} (resident {}, pinned {}, locks {})",
                            s.0, st.resident, st.pinned, st.locks
                        )
                    })?;
                    run.push(self.bytes);
                    let st = &mut self.storages[s.0 as usize];
                    st.resident = false;
                    self.bytes -= st.size;
                    for &t in &st.tensors {
                        self.tensors[t as usize].defined = false;
                    }
                    self.evictions += 1;
                }
                Action::Offload(s) => {
                    let swap = self.swap;
                    let st = self.storage(s)?;
                    ensure(swap && st.resident && !st.host_copy, || {
                        format!("action {i}: offloads storage {}", s.0)
                    })?;
                    self.storages[s.0 as usize].host_copy = true;
                    self.outs += 1;
                    offloaded = Some(s);
                }
                Action::Fetch(s) => {
                    let swap = self.swap;
                    let st = self.storage(s)?;
                    ensure(swap && !st.resident && st.host_copy, || {
                        format!("action {i}: fetches storage {}", s.0)
                    })?;
                    let size = st.size;
                    self.made_room(&mut run, size, i)?;
                    let st = &mut self.storages[s.0 as usize];
                    st.resident = true;
                    let root = st.tensors[0];
                    self.tensors[root as usize].defined = true;
                    self.bytes += size;
                    self.ins += 1;
                }
                Action::Compute { op, remat } => {
                    let o = self
                        .ops
                        .get(op.0 as usize)
                        .ok_or_else(|| format!("action {i}: unknown op {}", op.0))?;
                    ensure(remat == o.ran, || {
                        format!("action {i}: op {} with remat {remat}, ran {}", op.0, o.ran)
                    })?;
                    for &p in &o.args {
                        ensure(self.tensors[p as usize].defined, || {
                            format!("action {i}: op {} runs without its argument {p}", op.0)
                        })?;
                    }
                    let need = o.bytes;
                    self.made_room(&mut run, need, i)?;
                    let (cost, outputs) = (o.cost, o.outputs.clone());
                    for t in outputs {
                        let s = self.storage_of(t);
                        let st = &mut self.storages[s];
                        if !st.resident {
                            st.resident = true;
                            self.bytes += st.size;
                        }
                        self.tensors[t as usize].defined = true;
                    }
                    let o = &mut self.ops[op.0 as usize];
                    o.ran = true;
                    if remat {
                        self.remat_compute = self.remat_compute.saturating_add(cost);
                    } else {
                        self.model_compute = self.model_compute.saturating_add(cost);
                    }
                }
            }
            ensure(self.bytes <= self.budget, || {
                format!(
                    "action {i}: {} bytes resident, budget {}",
                    self.bytes, self.budget
                )
            })?;
        }
        if let Some(o) = offloaded {
            return Err(format!("Offload({}) is the last action", o.0));
        }
        if let Some(n) = make_room {
            self.made_room(&mut run, n, actions.len())?;
        }
        Ok(())
    }

    /// A run of evictions made room for `need` bytes: in bytes mode, each was needed.
    fn made_room(&self, run: &mut Vec<u64>, need: u64, at: usize) -> Result<(), String> {
        if !self.arena {
            for &before in run.iter() {
                ensure(
                    before.checked_add(need).is_none_or(|m| m > self.budget),
                    || {
                        format!(
                            "action {at}: an eviction at {before} bytes for {need} more was not needed"
                        )
                    },
                )?;
            }
        }
        run.clear();
        Ok(())
    }

    fn storage(&self, s: StorageId) -> Result<&MStorage, String> {
        self.storages
            .get(s.0 as usize)
            .ok_or_else(|| format!("unknown storage {}", s.0))
    }

    /// The runtime's observable state equals the model's.
    pub(super) fn compare(&self, rt: &Runtime) -> Result<(), String> {
        ensure(rt.tensor_count() == self.tensors.len(), || {
            "tensor count".into()
        })?;
        ensure(rt.storage_count() == self.storages.len(), || {
            "storage count".into()
        })?;
        for (s, st) in self.storages.iter().enumerate() {
            let id = StorageId(s as u32);
            ensure(rt.is_resident(id) == st.resident, || {
                format!(
                    "storage {s}: resident {}, model {}",
                    rt.is_resident(id),
                    st.resident
                )
            })?;
            ensure(rt.storage_size(id) == st.size, || {
                format!("storage {s}: size")
            })?;
        }
        for (t, tt) in self.tensors.iter().enumerate() {
            let id = TensorId(t as u32);
            ensure(rt.is_defined(id) == Ok(tt.defined), || {
                format!(
                    "tensor {t}: defined {:?}, model {}",
                    rt.is_defined(id),
                    tt.defined
                )
            })?;
            ensure(rt.storage_of(id) == Ok(StorageId(tt.storage)), || {
                format!("tensor {t}: storage")
            })?;
        }
        let s = rt.stats();
        let want = (
            self.bytes,
            self.evictions,
            self.model_compute,
            self.remat_compute,
            self.outs,
            self.ins,
        );
        let got = (
            s.memory,
            s.evictions,
            s.model_compute,
            s.remat_compute,
            s.swap_outs,
            s.swap_ins,
        );
        ensure(got == want, || {
            format!("(memory, evictions, model, remat, outs, ins) = {got:?}, model {want:?}")
        })?;
        ensure(s.peak >= s.memory && s.memory <= self.budget, || {
            format!("{s:?} over budget {}", self.budget)
        })?;
        ensure(self.arena || s.placement_evictions == 0, || {
            "placement evictions in bytes mode".into()
        })?;
        Ok(())
    }
}
