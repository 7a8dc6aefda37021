//! Tensors into chunks: [`Layout`] and the chunk-size search [`search_chunk_size`].
//!
//! Tensors are taken in order of first use (ties: input order) and appended to the last chunk
//! while they fit, else a new chunk is opened (PatrickStar's `append_tensor`). A chunk's
//! capacity is counted in *elements*, so one layout serves the four state kinds: chunk
//! position `p` holds the same tensors at the same element offsets in its fp16-param,
//! fp32-param, momentum and variance chunks (PatrickStar's `append_tensor_as_ref`).
//!
//! ```text
//! position:        0                    1                    2
//! ParamFp16   [t0 t1 t2 ....]      [t3 ......... ]      [t4 t5 .......]   chunk_numel × param bytes
//! ParamFp32   [t0 t1 t2 ....]      [t3 ......... ]      [t4 t5 .......]   chunk_numel × 4
//! Momentum    (same)               (same)               (same)            chunk_numel × 4
//! Variance    (same)               (same)               (same)            chunk_numel × 4
//! ```
//! A [`ChunkId`] is `position × 4 + kind`, so ids of one position are consecutive.

use alloc::vec;
use alloc::vec::Vec;

use super::error::ChunkError;
use super::model::{ChunkId, StateKind, Tensor};

/// Where a tensor sits in the layout: its chunk position and element offset (the same in the
/// position's four chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSlot {
    /// Chunk position.
    pub position: u32,
    /// Offset in elements inside the chunk.
    pub offset: u64,
}

/// Tensors laid out into chunk positions. Invariants: every tensor has one slot; slots in one
/// position do not overlap and end at or before `chunk_numel`; `used[p]` is the end of the
/// last slot in position `p`; positions are numbered in order of first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    chunk_numel: u64,
    param_bytes: u64,
    /// `slots[i]` is the slot of input tensor `i`.
    slots: Vec<TensorSlot>,
    /// Elements used in each position.
    used: Vec<u64>,
    /// Input indices of the tensors in each position, in layout order.
    members: Vec<Vec<usize>>,
}

/// Checks the tensors and returns their common element size.
fn validate(tensors: &[Tensor]) -> Result<u64, ChunkError> {
    let first = tensors.first().ok_or(ChunkError::EmptyModel)?;
    for t in tensors {
        if t.numel == 0 {
            return Err(ChunkError::ZeroNumel {
                tensor: t.name.clone(),
            });
        }
        if t.dtype_bytes == 0 {
            return Err(ChunkError::ZeroDtype {
                tensor: t.name.clone(),
            });
        }
        if t.dtype_bytes != first.dtype_bytes {
            return Err(ChunkError::MixedDtype {
                tensor: t.name.clone(),
                dtype_bytes: t.dtype_bytes,
                expected: first.dtype_bytes,
            });
        }
        if t.last_use < t.first_use {
            return Err(ChunkError::BadUse {
                tensor: t.name.clone(),
                first_use: t.first_use,
                last_use: t.last_use,
            });
        }
    }
    Ok(first.dtype_bytes)
}

/// Input indices in order of first use (stable).
fn use_order(tensors: &[Tensor]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].first_use, i));
    order
}

/// Number of chunks next-fit needs for `sizes` (in order) with capacity `cap`, or `None` when
/// one size exceeds `cap`.
fn next_fit_count(sizes: &[u64], cap: u64) -> Option<u64> {
    let mut count = 0u64;
    let mut used = cap; // forces a first chunk
    for &s in sizes {
        if s > cap {
            return None;
        }
        if cap - used >= s {
            used += s;
        } else {
            count += 1;
            used = s;
        }
    }
    Some(count)
}

impl Layout {
    /// Lays `tensors` out in order of first use into chunks of `chunk_numel` elements.
    ///
    /// # Errors
    /// [`ChunkError::EmptyModel`], [`ChunkError::ZeroChunkSize`], the per-tensor checks
    /// (`ZeroNumel`, `ZeroDtype`, `MixedDtype`, `BadUse`), and
    /// [`ChunkError::TensorTooLarge`] for a tensor that does not fit in one chunk.
    ///
    /// # Complexity
    /// O(n log n) for n tensors.
    pub fn new(tensors: &[Tensor], chunk_numel: u64) -> Result<Layout, ChunkError> {
        let param_bytes = validate(tensors)?;
        if chunk_numel == 0 {
            return Err(ChunkError::ZeroChunkSize);
        }
        // Every chunk's byte size must be representable.
        chunk_numel
            .checked_mul(param_bytes.max(4))
            .ok_or(ChunkError::Overflow {
                what: "chunk bytes",
            })?;
        let mut slots = vec![
            TensorSlot {
                position: 0,
                offset: 0
            };
            tensors.len()
        ];
        let mut used: Vec<u64> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for i in use_order(tensors) {
            let t = &tensors[i];
            if t.numel > chunk_numel {
                return Err(ChunkError::TensorTooLarge {
                    tensor: t.name.clone(),
                    numel: t.numel,
                    chunk_numel,
                });
            }
            let fits = used.last().is_some_and(|&u| chunk_numel - u >= t.numel);
            if !fits {
                used.push(0);
                members.push(Vec::new());
            }
            let p = used.len() - 1;
            slots[i] = TensorSlot {
                position: u32::try_from(p).map_err(|_| ChunkError::Overflow {
                    what: "chunk count",
                })?,
                offset: used[p],
            };
            used[p] += t.numel;
            members[p].push(i);
        }
        u32::try_from(used.len() * 4).map_err(|_| ChunkError::Overflow {
            what: "chunk count",
        })?;
        Ok(Layout {
            chunk_numel,
            param_bytes,
            slots,
            used,
            members,
        })
    }

