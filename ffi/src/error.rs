//! Result codes, their messages, and the mapping from core errors.
//!
//! Codes are explicit, stable and never reused: a removed code stays below as a "reserved"
//! comment. New codes are appended. See doc/DESIGN.md, "Error codes".

use core::ffi::c_char;

use memplan_core::Error;
use memplan_core::allocator::{AllocError, SetupError};
use memplan_core::chunk::ChunkError;
use memplan_core::estimate::EstimateError;
use memplan_core::plan::PlanFileError;
use memplan_core::remat::RematError;
use memplan_core::shard::ShardError;

/// The result of every fallible memplan C function. `MP_RESULT_OK` (0) is success; every
/// other value is an error, and the function wrote none of its out-parameters.
///
/// Discriminants are stable and never reused. Values from a newer library that this header
/// does not name may still be passed to `mp_result_message`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum mp_result {
    /// Success.
    Ok = 0,
    /// A required pointer parameter was NULL.
    NullParameter = 1,
    /// A panic (a bug in memplan) was caught at the C boundary. If it happened while a packer
    /// or an allocator was being changed, that handle is now poisoned.
    Panic = 2,
    /// A parameter was out of its documented domain (unknown flag bits, a misaligned
    /// out-pointer, a length above `PTRDIFF_MAX`).
    InvalidArgument = 3,
    /// A buffer was given size 0.
    ZeroSize = 4,
    /// A buffer's lifetime `[lower, upper)` is empty (`upper <= lower`).
    EmptyLifetime = 5,
    /// A buffer's alignment is not a power of two.
    BadAlignment = 6,
    /// A buffer id was already added to this packer.
    DuplicateId = 7,
    /// The sum of the buffer sizes (plus alignment slack) does not fit in 64 bits, or there
    /// are more than 2^32 - 1 buffers.
    Overflow = 8,
    /// A buffer id is not valid UTF-8.
    InvalidUtf8 = 9,
    /// No plan within the requested capacity was found; the best peak found is still readable
    /// with `mp_packer_best_peak`.
    CapacityExceeded = 10,
    /// The value asked for needs a successful pack, and the packer has none (never packed,
    /// a buffer was added since, or the last pack failed).
    NotPacked = 11,
    /// A buffer index is not below `mp_packer_len`.
    IndexOutOfRange = 12,
    /// A panic was caught earlier while this handle (a packer, an allocator or a remat
    /// runtime) was being changed; its state is not trusted. Only `mp_packer_last_error` and
    /// `mp_packer_free` (for a packer), `mp_allocator_free` (for an allocator) or
    /// `mp_remat_free` (for a runtime) still work on it.
    Poisoned = 13,
    /// The planning core reported an error that this version of the C API has no code for;
    /// `mp_packer_last_error` describes it.
    OtherError = 14,
    /// An allocator cannot serve the request within its capacity (or within the 64-bit address
    /// space). This is the simulated device memory of `mp_allocator`, never host memory: a
    /// failed host allocation aborts the process.
    OutOfMemory = 15,
    /// `mp_allocator_dealloc` was given an address that is not a live allocation of that
    /// allocator (never returned by `mp_allocator_alloc`, already deallocated, or inside a
    /// block).
    UnknownAddress = 16,
    /// `mp_allocator_new_guided` was given bytes that are not a valid plan file: wrong magic
    /// or version, truncated, a checksum mismatch, trailing bytes, or slots that overlap or
    /// leave the arena.
    InvalidPlan = 17,
}

impl mp_result {
    /// Every code, in discriminant order.
    pub(crate) const ALL: [mp_result; 18] = [
        mp_result::Ok,
        mp_result::NullParameter,
        mp_result::Panic,
        mp_result::InvalidArgument,
        mp_result::ZeroSize,
        mp_result::EmptyLifetime,
        mp_result::BadAlignment,
        mp_result::DuplicateId,
        mp_result::Overflow,
        mp_result::InvalidUtf8,
        mp_result::CapacityExceeded,
        mp_result::NotPacked,
        mp_result::IndexOutOfRange,
        mp_result::Poisoned,
        mp_result::OtherError,
        mp_result::OutOfMemory,
        mp_result::UnknownAddress,
        mp_result::InvalidPlan,
    ];

    /// The code with this discriminant, if there is one. (A C caller can pass any `uint32_t`;
    /// turning an unknown one into the enum directly would be undefined behaviour.)
    pub(crate) fn from_u32(code: u32) -> Option<mp_result> {
        Self::ALL.iter().copied().find(|c| *c as u32 == code)
    }

