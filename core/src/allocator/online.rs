//! memplan's own online allocator for device memory (allocator name `"online"`).
//!
//! # Design
//!
//! Exact best fit with immediate coalescing, on top of one contiguous virtual range that
//! grows and shrinks at its end in whole pages, the way PyTorch's expandable segments do
//! (`cuMemAddressReserve` once, then `cuMemMap` page by page). The free blocks are kept in
//! segregated size classes with bitmaps, as TLSF and offset-allocator do, so a request finds
//! its block with a couple of find-first-set instructions instead of a walk down a tree; unlike
//! those (which take the first block of a class that is sure to fit, a *good* fit), each class
//! is kept sorted, so the choice is still the exact best fit.
//!
//! - Every request is rounded up to a multiple of [`ALIGN`] (512 bytes). A zero-size request
//!   is allowed and takes 512 bytes (it still gets a distinct address); it adds 0 to
//!   `allocated`.
//! - `alloc` takes the *smallest* free block that fits, the lowest address among equal sizes,
//!   and splits it: the allocation takes the front, the rest stays free.
//! - When no free block fits, the range grows: just enough new pages are mapped at its end to
//!   hold the request, extending the free block at the end when there is one. Each growth is
//!   one map call, counted in [`AllocStats::reservations`]. With a capacity, growth beyond it
//!   fails with [`AllocError::OutOfMemory`] (nothing is released first: the range is
//!   contiguous, so freeing pages could not make room anywhere but at the end, which growth
//!   already reuses).
//! - `free` merges the block with a free neighbour on either side at once, so no two free
//!   blocks ever touch.
//! - [`OnlineAllocator::trim`] unmaps the whole free pages at the end of the range. Free
//!   pages in holes inside the range are *not* given back: this model keeps no page map, and
//!   a hole cannot be unmapped without splitting the one range into several.
//! - **Streams:** memory freed on one stream is reusable by any stream. The `stream` argument
//!   is accepted and ignored; making cross-stream reuse safe on a real device (events, or
//!   waiting on the freeing stream) is the executor's job, not this model's.
//! - [`AllocStats::segments`] is 1 while any page is mapped, 0 otherwise: there is only ever
//!   one virtual range.
//!
//! # Size classes
//!
//! A block of `u` granules (`u = size / 512 >= 1`) is in class `u` when `u < 32`; otherwise,
//! with `f = floor(log2 u)` and `s` the 5 bits of `u` below its leading one, in class
//! `(f - 4) * 32 + s`. So the classes below 16 KiB hold one size each, and above that each
//! power of two is cut into 32 classes of equal width (a class's sizes differ by less than
//! 1/32). Classes grow with size: every block of a higher class is larger than every block of
//! a lower one. A request of class `c` takes the smallest fitting block of class `c` (a binary
//! search in that class), else the smallest block of the first non-empty class above `c`
//! (found in the bitmaps: one bit per class, one bit per word of classes).
//!
//! ```text
//!  top:   ...0 0 1 0 1 1      bit w set iff word w of `words` is not 0
//!  words: [w0][w1][w2]...     bit c of the words set iff class c holds a free block
//!  class c: [(size, addr, node)...] sorted by (size, addr), largest first: the best fit
//!           of a larger class is its last entry (a pop)
//! ```
//!
//! # Layout
//!
//! ```text
//!  base                                                       base + mapped   (unmapped VA)
//!   |<------------- page ------------>|<------------- page ------------>|.................
//!   +---------+--------+-------------+--------------------+-------------+
//!   | used A  |  free  |   used B    |      used C        |    free     |
//!   +---------+--------+-------------+--------------------+-------------+
//!   ^ nodes: one per block, linked in address order (head .. tail); they tile
//!     [base, base + mapped)
//!     used: {A -> node, B -> node, C -> node}   (address of each live block)
//!     classes: (size, addr) of each free block, in its size class
//!   growth maps pages after base + mapped; trim unmaps the whole free pages of the tail.
//! ```
//!
//! # Representation invariants
//!
//! Checked by `check_invariants` at the end of every mutating method in debug builds:
//!
//! 1. `mapped` is a multiple of the page size and, with a capacity, at most the capacity.
//! 2. The blocks tile `[base, base + mapped)` exactly: following `next` from `head`, each
//!    block starts where the previous one ends, the first at `base`, the last (`tail`) ends at
//!    `base + mapped`; `prev` is the reverse of `next`. Every node slot is either in that list
//!    or in `spare`, never both.
//! 3. Every block has a nonzero size that is a multiple of [`ALIGN`], so every address is
//!    512-aligned. A used block's size is its requested size rounded up (512 for zero).
//! 4. No two free blocks are adjacent (they are coalesced on free).
//! 5. The classes hold exactly `(size, addr, node)` of each free block, each in the class of
//!    its size, sorted strictly decreasing; a class's bit is set iff it is not empty, and a
//!    bit of `top` is set iff its word is not 0.
//! 6. `used` maps exactly the address of each used block to its node.
//! 7. The stats match a recount: `allocated` is the sum of requested sizes of used blocks,
//!    `reserved == mapped`, `segments == (mapped > 0)`, and the peaks are at least the
//!    current values.

