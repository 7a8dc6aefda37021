//! The `mp_planner` handle: collect buffers, solve, read the plan.
//!
//! Representation invariants of [`Planner`]:
//! - `outcome` is `Solved(s)` only if `s` is a plan for exactly the buffers now in `problem`
//!   (`s.offsets.len() == problem.len()`): every successful add resets it to `Unsolved`.
//! - `poisoned` is true iff a mutating call panicked part-way; then nothing but `last_error`
//!   is read again.

use core::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use memplan_core::pack::Deadline;
use memplan_core::{Buffer, Error, PackOptions, Problem, Solution, pack};

use crate::error::{mp_result, write_c_string};
use crate::ffi::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};

#[cfg(test)]
mod tests;

/// An opaque planner: a set of buffers with lifetimes, and the plan from the last solve.
///
/// Create with `mp_planner_new`, destroy with `mp_planner_free`.
pub struct mp_planner {
    _private: [u8; 0],
}

impl Castable for mp_planner {
    type Ownership = OwnershipBox;
    type RustType = Planner;
}

/// `flags` bit of `mp_solve_options`: the `capacity` field is set.
pub const MP_SOLVE_CAPACITY: u32 = 1 << 0;
/// `flags` bit of `mp_solve_options`: the `max_nodes` field is set.
pub const MP_SOLVE_MAX_NODES: u32 = 1 << 1;
/// `flags` bit of `mp_solve_options`: the `time_limit_ms` field is set.
pub const MP_SOLVE_TIME_LIMIT: u32 = 1 << 2;

bitflags::bitflags! {
    /// The valid bits of `mp_solve_options::flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct SolveFlags: u32 {
        const CAPACITY = MP_SOLVE_CAPACITY;
        const MAX_NODES = MP_SOLVE_MAX_NODES;
        const TIME_LIMIT = MP_SOLVE_TIME_LIMIT;
    }
}

/// Options for `mp_planner_solve`. A zero-initialised struct (or a NULL pointer) means no
/// capacity and no limits: search until the plan is proven optimal.
///
/// Each of `capacity`, `max_nodes` and `time_limit_ms` is used only when its bit is set in
/// `flags`, so every value of those fields, 0 included, keeps its plain meaning.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_solve_options {
    /// A bitwise OR of `MP_SOLVE_CAPACITY`, `MP_SOLVE_MAX_NODES`, `MP_SOLVE_TIME_LIMIT`; any
    /// other bit makes `mp_planner_solve` fail with `MP_RESULT_INVALID_ARGUMENT`.
    pub flags: u32,
    /// With `MP_SOLVE_CAPACITY`: stop at the first plan whose peak is at most this many bytes,
    /// and fail with `MP_RESULT_CAPACITY_EXCEEDED` if none is found.
    pub capacity: u64,
    /// With `MP_SOLVE_MAX_NODES`: the most search nodes to expand after the heuristics
    /// (deterministic; 0 means heuristics only).
    pub max_nodes: u64,
    /// With `MP_SOLVE_TIME_LIMIT`: stop searching after about this many milliseconds of wall
    /// time (0 means heuristics only). Results then depend on timing.
    pub time_limit_ms: u64,
}

/// What the last solve produced.
#[derive(Debug)]
enum Outcome {
    /// No solve since the last successful add (or ever), or the last solve failed otherwise.
    Unsolved,
    /// The last solve succeeded; the plan matches the current buffers.
    Solved(Solution),
    /// The last solve found no plan within its capacity.
    OverCapacity {
        /// The smallest peak found.
        best_peak: u64,
        /// True when no plan within the capacity exists.
        proven: bool,
    },
}

/// The Rust object behind an `mp_planner` handle. See the module docs for its invariants.
#[derive(Debug)]
pub(crate) struct Planner {
    /// The validated buffers, in the order they were added.
    problem: Problem,
    /// The result of the last solve, if it still applies.
    outcome: Outcome,
    /// Detail of the last failed `add_buffer`/`solve` (core's `Display` text, which names the
    /// offending id); empty after a successful one.
    last_error: String,
    /// True iff a mutating call panicked part-way (see [`mutate`]).
    poisoned: bool,
}

impl Planner {
    fn new() -> Self {
        Planner {
            problem: Problem::new(),
            outcome: Outcome::Unsolved,
            last_error: String::new(),
            poisoned: false,
        }
    }

    fn solution(&self) -> Result<&Solution, mp_result> {
        match &self.outcome {
            Outcome::Solved(s) => Ok(s),
            _ => Err(mp_result::NotSolved),
        }
    }
}

