//! ZeRO-style partitioning of flat parameter, gradient and optimizer buffers across ranks.
//!
//! Parameters are concatenated into one flat buffer (each starting at a multiple of
//! `param_align` elements), padded at the end so that it splits into `group` equal shards
//! whose size is a multiple of `shard_align` elements. Ranks form `world / group` groups of
//! `group` consecutive ranks; rank `r` holds shard `r % group`, so a shard is replicated once
//! per group (ZeRO++ hpZ / MiCS partial sharding; `group == world` is plain ZeRO, `group == 1`
//! replicates everything as DDP).
//!
//! ```text
//! flat (elements):  [p0 ....][pad][p1 .......][p2 ..][ end padding ]
//! shards (group 3): [   shard 0    |    shard 1     |    shard 2    ]
//! ranks (world 6):   0, 3            1, 4             2, 5
//! ```
//! Invariants: `shard_numel × group = padded_numel ≥ flat_numel`; `shard_numel` is the least
//! multiple of `shard_align` with that property; parameter ranges do not overlap and lie in
//! `[0, flat_numel)`.
//!
//! The same layout serves every buffer kind; a buffer with `b` bytes per element has shards of
//! `shard_numel × b` bytes. Which buffers a ZeRO stage shards is [`ZeroStage`]'s business.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::units::round_up;

#[cfg(test)]
mod tests;

/// What can go wrong when sharding.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// The world size is 0.
    ZeroWorld,
    /// The sharding group size is 0 or does not divide the world size.
    BadGroup {
        /// World size.
        world: u32,
        /// Group size.
        group: u32,
    },
    /// An alignment is 0.
    ZeroAlignment,
    /// An offset or size does not fit in `u64`.
    Overflow,
    /// A parameter index is out of range.
    NoSuchParam {
        /// The index.
        param: usize,
        /// Number of parameters.
        len: usize,
    },
    /// A shard index is out of range.
    NoSuchShard {
        /// The shard.
        shard: u32,
        /// Shards per group (the group size).
        group: u32,
    },
    /// A rank is out of range.
    NoSuchRank {
        /// The rank.
        rank: u32,
        /// World size.
        world: u32,
    },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardError::ZeroWorld => write!(f, "the world size must be at least 1"),
            ShardError::BadGroup { world, group } => write!(
                f,
                "sharding group size {group} must be at least 1 and divide the world size {world}"
            ),
            ShardError::ZeroAlignment => write!(f, "alignments must be at least 1 element"),
            ShardError::Overflow => write!(f, "the flat buffer's size overflows 64 bits"),
            ShardError::NoSuchParam { param, len } => {
                write!(f, "parameter {param} does not exist (there are {len})")
            }
            ShardError::NoSuchShard { shard, group } => {
                write!(f, "shard {shard} does not exist (there are {group})")
            }
            ShardError::NoSuchRank { rank, world } => {
                write!(f, "rank {rank} does not exist (world size {world})")
            }
        }
    }
}

impl core::error::Error for ShardError {}

/// ZeRO stages: which model states are partitioned across the data-parallel group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZeroStage {
    /// Plain data parallelism: nothing is partitioned.
    Zero0 = 0,
    /// Optimizer states are partitioned.
    Zero1 = 1,
    /// Optimizer states and gradients are partitioned.
    Zero2 = 2,
    /// Optimizer states, gradients and parameters are partitioned.
    Zero3 = 3,
}

impl ZeroStage {
    /// The stage numbered `n` (0–3).
    pub fn from_number(n: u32) -> Option<ZeroStage> {
        [
            ZeroStage::Zero0,
            ZeroStage::Zero1,
            ZeroStage::Zero2,
            ZeroStage::Zero3,
        ]
        .get(n as usize)
        .copied()
    }

    /// Whether the optimizer states are partitioned.
    pub fn shards_optimizer(self) -> bool {
        self >= ZeroStage::Zero1
    }

    /// Whether the gradients are partitioned.
    pub fn shards_grads(self) -> bool {
        self >= ZeroStage::Zero2
    }

    /// Whether the parameters are partitioned.
    pub fn shards_params(self) -> bool {
        self >= ZeroStage::Zero3
    }
}

/// Options of [`ShardLayout::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardOptions {
    /// Number of ranks (≥ 1).
    pub world: u32,
    /// Ranks per sharding group (≥ 1, divides `world`).
    pub group: u32,
    /// Every parameter starts at a multiple of this many elements (≥ 1).
    pub param_align: u64,
    /// Every shard's size is a multiple of this many elements (≥ 1).
    pub shard_align: u64,
}

/// A piece of a parameter held by one shard, in bytes for a given element size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The shard holding it (ranks: [`ShardLayout::ranks_of`]).
    pub shard: u32,
    /// The bytes of the parameter, relative to the parameter's start.
    pub param_bytes: Range<u64>,
    /// Where they start inside the shard, in bytes.
    pub shard_offset: u64,
}

/// A flat buffer's partition into equal shards. See the module docs for the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLayout {
    options: ShardOptions,
    /// Element offset of each parameter in the flat buffer.
    offsets: Vec<u64>,
    /// Element count of each parameter.
    numels: Vec<u64>,
    flat_numel: u64,
    shard_numel: u64,
}

