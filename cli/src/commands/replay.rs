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
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use memplan_core::allocator::registry::{self, AllocatorKind, Settings};
use memplan_core::allocator::{AllocError, Allocator, GuidedCounters};
use memplan_core::lifetime::{Analysis, Boundaries};
use memplan_core::plan::{Plan, PlanOptions, TracePlan};
use memplan_core::trace::{Event, Trace};
use serde::Serialize;
use svg::Document;

use crate::io::DeviceChoice;
use crate::io::files::{self, read_input, write_output};
use crate::output::{self, out};
use crate::progress::Bar;
use crate::units::parse_bytes;
use crate::{Failure, plot, workload};

/// Which allocators to replay through: one of the registry's (by its name), or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// One allocator.
    One(AllocatorKind),
    /// Every allocator of the registry, in its order.
    All,
}

impl Which {
    /// The allocators, in the order the report lists them.
    pub fn kinds(self) -> Vec<AllocatorKind> {
        match self {
            Which::One(k) => vec![k],
            Which::All => AllocatorKind::ALL.to_vec(),
        }
    }
}

impl ValueEnum for Which {
    /// The registry's names, then `all`.
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: OnceLock<Vec<Which>> = OnceLock::new();
        VARIANTS.get_or_init(|| {
            let all = AllocatorKind::ALL.into_iter().map(Which::One);
            all.chain([Which::All]).collect()
        })
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Which::One(k) => PossibleValue::new(k.name()).help(k.about()),
            Which::All => PossibleValue::new("all").help("All of the above"),
        })
    }
}

/// Arguments of `memplan replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace: a PyTorch memory snapshot pickle, a PyTorch profiler (Kineto) JSON (.json or
    /// .json.gz), a DTR operator log, memplan's trace format, or an id,lower,upper,size CSV
    /// (detected from the content); `-` reads it from standard input.
    pub trace: PathBuf,
    /// The device whose events to replay (snapshots and profiler traces record several):
    /// an index, or `auto` for the one with the most allocations.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub device: DeviceChoice,
    /// Allocator(s) to replay through.
    #[arg(long, value_enum, default_value = "all")]
    pub allocator: Which,
    /// Device memory available, a byte size (1048576, 512MB, 16GiB, 1.5e9): report whether and
    /// at which event each allocator runs out; exit 2 when one does (after the report).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub capacity: Option<u64>,
    /// Print one JSON object on stdout instead of the table (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
    /// Draw reserved and allocated bytes over the trace, per allocator (`-`: standard output,
    /// and the report goes to standard error).
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
    /// guided: iterations profiled to make the plan (as a profiling run of the same job
    /// would record them); the whole trace is then served from the plan.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_positive)]
    pub profile_iterations: usize,
    /// guided: profile only the first N events of the trace (a profiling run stopped
    /// early); the rest of the trace is served from what that profile planned.
    #[arg(long, value_name = "N")]
    pub profile_events: Option<usize>,
    /// guided: serve from this plan file (written by `memplan plan-trace`; `-` reads it from
    /// standard input) instead of profiling the trace.
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
    device: DeviceChoice,
    repeat: usize,
    dynamic: Option<u64>,
) -> Result<Loaded, Failure> {
    if dynamic.is_some() && repeat < 2 {
        return Err(Failure::Input(
            "--dynamic varies iterations between each other: it needs --repeat N with N >= 2"
                .to_owned(),
        ));
    }
    let (name, data) = read_input(path)?;
    let (trace, segments) = crate::io::trace::read_with_segments(&name, &data, device)?;
    let transformed = (repeat > 1).then(|| workload::describe(&trace, repeat, dynamic));
    let trace = match dynamic {
        Some(seed) => workload::dynamic(&trace, repeat, seed)?,
        None if repeat > 1 => workload::repeat(&trace, repeat)?,
        None => trace,
    };
    Ok((trace, segments, transformed))
}

