//! PyTorch profiler (Kineto) traces as allocation traces.
//!
//! Reads the Chrome-trace JSON (optionally gzip-compressed) written by
//! `torch.profiler.profile(profile_memory=True)`. Its `[memory]` instant events carry, in
//! `args`:
//!
//! | arg | meaning | present |
//! |---|---|---|
//! | `Bytes` | signed size: positive (or 0) an allocation, negative a free | always |
//! | `Device Type`, `Device Id` | c10 `DeviceType` (0 CPU, 1 CUDA, 6 HIP/ROCm, 12 XPU, 13 MPS, …) and index (-1 on the CPU) | always |
//! | `Addr` | the block's address | since 2021 (the 2021 TensorBoard-plugin samples lack it) |
//! | `Total Allocated`, `Total Reserved` | the allocator's running totals after the event | with `Addr` |
//! | `Ev Idx` | the event's sequence number | with `Addr` |
//! | `finished` | ROCm builds only; see below | ROCm |
//!
//! # What is read
//!
//! Every non-CPU device type is a device, keyed by (type, id). [`DeviceChoice::Auto`] takes
//! the device with the most allocations (a note names the others and `--device N`);
//! [`DeviceChoice::Index`] takes id `N` among the GPU types. The chosen device's events are
//! taken in time order (`ts`, then `Ev Idx`, then file order).
//!
//! - **With `Addr`**, an allocation's id is its address and a free pairs with the live
//!   allocation at its address.
//! - **Without `Addr`** (the 2021 format), allocations and frees are paired by size: a free
//!   takes the most recent live allocation of its size ([`Kineto::paired_by_size`]). Peak
//!   bytes are exact; lifetimes are approximate (two live blocks of one size may be swapped)
//!   and addresses unknown; a note says so.
//!
//! A profiling window usually starts mid-run, so frees of blocks allocated before it have no
//! matching allocation: they are skipped and counted in [`Kineto::unmatched_frees`], never
//! silently dropped. The bytes allocated before the window, and the bytes reserved, are not
//! in the events: they are derived from the recorded running totals when the trace has them
//! ([`Kineto::recorded`]), and a note says what cannot be derived when it has not.
//!
//! # `finished` (ROCm)
//!
//! ROCm builds of Kineto add a boolean `finished` to every `[memory]` event. In every ROCm
//! trace examined it has one value for the whole file (`true` in an HF inference step,
//! `false` in vLLM and SGLang graph-capture traces), and in both cases every free pairs with
//! an allocation at its address: it does not mark an event as incomplete. memplan reads every
//! event whatever its value and, when some events say `false`, a note counts them.
//!
//! # Bounds
//!
//! The JSON is parsed as a stream: only the `[memory]` events of GPU devices are kept (a few
//! dozen bytes each), everything else is skipped without being stored. Gzip input is
//! decompressed on the fly and at most [`MAX_DECOMPRESSED`] bytes are read, so a gzip bomb
//! is an error, not an exhausted memory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read};

use memplan_core::trace::{Trace, TraceBuilder};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::pairing::Pairing;
use super::{DeviceChoice, InputError};

/// Most bytes of JSON a gzip-compressed trace may decompress to (1 GiB). Large enough for a
/// long profile (the biggest public traces are a few hundred MiB); a file beyond it is an
/// error saying this limit.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// c10 `DeviceType` 0: host memory, never replayed.
const CPU: i64 = 0;

