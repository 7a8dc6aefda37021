//! End-to-end tests of the conventions every `memplan` command follows: `-` for standard input
//! and output, byte sizes, a closed pipe ending quietly, exit 2 when `replay` runs out of
//! memory, and `schema_version` first in every `--json` object.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::{BIN, run};

const PROBLEM: &str = "id,lower,upper,size\na,0,2,4\nb,1,3,4\nc,2,4,4\nd,3,5,4\n";
const TRACE: &str = "memplan-trace 1\ni\na 1 4194304 0\na 2 1048576 0\nf 1\nf 2\n\
                     i\na 3 4194304 0\na 4 1048576 0\nf 3\nf 4\n";
const MODEL: &str = "name,numel,dtype_bytes,first_use,last_use\nw1,1000,2,0,3\nw2,2000,2,1,2\n";
const LOG: &str = concat!(
    "{\"ANNOTATION\":\"START\",\"INSTRUCTION\":\"ANNOTATE\"}\n",
    "{\"INSTRUCTION\":\"CONSTANT\",\"NAME\":\"w\"}\n",
    "{\"INSTRUCTION\":\"MEMORY\",\"MEMORY\":\"1024\",\"NAME\":\"w\"}\n",
    "{\"ARGS\":[\"w\"],\"INSTRUCTION\":\"CALL\",\"NAME\":\"f\",\"RESULT\":[\"y\"],\"TIME\":\"5\"}\n",
    "{\"INSTRUCTION\":\"MEMORY\",\"MEMORY\":\"2048\",\"NAME\":\"y\"}\n",
    "{\"ALIAS\":\"-1\",\"INSTRUCTION\":\"ALIAS\",\"NAME\":\"y\"}\n",
    "{\"INSTRUCTION\":\"RELEASE\",\"NAME\":\"y\"}\n",
);

/// A fresh path under the temp dir, unique per process and call.
fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let k = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("memplan-conv-{}-{k}-{name}", std::process::id()))
}

fn file(name: &str, text: &str) -> String {
    let path = temp(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", err(o));
}

#[test]
fn dash_reads_standard_input_in_every_command() {
    let o = run(
        &["plan", "-", "--json", "--max-nodes", "100"],
        PROBLEM.as_bytes(),
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        (v["file"].as_str(), v["buffers"].as_u64()),
        (Some("<stdin>"), Some(4))
    );

    let o = run(&["replay", "-", "--json"], TRACE.as_bytes());
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["file"], "<stdin>");
    assert_eq!(v["events"], 10);

    let o = run(&["analyze", "-", "--json"], TRACE.as_bytes());
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["reports"][0]["file"], "<stdin>");
    assert!(
        v["reports"][0]["peak_requested"].as_u64().unwrap() > 0,
        "{v}"
    );

    let o = run(&["convert", "-", "-"], PROBLEM.as_bytes());
    ok(&o);
    assert!(out(&o).starts_with("memplan-trace 1\n"), "{}", out(&o));

    // plan-trace: the plan file on stdout, the summary on stderr.
    let o = run(&["plan-trace", "-", "--out", "-"], TRACE.as_bytes());
    ok(&o);
    assert!(!o.stdout.is_empty());
    assert!(
        err(&o).contains("plan written to standard output"),
        "{}",
        err(&o)
    );
    // ... and that plan read back from stdin by replay --plan.
    let plan = o.stdout;
    let trace = file("t.trace", TRACE);
    let o = run(
        &[
            "replay",
            &trace,
            "--allocator",
            "guided",
            "--plan",
            "-",
            "--json",
        ],
        &plan,
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["results"][0]["plan"]["misses"], 0, "{v}");

    let o = run(
        &["chunks", "-", "--gpu-bytes", "1MiB", "--host-bytes", "1GB"],
        MODEL.as_bytes(),
    );
    ok(&o);
    assert!(out(&o).starts_with("<stdin>: 2 tensors"), "{}", out(&o));

    let o = run(
        &["remat", "-", "--budget-ratio", "1", "--json"],
        LOG.as_bytes(),
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(out(&o).lines().next().unwrap()).unwrap();
    assert_eq!(v["file"], "<stdin>");

    let o = run(
        &["bench", "-", "--time-limit", "0", "--json"],
        PROBLEM.as_bytes(),
    );
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["results"][0]["file"], "<stdin>");
}

