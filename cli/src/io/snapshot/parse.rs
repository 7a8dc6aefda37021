//! From a snapshot pickle's decoded value to the format-independent pieces of the model:
//! every device's segments and history, call sites interned, the format generation.
//!
//! Required fields with a wrong type or a value out of range are errors naming their path
//! (`segments[3].blocks[2].size`, `device_traces[0][5].addr`); optional descriptive fields
//! (`frames` entries) that are malformed are skipped. Every address range is checked for
//! `u64` overflow. Stream numbers are renumbered: the default stream (0) stays 0, the others
//! (raw `cudaStream_t` values) become 1, 2, … in order of first appearance, as PyTorch's
//! viewer does, so they fit the trace's 32-bit stream.

use std::collections::HashMap;

use serde_pickle::{HashableValue, Value};

use super::model::{Action, Block, BlockState, Generation, HistoryEvent, Segment};

/// What a snapshot file holds, for every device.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The format generation.
    pub generation: Option<Generation>,
    /// `(device, segment)` at dump time, in file order.
    pub segments: Vec<(u32, Segment)>,
    /// `device_traces[d]`, with the original index of each entry.
    pub traces: Vec<Vec<HistoryEvent>>,
    /// `external_annotations` (torch 2.8+): `(device, time_us, text)`.
    pub annotations: Vec<(u32, Option<i64>, String)>,
    /// Interned call sites.
    pub sites: Vec<String>,
    /// What parsing had to leave out (blocks outside their segment).
    pub warnings: Vec<String>,
}

/// Builds [`Parsed`] from the decoded pickle.
///
/// # Errors
/// A one-line message naming the path at fault.
pub fn parse(root: &Value) -> Result<Parsed, String> {
    let mut p = Parser::default();
    let mut out = Parsed::default();
    let segments = match root {
        Value::List(_) | Value::Tuple(_) => {
            out.generation = Some(Generation::SegmentList);
            list(root).unwrap_or(&[])
        }
        Value::Dict(_) => {
            let segments = field(root, "segments");
            let traces = field(root, "device_traces");
            if segments.is_none() && traces.is_none() {
                return Err(
                    "a dict without segments or device_traces: not a memory snapshot".to_owned(),
                );
            }
            match traces {
                None | Some(Value::None) => {}
                Some(t) => {
                    let t = list(t).ok_or("device_traces: not a list")?;
                    for (d, events) in t.iter().enumerate() {
                        let events = list(events).ok_or_else(|| {
                            format!("device_traces[{d}]: not a list, a {}", kind(events))
                        })?;
                        let mut parsed = Vec::with_capacity(events.len());
                        for (i, e) in events.iter().enumerate() {
                            parsed.push(p.event(e, &|| format!("device_traces[{d}][{i}]"))?);
                        }
                        out.traces.push(parsed);
                    }
                }
            }
            if let Some(a) = field(root, "external_annotations") {
                out.annotations = p.annotations(a)?;
            }
            match segments {
                None | Some(Value::None) => &[][..],
                Some(s) => list(s).ok_or("segments: not a list")?,
            }
        }
        other => {
            return Err(format!(
                "a pickled {}, not a memory snapshot (a dict with segments and device_traces, \
                 or a list of segments)",
                kind(other)
            ));
        }
    };
    for (i, s) in segments.iter().enumerate() {
        let seg = p.segment(s, i, &mut out.warnings)?;
        out.segments.push(seg);
    }
    if out.generation.is_none() {
        out.generation = Some(if p.legacy_blocks {
            Generation::Torch20
        } else if p.torch28 || field(root, "external_annotations").is_some() {
            Generation::Torch28
        } else {
            Generation::Torch21
        });
    }
    out.sites = p.sites;
    Ok(out)
}

/// Interning state while parsing.
#[derive(Default)]
struct Parser {
    sites: Vec<String>,
    site_ids: HashMap<String, usize>,
    streams: HashMap<i128, u32>,
    /// A block had torch 2.0's `history` or no `address`.
    legacy_blocks: bool,
    /// An entry had a torch 2.8 field (`compile_context`, `user_metadata`).
    torch28: bool,
}