use alloc::vec::Vec;
use core::ops::Range;

use super::interface::{Addr, AllocError, AllocStats, Allocator};
use super::layout::rounded as rounded_size;
pub use super::layout::{ALIGN, DEFAULT_BASE, DEFAULT_PAGE_SIZE};
use super::setup::{SetupError, check_page_layout};
use crate::units::round_up;

/// How an [`OnlineAllocator`] reserves memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlineConfig {
    /// Start of the virtual range. Must be a multiple of `page_size`
    /// ([`OnlineAllocator::new`] refuses it otherwise).
    pub base: Addr,
    /// Granule of mapping and unmapping. Must be a power of two and at least [`ALIGN`].
    pub page_size: u64,
    /// Most bytes that may be mapped at once; `None` for no limit. A capacity that is not a
    /// multiple of `page_size` cannot be used beyond its last whole page.
    pub capacity: Option<u64>,
}

impl Default for OnlineConfig {
    /// [`DEFAULT_BASE`], [`DEFAULT_PAGE_SIZE`], no capacity.
    fn default() -> Self {
        OnlineConfig {
            base: DEFAULT_BASE,
            page_size: DEFAULT_PAGE_SIZE,
            capacity: None,
        }
    }
}

/// Bits of a size below its leading one that pick its class (32 classes per power of two).
const SUB_BITS: u32 = 5;
/// Classes per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Number of classes: sizes reach `u64::MAX / ALIGN < 2^55` granules, so `floor(log2 u)` is at
/// most 54 and the largest class is `(54 - 4) * 32 + 31`.
const CLASSES: usize = (55 - SUB_BITS as usize + 1) * SUB as usize;
/// 64-bit words of the class bitmap.
const WORDS: usize = CLASSES.div_ceil(64);
const _: () = assert!(WORDS <= 64, "one bit of `top` per word");

/// The size class of a block of `size` bytes (a nonzero multiple of [`ALIGN`]); see the
/// module docs. Non-decreasing in `size`.
fn class_of(size: u64) -> usize {
    let u = size / ALIGN;
    if u < SUB {
        return u as usize;
    }
    let f = u.ilog2();
    let s = (u >> (f - SUB_BITS)) - SUB;
    (f - SUB_BITS + 1) as usize * SUB as usize + s as usize
}

/// The address index's hasher: one folded 64×64→128-bit multiply of the address. Fixed, so
/// runs are reproducible; the addresses are the allocator's own, so no one can choose them to
/// collide (the reason a seeded hasher exists).
#[derive(Debug, Clone, Copy, Default)]
struct AddrHasher(u64);

impl core::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let m = u128::from(self.0 ^ x) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// Used blocks by address.
type AddrMap = hashbrown::HashMap<Addr, u32, core::hash::BuildHasherDefault<AddrHasher>>;

/// "No node": the end of a list.
const NONE: u32 = u32::MAX;

/// One block of the mapped range, in the node arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// Start address.
    addr: Addr,
    /// Bytes in the block: nonzero, a multiple of [`ALIGN`].
    size: u64,
    /// `Some(n)` iff the block is a live allocation of `n` requested bytes (then
    /// `size == round(n)`); `None` iff it is free.
    requested: Option<u64>,
    /// The block just below in address order, [`NONE`] for the first.
    prev: u32,
    /// The block just above in address order, [`NONE`] for the last.
    next: u32,
}

/// A free block as its class holds it. Classes sort by `(size, addr)`, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The block's size.
    size: u64,
    /// The block's address.
    addr: Addr,
    /// The block's node.
    node: u32,
}

