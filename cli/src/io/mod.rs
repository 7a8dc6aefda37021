//! Reading (and writing) the files `memplan` takes. One module per format; every reader
//! takes the name a file is reported under and its bytes, and fails with an [`InputError`]
//! naming the file and, when the fault is on one line, the 1-based line.
//!
//! | module | format | read by |
//! |---|---|---|
//! | [`csv`] | allocation problem: CSV with `id,lower,upper,size` columns | `plan`, `bench`; as a trace, everything below |
//! | [`trace`] | memplan's own trace format (`memplan-trace 1` first line); also writes it | `replay`, `plan-trace`, `convert` |
//! | [`snapshot`] | PyTorch memory snapshot (`torch.cuda.memory._dump_snapshot` pickle) | as a trace |
//! | [`snapshot::flat`] | a snapshot history exported flat: CSV with `action,addr,size` columns | as a trace |
//! | [`kineto`] | PyTorch profiler (Kineto) Chrome-trace JSON, plain or gzip | as a trace |
//! | [`kineto::flat`] | profiler memory events exported flat: CSV with `addr,bytes,device_type,device_id` columns (HTA) | as a trace |
//! | [`dtr`] | DTR operator log (JSON lines with `"INSTRUCTION"`) | as a trace; as a program by `remat` |
//! | [`timeline`] | PyTorch profiler memory timeline (`export_memory_timeline`, raw JSON list, plain or gzip) | as a trace |
//!
//! [`files`] opens them: every command reads its inputs with [`files::read_input`] (`-` is
//! standard input, at most [`files::MAX_INPUT_BYTES`]) and writes its output files with
//! [`files::write_output`] (`-` is standard output).
//!
//! # How a trace's format is detected
//!
//! [`trace::read`] (via [`trace::read_with_segments`]) sniffs the bytes, first match wins:
//!
//! 1. a pickle (first byte `0x80`, [`snapshot::is_pickle`]) → [`snapshot`];
//! 2. a CSV header naming `action`, `addr`, `size` ([`snapshot::flat::is_events_csv`]) →
//!    [`snapshot::flat`];
//! 3. a JSON object with a string `"INSTRUCTION"` on the first non-blank line
//!    ([`dtr::is_dtr`]) → [`dtr`] (before the profiler, whose JSON starts with `{` too);
//! 4. a JSON list of `[time, action, bytes, category]` lists, plain or gzip
//!    ([`timeline::is_timeline`]) → [`timeline`];
//! 5. a CSV header naming `addr`, `bytes`, `device_type`, `device_id`
//!    ([`kineto::flat::is_memory_events_csv`]) → [`kineto::flat`];
//! 6. gzip, or text starting with `{` ([`kineto::is_kineto`]) → [`kineto`];
//! 7. a first non-comment line starting `memplan-trace` → memplan's own format ([`trace`]);
//! 8. anything else → a problem CSV ([`csv`]), its buffers turned into events in time order.
//!
//! # Adding a trace format
//!
//! Write `io/<format>.rs` with an `is_<format>(data) -> bool` sniffer and a
//! `read(file, data) -> Result<…, InputError>` reader (with its unit tests), declare it here
//! and in the table above, and add its branch, in the right place of the order above, to
//! [`trace::read_with_segments`]. Every command that reads traces then takes it.

use std::fmt;
use std::str::FromStr;

pub mod csv;
pub mod dtr;
pub mod files;
pub mod kineto;
pub mod pairing;
pub mod snapshot;
pub mod timeline;
pub mod trace;

/// Why a file could not be read, in any format: the file, the line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The name the file is reported under.
    pub file: String,
    /// The 1-based line at fault, when the fault is on one line.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// True when the header lacks the required columns: the file is not a problem file at all
    /// (`bench` skips such files instead of reporting them).
    pub not_a_problem: bool,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// True when `data`'s first line is a CSV header naming every one of `columns` (the sniffer
/// of the flat exports, [`snapshot::flat`] and [`kineto::flat`]).
pub fn csv_header_names(data: &[u8], columns: &[&str]) -> bool {
    let first = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let Ok(first) = std::str::from_utf8(first) else {
        return false;
    };
    let header: Vec<&str> = first.trim().split(',').map(str::trim).collect();
    columns.iter().all(|c| header.contains(c))
}

/// Which device's events a reader takes (`--device`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The device with the most allocation events (the reader says so when several have
    /// some).
    #[default]
    Auto,
    /// This device index.
    Index(u32),
    /// Every device with events, each reported on its own (`memplan analyze`).
    All,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "all" => Ok(Self::All),
            n => n.parse::<u32>().map(Self::Index).map_err(|_| {
                format!("{s:?} is not a device: give an index (0, 1, ...), `auto` or `all`")
            }),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::All => f.write_str("all"),
            Self::Index(n) => write!(f, "{n}"),
        }
    }
}
