//! `memplan replay`: replay an allocation trace through allocators, side by side.
//!
//! Each allocator serves the trace's allocations and frees in order. The report gives, per
//! allocator, the peak of requested bytes live (the same for all), the peak reserved from the
//! device, utilisation (their ratio), the number of reservations (cudaMalloc / map calls), the
//! event at which it ran out of memory under `--capacity`, and its speed in ns per operation.
//! For a PyTorch snapshot the `torch` model is given the segment addresses PyTorch recorded,
//! so it reproduces PyTorch's addresses exactly.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use memplan_core::allocator::planned::PlanCounters;
use memplan_core::allocator::{
    AllocError, Allocator, OnlineAllocator, OnlineConfig, PlanOptions, PlannedAllocator,
    PlannedConfig, TorchConfig, TorchExpandableModel, TorchModel, build_plan,
};
use memplan_core::lifetime::{Analysis, Boundaries, analyze};
use memplan_core::plan::Plan;
use memplan_core::trace::{Event, Trace};
use serde::Serialize;
use svg::Document;
use svg::node::element::{Group, Line, Polyline, Text};

use crate::{Failure, plot, traceio, workload};

/// Which allocators to replay through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// PyTorch's CUDA caching allocator (model).
    Torch,
    /// PyTorch's allocator with `expandable_segments:True` (model).
    TorchExpandable,
    /// memplan's online allocator.
    Memplan,
    /// memplan's plan-guided allocator, with a plan made from the first
    /// --profile-iterations iterations of the trace.
    MemplanPlan,
    /// All of the above.
    All,
}

/// Arguments of `memplan replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace: a PyTorch snapshot pickle, a profiler JSON (.json or .json.gz), memplan's
    /// trace format, or an id,lower,upper,size CSV.
    pub trace: PathBuf,
    /// Allocator(s) to replay through.
    #[arg(long, value_enum, default_value = "all")]
    pub allocator: Which,
    /// Device memory available: report whether and at which event each allocator runs out.
    #[arg(long, value_name = "BYTES")]
    pub capacity: Option<u64>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Draw reserved and allocated bytes over the trace, per allocator.
    #[arg(long, value_name = "TIMELINE.svg")]
    pub svg: Option<PathBuf>,
    /// Replay the (one-iteration) trace as N iterations; allocations it never frees are made
    /// once and stay live.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    pub repeat: usize,
    /// Vary the repeated iterations, seeded: MoE-like sizes and sequence lengths. Needs
    /// --repeat 2 or more.
    #[arg(long, value_name = "SEED")]
    pub dynamic: Option<u64>,
    /// memplan-plan: iterations profiled to make the plan (as a profiling run of the same job
    /// would record them); the whole trace is then served from the plan.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_positive)]
    pub profile_iterations: usize,
    /// memplan-plan: profile only the first N events of the trace (a profiling run stopped
    /// early); the rest of the trace is served from what that profile planned.
    #[arg(long, value_name = "N")]
    pub profile_events: Option<usize>,
    /// memplan-plan: serve from this plan file (written by `memplan plan-trace`) instead of
    /// profiling the trace.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
}

/// A loaded workload: the trace, the segment addresses PyTorch recorded (snapshots only) and
/// a description of the `--repeat`/`--dynamic` transformation (when there is one).
pub type Loaded = (Trace, Option<Vec<u64>>, Option<String>);

/// Reads `path` and turns it into the workload `--repeat N [--dynamic SEED]` asks for.
/// Returns the trace, the segment addresses PyTorch recorded (snapshots only) and a
/// description of the transformation (when there is one).
///
/// # Errors
/// Unreadable or malformed traces, `--dynamic` without `--repeat` 2 or more, or ids that
/// `--repeat` would overflow ([`Failure::Input`]).
pub fn load(
    path: &std::path::Path,
    repeat: usize,
    dynamic: Option<u64>,
) -> Result<Loaded, Failure> {
    if dynamic.is_some() && repeat < 2 {
        return Err(Failure::Input(
            "--dynamic varies iterations between each other: it needs --repeat N with N >= 2"
                .to_owned(),
        ));
    }
    let name = path.display().to_string();
    let data =
        std::fs::read(path).map_err(|e| Failure::Input(format!("{name}: cannot read: {e}")))?;
    let (trace, segments) = traceio::read_with_segments(&name, &data)?;
    let transformed = (repeat > 1).then(|| workload::describe(&trace, repeat, dynamic));
    let trace = match dynamic {
        Some(seed) => workload::dynamic(&trace, repeat, seed)?,
        None if repeat > 1 => workload::repeat(&trace, repeat)?,
        None => trace,
    };
    Ok((trace, segments, transformed))
}