// The thread-safety promises in the docs (a planner may move between threads; `const`
// readers may run concurrently) rest on these.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Planner>();
};

/// A failed mutating call: its code and the detail for `mp_planner_last_error`.
type Failure = (mp_result, String);

#[cfg(test)]
thread_local! {
    /// Test hook: when set, the next [`mutate`] on this thread panics inside its boundary.
    static PANIC_NEXT_MUTATION: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Runs a mutating call `f` on the planner behind `planner`, with the poisoning protocol:
/// a poisoned planner is refused (`MP_RESULT_POISONED`); otherwise `poisoned` is set while
/// `f` runs and cleared when it returns, so a panic inside `f` (caught here) leaves the
/// planner poisoned and its message in `last_error`. On `Err` the failure's detail becomes
/// `last_error`; on `Ok` `last_error` is cleared.
///
/// # Safety
/// 1. `planner` is NULL or a live handle from `mp_planner_new`, not used by another thread
///    during the call.
unsafe fn mutate(
    planner: *mut mp_planner,
    f: impl FnOnce(&mut Planner) -> Result<(), Failure>,
) -> mp_result {
    let planner = try_mut_from_ptr!(planner);
    if planner.poisoned {
        return mp_result::Poisoned;
    }
    planner.poisoned = true;
    let result = catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        if PANIC_NEXT_MUTATION.with(|p| p.replace(false)) {
            panic!("test-injected panic");
        }
        f(&mut *planner)
    }));
    match result {
        Ok(Ok(())) => {
            planner.poisoned = false;
            planner.last_error.clear();
            mp_result::Ok
        }
        Ok(Err((code, detail))) => {
            planner.poisoned = false;
            planner.last_error = detail;
            code
        }
        Err(payload) => {
            // `poisoned` stays set: `f` may have stopped half-way through an update.
            planner.last_error = format!(
                "panic inside memplan (planner poisoned): {}",
                crate::panic::payload_message(&*payload)
            );
            mp_result::Panic
        }
    }
}

/// Runs a read-only call `f` on the planner behind `planner` and writes its value to `out`
/// on success. NULL `planner`/`out` give `MP_RESULT_NULL_PARAMETER`, a misaligned `out`
/// `MP_RESULT_INVALID_ARGUMENT`, a poisoned planner `MP_RESULT_POISONED`.
///
/// # Safety
/// 1. `planner` is NULL or a live handle from `mp_planner_new`, not mutated by another thread
///    during the call.
/// 2. `out` is NULL or valid for one write of a `T`.
unsafe fn read<T>(
    planner: *const mp_planner,
    out: *mut T,
    f: impl FnOnce(&Planner) -> Result<T, mp_result>,
) -> mp_result {
    let planner = try_ref_from_ptr!(planner);
    let out = check_out!(out);
    if planner.poisoned {
        return mp_result::Poisoned;
    }
    match f(planner) {
        Ok(value) => {
            // SAFETY: `out` is non-NULL and aligned (checked) and by (2) valid for one write.
            unsafe { out.write(value) };
            mp_result::Ok
        }
        Err(code) => code,
    }
}

/// Creates an empty planner and stores it in `*out_planner`.
///
/// # Safety
/// - `out_planner`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new planner and must later free it with `mp_planner_free`, exactly
/// once.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Safe to call from any thread. A planner is not internally synchronised: it may be moved
/// between threads, and several threads may call the `const mp_planner *` functions on it at
/// once, but a call that takes `mp_planner *` must not overlap any other call on it.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `out_planner` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_new(out_planner: *mut *mut mp_planner) -> mp_result {
    ffi_panic_boundary! {
        let out_planner = check_out!(out_planner);
        let planner = to_boxed_mut_ptr::<mp_planner>(Planner::new());
        // SAFETY: `out_planner` is non-NULL and aligned (checked), and the caller guarantees it
        // is valid for one pointer write.
        unsafe { out_planner.write(planner) };
        mp_result::Ok
    }
}

/// Destroys a planner and everything it holds (buffers, plan, error text).
///
/// # Safety
/// - `planner`: NULL, or a planner from `mp_planner_new` not yet freed. Poisoned planners are
///   freed normally.
///
/// # Ownership
/// Ends the caller's ownership: `planner` must not be used again afterwards.
///
/// # Copies
/// Consumes `planner`.
///
/// # Thread safety
/// No other call on the same planner may run concurrently or afterwards.
///
/// # NULL
/// NULL is a no-op. Freeing the same planner twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_free(planner: *mut mp_planner) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or a live planner from
        // `mp_planner_new` that is not used again; `free_box` handles NULL.
        unsafe { free_box(planner) };
    }
}

