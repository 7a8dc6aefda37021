//! The `mp_packer` handle: collect buffers, pack, read the packing.
//!
//! Representation invariants of [`Packer`]:
//! - `outcome` is `Packed(s)` only if `s` is a packing for exactly the buffers now in `problem`
//!   (`s.offsets.len() == problem.len()`): every successful add resets it to `Unpacked`.
//! - `poisoned` is true iff a mutating call panicked part-way; then nothing but `last_error`
//!   is read again.

use core::ffi::c_char;
use std::time::Duration;

use memplan_core::pack::Deadline;
use memplan_core::{Buffer, Error, PackOptions, Problem, Solution, pack};

use crate::error::{mp_result, write_c_string};
use crate::ffi::{
    Castable, OwnershipBox, Poisonable, free_box, mutate, read_or_default, slice_from_raw,
    to_boxed_mut_ptr,
};

#[cfg(test)]
mod tests;

/// An opaque packer: a set of buffers with lifetimes, and the packing from the last pack.
///
/// Create with `mp_packer_new`, destroy with `mp_packer_free`.
pub struct mp_packer {
    _private: [u8; 0],
}

impl Castable for mp_packer {
    type Ownership = OwnershipBox;
    type RustType = Packer;
}

/// `flags` bit of `mp_pack_options`: the `capacity` field is set.
pub const MP_PACK_CAPACITY: u32 = 1 << 0;
/// `flags` bit of `mp_pack_options`: the `max_nodes` field is set.
pub const MP_PACK_MAX_NODES: u32 = 1 << 1;
/// `flags` bit of `mp_pack_options`: the `time_limit_ms` field is set.
pub const MP_PACK_TIME_LIMIT: u32 = 1 << 2;

bitflags::bitflags! {
    /// The valid bits of `mp_pack_options::flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PackFlags: u32 {
        const CAPACITY = MP_PACK_CAPACITY;
        const MAX_NODES = MP_PACK_MAX_NODES;
        const TIME_LIMIT = MP_PACK_TIME_LIMIT;
    }
}

/// Options for `mp_packer_pack`. A zero-initialised struct (or a NULL pointer) means no
/// capacity and no limits: search until the packing is proven optimal.
///
/// Each of `capacity`, `max_nodes` and `time_limit_ms` is used only when its bit is set in
/// `flags`, so every value of those fields, 0 included, keeps its plain meaning.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_pack_options {
    /// A bitwise OR of `MP_PACK_CAPACITY`, `MP_PACK_MAX_NODES`, `MP_PACK_TIME_LIMIT`; any
    /// other bit makes `mp_packer_pack` fail with `MP_RESULT_INVALID_ARGUMENT`.
    pub flags: u32,
    /// With `MP_PACK_CAPACITY`: stop at the first packing whose peak is at most this many bytes,
    /// and fail with `MP_RESULT_CAPACITY_EXCEEDED` if none is found.
    pub capacity: u64,
    /// With `MP_PACK_MAX_NODES`: the most search nodes to expand after the heuristics
    /// (deterministic; 0 means heuristics only).
    pub max_nodes: u64,
    /// With `MP_PACK_TIME_LIMIT`: stop searching after about this many milliseconds of wall
    /// time (0 means heuristics only). Results then depend on timing.
    pub time_limit_ms: u64,
}

/// What the last pack produced.
#[derive(Debug)]
enum Outcome {
    /// No pack since the last successful add (or ever), or the last pack failed otherwise.
    Unpacked,
    /// The last pack succeeded; the packing matches the current buffers.
    Packed(Solution),
    /// The last pack found no packing within its capacity.
    OverCapacity {
        /// The smallest peak found.
        best_peak: u64,
        /// True when no packing within the capacity exists.
        proven: bool,
    },
}

/// The Rust object behind an `mp_packer` handle. See the module docs for its invariants.
#[derive(Debug)]
pub(crate) struct Packer {
    /// The validated buffers, in the order they were added.
    problem: Problem,
    /// The result of the last pack, if it still applies.
    outcome: Outcome,
    /// Detail of the last failed `add_buffer`/`pack` (core's `Display` text, which names the
    /// offending id); empty after a successful one.
    last_error: String,
    /// True iff a mutating call panicked part-way (see [`mutate`](crate::ffi::mutate)).
    poisoned: bool,
}

impl Packer {
    fn new() -> Self {
        Packer {
            problem: Problem::new(),
            outcome: Outcome::Unpacked,
            last_error: String::new(),
            poisoned: false,
        }
    }

