//! Model-state planning behind the C API: the memory estimator (`mp_estimate_memory`, plain
//! structs), ZeRO sharding layouts (`mp_shard_layout` handle) and chunk placement plans
//! (`mp_chunk_plan` handle), over `memplan_core::{estimate, shard, chunk}`.
//!
//! Core errors map onto existing codes: inconsistent inputs (zero counts, group sizes that do
//! not divide the world, heads not divisible by tp, offload needing a higher ZeRO stage, a
//! tensor larger than a chunk, mixed dtypes, last use before first use) are
//! `MP_RESULT_INVALID_ARGUMENT`; a zero-element tensor is `MP_RESULT_ZERO_SIZE`; a working set
//! that does not fit on the device, or chunks that do not fit on host + NVMe, is
//! `MP_RESULT_CAPACITY_EXCEEDED`; sizes past 64 bits are `MP_RESULT_OVERFLOW`. The handles are
//! immutable after creation, so they are never poisoned.

use alloc_helpers::*;
use memplan_core::chunk::{
    ChunkError, PlacementOptions, Policy, Tensor, TrainingOptions, TrainingPlacement,
    place_training,
};
use memplan_core::estimate::{self, EstimateError, EstimateInput, Offload, Recompute, StateBytes};
use memplan_core::shard::{ShardError, ShardLayout, ShardOptions, ZeroStage};

use crate::error::mp_result;
use crate::ffi::{Castable, OwnershipBox, free_box, to_boxed_mut_ptr};

#[cfg(test)]
mod tests;

mod alloc_helpers {
    use crate::error::mp_result;

    /// The slice behind `(ptr, len)`; an empty slice for `len == 0` (any `ptr`).
    ///
    /// # Safety
    /// 1. When `len > 0`, `ptr` is NULL or valid for reads of `len` elements, aligned, not
    ///    written during `'a`.
    pub(super) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], mp_result> {
        if len == 0 {
            return Ok(&[]);
        }
        if ptr.is_null() {
            return Err(mp_result::NullParameter);
        }
        if !ptr.is_aligned() || len > isize::MAX as usize / size_of::<T>().max(1) {
            return Err(mp_result::InvalidArgument);
        }
        // SAFETY: non-NULL, aligned, `len` elements within `isize::MAX` bytes (checked); by (1)
        // valid for reads and not written during `'a`.
        Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
    }

    /// Reads `*ptr` after checking it is non-NULL and aligned.
    ///
    /// # Safety
    /// 1. `ptr` is NULL or valid for one read of `T`, and every bit pattern is a valid `T`.
    pub(super) unsafe fn read<T: Copy>(ptr: *const T) -> Result<T, mp_result> {
        if ptr.is_null() {
            return Err(mp_result::NullParameter);
        }
        if !ptr.is_aligned() {
            return Err(mp_result::InvalidArgument);
        }
        // SAFETY: non-NULL and aligned (checked); by (1) valid for one read of a valid `T`.
        Ok(unsafe { ptr.read() })
    }
}

// ---------------------------------------------------------------------------------------
// Estimator

/// `offload` of `mp_estimate_input`: everything on the GPU.
pub const MP_OFFLOAD_NONE: u32 = 0;
/// `offload`: optimizer state and fp32 gradients on the host (ZeRO stage 1 or more).
pub const MP_OFFLOAD_CPU_OPTIMIZER: u32 = 1;
/// `offload`: optimizer state, fp32 gradients and parameters on the host (ZeRO stage 3).
pub const MP_OFFLOAD_CPU: u32 = 2;
/// `offload`: optimizer state and parameters on NVMe, fp32 gradients on the host (stage 3).
pub const MP_OFFLOAD_NVME: u32 = 3;
/// `recompute` of `mp_estimate_input`: keep all activations.
pub const MP_RECOMPUTE_NONE: u32 = 0;
/// `recompute`: selective recomputation (attention core).
pub const MP_RECOMPUTE_SELECTIVE: u32 = 1;
/// `recompute`: full recomputation (keep each layer's input).
pub const MP_RECOMPUTE_FULL: u32 = 2;

/// A training setup for `mp_estimate_memory`. Counts must be at least 1 (except `params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_estimate_input {
    /// Parameters of the whole model.
    pub params: u64,
    /// Transformer layers.
    pub layers: u64,
    /// Hidden size.
    pub hidden: u64,
    /// Attention heads (divisible by `tp`).
    pub heads: u64,
    /// Sequence length.
    pub seq: u64,
    /// Micro-batch size.
    pub micro_batch: u64,
    /// Data-parallel degree.
    pub dp: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Pipeline-parallel degree.
    pub pp: u64,
    /// Parameters of the largest layer; 0 means 12·hidden².
    pub largest_layer: u64,
    /// GPUs per host.
    pub gpus_per_host: u64,
    /// ZeRO stage, 0 to 3.
    pub zero: u32,
    /// One of the `MP_OFFLOAD_*` values.
    pub offload: u32,
    /// One of the `MP_RECOMPUTE_*` values.
    pub recompute: u32,
    /// Nonzero: sequence parallelism alongside tensor parallelism.
    pub sequence_parallel: u32,
}

