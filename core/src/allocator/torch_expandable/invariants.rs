//! `check_invariants`: the representation invariants of the [module docs](super), checked
//! after every mutation in debug builds.

use super::{Pool, State, TorchExpandableAllocator};

impl TorchExpandableAllocator {
    /// Checks the representation invariants (module docs); debug builds only.
    pub(super) fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let (mut allocated, mut rounded, mut reserved) = (0, 0, 0);
        let (mut free, mut unmapped) = (0, 0);
        for (&base, seg) in &self.segments {
            let sets = match seg.pool {
                Pool::Small => &self.small,
                Pool::Large => &self.large,
            };
            let page = seg.pool.page();
            let mut at = base;
            let mut prev_state = None;
            for (&addr, b) in self.blocks.range(base..base + seg.size) {
                assert_eq!(addr, at, "blocks tile segment {base:#x}");
                assert_eq!(b.segment, base);
                assert!(b.size > 0, "empty block at {addr:#x}");
                at += b.size;
                let in_blocks = sets.blocks.contains(&(seg.stream, b.size, addr));
                let in_unmapped = sets.unmapped.contains(&(seg.stream, addr));
                match b.state {
                    State::Allocated(r) => {
                        assert!(!in_blocks && !in_unmapped, "allocated {addr:#x} in a set");
                        allocated += r;
                        rounded += b.size;
                        reserved += b.size;
                    }
                    State::Free => {
                        assert!(in_blocks && !in_unmapped, "free {addr:#x} not in its pool");
                        assert_ne!(prev_state, Some(State::Free), "free {addr:#x} not merged");
                        free += 1;
                        reserved += b.size;
                    }
                    State::Unmapped => {
                        assert!(
                            in_unmapped && !in_blocks,
                            "unmapped {addr:#x} not in its set"
                        );
                        assert_ne!(prev_state, Some(State::Unmapped), "{addr:#x} not merged");
                        assert_eq!((addr - base) % page, 0, "unmapped {addr:#x} unaligned");
                        assert_eq!(b.size % page, 0, "unmapped {addr:#x} partial page");
                        unmapped += 1;
                    }
                }
                prev_state = Some(b.state);
            }
            assert_eq!(at, base + seg.size, "blocks tile segment {base:#x}");
        }
        assert_eq!(free, self.small.blocks.len() + self.large.blocks.len());
        assert_eq!(
            unmapped,
            self.small.unmapped.len() + self.large.unmapped.len()
        );
        assert_eq!(allocated, self.stats.allocated);
        assert_eq!(rounded, self.allocated_rounded);
        assert_eq!(reserved, self.stats.reserved);
        assert_eq!(self.segments.len() as u64, self.stats.segments);
    }
}
