//! Pairing frees with allocations when a format records no identity (the 2021 profiler
//! format, profiler memory timelines): a free takes the most recently allocated live
//! allocation of its size. The bytes live at every moment are exact; which allocation a free
//! ends is a guess, so lifetimes are approximate.

use std::collections::HashMap;

/// Pairs frees with allocations of the same size when a format records no identity: a free
/// takes the most recently allocated live allocation of its size.
#[derive(Debug, Default)]
pub struct Pairing {
    live: HashMap<u64, Vec<u64>>,
    next_id: u64,
}

impl Pairing {
    /// A new allocation of `size` bytes: its id.
    pub fn alloc(&mut self, size: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.live.entry(size).or_default().push(id);
        id
    }

    /// A free of `size` bytes: the id it frees, if an allocation of that size is live.
    pub fn free(&mut self, size: u64) -> Option<u64> {
        self.live.get_mut(&size).and_then(Vec::pop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_takes_the_latest_live_allocation_of_its_size() {
        let mut p = Pairing::default();
        let (a, b, c) = (p.alloc(8), p.alloc(16), p.alloc(8));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(p.free(8), Some(c));
        assert_eq!(p.free(8), Some(a));
        assert_eq!(p.free(8), None);
        assert_eq!(p.free(32), None);
        assert_eq!(p.free(16), Some(b));
    }
}
