//! Memory estimates for training a transformer: model states under DP / ZeRO 0–3 with CPU or
//! NVMe offload, and activations per Korthikanti et al. (2022).
//!
//! # Model states ([`estimate`])
//! Accounting of the ZeRO paper (mixed-precision Adam, K = 12): per parameter 2 bytes of fp16
//! parameters, 2 of fp16 gradients and 12 of optimizer state (fp32 parameters, momentum,
//! variance). Tensor and pipeline parallelism split the parameters first
//! (Ψ = ⌈P / (tp·pp)⌉ per GPU); ZeRO then divides by the data-parallel degree `dp` (rounded
//! up): stage 1 the optimizer state, stage 2 also gradients, stage 3 also parameters. Stage 3
//! adds the largest layer gathered for compute: its fp16 parameters and gradients, 4·L/tp
//! bytes (DeepSpeed's `largest_layer_memory`).
//!
//! Offload (DeepSpeed's accounting): with the optimizer offloaded, the GPU keeps no
//! optimizer state and no gradients beyond stage 3's gathered layer; the host keeps the
//! optimizer state (12·Ψ/dp) and fp32 gradients (4·Ψ/dp), DeepSpeed's 16 bytes per
//! parameter. Offloading parameters too (ZeRO-3 only) moves the fp16 parameter shard (2·Ψ/dp)
//! off the GPU as well, leaving the gathered layer. `Nvme` puts parameters and optimizer state
//! on NVMe and the fp32 gradients on the host. Host and NVMe figures are per host
//! (`gpus_per_host` GPUs, at most the world size).
//!
//! # Activations
//! Per layer and micro-batch (s sequence, b micro-batch, h hidden, a heads, t tensor
//! parallel), in bytes, from the paper's Table 2:
//!
//! | recompute | tensor parallel only | with sequence parallel |
//! |---|---|---|
//! | none | sbh(10 + 24/t + 5as/(ht)) | sbh(34 + 5as/h)/t |
//! | selective | sbh(10 + 24/t) | 34·sbh/t |
//! | full | 2·sbh | 2·sbh/t |
//!
//! With pipeline parallelism `p` and 1F1B the first stage keeps `p` micro-batches of its
//! ⌈layers/p⌉ layers, so activations per GPU = p · ⌈layers/p⌉ · per-layer (the paper's
//! estimate; embeddings, the output layer and the loss are not counted).
//!
//! # DeepSpeed's estimators
//! [`deepspeed_zero2`] and [`deepspeed_zero3`] reproduce
//! `estimate_zero{2,3}_model_states_mem_needs` of current DeepSpeed (ZeRO-2 without offload:
//! `2P + 18P/G` on the GPU, not the older `4P + 16P/G` of the `memory.rst` docs).

use core::fmt;

pub use crate::shard::ZeroStage;

#[cfg(test)]
mod tests;

/// What can go wrong in an estimate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstimateError {
    /// A count that must be at least 1 is 0.
    Zero {
        /// Which input.
        what: &'static str,
    },
    /// The attention heads do not split evenly across tensor-parallel ranks.
    HeadsNotDivisible {
        /// Attention heads.
        heads: u64,
        /// Tensor-parallel degree.
        tp: u64,
    },
    /// The offload asked for needs a higher ZeRO stage.
    OffloadNeedsStage {
        /// The offload.
        offload: Offload,
        /// The stage given.
        stage: ZeroStage,
        /// The least stage that supports it.
        needs: ZeroStage,
    },
    /// A byte count does not fit in `u64`.
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
}

impl fmt::Display for EstimateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EstimateError::Zero { what } => write!(f, "{what} must be at least 1"),
            EstimateError::HeadsNotDivisible { heads, tp } => write!(
                f,
                "{heads} attention heads do not split across {tp} tensor-parallel ranks \
                 ({} left over)",
                heads.checked_rem(*tp).unwrap_or(*heads)
            ),
            EstimateError::OffloadNeedsStage {
                offload,
                stage,
                needs,
            } => write!(
                f,
                "offload {} needs ZeRO stage {} or higher, got stage {}",
                offload.name(),
                *needs as u8,
                *stage as u8
            ),
            EstimateError::Overflow { what } => write!(f, "{what} overflows 64 bits"),
        }
    }
}

impl core::error::Error for EstimateError {}