/// Builds the plan for `trace` from its first `profile_iterations` iterations.
///
/// # Errors
/// [`Failure::Input`] when the trace cannot be planned (sizes or event counts overflowing
/// the plan's fields).
pub fn plan_of(
    trace: &Trace,
    profile_iterations: usize,
    profile_events: Option<usize>,
) -> Result<(Analysis, Plan), Failure> {
    let analysis = analyze(trace);
    let options = PlanOptions {
        profile_iterations,
        profile_events,
        ..PlanOptions::default()
    };
    let plan = build_plan(&analysis, trace.len(), &options)
        .map_err(|e| Failure::Input(format!("cannot plan the trace: {e}")))?;
    Ok((analysis, plan))
}

/// One line describing where iterations come from in `analysis`.
pub fn describe_iterations(analysis: &Analysis) -> String {
    match analysis.boundaries {
        Boundaries::Markers => format!("{} iterations (from markers)", analysis.iterations()),
        Boundaries::Detected(p) => format!(
            "{} iterations of {} allocations detected (offset {}, {:.1} % match)",
            p.iterations,
            p.period,
            p.offset,
            100.0 * p.match_fraction
        ),
        Boundaries::None => "no repeated iteration found: one iteration".to_owned(),
    }
}

/// Parses a positive integer (a number of iterations).
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("the number of iterations must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a positive integer")),
    }
}

/// One allocator's replay.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The allocator's name.
    pub allocator: &'static str,
    /// Largest sum of requested bytes live.
    pub peak_allocated: u64,
    /// Largest bytes reserved from the device.
    pub peak_reserved: u64,
    /// `peak_allocated / peak_reserved` (1 when nothing was reserved).
    pub utilization: f64,
    /// Reservation calls (cudaMalloc / page mappings).
    pub reservations: u64,
    /// Index of the event that ran out of memory, if any (the replay stops there).
    pub oom_at_event: Option<usize>,
    /// Wall time per alloc or free, in nanoseconds.
    pub ns_per_op: f64,
    /// memplan-plan only: hits, misses, re-plans and the plan's arena.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReport>,
    /// (event index, allocated, reserved) samples for the timeline: maxima over windows of
    /// events, so peaks show.
    #[serde(skip)]
    pub samples: Vec<(usize, u64, u64)>,
}

/// What memplan-plan did in a replay.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// Iterations profiled.
    pub profile_iterations: usize,
    /// Where the iterations come from.
    pub iterations: String,
    /// Arena bytes of the plan as built (before any re-plan).
    pub arena_size: u64,
    /// Slots of the prologue and of the steady iteration.
    pub prologue_slots: usize,
    /// Slots of the steady iteration.
    pub iteration_slots: usize,
    /// Requests served from a slot.
    pub hits: u64,
    /// Requests not served from a slot.
    pub misses: u64,
    /// Misses placed where the plan leaves room.
    pub misses_in_room: u64,
    /// Times a miss grew the arena.
    pub growths: u64,
    /// Times the iteration was re-planned.
    pub replans: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    trace: &'a str,
    /// Iterations the trace was replayed as (`--repeat`).
    repeat: usize,
    /// The `--dynamic` seed, if any.
    dynamic: Option<u64>,
    events: usize,
    results: &'a [Outcome],
}