    fn solution(&self) -> Result<&Solution, mp_result> {
        match &self.outcome {
            Outcome::Packed(s) => Ok(s),
            _ => Err(mp_result::NotPacked),
        }
    }
}

// The thread-safety promises in the docs (a packer may move between threads; `const`
// readers may run concurrently) rest on these.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Packer>();
};

/// A failed mutating call: its code and the detail for `mp_packer_last_error`.
type Failure = (mp_result, String);

impl Poisonable for Packer {
    type Error = Failure;

    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// On `Err` the failure's detail becomes `last_error`; on `Ok` `last_error` is cleared.
    fn finish(&mut self, result: Result<(), Failure>) -> mp_result {
        match result {
            Ok(()) => {
                self.last_error.clear();
                mp_result::Ok
            }
            Err((code, detail)) => {
                self.last_error = detail;
                code
            }
        }
    }

    /// The panic's message becomes `last_error`.
    fn record_panic(&mut self, message: &str) {
        self.last_error = format!("panic inside memplan (packer poisoned): {message}");
    }
}

/// Runs a read-only call `f` on the packer behind `packer` and writes its value to `out`
/// on success. NULL `packer`/`out` give `MP_RESULT_NULL_PARAMETER`, a misaligned `out`
/// `MP_RESULT_INVALID_ARGUMENT`, a poisoned packer `MP_RESULT_POISONED`.
///
/// # Safety
/// 1. `packer` is NULL or a live handle from `mp_packer_new`, not mutated by another thread
///    during the call.
/// 2. `out` is NULL or valid for one write of a `T`.
unsafe fn read<T>(
    packer: *const mp_packer,
    out: *mut T,
    f: impl FnOnce(&Packer) -> Result<T, mp_result>,
) -> mp_result {
    let packer = try_ref_from_ptr!(packer);
    let out = check_out!(out);
    if packer.poisoned {
        return mp_result::Poisoned;
    }
    match f(packer) {
        Ok(value) => {
            // SAFETY: `out` is non-NULL and aligned (checked) and by (2) valid for one write.
            unsafe { out.write(value) };
            mp_result::Ok
        }
        Err(code) => code,
    }
}

/// Creates an empty packer and stores it in `*out_packer`.
///
/// # Safety
/// - `out_packer`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new packer and must later free it with `mp_packer_free`, exactly
/// once.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Safe to call from any thread. A packer is not internally synchronised: it may be moved
/// between threads, and several threads may call the `const mp_packer *` functions on it at
/// once, but a call that takes `mp_packer *` must not overlap any other call on it.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `out_packer` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_new(out_packer: *mut *mut mp_packer) -> mp_result {
    ffi_panic_boundary! {
        let out_packer = check_out!(out_packer);
        let packer = to_boxed_mut_ptr::<mp_packer>(Packer::new());
        // SAFETY: `out_packer` is non-NULL and aligned (checked), and the caller guarantees it
        // is valid for one pointer write.
        unsafe { out_packer.write(packer) };
        mp_result::Ok
    }
}

/// Destroys a packer and everything it holds (buffers, packing, error text).
///
/// # Safety
/// - `packer`: NULL, or a packer from `mp_packer_new` not yet freed. Poisoned packers are
///   freed normally.
///
/// # Ownership
/// Ends the caller's ownership: `packer` must not be used again afterwards.
///
/// # Copies
/// Consumes `packer`.
///
/// # Thread safety
/// No other call on the same packer may run concurrently or afterwards.
///
/// # NULL
/// NULL is a no-op. Freeing the same packer twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_free(packer: *mut mp_packer) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or a live packer from
        // `mp_packer_new` that is not used again; `free_box` handles NULL.
        unsafe { free_box(packer) };
    }
}

