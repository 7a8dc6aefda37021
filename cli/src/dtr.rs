//! Reading DTR operator logs (`uwsampl/dtr-prototype`, `simrd`) as allocation traces.
//!
//! A log is one JSON object per line, each with an `"INSTRUCTION"` key; the format and its
//! semantics are described in `shared/docs/dtr-log-format.md`. This reader follows the
//! `simrd` parser and its unbudgeted baseline replay, at the level of *storages* (physical
//! buffers), each given a `u64` id in creation order:
//!
//! * Lines before the first `ANNOTATE START` are discarded (but must still be JSON).
//!   `START` becomes an iteration start followed by the phase `forward`, `BACKWARD` the phase
//!   `backward`, any other annotation an annotation marker.
//! * `CONSTANT n` + `MEMORY n m`: a new storage of `m` bytes with one reference.
//! * `CALL` + `MEMORY`/`ALIAS` per result: a result with `ALIAS -1` gets a new storage of its
//!   `MEMORY` bytes; a result with `ALIAS k` is a view: it shares the storage of `ARGS[k]`
//!   (transitively the root storage) and adds one reference to it.
//! * `MUTATE`: each mutated argument gets a *new* storage of the full size of the argument's
//!   storage (simrd's copy-on-write model), allocated first; then the old storage loses the one
//!   reference held through that name, which is re-pointed to the new storage.
//! * `COPY src dst`: `dst` names the same tensor, one more reference to its storage.
//! * `COPY_FROM src dst`: `dst` is re-pointed to `src`'s tensor (one more reference there), then
//!   the storage `dst` named before loses one reference.
//! * `RELEASE n`: the storage `n` names loses one reference; at zero it is freed. Names stay
//!   bound after a release. Constants are freed like anything else (as in the baseline replay).
//! * Storages still referenced at the end stay live (never freed).
//!
//! All allocations are on stream 0; zero-byte storages are allowed (the logs have them). With
//! these rules the peak of requested bytes equals simrd's `baseline_memory` on the anchor logs.
//!
//! Stricter than simrd: a `RELEASE` of a name that was never bound is an error (simrd ignores
//! it; the anchor logs have none), and so is any use of a tensor whose storage was already
//! freed, or a release of one with no references left. Every error names the file and the
//! 1-based line.

use std::collections::HashMap;

use memplan_core::remat::Output;
use memplan_core::remat::sim::{Command, GraphOp, GraphTensor, Program};
use memplan_core::trace::{Marker, Trace, TraceBuilder};
use serde_json::{Map, Value};

use crate::input::InputError;

/// True when `data` looks like a DTR log: its first non-blank line is a JSON object with a
/// string `"INSTRUCTION"` field. Only that line is parsed.
pub fn is_dtr(data: &[u8]) -> bool {
    let Some(first) = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
    else {
        return false;
    };
    first.starts_with(b"{")
        && serde_json::from_slice::<Map<String, Value>>(first)
            .is_ok_and(|o| o.get("INSTRUCTION").is_some_and(Value::is_string))
}

/// One physical buffer.
struct Storage {
    size: u64,
    /// References held through names (the root and its views, their copies).
    refs: u64,
}

/// Reader state: names → storage ids, the storages, the trace so far.
struct Reader<'a> {
    file: &'a str,
    names: HashMap<String, usize>,
    storages: Vec<Storage>,
    builder: TraceBuilder,
}

type Obj = Map<String, Value>;

