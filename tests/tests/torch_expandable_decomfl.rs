//! The `torch-expandable` model on a real PyTorch trace: replaying the DeComFL OPT snapshot
//! (`shared/traces/external/pytorch_snapshots/decomfl_opt/events.csv`, the same file
//! `torch_decomfl.rs` replays) through PyTorch's allocator with `expandable_segments:True`.
//!
//! The trace was recorded without expandable segments, so addresses cannot be compared; the
//! test maps the recorded block addresses to the model's, checks that every allocation
//! succeeds without overlapping a live one, that peak reserved covers peak allocated, and
//! prints peak reserved next to the plain `torch` model's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use memplan_core::allocator::{Allocator, TorchConfig, TorchExpandableModel, TorchModel};

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
    let mut plain = TorchModel::new(TorchConfig::default());
    let mut expandable = TorchExpandableModel::new(TorchConfig::default());
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