/// Bytes of each state kind in one place.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_state_bytes {
    /// fp16 parameters.
    pub params: u64,
    /// Gradients.
    pub grads: u64,
    /// Optimizer state (fp32 parameters, momentum, variance).
    pub optimizer: u64,
    /// Activations.
    pub activations: u64,
    /// The sum of the four (saturating).
    pub total: u64,
}

impl From<StateBytes> for mp_state_bytes {
    fn from(s: StateBytes) -> Self {
        mp_state_bytes {
            params: s.params,
            grads: s.grads,
            optimizer: s.optimizer,
            activations: s.activations,
            total: s.total(),
        }
    }
}

/// The result of `mp_estimate_memory`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_estimate {
    /// Per GPU.
    pub gpu: mp_state_bytes,
    /// Per host.
    pub host: mp_state_bytes,
    /// Per host, on NVMe.
    pub nvme: mp_state_bytes,
    /// Parameters per GPU before ZeRO partitioning (params / (tp·pp), rounded up).
    pub params_per_gpu: u64,
}

fn estimate_code(e: &EstimateError) -> mp_result {
    match e {
        EstimateError::Overflow { .. } => mp_result::Overflow,
        _ => mp_result::InvalidArgument,
    }
}

fn estimate_input(i: &mp_estimate_input) -> Result<EstimateInput, mp_result> {
    let bad = mp_result::InvalidArgument;
    Ok(EstimateInput {
        params: i.params,
        layers: i.layers,
        hidden: i.hidden,
        heads: i.heads,
        seq: i.seq,
        micro_batch: i.micro_batch,
        dp: i.dp,
        tp: i.tp,
        pp: i.pp,
        zero: ZeroStage::from_number(i.zero).ok_or(bad)?,
        offload: match i.offload {
            MP_OFFLOAD_NONE => Offload::None,
            MP_OFFLOAD_CPU_OPTIMIZER => Offload::CpuOptimizer,
            MP_OFFLOAD_CPU => Offload::Cpu,
            MP_OFFLOAD_NVME => Offload::Nvme,
            _ => return Err(bad),
        },
        recompute: match i.recompute {
            MP_RECOMPUTE_NONE => Recompute::None,
            MP_RECOMPUTE_SELECTIVE => Recompute::Selective,
            MP_RECOMPUTE_FULL => Recompute::Full,
            _ => return Err(bad),
        },
        sequence_parallel: i.sequence_parallel != 0,
        gpus_per_host: i.gpus_per_host,
        largest_layer: (i.largest_layer != 0).then_some(i.largest_layer),
    })
}

