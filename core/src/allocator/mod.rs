//! Online allocators behind one trait, for replaying allocation traces.
//!
//! An [`Allocator`] serves `alloc(size, stream)` / `free(addr)` requests the way a
//! framework's device allocator would, and keeps [`AllocStats`]: bytes requested and live,
//! bytes reserved from the device, and their peaks. Models of other allocators (PyTorch's
//! caching allocator) and memplan's own allocators implement it, so one replay compares them.
//!
//! Addresses are plain `u64` byte addresses in a simulated device address space; reservations
//! (the `cudaMalloc` calls or page mappings an allocator would make) are counted in the stats.

use core::fmt;

pub mod online;
pub mod planned;
pub mod torch;
pub mod torch_expandable;

pub use online::{OnlineAllocator, OnlineConfig};
pub use planned::{PlanOptions, PlannedAllocator, PlannedConfig, SetupError, build_plan};
pub use torch::{TorchConfig, TorchModel};
pub use torch_expandable::TorchExpandableModel;

/// A simulated device address.
pub type Addr = u64;

/// Counters every allocator keeps. Invariants: `allocated <= reserved` whenever the allocator
/// rounds requests up (they all do), `peak_* >= *`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Sum of the sizes requested by the live allocations (before any rounding).
    pub allocated: u64,
    /// Largest `allocated` seen.
    pub peak_allocated: u64,
    /// Bytes currently reserved from the device (segments, mapped pages).
    pub reserved: u64,
    /// Largest `reserved` seen.
    pub peak_reserved: u64,
    /// Segments (or mappings) currently reserved.
    pub segments: u64,
    /// Reservation calls made so far (`cudaMalloc` / map calls).
    pub reservations: u64,
}

/// Why an allocator refused a request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The request cannot be served within the allocator's capacity.
    OutOfMemory {
        /// Bytes requested.
        size: u64,
        /// Bytes reserved when the request failed.
        reserved: u64,
    },
    /// `free` of an address that is not a live allocation.
    UnknownAddress {
        /// The address given.
        addr: Addr,
    },
    /// A zero-size request where the allocator does not allow one.
    ZeroSize,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::OutOfMemory { size, reserved } => write!(
                f,
                "out of memory allocating {size} bytes ({reserved} bytes reserved)"
            ),
            AllocError::UnknownAddress { addr } => {
                write!(f, "free of {addr:#x}, which is not a live allocation")
            }
            AllocError::ZeroSize => write!(f, "zero-size allocation"),
        }
    }
}

impl core::error::Error for AllocError {}

/// An online device-memory allocator: serves requests one at a time, in order.
pub trait Allocator {
    /// Allocates `size` bytes for use on `stream`; returns the address.
    ///
    /// # Errors
    /// [`AllocError::OutOfMemory`] when the capacity cannot hold it; [`AllocError::ZeroSize`]
    /// where zero-size requests are not allowed.
    fn alloc(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError>;

    /// Frees the allocation at `addr`.
    ///
    /// # Errors
    /// [`AllocError::UnknownAddress`] when `addr` is not a live allocation.
    fn free(&mut self, addr: Addr) -> Result<(), AllocError>;

    /// The allocator's counters.
    fn stats(&self) -> AllocStats;

    /// A short name for reports (`torch`, `torch-expandable`, `memplan`).
    fn name(&self) -> &'static str;
}
