//! The evictable pool: the resident storages that are neither locked nor pinned, in the
//! order they became evictable. Heuristics scan it in this order (ties go to the later
//! storage, as in `simrd`).
//!
//! # Representation invariants
//!
//! 1. `order` holds each member once, at index `slot[s]`; every other entry is [`NONE`]
//!    (a hole left by a removal); a storage with `slot[s] == None` is not a member.
//! 2. `live` is the number of members (entries of `order` that are not holes).
//! 3. Holes are squeezed out (keeping the order) as soon as they outnumber the members in a
//!    pool of more than 64 entries, so a scan costs O(members).

use alloc::vec::Vec;

use super::ids::NONE;

#[derive(Default)]
pub(super) struct Pool {
    order: Vec<u32>,
    live: usize,
    /// Index into `order` of each storage while it is a member (grows on demand).
    slot: Vec<Option<u32>>,
}

impl Pool {
    pub(super) fn contains(&self, s: usize) -> bool {
        self.slot.get(s).is_some_and(Option::is_some)
    }

    /// Number of members.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Appends `s` (no-op when already a member).
    pub(super) fn add(&mut self, s: usize) {
        if self.slot.len() <= s {
            self.slot.resize(s + 1, None);
        }
        if self.slot[s].is_some() {
            return;
        }
        self.slot[s] = Some(self.order.len() as u32);
        self.order.push(s as u32);
        self.live += 1;
    }

    /// Removes `s` (no-op when not a member).
    pub(super) fn remove(&mut self, s: usize) {
        if let Some(i) = self.slot.get_mut(s).and_then(Option::take) {
            self.order[i as usize] = NONE;
            self.live -= 1;
            if self.order.len() > 64 && self.live * 2 < self.order.len() {
                self.order.retain(|&x| x != NONE);
                for (i, &x) in self.order.iter().enumerate() {
                    self.slot[x as usize] = Some(i as u32);
                }
            }
        }
    }

    /// The members, in pool order.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.order.iter().copied().filter(|&s| s != NONE)
    }

    /// Checks invariants 1 and 2.
    ///
    /// # Panics
    /// If one is broken.
    pub(super) fn check(&self) {
        let mut live = 0;
        for (i, &s) in self.order.iter().enumerate() {
            if s != NONE {
                live += 1;
                assert_eq!(
                    self.slot.get(s as usize).copied().flatten(),
                    Some(i as u32),
                    "pool entry {i} (storage {s}) is not at its slot"
                );
            }
        }
        assert_eq!(live, self.live, "pool member count");
        let slots = self.slot.iter().filter(|x| x.is_some()).count();
        assert_eq!(slots, self.live, "pool slots without an entry");
    }
}
