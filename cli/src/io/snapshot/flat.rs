//! Flat CSV exports of a snapshot's history: one row per `device_traces` entry, with a header
//! naming at least `action`, `addr` and `size` (`stream` and `time_us` are read when present,
//! other columns such as an index are ignored), as people write them with
//! `csv.DictWriter(f, ["idx", "action", "addr", "size", "stream", "time_us"])` or
//! `pandas.DataFrame(snapshot["device_traces"][0]).to_csv(...)`.
//!
//! Such a file has no dump-time state, so [`load`] makes one by applying the history forward
//! from nothing, then walks it backwards as for a pickle ([`super::reconstruct`]). Blocks the
//! history frees without allocating were live before it (pre-existing); the segments holding
//! them are unknown unless the history frees those too, so each such block outside every known
//! segment gets a segment of its own size (a warning says so): reserved bytes before the
//! history are then a lower bound.

use std::collections::{BTreeMap, HashMap};

use super::model::{
    Action, Block, BlockState, DeviceSummary, Generation, HistoryEvent, Recording, Segment,
};
use super::reconstruct::{self, Seg};
use crate::io::InputError;

/// The most rows a flat export may have.
pub const MAX_ROWS: usize = 50_000_000;

/// True when `data`'s first line is a CSV header naming `action`, `addr` and `size` columns.
pub fn is_events_csv(data: &[u8]) -> bool {
    crate::io::csv_header_names(data, &["action", "addr", "size"])
}

