//! Tests of both DTR log interpreters and the format sniffing.

use std::collections::HashMap;

use memplan_core::trace::{Event, Marker, Trace};
use memplan_tests::require::shared_data;
use serde_json::Value;

use super::{is_dtr, read, read_program};

fn log(lines: &[&str]) -> Vec<u8> {
    let mut s = String::from("{\"ANNOTATION\":\"START\",\"INSTRUCTION\":\"ANNOTATE\"}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.into_bytes()
}

const C1: &str = r#"{"INSTRUCTION":"CONSTANT","NAME":"w"}"#;
const M1: &str = r#"{"INSTRUCTION":"MEMORY","MEMORY":"100","NAME":"w"}"#;

fn mem_events(t: &Trace) -> Vec<Event> {
    t.events()
        .iter()
        .filter(|e| !matches!(e, Event::Marker(_)))
        .cloned()
        .collect()
}

fn a(id: u64, size: u64) -> Event {
    Event::Alloc {
        id,
        size,
        stream: 0,
    }
}

fn f(id: u64) -> Event {
    Event::Free { id }
}

#[test]
fn sniff() {
    assert!(is_dtr(&log(&[])));
    assert!(is_dtr(
        b"\n  {\"INSTRUCTION\":\"RELEASE\",\"NAME\":\"x\"}\n"
    ));
    assert!(!is_dtr(b"{\"traceEvents\": []}"));
    assert!(!is_dtr(b"{\n\"INSTRUCTION\":\"X\"}"));
    assert!(!is_dtr(b"id,lower,upper,size\n"));
    assert!(!is_dtr(b""));
}

#[test]
fn constant_is_freed_at_its_last_release() {
    let t = read(
        "c.log",
        &log(&[
            C1,
            M1,
            r#"{"DST":"w2","INSTRUCTION":"COPY","SRC":"w"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
            r#"{"INSTRUCTION":"CONSTANT","NAME":"k"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"8","NAME":"k"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"w2"}"#,
        ]),
    )
    .unwrap();
    // k stays live at the end.
    assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 8), f(0)]);
    assert_eq!(
        &t.events()[..2],
        &[
            Event::Marker(Marker::IterationStart),
            Event::Marker(Marker::Phase("forward".to_owned()))
        ]
    );
    assert_eq!(t.peak_requested(), 108);
}

#[test]
fn alias_and_copy_share_a_storage_until_the_last_release() {
    let text = log(&[
        C1,
        M1,
        // y = conv(w): fresh storage 1 (64 B); v = view(y) shares it; z: fresh 2 (0 B).
        r#"{"ARGS":["w","w"],"INSTRUCTION":"CALL","NAME":"conv","RESULT":["y"],"TIME":"5"}"#,
        r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"y"}"#,
        r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"y"}"#,
        r#"{"ARGS":["w","y"],"INSTRUCTION":"CALL","NAME":"split","RESULT":["v","z"],"TIME":"1"}"#,
        r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"v"}"#,
        r#"{"ALIAS":"1","INSTRUCTION":"ALIAS","NAME":"v"}"#,
        r#"{"INSTRUCTION":"MEMORY","MEMORY":"0","NAME":"z"}"#,
        r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"z"}"#,
        r#"{"DST":"v2","INSTRUCTION":"COPY","SRC":"v"}"#,
        r#"{"ANNOTATION":"BACKWARD","INSTRUCTION":"ANNOTATE"}"#,
        r#"{"INSTRUCTION":"RELEASE","NAME":"y"}"#,
        r#"{"INSTRUCTION":"RELEASE","NAME":"v"}"#,
        r#"{"INSTRUCTION":"RELEASE","NAME":"z"}"#,
        r#"{"INSTRUCTION":"RELEASE","NAME":"v2"}"#,
    ]);
    let t = read("a.log", &text).unwrap();
    assert_eq!(
        mem_events(&t),
        vec![a(0, 100), a(1, 64), a(2, 0), f(2), f(1)]
    );
    assert!(
        t.events()
            .contains(&Event::Marker(Marker::Phase("backward".to_owned())))
    );
    assert_eq!(t.peak_requested(), 164);
}

#[test]
fn mutate_makes_a_new_full_size_storage() {
    let t = read(
        "m.log",
        &log(&[
            C1,
            M1,
            r#"{"DST":"u","INSTRUCTION":"COPY","SRC":"w"}"#,
            r#"{"ARGS":["w"],"INSTRUCTION":"CALL","NAME":"view","RESULT":["v"],"TIME":"1"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"40","NAME":"v"}"#,
            r#"{"ALIAS":"0","INSTRUCTION":"ALIAS","NAME":"v"}"#,
            // Mutating the view: a new 100-byte storage (the root's size) for `v`.
            r#"{"ARGS":["v"],"INSTRUCTION":"MUTATE","MUTATE":[0],"NAME":"relu_","TIME":"3"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"u"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"v"}"#,
        ]),
    )
    .unwrap();
    assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 100), f(0), f(1)]);
    assert_eq!(t.peak_requested(), 200);
}