impl Parser {
    fn segment(
        &mut self,
        v: &Value,
        i: usize,
        warnings: &mut Vec<String>,
    ) -> Result<(u32, Segment), String> {
        let path = || format!("segments[{i}]");
        if !matches!(v, Value::Dict(_)) {
            return Err(format!("{}: not a dict, a {}", path(), kind(v)));
        }
        let address = req_u64(v, "address", &path)?;
        let total_size = req_u64(v, "total_size", &path)?;
        let end = address
            .checked_add(total_size)
            .ok_or_else(|| format!("{}: address + total_size overflows 64 bits", path()))?;
        let device = match opt_u64(v, "device", &path)? {
            None => 0,
            Some(d) => u32::try_from(d)
                .map_err(|_| format!("{}.device: {d} is not a device index", path()))?,
        };
        let stream = self.stream(v, &path)?;
        let is_expandable = match field(v, "is_expandable") {
            None | Some(Value::None) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "{}.is_expandable: not a bool, a {}",
                    path(),
                    kind(other)
                ));
            }
        };
        self.torch28 |= has_torch28_fields(v);
        let blocks = match field(v, "blocks") {
            None | Some(Value::None) => &[][..],
            Some(b) => list(b).ok_or_else(|| format!("{}.blocks: not a list", path()))?,
        };
        let mut out = Vec::with_capacity(blocks.len());
        let mut running = address;
        for (j, b) in blocks.iter().enumerate() {
            let bpath = || format!("segments[{i}].blocks[{j}]");
            if !matches!(b, Value::Dict(_)) {
                return Err(format!("{}: not a dict, a {}", bpath(), kind(b)));
            }
            let size = req_u64(b, "size", &bpath)?;
            let state = match field(b, "state") {
                Some(Value::String(s)) => match s.as_str() {
                    "active_allocated" => BlockState::ActiveAllocated,
                    "active_pending_free" => BlockState::ActivePendingFree,
                    "inactive" => BlockState::Inactive,
                    other => return Err(format!("{}.state: unknown state {other:?}", bpath())),
                },
                Some(other) => {
                    return Err(format!(
                        "{}.state: not a string, a {}",
                        bpath(),
                        kind(other)
                    ));
                }
                None => return Err(format!("{}: no state", bpath())),
            };
            // torch 2.0: no address (the sizes before it give it), frames and the requested
            // size in `history[0]`.
            let history0 = match field(b, "history") {
                Some(h) => {
                    self.legacy_blocks = true;
                    list(h).and_then(|h| h.first())
                }
                None => None,
            };
            let block_address = match opt_u64(b, "address", &bpath)? {
                Some(a) => a,
                None => {
                    self.legacy_blocks = true;
                    running
                }
            };
            let block_end = block_address
                .checked_add(size)
                .ok_or_else(|| format!("{}: address + size overflows 64 bits", bpath()))?;
            running = block_end;
            let requested_size = match opt_u64(b, "requested_size", &bpath)? {
                Some(r) => r,
                None => match history0 {
                    Some(h) => opt_u64(h, "real_size", &|| format!("{}.history[0]", bpath()))?
                        .unwrap_or(size),
                    None => size,
                },
            };
            let frames = field(b, "frames").or_else(|| history0.and_then(|h| field(h, "frames")));
            let site = frames.and_then(|f| self.site(f));
            if block_address < address || block_end > end {
                warnings.push(format!(
                    "{}: block [{block_address:#x}, {block_end:#x}) lies outside its segment \
                     [{address:#x}, {end:#x}); left out",
                    bpath()
                ));
                continue;
            }
            out.push(Block {
                address: block_address,
                size,
                requested_size,
                state,
                site,
            });
        }
        out.sort_by_key(|b| b.address);
        Ok((
            device,
            Segment {
                address,
                total_size,
                stream: u64::from(stream),
                is_expandable,
                blocks: out,
            },
        ))
    }

    fn event(&mut self, e: &Value, path: &dyn Fn() -> String) -> Result<HistoryEvent, String> {
        if !matches!(e, Value::Dict(_)) {
            return Err(format!("{}: not a dict, a {}", path(), kind(e)));
        }
        let action = match field(e, "action") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(format!(
                    "{}.action: not a string, a {}",
                    path(),
                    kind(other)
                ));
            }
            None => return Err(format!("{}: no action", path())),
        };
        let (action, ranged) = match action {
            "alloc" => (Action::Alloc, true),
            "free_requested" => (Action::FreeRequested, true),
            "free_completed" => (Action::FreeCompleted, true),
            "segment_alloc" => (Action::SegmentAlloc, true),
            "segment_free" => (Action::SegmentFree, true),
            "segment_map" => (Action::SegmentMap, true),
            "segment_unmap" => (Action::SegmentUnmap, true),
            "snapshot" => (Action::Snapshot, false),
            "oom" => (Action::Oom, false),
            "user_defined" => (Action::Annotation, false),
            other => return Err(format!("{}: unknown action {other:?}", path())),
        };
        let (addr, size) = if ranged {
            let addr = req_u64(e, "addr", path)?;
            let size = req_u64(e, "size", path)?;
            addr.checked_add(size)
                .ok_or_else(|| format!("{}: addr + size overflows 64 bits", path()))?;
            (addr, size)
        } else {
            (
                opt_u64(e, "addr", path)?.unwrap_or(0),
                opt_u64(e, "size", path)?.unwrap_or(0),
            )
        };
        let stream = self.stream(e, path)?;
        let time_us = match field(e, "time_us") {
            None | Some(Value::None) => None,
            Some(v) => Some(
                int(v)
                    .and_then(|t| i64::try_from(t).ok())
                    .ok_or_else(|| format!("{}.time_us: not a 64-bit integer", path()))?,
            ),
        };
        self.torch28 |= has_torch28_fields(e);
        let site = field(e, "frames").and_then(|f| self.site(f));
        let note = match action {
            Action::Oom => opt_u64(e, "device_free", path)?.map(|f| format!("device_free {f}")),
            Action::Annotation => ["name", "user_metadata", "stage"]
                .iter()
                .filter_map(|k| match field(e, k) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .reduce(|a, b| format!("{a} {b}")),
            _ => None,
        };
        Ok(HistoryEvent {
            action,
            addr,
            size,
            stream,
            time_us,
            site,
            note,
        })
    }

    fn annotations(&mut self, a: &Value) -> Result<Vec<(u32, Option<i64>, String)>, String> {
        let items = match a {
            Value::None => return Ok(Vec::new()),
            _ => list(a).ok_or("external_annotations: not a list")?,
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let path = || format!("external_annotations[{i}]");
            let device = opt_u64(v, "device", &path)?.unwrap_or(0);
            let device = u32::try_from(device)
                .map_err(|_| format!("{}.device: {device} is not a device index", path()))?;
            let time = match field(v, "time_us") {
                None | Some(Value::None) => None,
                Some(t) => Some(
                    int(t)
                        .and_then(|t| i64::try_from(t).ok())
                        .ok_or_else(|| format!("{}.time_us: not a 64-bit integer", path()))?,
                ),
            };
            let text: Vec<&str> = ["stage", "name"]
                .iter()
                .filter_map(|k| match field(v, k) {
                    Some(Value::String(s)) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            if !text.is_empty() {
                out.push((device, time, text.join(" ")));
            }
        }
        Ok(out)
    }

    /// The entry's stream, renumbered (see the module docs).
    fn stream(&mut self, v: &Value, path: &dyn Fn() -> String) -> Result<u32, String> {
        let raw = match field(v, "stream") {
            None | Some(Value::None) => return Ok(0),
            Some(s) => int(s).ok_or_else(|| format!("{}.stream: not an integer", path()))?,
        };
        if raw == 0 {
            return Ok(0);
        }
        let next = u32::try_from(self.streams.len() + 1)
            .map_err(|_| format!("{}.stream: too many streams", path()))?;
        Ok(*self.streams.entry(raw).or_insert(next))
    }

    /// The call site of a frame list: its innermost frame of user code, interned.
    fn site(&mut self, frames: &Value) -> Option<usize> {
        let frames = list(frames)?;
        let user = frames.iter().find_map(|f| {
            let Some(Value::String(file)) = field(f, "filename") else {
                return None;
            };
            if !is_user_code(file) {
                return None;
            }
            let line = field(f, "line").and_then(int).unwrap_or(0);
            let name = match field(f, "name") {
                Some(Value::String(n)) => n.as_str(),
                _ => "?",
            };
            Some(format!("{file}:{line} in {name}"))
        });
        // The backward pass runs on autograd's own thread, whose stacks hold no Python frame:
        // name the autograd node instead.
        // Failing that, the ATen operator that allocated.
        let names = || {
            frames.iter().filter_map(|f| match field(f, "name") {
                Some(Value::String(n)) => Some(n.as_str()),
                _ => None,
            })
        };
        let frame = user
            .or_else(|| names().find_map(autograd_node))
            .or_else(|| {
                // The outermost operator is the one the program called (`sum`, not the
                // `empty_strided` it allocates through).
                let op = names().filter_map(aten_op).next_back()?;
                let backward = names().any(|n| n.contains("torch::autograd::Engine::"));
                Some(format!(
                    "{op} ({})",
                    if backward {
                        "backward pass"
                    } else {
                        "no Python frame"
                    }
                ))
            })?;
        if let Some(&id) = self.site_ids.get(&frame) {
            return Some(id);
        }
        let id = self.sites.len();
        self.sites.push(frame.clone());
        self.site_ids.insert(frame, id);
        Some(id)
    }
}

/// `backward of MeanBackward0 (autograd)` for a frame of a generated autograd node
/// (`torch::autograd::generated::MeanBackward0::apply(...)`).
pub fn autograd_node(name: &str) -> Option<String> {
    let rest = name.split("torch::autograd::generated::").nth(1)?;
    let node: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!node.is_empty() && rest[node.len()..].starts_with("::apply"))
        .then(|| format!("autograd {node} (backward pass)"))
}

