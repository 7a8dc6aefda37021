//! Unit tests of the snapshot reader: synthetic pickles of every generation built with
//! serde_pickle, bad input, and the real snapshots in `../shared`.

use std::collections::{BTreeMap, HashSet};

use memplan_core::trace::{Event, Marker};
use serde_pickle::{HashableValue, SerOptions, Value};

use super::model::{Action, BlockState, Generation};
use super::*;

fn dict(items: Vec<(&str, Value)>) -> Value {
    Value::Dict(
        items
            .into_iter()
            .map(|(k, v)| (HashableValue::String(k.to_owned()), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn int(v: i64) -> Value {
    Value::I64(v)
}

fn entry(action: &str, addr: i64, size: i64) -> Value {
    dict(vec![
        ("action", text(action)),
        ("addr", int(addr)),
        ("size", int(size)),
        ("stream", int(0)),
    ])
}

fn to_pickle(v: &Value) -> Vec<u8> {
    serde_pickle::value_to_vec(v, SerOptions::new()).unwrap()
}

/// A 2.1-style dict: one history per device, the given segments.
fn snapshot(traces: Vec<Vec<Value>>, segments: Vec<Value>) -> Vec<u8> {
    to_pickle(&dict(vec![
        (
            "device_traces",
            Value::List(traces.into_iter().map(Value::List).collect()),
        ),
        ("segments", Value::List(segments)),
    ]))
}

fn pickle(events: Vec<Value>) -> Vec<u8> {
    snapshot(vec![events], vec![])
}

/// A segment at `address` on `device` with blocks `(address, size, state)`.
fn segment(device: i64, address: i64, total: i64, blocks: &[(i64, i64, &str)]) -> Value {
    let blocks = blocks
        .iter()
        .map(|&(a, size, state)| {
            dict(vec![
                ("address", int(a)),
                ("size", int(size)),
                ("requested_size", int(size)),
                ("state", text(state)),
            ])
        })
        .collect();
    dict(vec![
        ("device", int(device)),
        ("address", int(address)),
        ("total_size", int(total)),
        ("stream", int(0)),
        ("is_expandable", Value::Bool(false)),
        ("blocks", Value::List(blocks)),
    ])
}

fn err(data: &[u8], device: DeviceChoice) -> String {
    read("s", data, device).unwrap_err().to_string()
}

#[test]
fn reads_allocs_frees_and_segments() {
    let data = pickle(vec![
        entry("segment_alloc", 1 << 21, 2 << 20),
        entry("alloc", 1 << 21, 1000),
        entry("free_requested", 1 << 21, 1000),
        entry("free_completed", 1 << 21, 1000),
        entry("alloc", 1 << 21, 512),
    ]);
    assert!(is_pickle(&data));
    let s = read("s.pickle", &data, DeviceChoice::Auto).unwrap();
    assert_eq!(s.segments, vec![(1 << 21, 2 << 20)]);
    assert_eq!((s.trace.len(), s.trace.peak_requested()), (3, 1000));
    assert_eq!(
        (s.pre_existing, s.pre_existing_segments, s.device),
        (0, 0, 0)
    );
    assert_eq!(s.recording.recorded_peak_reserved(), 2 << 20);
}

#[test]
fn a_snapshot_without_allocations_is_an_error_saying_what_it_holds_but_loads() {
    let seg = segment(
        0,
        1 << 21,
        2 << 20,
        &[
            (1 << 21, 4096, "active_allocated"),
            ((1 << 21) + 4096, (2 << 20) - 4096, "inactive"),
        ],
    );
    // State only: the dict with an empty history on every device.
    let data = snapshot(vec![vec![], vec![]], vec![seg.clone()]);
    let e = err(&data, DeviceChoice::Auto);
    assert!(
        e.starts_with(
            "s: a snapshot with 1 segments (2097152 bytes reserved) holding 1 active blocks \
             (4096 bytes) on device 0 but no allocation in its history"
        ),
        "{e}"
    );
    assert!(e.contains("_record_memory_history("), "{e}");
    let rec = load("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!(rec.generation, Generation::Torch21);
    // Nothing to undo: the start is the end (inactive blocks re-derived as gaps).
    assert_eq!(rec.start[0].blocks[0], rec.end[0].blocks[0]);
    assert_eq!(rec.start[0].blocks[1].size, rec.end[0].blocks[1].size);
    assert_eq!(rec.pre_existing().count(), 1);
    assert_eq!(rec.reserved_at_start(), 2 << 20);
    // The bare segment list of torch.cuda.memory_snapshot().
    let data = to_pickle(&Value::List(vec![seg]));
    let e = err(&data, DeviceChoice::Auto);
    assert!(e.contains("torch.cuda.memory_snapshot()"), "{e}");
    assert!(e.contains("holding 1 active blocks (4096 bytes)"), "{e}");
    let rec = load("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!(rec.generation, Generation::SegmentList);
    assert_eq!((rec.end.len(), rec.end[0].blocks.len()), (1, 2));
}

#[test]
fn devices_are_chosen_by_their_allocations() {
    // Device 1 only: device_traces[0] empty, the segment on device 1.
    let data = snapshot(
        vec![vec![], vec![entry("alloc", 4096, 8)]],
        vec![segment(1, 4096, 8192, &[(4096, 8, "active_allocated")])],
    );
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!((s.device, s.trace.allocs()), (1, 1));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.recording.end.len(), 1);
    // Two busy devices: the busiest, with a warning naming both.
    let data = snapshot(
        vec![
            vec![entry("alloc", 4096, 8)],
            vec![entry("alloc", 4096, 8), entry("alloc", 8192, 8)],
        ],
        vec![],
    );
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!((s.device, s.trace.allocs()), (1, 2));
    assert!(
        s.warnings.iter().any(
            |w| w.contains("devices 0 (1 allocs), 1 (2 allocs): read device 1")
                && w.contains("--device N")
        ),
        "{:?}",
        s.warnings
    );
    let s = read("s", &data, DeviceChoice::Index(0)).unwrap();
    assert_eq!((s.device, s.trace.allocs()), (0, 1));
    let e = err(&data, DeviceChoice::Index(5));
    assert!(e.contains("no events or segments on device 5"), "{e}");
    assert!(
        e.contains("0 (1 events, 1 allocs, 0 segments), 1 (2 events"),
        "{e}"
    );
    assert!(err(&data, DeviceChoice::All).contains("--device all"));
    let all = load_all("s", &data).unwrap();
    assert_eq!(all.iter().map(|r| r.device).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(all[1].devices.len(), 2);
}

#[test]
fn a_mid_run_history_starts_with_every_block_live_before_it() {
    // At dump time: A (never in the history), B (allocated in it); C was freed in it.
    let (a, b, c) = (0x10000, 0x20000, 0x30000);
    let data = snapshot(
        vec![vec![
            entry("alloc", b, 100),
            entry("free_requested", c, 300),
            entry("free_completed", c, 300),
        ]],
        vec![segment(
            0,
            a,
            0x40000,
            &[
                (a, 0x10000, "active_allocated"),
                (b, 0x10000, "active_allocated"),
                (c, 0x20000, "inactive"),
            ],
        )],
    );
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!((s.pre_existing, s.pre_existing_segments), (2, 1));
    let live: Vec<(u64, u64)> = s
        .recording
        .pre_existing()
        .map(|(_, b)| (b.address, b.requested_size))
        .collect();
    assert_eq!(live, vec![(a as u64, 0x10000), (c as u64, 300)]);
    // The start segment is covered in address order, gaps inactive.
    let start = &s.recording.start[0];
    let mut cursor = start.address;
    for blk in &start.blocks {
        assert_eq!(blk.address, cursor);
        cursor += blk.size;
    }
    assert_eq!(cursor, start.address + start.total_size);
    let ev = s.trace.events();
    assert_eq!(
        ev[..3],
        [
            Event::Alloc {
                id: a as u64,
                size: 0x10000,
                stream: 0
            },
            Event::Alloc {
                id: c as u64,
                size: 300,
                stream: 0
            },
            Event::Marker(Marker::Annotation("pytorch history starts".into())),
        ]
    );
    assert_eq!(s.segments, vec![(a as u64, 0x40000)]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn disagreements_are_warnings_not_errors() {
    let data = pickle(vec![
        entry("free_completed", 4096, 1000),
        entry("free_completed", 4096, 1000),
        entry("alloc", 8192, 8),
    ]);
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert!(!s.warnings.is_empty());
    assert!(
        s.warnings.iter().all(|w| !w.contains('\n')),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.trace.allocs(), 1);
}

#[test]
fn expandable_segments_grow_and_shrink_backwards() {
    let base: i64 = 1 << 32;
    let mb2: i64 = 2 << 20;
    let mut seg = segment(
        0,
        base,
        2 * mb2,
        &[
            (base, mb2, "inactive"),
            (base + mb2, 1 << 20, "active_allocated"),
        ],
    );
    if let Value::Dict(d) = &mut seg {
        d.insert(
            HashableValue::String("is_expandable".into()),
            Value::Bool(true),
        );
    }
    let data = snapshot(
        vec![vec![
            entry("segment_map", base + mb2, mb2),
            entry("alloc", base + mb2, 1 << 20),
            entry("segment_map", base + 2 * mb2, mb2),
            entry("segment_unmap", base + 2 * mb2, mb2),
        ]],
        vec![seg],
    );
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let rec = &s.recording;
    assert_eq!(rec.start.len(), 1);
    assert!(rec.start[0].is_expandable);
    assert_eq!(
        (rec.start[0].address, rec.start[0].total_size),
        (base as u64, mb2 as u64)
    );
    assert_eq!(rec.pre_existing().count(), 0);
    assert_eq!(rec.reserved_at_start(), mb2 as u64);
    assert_eq!(rec.recorded_peak_reserved(), 3 * mb2 as u64);
    let u = |v: i64| v as u64;
    assert_eq!(
        s.segments,
        vec![
            (u(base), u(mb2)),
            (u(base + mb2), u(mb2)),
            (u(base + 2 * mb2), u(mb2))
        ]
    );
}

#[test]
fn pending_frees_stay_live_and_oom_is_a_marker() {
    let mut oom = entry("oom", 0, 1 << 30);
    if let Value::Dict(d) = &mut oom {
        d.insert(HashableValue::String("device_free".into()), int(4096));
    }
    let data = snapshot(
        vec![vec![
            entry("alloc", 4096, 100),
            entry("free_requested", 4096, 100),
            oom,
            entry("snapshot", 0, 0),
        ]],
        vec![segment(
            0,
            4096,
            8192,
            &[(4096, 512, "active_pending_free")],
        )],
    );
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(
        s.recording.end[0].blocks[0].state,
        BlockState::ActivePendingFree
    );
    let ev = s.trace.events();
    assert_eq!(ev.len(), 3);
    assert!(matches!(ev[0], Event::Alloc { id: 4096, .. }));
    assert_eq!(
        ev[1],
        Event::Marker(Marker::Annotation(
            "pytorch oom: 1073741824 bytes requested, device_free 4096".into()
        ))
    );
    assert_eq!(s.recording.history[2].action, Action::Oom);
}

fn frames(list: &[(&str, i64, &str)]) -> Value {
    Value::List(
        list.iter()
            .map(|&(file, line, name)| {
                dict(vec![
                    ("filename", text(file)),
                    ("line", int(line)),
                    ("name", text(name)),
                ])
            })
            .collect(),
    )
}

#[test]
fn reads_torch_2_0_blocks_with_history_and_no_address() {
    let block = |size: i64, state: &str, real: i64| {
        dict(vec![
            ("size", int(size)),
            ("state", text(state)),
            (
                "history",
                Value::List(vec![dict(vec![
                    ("addr", int(0)),
                    ("real_size", int(real)),
                    (
                        "frames",
                        frames(&[
                            ("??", 0, "c10::malloc"),
                            (
                                "/usr/lib/python3/site-packages/torch/nn/modules/linear.py",
                                114,
                                "forward",
                            ),
                            ("/home/u/train.py", 12, "step"),
                        ]),
                    ),
                ])]),
            ),
        ])
    };
    let seg = dict(vec![
        ("address", int(1 << 20)),
        ("total_size", int(3 << 20)),
        ("stream", int(0)),
        ("device", int(0)),
        (
            "blocks",
            Value::List(vec![
                block(1 << 20, "active_allocated", 1000),
                block(2 << 20, "inactive", 0),
            ]),
        ),
    ]);
    let data = snapshot(
        vec![vec![
            entry("alloc", 1 << 20, 1000),
            entry("alloc", 3 << 19, 8),
        ]],
        vec![seg],
    );
    let rec = load("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!(rec.generation, Generation::Torch20);
    let blocks = &rec.end[0].blocks;
    assert_eq!((blocks[0].address, blocks[1].address), (1 << 20, 2 << 20));
    assert_eq!(blocks[0].requested_size, 1000);
    let site = blocks[0].site.expect("a site");
    assert_eq!(rec.sites[site], "/home/u/train.py:12 in step");
    // The alloc at 3 << 19 is in no end block: a warning, not an error.
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    assert_eq!(s.pre_existing, 0);
}

#[test]
fn reads_torch_2_8_annotations_and_sites() {
    let mut alloc = entry("alloc", 4096, 100);
    let mut free = entry("free_completed", 4096, 100);
    for (e, t) in [(&mut alloc, 10), (&mut free, 30)] {
        if let Value::Dict(d) = e {
            let k = |s: &str| HashableValue::String(s.to_owned());
            d.insert(k("time_us"), int(t));
            d.insert(k("compile_context"), text("N/A"));
            d.insert(k("user_metadata"), text(""));
            d.insert(
                k("frames"),
                frames(&[
                    ("CUDACachingAllocator.cpp", 0, "malloc"),
                    ("<frozen runpy>", 88, "_run_code"),
                    (
                        "C:\\venv\\Lib\\site-packages\\torch\\_tensor.py",
                        5,
                        "backward",
                    ),
                    ("model.py", 7, "forward"),
                    ("main.py", 3, "<module>"),
                ]),
            );
        }
    }
    let note = |stage: &str, t: i64| {
        dict(vec![
            ("stage", text(stage)),
            ("name", text("Optimizer.step#AdamW.step")),
            ("device", int(0)),
            ("time_us", int(t)),
        ])
    };
    let data = to_pickle(&dict(vec![
        (
            "device_traces",
            Value::List(vec![Value::List(vec![alloc, free])]),
        ),
        ("segments", Value::List(vec![])),
        (
            "external_annotations",
            Value::List(vec![note("END", 40), note("START", 20)]),
        ),
    ]));
    let s = read("s", &data, DeviceChoice::Auto).unwrap();
    let rec = &s.recording;
    assert_eq!(rec.generation, Generation::Torch28);
    assert_eq!(rec.sites, vec!["model.py:7 in forward".to_owned()]);
    let actions: Vec<Action> = rec.history.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Alloc,
            Action::Annotation,
            Action::FreeCompleted,
            Action::Annotation
        ]
    );
    assert_eq!(
        rec.history[1].note.as_deref(),
        Some("START Optimizer.step#AdamW.step")
    );
    assert_eq!(
        s.trace.events()[1],
        Event::Marker(Marker::Annotation("START Optimizer.step#AdamW.step".into()))
    );
}

#[test]
fn bad_fields_are_errors_naming_their_path() {
    let seg = |blocks: Value| {
        dict(vec![
            ("address", int(4096)),
            ("total_size", int(8192)),
            ("blocks", blocks),
        ])
    };
    let bad_size = seg(Value::List(vec![
        dict(vec![("size", int(8)), ("state", text("inactive"))]),
        dict(vec![("size", text("8")), ("state", text("inactive"))]),
    ]));
    let huge = Value::Int(num_bigint_from(u64::MAX as i128 + 1));
    let cases = [
        (
            pickle(vec![entry("alloc", 4096, 1), entry("teleport", 0, 0)]),
            "s: device_traces[0][1]: unknown action \"teleport\"",
        ),
        (
            pickle(vec![entry("alloc", -1, 1)]),
            "s: device_traces[0][0].addr: -1 is not a non-negative 64-bit integer",
        ),
        (
            snapshot(
                vec![vec![]],
                vec![
                    seg(Value::None),
                    seg(Value::None),
                    seg(Value::None),
                    bad_size,
                ],
            ),
            "s: segments[3].blocks[1].size: not an integer, a string",
        ),
        (
            pickle(vec![dict(vec![
                ("action", text("alloc")),
                ("addr", huge),
                ("size", int(1)),
            ])]),
            "s: device_traces[0][0].addr: 18446744073709551616 is not a non-negative 64-bit integer",
        ),
        (
            pickle(vec![dict(vec![
                ("action", text("alloc")),
                ("addr", Value::Int(num_bigint_from(u64::MAX as i128))),
                ("size", int(2)),
            ])]),
            "s: device_traces[0][0]: addr + size overflows 64 bits",
        ),
        (
            to_pickle(&int(3)),
            "s: a pickled integer, not a memory snapshot (a dict with segments and device_traces, or a list of segments)",
        ),
    ];
    for (data, want) in cases {
        assert_eq!(err(&data, DeviceChoice::Auto), want);
    }
}

/// A big integer value.
fn num_bigint_from(v: i128) -> num_bigint::BigInt {
    v.into()
}

#[test]
fn every_truncation_is_an_error() {
    let mut alloc = entry("alloc", 4096, 100);
    if let Value::Dict(d) = &mut alloc {
        d.insert(
            HashableValue::String("frames".into()),
            frames(&[("train.py", 1, "f"), ("train.py", 1, "f")]),
        );
    }
    let data = snapshot(
        vec![vec![alloc, entry("free_completed", 4096, 100)], vec![]],
        vec![segment(0, 4096, 8192, &[(4096, 8192, "inactive")])],
    );
    assert!(read("s", &data, DeviceChoice::Auto).is_ok());
    for n in 0..data.len() {
        assert!(
            load("s", &data[..n], DeviceChoice::Auto).is_err(),
            "prefix of {n} bytes"
        );
    }
}

#[test]
fn deep_or_exploding_pickles_are_refused_before_decoding() {
    // 10,000 nested lists (20 KB): serde_pickle's recursive conversion would overflow the
    // stack.
    let mut deep = vec![0x80, 2];
    deep.extend(std::iter::repeat_n(b']', 10_000));
    deep.extend(std::iter::repeat_n(b'a', 9_999));
    deep.push(b'.');
    let e = err(&deep, DeviceChoice::Auto);
    assert!(e.contains("nested more than 200 deep"), "{e}");
    // Tuples wrapped around one list: the stack stays shallow, the value does not.
    let mut wrapped = vec![0x80, 2, b']'];
    wrapped.extend(std::iter::repeat_n(0x85, 10_000));
    wrapped.push(b'.');
    assert!(err(&wrapped, DeviceChoice::Auto).contains("nested more than"));
    // Each memo entry a pair of the previous one twice: 2^60 values from 300 bytes.
    let mut bomb = vec![0x80, 2, b']', b'q', 0];
    for k in 1..=60u8 {
        bomb.extend([b'h', k - 1, b'h', k - 1, 0x86, b'q', k]);
    }
    bomb.push(b'.');
    let e = err(&bomb, DeviceChoice::Auto);
    assert!(e.contains("expands past"), "{e}");
    // A shared list grown after it was referenced.
    let sneaky = [
        0x80, 2, b']', b'q', 0, b'h', 0, 0x85, b'h', 0, b'N', b'a', b'.',
    ];
    assert!(err(&sneaky, DeviceChoice::Auto).contains("memo entry 0"));
}

#[test]
fn reads_the_decomfl_snapshot_exactly() {
    let Some(path) = memplan_tests::require::shared_data(
        "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
    ) else {
        return;
    };
    let data = std::fs::read(&path).unwrap();
    let s = read("memory.pickle", &data, DeviceChoice::Auto).unwrap();
    // Counts from the trace's README: 7,946 alloc, 7,549 free_completed, 61 segment_alloc.
    assert_eq!(s.trace.allocs(), 7946);
    assert_eq!((s.pre_existing, s.pre_existing_segments), (0, 0));
    assert_eq!(s.segments.len(), 61);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.recording.recorded_peak_reserved(), 1_897_922_560);
    assert_eq!(s.recording.generation, Generation::Torch28);
    assert!(!s.recording.sites.is_empty());
}

#[test]
fn a_cs336_mid_run_snapshot_starts_with_every_block_it_did_not_allocate() {
    let Some(path) = memplan_tests::require::shared_data(
        "traces/external/pytorch_snapshots/cs336_wedsonlin/results/\
         medium_128_training_memory_snapshot.pickle",
    ) else {
        return;
    };
    let data = std::fs::read(&path).unwrap();
    let s = read("m.pickle", &data, DeviceChoice::Auto).unwrap();
    let rec = &s.recording;
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let allocated: HashSet<u64> = rec
        .history
        .iter()
        .filter(|e| e.action == Action::Alloc)
        .map(|e| e.addr)
        .collect();
    let pre: HashSet<u64> = rec.pre_existing().map(|(_, b)| b.address).collect();
    assert_eq!(pre.len(), s.pre_existing);
    let mut checked = 0;
    for b in rec.end.iter().flat_map(|s| &s.blocks) {
        if b.state.is_active() && !allocated.contains(&b.address) {
            assert!(
                pre.contains(&b.address),
                "{:#x} not pre-existing",
                b.address
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    assert!(
        s.pre_existing > checked,
        "frees of blocks allocated before recording"
    );
}

#[test]
fn state_only_real_snapshots_load() {
    for (file, events) in [
        ("kivi_llama_inference/my_snapshot.pickle", 1),
        ("zijiandu_attention/v1_7e5ba32/memory.pickle", 0),
    ] {
        let Some(path) = memplan_tests::require::shared_data(&format!(
            "traces/external/pytorch_snapshots/{file}"
        )) else {
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let rec = load(file, &data, DeviceChoice::Auto).unwrap();
        assert_eq!((rec.device, rec.history.len()), (0, events));
        assert_eq!(rec.devices.len(), 1, "{file}");
        assert!(rec.pre_existing().count() > 0);
        let e = read(file, &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing to replay"), "{e}");
    }
}

#[test]
fn allocations_without_python_frames_are_named_by_autograd_node_or_aten_op() {
    use super::parse::autograd_node;
    assert_eq!(
        autograd_node(
            "torch::autograd::generated::MeanBackward0::apply(std::vector<at::Tensor>&&)"
        )
        .as_deref(),
        Some("autograd MeanBackward0 (backward pass)")
    );
    assert_eq!(
        autograd_node("torch::autograd::generated::MeanBackward0_apply_functional(x)"),
        None
    );
    assert_eq!(autograd_node("at::_ops::div_Scalar::call"), None);
    use super::parse::aten_op;
    assert_eq!(
        aten_op("at::_ops::sum_dim_IntList::call(at::Tensor const&)").as_deref(),
        Some("aten::sum_dim_IntList")
    );
    assert_eq!(aten_op("at::_ops::sum_dim_IntList::redispatch(x)"), None);
}

/// Every allocation of the real training snapshots has a call site: a frame of user code, or
/// (backward pass) its autograd node or ATen operator. A regression test for serde_pickle's decoder, which
/// turned re-referenced frames into `{None: line}` and lost almost every site.
#[test]
fn every_real_allocation_has_a_call_site() {
    for file in [
        "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
        "traces/external/pytorch_snapshots/cs336_wedsonlin/results/medium_128_training_memory_snapshot.pickle",
    ] {
        let Some(path) = memplan_tests::require::shared_data(file) else {
            return;
        };
        let rec = load(file, &std::fs::read(path).unwrap(), DeviceChoice::Auto).unwrap();
        let allocs: Vec<_> = rec
            .history
            .iter()
            .filter(|e| e.action == Action::Alloc)
            .collect();
        assert!(allocs.len() > 1000, "{file}");
        let without = allocs.iter().filter(|e| e.site.is_none()).count();
        assert_eq!(
            without,
            0,
            "{file}: {without} of {} allocations without a site",
            allocs.len()
        );
        assert!(rec.sites.iter().any(|s| s.contains(".py:")), "{file}");
    }
}