/// Builds the plan for `trace` from its first `profile_iterations` iterations
/// ([`Plan::from_trace`]).
///
/// # Errors
/// [`Failure::Input`] when the trace cannot be planned (sizes or event counts overflowing
/// the plan's fields).
pub fn plan_of(
    trace: &Trace,
    profile_iterations: usize,
    profile_events: Option<usize>,
) -> Result<TracePlan, Failure> {
    let options = PlanOptions {
        profile_iterations,
        profile_events,
        ..PlanOptions::default()
    };
    Plan::from_trace(trace, &options)
        .map_err(|e| Failure::Input(format!("cannot plan the trace: {e}")))
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
pub struct AllocatorReplay {
    /// The allocator's name.
    pub allocator: &'static str,
    /// Largest sum of requested bytes live (`peak_requested` in JSON, as in every command).
    #[serde(rename = "peak_requested")]
    pub peak_allocated: u64,
    /// Largest bytes reserved from the device.
    pub peak_reserved: u64,
    /// `peak_allocated / peak_reserved` (1 when nothing was reserved).
    pub utilization: f64,
    /// Reservation calls (cudaMalloc / page mappings).
    pub reservations: u64,
    /// Index of the event that ran out of memory, if any (the replay stops there).
    pub oom_at_event: Option<usize>,
    /// Time per alloc or free spent in the allocator's `alloc` and `free` calls, in
    /// nanoseconds (the replay's own bookkeeping is left out).
    pub ns_per_op: f64,
    /// guided only: hits, misses, re-plans and the plan's arena.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReport>,
    /// (event index, allocated, reserved) samples for the timeline: maxima over windows of
    /// events, so peaks show.
    #[serde(skip)]
    pub samples: Vec<(usize, u64, u64)>,
}

/// What the guided allocator did in a replay.
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

/// The `--json` report (after `schema_version`, [`output::json`]).
#[derive(Serialize)]
struct Report<'a> {
    /// The trace's name (`<stdin>` for `-`).
    file: &'a str,
    /// `--capacity`, or null.
    capacity: Option<u64>,
    /// Iterations the trace was replayed as (`--repeat`).
    repeat: usize,
    /// The `--dynamic` seed, if any.
    dynamic: Option<u64>,
    events: usize,
    allocations: usize,
    results: &'a [AllocatorReplay],
}

/// Runs `memplan replay`.
///
/// # Errors
/// Unreadable or malformed traces, `--dynamic` without `--repeat` 2 or more, or ids that
/// `--repeat` would overflow ([`Failure::Input`]); an allocator that rejects a free the
/// trace guarantees valid is a bug ([`Failure::Internal`]).
pub fn run(args: &ReplayArgs) -> Result<(), Failure> {
    let name = if files::is_std(&args.trace) {
        files::STDIN_NAME.to_owned()
    } else {
        args.trace.display().to_string()
    };
    let report_to_stderr = files::stdout_taken(&[("--svg", args.svg.as_deref())])?;
    if files::is_std(&args.trace) && args.plan.as_deref().is_some_and(files::is_std) {
        return Err(Failure::Input(
            "the trace and --plan both name `-`: only one can come from standard input".to_owned(),
        ));
    }
    let (trace, segments, transformed) = load(&args.trace, args.device, args.repeat, args.dynamic)?;
    let kinds = args.allocator.kinds();
    let (plan, report) = if kinds.contains(&AllocatorKind::Guided) {
        let (plan, report) = guided_plan(args, &trace)?;
        (Some(plan), Some(report))
    } else {
        (None, None)
    };
    let settings = Settings {
        capacity: args.capacity,
        plan,
        segment_addresses: segments.unwrap_or_default(),
        ..Settings::default()
    };
    let mut results = Vec::new();
    let mut bar = Bar::new((kinds.len() * trace.len()) as u64, "replay");
    for kind in kinds {
        let mut a = registry::build(kind, &settings)
            .map_err(|e| Failure::Internal(format!("{kind}: {e}")))?;
        bar.set_message(format!("replay through {kind}"));
        let mut outcome = replay_observed(&trace, a.as_mut(), &mut |n| bar.inc(n))?;
        if let (Some(c), Some(report)) = (a.guided_counters(), &report) {
            outcome.plan = Some(report.clone().with_counters(c));
        }
        results.push(outcome);
    }
    drop(bar);
    if let Some(path) = &args.svg {
        let doc = timeline(&name, trace.len(), args.capacity, &results);
        write_output(path, doc.to_string())?;
    }
    let text = if args.json {
        output::json_line(&Report {
            file: &name,
            capacity: args.capacity,
            repeat: args.repeat,
            dynamic: args.dynamic,
            events: trace.len(),
            allocations: trace.allocs(),
            results: &results,
        })?
    } else {
        table(args, &name, &trace, transformed.as_deref(), &results)
    };
    if report_to_stderr {
        output::err(&text);
    } else {
        out(&text)?;
    }
    // Running out under --capacity is a failure of the run (exit 2), said after the report.
    let ooms: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.oom_at_event
                .map(|i| format!("{} at event {i}", r.allocator))
        })
        .collect();
    if !ooms.is_empty() {
        output::err(format!(
            "memplan: {name}: out of memory under --capacity {}: {}\n",
            args.capacity
                .map_or_else(|| "(none)".to_owned(), |c| c.to_string()),
            ooms.join(", ")
        ));
        return Err(Failure::DoesNotFit);
    }
    Ok(())
}