/// The free blocks by size class: one sorted list per class and a two-level bitmap of the
/// non-empty ones (invariant 5 of the module docs).
#[derive(Debug, Clone)]
struct Classes {
    /// Class `c`'s free blocks, sorted strictly decreasing by `(size, addr)`; classes past the
    /// end are empty (the vector grows to the largest class used).
    lists: Vec<Vec<Entry>>,
    /// Bit `c % 64` of word `c / 64` is set iff class `c` is not empty.
    words: [u64; WORDS],
    /// Bit `w` is set iff `words[w] != 0`.
    top: u64,
    /// Number of entries in all classes.
    len: usize,
}

impl Classes {
    fn new() -> Self {
        Classes {
            lists: Vec::new(),
            words: [0; WORDS],
            top: 0,
            len: 0,
        }
    }

    fn set_bit(&mut self, c: usize) {
        self.words[c / 64] |= 1 << (c % 64);
        self.top |= 1 << (c / 64);
    }

    fn clear_bit(&mut self, c: usize) {
        self.words[c / 64] &= !(1 << (c % 64));
        if self.words[c / 64] == 0 {
            self.top &= !(1 << (c / 64));
        }
    }

    /// The first non-empty class at or above `from` (`from <= CLASSES`), if any.
    ///
    /// # Complexity
    /// O(1): two find-first-set.
    fn first_at_or_above(&self, from: usize) -> Option<usize> {
        let w = from / 64;
        let here = self
            .words
            .get(w)
            .map_or(0, |&x| x & (u64::MAX << (from % 64)));
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let above = self.top & u64::MAX.checked_shl(w as u32 + 1).unwrap_or(0);
        if above == 0 {
            return None;
        }
        let w = above.trailing_zeros() as usize;
        Some(w * 64 + self.words[w].trailing_zeros() as usize)
    }

    /// Adds a free block.
    ///
    /// # Complexity
    /// O(log k + k) for k blocks in its class (a binary search and a shift).
    fn insert(&mut self, e: Entry) {
        let c = class_of(e.size);
        if self.lists.len() <= c {
            self.lists.resize_with(c + 1, Vec::new);
        }
        let list = &mut self.lists[c];
        let at = list.partition_point(|x| (x.size, x.addr) > (e.size, e.addr));
        debug_assert!(
            list.get(at)
                .is_none_or(|x| (x.size, x.addr) != (e.size, e.addr))
        );
        list.insert(at, e);
        self.set_bit(c);
        self.len += 1;
    }

    /// Removes the free block `(size, addr)`, which must be present.
    ///
    /// # Complexity
    /// As [`Classes::insert`].
    fn remove(&mut self, size: u64, addr: Addr) {
        let c = class_of(size);
        let list = &mut self.lists[c];
        let at = list.partition_point(|x| (x.size, x.addr) > (size, addr));
        debug_assert_eq!(list.get(at).map(|x| (x.size, x.addr)), Some((size, addr)));
        list.remove(at);
        if list.is_empty() {
            self.clear_bit(c);
        }
        self.len -= 1;
    }

    /// Takes out and returns the smallest free block of at least `size` bytes, the lowest
    /// address among equals; `None` (and nothing changes) if no block is that large.
    ///
    /// # Complexity
    /// O(1) to find the class, then O(log k) to find the block and O(k) to take it out of a
    /// class of k blocks (O(1) when the block comes from a larger class).
    fn take_best_fit(&mut self, size: u64) -> Option<Entry> {
        let c = class_of(size);
        if let Some(list) = self.lists.get_mut(c) {
            // Entries of at least `size` come first; the last of them is the best fit.
            let fits = list.partition_point(|x| x.size >= size);
            if fits > 0 {
                let e = list.remove(fits - 1);
                if list.is_empty() {
                    self.clear_bit(c);
                }
                self.len -= 1;
                return Some(e);
            }
        }
        let c = self.first_at_or_above(c + 1)?;
        let list = &mut self.lists[c];
        let e = list.pop().expect("a class with its bit set is not empty");
        if list.is_empty() {
            self.clear_bit(c);
        }
        self.len -= 1;
        Some(e)
    }

    /// The size of the largest free block, 0 if none.
    fn largest(&self) -> u64 {
        if self.top == 0 {
            return 0;
        }
        let w = 63 - self.top.leading_zeros() as usize;
        let c = w * 64 + 63 - self.words[w].leading_zeros() as usize;
        self.lists[c][0].size
    }