impl Reader<'_> {
    fn err(&self, line: usize, message: String) -> InputError {
        InputError {
            file: self.file.to_owned(),
            line: Some(line as u64),
            message,
            not_a_problem: false,
        }
    }

    fn str_field<'o>(&self, line: usize, o: &'o Obj, key: &str) -> Result<&'o str, InputError> {
        match o.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.err(line, format!("`{key}` is not a string: {other}"))),
            None => Err(self.err(line, format!("missing `{key}`"))),
        }
    }

    /// An integer given as a JSON string (as the logs do) or a JSON number.
    fn int_field(&self, line: usize, o: &Obj, key: &str) -> Result<i64, InputError> {
        let v = o
            .get(key)
            .ok_or_else(|| self.err(line, format!("missing `{key}`")))?;
        int_value(v).ok_or_else(|| self.err(line, format!("`{key}` is not an integer: {v}")))
    }

    fn names_field<'o>(
        &self,
        line: usize,
        o: &'o Obj,
        key: &str,
    ) -> Result<Vec<&'o str>, InputError> {
        let bad = || self.err(line, format!("`{key}` is not a list of names"));
        match o.get(key) {
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
            Some(_) => Err(bad()),
            None => Err(self.err(line, format!("missing `{key}`"))),
        }
    }

    /// The live storage `name` refers to.
    fn lookup(&self, line: usize, name: &str) -> Result<usize, InputError> {
        let &s = self
            .names
            .get(name)
            .ok_or_else(|| self.err(line, format!("reference to unknown tensor {name:?}")))?;
        if self.storages[s].refs == 0 {
            return Err(self.err(
                line,
                format!("reference to tensor {name:?}, whose storage was already freed"),
            ));
        }
        Ok(s)
    }

    fn alloc(&mut self, line: usize, size: u64) -> Result<usize, InputError> {
        let id = self.storages.len();
        self.builder
            .alloc(id as u64, size, 0)
            .map_err(|e| self.err(line, e.to_string()))?;
        self.storages.push(Storage { size, refs: 1 });
        Ok(id)
    }

    /// Drops one reference to storage `s` (named `name` in messages); frees it at zero.
    fn release(&mut self, line: usize, s: usize, name: &str) -> Result<(), InputError> {
        if self.storages[s].refs == 0 {
            return Err(self.err(
                line,
                format!("RELEASE of {name:?}: its storage has no references left"),
            ));
        }
        self.storages[s].refs -= 1;
        if self.storages[s].refs == 0 {
            self.builder
                .free(s as u64)
                .map_err(|e| self.err(line, e.to_string()))?;
        }
        Ok(())
    }
}

fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Reads the DTR operator log in `data` (see the module docs for the semantics) into a trace
/// of storage allocations on stream 0, reporting errors against `file`.
///
/// # Errors
/// A line that is not a JSON object, an unknown `INSTRUCTION`, a missing or mistyped field, a
/// `CONSTANT` or `CALL` without the `MEMORY`/`ALIAS` lines it needs (or a stray one), a
/// reference to or `RELEASE` of an unknown tensor or of one whose storage is already freed, or
/// no `ANNOTATE START` line: the first such fault, with its 1-based line.
pub fn read(file: &str, data: &[u8]) -> Result<Trace, InputError> {
    let mut r = Reader {
        file,
        names: HashMap::new(),
        storages: Vec::new(),
        builder: TraceBuilder::new().allow_zero_size(true),
    };
    let (lines, start) = json_lines(&r, data)?;
    r.builder.marker(Marker::IterationStart);
    r.builder.marker(Marker::Phase("forward".to_owned()));

    let mut i = start + 1;
    while i < lines.len() {
        let (line, o) = &lines[i];
        let line = *line;
        i += 1;
        let kind = r.str_field(line, o, "INSTRUCTION")?;
        match kind {
            "ANNOTATE" => match r.str_field(line, o, "ANNOTATION")? {
                "BACKWARD" => r.builder.marker(Marker::Phase("backward".to_owned())),
                other => r.builder.marker(Marker::Annotation(other.to_owned())),
            },
            "CONSTANT" => {
                let name = r.str_field(line, o, "NAME")?;
                let Some((mline, m)) = lines.get(i) else {
                    return Err(r.err(line, format!("CONSTANT {name:?} without its MEMORY line")));
                };
                i += 1;
                let size = memory_line(&r, *mline, m, name)?;
                let s = r.alloc(*mline, size)?;
                r.names.insert(name.to_owned(), s);
            }
            "CALL" => {
                let args: Vec<usize> = r
                    .names_field(line, o, "ARGS")?
                    .into_iter()
                    .map(|a| r.lookup(line, a))
                    .collect::<Result<_, _>>()?;
                let results = r.names_field(line, o, "RESULT")?;
                if results.is_empty() {
                    return Err(r.err(line, "CALL with no RESULT".to_owned()));
                }
                for name in results {
                    let (Some((mline, m)), Some((aline, a))) = (lines.get(i), lines.get(i + 1))
                    else {
                        return Err(r.err(
                            line,
                            format!("CALL result {name:?} without its MEMORY and ALIAS lines"),
                        ));
                    };
                    i += 2;
                    let size = memory_line(&r, *mline, m, name)?;
                    let alias = alias_line(&r, *aline, a, name)?;
                    let s = if alias == -1 {
                        r.alloc(*mline, size)?
                    } else {
                        let s = usize::try_from(alias)
                            .ok()
                            .and_then(|k| args.get(k).copied())
                            .ok_or_else(|| {
                                r.err(
                                    *aline,
                                    format!(
                                        "ALIAS {alias} of {name:?}: the CALL has {} arguments",
                                        args.len()
                                    ),
                                )
                            })?;
                        r.storages[s].refs += 1;
                        s
                    };
                    r.names.insert(name.to_owned(), s);
                }
            }
            "MUTATE" => {
                let arg_names = r.names_field(line, o, "ARGS")?;
                let args: Vec<usize> = arg_names
                    .iter()
                    .map(|a| r.lookup(line, a))
                    .collect::<Result<_, _>>()?;
                let bad = || {
                    r.err(
                        line,
                        "`MUTATE` is not a list of argument indices".to_owned(),
                    )
                };
                let indices: Vec<usize> = match o.get("MUTATE") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| {
                            int_value(v)
                                .and_then(|k| usize::try_from(k).ok())
                                .filter(|&k| k < args.len())
                                .ok_or_else(bad)
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(bad()),
                };
                // The op runs: one new full-size storage per mutated argument...
                let mut fresh = Vec::with_capacity(indices.len());
                for &k in &indices {
                    fresh.push((k, r.alloc(line, r.storages[args[k]].size)?));
                }
                // ...then each mutated name is re-pointed and its old storage released.
                for (k, s) in fresh {
                    let name = arg_names[k];
                    let old = r.names.insert(name.to_owned(), s).unwrap_or(args[k]);
                    r.release(line, old, name)?;
                }
            }
            "COPY" => {
                let src = r.str_field(line, o, "SRC")?;
                let dst = r.str_field(line, o, "DST")?;
                let s = r.lookup(line, src)?;
                r.storages[s].refs += 1;
                r.names.insert(dst.to_owned(), s);
            }
            "COPY_FROM" => {
                let src = r.str_field(line, o, "SRC")?;
                let dst = r.str_field(line, o, "DST")?;
                let old = r.lookup(line, dst)?;
                let s = r.lookup(line, src)?;
                r.storages[s].refs += 1;
                r.names.insert(dst.to_owned(), s);
                r.release(line, old, dst)?;
            }
            "RELEASE" => {
                let name = r.str_field(line, o, "NAME")?;
                let &s = r
                    .names
                    .get(name)
                    .ok_or_else(|| r.err(line, format!("RELEASE of unknown tensor {name:?}")))?;
                r.release(line, s, name)?;
            }
            "MEMORY" | "ALIAS" => {
                return Err(r.err(
                    line,
                    format!("stray {kind} line (only after CONSTANT, or in a CALL's result block)"),
                ));
            }
            other => {
                return Err(r.err(line, format!("unknown INSTRUCTION {other:?}")));
            }
        }
    }
    Ok(r.builder.finish())
}