/// Where model states go besides the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offload {
    /// Everything on the GPU.
    None,
    /// Optimizer state and fp32 gradients on the host (ZeRO-Offload; stage ≥ 1).
    CpuOptimizer,
    /// Optimizer state, fp32 gradients and the fp16 parameter shard on the host (stage 3).
    Cpu,
    /// Optimizer state and parameters on NVMe, fp32 gradients on the host (ZeRO-Infinity;
    /// stage 3).
    Nvme,
}

impl Offload {
    /// Lowercase name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Offload::None => "none",
            Offload::CpuOptimizer => "cpu-optimizer",
            Offload::Cpu => "cpu",
            Offload::Nvme => "nvme",
        }
    }

    fn offloads_optimizer(self) -> bool {
        self != Offload::None
    }

    fn offloads_params(self) -> bool {
        matches!(self, Offload::Cpu | Offload::Nvme)
    }
}

/// Activation recomputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the attention core (softmax, dropout, attention over values).
    Selective,
    /// Keep only each layer's input; recompute the rest.
    Full,
}

/// The training setup to estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstimateInput {
    /// Parameters of the whole model.
    pub params: u64,
    /// Transformer layers.
    pub layers: u64,
    /// Hidden size h.
    pub hidden: u64,
    /// Attention heads a.
    pub heads: u64,
    /// Sequence length s.
    pub seq: u64,
    /// Micro-batch size b.
    pub micro_batch: u64,
    /// Data-parallel degree (the ZeRO group).
    pub dp: u64,
    /// Tensor-parallel degree.
    pub tp: u64,
    /// Pipeline-parallel degree.
    pub pp: u64,
    /// ZeRO stage.
    pub zero: ZeroStage,
    /// Offload.
    pub offload: Offload,
    /// Activation recomputation.
    pub recompute: Recompute,
    /// Sequence parallelism alongside tensor parallelism.
    pub sequence_parallel: bool,
    /// GPUs per host.
    pub gpus_per_host: u64,
    /// Parameters of the largest layer (gathered whole under ZeRO-3); `None`: 12·h², a
    /// transformer layer's weights.
    pub largest_layer: Option<u64>,
}

/// Bytes of each kind of state in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateBytes {
    /// fp16 parameters (the fp32 master copy is part of `optimizer`).
    pub params: u64,
    /// Gradients.
    pub grads: u64,
    /// Optimizer state (fp32 parameters, momentum, variance).
    pub optimizer: u64,
    /// Activations.
    pub activations: u64,
}

impl StateBytes {
    /// The sum of the four (saturating).
    pub fn total(&self) -> u64 {
        self.params
            .saturating_add(self.grads)
            .saturating_add(self.optimizer)
            .saturating_add(self.activations)
    }
}

/// The result of [`estimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Per GPU.
    pub gpu: StateBytes,
    /// Per host (its GPUs' host shares).
    pub host: StateBytes,
    /// Per host, on NVMe.
    pub nvme: StateBytes,
    /// Parameters per GPU before ZeRO (⌈P / (tp·pp)⌉).
    pub params_per_gpu: u64,
    /// GPUs per host used for the host figures (`min(gpus_per_host, dp·tp·pp)`).
    pub gpus_per_host: u64,
}

/// Model-state bytes per GPU as the ZeRO paper counts them: `[params, grads, optimizer]` for
/// `psi` parameters on `nd` data-parallel ranks (divisions rounded up). `None` on overflow.
pub fn zero_paper(psi: u64, stage: ZeroStage, nd: u64) -> Option<[u64; 3]> {
    let nd = nd.max(1);
    let part = |bytes: u64, sharded: bool| {
        let b = psi.checked_mul(bytes)?;
        Some(if sharded { b.div_ceil(nd) } else { b })
    };
    Some([
        part(2, stage.shards_params())?,
        part(2, stage.shards_grads())?,
        part(12, stage.shards_optimizer())?,
    ])
}

