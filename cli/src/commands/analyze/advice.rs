//! The what-if table of `memplan analyze` (the same history through each allocator memplan
//! models) and the one recommendation drawn from it.

use memplan_core::allocator::registry::{self, AllocatorKind, Settings};
use memplan_core::trace::Trace;
use serde::Serialize;

use super::Report;
use crate::Failure;
use crate::commands::replay::{plan_of, replay};
use crate::plot::bytes;
use crate::progress::Spinner;

/// What a user runs to record the allocation history `analyze` needs.
pub const RECORD_HISTORY: &str = "Record one with \
    torch.cuda.memory._record_memory_history(max_entries=100000) before the code to analyse \
    runs, then torch.cuda.memory._dump_snapshot(\"snapshot.pickle\").";

/// The smallest saving worth a change of configuration: 5 % of the baseline's peak reserved.
/// Below it the difference is within what run-to-run variation (and the model's distance to
/// PyTorch on a mid-run history) can account for.
pub const WORTH: f64 = 0.05;

/// One row of the what-if table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    /// Machine name: `recorded`, or an allocator's registry name (`torch`,
    /// `torch-expandable`, `online`, `guided`).
    pub allocator: String,
    /// What the row is, for people.
    pub label: String,
    /// Its peak reserved bytes.
    pub peak_reserved: u64,
    /// Bytes saved against the baseline (the recorded figure, or the torch model's when
    /// nothing was recorded); negative when it needs more.
    pub saved: i64,
    /// `peak_reserved / baseline`.
    pub ratio: f64,
}

/// What to do, and the exact lines that do it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    /// Machine name: `expandable_segments`, `memplan_guided`, `reduce_live_bytes`,
    /// `record_history`.
    pub action: String,
    /// One sentence.
    pub summary: String,
    /// The lines to run or paste, in order.
    pub apply: Vec<String>,
}

/// Replays `trace` through PyTorch's allocator model (at `segment_addresses`, the ones the
/// recording gave, when known), its expandable-segments mode, memplan's online allocator and
/// the plan-guided allocator (a plan made from the trace's first iteration). `recorded` is
/// PyTorch's own figure, when the file has one: it is the first row and the baseline.
///
/// # Errors
/// [`Failure::Internal`] when an allocator rejects a valid free; [`Failure::Input`] when the
/// trace cannot be planned.
pub fn what_if(
    trace: &Trace,
    segment_addresses: Vec<u64>,
    recorded: Option<u64>,
) -> Result<Vec<WhatIf>, Failure> {
    // Large histories take seconds: a spinner shows on a terminal after one.
    let _spinner = Spinner::start(format!(
        "what if: planning and replaying {} events through 4 allocators",
        trace.len()
    ));
    let plan = plan_of(trace, 1, None)?.plan;
    let settings = Settings {
        plan: Some(plan),
        segment_addresses,
        ..Settings::default()
    };
    let mut rows: Vec<(String, String, u64)> = Vec::new();
    if let Some(r) = recorded {
        rows.push(("recorded".into(), "PyTorch, as recorded".into(), r));
    }
    for (kind, label) in [
        (AllocatorKind::Torch, "torch model (PyTorch's allocator)"),
        (
            AllocatorKind::TorchExpandable,
            "torch model, expandable segments",
        ),
        (AllocatorKind::Online, "memplan online"),
        (
            AllocatorKind::Guided,
            "memplan guided (plan from the trace)",
        ),
    ] {
        let mut a = registry::build(kind, &settings)
            .map_err(|e| Failure::Internal(format!("{kind}: {e}")))?;
        let r = replay(trace, a.as_mut())?;
        rows.push((kind.name().to_owned(), label.to_owned(), r.peak_reserved));
    }
    let base = rows[0].2;
    Ok(rows
        .into_iter()
        .map(|(allocator, label, peak_reserved)| WhatIf {
            allocator,
            label,
            peak_reserved,
            saved: i64::try_from(i128::from(base) - i128::from(peak_reserved)).unwrap_or(0),
            ratio: if base == 0 {
                1.0
            } else {
                peak_reserved as f64 / base as f64
            },
        })
        .collect())
}