    /// A fixed English description of the code (no details; see `mp_packer_last_error`).
    pub(crate) fn message(self) -> &'static str {
        match self {
            mp_result::Ok => "success",
            mp_result::NullParameter => "a required pointer parameter was NULL",
            mp_result::Panic => "a panic was caught at the C boundary (a bug in memplan)",
            mp_result::InvalidArgument => "a parameter is outside its documented domain",
            mp_result::ZeroSize => "a buffer has size 0",
            mp_result::EmptyLifetime => {
                "a buffer's lifetime is empty: upper must be greater than lower"
            }
            mp_result::BadAlignment => "a buffer's alignment is not a power of two",
            mp_result::DuplicateId => "a buffer id was already added",
            mp_result::Overflow => "the total of the buffer sizes overflows 64 bits",
            mp_result::InvalidUtf8 => "a buffer id is not valid UTF-8",
            mp_result::CapacityExceeded => "no plan within the capacity was found",
            mp_result::NotPacked => "the packer has no solution: pack it first",
            mp_result::IndexOutOfRange => "buffer index out of range",
            mp_result::Poisoned => "the handle is poisoned by an earlier panic",
            mp_result::OtherError => "the planning core reported an error without its own code",
            mp_result::OutOfMemory => "the allocator's capacity cannot hold the request",
            mp_result::UnknownAddress => "the address is not a live allocation of this allocator",
            mp_result::InvalidPlan => "the bytes are not a valid memplan plan file",
        }
    }
}

// Core errors → codes. Every mapping from a core error to an `mp_result` is here, one `From`
// impl per core error type; the exported functions call `mp_result::from(&e)`. Core's error
// enums are mostly `#[non_exhaustive]`: variants added later map to `MP_RESULT_OTHER_ERROR`
// (or the code named below) until they get a code of their own.

/// Packing (`mp_packer_add_buffer`, `mp_packer_pack`).
impl From<&Error> for mp_result {
    fn from(error: &Error) -> mp_result {
        match error {
            Error::ZeroSize { .. } => mp_result::ZeroSize,
            Error::EmptyLifetime { .. } => mp_result::EmptyLifetime,
            Error::BadAlignment { .. } => mp_result::BadAlignment,
            Error::DuplicateId { .. } => mp_result::DuplicateId,
            Error::Overflow { .. } => mp_result::Overflow,
            Error::CapacityExceeded { .. } => mp_result::CapacityExceeded,
            _ => mp_result::OtherError,
        }
    }
}

/// The allocators' constructors: a page size the allocators cannot use (not a power of two
/// from 512 to `MP_ALLOCATOR_MAX_PAGE_SIZE`, which is what dividing `DEFAULT_BASE` allows) is
/// `MP_RESULT_INVALID_ARGUMENT`; a plan the guided allocator cannot serve is
/// `MP_RESULT_INVALID_PLAN`.
impl From<&SetupError> for mp_result {
    fn from(e: &SetupError) -> mp_result {
        match e {
            SetupError::BadPageSize { .. } => mp_result::InvalidArgument,
            SetupError::Plan(_) | SetupError::AddressOverflow { .. } | SetupError::MissingPlan => {
                mp_result::InvalidPlan
            }
            _ => mp_result::OtherError,
        }
    }
}

/// A plan file that does not decode (`mp_allocator_new_guided`).
impl From<&PlanFileError> for mp_result {
    fn from(_: &PlanFileError) -> mp_result {
        mp_result::InvalidPlan
    }
}

/// `mp_allocator_alloc`, `mp_allocator_dealloc`.
impl From<&AllocError> for mp_result {
    fn from(e: &AllocError) -> mp_result {
        match e {
            AllocError::OutOfMemory { .. } => mp_result::OutOfMemory,
            AllocError::UnknownAddress { .. } => mp_result::UnknownAddress,
            AllocError::ZeroSize => mp_result::ZeroSize,
            _ => mp_result::OtherError,
        }
    }
}

/// The `mp_remat` calls: an unknown tensor is `MP_RESULT_INDEX_OUT_OF_RANGE`, an unbalanced
/// pin/release or a bad op `MP_RESULT_INVALID_ARGUMENT`.
impl From<&RematError> for mp_result {
    fn from(e: &RematError) -> mp_result {
        match e {
            RematError::OutOfMemory { .. } => mp_result::OutOfMemory,
            RematError::UnknownTensor(_) => mp_result::IndexOutOfRange,
            RematError::BadOp(_) | RematError::Unbalanced(_) => mp_result::InvalidArgument,
            RematError::Overflow => mp_result::Overflow,
            RematError::Thrashed { .. } => mp_result::OtherError,
        }
    }
}