/// Reads the DTR operator log in `data` into `simrd`'s graph and schedule (the format and
/// the rules are in `shared/docs/dtr-log-format.md` §2): one op per `CONSTANT` (cost 0, then
/// pinned), `CALL` and `MUTATE` (one full-size copy-on-write output per mutated argument);
/// `COPY` is a `Get`, `RELEASE` a `Release`, `COPY_FROM` a `Release` then a `Get`; at the end
/// every name still referenced is pinned, in name-insertion order.
///
/// # Errors
/// As [`read`]: bad JSON, unknown `INSTRUCTION`, missing or mistyped fields, a `MEMORY` or
/// `ALIAS` line out of place (e.g. a `MEMORY` without its `CONSTANT`), a reference to or
/// `RELEASE` of an unknown name (simrd ignores the latter; these logs have none): the first
/// such fault, with its 1-based line.
pub fn read_program(file: &str, data: &[u8]) -> Result<Program, InputError> {
    let r = Reader {
        file,
        names: HashMap::new(),
        storages: Vec::new(),
        builder: TraceBuilder::new(),
    };
    let (lines, start) = json_lines(&r, data)?;
    let mut p = Program::default();
    // name -> (graph tensor, insertion position); insertion order kept in `order`.
    let mut names: HashMap<String, GraphTensor> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    // Per op, per output: parse-time references and storage size.
    let mut pref: Vec<Vec<i64>> = Vec::new();
    let mut ssize: Vec<Vec<u64>> = Vec::new();
    let bind = |names: &mut HashMap<String, GraphTensor>,
                order: &mut Vec<String>,
                n: &str,
                t: GraphTensor| {
        if names.insert(n.to_owned(), t).is_none() {
            order.push(n.to_owned());
        }
    };
    let lookup = |names: &HashMap<String, GraphTensor>, line: usize, n: &str| {
        names
            .get(n)
            .copied()
            .ok_or_else(|| r.err(line, format!("reference to unknown tensor {n:?}")))
    };
    let mut i = start + 1;
    while i < lines.len() {
        let (line, o) = &lines[i];
        let line = *line;
        i += 1;
        let kind = r.str_field(line, o, "INSTRUCTION")?;
        match kind {
            "ANNOTATE" => {
                r.str_field(line, o, "ANNOTATION")?;
            }
            "CONSTANT" => {
                let name = r.str_field(line, o, "NAME")?;
                let Some((mline, m)) = lines.get(i) else {
                    return Err(r.err(line, format!("CONSTANT {name:?} without its MEMORY line")));
                };
                i += 1;
                let size = memory_line(&r, *mline, m, name)?;
                let op = p.ops.len() as u32;
                p.ops.push(GraphOp {
                    cost: 0,
                    args: Vec::new(),
                    outputs: vec![Output::Fresh(size)],
                });
                pref.push(vec![1]);
                ssize.push(vec![size]);
                let t = GraphTensor { op, index: 0 };
                p.schedule.push(Command::Compute(op));
                p.schedule.push(Command::Get {
                    tensor: t,
                    pin: true,
                });
                bind(&mut names, &mut order, name, t);
            }
            "CALL" => {
                let args: Vec<GraphTensor> = r
                    .names_field(line, o, "ARGS")?
                    .into_iter()
                    .map(|a| lookup(&names, line, a))
                    .collect::<Result<_, _>>()?;
                let results = r.names_field(line, o, "RESULT")?;
                if results.is_empty() {
                    return Err(r.err(line, "CALL with no RESULT".to_owned()));
                }
                let cost = u64::try_from(r.int_field(line, o, "TIME")?)
                    .map_err(|_| r.err(line, "negative TIME".to_owned()))?;
                let op = p.ops.len() as u32;
                let mut outputs = Vec::with_capacity(results.len());
                let mut sizes = Vec::with_capacity(results.len());
                for (k, name) in results.iter().enumerate() {
                    let (Some((mline, m)), Some((aline, a))) = (lines.get(i), lines.get(i + 1))
                    else {
                        return Err(r.err(
                            line,
                            format!("CALL result {name:?} without its MEMORY and ALIAS lines"),
                        ));
                    };
                    i += 2;
                    let size = memory_line(&r, *mline, m, name)?;
                    let alias = alias_line(&r, *aline, a, name)?;
                    if alias == -1 {
                        outputs.push(Output::Fresh(size));
                        sizes.push(size);
                    } else {
                        let k2 = usize::try_from(alias)
                            .ok()
                            .filter(|&k2| k2 < args.len())
                            .ok_or_else(|| {
                                r.err(
                                    *aline,
                                    format!(
                                        "ALIAS {alias} of {name:?}: the CALL has {} arguments",
                                        args.len()
                                    ),
                                )
                            })?;
                        outputs.push(Output::Alias(k2));
                        let a = args[k2];
                        sizes.push(ssize[a.op as usize][a.index as usize]);
                    }
                    let _ = k;
                }
                p.ops.push(GraphOp {
                    cost,
                    args,
                    outputs,
                });
                pref.push(vec![1; results.len()]);
                ssize.push(sizes);
                p.schedule.push(Command::Compute(op));
                for (k, name) in results.iter().enumerate() {
                    bind(
                        &mut names,
                        &mut order,
                        name,
                        GraphTensor {
                            op,
                            index: k as u32,
                        },
                    );
                }
            }
            "MUTATE" => {
                let arg_names = r.names_field(line, o, "ARGS")?;
                let args: Vec<GraphTensor> = arg_names
                    .iter()
                    .map(|a| lookup(&names, line, a))
                    .collect::<Result<_, _>>()?;
                let bad = || {
                    r.err(
                        line,
                        "`MUTATE` is not a list of argument indices".to_owned(),
                    )
                };
                let indices: Vec<usize> = match o.get("MUTATE") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| {
                            int_value(v)
                                .and_then(|k| usize::try_from(k).ok())
                                .filter(|&k| k < args.len())
                                .ok_or_else(bad)
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(bad()),
                };
                let cost = u64::try_from(r.int_field(line, o, "TIME")?)
                    .map_err(|_| r.err(line, "negative TIME".to_owned()))?;
                let op = p.ops.len() as u32;
                let sizes: Vec<u64> = indices
                    .iter()
                    .map(|&k| ssize[args[k].op as usize][args[k].index as usize])
                    .collect();
                p.ops.push(GraphOp {
                    cost,
                    args: args.clone(),
                    outputs: sizes.iter().map(|&n| Output::Fresh(n)).collect(),
                });
                pref.push(vec![1; indices.len()]);
                ssize.push(sizes);
                p.schedule.push(Command::Compute(op));
                for (j, &k) in indices.iter().enumerate() {
                    let name = arg_names[k];
                    let old = lookup(&names, line, name)?;
                    bind(
                        &mut names,
                        &mut order,
                        name,
                        GraphTensor {
                            op,
                            index: j as u32,
                        },
                    );
                    pref[old.op as usize][old.index as usize] -= 1;
                    p.schedule.push(Command::Release(old));
                }
            }
            "COPY" => {
                let src = lookup(&names, line, r.str_field(line, o, "SRC")?)?;
                let dst = r.str_field(line, o, "DST")?;
                bind(&mut names, &mut order, dst, src);
                pref[src.op as usize][src.index as usize] += 1;
                p.schedule.push(Command::Get {
                    tensor: src,
                    pin: false,
                });
            }
            "COPY_FROM" => {
                let src = lookup(&names, line, r.str_field(line, o, "SRC")?)?;
                let dst_name = r.str_field(line, o, "DST")?;
                let old = lookup(&names, line, dst_name)?;
                bind(&mut names, &mut order, dst_name, src);
                pref[old.op as usize][old.index as usize] -= 1;
                pref[src.op as usize][src.index as usize] += 1;
                p.schedule.push(Command::Release(old));
                p.schedule.push(Command::Get {
                    tensor: src,
                    pin: false,
                });
            }
            "RELEASE" => {
                let name = r.str_field(line, o, "NAME")?;
                let t = names
                    .get(name)
                    .copied()
                    .ok_or_else(|| r.err(line, format!("RELEASE of unknown tensor {name:?}")))?;
                pref[t.op as usize][t.index as usize] -= 1;
                p.schedule.push(Command::Release(t));
            }
            "MEMORY" | "ALIAS" => {
                return Err(r.err(
                    line,
                    format!("stray {kind} line (only after CONSTANT, or in a CALL's result block)"),
                ));
            }
            other => {
                return Err(r.err(line, format!("unknown INSTRUCTION {other:?}")));
            }
        }
    }
    for n in &order {
        let t = names[n];
        if pref[t.op as usize][t.index as usize] > 0 {
            p.schedule.push(Command::Get {
                tensor: t,
                pin: true,
            });
        }
    }
    p.validate().map_err(|e| InputError {
        file: file.to_owned(),
        line: None,
        message: format!("schedule command {}: {}", e.command, e.message),
        not_a_problem: false,
    })?;
    Ok(p)
}

