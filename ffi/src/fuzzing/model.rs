//! The model of a packer: the buffers added, the outcome of the last pack, what
//! `mp_packer_last_error` must say.

use super::*;

/// A buffer as the model remembers it.
#[derive(Debug, Clone)]
pub(super) struct ModelBuffer {
    pub(super) id: Vec<u8>,
    pub(super) lower: u64,
    pub(super) upper: u64,
    pub(super) size: u64,
    /// The alignment given, 0 read as 1.
    pub(super) alignment: u64,
}

impl ModelBuffer {
    pub(super) fn overlaps_in_time(&self, other: &ModelBuffer) -> bool {
        self.lower < other.upper && other.lower < self.upper
    }
}

/// A plan read back after a successful pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) offsets: Vec<u64>,
    pub(super) peak: u64,
    pub(super) optimal: bool,
    pub(super) nodes: u64,
}

/// What the last pack left readable.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    Unpacked,
    Packed(Plan),
    OverCapacity { best_peak: u64, proven: bool },
}

/// What `mp_packer_last_error` must say.
#[derive(Debug, Clone)]
pub(super) enum LastError {
    /// Empty: no add/pack yet, or the last one succeeded.
    Empty,
    /// The last add/pack failed: some detail, naming `names` when set, and equal to `text`
    /// once it has been read (reader failures do not change it).
    Failed {
        names: Option<String>,
        text: Option<Vec<u8>>,
    },
}

/// The expected state of the packer.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) buffers: Vec<ModelBuffer>,
    /// Sum of `size + alignment - 1` over the buffers (core refuses sums above `u64::MAX`).
    pub(super) total: u128,
    pub(super) outcome: Outcome,
    pub(super) last_error: LastError,
    /// The options and plan of the last deterministic (no time limit) successful pack since
    /// the last successful add: the same options must give the same plan.
    pub(super) last_plan: Option<(mp_pack_options, Plan)>,
    /// Numbers fresh ids.
    pub(super) next_id: u32,
}

impl Model {
    pub(super) fn new() -> Model {
        Model {
            buffers: Vec::new(),
            total: 0,
            outcome: Outcome::Unpacked,
            last_error: LastError::Empty,
            last_plan: None,
            next_id: 0,
        }
    }

    /// The largest total size of buffers alive at one moment, computed naively.
    pub(super) fn max_load(&self) -> u64 {
        let load = |t: u64| -> u128 {
            self.buffers
                .iter()
                .filter(|b| b.lower <= t && t < b.upper)
                .map(|b| u128::from(b.size))
                .sum()
        };
        let max = self
            .buffers
            .iter()
            .map(|b| load(b.lower))
            .max()
            .unwrap_or(0);
        u64::try_from(max).expect("max load fits u64 (sizes are checked on add)")
    }

    pub(super) fn failed(&mut self, names: Option<String>) {
        self.last_error = LastError::Failed { names, text: None };
    }
}
