//! `memplan plan-trace`: profile an allocation trace and write the plan file the guided
//! allocator serves it from (`memplan replay --plan`, `mp_allocator_new_guided` in C,
//! `MEMPLAN_PLAN` for the PyTorch hook). The plan is built by `Plan::from_trace`.

use std::path::PathBuf;

use clap::Args;
use memplan_core::lifetime::Class;
use serde::Serialize;

use super::replay::{describe_iterations, load, parse_positive, plan_of};
use crate::Failure;
use crate::io::DeviceChoice;

/// Arguments of `memplan plan-trace`.
#[derive(Debug, Args)]
pub struct PlanTraceArgs {
    /// The trace: a PyTorch snapshot pickle, a profiler JSON (.json or .json.gz), a DTR log,
    /// memplan's trace format, or an id,lower,upper,size CSV.
    pub trace: PathBuf,
    /// The device whose events to plan (snapshots and profiler traces record several): an
    /// index, or `auto` for the one with the most allocations.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub device: DeviceChoice,
    /// Where to write the plan file.
    #[arg(long, value_name = "PLAN")]
    pub out: PathBuf,
    /// Iterations profiled to make the plan.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_positive)]
    pub profile_iterations: usize,
    /// Profile only the first N events of the trace.
    #[arg(long, value_name = "N")]
    pub profile_events: Option<usize>,
    /// Treat the (one-iteration) trace as N iterations, as `memplan replay --repeat`.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    pub repeat: usize,
    /// Vary the repeated iterations, seeded, as `memplan replay --dynamic`.
    #[arg(long, value_name = "SEED")]
    pub dynamic: Option<u64>,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    trace: &'a str,
    out: &'a str,
    allocations: usize,
    iterations: String,
    persistent: usize,
    per_iteration: usize,
    cross_iteration: usize,
    dynamic: usize,
    arena_size: u64,
    prologue_slots: usize,
    iteration_slots: usize,
    peak_requested: u64,
    bytes: usize,
}

/// Runs `memplan plan-trace`.
///
/// # Errors
/// Unreadable or malformed traces, bad workload options, a trace that cannot be planned, or
/// an unwritable output ([`Failure::Input`]).
pub fn run(args: &PlanTraceArgs) -> Result<(), Failure> {
    let name = args.trace.display().to_string();
    let (trace, _, _) = load(&args.trace, args.device, args.repeat, args.dynamic)?;
    let built = plan_of(&trace, args.profile_iterations, args.profile_events)?;
    let (analysis, plan) = (&built.analysis, &built.plan);
    let bytes = plan.to_bytes();
    let out = args.out.display().to_string();
    std::fs::write(&args.out, &bytes)
        .map_err(|e| Failure::Input(format!("{out}: cannot write: {e}")))?;
    let summary = Summary {
        trace: &name,
        out: &out,
        allocations: analysis.lifetimes.len(),
        iterations: describe_iterations(analysis),
        persistent: analysis.count(Class::Persistent),
        per_iteration: analysis.count(Class::PerIteration),
        cross_iteration: analysis.count(Class::CrossIteration),
        dynamic: analysis.count(Class::Dynamic),
        arena_size: plan.arena_size,
        prologue_slots: plan.prologue.len(),
        iteration_slots: plan.iteration.len(),
        peak_requested: trace.peak_requested(),
        bytes: bytes.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        println!(
            "{name}: {} allocations, {}",
            summary.allocations, summary.iterations
        );
        println!(
            "classes: {} persistent, {} per-iteration, {} cross-iteration, {} dynamic",
            summary.persistent, summary.per_iteration, summary.cross_iteration, summary.dynamic
        );
        println!(
            "plan: arena {} bytes (trace peak {} bytes requested), {} prologue + {} iteration \
             slots",
            summary.arena_size,
            summary.peak_requested,
            summary.prologue_slots,
            summary.iteration_slots
        );
        println!("plan written to {out} ({} bytes)", summary.bytes);
    }
    Ok(())
}
