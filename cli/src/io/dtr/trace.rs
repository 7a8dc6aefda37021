//! Interpreter 1: a DTR log as an allocation trace of *storages* (the rules are in the
//! [module docs](super)), following `simrd`'s unbudgeted baseline replay.

use std::collections::HashMap;

use memplan_core::trace::{Marker, Trace, TraceBuilder};

use super::records::{Instruction, Log, Records};
use crate::io::InputError;

/// One physical buffer.
struct Storage {
    size: u64,
    /// References held through names (the root and its views, their copies).
    refs: u64,
}

/// Interpreter state: names → storage ids, the storages, the trace so far.
struct Storages<'a> {
    records: Records<'a>,
    names: HashMap<String, usize>,
    storages: Vec<Storage>,
    builder: TraceBuilder,
}

impl Storages<'_> {
    /// The live storage `name` refers to.
    fn lookup(&self, line: usize, name: &str) -> Result<usize, InputError> {
        let &s = self.names.get(name).ok_or_else(|| {
            self.records
                .err(line, format!("reference to unknown tensor {name:?}"))
        })?;
        if self.storages[s].refs == 0 {
            return Err(self.records.err(
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
            .map_err(|e| self.records.err(line, e.to_string()))?;
        self.storages.push(Storage { size, refs: 1 });
        Ok(id)
    }

    /// Drops one reference to storage `s` (named `name` in messages); frees it at zero.
    fn release(&mut self, line: usize, s: usize, name: &str) -> Result<(), InputError> {
        if self.storages[s].refs == 0 {
            return Err(self.records.err(
                line,
                format!("RELEASE of {name:?}: its storage has no references left"),
            ));
        }
        self.storages[s].refs -= 1;
        if self.storages[s].refs == 0 {
            self.builder
                .free(s as u64)
                .map_err(|e| self.records.err(line, e.to_string()))?;
        }
        Ok(())
    }
}

/// Reads the DTR operator log in `data` (see the [module docs](super) for the semantics) into
/// a trace of storage allocations on stream 0, reporting errors against `file`.
///
/// # Errors
/// A line that is not a JSON object, an unknown `INSTRUCTION`, a missing or mistyped field, a
/// `CONSTANT` or `CALL` without the `MEMORY`/`ALIAS` lines it needs (or a stray one), a
/// reference to or `RELEASE` of an unknown tensor or of one whose storage is already freed, or
/// no `ANNOTATE START` line: the first such fault, with its 1-based line.
pub fn read(file: &str, data: &[u8]) -> Result<Trace, InputError> {
    let log = Log::parse(file, data)?;
    let mut r = Storages {
        records: Records::new(file, &log),
        names: HashMap::new(),
        storages: Vec::new(),
        builder: TraceBuilder::new().allow_zero_size(true),
    };
    r.builder.marker(Marker::IterationStart);
    r.builder.marker(Marker::Phase("forward".to_owned()));
    while let Some(instruction) = r.records.next_instruction() {
        let (line, instruction) = instruction?;
        match instruction {
            Instruction::Annotate("BACKWARD") => {
                r.builder.marker(Marker::Phase("backward".to_owned()));
            }
            Instruction::Annotate(other) => {
                r.builder.marker(Marker::Annotation(other.to_owned()));
            }
            Instruction::Constant {
                name,
                size,
                memory_line,
            } => {
                let s = r.alloc(memory_line, size)?;
                r.names.insert(name.to_owned(), s);
            }
            Instruction::Call(call) => {
                let args: Vec<usize> = call
                    .args
                    .iter()
                    .map(|a| r.lookup(line, a))
                    .collect::<Result<_, _>>()?;
                let (results, _) = r.records.call_results(&call, false)?;
                for result in results {
                    let s = match result.alias {
                        None => r.alloc(result.memory_line, result.size)?,
                        Some(k) => {
                            r.storages[args[k]].refs += 1;
                            args[k]
                        }
                    };
                    r.names.insert(result.name.to_owned(), s);
                }
            }
            Instruction::Mutate(call) => {
                let args: Vec<usize> = call
                    .args
                    .iter()
                    .map(|a| r.lookup(line, a))
                    .collect::<Result<_, _>>()?;
                let (indices, _) = r.records.mutated(&call, false)?;
                // The op runs: one new full-size storage per mutated argument...
                let mut fresh = Vec::with_capacity(indices.len());
                for &k in &indices {
                    fresh.push((k, r.alloc(line, r.storages[args[k]].size)?));
                }
                // ...then each mutated name is re-pointed and its old storage released.
                for (k, s) in fresh {
                    let name = call.args[k];
                    let old = r.names.insert(name.to_owned(), s).unwrap_or(args[k]);
                    r.release(line, old, name)?;
                }
            }
            Instruction::Copy { src, dst } => {
                let s = r.lookup(line, src)?;
                r.storages[s].refs += 1;
                r.names.insert(dst.to_owned(), s);
            }
            Instruction::CopyFrom { src, dst } => {
                let old = r.lookup(line, dst)?;
                let s = r.lookup(line, src)?;
                r.storages[s].refs += 1;
                r.names.insert(dst.to_owned(), s);
                r.release(line, old, dst)?;
            }
            Instruction::Release(name) => {
                let &s = r.names.get(name).ok_or_else(|| {
                    r.records
                        .err(line, format!("RELEASE of unknown tensor {name:?}"))
                })?;
                r.release(line, s, name)?;
            }
        }
    }
    Ok(r.builder.finish())
}
