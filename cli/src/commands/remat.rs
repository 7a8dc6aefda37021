//! `memplan remat`: simulate tensor rematerialization (DTR) on operator logs under a memory
//! budget, `simrd`-exact, with any heuristic; `--sweep` over all ratios and heuristics.
//!
//! The log is parsed by [`crate::io::dtr::read_program`], the baseline and the runs are
//! `memplan_core::remat::sim`. Budgets are `trunc(baseline_peak × ratio)`; a run thrashes
//! when recomputation exceeds the baseline compute (overhead would pass 2×).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use memplan_core::remat::sim::{self, Baseline, Program, RunOptions};
use memplan_core::remat::{Heuristic, MemplanParams};
use serde::Serialize;

use crate::Failure;
use crate::io::dtr;
use crate::io::files::{self, files_under, read_input};
use crate::output::{self, out};
use crate::progress::{Bar, Spinner};

/// Arguments of `memplan remat`.
#[derive(Debug, Args)]
pub struct RematArgs {
    /// DTR operator logs (JSON lines with "INSTRUCTION"), or directories of `*.log` files (their
    /// own entries, sorted); `-` reads one log from standard input. Default:
    /// ../shared/traces/external/dtr-simrd-logs.
    pub logs: Vec<PathBuf>,
    /// Budget as a fraction of the unbudgeted peak.
    #[arg(long, value_name = "R", default_value_t = 0.5, value_parser = parse_ratio)]
    pub budget_ratio: f64,
    /// Eviction heuristic: dtr, dtr-eq, dtr-local, msps, lru, largest, memplan.
    #[arg(long, value_name = "H", default_value = "dtr", value_parser = parse_heuristic)]
    pub heuristic: Heuristic,
    /// Run every heuristic at ratios 1.0, 0.9, ..., 0.1.
    #[arg(long)]
    pub sweep: bool,
    /// With --sweep: print Markdown tables instead (overhead per heuristic and ratio; memplan
    /// versus each of simrd's six: passes and geometric means where both pass).
    #[arg(long, requires = "sweep")]
    pub table: bool,
    /// Choose memplan's constants by leave-one-log-out: run every candidate of
    /// `MemplanParams::grid` and simrd's six on every log and ratio, choose on all logs but
    /// one, report on that one; print Markdown tables (README "Rematerialization").
    #[arg(long, conflicts_with_all = ["sweep", "json"])]
    pub leave_one_out: bool,
    /// Print JSON lines: one object per run (keys in cli/README.md).
    #[arg(long)]
    pub json: bool,
    /// Memory model: `bytes` (simrd: a byte counter, where tensors live is ignored) or
    /// `online` (tensors are blocks of memplan's online allocator over one arena of the
    /// budget's size; eviction goes on until a contiguous range fits).
    #[arg(long, value_name = "MODEL", default_value = "bytes", value_parser = parse_allocator)]
    pub allocator: MemoryModel,
    /// Host link bandwidth in GB/s (10^9 bytes/s): an evicted tensor may be copied to the host
    /// instead of dropped when that is cheaper than recomputing it. Off by default (simrd).
    #[arg(long, value_name = "GBPS", value_parser = parse_bandwidth, allow_hyphen_values = true)]
    pub swap_bandwidth: Option<f64>,
}

/// Where the simulated tensors live (`--allocator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryModel {
    /// A byte counter (simrd).
    Bytes,
    /// memplan's online allocator over one arena (`online`, as in the allocator registry).
    Online,
}

fn parse_allocator(s: &str) -> Result<MemoryModel, String> {
    match s {
        "bytes" => Ok(MemoryModel::Bytes),
        "online" => Ok(MemoryModel::Online),
        // The name before issue 12; the allocator registry calls this allocator `online`.
        "memplan" => Err(
            "the memory model `memplan` is now called `online` (expected bytes or online)"
                .to_owned(),
        ),
        _ => Err(format!(
            "unknown memory model {s:?} (expected bytes or online)"
        )),
    }
}

fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let g: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    // At least 1 byte/s, and bytes/s must fit in u64.
    if g.is_finite() && g >= 1e-9 && g * 1e9 < u64::MAX as f64 {
        Ok(g)
    } else {
        Err(format!(
            "the swap bandwidth must be a positive number of GB/s (1e-9 to 1.8e10), got {s}"
        ))
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if r.is_finite() && r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err(format!("the budget ratio must be in (0, 1], got {s}"))
    }
}

