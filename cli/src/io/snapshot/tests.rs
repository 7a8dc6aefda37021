#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn entry(action: &str, addr: i64, size: i64) -> Value {
        let mut d = BTreeMap::new();
        let s = |k: &str| HashableValue::String(k.to_owned());
        d.insert(s("action"), Value::String(action.to_owned()));
        d.insert(s("addr"), Value::I64(addr));
        d.insert(s("size"), Value::I64(size));
        d.insert(s("stream"), Value::I64(0));
        Value::Dict(d)
    }

    fn pickle(events: Vec<Value>) -> Vec<u8> {
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![Value::List(events)]),
        );
        serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap()
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
    }

    /// A segment of `total` bytes holding one block per `(state, size)`.
    fn segment(total: i64, blocks: &[(&str, i64)]) -> Value {
        let s = |k: &str| HashableValue::String(k.to_owned());
        let blocks = blocks
            .iter()
            .map(|&(state, size)| {
                let mut b = BTreeMap::new();
                b.insert(s("state"), Value::String(state.to_owned()));
                b.insert(s("size"), Value::I64(size));
                Value::Dict(b)
            })
            .collect();
        let mut d = BTreeMap::new();
        d.insert(s("total_size"), Value::I64(total));
        d.insert(s("blocks"), Value::List(blocks));
        Value::Dict(d)
    }

    #[test]
    fn a_snapshot_without_allocations_is_an_error_saying_what_it_holds() {
        let seg = segment(2 << 20, &[("active_allocated", 4096), ("inactive", 8192)]);
        // State only: the dict with an empty history on every device.
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![Value::List(vec![])]),
        );
        d.insert(
            HashableValue::String("segments".into()),
            Value::List(vec![seg.clone()]),
        );
        let data =
            serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "s: a snapshot with 1 segments (2097152 bytes reserved) holding 1 active blocks \
                 (4096 bytes) but no allocation in its history (1 device histories, 0 events on \
                 device 0): nothing to replay."
            ),
            "{e}"
        );
        assert!(e.contains("_record_memory_history("), "{e}");
        // The bare segment list of torch.cuda.memory_snapshot().
        let data =
            serde_pickle::value_to_vec(&Value::List(vec![seg]), serde_pickle::SerOptions::new())
                .unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("torch.cuda.memory_snapshot()"), "{e}");
        assert!(e.contains("holding 1 active blocks (4096 bytes)"), "{e}");
        // Only frees and markers on device 0, allocations on device 1: say where they are.
        let mut d = BTreeMap::new();
        d.insert(
            HashableValue::String("device_traces".into()),
            Value::List(vec![
                Value::List(vec![entry("snapshot", 0, 0)]),
                Value::List(vec![entry("alloc", 4096, 8)]),
            ]),
        );
        let data =
            serde_pickle::value_to_vec(&Value::Dict(d), serde_pickle::SerOptions::new()).unwrap();
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("device_traces[1] has 1 events"), "{e}");
    }

    #[test]
    fn a_history_that_starts_mid_run_opens_with_the_blocks_it_frees_unallocated() {
        let data = pickle(vec![
            entry("free_requested", 4096, 1000),
            entry("free_completed", 4096, 1000), // allocated before recording began
            entry("alloc", 4096, 512),
            entry("alloc", 8192, 64),
        ]);
        let s = read("s", &data, DeviceChoice::Auto).unwrap();
        assert_eq!(s.pre_existing, 1);
        assert_eq!((s.trace.allocs(), s.trace.peak_requested()), (3, 1000));
        // A second free of it without an allocation is still an error, naming the entry.
        let data = pickle(vec![
            entry("free_completed", 4096, 1000),
            entry("free_completed", 4096, 1000),
        ]);
        let e = read("s", &data, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s: device_traces[0][1]: free_completed at 0x1000"),
            "{e}"
        );
    }

    #[test]
    fn reads_the_decomfl_snapshot() {
        let Some(path) = memplan_tests::require::shared_data(
            "traces/external/pytorch_snapshots/decomfl_opt/memory.pickle",
        ) else {
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let s = read("memory.pickle", &data, DeviceChoice::Auto).unwrap();
        // Counts from the trace's README: 7,946 alloc, 7,549 free_completed, 61 segment_alloc.
        assert_eq!(s.trace.allocs(), 7946);
        assert_eq!(s.trace.len(), 7946 + 7549);
        assert_eq!(s.segments.len(), 61);
    }

    #[test]
    fn bad_snapshots_name_the_entry() {
        let cases = [
            (
                pickle(vec![entry("alloc", 4096, 1), entry("teleport", 0, 0)]),
                "s: device_traces[0][1]: unknown action \"teleport\"",
            ),
            (
                pickle(vec![entry("alloc", -1, 1)]),
                "s: device_traces[0][0]: alloc without a non-negative integer addr",
            ),
        ];
        for (data, want) in cases {
            assert_eq!(
                read("s", &data, DeviceChoice::Auto)
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
        let good = pickle(vec![entry("alloc", 4096, 1)]);
        let e = read("s", &good[..good.len() / 2], DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s: not a readable pickle"), "{e}");
    }
}