/// `aten::sum_dim_IntList` for a frame of an ATen operator's entry point
/// (`at::_ops::sum_dim_IntList::call(...)`).
pub fn aten_op(name: &str) -> Option<String> {
    let rest = name.strip_prefix("at::_ops::")?;
    let op: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!op.is_empty() && rest[op.len()..].starts_with("::call(")).then(|| format!("aten::{op}"))
}

/// True for a frame of the user's Python code: not C/C++ (`??`, `.cpp`, `.h`, `.cc`, `.cu`,
/// …), not `<frozen …>`, not torch's own Python files (a `torch` directory in the path, as in
/// `site-packages/torch/nn/modules/module.py`).
pub fn is_user_code(file: &str) -> bool {
    if file.is_empty() || file == "??" || file.starts_with("<frozen") {
        return false;
    }
    let lower = file.to_ascii_lowercase();
    const NATIVE: [&str; 8] = [".cpp", ".h", ".cc", ".cu", ".cuh", ".hpp", ".cxx", ".c"];
    if NATIVE.iter().any(|ext| lower.ends_with(ext)) {
        return false;
    }
    let unified = lower.replace('\\', "/");
    !(unified.contains("/torch/") || unified.starts_with("torch/"))
}

fn has_torch28_fields(v: &Value) -> bool {
    field(v, "compile_context").is_some() || field(v, "user_metadata").is_some()
}

