//! Building a [`Plan`] from a profiled trace: [`Plan::from_trace`].
//!
//! The trace's lifetime analysis ([`crate::lifetime::analyze`]) gives the iterations; the
//! prologue (warm-up and the first iteration, with the allocations never freed) and one
//! steady-state iteration are packed together with [`crate::pack`], so that the iteration's
//! slots avoid the persistent ones.

use alloc::format;
use alloc::vec::Vec;

use super::format::{Plan, Slot};
use crate::allocator::layout::{ALIGN, rounded};
use crate::error::Error;
use crate::lifetime::{Analysis, Lifetime, analyze};
use crate::pack::{Budget, Buffer, PackOptions, Problem, pack};
use crate::trace::Trace;

/// How [`Plan::from_trace`] profiles a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Iterations profiled (at least 1; more than the trace has means all of them). The
    /// prologue is everything before the last profiled iteration (at least the first
    /// iteration); the steady iteration is the last profiled one, each slot as large as the
    /// largest request at its position over the profiled iterations that have the same
    /// number of per-iteration allocations.
    pub profile_iterations: usize,
    /// Profile only the first this many events of the trace, as a profiling run stopped
    /// early would record them: allocations made later are not planned, and frees that come
    /// later are not seen (those allocations are planned as never freed). `None`: all.
    pub profile_events: Option<usize>,
    /// Node budget of [`pack()`] (deterministic).
    pub max_nodes: u64,
}

impl Default for PlanOptions {
    /// One profiled iteration, 200,000 nodes.
    fn default() -> Self {
        PlanOptions {
            profile_iterations: 1,
            profile_events: None,
            max_nodes: 200_000,
        }
    }
}

/// A plan built from a trace, with what it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePlan {
    /// The plan.
    pub plan: Plan,
    /// The lifetime analysis of the whole trace: its iterations and classes.
    pub analysis: Analysis,
    /// Iterations actually profiled: `min(options.profile_iterations, iterations)`, counting
    /// a trace without iteration boundaries as one iteration.
    pub profiled_iterations: usize,
}

impl Plan {
    /// Builds the plan of a run from its profiled `trace`: analyses its lifetimes
    /// ([`analyze`]), then plans them.
    ///
    /// With iterations `0..m` starting at the analysis's `iteration_starts` and `k =
    /// min(options.profile_iterations, m)` of them profiled, the steady iteration comes from
    /// iteration `s = k - 1` and the prologue holds every allocation made before iteration
    /// `max(s, 1)` starts (all of them, and no iteration at all, when the trace has one
    /// iteration: then nothing is known to repeat, and requests after the prologue are
    /// served as misses). Allocations that are neither — never freed and made after the
    /// prologue — are not planned (they will be misses). Sizes are rounded up to [`ALIGN`]
    /// (at least [`ALIGN`] bytes), offsets are [`ALIGN`]-aligned, and times are event
    /// indices: from the start of the trace in the prologue, from the start of iteration `s`
    /// in the iteration.
    ///
    /// Prologue and iteration are packed as one problem, the iteration placed right after the
    /// prologue in time with the persistent allocations alive over both, so the plan is valid
    /// ([`Plan::validate`]) and as tight as [`pack()`] makes it.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when `profile_iterations` is 0; [`Error::Overflow`] when
    /// sizes overflow `u64` or event indices do not fit `u32`; any error of [`pack()`].
    pub fn from_trace(trace: &Trace, options: &PlanOptions) -> Result<TracePlan, Error> {
        let analysis = analyze(trace);
        let plan = plan_analysis(&analysis, trace.len(), options)?;
        let profiled_iterations = options
            .profile_iterations
            .min(analysis.iteration_starts.len().max(1));
        Ok(TracePlan {
            plan,
            analysis,
            profiled_iterations,
        })
    }
}

