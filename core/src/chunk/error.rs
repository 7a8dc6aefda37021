//! [`ChunkError`]: what can go wrong in the chunk module (a leaf: it names no other chunk
//! type, so every file of the module may use it).

use alloc::string::String;
use core::fmt;

/// What can go wrong when laying out chunks or computing their placement.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// No tensors were given.
    EmptyModel,
    /// The chunk capacity is 0 elements.
    ZeroChunkSize,
    /// A tensor has 0 elements.
    ZeroNumel {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's element size is 0.
    ZeroDtype {
        /// The tensor's name.
        tensor: String,
    },
    /// Tensors have different element sizes; one layout needs one parameter dtype.
    MixedDtype {
        /// The first tensor whose element size differs from the first tensor's.
        tensor: String,
        /// Its element size in bytes.
        dtype_bytes: u64,
        /// The first tensor's element size in bytes.
        expected: u64,
    },
    /// A tensor's last use comes before its first use.
    BadUse {
        /// The tensor's name.
        tensor: String,
        /// Its first use.
        first_use: u64,
        /// Its last use.
        last_use: u64,
    },
    /// A tensor has more elements than a chunk holds.
    TensorTooLarge {
        /// The tensor's name.
        tensor: String,
        /// Its element count.
        numel: u64,
        /// The chunk capacity in elements.
        chunk_numel: u64,
    },
    /// A size computation does not fit in `u64`.
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// A training placement of 0 iterations was asked for.
    ZeroIterations,
    /// A layout and a tensor list that do not belong together: the layout holds a different
    /// number of tensors.
    LayoutMismatch {
        /// Tensors in the layout.
        layout: usize,
        /// Tensors given.
        tensors: usize,
    },
    /// The chunk-size search range is empty (`lo > hi`) or starts at 0.
    BadSearchRange {
        /// Lower end, in elements.
        lo: u64,
        /// Upper end, in elements.
        hi: u64,
    },
    /// A schedule names a chunk id that has no size.
    UnknownChunk {
        /// The chunk id.
        chunk: u32,
        /// The moment that names it.
        moment: u32,
    },
    /// The chunks one moment needs on the device do not fit in the device bytes left at that
    /// moment (capacity minus non-model bytes).
    WorkingSetTooLarge {
        /// The moment.
        moment: u32,
        /// Bytes of the chunks it needs.
        need: u64,
        /// Device bytes available to chunks then (0 when non-model bytes exceed the device).
        have: u64,
    },
    /// Host and NVMe together cannot hold every chunk (plus, when the chunks must be split
    /// between them, one largest chunk of slack), so an eviction could find no room.
    OffDeviceTooSmall {
        /// Total chunk bytes (plus the largest chunk when split between host and NVMe).
        need: u64,
        /// Host plus NVMe capacity.
        have: u64,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::EmptyModel => write!(f, "the model has no tensors"),
            ChunkError::ZeroChunkSize => write!(f, "the chunk size must be at least 1 element"),
            ChunkError::ZeroNumel { tensor } => write!(f, "tensor {tensor:?} has 0 elements"),
            ChunkError::ZeroDtype { tensor } => {
                write!(f, "tensor {tensor:?} has an element size of 0 bytes")
            }
            ChunkError::MixedDtype {
                tensor,
                dtype_bytes,
                expected,
            } => write!(
                f,
                "tensor {tensor:?} has {dtype_bytes}-byte elements but the first tensor has \
                 {expected}-byte elements; all parameters must share one dtype"
            ),
            ChunkError::BadUse {
                tensor,
                first_use,
                last_use,
            } => write!(
                f,
                "tensor {tensor:?}: last use {last_use} is before first use {first_use}"
            ),
            ChunkError::TensorTooLarge {
                tensor,
                numel,
                chunk_numel,
            } => write!(
                f,
                "tensor {tensor:?} has {numel} elements, more than a chunk's {chunk_numel} \
                 (by {} elements); use a chunk of at least {numel} elements",
                numel.saturating_sub(*chunk_numel)
            ),
            ChunkError::Overflow { what } => write!(f, "{what} overflows 64 bits"),
            ChunkError::ZeroIterations => {
                write!(f, "the number of training iterations must be at least 1")
            }
            ChunkError::LayoutMismatch { layout, tensors } => write!(
                f,
                "the layout holds {layout} tensors but {tensors} tensors were given; a schedule \
                 needs the tensors the layout was built from"
            ),
            ChunkError::BadSearchRange { lo, hi } => write!(
                f,
                "chunk-size search range [{lo}, {hi}] is empty or starts at 0"
            ),
            ChunkError::UnknownChunk { chunk, moment } => {
                write!(
                    f,
                    "moment {moment} accesses chunk {chunk}, which does not exist"
                )
            }
            ChunkError::WorkingSetTooLarge { moment, need, have } => write!(
                f,
                "device too small: moment {moment} needs {need} bytes of chunks on the device \
                 but only {have} bytes are left for chunks (short by {} bytes)",
                need.saturating_sub(*have)
            ),
            ChunkError::OffDeviceTooSmall { need, have } => write!(
                f,
                "host + NVMe too small: they must hold {need} bytes (all chunks, plus the \
                 largest chunk when split between host and NVMe) but have {have} (short by {} \
                 bytes)",
                need.saturating_sub(*have)
            ),
        }
    }
}

impl core::error::Error for ChunkError {}
