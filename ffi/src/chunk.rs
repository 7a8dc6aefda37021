//! The `mp_chunk_placement` handle: a chunk layout of a model and its placement over GPU,
//! host and NVMe, made by core's training recipe (`memplan_core::chunk::place_training`, the
//! one `memplan chunks` runs). A placement is immutable after creation, so it is never
//! poisoned. Core errors map as `impl From<&ChunkError> for mp_result` in `error.rs` says.

use memplan_core::chunk::{
    PlacementOptions, Policy, Tensor, TrainingOptions, TrainingPlacement, place_training,
};

use crate::error::mp_result;
use crate::ffi::{
    Castable, OwnershipBox, free_box, read_from_raw, slice_from_raw, to_boxed_mut_ptr,
};

#[cfg(test)]
mod tests;

/// Tier index of `mp_chunk_move` and `mp_chunk_summary::bytes`: GPU memory.
pub const MP_TIER_DEVICE: u32 = 0;
/// Tier index: host memory.
pub const MP_TIER_HOST: u32 = 1;
/// Tier index: NVMe.
pub const MP_TIER_NVME: u32 = 2;
/// `policy` of `mp_chunk_options`: evict the chunk whose next use is furthest (Belady).
pub const MP_POLICY_BELADY: u32 = 0;
/// `policy`: evict the least recently used chunk.
pub const MP_POLICY_LRU: u32 = 1;

/// A model tensor for `mp_chunk_placement_new`: its element count, element size and the moments
/// of its first (forward) and last (backward) use.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_chunk_tensor {
    /// Elements (at least 1).
    pub numel: u64,
    /// Bytes per element (at least 1; equal for all tensors).
    pub dtype_bytes: u64,
    /// Moment of the first use.
    pub first_use: u64,
    /// Moment of the last use (`>= first_use`).
    pub last_use: u64,
}

/// Options for `mp_chunk_placement_new`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_chunk_options {
    /// Chunk capacity in elements; 0: the least-waste size between the largest tensor and
    /// twice it.
    pub chunk_numel: u64,
    /// GPU bytes for chunks plus non-model data.
    pub gpu_bytes: u64,
    /// Host bytes for chunks.
    pub host_bytes: u64,
    /// NVMe bytes for chunks (0: no NVMe).
    pub nvme_bytes: u64,
    /// GPU bytes taken by non-model data at every moment.
    pub non_model_bytes: u64,
    /// `MP_POLICY_BELADY` or `MP_POLICY_LRU`.
    pub policy: u32,
    /// Nonzero: prefetch the next moment's chunks.
    pub prefetch: u32,
    /// Training iterations to plan (at least 1).
    pub iterations: u32,
}

/// A summary of a chunk plan, from `mp_chunk_placement_summary`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_chunk_summary {
    /// Chunk capacity in elements.
    pub chunk_numel: u64,
    /// Chunk positions; chunk ids run from 0 to `4 × positions − 1`.
    pub positions: u64,
    /// Moments in the planned schedule.
    pub moments: u64,
    /// Number of moves (`mp_chunk_placement_move` indices run below it).
    pub moves: u64,
    /// Bytes moved, `bytes[from][to]` by `MP_TIER_*` index.
    pub bytes: [[u64; 3]; 3],
    /// Bytes fetched to the GPU.
    pub fetched: u64,
    /// Of those, bytes fetched before the moment that needs them.
    pub prefetched: u64,
}

/// One move of a plan, from `mp_chunk_placement_move`. An executor applies moves in index order;
/// the moves of moment m all happen before moment m computes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_chunk_move {
    /// Chunk id: `position × 4 + kind` (kind 0 fp16 params, 1 fp32 params, 2 momentum,
    /// 3 variance).
    pub chunk: u32,
    /// `MP_TIER_*` it leaves.
    pub from: u32,
    /// `MP_TIER_*` it goes to.
    pub to: u32,
    /// Nonzero for a prefetch.
    pub prefetch: u32,
    /// The schedule moment before which it happens.
    pub moment: u64,
    /// Bytes moved.
    pub bytes: u64,
}

/// A chunk layout of a model and its placement plan over GPU, host and NVMe. Create with
/// `mp_chunk_placement_new`, destroy with `mp_chunk_placement_free`.
pub struct mp_chunk_placement {
    _private: [u8; 0],
}

impl Castable for mp_chunk_placement {
    type Ownership = OwnershipBox;
    /// Core's training recipe's result.
    type RustType = TrainingPlacement;
}

/// Converts the C arguments and runs core's training recipe (`chunk::place_training`, the one
/// `memplan chunks` runs).
fn build_plan(
    tensors: &[mp_chunk_tensor],
    o: &mp_chunk_options,
) -> Result<TrainingPlacement, mp_result> {
    let policy = match o.policy {
        MP_POLICY_BELADY => Policy::Belady,
        MP_POLICY_LRU => Policy::Lru,
        _ => return Err(mp_result::InvalidArgument),
    };
    let tensors: Vec<Tensor> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| Tensor {
            name: format!("tensor {i}"),
            numel: t.numel,
            dtype_bytes: t.dtype_bytes,
            first_use: t.first_use,
            last_use: t.last_use,
        })
        .collect();
    let options = TrainingOptions {
        chunk_numel: (o.chunk_numel != 0).then_some(o.chunk_numel),
        non_model: o.non_model_bytes,
        iterations: u64::from(o.iterations),
        placement: PlacementOptions {
            device: o.gpu_bytes,
            host: o.host_bytes,
            nvme: o.nvme_bytes,
            policy,
            prefetch: o.prefetch != 0,
        },
    };
    place_training(&tensors, &options).map_err(|e| mp_result::from(&e))
}