/// Activation bytes of one layer for one micro-batch (Korthikanti et al., Table 2), rounded up.
/// `None` on overflow (of `u64` in the result, or of the exact intermediate products).
pub fn layer_activations(
    seq: u64,
    micro_batch: u64,
    hidden: u64,
    heads: u64,
    tp: u64,
    sequence_parallel: bool,
    recompute: Recompute,
) -> Option<u64> {
    let (s, b, h, a, t) = (
        u128::from(seq),
        u128::from(micro_batch),
        u128::from(hidden),
        u128::from(heads),
        u128::from(tp.max(1)),
    );
    let mul = |x: u128, y: u128| x.checked_mul(y);
    let sbh = mul(mul(s, b)?, h)?;
    // sbh · 5as/h
    let attn = || mul(mul(mul(mul(5, a)?, s)?, s)?, b);
    // 10·sbh·t + 24·sbh: the terms without sequence parallelism.
    let tp_only = || mul(mul(10, sbh)?, t)?.checked_add(mul(24, sbh)?);
    // Everything as a fraction over t.
    let num = match (recompute, sequence_parallel) {
        (Recompute::None, true) => mul(34, sbh)?.checked_add(attn()?)?,
        (Recompute::None, false) => tp_only()?.checked_add(attn()?)?,
        (Recompute::Selective, true) => mul(34, sbh)?,
        (Recompute::Selective, false) => tp_only()?,
        (Recompute::Full, true) => mul(2, sbh)?,
        (Recompute::Full, false) => mul(mul(2, sbh)?, t)?,
    };
    u64::try_from(num.div_ceil(t)).ok()
}

/// Estimates per-GPU, per-host and NVMe memory. See the module docs for the formulas.
///
/// # Errors
/// [`EstimateError::Zero`] for a zero count (params may be 0), [`EstimateError::HeadsNotDivisible`],
/// [`EstimateError::OffloadNeedsStage`] (optimizer offload needs stage ≥ 1, parameter offload
/// stage 3), [`EstimateError::Overflow`].
pub fn estimate(input: &EstimateInput) -> Result<Estimate, EstimateError> {
    let i = input;
    for (v, what) in [
        (i.layers, "layers"),
        (i.hidden, "hidden size"),
        (i.heads, "heads"),
        (i.seq, "sequence length"),
        (i.micro_batch, "micro-batch size"),
        (i.dp, "data-parallel degree"),
        (i.tp, "tensor-parallel degree"),
        (i.pp, "pipeline-parallel degree"),
        (i.gpus_per_host, "GPUs per host"),
    ] {
        if v == 0 {
            return Err(EstimateError::Zero { what });
        }
    }
    if i.heads % i.tp != 0 {
        return Err(EstimateError::HeadsNotDivisible {
            heads: i.heads,
            tp: i.tp,
        });
    }
    let needs = if i.offload.offloads_params() {
        ZeroStage::Zero3
    } else if i.offload.offloads_optimizer() {
        ZeroStage::Zero1
    } else {
        ZeroStage::Zero0
    };
    if i.zero < needs {
        return Err(EstimateError::OffloadNeedsStage {
            offload: i.offload,
            stage: i.zero,
            needs,
        });
    }
    let of = |what| EstimateError::Overflow { what };
    let model_split = i.tp.checked_mul(i.pp).ok_or(of("tp × pp"))?;
    let world = model_split.checked_mul(i.dp).ok_or(of("world size"))?;
    let psi = i.params.div_ceil(model_split);
    let [p, g, o] = zero_paper(psi, i.zero, i.dp).ok_or(of("model states"))?;
    let largest = match i.largest_layer {
        Some(l) => l,
        None => i
            .hidden
            .checked_mul(i.hidden)
            .and_then(|x| x.checked_mul(12))
            .ok_or(of("largest layer"))?,
    };
    // Stage 3's gathered layer: fp16 params and grads, split by tensor parallelism.
    let gathered = if i.zero == ZeroStage::Zero3 {
        largest
            .checked_mul(2)
            .ok_or(of("largest layer"))?
            .div_ceil(i.tp)
    } else {
        0
    };
    let per_layer = layer_activations(
        i.seq,
        i.micro_batch,
        i.hidden,
        i.heads,
        i.tp,
        i.sequence_parallel,
        i.recompute,
    )
    .ok_or(of("activations"))?;
    let activations = i
        .layers
        .div_ceil(i.pp)
        .checked_mul(i.pp)
        .and_then(|x| x.checked_mul(per_layer))
        .ok_or(of("activations"))?;

    let mut gpu = StateBytes {
        params: p.checked_add(gathered).ok_or(of("params"))?,
        grads: g.checked_add(gathered).ok_or(of("grads"))?,
        optimizer: o,
        activations,
    };
    let mut host_share = StateBytes::default();
    let mut nvme_share = StateBytes::default();
    if i.offload.offloads_optimizer() {
        gpu.optimizer = 0;
        gpu.grads = gathered;
        let fp32_grads = psi.checked_mul(4).ok_or(of("grads"))?.div_ceil(i.dp);
        host_share.grads = fp32_grads;
        let target = if i.offload == Offload::Nvme {
            &mut nvme_share
        } else {
            &mut host_share
        };
        target.optimizer = o;
        if i.offload.offloads_params() {
            target.params = p;
            gpu.params = gathered;
        }
    }
    let gph = i.gpus_per_host.min(world);
    let scale = |s: StateBytes| -> Result<StateBytes, EstimateError> {
        let m = |x: u64| x.checked_mul(gph).ok_or(of("per-host bytes"));
        Ok(StateBytes {
            params: m(s.params)?,
            grads: m(s.grads)?,
            optimizer: m(s.optimizer)?,
            activations: m(s.activations)?,
        })
    };
    Ok(Estimate {
        gpu,
        host: scale(host_share)?,
        nvme: scale(nvme_share)?,
        params_per_gpu: psi,
        gpus_per_host: gph,
    })
}

