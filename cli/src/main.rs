//! `memplan`: plan GPU buffer offsets from a CSV file of lifetimes and sizes.
//!
//! Module map: [`input`] reads and validates problem files, [`plan`] runs `memplan plan`,
//! [`bench`](mod@bench) runs `memplan bench`, [`plot`] draws SVG and [`progress`] shows a spinner.
#![doc = include_str!("../README.md")]

mod bench;
mod chunks;
mod dtr;
mod estimate;
mod input;
mod kineto;
mod plan;
mod plantrace;
mod plot;
mod progress;
mod remat;
mod replay;
mod snapshot;
mod traceio;
mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "memplan",
    version,
    about = "Plan GPU buffer offsets from buffer lifetimes and sizes",
    after_help = "Exit codes: 0 success, 1 bad input or usage, 2 does not fit in --capacity, \
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
    Plan(PlanArgs),
    /// Plan every problem CSV under some paths and print a comparison table.
    Bench(BenchArgs),
    /// Replay an allocation trace through allocators and compare peak reserved memory.
    Replay(replay::ReplayArgs),
    /// Profile an allocation trace and write the plan a plan-guided allocator serves it from.
    PlanTrace(plantrace::PlanTraceArgs),
    /// Convert an allocation trace (memplan's format, or an id,lower,upper,size CSV) to
    /// memplan's trace format.
    Convert(ConvertArgs),
    /// Estimate memory per GPU and per host for training a transformer (ZeRO, offload,
    /// TP/PP, recomputation).
    Estimate(estimate::EstimateArgs),
    /// Lay a model's tensors out in chunks and plan their moves between GPU, host and NVMe.
    Chunks(chunks::ChunksArgs),
    /// Simulate tensor rematerialization (DTR) on operator logs under a memory budget.
    Remat(remat::RematArgs),
}

/// Arguments of `memplan convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The trace to read.
    pub input: PathBuf,
    /// Where to write it in memplan's trace format (`-` for standard output).
    pub output: PathBuf,
}

/// `memplan convert`: read any supported trace, write memplan's format.
fn convert(args: &ConvertArgs) -> Result<(), Failure> {
    let name = args.input.display().to_string();
    let data = std::fs::read(&args.input)
        .map_err(|e| Failure::Input(format!("{name}: cannot read: {e}")))?;
    let trace = traceio::read(&name, &data)?;
    let text = traceio::write(&trace);
    if args.output.as_os_str() == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(&args.output, text)
            .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", args.output.display())))
    }
}

/// Arguments of `memplan plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// CSV with a header naming id,lower,upper,size (any order, extra columns ignored; lines
    /// starting with # are comments). Without it, plans the embedded ResNet-50 example and
    /// draws it to memplan-plan.svg.
    pub file: Option<PathBuf>,
    /// Fail (exit 2) unless the plan's peak is at most this many bytes; the search stops at
    /// the first plan that fits.
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub capacity: Option<u64>,
    /// Align every buffer's offset to this power of two.
    #[arg(long, value_name = "BYTES", default_value_t = 1, value_parser = parse_alignment,
          allow_negative_numbers = true)]
    pub alignment: u64,
    /// Stop the search after this many seconds (0: heuristics only; "inf": no limit).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub time_limit: Limit,
    /// Stop the search after this many nodes (deterministic, unlike --time-limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_nodes: Option<u64>,
    /// Write the plan as CSV: id,lower,upper,size,offset in input order.
    #[arg(long, value_name = "SOLUTION.csv")]
    pub out: Option<PathBuf>,
    /// Draw the plan as SVG (time on x, offset on y).
    #[arg(long, value_name = "PLOT.svg")]
    pub svg: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `memplan bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Files or directories (searched recursively for *.csv). Default:
    /// ../shared/traces/external/ relative to the current directory.
    pub paths: Vec<PathBuf>,
    /// Search time limit per trace, in seconds ("inf": no limit).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub time_limit: Limit,
    /// Print one JSON object instead of the Markdown table.
    #[arg(long)]
    pub json: bool,
}

/// A search time limit; `None` means unlimited.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub Option<Duration>);

fn parse_alignment(s: &str) -> Result<u64, String> {
    let a: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a positive integer"))?;
    if a.is_power_of_two() {
        Ok(a)
    } else {
        Err(format!("alignment must be a power of two, got {a}"))
    }
}

fn parse_seconds(s: &str) -> Result<Limit, String> {
    let t: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if t.is_nan() || t < 0.0 {
        return Err(format!("time limit must be 0 or more seconds, got {s}"));
    }
    // Limits too large for a `Duration` (including "inf") mean no limit.
    Ok(Limit(Duration::try_from_secs_f64(t).ok()))
}

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad input, bad usage or an I/O error: exit 1. The message is printed as is.
    Input(String),
    /// The plan does not fit in the capacity: exit 2. The report was already printed.
    DoesNotFit,
    /// A bug: the planner's output failed verification. Exit 3.
    Internal(String),
}

impl From<input::InputError> for Failure {
    fn from(e: input::InputError) -> Self {
        Failure::Input(e.to_string())
    }
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
        Command::Bench(args) => bench::run(&args),
        Command::Convert(args) => convert(&args),
        Command::Replay(args) => replay::run(&args),
        Command::PlanTrace(args) => plantrace::run(&args),
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
        Err(Failure::Internal(message)) => {
            let _ = writeln!(std::io::stderr(), "memplan: internal error: {message}");
            ExitCode::from(3)
        }
    }
}
