//! PyTorch profiler memory timelines (`prof.export_memory_timeline("x.raw.json.gz")`, the raw
//! form) as allocation traces.
//!
//! The file is a JSON list (optionally gzip-compressed) of `[time, action, bytes, category]`
//! entries for one device, from `torch.profiler._memory_profiler`: action 1 is a tensor that
//! existed before profiling (`PREEXISTING`), 2 a creation (`CREATE`), 3 a version change
//! (`INCREMENT_VERSION`: a `-bytes` and a `+bytes` entry of the same tensor, which change its
//! category, not the memory in use), 4 a destruction (`DESTROY`, negative bytes). Categories
//! (parameter, activation, gradient, ...) are not needed here.
//!
//! The format carries no tensor identity, so a destruction is paired with the most recent
//! live tensor of the same size ([`Pairing`]): the bytes live at every moment are exact, which
//! tensor died is not. Version changes are skipped (they net to zero); a destruction with no
//! live tensor of its size is counted, never silently dropped, and reported.

use std::io::Read;

use memplan_core::trace::{Marker, Trace, TraceBuilder};
use serde_json::Value;

use super::InputError;
use super::pairing::Pairing;

/// The most bytes a gzip-compressed timeline may decompress to: the profiler's limit.
pub const MAX_DECOMPRESSED: u64 = super::kineto::MAX_DECOMPRESSED;

/// The most entries a timeline may hold.
pub const MAX_ENTRIES: usize = 50_000_000;

/// A memory timeline, as a trace.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Creations (pre-existing tensors first) and destructions, in time order.
    pub trace: Trace,
    /// Tensors that existed before profiling began.
    pub pre_existing: usize,
    /// Destructions with no live tensor of their size (paired with nothing).
    pub unpaired_frees: usize,
    /// Version changes skipped.
    pub version_changes: usize,
}

