//! The `mp_allocator` handle: memplan's device-memory allocators behind the C API. The handle
//! wraps a `memplan_core::allocator::registry::BoxedAllocator`, so it can hold every allocator
//! of the registry (torch, torch-expandable, online, guided) behind the same calls; the C API
//! builds two of them today: the online one (`mp_allocator_new`) and the plan-guided one
//! (`mp_allocator_new_guided`). (`mp_torch_malloc` serves every registry allocator by name.)
//!
//! Naming (doc/DESIGN.md, "Allocator handle"): `mp_allocator_new`/`mp_allocator_free` create
//! and destroy the *handle* (STYLE.md rule 9), and `mp_allocator_alloc`/`mp_allocator_dealloc`
//! serve and return *blocks*. "Release" is kept for what `mp_allocator_trim` does: give mapped
//! pages back to the device.
//!
//! Representation invariant of [`AllocatorHandle`]: `poisoned` is true iff a mutating call
//! panicked part-way; then only `mp_allocator_free` touches the allocator again.

use memplan_core::allocator::registry::{self, AllocatorKind, BoxedAllocator, Settings};
use memplan_core::allocator::{AllocStats, DEFAULT_BASE, DEFAULT_PAGE_SIZE, check_page_layout};
use memplan_core::plan::Plan;

use crate::error::mp_result;
use crate::ffi::{
    Castable, OwnershipBox, Poisonable, free_box, mutate, read_or_default, slice_from_raw,
    to_boxed_mut_ptr,
};

#[cfg(test)]
mod tests;

/// An opaque allocator of simulated device memory, 512-byte aligned blocks in one virtual
/// range. It wraps any allocator of memplan's registry behind the same calls; the C API
/// creates the online allocator (exact best fit with immediate coalescing over a range grown
/// in pages) and the plan-guided one.
///
/// Create with `mp_allocator_new` or `mp_allocator_new_guided`, destroy with
/// `mp_allocator_free`.
pub struct mp_allocator {
    _private: [u8; 0],
}

impl Castable for mp_allocator {
    type Ownership = OwnershipBox;
    type RustType = AllocatorHandle;
}

/// `flags` bit of `mp_allocator_options`: the `capacity` field is set.
pub const MP_ALLOCATOR_CAPACITY: u32 = 1 << 0;
/// `flags` bit of `mp_allocator_options`: the `page_size` field is set.
pub const MP_ALLOCATOR_PAGE_SIZE: u32 = 1 << 1;

/// Largest page size `mp_allocator_new` accepts: 1 TiB, the largest power of two that divides
/// the allocator's base address.
// A literal, not `1 << 40`: cbindgen copies the expression, and `1 << 40` overflows `int` in C.
pub const MP_ALLOCATOR_MAX_PAGE_SIZE: u64 = 1_099_511_627_776;

const _: () = assert!(MP_ALLOCATOR_MAX_PAGE_SIZE == 1 << 40);
const _: () = assert!(DEFAULT_BASE % MP_ALLOCATOR_MAX_PAGE_SIZE == 0);

bitflags::bitflags! {
    /// The valid bits of `mp_allocator_options::flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct AllocatorFlags: u32 {
        const CAPACITY = MP_ALLOCATOR_CAPACITY;
        const PAGE_SIZE = MP_ALLOCATOR_PAGE_SIZE;
    }
}

/// Options for `mp_allocator_new`. A zero-initialised struct (or a NULL pointer) means no
/// capacity and 2 MiB pages.
///
/// Each of `capacity` and `page_size` is used only when its bit is set in `flags`, so every
/// value of those fields, 0 included, keeps its plain meaning.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_allocator_options {
    /// A bitwise OR of `MP_ALLOCATOR_CAPACITY` and `MP_ALLOCATOR_PAGE_SIZE`; any other bit
    /// makes `mp_allocator_new` fail with `MP_RESULT_INVALID_ARGUMENT`.
    pub flags: u32,
    /// With `MP_ALLOCATOR_CAPACITY`: the most bytes that may be mapped at once (only whole
    /// pages count). A request that would need more fails with `MP_RESULT_OUT_OF_MEMORY`.
    pub capacity: u64,
    /// With `MP_ALLOCATOR_PAGE_SIZE`: the granule of mapping and trimming, a power of two from
    /// 512 to `MP_ALLOCATOR_MAX_PAGE_SIZE` (else `MP_RESULT_INVALID_ARGUMENT`).
    pub page_size: u64,
}

