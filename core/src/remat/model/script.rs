//! Scripts: the [`Call`]s a model run makes, and what it records ([`Reply`], [`Transcript`]).

use alloc::vec::Vec;

use crate::remat::error::RematError;
use crate::remat::graph::Output;
use crate::remat::ids::{OpId, StorageId, TensorId};
use crate::remat::runtime::{Action, Stats};

/// One call of a script. A tensor operand `x` names tensor `x % (n + 1)`, n = the number of
/// tensors registered so far: any operand is mostly a known tensor, and `n` an unknown one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// [`Runtime::compute`](crate::remat::Runtime::compute).
    Compute {
        /// Cost.
        cost: u64,
        /// Arguments.
        args: Vec<u32>,
        /// Outputs.
        outputs: Vec<Output>,
    },
    /// [`Runtime::register`](crate::remat::Runtime::register).
    Register {
        /// Bytes.
        size: u64,
        /// Cost.
        cost: u64,
        /// Parents.
        parents: Vec<u32>,
        /// A constant.
        constant: bool,
    },
    /// [`Runtime::constant`](crate::remat::Runtime::constant).
    Constant(u64),
    /// [`Runtime::get`](crate::remat::Runtime::get).
    Get(u32),
    /// [`Runtime::release`](crate::remat::Runtime::release).
    Release(u32),
    /// [`Runtime::pin`](crate::remat::Runtime::pin).
    Pin(u32),
    /// [`Runtime::lock`](crate::remat::Runtime::lock).
    Lock(u32),
    /// [`Runtime::unlock`](crate::remat::Runtime::unlock).
    Unlock(u32),
    /// [`Runtime::access`](crate::remat::Runtime::access).
    Access(u32),
    /// [`Runtime::materialize`](crate::remat::Runtime::materialize).
    Materialize(u32),
    /// [`Runtime::make_room`](crate::remat::Runtime::make_room).
    MakeRoom(u64),
    /// [`Runtime::set_next_use`](crate::remat::Runtime::set_next_use).
    SetNextUse(u32, Option<u64>),
    /// [`Runtime::set_now`](crate::remat::Runtime::set_now).
    SetNow(u64),
    /// [`Runtime::use_arena`](crate::remat::Runtime::use_arena).
    UseArena,
    /// [`Runtime::set_swap_bandwidth`](crate::remat::Runtime::set_swap_bandwidth).
    SetSwapBandwidth(u64),
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing.
    Unit,
    /// New tensors.
    Tensors(Vec<TensorId>),
    /// Ops recomputed.
    Ops(Vec<OpId>),
    /// Storages evicted.
    Storages(Vec<StorageId>),
}

/// Everything observable of a run: each call's reply and actions, and the final counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Per call: its result and the actions it decided.
    pub calls: Vec<(Result<Reply, RematError>, Vec<Action>)>,
    /// The counters at the end.
    pub stats: Stats,
}

impl Call {
    /// The call with its tensor operands resolved, `n` tensors being registered.
    pub(super) fn resolved(&self, n: usize) -> Call {
        let r = |x: &u32| x % (n as u32 + 1);
        let rs = |xs: &Vec<u32>| xs.iter().map(r).collect();
        match self {
            Call::Compute {
                cost,
                args,
                outputs,
            } => Call::Compute {
                cost: *cost,
                args: rs(args),
                outputs: outputs.clone(),
            },
            Call::Register {
                size,
                cost,
                parents,
                constant,
            } => Call::Register {
                size: *size,
                cost: *cost,
                parents: rs(parents),
                constant: *constant,
            },
            Call::Get(t) => Call::Get(r(t)),
            Call::Release(t) => Call::Release(r(t)),
            Call::Pin(t) => Call::Pin(r(t)),
            Call::Lock(t) => Call::Lock(r(t)),
            Call::Unlock(t) => Call::Unlock(r(t)),
            Call::Access(t) => Call::Access(r(t)),
            Call::Materialize(t) => Call::Materialize(r(t)),
            Call::SetNextUse(t, at) => Call::SetNextUse(r(t), *at),
            other => other.clone(),
        }
    }
}