/// True when `data` is a JSON list whose first element is a 4-number list (after gzip).
pub fn is_timeline(data: &[u8]) -> bool {
    let mut head = [0u8; 64];
    let n = if data.starts_with(&[0x1f, 0x8b]) {
        let mut d = flate2::read::GzDecoder::new(data);
        let mut n = 0;
        while n < head.len() {
            match d.read(&mut head[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        n
    } else {
        let n = data.len().min(head.len());
        head[..n].copy_from_slice(&data[..n]);
        n
    };
    let text: String = head[..n]
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| b as char)
        .collect();
    text.starts_with("[[") && text[2..].starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// Reads a raw memory timeline.
///
/// # Errors
/// Bad gzip or JSON, more than [`MAX_DECOMPRESSED`] bytes or [`MAX_ENTRIES`] entries, an entry
/// that is not `[time, action, bytes, category]` numbers, an unknown action, or no creation
/// at all: the message names the entry.
pub fn read(file: &str, data: &[u8]) -> Result<Timeline, InputError> {
    read_limited(file, data, MAX_DECOMPRESSED)
}

fn read_limited(file: &str, data: &[u8], max_decompressed: u64) -> Result<Timeline, InputError> {
    let fail = |message: String| InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    };
    let mut text = Vec::new();
    let json: &[u8] = if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .take(max_decompressed.saturating_add(1))
            .read_to_end(&mut text)
            .map_err(|e| fail(format!("bad gzip data: {e}")))?;
        if text.len() as u64 > max_decompressed {
            return Err(fail(format!(
                "decompresses to more than {max_decompressed} bytes, the most memplan reads"
            )));
        }
        &text
    } else {
        data
    };
    let root: Value =
        serde_json::from_slice(json).map_err(|e| fail(format!("not valid JSON: {e}")))?;
    let entries = root
        .as_array()
        .ok_or_else(|| fail("not a JSON list: not a memory timeline".into()))?;
    if entries.len() > MAX_ENTRIES {
        return Err(fail(format!(
            "{} entries, more than the {MAX_ENTRIES} memplan reads",
            entries.len()
        )));
    }
    // (time, index, action, bytes)
    let mut rows = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let at = |m: String| fail(format!("entry {i}: {m}"));
        let fields = e
            .as_array()
            .filter(|f| f.len() == 4)
            .ok_or_else(|| at("not a [time, action, bytes, category] list".into()))?;
        let num = |k: usize, what: &str| {
            fields[k]
                .as_i64()
                .ok_or_else(|| at(format!("{what} is not an integer")))
        };
        let (time, action, bytes) = (num(0, "time")?, num(1, "action")?, num(2, "bytes")?);
        num(3, "category")?;
        if !(1..=4).contains(&action) {
            return Err(at(format!(
                "unknown action {action} (1 pre-existing, 2 create, 3 version change, 4 destroy)"
            )));
        }
        if (action <= 2 && bytes < 0) || (action == 4 && bytes > 0) {
            return Err(at(format!("action {action} with {bytes} bytes")));
        }
        rows.push((time, i, action, bytes));
    }
    // Pre-existing tensors (time -1) first, then in time order, stable.
    rows.sort_by_key(|&(time, i, action, _)| (action != 1, time, i));
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let mut pairing = Pairing::default();
    let (mut pre_existing, mut unpaired_frees, mut version_changes) = (0, 0, 0);
    let mut started = false;
    for (_, i, action, bytes) in rows {
        let size = bytes.unsigned_abs();
        match action {
            1 | 2 => {
                if action == 1 {
                    pre_existing += 1;
                } else if !started && pre_existing > 0 {
                    b.marker(Marker::Annotation("profiling starts".into()));
                    started = true;
                }
                let id = pairing.alloc(size);
                b.alloc(id, size, 0)
                    .map_err(|e| fail(format!("entry {i}: {e}")))?;
            }
            3 => version_changes += 1,
            _ => match pairing.free(size) {
                Some(id) => b.free(id).map_err(|e| fail(format!("entry {i}: {e}")))?,
                None => unpaired_frees += 1,
            },
        }
    }
    let trace = b.finish();
    if trace.allocs() == 0 {
        return Err(fail(format!(
            "a memory timeline of {} entries with no tensor created: nothing to replay. Record \
             one with torch.profiler.profile(activities=[ProfilerActivity.CPU, \
             ProfilerActivity.CUDA], profile_memory=True, record_shapes=True, with_stack=True) \
             and prof.export_memory_timeline(\"timeline.raw.json.gz\", device=\"cuda:0\")",
            entries.len()
        )));
    }
    Ok(Timeline {
        trace,
        pre_existing,
        unpaired_frees,
        version_changes: version_changes / 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_destructions_with_the_latest_live_tensor_of_their_size() {
        let json = br#"[[-1,1,100,6],[5,2,200,3],[6,2,100,3],[7,3,-200,3],[7,3,200,4],
                       [8,4,-100,3],[9,4,-300,3],[10,4,-100,6]]"#;
        assert!(is_timeline(json));
        let t = read("t", json).unwrap();
        assert_eq!(
            (t.pre_existing, t.unpaired_frees, t.version_changes),
            (1, 1, 1)
        );
        // 3 allocations + marker + 2 frees.
        assert_eq!((t.trace.allocs(), t.trace.len()), (3, 6));
        assert_eq!(t.trace.peak_requested(), 400);
    }

    #[test]
    fn reads_gzip_and_rejects_what_is_not_a_timeline() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"[[1,2,64,0]]").unwrap();
        let gz = gz.finish().unwrap();
        assert!(is_timeline(&gz));
        assert_eq!(read("t", &gz).unwrap().trace.allocs(), 1);
        for (bad, want) in [
            (&b"[[1,2,64]]"[..], "entry 0: not a [time"),
            (b"[[1,9,64,0]]", "entry 0: unknown action 9"),
            (b"[[1,2,-64,0]]", "entry 0: action 2 with -64 bytes"),
            (b"[[1,2,\"x\",0]]", "entry 0: bytes is not an integer"),
            (b"[[1,4,-64,0]]", "no tensor created"),
            (b"{}", "not a JSON list"),
            (b"[[1,2,", "not valid JSON"),
        ] {
            let e = read("t", bad).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        for cut in 0..gz.len() {
            assert!(read("t", &gz[..cut]).is_err());
        }
        assert!(!is_timeline(b"{\"traceEvents\":[]}"));
        assert!(!is_timeline(b"[]"));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 1 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        let e = read_limited("t", &gz, 1 << 19).unwrap_err().to_string();
        assert!(e.contains("decompresses to more than"), "{e}");
    }

    #[test]
    fn reads_the_hta_memory_timeline() {
        let Some(path) = memplan_tests::require::shared_data(
            "traces/external/kineto_profiler/hta/memory_timeline.raw.gz",
        ) else {
            return;
        };
        let data = std::fs::read(&path).unwrap();
        let t = read("timeline", &data).unwrap();
        // Counted with python: 645 pre-existing, 3,345 creations, 4,755 version-change pairs,
        // 3,345 destructions.
        assert_eq!((t.pre_existing, t.version_changes), (645, 4755));
        assert_eq!(t.trace.allocs(), 645 + 3345);
    }
}
