//! `memplan analyze`: the report a user fighting fragmentation or out-of-memory errors wants,
//! from any trace `memplan` reads.
//!
//! For a PyTorch snapshot it gives the peak requested and reserved bytes; the fragmentation at
//! the end and at the peak of requested bytes, split as PyTorch's `segsum` splits it (rounding
//! inside blocks vs free gaps between them; [`layout`]); the largest stranded free ranges with
//! the call sites of the blocks pinning them; a what-if table replaying the same history
//! through PyTorch's allocator model, its expandable-segments mode, memplan's online
//! allocator and the plan-guided allocator ([`advice`]); and one recommendation with the exact
//! line that applies it. A snapshot without a history (state only) gets the fragmentation view
//! and a sentence on what needs a history. Other traces (profiler, DTR, memplan's format, CSV)
//! have no segments: they get the peaks, the what-if table and the recommendation.
//!
//! `--json` prints one object whose first key is `schema_version`
//! ([`crate::output::SCHEMA_VERSION`]), holding one report per device read.

pub mod advice;
pub mod layout;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use memplan_core::trace::Trace;
use serde::Serialize;

use self::advice::{Recommendation, WhatIf};
use self::layout::{Fragmentation, Stranded};
use crate::io::files::read_input;
use crate::io::snapshot::model::{Action, Generation, Recording};
use crate::io::trace::Format;
use crate::io::{DeviceChoice, kineto, snapshot, timeline, trace};
use crate::plot::bytes;
use crate::{Failure, output};

/// Arguments of `memplan analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The file (`-` for standard input): a PyTorch snapshot pickle (with a history, or state only), a profiler JSON
    /// (.json or .json.gz), a DTR log, memplan's trace format, or an id,lower,upper,size CSV.
    pub file: PathBuf,
    /// The device to report (snapshots and profiler traces record several): an index, `auto`
    /// for the one with the most allocations, or `all` for each device in turn.
    #[arg(long, value_name = "N|auto|all", default_value = "auto")]
    pub device: DeviceChoice,
    /// How many stranded free ranges to list.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
    /// Print one JSON object on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// The report on one device's recording, or on one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file, as named on the command line.
    pub file: String,
    /// What the file is (e.g. `PyTorch snapshot (torch 2.1+)`).
    pub kind: String,
    /// The device reported, when the file records devices.
    pub device: Option<u32>,
    /// Events in the history (snapshots) or the trace.
    pub events: usize,
    /// Allocations in it.
    pub allocations: usize,
    /// Blocks live when the history starts (recording began mid-run).
    pub pre_existing_blocks: usize,
    /// Segments reserved when the history starts.
    pub pre_existing_segments: usize,
    /// Largest sum of requested bytes live; `None` without a history.
    pub peak_requested: Option<u64>,
    /// Largest reserved bytes the recording shows (segments), when it records them.
    pub recorded_peak_reserved: Option<u64>,
    /// `oom` entries in the history.
    pub oom_events: usize,
    /// Fragmentation at the peak of requested bytes (snapshots with a history).
    pub fragmentation_at_peak: Option<Fragmentation>,
    /// Fragmentation at the end (snapshots).
    pub fragmentation_at_end: Option<Fragmentation>,
    /// Which moment `stranded` describes: `peak` or `end`.
    pub stranded_at: Option<&'static str>,
    /// The largest free ranges that live blocks keep reserved, largest first.
    pub stranded: Vec<Stranded>,
    /// Peak reserved bytes of each allocator over the same history.
    pub what_if: Vec<WhatIf>,
    /// What to do.
    pub recommendation: Recommendation,
    /// Things the reader or the report could not do, or that qualify the figures.
    pub notes: Vec<String>,
}

#[derive(Serialize)]
struct Json<'a> {
    file: &'a str,
    reports: &'a [Report],
}

