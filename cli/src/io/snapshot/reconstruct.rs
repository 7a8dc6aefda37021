//! The allocator's state when recording began: the dump-time segments and blocks with the
//! history undone in reverse, as PyTorch's viewer does (`simulate_memory` in MemoryViz.js).
//!
//! | entry, undone | effect on the state |
//! |---|---|
//! | `alloc` | the block was not live before it |
//! | `free_completed` | the block was live, with the entry's size (its requested size) |
//! | `segment_alloc` | the segment did not exist |
//! | `segment_free` | the segment existed |
//! | `segment_map` | the expandable segment's mapped range shrinks by the range |
//! | `segment_unmap` | it grows by the range (merged with adjacent ranges of its stream) |
//!
//! Where the history and the dump-time state disagree (a history cut by `max_entries`, a free
//! of a block the state never had), the walk records a one-line warning and goes on.

use std::collections::BTreeMap;

use super::model::{Action, Block, BlockState, HistoryEvent, Segment};

/// A segment while walking: size, stream, expandable.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    /// Bytes.
    pub(super) size: u64,
    /// The stream (renumbered).
    pub(super) stream: u64,
    /// An expandable segment's mapped range.
    pub(super) expandable: bool,
}

/// The segments at the start of `history` (entries of `device_traces[device]`), in address
/// order, each covered by its blocks in address order (inactive blocks for the gaps).
pub fn start_state(
    end: &[Segment],
    history: &[HistoryEvent],
    device: u32,
    warnings: &mut Vec<String>,
) -> Vec<Segment> {
    let mut segments: BTreeMap<u64, Seg> = end
        .iter()
        .map(|s| {
            let seg = Seg {
                size: s.total_size,
                stream: s.stream,
                expandable: s.is_expandable,
            };
            (s.address, seg)
        })
        .collect();
    let mut blocks: BTreeMap<u64, Block> = end
        .iter()
        .flat_map(|s| s.blocks.iter())
        .filter(|b| b.state.is_active())
        .map(|b| (b.address, b.clone()))
        .collect();
    let mut disagree = Disagreements::default();
    for (i, e) in history.iter().enumerate().rev() {
        let at = || format!("device_traces[{device}][{i}]");
        match e.action {
            Action::Alloc => {
                if blocks.remove(&e.addr).is_none() {
                    disagree.note(warnings, || {
                        format!(
                            "{}: alloc at {:#x} of a block neither live at the end nor freed \
                             later; ignored in the reconstruction",
                            at(),
                            e.addr
                        )
                    });
                }
            }
            Action::FreeCompleted => {
                let block = Block {
                    address: e.addr,
                    size: e.size,
                    requested_size: e.size,
                    state: BlockState::ActiveAllocated,
                    site: None,
                };
                if blocks.insert(e.addr, block).is_some() {
                    disagree.note(warnings, || {
                        format!(
                            "{}: free_completed at {:#x} of a block that is live after it",
                            at(),
                            e.addr
                        )
                    });
                }
            }
            Action::SegmentAlloc => {
                if segments.remove(&e.addr).is_none() {
                    disagree.note(warnings, || {
                        format!(
                            "{}: segment_alloc at {:#x} of a segment absent after it",
                            at(),
                            e.addr
                        )
                    });
                }
            }
            Action::SegmentFree => {
                if overlaps(&segments, e.addr, e.size) {
                    disagree.note(warnings, || {
                        format!(
                            "{}: segment_free at {:#x} overlaps a segment live after it",
                            at(),
                            e.addr
                        )
                    });
                } else {
                    let seg = Seg {
                        size: e.size,
                        stream: u64::from(e.stream),
                        expandable: false,
                    };
                    segments.insert(e.addr, seg);
                }
            }
            Action::SegmentMap => {
                if !unmap(&mut segments, e.addr, e.size) {
                    disagree.note(warnings, || {
                        format!(
                            "{}: segment_map of [{:#x}, +{}) not mapped after it",
                            at(),
                            e.addr,
                            e.size
                        )
                    });
                }
            }
            Action::SegmentUnmap => {
                if overlaps(&segments, e.addr, e.size) {
                    disagree.note(warnings, || {
                        format!(
                            "{}: segment_unmap of [{:#x}, +{}) still mapped after it",
                            at(),
                            e.addr,
                            e.size
                        )
                    });
                } else {
                    map(&mut segments, e.addr, e.size, u64::from(e.stream));
                }
            }
            Action::FreeRequested | Action::Snapshot | Action::Oom | Action::Annotation => {}
        }
    }
    disagree.finish(warnings, device);
    cover(&segments, blocks, warnings)
}

