//! The exact `simrd` simulator: replay a parsed operator log (a [`Program`]) on a
//! [`Runtime`] under a byte budget.
//!
//! Semantics follow `shared/docs/dtr-log-format.md` §4–6: the baseline is an unbudgeted
//! replay in which a storage is freed when its last reference goes (constants included);
//! budgets are `trunc(baseline_peak × ratio)`; a budgeted run keeps constants pinned, evicts
//! released storages eagerly, and fails as OOM when nothing is evictable or as *thrashed*
//! when recomputation exceeds `baseline_compute × 1.0`.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::error::RematError;
use super::graph::Output;
use super::heuristic::{Heuristic, MemplanParams};
use super::ids::TensorId;
use super::runtime::{Runtime, RuntimeOptions, Stats};

/// Output `index` of op `op` (indices into [`Program::ops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GraphTensor {
    /// The producing op.
    pub op: u32,
    /// Which output.
    pub index: u32,
}

/// An operator of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOp {
    /// Cost (the log's `TIME`, ns; 0 for constants).
    pub cost: u64,
    /// Arguments, in order, duplicates kept.
    pub args: Vec<GraphTensor>,
    /// Outputs.
    pub outputs: Vec<Output>,
}

/// One schedule command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run op (first time).
    Compute(u32),
    /// One more reference; with `pin`, materialize and pin it.
    Get {
        /// The tensor.
        tensor: GraphTensor,
        /// Materialize and pin.
        pin: bool,
    },
    /// Drop one reference.
    Release(GraphTensor),
}

/// A graph and its schedule, as parsed from a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    /// The ops.
    pub ops: Vec<GraphOp>,
    /// The schedule.
    pub schedule: Vec<Command>,
}

/// A structural fault in a [`Program`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramError {
    /// Index of the offending schedule command.
    pub command: usize,
    /// What is wrong.
    pub message: &'static str,
}

/// The unbudgeted baseline of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baseline {
    /// Σ op costs (model compute).
    pub compute: u64,
    /// Peak resident bytes when every storage is freed at its last release.
    pub peak: u64,
    /// Σ sizes of constants (ops with no arguments and cost 0... as the log's CONSTANTs).
    pub constants: u64,
}

/// How a budgeted run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The schedule completed.
    Pass,
    /// Out of memory.
    Oom,
    /// Recomputation exceeded the limit.
    Thrash,
}

impl Verdict {
    /// `pass`, `oom` or `thrash`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Oom => "oom",
            Verdict::Thrash => "thrash",
        }
    }
}

/// The result of one budgeted run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    /// How it ended.
    pub outcome: Verdict,
    /// Counters at the end (or at the failure).
    pub stats: Stats,
    /// `clock / baseline compute`.
    pub overhead: f64,
}

