//! PyTorch profiler (Kineto) traces as allocation traces.
//!
//! Reads the Chrome-trace JSON (optionally gzip-compressed) written by
//! `torch.profiler.profile(profile_memory=True)`: its `[memory]` instant events carry `Addr`,
//! a signed `Bytes` (positive: allocation, negative: free), `Device Type` (1 = CUDA) and
//! `Device Id`. Events of the first CUDA device seen are taken in time order (then by
//! `Ev Idx`); an allocation's id is its address. A profiling window usually starts mid-run,
//! so frees of blocks allocated before it have no matching allocation: they are skipped and
//! counted in [`Kineto::unmatched_frees`], never silently dropped.

use std::io::Read;

use memplan_core::trace::{Trace, TraceBuilder};
use serde_json::Value;

use super::{DeviceChoice, InputError};

/// A profiler trace's CUDA memory events, as a trace.
#[derive(Debug, Clone)]
pub struct Kineto {
    /// Allocations and frees of one CUDA device (ids are addresses).
    pub trace: Trace,
    /// The device the events came from.
    pub device: i64,
    /// Frees whose allocation happened before the profiling window.
    pub unmatched_frees: usize,
}

/// True when `data` is gzip-compressed or looks like JSON.
pub fn is_kineto(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b]) || data.trim_ascii_start().starts_with(b"{")
}