/// Runs `memplan analyze`.
///
/// # Errors
/// An unreadable file, or one with neither an allocation history nor a memory state
/// ([`Failure::Input`]); an allocator rejecting a valid free is a bug ([`Failure::Internal`]).
pub fn run(args: &AnalyzeArgs) -> Result<(), Failure> {
    let (name, data) = read_input(&args.file)?;
    let reports = analyze(&name, &data, args.device, args.top)?;
    if args.json {
        output::json(&Json {
            file: &name,
            reports: &reports,
        })
    } else {
        let text: Vec<String> = reports.iter().map(render).collect();
        output::out(text.join("\n"))
    }
}

/// The reports on `data` (one per device for [`DeviceChoice::All`], else one).
///
/// # Errors
/// As [`run`].
pub fn analyze(
    name: &str,
    data: &[u8],
    device: DeviceChoice,
    top: usize,
) -> Result<Vec<Report>, Failure> {
    let format = trace::detect(data);
    match format {
        Format::Snapshot => {
            let recordings = match device {
                DeviceChoice::All => snapshot::load_all(name, data)?,
                one => vec![snapshot::load(name, data, one)?],
            };
            return recordings
                .into_iter()
                .map(|rec| of_recording(name, rec, top))
                .collect();
        }
        Format::SnapshotCsv => {
            return Ok(vec![of_recording(
                name,
                snapshot::flat::load(name, data)?,
                top,
            )?]);
        }
        _ => {}
    }
    if device == DeviceChoice::All {
        return Err(Failure::Input(format!(
            "{name}: --device all reads PyTorch snapshots; for this file pick one with --device N"
        )));
    }
    let report = match format {
        Format::Profiler | Format::ProfilerCsv => {
            let k = if format == Format::ProfilerCsv {
                kineto::flat::read(name, data, device)?
            } else {
                kineto::read(name, data, device)?
            };
            let kind = format!(
                "{}, {}",
                format.describe(),
                kineto::device_type_name(k.device_type)
            );
            let mut notes = k.notes.clone();
            // PyTorch's recorded reserved bytes are comparable with a replay of the window only
            // when nothing was allocated before it.
            let recorded = k
                .recorded
                .filter(|r| r.allocated_at_start == 0)
                .map(|r| r.peak_reserved);
            if let Some(r) = k.recorded.filter(|r| r.allocated_at_start > 0) {
                notes.push(format!(
                    "PyTorch's recorded peak reserved, {}, includes the {} allocated before the \
                     profiling window, which the replay does not see: it is not the baseline \
                     here.",
                    bytes(r.peak_reserved),
                    bytes(r.allocated_at_start)
                ));
            }
            let device = u32::try_from(k.device).ok();
            of_trace(name, kind, device, &k.trace, recorded, notes)?
        }
        Format::Timeline => {
            let t = timeline::read(name, data)?;
            let notes = trace::timeline_notes(&t);
            of_trace(
                name,
                format.describe().to_owned(),
                None,
                &t.trace,
                None,
                notes,
            )?
        }
        _ => {
            let (trace, _) = trace::read_with_segments(name, data, device)?;
            of_trace(
                name,
                format.describe().to_owned(),
                None,
                &trace,
                None,
                Vec::new(),
            )?
        }
    };
    Ok(vec![report])
}

