//! `memplan plan`: plan one problem, verify, write, draw and report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use memplan_core::check::verify;
use memplan_core::pack::Deadline;
use memplan_core::{
    Error as CoreError, PackOptions, PlacedBuffer, Problem, Solution, Unproven, pack,
};
use serde::Serialize;

use super::{Limit, parse_seconds};
use crate::io::csv;
use crate::io::files::{self, read_input, write_output};
use crate::output;
use crate::progress::Spinner;
use crate::units::parse_bytes;
use crate::{Failure, plot};

/// The embedded example: MindSpore SOMAS's ResNet-50 tensor dump (MIT, see the comment line
/// at its top and `examples/LICENSE-idealloc`).
pub const EXAMPLE: &str = include_str!("../../examples/resnet50.csv");
/// The name the embedded example is reported under.
pub const EXAMPLE_NAME: &str = "resnet50.csv (embedded example)";
/// Where the plot goes when planning the embedded example without `--svg`.
pub const DEFAULT_SVG: &str = "memplan-plan.svg";

/// Arguments of `memplan plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// CSV with a header naming id,lower,upper,size (any order, extra columns ignored; lines
    /// starting with # are comments); `-` reads it from standard input. Without it, plans the
    /// embedded ResNet-50 example and draws it to memplan-plan.svg.
    pub file: Option<PathBuf>,
    /// Fail (exit 2) unless the plan's peak is at most this many bytes (a byte size: 1048576,
    /// 512MB, 16GiB, 1.5e9); the search stops at the first plan that fits.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub capacity: Option<u64>,
    /// Align every buffer's offset to this power of two (a byte size: 256, 4KiB).
    #[arg(long, value_name = "BYTES", default_value = "1", value_parser = parse_alignment,
          allow_negative_numbers = true)]
    pub alignment: u64,
    /// Stop the search after this many seconds (0: heuristics only; "inf": no limit).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub time_limit: Limit,
    /// Stop the search after this many nodes (deterministic, unlike --time-limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_nodes: Option<u64>,
    /// Write the plan as CSV: id,lower,upper,size,offset in input order (`-`: standard output,
    /// and the summary goes to standard error).
    #[arg(long, value_name = "SOLUTION.csv")]
    pub out: Option<PathBuf>,
    /// Draw the plan as SVG, time on x, offset on y (`-`: standard output, and the summary goes
    /// to standard error).
    #[arg(long, value_name = "PLOT.svg")]
    pub svg: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the summary (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
}

/// Parses `--alignment`: a power of two.
fn parse_alignment(s: &str) -> Result<u64, String> {
    let a = parse_bytes(s)?;
    if a.is_power_of_two() {
        Ok(a)
    } else {
        Err(format!("alignment must be a power of two, got {a}"))
    }
}

/// The result of one packing attempt ([`pack_with_limits`]).
#[derive(Debug)]
pub struct PackAttempt {
    /// The packer's answer.
    pub result: Result<Solution, CoreError>,
    /// Time spent in the packer.
    pub elapsed: Duration,
    /// True when the search stopped because the time limit was reached.
    pub timed_out: bool,
}

/// Packs `problem` with a wall-clock limit ([`Deadline`]) and a node limit.
pub fn pack_with_limits(
    problem: &Problem,
    capacity: Option<u64>,
    limit: Limit,
    max_nodes: Option<u64>,
) -> PackAttempt {
    let mut deadline = Deadline::from_now(limit.0);
    let options = PackOptions {
        capacity,
        budget: deadline.budget(max_nodes),
    };
    let result = pack(problem, options);
    PackAttempt {
        result,
        elapsed: deadline.elapsed(),
        timed_out: deadline.reached(),
    }
}

/// Checks `solution` with the independent verifier and returns its placements.
///
/// # Errors
/// [`Failure::Internal`] when the verifier rejects the plan or its peak is misreported.
pub fn verified(
    problem: &Problem,
    solution: &Solution,
    capacity: Option<u64>,
) -> Result<Vec<PlacedBuffer>, Failure> {
    if solution.offsets.len() != problem.len() {
        return Err(Failure::Internal(format!(
            "the plan has {} offsets for {} buffers",
            solution.offsets.len(),
            problem.len()
        )));
    }
    let placements = solution.placements(problem);
    verify(problem.buffers(), &placements, capacity)
        .map_err(|e| Failure::Internal(format!("the plan fails verification: {e}")))?;
    let peak = placements
        .iter()
        .map(|p| p.offset + p.size)
        .max()
        .unwrap_or(0);
    if peak != solution.peak {
        return Err(Failure::Internal(format!(
            "the plan reports peak {} but its buffers reach {peak}",
            solution.peak
        )));
    }
    Ok(placements)
}