/// The counters of an allocator, as returned by `mp_allocator_stats`. (Not named
/// `mp_allocator_stats`: in C a typedef and a function cannot share a name.)
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_alloc_stats {
    /// Sum of the sizes requested by the live allocations (before rounding up to 512).
    pub allocated: u64,
    /// Largest `allocated` seen.
    pub peak_allocated: u64,
    /// Bytes currently mapped (a whole number of pages).
    pub reserved: u64,
    /// Largest `reserved` seen.
    pub peak_reserved: u64,
    /// Mapped ranges: 1 while any page is mapped, else 0.
    pub segments: u64,
    /// Map calls made so far (each growth of the range is one).
    pub reservations: u64,
}

impl From<AllocStats> for mp_alloc_stats {
    fn from(s: AllocStats) -> Self {
        mp_alloc_stats {
            allocated: s.allocated,
            peak_allocated: s.peak_allocated,
            reserved: s.reserved,
            peak_reserved: s.peak_reserved,
            segments: s.segments,
            reservations: s.reservations,
        }
    }
}

/// The Rust object behind an `mp_allocator` handle. See the module docs for its invariant.
#[derive(Debug)]
pub(crate) struct AllocatorHandle {
    /// The allocator itself: `online` or `guided`, from the registry.
    inner: BoxedAllocator,
    /// True iff a mutating call panicked part-way (see [`mutate`](crate::ffi::mutate)).
    poisoned: bool,
}

// The thread-safety promises in the docs (an allocator may move between threads; `const`
// readers may run concurrently) rest on these.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<AllocatorHandle>();
};

impl Poisonable for AllocatorHandle {
    /// The allocator calls map their core errors themselves (`mp_result::from`).
    type Error = mp_result;

    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn finish(&mut self, result: Result<(), mp_result>) -> mp_result {
        result.err().unwrap_or(mp_result::Ok)
    }
}

/// The registry settings `options` asks for, or `MP_RESULT_INVALID_ARGUMENT` for unknown flag
/// bits. (The page size is checked by the core, see [`setup_error_code`].)
fn settings(options: &mp_allocator_options) -> Result<Settings, mp_result> {
    let flags = AllocatorFlags::from_bits(options.flags).ok_or(mp_result::InvalidArgument)?;
    Ok(Settings {
        page_size: if flags.contains(AllocatorFlags::PAGE_SIZE) {
            options.page_size
        } else {
            DEFAULT_PAGE_SIZE
        },
        capacity: flags
            .contains(AllocatorFlags::CAPACITY)
            .then_some(options.capacity),
        ..Settings::default()
    })
}

/// Builds `kind` from `settings` into a new handle, stored in `*out_allocator`.
///
/// # Safety
/// 1. `out_allocator` is non-NULL, aligned and valid for one pointer write.
unsafe fn new_handle(
    kind: AllocatorKind,
    settings: &Settings,
    out_allocator: *mut *mut mp_allocator,
) -> mp_result {
    let inner = match registry::build(kind, settings) {
        Ok(a) => a,
        Err(e) => return mp_result::from(&e),
    };
    let handle = AllocatorHandle {
        inner,
        poisoned: false,
    };
    let allocator = to_boxed_mut_ptr::<mp_allocator>(handle);
    // SAFETY: the caller guarantees `out_allocator` is non-NULL, aligned and valid for one
    // pointer write.
    unsafe { out_allocator.write(allocator) };
    mp_result::Ok
}

/// Creates an allocator with nothing mapped yet and stores it in `*out_allocator`.
///
/// `options` may be NULL: no capacity, 2 MiB pages (see `mp_allocator_options`). Errors:
/// `MP_RESULT_NULL_PARAMETER` (NULL `out_allocator`), `MP_RESULT_INVALID_ARGUMENT`
/// (misaligned `out_allocator` or `options`, unknown `flags` bits, a page size that is not a
/// power of two from 512 to `MP_ALLOCATOR_MAX_PAGE_SIZE`). Blocks are handed out in one
/// virtual range starting at 0x7f0000000000.
///
/// # Safety
/// - `options`: NULL, or aligned and valid for reading one `mp_allocator_options`.
/// - `out_allocator`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new allocator and must later free it with `mp_allocator_free`, exactly
/// once. The caller keeps ownership of `options`.
///
/// # Copies
/// `options` is read during the call and not retained.
///
/// # Thread safety
/// Safe to call from any thread. An allocator is not internally synchronised: it may be moved
/// between threads, and several threads may call `mp_allocator_stats` on it at once, but a
/// call that takes `mp_allocator *` must not overlap any other call on it.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `out_allocator` is NULL; a NULL `options` means
/// defaults.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_new(
    options: *const mp_allocator_options,
    out_allocator: *mut *mut mp_allocator,
) -> mp_result {
    ffi_panic_boundary! {
        let out_allocator = check_out!(out_allocator);
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; every bit
        // pattern of its plain integer fields is valid.
        let options = match unsafe { read_or_default(options) } {
            Ok(o) => o,
            Err(code) => return code,
        };
        let settings = match settings(&options) {
            Ok(s) => s,
            Err(code) => return code,
        };
        // SAFETY: `out_allocator` is non-NULL and aligned (checked), and the caller guarantees
        // it is valid for one pointer write.
        unsafe { new_handle(AllocatorKind::Online, &settings, out_allocator) }
    }
}

