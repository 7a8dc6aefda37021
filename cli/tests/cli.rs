//! End-to-end tests of the `memplan` binary: exit codes, messages and outputs.
//!
//! Every run passes `--max-nodes` so results do not depend on timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use memplan_tests::require::{shared_data, skip_or_fail};

const BIN: &str = env!("CARGO_BIN_EXE_memplan");

/// A fresh path under the temp dir, unique per process and call.
fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let k = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("memplan-cli-{}-{k}-{name}", std::process::id()))
}

/// Writes `text` to a fresh temp file named `name`.
fn file(name: &str, text: &str) -> PathBuf {
    let path = temp(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn memplan(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn plan(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["plan", path.to_str().unwrap(), "--max-nodes", "1000"];
    args.extend_from_slice(extra);
    memplan(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts that planning `text` fails with exit 1 and `FILE:LINE: ...message...`.
#[track_caller]
fn bad(text: &str, line: u64, message: &str) {
    let path = file("bad.csv", text);
    let o = plan(&path, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let prefix = format!("{}:{line}: ", path.display());
    assert!(err.starts_with(&prefix), "want {prefix:?}, got {err:?}");
    assert!(err.contains(message), "want {message:?} in {err:?}");
    assert!(o.stdout.is_empty());
    assert!(!err.contains("panicked"));
}

const HEADER: &str = "id,lower,upper,size\n";

#[test]
fn header_missing_column() {
    bad("id,lower,size\na,0,1\n", 1, "missing column upper");
    bad(
        "0,0,1,4\n1,1,2,4\n",
        1,
        "missing columns id, lower, upper, size",
    );
    bad("id,lower,upper,size,size\na,0,1,4,4\n", 1, "appears twice");
}

#[test]
fn not_an_integer() {
    bad(
        &format!("{HEADER}a,0,1,4\nb,x,2,4\n"),
        3,
        "`lower` is not a non-negative integer",
    );
    bad(
        &format!("{HEADER}a,0,1,4.5\n"),
        2,
        "`size` is not a non-negative integer",
    );
    bad(&format!("{HEADER}a,0,,4\n"), 2, "missing value for `upper`");
}

#[test]
fn zero_or_negative_size() {
    bad(&format!("{HEADER}a,0,1,0\n"), 2, "size must be positive");
    bad(
        &format!("{HEADER}a,0,1,-4\n"),
        2,
        "`size` must not be negative",
    );
    bad(
        &format!("{HEADER}a,-1,1,4\n"),
        2,
        "`lower` must not be negative",
    );
}

#[test]
fn empty_lifetime() {
    bad(&format!("{HEADER}a,0,1,4\nb,3,3,4\n"), 3, "empty lifetime");
    bad(
        &format!("{HEADER}a,5,2,4\n"),
        2,
        "upper (2) must be greater than lower (5)",
    );
}

#[test]
fn duplicate_id() {
    bad(
        &format!("{HEADER}a,0,1,4\nb,0,1,4\na,2,3,4\n"),
        4,
        "duplicate id \"a\" (first on line 2)",
    );
}

#[test]
fn overflow() {
    bad(
        &format!("{HEADER}a,0,1,18446744073709551616\n"),
        2,
        "does not fit in an unsigned 64-bit",
    );
    bad(
        &format!("{HEADER}a,0,99999999999999999999999,4\n"),
        2,
        "`upper` value",
    );
    let half = 1u64 << 63;
    bad(
        &format!("{HEADER}a,0,1,{half}\nb,5,6,{half}\n"),
        3,
        "does not fit in an unsigned 64-bit",
    );
}

#[test]
fn wrong_column_count() {
    bad(
        &format!("{HEADER}a,0,1,4\nb,0,1\n"),
        3,
        "expected 4 fields (as in the header), found 3",
    );
    bad(&format!("{HEADER}a,0,1,4,9\n"), 2, "found 5");
}

#[test]
fn empty_file_or_header_only() {
    let path = file("empty.csv", "");
    let o = plan(&path, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with(&format!("{}: empty file", path.display())));
    bad(HEADER, 1, "no buffers");
    bad(&format!("# only a comment\n{HEADER}\n"), 2, "no buffers");
}

#[test]
fn invalid_utf8() {
    let path = temp("utf8.csv");
    std::fs::write(&path, b"id,lower,upper,size\na,0,1,4\n\xff,0,1,4\n").unwrap();
    let o = plan(&path, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with(&format!("{}:3: invalid UTF-8", path.display())));
}

#[test]
fn unreadable_file() {
    let path = temp("does-not-exist.csv");
    let o = plan(&path, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with(&format!("{}: cannot read", path.display())));
    let dir = temp("a-directory");
    std::fs::create_dir(&dir).unwrap();
    assert_eq!(plan(&dir, &[]).status.code(), Some(1));
}

#[test]
fn bad_options_exit_1() {
    let path = file("ok.csv", &format!("{HEADER}a,0,1,4\n"));
    for extra in [
        &["--alignment", "3"][..],
        &["--alignment", "0"],
        &["--time-limit", "-1"],
        &["--time-limit", "soon"],
        &["--capacity", "-5"],
        &["--no-such-flag"],
    ] {
        let o = plan(&path, extra);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    let o = plan(&path, &["--alignment", "3"]);
    assert!(stderr(&o).contains("power of two"));
    assert_eq!(memplan(&["--help"]).status.code(), Some(0));
}

#[test]
fn comments_are_skipped_and_counted() {
    let text = format!("# a comment\n{HEADER}# another\na,0,2,4\n\n# more\nb,1,3,4\n");
    let path = file("comments.csv", &text);
    let o = plan(&path, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["buffers"], 2);
    assert_eq!(v["arena_size"], 8);
    // Line numbers count comment and blank lines.
    bad(
        &format!("# a comment\n{HEADER}# another\na,0,2,4\n\n# more\nb,1,x,4\n"),
        7,
        "`upper`",
    );
}

/// Three buffers alive together at time 1: max load 12.
const SMALL: &str = "id,lower,upper,size,extra\na,0,2,4,x\nb,1,3,4,y\nc,1,2,4,z\nd,3,4,8,w\n";

#[test]
fn capacity_exceeded_exits_2() {
    let path = file("small.csv", SMALL);
    let o = plan(&path, &["--capacity", "11"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).contains("best peak"), "{}", stdout(&o));
    assert!(stderr(&o).contains("does not fit in 11 bytes"));
    assert!(stderr(&o).contains("proven"));

    let o = plan(&path, &["--capacity", "11", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["fits"], false);
    assert_eq!(v["proven"], true);
    assert_eq!(v["peak_requested"], 12);
    assert!(v["arena_size"].as_u64().unwrap() >= 12);

    let o = plan(&path, &["--capacity", "12", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["fits"], true);
    assert_eq!(v["arena_size"], 12);
}

#[test]
fn json_has_exactly_the_keys() {
    let path = file("small.csv", SMALL);
    let o = plan(&path, &["--json"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "arena_size",
            "buffers",
            "capacity",
            "elapsed_ms",
            "file",
            "nodes",
            "optimal",
            "peak_requested",
            "ratio",
            "schema_version",
            "unproven_reason"
        ]
    );
    assert_eq!(v["buffers"], 4);
    assert_eq!(v["peak_requested"], 12);
    assert_eq!(v["arena_size"], 12);
    assert_eq!(v["ratio"], 1.0);
    assert_eq!(v["optimal"], true);
    assert!(v["unproven_reason"].is_null());
    assert!(v["elapsed_ms"].as_f64().unwrap() >= 0.0);
}

/// A plan cut short by a node budget says so in its JSON.
#[test]
fn json_says_why_a_plan_is_not_proven() {
    // Five buffers whose heuristics-only plan peaks at 14 while 13 is optimal.
    let path = file(
        "needs-search.csv",
        "id,lower,upper,size\na,4,8,5\nb,5,6,4\nc,4,6,4\nd,1,5,4\ne,0,2,6\n",
    );
    let o = memplan(&["plan", path.to_str().unwrap(), "--json", "--max-nodes", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["optimal"], false);
    assert_eq!(v["unproven_reason"], "node_limit");
}

/// Reads an `--out` file: (id, lower, upper, size, offset) rows.
fn read_solution(path: &Path) -> Vec<(String, u64, u64, u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,lower,upper,size,offset"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (f[0].to_owned(), n(1), n(2), n(3), n(4))
        })
        .collect()
}

/// No two buffers alive together share a byte (a naive O(n²) oracle).
fn assert_no_overlap(rows: &[(String, u64, u64, u64, u64)]) {
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            let time = a.1 < b.2 && b.1 < a.2;
            let space = a.4 < b.4 + b.3 && b.4 < a.4 + a.3;
            assert!(!(time && space), "{a:?} overlaps {b:?}");
        }
    }
}

#[test]
fn out_round_trip() {
    let mut text = String::from("# generated\nsize,id,upper,lower\n");
    for i in 0..60u64 {
        let lower = (i * 7) % 23;
        text.push_str(&format!(
            "{},buf{i},{},{lower}\n",
            1 + (i * 37) % 100,
            lower + 1 + i % 9
        ));
    }
    let path = file("many.csv", &text);
    let out = temp("many-plan.csv");
    let o = plan(&path, &["--out", out.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = read_solution(&out);
    assert_eq!(rows.len(), 60);
    for (i, r) in rows.iter().enumerate() {
        let i = i as u64;
        let lower = (i * 7) % 23;
        assert_eq!(
            *r,
            (
                format!("buf{i}"),
                lower,
                lower + 1 + i % 9,
                1 + (i * 37) % 100,
                r.4
            )
        );
    }
    assert_no_overlap(&rows);
    let peak = rows.iter().map(|r| r.4 + r.3).max().unwrap();
    assert_eq!(v["arena_size"], peak);

    // The written plan reads back as a problem (the offset column is ignored) with the same
    // answer: planning is deterministic under --max-nodes.
    let o2 = plan(&out, &["--json"]);
    let v2: serde_json::Value = serde_json::from_str(&stdout(&o2)).unwrap();
    assert_eq!(v2["arena_size"], v["arena_size"]);
    assert_eq!(v2["peak_requested"], v["peak_requested"]);
}

#[test]
fn alignment_applies_to_every_buffer() {
    let path = file("small.csv", SMALL);
    let out = temp("aligned.csv");
    let o = plan(
        &path,
        &["--alignment", "16", "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = read_solution(&out);
    assert!(rows.iter().all(|r| r.4 % 16 == 0), "{rows:?}");
    assert_no_overlap(&rows);
}

#[test]
fn human_summary_and_svg() {
    let path = file("small.csv", SMALL);
    let svg = temp("small.svg");
    let o = plan(&path, &["--svg", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for want in [
        "buffers",
        "max load",
        "peak",
        "ratio",
        "optimal",
        "time",
        "written to",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.starts_with("<svg"));
    assert!(drawing.contains("stroke-dasharray"));
    assert!(drawing.contains("max load"));
    // One rectangle per buffer, plus the background.
    assert_eq!(drawing.matches("<rect").count(), 4 + 1);
}

#[test]
fn embedded_example() {
    let dir = temp("example-dir");
    std::fs::create_dir(&dir).unwrap();
    let o = Command::new(BIN)
        .args(["plan", "--max-nodes", "0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("resnet50.csv (embedded example)"), "{out}");
    assert!(out.contains("1042"), "{out}");
    assert!(out.contains("memplan-plan.svg"), "{out}");
    let drawing = std::fs::read_to_string(dir.join("memplan-plan.svg")).unwrap();
    assert_eq!(drawing.matches("<rect").count(), 1042 + 1);
}

#[test]
fn bench_tables() {
    let root = temp("bench");
    let chall = root.join("minimalloc").join("challenging");
    std::fs::create_dir_all(&chall).unwrap();
    std::fs::write(root.join("small.csv"), SMALL).unwrap();
    std::fs::write(chall.join("X.12.csv"), SMALL).unwrap();
    std::fs::write(chall.join("Y.11.csv"), SMALL).unwrap();
    std::fs::write(root.join("events.csv"), "ts,addr,bytes\n1,2,3\n").unwrap();
    let o = memplan(&["bench", root.to_str().unwrap(), "--time-limit", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| trace | n | max load |"), "{out}");
    assert!(
        out.contains("| small.csv | 4 | 12 | 12 | 1.00000 | yes |"),
        "{out}"
    );
    assert!(out.contains("| 12 | yes / yes |"), "{out}");
    assert!(out.contains("| 11 | no / no |"), "{out}");
    assert!(out.contains("**total (3 traces)**"), "{out}");
    assert!(stderr(&o).contains("skipped events.csv: not a problem file"));

    let o = memplan(&["bench", root.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);

    // No traces where the default path points: a message, not a failure.
    let empty = temp("no-traces");
    std::fs::create_dir(&empty).unwrap();
    let o = Command::new(BIN)
        .arg("bench")
        .current_dir(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("traces not found at"), "{}", stdout(&o));
}

#[test]
fn python_verifier_agrees() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/verify_plan.py");
    let python = |args: &[&Path]| Command::new("python3").arg(&script).args(args).output();
    let path = file("small.csv", SMALL);
    let out = temp("small-plan.csv");
    let o = plan(&path, &["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let Ok(checked) = python(&[&path, &out]) else {
        skip_or_fail("python3 (for the scripts/verify_plan.py check) is not installed");
        return;
    };
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    assert_eq!(stdout(&checked), "OK n=4 peak=12\n");

    // Move buffer "b" onto "a" (both alive at time 1): the script must object.
    let text = std::fs::read_to_string(&out).unwrap();
    let a_offset = text
        .lines()
        .find(|l| l.starts_with("a,"))
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap();
    let broken: String = text
        .lines()
        .map(|l| match l.strip_prefix("b,") {
            Some(rest) => format!("b,{},{a_offset}\n", &rest[..rest.rfind(',').unwrap()]),
            None => format!("{l}\n"),
        })
        .collect();
    let bad = file("broken-plan.csv", &broken);
    let checked = python(&[&path, &bad]).unwrap();
    assert_eq!(checked.status.code(), Some(1), "{}", stdout(&checked));
    assert!(stdout(&checked).contains("overlap"), "{}", stdout(&checked));
}

#[test]
fn convert_round_trips_and_reports_bad_traces() {
    let csv = file("c.csv", "id,lower,upper,size\nb1,0,3,4\nb2,3,9,4\n");
    let out = temp("c.trace");
    let o = memplan(&["convert", csv.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "memplan-trace 1\na 0 4 0\nf 0\na 1 4 0\nf 1\n");
    // Reading memplan's own format back gives the same text.
    let o = memplan(&["convert", out.to_str().unwrap(), "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), text);
    // A free of an unknown id: exit 1, file:line and the event index.
    let bad = file("bad.trace", "memplan-trace 1\na 1 512 0\nf 2\n");
    let o = memplan(&["convert", bad.to_str().unwrap(), "-"]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!(
        "{}:3: event 1: free of allocation 2, which is not live",
        bad.display()
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
}

#[test]
fn replay_json_reports_every_allocator() {
    let t = file(
        "r.trace",
        "memplan-trace 1\na 1 4194304 0\na 2 1048576 0\nf 1\na 3 512 1\n",
    );
    let o = memplan(&["replay", t.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["events"], 4);
    let results = v["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["allocator"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["torch", "torch-expandable", "online", "guided"]);
    for r in results {
        assert_eq!(r["peak_requested"], 4194304 + 1048576);
        assert!(r["peak_reserved"].as_u64().unwrap() >= 4194304 + 1048576);
        assert!(r["oom_at_event"].is_null());
    }
    // Under a capacity too small for the first allocation, both run out at event 0.
    let o = memplan(&[
        "replay",
        t.to_str().unwrap(),
        "--json",
        "--capacity",
        "1000000",
    ]);
    // Running out is exit 2, after the report.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("out of memory under --capacity 1000000"));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["oom_at_event"], 0, "{r}");
    }
    // A malformed trace: exit 1 with the line.
    let bad = file("rbad.trace", "memplan-trace 1\nq 1\n");
    let o = memplan(&["replay", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(":2: unknown event kind"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_rejects_malformed_traces_with_exit_1() {
    // A truncated PyTorch snapshot (when the shared traces are present).
    if let Some(path) = shared_data("traces/external/pytorch_snapshots/decomfl_opt/memory.pickle") {
        let data = std::fs::read(path).unwrap();
        let cut = temp("cut.pickle");
        std::fs::write(&cut, &data[..data.len() / 3]).unwrap();
        let o = memplan(&["replay", cut.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("not a readable pickle"),
            "{}",
            stderr(&o)
        );
    }
    // A profiler trace that allocates at an address that is still allocated.
    let k = file(
        "k.json",
        r#"{"traceEvents":[
            {"name":"[memory]","ts":1,"args":{"Device Type":1,"Device Id":0,"Addr":64,"Bytes":8}},
            {"name":"[memory]","ts":2,"args":{"Device Type":1,"Device Id":0,"Addr":64,"Bytes":8}}]}"#,
    );
    let o = memplan(&["replay", k.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("traceEvents[1]: event 1: allocation 64 is still live"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_of_the_decomfl_snapshot_matches_pytorch() {
    let Some(path) = shared_data("traces/external/pytorch_snapshots/decomfl_opt/memory.pickle")
    else {
        return;
    };
    let o = memplan(&[
        "replay",
        path.to_str().unwrap(),
        "--allocator",
        "all",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let peak = |name: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["allocator"] == name)
            .map(|r| r["peak_reserved"].as_u64().unwrap())
            .unwrap()
    };
    // PyTorch's own peak reserved for this run, reproduced by the model from the pickle.
    assert_eq!(peak("torch"), 1_897_922_560);
    assert!(peak("online") < peak("torch"));
}

#[test]
fn replay_repeat_and_dynamic() {
    // Allocations 2 and 3 are never freed (persistent): made once, kept live.
    let t = file(
        "rep.trace",
        "memplan-trace 1\na 1 4194304 0\na 2 1048576 0\nf 1\na 3 512 1\n",
    );
    let path = t.to_str().unwrap();
    let o = memplan(&["replay", path, "--repeat", "3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    // 3 copies of 4 events, less the 2 persistent allocations in copies 2 and 3, plus 3
    // iteration markers.
    assert_eq!(v["events"], 3 * 4 - 2 * 2 + 3);
    assert_eq!(v["repeat"], 3);
    for r in v["results"].as_array().unwrap() {
        // Iteration 2's first allocation joins the persistent ones.
        assert_eq!(r["peak_requested"], 4194304 + 1048576 + 512, "{r}");
    }
    let o = memplan(&["replay", path, "--repeat", "3"]);
    assert!(stdout(&o).contains("workload: repeated as 3 iterations (2 persistent"));
    // --dynamic: the same output (but for timings) on every run, different from --repeat.
    let run = || {
        let o = memplan(&["replay", path, "--repeat", "4", "--dynamic", "7", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(
            (v["repeat"].clone(), v["dynamic"].clone()),
            (4.into(), 7.into())
        );
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["peak_requested"].clone(), r["peak_reserved"].clone()))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert_ne!(first[0].0, 4194304 + 1048576 + 512);
    let o = memplan(&["replay", path, "--repeat", "2", "--dynamic", "7"]);
    assert!(stdout(&o).contains("dynamic with seed 7"), "{}", stdout(&o));
    // Usage errors: exit 1 with a clear message.
    let o = memplan(&["replay", path, "--repeat", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));
    let o = memplan(&["replay", path, "--dynamic", "7"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs --repeat"), "{}", stderr(&o));
}

/// Three iterations of the same four allocations, one of them a weight never freed.
const ITERATIONS: &str = "memplan-trace 1\na 1 4096 0\ni\na 10 1000 0\na 11 2000 0\nf 10\na 12 512 0\nf 11\nf 12\ni\na 20 1000 0\na 21 2000 0\nf 20\na 22 512 0\nf 21\nf 22\ni\na 30 1000 0\na 31 2000 0\nf 30\na 32 512 0\nf 31\nf 32\n";

#[test]
fn plan_trace_writes_a_plan_that_replay_serves_without_misses() {
    let trace = file("iterations.trace", ITERATIONS);
    let out = temp("iterations.plan");
    let o = memplan(&[
        "plan-trace",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(summary["persistent"], 1);
    assert_eq!(summary["prologue_slots"], 4);
    assert_eq!(summary["iteration_slots"], 3);
    let bytes = std::fs::read(&out).unwrap();
    let plan = memplan_core::plan::Plan::from_bytes(&bytes).unwrap();
    assert_eq!(plan.arena_size, summary["arena_size"].as_u64().unwrap());
    let o = memplan(&[
        "replay",
        trace.to_str().unwrap(),
        "--allocator",
        "guided",
        "--plan",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let r = &report["results"][0];
    assert_eq!(r["allocator"], "guided");
    assert_eq!(r["plan"]["hits"], 10);
    assert_eq!(r["plan"]["misses"], 0);
}

#[test]
fn a_corrupt_or_truncated_plan_is_an_error() {
    let trace = file("iterations.trace", ITERATIONS);
    let out = temp("corrupt.plan");
    let o = memplan(&[
        "plan-trace",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = std::fs::read(&out).unwrap();
    let serve = |bytes: &[u8]| {
        std::fs::write(&out, bytes).unwrap();
        memplan(&[
            "replay",
            trace.to_str().unwrap(),
            "--allocator",
            "guided",
            "--plan",
            out.to_str().unwrap(),
        ])
    };
    let mut corrupt = good.clone();
    corrupt[40] ^= 0x10;
    let o = serve(&corrupt);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("checksum mismatch"), "{}", stderr(&o));
    let o = serve(&good[..good.len() - 5]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    let o = serve(b"not a plan");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a memplan plan file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_trace_rejects_zero_profile_iterations() {
    let trace = file("iterations.trace", ITERATIONS);
    let out = temp("zero.plan");
    let o = memplan(&[
        "plan-trace",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--profile-iterations",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));
}

#[test]
fn remat_allocator_online_and_the_old_name_is_rejected() {
    let log = file(
        "tiny.log",
        concat!(
            "{\"ANNOTATION\":\"START\",\"INSTRUCTION\":\"ANNOTATE\"}\n",
            "{\"INSTRUCTION\":\"CONSTANT\",\"NAME\":\"w\"}\n",
            "{\"INSTRUCTION\":\"MEMORY\",\"MEMORY\":\"1024\",\"NAME\":\"w\"}\n",
            "{\"ARGS\":[\"w\"],\"INSTRUCTION\":\"CALL\",\"NAME\":\"f\",\"RESULT\":[\"y\"],\"TIME\":\"5\"}\n",
            "{\"INSTRUCTION\":\"MEMORY\",\"MEMORY\":\"2048\",\"NAME\":\"y\"}\n",
            "{\"ALIAS\":\"-1\",\"INSTRUCTION\":\"ALIAS\",\"NAME\":\"y\"}\n",
            "{\"INSTRUCTION\":\"RELEASE\",\"NAME\":\"y\"}\n",
        ),
    );
    let log = log.to_str().unwrap();
    let o = memplan(&[
        "remat",
        log,
        "--budget-ratio",
        "1",
        "--allocator",
        "online",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(v["allocator"], "online");
    let o = memplan(&["remat", log, "--allocator", "memplan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the memory model `memplan` is now called `online`"),
        "{}",
        stderr(&o)
    );
    let o = memplan(&["remat", log, "--allocator", "arena"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("expected bytes or online"),
        "{}",
        stderr(&o)
    );
}
