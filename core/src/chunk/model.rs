//! The nouns every chunk file shares: a model [`Tensor`] as the placement sees it, the four
//! [`StateKind`]s kept in chunks, and [`ChunkId`] (`position × 4 + kind`, so the ids of one
//! position are consecutive). A leaf: it uses only [`ChunkError`].

use alloc::string::String;

use super::error::ChunkError;

/// The four kinds of model state kept in chunks, in `ChunkId` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKind {
    /// Compute-precision parameters (fp16/bf16); their gradients overwrite them in backward.
    ParamFp16 = 0,
    /// fp32 master parameters.
    ParamFp32 = 1,
    /// Adam first moment (fp32).
    Momentum = 2,
    /// Adam second moment (fp32).
    Variance = 3,
}

impl StateKind {
    /// All kinds, in id order.
    pub const ALL: [StateKind; 4] = [
        StateKind::ParamFp16,
        StateKind::ParamFp32,
        StateKind::Momentum,
        StateKind::Variance,
    ];

    /// Bytes per element of this kind, given the compute parameters' element size.
    pub fn elem_bytes(self, param_bytes: u64) -> u64 {
        match self {
            StateKind::ParamFp16 => param_bytes,
            _ => 4,
        }
    }

    /// Short lowercase name (`fp16`, `fp32`, `momentum`, `variance`).
    pub fn name(self) -> &'static str {
        match self {
            StateKind::ParamFp16 => "fp16",
            StateKind::ParamFp32 => "fp32",
            StateKind::Momentum => "momentum",
            StateKind::Variance => "variance",
        }
    }
}

/// One chunk: `position × 4 + kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId(pub u32);

impl ChunkId {
    /// The chunk of `kind` at `position`.
    ///
    /// # Errors
    /// [`ChunkError::Overflow`] when `position × 4 + kind` does not fit in `u32` (a layout
    /// never has such positions).
    pub fn new(position: u32, kind: StateKind) -> Result<ChunkId, ChunkError> {
        position
            .checked_mul(4)
            .map(|p| ChunkId(p + kind as u32))
            .ok_or(ChunkError::Overflow { what: "chunk id" })
    }

    /// Its chunk position.
    pub fn position(self) -> u32 {
        self.0 / 4
    }

    /// Its state kind.
    pub fn kind(self) -> StateKind {
        StateKind::ALL[(self.0 % 4) as usize]
    }

    /// Its index into per-chunk arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A model-data tensor as the chunk layout and placement see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Name, for messages.
    pub name: String,
    /// Element count (> 0).
    pub numel: u64,
    /// Bytes per element of the compute copy (> 0, equal for all tensors of a layout).
    pub dtype_bytes: u64,
    /// The moment of its first use (forward).
    pub first_use: u64,
    /// The moment of its last use (backward), `>= first_use`.
    pub last_use: u64,
}