/// Estimates memory per GPU, per host and on NVMe for training a transformer (ZeRO-paper
/// accounting of model states with DeepSpeed's offload split; activations per Korthikanti et
/// al.; see `memplan_core::estimate`).
///
/// Errors: `MP_RESULT_NULL_PARAMETER` (NULL pointer), `MP_RESULT_INVALID_ARGUMENT` (misaligned
/// pointer, a zero count, heads not divisible by tp, an unknown `zero`/`offload`/`recompute`
/// value, parameter offload below stage 3 or optimizer offload at stage 0),
/// `MP_RESULT_OVERFLOW`.
///
/// # Safety
/// - `input`: non-NULL, aligned, valid for reading one `mp_estimate_input`.
/// - `out`: non-NULL, aligned, valid for writing one `mp_estimate`. Written only on success.
///
/// # Ownership
/// The caller keeps ownership of both; nothing is retained.
///
/// # Copies
/// `input` is read during the call.
///
/// # Thread safety
/// Safe to call from any thread.
///
/// # NULL
/// Returns `MP_RESULT_NULL_PARAMETER` when either pointer is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mp_estimate_memory(
    input: *const mp_estimate_input,
    out: *mut mp_estimate,
) -> mp_result {
    ffi_panic_boundary! {
        let out = check_out!(out);
        // SAFETY: the caller guarantees `input` is NULL or valid for one read; its fields are
        // plain integers.
        let input = match unsafe { read(input) } {
            Ok(i) => i,
            Err(code) => return code,
        };
        let input = match estimate_input(&input) {
            Ok(i) => i,
            Err(code) => return code,
        };
        match estimate::estimate(&input) {
            Ok(e) => {
                let value = mp_estimate {
                    gpu: e.gpu.into(),
                    host: e.host.into(),
                    nvme: e.nvme.into(),
                    params_per_gpu: e.params_per_gpu,
                };
                // SAFETY: `out` is non-NULL and aligned (checked), and the caller guarantees
                // it is valid for one write.
                unsafe { out.write(value) };
                mp_result::Ok
            }
            Err(e) => estimate_code(&e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sharding

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

fn shard_code(e: &ShardError) -> mp_result {
    match e {
        ShardError::Overflow => mp_result::Overflow,
        ShardError::NoSuchParam { .. } | ShardError::NoSuchRank { .. } => {
            mp_result::IndexOutOfRange
        }
        _ => mp_result::InvalidArgument,
    }
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
        let numels = match unsafe { slice(numels, len) } {
            Ok(s) => s,
            Err(code) => return code,
        };
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; plain ints.
        let o = match unsafe { read(options) } {
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
            Err(e) => shard_code(&e),
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
            Err(e) => shard_code(&e),
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
            Err(e) => return shard_code(&e),
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

// ---------------------------------------------------------------------------------------
// Chunk placement

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

/// A model tensor for `mp_chunk_plan_new`: its element count, element size and the moments
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

/// Options for `mp_chunk_plan_new`.
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

/// A summary of a chunk plan, from `mp_chunk_plan_summary`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct mp_chunk_summary {
    /// Chunk capacity in elements.
    pub chunk_numel: u64,
    /// Chunk positions; chunk ids run from 0 to `4 × positions − 1`.
    pub positions: u64,
    /// Moments in the planned schedule.
    pub moments: u64,
    /// Number of moves (`mp_chunk_plan_move` indices run below it).
    pub moves: u64,
    /// Bytes moved, `bytes[from][to]` by `MP_TIER_*` index.
    pub bytes: [[u64; 3]; 3],
    /// Bytes fetched to the GPU.
    pub fetched: u64,
    /// Of those, bytes fetched before the moment that needs them.
    pub prefetched: u64,
}

/// One move of a plan, from `mp_chunk_plan_move`. An executor applies moves in index order;
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
/// `mp_chunk_plan_new`, destroy with `mp_chunk_plan_free`.
pub struct mp_chunk_plan {
    _private: [u8; 0],
}

impl Castable for mp_chunk_plan {
    type Ownership = OwnershipBox;
    /// Core's training recipe's result.
    type RustType = TrainingPlacement;
}

fn chunk_code(e: &ChunkError) -> mp_result {
    match e {
        ChunkError::ZeroNumel { .. } => mp_result::ZeroSize,
        ChunkError::Overflow { .. } => mp_result::Overflow,
        ChunkError::WorkingSetTooLarge { .. } | ChunkError::OffDeviceTooSmall { .. } => {
            mp_result::CapacityExceeded
        }
        _ => mp_result::InvalidArgument,
    }
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
    place_training(&tensors, &options).map_err(|e| chunk_code(&e))
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
/// The caller owns the new plan and must free it with `mp_chunk_plan_free`, exactly once.
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
pub unsafe extern "C" fn mp_chunk_plan_new(
    tensors: *const mp_chunk_tensor,
    len: usize,
    options: *const mp_chunk_options,
    out_plan: *mut *mut mp_chunk_plan,
) -> mp_result {
    ffi_panic_boundary! {
        let out_plan = check_out!(out_plan);
        // SAFETY: the caller guarantees `tensors` is valid for `len` reads (or `len` is 0).
        let tensors = match unsafe { slice(tensors, len) } {
            Ok(s) => s,
            Err(code) => return code,
        };
        // SAFETY: the caller guarantees `options` is NULL or valid for one read; plain ints.
        let options = match unsafe { read(options) } {
            Ok(o) => o,
            Err(code) => return code,
        };
        match build_plan(tensors, &options) {
            Ok(plan) => {
                let ptr = to_boxed_mut_ptr::<mp_chunk_plan>(plan);
                // SAFETY: `out_plan` is non-NULL and aligned (checked) and valid for a write.
                unsafe { out_plan.write(ptr) };
                mp_result::Ok
            }
            Err(code) => code,
        }
    }
}

/// Frees a plan from `mp_chunk_plan_new`. NULL is a no-op.
///
/// # Safety
/// - `plan`: NULL, or a live plan from `mp_chunk_plan_new` not used by another thread.
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
pub unsafe extern "C" fn mp_chunk_plan_free(plan: *mut mp_chunk_plan) {
    ffi_panic_boundary! {
        // SAFETY: the caller guarantees `plan` is NULL or live, unused elsewhere, and not used
        // again.
        unsafe { free_box(plan) }
    }
}

/// Writes the plan's summary (chunk size, counts, bytes per tier pair, prefetch bytes).
///
/// # Safety
/// - `plan`: a live plan from `mp_chunk_plan_new`.
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
pub unsafe extern "C" fn mp_chunk_plan_summary(
    plan: *const mp_chunk_plan,
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
/// - `plan`: a live plan from `mp_chunk_plan_new`.
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
pub unsafe extern "C" fn mp_chunk_plan_move(
    plan: *const mp_chunk_plan,
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
