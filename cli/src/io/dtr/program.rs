//! Interpreter 2: a DTR log as `simrd`'s graph and schedule, the program the rematerialization
//! simulator (`memplan_core::remat::sim`) runs.

use std::collections::HashMap;

use memplan_core::remat::Output;
use memplan_core::remat::sim::{Command, GraphOp, GraphTensor, Program};

use super::records::{Instruction, Log, Records};
use crate::io::InputError;

/// Names bound so far: name → tensor, and the names in first-binding order.
#[derive(Default)]
struct Names {
    tensors: HashMap<String, GraphTensor>,
    order: Vec<String>,
}

impl Names {
    fn bind(&mut self, name: &str, t: GraphTensor) {
        if self.tensors.insert(name.to_owned(), t).is_none() {
            self.order.push(name.to_owned());
        }
    }

    fn lookup(
        &self,
        records: &Records<'_>,
        line: usize,
        name: &str,
    ) -> Result<GraphTensor, InputError> {
        self.tensors
            .get(name)
            .copied()
            .ok_or_else(|| records.err(line, format!("reference to unknown tensor {name:?}")))
    }
}

/// Reads the DTR operator log in `data` into `simrd`'s graph and schedule (the format and
/// the rules are in `shared/docs/dtr-log-format.md` §2): one op per `CONSTANT` (cost 0, then
/// pinned), `CALL` and `MUTATE` (one full-size copy-on-write output per mutated argument);
/// `COPY` is a `Get`, `RELEASE` a `Release`, `COPY_FROM` a `Release` then a `Get`; at the end
/// every name still referenced is pinned, in name-insertion order.
///
/// # Errors
/// As [`read`](super::read): bad JSON, unknown `INSTRUCTION`, missing or mistyped fields
/// (`TIME` included), a `MEMORY` or `ALIAS` line out of place (e.g. a `MEMORY` without its
/// `CONSTANT`), a reference to or `RELEASE` of an unknown name (simrd ignores the latter;
/// these logs have none): the first such fault, with its 1-based line.
pub fn read_program(file: &str, data: &[u8]) -> Result<Program, InputError> {
    let log = Log::parse(file, data)?;
    let mut records = Records::new(file, &log);
    let mut p = Program::default();
    let mut names = Names::default();
    // Per op, per output: parse-time references and storage size.
    let mut pref: Vec<Vec<i64>> = Vec::new();
    let mut ssize: Vec<Vec<u64>> = Vec::new();
    while let Some(instruction) = records.next_instruction() {
        let (line, instruction) = instruction?;
        match instruction {
            Instruction::Annotate(_) => {}
            Instruction::Constant { name, size, .. } => {
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
                names.bind(name, t);
            }
            Instruction::Call(call) => {
                let args: Vec<GraphTensor> = call
                    .args
                    .iter()
                    .map(|a| names.lookup(&records, line, a))
                    .collect::<Result<_, _>>()?;
                let (results, cost) = records.call_results(&call, true)?;
                let op = p.ops.len() as u32;
                let mut outputs = Vec::with_capacity(results.len());
                let mut sizes = Vec::with_capacity(results.len());
                for result in &results {
                    match result.alias {
                        None => {
                            outputs.push(Output::Fresh(result.size));
                            sizes.push(result.size);
                        }
                        Some(k) => {
                            outputs.push(Output::Alias(k));
                            let a = args[k];
                            sizes.push(ssize[a.op as usize][a.index as usize]);
                        }
                    }
                }
                p.ops.push(GraphOp {
                    cost,
                    args,
                    outputs,
                });
                pref.push(vec![1; results.len()]);
                ssize.push(sizes);
                p.schedule.push(Command::Compute(op));
                for (k, result) in results.iter().enumerate() {
                    let index = k as u32;
                    names.bind(result.name, GraphTensor { op, index });
                }
            }
            Instruction::Mutate(call) => {
                let args: Vec<GraphTensor> = call
                    .args
                    .iter()
                    .map(|a| names.lookup(&records, line, a))
                    .collect::<Result<_, _>>()?;
                let (indices, cost) = records.mutated(&call, true)?;
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
                    let name = call.args[k];
                    let old = names.lookup(&records, line, name)?;
                    let index = j as u32;
                    names.bind(name, GraphTensor { op, index });
                    pref[old.op as usize][old.index as usize] -= 1;
                    p.schedule.push(Command::Release(old));
                }
            }
            Instruction::Copy { src, dst } => {
                let src = names.lookup(&records, line, src)?;
                names.bind(dst, src);
                pref[src.op as usize][src.index as usize] += 1;
                p.schedule.push(Command::Get {
                    tensor: src,
                    pin: false,
                });
            }
            Instruction::CopyFrom { src, dst } => {
                let src = names.lookup(&records, line, src)?;
                let old = names.lookup(&records, line, dst)?;
                names.bind(dst, src);
                pref[old.op as usize][old.index as usize] -= 1;
                pref[src.op as usize][src.index as usize] += 1;
                p.schedule.push(Command::Release(old));
                p.schedule.push(Command::Get {
                    tensor: src,
                    pin: false,
                });
            }
            Instruction::Release(name) => {
                let t = names.tensors.get(name).copied().ok_or_else(|| {
                    records.err(line, format!("RELEASE of unknown tensor {name:?}"))
                })?;
                pref[t.op as usize][t.index as usize] -= 1;
                p.schedule.push(Command::Release(t));
            }
        }
    }
    for n in &names.order {
        let t = names.tensors[n];
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
