//! Chunks of model states and their placement over device, host and NVMe (after PatrickStar).
//!
//! # Layout
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
//!
//! # States
//! A tensor's state at a moment follows from its first and last use ([`tensor_state_at`]); a
//! chunk's state is derived from its tensors' states by PatrickStar's priority rule
//! ([`chunk_state`]). A chunk must be on the device exactly at the moments it is `Compute`.
//!
//! # Placement
//! [`plan_placement`] walks an access [`Schedule`] (moments, the chunks each needs on the
//! device, the non-model device bytes at each) and emits [`Move`]s: demand fetches, evictions
//! chosen by a [`Policy`] (Belady's furthest-next-use, or LRU), and prefetches one moment
//! ahead. Invariants of its output, checked by the tests against a shadow simulation: every
//! move's `from` is where the chunk is, no tier ever holds more than its capacity (the device's
//! being `device − non_model[moment]`), and every chunk a moment needs is on the device when
//! that moment computes.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

#[cfg(test)]
mod tests;

/// What can go wrong when laying out chunks or planning their placement.
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
                numel - chunk_numel
            ),
            ChunkError::Overflow { what } => write!(f, "{what} overflows 64 bits"),
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
                need - have
            ),
            ChunkError::OffDeviceTooSmall { need, have } => write!(
                f,
                "host + NVMe too small: they must hold {need} bytes (all chunks, plus the \
                 largest chunk when split between host and NVMe) but have {have} (short by {} \
                 bytes)",
                need - have
            ),
        }
    }
}

impl core::error::Error for ChunkError {}

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
    pub fn new(position: u32, kind: StateKind) -> ChunkId {
        ChunkId(position * 4 + kind as u32)
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

/// A model-data tensor as the planner sees it.
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

/// Where a tensor sits in the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
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
    slots: Vec<Slot>,
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
            Slot {
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
            slots[i] = Slot {
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

    /// The slot of input tensor `i`, or `None` when out of range.
    pub fn slot(&self, i: usize) -> Option<Slot> {
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
    /// # Panics
    /// When `layout` was not built from `tensors` (a tensor index out of range).
    pub fn training(
        layout: &Layout,
        tensors: &[Tensor],
        non_model: impl Fn(Option<u64>) -> u64,
    ) -> Schedule {
        // Model moments with a use, and the positions computing at each.
        let mut events: Vec<(u64, u32)> = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            let p = layout.slots[i].position;
            events.push((t.first_use, p));
            events.push((t.last_use, p));
        }
        events.sort_unstable();
        events.dedup();
        let mut moments: Vec<Moment> = Vec::new();
        for (m, p) in events {
            if moments.last().and_then(|x| x.label) != Some(m) {
                moments.push(Moment {
                    accesses: Vec::new(),
                    non_model: non_model(Some(m)),
                    label: Some(m),
                });
            }
            let last = moments.last_mut().expect("pushed above");
            last.accesses.push(ChunkId::new(p, StateKind::ParamFp16));
        }
        for p in 0..layout.positions() {
            moments.push(Moment {
                accesses: StateKind::ALL.iter().map(|&k| ChunkId::new(p, k)).collect(),
                non_model: non_model(None),
                label: None,
            });
        }
        Schedule { moments }
    }

    /// This schedule `n` times over.
    pub fn repeat(&self, n: usize) -> Schedule {
        let mut moments = Vec::with_capacity(self.moments.len() * n);
        for _ in 0..n {
            moments.extend(self.moments.iter().cloned());
        }
        Schedule { moments }
    }
}

/// A memory tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// GPU memory.
    Device = 0,
    /// Host (pinned CPU) memory.
    Host = 1,
    /// NVMe storage.
    Nvme = 2,
}

impl Tier {
    /// All tiers, in index order.
    pub const ALL: [Tier; 3] = [Tier::Device, Tier::Host, Tier::Nvme];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Device => "device",
            Tier::Host => "host",
            Tier::Nvme => "nvme",
        }
    }
}

/// How to choose which chunk leaves a full tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Evict the chunk whose next use is furthest away (never used again counts as furthest;
    /// ties: the lower id), as PatrickStar's OPT policy.
    Belady,
    /// Evict the least recently used chunk (never used counts as oldest; ties: the lower id).
    Lru,
}