/// The recommendation for a report with a what-if table: among the changes a user can make —
/// PyTorch's expandable segments (an environment variable), memplan's online allocator (the
/// hook, no plan), the plan-guided allocator (the hook and a plan) — the least effort one that
/// saves within [`WORTH`] of the best saving, when the best saves at least [`WORTH`]; else
/// advice on live bytes.
pub fn recommend(file: &str, r: &Report) -> Recommendation {
    let Some(base) = r.what_if.first() else {
        return Recommendation::default();
    };
    let worth = (WORTH * base.peak_reserved as f64) as i64;
    // In order of effort.
    let options: Vec<&WhatIf> = ["torch-expandable", "online", "guided"]
        .iter()
        .filter_map(|name| r.what_if.iter().find(|w| w.allocator == *name))
        .collect();
    let best = options.iter().map(|w| w.saved).max().unwrap_or(0);
    let from = bytes(base.peak_reserved);
    let chosen = options
        .iter()
        .find(|w| best >= worth && w.saved >= worth && w.saved >= best - worth);
    let hook = |allocator: &str, plan: bool| {
        let mut lines = Vec::new();
        if plan {
            lines.push(format!("memplan plan-trace {file} --out job.plan"));
        }
        lines.push("cargo build --release -p memplan-ffi".into());
        lines.push("import os, torch".into());
        lines.push(if plan {
            format!(
                "os.environ.update(MEMPLAN_ALLOCATOR=\"{allocator}\", MEMPLAN_PLAN=\"job.plan\")"
            )
        } else {
            format!("os.environ[\"MEMPLAN_ALLOCATOR\"] = \"{allocator}\"")
        });
        lines.push(
            "torch.cuda.memory.change_current_allocator(torch.cuda.memory.\
             CUDAPluggableAllocator(\"target/release/libmemplan.so\", \"mp_torch_malloc\", \
             \"mp_torch_free\"))"
                .into(),
        );
        lines
    };
    const HOOK_STATUS: &str = "(the hook is tested on memplan's host backend; try it on your \
                               GPU before relying on it)";
    match chosen.map(|w| (w.allocator.as_str(), w)) {
        Some(("torch-expandable", w)) => Recommendation {
            action: "expandable_segments".into(),
            summary: format!(
                "turn on PyTorch's expandable segments: peak reserved {from} -> {} (saves {}), \
                 no code change. Set it in the environment before the process starts:",
                bytes(w.peak_reserved),
                bytes(w.saved.unsigned_abs())
            ),
            apply: vec!["export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True".into()],
        },
        Some(("online", w)) => Recommendation {
            action: "memplan_online".into(),
            summary: format!(
                "allocate through memplan's online allocator: peak reserved {from} -> {} \
                 (saves {}). Build the hook and load it at the top of the training script, \
                 before any CUDA allocation {HOOK_STATUS}:",
                bytes(w.peak_reserved),
                bytes(w.saved.unsigned_abs())
            ),
            apply: hook("online", false),
        },
        Some((_, w)) => Recommendation {
            action: "memplan_guided".into(),
            summary: format!(
                "serve this job from a memplan plan: peak reserved {from} -> {} (saves {}). \
                 Make the plan from this recording, build the hook, and load it at the top of \
                 the training script, before any CUDA allocation {HOOK_STATUS}. The figure \
                 assumes later runs allocate as this one did:",
                bytes(w.peak_reserved),
                bytes(w.saved.unsigned_abs())
            ),
            apply: hook("guided", true),
        },
        None => Recommendation {
            action: "reduce_live_bytes".into(),
            summary: format!(
                "the allocator is not what costs memory here: {} requested at the peak for \
                 {from} reserved, and no allocator saves {:.0} % of it. To go lower, keep fewer \
                 bytes live at the peak: recompute activations (torch.utils.checkpoint; \
                 `memplan remat` simulates it on DTR logs), a smaller batch, or lower-precision \
                 activations.",
                bytes(r.peak_requested.unwrap_or(0)),
                100.0 * WORTH
            ),
            apply: Vec::new(),
        },
    }
}

/// The recommendation for a state-only snapshot.
pub fn recommend_from_state(r: &Report) -> Recommendation {
    let gaps = r.fragmentation_at_end.map_or(0, |f| f.free_gaps);
    let reserved = r.fragmentation_at_end.map_or(0, |f| f.reserved);
    let summary = if reserved > 0 && gaps as f64 >= WORTH * reserved as f64 {
        format!(
            "{} of the {} reserved are free gaps between live blocks: expandable segments \
             usually reclaim such gaps, but only a history shows by how much — record one \
             and run memplan analyze on it.",
            bytes(gaps),
            bytes(reserved)
        )
    } else {
        format!(
            "little is lost to fragmentation at this moment ({} free gaps of {} reserved); \
             record a history to see the peak and what each allocator would reserve.",
            bytes(gaps),
            bytes(reserved)
        )
    };
    Recommendation {
        action: "record_history".into(),
        summary,
        apply: vec![
            "torch.cuda.memory._record_memory_history(max_entries=100000)".into(),
            "# ... the code to analyse ...".into(),
            "torch.cuda.memory._dump_snapshot(\"snapshot.pickle\")".into(),
        ],
    }
}