    /// Whether `(size, addr, node)` is in its class.
    fn contains(&self, e: Entry) -> bool {
        self.lists.get(class_of(e.size)).is_some_and(|l| {
            l.binary_search_by(|x| (e.size, e.addr).cmp(&(x.size, x.addr)))
                .is_ok_and(|i| l[i] == e)
        })
    }
}

/// memplan's online allocator: exact best fit with immediate coalescing over one virtual
/// range grown in pages. See the [module docs](self) for the design and invariants.
///
/// # Examples
///
/// ```
/// use memplan_core::allocator::Allocator;
/// use memplan_core::allocator::online::{OnlineAllocator, DEFAULT_BASE};
///
/// let mut a = OnlineAllocator::default();
/// let x = a.alloc(1000, 0)?; // rounded to 1024; maps one 2 MiB page
/// assert_eq!(x, DEFAULT_BASE);
/// assert_eq!(a.stats().reserved, 2 << 20);
/// a.free(x)?;
/// assert_eq!(a.trim(), 2 << 20); // the page goes back
/// assert_eq!(a.stats().reserved, 0);
/// # Ok::<(), memplan_core::allocator::AllocError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OnlineAllocator {
    /// The configuration, validated by [`OnlineAllocator::new`].
    config: OnlineConfig,
    /// Node arena: every block, used and free, linked in address order from `head`; slots
    /// not in that list are in `spare`.
    nodes: Vec<Node>,
    /// Unused slots of `nodes`, reused before the arena grows.
    spare: Vec<u32>,
    /// The block at `base`, [`NONE`] iff nothing is mapped.
    head: u32,
    /// The block that ends at `base + mapped`, [`NONE`] iff nothing is mapped.
    tail: u32,
    /// The node of each used block, by address; nothing else. Only looked up, never
    /// iterated, so no decision depends on its order.
    used: AddrMap,
    /// The free blocks by size class.
    classes: Classes,
    /// Bytes mapped from `base`: a multiple of the page size, at most the capacity.
    mapped: u64,
    /// Counters; `reserved == mapped`, `allocated` = sum of requested sizes of used blocks.
    stats: AllocStats,
}

impl Default for OnlineAllocator {
    /// An allocator with [`OnlineConfig::default`].
    fn default() -> Self {
        OnlineAllocator::with_capacity_opt(None)
    }
}

impl OnlineAllocator {
    /// An empty allocator: nothing mapped yet.
    ///
    /// # Errors
    /// [`SetupError::BadPageSize`] when `config.page_size` is not a power of two at least
    /// [`ALIGN`], or `config.base` is not a multiple of it.
    pub fn new(config: OnlineConfig) -> Result<Self, SetupError> {
        check_page_layout(config.base, config.page_size)?;
        Ok(OnlineAllocator::new_unchecked(config))
    }

    /// An allocator with the default base and page size (a valid layout, so this cannot
    /// fail) and the given capacity in bytes.
    pub fn with_capacity(capacity: u64) -> Self {
        OnlineAllocator::with_capacity_opt(Some(capacity))
    }

    /// [`OnlineConfig::default`] with `capacity`.
    fn with_capacity_opt(capacity: Option<u64>) -> Self {
        OnlineAllocator::new_unchecked(OnlineConfig {
            capacity,
            ..OnlineConfig::default()
        })
    }

    /// An empty allocator for a `config` whose page layout is valid.
    fn new_unchecked(config: OnlineConfig) -> Self {
        debug_assert_eq!(check_page_layout(config.base, config.page_size), Ok(()));
        OnlineAllocator {
            config,
            nodes: Vec::new(),
            spare: Vec::new(),
            head: NONE,
            tail: NONE,
            used: AddrMap::default(),
            classes: Classes::new(),
            mapped: 0,
            stats: AllocStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig {
        &self.config
    }

    /// The mapped part of the virtual range, `base..base + reserved`.
    pub fn mapped_range(&self) -> Range<Addr> {
        self.config.base..self.config.base + self.mapped
    }

    /// Every block, used and free, in address order.
    fn blocks(&self) -> impl Iterator<Item = &Node> + '_ {
        let mut at = self.head;
        core::iter::from_fn(move || {
            let n = self.nodes.get(at as usize)?;
            at = n.next;
            Some(n)
        })
    }

    /// The free blocks, in address order. Never two adjacent ones.
    ///
    /// # Complexity
    /// O(n) to iterate, n = number of blocks.
    pub fn free_blocks(&self) -> impl Iterator<Item = Range<Addr>> + '_ {
        self.blocks()
            .filter(|b| b.requested.is_none())
            .map(|b| b.addr..b.addr + b.size)
    }