/// A profiler trace's memory events on one device, as a trace.
#[derive(Debug, Clone)]
pub struct Kineto {
    /// Allocations and frees of the chosen device. Ids are addresses when the events carry
    /// `Addr` ([`Self::paired_by_size`] false), else allocation sequence numbers.
    pub trace: Trace,
    /// The chosen device's c10 `DeviceType` (1 CUDA, 6 HIP/ROCm, …; never 0, the CPU); see
    /// [`device_type_name`].
    pub device_type: i64,
    /// The chosen device's index (`Device Id`).
    pub device: i64,
    /// Every device with `[memory]` events, the CPU included, in (type, id) order.
    pub devices: Vec<DeviceEvents>,
    /// Frees whose allocation happened before the profiling window (or, when paired by size,
    /// frees with no live allocation of their size).
    pub unmatched_frees: usize,
    /// True when the events have no `Addr` and frees were paired with allocations by size:
    /// lifetimes are then approximate and ids are not addresses.
    pub paired_by_size: bool,
    /// The running totals PyTorch recorded on the chosen device's events; `None` when the
    /// events carry no `Total Allocated` / `Total Reserved` (the 2021 format).
    pub recorded: Option<Recorded>,
    /// One sentence each on what the reading decided or could not derive (the device picked
    /// among several, pairing by size, missing totals, ROCm `finished`), for the caller to
    /// print.
    pub notes: Vec<String>,
}

/// The `[memory]` events of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvents {
    /// c10 `DeviceType`.
    pub device_type: i64,
    /// `Device Id` (-1 for the CPU).
    pub device: i64,
    /// Events with `Bytes` ≥ 0.
    pub allocs: usize,
    /// Events with `Bytes` < 0.
    pub frees: usize,
}

impl fmt::Display for DeviceEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.device_type == CPU {
            write!(f, "CPU")?;
        } else {
            write!(
                f,
                "{} device {}",
                device_type_name(self.device_type),
                self.device
            )?;
        }
        write!(f, " ({} allocations, {} frees)", self.allocs, self.frees)
    }
}

/// Running totals as PyTorch recorded them on the chosen device (`Total Allocated`,
/// `Total Reserved`, the allocator's figures after each event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Largest `Total Allocated`: peak allocated bytes, those of the blocks allocated before
    /// the window included.
    pub peak_allocated: u64,
    /// Largest `Total Reserved`: peak bytes reserved from the device.
    pub peak_reserved: u64,
    /// Bytes allocated when the window began (`Total Allocated` minus `Bytes` of the first
    /// event): blocks the trace never shows being allocated.
    pub allocated_at_start: u64,
}

/// The c10 `DeviceType` name of `t`, e.g. `CUDA` for 1, `HIP (ROCm)` for 6.
pub fn device_type_name(t: i64) -> String {
    let name = match t {
        0 => "CPU",
        1 => "CUDA",
        2 => "MKLDNN",
        3 => "OpenGL",
        4 => "OpenCL",
        5 => "IDEEP",
        6 => "HIP (ROCm)",
        7 => "FPGA",
        8 => "MAIA",
        9 => "XLA",
        10 => "Vulkan",
        11 => "Metal",
        12 => "XPU",
        13 => "MPS",
        14 => "Meta",
        15 => "HPU",
        16 => "VE",
        17 => "Lazy",
        18 => "IPU",
        19 => "MTIA",
        20 => "PrivateUse1",
        _ => return format!("device type {t}"),
    };
    name.to_owned()
}

/// True when `data` is gzip-compressed or looks like JSON.
pub fn is_kineto(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b]) || data.trim_ascii_start().starts_with(b"{")
}

/// Reads a Kineto trace's memory events of `device`.
///
/// # Errors
/// Bad gzip or JSON (with the position), more than [`MAX_DECOMPRESSED`] bytes of JSON, no
/// `traceEvents`, a `[memory]` event without the fields it needs or with a field of the
/// wrong type (naming its `traceEvents` index), an allocation at an address that is still
/// allocated, [`DeviceChoice::Index`] of a device with no events (listing those present), or
/// no allocation on any GPU device (saying what the file holds and the `torch.profiler` call
/// that records GPU memory).
pub fn read(file: &str, data: &[u8], device: DeviceChoice) -> Result<Kineto, InputError> {
    read_capped(file, data, device, MAX_DECOMPRESSED)
}

