//! `memplan plan-trace`: profile an allocation trace and write the plan file the guided
//! allocator serves it from (`memplan replay --plan`, `mp_allocator_new_guided` in C,
//! `MEMPLAN_PLAN` for the PyTorch hook). The plan is built by `Plan::from_trace`.

use std::path::PathBuf;

use clap::Args;
use memplan_core::lifetime::Class;
use serde::Serialize;

use super::replay::{describe_iterations, load, parse_positive, plan_of};
use crate::io::DeviceChoice;
use crate::io::files::{self, write_output};
use crate::{Failure, output};

/// Arguments of `memplan plan-trace`.
#[derive(Debug, Args)]
pub struct PlanTraceArgs {
    /// The trace: a PyTorch memory snapshot pickle, a PyTorch profiler (Kineto) JSON (.json or
    /// .json.gz), a DTR operator log, memplan's trace format, or an id,lower,upper,size CSV
    /// (detected from the content); `-` reads it from standard input.
    pub trace: PathBuf,
    /// The device whose events to plan (snapshots and profiler traces record several): an
    /// index, or `auto` for the one with the most allocations.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub device: DeviceChoice,
    /// Where to write the plan file (`-`: standard output, and the summary goes to standard
    /// error).
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
    /// Print one JSON object instead of the summary (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
}

/// The `--json` report (after `schema_version`, [`output::json`]).
#[derive(Serialize)]
struct Summary<'a> {
    /// The trace's name (`<stdin>` for `-`).
    file: &'a str,
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
    /// The plan file's size in bytes.
    out_bytes: usize,
}

/// Runs `memplan plan-trace`.
///
/// # Errors
/// Unreadable or malformed traces, bad workload options, a trace that cannot be planned, or
/// an unwritable output ([`Failure::Input`]).
pub fn run(args: &PlanTraceArgs) -> Result<(), Failure> {
    let name = if files::is_std(&args.trace) {
        files::STDIN_NAME.to_owned()
    } else {
        args.trace.display().to_string()
    };
    let report_to_stderr = files::stdout_taken(&[("--out", Some(&args.out))])?;
    let (trace, _, _) = load(&args.trace, args.device, args.repeat, args.dynamic)?;
    let built = plan_of(&trace, args.profile_iterations, args.profile_events)?;
    let (analysis, plan) = (&built.analysis, &built.plan);
    let bytes = plan.to_bytes();
    let out = if report_to_stderr {
        "standard output".to_owned()
    } else {
        args.out.display().to_string()
    };
    write_output(&args.out, &bytes)?;
    let summary = Summary {
        file: &name,
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
        out_bytes: bytes.len(),
    };
    let text = if args.json {
        output::json_line(&summary)?
    } else {
        format!(
            "{name}: {} allocations, {}\n\
             classes: {} persistent, {} per-iteration, {} cross-iteration, {} dynamic\n\
             plan: arena {} bytes (trace peak {} bytes requested), {} prologue + {} iteration \
             slots\n\
             plan written to {out} ({} bytes)\n",
            summary.allocations,
            summary.iterations,
            summary.persistent,
            summary.per_iteration,
            summary.cross_iteration,
            summary.dynamic,
            summary.arena_size,
            summary.peak_requested,
            summary.prologue_slots,
            summary.iteration_slots,
            summary.out_bytes,
        )
    };
    if report_to_stderr {
        output::err(text);
        Ok(())
    } else {
        output::out(text)
    }
}
