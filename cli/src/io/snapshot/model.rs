//! What a PyTorch memory snapshot records for one device, independent of the pickle's format
//! generation: the segments and blocks at dump time, the same state reconstructed at the
//! moment recording began, and the history between them. [`super::load`] builds it; the trace
//! for a replay ([`super::read`]) and `memplan analyze` are both made from it.

/// A block's state, as PyTorch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockState {
    /// `active_allocated`: handed to the program.
    ActiveAllocated,
    /// `active_pending_free`: freed by the program, waiting on a stream event before reuse.
    ActivePendingFree,
    /// `inactive`: free space inside a segment.
    Inactive,
}

impl BlockState {
    /// True for the two active states (the block's bytes are not reusable).
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Inactive)
    }

    /// PyTorch's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::ActiveAllocated => "active_allocated",
            Self::ActivePendingFree => "active_pending_free",
            Self::Inactive => "inactive",
        }
    }
}

/// One block of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Device address (derived from the segment address and the sizes before it when the
    /// format does not record it, as torch 2.0 does).
    pub address: u64,
    /// Bytes the block spans (rounded by the allocator).
    pub size: u64,
    /// Bytes the program asked for (`requested_size`; the block size when not recorded).
    pub requested_size: u64,
    /// Its state.
    pub state: BlockState,
    /// Where it was allocated: an index into [`Recording::sites`], when frames were recorded.
    pub site: Option<usize>,
}

/// One segment (one cudaMalloc, or one expandable segment's mapped range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Device address of its first byte.
    pub address: u64,
    /// Bytes reserved.
    pub total_size: u64,
    /// The stream it serves.
    pub stream: u64,
    /// True for an expandable segment (`expandable_segments:True`), grown page by page.
    pub is_expandable: bool,
    /// Its blocks in address order, covering it. May be empty when the format lists none.
    pub blocks: Vec<Block>,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `alloc`: a block handed to the program.
    Alloc,
    /// `free_requested`: the program released it (it may wait on a stream).
    FreeRequested,
    /// `free_completed`: its bytes are back in the allocator's pool.
    FreeCompleted,
    /// `segment_alloc`: a cudaMalloc.
    SegmentAlloc,
    /// `segment_free`: a cudaFree.
    SegmentFree,
    /// `segment_map`: pages mapped into an expandable segment.
    SegmentMap,
    /// `segment_unmap`: pages unmapped from an expandable segment.
    SegmentUnmap,
    /// `snapshot`: a snapshot was taken here.
    Snapshot,
    /// `oom`: an allocation failed (`size` is the request; `device_free` what the device had).
    Oom,
    /// `user_defined`, or an annotation (`external_annotations`, `record_function` marks).
    Annotation,
}

/// One entry of a device's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// What happened.
    pub action: Action,
    /// The address it concerns (0 when it has none).
    pub addr: u64,
    /// Bytes (block size for block actions, range size for segment actions, the request for
    /// `oom`).
    pub size: u64,
    /// The stream (0 when not recorded).
    pub stream: u32,
    /// Microseconds since the epoch, when recorded (torch 2.1+).
    pub time_us: Option<i64>,
    /// Where it happened: an index into [`Recording::sites`].
    pub site: Option<usize>,
    /// The annotation's text (for [`Action::Annotation`]), or the `device_free` of an `oom`.
    pub note: Option<String>,
}

/// Which generation of the snapshot format a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// torch 2.0: blocks carry `history`, no `address`; no `time_us`.
    Torch20,
    /// torch 2.1 to 2.7: `frames` on blocks and events.
    Torch21,
    /// torch 2.8+: `compile_context`, `user_metadata`, `external_annotations`.
    Torch28,
    /// The bare segment list `torch.cuda.memory_snapshot()` returns.
    SegmentList,
    /// A flat CSV export of one device's history (`action,addr,size,...` rows), without the
    /// dump-time state.
    EventsCsv,
}

/// How many history entries and allocations one device has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    /// The device index (position in `device_traces`, or a segment's `device`).
    pub device: u32,
    /// History entries.
    pub events: usize,
    /// `alloc` entries.
    pub allocs: usize,
    /// Segments at dump time.
    pub segments: usize,
}

/// One device's recorded memory: the state at the start and end of the history, and the
/// history.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The device read.
    pub device: u32,
    /// Every device the file has anything for (history or segments), in device order.
    pub devices: Vec<DeviceSummary>,
    /// The format generation.
    pub generation: Generation,
    /// Segments at dump time, in address order.
    pub end: Vec<Segment>,
    /// Segments when recording began (the history undone from `end`), in address order;
    /// their active blocks are the pre-existing allocations.
    pub start: Vec<Segment>,
    /// The history, in order.
    pub history: Vec<HistoryEvent>,
    /// Call sites, one line each (`file:line in function`): the innermost frame of user code.
    pub sites: Vec<String>,
    /// What the reader could not reconcile (e.g. a free of a block the state never had),
    /// each one line; empty for a consistent file.
    pub warnings: Vec<String>,
}

impl Recording {
    /// Bytes reserved when recording began: the sizes of the [`Self::start`] segments.
    pub fn reserved_at_start(&self) -> u64 {
        self.start
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.total_size))
    }

    /// The most bytes PyTorch had reserved at any point of the recording: the reserved bytes
    /// at the start, then the running sum of `segment_alloc`/`segment_map` (added) and
    /// `segment_free`/`segment_unmap` (removed), at its maximum.
    ///
    /// # Complexity
    /// One pass over the history.
    pub fn recorded_peak_reserved(&self) -> u64 {
        let mut reserved = self.reserved_at_start();
        let mut peak = reserved;
        for e in &self.history {
            match e.action {
                Action::SegmentAlloc | Action::SegmentMap => {
                    reserved = reserved.saturating_add(e.size);
                    peak = peak.max(reserved);
                }
                Action::SegmentFree | Action::SegmentUnmap => {
                    reserved = reserved.saturating_sub(e.size);
                }
                _ => {}
            }
        }
        peak
    }

    /// The blocks live when recording began (the pre-existing allocations), with their
    /// segment, in address order.
    pub fn pre_existing(&self) -> impl Iterator<Item = (&Segment, &Block)> {
        self.start.iter().flat_map(|s| {
            s.blocks
                .iter()
                .filter(|b| b.state.is_active())
                .map(move |b| (s, b))
        })
    }

    /// How many `alloc` entries the history has.
    pub fn allocs(&self) -> usize {
        self.history
            .iter()
            .filter(|e| e.action == Action::Alloc)
            .count()
    }
}
