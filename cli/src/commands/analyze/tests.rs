use super::advice::{self, WhatIf};
use super::layout::{self, Layout};
use std::collections::BTreeMap;

use super::*;
use crate::io::snapshot::model::{
    Block, BlockState, DeviceSummary, Generation, HistoryEvent, Recording, Segment,
};

const SEG: u64 = 0x10_0000;

fn block(address: u64, size: u64, requested_size: u64, state: BlockState) -> Block {
    Block {
        address,
        size,
        requested_size,
        state,
        site: Some(0),
    }
}

fn segment(address: u64, total_size: u64, blocks: Vec<Block>) -> Segment {
    Segment {
        address,
        total_size,
        stream: 0,
        is_expandable: false,
        blocks,
    }
}

fn event(action: Action, addr: u64, size: u64) -> HistoryEvent {
    HistoryEvent {
        action,
        addr,
        size,
        stream: 0,
        time_us: None,
        site: Some(1),
        note: None,
    }
}

fn recording(start: Vec<Segment>, end: Vec<Segment>, history: Vec<HistoryEvent>) -> Recording {
    Recording {
        device: 0,
        devices: vec![DeviceSummary {
            device: 0,
            events: history.len(),
            allocs: 0,
            segments: end.len(),
        }],
        generation: Generation::Torch21,
        end,
        start,
        history,
        sites: vec!["train.py:10 in model".into(), "train.py:20 in step".into()],
        warnings: Vec::new(),
    }
}

/// A 4 KiB segment: a live block, a free gap, a live block; and a wholly free segment.
fn state() -> Vec<Segment> {
    vec![
        segment(
            SEG,
            4096,
            vec![
                block(SEG, 1024, 1000, BlockState::ActiveAllocated),
                block(SEG + 1024, 2048, 2048, BlockState::Inactive),
                block(SEG + 3072, 1024, 512, BlockState::ActiveAllocated),
            ],
        ),
        segment(
            2 * SEG,
            8192,
            vec![block(2 * SEG, 8192, 8192, BlockState::Inactive)],
        ),
    ]
}

#[test]
fn fragmentation_splits_as_segsum() {
    let f = Layout::of(&state()).fragmentation();
    assert_eq!(
        (
            f.reserved,
            f.allocated,
            f.requested,
            f.rounding,
            f.free_gaps
        ),
        (12288, 2048, 1512, 536, 10240)
    );
    assert_eq!(f.reserved, f.requested + f.rounding + f.free_gaps);
    assert_eq!((f.segments, f.blocks), (2, 2));
    // A pending free is free space for segsum, not allocated.
    let mut s = state();
    s[0].blocks[2].state = BlockState::ActivePendingFree;
    assert_eq!(Layout::of(&s).fragmentation().allocated, 1024);
}

#[test]
fn stranded_ranges_are_gaps_between_live_blocks_with_their_neighbours() {
    let sites = vec!["a.py:1 in f".to_owned()];
    let s = Layout::of(&state()).stranded(&sites, 10);
    // The wholly free segment is not stranded (empty_cache releases it).
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].address, s[0].bytes, s[0].live_blocks),
        (SEG + 1024, 2048, 2)
    );
    let pins: Vec<u64> = s[0].pinned_by.iter().map(|p| p.address).collect();
    assert_eq!(pins, [SEG, SEG + 3072]);
    assert_eq!(s[0].pinned_by[0].site.as_deref(), Some("a.py:1 in f"));
    assert!(Layout::of(&state()).stranded(&sites, 0).is_empty());
}