/// Every non-blank line of `data` as (1-based line, object), and the index of the first
/// `ANNOTATE START` among them.
fn json_lines(r: &Reader<'_>, data: &[u8]) -> Result<(Vec<(usize, Obj)>, usize), InputError> {
    let mut lines: Vec<(usize, Obj)> = Vec::new();
    for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            continue;
        }
        let obj = serde_json::from_slice::<Obj>(raw)
            .map_err(|e| r.err(n + 1, format!("not a JSON object: {e}")))?;
        lines.push((n + 1, obj));
    }
    let is_start = |o: &Obj| {
        o.get("INSTRUCTION").and_then(Value::as_str) == Some("ANNOTATE")
            && o.get("ANNOTATION").and_then(Value::as_str) == Some("START")
    };
    let Some(start) = lines.iter().position(|(_, o)| is_start(o)) else {
        return Err(InputError {
            file: r.file.to_owned(),
            line: None,
            message: "no `ANNOTATE START` line: not a DTR log, or an empty one".to_owned(),
            not_a_problem: false,
        });
    };
    Ok((lines, start))
}

/// The size on a `MEMORY` line that must belong to `name`.
fn memory_line(r: &Reader<'_>, line: usize, o: &Obj, name: &str) -> Result<u64, InputError> {
    expect(r, line, o, "MEMORY", name)?;
    let m = r.int_field(line, o, "MEMORY")?;
    u64::try_from(m).map_err(|_| r.err(line, format!("negative MEMORY {m}")))
}

