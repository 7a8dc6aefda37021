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

/// A set of storage ids, as a bitmap (bit `x` of word `x / 64`); iteration is in increasing
/// order (no decision depends on the order: regions are read only as sets and sums).
///
/// Invariant: `len` is the number of set bits.
#[derive(Default, Clone)]
pub(super) struct IdSet {
    bits: Vec<u64>,
    len: usize,
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
        self.len += 1;
        true
    }

    pub(super) fn remove(&mut self, x: u32) {
        if self.contains(x) {
            self.bits[(x / 64) as usize] &= !(1 << (x % 64));
            self.len -= 1;
        }
    }

    pub(super) fn clear(&mut self) {
        if self.len > 0 {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.len = 0;
        }
    }

    /// Becomes the set whose bitmap is `words`.
    pub(super) fn set_words(&mut self, words: &[u64]) {
        self.bits.clear();
        self.bits.extend_from_slice(words);
        self.len = words.iter().map(|w| w.count_ones() as usize).sum();
    }

    /// Adds every member of `other`, calling `added` with each one that was not there.
    pub(super) fn union_with(&mut self, other: &IdSet, mut added: impl FnMut(u32)) {
        if self.bits.len() < other.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        for (i, (a, &b)) in self.bits.iter_mut().zip(&other.bits).enumerate() {
            let mut new = b & !*a;
            *a |= b;
            self.len += new.count_ones() as usize;
            while new != 0 {
                added(i as u32 * 64 + new.trailing_zeros());
                new &= new - 1;
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            core::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros();
                    w &= w - 1;
                    i as u32 * 64 + b
                })
            })
        })
    }

    /// Whether `len` counts the set bits (the invariant above).
    pub(super) fn is_consistent(&self) -> bool {
        let bits: u64 = self.bits.iter().map(|w| u64::from(w.count_ones())).sum();
        bits == self.len as u64
    }
}
