//! Chunks over tiers: [`place`] walks an access [`Schedule`] (moments, the chunks each needs
//! on the device, the non-model device bytes at each) and emits [`Move`]s between the
//! [`Tier`]s: demand fetches, evictions chosen by a [`Policy`] (Belady's furthest-next-use, or
//! LRU), and prefetches one moment ahead.
//!
//! Invariants of its output [`Placement`], checked by the tests against a shadow simulation:
//! every move's `from` is where the chunk is, no tier ever holds more than its capacity (the
//! device's being `device − non_model[moment]`), and every chunk a moment needs is on the
//! device when that moment computes.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use super::error::ChunkError;
use super::model::ChunkId;
use super::schedule::Schedule;

/// A memory tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// GPU memory.
    Device = 0,
    /// Host (pinned CPU) memory.
    Host = 1,
    /// NVMe storage.
    Nvme = 2,
}

impl Tier {
    /// All tiers, in index order.
    pub const ALL: [Tier; 3] = [Tier::Device, Tier::Host, Tier::Nvme];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Device => "device",
            Tier::Host => "host",
            Tier::Nvme => "nvme",
        }
    }
}

/// How to choose which chunk leaves a full tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Evict the chunk whose next use is furthest away (never used again counts as furthest;
    /// ties: the lower id), as PatrickStar's OPT policy.
    Belady,
    /// Evict the least recently used chunk (never used counts as oldest; ties: the lower id).
    Lru,
}

/// Capacities and options of [`place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementOptions {
    /// Device bytes (chunks plus non-model memory).
    pub device: u64,
    /// Host bytes.
    pub host: u64,
    /// NVMe bytes (0: no NVMe tier).
    pub nvme: u64,
    /// Eviction policy.
    pub policy: Policy,
    /// Fetch the next moment's chunks one moment ahead when room can be made without evicting
    /// a chunk that this or the next moment needs.
    pub prefetch: bool,
}

/// One move of a chunk between tiers. An executor applies the moves in order; all moves at
/// moment `m` happen before moment `m` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The chunk.
    pub chunk: ChunkId,
    /// Where it is.
    pub from: Tier,
    /// Where it goes.
    pub to: Tier,
    /// The schedule moment before which it happens.
    pub moment: u32,
    /// Its size.
    pub bytes: u64,
    /// True for a fetch to the device issued before the moment that needs it.
    pub prefetch: bool,
}

/// The output of [`place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Where every chunk starts, indexed by [`ChunkId::index`] (never the device).
    pub initial: Vec<Tier>,
    /// The moves, in execution order (moments non-decreasing).
    pub moves: Vec<Move>,
    /// Bytes moved, `bytes[from][to]` by tier index.
    pub bytes: [[u64; 3]; 3],
    /// Bytes fetched to the device in all.
    pub fetched: u64,
    /// Of `fetched`, bytes fetched at an earlier moment than their use (stall-free).
    pub prefetched: u64,
    /// Chunk bytes on the device at the end of each moment's moves (prefetches included).
    pub device_bytes: Vec<u64>,
}

impl Placement {
    /// Total bytes moved between any two tiers.
    pub fn total_moved(&self) -> u64 {
        self.bytes.iter().flatten().sum()
    }

    /// Fraction of device fetches that were prefetched (1.0 when nothing was fetched).
    pub fn prefetch_coverage(&self) -> f64 {
        if self.fetched == 0 {
            1.0
        } else {
            self.prefetched as f64 / self.fetched as f64
        }
    }
}

/// The running state of [`place`].
struct Placer<'a> {
    sizes: &'a [u64],
    schedule: &'a Schedule,
    options: PlacementOptions,
    /// `uses[c]`: sorted moments at which chunk `c` is accessed.
    uses: Vec<Vec<u32>>,
    at: Vec<Tier>,
    /// Bytes on each tier.
    load: [u64; 3],
    /// Last access moment of each chunk (LRU), `None` when never accessed yet.
    last: Vec<Option<u32>>,
    /// Chunks on the device (sorted for deterministic scans).
    on_device: BTreeSet<ChunkId>,
    on_host: BTreeSet<ChunkId>,
    out: Placement,
}

