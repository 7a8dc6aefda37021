//! The moments a training iteration uses chunks: [`Schedule`], a list of [`Moment`]s, each
//! naming the chunks it needs on the device and the non-model device bytes it takes.
//!
//! [`Schedule::training`] derives one iteration from a layout: the forward and backward
//! moments at which some fp16 chunk is `Compute` (see the state rules in `state.rs`), then one
//! optimizer moment per position needing its four chunks. [`Schedule::repeat`] chains
//! iterations. Invariants of a built schedule: each moment's `accesses` are sorted without
//! repeats, and the schedule has at most `u32::MAX` moments (the placement indexes moments
//! by `u32`).

use alloc::vec::Vec;

use super::error::ChunkError;
use super::layout::Layout;
use super::model::{ChunkId, StateKind, Tensor};

/// One moment of an access schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Moment {
    /// Chunks that must be on the device while this moment computes (sorted, no repeats).
    pub accesses: Vec<ChunkId>,
    /// Device bytes taken by everything else (activations, temporaries) at this moment.
    pub non_model: u64,
    /// Where it comes from: the model's moment for forward/backward, or `None` for an
    /// optimizer moment.
    pub label: Option<u64>,
}

/// An access schedule: what each moment needs on the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// The moments, in order.
    pub moments: Vec<Moment>,
}

impl Schedule {
    /// The schedule of one training iteration of `tensors` laid out as `layout`: one moment
    /// per distinct model moment at which some fp16 chunk is `Compute` (its tensors' first and
    /// last uses; moments where nothing is used are dropped), then one optimizer moment per
    /// position that needs its four chunks (fp16 gradients, fp32 params, momentum, variance).
    /// `non_model(label)` gives the non-model device bytes at a model moment (`None` for
    /// optimizer moments).
    ///
    /// # Errors
    /// [`ChunkError::LayoutMismatch`] when `layout` holds a different number of tensors than
    /// `tensors` (it was not built from them).
    ///
    /// # Complexity
    /// O(n log n + P) for n tensors and P positions.
    pub fn training(
        layout: &Layout,
        tensors: &[Tensor],
        non_model: impl Fn(Option<u64>) -> u64,
    ) -> Result<Schedule, ChunkError> {
        if layout.tensor_count() != tensors.len() {
            return Err(ChunkError::LayoutMismatch {
                layout: layout.tensor_count(),
                tensors: tensors.len(),
            });
        }
        // Model moments with a use, and the positions computing at each.
        let mut events: Vec<(u64, u32)> = Vec::with_capacity(tensors.len() * 2);
        for (t, slot) in tensors.iter().zip(layout.slots()) {
            events.push((t.first_use, slot.position));
            events.push((t.last_use, slot.position));
        }
        events.sort_unstable();
        events.dedup();
        let mut moments: Vec<Moment> = Vec::new();
        for (m, p) in events {
            let id = ChunkId::new(p, StateKind::ParamFp16)?;
            match moments.last_mut() {
                Some(last) if last.label == Some(m) => last.accesses.push(id),
                _ => moments.push(Moment {
                    accesses: alloc::vec![id],
                    non_model: non_model(Some(m)),
                    label: Some(m),
                }),
            }
        }
        for p in 0..layout.positions() {
            moments.push(Moment {
                accesses: StateKind::ALL
                    .iter()
                    .map(|&k| ChunkId::new(p, k))
                    .collect::<Result<_, _>>()?,
                non_model: non_model(None),
                label: None,
            });
        }
        Ok(Schedule { moments })
    }

    /// This schedule `n` times over.
    ///
    /// # Errors
    /// [`ChunkError::Overflow`] when the result would have more than `u32::MAX` moments (the
    /// most [`place`](super::placement::place) accepts).
    pub fn repeat(&self, n: u64) -> Result<Schedule, ChunkError> {
        let total = u64::try_from(self.moments.len())
            .ok()
            .and_then(|len| len.checked_mul(n))
            .filter(|&t| t <= u64::from(u32::MAX))
            .ok_or(ChunkError::Overflow { what: "moments" })?;
        if total == 0 {
            return Ok(Schedule::default());
        }
        let mut moments = Vec::with_capacity(total as usize);
        for _ in 0..n {
            moments.extend(self.moments.iter().cloned());
        }
        Ok(Schedule { moments })
    }
}