#[test]
fn copy_from_repoints_and_releases() {
    let t = read(
        "cf.log",
        &log(&[
            C1,
            M1,
            r#"{"INSTRUCTION":"CONSTANT","NAME":"k"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"8","NAME":"k"}"#,
            r#"{"DST":"k","INSTRUCTION":"COPY_FROM","SRC":"w"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
        ]),
    )
    .unwrap();
    // k's old storage is freed at COPY_FROM; w's storage is still held through k.
    assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 8), f(1)]);
}

#[test]
fn lines_before_start_are_discarded() {
    let text = format!("{C1}\n{M1}\n{}", String::from_utf8(log(&[])).unwrap());
    let t = read("s.log", text.as_bytes()).unwrap();
    assert_eq!(t.allocs(), 0);
}

#[test]
fn errors_name_file_and_line() {
    let cases: [(Vec<u8>, &str); 11] = [
        (log(&[C1, "{not json"]), "e:3: not a JSON object"),
        (log(&["[1,2]"]), "e:2: not a JSON object"),
        (
            log(&[r#"{"INSTRUCTION":"FROB"}"#]),
            "e:2: unknown INSTRUCTION \"FROB\"",
        ),
        (
            log(&[C1, M1, r#"{"INSTRUCTION":"RELEASE","NAME":"q"}"#]),
            "e:4: RELEASE of unknown tensor \"q\"",
        ),
        (
            log(&[C1, M1, r#"{"DST":"b","INSTRUCTION":"COPY","SRC":"q"}"#]),
            "e:4: reference to unknown tensor \"q\"",
        ),
        (
            log(&[r#"{"ARGS":["q"],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#]),
            "e:2: reference to unknown tensor \"q\"",
        ),
        (
            log(&[
                C1,
                M1,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
            ]),
            "e:5: RELEASE of \"w\": its storage has no references left",
        ),
        (
            log(&[C1, r#"{"INSTRUCTION":"MEMORY","MEMORY":"1","NAME":"x"}"#]),
            "e:3: expected the MEMORY line of \"w\", found MEMORY of \"x\"",
        ),
        (log(&[M1]), "e:2: stray MEMORY line"),
        (
            log(&[
                r#"{"ARGS":[],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#,
                r#"{"INSTRUCTION":"MEMORY","MEMORY":"4","NAME":"r"}"#,
                r#"{"ALIAS":"0","INSTRUCTION":"ALIAS","NAME":"r"}"#,
            ]),
            "e:4: ALIAS 0 of \"r\": the CALL has 0 arguments",
        ),
        (
            log(&[r#"{"ARGS":[],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#]),
            "e:2: CALL result \"r\" without its MEMORY and ALIAS lines",
        ),
    ];
    for (text, want) in cases {
        let e = read("e", &text).unwrap_err();
        assert!(e.line.is_some() && !e.not_a_problem);
        let e = e.to_string();
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
    let e = read("e", b"{\"INSTRUCTION\":\"COPY\"}\n").unwrap_err();
    assert_eq!(e.line, None);
}

/// Every anchor log reads, and its peak equals simrd's unbudgeted baseline peak.
#[test]
fn simrd_logs() {
    let Some(dir) = shared_data("traces/external/dtr-simrd-logs") else {
        return;
    };
    let dir = dir.display();
    let entries = std::fs::read_dir(dir.to_string()).expect("the DTR log folder");
    // log file name → baseline_memory, from simrd's own results.
    let mut baseline: HashMap<String, u64> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(format!("{dir}/simrd-results.jsonl")) {
        for l in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(l) else {
                continue;
            };
            if v["kind"] == "baseline" {
                if let (Some(log), Some(m)) = (v["log"].as_str(), v["baseline_memory"].as_u64()) {
                    baseline.insert(log.to_owned(), m);
                }
            }
        }
    }
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&p).unwrap();
        assert!(is_dtr(&data), "{name}");
        let t = read(&name, &data).unwrap_or_else(|e| panic!("{e}"));
        let peak = t.peak_requested();
        println!("{name}: {} allocs, peak {peak}", t.allocs());
        if let Some(&b) = baseline.get(&name) {
            assert_eq!(peak, b, "{name}: simrd baseline_memory");
        }
    }
}

#[test]
fn program_errors_name_the_line() {
    let cases: [(Vec<u8>, &str); 4] = [
        (log(&[C1, "{not json"]), "e:3: not a JSON object"),
        (log(&[M1]), "e:2: stray MEMORY line"),
        (
            log(&[C1, M1, r#"{"DST":"b","INSTRUCTION":"COPY","SRC":"q"}"#]),
            "e:4: reference to unknown tensor \"q\"",
        ),
        (
            log(&[r#"{"INSTRUCTION":"RELEASE","NAME":"q"}"#]),
            "e:2: RELEASE of unknown tensor \"q\"",
        ),
    ];
    for (text, want) in cases {
        let e = read_program("e", &text).unwrap_err().to_string();
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
    // A valid tiny log: constant, op, release; the constant is pinned at creation.
    let p = read_program(
        "ok",
        &log(&[
            C1,
            M1,
            r#"{"ARGS":["w"],"INSTRUCTION":"CALL","NAME":"f","RESULT":["y"],"TIME":"5"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"y"}"#,
            r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"y"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"y"}"#,
        ]),
    )
    .unwrap();
    let b = p.baseline().unwrap();
    assert_eq!((b.compute, b.peak), (5, 164));
}
