//! The crate's error type: every failure of a backend, a segment, a pool or a tier is one of
//! these values (never a panic).

use core::fmt;

use memplan_core::allocator::AllocError;

/// Why an executor operation failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The CUDA driver library (`libcuda.so`) cannot be loaded on this machine.
    NoDriver,
    /// The driver library lacks a function memplan calls (a driver older than the bindings).
    MissingSymbol {
        /// The driver function's name.
        symbol: &'static str,
    },
    /// A driver call returned an error code.
    Driver {
        /// The driver function's name.
        call: &'static str,
        /// The `CUresult` value.
        code: u32,
        /// The code's name (`CUDA_ERROR_OUT_OF_MEMORY`, ...).
        name: String,
    },
    /// Device memory (or the backend's byte budget) cannot hold `size` more bytes.
    OutOfMemory {
        /// Bytes requested.
        size: u64,
    },
    /// An address, size or handle is not valid for the operation (unknown pointer, range
    /// outside a reservation, overlapping mapping, misaligned size, ...).
    InvalidArgument {
        /// What was wrong, in words.
        what: String,
    },
    /// An allocator served an address outside the arena's window (the allocator's address
    /// space is larger than the virtual range the arena reserved).
    OutsideWindow {
        /// The allocator's address.
        addr: u64,
        /// Bytes at that address.
        size: u64,
        /// Bytes in the window.
        window: u64,
    },
    /// The allocator behind an arena refused a request.
    Alloc(AllocError),
    /// A host I/O call (the disk tier) failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error text.
        message: String,
    },
    /// Arithmetic on sizes or addresses overflowed.
    Overflow,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDriver => write!(f, "the CUDA driver library (libcuda) cannot be loaded"),
            Error::MissingSymbol { symbol } => {
                write!(
                    f,
                    "the CUDA driver has no function {symbol} (driver too old?)"
                )
            }
            Error::Driver { call, code, name } => write!(f, "{call} failed: {name} ({code})"),
            Error::OutOfMemory { size } => {
                write!(f, "out of device memory allocating {size} bytes")
            }
            Error::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
            Error::OutsideWindow { addr, size, window } => write!(
                f,
                "allocator address {addr:#x} (+{size} bytes) lies outside the arena's {window}-byte window"
            ),
            Error::Alloc(e) => write!(f, "allocator: {e}"),
            Error::Io { op, message } => write!(f, "{op}: {message}"),
            Error::Overflow => write!(f, "size or address arithmetic overflowed"),
        }
    }
}

impl std::error::Error for Error {}

impl From<AllocError> for Error {
    fn from(e: AllocError) -> Self {
        match e {
            AllocError::OutOfMemory { size, .. } => Error::OutOfMemory { size },
            other => Error::Alloc(other),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Shorthand for [`Error::InvalidArgument`].
pub(crate) fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidArgument { what: what.into() }
}

/// `x` rounded up to a multiple of `granule` (core's [`memplan_core::units::round_up`]), or
/// [`Error::Overflow`] when that does not fit in `u64` (or `granule` is 0).
pub(crate) fn round_up(x: u64, granule: u64) -> Result<u64> {
    memplan_core::units::round_up(x, granule).ok_or(Error::Overflow)
}
