//! memplan's own trace format, and reading traces from the formats `memplan` knows.
//!
//! The format is line-oriented and easy to write from C++:
//!
//! ```text
//! memplan-trace 1          first line (after comments): format and version
//! # a comment              comments and blank lines anywhere
//! a <id> <size> <stream>   allocation: id (u64), bytes (u64), stream (u32)
//! f <id>                   free
//! i                        an iteration starts
//! p <phase>                a phase starts (rest of the line, e.g. "forward")
//! n <text>                 an annotation (rest of the line)
//! ```
//!
//! Fields are separated by single spaces or tabs. Every error names the file and line.

use std::fmt::Write as _;

use memplan_core::trace::{Event, Marker, Trace, TraceBuilder};

use super::{DeviceChoice, InputError, csv, dtr, kineto, snapshot, timeline};

/// The first line of a trace file.
pub const MAGIC: &str = "memplan-trace";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;

/// The formats a trace file can be in, as [`detect`] finds them (first match wins, in this
/// order; see the table in [`crate::io`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PyTorch memory snapshot pickle ([`snapshot`]).
    Snapshot,
    /// A snapshot's history exported as CSV ([`snapshot::flat`]).
    SnapshotCsv,
    /// A DTR operator log ([`dtr`]).
    Dtr,
    /// A profiler memory timeline ([`timeline`]).
    Timeline,
    /// Profiler memory events exported as CSV ([`kineto::flat`]).
    ProfilerCsv,
    /// A profiler (Kineto) Chrome trace ([`kineto`]).
    Profiler,
    /// memplan's own trace format.
    Memplan,
    /// An `id,lower,upper,size` problem CSV ([`csv`]).
    ProblemCsv,
}

impl Format {
    /// What the format is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Snapshot => "PyTorch memory snapshot",
            Self::SnapshotCsv => "PyTorch snapshot history, flat CSV export",
            Self::Dtr => "DTR operator log",
            Self::Timeline => "PyTorch profiler memory timeline",
            Self::ProfilerCsv => "PyTorch profiler memory events, flat CSV export",
            Self::Profiler => "PyTorch profiler trace",
            Self::Memplan => "memplan trace",
            Self::ProblemCsv => "id,lower,upper,size problem CSV",
        }
    }
}

/// The format of `data`, from its content.
pub fn detect(data: &[u8]) -> Format {
    if snapshot::is_pickle(data) {
        Format::Snapshot
    } else if snapshot::flat::is_events_csv(data) {
        Format::SnapshotCsv
    } else if dtr::is_dtr(data) {
        // Before the profiler: a DTR log's first line starts with `{` too.
        Format::Dtr
    } else if timeline::is_timeline(data) {
        Format::Timeline
    } else if kineto::flat::is_memory_events_csv(data) {
        Format::ProfilerCsv
    } else if kineto::is_kineto(data) {
        Format::Profiler
    } else {
        let first = std::str::from_utf8(data).ok().and_then(|t| {
            t.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
        });
        match first {
            Some(l) if l.split_whitespace().next() == Some(MAGIC) => Format::Memplan,
            _ => Format::ProblemCsv,
        }
    }
}

/// Reads a trace from `data`: a PyTorch memory snapshot pickle, a DTR operator log (JSON
/// lines), a PyTorch profiler (Kineto) JSON trace (gzip or plain), memplan's own format when the
/// first line says so, else an offline interval CSV (`id,lower,upper,size`), turned into
/// events in time order.
///
/// # Errors
/// The first thing wrong, with its file and line.
pub fn read(file: &str, data: &[u8]) -> Result<Trace, InputError> {
    Ok(read_with_segments(file, data, DeviceChoice::Auto)?.0)
}

