//! [`RematError`]: why a [`Runtime`](super::Runtime) call failed.

use core::fmt;

use super::ids::TensorId;

/// Why the runtime cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RematError {
    /// Memory was needed but nothing is evictable (everything resident is pinned or locked).
    OutOfMemory {
        /// Bytes resident when it happened.
        used: u64,
        /// Bytes that were needed on top.
        need: u64,
        /// The budget.
        budget: u64,
    },
    /// Recomputation exceeded the limit given to [`Runtime::new`](super::Runtime::new).
    Thrashed {
        /// Total recomputation cost so far.
        remat_compute: u64,
        /// The limit.
        limit: u64,
    },
    /// A tensor id that was never registered.
    UnknownTensor(TensorId),
    /// An argument's alias index is out of range, an op has no outputs, or a mode was
    /// chosen wrongly (arena mode after the first tensor, a swap bandwidth of 0).
    BadOp(&'static str),
    /// `release` of a tensor with no references left, or `unlock` of one that is not locked.
    Unbalanced(TensorId),
    /// A size or cost sum overflowed `u64`.
    Overflow,
}

impl fmt::Display for RematError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RematError::OutOfMemory { used, need, budget } => write!(
                f,
                "out of memory: {used} bytes resident, {need} more needed, budget {budget}, \
                 nothing evictable"
            ),
            RematError::Thrashed {
                remat_compute,
                limit,
            } => write!(
                f,
                "thrashed: recomputation {remat_compute} exceeds limit {limit}"
            ),
            RematError::UnknownTensor(t) => write!(f, "unknown tensor {}", t.0),
            RematError::BadOp(why) => write!(f, "bad op: {why}"),
            RematError::Unbalanced(t) => {
                write!(
                    f,
                    "tensor {}: release or unlock without a matching reference",
                    t.0
                )
            }
            RematError::Overflow => f.write_str("size or cost overflows u64"),
        }
    }
}