/// Reads a flat export as device 0's recording.
///
/// # Errors
/// A missing column, a row without a number where one is needed (`FILE:LINE:`), an unknown
/// action, or more than [`MAX_ROWS`] rows.
pub fn load(file: &str, data: &[u8]) -> Result<Recording, InputError> {
    let fail = |line: Option<u64>, message: String| InputError {
        file: file.to_owned(),
        line,
        message,
        not_a_problem: false,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(data);
    let header = reader
        .headers()
        .map_err(|e| fail(Some(1), format!("bad CSV header: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let need =
        |name: &str| column(name).ok_or_else(|| fail(Some(1), format!("no `{name}` column")));
    let (action_at, addr_at, size_at) = (need("action")?, need("addr")?, need("size")?);
    let (stream_at, time_at) = (column("stream"), column("time_us"));
    let mut streams: HashMap<String, u32> = HashMap::new();
    let mut history = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = Some(n as u64 + 2);
        let row = row.map_err(|e| fail(line, format!("bad CSV row: {e}")))?;
        if history.len() >= MAX_ROWS {
            return Err(fail(line, format!("more than {MAX_ROWS} rows")));
        }
        let get = |i: usize| row.get(i).unwrap_or("");
        let number = |i: usize, what: &str| {
            get(i).parse::<u64>().map_err(|_| {
                fail(
                    line,
                    format!("{what} {:?} is not a non-negative integer", get(i)),
                )
            })
        };
        let action = match get(action_at) {
            "alloc" => Action::Alloc,
            "free_requested" => Action::FreeRequested,
            "free_completed" => Action::FreeCompleted,
            "segment_alloc" => Action::SegmentAlloc,
            "segment_free" => Action::SegmentFree,
            "segment_map" => Action::SegmentMap,
            "segment_unmap" => Action::SegmentUnmap,
            "snapshot" => Action::Snapshot,
            "oom" => Action::Oom,
            "user_defined" => Action::Annotation,
            other => return Err(fail(line, format!("unknown action {other:?}"))),
        };
        let (addr, size) = (number(addr_at, "addr")?, number(size_at, "size")?);
        if addr.checked_add(size).is_none() {
            return Err(fail(line, format!("{addr:#x} + {size} overflows 64 bits")));
        }
        // Streams renumbered as the pickle reader does: the default stream stays 0.
        let stream = match stream_at.map(get).filter(|s| !s.is_empty() && *s != "0") {
            None => 0,
            Some(s) => {
                let next = u32::try_from(streams.len() + 1)
                    .map_err(|_| fail(line, "too many streams".into()))?;
                *streams.entry(s.to_owned()).or_insert(next)
            }
        };
        let time_us = time_at.and_then(|i| get(i).parse::<i64>().ok());
        history.push(HistoryEvent {
            action,
            addr,
            size,
            stream,
            time_us,
            site: None,
            note: None,
        });
    }
    let mut warnings = Vec::new();
    let end = end_state(&history, &mut warnings);
    let start = reconstruct::start_state(&end, &history, 0, &mut warnings);
    let allocs = history.iter().filter(|e| e.action == Action::Alloc).count();
    Ok(Recording {
        device: 0,
        devices: vec![DeviceSummary {
            device: 0,
            events: history.len(),
            allocs,
            segments: end.len(),
        }],
        generation: Generation::EventsCsv,
        end,
        start,
        history,
        sites: Vec::new(),
        warnings,
    })
}

/// The state after `history`, applied forward from nothing, plus a segment of its own size for
/// every block freed without being allocated that lies outside every segment the history
/// names.
fn end_state(history: &[HistoryEvent], warnings: &mut Vec<String>) -> Vec<Segment> {
    let mut segments: BTreeMap<u64, Seg> = BTreeMap::new();
    let mut live: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut before: BTreeMap<u64, u64> = BTreeMap::new();
    for e in history {
        match e.action {
            Action::Alloc => {
                live.insert(e.addr, (e.size, e.stream));
            }
            Action::FreeCompleted if live.remove(&e.addr).is_none() => {
                before.entry(e.addr).or_insert(e.size);
            }
            Action::SegmentAlloc => {
                let seg = Seg {
                    size: e.size,
                    stream: u64::from(e.stream),
                    expandable: false,
                };
                segments.insert(e.addr, seg);
                ranges.push((e.addr, e.size));
            }
            Action::SegmentFree => {
                segments.remove(&e.addr);
                ranges.push((e.addr, e.size));
            }
            Action::SegmentMap => {
                reconstruct::map(&mut segments, e.addr, e.size, u64::from(e.stream));
                ranges.push((e.addr, e.size));
            }
            Action::SegmentUnmap => {
                reconstruct::unmap(&mut segments, e.addr, e.size);
                ranges.push((e.addr, e.size));
            }
            _ => {}
        }
    }
    let covered = |addr: u64| {
        ranges
            .iter()
            .any(|&(a, s)| a <= addr && addr < a.saturating_add(s))
    };
    let mut own = 0usize;
    for (&addr, &size) in &before {
        if !covered(addr) && !segments.contains_key(&addr) {
            let seg = Seg {
                size: size.max(1),
                stream: 0,
                expandable: false,
            };
            segments.insert(addr, seg);
            own += 1;
        }
    }
    if own > 0 {
        warnings.push(format!(
            "a flat export has no dump-time state: {own} blocks live before the history lie in \
             segments it never names, each counted as a segment of its own size (reserved bytes \
             before the history are a lower bound)"
        ));
    }
    segments
        .into_iter()
        .map(|(address, seg)| {
            let end = address.saturating_add(seg.size);
            let mut blocks = Vec::new();
            let mut cursor = address;
            for (&a, &(size, _)) in live.range(address..end) {
                if a > cursor {
                    blocks.push(inactive(cursor, a - cursor));
                }
                blocks.push(Block {
                    address: a,
                    size,
                    requested_size: size,
                    state: BlockState::ActiveAllocated,
                    site: None,
                });
                cursor = cursor.max(a.saturating_add(size));
            }
            if cursor < end {
                blocks.push(inactive(cursor, end - cursor));
            }
            Segment {
                address,
                total_size: seg.size,
                stream: seg.stream,
                is_expandable: seg.expandable,
                blocks,
            }
        })
        .collect()
}

fn inactive(address: u64, size: u64) -> Block {
    Block {
        address,
        size,
        requested_size: 0,
        state: BlockState::Inactive,
        site: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "idx,action,addr,size,stream,time_us
0,segment_alloc,1048576,2097152,0,1
1,alloc,1048576,1000,0,2
2,free_requested,1048576,1000,0,3
3,free_completed,1048576,1000,0,4
4,free_completed,9437184,4096,0,5
5,alloc,1049088,512,0,6
";

    #[test]
    fn reads_a_flat_history_with_blocks_from_before_it() {
        assert!(is_events_csv(CSV.as_bytes()));
        assert!(!is_events_csv(b"id,lower,upper,size\n"));
        let rec = load("e.csv", CSV.as_bytes()).unwrap();
        assert_eq!((rec.history.len(), rec.allocs()), (6, 2));
        // The block freed at row 4 was live before the history, in a segment of its own.
        let pre: Vec<u64> = rec.pre_existing().map(|(_, b)| b.address).collect();
        assert_eq!(pre, [9437184]);
        assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
        // At the end: the history's segment (one live block) and the pre-existing block's.
        assert_eq!(rec.end.len(), 2);
        let snapshot = super::super::from_recording("e.csv", rec).unwrap();
        assert_eq!(snapshot.pre_existing, 1);
        assert_eq!(snapshot.trace.allocs(), 3);
    }

    #[test]
    fn bad_rows_name_the_line() {
        for (csv, want) in [
            ("action,addr,size\nalloc,x,1\n", "e.csv:2: addr \"x\""),
            (
                "action,addr,size\nfree,1,1\n",
                "e.csv:2: unknown action \"free\"",
            ),
            ("action,addr,size\nalloc,1\n", "e.csv:2: bad CSV row"),
            (
                "action,addr,size\nalloc,18446744073709551615,2\n",
                "e.csv:2: 0xffffffffffffffff + 2 overflows",
            ),
            ("action,addr\nalloc,1\n", "e.csv:1: no `size` column"),
        ] {
            let e = load("e.csv", csv.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn reads_the_decomfl_export_like_its_pickle() {
        let (Some(csv), Some(pickle)) = (
            memplan_tests::require::shared_data(
                "traces/external/pytorch_snapshots/decomfl_opt/events.csv",
            ),
            memplan_tests::require::shared_data(
                "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
            ),
        ) else {
            return;
        };
        let rec = load("events.csv", &std::fs::read(csv).unwrap()).unwrap();
        assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
        let flat = super::super::from_recording("events.csv", rec).unwrap();
        let full = super::super::read(
            "memory.pickle",
            &std::fs::read(pickle).unwrap(),
            crate::io::DeviceChoice::Auto,
        )
        .unwrap();
        // The same allocations, frees and segment addresses (the pickle adds annotations).
        assert_eq!(flat.trace.allocs(), full.trace.allocs());
        assert_eq!(flat.trace.peak_requested(), full.trace.peak_requested());
        assert_eq!(flat.segments, full.segments);
        assert_eq!(flat.pre_existing, 0);
    }
}
