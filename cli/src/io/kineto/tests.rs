use std::io::Write;

use super::*;

/// A `[memory]` event with `Addr` on CUDA device 0.
fn mem(ts: i64, addr: u64, bytes: i64) -> String {
    dev_mem(1, 0, ts, addr, bytes)
}

/// A `[memory]` event with `Addr` on device (`t`, `id`).
fn dev_mem(t: i64, id: i64, ts: i64, addr: u64, bytes: i64) -> String {
    format!(
        r#"{{"name":"[memory]","ph":"i","ts":{ts},"args":{{"Device Type":{t},"Device Id":{id},"Addr":{addr},"Bytes":{bytes}}}}}"#
    )
}

/// A 2021-format `[memory]` event: no `Addr`, no totals.
fn old(ts: i64, bytes: i64) -> String {
    format!(
        r#"{{"name":"[memory]","ph":"i","ts":{ts},"args":{{"Device Type":1,"Device Id":0,"Bytes":{bytes}}}}}"#
    )
}

fn trace(events: &[String]) -> String {
    format!(
        r#"{{"schemaVersion":1,"traceEvents":[{}]}}"#,
        events.join(",")
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

fn err(data: &[u8], device: DeviceChoice) -> String {
    read("k", data, device).unwrap_err().to_string()
}

#[test]
fn pairs_by_address_and_counts_unmatched_frees() {
    let json = format!(
        r#"{{"traceEvents":[{},{},{},{},{{"name":"other"}}]}}"#,
        mem(3, 4096, -100), // freed before the window
        mem(1, 8192, 512),
        mem(2, 8192, -512),
        mem(4, 8192, 1024)
    );
    let k = read("k.json", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!((k.trace.len(), k.unmatched_frees, k.device), (3, 1, 0));
    assert_eq!(
        (k.device_type, k.paired_by_size, k.recorded),
        (1, false, None)
    );
    assert_eq!(k.trace.peak_requested(), 1024);
    // No totals: the note says what cannot be derived.
    assert!(
        k.notes.iter().any(|n| n.contains("cannot be derived")),
        "{:?}",
        k.notes
    );
}

#[test]
fn fractional_timestamps_order_the_events() {
    // Float `ts` (TraceLens traces): the free at 1.5 comes before the allocation at 1.7.
    let a = r#"{"name":"[memory]","ts":1.7,"args":{"Device Type":1,"Device Id":0,"Addr":64,"Bytes":8}}"#;
    let f = r#"{"name":"[memory]","ts":1.5,"args":{"Device Type":1,"Device Id":0,"Addr":64,"Bytes":-8}}"#;
    let k = read(
        "k",
        trace(&[a.into(), f.into()]).as_bytes(),
        DeviceChoice::Auto,
    )
    .unwrap();
    assert_eq!((k.trace.allocs(), k.unmatched_frees), (1, 1));
}

#[test]
fn without_addr_frees_take_the_most_recent_allocation_of_their_size() {
    let json = trace(&[
        old(1, 100),  // id 0
        old(2, 100),  // id 1
        old(3, 300),  // id 2
        old(4, -100), // frees id 1, the most recent of size 100
        old(5, -50),  // no live allocation of 50: before the window
        old(6, -300), // frees id 2
        old(7, 200),  // id 3
    ]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert!(k.paired_by_size);
    assert_eq!(k.unmatched_frees, 1);
    assert_eq!((k.trace.allocs(), k.trace.len()), (4, 6));
    assert_eq!(k.trace.peak_requested(), 500);
    let frees: Vec<u64> = k
        .trace
        .events()
        .iter()
        .filter_map(|e| match e {
            memplan_core::trace::Event::Free { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(frees, [1, 2]);
    let notes = k.notes.join("\n");
    assert!(notes.contains("no Addr"), "{notes}");
    assert!(notes.contains("lifetimes are approximate"), "{notes}");
    assert!(notes.contains("1 frees had no live allocation"), "{notes}");
    assert!(notes.contains("cannot be derived"), "{notes}");
}

#[test]
fn recorded_totals_are_reported() {
    let ev = |ts: i64, addr: u64, bytes: i64, ta: i64, tr: i64| {
        format!(
            r#"{{"name":"[memory]","ts":{ts},"args":{{"Device Type":1,"Device Id":0,"Addr":{addr},"Bytes":{bytes},"Total Allocated":{ta},"Total Reserved":{tr},"Ev Idx":{ts}}}}}"#
        )
    };
    let json = trace(&[ev(1, 64, 100, 1100, 4096), ev(2, 64, -100, 1000, 8192)]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!(
        k.recorded,
        Some(Recorded {
            peak_allocated: 1100,
            peak_reserved: 8192,
            allocated_at_start: 1000
        })
    );
    assert!(
        k.notes.iter().any(|n| n.contains("peak reserved 8192")),
        "{:?}",
        k.notes
    );
}

#[test]
fn rocm_device_type_6_is_a_device() {
    let fin = |ts: i64, bytes: i64, finished: bool| {
        format!(
            r#"{{"name":"[memory]","ts":{ts},"args":{{"Device Type":6,"Device Id":0,"Addr":4096,"Bytes":{bytes},"finished":{finished}}}}}"#
        )
    };
    let json = trace(&[
        dev_mem(0, -1, 0, 8, 4),
        fin(1, 256, false),
        fin(2, -256, false),
    ]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!((k.device_type, k.device, k.trace.allocs()), (6, 0, 1));
    assert_eq!(device_type_name(k.device_type), "HIP (ROCm)");
    assert!(
        k.notes
            .iter()
            .any(|n| n.contains("2 of 2 events say finished: false"))
    );
    // finished: true changes nothing and needs no note.
    let json = trace(&[fin(1, 256, true), fin(2, -256, true)]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert!(
        !k.notes.iter().any(|n| n.contains("finished")),
        "{:?}",
        k.notes
    );
    assert_eq!(k.devices.len(), 1);
}

#[test]
fn two_devices_auto_index_and_absent() {
    let json = trace(&[
        dev_mem(1, 0, 1, 64, 8),
        dev_mem(1, 1, 2, 64, 8),
        dev_mem(1, 1, 3, 128, 8),
        dev_mem(1, 1, 4, 64, -8),
        dev_mem(0, -1, 5, 64, 8),
    ]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!((k.device_type, k.device, k.trace.allocs()), (1, 1, 2));
    let note = k.notes.join("\n");
    assert!(note.contains("2 GPU devices have allocations"), "{note}");
    assert!(
        note.contains("CUDA device 0 (1 allocations, 0 frees)"),
        "{note}"
    );
    assert!(note.contains("--device N"), "{note}");
    assert_eq!(k.devices.len(), 3);
    let k = read("k", json.as_bytes(), DeviceChoice::Index(0)).unwrap();
    assert_eq!((k.device, k.trace.allocs()), (0, 1));
    assert!(!k.notes.iter().any(|n| n.contains("--device N")));
    let e = err(json.as_bytes(), DeviceChoice::Index(7));
    assert!(
        e.contains("--device 7: no [memory] events on a GPU device 7"),
        "{e}"
    );
    assert!(
        e.contains(
            "CUDA device 0 (1 allocations, 0 frees), CUDA device 1 (2 allocations, 1 frees)"
        ),
        "{e}"
    );
    // The CPU is never device N.
    let cpu_only = trace(&[dev_mem(0, -1, 5, 64, 8)]);
    assert!(err(cpu_only.as_bytes(), DeviceChoice::Index(0)).contains("memory events: none"));
}

#[test]
fn other_gpu_types_are_devices_named_in_messages() {
    let json = trace(&[
        dev_mem(13, 0, 1, 64, 8),
        dev_mem(12, 0, 2, 64, 8),
        dev_mem(12, 0, 3, 96, 8),
    ]);
    let k = read("k", json.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!((k.device_type, k.trace.allocs()), (12, 2));
    assert!(k.notes[0].contains("took XPU 0"), "{:?}", k.notes);
    assert!(k.notes[0].contains("MPS device 0"), "{:?}", k.notes);
}

#[test]
fn a_trace_without_gpu_allocations_is_an_error_saying_what_it_holds() {
    let json = trace(&[dev_mem(0, -1, 1, 64, 8), dev_mem(0, -1, 2, 64, -8)]);
    let e = err(json.as_bytes(), DeviceChoice::Auto);
    assert!(
        e.starts_with(
            "k: a profiler trace of 2 events with no allocation on a GPU device; [memory] \
             events: 2 on CPU (Device Type 0): nothing to replay"
        ),
        "{e}"
    );
    assert!(e.contains("profile_memory=True"), "{e}");
    // Only frees of blocks allocated before the window.
    let json = trace(&[mem(1, 64, -8)]);
    let e = err(json.as_bytes(), DeviceChoice::Index(0));
    assert!(
        e.contains("no allocation on CUDA device 0 (only 1 frees"),
        "{e}"
    );
    assert!(e.contains("1 on CUDA (Device Type 1)"), "{e}");
    let e = err(br#"{"traceEvents":[]}"#, DeviceChoice::Auto);
    assert!(
        e.contains("0 events with no allocation on a GPU device; no [memory] events"),
        "{e}"
    );
}

#[test]
fn bad_traces_name_the_event() {
    let twice = trace(&[mem(1, 64, 8), mem(2, 64, 8)]);
    assert_eq!(
        err(twice.as_bytes(), DeviceChoice::Auto),
        "k: traceEvents[1]: event 1: allocation 64 is still live (allocated at event 0)"
    );
    assert!(err(b"{\"x\":1}", DeviceChoice::Auto).contains("no traceEvents"));
    assert!(err(b"{\"traceEvents\":[", DeviceChoice::Auto).contains("not valid JSON"));
}

#[test]
fn wrong_types_are_errors_naming_the_event() {
    let m = |args: &str| {
        format!(r#"{{"traceEvents":[{{"name":"x"}},{{"name":"[memory]","ts":1,"args":{args}}}]}}"#)
    };
    let cases = [
        (m(r#"{"Device Type":1,"Device Id":0,"Bytes":"8"}"#), "traceEvents[1]: [memory] event with Bytes a string, not an integer"),
        (m(r#"{"Device Type":1,"Device Id":0,"Bytes":8.5}"#), "with Bytes 8.5, not an integer"),
        (m(r#"{"Device Type":1,"Device Id":0,"Bytes":8,"Addr":-4}"#), "with Addr -4, not a non-negative integer"),
        (m(r#"{"Device Type":1,"Device Id":0,"Bytes":8,"Addr":[1,2]}"#), "with Addr an array"),
        (m(r#"{"Device Type":1,"Bytes":8}"#), "without Device Id"),
        (m(r#"{"Device Id":0,"Bytes":8}"#), "without Device Type"),
        (m(r#"{"Device Type":-3,"Device Id":0,"Bytes":8}"#), "negative Device Type -3"),
        (m(r#"{"Device Type":1,"Device Id":0}"#), "without Bytes"),
        (m(r#"{"Device Type":6,"Device Id":0,"Bytes":8,"finished":1}"#), "with finished 1, not true or false"),
        (m(r#""x""#), "traceEvents[1]: invalid type: string \"x\", expected struct Args"),
        (m(r#"[1,2]"#), "traceEvents[1]: [memory] event"),
        (r#"{"traceEvents":[{"name":"[memory]","ts":"x","args":{"Device Type":1,"Device Id":0,"Bytes":8}}]}"#.to_owned(), "with ts a string"),
        (r#"{"traceEvents":[{"name":"[memory]"}]}"#.to_owned(), "[memory] event without args"),
        (r#"{"traceEvents":{}}"#.to_owned(), "expected an array of trace events"),
        (r#"[1,2]"#.to_owned(), "a JSON array, not a profiler trace, nor the [time, action, bytes, category] list"),
        (r#"7"#.to_owned(), "expected a JSON object with a traceEvents array"),
        (r#"{"traceEvents":[{"name":"x"}]"#.to_owned(), "not valid JSON: EOF"),
        (r#"{"traceEvents":[{"name":"x"}]} trailing"#.to_owned(), "not valid JSON"),
    ];
    for (json, want) in cases {
        let e = err(json.as_bytes(), DeviceChoice::Auto);
        assert!(e.contains(want), "{json}: got {e:?}, want {want:?}");
        let e = err(&gzip(json.as_bytes()), DeviceChoice::Auto);
        assert!(e.contains(want), "gzip {json}: got {e:?}, want {want:?}");
    }
}

#[test]
fn huge_arrays_in_fields_are_skipped_not_stored() {
    // Fields memplan does not read, however large, are skipped.
    let big = format!(
        r#"{{"otherData":[{}],"traceEvents":[{{"name":"k","args":{{"x":[{}]}}}},{}]}}"#,
        vec!["0"; 100_000].join(","),
        vec!["[]"; 100_000].join(","),
        mem(1, 64, 8)
    );
    let k = read("k", big.as_bytes(), DeviceChoice::Auto).unwrap();
    assert_eq!(k.trace.allocs(), 1);
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of spaces inside a valid trace compress to about 64 KiB.
    let mut json = br#"{"traceEvents":["#.to_vec();
    json.extend(std::iter::repeat_n(b' ', 64 << 20));
    json.extend(format!("{}]}}", mem(1, 64, 8)).as_bytes());
    let bomb = gzip(&json);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let e = read_capped("k", &bomb, DeviceChoice::Auto, 1 << 20)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "k: decompresses to more than 1048576 bytes of JSON, the limit \
         (kineto::MAX_DECOMPRESSED): not read"
    );
    // Under the default limit it reads.
    assert_eq!(
        read("k", &bomb, DeviceChoice::Auto).unwrap().trace.allocs(),
        1
    );
    assert_eq!(MAX_DECOMPRESSED, 1 << 30);
}

#[test]
fn truncated_input_at_every_offset_is_an_error_not_a_panic() {
    let json = trace(&[mem(1, 64, 8), old(2, 16), mem(3, 64, -8)]);
    let gz = gzip(json.as_bytes());
    for n in 0..json.len() {
        // Plain prefixes that do not start with `{` are not sniffed as Kineto by callers,
        // but the reader must still answer with an error.
        assert!(
            read("k", &json.as_bytes()[..n], DeviceChoice::Auto).is_err(),
            "{n}"
        );
    }
    for n in 0..gz.len() {
        let e = read("k", &gz[..n], DeviceChoice::Auto);
        assert!(e.is_err(), "gzip prefix {n}");
    }
    // Flipped bytes: an error or a trace, never a panic.
    for n in 0..gz.len() {
        let mut bad = gz.clone();
        bad[n] ^= 0x55;
        let _ = read("k", &bad, DeviceChoice::Auto);
    }
    assert!(read("k", &gz, DeviceChoice::Auto).is_ok());
}

/// A real file under `../shared/traces/external/kineto_profiler/`, or `None` (skipped).
fn real(path: &str) -> Option<Kineto> {
    let path =
        memplan_tests::require::shared_data(&format!("traces/external/kineto_profiler/{path}"))?;
    let data = std::fs::read(&path).unwrap();
    Some(read(path.to_str().unwrap(), &data, DeviceChoice::Auto).unwrap())
}

// Expected counts below were computed independently with python (json + gzip): GPU
// `[memory]` events sorted by (ts, Ev Idx, index), paired by Addr (or by size without it),
// peak of the running sum of Bytes, max of Total Allocated / Total Reserved.

#[test]
fn reads_the_hta_trace() {
    let Some(k) = real("hta/df_index_resolver.json.gz") else {
        return;
    };
    // 26,770 CUDA [memory] events on device 1 (and 1,240 on the CPU): 13,385 allocations,
    // each freed inside the window.
    assert_eq!((k.device_type, k.device, k.paired_by_size), (1, 1, false));
    assert_eq!(
        (k.trace.allocs(), k.trace.len(), k.unmatched_frees),
        (13385, 26770, 0)
    );
    assert_eq!(k.trace.peak_requested(), 2_532_893_696);
    assert_eq!(
        k.recorded,
        Some(Recorded {
            peak_allocated: 6_629_508_096,
            peak_reserved: 12_782_141_440,
            allocated_at_start: 4_096_614_400
        })
    );
    assert_eq!(k.devices.len(), 2);
}

#[test]
fn reads_the_2021_tensorboard_plugin_traces_by_size() {
    for f in [
        "worker0.1623143089861.pt.trace.json.gz",
        "worker0.1623143566756.pt.trace.json.gz",
    ] {
        let Some(k) = real(&format!("kineto_tb_plugin/resnet50_num_workers_0/{f}")) else {
            return;
        };
        // 8,220 CUDA events (4,618 on the CPU), no Addr: 4,110 allocations, every free
        // pairs with one of its size.
        assert_eq!(
            (k.device_type, k.device, k.paired_by_size),
            (1, 0, true),
            "{f}"
        );
        assert_eq!(
            (k.trace.allocs(), k.trace.len(), k.unmatched_frees),
            (4110, 8220, 0),
            "{f}"
        );
        assert_eq!(k.trace.peak_requested(), 2_791_636_480, "{f}");
        assert_eq!(k.recorded, None, "{f}");
        assert!(k.notes.iter().any(|n| n.contains("no Addr")), "{f}");
    }
}

#[test]
fn reads_the_tracelens_cuda_and_rocm_traces() {
    // (file, device type, allocations, peak requested, peak Total Allocated, peak Total
    // Reserved, allocated at start, finished: false events)
    let cases = [
        (
            "h100/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz",
            1,
            1125,
            1_103_766_016,
            2_088_508_416,
            2_629_828_608,
            984_742_400,
            0,
        ),
        (
            "h100/gaunernst_bert-small-uncased__1016001.json.gz",
            1,
            109,
            9_944_576,
            101_305_344,
            121_634_816,
            91_360_768,
            0,
        ),
        (
            "mi300/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz",
            6,
            1294,
            1_133_642_240,
            2_219_047_936,
            2_533_359_616,
            1_085_405_696,
            0,
        ),
        (
            "inference/vllm_decode_full/capture_traces/graph_capture_rank_0.1773709742341309550.pt.trace.json.gz",
            6,
            592,
            17_735_680,
            191_628_704_768,
            193_621_655_552,
            191_610_969_088,
            1184,
        ),
        (
            "inference/sglang_decode/capture_traces/bs_32_rank0.json.gz",
            6,
            507,
            9_986_048,
            151_821_681_664,
            152_171_446_272,
            151_811_695_616,
            1014,
        ),
    ];
    for (f, t, allocs, peak, ta, tr, start, unfinished) in cases {
        let Some(k) = real(&format!("tracelens/{f}")) else {
            return;
        };
        assert_eq!(
            (k.device_type, k.device, k.paired_by_size),
            (t, 0, false),
            "{f}"
        );
        assert_eq!(
            (k.trace.allocs(), k.trace.len(), k.unmatched_frees),
            (allocs, 2 * allocs, 0),
            "{f}"
        );
        assert_eq!(k.trace.peak_requested(), peak, "{f}");
        assert_eq!(
            k.recorded,
            Some(Recorded {
                peak_allocated: ta,
                peak_reserved: tr,
                allocated_at_start: start
            }),
            "{f}"
        );
        let note = format!("{unfinished} of {} events say finished: false", 2 * allocs);
        assert_eq!(
            k.notes.iter().any(|n| n.contains(&note)),
            unfinished > 0,
            "{f}"
        );
    }
}
