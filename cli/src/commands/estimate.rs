//! `memplan estimate`: memory per GPU and per host for training a transformer under
//! data / tensor / pipeline parallelism, ZeRO 0–3, CPU or NVMe offload and activation
//! recomputation (formulas: `memplan_core::estimate`).

use clap::{Args, ValueEnum};
use memplan_core::estimate::{
    Estimate, EstimateInput, Offload, Recompute, StateBytes, ZeroStage, estimate,
};
use serde::Serialize;

use std::fmt::Write as _;

use crate::{Failure, output};

/// `--offload` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OffloadArg {
    /// Everything on the GPU.
    None,
    /// Optimizer state and fp32 gradients on the host (ZeRO-Offload; --zero 1 or more).
    CpuOptimizer,
    /// Optimizer state, fp32 gradients and parameters on the host (--zero 3).
    Cpu,
    /// Optimizer state and parameters on NVMe, fp32 gradients on the host (--zero 3).
    Nvme,
}

/// `--recompute` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecomputeArg {
    /// Keep all activations.
    None,
    /// Recompute the attention core (Korthikanti et al.).
    Selective,
    /// Keep only each layer's input.
    Full,
}

/// Arguments of `memplan estimate`.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Parameters of the model (e.g. 7e9).
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub params: u64,
    /// Transformer layers.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub layers: u64,
    /// Hidden size.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub hidden: u64,
    /// Attention heads.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub heads: u64,
    /// Sequence length.
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub seq: u64,
    /// Micro-batch size.
    #[arg(long, default_value = "1", value_parser = parse_count, allow_negative_numbers = true)]
    pub micro_batch: u64,
    /// Data-parallel degree (the ZeRO group).
    #[arg(long, default_value = "1", value_parser = parse_count, allow_negative_numbers = true)]
    pub dp: u64,
    /// Tensor-parallel degree.
    #[arg(long, default_value = "1", value_parser = parse_count, allow_negative_numbers = true)]
    pub tp: u64,
    /// Pipeline-parallel degree (1F1B: the first stage holds pp micro-batches).
    #[arg(long, default_value = "1", value_parser = parse_count, allow_negative_numbers = true)]
    pub pp: u64,
    /// ZeRO stage, 0 to 3.
    #[arg(long, default_value = "0", value_parser = parse_stage, allow_negative_numbers = true)]
    pub zero: ZeroStage,
    /// Where model states go besides the GPU.
    #[arg(long, value_enum, default_value = "none")]
    pub offload: OffloadArg,
    /// Activation recomputation.
    #[arg(long, value_enum, default_value = "none")]
    pub recompute: RecomputeArg,
    /// Tensor parallelism without sequence parallelism (by default activations outside the
    /// tensor-parallel regions are split across tp ranks too).
    #[arg(long)]
    pub no_sequence_parallel: bool,
    /// GPUs per host, for the per-host figures.
    #[arg(long, default_value = "8", value_parser = parse_count, allow_negative_numbers = true)]
    pub gpus_per_host: u64,
    /// Parameters of the largest layer, gathered whole under ZeRO-3 (default 12·hidden²).
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub largest_layer: Option<u64>,
    /// Print one JSON object instead of the table (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
}

/// A non-negative whole number, written as an integer or in float notation (`7e9`).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    match t.parse::<f64>() {
        Ok(x) if x < 0.0 => Err(format!("must not be negative, got {s}")),
        Ok(x) if x.is_finite() && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
        Ok(_) => Err(format!("must be a whole number below 2^64, got {s}")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

fn parse_stage(s: &str) -> Result<ZeroStage, String> {
    let n = parse_count(s)?;
    u32::try_from(n)
        .ok()
        .and_then(ZeroStage::from_number)
        .ok_or_else(|| format!("ZeRO stage must be 0, 1, 2 or 3, got {s}"))
}

#[derive(Serialize)]
struct Column {
    params: u64,
    grads: u64,
    optimizer: u64,
    activations: u64,
    total: u64,
}

impl From<StateBytes> for Column {
    fn from(s: StateBytes) -> Self {
        Column {
            params: s.params,
            grads: s.grads,
            optimizer: s.optimizer,
            activations: s.activations,
            total: s.total(),
        }
    }
}

/// The `--json` report (after `schema_version`, [`output::json`]).
#[derive(Serialize)]
struct Report {
    params_per_gpu: u64,
    gpus_per_host: u64,
    world: u64,
    per_gpu: Column,
    per_host: Column,
    nvme_per_host: Column,
}

/// A table row: its label and how to read it from a column.
type Row = (&'static str, fn(&StateBytes) -> u64);

fn gib(x: u64) -> String {
    format!("{:.2}", x as f64 / (1u64 << 30) as f64)
}

/// Runs `memplan estimate`.
///
/// # Errors
/// Inconsistent arguments (zero counts, heads not divisible by tp, offload with too low a
/// ZeRO stage) as [`Failure::Input`].
pub fn run(args: &EstimateArgs) -> Result<(), Failure> {
    let input = EstimateInput {
        params: args.params,
        layers: args.layers,
        hidden: args.hidden,
        heads: args.heads,
        seq: args.seq,
        micro_batch: args.micro_batch,
        dp: args.dp,
        tp: args.tp,
        pp: args.pp,
        zero: args.zero,
        offload: match args.offload {
            OffloadArg::None => Offload::None,
            OffloadArg::CpuOptimizer => Offload::CpuOptimizer,
            OffloadArg::Cpu => Offload::Cpu,
            OffloadArg::Nvme => Offload::Nvme,
        },
        recompute: match args.recompute {
            RecomputeArg::None => Recompute::None,
            RecomputeArg::Selective => Recompute::Selective,
            RecomputeArg::Full => Recompute::Full,
        },
        sequence_parallel: !args.no_sequence_parallel,
        gpus_per_host: args.gpus_per_host,
        largest_layer: args.largest_layer,
    };
    let e: Estimate =
        estimate(&input).map_err(|e| Failure::Input(format!("memplan estimate: {e}")))?;
    let world = args.dp * args.tp * args.pp; // cannot overflow: estimate checked it
    if args.json {
        let report = Report {
            params_per_gpu: e.params_per_gpu,
            gpus_per_host: e.gpus_per_host,
            world,
            per_gpu: e.gpu.into(),
            per_host: e.host.into(),
            nvme_per_host: e.nvme.into(),
        };
        return output::json(&report);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{world} GPUs (dp {} × tp {} × pp {}), {} parameters per GPU before ZeRO, ZeRO-{}, \
         offload {}, {} GPUs per host",
        args.dp,
        args.tp,
        args.pp,
        e.params_per_gpu,
        args.zero as u8,
        input.offload.name(),
        e.gpus_per_host
    );
    let show_nvme = e.nvme.total() > 0;
    let _ = write!(s, "{:<12} {:>14} {:>14}", "GiB", "per GPU", "per host");
    if show_nvme {
        let _ = write!(s, " {:>14}", "NVMe per host");
    }
    s.push('\n');
    let rows: [Row; 5] = [
        ("params", |s| s.params),
        ("grads", |s| s.grads),
        ("optimizer", |s| s.optimizer),
        ("activations", |s| s.activations),
        ("total", StateBytes::total),
    ];
    for (name, get) in rows {
        let _ = write!(
            s,
            "{:<12} {:>14} {:>14}",
            name,
            gib(get(&e.gpu)),
            gib(get(&e.host))
        );
        if show_nvme {
            let _ = write!(s, " {:>14}", gib(get(&e.nvme)));
        }
        s.push('\n');
    }
    output::out(s)
}
