//! The `torch` model against a real PyTorch trace: replaying the DeComFL OPT snapshot
//! (`shared/traces/external/pytorch_snapshots/decomfl_opt/memory.pickle`, recorded from an empty
//! allocator) with the recorded `segment_alloc` addresses must put every `alloc` exactly where
//! PyTorch put it and reach PyTorch's peak reserved.
//!
//! The snapshot is read by the CLI's reader (`memplan_cli::io::snapshot`): `alloc` events give
//! the requested size, stream and block address (the allocation's id); `free_completed` the
//! address of the block returned to the pool (`free_requested` carries no memory change: the
//! trace records no cross-stream use, so a free completes at once); `segment_alloc` each
//! `cudaMalloc`'s address and size.
//!
//! The same trace also goes through the `torch-expandable` model. It was recorded without
//! expandable segments, so addresses cannot be compared there: that test maps recorded
//! addresses to the model's, checks that every allocation succeeds without overlapping a live
//! one and that peak reserved covers peak allocated, and prints both models' peaks.

use std::collections::{BTreeMap, HashMap};

use memplan_cli::io::DeviceChoice;
use memplan_cli::io::snapshot::{self, Snapshot};
use memplan_core::allocator::{Allocator, TorchAllocator, TorchConfig, TorchExpandableAllocator};
use memplan_core::trace::Event;
use memplan_tests::require::shared_data;

/// The DeComFL OPT snapshot, or `None` (after [`shared_data`] reported it) when absent.
fn decomfl() -> Option<Snapshot> {
    let path = shared_data("traces/external/pytorch_snapshots/decomfl_opt/memory.pickle")?;
    let data = std::fs::read(&path).expect("memory.pickle");
    Some(
        snapshot::read("memory.pickle", &data, DeviceChoice::Auto)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn decomfl_opt_replays_exactly() {
    let Some(Snapshot {
        trace,
        mut segments,
        pre_existing,
        ..
    }) = decomfl()
    else {
        return;
    };
    // The history covers the whole run: nothing was allocated before it.
    assert_eq!(pre_existing, 0);
    let mut model = TorchAllocator::new(TorchConfig::default())
        .with_segment_addresses(segments.iter().map(|&(a, _)| a));

    let (mut allocs, mut frees, mut matched) = (0u64, 0u64, 0u64);
    let mut first_diverging = None;
    for (idx, e) in trace.events().iter().enumerate() {
        match *e {
            Event::Alloc { id, size, stream } => {
                allocs += 1;
                let got = model
                    .alloc(size, stream)
                    .unwrap_or_else(|err| panic!("event {idx}: {err}"));
                if got == id {
                    matched += 1;
                } else {
                    first_diverging.get_or_insert((idx, size, id, got));
                    break;
                }
            }
            Event::Free { id } => {
                frees += 1;
                model
                    .free(id)
                    .unwrap_or_else(|err| panic!("event {idx}: {err}"));
            }
            Event::Marker(_) => {}
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

/// Replays the allocations and frees; checks that no two live allocations overlap.
fn replay(model: &mut dyn Allocator, events: &[Event]) -> u64 {
    // Recorded address → (model address, size); model address → size, for the overlap check.
    let mut ids: HashMap<u64, u64> = HashMap::new();
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut allocs = 0;
    for (idx, e) in events.iter().enumerate() {
        match *e {
            Event::Alloc { id, size, stream } => {
                allocs += 1;
                let a = model
                    .alloc(size, stream)
                    .unwrap_or_else(|err| panic!("{}: event {idx}: {err}", model.name()));
                if let Some((&b, &bs)) = live.range(..a + size).next_back() {
                    assert!(b + bs <= a, "{}: event {idx}: overlap", model.name());
                }
                live.insert(a, size);
                assert!(ids.insert(id, a).is_none(), "event {idx}: live id");
            }
            Event::Free { id } => {
                let a = ids.remove(&id).expect("free of a live block");
                live.remove(&a);
                model
                    .free(a)
                    .unwrap_or_else(|err| panic!("{}: event {idx}: {err}", model.name()));
            }
            Event::Marker(_) => {}
        }
    }
    allocs
}

#[test]
fn decomfl_opt_replays_with_expandable_segments() {
    let Some(snapshot) = decomfl() else {
        return;
    };
    let events = snapshot.trace.events();
    let mut plain = TorchAllocator::new(TorchConfig::default());
    let mut expandable = TorchExpandableAllocator::new(TorchConfig::default());
    assert_eq!(replay(&mut plain, events), 7_946);
    assert_eq!(replay(&mut expandable, events), 7_946);
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