/// [`Plan::from_trace`] once the trace is analysed (`events` is the trace's length).
fn plan_analysis(analysis: &Analysis, events: usize, options: &PlanOptions) -> Result<Plan, Error> {
    if options.profile_iterations == 0 {
        return Err(Error::InvalidOptions {
            reason: "at least one iteration must be profiled",
        });
    }
    let overflow = |what: usize| Error::Overflow {
        id: format!("{what}"),
    };
    let to_u32 = |x: usize| u32::try_from(x).map_err(|_| overflow(x));
    let starts: &[usize] = if analysis.iteration_starts.is_empty() {
        &[0]
    } else {
        &analysis.iteration_starts
    };
    let m = starts.len();
    let k = options.profile_iterations.min(m);
    let s = k - 1;
    let limit = options.profile_events.unwrap_or(usize::MAX);
    let p_end = if m > 1 { starts[s.max(1)] } else { events }.min(limit);
    let lap_start = starts[s];
    let lap_end = starts.get(s + 1).copied().unwrap_or(events);
    let lap_len = lap_end.saturating_sub(lap_start);

    // The steady iteration, with the envelope of sizes over matching profiled iterations.
    let temps_of = |it: usize| -> Vec<&Lifetime> {
        analysis
            .lifetimes
            .iter()
            .filter(|l| l.iteration == Some(it) && l.free_event.is_some())
            .collect()
    };
    // A trace without repeated iterations is all prologue: nothing is known to repeat.
    let steady = if m > 1 && lap_end <= limit {
        temps_of(s)
    } else {
        Vec::new()
    };
    let mut sizes: Vec<u64> = steady.iter().map(|l| l.size).collect();
    for it in 0..s {
        let other = temps_of(it);
        if other.len() == steady.len()
            && other.iter().zip(&steady).all(|(a, b)| a.stream == b.stream)
        {
            for (sz, o) in sizes.iter_mut().zip(&other) {
                *sz = (*sz).max(o.size);
            }
        }
    }
    let prologue: Vec<&Lifetime> = analysis
        .lifetimes
        .iter()
        .filter(|l| l.alloc_event < p_end)
        .collect();

    // One problem: prologue on the trace's timeline, the iteration right after it.
    let horizon = p_end.checked_add(lap_len).ok_or_else(|| overflow(p_end))?;
    let mut problem = Problem::new();
    let mut plan_prologue = Vec::with_capacity(prologue.len());
    for (i, l) in prologue.iter().enumerate() {
        let size = rounded(l.size).ok_or_else(|| overflow(l.alloc_index))?;
        let (end, joint_end) = match l.free_event.filter(|&f| f < limit) {
            // u32::MAX itself marks a persistent slot.
            Some(f) if f >= u32::MAX as usize => return Err(overflow(f)),
            Some(f) => (to_u32(f)?, f.min(horizon)),
            None => (u32::MAX, horizon + 1),
        };
        problem.push(
            Buffer::new(
                format!("p{i}"),
                l.alloc_event as u64,
                joint_end as u64,
                size,
            )
            .with_alignment(ALIGN),
        )?;
        plan_prologue.push(Slot {
            size,
            stream: l.stream,
            offset: 0,
            start: to_u32(l.alloc_event)?,
            end,
        });
    }
    let mut plan_iteration = Vec::with_capacity(steady.len());
    for (i, (l, &sz)) in steady.iter().zip(&sizes).enumerate() {
        let size = rounded(sz).ok_or_else(|| overflow(l.alloc_index))?;
        let start = l.alloc_event - lap_start;
        let end = l.free_event.unwrap_or(lap_end) - lap_start;
        let end32 = to_u32(end)?;
        if end32 == u32::MAX {
            return Err(overflow(end));
        }
        problem.push(
            Buffer::new(
                format!("i{i}"),
                (p_end + start) as u64,
                (p_end + end.min(lap_len)) as u64,
                size,
            )
            .with_alignment(ALIGN),
        )?;
        plan_iteration.push(Slot {
            size,
            stream: l.stream,
            offset: 0,
            start: to_u32(start)?,
            end: end32,
        });
    }
    let mut arena_size = 0;
    if !problem.is_empty() {
        let solution = pack(
            &problem,
            PackOptions {
                capacity: None,
                budget: Budget {
                    max_nodes: Some(options.max_nodes),
                    stop: None,
                },
            },
        )?;
        for (slot, &o) in plan_prologue
            .iter_mut()
            .chain(plan_iteration.iter_mut())
            .zip(&solution.offsets)
        {
            slot.offset = o;
        }
        arena_size = solution.peak;
    }
    let plan = Plan {
        arena_size,
        prologue: plan_prologue,
        iteration: plan_iteration,
    };
    debug_assert_eq!(plan.validate(), Ok(()));
    Ok(plan)
}
