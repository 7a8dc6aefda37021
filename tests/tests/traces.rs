//! Packs every interval trace under `../shared/traces/external/` (relative to the workspace
//! root) with a fixed node budget and checks the plans with the independent verifier.
//!
//! A trace is any CSV file whose header names `id`, `lower`, `upper` and `size` (other columns
//! are ignored, `#` lines are comments); other CSV files there (allocator event logs, result
//! tables) are listed as skipped. Only what must hold is asserted: the plan verifies, its peak
//! is at least the max load, and a plan claimed optimal is no worse than a plan known to
//! exist (MiniMalloc's capacity for `minimalloc/challenging/*.NNN.csv`, IREE's own offsets in
//! `idealloc/iree`). Timings are printed, never asserted. Run with `--nocapture` to see the
//! table. Files are read by the CLI's reader, `memplan_cli::io::csv::parse_plan`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use memplan_cli::io::csv::{challenging_capacity, parse_plan};
use memplan_core::check::verify;
use memplan_core::{Budget, Error, PackOptions, pack};
use memplan_tests::require::shared_data;

/// Node budget by size, so the whole test stays around half a minute in a debug build (a
/// search node costs O(n) there; the heuristics alone are O(n²)).
fn node_budget(n: usize) -> u64 {
    match n {
        0..=1_000 => 2_000,
        1_001..=10_000 => 200,
        _ => 0,
    }
}

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            csv_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "csv") {
            out.push(path);
        }
    }
}

fn options(capacity: Option<u64>, max_nodes: u64) -> PackOptions<'static> {
    PackOptions {
        capacity,
        budget: Budget {
            max_nodes: Some(max_nodes),
            stop: None,
        },
    }
}

#[test]
fn external_traces_pack_to_valid_plans() {
    let Some(dir) = shared_data("traces/external") else {
        return;
    };
    let mut files = Vec::new();
    csv_files(&dir, &mut files);
    files.sort();
    let mut packed = 0;
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (problem, given) = match parse_plan(&name, &data) {
            Ok(read) => read,
            Err(e) if e.not_a_problem => {
                println!("skip {name}: not an id,lower,upper,size trace");
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        let p = &problem;
        let budget = node_budget(p.len());
        let start = Instant::now();
        let s = pack(p, options(None, budget)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let elapsed = start.elapsed();
        if let Err(e) = verify(p.buffers(), &s.placements(p), None) {
            panic!("{name}: invalid plan: {e}");
        }
        assert_eq!(s.max_load, p.max_load(), "{name}");
        assert!(s.peak >= s.max_load, "{name}: peak below the max load");
        assert!(
            s.nodes <= budget,
            "{name}: {} nodes > budget {budget}",
            s.nodes
        );
        println!(
            "{name}: n={} max_load={} peak={} ({:.4}x) optimal={} nodes={}/{budget} in {elapsed:.2?}",
            p.len(),
            s.max_load,
            s.peak,
            s.ratio(),
            s.optimal,
            s.nodes
        );
        if let Some(given) = &given {
            // The file's own plan (IREE's, lifetimes read half-open) is valid, so no optimum
            // exceeds it.
            if let Err(e) = verify(p.buffers(), given, None) {
                panic!("{name}: the plan in the file does not verify: {e}");
            }
            let given_peak = given.iter().map(|g| g.offset + g.size).max().unwrap_or(0);
            println!("  the file's own plan peaks at {given_peak}");
            assert!(
                !s.optimal || s.peak <= given_peak,
                "{name}: 'optimal' peak {} > the file's plan {given_peak}",
                s.peak
            );
        }
        if let Some(cap) = challenging_capacity(path) {
            assert!(
                !s.optimal || s.peak <= cap,
                "{name}: 'optimal' peak {} > MiniMalloc's {cap}",
                s.peak
            );
            match pack(p, options(Some(cap), budget)) {
                Ok(t) => {
                    if let Err(e) = verify(p.buffers(), &t.placements(p), Some(cap)) {
                        panic!("{name}: invalid plan within {cap}: {e}");
                    }
                    println!("  fits {cap}: yes (peak {})", t.peak);
                }
                Err(Error::CapacityExceeded {
                    best_peak, proven, ..
                }) => {
                    // MiniMalloc fits every challenging instance in its capacity.
                    assert!(!proven, "{name}: claims no plan fits {cap}");
                    assert!(best_peak > cap, "{name}");
                    println!("  fits {cap}: no (best peak {best_peak} with {budget} nodes)");
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        packed += 1;
    }
    assert!(
        packed > 0,
        "no id,lower,upper,size trace under {}",
        dir.display()
    );
    println!("{packed} traces packed and verified");
}
