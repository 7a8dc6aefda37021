//! The device memory a PyTorch recording describes at one moment — segments and the blocks
//! live in them — and the fragmentation figures of PyTorch's `segsum`
//! (`torch.cuda._memory_viz`), computed from it.
//!
//! Two moments are read: the end (the snapshot's `segments` as dumped, exact block sizes) and
//! the peak of requested bytes, reached by replaying the history forward from the state when
//! recording began ([`Recording::start`]). Inside the history a block's size is not recorded,
//! only the request: it is taken as PyTorch rounds a request ([`ROUND`]), so the rounding at
//! the peak is a lower bound (a large block that was not split holds more).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::io::snapshot::model::{Action, BlockState, Recording, Segment};

/// PyTorch's caching allocator rounds every request up to a multiple of 512 bytes
/// (`kMinBlockSize`).
pub const ROUND: u64 = 512;

/// A live block: its size, the bytes requested, and where it was allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// Bytes the block spans.
    pub size: u64,
    /// Bytes the program asked for.
    pub requested: u64,
    /// Index into [`Recording::sites`].
    pub site: Option<usize>,
    /// Allocated before the history began (PyTorch records no stack for it).
    pub before_history: bool,
}

/// Segments and live blocks at one moment.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Segment (or mapped range) start → size.
    pub segments: BTreeMap<u64, u64>,
    /// Which starts in `segments` are expandable ranges (merged when mapped side by side).
    pub expandable: BTreeMap<u64, ()>,
    /// Live block address → block.
    pub blocks: BTreeMap<u64, Live>,
}

/// The fragmentation figures of one moment, split as `segsum` splits them:
/// `reserved = requested + rounding + free_gaps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fragmentation {
    /// Bytes in segments.
    pub reserved: u64,
    /// Bytes of live blocks.
    pub allocated: u64,
    /// Bytes the program asked for, over live blocks.
    pub requested: u64,
    /// Bytes lost to rounding inside live blocks (`allocated - requested`; segsum's
    /// "internal" free).
    pub rounding: u64,
    /// Free bytes between live blocks in segments (`reserved - allocated`; segsum's
    /// "external" free).
    pub free_gaps: u64,
    /// Segments (mapped ranges of expandable segments count once).
    pub segments: usize,
    /// Live blocks.
    pub blocks: usize,
}

impl Fragmentation {
    /// `1 - requested / reserved`: the share of reserved bytes holding no requested byte.
    pub fn fraction(&self) -> f64 {
        if self.reserved == 0 {
            0.0
        } else {
            1.0 - self.requested as f64 / self.reserved as f64
        }
    }
}

/// A block bordering a stranded free range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The block's address.
    pub address: u64,
    /// Its size.
    pub bytes: u64,
    /// Where it was allocated (`file:line in function`), when recorded.
    pub site: Option<String>,
    /// Allocated before the history began.
    pub before_history: bool,
}

/// A free range inside a segment that live blocks keep reserved: the allocator can reuse it
/// only for requests that fit, and cannot give it back to the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stranded {
    /// First free byte.
    pub address: u64,
    /// Free bytes.
    pub bytes: u64,
    /// The segment holding it.
    pub segment_address: u64,
    /// The segment's size.
    pub segment_bytes: u64,
    /// Live blocks in the segment.
    pub live_blocks: usize,
    /// The live blocks right before and after it (what keeps it from merging with other free
    /// space), when there are.
    pub pinned_by: Vec<Pin>,
}

impl Layout {
    /// The state of `segments` (e.g. [`Recording::end`]): its active-allocated blocks are
    /// live; pending frees and inactive blocks are free space, as `segsum` counts them.
    pub fn of(segments: &[Segment]) -> Layout {
        let mut layout = Layout::default();
        for s in segments {
            layout.segments.insert(s.address, s.total_size);
            if s.is_expandable {
                layout.expandable.insert(s.address, ());
            }
            for b in &s.blocks {
                if b.state == BlockState::ActiveAllocated {
                    layout.blocks.insert(
                        b.address,
                        Live {
                            size: b.size,
                            requested: b.requested_size,
                            site: b.site,
                            before_history: false,
                        },
                    );
                }
            }
        }
        layout
    }