/// The report on one device of a snapshot.
fn of_recording(name: &str, rec: Recording, top: usize) -> Result<Report, Failure> {
    let kind = format!(
        "PyTorch snapshot ({})",
        match rec.generation {
            Generation::Torch20 => "torch 2.0 format",
            Generation::Torch21 => "torch 2.1+ format",
            Generation::Torch28 => "torch 2.8+ format",
            Generation::SegmentList => "the segment list of torch.cuda.memory_snapshot()",
            Generation::EventsCsv => "a flat CSV export of its history",
        }
    );
    let allocations = rec
        .history
        .iter()
        .filter(|e| e.action == Action::Alloc)
        .count();
    let oom_events = rec
        .history
        .iter()
        .filter(|e| e.action == Action::Oom)
        .count();
    let end = layout::Layout::of(&rec.end);
    let pre_existing_blocks = rec
        .start
        .iter()
        .flat_map(|s| &s.blocks)
        .filter(|b| b.state.is_active())
        .count();
    let mut notes = rec.warnings.clone();
    let mut report = Report {
        file: name.to_owned(),
        kind,
        device: Some(rec.device),
        events: rec.history.len(),
        allocations,
        pre_existing_blocks,
        pre_existing_segments: rec.start.len(),
        peak_requested: None,
        recorded_peak_reserved: None,
        oom_events,
        fragmentation_at_peak: None,
        fragmentation_at_end: Some(end.fragmentation()),
        stranded_at: Some("end"),
        stranded: end.stranded(&rec.sites, top),
        what_if: Vec::new(),
        recommendation: Recommendation::default(),
        notes: Vec::new(),
    };
    if allocations == 0 {
        notes.push(format!(
            "This file holds the allocator's state at one moment only (no allocation in device \
             {}'s history): the peaks, the what-if table and a recommendation need an \
             allocation history. {}",
            rec.device,
            advice::RECORD_HISTORY
        ));
        report.recommendation = advice::recommend_from_state(&report);
        report.notes = notes;
        return Ok(report);
    }
    let peak = layout::peak(&rec);
    let at_peak = peak.layout.fragmentation();
    report.peak_requested = Some(at_peak.requested);
    report.recorded_peak_reserved = Some(peak.peak_reserved);
    report.fragmentation_at_peak = Some(at_peak);
    report.stranded_at = Some("peak");
    report.stranded = peak.layout.stranded(&rec.sites, top);
    if pre_existing_blocks > 0 || !rec.start.is_empty() {
        notes.push(format!(
            "The history starts mid-run: {pre_existing_blocks} blocks in {} segments were live \
             when recording began (reconstructed from the final state); the allocator models \
             allocate them first, in their own segments, so their figures are close to, not \
             equal to, what PyTorch did.",
            rec.start.len()
        ));
    }
    notes.push(format!(
        "At the peak, block sizes inside the history are requests rounded to {} bytes as \
         PyTorch rounds them; rounding there is a lower bound.",
        layout::ROUND
    ));
    let snapshot = snapshot::from_recording(name, rec)?;
    let segments: Vec<u64> = snapshot.segments.iter().map(|&(a, _)| a).collect();
    report.what_if = advice::what_if(&snapshot.trace, segments, Some(peak.peak_reserved))?;
    report.recommendation = advice::recommend(name, &report);
    report.notes = notes;
    Ok(report)
}