/// A `[memory]` event of a GPU device, as kept.
#[derive(Debug, Clone, Copy)]
struct MemEvent {
    ts: f64,
    ev_idx: i64,
    index: usize,
    device_type: i64,
    device: i64,
    addr: Option<u64>,
    bytes: i64,
    total_allocated: Option<i64>,
    total_reserved: Option<i64>,
    finished: Option<bool>,
}

/// What the streaming parse keeps of the whole file.
#[derive(Default)]
struct Parsed {
    /// GPU `[memory]` events.
    gpu: Vec<MemEvent>,
    /// (allocs, frees) of every device, the CPU included.
    devices: BTreeMap<(i64, i64), (usize, usize)>,
    /// `traceEvents` length.
    events: usize,
    /// Whether `traceEvents` was seen.
    has_events: bool,
    /// The `traceEvents` index being read, while inside the array.
    at: Option<usize>,
}

fn read_capped(
    file: &str,
    data: &[u8],
    choice: DeviceChoice,
    cap: u64,
) -> Result<Kineto, InputError> {
    let fail = |message: String| InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    };
    // Syntax errors and truncation are "not valid JSON"; a wrong type or a bad `[memory]`
    // event already says what is wrong, and where.
    let state = RefCell::new(Parsed::default());
    let json_error = |e: serde_json::Error| {
        let at = match state.borrow().at {
            Some(i) => format!("traceEvents[{i}]: "),
            None => String::new(),
        };
        if e.is_data() {
            fail(format!("{at}{e}"))
        } else {
            fail(format!("not valid JSON: {at}{e}"))
        }
    };
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut capped = flate2::read::MultiGzDecoder::new(data).take(cap.saturating_add(1));
        let result = parse(
            serde_json::Deserializer::from_reader(BufReader::new(&mut capped)),
            &state,
        );
        if capped.limit() == 0 {
            return Err(fail(format!(
                "decompresses to more than {cap} bytes of JSON, the limit \
                 (kineto::MAX_DECOMPRESSED): not read"
            )));
        }
        result.map_err(|e| {
            if e.is_io() {
                fail(format!("bad gzip data: {e}"))
            } else {
                json_error(e)
            }
        })?;
    } else {
        parse(serde_json::Deserializer::from_slice(data), &state).map_err(json_error)?;
    }
    let parsed = state.into_inner();
    if !parsed.has_events {
        return Err(fail("no traceEvents array: not a profiler trace".into()));
    }
    choose(file, parsed, choice)
}

/// Parses into `state`; on an error, `state.at` is the `traceEvents` index being read.
fn parse<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    state: &RefCell<Parsed>,
) -> Result<(), serde_json::Error> {
    (&mut de).deserialize_any(Root(state))?;
    de.end()
}

/// The top-level object: `traceEvents` is read, every other key skipped.
struct Root<'a>(&'a RefCell<Parsed>);

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a traceEvents array")
    }

    /// A top-level array: most likely `export_memory_timeline`'s raw output.
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "a JSON array, not a profiler trace, nor the [time, action, bytes, category] list \
             of an export_memory_timeline raw file (which memplan reads): record a Chrome \
             trace with torch.profiler.profile(profile_memory=True) and \
             prof.export_chrome_trace(\"trace.json\")",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "traceEvents" && !self.0.borrow().has_events {
                map.next_value_seed(Events(self.0))?;
                self.0.borrow_mut().has_events = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `traceEvents` array.
struct Events<'a>(&'a RefCell<Parsed>);

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of trace events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            self.0.borrow_mut().at = Some(index);
            let Some(e) = seq.next_element::<RawEvent<'de>>()? else {
                break;
            };
            if e.name.as_deref() == Some("[memory]") {
                let kept = memory_event(index, e)
                    .map_err(|m| de::Error::custom(format!("[memory] event {m}")))?;
                let mut state = self.0.borrow_mut();
                let (allocs, frees) = state
                    .devices
                    .entry((kept.device_type, kept.device))
                    .or_default();
                if kept.bytes >= 0 {
                    *allocs += 1;
                } else {
                    *frees += 1;
                }
                if kept.device_type != CPU {
                    state.gpu.push(kept);
                }
            }
            index += 1;
        }
        let mut state = self.0.borrow_mut();
        (state.events, state.at) = (index, None);
        Ok(())
    }
}