/// Reads a Kineto trace.
///
/// # Errors
/// Bad gzip or JSON, no `traceEvents`, a `[memory]` event without the fields it needs, or an
/// allocation at an address that is still allocated: the message names the `traceEvents`
/// index.
pub fn read(file: &str, data: &[u8], device: DeviceChoice) -> Result<Kineto, InputError> {
    let _ = device; // TODO(issue 13): device selection

    let fail = |message: String| InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    };
    let mut text = Vec::new();
    let json: &[u8] = if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut text)
            .map_err(|e| fail(format!("bad gzip data: {e}")))?;
        &text
    } else {
        data
    };
    let root: Value =
        serde_json::from_slice(json).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let events = root
        .get("traceEvents")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("no traceEvents array: not a profiler trace".into()))?;
    // (ts, ev_idx, index in traceEvents, addr, bytes) of the chosen device.
    let mut memory: Vec<(i64, i64, usize, u64, i64)> = Vec::new();
    let mut device: Option<i64> = None;
    // `[memory]` events by device type other than CUDA (0 = CPU), for the error below.
    let mut other_types: std::collections::BTreeMap<i64, usize> = Default::default();
    for (i, e) in events.iter().enumerate() {
        if e.get("name").and_then(Value::as_str) != Some("[memory]") {
            continue;
        }
        let at = |m: &str| fail(format!("traceEvents[{i}]: [memory] event {m}"));
        let args = e.get("args").ok_or_else(|| at("without args"))?;
        let arg = |k: &str| args.get(k).and_then(Value::as_i64);
        let device_type = arg("Device Type").unwrap_or(-1);
        if device_type != 1 {
            *other_types.entry(device_type).or_default() += 1;
            continue; // CPU memory, or a device type not read yet
        }
        let dev = arg("Device Id").ok_or_else(|| at("without Device Id"))?;
        if *device.get_or_insert(dev) != dev {
            continue; // another GPU
        }
        let addr = args
            .get("Addr")
            .and_then(Value::as_u64)
            .ok_or_else(|| at("without a non-negative Addr"))?;
        let bytes = arg("Bytes").ok_or_else(|| at("without Bytes"))?;
        let ts = e.get("ts").and_then(Value::as_i64).unwrap_or(0);
        let idx = arg("Ev Idx").unwrap_or(i as i64);
        memory.push((ts, idx, i, addr, bytes));
    }
    memory.sort_unstable();
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let mut unmatched_frees = 0;
    let mut live = std::collections::BTreeSet::new();
    for (_, _, i, addr, bytes) in memory {
        if bytes >= 0 {
            b.alloc(addr, bytes.unsigned_abs(), 0)
                .map_err(|e| fail(format!("traceEvents[{i}]: {e}")))?;
            live.insert(addr);
        } else if live.remove(&addr) {
            b.free(addr)
                .map_err(|e| fail(format!("traceEvents[{i}]: {e}")))?;
        } else {
            unmatched_frees += 1;
        }
    }
    let trace = b.finish();
    if trace.allocs() == 0 {
        let cuda = match device {
            Some(d) => format!(
                "no allocation on CUDA device {d} (only {unmatched_frees} frees of blocks \
                 allocated before the profiling window)"
            ),
            None => "no [memory] event on a CUDA device".to_owned(),
        };
        let others = if other_types.is_empty() {
            "and no other [memory] events".to_owned()
        } else {
            let list: Vec<String> = other_types
                .iter()
                .map(|(t, n)| format!("{n} with Device Type {t}"))
                .collect();
            format!(
                "other [memory] events: {} (0 is CPU memory; other device types are not read \
                 yet)",
                list.join(", ")
            )
        };
        return Err(fail(format!(
            "a profiler trace of {} events with {cuda}; {others}: nothing to replay. Record GPU \
             memory with torch.profiler.profile(activities=[ProfilerActivity.CPU, \
             ProfilerActivity.CUDA], profile_memory=True) and prof.export_chrome_trace(\"trace.json\")",
            events.len()
        )));
    }
    Ok(Kineto {
        trace,
        device: device.unwrap_or(0),
        unmatched_frees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(ts: i64, addr: u64, bytes: i64) -> String {
        format!(
            r#"{{"name":"[memory]","ph":"i","ts":{ts},"args":{{"Device Type":1,"Device Id":0,"Addr":{addr},"Bytes":{bytes}}}}}"#
        )
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
        assert_eq!(k.trace.peak_requested(), 1024);
    }

    #[test]
    fn a_trace_without_cuda_allocations_is_an_error_saying_what_it_holds() {
        let other = |t: i64| {
            format!(
                r#"{{"name":"[memory]","ph":"i","ts":1,"args":{{"Device Type":{t},"Device Id":0,"Addr":64,"Bytes":8}}}}"#
            )
        };
        let json = format!(
            r#"{{"traceEvents":[{},{},{}]}}"#,
            other(0),
            other(6),
            other(6)
        );
        let e = read("k", json.as_bytes(), DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "k: a profiler trace of 3 events with no [memory] event on a CUDA device; other \
                 [memory] events: 1 with Device Type 0, 2 with Device Type 6"
            ),
            "{e}"
        );
        assert!(e.contains("profile_memory=True"), "{e}");
        // Only frees of blocks allocated before the window.
        let json = format!(r#"{{"traceEvents":[{}]}}"#, mem(1, 64, -8));
        let e = read("k", json.as_bytes(), DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no allocation on CUDA device 0 (only 1 frees"),
            "{e}"
        );
        let e = read("k", br#"{"traceEvents":[]}"#, DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 events with no [memory] event"), "{e}");
    }

    #[test]
    fn bad_traces_name_the_event() {
        let twice = format!(r#"{{"traceEvents":[{},{}]}}"#, mem(1, 64, 8), mem(2, 64, 8));
        assert_eq!(
            read("k", twice.as_bytes(), DeviceChoice::Auto)
                .unwrap_err()
                .to_string(),
            "k: traceEvents[1]: event 1: allocation 64 is still live (allocated at event 0)"
        );
        assert!(
            read("k", b"{\"x\":1}", DeviceChoice::Auto)
                .unwrap_err()
                .to_string()
                .contains("no traceEvents")
        );
        assert!(
            read("k", b"{\"traceEvents\":[", DeviceChoice::Auto)
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn reads_the_hta_trace() {
        let Some(path) = memplan_tests::require::shared_data(
            "traces/external/kineto_profiler/hta/df_index_resolver.json.gz",
        ) else {
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let k = read("hta", &data, DeviceChoice::Auto).unwrap();
        // 26,770 CUDA [memory] events on device 1; each is an alloc, a matched free or an
        // unmatched one.
        // 26,770 CUDA [memory] events on device 1 (counted in the flat CSV export beside it):
        // 13,385 allocations, each freed inside the window; the ≈5.4 GB allocated before the
        // window are never freed in it, so no free is unmatched.
        assert_eq!(k.device, 1);
        assert_eq!(
            (k.trace.allocs(), k.trace.len(), k.unmatched_frees),
            (13385, 26770, 0)
        );
    }
}
