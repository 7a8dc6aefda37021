//! PyTorch memory snapshots (`torch.cuda.memory._dump_snapshot` pickles, and the bare segment
//! list `torch.cuda.memory_snapshot()` returns) as recordings and allocation traces.
//!
//! [`load`] reads one device into the format-independent [`model::Recording`]: the segments
//! and blocks at dump time (`end`), the same state when recording began (`start`, the history
//! undone in reverse by [`reconstruct`]), and the history. Every generation of the format is
//! read ([`model::Generation`]): torch 2.0 (blocks carry `history`, no `address`), 2.1+
//! (`frames`), 2.8+ (`compile_context`, `user_metadata`, top-level `external_annotations`),
//! and the bare list. `external_annotations` (record_function START/END marks) become
//! [`model::Action::Annotation`] entries of their device's history, placed by `time_us`
//! (before the first entry recorded after them; at the end when untimed).
//!
//! [`read`] turns a recording into a [`Trace`]: it opens with every block live at `start`
//! (the pre-existing allocations, in address order; a history usually starts mid-run, because
//! `_record_memory_history` is called once the model is loaded), then a
//! `pytorch history starts` marker when there were any, then the history: `alloc` becomes an
//! allocation whose id is the block address, `free_completed` (the block back in the pool) its
//! free; `free_requested` carries no memory change; `oom`, `snapshot` and annotations become
//! markers. Blocks still `active_pending_free` at dump time stay live. A history without any
//! `alloc` (a state-only snapshot) is an error saying what the file holds and how to record
//! one; [`load`] reads such files (their state is still worth a report).
//!
//! # Devices
//! `device_traces[d]` is device `d`'s history; segments carry `device`. [`DeviceChoice::Auto`]
//! reads the device with the most `alloc` entries (a warning names the others when several
//! have some), or, with none anywhere, the one with the most segments. [`load_all`] gives every
//! device.
//!
//! # Robustness
//! Before decoding, [`guard::check`] bounds nesting depth and decoded size; [`unpickle`]
//! decodes with Python's memo semantics (serde_pickle's decoder silently turns re-referenced
//! memoised values into `None`) and bounds depth and size again; then every
//! field is type- and range-checked, errors naming the path (`segments[3].blocks[2].size`),
//! and every address range is checked for overflow. Where the history and the state disagree,
//! the reader records a one-line warning and goes on. See `../shared/docs/pytorch-allocator.md`.

use std::collections::HashSet;

use memplan_core::trace::{Marker, Trace, TraceBuilder};

use super::{DeviceChoice, InputError};
use model::{Action, DeviceSummary, Generation, HistoryEvent, Recording, Segment};

pub mod flat;
pub mod guard;
pub mod model;
pub mod parse;
pub mod reconstruct;
pub mod unpickle;

/// One device of a snapshot as a trace, plus what a replay of PyTorch needs.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Allocations and frees, annotations as markers. Allocation ids are the addresses
    /// PyTorch gave the blocks.
    pub trace: Trace,
    /// Address and size of each segment: those existing when recording began, in address
    /// order, then every `segment_alloc`/`segment_map` in order (a replay of PyTorch's
    /// allocator reuses those addresses).
    pub segments: Vec<(u64, u64)>,
    /// Blocks live when recording began (the pre-existing allocations): they open the trace
    /// as allocations, before its first event.
    pub pre_existing: usize,
    /// Segments existing when recording began (the first entries of `segments`).
    pub pre_existing_segments: usize,
    /// The device read.
    pub device: u32,
    /// What the reader could not reconcile, one line each (the recording's, then the trace's).
    pub warnings: Vec<String>,
    /// The recording the trace was made from (so `memplan analyze` does not parse twice).
    pub recording: Recording,
}

/// True when `data` looks like a pickle (protocol 2 or later starts with `0x80`).
pub fn is_pickle(data: &[u8]) -> bool {
    data.first() == Some(&0x80)
}

fn error(file: &str, message: String) -> InputError {
    InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    }
}