/// Capacities and options of [`plan_placement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementOptions {
    /// Device bytes (chunks plus non-model memory).
    pub device: u64,
    /// Host bytes.
    pub host: u64,
    /// NVMe bytes (0: no NVMe tier).
    pub nvme: u64,
    /// Eviction policy.
    pub policy: Policy,
    /// Fetch the next moment's chunks one moment ahead when room can be made without evicting
    /// a chunk that this or the next moment needs.
    pub prefetch: bool,
}

/// One move of a chunk between tiers. An executor applies the moves in order; all moves at
/// moment `m` happen before moment `m` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The chunk.
    pub chunk: ChunkId,
    /// Where it is.
    pub from: Tier,
    /// Where it goes.
    pub to: Tier,
    /// The schedule moment before which it happens.
    pub moment: u32,
    /// Its size.
    pub bytes: u64,
    /// True for a fetch to the device issued before the moment that needs it.
    pub prefetch: bool,
}

/// The output of [`plan_placement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementPlan {
    /// Where every chunk starts, indexed by [`ChunkId::index`] (never the device).
    pub initial: Vec<Tier>,
    /// The moves, in execution order (moments non-decreasing).
    pub moves: Vec<Move>,
    /// Bytes moved, `bytes[from][to]` by tier index.
    pub bytes: [[u64; 3]; 3],
    /// Bytes fetched to the device in all.
    pub fetched: u64,
    /// Of `fetched`, bytes fetched at an earlier moment than their use (stall-free).
    pub prefetched: u64,
    /// Chunk bytes on the device at the end of each moment's moves (prefetches included).
    pub device_bytes: Vec<u64>,
}

impl PlacementPlan {
    /// Total bytes moved between any two tiers.
    pub fn total_moved(&self) -> u64 {
        self.bytes.iter().flatten().sum()
    }

    /// Fraction of device fetches that were prefetched (1.0 when nothing was fetched).
    pub fn prefetch_coverage(&self) -> f64 {
        if self.fetched == 0 {
            1.0
        } else {
            self.prefetched as f64 / self.fetched as f64
        }
    }
}

/// The planner's running state.
struct Planner<'a> {
    sizes: &'a [u64],
    schedule: &'a Schedule,
    options: PlacementOptions,
    /// `uses[c]`: sorted moments at which chunk `c` is accessed.
    uses: Vec<Vec<u32>>,
    at: Vec<Tier>,
    /// Bytes on each tier.
    load: [u64; 3],
    /// Last access moment of each chunk (LRU), `None` when never accessed yet.
    last: Vec<Option<u32>>,
    /// Chunks on the device (sorted for deterministic scans).
    on_device: BTreeSet<ChunkId>,
    on_host: BTreeSet<ChunkId>,
    plan: PlacementPlan,
}

