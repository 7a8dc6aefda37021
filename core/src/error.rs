//! [`Error`]: what can be wrong with a packing problem or an allocation trace — building a
//! [`Problem`](crate::pack::Problem), packing it, validating a [`Trace`](crate::trace::Trace),
//! deriving its lifetimes and building a [`Plan`](crate::plan::Plan) from it.
//!
//! It is not the crate's only error type: each other concept has its own, named after it —
//! [`AllocError`](crate::allocator::AllocError) and [`SetupError`](crate::allocator::SetupError)
//! (allocators), [`PlanFileError`](crate::plan::PlanFileError) (the plan's file format),
//! [`RematError`](crate::remat::RematError), [`ProgramError`](crate::remat::sim::ProgramError) and
//! [`SimError`](crate::remat::sim::SimError) (rematerialization),
//! [`ChunkError`](crate::chunk::ChunkError), [`ShardError`](crate::shard::ShardError),
//! [`EstimateError`](crate::estimate::EstimateError) and
//! [`CheckError`](crate::check::CheckError) (a failed oracle).

use alloc::string::String;
use core::fmt;

/// What can be wrong with a packing problem or an allocation trace (see the [module](self)).
///
/// Every variant names what it is about (a buffer's id or index, a value) so a caller can
/// report it without re-deriving context.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A buffer was given size 0; every buffer occupies at least one byte.
    ZeroSize {
        /// The buffer's id.
        id: String,
    },
    /// A buffer's lifetime `[lower, upper)` is empty or reversed (`upper <= lower`).
    EmptyLifetime {
        /// The buffer's id.
        id: String,
        /// Start of the lifetime (inclusive).
        lower: u64,
        /// End of the lifetime (exclusive).
        upper: u64,
    },
    /// A buffer's alignment is zero or not a power of two.
    BadAlignment {
        /// The buffer's id.
        id: String,
        /// The alignment given.
        alignment: u64,
    },
    /// Two buffers share an id.
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// A sum of sizes, or an offset plus a size, does not fit in `u64`.
    Overflow {
        /// The buffer whose addition overflowed.
        id: String,
    },
    /// The buffers cannot be placed within the requested capacity.
    ///
    /// `proven` tells whether that is certain (the lower bound exceeds the capacity, or the
    /// exact search finished without finding a fitting plan) or only that the search budget ran
    /// out first.
    CapacityExceeded {
        /// The capacity asked for, in bytes.
        capacity: u64,
        /// The smallest peak found, in bytes.
        best_peak: u64,
        /// The max-load lower bound, in bytes.
        max_load: u64,
        /// True when no plan within `capacity` exists; false when the budget ran out.
        proven: bool,
    },
    /// A trace frees an allocation id that is not live (never allocated, or already freed).
    UnknownFree {
        /// Index of the offending event in the trace.
        index: usize,
        /// The allocation id.
        id: u64,
        /// Index of the event that freed it before, when it was freed twice.
        freed_at: Option<usize>,
    },
    /// A trace allocates an id that is still live.
    IdReused {
        /// Index of the offending event.
        index: usize,
        /// The allocation id.
        id: u64,
        /// Index of the event that allocated it.
        allocated_at: usize,
    },
    /// A trace allocates zero bytes where the builder does not allow it.
    ZeroSizeAlloc {
        /// Index of the offending event.
        index: usize,
        /// The allocation id.
        id: u64,
    },
    /// An option is out of its range.
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZeroSize { id } => write!(f, "buffer {id:?} has size 0"),
            Error::EmptyLifetime { id, lower, upper } => write!(
                f,
                "buffer {id:?} has an empty lifetime: upper ({upper}) must be greater than lower ({lower})"
            ),
            Error::BadAlignment { id, alignment } => write!(
                f,
                "buffer {id:?} has alignment {alignment}, which is not a power of two"
            ),
            Error::DuplicateId { id } => write!(f, "duplicate buffer id {id:?}"),
            Error::Overflow { id } => write!(f, "sizes overflow u64 at buffer {id:?}"),
            Error::UnknownFree {
                index,
                id,
                freed_at,
            } => match freed_at {
                Some(at) => write!(
                    f,
                    "event {index}: free of allocation {id}, already freed at event {at}"
                ),
                None => write!(
                    f,
                    "event {index}: free of allocation {id}, which is not live"
                ),
            },
            Error::IdReused {
                index,
                id,
                allocated_at,
            } => write!(
                f,
                "event {index}: allocation {id} is still live (allocated at event {allocated_at})"
            ),
            Error::ZeroSizeAlloc { index, id } => {
                write!(f, "event {index}: allocation {id} has size 0")
            }
            Error::InvalidOptions { reason } => write!(f, "invalid options: {reason}"),
            Error::CapacityExceeded {
                capacity,
                best_peak,
                max_load,
                proven,
            } => {
                if *proven {
                    write!(
                        f,
                        "cannot fit in {capacity} bytes (proven; max load {max_load}, best peak found {best_peak})"
                    )
                } else {
                    write!(
                        f,
                        "no plan within {capacity} bytes found within the budget (max load {max_load}, best peak found {best_peak})"
                    )
                }
            }
        }
    }
}

impl core::error::Error for Error {}
