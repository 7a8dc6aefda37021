//! `mp_estimate_memory`: memory per GPU, per host and on NVMe for training a transformer, over
//! `memplan_core::estimate` (plain structs in and out, no handle). Core errors map as
//! `impl From<&EstimateError> for mp_result` in `error.rs` says.

use memplan_core::estimate::{self, EstimateInput, Offload, Recompute, StateBytes};
use memplan_core::shard::ZeroStage;

use crate::error::mp_result;
use crate::ffi::read_from_raw;

#[cfg(test)]
mod tests;

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
        let input = match unsafe { read_from_raw(input) } {
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
            Err(e) => mp_result::from(&e),
        }
    }
}