/// Adds a buffer alive over `[lower, upper)` that needs `size` bytes at an offset that is a
/// multiple of `alignment`, and stores its index (0, 1, 2, ... in order of addition) in
/// `*out_index`.
///
/// `id` is a byte string of `id_len` bytes (no NUL needed; embedded NULs are kept) that must be
/// valid UTF-8 and unique within the planner. `alignment` must be 0 or a power of two; 0 means
/// no constraint (the same as 1). Errors, checked in this order: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_index`, `id_len` above `PTRDIFF_MAX`),
/// `MP_RESULT_INVALID_UTF8`, `MP_RESULT_ZERO_SIZE`, `MP_RESULT_EMPTY_LIFETIME`
/// (`upper <= lower`), `MP_RESULT_BAD_ALIGNMENT`, `MP_RESULT_DUPLICATE_ID`,
/// `MP_RESULT_OVERFLOW` (sizes overflow 64 bits, or 2^32 - 1 buffers already), and
/// `MP_RESULT_POISONED`/`MP_RESULT_PANIC` as for every mutating call. On error the planner is
/// unchanged (the plan from an earlier solve stays readable) and `mp_planner_last_error`
/// names the id; on success the last error is cleared and any plan from an earlier solve is
/// discarded (solve again before reading offsets).
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
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
/// Must not overlap any other call on the same planner.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner`, `id` or `out_index` is NULL.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // Mirrors the buffer's fields; a struct would add ABI to keep.
pub unsafe extern "C" fn mp_planner_add_buffer(
    planner: *mut mp_planner,
    id: *const c_char,
    id_len: usize,
    lower: u64,
    upper: u64,
    size: u64,
    alignment: u64,
    out_index: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let add = |planner: &mut Planner| {
            if id.is_null() {
                    return Err((mp_result::NullParameter, "id is NULL".into()));
                }
                if out_index.is_null() {
                    return Err((mp_result::NullParameter, "out_index is NULL".into()));
                }
                if !out_index.is_aligned() {
                    return Err((mp_result::InvalidArgument, "out_index is misaligned".into()));
                }
                if id_len > isize::MAX as usize {
                    return Err((
                        mp_result::InvalidArgument,
                        format!("id_len {id_len} exceeds PTRDIFF_MAX"),
                    ));
                }
                // SAFETY: `id` is non-NULL (checked), `id_len <= isize::MAX` (checked), and the
                // caller guarantees `id_len` readable bytes that are not written during the
                // call; `u8` has alignment 1.
                let bytes = unsafe { core::slice::from_raw_parts(id.cast::<u8>(), id_len) };
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
                let index = planner.problem.push(buffer).map_err(core_failure)?;
                planner.outcome = Outcome::Unsolved;
                // SAFETY: `out_index` is non-NULL and aligned (checked), and the caller
                // guarantees it is valid for one `size_t` write.
                unsafe { out_index.write(index) };
                Ok(())
        };
        // SAFETY: the caller guarantees `planner` is NULL or live and not used concurrently.
        unsafe { mutate(planner, add) }
    }
}

/// The code and detail of a core error.
fn core_failure(e: Error) -> Failure {
    (mp_result::from_core(&e), e.to_string())
}

/// Plans the buffers added so far: gives each an offset so that buffers alive at the same
/// time never share a byte, minimising the peak (the largest `offset + size`).
///
/// Always finds a plan quickly with heuristics, then searches for a better one within the
/// limits in `options` (NULL: no limits, search until optimal, which can take very long on
/// hard inputs; set `MP_SOLVE_MAX_NODES` or `MP_SOLVE_TIME_LIMIT` to bound it). On
/// `MP_RESULT_OK` the plan is readable with `mp_planner_offset`, `mp_planner_peak`,
/// `mp_planner_is_optimal`, ... until the next successful `mp_planner_add_buffer`. With
/// `MP_SOLVE_CAPACITY` and no plan within the capacity found, returns
/// `MP_RESULT_CAPACITY_EXCEEDED`: then no offsets are readable, but `mp_planner_best_peak` and
/// `mp_planner_is_proven_infeasible` are. Unknown `flags` bits give
/// `MP_RESULT_INVALID_ARGUMENT`. Any failure discards the previous plan and sets
/// `mp_planner_last_error`; success clears it. Solving an empty planner succeeds with peak 0.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `options`: NULL, or aligned and valid for reading one `mp_solve_options`.
///
/// # Ownership
/// The caller keeps ownership of `options`.
///
/// # Copies
/// `options` is read during the call and not retained.
///
/// # Thread safety
/// Must not overlap any other call on the same planner. Different planners may be solved on
/// different threads at once.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` is NULL; a NULL `options` means defaults.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_solve(
    planner: *mut mp_planner,
    options: *const mp_solve_options,
) -> mp_result {
    ffi_panic_boundary! {
        let solve_with_options = |planner: &mut Planner| {
                planner.outcome = Outcome::Unsolved;
                let options = if options.is_null() {
                    mp_solve_options::default()
                } else if !options.is_aligned() {
                    return Err((mp_result::InvalidArgument, "options is misaligned".into()));
                } else {
                    // SAFETY: `options` is non-NULL and aligned (checked), and the caller
                    // guarantees it is valid for one read; every bit pattern of the plain
                    // integer fields of `mp_solve_options` is valid.
                    unsafe { options.read() }
                };
                solve(planner, &options)
        };
        // SAFETY: the caller guarantees `planner` is NULL or live and not used concurrently.
        unsafe { mutate(planner, solve_with_options) }
    }
}

