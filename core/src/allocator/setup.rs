//! [`SetupError`]: why an allocator could not be created, whichever way it is created (its
//! own constructor or [`registry::build`](super::registry::build)).

use core::fmt;

use super::interface::Addr;
use super::layout::ALIGN;
use crate::plan::PlanFileError;

/// Why an allocator could not be set up. Constructors return it instead of panicking.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The plan is invalid.
    Plan(PlanFileError),
    /// The page size is not a power of two at least [`ALIGN`], or the base is not a multiple
    /// of it.
    BadPageSize {
        /// The base given.
        base: Addr,
        /// The page size given.
        page_size: u64,
    },
    /// The arena does not fit above the base in a `u64` address space.
    AddressOverflow {
        /// The base given.
        base: Addr,
        /// The plan's arena size.
        arena_size: u64,
    },
    /// The `guided` allocator was asked for without a plan to serve.
    MissingPlan,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Plan(e) => write!(f, "invalid plan: {e}"),
            SetupError::BadPageSize { base, page_size } => write!(
                f,
                "page size {page_size} must be a power of two >= {ALIGN} dividing the base {base:#x}"
            ),
            SetupError::AddressOverflow { base, arena_size } => write!(
                f,
                "an arena of {arena_size} bytes at {base:#x} does not fit the 64-bit address space"
            ),
            SetupError::MissingPlan => write!(f, "the guided allocator needs a plan"),
        }
    }
}

impl core::error::Error for SetupError {}

/// Checks a page layout: `page_size` must be a power of two at least [`ALIGN`] that divides
/// `base`. The one check the online and guided allocators' constructors make (the C API
/// makes it too, before decoding a plan).
///
/// # Errors
/// [`SetupError::BadPageSize`] when `page_size` is not a power of two at least [`ALIGN`] or
/// does not divide `base`.
pub fn check_page_layout(base: Addr, page_size: u64) -> Result<(), SetupError> {
    if page_size.is_power_of_two() && page_size >= ALIGN && base % page_size == 0 {
        Ok(())
    } else {
        Err(SetupError::BadPageSize { base, page_size })
    }
}