/// The fields of a trace event memplan looks at; every other field is skipped unread.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    ts: Option<Scalar>,
    #[serde(default)]
    args: Option<Args>,
}

/// `args` of a `[memory]` event (other events' args are read the same way, and ignored).
#[derive(Deserialize)]
struct Args {
    #[serde(rename = "Device Type", default)]
    device_type: Option<Scalar>,
    #[serde(rename = "Device Id", default)]
    device: Option<Scalar>,
    #[serde(rename = "Addr", default)]
    addr: Option<Scalar>,
    #[serde(rename = "Bytes", default)]
    bytes: Option<Scalar>,
    #[serde(rename = "Ev Idx", default)]
    ev_idx: Option<Scalar>,
    #[serde(rename = "Total Allocated", default)]
    total_allocated: Option<Scalar>,
    #[serde(rename = "Total Reserved", default)]
    total_reserved: Option<Scalar>,
    #[serde(default)]
    finished: Option<Scalar>,
}

/// A JSON value reduced to what a field check needs; arrays and objects are skipped without
/// being stored (so a huge one costs no memory).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    /// A string, an array, an object or null, named for the error message.
    Other(&'static str),
}

impl Scalar {
    fn as_i64(self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(v),
            Self::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    fn as_u64(self) -> Option<u64> {
        match self {
            Self::Int(v) => u64::try_from(v).ok(),
            Self::Uint(v) => Some(v),
            _ => None,
        }
    }

    fn as_f64(self) -> Option<f64> {
        match self {
            Self::Int(v) => Some(v as f64),
            Self::Uint(v) => Some(v as f64),
            Self::Float(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => write!(f, "{v}"),
            Self::Uint(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Other(what) => f.write_str(what),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Uint(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_str<E>(self, _: &str) -> Result<Scalar, E> {
                Ok(Scalar::Other("a string"))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other("null"))
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other("null"))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks a `[memory]` event's fields; the error completes "[memory] event ...".
fn memory_event(index: usize, e: RawEvent<'_>) -> Result<MemEvent, String> {
    let args = e.args.ok_or("without args")?;
    let int = |v: Option<Scalar>, name: &str| -> Result<Option<i64>, String> {
        match v {
            None => Ok(None),
            Some(s) => s
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("with {name} {s}, not an integer")),
        }
    };
    let device_type = int(args.device_type, "Device Type")?.ok_or("without Device Type")?;
    if device_type < 0 {
        return Err(format!("with a negative Device Type {device_type}"));
    }
    let bytes = int(args.bytes, "Bytes")?.ok_or("without Bytes")?;
    let device = int(args.device, "Device Id")?;
    let device = if device_type == CPU {
        device.unwrap_or(-1)
    } else {
        device.ok_or("without Device Id")?
    };
    let addr = match args.addr {
        None => None,
        Some(s) => Some(
            s.as_u64()
                .ok_or_else(|| format!("with Addr {s}, not a non-negative integer"))?,
        ),
    };
    let ts = match e.ts {
        None => 0.0,
        Some(s) => s
            .as_f64()
            .filter(|t| t.is_finite())
            .ok_or_else(|| format!("with ts {s}, not a number"))?,
    };
    let finished = match args.finished {
        None => None,
        Some(Scalar::Bool(b)) => Some(b),
        Some(s) => return Err(format!("with finished {s}, not true or false")),
    };
    Ok(MemEvent {
        ts,
        ev_idx: int(args.ev_idx, "Ev Idx")?.unwrap_or(index as i64),
        index,
        device_type,
        device,
        addr,
        bytes,
        total_allocated: int(args.total_allocated, "Total Allocated")?,
        total_reserved: int(args.total_reserved, "Total Reserved")?,
        finished,
    })
}

/// Picks the device, pairs its events and builds the trace.
fn choose(file: &str, parsed: Parsed, choice: DeviceChoice) -> Result<Kineto, InputError> {
    let fail = |message: String| InputError {
        file: file.to_owned(),
        line: None,
        message,
        not_a_problem: false,
    };
    let devices: Vec<DeviceEvents> = parsed
        .devices
        .iter()
        .map(|(&(device_type, device), &(allocs, frees))| DeviceEvents {
            device_type,
            device,
            allocs,
            frees,
        })
        .collect();
    let gpus: Vec<&DeviceEvents> = devices.iter().filter(|d| d.device_type != CPU).collect();
    let list = |ds: &[&DeviceEvents]| {
        ds.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut notes = Vec::new();
    // The busiest candidate; ties go to the lowest (type, id).
    let busiest = |cands: &[&DeviceEvents]| -> Option<DeviceEvents> {
        cands
            .iter()
            .max_by(|a, b| {
                a.allocs
                    .cmp(&b.allocs)
                    .then((b.device_type, b.device).cmp(&(a.device_type, a.device)))
            })
            .map(|d| (*d).clone())
    };
    let chosen = match choice {
        DeviceChoice::Index(n) => {
            let cands: Vec<&DeviceEvents> = gpus
                .iter()
                .copied()
                .filter(|d| d.device == i64::from(n))
                .collect();
            let Some(d) = busiest(&cands) else {
                let present = if gpus.is_empty() {
                    "none".to_owned()
                } else {
                    list(&gpus)
                };
                return Err(fail(format!(
                    "--device {n}: no [memory] events on a GPU device {n}; GPU devices with \
                     memory events: {present}"
                )));
            };
            if cands.len() > 1 {
                notes.push(format!(
                    "several device types have a device {n}: {}; took the one with the most \
                     allocations",
                    list(&cands)
                ));
            }
            d
        }
        DeviceChoice::Auto | DeviceChoice::All => {
            let with_allocs: Vec<&DeviceEvents> =
                gpus.iter().copied().filter(|d| d.allocs > 0).collect();
            match busiest(&with_allocs) {
                Some(d) => {
                    if with_allocs.len() > 1 {
                        notes.push(format!(
                            "{} GPU devices have allocations: {}; took {} {}, the one with \
                             the most; pick another with --device N",
                            with_allocs.len(),
                            list(&with_allocs),
                            device_type_name(d.device_type),
                            d.device
                        ));
                    }
                    d
                }
                None => return Err(fail(nothing_to_replay(parsed.events, &devices))),
            }
        }
    };
    let mut events: Vec<MemEvent> = parsed
        .gpu
        .into_iter()
        .filter(|e| (e.device_type, e.device) == (chosen.device_type, chosen.device))
        .collect();
    events.sort_by(|a, b| {
        a.ts.total_cmp(&b.ts)
            .then(a.ev_idx.cmp(&b.ev_idx))
            .then(a.index.cmp(&b.index))
    });
    let paired_by_size = events.iter().any(|e| e.addr.is_none());
    let mut b = TraceBuilder::new().allow_zero_size(true);
    let mut unmatched_frees = 0;
    if paired_by_size {
        let mut pairing = Pairing::default();
        for e in &events {
            let size = e.bytes.unsigned_abs();
            let core = |err: memplan_core::Error| fail(format!("traceEvents[{}]: {err}", e.index));
            if e.bytes >= 0 {
                b.alloc(pairing.alloc(size), size, 0).map_err(core)?;
            } else if let Some(id) = pairing.free(size) {
                b.free(id).map_err(core)?;
            } else {
                unmatched_frees += 1;
            }
        }
    } else {
        let mut live = std::collections::HashSet::new();
        for e in &events {
            let addr = e.addr.unwrap_or_default();
            let core = |err: memplan_core::Error| fail(format!("traceEvents[{}]: {err}", e.index));
            if e.bytes >= 0 {
                b.alloc(addr, e.bytes.unsigned_abs(), 0).map_err(core)?;
                live.insert(addr);
            } else if live.remove(&addr) {
                b.free(addr).map_err(core)?;
            } else {
                unmatched_frees += 1;
            }
        }
    }
    let trace = b.finish();
    let name = device_type_name(chosen.device_type);
    if trace.allocs() == 0 {
        return Err(fail(format!(
            "no allocation on {name} device {} (only {unmatched_frees} frees of blocks \
             allocated before the profiling window); {}",
            chosen.device,
            nothing_to_replay(parsed.events, &devices)
        )));
    }
    if paired_by_size {
        notes.push(format!(
            "the memory events have no Addr (the 2021 profiler format): each free was paired \
             with the most recent live allocation of its size, so peaks are exact but \
             lifetimes are approximate and addresses unknown ({unmatched_frees} frees had no \
             live allocation of their size and count as allocated before the window)"
        ));
    }
    let totals: Vec<(i64, i64)> = events
        .iter()
        .filter_map(|e| Some((e.total_allocated?, e.total_reserved?)))
        .collect();
    let recorded = if totals.len() == events.len() && !events.is_empty() {
        let nonneg = |v: i64| u64::try_from(v).unwrap_or(0);
        let r = Recorded {
            peak_allocated: totals.iter().map(|t| nonneg(t.0)).max().unwrap_or(0),
            peak_reserved: totals.iter().map(|t| nonneg(t.1)).max().unwrap_or(0),
            allocated_at_start: nonneg(totals[0].0.saturating_sub(events[0].bytes)),
        };
        notes.push(format!(
            "PyTorch recorded on this device: peak allocated {} bytes, peak reserved {} bytes; \
             {} bytes were allocated when the window began (blocks the trace never shows \
             allocated, not in the replay)",
            r.peak_allocated, r.peak_reserved, r.allocated_at_start
        ));
        Some(r)
    } else {
        notes.push(
            "the memory events carry no running totals (Total Allocated / Total Reserved): the \
             bytes allocated before the window and the bytes PyTorch reserved cannot be \
             derived; peaks here count only the window's allocations"
                .to_owned(),
        );
        None
    };
    let unfinished = events.iter().filter(|e| e.finished == Some(false)).count();
    if unfinished > 0 {
        notes.push(format!(
            "{unfinished} of {} events say finished: false (ROCm); they are read like the \
             others (the flag does not mark an incomplete event)",
            events.len()
        ));
    }
    Ok(Kineto {
        trace,
        device_type: chosen.device_type,
        device: chosen.device,
        devices,
        unmatched_frees,
        paired_by_size,
        recorded,
        notes,
    })
}

/// The error for a trace with no allocation on any GPU: what it holds, and the call that
/// records what memplan needs.
fn nothing_to_replay(events: usize, devices: &[DeviceEvents]) -> String {
    let holds = if devices.is_empty() {
        "no [memory] events".to_owned()
    } else {
        let mut by_type: BTreeMap<i64, usize> = BTreeMap::new();
        for d in devices {
            *by_type.entry(d.device_type).or_default() += d.allocs + d.frees;
        }
        let list: Vec<String> = by_type
            .iter()
            .map(|(t, n)| format!("{n} on {} (Device Type {t})", device_type_name(*t)))
            .collect();
        format!("[memory] events: {}", list.join(", "))
    };
    format!(
        "a profiler trace of {events} events with no allocation on a GPU device; {holds}: \
         nothing to replay. Record GPU memory with torch.profiler.profile(activities=\
         [ProfilerActivity.CPU, ProfilerActivity.CUDA], profile_memory=True) and \
         prof.export_chrome_trace(\"trace.json\")"
    )
}

pub mod flat;
#[cfg(test)]
mod tests;
