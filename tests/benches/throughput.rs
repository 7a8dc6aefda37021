//! Allocator throughput on real traces: ns per alloc/free of memplan's online allocator, of
//! the plan-guided allocator (plan made from the trace itself beforehand, not timed; every
//! request is then a hit) and of the PyTorch caching-allocator model (each made by the
//! allocator registry), against `offset-allocator` (a well-kept Rust port
//! of Sebastian Aaltonen's O(1) OffsetAllocator) as the reference, replaying the same
//! sequence in the same run. Ratios matter, not absolute times (machines are noisy).
//!
//! `cargo bench -p memplan-tests --bench throughput`. Reads the shared traces with the CLI's
//! readers (the decomfl_opt snapshot `memory.pickle`, the Kineto trace
//! `df_index_resolver.json.gz`); without `../shared` it skips with a message, or fails under
//! `CI=true`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use memplan_cli::io::{DeviceChoice, kineto, snapshot};
use memplan_core::allocator::Allocator;
use memplan_core::allocator::registry::{self, AllocatorKind, Settings};
use memplan_core::plan::{Plan, PlanOptions};
use memplan_core::trace::{Event, Trace, TraceBuilder};
use memplan_tests::require::shared_data;

/// One operation of a replay: `Some(size)` allocates block `id`, `None` frees it.
type Op = (u64, Option<u64>);

/// The allocations and frees of `trace`, in order.
fn ops_of(trace: &Trace) -> Vec<Op> {
    trace
        .events()
        .iter()
        .filter_map(|e| match *e {
            Event::Alloc { id, size, .. } => Some((id, Some(size))),
            Event::Free { id } => Some((id, None)),
            Event::Marker(_) => None,
        })
        .collect()
}

/// decomfl_opt, the PyTorch snapshot (read by `memplan_cli::io::snapshot`): allocations and
/// frees by block address.
fn decomfl(dir: &Path) -> Option<Vec<Op>> {
    let data = std::fs::read(dir.join("pytorch_snapshots/decomfl_opt/memory.pickle")).ok()?;
    let snapshot = snapshot::read("memory.pickle", &data, DeviceChoice::Auto).ok()?;
    Some(ops_of(&snapshot.trace))
}

/// The Kineto trace (read by `memplan_cli::io::kineto`): the first CUDA device's `[memory]`
/// events; frees of blocks allocated before the profiling window are left out.
fn kineto(dir: &Path) -> Option<Vec<Op>> {
    let data = std::fs::read(dir.join("kineto_profiler/hta/df_index_resolver.json.gz")).ok()?;
    let k = kineto::read("df_index_resolver.json.gz", &data, DeviceChoice::Auto).ok()?;
    Some(ops_of(&k.trace))
}

/// The plan of `ops` (profiled as a trace: one iteration, or the first detected one).
fn plan_of(ops: &[Op]) -> Plan {
    let mut b = TraceBuilder::new().allow_zero_size(true);
    for &(id, size) in ops {
        match size {
            Some(size) => b.alloc(id, size, 0).expect("valid trace"),
            None => {
                if b.live_ids().any(|l| l == id) {
                    b.free(id).expect("live id");
                }
            }
        }
    }
    let t = b.finish();
    Plan::from_trace(&t, &PlanOptions::default())
        .expect("plannable trace")
        .plan
}

/// Replays `ops` through a memplan-core allocator; returns ns per op.
fn run_core(ops: &[Op], a: &mut dyn Allocator) -> f64 {
    let mut live: HashMap<u64, u64> = HashMap::with_capacity(4096);
    let start = Instant::now();
    for &(id, size) in ops {
        match size {
            Some(size) => {
                if let Ok(addr) = a.alloc(size, 0) {
                    live.insert(id, addr);
                }
            }
            None => {
                if let Some(addr) = live.remove(&id) {
                    a.free(addr).expect("live block");
                }
            }
        }
    }
    start.elapsed().as_nanos() as f64 / ops.len() as f64
}

/// Replays `ops` through offset-allocator over an arena of 512-byte units large enough for
/// the trace; returns ns per op.
fn run_offset(ops: &[Op]) -> f64 {
    let units = |size: u64| u32::try_from(size.div_ceil(512).max(1)).expect("fits u32 units");
    let total: u64 = ops
        .iter()
        .filter_map(|o| o.1)
        .map(|s| s.div_ceil(512).max(1))
        .sum();
    let mut a = offset_allocator::Allocator::<u32>::with_max_allocs(
        u32::try_from(total.min(u64::from(u32::MAX))).unwrap_or(u32::MAX),
        1 << 20,
    );
    let mut live = HashMap::with_capacity(4096);
    let start = Instant::now();
    for &(id, size) in ops {
        match size {
            Some(size) => {
                if let Some(al) = a.allocate(units(size)) {
                    live.insert(id, al);
                }
            }
            None => {
                if let Some(al) = live.remove(&id) {
                    a.free(al);
                }
            }
        }
    }
    start.elapsed().as_nanos() as f64 / ops.len() as f64
}

fn main() {
    let Some(dir) = shared_data("traces/external") else {
        return;
    };
    println!(
        "| trace | ops | online ns/op | guided ns/op | torch model ns/op | offset-allocator ns/op | online / offset | guided / offset | torch / offset |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (name, ops) in [("decomfl_opt", decomfl(&dir)), ("kineto hta", kineto(&dir))] {
        let Some(ops) = ops else {
            println!("| {name} | (not readable) | | | | | | | |");
            continue;
        };
        let settings = Settings {
            plan: Some(plan_of(&ops)),
            ..Settings::default()
        };
        let build = |kind| registry::build(kind, &settings).expect("a valid plan");
        // Best of 5 runs each, interleaved.
        let (mut m, mut p, mut t, mut o) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..5 {
            m = m.min(run_core(&ops, build(AllocatorKind::Online).as_mut()));
            let mut guided = build(AllocatorKind::Guided);
            p = p.min(run_core(&ops, guided.as_mut()));
            let misses = guided.guided_counters().map(|c| c.misses);
            assert_eq!(misses, Some(0), "{name}: the plan of the trace itself");
            t = t.min(run_core(&ops, build(AllocatorKind::Torch).as_mut()));
            o = o.min(run_offset(&ops));
        }
        println!(
            "| {name} | {} | {m:.0} | {p:.0} | {t:.0} | {o:.0} | {:.2} | {:.2} | {:.2} |",
            ops.len(),
            m / o,
            p / o,
            t / o
        );
    }
}