/// The safe part of `mp_planner_solve`.
fn solve(planner: &mut Planner, options: &mp_solve_options) -> Result<(), Failure> {
    let flags = SolveFlags::from_bits(options.flags).ok_or_else(|| {
        (
            mp_result::InvalidArgument,
            format!(
                "unknown bits {:#x} in mp_solve_options.flags",
                options.flags & !SolveFlags::all().bits()
            ),
        )
    })?;
    let capacity = flags
        .contains(SolveFlags::CAPACITY)
        .then_some(options.capacity);
    let max_nodes = flags
        .contains(SolveFlags::MAX_NODES)
        .then_some(options.max_nodes);
    // The clock starts here; a limit too large for `Instant` is no limit.
    let mut deadline = Deadline::from_now(
        flags
            .contains(SolveFlags::TIME_LIMIT)
            .then(|| Duration::from_millis(options.time_limit_ms)),
    );
    let budget = deadline.budget(max_nodes);
    match pack(&planner.problem, PackOptions { capacity, budget }) {
        Ok(solution) => {
            debug_assert!(
                memplan_core::check::verify(
                    planner.problem.buffers(),
                    &solution.placements(&planner.problem),
                    capacity,
                )
                .is_ok(),
                "core returned an invalid plan"
            );
            planner.outcome = Outcome::Solved(solution);
            Ok(())
        }
        Err(e) => {
            if let Error::CapacityExceeded {
                best_peak, proven, ..
            } = e
            {
                planner.outcome = Outcome::OverCapacity { best_peak, proven };
            }
            Err(core_failure(e))
        }
    }
}

/// Stores the number of buffers added so far in `*out_len`. Works before any solve.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_len`: non-NULL, aligned, valid for one `size_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_len` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_len(
    planner: *const mp_planner,
    out_len: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_len` NULL or valid for one write.
        unsafe { read(planner, out_len, |p| Ok(p.problem.len())) }
    }
}

/// Stores the max-load lower bound in `*out_max_load`: the largest total size of buffers
/// alive at one moment. No plan has a smaller peak. Works before any solve (computed in
/// O(n log n) on each call).
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
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
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_max_load` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_max_load(
    planner: *const mp_planner,
    out_max_load: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_max_load` NULL or valid for one write.
        unsafe { read(planner, out_max_load, |p| Ok(p.problem.max_load())) }
    }
}

/// Stores the offset in bytes of the buffer with index `index` (as returned by
/// `mp_planner_add_buffer`) in `*out_offset`. Needs a successful solve
/// (`MP_RESULT_NOT_SOLVED` otherwise); `MP_RESULT_INDEX_OUT_OF_RANGE` when
/// `index >= mp_planner_len`.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_offset`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_offset` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_offset(
    planner: *const mp_planner,
    index: usize,
    out_offset: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_offset` NULL or valid for one write.
        unsafe {
            read(planner, out_offset, |p| {
                p.solution()?
                    .offsets
                    .get(index)
                    .copied()
                    .ok_or(mp_result::IndexOutOfRange)
            })
        }
    }
}