#[test]
fn dash_writes_standard_output_and_the_report_moves_to_stderr() {
    let p = file("p.csv", PROBLEM);
    let o = run(&["plan", &p, "--out", "-", "--max-nodes", "100"], b"");
    ok(&o);
    assert!(
        out(&o).starts_with("id,lower,upper,size,offset\n"),
        "{}",
        out(&o)
    );
    assert!(
        err(&o).contains("written to standard output"),
        "{}",
        err(&o)
    );
    let o = run(
        &["plan", &p, "--svg", "-", "--json", "--max-nodes", "100"],
        b"",
    );
    ok(&o);
    assert!(out(&o).starts_with("<svg"), "{}", out(&o));
    assert!(err(&o).starts_with("{\"schema_version\":1,"), "{}", err(&o));
    let o = run(&["plan", &p, "--svg", "-", "--out", "-"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("only one output can go to standard output"),
        "{}",
        err(&o)
    );
    let t = file("t.trace", TRACE);
    let o = run(&["replay", &t, "--svg", "-"], b"");
    ok(&o);
    assert!(out(&o).starts_with("<svg"), "{}", out(&o));
    assert!(err(&o).contains("peak requested"), "{}", err(&o));
}

#[test]
fn empty_stdin_and_directories_are_clear_errors() {
    for args in [
        &["plan", "-"][..],
        &["replay", "-"],
        &["plan-trace", "-", "--out", "x"],
        &["convert", "-", "-"],
        &["remat", "-"],
        &["chunks", "-", "--gpu-bytes", "1", "--host-bytes", "1"],
    ] {
        let o = run(args, b"");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert!(
            err(&o).contains("<stdin>: nothing on standard input"),
            "{args:?}: {}",
            err(&o)
        );
    }
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    for args in [
        &["plan", dir][..],
        &["replay", dir],
        &["convert", dir, "-"],
        &["chunks", dir, "--gpu-bytes", "1", "--host-bytes", "1"],
    ] {
        let o = run(args, b"");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
        assert!(err(&o).contains("is a directory"), "{args:?}: {}", err(&o));
        assert!(!err(&o).contains("panicked"));
    }
    let p = file("p.csv", PROBLEM);
    let o = run(&["plan", &p, "--out", dir], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("is a directory"), "{}", err(&o));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // A trace large enough that its conversion outgrows any pipe buffer.
    let mut big = String::from("id,lower,upper,size\n");
    for i in 0..40_000 {
        big.push_str(&format!("b{i},{i},{},{}\n", i + 3, 64 + i % 7));
    }
    let path = file("big.csv", &big);
    for args in [
        &["convert", &path, "-"][..],
        &["replay", &path, "--allocator", "online", "--svg", "-"],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, as `| head -1` does, and close the pipe.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{stderr}");
    }
}

#[test]
fn byte_sizes_on_every_size_option() {
    let p = file("p.csv", PROBLEM);
    // The max load is 8 bytes.
    for (cap, code) in [
        ("8", 0),
        ("8B", 0),
        ("0.008KB", 0),
        ("8e0", 0),
        ("1KiB", 0),
        ("7", 2),
    ] {
        let o = run(
            &[
                "plan",
                &p,
                "--capacity",
                cap,
                "--json",
                "--max-nodes",
                "100",
            ],
            b"",
        );
        assert_eq!(o.status.code(), Some(code), "{cap}: {}", err(&o));
    }
    for (cap, why) in [
        ("-1", "negative"),
        ("lots", "not a byte size"),
        ("1e20", "too large"),
        ("16EiB", "too large"),
    ] {
        let o = run(&["plan", &p, "--capacity", cap], b"");
        assert_eq!(o.status.code(), Some(1), "{cap}");
        assert!(err(&o).contains(why), "{cap}: {}", err(&o));
    }
    let o = run(&["plan", &p, "--alignment", "1KiB", "--json"], b"");
    ok(&o);
    let o = run(&["plan", &p, "--alignment", "1KB"], b"");
    assert!(err(&o).contains("power of two"), "{}", err(&o));
    let t = file("t.trace", TRACE);
    let o = run(&["replay", &t, "--capacity", "16GiB", "--json"], b"");
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["capacity"], 16u64 << 30);
    let m = file("m.csv", MODEL);
    let o = run(
        &[
            "chunks",
            &m,
            "--gpu-bytes",
            "1.5e6",
            "--host-bytes",
            "1GiB",
            "--json",
        ],
        b"",
    );
    ok(&o);
}

#[test]
fn replay_out_of_memory_is_exit_2_after_the_report() {
    let t = file("t.trace", TRACE);
    let o = run(&["replay", &t, "--capacity", "4MiB"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        out(&o).contains("peak requested"),
        "the report comes first: {}",
        out(&o)
    );
    assert!(
        err(&o).contains("out of memory under --capacity 4194304"),
        "{}",
        err(&o)
    );
    let o = run(&["replay", &t, "--capacity", "64MiB"], b"");
    ok(&o);
}

#[test]
fn every_json_object_starts_with_schema_version() {
    let p = file("p.csv", PROBLEM);
    let t = file("t.trace", TRACE);
    let m = file("m.csv", MODEL);
    let l = file("l.log", LOG);
    let plan_out = temp("plan.bin");
    let plan_out = plan_out.to_str().unwrap();
    let dir = temp("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.csv"), PROBLEM).unwrap();
    let dir = dir.to_str().unwrap();
    let runs: [&[&str]; 8] = [
        &["plan", &p, "--json", "--max-nodes", "100"],
        &["analyze", &t, "--json"],
        &["bench", dir, "--json", "--time-limit", "0"],
        &["replay", &t, "--json"],
        &["plan-trace", &t, "--out", plan_out, "--json"],
        &[
            "estimate", "--params", "7e9", "--layers", "32", "--hidden", "4096", "--heads", "32",
            "--seq", "2048", "--json",
        ],
        &[
            "chunks",
            &m,
            "--gpu-bytes",
            "1MiB",
            "--host-bytes",
            "1GiB",
            "--json",
        ],
        &["remat", &l, "--json"],
    ];
    for args in runs {
        let o = run(args, b"");
        ok(&o);
        let text = out(&o);
        for line in text.lines() {
            assert!(
                line.starts_with("{\"schema_version\":1,"),
                "{args:?}: {line}"
            );
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v.is_object());
        }
        assert!(!text.is_empty(), "{args:?}");
    }
}
