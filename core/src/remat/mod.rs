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
//! an ordered *pool*. The memory counter is a byte count (where the bytes live is ignored),
//! unless arena mode places them; swap mode may copy evicted storages to the host.
//!
//! # Files
//!
//! | file | concept |
//! |---|---|
//! | `ids.rs` | [`TensorId`], [`StorageId`], [`OpId`], the storage-id set |
//! | `error.rs` | [`RematError`] |
//! | `graph.rs` | ops, tensors, storages ([`Output`]) and the storage-level graph |
//! | `pool.rs` | the evictable pool, in order |
//! | `runtime.rs` | [`Runtime`]'s state (one sub-struct per concept), [`RuntimeOptions`], [`Stats`], [`Action`] |
//! | `engine.rs` | the calls: register, compute, get/release, pin, lock/unlock, access, materialize, make_room |
//! | `materialize.rs` | the algorithm behind them: materialize, evict, execute |
//! | `neighbourhoods.rs` | evicted neighbourhoods: regions and union-find equivalence classes |
//! | `heuristic.rs` | [`Heuristic`]: names and scores, victim choice, the lookahead |
//! | `arena.rs` | arena mode: storages as blocks of the online allocator |
//! | `swap.rs` | swap mode: offload and fetch over a host link |
//! | `invariants.rs` | [`Runtime::check_invariants`], run after every call in debug builds |
//! | `sim.rs` | [`sim`]: the `simrd` simulator over parsed operator logs |
//! | `model/` | `model` (tests and `fuzzing` only): scripts of calls, and a naive model that checks a runtime's decisions on them |
//!
//! Dependencies run one way: the leaves (`ids`, `error`, `graph`, `pool`, `swap`, `arena`)
//! import nothing of the others but ids and the graph; `neighbourhoods` and `heuristic` build
//! on them; `runtime` gathers them; `engine`, `materialize` and `invariants` add methods to
//! it; `sim` and `model` use it. No file imports this one.

mod arena;
mod engine;
mod error;
mod graph;
mod heuristic;
mod ids;
mod invariants;
mod materialize;
#[cfg(any(test, feature = "fuzzing"))]
pub mod model;
mod neighbourhoods;
mod pool;
mod runtime;
pub mod sim;
mod swap;
#[cfg(test)]
mod tests;

pub use error::RematError;
pub use graph::Output;
pub use heuristic::{CostTerms, Heuristic, MemplanParams, UnknownHeuristic};
pub use ids::{OpId, StorageId, TensorId};
pub use runtime::{Action, Runtime, RuntimeOptions, Stats};