/// Adds a buffer alive over `[lower, upper)` that needs `size` bytes at an offset that is a
/// multiple of `alignment`, and stores its index (0, 1, 2, ... in order of addition) in
/// `*out_index`.
///
/// `id` is a byte string of `id_len` bytes (no NUL needed; embedded NULs are kept) that must be
/// valid UTF-8 and unique within the packer. `alignment` must be 0 or a power of two; 0 means
/// no constraint (the same as 1). Errors, checked in this order: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_index`, `id_len` above `PTRDIFF_MAX`),
/// `MP_RESULT_INVALID_UTF8`, `MP_RESULT_ZERO_SIZE`, `MP_RESULT_EMPTY_LIFETIME`
/// (`upper <= lower`), `MP_RESULT_BAD_ALIGNMENT`, `MP_RESULT_DUPLICATE_ID`,
/// `MP_RESULT_OVERFLOW` (sizes overflow 64 bits, or 2^32 - 1 buffers already), and
/// `MP_RESULT_POISONED`/`MP_RESULT_PANIC` as for every mutating call. On error the packer is
/// unchanged (the packing from an earlier pack stays readable) and `mp_packer_last_error`
/// names the id; on success the last error is cleared and any packing from an earlier pack is
/// discarded (pack again before reading offsets).
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `id`: non-NULL (even when `id_len` is 0), valid for reads of `id_len` bytes.
/// - `out_index`: non-NULL, aligned, valid for one `size_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of `id` and `out_index`.
///
/// # Copies
/// `id` is copied; it may be freed or reused as soon as the call returns.
///
/// # Thread safety
/// Must not overlap any other call on the same packer.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer`, `id` or `out_index` is NULL.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // Mirrors the buffer's fields; a struct would add ABI to keep.
pub unsafe extern "C" fn mp_packer_add_buffer(
    packer: *mut mp_packer,
    id: *const c_char,
    id_len: usize,
    lower: u64,
    upper: u64,
    size: u64,
    alignment: u64,
    out_index: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let add = |packer: &mut Packer| {
            // `id` must be non-NULL even when `id_len` is 0.
            if id.is_null() {
                return Err((mp_result::NullParameter, "id is NULL".into()));
            }
            if out_index.is_null() {
                return Err((mp_result::NullParameter, "out_index is NULL".into()));
            }
            if !out_index.is_aligned() {
                return Err((mp_result::InvalidArgument, "out_index is misaligned".into()));
            }
            // SAFETY: the caller guarantees `id_len` readable bytes at `id` that are not
            // written during the call.
            let bytes = unsafe { slice_from_raw(id.cast::<u8>(), id_len) }.map_err(|code| {
                (code, format!("id_len {id_len} exceeds PTRDIFF_MAX"))
            })?;
            let id = core::str::from_utf8(bytes).map_err(|e| {
                (
                    mp_result::InvalidUtf8,
                    format!(
                        "buffer id is not valid UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                )
            })?;
            let buffer = Buffer::new(id, lower, upper, size).with_alignment(alignment.max(1));
            let index = packer.problem.push(buffer).map_err(core_failure)?;
            packer.outcome = Outcome::Unpacked;
            // SAFETY: `out_index` is non-NULL and aligned (checked), and the caller
            // guarantees it is valid for one `size_t` write.
            unsafe { out_index.write(index) };
            Ok(())
        };
        // SAFETY: the caller guarantees `packer` is NULL or live and not used concurrently.
        unsafe { mutate(packer, add) }
    }
}

/// The code and detail of a core error.
fn core_failure(e: Error) -> Failure {
    (mp_result::from(&e), e.to_string())
}

/// Packs the buffers added so far: gives each an offset so that buffers alive at the same
/// time never share a byte, minimising the peak (the largest `offset + size`).
///
/// Always finds a packing quickly with heuristics, then searches for a better one within the
/// limits in `options` (NULL: no limits, search until optimal, which can take very long on
/// hard inputs; set `MP_PACK_MAX_NODES` or `MP_PACK_TIME_LIMIT` to bound it). On
/// `MP_RESULT_OK` the packing is readable with `mp_packer_offset`, `mp_packer_peak`,
/// `mp_packer_is_optimal`, ... until the next successful `mp_packer_add_buffer`. With
/// `MP_PACK_CAPACITY` and no packing within the capacity found, returns
/// `MP_RESULT_CAPACITY_EXCEEDED`: then no offsets are readable, but `mp_packer_best_peak` and
/// `mp_packer_is_proven_infeasible` are. Unknown `flags` bits give
/// `MP_RESULT_INVALID_ARGUMENT`. Any failure discards the previous packing and sets
/// `mp_packer_last_error`; success clears it. Packing an empty packer succeeds with peak 0.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `options`: NULL, or aligned and valid for reading one `mp_pack_options`.
///
/// # Ownership
/// The caller keeps ownership of `options`.
///
/// # Copies
/// `options` is read during the call and not retained.
///
/// # Thread safety
/// Must not overlap any other call on the same packer. Different packers may be packed on
/// different threads at once.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` is NULL; a NULL `options` means defaults.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_pack(
    packer: *mut mp_packer,
    options: *const mp_pack_options,
) -> mp_result {
    ffi_panic_boundary! {
        let pack_with_options = |packer: &mut Packer| {
            packer.outcome = Outcome::Unpacked;
            // SAFETY: the caller guarantees `options` is NULL or valid for one read; every bit
            // pattern of the plain integer fields of `mp_pack_options` is valid.
            let options = unsafe { read_or_default(options) }
                .map_err(|code| (code, "options is misaligned".into()))?;
            run_pack(packer, &options)
        };
        // SAFETY: the caller guarantees `packer` is NULL or live and not used concurrently.
        unsafe { mutate(packer, pack_with_options) }
    }
}