impl Planner<'_> {
    /// Next access of `c` strictly after `m` (`u32::MAX` when none).
    fn next_use(&self, c: ChunkId, m: u32) -> u32 {
        let u = &self.uses[c.index()];
        let i = u.partition_point(|&x| x <= m);
        u.get(i).copied().unwrap_or(u32::MAX)
    }

    /// Victim among `candidates` at moment `m` (uses after `after` count for Belady).
    fn victim(&self, candidates: impl Iterator<Item = ChunkId>, after: u32) -> Option<ChunkId> {
        match self.options.policy {
            // max next use; among equals the lowest id (ids scanned ascending, strict >).
            Policy::Belady => {
                let mut best: Option<(u32, ChunkId)> = None;
                for c in candidates {
                    let n = self.next_use(c, after);
                    if best.is_none_or(|(bn, _)| n > bn) {
                        best = Some((n, c));
                    }
                }
                best.map(|(_, c)| c)
            }
            Policy::Lru => {
                let mut best: Option<(Option<u32>, ChunkId)> = None;
                for c in candidates {
                    let l = self.last[c.index()];
                    if best.is_none_or(|(bl, _)| l < bl) {
                        best = Some((l, c));
                    }
                }
                best.map(|(_, c)| c)
            }
        }
    }

    fn record(&mut self, c: ChunkId, to: Tier, moment: u32, prefetch: bool) {
        let from = self.at[c.index()];
        let bytes = self.sizes[c.index()];
        self.load[from as usize] -= bytes;
        self.load[to as usize] += bytes;
        self.at[c.index()] = to;
        match from {
            Tier::Device => self.on_device.remove(&c),
            Tier::Host => self.on_host.remove(&c),
            Tier::Nvme => false,
        };
        match to {
            Tier::Device => self.on_device.insert(c),
            Tier::Host => self.on_host.insert(c),
            Tier::Nvme => false,
        };
        self.plan.bytes[from as usize][to as usize] += bytes;
        if to == Tier::Device {
            self.plan.fetched += bytes;
            if prefetch {
                self.plan.prefetched += bytes;
            }
        }
        self.plan.moves.push(Move {
            chunk: c,
            from,
            to,
            moment,
            bytes,
            prefetch,
        });
    }

    /// Moves device chunk `c` off the device at moment `m`: to the host when it has room;
    /// otherwise the policy picks, among the host's chunks and `c`, one to go to NVMe.
    fn evict(&mut self, c: ChunkId, m: u32) {
        let size = self.sizes[c.index()];
        loop {
            if self.options.host - self.load[Tier::Host as usize] >= size {
                self.record(c, Tier::Host, m, false);
                return;
            }
            // The slack `plan_placement` demands (host + NVMe >= all chunks + the largest one)
            // keeps host-free + NVMe-free >= size + largest while `c` is on the device, so
            // with the host short of `size`, NVMe has room for `c` (and any other chunk).
            let nvme_free = self.options.nvme - self.load[Tier::Nvme as usize];
            debug_assert!(nvme_free >= size);
            let candidates: Vec<ChunkId> = self
                .on_host
                .iter()
                .copied()
                .chain(core::iter::once(c))
                .filter(|x| self.sizes[x.index()] <= nvme_free)
                .collect();
            let v = self
                .victim(candidates.into_iter(), m)
                .expect("candidates include c");
            self.record(v, Tier::Nvme, m, false);
            if v == c {
                return;
            }
        }
    }

    /// Frees device room until `need` more bytes fit under `cap`, evicting chunks not in
    /// `keep`. Returns false (having evicted some) when that is impossible.
    fn make_room(&mut self, need: u64, cap: u64, keep: &[&[ChunkId]], m: u32, after: u32) -> bool {
        while self.load[Tier::Device as usize] + need > cap {
            let candidates: Vec<ChunkId> = self
                .on_device
                .iter()
                .copied()
                .filter(|c| keep.iter().all(|k| k.binary_search(c).is_err()))
                .collect();
            match self.victim(candidates.into_iter(), after) {
                Some(v) => self.evict(v, m),
                None => return false,
            }
        }
        true
    }
}

/// `v` sorted, without repeats.
fn sorted_unique(v: &[ChunkId]) -> Vec<ChunkId> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.dedup();
    s
}

