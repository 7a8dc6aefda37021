//! Chunks of model states and their placement over device, host and NVMe (after PatrickStar).
//!
//! One concept per file, in the order a training placement is computed:
//!
//! | file | holds |
//! |---|---|
//! | `error.rs` | [`ChunkError`] |
//! | `model.rs` | the shared nouns: [`Tensor`], [`StateKind`], [`ChunkId`] (`position × 4 + kind`) |
//! | `layout.rs` | tensors into chunks: [`Layout`], the chunk-size search [`search_chunk_size`] |
//! | `state.rs` | tensor and chunk states: [`tensor_state_at`], [`chunk_state`] |
//! | `schedule.rs` | the moments a training iteration uses chunks: [`Schedule`], [`Moment`] |
//! | `placement.rs` | [`Tier`]s, [`Policy`], [`Move`]s and the placement computation [`place`] → [`Placement`] |
//! | `recipe.rs` | the training recipe both front ends call: [`place_training`] → [`TrainingPlacement`] |
//!
//! A file uses only files above it in this table, never this one (no import cycle): the
//! types several files share live in `error.rs` and `model.rs`.
//!
//! # Layout
//! Tensors are taken in order of first use and appended to the last chunk while they fit
//! (PatrickStar's `append_tensor`). Capacity is counted in elements, so one layout serves the
//! four state kinds: position `p` holds the same tensors at the same element offsets in its
//! fp16-param, fp32-param, momentum and variance chunks.
//!
//! # States
//! A tensor's state at a moment follows from its first and last use ([`tensor_state_at`]); a
//! chunk's state is derived from its tensors' states by PatrickStar's priority rule
//! ([`chunk_state`]). A chunk must be on the device exactly at the moments it is `Compute`.
//!
//! # Schedule
//! One training iteration: a moment per distinct forward/backward use, then one optimizer
//! moment per position needing its four chunks ([`Schedule::training`]).
//!
//! # Placement
//! [`place`] walks a [`Schedule`] and emits [`Move`]s: demand fetches, evictions chosen by a
//! [`Policy`] (Belady's furthest-next-use, or LRU), and prefetches one moment ahead. Its
//! output never overfills a tier and has every chunk a moment needs on the device when that
//! moment computes (checked by the tests against a shadow simulation).
//!
//! # Recipe
//! [`place_training`] chains the steps: size search → layout → schedule × iterations →
//! placement. `memplan chunks` and `mp_chunk_placement_new` call it and nothing else.

mod error;
mod layout;
mod model;
mod placement;
mod recipe;
mod schedule;
mod state;

#[cfg(test)]
mod tests;

pub use error::ChunkError;
pub use layout::{Layout, SizeChoice, TensorSlot, search_chunk_size};
pub use model::{ChunkId, StateKind, Tensor};
pub use placement::{Move, Placement, PlacementOptions, Policy, Tier, place};
pub use recipe::{TrainingOptions, TrainingPlacement, place_training};
pub use schedule::{Moment, Schedule};
pub use state::{ChunkState, TensorState, chunk_state, tensor_state_at};
