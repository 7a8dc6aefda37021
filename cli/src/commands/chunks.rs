//! `memplan chunks`: lay a model's tensors out in chunks and place them over GPU, host and
//! NVMe for training iterations (core's recipe, `memplan_core::chunk::place_training`); print
//! the bytes moved between each pair of tiers and how much of the fetching was prefetched
//! ahead of use.
//!
//! Input: a CSV with a header naming `name,numel,dtype_bytes,first_use,last_use` (any order,
//! extra columns ignored, lines starting with `#` are comments). `first_use` is the moment of
//! the tensor's forward use, `last_use` of its backward use.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use memplan_core::chunk::{
    PlacementOptions, Policy, StateKind, Tensor, Tier, TrainingOptions, place_training,
};
use serde::Serialize;

use super::estimate::parse_count;
use crate::io::files::read_input;
use crate::output;
use crate::units::parse_bytes;
use crate::{Failure, output::out};

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Evict the chunk whose next use is furthest away (optimal future use).
    Belady,
    /// Evict the least recently used chunk.
    Lru,
}

/// Arguments of `memplan chunks`.
#[derive(Debug, Args)]
pub struct ChunksArgs {
    /// The model: CSV with columns name,numel,dtype_bytes,first_use,last_use (any order, extra
    /// columns ignored, # comments); `-` reads it from standard input.
    pub model: PathBuf,
    /// GPU memory for chunks and non-model data, a byte size (1048576, 512MB = 512·10^6,
    /// 16GiB = 16·2^30, 1.5e9).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub gpu_bytes: u64,
    /// Host memory for chunks, a byte size.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub host_bytes: u64,
    /// NVMe space for chunks, a byte size (default: no NVMe tier).
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub nvme_bytes: u64,
    /// Eviction policy.
    #[arg(long, value_enum, default_value = "belady")]
    pub policy: PolicyArg,
    /// Chunk capacity in elements (default: the least-waste size between the largest tensor
    /// and twice it).
    #[arg(long, value_parser = parse_count, allow_negative_numbers = true)]
    pub chunk_numel: Option<u64>,
    /// GPU bytes taken by non-model data (activations, workspace) at every moment, a byte
    /// size.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub non_model_bytes: u64,
    /// Training iterations to plan (all chunks start off the GPU).
    #[arg(long, default_value = "2", value_parser = parse_iterations, allow_negative_numbers = true)]
    pub iterations: u64,
    /// Fetch only on demand (no prefetch one moment ahead).
    #[arg(long)]
    pub no_prefetch: bool,
    /// Print one JSON object instead of the report (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
}

fn parse_iterations(s: &str) -> Result<u64, String> {
    match parse_count(s)? {
        0 => Err("the number of iterations must be at least 1".to_owned()),
        n if n > 1000 => Err(format!("at most 1000 iterations, got {n}")),
        n => Ok(n),
    }
}

