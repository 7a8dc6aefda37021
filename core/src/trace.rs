//! Allocation traces: what a framework asked its allocator for, in order.
//!
//! A [`Trace`] is a sequence of [`Event`]s: `Alloc` of an id with a size on a stream, `Free` of
//! an id, and [`Marker`]s (iteration starts, phases, annotations) that carry no memory but
//! structure the trace. Importers (in the CLI) turn PyTorch snapshots, profiler traces, DTR
//! logs and CSVs into traces; allocators replay them.
//!
//! Invariants kept by [`TraceBuilder`]: every `Free` names an id that is live at that point
//! (allocated and not freed since); no `Alloc` names a live id (ids may be reused after their
//! free, as addresses are); `Alloc` sizes are non-zero unless the builder allows zero. Ids still
//! live at the end are allowed (weights, optimizer state). Nothing is dropped: a violation is
//! an error naming the event index.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::pack::Buffer;

/// A structural marker in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// A training iteration starts here.
    IterationStart,
    /// A phase starts here (e.g. `forward`, `backward`, `optimizer`).
    Phase(String),
    /// Free-form text from the user or the recorder.
    Annotation(String),
}

/// One event of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `size` bytes requested under `id` on `stream`.
    Alloc {
        /// The allocation's id (unique among live allocations).
        id: u64,
        /// Bytes requested.
        size: u64,
        /// The stream the memory is used on.
        stream: u32,
    },
    /// The allocation `id` is released.
    Free {
        /// The allocation's id.
        id: u64,
    },
    /// A marker.
    Marker(Marker),
}

/// A validated allocation trace (see the module docs for its invariants).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    events: Vec<Event>,
}

impl Trace {
    /// The events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Number of `Alloc` events.
    pub fn allocs(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Alloc { .. }))
            .count()
    }

    /// The largest total of requested bytes live at once.
    ///
    /// # Complexity
    /// O(n log n).
    pub fn peak_requested(&self) -> u64 {
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        let (mut now, mut peak) = (0u64, 0u64);
        for e in &self.events {
            match e {
                Event::Alloc { id, size, .. } => {
                    live.insert(*id, *size);
                    now = now.saturating_add(*size);
                    peak = peak.max(now);
                }
                Event::Free { id } => now -= live.remove(id).unwrap_or(0),
                Event::Marker(_) => {}
            }
        }
        peak
    }
}

impl Trace {
    /// The trace of offline buffers: each buffer (id = its index) is allocated at `lower` and
    /// freed at `upper`, on stream 0. Events are in time order; at equal times frees come
    /// first (lifetimes are half-open), then by index, so the result is deterministic.
    ///
    /// Buffers of a validated [`crate::Problem`] always make a valid trace.
    pub fn from_buffers(buffers: &[Buffer]) -> Trace {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(buffers.len() * 2);
        for (i, b) in buffers.iter().enumerate() {
            order.push((b.lower, true, i));
            order.push((b.upper, false, i));
        }
        order.sort_unstable();
        let events = order
            .into_iter()
            .map(|(_, alloc, i)| {
                if alloc {
                    Event::Alloc {
                        id: i as u64,
                        size: buffers[i].size,
                        stream: 0,
                    }
                } else {
                    Event::Free { id: i as u64 }
                }
            })
            .collect();
        Trace { events }
    }
}

/// Builds a [`Trace`] event by event, rejecting invalid events.
///
/// # Examples
/// ```
/// use memplan_core::trace::{Marker, TraceBuilder};
/// let mut b = TraceBuilder::new();
/// b.marker(Marker::IterationStart);
/// b.alloc(1, 4096, 0)?;
/// b.alloc(2, 512, 0)?;
/// b.free(1)?;
/// // Freed already, at event 3; the rejected free would have been event 4.
/// assert_eq!(b.free(1).unwrap_err().to_string(), "event 4: free of allocation 1, already freed at event 3");
/// let t = b.finish();
/// assert_eq!((t.len(), t.peak_requested()), (4, 4608));
/// # Ok::<(), memplan_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TraceBuilder {
    events: Vec<Event>,
    /// Live ids → index of their `Alloc` event.
    live: BTreeMap<u64, usize>,
    /// Freed (and not re-allocated) ids → index of their `Free` event.
    freed: BTreeMap<u64, usize>,
    allow_zero_size: bool,
}

impl TraceBuilder {
    /// An empty builder that rejects zero-size allocations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept zero-size allocations (PyTorch's allocator does, e.g. for empty tensors).
    pub fn allow_zero_size(mut self, allow: bool) -> Self {
        self.allow_zero_size = allow;
        self
    }

    /// Index the next event will have in the trace (errors name this index).
    pub fn next_index(&self) -> usize {
        self.events.len()
    }

    /// Appends `Alloc { id, size, stream }`.
    ///
    /// # Errors
    /// [`Error::IdReused`] when `id` is live; [`Error::ZeroSizeAlloc`] when `size` is 0 and
    /// zero sizes are not allowed. On error nothing is appended.
    pub fn alloc(&mut self, id: u64, size: u64, stream: u32) -> Result<()> {
        let index = self.events.len();
        if let Some(&allocated_at) = self.live.get(&id) {
            return Err(Error::IdReused {
                index,
                id,
                allocated_at,
            });
        }
        if size == 0 && !self.allow_zero_size {
            return Err(Error::ZeroSizeAlloc { index, id });
        }
        self.freed.remove(&id);
        self.live.insert(id, self.events.len());
        self.events.push(Event::Alloc { id, size, stream });
        Ok(())
    }

    /// Appends `Free { id }`.
    ///
    /// # Errors
    /// [`Error::UnknownFree`] when `id` is not live (with the index of its earlier free when
    /// it was freed twice). On error nothing is appended.
    pub fn free(&mut self, id: u64) -> Result<()> {
        let index = self.events.len();
        if self.live.remove(&id).is_none() {
            return Err(Error::UnknownFree {
                index,
                id,
                freed_at: self.freed.get(&id).copied(),
            });
        }
        self.freed.insert(id, self.events.len());
        self.events.push(Event::Free { id });
        Ok(())
    }

    /// Appends a marker.
    pub fn marker(&mut self, marker: Marker) {
        self.events.push(Event::Marker(marker));
    }

    /// Ids live now, in increasing order.
    pub fn live_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.live.keys().copied()
    }

    /// The trace built so far. Allocations still live are kept (never freed in the trace).
    pub fn finish(self) -> Trace {
        Trace {
            events: self.events,
        }
    }
}