/// `v[key]` as a non-negative integer that fits 64 bits, when present (and not `None`).
fn opt_u64(v: &Value, key: &str, path: &dyn Fn() -> String) -> Result<Option<u64>, String> {
    match field(v, key) {
        None | Some(Value::None) => Ok(None),
        Some(x) => match int(x) {
            Some(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| format!("{}.{key}: {n} is not a non-negative 64-bit integer", path())),
            None => Err(format!("{}.{key}: not an integer, a {}", path(), kind(x))),
        },
    }
}

/// [`opt_u64`], required.
fn req_u64(v: &Value, key: &str, path: &dyn Fn() -> String) -> Result<u64, String> {
    opt_u64(v, key, path)?.ok_or_else(|| format!("{}: no {key}", path()))
}

/// `value[key]` for a dict with string keys.
pub fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Dict(d) => d.get(&HashableValue::String(key.to_owned())),
        _ => None,
    }
}

/// The items of a list or tuple.
pub fn list(value: &Value) -> Option<&[Value]> {
    match value {
        Value::List(v) | Value::Tuple(v) => Some(v),
        _ => None,
    }
}

/// An integer's value (`None` for anything else, and for integers beyond 128 bits).
pub fn int(value: &Value) -> Option<i128> {
    match value {
        Value::I64(v) => Some(i128::from(*v)),
        Value::Int(v) => v.to_string().parse().ok(),
        _ => None,
    }
}

/// What kind of value `v` is, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::I64(_) | Value::Int(_) => "integer",
        Value::F64(_) => "float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Set(_) | Value::FrozenSet(_) => "set",
        Value::Dict(_) => "dict",
    }
}