/// Destroys an allocator and every block it still holds (the addresses it handed out become
/// meaningless).
///
/// # Safety
/// - `allocator`: NULL, or an allocator from `mp_allocator_new` not yet freed. Poisoned
///   allocators are freed normally.
///
/// # Ownership
/// Ends the caller's ownership: `allocator` must not be used again afterwards.
///
/// # Copies
/// Consumes `allocator`.
///
/// # Thread safety
/// No other call on the same allocator may run concurrently or afterwards.
///
/// # NULL
/// NULL is a no-op. Freeing the same allocator twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_free(allocator: *mut mp_allocator) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `allocator` is NULL or a live allocator from
        // `mp_allocator_new` that is not used again; `free_box` handles NULL.
        unsafe { free_box(allocator) };
    }
}

/// Allocates `size` bytes for use on `stream` and stores the block's address in `*out_addr`.
///
/// The block takes `size` rounded up to a multiple of 512 (512 for `size == 0`, which is
/// allowed and still gets a distinct address); its address is 512-aligned and it overlaps no
/// other live block. The smallest free block that fits is used (lowest address among equal
/// sizes); when none fits, just enough pages are mapped at the end of the range (one
/// reservation). `stream` is accepted and ignored: memory is reused across streams. Errors:
/// `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_addr`),
/// `MP_RESULT_OUT_OF_MEMORY` (the growth needed would exceed the capacity or the address
/// space; the allocator is unchanged), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `allocator`: NULL or a live allocator from `mp_allocator_new`.
/// - `out_addr`: non-NULL, aligned, valid for one `uint64_t` write. Written only on success.
///
/// # Ownership
/// The block belongs to the caller until it is passed to `mp_allocator_dealloc` (or the
/// allocator is freed). The address is a number in a simulated address space: it must not be
/// dereferenced.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same allocator.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `allocator` or `out_addr` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_alloc(
    allocator: *mut mp_allocator,
    size: u64,
    stream: u32,
    out_addr: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        if allocator.is_null() {
            return mp_result::NullParameter;
        }
        let out_addr = check_out!(out_addr);
        let alloc = |a: &mut AllocatorHandle| {
            let addr = a.inner.alloc(size, stream).map_err(|e| mp_result::from(&e))?;
            // SAFETY: `out_addr` is non-NULL and aligned (checked), and the caller guarantees
            // it is valid for one `uint64_t` write.
            unsafe { out_addr.write(addr) };
            Ok(())
        };
        // SAFETY: the caller guarantees `allocator` is NULL or live and not used concurrently.
        unsafe { mutate(allocator, alloc) }
    }
}

/// Returns the block at `addr` to the allocator, merging it with free neighbours at once.
///
/// The pages stay mapped (see `mp_allocator_trim`). Errors: `MP_RESULT_NULL_PARAMETER`,
/// `MP_RESULT_UNKNOWN_ADDRESS` (`addr` is not the address of a live block of this allocator:
/// never allocated, already deallocated, or inside a block; the allocator is unchanged),
/// `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `allocator`: NULL or a live allocator from `mp_allocator_new`.
///
/// # Ownership
/// Ends the caller's ownership of the block; its address may be handed out again.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same allocator.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `allocator` is NULL. Deallocating a block twice is
/// not undefined behaviour: the second call returns `MP_RESULT_UNKNOWN_ADDRESS` (unless the
/// address was handed out again in between).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_dealloc(
    allocator: *mut mp_allocator,
    addr: u64,
) -> mp_result {
    ffi_panic_boundary! {
        let dealloc = |a: &mut AllocatorHandle| a.inner.free(addr).map_err(|e| mp_result::from(&e));
        // SAFETY: the caller guarantees `allocator` is NULL or live and not used concurrently.
        unsafe { mutate(allocator, dealloc) }
    }
}

