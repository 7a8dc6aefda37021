//! Typed ids of a runtime's tensors, storages and ops, and [`IdSet`], the set of storage ids
//! the evicted neighbourhoods are made of.
//!
//! Ids are dense indices in creation order into the runtime's `Vec`s (`graph.rs`); [`NONE`]
//! is the "no id" marker of the flat `u32` tables (pool holes, union-find roots).

use alloc::vec::Vec;

/// A tensor registered with a [`Runtime`](super::Runtime) (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TensorId(pub u32);

/// A storage (physical buffer) of a [`Runtime`](super::Runtime) (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageId(pub u32);

/// An operator registered with a [`Runtime`](super::Runtime) (dense, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u32);

/// "No id" in the flat `u32` tables.
pub(super) const NONE: u32 = u32::MAX;

/// A set of storage ids: a list for iteration (in insertion order, which the neighbourhood
/// scans depend on) plus a bitmap for membership.
///
/// Invariant: `list` holds each member exactly once, and bit `x` of `bits` is set iff `x` is
/// in `list`.
#[derive(Default, Clone)]
pub(super) struct IdSet {
    list: Vec<u32>,
    bits: Vec<u64>,
}

impl IdSet {
    pub(super) fn contains(&self, x: u32) -> bool {
        self.bits
            .get((x / 64) as usize)
            .is_some_and(|w| w & (1 << (x % 64)) != 0)
    }

    /// Adds `x`; false when it was already there.
    pub(super) fn insert(&mut self, x: u32) -> bool {
        let w = (x / 64) as usize;
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let m = 1u64 << (x % 64);
        if self.bits[w] & m != 0 {
            return false;
        }
        self.bits[w] |= m;
        self.list.push(x);
        true
    }

    pub(super) fn remove(&mut self, x: u32) {
        if self.contains(x) {
            self.bits[(x / 64) as usize] &= !(1 << (x % 64));
            self.list.retain(|&y| y != x);
        }
    }

    pub(super) fn clear(&mut self) {
        for &x in &self.list {
            self.bits[(x / 64) as usize] = 0;
        }
        self.list.clear();
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.list.iter().copied()
    }

    /// Whether the list and the bitmap agree (the invariant above).
    pub(super) fn is_consistent(&self) -> bool {
        let bits: u64 = self.bits.iter().map(|w| u64::from(w.count_ones())).sum();
        bits == self.list.len() as u64 && self.list.iter().all(|&x| self.contains(x))
    }
}
