//! Arena mode ([`Runtime::use_arena`](super::Runtime::use_arena)): every resident storage is
//! a block of memplan's online allocator over one arena of `budget` bytes, so the runtime
//! evicts until a contiguous range fits, not only until the byte count does.
//!
//! The layout rules (rounding, base, usable end) are the allocator's own: this file asks it
//! ([`OnlineAllocator::block_size`], [`OnlineAllocator::allocations`],
//! [`OnlineAllocator::mappable_range`]) instead of restating them.
//!
//! # Representation invariants
//!
//! Checked by [`ArenaMode::check`]:
//!
//! 1. A storage has an address iff it is resident and its size is not 0 (between calls: a
//!    failed call may leave blocks placed for the outputs of the op it could not run);
//!    `placed` maps exactly the addresses back to their storages.
//! 2. The allocator's live allocations are exactly the placed storages, each with its
//!    storage's size as the requested size.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::error::RematError;
use super::graph::Graph;
use super::ids::NONE;
use crate::allocator::Allocator;
use crate::allocator::online::{ALIGN, DEFAULT_BASE, OnlineAllocator, OnlineConfig};

pub(super) struct ArenaMode {
    /// Best fit, 512-byte granules and pages, capacity = the budget.
    allocator: OnlineAllocator,
    /// The storage at each block address.
    placed: BTreeMap<u64, u32>,
    /// The block address of each storage (index = storage; missing = none).
    addr: Vec<Option<u64>>,
    /// Evictions made because the bytes fitted the budget but no contiguous range did.
    pub(super) placement_evictions: u64,
}

impl ArenaMode {
    /// An empty arena of `budget` bytes.
    ///
    /// # Errors
    /// [`RematError::BadOp`] if the online allocator rejects the layout (512-byte pages divide
    /// the default base, so this does not happen with the constants used here).
    pub(super) fn new(budget: u64) -> Result<Self, RematError> {
        let allocator = OnlineAllocator::new(OnlineConfig {
            base: DEFAULT_BASE,
            page_size: ALIGN,
            capacity: Some(budget),
        })
        .map_err(|_| RematError::BadOp("invalid arena page layout"))?;
        Ok(ArenaMode {
            allocator,
            placed: BTreeMap::new(),
            addr: Vec::new(),
            placement_evictions: 0,
        })
    }

    /// The block address of storage `s`, if placed.
    pub(super) fn addr(&self, s: usize) -> Option<u64> {
        self.addr.get(s).copied().flatten()
    }

    /// Gives storage `s` (not placed) a block of `size` bytes; false when none fits.
    pub(super) fn try_place(&mut self, s: usize, size: u64) -> bool {
        match self.allocator.alloc(size, 0) {
            Ok(a) => {
                if self.addr.len() <= s {
                    self.addr.resize(s + 1, None);
                }
                self.addr[s] = Some(a);
                self.placed.insert(a, s as u32);
                true
            }
            Err(_) => false,
        }
    }

    /// Frees the block of storage `s`, if it has one.
    pub(super) fn unplace(&mut self, s: usize) {
        if let Some(a) = self.addr.get_mut(s).and_then(Option::take) {
            self.placed.remove(&a);
            let freed = self.allocator.free(a);
            debug_assert!(freed.is_ok());
        }
    }

    /// memplan's fragmentation-aware choice: the contiguous address range of the arena, made
    /// of free space and evictable storages only, that can hold `size` bytes and whose
    /// storages cost least to evict (Σ `cost(s)`); returns those storages, or `None` when no
    /// range qualifies. `cost(s)` is `None` for a storage that must stay (locked, pinned, or
    /// an infinite score), which splits every candidate range.
    pub(super) fn cheapest_window(
        &self,
        size: u64,
        cost: impl Fn(usize) -> Option<f64>,
    ) -> Option<Vec<u32>> {
        let need = self.allocator.block_size(size)?;
        let arena = self.allocator.mappable_range();
        // Segments in address order: (start, end, cost, storage); cost None = blocked.
        let mut segs: Vec<(u64, u64, Option<f64>, u32)> = Vec::new();
        let mut at = arena.start;
        for (block, _) in self.allocator.allocations() {
            let st = self.placed[&block.start];
            if block.start > at {
                segs.push((at, block.start, Some(0.0), NONE));
            }
            segs.push((block.start, block.end, cost(st as usize), st));
            at = block.end;
        }
        if arena.end > at {
            segs.push((at, arena.end, Some(0.0), NONE));
        }
        let mut best: Option<(f64, usize, usize)> = None;
        let (mut left, mut sum) = (0usize, 0.0f64);
        for right in 0..segs.len() {
            let Some(c) = segs[right].2 else {
                left = right + 1;
                sum = 0.0;
                continue;
            };
            sum += c;
            while left < right && segs[right].1 - segs[left + 1].0 >= need {
                sum -= segs[left].2.unwrap_or(0.0);
                left += 1;
            }
            if segs[right].1 - segs[left].0 >= need && best.is_none_or(|(b, _, _)| sum < b) {
                best = Some((sum, left, right));
            }
        }
        let (_, l, r) = best?;
        let victims: Vec<u32> = segs[l..=r]
            .iter()
            .filter(|x| x.3 != NONE)
            .map(|x| x.3)
            .collect();
        (!victims.is_empty()).then_some(victims)
    }

    /// Checks invariants 1 and 2 against the graph (`between_calls`: the strict form of 1).
    ///
    /// # Panics
    /// If one is broken.
    pub(super) fn check(&self, g: &Graph, between_calls: bool) {
        let mut placed = 0usize;
        for (s, st) in g.storages.iter().enumerate() {
            let addr = self.addr(s);
            if st.material && st.size > 0 {
                assert!(addr.is_some(), "resident storage {s} has no block");
            } else if between_calls || st.size == 0 || st.material {
                assert!(addr.is_none(), "storage {s} keeps a block it does not need");
            }
            if let Some(a) = addr {
                assert_eq!(self.placed.get(&a), Some(&(s as u32)), "placed[{a:#x}]");
                placed += 1;
            }
        }
        assert_eq!(placed, self.placed.len(), "stale placed entries");
        let mut live = 0usize;
        for (block, requested) in self.allocator.allocations() {
            let s = *self
                .placed
                .get(&block.start)
                .unwrap_or_else(|| panic!("allocation at {:#x} of no storage", block.start));
            assert_eq!(
                requested, g.storages[s as usize].size,
                "block of storage {s}: requested size"
            );
            live += 1;
        }
        assert_eq!(live, self.placed.len(), "placed storages without a block");
    }
}