    /// Segsum's figures for this state.
    pub fn fragmentation(&self) -> Fragmentation {
        let reserved = self
            .segments
            .values()
            .fold(0u64, |a, &s| a.saturating_add(s));
        let (allocated, requested) = self.blocks.values().fold((0u64, 0u64), |(a, r), b| {
            (
                a.saturating_add(b.size),
                r.saturating_add(b.requested.min(b.size)),
            )
        });
        Fragmentation {
            reserved,
            allocated,
            requested,
            rounding: allocated - requested,
            free_gaps: reserved.saturating_sub(allocated),
            segments: self.segments.len(),
            blocks: self.blocks.len(),
        }
    }

    /// Free ranges inside segments that hold at least one live block, largest first (ties by
    /// address), at most `top`.
    pub fn stranded(&self, sites: &[String], top: usize) -> Vec<Stranded> {
        let pin = |(&address, b): (&u64, &Live)| Pin {
            address,
            bytes: b.size,
            site: b.site.and_then(|s| sites.get(s).cloned()),
            before_history: b.before_history,
        };
        let mut found = Vec::new();
        for (&start, &size) in &self.segments {
            let end = start.saturating_add(size);
            let live: Vec<(&u64, &Live)> = self.blocks.range(start..end).collect();
            if live.is_empty() {
                continue; // a wholly free segment: empty_cache() releases it
            }
            let mut cursor = start;
            let mut before: Option<(&u64, &Live)> = None;
            for &(addr, b) in &live {
                if *addr > cursor {
                    found.push((
                        cursor,
                        *addr - cursor,
                        start,
                        size,
                        live.len(),
                        before,
                        Some((addr, b)),
                    ));
                }
                cursor = cursor.max(addr.saturating_add(b.size).min(end));
                before = Some((addr, b));
            }
            if cursor < end {
                found.push((cursor, end - cursor, start, size, live.len(), before, None));
            }
        }
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(top);
        found
            .into_iter()
            .map(
                |(address, bytes, segment_address, segment_bytes, live_blocks, l, r)| Stranded {
                    address,
                    bytes,
                    segment_address,
                    segment_bytes,
                    live_blocks,
                    pinned_by: l.into_iter().chain(r).map(pin).collect(),
                },
            )
            .collect()
    }

    /// Maps `[addr, addr + size)` into expandable space: merged with mapped ranges it touches.
    fn map(&mut self, addr: u64, size: u64) {
        let mut start = addr;
        let mut end = addr.saturating_add(size);
        if let Some((&s, &len)) = self.segments.range(..=start).next_back()
            && self.expandable.contains_key(&s)
            && s.saturating_add(len) >= start
        {
            start = s;
            end = end.max(s.saturating_add(len));
            self.segments.remove(&s);
            self.expandable.remove(&s);
        }
        if let Some((&s, &len)) = self.segments.range(start..=end).next()
            && self.expandable.contains_key(&s)
        {
            end = end.max(s.saturating_add(len));
            self.segments.remove(&s);
            self.expandable.remove(&s);
        }
        self.segments.insert(start, end - start);
        self.expandable.insert(start, ());
    }

    /// Unmaps `[addr, addr + size)` from the mapped range holding it (splitting it).
    fn unmap(&mut self, addr: u64, size: u64) {
        let end = addr.saturating_add(size);
        let Some((&s, &len)) = self.segments.range(..=addr).next_back() else {
            return;
        };
        let s_end = s.saturating_add(len);
        if s_end <= addr {
            return;
        }
        self.segments.remove(&s);
        let was_expandable = self.expandable.remove(&s).is_some();
        for (a, b) in [(s, addr), (end, s_end)] {
            if b > a {
                self.segments.insert(a, b - a);
                if was_expandable {
                    self.expandable.insert(a, ());
                }
            }
        }
    }
}

