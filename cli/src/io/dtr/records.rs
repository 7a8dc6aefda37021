//! The one parser of the DTR log grammar, shared by both interpreters ([`super::trace`] and
//! [`super::program`]).
//!
//! [`Log::parse`] reads every line as a JSON object and finds the first `ANNOTATE START`;
//! [`Records`] then walks the instructions after it. Each [`Instruction`] carries its fields,
//! checked and typed. Two parts are read only when the interpreter asks, after it has resolved
//! the names the instruction uses, so that a reference to an unknown tensor is reported before
//! a fault further on in the same instruction: a `CALL`'s results with their `MEMORY`/`ALIAS`
//! lines ([`Records::call_results`]) and a `MUTATE`'s indices ([`Records::mutated`]). `TIME` is
//! read only by interpreters that ask for it (the trace reader does not need it).

use serde_json::{Map, Value};

use crate::io::InputError;

/// One JSON line of a log.
type Obj = Map<String, Value>;

/// Every non-blank line of a log as (1-based line, object), and where `ANNOTATE START` is.
pub(super) struct Log {
    lines: Vec<(usize, Obj)>,
    start: usize,
}

impl Log {
    /// Reads `data` (reported as `file`).
    ///
    /// # Errors
    /// A line that is not a JSON object, or no `ANNOTATE START` line.
    pub(super) fn parse(file: &str, data: &[u8]) -> Result<Self, InputError> {
        let mut lines: Vec<(usize, Obj)> = Vec::new();
        for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
            let raw = raw.trim_ascii();
            if raw.is_empty() {
                continue;
            }
            let obj = serde_json::from_slice::<Obj>(raw)
                .map_err(|e| error(file, n + 1, format!("not a JSON object: {e}")))?;
            lines.push((n + 1, obj));
        }
        let is_start = |o: &Obj| {
            o.get("INSTRUCTION").and_then(Value::as_str) == Some("ANNOTATE")
                && o.get("ANNOTATION").and_then(Value::as_str) == Some("START")
        };
        let Some(start) = lines.iter().position(|(_, o)| is_start(o)) else {
            return Err(InputError {
                file: file.to_owned(),
                line: None,
                message: "no `ANNOTATE START` line: not a DTR log, or an empty one".to_owned(),
                not_a_problem: false,
            });
        };
        Ok(Self { lines, start })
    }
}

/// An error at a 1-based line of `file`.
pub(super) fn error(file: &str, line: usize, message: String) -> InputError {
    InputError {
        file: file.to_owned(),
        line: Some(line as u64),
        message,
        not_a_problem: false,
    }
}

/// One instruction of the log (after `ANNOTATE START`), its fields read.
pub(super) enum Instruction<'a> {
    /// `ANNOTATE`: an annotation other than the first `START` (`START`, `BACKWARD`, …).
    Annotate(&'a str),
    /// `CONSTANT` and its `MEMORY` line: a new tensor of `size` bytes.
    Constant {
        /// The tensor's name.
        name: &'a str,
        /// Its size, from the `MEMORY` line.
        size: u64,
        /// The 1-based line of the `MEMORY` line.
        memory_line: usize,
    },
    /// `CALL`: an operator over `args`; its results follow ([`Records::call_results`]).
    Call(Call<'a>),
    /// `MUTATE`: an in-place operator over `args`; which ones it mutates:
    /// [`Records::mutated`].
    Mutate(Call<'a>),
    /// `COPY`: `dst` names the same tensor as `src`.
    Copy {
        /// The name copied.
        src: &'a str,
        /// The new name.
        dst: &'a str,
    },
    /// `COPY_FROM`: `dst` is re-pointed to `src`'s tensor.
    CopyFrom {
        /// The name copied from.
        src: &'a str,
        /// The name re-pointed.
        dst: &'a str,
    },
    /// `RELEASE`: one reference through `name` is dropped.
    Release(&'a str),
}

/// A `CALL` or `MUTATE` line: its argument names; the rest is read on demand.
pub(super) struct Call<'a> {
    /// The 1-based line.
    pub line: usize,
    /// The argument names (`ARGS`).
    pub args: Vec<&'a str>,
    obj: &'a Obj,
}

/// One result of a `CALL`, from its `MEMORY` and `ALIAS` lines.
pub(super) struct CallResult<'a> {
    /// The result's name.
    pub name: &'a str,
    /// Bytes (`MEMORY`).
    pub size: u64,
    /// The 1-based line of the `MEMORY` line.
    pub memory_line: usize,
    /// `None` for a new storage (`ALIAS -1`), else the index of the argument it is a view of
    /// (checked to be one of the `CALL`'s arguments).
    pub alias: Option<usize>,
}

/// A cursor over the instructions of a [`Log`].
pub(super) struct Records<'a> {
    file: &'a str,
    lines: &'a [(usize, Obj)],
    next: usize,
}