impl Program {
    /// Checks that every op and tensor is used only after it is computed, that alias indices
    /// are in range, and that sizes and costs sum without overflow.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let mut done = vec![false; self.ops.len()];
        let bad = |command, message| Err(ProgramError { command, message });
        let ok_tensor = |done: &[bool], t: GraphTensor| {
            (t.op as usize) < self.ops.len()
                && done[t.op as usize]
                && (t.index as usize) < self.ops[t.op as usize].outputs.len()
        };
        let mut cost: u64 = 0;
        for (i, c) in self.schedule.iter().enumerate() {
            match *c {
                Command::Compute(op) => {
                    let Some(o) = self.ops.get(op as usize) else {
                        return bad(i, "unknown op");
                    };
                    if done[op as usize] {
                        return bad(i, "op computed twice");
                    }
                    if o.outputs.is_empty() {
                        return bad(i, "op without outputs");
                    }
                    if o.args.iter().any(|&a| !ok_tensor(&done, a)) {
                        return bad(i, "argument not computed yet");
                    }
                    let mut size: u64 = 0;
                    for out in &o.outputs {
                        match *out {
                            Output::Alias(k) if k >= o.args.len() => {
                                return bad(i, "alias index past the arguments");
                            }
                            Output::Alias(_) => {}
                            Output::Fresh(n) => match size.checked_add(n) {
                                Some(s) => size = s,
                                None => return bad(i, "sizes overflow"),
                            },
                        }
                    }
                    cost = match cost.checked_add(o.cost) {
                        Some(c) => c,
                        None => return bad(i, "costs overflow"),
                    };
                    done[op as usize] = true;
                }
                Command::Get { tensor, .. } | Command::Release(tensor) => {
                    if !ok_tensor(&done, tensor) {
                        return bad(i, "tensor not computed yet");
                    }
                }
            }
        }
        if cost > u64::MAX / 4 {
            return bad(self.schedule.len(), "costs overflow");
        }
        Ok(())
    }

    /// The unbudgeted baseline (`simrd`'s banishing replay with an infinite budget).
    ///
    /// # Errors
    /// [`Program::validate`]'s, and a release of a storage with no references left.
    pub fn baseline(&self) -> Result<Baseline, ProgramError> {
        self.validate()?;
        // Storage of each graph tensor: (op, index) -> storage id.
        let mut first: Vec<u32> = vec![u32::MAX; self.ops.len()];
        let mut storage_of: Vec<u32> = Vec::new();
        let mut size: Vec<u64> = Vec::new();
        let mut refs: Vec<u64> = Vec::new();
        let (mut mem, mut peak, mut compute, mut constants) = (0u64, 0u64, 0u64, 0u64);
        let sid = |first: &[u32], storage_of: &[u32], t: GraphTensor| {
            storage_of[(first[t.op as usize] + t.index) as usize] as usize
        };
        for (i, c) in self.schedule.iter().enumerate() {
            match *c {
                Command::Compute(op) => {
                    let o = &self.ops[op as usize];
                    first[op as usize] = storage_of.len() as u32;
                    for out in &o.outputs {
                        match *out {
                            Output::Fresh(n) => {
                                storage_of.push(size.len() as u32);
                                size.push(n);
                                refs.push(1);
                                mem = mem.checked_add(n).ok_or(ProgramError {
                                    command: i,
                                    message: "resident sizes overflow",
                                })?;
                                if o.args.is_empty() && o.cost == 0 {
                                    constants += n;
                                }
                            }
                            Output::Alias(k) => {
                                let s = sid(&first, &storage_of, o.args[k]);
                                storage_of.push(s as u32);
                                refs[s] += 1;
                            }
                        }
                    }
                    peak = peak.max(mem);
                    compute += o.cost;
                }
                Command::Get { tensor, pin: false } => {
                    let s = sid(&first, &storage_of, tensor);
                    refs[s] += 1;
                }
                // Pinning takes no reference (and the unbudgeted baseline ignores pins).
                Command::Get { pin: true, .. } => {}
                Command::Release(tensor) => {
                    let s = sid(&first, &storage_of, tensor);
                    if refs[s] == 0 {
                        return Err(ProgramError {
                            command: i,
                            message: "release of a storage with no references",
                        });
                    }
                    refs[s] -= 1;
                    if refs[s] == 0 {
                        mem -= size[s];
                    }
                }
            }
        }
        Ok(Baseline {
            compute,
            peak,
            constants,
        })
    }
}

/// `simrd`'s budget for a ratio: `trunc(f64(peak) × ratio)`.
pub fn budget_for(peak: u64, ratio: f64) -> u64 {
    let b = peak as f64 * ratio;
    if b.is_nan() || b <= 0.0 {
        0
    } else if b >= u64::MAX as f64 {
        u64::MAX
    } else {
        b as u64
    }
}

/// Options of one budgeted run: the runtime's ([`RuntimeOptions`]; `remat_limit` is
/// `simrd`'s baseline compute).
pub type RunOptions = RuntimeOptions;

/// Why [`run`] could not simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The program is malformed.
    Program(ProgramError),
    /// The options are ([`Runtime::with_options`]'s error).
    Options(RematError),
}

impl From<ProgramError> for SimError {
    fn from(e: ProgramError) -> Self {
        SimError::Program(e)
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schedule command {}: {}", self.command, self.message)
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Program(e) => e.fmt(f),
            SimError::Options(e) => write!(f, "bad options: {e}"),
        }
    }
}

/// Runs `program` under the given budget (call [`Program::baseline`] first for the
/// baseline compute used in the overhead; `baseline_compute` 0 gives overhead +∞).
///
/// # Errors
/// [`SimError::Program`]: [`Program::validate`]'s, or a release of a tensor with no
/// references left; [`SimError::Options`]: a swap bandwidth of 0.
pub fn run(
    program: &Program,
    baseline_compute: u64,
    opts: RunOptions,
) -> Result<RunResult, SimError> {
    run_with(program, baseline_compute, opts, MemplanParams::DEFAULT)
}

