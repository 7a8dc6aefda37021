//! Allocator throughput on real traces: ns per alloc/free of memplan's online allocator, of
//! the plan-guided allocator (plan made from the trace itself beforehand, not timed; every
//! request is then a hit) and of the PyTorch caching-allocator model (each made by the
//! allocator registry), against `offset-allocator` (a well-kept Rust port
//! of Sebastian Aaltonen's O(1) OffsetAllocator) as the reference, replaying the same
//! sequence in the same run. Ratios matter, not absolute times (machines are noisy).
//!
//! `cargo bench -p memplan-tests --bench throughput`. Reads the flat exports beside the
//! shared traces (`events.csv` of decomfl_opt, `df_index_resolver_memory_events.csv` of the
//! Kineto trace); skips with a message when `../shared` is absent.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use memplan_core::allocator::Allocator;
use memplan_core::allocator::registry::{self, AllocatorKind, Settings};
use memplan_core::plan::{Plan, PlanOptions};
use memplan_core::trace::TraceBuilder;

/// One operation of a replay: `Some(size)` allocates block `id`, `None` frees it.
type Op = (u64, Option<u64>);

/// decomfl_opt: `alloc` / `free_completed` by address.
fn decomfl(dir: &Path) -> Option<Vec<Op>> {
    let mut r =
        csv::Reader::from_path(dir.join("pytorch_snapshots/decomfl_opt/events.csv")).ok()?;
    let mut ops = Vec::new();
    for row in r.records() {
        let row = row.ok()?;
        let addr: u64 = row.get(2)?.parse().ok()?;
        match row.get(1)? {
            "alloc" => ops.push((addr, Some(row.get(3)?.parse().ok()?))),
            "free_completed" => ops.push((addr, None)),
            _ => {}
        }
    }
    Some(ops)
}

/// The Kineto trace: CUDA `[memory]` events, positive bytes allocate, negative free.
fn kineto(dir: &Path) -> Option<Vec<Op>> {
    let path = dir.join("kineto_profiler/hta/df_index_resolver_memory_events.csv");
    let mut r = csv::Reader::from_path(path).ok()?;
    let mut rows: Vec<(i64, i64, u64, i64)> = Vec::new();
    for row in r.records() {
        let row = row.ok()?;
        if row.get(2)? != "1" {
            continue;
        }
        let f = |k: usize| row.get(k).and_then(|v| v.parse::<i64>().ok());
        rows.push((f(0)?, f(1)?, row.get(4)?.parse().ok()?, f(5)?));
    }
    rows.sort_unstable();
    Some(
        rows.into_iter()
            .map(|(_, _, addr, bytes)| (addr, (bytes >= 0).then_some(bytes.unsigned_abs())))
            .collect(),
    )
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces/external");
    if !dir.is_dir() {
        println!("SKIP: {} not found; no traces to benchmark", dir.display());
        return;
    }
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