    /// Size of the largest free block (0 if none): the largest request served without
    /// growing.
    ///
    /// # Complexity
    /// O(1).
    pub fn largest_free_block(&self) -> u64 {
        self.classes.largest()
    }

    /// Unmaps the whole free pages at the end of the range and returns the bytes released
    /// (0 if the end of the range holds no whole free page). Free pages in holes are kept
    /// (see the module docs). Releasing does not count as a reservation.
    ///
    /// # Complexity
    /// O(k) for k free blocks in the tail's size class; O(1) in the usual case.
    pub fn trim(&mut self) -> u64 {
        let released = self.trim_tail();
        self.check_invariants();
        released
    }

    fn trim_tail(&mut self) -> u64 {
        let Some(&block) = self.nodes.get(self.tail as usize) else {
            return 0;
        };
        if block.requested.is_some() {
            return 0;
        }
        let base = self.config.base;
        let addr = block.addr;
        // `addr - base < mapped`, a multiple of the page size, so this cannot overflow past it.
        let keep = round_up(addr - base, self.config.page_size).unwrap_or(self.mapped);
        if keep >= self.mapped {
            return 0;
        }
        let released = self.mapped - keep;
        self.classes.remove(block.size, addr);
        let new_size = base + keep - addr;
        if new_size == 0 {
            let tail = self.tail;
            self.unlink(tail);
        } else {
            self.nodes[self.tail as usize].size = new_size;
            self.classes.insert(Entry {
                size: new_size,
                addr,
                node: self.tail,
            });
        }
        self.set_mapped(keep);
        released
    }