impl<'a> Records<'a> {
    /// The instructions of `log` after its first `ANNOTATE START`, reported against `file`.
    pub(super) fn new(file: &'a str, log: &'a Log) -> Self {
        Self {
            file,
            lines: &log.lines,
            next: log.start + 1,
        }
    }

    /// An error at `line`.
    pub(super) fn err(&self, line: usize, message: String) -> InputError {
        error(self.file, line, message)
    }

    /// The next instruction with its 1-based line, or `None` at the end.
    ///
    /// # Errors
    /// An unknown `INSTRUCTION`, a missing or mistyped field, a `CONSTANT` without its
    /// `MEMORY` line, a stray `MEMORY` or `ALIAS` line.
    pub(super) fn next_instruction(
        &mut self,
    ) -> Option<Result<(usize, Instruction<'a>), InputError>> {
        let (line, o) = self.lines.get(self.next)?;
        self.next += 1;
        Some(self.instruction(*line, o).map(|i| (*line, i)))
    }

    fn instruction(&mut self, line: usize, o: &'a Obj) -> Result<Instruction<'a>, InputError> {
        let kind = self.str_field(line, o, "INSTRUCTION")?;
        Ok(match kind {
            "ANNOTATE" => Instruction::Annotate(self.str_field(line, o, "ANNOTATION")?),
            "CONSTANT" => {
                let name = self.str_field(line, o, "NAME")?;
                let Some((mline, m)) = self.lines.get(self.next) else {
                    return Err(
                        self.err(line, format!("CONSTANT {name:?} without its MEMORY line"))
                    );
                };
                self.next += 1;
                let size = self.memory_line(*mline, m, name)?;
                Instruction::Constant {
                    name,
                    size,
                    memory_line: *mline,
                }
            }
            "CALL" | "MUTATE" => {
                let call = Call {
                    line,
                    args: self.names_field(line, o, "ARGS")?,
                    obj: o,
                };
                if kind == "CALL" {
                    Instruction::Call(call)
                } else {
                    Instruction::Mutate(call)
                }
            }
            "COPY" | "COPY_FROM" => {
                let src = self.str_field(line, o, "SRC")?;
                let dst = self.str_field(line, o, "DST")?;
                if kind == "COPY" {
                    Instruction::Copy { src, dst }
                } else {
                    Instruction::CopyFrom { src, dst }
                }
            }
            "RELEASE" => Instruction::Release(self.str_field(line, o, "NAME")?),
            "MEMORY" | "ALIAS" => {
                return Err(self.err(
                    line,
                    format!("stray {kind} line (only after CONSTANT, or in a CALL's result block)"),
                ));
            }
            other => {
                return Err(self.err(line, format!("unknown INSTRUCTION {other:?}")));
            }
        })
    }

    /// The results of `call` (a `CALL`) with their `MEMORY` and `ALIAS` lines, which follow
    /// it; with `time`, also its `TIME` (else 0).
    ///
    /// # Errors
    /// No or a mistyped `RESULT`, a bad `TIME` (when asked for), missing or mismatched
    /// `MEMORY`/`ALIAS` lines, an `ALIAS` that is not one of the arguments.
    pub(super) fn call_results(
        &mut self,
        call: &Call<'a>,
        time: bool,
    ) -> Result<(Vec<CallResult<'a>>, u64), InputError> {
        let line = call.line;
        let names = self.names_field(line, call.obj, "RESULT")?;
        if names.is_empty() {
            return Err(self.err(line, "CALL with no RESULT".to_owned()));
        }
        let cost = if time { self.time(call)? } else { 0 };
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            let (Some((mline, m)), Some((aline, a))) =
                (self.lines.get(self.next), self.lines.get(self.next + 1))
            else {
                return Err(self.err(
                    line,
                    format!("CALL result {name:?} without its MEMORY and ALIAS lines"),
                ));
            };
            self.next += 2;
            let size = self.memory_line(*mline, m, name)?;
            let alias = self.alias_line(*aline, a, name)?;
            let alias = if alias == -1 {
                None
            } else {
                let k = usize::try_from(alias)
                    .ok()
                    .filter(|&k| k < call.args.len())
                    .ok_or_else(|| {
                        self.err(
                            *aline,
                            format!(
                                "ALIAS {alias} of {name:?}: the CALL has {} arguments",
                                call.args.len()
                            ),
                        )
                    })?;
                Some(k)
            };
            results.push(CallResult {
                name,
                size,
                memory_line: *mline,
                alias,
            });
        }
        Ok((results, cost))
    }