/// Stores the plan's peak in `*out_peak`: the largest `offset + size`, i.e. the arena size the
/// plan needs (0 with no buffers). Needs a successful solve (`MP_RESULT_NOT_SOLVED`
/// otherwise).
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_peak`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_peak` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_peak(
    planner: *const mp_planner,
    out_peak: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_peak` NULL or valid for one write.
        unsafe { read(planner, out_peak, |p| Ok(p.solution()?.peak)) }
    }
}

/// Stores in `*out_optimal` whether the plan is proven optimal (its peak equals the max load,
/// or the exact search finished). Needs a successful solve (`MP_RESULT_NOT_SOLVED`
/// otherwise).
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_optimal`: non-NULL, valid for one `bool` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_optimal` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_is_optimal(
    planner: *const mp_planner,
    out_optimal: *mut bool,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_optimal` NULL or valid for one write.
        unsafe { read(planner, out_optimal, |p| Ok(p.solution()?.optimal)) }
    }
}

/// Stores in `*out_nodes` how many search nodes the last solve expanded. Needs a successful
/// solve (`MP_RESULT_NOT_SOLVED` otherwise).
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_nodes`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_nodes` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_nodes(
    planner: *const mp_planner,
    out_nodes: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_nodes` NULL or valid for one write.
        unsafe { read(planner, out_nodes, |p| Ok(p.solution()?.nodes)) }
    }
}

/// Stores in `*out_best_peak` the smallest peak the last solve found: the plan's peak after
/// `MP_RESULT_OK`, or the best peak above the capacity after `MP_RESULT_CAPACITY_EXCEEDED`.
/// `MP_RESULT_NOT_SOLVED` after any other outcome.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
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
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_best_peak` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_best_peak(
    planner: *const mp_planner,
    out_best_peak: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_best_peak` NULL or valid for one write.
        unsafe {
            read(planner, out_best_peak, |p| match &p.outcome {
                Outcome::Solved(s) => Ok(s.peak),
                Outcome::OverCapacity { best_peak, .. } => Ok(*best_peak),
                Outcome::Unsolved => Err(mp_result::NotSolved),
            })
        }
    }
}

/// Stores in `*out_infeasible` whether the last solve proved that no plan fits its capacity:
/// true after `MP_RESULT_CAPACITY_EXCEEDED` when that is certain (the max load exceeds the
/// capacity, or the exact search finished), false when the search limits ran out first (more
/// search might still find a plan) and false after `MP_RESULT_OK`. `MP_RESULT_NOT_SOLVED`
/// after any other outcome.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
/// - `out_infeasible`: non-NULL, valid for one `bool` write. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both pointers.
///
/// # Copies
/// The value is copied out.
///
/// # Thread safety
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `planner` or `out_infeasible` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_is_proven_infeasible(
    planner: *const mp_planner,
    out_infeasible: *mut bool,
) -> mp_result {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `planner` is NULL or live with no concurrent writer,
        // and `out_infeasible` NULL or valid for one write.
        unsafe {
            read(planner, out_infeasible, |p| match &p.outcome {
                Outcome::Solved(_) => Ok(false),
                Outcome::OverCapacity { proven, .. } => Ok(*proven),
                Outcome::Unsolved => Err(mp_result::NotSolved),
            })
        }
    }
}

/// Writes the detail of the last failed `mp_planner_add_buffer` or `mp_planner_solve` on this
/// planner into `buf` as a NUL-terminated UTF-8 string: core's description, which names the
/// offending buffer id (for example `duplicate buffer id "b1"`), or the panic message for a
/// poisoned planner. The string is empty when the last such call succeeded or none was made.
/// Failures of the reader functions (`mp_planner_offset`, ...) do not change it.
///
/// Copied like `mp_result_message`: at most `len - 1` bytes, cut at a UTF-8 character
/// boundary, then a NUL (nothing written when `len` is 0); `*out_n` receives the full length
/// without the NUL, so the text was truncated exactly when `*out_n >= len`. Works on a
/// poisoned planner.
///
/// # Safety
/// - `planner`: NULL or a live planner from `mp_planner_new`.
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
/// May run concurrently with other `const mp_planner *` calls on the same planner, but not
/// with a call that takes `mp_planner *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` (writing nothing) when `planner` or `out_n` is NULL, or
/// `buf` is NULL with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_planner_last_error(
    planner: *const mp_planner,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let planner = try_ref_from_ptr!(planner);
        let out_n = check_out!(out_n);
        if buf.is_null() && len > 0 {
            return mp_result::NullParameter;
        }
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes when `len > 0`, and we
        // checked it is non-NULL then.
        let n = unsafe { write_c_string(&planner.last_error, buf, len) };
        // SAFETY: `out_n` is non-NULL and aligned (checked), and the caller guarantees it is
        // valid for one `size_t` write.
        unsafe { out_n.write(n) };
        mp_result::Ok
    }
}
