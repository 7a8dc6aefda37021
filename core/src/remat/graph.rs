//! The registered graph: ops, tensors and storages, and the storage-level adjacency.
//!
//! *Storages* are physical buffers; *tensors* are outputs of ops, either owning a fresh
//! storage ([`Output::Fresh`]) or viewing an argument's storage ([`Output::Alias`]). The
//! graph only grows: ops, tensors, storages and edges are never removed.
//!
//! # Representation invariants
//!
//! Checked by `Runtime::check_invariants` (`invariants.rs`):
//!
//! 1. Every storage has at least one tensor; its first tensor (the *root*) is the
//!    [`Output::Fresh`] output that created it; every tensor in `Storage::tensors` has that
//!    storage.
//! 2. `Storage::ref_ext` is the sum of its tensors' `ref_ext`.
//! 3. A defined tensor's storage is resident (`material`); a resident storage's root tensor
//!    is defined.
//! 4. `adj_out[p]` / `adj_in[c]` hold the storage edges `p → c` (an op reads a tensor of `p`
//!    and writes one of `c`), without self edges or duplicates, and mirror each other.
//! 5. `Storage::compute` (c(S)) is the sum of the costs of the distinct ops with an output in
//!    the storage.

use alloc::vec::Vec;

use super::error::RematError;
use super::ids::{OpId, StorageId, TensorId};

/// One output of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A fresh storage of this many bytes.
    Fresh(u64),
    /// A view of the storage of argument `k` (0 bytes of its own).
    Alias(usize),
}

pub(super) struct Op {
    pub(super) cost: u64,
    pub(super) args: Vec<TensorId>,
    pub(super) outputs: Vec<TensorId>,
    /// Bytes of each output (0 for views).
    pub(super) sizes: Vec<u64>,
    /// Sum of `sizes`.
    pub(super) total_size: u64,
}

pub(super) struct Tensor {
    pub(super) op: OpId,
    /// Which output of `op`.
    pub(super) index: u32,
    pub(super) storage: StorageId,
    /// Computed and not evicted since.
    pub(super) defined: bool,
    /// References held by the caller.
    pub(super) ref_ext: u64,
}

pub(super) struct Storage {
    pub(super) size: u64,
    /// Resident.
    pub(super) material: bool,
    /// Its tensors, the root first.
    pub(super) tensors: Vec<TensorId>,
    /// References held by the caller, over all its tensors.
    pub(super) ref_ext: u64,
    /// Locks: the caller's (`user_locks`), one permanent one when pinned, and the runtime's
    /// own while an op that reads it runs.
    pub(super) ref_int: u64,
    /// Locks taken by `Runtime::lock` and not yet released by `Runtime::unlock`.
    pub(super) user_locks: u64,
    /// Pinned for good (never evicted again).
    pub(super) pinned: bool,
    /// c(S): the cost of the distinct ops with an output in it.
    pub(super) compute: u64,
    /// `None` is simrd's `-inf` (never accessed).
    pub(super) last_access: Option<u64>,
}

/// The ops, tensors and storages registered so far, and the storage-level graph.
#[derive(Default)]
pub(super) struct Graph {
    pub(super) ops: Vec<Op>,
    pub(super) tensors: Vec<Tensor>,
    pub(super) storages: Vec<Storage>,
    /// Child storages of each storage (no self edges, no duplicates).
    pub(super) adj_out: Vec<Vec<u32>>,
    /// Parent storages of each storage (no self edges, no duplicates).
    pub(super) adj_in: Vec<Vec<u32>>,
}

impl Graph {
    pub(super) fn tensor(&self, t: TensorId) -> Result<&Tensor, RematError> {
        self.tensors
            .get(t.0 as usize)
            .ok_or(RematError::UnknownTensor(t))
    }

    /// The index of the storage of the (known) tensor `t`.
    pub(super) fn storage_of(&self, t: TensorId) -> usize {
        self.tensors[t.0 as usize].storage.0 as usize
    }

    /// Registers an op (not computed yet: its outputs are undefined), after checking it
    /// whole, so that an error changes nothing. Returns its outputs and the storages it
    /// created, in order.
    ///
    /// # Errors
    /// [`RematError::BadOp`] (no outputs, alias index out of range),
    /// [`RematError::UnknownTensor`], [`RematError::Overflow`] (the output sizes, or the
    /// c(S) of an aliased storage).
    pub(super) fn register_op(
        &mut self,
        cost: u64,
        args: &[TensorId],
        outputs: &[Output],
    ) -> Result<(Vec<TensorId>, Vec<usize>), RematError> {
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
                Output::Alias(k) => {
                    let s = self.storage_of(args[k]);
                    self.storages[s]
                        .compute
                        .checked_add(cost)
                        .ok_or(RematError::Overflow)?;
                }
            }
        }
        let op = OpId(self.ops.len() as u32);
        let first = self.tensors.len() as u32;
        let mut sizes = Vec::with_capacity(outputs.len());
        let mut outs = Vec::with_capacity(outputs.len());
        let mut fresh = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            let t = TensorId(first + i as u32);
            let s = match *o {
                Output::Fresh(n) => {
                    sizes.push(n);
                    let id = self.storages.len();
                    self.adj_out.push(Vec::new());
                    self.adj_in.push(Vec::new());
                    self.storages.push(Storage {
                        size: n,
                        material: false,
                        tensors: Vec::new(),
                        ref_ext: 0,
                        ref_int: 0,
                        user_locks: 0,
                        pinned: false,
                        compute: 0,
                        last_access: None,
                    });
                    fresh.push(id);
                    id
                }
                Output::Alias(k) => {
                    sizes.push(0);
                    self.storage_of(args[k])
                }
            };
            let st = &mut self.storages[s];
            // c(S): distinct ops over the storage's tensors (the new op is the last one).
            // Cannot overflow: checked above, and a storage gets the cost once.
            let seen = st
                .tensors
                .iter()
                .any(|&u| self.tensors[u.0 as usize].op == op);
            if !seen {
                st.compute += cost;
            }
            st.tensors.push(t);
            st.ref_ext += 1;
            self.tensors.push(Tensor {
                op,
                index: i as u32,
                storage: StorageId(s as u32),
                defined: false,
                ref_ext: 1,
            });
            outs.push(t);
        }
        for &a in args {
            let p = self.storage_of(a) as u32;
            for &t in &outs {
                let u = self.storage_of(t) as u32;
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
        Ok((outs, fresh))
    }

    /// Storages of the parents and children of every tensor in `s` that are not resident,
    /// sorted.
    pub(super) fn evicted_neighbors(&self, s: usize) -> Vec<u32> {
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
}