#[test]
fn the_peak_is_found_by_replaying_the_history_from_the_start() {
    let start = vec![segment(
        SEG,
        1 << 20,
        vec![
            block(SEG, 4096, 4000, BlockState::ActiveAllocated),
            block(SEG + 4096, (1 << 20) - 4096, 0, BlockState::Inactive),
        ],
    )];
    let history = vec![
        event(Action::SegmentAlloc, 4 * SEG, 2 << 20),
        event(Action::Alloc, 4 * SEG, 1000),
        event(Action::Alloc, 4 * SEG + 1024, 3000),
        event(Action::FreeRequested, 4 * SEG, 1000),
        event(Action::FreeCompleted, 4 * SEG, 1000),
        event(Action::Alloc, 4 * SEG, 500),
        event(Action::FreeCompleted, 4 * SEG, 500),
        event(Action::FreeCompleted, 4 * SEG + 1024, 3000),
        event(Action::SegmentFree, 4 * SEG, 2 << 20),
    ];
    let rec = recording(start.clone(), start, history);
    let p = layout::peak(&rec);
    assert_eq!(p.after_event, Some(2));
    assert_eq!(p.peak_reserved, (1 << 20) + (2 << 20));
    let f = p.layout.fragmentation();
    assert_eq!(f.requested, 4000 + 1000 + 3000);
    // Blocks in the history are requests rounded to 512 bytes.
    assert_eq!(f.allocated, 4096 + 1024 + 3072);
    assert_eq!(f.reserved, 3 << 20);
    let s = p.layout.stranded(&rec.sites, 1);
    assert_eq!(
        (s[0].address, s[0].bytes),
        (4 * SEG + 4096, (2 << 20) - 4096)
    );
    assert_eq!(
        s[0].pinned_by[0].site.as_deref(),
        Some("train.py:20 in step")
    );
}

#[test]
fn expandable_ranges_merge_when_mapped_and_split_when_unmapped() {
    let mib = 1u64 << 20;
    let history = vec![
        event(Action::SegmentMap, 64 * mib, 2 * mib),
        event(Action::SegmentMap, 66 * mib, 2 * mib),
        event(Action::Alloc, 64 * mib, 3 * mib),
        event(Action::FreeCompleted, 64 * mib, 3 * mib),
        event(Action::SegmentUnmap, 64 * mib, 2 * mib),
        event(Action::Alloc, 66 * mib, 1),
    ];
    let rec = recording(Vec::new(), Vec::new(), history);
    let p = layout::peak(&rec);
    assert_eq!(p.after_event, Some(2));
    assert_eq!(p.layout.segments.len(), 1);
    assert_eq!(p.layout.fragmentation().reserved, 4 * mib);
    assert_eq!(p.peak_reserved, 4 * mib);
}

fn report(rows: &[(&str, u64)]) -> Report {
    let base = rows[0].1;
    Report {
        file: "f".into(),
        kind: "k".into(),
        device: None,
        events: 0,
        allocations: 0,
        pre_existing_blocks: 0,
        pre_existing_segments: 0,
        peak_requested: Some(base / 2),
        recorded_peak_reserved: None,
        oom_events: 0,
        fragmentation_at_peak: None,
        fragmentation_at_end: None,
        stranded_at: None,
        stranded: Vec::new(),
        what_if: rows
            .iter()
            .map(|&(a, p)| WhatIf {
                allocator: a.into(),
                label: a.into(),
                peak_reserved: p,
                saved: base as i64 - p as i64,
                ratio: p as f64 / base as f64,
            })
            .collect(),
        recommendation: advice::Recommendation::default(),
        notes: Vec::new(),
    }
}

#[test]
fn recommendations_follow_the_what_if_table() {
    let rec = |rows: &[(&str, u64)]| advice::recommend("t.pickle", &report(rows));
    // Expandable segments save 10 %: no code needed, preferred when the others are not much
    // better.
    let r = rec(&[
        ("recorded", 1000),
        ("torch-expandable", 900),
        ("online", 890),
        ("guided", 880),
    ]);
    assert_eq!(r.action, "expandable_segments");
    assert_eq!(
        r.apply,
        ["export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"]
    );
    // The plan saves 20 % where expandable segments save 10 % and online 12 %.
    let r = rec(&[
        ("recorded", 1000),
        ("torch-expandable", 900),
        ("online", 880),
        ("guided", 800),
    ]);
    assert_eq!(r.action, "memplan_guided");
    assert_eq!(r.apply[0], "memplan plan-trace t.pickle --out job.plan");
    assert!(r.apply.iter().any(|l| l.contains("CUDAPluggableAllocator")));
    // Online saves 18 %, the plan 20 %: the hook without a plan is enough.
    let r = rec(&[
        ("recorded", 1000),
        ("torch-expandable", 900),
        ("online", 820),
        ("guided", 800),
    ]);
    assert_eq!(r.action, "memplan_online");
    assert!(
        r.apply.iter().any(|l| l.contains("\"online\"")),
        "{:?}",
        r.apply
    );
    assert!(!r.apply.iter().any(|l| l.contains("plan-trace")));
    // The plan saves 7 %, the others 2 %.
    let r = rec(&[
        ("torch", 1000),
        ("torch-expandable", 980),
        ("online", 980),
        ("guided", 930),
    ]);
    assert_eq!(r.action, "memplan_guided");
    // A plan worse than the baseline is never recommended.
    let r = rec(&[
        ("recorded", 1000),
        ("torch-expandable", 990),
        ("online", 990),
        ("guided", 1200),
    ]);
    assert_eq!(r.action, "reduce_live_bytes");
    assert!(r.apply.is_empty());
}