/// The text report: the trace, the workload, one line per allocator, the guided plan.
fn table(
    args: &ReplayArgs,
    name: &str,
    trace: &Trace,
    transformed: Option<&str>,
    results: &[AllocatorReplay],
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{name}: {} events, {} allocations",
        trace.len(),
        trace.allocs()
    );
    if let Some(t) = transformed {
        let _ = writeln!(s, "workload: {t}");
    }
    let _ = writeln!(
        s,
        "{:<16} {:>16} {:>16} {:>11} {:>12} {:>10} {:>9}",
        "allocator",
        "peak requested",
        "peak reserved",
        "utilization",
        "reservations",
        "oom at",
        "ns/op"
    );
    for r in results {
        let _ = writeln!(
            s,
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
    for r in results {
        if let Some(p) = &r.plan {
            let source = if p.profile_iterations == 0 {
                p.iterations.clone()
            } else {
                format!(
                    "{} profiled iteration(s); {}",
                    p.profile_iterations, p.iterations
                )
            };
            let _ = writeln!(
                s,
                "guided: plan from {source}: arena {} bytes, {} prologue + {} \
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
        if !files::is_std(path) {
            let _ = writeln!(s, "timeline written to {}", path.display());
        }
    }
    s
}

/// The plan the guided allocator serves (`--plan`, or one built from the trace) and the
/// start of its report.
fn guided_plan(args: &ReplayArgs, trace: &Trace) -> Result<(Plan, PlanReport), Failure> {
    let (profiled, iterations, plan) = match &args.plan {
        Some(path) => {
            let (file, bytes) = read_input(path)?;
            let plan =
                Plan::from_bytes(&bytes).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
            (0, format!("plan file {file}"), plan)
        }
        None => {
            let built = plan_of(trace, args.profile_iterations, args.profile_events)?;
            let iterations = describe_iterations(&built.analysis);
            (built.profiled_iterations, iterations, built.plan)
        }
    };
    let report = PlanReport {
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
    Ok((plan, report))
}

impl PlanReport {
    /// The report with the allocator's counters after the replay.
    fn with_counters(self, c: GuidedCounters) -> PlanReport {
        PlanReport {
            hits: c.hits,
            misses: c.misses,
            misses_in_room: c.misses_in_room,
            growths: c.growths,
            replans: c.replans,
            ..self
        }
    }
}

/// Replays `trace` through `a`.
///
/// # Errors
/// [`Failure::Internal`] when the allocator rejects a free of a live allocation.
pub fn replay(trace: &Trace, a: &mut dyn Allocator) -> Result<AllocatorReplay, Failure> {
    replay_observed(trace, a, &mut |_| {})
}

/// Events between two progress reports of [`replay_observed`].
const PROGRESS_STEP: usize = 1 << 16;

/// Events timed together by [`replay_observed`] (it divides [`PROGRESS_STEP`]).
const BLOCK: usize = 256;
const _: () = assert!(PROGRESS_STEP % BLOCK == 0);

/// A timed block slower per operation than this many times the median block is taken as
/// interrupted ([`allocator_ns_per_op`]).
const INTERRUPTED: f64 = 10.0;

/// Most events [`sampling_ns`] times per pass.
const SAMPLING_EVENTS: usize = 1 << 16;

/// No allocation: a free whose id was never allocated in the trace (or a marker).
const NO_SLOT: u32 = u32::MAX;

/// The dense slot of each event's allocation: an `Alloc` gets the next slot (its ordinal among
/// the allocations), a `Free` the slot of the live allocation of its id ([`NO_SLOT`] when its
/// id is not live), a marker [`NO_SLOT`]. Built before the timed replay, so the replay looks
/// addresses up in a `Vec` instead of hashing trace ids.
///
/// Returns the slots and the number of allocations.
fn dense_slots(trace: &Trace) -> Result<(Vec<u32>, usize), Failure> {
    let mut slot_of: HashMap<u64, u32> = HashMap::with_capacity(1024);
    let mut next = 0u32;
    let mut slots = Vec::with_capacity(trace.len());
    for e in trace.events() {
        slots.push(match *e {
            Event::Alloc { id, .. } => {
                let slot = next;
                next = next
                    .checked_add(1)
                    .filter(|&n| n != NO_SLOT)
                    .ok_or_else(|| Failure::Input("more than 2^32 - 2 allocations".to_owned()))?;
                slot_of.insert(id, slot);
                slot
            }
            Event::Free { id } => slot_of.remove(&id).unwrap_or(NO_SLOT),
            Event::Marker(_) => NO_SLOT,
        });
    }
    Ok((slots, next as usize))
}

/// [`replay`], calling `progress(n)` after every [`PROGRESS_STEP`] events (and for the rest at
/// the end), `n` being the events done since the last call.
///
/// `ns_per_op` measures the allocator, not this loop: trace ids are mapped to dense slots
/// before the clock starts ([`dense_slots`]); the clock runs per block of [`BLOCK`] events
/// and stops around the progress reports; the per-event stats sampling (a `stats()` call and
/// two maxima, needed for the timeline) is timed afterwards on its own, with no allocation or
/// free, and subtracted; blocks the OS interrupted are left out ([`allocator_ns_per_op`]).
///
/// # Errors
/// As [`replay`].
fn replay_observed(
    trace: &Trace,
    a: &mut dyn Allocator,
    progress: &mut dyn FnMut(u64),
) -> Result<AllocatorReplay, Failure> {
    let every = (trace.len() / 2000).max(1);
    let (slots, allocs) = dense_slots(trace)?;
    // The address of each slot's allocation while it is live; `None` when it is not, or when
    // an allocator without zero-size blocks handed out no memory for it.
    let mut addr_of: Vec<Option<u64>> = vec![None; allocs];
    let mut samples = Vec::with_capacity(trace.len() / every + 2);
    samples.push((0, 0, 0));
    let mut window = (0u64, 0u64);
    let mut oom_at_event = None;
    // Per block of BLOCK events: the time it took, its allocs and frees, its events sampled.
    let mut blocks: Vec<(Duration, u64, usize)> = Vec::with_capacity(trace.len() / BLOCK + 1);
    let mut reported = 0usize;
    let by_block = trace.events().chunks(BLOCK).zip(slots.chunks(BLOCK));
    'blocks: for (b, (block, block_slots)) in by_block.enumerate() {
        let (mut ops, mut sampled) = (0u64, 0usize);
        let start = Instant::now();
        for (i, (e, &slot)) in (b * BLOCK..).zip(block.iter().zip(block_slots)) {
            match *e {
                Event::Alloc { size, stream, .. } => {
                    ops += 1;
                    match a.alloc(size, stream) {
                        Ok(addr) => addr_of[slot as usize] = Some(addr),
                        // An allocator without zero-size blocks hands out no memory for them.
                        Err(AllocError::ZeroSize) => {}
                        Err(AllocError::OutOfMemory { .. }) => {
                            oom_at_event = Some(i);
                            blocks.push((start.elapsed(), ops, sampled));
                            break 'blocks;
                        }
                        Err(e) => return Err(Failure::Internal(format!("{}: {e}", a.name()))),
                    }
                }
                Event::Free { .. } => {
                    ops += 1;
                    if let Some(addr) = addr_of.get_mut(slot as usize).and_then(Option::take) {
                        a.free(addr).map_err(|e| {
                            Failure::Internal(format!("{}: event {i}: {e}", a.name()))
                        })?;
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
            sampled += 1;
        }
        blocks.push((start.elapsed(), ops, sampled));
        let end = b * BLOCK + block.len();
        if end % PROGRESS_STEP == 0 {
            progress((end - reported) as u64);
            reported = end;
        }
    }
    progress((trace.len() - reported) as u64);
    let sampled: usize = blocks.iter().map(|b| b.2).sum();
    let ns_per_op = allocator_ns_per_op(&blocks, sampling_ns(a, sampled, every));
    let s = a.stats();
    samples.push((trace.len(), s.allocated, s.reserved));
    Ok(AllocatorReplay {
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
        ns_per_op,
        plan: None,
        samples,
    })
}

/// ns per event that the replay loop of [`replay_observed`] spends sampling `a`'s stats, with
/// no allocation or free: the same `stats()` call, maxima and sample pushes over `events`
/// events (at most [`SAMPLING_EVENTS`]), the fastest of three passes (0 for no events).
fn sampling_ns(a: &dyn Allocator, events: usize, every: usize) -> f64 {
    let events = events.min(SAMPLING_EVENTS);
    if events == 0 {
        return 0.0;
    }
    let mut samples = Vec::with_capacity(events / every + 1);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        samples.clear();
        let mut window = (0u64, 0u64);
        let start = Instant::now();
        for i in 0..events {
            let s = std::hint::black_box(a).stats();
            window = (window.0.max(s.allocated), window.1.max(s.reserved));
            if (i + 1) % every == 0 {
                samples.push((i + 1, window.0, window.1));
                window = (0, 0);
            }
        }
        best = best.min(start.elapsed());
        std::hint::black_box(&samples);
    }
    best.as_nanos() as f64 / events as f64
}

/// ns per alloc or free from the replay's timed `blocks` (time, allocs and frees, events
/// sampled), less `sampling_ns` per event sampled. A block slower per operation than
/// [`INTERRUPTED`] times the median block was interrupted (the process was descheduled, which
/// on a busy machine costs milliseconds against the tens of microseconds of a block) and is
/// left out, its operations too. 0 when there were no operations.
fn allocator_ns_per_op(blocks: &[(Duration, u64, usize)], sampling_ns: f64) -> f64 {
    let per_op = |&(t, ops, _): &(Duration, u64, usize)| t.as_nanos() as f64 / ops as f64;
    let mut rates: Vec<f64> = blocks.iter().filter(|b| b.1 > 0).map(per_op).collect();
    if rates.is_empty() {
        return 0.0;
    }
    rates.sort_by(f64::total_cmp);
    let limit = INTERRUPTED * rates[rates.len() / 2];
    let kept = blocks.iter().filter(|b| b.1 > 0 && per_op(b) <= limit);
    let (time, ops, sampled) = kept.fold((0.0, 0u64, 0usize), |(t, o, s), b| {
        (t + b.0.as_nanos() as f64, o + b.1, s + b.2)
    });
    ((time - sampling_ns * sampled as f64) / ops as f64).max(0.0)
}

/// Reserved (bold) and allocated (faint) bytes over the events, one colour per allocator,
/// with the capacity line and a marker where an allocator ran out ([`plot::timeline`]).
fn timeline(
    name: &str,
    events: usize,
    capacity: Option<u64>,
    results: &[AllocatorReplay],
) -> Document {
    let series: Vec<plot::timeline::Series<'_>> = results
        .iter()
        .map(|r| plot::timeline::Series {
            name: r.allocator,
            samples: &r.samples,
            peak_reserved: r.peak_reserved,
            oom_at_event: r.oom_at_event,
        })
        .collect();
    let labels = plot::timeline::Labels {
        name,
        events,
        capacity,
    };
    plot::timeline::draw(&labels, &series)
}

#[cfg(test)]
mod tests {
    use memplan_core::allocator::OnlineAllocator;
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
        let mut a = OnlineAllocator::default();
        let r = replay(&t, &mut a).unwrap();
        assert_eq!((r.peak_allocated, r.oom_at_event), (6 << 20, None));
        assert!(r.peak_reserved >= r.peak_allocated);
        let mut a = OnlineAllocator::with_capacity(4 << 20);
        let r = replay(&t, &mut a).unwrap();
        assert_eq!(r.oom_at_event, Some(1));
    }

    #[test]
    fn allocator_names_are_the_registrys_and_all() {
        for k in AllocatorKind::ALL {
            assert_eq!(Which::from_str(k.name(), false), Ok(Which::One(k)));
        }
        assert_eq!(Which::from_str("all", false), Ok(Which::All));
        assert_eq!(Which::All.kinds(), AllocatorKind::ALL);
        for old in ["memplan", "memplan-plan", "plan"] {
            assert!(Which::from_str(old, false).is_err(), "{old}");
        }
    }
}