/// The index on an `ALIAS` line that must belong to `name` (-1 or an argument index).
fn alias_line(r: &Reader<'_>, line: usize, o: &Obj, name: &str) -> Result<i64, InputError> {
    expect(r, line, o, "ALIAS", name)?;
    let a = r.int_field(line, o, "ALIAS")?;
    if a < -1 {
        return Err(r.err(line, format!("ALIAS {a} (must be -1 or an argument index)")));
    }
    Ok(a)
}

/// Checks that `o` is a `kind` line for `name`.
fn expect(r: &Reader<'_>, line: usize, o: &Obj, kind: &str, name: &str) -> Result<(), InputError> {
    let got = r.str_field(line, o, "INSTRUCTION")?;
    let got_name = o.get("NAME").and_then(Value::as_str);
    if got != kind || got_name != Some(name) {
        return Err(r.err(
            line,
            format!(
                "expected the {kind} line of {name:?}, found {got}{}",
                got_name.map_or(String::new(), |n| format!(" of {n:?}"))
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use memplan_core::trace::Event;

    fn log(lines: &[&str]) -> Vec<u8> {
        let mut s = String::from("{\"ANNOTATION\":\"START\",\"INSTRUCTION\":\"ANNOTATE\"}\n");
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s.into_bytes()
    }

    const C1: &str = r#"{"INSTRUCTION":"CONSTANT","NAME":"w"}"#;
    const M1: &str = r#"{"INSTRUCTION":"MEMORY","MEMORY":"100","NAME":"w"}"#;

    fn mem_events(t: &Trace) -> Vec<Event> {
        t.events()
            .iter()
            .filter(|e| !matches!(e, Event::Marker(_)))
            .cloned()
            .collect()
    }

    fn a(id: u64, size: u64) -> Event {
        Event::Alloc {
            id,
            size,
            stream: 0,
        }
    }

    fn f(id: u64) -> Event {
        Event::Free { id }
    }

    #[test]
    fn sniff() {
        assert!(is_dtr(&log(&[])));
        assert!(is_dtr(
            b"\n  {\"INSTRUCTION\":\"RELEASE\",\"NAME\":\"x\"}\n"
        ));
        assert!(!is_dtr(b"{\"traceEvents\": []}"));
        assert!(!is_dtr(b"{\n\"INSTRUCTION\":\"X\"}"));
        assert!(!is_dtr(b"id,lower,upper,size\n"));
        assert!(!is_dtr(b""));
    }

    #[test]
    fn constant_is_freed_at_its_last_release() {
        let t = read(
            "c.log",
            &log(&[
                C1,
                M1,
                r#"{"DST":"w2","INSTRUCTION":"COPY","SRC":"w"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
                r#"{"INSTRUCTION":"CONSTANT","NAME":"k"}"#,
                r#"{"INSTRUCTION":"MEMORY","MEMORY":"8","NAME":"k"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w2"}"#,
            ]),
        )
        .unwrap();
        // k stays live at the end.
        assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 8), f(0)]);
        assert_eq!(
            &t.events()[..2],
            &[
                Event::Marker(Marker::IterationStart),
                Event::Marker(Marker::Phase("forward".to_owned()))
            ]
        );
        assert_eq!(t.peak_requested(), 108);
    }

    #[test]
    fn alias_and_copy_share_a_storage_until_the_last_release() {
        let text = log(&[
            C1,
            M1,
            // y = conv(w): fresh storage 1 (64 B); v = view(y) shares it; z: fresh 2 (0 B).
            r#"{"ARGS":["w","w"],"INSTRUCTION":"CALL","NAME":"conv","RESULT":["y"],"TIME":"5"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"y"}"#,
            r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"y"}"#,
            r#"{"ARGS":["w","y"],"INSTRUCTION":"CALL","NAME":"split","RESULT":["v","z"],"TIME":"1"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"v"}"#,
            r#"{"ALIAS":"1","INSTRUCTION":"ALIAS","NAME":"v"}"#,
            r#"{"INSTRUCTION":"MEMORY","MEMORY":"0","NAME":"z"}"#,
            r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"z"}"#,
            r#"{"DST":"v2","INSTRUCTION":"COPY","SRC":"v"}"#,
            r#"{"ANNOTATION":"BACKWARD","INSTRUCTION":"ANNOTATE"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"y"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"v"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"z"}"#,
            r#"{"INSTRUCTION":"RELEASE","NAME":"v2"}"#,
        ]);
        let t = read("a.log", &text).unwrap();
        assert_eq!(
            mem_events(&t),
            vec![a(0, 100), a(1, 64), a(2, 0), f(2), f(1)]
        );
        assert!(
            t.events()
                .contains(&Event::Marker(Marker::Phase("backward".to_owned())))
        );
        assert_eq!(t.peak_requested(), 164);
    }

    #[test]
    fn mutate_makes_a_new_full_size_storage() {
        let t = read(
            "m.log",
            &log(&[
                C1,
                M1,
                r#"{"DST":"u","INSTRUCTION":"COPY","SRC":"w"}"#,
                r#"{"ARGS":["w"],"INSTRUCTION":"CALL","NAME":"view","RESULT":["v"],"TIME":"1"}"#,
                r#"{"INSTRUCTION":"MEMORY","MEMORY":"40","NAME":"v"}"#,
                r#"{"ALIAS":"0","INSTRUCTION":"ALIAS","NAME":"v"}"#,
                // Mutating the view: a new 100-byte storage (the root's size) for `v`.
                r#"{"ARGS":["v"],"INSTRUCTION":"MUTATE","MUTATE":[0],"NAME":"relu_","TIME":"3"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"u"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"v"}"#,
            ]),
        )
        .unwrap();
        assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 100), f(0), f(1)]);
        assert_eq!(t.peak_requested(), 200);
    }

    #[test]
    fn copy_from_repoints_and_releases() {
        let t = read(
            "cf.log",
            &log(&[
                C1,
                M1,
                r#"{"INSTRUCTION":"CONSTANT","NAME":"k"}"#,
                r#"{"INSTRUCTION":"MEMORY","MEMORY":"8","NAME":"k"}"#,
                r#"{"DST":"k","INSTRUCTION":"COPY_FROM","SRC":"w"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
            ]),
        )
        .unwrap();
        // k's old storage is freed at COPY_FROM; w's storage is still held through k.
        assert_eq!(mem_events(&t), vec![a(0, 100), a(1, 8), f(1)]);
    }

    #[test]
    fn lines_before_start_are_discarded() {
        let text = format!("{C1}\n{M1}\n{}", String::from_utf8(log(&[])).unwrap());
        let t = read("s.log", text.as_bytes()).unwrap();
        assert_eq!(t.allocs(), 0);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: [(Vec<u8>, &str); 11] = [
            (log(&[C1, "{not json"]), "e:3: not a JSON object"),
            (log(&["[1,2]"]), "e:2: not a JSON object"),
            (
                log(&[r#"{"INSTRUCTION":"FROB"}"#]),
                "e:2: unknown INSTRUCTION \"FROB\"",
            ),
            (
                log(&[C1, M1, r#"{"INSTRUCTION":"RELEASE","NAME":"q"}"#]),
                "e:4: RELEASE of unknown tensor \"q\"",
            ),
            (
                log(&[C1, M1, r#"{"DST":"b","INSTRUCTION":"COPY","SRC":"q"}"#]),
                "e:4: reference to unknown tensor \"q\"",
            ),
            (
                log(&[
                    r#"{"ARGS":["q"],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#,
                ]),
                "e:2: reference to unknown tensor \"q\"",
            ),
            (
                log(&[
                    C1,
                    M1,
                    r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
                    r#"{"INSTRUCTION":"RELEASE","NAME":"w"}"#,
                ]),
                "e:5: RELEASE of \"w\": its storage has no references left",
            ),
            (
                log(&[C1, r#"{"INSTRUCTION":"MEMORY","MEMORY":"1","NAME":"x"}"#]),
                "e:3: expected the MEMORY line of \"w\", found MEMORY of \"x\"",
            ),
            (log(&[M1]), "e:2: stray MEMORY line"),
            (
                log(&[
                    r#"{"ARGS":[],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#,
                    r#"{"INSTRUCTION":"MEMORY","MEMORY":"4","NAME":"r"}"#,
                    r#"{"ALIAS":"0","INSTRUCTION":"ALIAS","NAME":"r"}"#,
                ]),
                "e:4: ALIAS 0 of \"r\": the CALL has 0 arguments",
            ),
            (
                log(&[r#"{"ARGS":[],"INSTRUCTION":"CALL","NAME":"f","RESULT":["r"],"TIME":"1"}"#]),
                "e:2: CALL result \"r\" without its MEMORY and ALIAS lines",
            ),
        ];
        for (text, want) in cases {
            let e = read("e", &text).unwrap_err();
            assert!(e.line.is_some() && !e.not_a_problem);
            let e = e.to_string();
            assert!(e.starts_with(want), "got {e:?}, want {want:?}");
        }
        let e = read("e", b"{\"INSTRUCTION\":\"COPY\"}\n").unwrap_err();
        assert_eq!(e.line, None);
    }

    /// Every anchor log reads, and its peak equals simrd's unbudgeted baseline peak.
    #[test]
    fn simrd_logs() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/traces/external/dtr-simrd-logs"
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            println!("SKIP: {dir} is absent");
            return;
        };
        // log file name → baseline_memory, from simrd's own results.
        let mut baseline: HashMap<String, u64> = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/simrd-results.jsonl")) {
            for l in text.lines() {
                let Ok(v) = serde_json::from_str::<Value>(l) else {
                    continue;
                };
                if v["kind"] == "baseline" {
                    if let (Some(log), Some(m)) = (v["log"].as_str(), v["baseline_memory"].as_u64())
                    {
                        baseline.insert(log.to_owned(), m);
                    }
                }
            }
        }
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty());
        for p in paths {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap();
            assert!(is_dtr(&data), "{name}");
            let t = read(&name, &data).unwrap_or_else(|e| panic!("{e}"));
            let peak = t.peak_requested();
            println!("{name}: {} allocs, peak {peak}", t.allocs());
            if let Some(&b) = baseline.get(&name) {
                assert_eq!(peak, b, "{name}: simrd baseline_memory");
            }
        }
    }

    #[test]
    fn program_errors_name_the_line() {
        let cases: [(Vec<u8>, &str); 4] = [
            (log(&[C1, "{not json"]), "e:3: not a JSON object"),
            (log(&[M1]), "e:2: stray MEMORY line"),
            (
                log(&[C1, M1, r#"{"DST":"b","INSTRUCTION":"COPY","SRC":"q"}"#]),
                "e:4: reference to unknown tensor \"q\"",
            ),
            (
                log(&[r#"{"INSTRUCTION":"RELEASE","NAME":"q"}"#]),
                "e:2: RELEASE of unknown tensor \"q\"",
            ),
        ];
        for (text, want) in cases {
            let e = read_program("e", &text).unwrap_err().to_string();
            assert!(e.starts_with(want), "got {e:?}, want {want:?}");
        }
        // A valid tiny log: constant, op, release; the constant is pinned at creation.
        let p = read_program(
            "ok",
            &log(&[
                C1,
                M1,
                r#"{"ARGS":["w"],"INSTRUCTION":"CALL","NAME":"f","RESULT":["y"],"TIME":"5"}"#,
                r#"{"INSTRUCTION":"MEMORY","MEMORY":"64","NAME":"y"}"#,
                r#"{"ALIAS":"-1","INSTRUCTION":"ALIAS","NAME":"y"}"#,
                r#"{"INSTRUCTION":"RELEASE","NAME":"y"}"#,
            ]),
        )
        .unwrap();
        let b = p.baseline().unwrap();
        assert_eq!((b.compute, b.peak), (5, 164));
    }
}
