#![doc = include_str!("../README.md")]
// C names (`mp_packer`, `mp_result`, ...) are the API; Rust naming rules do not apply to them.
#![allow(non_camel_case_types)]
// Every exported function is `pub unsafe extern "C" fn` (doc/DESIGN.md, "Exported function
// signatures"), so each needs a `# Safety` section; keep that an error, not a warning.
// `clippy::not_unsafe_ptr_arg_deref` (deny by default) rejects the other style: a safe `pub fn`
// that dereferences a pointer argument.
#![deny(clippy::missing_safety_doc, clippy::undocumented_unsafe_blocks)]

// Macro modules first: `macro_rules!` are visible only after their definition.
#[macro_use]
mod panic;
#[macro_use]
mod ffi;

mod allocator;
mod error;
mod estimate;
mod shard;
// After `estimate` and `shard`: the header lists the C API in module order.
mod chunk;
mod packer;
mod remat;
mod torch;
mod version;

// The `capi` fuzz check (feature `fuzzing`), shared by the fuzz target and `cargo test`.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use allocator::{
    MP_ALLOCATOR_CAPACITY, MP_ALLOCATOR_MAX_PAGE_SIZE, MP_ALLOCATOR_PAGE_SIZE, mp_alloc_stats,
    mp_allocator, mp_allocator_alloc, mp_allocator_dealloc, mp_allocator_free,
    mp_allocator_guided_counters, mp_allocator_new, mp_allocator_new_guided, mp_allocator_options,
    mp_allocator_stats, mp_allocator_trim, mp_guided_counters,
};
pub use chunk::{
    MP_POLICY_BELADY, MP_POLICY_LRU, MP_TIER_DEVICE, MP_TIER_HOST, MP_TIER_NVME, mp_chunk_move,
    mp_chunk_options, mp_chunk_placement, mp_chunk_placement_free, mp_chunk_placement_move,
    mp_chunk_placement_new, mp_chunk_placement_summary, mp_chunk_summary, mp_chunk_tensor,
};
pub use error::{mp_result, mp_result_message};
pub use estimate::{
    MP_OFFLOAD_CPU, MP_OFFLOAD_CPU_OPTIMIZER, MP_OFFLOAD_NONE, MP_OFFLOAD_NVME, MP_RECOMPUTE_FULL,
    MP_RECOMPUTE_NONE, MP_RECOMPUTE_SELECTIVE, mp_estimate, mp_estimate_input, mp_estimate_memory,
    mp_state_bytes,
};
pub use packer::{
    MP_PACK_CAPACITY, MP_PACK_MAX_NODES, MP_PACK_TIME_LIMIT, mp_pack_options, mp_packer,
    mp_packer_add_buffer, mp_packer_best_peak, mp_packer_free, mp_packer_is_optimal,
    mp_packer_is_proven_infeasible, mp_packer_last_error, mp_packer_len, mp_packer_max_load,
    mp_packer_new, mp_packer_nodes, mp_packer_offset, mp_packer_pack, mp_packer_peak,
};
pub use remat::{
    MP_REMAT_COMPUTE, MP_REMAT_CONSTANT, MP_REMAT_EVICT, MP_REMAT_FETCH, MP_REMAT_HEURISTIC_DTR,
    MP_REMAT_HEURISTIC_DTR_EQ, MP_REMAT_HEURISTIC_DTR_LOCAL, MP_REMAT_HEURISTIC_LARGEST,
    MP_REMAT_HEURISTIC_LRU, MP_REMAT_HEURISTIC_MEMPLAN, MP_REMAT_HEURISTIC_MSPS, MP_REMAT_OFFLOAD,
    MP_REMAT_RECOMPUTE, mp_remat, mp_remat_access, mp_remat_action, mp_remat_actions,
    mp_remat_counters, mp_remat_free, mp_remat_is_resident, mp_remat_make_room,
    mp_remat_materialize, mp_remat_new, mp_remat_pin, mp_remat_register, mp_remat_release,
    mp_remat_set_swap_bandwidth, mp_remat_stats, mp_remat_unpin,
};
pub use shard::{
    mp_shard_info, mp_shard_layout, mp_shard_layout_free, mp_shard_layout_info,
    mp_shard_layout_new, mp_shard_layout_owners, mp_shard_layout_shard_of, mp_shard_options,
    mp_shard_piece,
};
pub use torch::{mp_torch_free, mp_torch_last_error, mp_torch_malloc};
pub use version::mp_version;
