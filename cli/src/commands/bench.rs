//! `memplan bench`: plan every problem CSV under some paths, next to the greedy baseline.
//!
//! Files whose header lacks `id,lower,upper,size` (other kinds of trace) are skipped and
//! listed on stderr. Files under `minimalloc/challenging/` named `NAME.CAPACITY.csv` are
//! solved against that capacity (the packer stops at the first plan that fits); all others
//! are minimised. Both packings are checked with the independent verifier.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use memplan_core::{Error as CoreError, greedy_by_size};
use serde::Serialize;

use super::plan::{pack_with_limits, verified};
use super::{Limit, parse_seconds};
use crate::Failure;
use crate::io::csv;
use crate::io::files::{files_under, read_input};
use crate::output::{self, out};
use crate::progress::{Bar, Spinner};

/// Where traces are looked for by default, relative to the current directory.
pub const DEFAULT_TRACES: &str = "../shared/traces/external/";

/// Arguments of `memplan bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Problem CSV files (id,lower,upper,size), or directories searched recursively for
    /// *.csv (sorted; symbolic links followed, loops skipped); `-` reads one CSV from standard
    /// input. Default: ../shared/traces/external/ relative to the current directory.
    pub paths: Vec<PathBuf>,
    /// Search time limit per trace, in seconds ("inf": no limit).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub time_limit: Limit,
    /// Print one JSON object instead of the Markdown table (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
}

/// One benchmarked trace.
#[derive(Debug, Serialize)]
struct Row {
    /// The file's name relative to the directory given.
    file: String,
    buffers: usize,
    /// The max load: the largest sum of sizes live at once.
    peak_requested: u64,
    /// memplan's peak (the best peak found when it does not fit the capacity).
    arena_size: u64,
    ratio: f64,
    optimal: bool,
    /// Why memplan's plan is not proven optimal (as `memplan plan --json`), or null.
    unproven_reason: Option<&'static str>,
    elapsed_ms: f64,
    greedy_arena_size: u64,
    greedy_ratio: f64,
    greedy_elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fits: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    greedy_fits: Option<bool>,
}

/// A file that was not benchmarked, and why.
#[derive(Debug, Serialize)]
struct Skipped {
    file: String,
    reason: String,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    time_limit_s: Option<f64>,
    results: &'a [Row],
    skipped: &'a [Skipped],
}

/// Runs `memplan bench`.
///
/// # Errors
/// [`Failure::Input`] for a named path that does not exist; [`Failure::Internal`] when a plan
/// fails verification (after the table is printed).
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    let roots: Vec<PathBuf> = if args.paths.is_empty() {
        let default = PathBuf::from(DEFAULT_TRACES);
        if !default.exists() {
            let cwd = std::env::current_dir().unwrap_or_default();
            return out(format!(
                "traces not found at {DEFAULT_TRACES} (relative to {}), skipping the benchmark\n",
                cwd.display()
            ));
        }
        vec![default]
    } else {
        args.paths.clone()
    };
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut skipped = Vec::new();
    for root in &roots {
        let walk = files_under(root, "csv", true)?;
        files.extend(walk.files);
        skipped.extend(walk.skipped.into_iter().map(|reason| Skipped {
            file: root.display().to_string(),
            reason,
        }));
    }

    let mut rows = Vec::new();
    let mut invalid = Vec::new();
    let total = files.len();
    let mut bar = Bar::new(total as u64, "bench");
    for (k, (path, trace)) in files.into_iter().enumerate() {
        bar.inc(1);
        let (name, data) = match read_input(&path) {
            Ok(d) => d,
            Err(e) => {
                let reason = match e {
                    Failure::Input(m) => m,
                    other => format!("{other:?}"),
                };
                skipped.push(Skipped {
                    file: trace,
                    reason,
                });
                continue;
            }
        };
        let problem = match csv::parse(&name, &data, 1) {
            Ok(p) => p,
            Err(e) => {
                let reason = if e.not_a_problem {
                    "not a problem file (no id,lower,upper,size header)".to_owned()
                } else {
                    e.to_string()
                };
                skipped.push(Skipped {
                    file: trace,
                    reason,
                });
                continue;
            }
        };
        let capacity = csv::challenging_capacity(&path);
        bar.set_message(format!("bench {trace}"));
        let spinner = Spinner::start(format!(
            "bench {}/{total}: {trace} ({} buffers)",
            k + 1,
            problem.len()
        ));
        let outcome = pack_with_limits(&problem, capacity, args.time_limit, None);
        let greedy_start = Instant::now();
        let greedy = greedy_by_size(&problem);
        let greedy_time = greedy_start.elapsed();
        drop(spinner);

        let max_load = problem.max_load();
        let (peak, optimal, unproven, fits) = match &outcome.result {
            Ok(s) => {
                if let Err(Failure::Internal(m)) = verified(&problem, s, capacity) {
                    invalid.push(format!("{trace}: memplan: {m}"));
                }
                let why = s.unproven.map(|w| w.as_str());
                (s.peak, s.optimal, why, capacity.map(|_| true))
            }
            Err(CoreError::CapacityExceeded { best_peak, .. }) => {
                (*best_peak, false, None, Some(false))
            }
            Err(e) => {
                invalid.push(format!("{trace}: memplan failed: {e}"));
                continue;
            }
        };
        if let Err(Failure::Internal(m)) = verified(&problem, &greedy, None) {
            invalid.push(format!("{trace}: greedy: {m}"));
        }
        let ratio = |p: u64| {
            if max_load == 0 {
                1.0
            } else {
                p as f64 / max_load as f64
            }
        };
        rows.push(Row {
            file: trace,
            buffers: problem.len(),
            peak_requested: max_load,
            arena_size: peak,
            ratio: ratio(peak),
            optimal,
            unproven_reason: unproven,
            elapsed_ms: outcome.elapsed.as_secs_f64() * 1e3,
            greedy_arena_size: greedy.peak,
            greedy_ratio: ratio(greedy.peak),
            greedy_elapsed_ms: greedy_time.as_secs_f64() * 1e3,
            capacity,
            fits,
            greedy_fits: capacity.map(|c| greedy.peak <= c),
        });
    }

    drop(bar);
    if args.json {
        output::json(&JsonReport {
            time_limit_s: args.time_limit.0.map(|d| d.as_secs_f64()),
            results: &rows,
            skipped: &skipped,
        })?;
    } else {
        out(table(&rows, args))?;
        let mut err = std::io::stderr().lock();
        for s in &skipped {
            let _ = writeln!(err, "skipped {}: {}", s.file, s.reason);
        }
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(Failure::Internal(invalid.join("\n")))
    }
}

