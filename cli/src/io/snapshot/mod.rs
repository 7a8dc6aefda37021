//! PyTorch memory snapshots (`torch.cuda.memory._dump_snapshot` pickles) as allocation traces.
//!
//! Reads `device_traces[0]` (the first device's history): `alloc` becomes an allocation whose
//! id is the block address (addresses are reused only after their free, which the trace
//! builder checks), `free_completed` (the block is back in the allocator's pool) its free;
//! `free_requested` is the user's release and carries no memory change of its own. The
//! `segment_alloc` addresses are kept in order, because a faithful replay of PyTorch's
//! allocator needs the addresses cudaMalloc returned. See `../shared/docs/pytorch-allocator.md`.
//!
//! A history usually starts mid-run (`_record_memory_history` is called once the model is
//! loaded): a block it frees without having allocated it was allocated before recording began,
//! and opens the trace as an allocation ([`Snapshot::pre_existing`] counts them). Blocks
//! allocated before it and never freed are not reconstructed yet. A snapshot with no
//! allocation at all (state only) is an error saying what it holds and how to record one.

use memplan_core::trace::{Marker, Trace, TraceBuilder};
use serde_pickle::{DeOptions, HashableValue, Value};

use super::{DeviceChoice, InputError};

pub mod model;

/// A snapshot's first device history, as a trace plus what a replay of PyTorch needs.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Allocations and frees, annotations as markers. Allocation ids are the addresses
    /// PyTorch gave the blocks.
    pub trace: Trace,
    /// Address and size of every `segment_alloc`, in order.
    pub segments: Vec<(u64, u64)>,
    /// Blocks allocated before the history starts (recording began mid-run) and freed in it:
    /// they open the trace as allocations, before its first event.
    pub pre_existing: usize,
}

/// True when `data` looks like a pickle (protocol 2 or later starts with `0x80`).
pub fn is_pickle(data: &[u8]) -> bool {
    data.first() == Some(&0x80)
}

/// Reads a snapshot pickle.
///
/// # Errors
/// An undecodable pickle, a missing `device_traces`, an entry without the fields its action
/// needs, an unknown action, or an inconsistent history (a free of a block that is not
/// allocated, ...): the message names `device_traces[0][i]`.
pub fn read(file: &str, data: &[u8], device: DeviceChoice) -> Result<Snapshot, InputError> {
    let _ = device; // TODO(issue 13): device selection

    let fail = |message: String| InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    };
    let options = DeOptions::new()
        .replace_unresolved_globals()
        .replace_recursive_structures()
        .decode_strings();
    let root = serde_pickle::value_from_slice(data, options)
        .map_err(|e| fail(format!("not a readable pickle: {e}")))?;
    if let Some(segments) = list(&root) {
        // `torch.cuda.memory_snapshot()` returns the segment list alone.
        return Err(fail(format!(
            "{}, without an allocation history (the segment list that \
             torch.cuda.memory_snapshot() returns). {RECORD_HISTORY}",
            describe_state(segments)
        )));
    }
    let traces = field(&root, "device_traces")
        .and_then(list)
        .ok_or_else(|| fail("no device_traces list: not a memory snapshot".into()))?;
    let events = match traces.first() {
        Some(first) => list(first).ok_or_else(|| fail("device_traces[0] is not a list".into()))?,
        None => &[][..],
    };
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let pre_existing = blocks_before_history(events);
    for &(addr, size, stream) in &pre_existing {
        b.alloc(addr, size, stream).map_err(|err| {
            fail(format!(
                "block at {addr:#x} allocated before the history: {err}"
            ))
        })?;
    }
    if !pre_existing.is_empty() {
        b.marker(Marker::Annotation("pytorch history starts".into()));
    }
    let mut segments = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let at = |message: String| fail(format!("device_traces[0][{i}]: {message}"));
        let action = match field(e, "action") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(at("no action".into())),
        };
        let number = |name: &str| -> Result<u64, InputError> {
            field(e, name)
                .and_then(int)
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| at(format!("{action} without a non-negative integer {name}")))
        };
        match action {
            "alloc" => {
                let (addr, size) = (number("addr")?, number("size")?);
                let stream = u32::try_from(number("stream")?)
                    .map_err(|_| at("stream does not fit in 32 bits".into()))?;
                b.alloc(addr, size, stream)
                    .map_err(|err| at(format!("alloc at {addr:#x}: {err}")))?;
            }
            "free_completed" => {
                let addr = number("addr")?;
                b.free(addr)
                    .map_err(|err| at(format!("free_completed at {addr:#x}: {err}")))?;
            }
            "segment_alloc" | "segment_map" => segments.push((number("addr")?, number("size")?)),
            "free_requested" | "segment_free" | "segment_unmap" => {}
            "snapshot" | "oom" | "user_defined" => {
                b.marker(Marker::Annotation(format!("pytorch {action}")))
            }
            other => return Err(at(format!("unknown action {other:?}"))),
        }
    }
    let trace = b.finish();
    if trace.allocs() == 0 {
        let state = field(&root, "segments")
            .and_then(list)
            .map_or_else(|| "no segments".to_owned(), describe_state);
        let others: Vec<String> = traces
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(d, t)| list(t).filter(|t| !t.is_empty()).map(|t| (d, t.len())))
            .map(|(d, n)| format!("device_traces[{d}] has {n} events"))
            .collect();
        let history = if others.is_empty() {
            format!(
                "no allocation in its history ({} device histories, {} events on device 0)",
                traces.len(),
                events.len()
            )
        } else {
            format!(
                "no allocation on device 0, which memplan reads ({}; reading another device \
                 is not supported yet)",
                others.join(", ")
            )
        };
        return Err(fail(format!(
            "a snapshot with {state} but {history}: nothing to replay. {RECORD_HISTORY}"
        )));
    }
    Ok(Snapshot {
        trace,
        segments,
        pre_existing: pre_existing.len(),
    })
}