#[test]
fn a_state_only_recording_gets_the_fragmentation_view_and_what_needs_a_history() {
    let rec = recording(state(), state(), Vec::new());
    let r = of_recording("s.pickle", rec, 5).unwrap();
    assert_eq!(r.peak_requested, None);
    assert!(r.what_if.is_empty());
    assert_eq!(r.stranded_at, Some("end"));
    assert_eq!(r.stranded.len(), 1);
    assert_eq!(r.recommendation.action, "record_history");
    assert!(r.notes.iter().any(|n| n.contains("_record_memory_history")));
    let text = render(&r);
    assert!(text.contains("Fragmentation (split as"), "{text}");
    assert!(
        text.contains("pinned by 1.00 KiB at 0x100000, allocated at train.py:10 in model"),
        "{text}"
    );
}

/// A snapshot pickle whose device `d` has `n` allocations (and their frees), no segments.
fn two_device_pickle(counts: [usize; 2]) -> Vec<u8> {
    use serde_pickle::{HashableValue as H, Value as V};
    let s = |k: &str| H::String(k.to_owned());
    let entry = |action: &str, addr: i64| {
        let mut d = BTreeMap::new();
        d.insert(s("action"), V::String(action.to_owned()));
        d.insert(s("addr"), V::I64(addr));
        d.insert(s("size"), V::I64(4096));
        d.insert(s("stream"), V::I64(0));
        V::Dict(d)
    };
    let traces = counts
        .iter()
        .map(|&n| {
            let mut events = vec![entry("segment_alloc", 1 << 30)];
            for i in 0..n as i64 {
                events.push(entry("alloc", (1 << 30) + 4096 * i));
            }
            for i in 0..n as i64 {
                events.push(entry("free_completed", (1 << 30) + 4096 * i));
            }
            V::List(events)
        })
        .collect();
    let mut root = BTreeMap::new();
    root.insert(s("device_traces"), V::List(traces));
    root.insert(s("segments"), V::List(Vec::new()));
    serde_pickle::value_to_vec(&V::Dict(root), serde_pickle::SerOptions::new()).unwrap()
}

#[test]
fn every_device_is_reported_with_device_all_and_auto_takes_the_busiest() {
    let data = two_device_pickle([3, 5]);
    let all = analyze("t.pickle", &data, DeviceChoice::All, 5).unwrap();
    let seen: Vec<(Option<u32>, usize)> = all.iter().map(|r| (r.device, r.allocations)).collect();
    assert_eq!(seen, [(Some(0), 3), (Some(1), 5)]);
    let auto = analyze("t.pickle", &data, DeviceChoice::Auto, 5).unwrap();
    assert_eq!((auto.len(), auto[0].device), (1, Some(1)));
    assert!(
        auto[0].notes.iter().any(|n| n.contains("device")),
        "{:?}",
        auto[0].notes
    );
    let one = analyze("t.pickle", &data, DeviceChoice::Index(0), 5).unwrap();
    assert_eq!(one[0].peak_requested, Some(3 * 4096));
    assert!(analyze("t.pickle", &data, DeviceChoice::Index(2), 5).is_err());
    // A trace other than a snapshot has one device: `all` is an error saying so.
    let e = analyze(
        "t.trace",
        b"memplan-trace 1\na 1 8 0\n",
        DeviceChoice::All,
        5,
    );
    assert!(matches!(e, Err(Failure::Input(m)) if m.contains("--device all")));
}