fn parse_heuristic(s: &str) -> Result<Heuristic, String> {
    s.parse::<Heuristic>().map_err(|e| e.to_string())
}

/// One run's report (the JSON object of `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Log file name (`file` in JSON, as in every command).
    #[serde(rename = "file")]
    pub log: String,
    /// Heuristic name.
    pub heuristic: &'static str,
    /// Budget ratio (`budget_ratio` in JSON, as the option).
    #[serde(rename = "budget_ratio")]
    pub ratio: f64,
    /// `pass`, `oom` or `thrash`.
    pub result: &'static str,
    /// Final clock / baseline compute.
    pub overhead: f64,
    /// Storages evicted.
    pub evictions: u64,
    /// Peak resident bytes: the largest sum of the sizes of tensors in memory
    /// (`peak_requested` in JSON, as in every command).
    #[serde(rename = "peak_requested")]
    pub peak_bytes: u64,
    /// Wall time of the run.
    pub elapsed_ms: f64,
    /// Memory model: `bytes` or `online`.
    pub allocator: &'static str,
    /// Evictions made because no contiguous range fitted (allocator `online`).
    pub placement_evictions: u64,
    /// Host link bandwidth (GB/s) when swapping is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_bandwidth: Option<f64>,
    /// Tensors copied to the host / back from it.
    pub swap_outs: u64,
    /// Tensors copied back from the host instead of recomputed.
    pub swap_ins: u64,
}

/// The memory model and swap options of a run.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// `--allocator`.
    pub allocator: MemoryModel,
    /// `--swap-bandwidth` (GB/s).
    pub swap_bandwidth: Option<f64>,
}

/// The sweep ratios, as `simrd` used them.
pub const RATIOS: [f64; 10] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];

/// A parsed log with its baseline.
pub struct Log {
    /// File name.
    pub name: String,
    /// The program.
    pub program: Program,
    /// Its baseline.
    pub baseline: Baseline,
}

/// Reads and parses one log.
pub fn load(path: &Path) -> Result<Log, Failure> {
    let (shown, data) = read_input(path)?;
    let name = if files::is_std(path) {
        shown
    } else {
        path.file_name()
            .map_or(shown, |n| n.to_string_lossy().into_owned())
    };
    let program = dtr::read_program(&name, &data)?;
    let baseline = program
        .baseline()
        .map_err(|e| Failure::Input(format!("{name}: command {}: {}", e.command, e.message)))?;
    Ok(Log {
        name,
        program,
        baseline,
    })
}

/// One simulation.
pub fn run_one(log: &Log, heuristic: Heuristic, ratio: f64, mode: Mode) -> RunReport {
    let t0 = Instant::now();
    let budget = sim::budget_for(log.baseline.peak, ratio);
    let r = sim::run(
        &log.program,
        log.baseline.compute,
        RunOptions {
            budget,
            heuristic,
            remat_limit: Some(log.baseline.compute),
            arena: mode.allocator == MemoryModel::Online,
            swap_bytes_per_second: mode.swap_bandwidth.map(|g| (g * 1e9).round() as u64),
        },
    )
    .expect("program validated at load");
    RunReport {
        log: log.name.clone(),
        heuristic: heuristic.name(),
        ratio,
        result: r.outcome.name(),
        overhead: r.overhead,
        evictions: r.stats.evictions,
        peak_bytes: r.stats.peak,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
        allocator: match mode.allocator {
            MemoryModel::Bytes => "bytes",
            MemoryModel::Online => "online",
        },
        placement_evictions: r.stats.placement_evictions,
        swap_bandwidth: mode.swap_bandwidth,
        swap_outs: r.stats.swap_outs,
        swap_ins: r.stats.swap_ins,
    }
}

fn log_paths(args: &RematArgs) -> Result<Vec<PathBuf>, Failure> {
    let roots = if args.logs.is_empty() {
        vec![PathBuf::from("../shared/traces/external/dtr-simrd-logs")]
    } else {
        args.logs.clone()
    };
    let mut out = Vec::new();
    for r in roots {
        let walk = files_under(&r, "log", false)?;
        for p in walk.skipped {
            output::err(format!("memplan: skipped {p}\n"));
        }
        out.extend(walk.files.into_iter().map(|(path, _)| path));
    }
    if out.iter().filter(|p| files::is_std(p)).count() > 1 {
        return Err(Failure::Input(
            "`-` is given twice: standard input can be read once".to_owned(),
        ));
    }
    if out.is_empty() {
        return Err(Failure::Input("no logs given or found".to_owned()));
    }
    Ok(out)
}