/// Unmaps the whole free pages at the end of the allocator's range and stores the number of
/// bytes released in `*out_released` (0 when the end of the range holds no whole free page).
/// Free pages in holes between live blocks stay mapped. Releasing is not counted as a
/// reservation. Errors: `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned
/// `out_released`), `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `allocator`: NULL or a live allocator from `mp_allocator_new`.
/// - `out_released`: non-NULL, aligned, valid for one `uint64_t` write. Written only on
///   success.
///
/// # Ownership
/// The caller keeps ownership of `out_released`; live blocks are untouched.
///
/// # Copies
/// Nothing is copied or consumed.
///
/// # Thread safety
/// Must not overlap any other call on the same allocator.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `allocator` or `out_released` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_trim(
    allocator: *mut mp_allocator,
    out_released: *mut u64,
) -> mp_result {
    ffi_panic_boundary! {
        if allocator.is_null() {
            return mp_result::NullParameter;
        }
        let out_released = check_out!(out_released);
        let trim = |a: &mut AllocatorHandle| {
            // The guided allocator's arena is one range that never shrinks: it releases 0.
            let released = a.inner.trim();
            // SAFETY: `out_released` is non-NULL and aligned (checked), and the caller
            // guarantees it is valid for one `uint64_t` write.
            unsafe { out_released.write(released) };
            Ok(())
        };
        // SAFETY: the caller guarantees `allocator` is NULL or live and not used concurrently.
        unsafe { mutate(allocator, trim) }
    }
}

/// Stores the allocator's counters in `*out_stats`: bytes requested and live, bytes mapped,
/// their peaks, mapped ranges and map calls (see `mp_alloc_stats`). Errors:
/// `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_stats`),
/// `MP_RESULT_POISONED`, `MP_RESULT_PANIC`.
///
/// # Safety
/// - `allocator`: NULL or a live allocator from `mp_allocator_new`.
/// - `out_stats`: non-NULL, aligned, valid for one `mp_alloc_stats` write. Written only on
///   success.
///
/// # Ownership
/// The caller owns `out_stats`; nothing is retained after the call.
///
/// # Copies
/// The counters are copied into `*out_stats`.
///
/// # Thread safety
/// May run concurrently with other `mp_allocator_stats` calls on the same allocator, but not
/// with a call that takes `mp_allocator *`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `allocator` or `out_stats` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_stats(
    allocator: *const mp_allocator,
    out_stats: *mut mp_alloc_stats,
) -> mp_result {
    ffi_panic_boundary! {
        let handle = try_ref_from_ptr!(allocator);
        let out_stats = check_out!(out_stats);
        if handle.poisoned {
            return mp_result::Poisoned;
        }
        let stats = mp_alloc_stats::from(handle.inner.stats());
        // SAFETY: `out_stats` is non-NULL and aligned (checked), and the caller guarantees it
        // is valid for one `mp_alloc_stats` write.
        unsafe { out_stats.write(stats) };
        mp_result::Ok
    }
}

/// Counters of a plan-guided allocator, as returned by `mp_allocator_guided_counters`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_guided_counters {
    /// Requests served from a slot of the plan.
    pub hits: u64,
    /// Requests not served from a slot.
    pub misses: u64,
    /// Misses placed where the plan left room.
    pub misses_in_room: u64,
    /// Times a miss grew the arena.
    pub growths: u64,
    /// Times the iteration was re-planned from the sizes seen.
    pub replans: u64,
    /// Laps of the planned iteration begun.
    pub laps: u64,
    /// Laps served by guided best fit because the lap before did not match the plan.
    pub guided_laps: u64,
}