/// `(addr, size, stream)` of each block the history frees (`free_completed`) without having
/// allocated it: recording began after its allocation (`_record_memory_history` is usually
/// called once the model is loaded). In order of those frees; an address counts once, so a
/// second free of it without an allocation stays an error of the main pass. Entries with
/// missing fields are left to the main pass too, which reports them.
fn blocks_before_history(events: &[Value]) -> Vec<(u64, u64, u32)> {
    let mut live = std::collections::HashSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut before = Vec::new();
    for e in events {
        let number = |name: &str| {
            field(e, name)
                .and_then(int)
                .and_then(|v| u64::try_from(v).ok())
        };
        let action = match field(e, "action") {
            Some(Value::String(s)) => s.as_str(),
            _ => continue,
        };
        let Some(addr) = number("addr") else { continue };
        match action {
            "alloc" => {
                live.insert(addr);
            }
            "free_completed" => {
                let was_live = live.remove(&addr);
                if was_live || !seen.insert(addr) {
                    continue;
                }
                let size = number("size");
                let stream = number("stream").and_then(|v| u32::try_from(v).ok());
                if let (Some(size), Some(stream)) = (size, stream) {
                    before.push((addr, size, stream));
                }
            }
            _ => {}
        }
    }
    before
}

/// What a user runs to record the allocation history memplan replays.
const RECORD_HISTORY: &str = "Record one with \
    torch.cuda.memory._record_memory_history(max_entries=100000) before the code to analyse \
    runs, then torch.cuda.memory._dump_snapshot(\"snapshot.pickle\")";

/// "N segments (B bytes reserved) holding M active blocks (A bytes)", from a snapshot's
/// segment list; entries without the expected fields count as segments of unknown size.
fn describe_state(segments: &[Value]) -> String {
    let size = |v: &Value, key: &str| field(v, key).and_then(int).unwrap_or(0).max(0);
    let mut reserved: i128 = 0;
    let mut blocks = 0usize;
    let mut active: i128 = 0;
    for seg in segments {
        reserved = reserved.saturating_add(size(seg, "total_size"));
        for block in field(seg, "blocks").and_then(list).unwrap_or(&[]) {
            let state = match field(block, "state") {
                Some(Value::String(s)) => s.as_str(),
                _ => "",
            };
            if state.starts_with("active") {
                blocks += 1;
                active = active.saturating_add(size(block, "size"));
            }
        }
    }
    format!(
        "{} segments ({reserved} bytes reserved) holding {blocks} active blocks ({active} bytes)",
        segments.len()
    )
}

/// `value[key]` for a dict with string keys.
fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Dict(d) => d.get(&HashableValue::String(key.to_owned())),
        _ => None,
    }
}

