//! Tensor and chunk states (PatrickStar's): a tensor's state at a moment follows from its
//! first and last use ([`tensor_state_at`]); a chunk's state is derived from its tensors'
//! states by PatrickStar's priority rule ([`chunk_state`]). A chunk must be on the device
//! exactly at the moments it is `Compute`.

use super::model::Tensor;

/// State of a tensor at a moment (PatrickStar's `TensorState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TensorState {
    /// No payload.
    Free,
    /// Being used by the current operator: must be on the device.
    Compute,
    /// Held, not in use (before its first use).
    Hold,
    /// Held between its forward use and its backward use.
    HoldAfterFwd,
    /// Held after its last backward use (its gradient is in its slot).
    HoldAfterBwd,
}

/// State of a chunk, derived from its tensors (PatrickStar's chunk states; `Released` is the
/// state of a chunk with no payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChunkState {
    /// Some tensor is `Compute`: the chunk must be on the device and cannot move.
    Compute,
    /// Some tensor is `Hold`.
    Hold,
    /// Some tensor is `HoldAfterFwd` (and none is `Compute` or `Hold`).
    HoldAfterFwd,
    /// Some tensor is `HoldAfterBwd` (and none of the above).
    HoldAfterBwd,
    /// Every tensor is `Free` (or there are none): no payload.
    Released,
}

impl ChunkState {
    /// Whether a chunk in this state may be moved between tiers (not `Compute`, not
    /// `Released`).
    pub fn movable(self) -> bool {
        !matches!(self, ChunkState::Compute | ChunkState::Released)
    }
}

/// The chunk state from its tensors' states, by priority: any `Compute` → `Compute`; else any
/// `Hold` → `Hold`; else any `HoldAfterFwd`; else any `HoldAfterBwd`; else `Released`.
pub fn chunk_state(states: impl IntoIterator<Item = TensorState>) -> ChunkState {
    let mut best = ChunkState::Released;
    for s in states {
        let c = match s {
            TensorState::Compute => return ChunkState::Compute,
            TensorState::Hold => ChunkState::Hold,
            TensorState::HoldAfterFwd => ChunkState::HoldAfterFwd,
            TensorState::HoldAfterBwd => ChunkState::HoldAfterBwd,
            TensorState::Free => ChunkState::Released,
        };
        best = best.min(c);
    }
    best
}

/// A tensor's state at moment `m` of the forward/backward pass: `Compute` at its first and last
/// use, `Hold` before, `HoldAfterFwd` between, `HoldAfterBwd` after.
pub fn tensor_state_at(t: &Tensor, m: u64) -> TensorState {
    if m == t.first_use || m == t.last_use {
        TensorState::Compute
    } else if m < t.first_use {
        TensorState::Hold
    } else if m < t.last_use {
        TensorState::HoldAfterFwd
    } else {
        TensorState::HoldAfterBwd
    }
}