/// The `--json` report (after `schema_version`, [`output::json`]).
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    /// The input's name (`<stdin>` for `-`, the embedded example's name without a file).
    file: &'a str,
    buffers: usize,
    /// The largest sum of sizes live at once (the max load, a lower bound on any plan).
    peak_requested: u64,
    /// The plan's peak (the arena it needs), or the best peak found when it does not fit.
    arena_size: u64,
    /// `arena_size / peak_requested`.
    ratio: f64,
    optimal: bool,
    /// Why the plan is not proven optimal (`leaf_too_large`, `time_limit`, `node_limit`,
    /// `capacity_met`, `heuristic_only`), or null when it is.
    unproven_reason: Option<&'static str>,
    /// Search nodes expanded (exact search, and buffers re-placed on large leaves).
    nodes: u64,
    elapsed_ms: f64,
    /// `--capacity`, or null.
    capacity: Option<u64>,
    /// Present only with `--capacity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    fits: Option<bool>,
    /// Present only when it does not fit: whether no plan can fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    proven: Option<bool>,
}

/// Runs `memplan plan`.
///
/// # Errors
/// See [`Failure`]; messages are ready to print.
pub fn run(args: &PlanArgs) -> Result<(), Failure> {
    let (name, data) = match &args.file {
        Some(path) => read_input(path)?,
        None => (EXAMPLE_NAME.to_owned(), EXAMPLE.as_bytes().to_vec()),
    };
    let problem = csv::parse(&name, &data, args.alignment)?;
    drop(data);
    let svg_path = args
        .svg
        .clone()
        .or_else(|| args.file.is_none().then(|| PathBuf::from(DEFAULT_SVG)));
    // With an output file on stdout, the report goes to stderr.
    let report_to_stderr = files::stdout_taken(&[
        ("--out", args.out.as_deref()),
        ("--svg", svg_path.as_deref()),
    ])?;
    let report = |text: &str| -> Result<(), Failure> {
        if report_to_stderr {
            output::err(text);
            Ok(())
        } else {
            output::out(text)
        }
    };
    let report_json = |r: &JsonReport| report(&output::json_line(r)?);

    let spinner = Spinner::start(format!("planning {name} ({} buffers)", problem.len()));
    let outcome = pack_with_limits(&problem, args.capacity, args.time_limit, args.max_nodes);
    drop(spinner);
    let elapsed_ms = (outcome.elapsed.as_secs_f64() * 1e6).round() / 1e3;

    let solution = match outcome.result {
        Ok(s) => s,
        Err(CoreError::CapacityExceeded {
            capacity,
            best_peak,
            max_load,
            proven,
        }) => {
            let ratio = if max_load == 0 {
                1.0
            } else {
                best_peak as f64 / max_load as f64
            };
            let how = if proven {
                "proven: no plan fits"
            } else {
                "not proven: the search budget ran out"
            };
            if args.json {
                report_json(&JsonReport {
                    file: &name,
                    buffers: problem.len(),
                    peak_requested: max_load,
                    arena_size: best_peak,
                    ratio,
                    optimal: false,
                    unproven_reason: None,
                    nodes: 0,
                    elapsed_ms,
                    capacity: Some(capacity),
                    fits: Some(false),
                    proven: Some(proven),
                })?;
            } else {
                let mut s = String::new();
                line(&mut s, "input", &name);
                line(&mut s, "buffers", &problem.len().to_string());
                line(&mut s, "max load", &amount(max_load));
                line(&mut s, "capacity", &amount(capacity));
                line(
                    &mut s,
                    "best peak",
                    &format!("{} (ratio {ratio:.5})", amount(best_peak)),
                );
                line(&mut s, "fits", &format!("no ({how})"));
                line(
                    &mut s,
                    "time",
                    &format!("{:.3} s", outcome.elapsed.as_secs_f64()),
                );
                report(&s)?;
            }
            let _ = writeln!(
                std::io::stderr(),
                "memplan: {name}: does not fit in {capacity} bytes; best peak found {best_peak} ({how})"
            );
            return Err(Failure::DoesNotFit);
        }
        Err(e) => return Err(Failure::Internal(format!("the packer failed: {e}"))),
    };

    let placements = verified(&problem, &solution, args.capacity)?;
    if let Some(out) = &args.out {
        write_plan(out, &placements)?;
    }
    if let Some(path) = &svg_path {
        let title = match &args.file {
            Some(f) if !files::is_std(f) => f
                .file_name()
                .map_or(name.clone(), |n| n.to_string_lossy().into_owned()),
            _ => name.clone(),
        };
        let labels = plot::Labels {
            name: &title,
            capacity: args.capacity,
        };
        let mut svg = Vec::new();
        plot::write(&mut svg, &problem, &solution, &labels)
            .map_err(|e| Failure::Internal(format!("cannot draw the plan: {e}")))?;
        write_output(path, svg)?;
    }

    if args.json {
        return report_json(&JsonReport {
            file: &name,
            buffers: problem.len(),
            peak_requested: solution.max_load,
            arena_size: solution.peak,
            ratio: solution.ratio(),
            optimal: solution.optimal,
            unproven_reason: solution.unproven.map(Unproven::as_str),
            nodes: solution.nodes,
            elapsed_ms,
            capacity: args.capacity,
            fits: args.capacity.map(|_| true),
            proven: None,
        });
    }
    let optimal = if solution.peak == solution.max_load {
        "yes (peak equals the max-load lower bound)".to_owned()
    } else if solution.optimal {
        "yes (proven by exhaustive search)".to_owned()
    } else {
        match solution.unproven {
            Some(Unproven::TimeLimit) => format!(
                "not proven (time limit of {} s reached)",
                args.time_limit.0.unwrap_or_default().as_secs_f64()
            ),
            Some(Unproven::NodeLimit) => format!(
                "not proven (node budget of {} reached)",
                args.max_nodes.unwrap_or(0)
            ),
            Some(why) => format!("not proven ({why})"),
            None => "not proven".to_owned(),
        }
    };
    let mut s = String::new();
    line(&mut s, "input", &name);
    line(&mut s, "buffers", &problem.len().to_string());
    line(&mut s, "max load", &amount(solution.max_load));
    line(&mut s, "peak", &amount(solution.peak));
    line(
        &mut s,
        "ratio",
        &format!("{:.5} (peak / max load)", solution.ratio()),
    );
    line(&mut s, "optimal", &optimal);
    if let Some(c) = args.capacity {
        line(&mut s, "fits", &format!("yes, within {}", amount(c)));
    }
    line(
        &mut s,
        "time",
        &format!(
            "{:.3} s, {} search nodes",
            outcome.elapsed.as_secs_f64(),
            solution.nodes
        ),
    );
    line(&mut s, "verified", "yes (memplan_core::check::verify)");
    let shown = |p: &Path| {
        if files::is_std(p) {
            "standard output".to_owned()
        } else {
            p.display().to_string()
        }
    };
    if let Some(out) = &args.out {
        line(&mut s, "plan", &format!("written to {}", shown(out)));
    }
    if let Some(path) = &svg_path {
        line(&mut s, "plot", &format!("written to {}", shown(path)));
    }
    report(&s)
}

/// Writes the plan as `id,lower,upper,size,offset`.
fn write_plan(path: &Path, placements: &[PlacedBuffer]) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| {
        Failure::Input(format!("{}: cannot write: {e}", path.display()))
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "lower", "upper", "size", "offset"])
        .map_err(|e| fail(&e))?;
    for p in placements {
        w.write_record([
            p.id.as_str(),
            &p.lower.to_string(),
            &p.upper.to_string(),
            &p.size.to_string(),
            &p.offset.to_string(),
        ])
        .map_err(|e| fail(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| fail(&e))?;
    write_output(path, bytes)
}

/// Appends one `  label  value` line of the summary.
fn line(s: &mut String, label: &str, value: &str) {
    s.push_str(&format!("  {label:<9} {value}\n"));
}

/// Bytes, exact and in a binary unit: `1048576 B (1.00 MiB)`.
fn amount(v: u64) -> String {
    if v < 1024 {
        format!("{v} B")
    } else {
        format!("{v} B ({})", plot::bytes(v))
    }
}

/// Writes to stdout ([`output::out`]: a closed pipe ends quietly).
///
/// # Errors
/// As [`output::out`].
pub fn print_out(s: &str) -> Result<(), Failure> {
    output::out(s)
}
