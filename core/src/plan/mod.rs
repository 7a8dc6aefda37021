//! The guided allocator's plan for a training run: what it is, how it is built from a trace
//! ([`Plan::from_trace`]) and its binary encoding.
//!
//! A [`Plan`] is what the plan-guided allocator
//! ([`GuidedAllocator`](crate::allocator::guided::GuidedAllocator)) serves a run from: an arena of `arena_size`
//! bytes and two lists of slots, each slot with its place in the arena and the request
//! indices during which it is alive.
//!
//! - The **prologue** is served once, first: warm-up and the first iteration, including the
//!   allocations that are never freed (weights, optimizer state). A prologue slot with
//!   `end == u32::MAX` is *persistent*: it stays alive for the rest of the run. Its times are
//!   request indices from the start of the run.
//! - The **iteration** is served after the prologue, over and over (one *lap* per training
//!   step). Its times are request indices from the start of the lap. Iteration slots never
//!   overlap a persistent slot in memory, since persistent slots are alive in every lap.
//!
//! # File format (version 2)
//!
//! All integers are little-endian and fixed-width; there is no padding. `P` and `I` are the
//! prologue and iteration slot counts, and `n = 28 + 28 * (P + I)`. Version 1 (persistent
//! slots only, no prologue) is not read: it is reported as
//! [`PlanFileError::UnsupportedVersion`].
//!
//! ```text
//! offset        size  field
//! ------------  ----  -------------------------------------------------------------
//! 0             8     magic  b"MPPLAN\0\0"
//! 8             4     format version: u32 = 2
//! 12            8     arena_size: u64
//! 20            4     P: u32, number of prologue slots
//! 24            4     I: u32, number of iteration slots
//! 28            28*P  prologue slots, in request order (slot record below)
//! 28 + 28*P     28*I  iteration slots, in request order
//! n             8     checksum: u64, FNV-1a 64 of bytes [0, n)
//! n + 8               end of file: trailing bytes are an error
//!
//! slot record (28 bytes)
//! +0            8     size: u64
//! +8            8     offset: u64
//! +16           4     stream: u32
//! +20           4     start: u32 (request index, inclusive)
//! +24           4     end: u32 (request index, exclusive)
//! ```
//!
//! The checksum is 64-bit FNV-1a (offset basis `0xcbf2_9ce4_8422_2325`, prime
//! `0x0100_0000_01b3`; see [`checksum`]). It detects accidental corruption — every single-byte
//! change is caught, since each FNV-1a step is a bijection of the state — not tampering.
//!
//! [`Plan::from_bytes`] checks, in this order: the magic, the version, the lengths (the slot
//! counts are checked against the input length *before* anything is allocated), the checksum,
//! that nothing follows the checksum, and finally [`Plan::validate`]. It never panics.
//!
//! # Files
//!
//! - `format.rs`: [`Plan`], [`Slot`], [`SlotRef`], [`PlanFileError`]; validation, encoding and
//!   decoding (a leaf).
//! - `build.rs`: [`Plan::from_trace`], [`PlanOptions`], [`TracePlan`].
//!
//! # Why a separate error type
//!
//! The crate otherwise has one [`Error`](crate::Error) for planning failures. Decoding a file is
//! a different concern with different callers (the C API maps these variants to its own load
//! result codes), just as [`check::CheckError`](crate::check::CheckError) is separate, so plan
//! files get their own [`PlanFileError`].

mod build;
mod format;

pub use build::{PlanOptions, TracePlan};
pub use format::{
    CHECKSUM_LEN, HEADER_LEN, MAGIC, Plan, PlanFileError, SLOT_LEN, Slot, SlotRef, VERSION,
    checksum,
};