/// Plans chunk placement for `schedule` over device, host and NVMe.
///
/// `sizes[c]` is the byte size of chunk `c`. Every chunk starts off the device: on the host in
/// order of first access while it has room, then on NVMe. At each moment the planner (1)
/// evicts until the device fits its capacity minus the moment's non-model bytes, (2) fetches
/// the moment's missing chunks, evicting others by the policy, and (3) with prefetch on,
/// fetches the next moment's missing chunks when room can be made under both moments'
/// capacities without evicting a chunk either moment needs. Evicted chunks go to the host,
/// or, when it is full, the policy sends one of the host's chunks (or the evicted one) to
/// NVMe.
///
/// # Errors
/// [`ChunkError::UnknownChunk`] for an access to a chunk without a size,
/// [`ChunkError::OffDeviceTooSmall`] when host + NVMe cannot hold every chunk (with one
/// largest chunk of slack when the host alone cannot),
/// [`ChunkError::WorkingSetTooLarge`] when one moment's chunks cannot fit on the device,
/// [`ChunkError::Overflow`] for sizes summing past `u64` or more than `u32::MAX` moments.
///
/// # Complexity
/// O(M · (A + D · E)) for M moments, A accesses per moment, D chunks on the device and E
/// evictions per moment.
pub fn plan_placement(
    sizes: &[u64],
    schedule: &Schedule,
    options: PlacementOptions,
) -> Result<PlacementPlan, ChunkError> {
    let moments = u32::try_from(schedule.moments.len())
        .map_err(|_| ChunkError::Overflow { what: "moments" })?;
    let n = sizes.len();
    let mut uses: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (m, moment) in schedule.moments.iter().enumerate() {
        let m = m as u32;
        let mut need = 0u64;
        for c in sorted_unique(&moment.accesses) {
            let size = *sizes.get(c.index()).ok_or(ChunkError::UnknownChunk {
                chunk: c.0,
                moment: m,
            })?;
            uses[c.index()].push(m);
            need = need.checked_add(size).ok_or(ChunkError::Overflow {
                what: "working set",
            })?;
        }
        let have = options.device.saturating_sub(moment.non_model);
        if need > have {
            return Err(ChunkError::WorkingSetTooLarge {
                moment: m,
                need,
                have,
            });
        }
    }
    let total = sizes
        .iter()
        .try_fold(0u64, |a, &s| a.checked_add(s))
        .ok_or(ChunkError::Overflow {
            what: "total chunk bytes",
        })?;
    // All chunks on the host; or, split between host and NVMe, room for all plus the largest
    // chunk, so that an eviction always finds room (see `Planner::evict`).
    let off = options.host.saturating_add(options.nvme);
    let need = if options.host >= total || options.nvme == 0 {
        total
    } else {
        total.saturating_add(sizes.iter().copied().max().unwrap_or(0))
    };
    if need > off {
        return Err(ChunkError::OffDeviceTooSmall { need, have: off });
    }
    // Initial placement: host in order of first access (never-accessed last), then NVMe.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&c| (uses[c].first().copied().unwrap_or(u32::MAX), c));
    let mut at = vec![Tier::Nvme; n];
    let mut load = [0u64; 3];
    let mut on_host = BTreeSet::new();
    for c in order {
        if options.host - load[1] >= sizes[c] {
            at[c] = Tier::Host;
            load[1] += sizes[c];
            on_host.insert(ChunkId(c as u32));
        } else {
            at[c] = Tier::Nvme;
            load[2] += sizes[c];
        }
    }
    let mut p = Planner {
        sizes,
        schedule,
        options,
        uses,
        plan: PlacementPlan {
            initial: at.clone(),
            moves: Vec::new(),
            bytes: [[0; 3]; 3],
            fetched: 0,
            prefetched: 0,
            device_bytes: Vec::with_capacity(moments as usize),
        },
        at,
        load,
        last: vec![None; n],
        on_device: BTreeSet::new(),
        on_host,
    };
    for m in 0..moments {
        let moment = &p.schedule.moments[m as usize];
        let need = sorted_unique(&moment.accesses);
        let cap = options.device.saturating_sub(moment.non_model);
        // (1) non-model memory grew: evict down to the capacity.
        let ok = p.make_room(0, cap, &[&need], m, m);
        debug_assert!(ok, "chunks this moment needs fit (checked above)");
        // (2) demand fetches.
        for &c in &need {
            if p.at[c.index()] != Tier::Device {
                let ok = p.make_room(p.sizes[c.index()], cap, &[&need], m, m);
                debug_assert!(ok, "the working set fits (checked above)");
                p.record(c, Tier::Device, m, false);
            }
        }
        for &c in &need {
            p.last[c.index()] = Some(m);
        }
        // (3) prefetch the next moment's chunks.
        if options.prefetch && m + 1 < moments {
            let next = &p.schedule.moments[m as usize + 1];
            let want = sorted_unique(&next.accesses);
            let cap2 = cap.min(options.device.saturating_sub(next.non_model));
            // Bytes that must stay: chunks on the device that this or the next moment needs.
            let mut pinned: u64 = need.iter().map(|c| p.sizes[c.index()]).sum();
            pinned += want
                .iter()
                .filter(|c| p.at[c.index()] == Tier::Device && need.binary_search(c).is_err())
                .map(|c| p.sizes[c.index()])
                .sum::<u64>();
            for &c in &want {
                if p.at[c.index()] == Tier::Device {
                    continue;
                }
                let size = p.sizes[c.index()];
                if pinned + size > cap2 {
                    break;
                }
                let ok = p.make_room(size, cap2, &[&need, &want], m, m + 1);
                debug_assert!(ok, "the pinned chunks plus this one fit");
                p.record(c, Tier::Device, m, true);
                pinned += size;
            }
        }
        p.plan.device_bytes.push(p.load[Tier::Device as usize]);
    }
    Ok(p.plan)
}