/// Lays `len` tensors out in chunks (in order of first use) and plans their placement for
/// `options->iterations` training iterations (forward and backward moments from the tensors'
/// uses, then one optimizer moment per chunk position needing its four chunks).
///
/// Errors: `MP_RESULT_NULL_PARAMETER`; `MP_RESULT_ZERO_SIZE` (a tensor of 0 elements);
/// `MP_RESULT_INVALID_ARGUMENT` (misaligned pointers, no tensors, an unknown policy, 0
/// iterations, a tensor larger than `chunk_numel`, mixed or zero element sizes, last use
/// before first use); `MP_RESULT_CAPACITY_EXCEEDED` (a moment's chunks do not fit on the GPU,
/// or host + NVMe cannot hold all chunks); `MP_RESULT_OVERFLOW`. `memplan chunks` prints the
/// same errors with the amounts.
///
/// # Safety
/// - `tensors`: valid for reading `len` aligned `mp_chunk_tensor` (NULL only when `len` is 0).
/// - `options`: non-NULL, aligned, valid for reading one `mp_chunk_options`.
/// - `out_plan`: non-NULL, aligned, valid for one pointer write. Written only on success.
///
/// # Ownership
/// The caller owns the new plan and must free it with `mp_chunk_placement_free`, exactly once.
///
/// # Copies
/// `tensors` and `options` are copied; nothing is retained.
///
/// # Thread safety
/// Safe from any thread. A plan is immutable: any number of threads may query it at once.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` for a NULL `options` or `out_plan`, or a NULL `tensors`
/// with `len > 0`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_chunk_placement_new(
    tensors: *const mp_chunk_tensor,
    len: usize,
    options: *const mp_chunk_options,
    out_plan: *mut *mut mp_chunk_placement,
) -> mp_result {
    ffi_panic_boundary! {
        let out_plan = check_out!(out_plan);
        // SAFETY: the caller guarantees `tensors` is valid for `len` reads (or `len` is 0).
        let tensors = match unsafe { slice_from_raw(tensors, len) } {
            Ok(s) => s,
            Err(code) => return code,
        };
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; plain ints.
        let options = match unsafe { read_from_raw(options) } {
            Ok(o) => o,
            Err(code) => return code,
        };
        match build_plan(tensors, &options) {
            Ok(plan) => {
                let ptr = to_boxed_mut_ptr::<mp_chunk_placement>(plan);
                // SAFETY: `out_plan` is non-NULL and aligned (checked) and valid for a write.
                unsafe { out_plan.write(ptr) };
                mp_result::Ok
            }
            Err(code) => code,
        }
    }
}

/// Frees a plan from `mp_chunk_placement_new`. NULL is a no-op.
///
/// # Safety
/// - `plan`: NULL, or a live plan from `mp_chunk_placement_new` not used by another thread.
///
/// # Ownership
/// Consumes the plan; the pointer must not be used again (no double free).
///
/// # Copies
/// None.
///
/// # Thread safety
/// Must not overlap any other call on the same plan.
///
/// # NULL
/// A NULL `plan` is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_chunk_placement_free(plan: *mut mp_chunk_placement) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `plan` is NULL or live, unused elsewhere, and not used
        // again.
        unsafe { free_box(plan) }
    }
}

/// Writes the plan's summary (chunk size, counts, bytes per tier pair, prefetch bytes).
///
/// # Safety
/// - `plan`: a live plan from `mp_chunk_placement_new`.
/// - `out`: non-NULL, aligned, valid for one `mp_chunk_summary` write. Written only on
///   success.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// The summary is copied into `*out`.
///
/// # Thread safety
/// Safe to call concurrently on one plan.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when either pointer is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_chunk_placement_summary(
    plan: *const mp_chunk_placement,
    out: *mut mp_chunk_summary,
) -> mp_result {
    ffi_panic_boundary! {
        let p = try_ref_from_ptr!(plan);
        let out = check_out!(out);
        let placement = p.placement();
        let summary = mp_chunk_summary {
            chunk_numel: p.layout().chunk_numel(),
            positions: u64::from(p.layout().positions()),
            moments: p.moments(),
            moves: placement.moves.len() as u64,
            bytes: placement.bytes,
            fetched: placement.fetched,
            prefetched: placement.prefetched,
        };
        // SAFETY: `out` is non-NULL and aligned (checked) and valid for one write.
        unsafe { out.write(summary) };
        mp_result::Ok
    }
}

/// Writes move `index` of the plan to `*out`.
///
/// Errors: `MP_RESULT_INDEX_OUT_OF_RANGE` when `index` is not below the summary's `moves`.
///
/// # Safety
/// - `plan`: a live plan from `mp_chunk_placement_new`.
/// - `out`: non-NULL, aligned, valid for one `mp_chunk_move` write. Written only on success.
///
/// # Ownership
/// Nothing changes owner.
///
/// # Copies
/// The move is copied into `*out`.
///
/// # Thread safety
/// Safe to call concurrently on one plan.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when either pointer is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_chunk_placement_move(
    plan: *const mp_chunk_placement,
    index: usize,
    out: *mut mp_chunk_move,
) -> mp_result {
    ffi_panic_boundary! {
        let p = try_ref_from_ptr!(plan);
        let out = check_out!(out);
        let Some(m) = p.placement().moves.get(index) else {
            return mp_result::IndexOutOfRange;
        };
        let value = mp_chunk_move {
            chunk: m.chunk.0,
            from: m.from as u32,
            to: m.to as u32,
            prefetch: u32::from(m.prefetch),
            moment: u64::from(m.moment),
            bytes: m.bytes,
        };
        // SAFETY: `out` is non-NULL and aligned (checked) and valid for one write.
        unsafe { out.write(value) };
        mp_result::Ok
    }
}
