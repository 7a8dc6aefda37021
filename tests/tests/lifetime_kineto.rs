//! Period detection on the Kineto DDP trace (HTA's memory events): its allocation sequence
//! repeats exactly every 2,801 allocations over both devices (CPU and GPU); the GPU-only
//! sequence (`device_type == 1`) repeats every 2,677.
//!
//! It reads HTA's flat CSV export of the memory events, not the Chrome trace that
//! `memplan_cli::io::kineto` reads: that reader takes one CUDA device, and the first check
//! needs the CPU's events too.

use std::path::Path;

use memplan_core::lifetime::{Boundaries, Class, Period, analyze};
use memplan_core::trace::TraceBuilder;
use memplan_tests::require::shared_data;

const CSV: &str = "traces/external/kineto_profiler/hta/df_index_resolver_memory_events.csv";

/// Reads the events of the devices `keep` accepts, sorted by (ts_us, ev_idx), into a trace:
/// `bytes >= 0` allocates `addr` on stream `device_type`, `bytes < 0` frees `addr` if live.
fn period(csv: &Path, keep: impl Fn(u32) -> bool) -> Option<(Period, usize)> {
    let mut rdr = csv::Reader::from_path(csv).unwrap();
    let mut rows: Vec<(u64, u64, u32, u64, i64)> = Vec::new();
    for rec in rdr.records() {
        let r = rec.unwrap();
        let num = |i: usize| r[i].parse::<i64>().unwrap();
        let device = num(2) as u32;
        if keep(device) {
            rows.push((num(0) as u64, num(1) as u64, device, num(4) as u64, num(5)));
        }
    }
    rows.sort_by_key(|&(ts, ev, ..)| (ts, ev));
    let mut b = TraceBuilder::new().allow_zero_size(true);
    for (_, _, device, addr, bytes) in rows {
        if bytes >= 0 {
            b.alloc(addr, bytes as u64, device).unwrap();
        } else if b.live_ids().any(|id| id == addr) {
            b.free(addr).unwrap();
        }
    }
    let a = analyze(&b.finish());
    let classes = [
        Class::Persistent,
        Class::PerIteration,
        Class::CrossIteration,
        Class::Dynamic,
    ]
    .map(|c| (c, a.count(c)));
    println!("{} allocations, classes {classes:?}", a.lifetimes.len());
    match a.boundaries {
        Boundaries::Detected(p) => Some((p, a.lifetimes.len())),
        _ => None,
    }
}

#[test]
fn kineto_ddp_period() {
    let Some(csv) = shared_data(CSV) else {
        return;
    };
    let (p, n) = period(&csv, |_| true).expect("a period");
    println!(
        "all devices: period {} offset {} iterations {} match_fraction {} ({n} allocations)",
        p.period, p.offset, p.iterations, p.match_fraction
    );
    assert_eq!(p.period, 2801);
    assert_eq!(p.match_fraction, 1.0);
    let (g, n) = period(&csv, |d| d == 1).expect("a GPU period");
    println!(
        "GPU only: period {} offset {} iterations {} match_fraction {} ({n} allocations)",
        g.period, g.offset, g.iterations, g.match_fraction
    );
    assert_eq!(g.period, 2677);
}
