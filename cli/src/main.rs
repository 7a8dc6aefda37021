//! `memplan`: the command line. It parses the arguments and dispatches to
//! [`memplan_cli::commands`]; everything else lives in the `memplan_cli` library.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use memplan_cli::Failure;
use memplan_cli::commands::{
    analyze, bench, chunks, convert, estimate, plan, plan_trace, remat, replay,
};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "memplan",
    version,
    about = "Plan GPU buffer offsets from buffer lifetimes and sizes",
    after_help = "Every file argument takes `-` for standard input (inputs) or standard output \
                  (outputs); every size option takes byte sizes: 1048576, 512MB (10^6), 16GiB \
                  (2^30), 1.5e9.\n\n\
                  Exit codes: 0 success (also when stdout is closed early, e.g. by `| head`); \
                  1 bad input or usage; 2 does not fit in --capacity (`plan`: no plan fits; \
                  `replay`: an allocator ran out of memory; the report is printed first); \
                  3 internal error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Plan one problem file and report, write and draw the plan.
    Plan(plan::PlanArgs),
    /// Report on a PyTorch snapshot or trace: peaks, fragmentation, stranded ranges, what
    /// each allocator would reserve, and what to do.
    Analyze(analyze::AnalyzeArgs),
    /// Plan every problem CSV under some paths and print a comparison table.
    Bench(bench::BenchArgs),
    /// Replay an allocation trace through allocators and compare peak reserved memory.
    Replay(replay::ReplayArgs),
    /// Profile an allocation trace and write the plan a plan-guided allocator serves it from.
    PlanTrace(plan_trace::PlanTraceArgs),
    /// Convert an allocation trace (PyTorch snapshot or profiler JSON, DTR log, memplan's
    /// format, or an id,lower,upper,size CSV) to memplan's trace format.
    Convert(convert::ConvertArgs),
    /// Estimate memory per GPU and per host for training a transformer (ZeRO, offload,
    /// TP/PP, recomputation).
    Estimate(estimate::EstimateArgs),
    /// Lay a model's tensors out in chunks and plan their moves between GPU, host and NVMe.
    Chunks(chunks::ChunksArgs),
    /// Simulate tensor rematerialization (DTR) on operator logs under a memory budget.
    Remat(remat::RematArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses exit code 2 for usage errors, which here means "does not fit".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::PlanTrace(args) => plan_trace::run(&args),
        Command::Estimate(args) => estimate::run(&args),
        Command::Chunks(args) => chunks::run(&args),
        Command::Remat(args) => remat::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            ExitCode::from(1)
        }
        Err(Failure::DoesNotFit) => ExitCode::from(2),
        // The reader of stdout went away (`| head`): what it wanted was written.
        Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Internal(message)) => {
            let _ = writeln!(std::io::stderr(), "memplan: internal error: {message}");
            ExitCode::from(3)
        }
    }
}