/// `mp_estimate_memory`: inconsistent inputs (zero counts, heads not divisible by tp, offload
/// needing a higher ZeRO stage) are `MP_RESULT_INVALID_ARGUMENT`.
impl From<&EstimateError> for mp_result {
    fn from(e: &EstimateError) -> mp_result {
        match e {
            EstimateError::Overflow { .. } => mp_result::Overflow,
            _ => mp_result::InvalidArgument,
        }
    }
}

/// The `mp_shard_layout` calls: group sizes that do not divide the world and the like are
/// `MP_RESULT_INVALID_ARGUMENT`; a parameter or rank that does not exist is
/// `MP_RESULT_INDEX_OUT_OF_RANGE`.
impl From<&ShardError> for mp_result {
    fn from(e: &ShardError) -> mp_result {
        match e {
            ShardError::Overflow => mp_result::Overflow,
            ShardError::NoSuchParam { .. } | ShardError::NoSuchRank { .. } => {
                mp_result::IndexOutOfRange
            }
            _ => mp_result::InvalidArgument,
        }
    }
}

/// `mp_chunk_placement_new`: a zero-element tensor is `MP_RESULT_ZERO_SIZE`; a working set
/// that does not fit on the device, or chunks that do not fit on host + NVMe, is
/// `MP_RESULT_CAPACITY_EXCEEDED`; other inconsistent inputs (a tensor larger than a chunk,
/// mixed dtypes, last use before first use) are `MP_RESULT_INVALID_ARGUMENT`.
impl From<&ChunkError> for mp_result {
    fn from(e: &ChunkError) -> mp_result {
        match e {
            ChunkError::ZeroNumel { .. } => mp_result::ZeroSize,
            ChunkError::Overflow { .. } => mp_result::Overflow,
            ChunkError::WorkingSetTooLarge { .. } | ChunkError::OffDeviceTooSmall { .. } => {
                mp_result::CapacityExceeded
            }
            _ => mp_result::InvalidArgument,
        }
    }
}

/// Copies `msg` into the C buffer `buf` of `len` bytes, `snprintf`-style: at most `len - 1`
/// bytes, cut at a UTF-8 character boundary, then a NUL. Nothing is written when `len` is 0.
/// Returns `msg.len()`, the length the full message would need (without the NUL).
///
/// # Safety
/// 1. When `len > 0`, `buf` is non-NULL and valid for writes of `len` bytes.
pub(crate) unsafe fn write_c_string(msg: &str, buf: *mut c_char, len: usize) -> usize {
    if len == 0 {
        return msg.len();
    }
    let mut n = msg.len().min(len - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    debug_assert!(!buf.is_null());
    // SAFETY: by (1) `buf` is valid for `len > n` bytes of writes; `msg` is valid for `n`
    // reads; `u8` and `c_char` have alignment 1; `ptr::copy` allows overlap.
    unsafe {
        core::ptr::copy(msg.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    msg.len()
}

/// Writes the description of result `code` into `buf` as a NUL-terminated string.
///
/// The message is copied `snprintf`-style: at most `len - 1` bytes, cut at a UTF-8 character
/// boundary, followed by a NUL (nothing is written when `len` is 0). `*out_n` receives the
/// length of the *full* message in bytes, not counting the NUL, so the message was truncated
/// exactly when `*out_n >= len`; call with `buf = NULL, len = 0` to size a buffer. An unknown
/// `code` gets a message saying so (and `MP_RESULT_OK` is still returned). `code` is a
/// `uint32_t`, not an `mp_result`, so that any value can be passed safely.
///
/// # Safety
/// - `buf`: NULL only when `len` is 0; otherwise valid for writes of `len` bytes.
/// - `out_n`: non-NULL, aligned, valid for one `size_t` write.
///
/// # Ownership
/// The caller owns `buf` and `out_n`; nothing is retained after the call.
///
/// # Copies
/// The message is copied into `buf`.
///
/// # Thread safety
/// Safe to call from any thread at any time.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` (writing nothing) when `out_n` is NULL, or `buf` is NULL
/// with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_result_message(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let out_n = check_out!(out_n);
        if buf.is_null() && len > 0 {
            return mp_result::NullParameter;
        }
        let unknown;
        let msg = match mp_result::from_u32(code) {
            Some(c) => c.message(),
            None => {
                unknown = format!("unknown mp_result code {code}");
                unknown.as_str()
            }
        };
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes when `len > 0`, and we
        // checked it is non-NULL then.
        let n = unsafe { write_c_string(msg, buf, len) };
        // SAFETY: `out_n` is non-NULL and aligned (checked), and the caller guarantees it is
        // valid for one `size_t` write.
        unsafe { out_n.write(n) };
        mp_result::Ok
    }
}