    /// The indices (into `call.args`) of the arguments `call` (a `MUTATE`) mutates; with
    /// `time`, also its `TIME` (else 0).
    ///
    /// # Errors
    /// `MUTATE` not a list of argument indices, a bad `TIME` (when asked for).
    pub(super) fn mutated(
        &self,
        call: &Call<'a>,
        time: bool,
    ) -> Result<(Vec<usize>, u64), InputError> {
        let bad = || {
            self.err(
                call.line,
                "`MUTATE` is not a list of argument indices".to_owned(),
            )
        };
        let indices: Vec<usize> = match call.obj.get("MUTATE") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    int_value(v)
                        .and_then(|k| usize::try_from(k).ok())
                        .filter(|&k| k < call.args.len())
                        .ok_or_else(bad)
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad()),
        };
        let cost = if time { self.time(call)? } else { 0 };
        Ok((indices, cost))
    }

    /// The `TIME` of a `CALL` or `MUTATE`.
    fn time(&self, call: &Call<'a>) -> Result<u64, InputError> {
        u64::try_from(self.int_field(call.line, call.obj, "TIME")?)
            .map_err(|_| self.err(call.line, "negative TIME".to_owned()))
    }

    fn str_field(&self, line: usize, o: &'a Obj, key: &str) -> Result<&'a str, InputError> {
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

    fn names_field(&self, line: usize, o: &'a Obj, key: &str) -> Result<Vec<&'a str>, InputError> {
        let bad = || self.err(line, format!("`{key}` is not a list of names"));
        match o.get(key) {
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
            Some(_) => Err(bad()),
            None => Err(self.err(line, format!("missing `{key}`"))),
        }
    }

    /// The size on a `MEMORY` line that must belong to `name`.
    fn memory_line(&self, line: usize, o: &'a Obj, name: &str) -> Result<u64, InputError> {
        self.expect(line, o, "MEMORY", name)?;
        let m = self.int_field(line, o, "MEMORY")?;
        u64::try_from(m).map_err(|_| self.err(line, format!("negative MEMORY {m}")))
    }

    /// The index on an `ALIAS` line that must belong to `name` (-1 or an argument index).
    fn alias_line(&self, line: usize, o: &'a Obj, name: &str) -> Result<i64, InputError> {
        self.expect(line, o, "ALIAS", name)?;
        let a = self.int_field(line, o, "ALIAS")?;
        if a < -1 {
            return Err(self.err(line, format!("ALIAS {a} (must be -1 or an argument index)")));
        }
        Ok(a)
    }

    /// Checks that `o` is a `kind` line for `name`.
    fn expect(&self, line: usize, o: &'a Obj, kind: &str, name: &str) -> Result<(), InputError> {
        let got = self.str_field(line, o, "INSTRUCTION")?;
        let got_name = o.get("NAME").and_then(Value::as_str);
        if got != kind || got_name != Some(name) {
            return Err(self.err(
                line,
                format!(
                    "expected the {kind} line of {name:?}, found {got}{}",
                    got_name.map_or(String::new(), |n| format!(" of {n:?}"))
                ),
            ));
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