/// Decodes and parses the whole file.
fn decode(file: &str, data: &[u8]) -> Result<parse::Parsed, InputError> {
    guard::check(data).map_err(|m| error(file, m))?;
    let root =
        unpickle::decode(data).map_err(|e| error(file, format!("not a readable pickle: {e}")))?;
    parse::parse(&root).map_err(|m| error(file, m))
}

/// Every device the file has anything for, in device order.
fn summaries(p: &parse::Parsed) -> Vec<DeviceSummary> {
    let mut by_device: std::collections::BTreeMap<u32, DeviceSummary> = Default::default();
    fn row(
        by_device: &mut std::collections::BTreeMap<u32, DeviceSummary>,
        device: u32,
    ) -> &mut DeviceSummary {
        by_device.entry(device).or_insert(DeviceSummary {
            device,
            events: 0,
            allocs: 0,
            segments: 0,
        })
    }
    for (d, t) in p.traces.iter().enumerate() {
        if let (false, Ok(d)) = (t.is_empty(), u32::try_from(d)) {
            let s = row(&mut by_device, d);
            s.events += t.len();
            s.allocs += t.iter().filter(|e| e.action == Action::Alloc).count();
        }
    }
    for (d, _) in &p.segments {
        row(&mut by_device, *d).segments += 1;
    }
    by_device.into_values().collect()
}