/// Reads the model CSV.
fn read_model(path: &Path) -> Result<(String, Vec<Tensor>), Failure> {
    let (name, data) = read_input(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(data.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| Failure::Input(format!("{name}: {e}")))?
        .clone();
    let col = |c: &str| {
        headers.iter().position(|h| h == c).ok_or_else(|| {
            Failure::Input(format!(
                "{name}: the header must name columns name,numel,dtype_bytes,first_use,last_use; \
                 {c} is missing"
            ))
        })
    };
    let cols = [
        col("name")?,
        col("numel")?,
        col("dtype_bytes")?,
        col("first_use")?,
        col("last_use")?,
    ];
    let mut tensors = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Failure::Input(format!("{name}: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(cols[i]).unwrap_or("");
        let number = |i: usize, what: &str| -> Result<u64, Failure> {
            let v = field(i);
            v.parse::<u64>().map_err(|_| {
                let why = if v.starts_with('-') {
                    "must not be negative"
                } else {
                    "must be a non-negative integer"
                };
                Failure::Input(format!("{name}:{line}: {what} {why}, got {v:?}"))
            })
        };
        tensors.push(Tensor {
            name: field(0).to_owned(),
            numel: number(1, "numel")?,
            dtype_bytes: number(2, "dtype_bytes")?,
            first_use: number(3, "first_use")?,
            last_use: number(4, "last_use")?,
        });
    }
    Ok((name, tensors))
}

#[derive(Serialize)]
struct PairBytes {
    from: &'static str,
    to: &'static str,
    bytes: u64,
    last_iteration_bytes: u64,
}

/// The `--json` report (after `schema_version`, [`output::json`]).
#[derive(Serialize)]
struct Report {
    /// The model file's name (`<stdin>` for `-`).
    file: String,
    tensors: usize,
    chunk_numel: u64,
    positions: u32,
    chunks: u32,
    waste_numel: u64,
    chunk_bytes_total: u64,
    policy: &'static str,
    prefetch: bool,
    iterations: u64,
    moments_per_iteration: usize,
    moves: usize,
    moved: Vec<PairBytes>,
    total_moved: u64,
    last_iteration_moved: u64,
    fetched_to_gpu: u64,
    prefetched_to_gpu: u64,
    prefetch_coverage: f64,
    peak_gpu_chunk_bytes: u64,
}

fn gib(x: u64) -> String {
    format!("{:.2}", x as f64 / (1u64 << 30) as f64)
}

/// Runs `memplan chunks`.
///
/// # Errors
/// Unreadable or malformed CSVs, tensors larger than the chunk, tiers too small
/// ([`Failure::Input`], with the core's message saying which and by how much).
pub fn run(args: &ChunksArgs) -> Result<(), Failure> {
    let (name, tensors) = read_model(&args.model)?;
    let policy = match args.policy {
        PolicyArg::Belady => Policy::Belady,
        PolicyArg::Lru => Policy::Lru,
    };
    let options = TrainingOptions {
        chunk_numel: args.chunk_numel,
        non_model: args.non_model_bytes,
        iterations: args.iterations,
        placement: PlacementOptions {
            device: args.gpu_bytes,
            host: args.host_bytes,
            nvme: args.nvme_bytes,
            policy,
            prefetch: !args.no_prefetch,
        },
    };
    let trained =
        place_training(&tensors, &options).map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    let (layout, placement) = (trained.layout(), trained.placement());
    let sizes = trained.chunk_sizes();
    let last = trained.last_iteration_bytes();
    let moved: Vec<PairBytes> = Tier::ALL
        .iter()
        .flat_map(|&a| Tier::ALL.iter().map(move |&b| (a, b)))
        .filter(|(a, b)| a != b)
        .map(|(a, b)| PairBytes {
            from: a.name(),
            to: b.name(),
            bytes: placement.bytes[a as usize][b as usize],
            last_iteration_bytes: last[a as usize][b as usize],
        })
        .collect();
    let report = Report {
        file: name.clone(),
        tensors: tensors.len(),
        chunk_numel: layout.chunk_numel(),
        positions: layout.positions(),
        chunks: layout.chunk_count(),
        waste_numel: layout.waste_numel(),
        chunk_bytes_total: sizes.iter().sum(),
        policy: match policy {
            Policy::Belady => "belady",
            Policy::Lru => "lru",
        },
        prefetch: options.placement.prefetch,
        iterations: args.iterations,
        moments_per_iteration: trained.moments_per_iteration(),
        moves: placement.moves.len(),
        total_moved: placement.total_moved(),
        last_iteration_moved: last.iter().flatten().sum(),
        moved,
        fetched_to_gpu: placement.fetched,
        prefetched_to_gpu: placement.prefetched,
        prefetch_coverage: placement.prefetch_coverage(),
        peak_gpu_chunk_bytes: placement.device_bytes.iter().copied().max().unwrap_or(0),
    };
    if args.json {
        return output::json(&report);
    }
    let r = &report;
    let total_numel: u64 = tensors.iter().map(|t| t.numel).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} tensors, {} elements; chunks of {} elements: {} positions × 4 kinds \
         ({} B fp16, {} B fp32/momentum/variance each), waste {:.2}%",
        r.file,
        r.tensors,
        total_numel,
        r.chunk_numel,
        r.positions,
        layout.chunk_bytes(StateKind::ParamFp16),
        layout.chunk_bytes(StateKind::ParamFp32),
        100.0 * r.waste_numel as f64 / (r.waste_numel + total_numel) as f64
    );
    let _ = writeln!(
        s,
        "policy {}, prefetch {}, {} iteration(s) of {} moments, {} moves; chunk bytes {} GiB, \
         peak on GPU {} GiB",
        r.policy,
        if r.prefetch { "on" } else { "off" },
        r.iterations,
        r.moments_per_iteration,
        r.moves,
        gib(r.chunk_bytes_total),
        gib(r.peak_gpu_chunk_bytes)
    );
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>16}",
        "moved (GiB)", "all", "last iteration"
    );
    for p in &r.moved {
        if p.bytes > 0 || p.from == "device" || p.to == "device" {
            let _ = writeln!(
                s,
                "{:<16} {:>14} {:>16}",
                format!("{} -> {}", p.from, p.to),
                gib(p.bytes),
                gib(p.last_iteration_bytes)
            );
        }
    }
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>16}",
        "total",
        gib(r.total_moved),
        gib(r.last_iteration_moved)
    );
    let _ = writeln!(
        s,
        "stall-free prefetch coverage: {:.1}% of {} GiB fetched to the GPU",
        100.0 * r.prefetch_coverage,
        gib(r.fetched_to_gpu)
    );
    out(s)
}