/// The safe part of `mp_packer_pack`.
fn run_pack(packer: &mut Packer, options: &mp_pack_options) -> Result<(), Failure> {
    let flags = PackFlags::from_bits(options.flags).ok_or_else(|| {
        (
            mp_result::InvalidArgument,
            format!(
                "unknown bits {:#x} in mp_pack_options.flags",
                options.flags & !PackFlags::all().bits()
            ),
        )
    })?;
    let capacity = flags
        .contains(PackFlags::CAPACITY)
        .then_some(options.capacity);
    let max_nodes = flags
        .contains(PackFlags::MAX_NODES)
        .then_some(options.max_nodes);
    // The clock starts here; a limit too large for `Instant` is no limit.
    let mut deadline = Deadline::from_now(
        flags
            .contains(PackFlags::TIME_LIMIT)
            .then(|| Duration::from_millis(options.time_limit_ms)),
    );
    let budget = deadline.budget(max_nodes);
    match pack(&packer.problem, PackOptions { capacity, budget }) {
        Ok(solution) => {
            debug_assert!(
                memplan_core::check::verify(
                    packer.problem.buffers(),
                    &solution.placements(&packer.problem),
                    capacity,
                )
                .is_ok(),
                "core returned an invalid plan"
            );
            packer.outcome = Outcome::Packed(solution);
            Ok(())
        }
        Err(e) => {
            if let Error::CapacityExceeded {
                best_peak, proven, ..
            } = e
            {
                packer.outcome = Outcome::OverCapacity { best_peak, proven };
            }
            Err(core_failure(e))
        }
    }
}

/// Stores the number of buffers added so far in `*out_len`. Works before any pack.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_len`: non-NULL, aligned, valid for one `size_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_len` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_len(packer: *const mp_packer, out_len: *mut usize) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_len` NULL or valid for one write.
        unsafe { read(packer, out_len, |p| Ok(p.problem.len())) }
    }
}

/// Stores the max-load lower bound in `*out_max_load`: the largest total size of buffers
/// alive at one moment. No packing has a smaller peak. Works before any pack (computed in
/// O(n log n) on each call).
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_max_load`: non-NULL, aligned, valid for one `uint64_t` write. Written only on
///   success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_max_load` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_max_load(
    packer: *const mp_packer,
    out_max_load: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_max_load` NULL or valid for one write.
        unsafe { read(packer, out_max_load, |p| Ok(p.problem.max_load())) }
    }
}

/// Stores the offset in bytes of the buffer with index `index` (as returned by
/// `mp_packer_add_buffer`) in `*out_offset`. Needs a successful pack
/// (`MP_RESULT_NOT_PACKED` otherwise); `MP_RESULT_INDEX_OUT_OF_RANGE` when
/// `index >= mp_packer_len`.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_offset`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_offset` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_offset(
    packer: *const mp_packer,
    index: usize,
    out_offset: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_offset` NULL or valid for one write.
        unsafe {
            read(packer, out_offset, |p| {
                p.solution()?
                    .offsets
                    .get(index)
                    .copied()
                    .ok_or(mp_result::IndexOutOfRange)
            })
        }
    }
}

/// Stores the packing's peak in `*out_peak`: the largest `offset + size`, i.e. the arena size the
/// packing needs (0 with no buffers). Needs a successful pack (`MP_RESULT_NOT_PACKED`
/// otherwise).
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_peak`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_peak` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_peak(packer: *const mp_packer, out_peak: *mut u64) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_peak` NULL or valid for one write.
        unsafe { read(packer, out_peak, |p| Ok(p.solution()?.peak)) }
    }
}

/// Stores in `*out_optimal` whether the packing is proven optimal (its peak equals the max load,
/// or the exact search finished). Needs a successful pack (`MP_RESULT_NOT_PACKED`
/// otherwise).
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_optimal`: non-NULL, valid for one `bool` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_optimal` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_is_optimal(
    packer: *const mp_packer,
    out_optimal: *mut bool,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_optimal` NULL or valid for one write.
        unsafe { read(packer, out_optimal, |p| Ok(p.solution()?.optimal)) }
    }
}