/// The report on a trace without segments (profiler, DTR, memplan's format, CSV); `recorded`
/// is PyTorch's peak reserved when the file records a comparable one.
fn of_trace(
    name: &str,
    kind: String,
    device: Option<u32>,
    trace: &Trace,
    recorded: Option<u64>,
    mut notes: Vec<String>,
) -> Result<Report, Failure> {
    notes.push(
        "This file records no segments: fragmentation and stranded ranges need a PyTorch \
         snapshot."
            .to_owned(),
    );
    let mut report = Report {
        file: name.to_owned(),
        kind,
        device,
        events: trace.len(),
        allocations: trace.allocs(),
        pre_existing_blocks: 0,
        pre_existing_segments: 0,
        peak_requested: Some(trace.peak_requested()),
        recorded_peak_reserved: recorded,
        oom_events: 0,
        fragmentation_at_peak: None,
        fragmentation_at_end: None,
        stranded_at: None,
        stranded: Vec::new(),
        what_if: Vec::new(),
        recommendation: Recommendation::default(),
        notes,
    };
    report.what_if = advice::what_if(trace, Vec::new(), recorded)?;
    report.recommendation = advice::recommend(name, &report);
    Ok(report)
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let device = r.device.map_or(String::new(), |d| format!(", device {d}"));
    let _ = writeln!(o, "{}: {}{device}", r.file, r.kind);
    if r.allocations == 0 {
        let f = r.fragmentation_at_end.unwrap_or(Fragmentation {
            reserved: 0,
            allocated: 0,
            requested: 0,
            rounding: 0,
            free_gaps: 0,
            segments: 0,
            blocks: 0,
        });
        let _ = writeln!(
            o,
            "  state only: {} active blocks in {} segments ({} reserved); the history has {} \
             events and no allocation",
            f.blocks,
            f.segments,
            bytes(f.reserved),
            r.events
        );
    } else {
        let _ = writeln!(
            o,
            "  {} events, {} allocations{}",
            r.events,
            r.allocations,
            if r.pre_existing_blocks > 0 || r.pre_existing_segments > 0 {
                format!(
                    "; {} blocks in {} segments live before the history starts",
                    r.pre_existing_blocks, r.pre_existing_segments
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(p) = r.peak_requested {
        let _ = writeln!(o, "  peak requested      {:>12}  ({p} bytes)", bytes(p));
    }
    if let Some(p) = r.recorded_peak_reserved {
        let _ = writeln!(
            o,
            "  peak reserved       {:>12}  ({p} bytes, recorded)",
            bytes(p)
        );
    }
    if r.oom_events > 0 {
        let _ = writeln!(o, "  out-of-memory events: {}", r.oom_events);
    }
    if r.fragmentation_at_peak.is_some() || r.fragmentation_at_end.is_some() {
        let _ = writeln!(
            o,
            "\nFragmentation (split as torch.cuda._memory_viz segsum splits it)"
        );
        let _ = writeln!(
            o,
            "  {:<9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>6} {:>8} {:>7}",
            "moment",
            "reserved",
            "allocated",
            "requested",
            "rounding",
            "free gaps",
            "frag.",
            "segments",
            "blocks"
        );
        for (moment, f) in [
            ("peak", &r.fragmentation_at_peak),
            ("end", &r.fragmentation_at_end),
        ] {
            if let Some(f) = f {
                let _ = writeln!(
                    o,
                    "  {:<9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>5.1}% {:>8} {:>7}",
                    moment,
                    bytes(f.reserved),
                    bytes(f.allocated),
                    bytes(f.requested),
                    bytes(f.rounding),
                    bytes(f.free_gaps),
                    100.0 * f.fraction(),
                    f.segments,
                    f.blocks
                );
            }
        }
    }
    if let Some(at) = r.stranded_at {
        if r.stranded.is_empty() {
            let _ = writeln!(
                o,
                "\nNo free range is stranded between live blocks at the {at}."
            );
        } else {
            let _ = writeln!(
                o,
                "\nLargest stranded free ranges at the {at} (free space live blocks keep reserved)"
            );
            for (i, s) in r.stranded.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "  {}. {} at {:#x}, in the {} segment at {:#x} holding {} live blocks",
                    i + 1,
                    bytes(s.bytes),
                    s.address,
                    bytes(s.segment_bytes),
                    s.segment_address,
                    s.live_blocks
                );
                for p in &s.pinned_by {
                    let _ = writeln!(
                        o,
                        "       pinned by {} at {:#x}, {}",
                        bytes(p.bytes),
                        p.address,
                        match (&p.site, p.before_history) {
                            (Some(site), _) => format!("allocated at {site}"),
                            (None, true) => "allocated before the history began (no stack)".into(),
                            (None, false) => "allocated where no stack was recorded".into(),
                        }
                    );
                }
            }
        }
    }
    if !r.what_if.is_empty() {
        let _ = writeln!(o, "\nWhat if (peak reserved over the same history)");
        let _ = writeln!(
            o,
            "  {:<38} {:>13} {:>12} {:>8}",
            "allocator", "peak reserved", "saved", "vs base"
        );
        for w in &r.what_if {
            let _ = writeln!(
                o,
                "  {:<38} {:>13} {:>12} {:>7.1}%",
                w.label,
                bytes(w.peak_reserved),
                if w.saved >= 0 {
                    bytes(w.saved.unsigned_abs())
                } else {
                    format!("-{}", bytes(w.saved.unsigned_abs()))
                },
                100.0 * w.ratio
            );
        }
    }
    let _ = writeln!(o, "\nRecommendation: {}", r.recommendation.summary);
    for line in &r.recommendation.apply {
        let _ = writeln!(o, "    {line}");
    }
    for n in &r.notes {
        let _ = writeln!(o, "\nNote: {n}");
    }
    o
}