    /// Chunk capacity in elements.
    pub fn chunk_numel(&self) -> u64 {
        self.chunk_numel
    }

    /// Bytes per element of the compute parameters.
    pub fn param_bytes(&self) -> u64 {
        self.param_bytes
    }

    /// Number of chunk positions (each has one chunk of every kind).
    pub fn positions(&self) -> u32 {
        self.used.len() as u32
    }

    /// Number of chunks (`positions × 4`).
    pub fn chunk_count(&self) -> u32 {
        self.positions() * 4
    }

    /// Number of tensors laid out (the length of the tensor list it was built from).
    pub fn tensor_count(&self) -> usize {
        self.slots.len()
    }

    /// The slots of all tensors, indexed by input tensor.
    pub fn slots(&self) -> &[TensorSlot] {
        &self.slots
    }

    /// The slot of input tensor `i`, or `None` when out of range.
    pub fn slot(&self, i: usize) -> Option<TensorSlot> {
        self.slots.get(i).copied()
    }

    /// Input indices of the tensors at `position`, in layout order (empty when out of range).
    pub fn members(&self, position: u32) -> &[usize] {
        self.members.get(position as usize).map_or(&[], |m| m)
    }

    /// Elements used at `position` (0 when out of range).
    pub fn used(&self, position: u32) -> u64 {
        self.used.get(position as usize).copied().unwrap_or(0)
    }

    /// Bytes of one chunk of `kind`.
    pub fn chunk_bytes(&self, kind: StateKind) -> u64 {
        // Cannot overflow: checked in `new`.
        self.chunk_numel * kind.elem_bytes(self.param_bytes)
    }

    /// Byte size of every chunk, indexed by [`ChunkId::index`].
    pub fn chunk_sizes(&self) -> Vec<u64> {
        (0..self.chunk_count())
            .map(|c| self.chunk_bytes(ChunkId(c).kind()))
            .collect()
    }

    /// Unused elements over all positions (`positions × chunk_numel − total numel`).
    pub fn waste_numel(&self) -> u64 {
        self.used.iter().map(|&u| self.chunk_numel - u).sum()
    }

    /// Total bytes of all chunks of all kinds, or `None` on overflow.
    pub fn total_bytes(&self) -> Option<u64> {
        let per_position: u64 = StateKind::ALL.iter().map(|&k| self.chunk_bytes(k)).sum();
        per_position.checked_mul(u64::from(self.positions()))
    }
}

/// The result of [`search_chunk_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeChoice {
    /// The chosen chunk capacity, in elements.
    pub chunk_numel: u64,
    /// Positions the layout then has.
    pub positions: u64,
    /// Unused elements (`positions × chunk_numel − total numel`).
    pub waste_numel: u64,
}

/// Finds the chunk capacity in `[lo, hi]` elements that minimises the waste of the layout
/// [`Layout::new`] would build (ties: the smaller capacity). `lo` is raised to the largest
/// tensor when smaller.
///
/// Exact, not sampled: next-fit never needs more chunks with a larger capacity, so for each
/// achievable chunk count `n` the smallest capacity reaching `n` chunks (found by bisection)
/// is the best capacity with that count.
///
/// # Errors
/// The per-tensor checks of [`Layout::new`]; [`ChunkError::BadSearchRange`] when `lo == 0`
/// or `hi` is below `lo` (after raising `lo`); [`ChunkError::TensorTooLarge`] when the largest
/// tensor exceeds `hi`.
///
/// # Complexity
/// O(n² log hi) for n tensors in the worst case.
pub fn search_chunk_size(tensors: &[Tensor], lo: u64, hi: u64) -> Result<SizeChoice, ChunkError> {
    validate(tensors)?;
    if lo == 0 || lo > hi {
        return Err(ChunkError::BadSearchRange { lo, hi });
    }
    let order = use_order(tensors);
    let sizes: Vec<u64> = order.iter().map(|&i| tensors[i].numel).collect();
    let total = sizes
        .iter()
        .try_fold(0u64, |a, &s| a.checked_add(s))
        .ok_or(ChunkError::Overflow {
            what: "total numel",
        })?;
    let biggest = order
        .iter()
        .copied()
        .max_by_key(|&i| (tensors[i].numel, core::cmp::Reverse(i)))
        .expect("validated non-empty");
    let lo = lo.max(tensors[biggest].numel);
    if lo > hi {
        return Err(ChunkError::TensorTooLarge {
            tensor: tensors[biggest].name.clone(),
            numel: tensors[biggest].numel,
            chunk_numel: hi,
        });
    }
    let count = |c: u64| next_fit_count(&sizes, c).expect("c >= largest tensor");
    let waste = |c: u64, n: u64| {
        n.checked_mul(c)
            .map(|b| b - total)
            .ok_or(ChunkError::Overflow {
                what: "chunk bytes",
            })
    };
    let mut best = SizeChoice {
        chunk_numel: lo,
        positions: count(lo),
        waste_numel: waste(lo, count(lo))?,
    };
    let n_hi = count(hi);
    let mut n = best.positions;
    // For each count n' from count(lo) - 1 down to count(hi): the smallest c with count(c) <= n'.
    while n > n_hi {
        n -= 1;
        let (mut a, mut b) = (lo, hi); // count(b) <= n, count(a) > n
        while b - a > 1 {
            let mid = a + (b - a) / 2;
            if count(mid) <= n {
                b = mid;
            } else {
                a = mid;
            }
        }
        let got = count(b);
        let w = waste(b, got)?;
        if w < best.waste_numel || (w == best.waste_numel && b < best.chunk_numel) {
            best = SizeChoice {
                chunk_numel: b,
                positions: got,
                waste_numel: w,
            };
        }
        n = got;
    }
    Ok(best)
}