/// [`read`] of the events of `device` (snapshots and profiler traces record several), also
/// returning the addresses PyTorch's cudaMalloc gave each segment when the trace is a PyTorch
/// snapshot (a replay of PyTorch's allocator needs them to reproduce its addresses).
///
/// # Errors
/// As [`read`]; [`DeviceChoice::All`] (one trace is one device's) or a device the file has no
/// events for.
pub fn read_with_segments(
    file: &str,
    data: &[u8],
    device: DeviceChoice,
) -> Result<(Trace, Option<Vec<u64>>), InputError> {
    if device == DeviceChoice::All {
        return Err(InputError {
            file: file.to_owned(),
            line: None,
            message: "--device all is for `memplan analyze`, which reports each device; a \
                      trace is one device's: pick one with --device N"
                .to_owned(),
            not_a_problem: false,
        });
    }
    match detect(data) {
        Format::Snapshot => Ok(snapshot_trace(file, snapshot::read(file, data, device)?)),
        Format::SnapshotCsv => {
            let recording = snapshot::flat::load(file, data)?;
            Ok(snapshot_trace(
                file,
                snapshot::from_recording(file, recording)?,
            ))
        }
        Format::Dtr => {
            let trace = dtr::read(file, data)?;
            eprintln!(
                "{file}: DTR operator log, {} storage allocations, peak {} bytes requested",
                trace.allocs(),
                trace.peak_requested()
            );
            Ok((trace, None))
        }
        Format::Timeline => {
            let t = timeline::read(file, data)?;
            for note in timeline_notes(&t) {
                eprintln!("{file}: {note}");
            }
            Ok((t.trace, None))
        }
        format @ (Format::ProfilerCsv | Format::Profiler) => {
            let k = if format == Format::ProfilerCsv {
                kineto::flat::read(file, data, device)?
            } else {
                kineto::read(file, data, device)?
            };
            eprintln!(
                "{file}: profiler trace, {} device {}: {} allocations; {} frees of blocks \
                 allocated before the window skipped",
                kineto::device_type_name(k.device_type),
                k.device,
                k.trace.allocs(),
                k.unmatched_frees
            );
            for note in &k.notes {
                eprintln!("{file}: {note}");
            }
            Ok((k.trace, None))
        }
        Format::Memplan => Ok((parse(file, std::str::from_utf8(data).unwrap_or(""))?, None)),
        Format::ProblemCsv => {
            let problem = csv::parse(file, data, 1)?;
            Ok((Trace::from_buffers(problem.buffers()), None))
        }
    }
}

/// What a memory timeline's reading decided, one sentence each.
pub fn timeline_notes(t: &timeline::Timeline) -> Vec<String> {
    let mut notes = vec![format!(
        "profiler memory timeline: {} tensors ({} existing before profiling); the format has \
         no tensor identity, so each destruction was paired with the latest live tensor of its \
         size: bytes live are exact, lifetimes approximate",
        t.trace.allocs(),
        t.pre_existing
    )];
    if t.unpaired_frees > 0 {
        notes.push(format!(
            "{} destructions matched no live tensor of their size (skipped)",
            t.unpaired_frees
        ));
    }
    notes
}

/// A snapshot's trace and segment addresses, after saying on stderr what was read.
fn snapshot_trace(file: &str, snapshot: snapshot::Snapshot) -> (Trace, Option<Vec<u64>>) {
    eprintln!(
        "{file}: PyTorch snapshot ({:?}), device {}: {} allocations, {} segments",
        snapshot.recording.generation,
        snapshot.device,
        snapshot.trace.allocs(),
        snapshot.segments.len()
    );
    if snapshot.pre_existing > 0 || snapshot.pre_existing_segments > 0 {
        eprintln!(
            "{file}: the history starts mid-run: {} blocks live in {} segments when \
             recording began (reconstructed backwards from the dump-time state) open the \
             trace",
            snapshot.pre_existing, snapshot.pre_existing_segments
        );
    }
    for w in &snapshot.warnings {
        eprintln!("{file}: warning: {w}");
    }
    let segments = snapshot.segments.iter().map(|&(addr, _)| addr).collect();
    (snapshot.trace, Some(segments))
}

