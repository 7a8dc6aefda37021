//! The [`Allocator`] trait every allocator implements, and the types it speaks in: addresses,
//! [`AllocStats`] and [`AllocError`]. A leaf: it names no allocator but the guided one's
//! counters type (for [`Allocator::guided_counters`]).

use alloc::boxed::Box;
use core::fmt;

use super::guided::counters::GuidedCounters;

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
///
/// `Box<A>` is an allocator whenever `A` is (`A` may be `dyn Allocator`), so the boxed
/// allocators of [`registry::build`](super::registry::build) plug in wherever an allocator
/// is expected; `Debug` is a supertrait so that they print too.
pub trait Allocator: fmt::Debug {
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

    /// The allocator's name in the [registry](super::registry): `torch`, `torch-expandable`,
    /// `online` or `guided`.
    fn name(&self) -> &'static str;

    /// Gives reserved memory that holds no live allocation back to the device, as far as the
    /// allocator can, and returns the bytes released. The default releases nothing (the
    /// guided allocator's arena never shrinks).
    fn trim(&mut self) -> u64 {
        0
    }

    /// Hits, misses and re-plans, for an allocator that serves a plan (the guided one);
    /// `None` for the others (the default).
    fn guided_counters(&self) -> Option<GuidedCounters> {
        None
    }
}

impl<A: Allocator + ?Sized> Allocator for Box<A> {
    fn alloc(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError> {
        (**self).alloc(size, stream)
    }

    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        (**self).free(addr)
    }

    fn stats(&self) -> AllocStats {
        (**self).stats()
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn trim(&mut self) -> u64 {
        (**self).trim()
    }

    fn guided_counters(&self) -> Option<GuidedCounters> {
        (**self).guided_counters()
    }
}