/// [`run`] with memplan's heuristic under other constants (the leave-one-out search).
///
/// # Errors
/// [`run`]'s.
pub fn run_with(
    program: &Program,
    baseline_compute: u64,
    opts: RunOptions,
    params: MemplanParams,
) -> Result<RunResult, SimError> {
    program.validate()?;
    let mut rt = Runtime::with_options(opts).map_err(SimError::Options)?;
    rt.set_memplan_params(params);
    rt.set_recording(false);
    let lookahead = opts.heuristic == Heuristic::Memplan;
    let future = if lookahead {
        Some(Future::new(program))
    } else {
        None
    };
    let mut first: Vec<u32> = vec![u32::MAX; program.ops.len()];
    let tid = |first: &[u32], t: GraphTensor| TensorId(first[t.op as usize] + t.index);
    let mut now: u64 = 0;
    let mut outcome = Verdict::Pass;
    for (i, c) in program.schedule.iter().enumerate() {
        let r: Result<(), RematError> = match *c {
            Command::Compute(op) => {
                let o = &program.ops[op as usize];
                let args: Vec<TensorId> = o.args.iter().map(|&a| tid(&first, a)).collect();
                if let Some(f) = &future {
                    rt.set_now(now);
                    for (&a, &g) in args.iter().zip(&o.args) {
                        let _ = rt.set_next_use(a, f.next_after(g, i));
                    }
                }
                first[op as usize] = rt.tensor_count() as u32;
                let r = rt.compute(o.cost, &args, &o.outputs).map(|outs| {
                    if let Some(f) = &future {
                        for (k, &t) in outs.iter().enumerate() {
                            let g = GraphTensor {
                                op,
                                index: k as u32,
                            };
                            let _ = rt.set_next_use(t, f.next_after(g, i));
                        }
                    }
                });
                now += o.cost;
                r
            }
            Command::Get { tensor, pin } => {
                let t = tid(&first, tensor);
                if pin {
                    if let Some(f) = &future {
                        rt.set_now(now);
                        let _ = rt.set_next_use(t, f.next_after(tensor, i));
                    }
                    rt.pin(t)
                } else {
                    rt.get(t)
                }
            }
            Command::Release(tensor) => rt.release(tid(&first, tensor)),
        };
        match r {
            Ok(()) => {}
            Err(RematError::OutOfMemory { .. }) => {
                outcome = Verdict::Oom;
                break;
            }
            Err(RematError::Thrashed { .. }) => {
                outcome = Verdict::Thrash;
                break;
            }
            Err(_) => {
                return Err(SimError::Program(ProgramError {
                    command: i,
                    message: "unbalanced reference or bad tensor",
                }));
            }
        }
    }
    let stats = rt.stats();

    let overhead = if baseline_compute == 0 {
        f64::INFINITY
    } else {
        stats.clock as f64 / baseline_compute as f64
    };
    Ok(RunResult {
        outcome,
        stats,
        overhead,
    })
}

/// Future uses of every graph tensor (schedule positions of ops that read it and of pins),
/// on the model-clock time scale.
struct Future {
    /// Model clock before each schedule position.
    time: Vec<u64>,
    /// Per op, per output: sorted positions of uses.
    uses: Vec<Vec<Vec<u32>>>,
}

impl Future {
    fn new(p: &Program) -> Self {
        let mut uses: Vec<Vec<Vec<u32>>> = p
            .ops
            .iter()
            .map(|o| vec![Vec::new(); o.outputs.len()])
            .collect();
        let mut time = Vec::with_capacity(p.schedule.len() + 1);
        let mut now = 0u64;
        for (i, c) in p.schedule.iter().enumerate() {
            time.push(now);
            match *c {
                Command::Compute(op) => {
                    for a in &p.ops[op as usize].args {
                        uses[a.op as usize][a.index as usize].push(i as u32);
                    }
                    now += p.ops[op as usize].cost;
                }
                Command::Get { tensor, pin: true } => {
                    uses[tensor.op as usize][tensor.index as usize].push(i as u32);
                }
                _ => {}
            }
        }
        time.push(now);
        for u in uses.iter_mut().flatten() {
            u.dedup();
        }
        Future { time, uses }
    }

    /// The time of the first use of `t` strictly after position `i`; `u64::MAX` if none.
    fn next_after(&self, t: GraphTensor, i: usize) -> Option<u64> {
        let u = &self.uses[t.op as usize][t.index as usize];
        let k = u.partition_point(|&p| p as usize <= i);
        Some(u.get(k).map_or(u64::MAX, |&p| self.time[p as usize]))
    }
}