/// The devices as a list for messages: `0 (12 events, 3 allocs, 2 segments), 1 (…)`.
fn list_devices(devices: &[DeviceSummary]) -> String {
    if devices.is_empty() {
        return "none".to_owned();
    }
    devices
        .iter()
        .map(|s| {
            format!(
                "{} ({} events, {} allocs, {} segments)",
                s.device, s.events, s.allocs, s.segments
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which device `choice` names, and a warning when the automatic choice had rivals.
fn choose(
    file: &str,
    devices: &[DeviceSummary],
    choice: DeviceChoice,
) -> Result<(u32, Option<String>), InputError> {
    match choice {
        DeviceChoice::All => Err(error(
            file,
            "--device all reports each device (memplan analyze); one recording is one \
             device's: pick one with --device N"
                .to_owned(),
        )),
        DeviceChoice::Index(n) => {
            if devices.iter().any(|s| s.device == n) {
                Ok((n, None))
            } else {
                Err(error(
                    file,
                    format!(
                        "no events or segments on device {n}; the file has device(s) {}",
                        list_devices(devices)
                    ),
                ))
            }
        }
        DeviceChoice::Auto => {
            let busy: Vec<&DeviceSummary> = devices.iter().filter(|s| s.allocs > 0).collect();
            // Ties go to the lowest index (max_by_key keeps the last maximum: reverse).
            let best = if busy.is_empty() {
                devices.iter().rev().max_by_key(|s| s.segments)
            } else {
                busy.iter().rev().max_by_key(|s| s.allocs).copied()
            };
            let device = best.map_or(0, |s| s.device);
            let warning = (busy.len() > 1).then(|| {
                let found: Vec<String> = busy
                    .iter()
                    .map(|s| format!("{} ({} allocs)", s.device, s.allocs))
                    .collect();
                format!(
                    "allocations on devices {}: read device {device}, the busiest; --device N                      picks another",
                    found.join(", ")
                )
            });
            Ok((device, warning))
        }
    }
}

/// Device `device`'s recording from the parsed file.
fn recording(p: &parse::Parsed, devices: &[DeviceSummary], device: u32) -> Recording {
    let mut warnings = p.warnings.clone();
    let mut end: Vec<Segment> = p
        .segments
        .iter()
        .filter(|(d, _)| *d == device)
        .map(|(_, s)| s.clone())
        .collect();
    end.sort_by_key(|s| s.address);
    let raw: &[HistoryEvent] = usize::try_from(device)
        .ok()
        .and_then(|d| p.traces.get(d))
        .map_or(&[], Vec::as_slice);
    let start = reconstruct::start_state(&end, raw, device, &mut warnings);
    let history = with_annotations(raw, &p.annotations, device);
    Recording {
        device,
        devices: devices.to_vec(),
        generation: p.generation.unwrap_or(Generation::Torch21),
        end,
        start,
        history,
        sites: p.sites.clone(),
        warnings,
    }
}

/// `raw` with the device's `external_annotations` placed by time: each goes before the first
/// timed entry recorded after it, untimed ones at the end.
fn with_annotations(
    raw: &[HistoryEvent],
    annotations: &[(u32, Option<i64>, String)],
    device: u32,
) -> Vec<HistoryEvent> {
    let mut notes: Vec<(Option<i64>, &str)> = annotations
        .iter()
        .filter(|(d, _, _)| *d == device)
        .map(|(_, t, text)| (*t, text.as_str()))
        .collect();
    if notes.is_empty() {
        return raw.to_vec();
    }
    // Untimed last; stable, so equal times keep file order.
    notes.sort_by_key(|(t, _)| (t.is_none(), *t));
    let note = |(time_us, text): (Option<i64>, &str)| HistoryEvent {
        action: Action::Annotation,
        addr: 0,
        size: 0,
        stream: 0,
        time_us,
        site: None,
        note: Some(text.to_owned()),
    };
    let mut out = Vec::with_capacity(raw.len() + notes.len());
    let mut pending = notes.into_iter().peekable();
    for e in raw {
        if let Some(t) = e.time_us {
            while let Some(n) = pending.next_if(|(nt, _)| nt.is_some_and(|nt| nt < t)) {
                out.push(note(n));
            }
        }
        out.push(e.clone());
    }
    out.extend(pending.map(note));
    out
}

/// Reads one device of a snapshot (any generation, state-only files included) into a
/// [`Recording`].
///
/// # Errors
/// An undecodable pickle (with the decoder's position), one nested too deep or expanding too
/// much, a field of the wrong type or out of range (naming its path), an unknown action
/// (naming `device_traces[d][i]`), [`DeviceChoice::Index`] of a device the file has nothing
/// for (the message lists those it has), or [`DeviceChoice::All`] (use [`load_all`]).
pub fn load(file: &str, data: &[u8], device: DeviceChoice) -> Result<Recording, InputError> {
    let parsed = decode(file, data)?;
    let devices = summaries(&parsed);
    let (device, warning) = choose(file, &devices, device)?;
    let mut rec = recording(&parsed, &devices, device);
    rec.warnings.extend(warning);
    Ok(rec)
}

/// One [`Recording`] per device that has events or segments, in device order (for
/// `memplan analyze --device all`); empty for a file with nothing on any device.
///
/// # Errors
/// As [`load`], except the device choice.
pub fn load_all(file: &str, data: &[u8]) -> Result<Vec<Recording>, InputError> {
    let parsed = decode(file, data)?;
    let devices = summaries(&parsed);
    Ok(devices
        .iter()
        .map(|s| recording(&parsed, &devices, s.device))
        .collect())
}

/// Reads one device of a snapshot as a trace (see the module docs).
///
/// # Errors
/// As [`load`]; also a history without any `alloc` (a state-only snapshot): the message says
/// what the file holds and the PyTorch call that records a history.
pub fn read(file: &str, data: &[u8], device: DeviceChoice) -> Result<Snapshot, InputError> {
    from_recording(file, load(file, data, device)?)
}

/// The trace of one device's recording ([`load`], [`load_all`]), as [`read`] makes it.
///
/// # Errors
/// As [`read`].
pub fn from_recording(file: &str, recording: Recording) -> Result<Snapshot, InputError> {
    if recording.allocs() == 0 {
        return Err(error(file, state_only(&recording)));
    }
    let mut warnings = recording.warnings.clone();
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let mut live = HashSet::new();
    let mut pre_existing = 0;
    for (seg, block) in recording.pre_existing() {
        let stream = u32::try_from(seg.stream).unwrap_or(u32::MAX);
        b.alloc(block.address, block.requested_size, stream)
            .map_err(|err| {
                error(
                    file,
                    format!(
                        "block at {:#x} live before the history: {err}",
                        block.address
                    ),
                )
            })?;
        live.insert(block.address);
        pre_existing += 1;
    }
    if pre_existing > 0 {
        b.marker(Marker::Annotation("pytorch history starts".into()));
    }
    let mut segments: Vec<(u64, u64)> = recording
        .start
        .iter()
        .map(|s| (s.address, s.total_size))
        .collect();
    let pre_existing_segments = segments.len();
    let (mut skipped, mut worded) = (0usize, 0usize);
    let mut skip = |warnings: &mut Vec<String>, what: String| {
        skipped += 1;
        if worded < 5 {
            worded += 1;
            warnings.push(what);
        }
    };
    for e in &recording.history {
        let fail = |err| error(file, format!("history entry at {:#x}: {err}", e.addr));
        match e.action {
            Action::Alloc => {
                if !live.insert(e.addr) {
                    skip(
                        &mut warnings,
                        format!(
                            "alloc at {:#x} of a live block: the earlier block is taken as freed",
                            e.addr
                        ),
                    );
                    b.free(e.addr).map_err(fail)?;
                }
                b.alloc(e.addr, e.size, e.stream).map_err(fail)?;
            }
            Action::FreeCompleted => {
                if live.remove(&e.addr) {
                    b.free(e.addr).map_err(fail)?;
                } else {
                    skip(
                        &mut warnings,
                        format!("free_completed at {:#x} of no live block: skipped", e.addr),
                    );
                }
            }
            Action::SegmentAlloc | Action::SegmentMap => segments.push((e.addr, e.size)),
            Action::FreeRequested | Action::SegmentFree | Action::SegmentUnmap => {}
            Action::Snapshot => b.marker(Marker::Annotation("pytorch snapshot".into())),
            Action::Oom => b.marker(Marker::Annotation(match &e.note {
                Some(n) => format!("pytorch oom: {} bytes requested, {n}", e.size),
                None => format!("pytorch oom: {} bytes requested", e.size),
            })),
            Action::Annotation => b.marker(Marker::Annotation(match &e.note {
                Some(n) => n.clone(),
                None => "pytorch user_defined".to_owned(),
            })),
        }
    }
    if skipped > worded {
        warnings.push(format!(
            "{} more history entries did not fit the replayed state",
            skipped - worded
        ));
    }
    Ok(Snapshot {
        trace: b.finish(),
        segments,
        pre_existing,
        pre_existing_segments,
        device: recording.device,
        warnings,
        recording,
    })
}

/// The error for a recording without any `alloc`: what it holds, how to record a history.
fn state_only(rec: &Recording) -> String {
    let state = describe_state(&rec.end);
    if rec.generation == Generation::SegmentList {
        return format!(
            "{state}, without an allocation history (the segment list that \
             torch.cuda.memory_snapshot() returns). {RECORD_HISTORY}"
        );
    }
    format!(
        "a snapshot with {state} on device {} but no allocation in its history ({} history \
             entries; devices: {}): nothing to replay. {RECORD_HISTORY}",
        rec.device,
        rec.history.len(),
        list_devices(&rec.devices)
    )
}

/// What a user runs to record the allocation history memplan replays.
pub const RECORD_HISTORY: &str = "Record one with \
    torch.cuda.memory._record_memory_history(max_entries=100000) before the code to analyse \
    runs, then torch.cuda.memory._dump_snapshot(\"snapshot.pickle\")";

/// "N segments (B bytes reserved) holding M active blocks (A bytes)".
pub fn describe_state(segments: &[Segment]) -> String {
    let reserved = segments
        .iter()
        .fold(0u64, |s, seg| s.saturating_add(seg.total_size));
    let active = segments
        .iter()
        .flat_map(|s| &s.blocks)
        .filter(|b| b.state.is_active());
    let (blocks, bytes) = active.fold((0usize, 0u64), |(n, sum), b| {
        (n + 1, sum.saturating_add(b.size))
    });
    format!(
        "{} segments ({reserved} bytes reserved) holding {blocks} active blocks ({bytes} bytes)",
        segments.len()
    )
}

#[cfg(test)]
mod tests;