/// Creates a plan-guided allocator serving the plan file in `plan[0..plan_len]` (written by
/// `memplan plan-trace`) and stores it in `*out_allocator`.
///
/// Requests are served in order from the plan's slots: first its prologue (warm-up, first
/// iteration, weights), then its iteration, lap after lap. Requests the plan did not foresee
/// are placed in the arena where the plan leaves room, else the arena grows (see
/// `memplan_core::allocator::guided`). Blocks are 512-aligned in one range starting at
/// 0x7f0000000000; `mp_allocator_alloc`, `mp_allocator_dealloc` and `mp_allocator_stats`
/// work as for `mp_allocator_new`'s allocators, `mp_allocator_trim` releases nothing (the
/// arena never shrinks). `options` as for `mp_allocator_new`: `capacity` bounds the arena
/// (a plan whose arena exceeds it fails its first allocation with `MP_RESULT_OUT_OF_MEMORY`),
/// `page_size` is the granule the arena grows in.
///
/// Errors: `MP_RESULT_NULL_PARAMETER` (NULL `out_allocator`, or NULL `plan` with a nonzero
/// `plan_len`), `MP_RESULT_INVALID_ARGUMENT` (misaligned pointers, bad options),
/// `MP_RESULT_INVALID_PLAN` (the bytes are not a valid plan file of this version: corrupt,
/// truncated, another version, or an invalid plan; nothing is created).
///
/// # Safety
/// - `plan`: valid for reading `plan_len` bytes (may be NULL when `plan_len` is 0).
/// - `options`: NULL, or aligned and valid for reading one `mp_allocator_options`.
/// - `out_allocator`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new allocator and must free it with `mp_allocator_free`, exactly once.
/// The caller keeps ownership of `plan` and `options`.
///
/// # Copies
/// The plan is decoded (copied) during the call; `plan` is not retained.
///
/// # Thread safety
/// As `mp_allocator_new`.
///
/// # NULL
/// See the errors above; a NULL `options` means defaults.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_new_guided(
    plan: *const u8,
    plan_len: usize,
    options: *const mp_allocator_options,
    out_allocator: *mut *mut mp_allocator,
) -> mp_result {
    ffi_panic_boundary! {
        let out_allocator = check_out!(out_allocator);
        // SAFETY: the caller guarantees `plan` is valid for reading `plan_len` bytes (or
        // `plan_len` is 0); `u8` has alignment 1 and every bit pattern is valid.
        let bytes = match unsafe { slice_from_raw(plan, plan_len) } {
            Ok(b) => b,
            Err(code) => return code,
        };
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; every bit
        // pattern of its plain integer fields is valid.
        let options = match unsafe { read_or_default(options) } {
            Ok(o) => o,
            Err(code) => return code,
        };
        let mut settings = match settings(&options) {
            Ok(s) => s,
            Err(code) => return code,
        };
        // Bad options are reported before a bad plan.
        if let Err(e) = check_page_layout(DEFAULT_BASE, settings.page_size) {
            return mp_result::from(&e);
        }
        let plan = match Plan::from_bytes(bytes) {
            Ok(p) => p,
            Err(e) => return mp_result::from(&e),
        };
        settings.plan = Some(plan);
        // A valid plan whose arena does not fit the address space above the base is
        // `MP_RESULT_INVALID_PLAN` too.
        // SAFETY: `out_allocator` is non-NULL and aligned (checked), and the caller guarantees
        // it is valid for one pointer write.
        unsafe { new_handle(AllocatorKind::Guided, &settings, out_allocator) }
    }
}

/// Stores a plan-guided allocator's hits, misses and re-plans in `*out_counters`. Errors:
/// `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned `out_counters`, or an
/// allocator from `mp_allocator_new`, which has no plan), `MP_RESULT_POISONED`,
/// `MP_RESULT_PANIC`.
///
/// # Safety
/// - `allocator`: NULL or a live allocator.
/// - `out_counters`: non-NULL, aligned, valid for one `mp_guided_counters` write. Written only
///   on success.
///
/// # Ownership
/// The caller owns `out_counters`; nothing is retained.
///
/// # Copies
/// The counters are copied into `*out_counters`.
///
/// # Thread safety
/// As `mp_allocator_stats`.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when `allocator` or `out_counters` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_allocator_guided_counters(
    allocator: *const mp_allocator,
    out_counters: *mut mp_guided_counters,
) -> mp_result {
    ffi_panic_boundary! {
        let handle = try_ref_from_ptr!(allocator);
        let out_counters = check_out!(out_counters);
        if handle.poisoned {
            return mp_result::Poisoned;
        }
        let Some(c) = handle.inner.guided_counters() else {
            return mp_result::InvalidArgument;
        };
        let counters = mp_guided_counters {
            hits: c.hits,
            misses: c.misses,
            misses_in_room: c.misses_in_room,
            growths: c.growths,
            replans: c.replans,
            laps: c.laps,
            guided_laps: c.guided_laps,
        };
        // SAFETY: `out_counters` is non-NULL and aligned (checked), and the caller guarantees
        // it is valid for one `mp_guided_counters` write.
        unsafe { out_counters.write(counters) };
        mp_result::Ok
    }
}