impl ShardLayout {
    /// Lays out parameters of `numels` elements (in order) and splits the buffer into shards.
    ///
    /// # Errors
    /// [`ShardError::ZeroWorld`], [`ShardError::BadGroup`], [`ShardError::ZeroAlignment`], and
    /// [`ShardError::Overflow`] when the padded buffer's size overflows `u64`.
    ///
    /// # Complexity
    /// O(n) for n parameters.
    pub fn new(numels: &[u64], options: ShardOptions) -> Result<ShardLayout, ShardError> {
        let ShardOptions {
            world,
            group,
            param_align,
            shard_align,
        } = options;
        if world == 0 {
            return Err(ShardError::ZeroWorld);
        }
        if group == 0 || world % group != 0 {
            return Err(ShardError::BadGroup { world, group });
        }
        if param_align == 0 || shard_align == 0 {
            return Err(ShardError::ZeroAlignment);
        }
        let mut offsets = Vec::with_capacity(numels.len());
        let mut end = 0u64;
        for &n in numels {
            let start = round_up(end, param_align).ok_or(ShardError::Overflow)?;
            offsets.push(start);
            end = start.checked_add(n).ok_or(ShardError::Overflow)?;
        }
        let per_shard = end.div_ceil(u64::from(group));
        let shard_numel = round_up(per_shard, shard_align).ok_or(ShardError::Overflow)?;
        shard_numel
            .checked_mul(u64::from(group))
            .and_then(|p| p.checked_mul(16)) // room for 16-byte elements
            .ok_or(ShardError::Overflow)?;
        Ok(ShardLayout {
            options,
            offsets,
            numels: numels.to_vec(),
            flat_numel: end,
            shard_numel,
        })
    }

    /// The options it was built with.
    pub fn options(&self) -> ShardOptions {
        self.options
    }

    /// Elements per shard (equal for all shards).
    pub fn shard_numel(&self) -> u64 {
        self.shard_numel
    }

    /// End of the last parameter, in elements.
    pub fn flat_numel(&self) -> u64 {
        self.flat_numel
    }

    /// The padded buffer size, `shard_numel × group`.
    pub fn padded_numel(&self) -> u64 {
        self.shard_numel * u64::from(self.options.group)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.numels.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.numels.is_empty()
    }

    /// Element range of parameter `param` in the flat buffer.
    ///
    /// # Errors
    /// [`ShardError::NoSuchParam`].
    pub fn param_range(&self, param: usize) -> Result<Range<u64>, ShardError> {
        let start = *self.offsets.get(param).ok_or(ShardError::NoSuchParam {
            param,
            len: self.numels.len(),
        })?;
        Ok(start..start + self.numels[param])
    }

    /// Element range of shard `shard` in the flat buffer.
    ///
    /// # Errors
    /// [`ShardError::NoSuchShard`] unless `shard < group`.
    pub fn shard_range(&self, shard: u32) -> Result<Range<u64>, ShardError> {
        if shard >= self.options.group {
            return Err(ShardError::NoSuchShard {
                shard,
                group: self.options.group,
            });
        }
        // Cannot overflow: `shard_numel × group` was checked in `new`.
        let s = u64::from(shard) * self.shard_numel;
        Ok(s..s + self.shard_numel)
    }

    /// The shard rank `rank` holds.
    ///
    /// # Errors
    /// [`ShardError::NoSuchRank`].
    pub fn shard_of(&self, rank: u32) -> Result<u32, ShardError> {
        if rank >= self.options.world {
            return Err(ShardError::NoSuchRank {
                rank,
                world: self.options.world,
            });
        }
        Ok(rank % self.options.group)
    }

    /// The ranks holding shard `shard`, ascending (one per group); empty when `shard ≥ group`.
    pub fn ranks_of(&self, shard: u32) -> Vec<u32> {
        if shard >= self.options.group {
            return Vec::new();
        }
        (shard..self.options.world)
            .step_by(self.options.group as usize)
            .collect()
    }

    /// The pieces of parameter `param` and the shards holding them, in order, for a buffer
    /// with `elem_bytes` bytes per element.
    ///
    /// # Errors
    /// [`ShardError::NoSuchParam`]; [`ShardError::Overflow`] when a byte offset overflows.
    pub fn owners(&self, param: usize, elem_bytes: u64) -> Result<Vec<Piece>, ShardError> {
        let r = self.param_range(param)?;
        let mut pieces = Vec::new();
        let mut at = r.start;
        let bytes = |e: u64| e.checked_mul(elem_bytes).ok_or(ShardError::Overflow);
        while at < r.end {
            let shard = at / self.shard_numel;
            let shard_end = (shard + 1) * self.shard_numel;
            let end = r.end.min(shard_end);
            pieces.push(Piece {
                shard: shard as u32,
                param_bytes: bytes(at - r.start)?..bytes(end - r.start)?,
                shard_offset: bytes(at - shard * self.shard_numel)?,
            });
            at = end;
        }
        Ok(pieces)
    }

    /// Bytes one rank keeps of a buffer with `elem_bytes` bytes per element: a shard when
    /// `sharded`, else the whole padded buffer. `None` on overflow.
    pub fn rank_bytes(&self, elem_bytes: u64, sharded: bool) -> Option<u64> {
        let n = if sharded {
            self.shard_numel
        } else {
            self.padded_numel()
        };
        n.checked_mul(elem_bytes)
    }

    /// Model-state bytes per rank under `stage` with mixed-precision Adam (2-byte params,
    /// 2-byte grads, 12 bytes of optimizer state per element), as the ZeRO paper counts them.
    /// `None` on overflow.
    pub fn rank_state_bytes(&self, stage: ZeroStage) -> Option<[u64; 3]> {
        Some([
            self.rank_bytes(2, stage.shards_params())?,
            self.rank_bytes(2, stage.shards_grads())?,
            self.rank_bytes(12, stage.shards_optimizer())?,
        ])
    }
}