/// Runs `memplan replay`.
///
/// # Errors
/// Unreadable or malformed traces, `--dynamic` without `--repeat` 2 or more, or ids that
/// `--repeat` would overflow ([`Failure::Input`]); an allocator that rejects a free the
/// trace guarantees valid is a bug ([`Failure::Internal`]).
pub fn run(args: &ReplayArgs) -> Result<(), Failure> {
    let name = args.trace.display().to_string();
    let (trace, segments, transformed) = load(&args.trace, args.repeat, args.dynamic)?;
    let mut results = Vec::new();
    let want = |w: Which| args.allocator == w || args.allocator == Which::All;
    if want(Which::Torch) {
        let mut model = TorchModel::new(TorchConfig {
            capacity: args.capacity,
            ..TorchConfig::default()
        });
        if let Some(addrs) = &segments {
            model = model.with_segment_addresses(addrs.iter().copied());
        }
        results.push(replay(&trace, &mut model)?);
    }
    if want(Which::TorchExpandable) {
        let mut model = TorchExpandableModel::new(TorchConfig {
            capacity: args.capacity,
            ..TorchConfig::default()
        });
        results.push(replay(&trace, &mut model)?);
    }
    if want(Which::Memplan) {
        let mut a = OnlineAllocator::new(OnlineConfig {
            capacity: args.capacity,
            ..OnlineConfig::default()
        });
        results.push(replay(&trace, &mut a)?);
    }
    if want(Which::MemplanPlan) {
        let (profiled, iterations, plan) = match &args.plan {
            Some(path) => {
                let file = path.display().to_string();
                let bytes = std::fs::read(path)
                    .map_err(|e| Failure::Input(format!("{file}: cannot read: {e}")))?;
                let plan =
                    Plan::from_bytes(&bytes).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
                (0, format!("plan file {file}"), plan)
            }
            None => {
                let (analysis, plan) =
                    plan_of(&trace, args.profile_iterations, args.profile_events)?;
                let k = args.profile_iterations.min(analysis.iterations().max(1));
                (k, describe_iterations(&analysis), plan)
            }
        };
        let mut report = PlanReport {
            profile_iterations: profiled,
            iterations,
            arena_size: plan.arena_size,
            prologue_slots: plan.prologue.len(),
            iteration_slots: plan.iteration.len(),
            hits: 0,
            misses: 0,
            misses_in_room: 0,
            growths: 0,
            replans: 0,
        };
        let config = PlannedConfig {
            capacity: args.capacity,
            ..PlannedConfig::default()
        };
        let mut a = PlannedAllocator::new(plan, config)
            .map_err(|e| Failure::Internal(format!("memplan-plan: {e}")))?;
        let mut outcome = replay(&trace, &mut a)?;
        let c: PlanCounters = a.counters();
        report.hits = c.hits;
        report.misses = c.misses;
        report.misses_in_room = c.misses_in_room;
        report.growths = c.growths;
        report.replans = c.replans;
        outcome.plan = Some(report);
        results.push(outcome);
    }
    if let Some(path) = &args.svg {
        let doc = timeline(&name, trace.len(), &results);
        svg::save(path, &doc)
            .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", path.display())))?;
    }
    if args.json {
        let report = Report {
            trace: &name,
            repeat: args.repeat,
            dynamic: args.dynamic,
            events: trace.len(),
            results: &results,
        };
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "{name}: {} events, {} allocations",
            trace.len(),
            trace.allocs()
        );
        if let Some(t) = &transformed {
            println!("workload: {t}");
        }
        println!(
            "{:<16} {:>16} {:>16} {:>11} {:>12} {:>10} {:>9}",
            "allocator",
            "peak allocated",
            "peak reserved",
            "utilization",
            "reservations",
            "oom at",
            "ns/op"
        );
        for r in &results {
            println!(
                "{:<16} {:>16} {:>16} {:>10.2}% {:>12} {:>10} {:>9.0}",
                r.allocator,
                r.peak_allocated,
                r.peak_reserved,
                100.0 * r.utilization,
                r.reservations,
                r.oom_at_event
                    .map_or("-".to_owned(), |i| format!("event {i}")),
                r.ns_per_op
            );
        }
        for r in &results {
            if let Some(p) = &r.plan {
                let source = if p.profile_iterations == 0 {
                    p.iterations.clone()
                } else {
                    format!(
                        "{} profiled iteration(s); {}",
                        p.profile_iterations, p.iterations
                    )
                };
                println!(
                    "memplan-plan: plan from {source}: arena {} bytes, {} prologue + {} \
                     iteration slots; hits {}, misses {} ({} where the plan left room, {} arena \
                     growths), re-plans {}",
                    p.arena_size,
                    p.prologue_slots,
                    p.iteration_slots,
                    p.hits,
                    p.misses,
                    p.misses_in_room,
                    p.growths,
                    p.replans
                );
            }
        }
        if let Some(path) = &args.svg {
            println!("timeline written to {}", path.display());
        }
    }
    Ok(())
}

/// Replays `trace` through `a`.
///
/// # Errors
/// [`Failure::Internal`] when the allocator rejects a free of a live allocation.
pub fn replay(trace: &Trace, a: &mut dyn Allocator) -> Result<Outcome, Failure> {
    let every = (trace.len() / 2000).max(1);
    let mut addr_of: HashMap<u64, Option<u64>> = HashMap::new();
    let mut samples = vec![(0, 0, 0)];
    let mut window = (0u64, 0u64);
    let mut oom_at_event = None;
    let mut ops = 0u64;
    let start = Instant::now();
    for (i, e) in trace.events().iter().enumerate() {
        match *e {
            Event::Alloc { id, size, stream } => {
                ops += 1;
                match a.alloc(size, stream) {
                    Ok(addr) => {
                        addr_of.insert(id, Some(addr));
                    }
                    // An allocator without zero-size blocks hands out no memory for them.
                    Err(AllocError::ZeroSize) => {
                        addr_of.insert(id, None);
                    }
                    Err(AllocError::OutOfMemory { .. }) => {
                        oom_at_event = Some(i);
                        break;
                    }
                    Err(e) => return Err(Failure::Internal(format!("{}: {e}", a.name()))),
                }
            }
            Event::Free { id } => {
                ops += 1;
                if let Some(Some(addr)) = addr_of.remove(&id) {
                    a.free(addr)
                        .map_err(|e| Failure::Internal(format!("{}: event {i}: {e}", a.name())))?;
                }
            }
            Event::Marker(_) => {}
        }
        // Each sample is the maximum over its window of events, so no peak is lost.
        let s = a.stats();
        window = (window.0.max(s.allocated), window.1.max(s.reserved));
        if (i + 1) % every == 0 {
            samples.push((i + 1, window.0, window.1));
            window = (0, 0);
        }
    }
    let elapsed = start.elapsed();
    let s = a.stats();
    samples.push((trace.len(), s.allocated, s.reserved));
    Ok(Outcome {
        allocator: a.name(),
        peak_allocated: s.peak_allocated,
        peak_reserved: s.peak_reserved,
        utilization: if s.peak_reserved == 0 {
            1.0
        } else {
            s.peak_allocated as f64 / s.peak_reserved as f64
        },
        reservations: s.reservations,
        oom_at_event,
        ns_per_op: if ops == 0 {
            0.0
        } else {
            elapsed.as_nanos() as f64 / ops as f64
        },
        plan: None,
        samples,
    })
}