/// Counts disagreements; words the first few, summarises the rest.
#[derive(Default)]
struct Disagreements {
    count: usize,
}

impl Disagreements {
    const WORDED: usize = 5;

    fn note(&mut self, warnings: &mut Vec<String>, say: impl FnOnce() -> String) {
        self.count += 1;
        if self.count <= Self::WORDED {
            warnings.push(say());
        }
    }

    fn finish(self, warnings: &mut Vec<String>, device: u32) {
        if self.count > Self::WORDED {
            warnings.push(format!(
                "device {device}: {} more entries disagree with the dump-time state (history \
                 cut by max_entries?)",
                self.count - Self::WORDED
            ));
        }
    }
}

/// True when `[addr, addr + size)` overlaps a segment.
fn overlaps(segments: &BTreeMap<u64, Seg>, addr: u64, size: u64) -> bool {
    let end = addr.saturating_add(size);
    segments
        .range(..end)
        .next_back()
        .is_some_and(|(&a, s)| a.saturating_add(s.size) > addr)
}

/// Removes `[addr, addr + size)` from the expandable segment that contains it, splitting it;
/// false when no segment contains it.
pub(super) fn unmap(segments: &mut BTreeMap<u64, Seg>, addr: u64, size: u64) -> bool {
    let end = addr.saturating_add(size);
    let Some((&a, &seg)) = segments.range(..=addr).next_back() else {
        return false;
    };
    let seg_end = a.saturating_add(seg.size);
    if seg_end < end {
        return false;
    }
    segments.remove(&a);
    if addr > a {
        segments.insert(
            a,
            Seg {
                size: addr - a,
                ..seg
            },
        );
    }
    if seg_end > end {
        segments.insert(
            end,
            Seg {
                size: seg_end - end,
                ..seg
            },
        );
    }
    true
}

/// Adds `[addr, addr + size)` as an expandable range, merged with adjacent expandable ranges
/// of the same stream.
pub(super) fn map(segments: &mut BTreeMap<u64, Seg>, addr: u64, size: u64, stream: u64) {
    let mut start = addr;
    let mut total = size;
    let end = addr.saturating_add(size);
    if let Some(next) = segments.get(&end).copied()
        && next.expandable
        && next.stream == stream
    {
        segments.remove(&end);
        total = total.saturating_add(next.size);
    }
    if let Some((&a, &prev)) = segments.range(..addr).next_back()
        && prev.expandable
        && prev.stream == stream
        && a.saturating_add(prev.size) == addr
    {
        start = a;
        total = total.saturating_add(prev.size);
    }
    segments.insert(
        start,
        Seg {
            size: total,
            stream,
            expandable: true,
        },
    );
}

/// The segments with their live blocks, gaps filled by inactive blocks; blocks outside every
/// segment or overlapping another are left out with a warning.
fn cover(
    segments: &BTreeMap<u64, Seg>,
    blocks: BTreeMap<u64, Block>,
    warnings: &mut Vec<String>,
) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
    let mut left_out = 0usize;
    let mut blocks = blocks.into_values().peekable();
    for (&address, seg) in segments {
        let end = address.saturating_add(seg.size);
        let mut cursor = address;
        let mut covered = Vec::new();
        while let Some(b) = blocks.next_if(|b| b.address < end) {
            let b_end = b.address.saturating_add(b.size);
            if b.address < cursor || b_end > end {
                left_out += 1;
                continue;
            }
            if b.address > cursor {
                covered.push(gap(cursor, b.address));
            }
            cursor = b_end;
            covered.push(b);
        }
        if cursor < end {
            covered.push(gap(cursor, end));
        }
        out.push(Segment {
            address,
            total_size: seg.size,
            stream: seg.stream,
            is_expandable: seg.expandable,
            blocks: covered,
        });
        // Blocks before the next segment lie in no segment.
        let next = segments.range(end..).next().map_or(u64::MAX, |(&a, _)| a);
        while blocks.next_if(|b| b.address < next).is_some() {
            left_out += 1;
        }
    }
    left_out += blocks.count();
    if left_out > 0 {
        warnings.push(format!(
            "{left_out} blocks live when recording began lie outside every segment or overlap \
             another block; left out of the start state"
        ));
    }
    out
}

fn gap(from: u64, to: u64) -> Block {
    Block {
        address: from,
        size: to - from,
        requested_size: 0,
        state: BlockState::Inactive,
        site: None,
    }
}