fn parse(file: &str, text: &str) -> Result<Trace, InputError> {
    let err = |line: usize, message: String| InputError {
        file: file.to_owned(),
        line: Some(line as u64 + 1),
        message,
        not_a_problem: false,
    };
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let mut seen_header = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !seen_header {
            let mut f = trimmed.split_whitespace();
            f.next(); // MAGIC, checked by `read`
            let version = f.next().and_then(|v| v.parse::<u32>().ok());
            if version != Some(VERSION) || f.next().is_some() {
                return Err(err(
                    n,
                    format!("expected `{MAGIC} {VERSION}`, found {trimmed:?}"),
                ));
            }
            seen_header = true;
            continue;
        }
        let (kind, rest) = trimmed
            .split_once([' ', '\t'])
            .map_or((trimmed, ""), |(k, r)| (k, r.trim()));
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let int = |s: &str, what: &str| -> Result<u64, InputError> {
            s.parse::<u64>().map_err(|_| {
                err(
                    n,
                    format!("{what} {s:?} is not an integer from 0 to 2^64 - 1"),
                )
            })
        };
        let arity = |want: usize| -> Result<(), InputError> {
            if fields.len() == want {
                Ok(())
            } else {
                Err(err(
                    n,
                    format!("`{kind}` takes {want} fields, found {}", fields.len()),
                ))
            }
        };
        let core = |e: memplan_core::Error| err(n, e.to_string());
        match kind {
            "a" => {
                arity(3)?;
                let (id, size) = (int(fields[0], "id")?, int(fields[1], "size")?);
                let stream = u32::try_from(int(fields[2], "stream")?)
                    .map_err(|_| err(n, format!("stream {} does not fit in 32 bits", fields[2])))?;
                b.alloc(id, size, stream).map_err(core)?;
            }
            "f" => {
                arity(1)?;
                b.free(int(fields[0], "id")?).map_err(core)?;
            }
            "i" => {
                arity(0)?;
                b.marker(Marker::IterationStart);
            }
            "p" | "n" if rest.is_empty() => {
                return Err(err(n, format!("`{kind}` needs text after it")));
            }
            "p" => b.marker(Marker::Phase(rest.to_owned())),
            "n" => b.marker(Marker::Annotation(rest.to_owned())),
            other => {
                return Err(err(
                    n,
                    format!("unknown event kind {other:?} (expected a, f, i, p or n)"),
                ));
            }
        }
    }
    if !seen_header {
        return Err(InputError {
            file: file.to_owned(),
            line: None,
            message: format!("no `{MAGIC} {VERSION}` line"),
            not_a_problem: false,
        });
    }
    Ok(b.finish())
}

/// Writes `trace` in memplan's format.
pub fn write(trace: &Trace) -> String {
    let mut out = format!("{MAGIC} {VERSION}\n");
    for e in trace.events() {
        // Writing to a String cannot fail.
        let _ = match e {
            Event::Alloc { id, size, stream } => writeln!(out, "a {id} {size} {stream}"),
            Event::Free { id } => writeln!(out, "f {id}"),
            Event::Marker(Marker::IterationStart) => writeln!(out, "i"),
            Event::Marker(Marker::Phase(t)) => writeln!(out, "p {}", one_line(t)),
            Event::Marker(Marker::Annotation(t)) => writeln!(out, "n {}", one_line(t)),
        };
    }
    out
}

/// Marker text on one line, never empty (so that it reads back).
fn one_line(t: &str) -> String {
    let s: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.trim();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "# made by hand\nmemplan-trace 1\ni\np forward\na 1 4096 0\na 2 0 1\nf 1\nn end of step\n";
        let t = read("t.trace", text.as_bytes()).unwrap();
        assert_eq!(t.len(), 6);
        let again = read("t2.trace", write(&t).as_bytes()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("memplan-trace 2\n", "t:1: expected `memplan-trace 1`"),
            (
                "memplan-trace 1\na 1 2\n",
                "t:2: `a` takes 3 fields, found 2",
            ),
            (
                "memplan-trace 1\na 1 x 0\n",
                "t:2: size \"x\" is not an integer",
            ),
            (
                "memplan-trace 1\na 1 2 4294967296\n",
                "t:2: stream 4294967296 does not fit",
            ),
            (
                "memplan-trace 1\nf 3\n",
                "t:2: event 0: free of allocation 3, which is not live",
            ),
            (
                "memplan-trace 1\na 1 2 0\na 1 2 0\n",
                "t:3: event 1: allocation 1 is still live",
            ),
            ("memplan-trace 1\nx\n", "t:2: unknown event kind \"x\""),
            ("memplan-trace 1\np\n", "t:2: `p` needs text after it"),
        ];
        for (text, want) in cases {
            let e = read("t", text.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn interval_csv_becomes_events_in_time_order() {
        let t = read("p.csv", b"id,lower,upper,size\nb1,0,3,4\nb2,3,9,4\n").unwrap();
        assert_eq!(write(&t), "memplan-trace 1\na 0 4 0\nf 0\na 1 4 0\nf 1\n");
    }
}
