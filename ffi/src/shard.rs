//! The `mp_shard_layout` handle: ZeRO sharding layouts of a flat parameter buffer, over
//! `memplan_core::shard`. A layout is immutable after creation, so it is never poisoned. Core
//! errors map as `impl From<&ShardError> for mp_result` in `error.rs` says.

use memplan_core::shard::{ShardLayout, ShardOptions};

use crate::error::mp_result;
use crate::ffi::{
    Castable, OwnershipBox, free_box, read_from_raw, slice_from_raw, to_boxed_mut_ptr,
};

#[cfg(test)]
mod tests;

/// A ZeRO sharding layout of a flat buffer of parameters: equal shards, one per rank of a
/// sharding group, replicated across groups. Create with `mp_shard_layout_new`, destroy with
/// `mp_shard_layout_free`.
pub struct mp_shard_layout {
    _private: [u8; 0],
}

impl Castable for mp_shard_layout {
    type Ownership = OwnershipBox;
    type RustType = ShardLayout;
}

/// Options for `mp_shard_layout_new`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_shard_options {
    /// Number of ranks (at least 1).
    pub world: u32,
    /// Ranks per sharding group (at least 1, divides `world`; `world` for plain ZeRO).
    pub group: u32,
    /// Every parameter starts at a multiple of this many elements (at least 1).
    pub param_align: u64,
    /// Every shard holds a multiple of this many elements (at least 1).
    pub shard_align: u64,
}

/// Sizes of a sharding layout, from `mp_shard_layout_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_shard_info {
    /// Elements per shard (equal for every shard).
    pub shard_numel: u64,
    /// End of the last parameter in the flat buffer, in elements.
    pub flat_numel: u64,
    /// The padded flat buffer: `shard_numel × group` elements.
    pub padded_numel: u64,
    /// Number of parameters.
    pub params: u64,
}

/// A piece of a parameter and the shard holding it, from `mp_shard_layout_owners`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_shard_piece {
    /// The shard (held by ranks `shard`, `shard + group`, `shard + 2·group`, ...).
    pub shard: u32,
    /// First byte of the piece, relative to the parameter's start.
    pub param_begin: u64,
    /// One past its last byte, relative to the parameter's start.
    pub param_end: u64,
    /// Where it starts inside the shard, in bytes.
    pub shard_offset: u64,
}

/// Lays out `len` parameters of `numels[i]` elements (in order) into a flat buffer and splits
/// it into equal shards (see `mp_shard_options`).
///
/// Errors: `MP_RESULT_NULL_PARAMETER`, `MP_RESULT_INVALID_ARGUMENT` (misaligned pointers,
/// world 0, a group that does not divide the world, a zero alignment),
/// `MP_RESULT_OVERFLOW`.
///
/// # Safety
/// - `numels`: valid for reading `len` aligned `uint64_t` (may be NULL when `len` is 0).
/// - `options`: non-NULL, aligned, valid for reading one `mp_shard_options`.
/// - `out_layout`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new layout and must free it with `mp_shard_layout_free`, exactly once.
///
/// # Copies
/// `numels` and `options` are copied; nothing is retained.
///
/// # Thread safety
/// Safe from any thread. A layout is immutable: any number of threads may query it at once.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` for a NULL `options` or `out_layout`, or a NULL
/// `numels` with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_shard_layout_new(
    numels: *const u64,
    len: usize,
    options: *const mp_shard_options,
    out_layout: *mut *mut mp_shard_layout,
) -> mp_result {
    ffi_panic_boundary! {
        let out_layout = check_out!(out_layout);
        // SAFETY: the caller guarantees `numels` is valid for `len` reads (or `len` is 0).
        let numels = match unsafe { slice_from_raw(numels, len) } {
            Ok(s) => s,
            Err(code) => return code,
        };
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; plain ints.
        let o = match unsafe { read_from_raw(options) } {
            Ok(o) => o,
            Err(code) => return code,
        };
        let options = ShardOptions {
            world: o.world,
            group: o.group,
            param_align: o.param_align,
            shard_align: o.shard_align,
        };
        match ShardLayout::new(numels, options) {
            Ok(layout) => {
                let ptr = to_boxed_mut_ptr::<mp_shard_layout>(layout);
                // SAFETY: `out_layout` is non-NULL and aligned (checked) and valid for a write.
                unsafe { out_layout.write(ptr) };
                mp_result::Ok
            }
            Err(e) => mp_result::from(&e),
        }
    }
}

/// Frees a layout from `mp_shard_layout_new`. NULL is a no-op.
///
/// # Safety
/// - `layout`: NULL, or a live layout from `mp_shard_layout_new` not used by another thread.
///
/// # Ownership
/// Consumes the layout; the pointer must not be used again (no double free).
///
/// # Copies
/// None.
///
/// # Thread safety
/// Must not overlap any other call on the same layout.
///
/// # NULL
/// A NULL `layout` is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_shard_layout_free(layout: *mut mp_shard_layout) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `layout` is NULL or live, unused elsewhere, and not
        // used again.
        unsafe { free_box(layout) }
    }
}