/// The moment of the history where the most requested bytes were live, and the layout then.
#[derive(Debug, Clone)]
pub struct Peak {
    /// Index into [`Recording::history`] of the entry after which the peak holds (`None`:
    /// already at the start).
    pub after_event: Option<usize>,
    /// The layout at that moment.
    pub layout: Layout,
    /// Largest reserved bytes over the history (segments mapped), from the start state on.
    pub peak_reserved: u64,
}

/// Replays `rec.history` forward from `rec.start`, returning the layout where requested
/// bytes peak (the first such moment) and the largest reserved bytes seen.
pub fn peak(rec: &Recording) -> Peak {
    // First pass: where the peak is; second: the layout there (no copy per new maximum).
    let first = forward(rec, None);
    let second = forward(rec, Some(first.best_after));
    Peak {
        after_event: first.best_after,
        layout: second.layout,
        peak_reserved: first.peak_reserved,
    }
}

struct Forward {
    layout: Layout,
    best_after: Option<usize>,
    peak_reserved: u64,
}

/// Applies the history to the start layout, up to and including entry `stop` when given
/// (`Some(None)`: none of it), tracking the first peak of requested bytes and the peak of
/// reserved bytes.
fn forward(rec: &Recording, stop: Option<Option<usize>>) -> Forward {
    let mut layout = Layout::of(&rec.start);
    for b in layout.blocks.values_mut() {
        b.before_history = true;
    }
    let mut requested: u64 = layout
        .blocks
        .values()
        .fold(0, |a, b| a.saturating_add(b.requested));
    let mut peak_reserved: u64 = layout
        .segments
        .values()
        .fold(0, |a, &s| a.saturating_add(s));
    let mut best = (requested, None);
    if stop == Some(None) {
        return Forward {
            layout,
            best_after: None,
            peak_reserved,
        };
    }
    for (i, e) in rec.history.iter().enumerate() {
        match e.action {
            Action::Alloc => {
                let live = Live {
                    size: round(e.size),
                    requested: e.size,
                    site: e.site,
                    before_history: false,
                };
                if let Some(old) = layout.blocks.insert(e.addr, live) {
                    requested = requested.saturating_sub(old.requested);
                }
                requested = requested.saturating_add(e.size);
            }
            Action::FreeCompleted => {
                if let Some(old) = layout.blocks.remove(&e.addr) {
                    requested = requested.saturating_sub(old.requested);
                }
            }
            Action::SegmentAlloc => {
                layout.segments.insert(e.addr, e.size);
            }
            Action::SegmentFree => {
                layout.segments.remove(&e.addr);
                layout.expandable.remove(&e.addr);
            }
            Action::SegmentMap => layout.map(e.addr, e.size),
            Action::SegmentUnmap => layout.unmap(e.addr, e.size),
            Action::FreeRequested | Action::Snapshot | Action::Oom | Action::Annotation => {}
        }
        if matches!(
            e.action,
            Action::SegmentAlloc | Action::SegmentFree | Action::SegmentMap | Action::SegmentUnmap
        ) {
            let reserved = layout
                .segments
                .values()
                .fold(0u64, |a, &s| a.saturating_add(s));
            peak_reserved = peak_reserved.max(reserved);
        }
        if requested > best.0 {
            best = (requested, Some(i));
        }
        if stop == Some(Some(i)) {
            break;
        }
    }
    Forward {
        layout,
        best_after: best.1,
        peak_reserved,
    }
}

/// `size` as PyTorch's caching allocator rounds a request ([`ROUND`]; 0 bytes take one unit).
pub fn round(size: u64) -> u64 {
    size.max(1).div_ceil(ROUND).saturating_mul(ROUND)
}
