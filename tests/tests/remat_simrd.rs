//! Agreement of memplan's rematerialization simulator (`memplan_core::remat::sim`) with
//! `simrd`'s own results (`shared/traces/external/dtr-simrd-logs/simrd-results.jsonl`): for
//! every log, heuristic and budget ratio, the same outcome (pass / OOM / thrash), the final
//! clock within 0.1 % (in fact equal), and the same number of evictions.
//!
//! The log parser is the CLI's (`memplan_cli::io::dtr::read_program`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use memplan_cli::io::dtr;
use memplan_core::remat::Heuristic;
use memplan_core::remat::sim::{self, RunOptions, Verdict};
use memplan_tests::require::shared_data;
use serde_json::Value;

/// The folder of the anchor logs and simrd's results on them, and those results; `None`
/// (after [`shared_data`] reported it) when they are absent.
fn simrd_results() -> Option<(PathBuf, Vec<Value>)> {
    let dir = shared_data("traces/external/dtr-simrd-logs")?;
    let results = shared_data("traces/external/dtr-simrd-logs/simrd-results.jsonl")?;
    let text = std::fs::read_to_string(results).expect("simrd-results.jsonl");
    let rows = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("results line"))
        .collect();
    Some((dir, rows))
}

#[test]
fn simrd_agreement() {
    let Some((dir, rows)) = simrd_results() else {
        return;
    };
    // model -> log file name
    let logs: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| r["kind"] == "baseline")
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_owned(),
                r["log"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(logs.len(), 6);
    let mut checked = 0;
    for (model, file) in &logs {
        let data = std::fs::read(dir.join(file)).expect("log");
        let program = dtr::read_program(file, &data).unwrap_or_else(|e| panic!("{e}"));
        let base = program.baseline().expect("baseline");
        let brow = rows
            .iter()
            .find(|r| r["kind"] == "baseline" && r["model"] == model.as_str())
            .unwrap();
        assert_eq!(
            Some(base.compute),
            brow["baseline_compute"].as_u64(),
            "{model}"
        );
        assert_eq!(Some(base.peak), brow["baseline_memory"].as_u64(), "{model}");
        for r in rows
            .iter()
            .filter(|r| r["kind"] == "run" && r["model"] == model.as_str())
        {
            let h = Heuristic::ALL
                .into_iter()
                .find(|h| h.simrd_name() == r["heuristic"].as_str())
                .expect("known heuristic");
            let ratio = r["ratio"].as_f64().unwrap();
            let budget = sim::budget_for(base.peak, ratio);
            assert_eq!(Some(budget), r["budget"].as_u64(), "{model} {ratio}");
            let got = sim::run(
                &program,
                base.compute,
                RunOptions {
                    budget,
                    heuristic: h,
                    remat_limit: Some(base.compute),
                    arena: false,
                    swap_bytes_per_second: None,
                },
            )
            .expect("run");
            let want = match r["result"].as_str().unwrap() {
                "pass" => Verdict::Pass,
                "OOM" => Verdict::Oom,
                "thrashed" => Verdict::Thrash,
                other => panic!("unknown result {other}"),
            };
            let clock = r["clock"].as_u64().unwrap();
            let what = format!("{model} {h} {ratio}");
            assert_eq!(got.outcome, want, "{what}");
            let diff = (got.stats.clock as f64 - clock as f64).abs() / clock as f64;
            assert!(diff <= 1e-3, "{what}: clock {} vs {clock}", got.stats.clock);
            assert_eq!(
                Some(got.stats.evictions),
                r["evictions"].as_u64(),
                "{what}: evictions"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 360);
    println!("{checked} runs agree with simrd");
}

/// `--heuristic memplan` against simrd's six (their results from `simrd-results.jsonl`,
/// which the test above shows memplan's simulator reproduces): on every log it passes at
/// least as many ratios as the best of the six, and over the ratios where both pass its
/// geometric-mean overhead is lower than each one's — or equal when every common ratio is
/// one at which all heuristics reach the same clock (no eviction decision was taken).
#[test]
fn memplan_heuristic_beats_simrds() {
    let Some((dir, rows)) = simrd_results() else {
        return;
    };
    let mut compared = 0;
    for b in rows.iter().filter(|r| r["kind"] == "baseline") {
        let model = b["model"].as_str().unwrap();
        let file = b["log"].as_str().unwrap();
        let data = std::fs::read(dir.join(file)).expect("log");
        let program = dtr::read_program(file, &data).unwrap_or_else(|e| panic!("{e}"));
        let base = program.baseline().expect("baseline");
        // ratio (as text) -> memplan's clock when it passes
        let mut mine: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r["kind"] == "run" && r["model"] == model && r["heuristic"] == "DTR")
        {
            let ratio = r["ratio"].as_f64().unwrap();
            let got = sim::run(
                &program,
                base.compute,
                RunOptions {
                    budget: sim::budget_for(base.peak, ratio),
                    heuristic: Heuristic::Memplan,
                    remat_limit: Some(base.compute),
                    arena: false,
                    swap_bytes_per_second: None,
                },
            )
            .expect("run");
            let clock = (got.outcome == Verdict::Pass).then_some(got.stats.clock);
            mine.insert(ratio.to_string(), clock);
        }
        assert_eq!(mine.len(), 10, "{model}");
        let my_passes = mine.values().filter(|c| c.is_some()).count();
        for h in Heuristic::ALL
            .into_iter()
            .filter(|&h| h != Heuristic::Memplan)
        {
            let theirs: Vec<(String, u64)> = rows
                .iter()
                .filter(|r| {
                    r["kind"] == "run"
                        && r["model"] == model
                        && r["heuristic"].as_str() == h.simrd_name()
                        && r["result"] == "pass"
                })
                .map(|r| {
                    let ratio = r["ratio"].as_f64().unwrap().to_string();
                    (ratio, r["clock"].as_u64().unwrap())
                })
                .collect();
            assert!(
                my_passes >= theirs.len(),
                "{model}: memplan passes fewer than {h}"
            );
            let (mut lm, mut lh, mut n) = (0.0f64, 0.0f64, 0);
            for (ratio, clock) in &theirs {
                if let Some(Some(m)) = mine.get(ratio) {
                    lm += (*m as f64).ln();
                    lh += (*clock as f64).ln();
                    n += 1;
                }
            }
            assert!(n > 0, "{model} {h}: no common passing ratio");
            let all_equal = theirs
                .iter()
                .all(|(r, c)| mine.get(r).is_none_or(|m| m.is_none_or(|m| m == *c)));
            println!(
                "{model} vs {h}: {n} common ratios, geomean clock ratio {:.4}",
                ((lm - lh) / n as f64).exp()
            );
            assert!(lm < lh || all_equal, "{model}: memplan not better than {h}");
            compared += 1;
        }
    }
    assert_eq!(compared, 36);
}