/// Writes the layout's sizes to `*out`.
///
/// # Safety
/// - `layout`: a live layout from `mp_shard_layout_new`.
/// - `out`: non-NULL, aligned, valid for one `mp_shard_info` write. Written only on success.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// The sizes are copied into `*out`.
///
/// # Thread safety
/// Safe to call concurrently on one layout.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when either pointer is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_shard_layout_info(
    layout: *const mp_shard_layout,
    out: *mut mp_shard_info,
) -> mp_result {
    ffi_panic_boundary! {
        let layout = try_ref_from_ptr!(layout);
        let out = check_out!(out);
        let info = mp_shard_info {
            shard_numel: layout.shard_numel(),
            flat_numel: layout.flat_numel(),
            padded_numel: layout.padded_numel(),
            params: layout.len() as u64,
        };
        // SAFETY: `out` is non-NULL and aligned (checked) and valid for one write.
        unsafe { out.write(info) };
        mp_result::Ok
    }
}

/// The shard that rank `rank` holds, in `*out_shard`.
///
/// Errors: `MP_RESULT_INDEX_OUT_OF_RANGE` when `rank` is not below the world size.
///
/// # Safety
/// - `layout`: a live layout from `mp_shard_layout_new`.
/// - `out_shard`: non-NULL, aligned, valid for one `uint32_t` write. Written only on success.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// None.
///
/// # Thread safety
/// Safe to call concurrently on one layout.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when either pointer is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_shard_layout_shard_of(
    layout: *const mp_shard_layout,
    rank: u32,
    out_shard: *mut u32,
) -> mp_result {
    ffi_panic_boundary! {
        let layout = try_ref_from_ptr!(layout);
        let out_shard = check_out!(out_shard);
        match layout.shard_of(rank) {
            Ok(s) => {
                // SAFETY: non-NULL and aligned (checked), valid for one write (caller).
                unsafe { out_shard.write(s) };
                mp_result::Ok
            }
            Err(e) => mp_result::from(&e),
        }
    }
}

/// The pieces of parameter `param` and the shards that own them, for a buffer of
/// `elem_bytes` bytes per element, in parameter order.
///
/// `*out_n` receives the number of pieces. They are written to `out` only when `cap` is at
/// least that number; call with `out = NULL, cap = 0` to size the array (then only `*out_n`
/// is written). Errors: `MP_RESULT_INDEX_OUT_OF_RANGE` (no such parameter),
/// `MP_RESULT_INVALID_ARGUMENT` (`0 < cap <` the number of pieces, or misaligned pointers),
/// `MP_RESULT_OVERFLOW`.
///
/// # Safety
/// - `layout`: a live layout from `mp_shard_layout_new`.
/// - `out`: NULL when `cap` is 0, else valid for writing `cap` aligned `mp_shard_piece`.
/// - `out_n`: non-NULL, aligned, valid for one `size_t` write.
///
/// # Ownership
/// The caller owns `out` and `out_n`.
///
/// # Copies
/// The pieces are copied into `out`.
///
/// # Thread safety
/// Safe to call concurrently on one layout.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` for a NULL `layout` or `out_n`, or a NULL `out` with
/// `cap > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_shard_layout_owners(
    layout: *const mp_shard_layout,
    param: usize,
    elem_bytes: u64,
    out: *mut mp_shard_piece,
    cap: usize,
    out_n: *mut usize,
) -> mp_result {
    ffi_panic_boundary! {
        let layout = try_ref_from_ptr!(layout);
        let out_n = check_out!(out_n);
        if cap > 0 && out.is_null() {
            return mp_result::NullParameter;
        }
        if cap > 0 && !out.is_aligned() {
            return mp_result::InvalidArgument;
        }
        let pieces = match layout.owners(param, elem_bytes) {
            Ok(p) => p,
            Err(e) => return mp_result::from(&e),
        };
        if cap > 0 && cap < pieces.len() {
            return mp_result::InvalidArgument;
        }
        if cap > 0 {
            for (i, p) in pieces.iter().enumerate() {
                let piece = mp_shard_piece {
                    shard: p.shard,
                    param_begin: p.param_bytes.start,
                    param_end: p.param_bytes.end,
                    shard_offset: p.shard_offset,
                };
                // SAFETY: `out` is non-NULL and aligned (checked) and valid for `cap` writes
                // (caller); `i < pieces.len() <= cap`.
                unsafe { out.add(i).write(piece) };
            }
        }
        // SAFETY: non-NULL and aligned (checked), valid for one write (caller).
        unsafe { out_n.write(pieces.len()) };
        mp_result::Ok
    }
}