/// DeepSpeed's `estimate_zero2_model_states_mem_needs` (stages 1 and 2), current code:
/// returns `(cpu, gpu)` bytes for `params` on `nodes × gpus_per_node` GPUs with
/// `additional_buffer_factor` `buffer_factor` (DeepSpeed's default: 1.5).
pub fn deepspeed_zero2(
    params: u64,
    gpus_per_node: u64,
    nodes: u64,
    cpu_offload: bool,
    buffer_factor: f64,
) -> (u64, u64) {
    let p = params as f64;
    let total_gpus = nodes.saturating_mul(gpus_per_node).max(1);
    if cpu_offload {
        let gpu = 2.0 * p;
        let cpu = p * (4.0 * total_gpus as f64).max(16.0) * buffer_factor;
        (cpu as u64, gpu as u64)
    } else {
        let gpu = 2 * u128::from(params) + int_div(18 * u128::from(params), total_gpus);
        let cpu = p * 4.0 * gpus_per_node as f64 * buffer_factor;
        (cpu as u64, sat(gpu))
    }
}

/// DeepSpeed's `estimate_zero3_model_states_mem_needs`: returns `(cpu, gpu)` bytes for
/// `params` with largest layer `largest_layer` on `nodes × gpus_per_node` GPUs.
// The argument list mirrors DeepSpeed's function, so that a reader can compare them.
#[allow(clippy::too_many_arguments)]
pub fn deepspeed_zero3(
    params: u64,
    largest_layer: u64,
    gpus_per_node: u64,
    nodes: u64,
    cpu_offload: bool,
    cpu_offload_params: bool,
    zero_init: bool,
    buffer_factor: f64,
) -> (u64, u64) {
    let p = params as f64;
    let g = gpus_per_node as f64;
    let total_gpus = nodes.saturating_mul(gpus_per_node).max(1);
    let gpus_factor = 1.0 / nodes.max(1) as f64;
    let ll = 4 * u128::from(largest_layer);
    let f = buffer_factor;
    let (cpu, gpu) = if cpu_offload && cpu_offload_params {
        let cpu = if zero_init {
            p * 18.0 * gpus_factor * f
        } else {
            p * (4.0 * g).max(18.0 * gpus_factor) * f
        };
        (cpu, ll)
    } else if cpu_offload {
        let cpu = if zero_init {
            p * 16.0 * gpus_factor * f
        } else {
            p * (4.0 * g).max(16.0 * gpus_factor) * f
        };
        (cpu, ll + int_div(2 * u128::from(params), total_gpus))
    } else {
        let cpu = if zero_init {
            largest_layer as f64 * 4.0 * g * f
        } else {
            p * 4.0 * g * f
        };
        (cpu, ll + int_div(18 * u128::from(params), total_gpus))
    };
    (cpu as u64, sat(gpu))
}

/// Python's `int(a / b)` for non-negative integers (exact, no float rounding).
fn int_div(a: u128, b: u64) -> u128 {
    a / u128::from(b)
}

/// `x` as `u64`, saturating.
fn sat(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}
