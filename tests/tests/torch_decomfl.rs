//! The `torch` model against a real PyTorch trace: replaying the DeComFL OPT snapshot
//! (`shared/traces/external/pytorch_snapshots/decomfl_opt/events.csv`, recorded from an empty
//! allocator) with the recorded `segment_alloc` addresses must put every `alloc` exactly where
//! PyTorch put it and reach PyTorch's peak reserved.
//!
//! The CSV is `idx,action,addr,size,stream,time_us`. `alloc` rows give the requested size and
//! the block address; `free_completed` rows the address of the block returned to the pool
//! (`free_requested` rows precede them and are skipped: the trace records no cross-stream
//! use, so a free completes at once); `segment_alloc` rows give each `cudaMalloc`'s address.
//!
//! The same trace also goes through the `torch-expandable` model. It was recorded without
//! expandable segments, so addresses cannot be compared there: that test maps recorded
//! addresses to the model's, checks that every allocation succeeds without overlapping a live
//! one and that peak reserved covers peak allocated, and prints both models' peaks.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use memplan_core::allocator::{Allocator, TorchAllocator, TorchConfig, TorchExpandableAllocator};

struct Event {
    idx: u64,
    action: String,
    addr: u64,
    size: u64,
    stream: u32,
}

fn read_events(path: &Path) -> Vec<Event> {
    let mut rdr = csv::Reader::from_path(path).expect("open events.csv");
    rdr.records()
        .map(|r| {
            let r = r.expect("csv record");
            let num = |i: usize| -> u64 { r[i].parse().expect("number") };
            Event {
                idx: num(0),
                action: r[1].to_string(),
                addr: num(2),
                size: num(3),
                stream: r[4].parse().expect("stream"),
            }
        })
        .collect()
}

#[test]
fn decomfl_opt_replays_exactly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces/external/pytorch_snapshots/decomfl_opt/events.csv");
    if !path.exists() {
        println!("SKIP: {} not found", path.display());
        return;
    }
    let events = read_events(&path);
    let mut segments: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e.action == "segment_alloc")
        .map(|e| (e.addr, e.size))
        .collect();
    let mut model = TorchAllocator::new(TorchConfig::default())
        .with_segment_addresses(segments.iter().map(|&(a, _)| a));

    let (mut allocs, mut frees, mut matched) = (0u64, 0u64, 0u64);
    let mut first_diverging = None;
    for e in &events {
        match e.action.as_str() {
            "alloc" => {
                allocs += 1;
                let got = model
                    .alloc(e.size, e.stream)
                    .unwrap_or_else(|err| panic!("event {}: {err}", e.idx));
                if got == e.addr {
                    matched += 1;
                } else {
                    first_diverging.get_or_insert((e.idx, e.size, e.addr, got));
                    break;
                }
            }
            "free_completed" => {
                frees += 1;
                model
                    .free(e.addr)
                    .unwrap_or_else(|err| panic!("event {}: {err}", e.idx));
            }
            "free_requested" | "segment_alloc" => {}
            other => panic!("event {}: unexpected action {other}", e.idx),
        }
    }
    let stats = model.stats();
    println!(
        "decomfl_opt: {matched}/{allocs} allocs at PyTorch's addresses, {frees} frees, \
         {} segments ({} recorded), peak reserved {} bytes",
        stats.reservations,
        segments.len(),
        stats.peak_reserved
    );
    if let Some((idx, size, want, got)) = first_diverging {
        panic!("first diverging event {idx}: alloc({size}) at {got:#x}, PyTorch {want:#x}");
    }
    assert_eq!(allocs, 7_946);
    assert_eq!(matched, 7_946);
    assert_eq!(stats.reservations, 61);
    assert_eq!(stats.peak_reserved, 1_897_922_560);
    // The trace frees no segment: the model's segments are PyTorch's, sizes included.
    segments.sort_unstable();
    assert_eq!(model.segments().collect::<Vec<_>>(), segments);
}

/// Replays `alloc` / `free_completed` rows; checks that no two live allocations overlap.
fn replay(model: &mut dyn Allocator, events: &[Event]) -> u64 {
    // Recorded address → (model address, size); model address → size, for the overlap check.
    let mut ids: HashMap<u64, u64> = HashMap::new();
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut allocs = 0;
    for e in events {
        match e.action.as_str() {
            "alloc" => {
                allocs += 1;
                let a = model
                    .alloc(e.size, e.stream)
                    .unwrap_or_else(|err| panic!("{}: event {}: {err}", model.name(), e.idx));
                if let Some((&b, &bs)) = live.range(..a + e.size).next_back() {
                    assert!(b + bs <= a, "{}: event {}: overlap", model.name(), e.idx);
                }
                live.insert(a, e.size);
                assert!(ids.insert(e.addr, a).is_none(), "event {}: live id", e.idx);
            }
            "free_completed" => {
                let a = ids.remove(&e.addr).expect("free of a live block");
                live.remove(&a);
                model
                    .free(a)
                    .unwrap_or_else(|err| panic!("{}: event {}: {err}", model.name(), e.idx));
            }
            _ => {}
        }
    }
    allocs
}

#[test]
fn decomfl_opt_replays_with_expandable_segments() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/traces/external/pytorch_snapshots/decomfl_opt/events.csv");
    if !path.exists() {
        println!("SKIP: {} not found", path.display());
        return;
    }
    let events = read_events(&path);
    let mut plain = TorchAllocator::new(TorchConfig::default());
    let mut expandable = TorchExpandableAllocator::new(TorchConfig::default());
    assert_eq!(replay(&mut plain, &events), 7_946);
    assert_eq!(replay(&mut expandable, &events), 7_946);
    let (p, x) = (plain.stats(), expandable.stats());
    println!(
        "decomfl_opt peak reserved: torch {} bytes ({} cudaMalloc), torch-expandable {} bytes \
         ({} maps, {} ranges); peak allocated {} bytes",
        p.peak_reserved,
        p.reservations,
        x.peak_reserved,
        x.reservations,
        x.segments,
        x.peak_allocated
    );
    assert_eq!(x.peak_allocated, p.peak_allocated);
    assert!(x.peak_reserved >= x.peak_allocated);
    assert!(x.reserved >= expandable.allocated_rounded());
    assert_eq!(expandable.name(), "torch-expandable");
}