impl Placer<'_> {
    /// Next access of `c` strictly after `m` (`u32::MAX` when none).
    fn next_use(&self, c: ChunkId, m: u32) -> u32 {
        let u = &self.uses[c.index()];
        let i = u.partition_point(|&x| x <= m);
        u.get(i).copied().unwrap_or(u32::MAX)
    }

    /// Victim among `candidates` at moment `m` (uses after `after` count for Belady).
    fn victim(&self, candidates: impl Iterator<Item = ChunkId>, after: u32) -> Option<ChunkId> {
        match self.options.policy {
            // max next use; among equals the lowest id (ids scanned ascending, strict >).
            Policy::Belady => {
                let mut best: Option<(u32, ChunkId)> = None;
                for c in candidates {
                    let n = self.next_use(c, after);
                    if best.is_none_or(|(bn, _)| n > bn) {
                        best = Some((n, c));
                    }
                }
                best.map(|(_, c)| c)
            }
            Policy::Lru => {
                let mut best: Option<(Option<u32>, ChunkId)> = None;
                for c in candidates {
                    let l = self.last[c.index()];
                    if best.is_none_or(|(bl, _)| l < bl) {
                        best = Some((l, c));
                    }
                }
                best.map(|(_, c)| c)
            }
        }
    }

    fn record(&mut self, c: ChunkId, to: Tier, moment: u32, prefetch: bool) {
        let from = self.at[c.index()];
        let bytes = self.sizes[c.index()];
        self.load[from as usize] -= bytes;
        self.load[to as usize] += bytes;
        self.at[c.index()] = to;
        match from {
            Tier::Device => self.on_device.remove(&c),
            Tier::Host => self.on_host.remove(&c),
            Tier::Nvme => false,
        };
        match to {
            Tier::Device => self.on_device.insert(c),
            Tier::Host => self.on_host.insert(c),
            Tier::Nvme => false,
        };
        self.out.bytes[from as usize][to as usize] += bytes;
        if to == Tier::Device {
            self.out.fetched += bytes;
            if prefetch {
                self.out.prefetched += bytes;
            }
        }
        self.out.moves.push(Move {
            chunk: c,
            from,
            to,
            moment,
            bytes,
            prefetch,
        });
    }

    /// Moves device chunk `c` off the device at moment `m`: to the host when it has room;
    /// otherwise the policy picks, among the host's chunks and `c`, one to go to NVMe.
    fn evict(&mut self, c: ChunkId, m: u32) {
        let size = self.sizes[c.index()];
        loop {
            if self.options.host - self.load[Tier::Host as usize] >= size {
                self.record(c, Tier::Host, m, false);
                return;
            }
            // The slack `place` demands (host + NVMe >= all chunks + the largest one)
            // keeps host-free + NVMe-free >= size + largest while `c` is on the device, so
            // with the host short of `size`, NVMe has room for `c` (and any other chunk).
            let nvme_free = self.options.nvme - self.load[Tier::Nvme as usize];
            debug_assert!(nvme_free >= size);
            let candidates: Vec<ChunkId> = self
                .on_host
                .iter()
                .copied()
                .chain(core::iter::once(c))
                .filter(|x| self.sizes[x.index()] <= nvme_free)
                .collect();
            let v = self
                .victim(candidates.into_iter(), m)
                .expect("candidates include c");
            self.record(v, Tier::Nvme, m, false);
            if v == c {
                return;
            }
        }
    }

    /// Frees device room until `need` more bytes fit under `cap`, evicting chunks not in
    /// `keep`. Returns false (having evicted some) when that is impossible.
    fn make_room(&mut self, need: u64, cap: u64, keep: &[&[ChunkId]], m: u32, after: u32) -> bool {
        while self.load[Tier::Device as usize] + need > cap {
            let candidates: Vec<ChunkId> = self
                .on_device
                .iter()
                .copied()
                .filter(|c| keep.iter().all(|k| k.binary_search(c).is_err()))
                .collect();
            match self.victim(candidates.into_iter(), after) {
                Some(v) => self.evict(v, m),
                None => return false,
            }
        }
        true
    }
}

/// `v` sorted, without repeats.
fn sorted_unique(v: &[ChunkId]) -> Vec<ChunkId> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.dedup();
    s
}