fn list(value: &Value) -> Option<&[Value]> {
    match value {
        Value::List(v) | Value::Tuple(v) => Some(v),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i128> {
    match value {
        Value::I64(v) => Some(i128::from(*v)),
        Value::Int(v) => v.to_string().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn entry(action: &str, addr: i64, size: i64) -> Value {
        let mut d = BTreeMap::new();
        let s = |k: &str| HashableValue::String(k.to_owned());
        d.insert(s("action"), Value::String(action.to_owned()));
        d.insert(s("addr"), Value::I64(addr));
        d.insert(s("size"), Value::I64(size));
        d.insert(s("stream"), Value::I64(0));
        Value::Dict(d)
    }

    fn pickle(events: Vec<Value>) -> Vec<u8> {
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![Value::List(events)]),
        );
        serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap()
    }

    #[test]
    fn reads_allocs_frees_and_segments() {
        let data = pickle(vec![
            entry("segment_alloc", 1 << 21, 2 << 20),
            entry("alloc", 1 << 21, 1000),
            entry("free_requested", 1 << 21, 1000),
            entry("free_completed", 1 << 21, 1000),
            entry("alloc", 1 << 21, 512),
        ]);
        assert!(is_pickle(&data));
        let s = read("s.pickle", &data, DeviceChoice::Auto).unwrap();
        assert_eq!(s.segments, vec![(1 << 21, 2 << 20)]);
        assert_eq!((s.trace.len(), s.trace.peak_requested()), (3, 1000));
    }

    /// A segment of `total` bytes holding one block per `(state, size)`.
    fn segment(total: i64, blocks: &[(&str, i64)]) -> Value {
        let s = |k: &str| HashableValue::String(k.to_owned());
        let blocks = blocks
            .iter()
            .map(|&(state, size)| {
                let mut b = BTreeMap::new();
                b.insert(s("state"), Value::String(state.to_owned()));
                b.insert(s("size"), Value::I64(size));
                Value::Dict(b)
            })
            .collect();
        let mut d = BTreeMap::new();
        d.insert(s("total_size"), Value::I64(total));
        d.insert(s("blocks"), Value::List(blocks));
        Value::Dict(d)
    }

    #[test]
    fn a_snapshot_without_allocations_is_an_error_saying_what_it_holds() {
        let seg = segment(2 << 20, &[("active_allocated", 4096), ("inactive", 8192)]);
        // State only: the dict with an empty history on every device.
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![Value::List(vec![])]),
        );
        d.insert(
            HashableValue::String("segments".into()),
            Value::List(vec![seg.clone()]),
        );
        let data =
            serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "s: a snapshot with 1 segments (2097152 bytes reserved) holding 1 active blocks \
                 (4096 bytes) but no allocation in its history (1 device histories, 0 events on \
                 device 0): nothing to replay."
            ),
            "{e}"
        );
        assert!(e.contains("_record_memory_history("), "{e}");
        // The bare segment list of torch.cuda.memory_snapshot().
        let data =
            serde_pickle::value_to_vec(&Value::List(vec![seg]), serde_pickle::SerOptions::new())
                .unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("torch.cuda.memory_snapshot()"), "{e}");
        assert!(e.contains("holding 1 active blocks (4096 bytes)"), "{e}");
        // Only frees and markers on device 0, allocations on device 1: say where they are.
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![
                Value::List(vec![entry("snapshot", 0, 0)]),
                Value::List(vec![entry("alloc", 4096, 8)]),
            ]),
        );
        let data =
            serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("device_traces[1] has 1 events"), "{e}");
    }

    #[test]
    fn a_history_that_starts_mid_run_opens_with_the_blocks_it_frees_unallocated() {
        let data = pickle(vec![
            entry("free_requested", 4096, 1000),
            entry("free_completed", 4096, 1000), // allocated before recording began
            entry("alloc", 4096, 512),
            entry("alloc", 8192, 64),
        ]);
        let s = read("s", &data, DeviceChoice::Auto).unwrap();
        assert_eq!(s.pre_existing, 1);
        assert_eq!((s.trace.allocs(), s.trace.peak_requested()), (3, 1000));
        // A second free of it without an allocation is still an error, naming the entry.
        let data = pickle(vec![
            entry("free_completed", 4096, 1000),
            entry("free_completed", 4096, 1000),
        ]);
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s: device_traces[0][1]: free_completed at 0x1000"),
            "{e}"
        );
    }

    #[test]
    fn reads_the_decomfl_snapshot() {
        let Some(path) = memplan_tests::require::shared_data(
            "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
        ) else {
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let s = read("memory.pickle", &data, DeviceChoice::Auto).unwrap();
        // Counts from the trace's README: 7,946 alloc, 7,549 free_completed, 61 segment_alloc.
        assert_eq!(s.trace.allocs(), 7946);
        assert_eq!(s.trace.len(), 7946 + 7549);
        assert_eq!(s.segments.len(), 61);
    }

    #[test]
    fn bad_snapshots_name_the_entry() {
        let cases = [
            (
                pickle(vec![entry("alloc", 4096, 1), entry("teleport", 0, 0)]),
                "s: device_traces[0][1]: unknown action \"teleport\"",
            ),
            (
                pickle(vec![entry("alloc", -1, 1)]),
                "s: device_traces[0][0]: alloc without a non-negative integer addr",
            ),
        ];
        for (data, want) in cases {
            assert_eq!(
                read("s", &data, DeviceChoice::Auto)
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
        let good = pickle(vec![entry("alloc", 4096, 1)]);
        let e = read("s", &good[..good.len() / 2], DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s: not a readable pickle"), "{e}");
    }
}

// TEMP-STUB (replaced by the reader branch)
pub fn load(
    file: &str,
    _data: &[u8],
    _device: DeviceChoice,
) -> Result<model::Recording, InputError> {
    Err(InputError {
        file: file.into(),
        line: None,
        message: "stub".into(),
        not_a_problem: false,
    })
}
pub fn load_all(file: &str, _data: &[u8]) -> Result<Vec<model::Recording>, InputError> {
    Err(InputError {
        file: file.into(),
        line: None,
        message: "stub".into(),
        not_a_problem: false,
    })
}
pub fn from_recording(file: &str, _rec: model::Recording) -> Result<Snapshot, InputError> {
    Err(InputError {
        file: file.into(),
        line: None,
        message: "stub".into(),
        not_a_problem: false,
    })
}