    /// A node slot holding `node` (reused from `spare` when there is one); links are the
    /// caller's to set.
    fn new_node(&mut self, node: Node) -> u32 {
        match self.spare.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len()).expect("fewer than 2^32 blocks");
                assert!(i != NONE, "fewer than 2^32 - 1 blocks");
                self.nodes.push(node);
                i
            }
        }
    }

    /// Takes node `i` out of the address list and puts its slot in `spare`.
    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        match self.nodes.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        self.spare.push(i);
    }

    /// Sets `mapped` and the stats that follow from it.
    fn set_mapped(&mut self, mapped: u64) {
        self.mapped = mapped;
        self.stats.reserved = mapped;
        self.stats.peak_reserved = self.stats.peak_reserved.max(mapped);
        self.stats.segments = u64::from(mapped > 0);
    }

    /// Maps just enough pages at the end for a free block of `rounded` bytes there, and
    /// returns that block (taken out of the classes: the caller allocates from it). Changes
    /// nothing on error.
    fn grow(&mut self, rounded: u64, requested: u64) -> Result<Entry, AllocError> {
        let oom = AllocError::OutOfMemory {
            size: requested,
            reserved: self.mapped,
        };
        let tail = self
            .nodes
            .get(self.tail as usize)
            .filter(|b| b.requested.is_none())
            .copied();
        let have = tail.map_or(0, |b| b.size);
        // No free block fits, so in particular the tail is smaller than `rounded`.
        let need = round_up(rounded - have, self.config.page_size).ok_or(oom.clone())?;
        let new_mapped = self.mapped.checked_add(need).ok_or(oom.clone())?;
        let end = self
            .config
            .base
            .checked_add(new_mapped)
            .ok_or(oom.clone())?;
        if self.config.capacity.is_some_and(|cap| new_mapped > cap) {
            return Err(oom);
        }
        let old_end = end - need;
        let e = match tail {
            Some(b) => {
                self.classes.remove(b.size, b.addr);
                self.nodes[self.tail as usize].size = b.size + need;
                Entry {
                    size: b.size + need,
                    addr: b.addr,
                    node: self.tail,
                }
            }
            None => {
                let i = self.new_node(Node {
                    addr: old_end,
                    size: need,
                    requested: None,
                    prev: self.tail,
                    next: NONE,
                });
                match self.nodes.get_mut(self.tail as usize) {
                    Some(t) => t.next = i,
                    None => self.head = i,
                }
                self.tail = i;
                Entry {
                    size: need,
                    addr: old_end,
                    node: i,
                }
            }
        };
        self.set_mapped(new_mapped);
        self.stats.reservations += 1;
        Ok(e)
    }

    /// Checks the representation invariants of the module docs; a no-op in release builds.
    ///
    /// # Panics
    /// If an invariant is broken (a bug in this module).
    ///
    /// # Complexity
    /// O(n log n) in debug builds.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let c = &self.config;
        assert!(self.mapped % c.page_size == 0, "mapped not page-aligned");
        if let Some(cap) = c.capacity {
            assert!(
                self.mapped <= cap,
                "mapped {} > capacity {cap}",
                self.mapped
            );
        }
        let mut cursor = c.base;
        let mut prev_free = false;
        let mut free_count = 0;
        let mut used_count = 0;
        let mut allocated = 0u64;
        let mut prev = NONE;
        let mut at = self.head;
        let mut seen = alloc::vec![false; self.nodes.len()];
        while at != NONE {
            let b = &self.nodes[at as usize];
            assert!(!seen[at as usize], "node {at} twice in the address list");
            seen[at as usize] = true;
            let addr = b.addr;
            assert_eq!(addr, cursor, "blocks do not tile the range at {addr:#x}");
            assert_eq!(b.prev, prev, "prev link of {addr:#x}");
            assert!(
                b.size > 0 && b.size % ALIGN == 0,
                "bad size {} at {addr:#x}",
                b.size
            );
            match b.requested {
                Some(n) => {
                    assert_eq!(
                        rounded_size(n),
                        Some(b.size),
                        "used block size at {addr:#x}"
                    );
                    assert_eq!(self.used.get(&addr), Some(&at), "used index at {addr:#x}");
                    allocated += n;
                    used_count += 1;
                    prev_free = false;
                }
                None => {
                    assert!(!prev_free, "adjacent free blocks at {addr:#x}");
                    assert!(
                        self.classes.contains(Entry {
                            size: b.size,
                            addr,
                            node: at
                        }),
                        "free block {addr:#x} missing from its size class"
                    );
                    free_count += 1;
                    prev_free = true;
                }
            }
            cursor = addr + b.size;
            prev = at;
            at = b.next;
        }
        assert_eq!(self.tail, prev, "tail is the last block");
        assert_eq!(
            cursor,
            c.base + self.mapped,
            "blocks do not end at the mapped end"
        );
        for &i in &self.spare {
            assert!(!seen[i as usize], "node {i} both linked and spare");
            seen[i as usize] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "a node slot is neither linked nor spare"
        );
        assert_eq!(used_count, self.used.len(), "stale used index entries");
        let cl = &self.classes;
        assert_eq!(free_count, cl.len, "stale size class entries");
        let mut counted = 0;
        for (k, list) in cl.lists.iter().enumerate() {
            counted += list.len();
            assert_eq!(
                cl.words[k / 64] >> (k % 64) & 1 == 1,
                !list.is_empty(),
                "bit of class {k}"
            );
            assert!(list.iter().all(|e| class_of(e.size) == k), "class {k}");
            assert!(
                list.windows(2)
                    .all(|w| (w[0].size, w[0].addr) > (w[1].size, w[1].addr)),
                "class {k} not sorted"
            );
        }
        assert_eq!(counted, cl.len, "class lengths");
        for (w, &word) in cl.words.iter().enumerate() {
            assert_eq!(cl.top >> w & 1 == 1, word != 0, "top bit {w}");
            assert!(word == 0 || w * 64 < cl.lists.len(), "bit past the lists");
        }
        let s = &self.stats;
        assert_eq!(s.allocated, allocated, "allocated != recount");
        assert_eq!(s.reserved, self.mapped, "reserved != mapped");
        assert_eq!(s.segments, u64::from(self.mapped > 0), "segments");
        assert!(s.peak_allocated >= s.allocated && s.peak_reserved >= s.reserved);
    }

    /// The bytes a request of `size` takes (its block): `size` rounded up to [`ALIGN`],
    /// [`ALIGN`] for 0; `None` when that overflows `u64`.
    pub fn block_size(&self, size: u64) -> Option<u64> {
        rounded_size(size)
    }

    /// The live allocations in address order: each one's block (`addr..addr + block_size`)
    /// and its requested size.
    ///
    /// # Complexity
    /// O(n) to iterate, n = number of blocks.
    pub fn allocations(&self) -> impl Iterator<Item = (Range<Addr>, u64)> + '_ {
        self.blocks()
            .filter_map(|b| b.requested.map(|n| (b.addr..b.addr + b.size, n)))
    }

    /// The largest range this allocator can ever map: from `base`, as many whole pages as
    /// the capacity (without one, the address space) allows. [`Self::mapped_range`] is
    /// always a prefix of it, so every block lies inside it.
    pub fn mappable_range(&self) -> Range<Addr> {
        let c = &self.config;
        let room = c.capacity.unwrap_or(u64::MAX).min(u64::MAX - c.base);
        c.base..c.base + room / c.page_size * c.page_size
    }
}