/// The Markdown table, with a totals row and a short summary.
fn table(rows: &[Row], args: &BenchArgs) -> String {
    let limit = match args.time_limit.0 {
        Some(d) => format!("{} s", d.as_secs_f64()),
        None => "no".to_owned(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "memplan vs greedy-by-size ({limit} time limit per trace; ratio = peak / max load, \
         1 is optimal; traces with a capacity stop at the first plan that fits)\n"
    );
    s.push_str(
        "| trace | n | max load | memplan peak | ratio | optimal | time (s) \
         | greedy peak | greedy ratio | greedy time (s) | capacity | fits (memplan / greedy) |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|:-:|--:|--:|--:|--:|--:|:-:|\n");
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for r in rows {
        let (capacity, fits) = match (r.capacity, r.fits, r.greedy_fits) {
            (Some(c), Some(f), Some(g)) => {
                (c.to_string(), format!("{} / {}", yes_no(f), yes_no(g)))
            }
            _ => (String::new(), String::new()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.5} | {} | {:.3} | {} | {:.5} | {:.3} | {} | {} |",
            r.file.replace('|', "\\|"),
            r.buffers,
            r.peak_requested,
            r.arena_size,
            r.ratio,
            yes_no(r.optimal),
            r.elapsed_ms / 1e3,
            r.greedy_arena_size,
            r.greedy_ratio,
            r.greedy_elapsed_ms / 1e3,
            capacity,
            fits,
        );
    }
    if rows.is_empty() {
        s.push_str("\nNo problem files found.\n");
        return s;
    }
    let n: usize = rows.iter().map(|r| r.buffers).sum();
    let load: u128 = rows.iter().map(|r| u128::from(r.peak_requested)).sum();
    let peak: u128 = rows.iter().map(|r| u128::from(r.arena_size)).sum();
    let greedy: u128 = rows.iter().map(|r| u128::from(r.greedy_arena_size)).sum();
    let time: f64 = rows.iter().map(|r| r.elapsed_ms).sum::<f64>() / 1e3;
    let greedy_time: f64 = rows.iter().map(|r| r.greedy_elapsed_ms).sum::<f64>() / 1e3;
    let optimal = rows.iter().filter(|r| r.optimal).count();
    let with_cap: Vec<&Row> = rows.iter().filter(|r| r.capacity.is_some()).collect();
    let fits = with_cap.iter().filter(|r| r.fits == Some(true)).count();
    let greedy_fits = with_cap
        .iter()
        .filter(|r| r.greedy_fits == Some(true))
        .count();
    let fits_cell = if with_cap.is_empty() {
        String::new()
    } else {
        format!("{fits}/{0} / {greedy_fits}/{0}", with_cap.len())
    };
    let _ = writeln!(
        s,
        "| **total ({} traces)** | {n} | {load} | {peak} | {:.5} | {optimal}/{} | {time:.3} \
         | {greedy} | {:.5} | {greedy_time:.3} | | {fits_cell} |",
        rows.len(),
        peak as f64 / load as f64,
        rows.len(),
        greedy as f64 / load as f64,
    );
    let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
    let better = rows
        .iter()
        .filter(|r| r.arena_size < r.greedy_arena_size)
        .count();
    let worse = rows
        .iter()
        .filter(|r| r.arena_size > r.greedy_arena_size)
        .count();
    let _ = writeln!(
        s,
        "\nMean ratio per trace: memplan {:.5}, greedy {:.5}. memplan is better than greedy on \
         {better} traces, equal on {}, worse on {worse}.",
        mean(|r| r.ratio),
        mean(|r| r.greedy_ratio),
        rows.len() - better - worse,
    );
    s
}