/// Stores in `*out_nodes` how many search nodes the last pack expanded. Needs a successful
/// pack (`MP_RESULT_NOT_PACKED` otherwise).
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_nodes`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_nodes` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_nodes(
    packer: *const mp_packer,
    out_nodes: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_nodes` NULL or valid for one write.
        unsafe { read(packer, out_nodes, |p| Ok(p.solution()?.nodes)) }
    }
}

/// Stores in `*out_best_peak` the smallest peak the last pack found: the packing's peak after
/// `MP_RESULT_OK`, or the best peak above the capacity after `MP_RESULT_CAPACITY_EXCEEDED`.
/// `MP_RESULT_NOT_PACKED` after any other outcome.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_best_peak`: non-NULL, aligned, valid for one `uint64_t` write. Written only on
///   success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_best_peak` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_best_peak(
    packer: *const mp_packer,
    out_best_peak: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_best_peak` NULL or valid for one write.
        unsafe {
            read(packer, out_best_peak, |p| match &p.outcome {
                Outcome::Packed(s) => Ok(s.peak),
                Outcome::OverCapacity { best_peak, .. } => Ok(*best_peak),
                Outcome::Unpacked => Err(mp_result::NotPacked),
            })
        }
    }
}

/// Stores in `*out_infeasible` whether the last pack proved that no packing fits its capacity:
/// true after `MP_RESULT_CAPACITY_EXCEEDED` when that is certain (the max load exceeds the
/// capacity, or the exact search finished), false when the search limits ran out first (more
/// search might still find a packing) and false after `MP_RESULT_OK`. `MP_RESULT_NOT_PACKED`
/// after any other outcome.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `out_infeasible`: non-NULL, valid for one `bool` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `packer` or `out_infeasible` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_is_proven_infeasible(
    packer: *const mp_packer,
    out_infeasible: *mut bool,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `packer` is NULL or live with no concurrent writer,
        // and `out_infeasible` NULL or valid for one write.
        unsafe {
            read(packer, out_infeasible, |p| match &p.outcome {
                Outcome::Packed(_) => Ok(false),
                Outcome::OverCapacity { proven, .. } => Ok(*proven),
                Outcome::Unpacked => Err(mp_result::NotPacked),
            })
        }
    }
}

/// Writes the detail of the last failed `mp_packer_add_buffer` or `mp_packer_pack` on this
/// packer into `buf` as a NUL-terminated UTF-8 string: core's description, which names the
/// offending buffer id (for example `duplicate buffer id "b1"`), or the panic message for a
/// poisoned packer. The string is empty when the last such call succeeded or none was made.
/// Failures of the reader functions (`mp_packer_offset`, ...) do not change it.
///
/// Copied like `mp_result_message`: at most `len - 1` bytes, cut at a UTF-8 character
/// boundary, then a NUL (nothing written when `len` is 0); `*out_n` receives the full length
/// without the NUL, so the text was truncated exactly when `*out_n >= len`. Works on a
/// poisoned packer.
///
/// # Safety
/// - `packer`: NULL or a live packer from `mp_packer_new`.
/// - `buf`: NULL only when `len` is 0; otherwise valid for writes of `len` bytes.
/// - `out_n`: non-NULL, aligned, valid for one `size_t` write. Written only on success.
///
/// # Ownership
/// The caller owns `buf` and `out_n`; nothing is retained after the call.
///
/// # Copies
/// The text is copied into `buf`.
///
/// # Thread safety
/// May run concurrently with other `const mp_packer *` calls on the same packer, but not
/// with a call that takes `mp_packer *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` (writing nothing) when `packer` or `out_n` is NULL, or
/// `buf` is NULL with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_packer_last_error(
    packer: *const mp_packer,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let packer = try_ref_from_ptr!(packer);
        let out_n = check_out!(out_n);
        if buf.is_null() && len > 0 {
            return mp_result::NullParameter;
        }
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes when `len > 0`, and we
        // checked it is non-NULL then.
        let n = unsafe { write_c_string(&packer.last_error, buf, len) };
        // SAFETY: `out_n` is non-NULL and aligned (checked), and the caller guarantees it is
        // valid for one `size_t` write.
        unsafe { out_n.write(n) };
        mp_result::Ok
    }
}