impl Allocator for OnlineAllocator {
    /// Best fit, growing the mapped range when nothing fits. `stream` is ignored (see the
    /// module docs). A zero `size` takes [`ALIGN`] bytes.
    ///
    /// # Errors
    /// [`AllocError::OutOfMemory`] when the growth needed would exceed the capacity or the
    /// address space; the allocator is unchanged then.
    ///
    /// # Complexity
    /// O(1) to find the size class (bitmaps), then O(k) in the k free blocks of the
    /// request's class (a binary search and a shift of a short array); amortised O(1) for
    /// the address index.
    fn alloc(&mut self, size: u64, _stream: u32) -> Result<Addr, AllocError> {
        let oom = || AllocError::OutOfMemory {
            size,
            reserved: self.mapped,
        };
        let rounded = rounded_size(size).ok_or_else(oom)?;
        let fit = match self.classes.take_best_fit(rounded) {
            Some(fit) => fit,
            None => self.grow(rounded, size)?,
        };
        let i = fit.node;
        if fit.size > rounded {
            let next = self.nodes[i as usize].next;
            let rest = self.new_node(Node {
                addr: fit.addr + rounded,
                size: fit.size - rounded,
                requested: None,
                prev: i,
                next,
            });
            match self.nodes.get_mut(next as usize) {
                Some(n) => n.prev = rest,
                None => self.tail = rest,
            }
            self.nodes[i as usize].next = rest;
            self.classes.insert(Entry {
                size: fit.size - rounded,
                addr: fit.addr + rounded,
                node: rest,
            });
        }
        let n = &mut self.nodes[i as usize];
        n.size = rounded;
        n.requested = Some(size);
        self.used.insert(fit.addr, i);
        self.stats.allocated += size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
        self.check_invariants();
        Ok(fit.addr)
    }

    /// Frees the allocation at `addr` and merges it with free neighbours.
    ///
    /// # Errors
    /// [`AllocError::UnknownAddress`] if `addr` is not the address of a live allocation
    /// (never allocated, already freed, or inside a block); the allocator is unchanged then.
    ///
    /// # Complexity
    /// O(1) to find the block and its neighbours, then as [`Allocator::alloc`] to file the
    /// merged block in its size class.
    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let Some(mut i) = self.used.remove(&addr) else {
            return Err(AllocError::UnknownAddress { addr });
        };
        let b = self.nodes[i as usize];
        self.stats.allocated -= b.requested.expect("used blocks have a request");
        let mut start = addr;
        let mut size = b.size;
        if let Some(&next) = self.nodes.get(b.next as usize) {
            if next.requested.is_none() {
                self.classes.remove(next.size, next.addr);
                size += next.size;
                self.unlink(b.next);
            }
        }
        if let Some(&prev) = self.nodes.get(b.prev as usize) {
            if prev.requested.is_none() {
                self.classes.remove(prev.size, prev.addr);
                start = prev.addr;
                size += prev.size;
                self.unlink(i);
                i = b.prev;
            }
        }
        let n = &mut self.nodes[i as usize];
        n.size = size;
        n.requested = None;
        self.classes.insert(Entry {
            size,
            addr: start,
            node: i,
        });
        self.check_invariants();
        Ok(())
    }

    /// The counters; see the module docs for `segments`.
    ///
    /// # Complexity
    /// O(1).
    fn stats(&self) -> AllocStats {
        self.stats
    }

    /// `"online"`.
    fn name(&self) -> &'static str {
        "online"
    }

    /// [`OnlineAllocator::trim`].
    fn trim(&mut self) -> u64 {
        OnlineAllocator::trim(self)
    }
}

#[cfg(test)]
mod tests;