/// Runs `memplan remat`.
pub fn run(args: &RematArgs) -> Result<(), Failure> {
    let logs: Vec<Log> = log_paths(args)?
        .iter()
        .map(|p| load(p))
        .collect::<Result<_, _>>()?;
    if args.leave_one_out {
        return out(leave_one_out(&logs));
    }
    let (heuristics, ratios): (Vec<Heuristic>, Vec<f64>) = if args.sweep {
        (Heuristic::ALL.to_vec(), RATIOS.to_vec())
    } else {
        (vec![args.heuristic], vec![args.budget_ratio])
    };
    let t0 = Instant::now();
    let runs = logs.len() * heuristics.len() * ratios.len();
    let mode = Mode {
        allocator: args.allocator,
        swap_bandwidth: args.swap_bandwidth,
    };
    // Runs are independent: they use every core, and come back in (log, heuristic, ratio)
    // order whatever the threads did.
    let job = |i: usize| {
        let (l, rest) = (
            i / (heuristics.len() * ratios.len()),
            i % (heuristics.len() * ratios.len()),
        );
        let (h, r) = (rest / ratios.len(), rest % ratios.len());
        run_one(&logs[l], heuristics[h], ratios[r], mode)
    };
    let spinner = Spinner::start(format!("remat: {runs} runs"));
    let reports = parallel(runs, job);
    drop(spinner);
    for rep in &reports {
        if args.json {
            out(output::json_line(rep)?)?;
        } else if !args.table {
            let mut line = String::new();
            let _ = writeln!(
                line,
                "{:<48} {:<9} {:>4} {:<6} overhead {:>7.4} evictions {:>6} peak {:>13} {:>8.1} ms",
                rep.log,
                rep.heuristic,
                rep.ratio,
                rep.result,
                rep.overhead,
                rep.evictions,
                rep.peak_bytes,
                rep.elapsed_ms
            );
            out(line)?;
        }
    }
    if args.table {
        out(table(&logs, &reports))?;
        if args.allocator != MemoryModel::Bytes || args.swap_bandwidth.is_some() {
            // The same sweep in simrd's model, to compare with.
            let simrd = Mode {
                allocator: MemoryModel::Bytes,
                swap_bandwidth: None,
            };
            let spinner = Spinner::start(format!("remat: {runs} runs in simrd's model"));
            let base = parallel(runs, |i| {
                let per_log = heuristics.len() * ratios.len();
                let (l, rest) = (i / per_log, i % per_log);
                let (h, r) = (rest / ratios.len(), rest % ratios.len());
                run_one(&logs[l], heuristics[h], ratios[r], simrd)
            });
            drop(spinner);
            out(format!("\n{}", mode_comparison(&logs, &base, &reports)))?;
        }
    }
    if args.sweep && !args.json {
        output::err(format!(
            "{} runs in {:.2} s\n",
            reports.len(),
            t0.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// A Markdown table: per log, one row per heuristic, one column per ratio (overhead, or
/// OOM / thrash), and the number of passing ratios.
pub fn table(logs: &[Log], reports: &[RunReport]) -> String {
    let mut s = String::new();
    s.push_str("| log | heuristic |");
    for r in RATIOS {
        s.push_str(&format!(" {r} |"));
    }
    s.push_str(" pass |\n|---|---|");
    for _ in RATIOS {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for log in logs {
        let short = log.name.split('-').next().unwrap_or(&log.name).to_owned();
        for h in Heuristic::ALL {
            let mut row = format!("| {short} | {} |", h.name());
            let mut pass = 0;
            for r in RATIOS {
                let rep = reports
                    .iter()
                    .find(|x| x.log == log.name && x.heuristic == h.name() && x.ratio == r);
                match rep {
                    Some(x) if x.result == "pass" => {
                        pass += 1;
                        row.push_str(&format!(" {:.3} |", x.overhead));
                    }
                    Some(x) => row.push_str(&format!(" {} |", x.result)),
                    None => row.push_str(" |"),
                }
            }
            row.push_str(&format!(" {pass} |\n"));
            s.push_str(&row);
        }
    }
    s.push('\n');
    s.push_str(&summary(logs, reports));
    s
}

/// A Markdown table comparing `memplan` with each of simrd's six heuristics per log: passing
/// ratios, and the geometric-mean overhead of both over the ratios where both pass.
pub fn summary(logs: &[Log], reports: &[RunReport]) -> String {
    let six: Vec<Heuristic> = Heuristic::ALL
        .into_iter()
        .filter(|h| *h != Heuristic::Memplan)
        .collect();
    let mut s = String::from(
        "| log | memplan passes | best of six passes | memplan / best of six at each ratio |",
    );
    for h in &six {
        s.push_str(&format!(" memplan / {} |", h.name()));
    }
    s.push_str("\n|---|---|---|---|");
    for _ in &six {
        s.push_str("---|");
    }
    s.push('\n');
    let find = |log: &str, h: Heuristic, r: f64| {
        reports
            .iter()
            .find(|x| x.log == log && x.heuristic == h.name() && x.ratio == r)
    };
    for log in logs {
        let short = log.name.split('-').next().unwrap_or(&log.name);
        let curve = |h: Heuristic| -> Curve {
            let mut c = [None; 10];
            for (k, &r) in RATIOS.iter().enumerate() {
                c[k] = find(&log.name, h, r)
                    .filter(|x| x.result == "pass")
                    .map(|x| x.overhead);
            }
            c
        };
        let mut per_ratio: Curve = [None; 10];
        for &h in &six {
            for (b, o) in per_ratio.iter_mut().zip(curve(h)) {
                if let Some(o) = o {
                    *b = Some(b.map_or(o, |x: f64| x.min(o)));
                }
            }
        }
        let v = Versus::new(&curve(Heuristic::Memplan), &per_ratio);
        s.push_str(&format!(
            "| {short} | {} | {} | {:.4} / {:.4} |",
            v.passes, v.best_passes, v.geomean, v.best_geomean
        ));
        for &h in &six {
            let (mut lm, mut lh, mut n) = (0.0f64, 0.0f64, 0u32);
            for r in RATIOS {
                if let (Some(m), Some(o)) = (
                    find(&log.name, Heuristic::Memplan, r),
                    find(&log.name, h, r),
                ) {
                    if m.result == "pass" && o.result == "pass" {
                        lm += m.overhead.ln();
                        lh += o.overhead.ln();
                        n += 1;
                    }
                }
            }
            if n == 0 {
                s.push_str(" no common pass |");
            } else {
                let (gm, gh) = ((lm / f64::from(n)).exp(), (lh / f64::from(n)).exp());
                s.push_str(&format!(" {gm:.4} / {gh:.4} ({n}) |"));
            }
        }
        s.push('\n');
    }
    s
}

/// A Markdown table comparing a sweep in another mode (`reports`: arena and/or swap) with
/// the same sweep in simrd's byte-counter model (`base`): passing ratios in each, and the
/// geometric-mean overhead of each over the ratios where both pass.
pub fn mode_comparison(logs: &[Log], base: &[RunReport], reports: &[RunReport]) -> String {
    let mut s = String::from(
        "| log | heuristic | passes (bytes) | passes (this mode) | common | geomean (bytes) | \
         geomean (this mode) |\n|---|---|---|---|---|---|---|\n",
    );
    let find = |set: &'_ [RunReport], log: &str, h: Heuristic, r: f64| {
        set.iter()
            .find(|x| x.log == log && x.heuristic == h.name() && x.ratio == r)
            .filter(|x| x.result == "pass")
            .map(|x| x.overhead)
    };
    for log in logs {
        let short = log.name.split('-').next().unwrap_or(&log.name);
        for h in Heuristic::ALL {
            let pb = RATIOS
                .iter()
                .filter(|&&r| find(base, &log.name, h, r).is_some())
                .count();
            let pm = RATIOS
                .iter()
                .filter(|&&r| find(reports, &log.name, h, r).is_some())
                .count();
            let (mut lb, mut lm, mut n) = (0.0f64, 0.0f64, 0u32);
            for r in RATIOS {
                if let (Some(b), Some(m)) =
                    (find(base, &log.name, h, r), find(reports, &log.name, h, r))
                {
                    lb += b.ln();
                    lm += m.ln();
                    n += 1;
                }
            }
            let (gb, gm) = if n == 0 {
                ("-".to_owned(), "-".to_owned())
            } else {
                let k = f64::from(n);
                (
                    format!("{:.3}", (lb / k).exp()),
                    format!("{:.3}", (lm / k).exp()),
                )
            };
            s.push_str(&format!(
                "| {short} | {} | {pb} | {pm} | {n} | {gb} | {gm} |\n",
                h.name()
            ));
        }
    }
    s
}

/// One candidate (or the best of the six) on one log: overhead at each ratio of [`RATIOS`]
/// (`None` = did not pass).
type Curve = [Option<f64>; 10];

/// How a curve does against the per-ratio best of simrd's six on one log.
#[derive(Debug, Clone, Copy)]
pub struct Versus {
    /// Ratios the candidate passes.
    pub passes: usize,
    /// Ratios at least one of the six passes.
    pub best_passes: usize,
    /// Geometric-mean overhead of the candidate over the ratios where both pass.
    pub geomean: f64,
    /// Same for the per-ratio best of the six.
    pub best_geomean: f64,
}

impl Versus {
    fn new(mine: &Curve, best: &Curve) -> Versus {
        let (mut lm, mut lb, mut n) = (0.0f64, 0.0f64, 0u32);
        for (m, b) in mine.iter().zip(best) {
            if let (Some(m), Some(b)) = (m, b) {
                lm += m.ln();
                lb += b.ln();
                n += 1;
            }
        }
        let k = f64::from(n.max(1));
        Versus {
            passes: mine.iter().flatten().count(),
            best_passes: best.iter().flatten().count(),
            geomean: (lm / k).exp(),
            best_geomean: (lb / k).exp(),
        }
    }

    /// Issue 14's bar: as many passes, and a geometric mean no higher.
    pub fn met(&self) -> bool {
        self.passes >= self.best_passes && self.geomean <= self.best_geomean
    }

    /// ln(geomean / best geomean): below 0 is better than the best of the six.
    fn log_ratio(&self) -> f64 {
        (self.geomean / self.best_geomean).ln()
    }
}

/// The selection rule on a set of training logs (`vs[i]` = the candidate on log `i`): most
/// logs that meet the bar, then most passes beyond the best of the six (summed), then the
/// best worst-case log — the lowest max ln(geomean / best geomean), since the bar is per log
/// — then the lowest sum of those; the first in grid order on a tie.
fn select(grid: &[MemplanParams], vs: &[Vec<Versus>], train: &[usize]) -> usize {
    let key = |c: usize| {
        let met = train.iter().filter(|&&l| vs[c][l].met()).count();
        let extra: i64 = train
            .iter()
            .map(|&l| vs[c][l].passes as i64 - vs[c][l].best_passes as i64)
            .sum();
        let worst = train
            .iter()
            .map(|&l| vs[c][l].log_ratio())
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = train.iter().map(|&l| vs[c][l].log_ratio()).sum();
        (met, extra, worst, sum)
    };
    let mut best = 0;
    for c in 1..grid.len() {
        let (m, e, w, r) = key(c);
        let (bm, be, bw, br) = key(best);
        let better = (m, e) > (bm, be) || ((m, e) == (bm, be) && (w < bw || (w == bw && r < br)));
        if better {
            best = c;
        }
    }
    best
}

/// Runs jobs `0..n` on all available threads; results in job order (deterministic).
fn parallel<T: Send>(n: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    std::thread::scope(|sc| {
        for _ in 0..threads.min(n) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = job(i);
                    slots.lock().expect("no panic while held")[i] = Some(r);
                }
            });
        }
    });
    slots
        .into_inner()
        .expect("no panic while held")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn curve(log: &Log, heuristic: Heuristic, params: MemplanParams) -> Curve {
    let mut c = [None; 10];
    for (k, &r) in RATIOS.iter().enumerate() {
        let res = sim::run_with(
            &log.program,
            log.baseline.compute,
            RunOptions {
                budget: sim::budget_for(log.baseline.peak, r),
                heuristic,
                remat_limit: Some(log.baseline.compute),
                arena: false,
                swap_bytes_per_second: None,
            },
            params,
        )
        .expect("program validated at load");
        if res.outcome == sim::Verdict::Pass {
            c[k] = Some(res.overhead);
        }
    }
    c
}

/// `memplan remat --leave-one-out`: the grid, the per-ratio best of simrd's six, and for
/// each log the constants chosen on the others and how they do on it (Markdown).
pub fn leave_one_out(logs: &[Log]) -> String {
    let t0 = Instant::now();
    let grid = MemplanParams::grid();
    let six: Vec<Heuristic> = Heuristic::ALL
        .into_iter()
        .filter(|h| *h != Heuristic::Memplan)
        .collect();
    let mut bar = Bar::new(
        (logs.len() * (six.len() + grid.len())) as u64,
        "remat leave-one-out",
    );
    let bar_ref = std::sync::Mutex::new(&mut bar);
    let tick = || bar_ref.lock().expect("bar").inc(1);
    // Per log, per ratio: the lowest overhead of the six that pass.
    let six_curves = parallel(logs.len() * six.len(), |j| {
        let c = curve(
            &logs[j / six.len()],
            six[j % six.len()],
            MemplanParams::DEFAULT,
        );
        tick();
        c
    });
    let best: Vec<Curve> = (0..logs.len())
        .map(|l| {
            let mut b: Curve = [None; 10];
            for h in 0..six.len() {
                for (k, o) in six_curves[l * six.len() + h].iter().enumerate() {
                    if let Some(o) = *o {
                        b[k] = Some(b[k].map_or(o, |x: f64| x.min(o)));
                    }
                }
            }
            b
        })
        .collect();
    let curves = parallel(grid.len() * logs.len(), |j| {
        let c = curve(
            &logs[j % logs.len()],
            Heuristic::Memplan,
            grid[j / logs.len()],
        );
        tick();
        c
    });
    drop(bar);
    let vs: Vec<Vec<Versus>> = (0..grid.len())
        .map(|c| {
            (0..logs.len())
                .map(|l| Versus::new(&curves[c * logs.len() + l], &best[l]))
                .collect()
        })
        .collect();
    let short = |l: &Log| l.name.split('-').next().unwrap_or(&l.name).to_owned();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Leave-one-log-out over {} logs, {} candidates (`MemplanParams::grid`); the bar: \
         passes ≥ the best of simrd's six at each ratio, geometric-mean overhead (over the \
         ratios where both pass) ≤ theirs.\n",
        logs.len(),
        grid.len()
    );
    s.push_str(
        "| held-out log | constants chosen on the others | memplan passes | best-of-six passes \
         | memplan geomean | best-of-six geomean | bar met |\n|---|---|---|---|---|---|---|\n",
    );
    let all: Vec<usize> = (0..logs.len()).collect();
    for l in 0..logs.len() {
        let train: Vec<usize> = all.iter().copied().filter(|&x| x != l).collect();
        let c = select(&grid, &vs, &train);
        let v = vs[c][l];
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.4} | {:.4} | {} |",
            short(&logs[l]),
            grid[c],
            v.passes,
            v.best_passes,
            v.geomean,
            v.best_geomean,
            if v.met() { "yes" } else { "no" }
        );
    }
    let c = select(&grid, &vs, &all);
    let _ = writeln!(
        s,
        "\nChosen on all {} logs: {} (`MemplanParams::DEFAULT` is {}).\n",
        logs.len(),
        grid[c],
        MemplanParams::DEFAULT
    );
    s.push_str("| candidate | logs meeting the bar |");
    for l in logs {
        let _ = write!(s, " {} |", short(l));
    }
    s.push_str("\n|---|---|");
    for _ in logs {
        s.push_str("---|");
    }
    s.push('\n');
    for (c, p) in grid.iter().enumerate() {
        let met = vs[c].iter().filter(|v| v.met()).count();
        let _ = write!(s, "| {p} | {met} |");
        for v in &vs[c] {
            let _ = write!(
                s,
                " {}/{} {:.4}/{:.4} |",
                v.passes, v.best_passes, v.geomean, v.best_geomean
            );
        }
        s.push('\n');
    }
    output::err(format!(
        "{} runs in {:.2} s\n",
        logs.len() * (six.len() + grid.len()) * RATIOS.len(),
        t0.elapsed().as_secs_f64()
    ));
    s
}