/// Reserved (bold) and allocated (faint) bytes over the events, one colour per allocator.
fn timeline(name: &str, events: usize, results: &[Outcome]) -> Document {
    let (w, h, left, top, bottom) = (1000.0, 480.0, 90.0, 40.0, 50.0);
    let (pw, ph) = (w - left - 20.0, h - top - bottom);
    let ymax = results
        .iter()
        .map(|r| r.peak_reserved.max(r.peak_allocated))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |i: usize| left + pw * i as f64 / events.max(1) as f64;
    let y = |v: u64| top + ph * (1.0 - v as f64 / ymax);
    let colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let mut doc = Document::new()
        .set("viewBox", (0, 0, w, h))
        .set("width", w)
        .set("height", h)
        .set("font-family", "sans-serif")
        .set("font-size", 12);
    doc = doc.add(
        Text::new(format!(
            "{name}: reserved (bold) and allocated (faint) bytes per event"
        ))
        .set("x", left)
        .set("y", 22),
    );
    for k in 0..=4 {
        let v = (ymax * k as f64 / 4.0) as u64;
        doc = doc
            .add(
                Line::new()
                    .set("x1", left)
                    .set("x2", left + pw)
                    .set("y1", y(v))
                    .set("y2", y(v))
                    .set("stroke", "#ddd"),
            )
            .add(
                Text::new(plot::bytes(v))
                    .set("x", left - 6.0)
                    .set("y", y(v) + 4.0)
                    .set("text-anchor", "end"),
            );
    }
    doc = doc.add(
        Text::new(format!("event (0 … {events})"))
            .set("x", left + pw / 2.0)
            .set("y", h - 15.0)
            .set("text-anchor", "middle"),
    );
    for (k, r) in results.iter().enumerate() {
        let c = colours[k % colours.len()];
        let pts = |f: &dyn Fn(&(usize, u64, u64)) -> u64| {
            r.samples
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.0), y(f(s))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let g = Group::new()
            .add(
                Polyline::new()
                    .set("points", pts(&|s| s.2))
                    .set("fill", "none")
                    .set("stroke", c)
                    .set("stroke-width", 2),
            )
            .add(
                Polyline::new()
                    .set("points", pts(&|s| s.1))
                    .set("fill", "none")
                    .set("stroke", c)
                    .set("stroke-opacity", 0.45)
                    .set("stroke-width", 1),
            )
            .add(
                Text::new(format!(
                    "{}: peak reserved {}",
                    r.allocator,
                    plot::bytes(r.peak_reserved)
                ))
                .set("x", left + 10.0)
                .set("y", top + 16.0 + 16.0 * k as f64)
                .set("fill", c),
            );
        doc = doc.add(g);
    }
    doc
}

#[cfg(test)]
mod tests {
    use memplan_core::trace::TraceBuilder;

    use super::*;

    #[test]
    fn replays_and_reports_oom() {
        let mut b = TraceBuilder::new();
        b.alloc(1, 3 << 20, 0).unwrap();
        b.alloc(2, 3 << 20, 0).unwrap();
        b.free(1).unwrap();
        b.alloc(3, 1 << 20, 0).unwrap();
        let t = b.finish();
        let mut a = OnlineAllocator::new(OnlineConfig::default());
        let r = replay(&t, &mut a).unwrap();
        assert_eq!((r.peak_allocated, r.oom_at_event), (6 << 20, None));
        assert!(r.peak_reserved >= r.peak_allocated);
        let mut a = OnlineAllocator::new(OnlineConfig {
            capacity: Some(4 << 20),
            ..OnlineConfig::default()
        });
        let r = replay(&t, &mut a).unwrap();
        assert_eq!(r.oom_at_event, Some(1));
    }
}
