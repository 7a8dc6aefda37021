//! Flat CSV exports of a profiler trace's memory events, as Holistic Trace Analysis and
//! pandas users write them: a header naming at least `addr`, `bytes`, `device_type` and
//! `device_id` (`ts_us` or `ts`, `ev_idx`, `total_allocated`, `total_reserved` are read when
//! present; other columns are ignored), one row per `[memory]` event. An empty or negative
//! `addr` means no address (paired by size, as the 2021 format). The rows go through the same
//! device choice and pairing as a Chrome trace ([`super::read`]).

use super::{CPU, Kineto, MemEvent, Parsed, choose};
use crate::io::{DeviceChoice, InputError};

/// The most rows a flat export may have.
pub const MAX_ROWS: usize = 50_000_000;

/// The columns that make a CSV a flat export of memory events.
const REQUIRED: [&str; 4] = ["addr", "bytes", "device_type", "device_id"];

/// True when `data`'s first line is a CSV header naming the `addr`, `bytes`, `device_type` and
/// `device_id` columns.
pub fn is_memory_events_csv(data: &[u8]) -> bool {
    crate::io::csv_header_names(data, &REQUIRED)
}

/// Reads a flat export of memory events.
///
/// # Errors
/// A missing column, a field that is not a number (`FILE:LINE:`), more than [`MAX_ROWS`] rows,
/// and everything [`super::read`] rejects in the events themselves.
pub fn read(file: &str, data: &[u8], device: DeviceChoice) -> Result<Kineto, InputError> {
    let fail = |line: Option<u64>, message: String| InputError {
        file: file.to_owned(),
        line,
        message,
        not_a_problem: false,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(data);
    let header = reader
        .headers()
        .map_err(|e| fail(Some(1), format!("bad CSV header: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let need =
        |name: &str| column(name).ok_or_else(|| fail(Some(1), format!("no `{name}` column")));
    let (addr_at, bytes_at) = (need("addr")?, need("bytes")?);
    let (type_at, device_at) = (need("device_type")?, need("device_id")?);
    let ts_at = column("ts_us").or_else(|| column("ts"));
    let (idx_at, alloc_at, reserved_at) = (
        column("ev_idx"),
        column("total_allocated"),
        column("total_reserved"),
    );
    let mut parsed = Parsed {
        has_events: true,
        ..Parsed::default()
    };
    for (n, row) in reader.records().enumerate() {
        let line = Some(n as u64 + 2);
        let row = row.map_err(|e| fail(line, format!("bad CSV row: {e}")))?;
        if n >= MAX_ROWS {
            return Err(fail(line, format!("more than {MAX_ROWS} rows")));
        }
        let get = |i: usize| row.get(i).unwrap_or("");
        let int = |i: usize, what: &str| {
            get(i)
                .parse::<i64>()
                .map_err(|_| fail(line, format!("{what} {:?} is not an integer", get(i))))
        };
        let optional = |at: Option<usize>, what: &str| -> Result<Option<i64>, InputError> {
            match at.map(get) {
                None | Some("") => Ok(None),
                Some(_) => int(at.unwrap_or_default(), what).map(Some),
            }
        };
        let addr = match get(addr_at) {
            "" => None,
            s => s
                .parse::<i64>()
                .map_err(|_| fail(line, format!("addr {s:?} is not an integer")))?
                .try_into()
                .ok(),
        };
        let ts = match ts_at.map(get) {
            None | Some("") => 0.0,
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| fail(line, format!("time {s:?} is not a number")))?,
        };
        let e = MemEvent {
            ts,
            ev_idx: optional(idx_at, "ev_idx")?.unwrap_or(n as i64),
            index: n,
            device_type: int(type_at, "device_type")?,
            device: int(device_at, "device_id")?,
            addr,
            bytes: int(bytes_at, "bytes")?,
            total_allocated: optional(alloc_at, "total_allocated")?,
            total_reserved: optional(reserved_at, "total_reserved")?,
            finished: None,
        };
        let (allocs, frees) = parsed.devices.entry((e.device_type, e.device)).or_default();
        if e.bytes >= 0 {
            *allocs += 1;
        } else {
            *frees += 1;
        }
        if e.device_type != CPU {
            parsed.gpu.push(e);
        }
        parsed.events = n + 1;
    }
    choose(file, parsed, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "ts_us,ev_idx,device_type,device_id,addr,bytes,total_allocated,total_reserved
1,1,1,1,4096,512,512,2097152
2,2,0,-1,8,16,16,0
3,3,1,1,8192,1024,1536,2097152
4,4,1,1,4096,-512,1024,2097152
";

    #[test]
    fn reads_rows_as_memory_events() {
        assert!(is_memory_events_csv(CSV.as_bytes()));
        assert!(!is_memory_events_csv(b"id,lower,upper,size\n"));
        let k = read("m.csv", CSV.as_bytes(), DeviceChoice::Auto).unwrap();
        assert_eq!((k.device_type, k.device), (1, 1));
        assert_eq!((k.trace.allocs(), k.trace.len()), (2, 3));
        assert_eq!(k.trace.peak_requested(), 1536);
        let r = k.recorded.unwrap();
        assert_eq!((r.peak_allocated, r.peak_reserved), (1536, 2097152));
    }

    #[test]
    fn bad_rows_name_the_line() {
        let bad = "addr,bytes,device_type,device_id\n1,x,1,0\n";
        let e = read("m.csv", bad.as_bytes(), DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.csv:2: bytes \"x\" is not an integer"),
            "{e}"
        );
        let e = read("m.csv", b"addr,bytes,device_type\n", DeviceChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `device_id` column"), "{e}");
    }

    #[test]
    fn reads_the_hta_export_like_its_trace() {
        let (Some(csv), Some(json)) = (
            memplan_tests::require::shared_data(
                "traces/external/kineto_profiler/hta/df_index_resolver_memory_events.csv",
            ),
            memplan_tests::require::shared_data(
                "traces/external/kineto_profiler/hta/df_index_resolver.json.gz",
            ),
        ) else {
            return;
        };
        let flat = read("m.csv", &std::fs::read(csv).unwrap(), DeviceChoice::Auto).unwrap();
        let full =
            super::super::read("t", &std::fs::read(json).unwrap(), DeviceChoice::Auto).unwrap();
        assert_eq!(
            (flat.device_type, flat.device),
            (full.device_type, full.device)
        );
        assert_eq!(flat.trace.allocs(), full.trace.allocs());
        assert_eq!(flat.trace.peak_requested(), full.trace.peak_requested());
        assert_eq!(flat.recorded, full.recorded);
    }
}