/// Places the chunks of `schedule` over device, host and NVMe, moment by moment.
///
/// `sizes[c]` is the byte size of chunk `c`. Every chunk starts off the device: on the host in
/// order of first access while it has room, then on NVMe. At each moment it (1)
/// evicts until the device fits its capacity minus the moment's non-model bytes, (2) fetches
/// the moment's missing chunks, evicting others by the policy, and (3) with prefetch on,
/// fetches the next moment's missing chunks when room can be made under both moments'
/// capacities without evicting a chunk either moment needs. Evicted chunks go to the host,
/// or, when it is full, the policy sends one of the host's chunks (or the evicted one) to
/// NVMe.
///
/// # Errors
/// [`ChunkError::UnknownChunk`] for an access to a chunk without a size,
/// [`ChunkError::OffDeviceTooSmall`] when host + NVMe cannot hold every chunk (with one
/// largest chunk of slack when the host alone cannot),
/// [`ChunkError::WorkingSetTooLarge`] when one moment's chunks cannot fit on the device,
/// [`ChunkError::Overflow`] for sizes summing past `u64` or more than `u32::MAX` moments.
///
/// # Complexity
/// O(M · (A + D · E)) for M moments, A accesses per moment, D chunks on the device and E
/// evictions per moment.
pub fn place(
    sizes: &[u64],
    schedule: &Schedule,
    options: PlacementOptions,
) -> Result<Placement, ChunkError> {
    let moments = u32::try_from(schedule.moments.len())
        .map_err(|_| ChunkError::Overflow { what: "moments" })?;
    let n = sizes.len();
    u32::try_from(n).map_err(|_| ChunkError::Overflow {
        what: "chunk count",
    })?;
    let mut uses: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (m, moment) in schedule.moments.iter().enumerate() {
        let m = m as u32;
        let mut need = 0u64;
        for c in sorted_unique(&moment.accesses) {
            let size = *sizes.get(c.index()).ok_or(ChunkError::UnknownChunk {
                chunk: c.0,
                moment: m,
            })?;
            uses[c.index()].push(m);
            need = need.checked_add(size).ok_or(ChunkError::Overflow {
                what: "working set",
            })?;
        }
        let have = options.device.saturating_sub(moment.non_model);
        if need > have {
            return Err(ChunkError::WorkingSetTooLarge {
                moment: m,
                need,
                have,
            });
        }
    }
    let total = sizes
        .iter()
        .try_fold(0u64, |a, &s| a.checked_add(s))
        .ok_or(ChunkError::Overflow {
            what: "total chunk bytes",
        })?;
    // All chunks on the host; or, split between host and NVMe, room for all plus the largest
    // chunk, so that an eviction always finds room (see `Placer::evict`).
    let off = options.host.saturating_add(options.nvme);
    let need = if options.host >= total || options.nvme == 0 {
        total
    } else {
        total.saturating_add(sizes.iter().copied().max().unwrap_or(0))
    };
    if need > off {
        return Err(ChunkError::OffDeviceTooSmall { need, have: off });
    }
    // Initial placement: host in order of first access (never-accessed last), then NVMe.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&c| (uses[c].first().copied().unwrap_or(u32::MAX), c));
    let mut at = vec![Tier::Nvme; n];
    let mut load = [0u64; 3];
    let mut on_host = BTreeSet::new();
    for c in order {
        if options.host - load[1] >= sizes[c] {
            at[c] = Tier::Host;
            load[1] += sizes[c];
            on_host.insert(ChunkId(c as u32));
        } else {
            at[c] = Tier::Nvme;
            load[2] += sizes[c];
        }
    }
    let mut p = Placer {
        sizes,
        schedule,
        options,
        uses,
        out: Placement {
            initial: at.clone(),
            moves: Vec::new(),
            bytes: [[0; 3]; 3],
            fetched: 0,
            prefetched: 0,
            device_bytes: Vec::with_capacity(moments as usize),
        },
        at,
        load,
        last: vec![None; n],
        on_device: BTreeSet::new(),
        on_host,
    };
    for m in 0..moments {
        let moment = &p.schedule.moments[m as usize];
        let need = sorted_unique(&moment.accesses);
        let cap = options.device.saturating_sub(moment.non_model);
        // (1) non-model memory grew: evict down to the capacity.
        let ok = p.make_room(0, cap, &[&need], m, m);
        debug_assert!(ok, "chunks this moment needs fit (checked above)");
        // (2) demand fetches.
        for &c in &need {
            if p.at[c.index()] != Tier::Device {
                let ok = p.make_room(p.sizes[c.index()], cap, &[&need], m, m);
                debug_assert!(ok, "the working set fits (checked above)");
                p.record(c, Tier::Device, m, false);
            }
        }
        for &c in &need {
            p.last[c.index()] = Some(m);
        }
        // (3) prefetch the next moment's chunks.
        if options.prefetch && m + 1 < moments {
            let next = &p.schedule.moments[m as usize + 1];
            let want = sorted_unique(&next.accesses);
            let cap2 = cap.min(options.device.saturating_sub(next.non_model));
            // Bytes that must stay: chunks on the device that this or the next moment needs.
            let mut pinned: u64 = need.iter().map(|c| p.sizes[c.index()]).sum();
            pinned += want
                .iter()
                .filter(|c| p.at[c.index()] == Tier::Device && need.binary_search(c).is_err())
                .map(|c| p.sizes[c.index()])
                .sum::<u64>();
            for &c in &want {
                if p.at[c.index()] == Tier::Device {
                    continue;
                }
                let size = p.sizes[c.index()];
                if pinned + size > cap2 {
                    break;
                }
                let ok = p.make_room(size, cap2, &[&need, &want], m, m + 1);
                debug_assert!(ok, "the pinned chunks plus this one fit");
                p.record(c, Tier::Device, m, true);
                pinned += size;
            }
        }
        p.out.device_bytes.push(p.load[Tier::Device as usize]);
    }
    Ok(p.out)
}
