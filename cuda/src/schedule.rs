//! [`execute`]: runs a chunk placement from [`memplan_core::chunk::place`] on
//! any [`Backend`], moving real bytes between device memory, pinned host buffers and a disk
//! file with a [`TierStore`], and checking them.
//!
//! # How a placement is run
//! Every chunk starts where the placement says (host or NVMe), filled with a deterministic byte
//! pattern ([`fill_pattern`]). Then, moment by moment:
//!
//! 1. finished transfers are collected: a chunk that left the device frees its device memory,
//!    and a chunk that reached the host has its bytes checked;
//! 2. the placement's moves of the moment run in order. A move to the device allocates the chunk's
//!    memory with [`Backend::mem_alloc`] (when the budget is full because offloads are still
//!    in flight, it waits for them first: their memory is freed only once their copies are
//!    done) and uploads asynchronously; a move off the device downloads after the compute
//!    queued so far (the chunk's last use); host↔NVMe moves are synchronous file I/O;
//! 3. the moment computes: the compute stream waits for the uploads of the chunks it
//!    accesses (prefetches issued one moment earlier have usually finished, so their copies
//!    overlapped the previous moment's compute), the moment's non-model bytes are allocated,
//!    and the caller's `compute` hook queues the work.
//!
//! Checks: with [`Verify::Arrivals`] a chunk's bytes are compared with its pattern each time
//! it reaches host memory (free: no device work); with [`Verify::Full`] also each time it
//! reaches the device (read back, compared, then overwritten on the device with a new
//! version of its pattern, so that every round trip carries different bytes and a stale copy
//! cannot pass). `Full` synchronizes after each fetch, so its timing means nothing. After the
//! timed run every chunk is checked once more wherever it is.
//!
//! Bytes moved are counted per tier pair from the moves executed; they equal the placement's
//! `bytes` when the run succeeds (the executor checks each move's `from` against where the
//! chunk really is, and fails on any mismatch).

use std::collections::BTreeMap;
use std::path::Path;

use memplan_core::chunk::{ChunkId, Placement, Schedule};

use crate::backend::{Backend, DevPtr, EventHandle, StreamHandle};
use crate::copy::Direction;
use crate::disk::DiskTier;
use crate::error::{Error, Result, invalid};
use crate::tier::{Moved, Tier, TierStore};

/// How much [`execute`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Check a chunk's bytes whenever it reaches host memory, and every chunk at the end.
    Arrivals,
    /// Also read every chunk back when it reaches the device and give it a new pattern
    /// there (synchronizes after each fetch: no overlap, timings meaningless).
    Full,
}

/// Options of [`execute`].
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions<'a> {
    /// File for the NVMe tier (created, removed afterwards); required when the placement uses it.
    pub disk_path: Option<&'a Path>,
    /// What to check.
    pub verify: Verify,
}

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReport {
    /// Bytes moved, `bytes[from][to]` by [`Tier`] index (device, host, NVMe).
    pub bytes: [[u64; 3]; 3],
    /// Moves executed.
    pub moves: u64,
    /// Of those, prefetches (fetches issued a moment before their use).
    pub prefetches: u64,
    /// Chunk byte checks made (each compares a whole chunk with its pattern).
    pub checks: u64,
    /// Bytes compared in those checks.
    pub checked_bytes: u64,
    /// Device time of the run, ms, from an event before the first move to one after the last
    /// copy and compute (on the Host backend: simulated time).
    pub elapsed_ms: f64,
    /// Most device bytes the executor held at once (chunks plus non-model memory).
    pub peak_device_bytes: u64,
    /// Device allocations that had to wait for offloads in flight to finish first.
    pub alloc_waits: u64,
    /// Whether the NVMe file used `O_DIRECT` (`None` without one).
    pub disk_direct: Option<bool>,
}

/// The pattern byte `i` of version `version` of chunk `chunk`: splitmix64 of the chunk,
/// version and 8-byte word index, little-endian.
fn pattern_word(chunk: u32, version: u32, word: u64) -> u64 {
    let mut z = (u64::from(chunk) << 32 | u64::from(version))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(word)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with version `version` of chunk `chunk`'s pattern (deterministic; different
/// chunks and versions give different bytes).
pub fn fill_pattern(chunk: u32, version: u32, out: &mut [u8]) {
    for (w, piece) in out.chunks_mut(8).enumerate() {
        let bytes = pattern_word(chunk, version, w as u64).to_le_bytes();
        piece.copy_from_slice(&bytes[..piece.len()]);
    }
}

/// The pattern as a vector of `len` bytes.
fn pattern(chunk: u32, version: u32, len: u64) -> Result<Vec<u8>> {
    let n = usize::try_from(len).map_err(|_| Error::Overflow)?;
    let mut v = vec![0u8; n];
    fill_pattern(chunk, version, &mut v);
    Ok(v)
}

/// Checks the placement against the sizes and schedule before anything is allocated.
fn validate(sizes: &[u64], schedule: &Schedule, placement: &Placement) -> Result<bool> {
    if sizes.is_empty() {
        return Err(invalid("no chunks to execute"));
    }
    if let Some(c) = sizes.iter().position(|&s| s == 0) {
        return Err(invalid(format!("chunk {c} has 0 bytes")));
    }
    if placement.initial.len() != sizes.len() {
        return Err(invalid(format!(
            "the plan places {} chunks but {} chunk sizes were given",
            placement.initial.len(),
            sizes.len()
        )));
    }
    if let Some(c) = placement.initial.iter().position(|&t| t == Tier::Device) {
        return Err(invalid(format!("the plan starts chunk {c} on the device")));
    }
    let moments = schedule.moments.len();
    let mut uses_nvme = placement.initial.contains(&Tier::Nvme);
    let mut last = 0u32;
    for (i, mv) in placement.moves.iter().enumerate() {
        let size = sizes.get(mv.chunk.index()).ok_or_else(|| {
            invalid(format!(
                "move {i} names chunk {}, which has no size",
                mv.chunk.0
            ))
        })?;
        if *size != mv.bytes {
            return Err(invalid(format!(
                "move {i} moves {} bytes of chunk {}, which has {size}",
                mv.bytes, mv.chunk.0
            )));
        }
        if mv.moment as usize >= moments || mv.moment < last {
            return Err(invalid(format!(
                "move {i} is at moment {}: out of order or past the schedule's {moments} moments",
                mv.moment
            )));
        }
        if mv.from == mv.to {
            return Err(invalid(format!("move {i} goes from a tier to itself")));
        }
        last = mv.moment;
        uses_nvme |= mv.to == Tier::Nvme || mv.from == Tier::Nvme;
    }
    for (m, moment) in schedule.moments.iter().enumerate() {
        if let Some(c) = moment.accesses.iter().find(|c| c.index() >= sizes.len()) {
            return Err(invalid(format!(
                "moment {m} accesses chunk {}, which has no size",
                c.0
            )));
        }
    }
    Ok(uses_nvme)
}

struct Exec<'a, B: Backend + ?Sized> {
    b: &'a mut B,
    store: TierStore,
    sizes: &'a [u64],
    verify: Verify,
    compute: StreamHandle,
    version: Vec<u32>,
    /// Device memory held for each chunk (on the device, or moving to or from it).
    dev: BTreeMap<u64, DevPtr>,
    device_bytes: u64,
    report: ExecReport,
}

impl<B: Backend + ?Sized> Exec<'_, B> {
    fn held(&mut self, bytes: u64) {
        self.device_bytes += bytes;
        self.report.peak_device_bytes = self.report.peak_device_bytes.max(self.device_bytes);
    }

    fn check(&mut self, chunk: u64, actual: &[u8], where_: &str) -> Result<()> {
        let c = chunk as u32;
        let want = pattern(c, self.version[chunk as usize], actual.len() as u64)?;
        if let Some(i) = want.iter().zip(actual).position(|(a, b)| a != b) {
            return Err(invalid(format!(
                "chunk {c} corrupted on the {where_}: byte {i} is {:#04x}, expected {:#04x} \
                 (version {})",
                actual[i], want[i], self.version[chunk as usize]
            )));
        }
        self.report.checks += 1;
        self.report.checked_bytes += actual.len() as u64;
        Ok(())
    }

    fn check_host(&mut self, chunk: u64) -> Result<()> {
        let bytes = self
            .store
            .host_bytes(chunk)
            .ok_or_else(|| invalid(format!("chunk {chunk} is not in host memory")))?
            .to_vec();
        self.check(chunk, &bytes, "host")
    }

    fn read_device(&mut self, ptr: DevPtr, len: u64) -> Result<Vec<u8>> {
        let mut out = vec![0u8; usize::try_from(len).map_err(|_| Error::Overflow)?];
        // SAFETY: `out` is valid for `len` bytes of writes and nothing else touches it; the
        // stream is synchronized before it is read or dropped.
        unsafe { self.b.copy_d2h(out.as_mut_ptr(), ptr, len, self.compute)? };
        self.b.stream_synchronize(self.compute)?;
        Ok(out)
    }

    fn done(&mut self, moved: Vec<Moved>) -> Result<()> {
        for m in moved {
            if let Some(p) = m.released_device {
                self.b.mem_free(p)?;
                self.dev.remove(&m.chunk);
                self.device_bytes -= self.sizes[m.chunk as usize];
            }
            if m.to == Tier::Host {
                self.check_host(m.chunk)?;
            }
        }
        Ok(())
    }

    /// Allocates `bytes` of device memory, waiting for offloads in flight when full.
    fn alloc(&mut self, bytes: u64) -> Result<DevPtr> {
        loop {
            match self.b.mem_alloc(bytes) {
                Ok(p) => {
                    self.held(bytes);
                    return Ok(p);
                }
                Err(Error::OutOfMemory { .. }) if self.store.engine().in_flight() > 0 => {
                    self.report.alloc_waits += 1;
                    let moved = self.store.sync(self.b)?;
                    self.done(moved)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn wait(&mut self, chunk: u64) -> Result<Tier> {
        if let Some(m) = self.store.wait_chunk(self.b, chunk)? {
            self.done(vec![m])?;
        }
        match self.store.tier_of(chunk) {
            Some((t, false)) => Ok(t),
            _ => Err(invalid(format!(
                "chunk {chunk} is still moving after a wait"
            ))),
        }
    }

    /// A fetch reached the device: read it back, compare, give it a new version there.
    fn full_check_device(&mut self, chunk: u64) -> Result<()> {
        self.wait(chunk)?;
        let ptr = self
            .store
            .device_ptr(chunk)
            .ok_or_else(|| invalid(format!("chunk {chunk} is not on the device")))?;
        let len = self.sizes[chunk as usize];
        let bytes = self.read_device(ptr, len)?;
        self.check(chunk, &bytes, "device")?;
        self.version[chunk as usize] += 1;
        let next = pattern(chunk as u32, self.version[chunk as usize], len)?;
        // SAFETY: `next` is valid for `len` bytes of reads and outlives the copy: the stream
        // is synchronized before it is dropped.
        unsafe { self.b.copy_h2d(ptr, next.as_ptr(), len, self.compute)? };
        self.b.stream_synchronize(self.compute)
    }

    fn run_move(&mut self, i: usize, chunk: ChunkId, from: Tier, to: Tier) -> Result<()> {
        let c = u64::from(chunk.0);
        let mut at = self.store.tier_of(c);
        if matches!(at, Some((_, true))) {
            at = Some((self.wait(c)?, false));
        }
        if at != Some((from, false)) {
            return Err(invalid(format!(
                "move {i}: the plan moves chunk {c} from the {} but it is on the {}",
                from.name(),
                at.map_or("nowhere", |(t, _)| t.name())
            )));
        }
        let size = self.sizes[c as usize];
        if from == Tier::Host && self.verify == Verify::Full {
            self.check_host(c)?;
        }
        match (from, to) {
            (_, Tier::Device) => {
                let p = self.alloc(size)?;
                if let Err(e) = self.store.move_chunk(self.b, c, to, Some(p), None) {
                    let _ = self.b.mem_free(p);
                    self.device_bytes -= size;
                    return Err(e);
                }
                self.dev.insert(c, p);
                if self.verify == Verify::Full {
                    self.full_check_device(c)?;
                }
            }
            (Tier::Device, Tier::Nvme) => {
                self.store
                    .move_chunk(self.b, c, to, None, Some(self.compute))?;
                // Synchronous: its device memory is free now.
                if let Some(p) = self.dev.remove(&c) {
                    self.b.mem_free(p)?;
                    self.device_bytes -= size;
                }
            }
            (Tier::Device, _) => {
                self.store
                    .move_chunk(self.b, c, to, None, Some(self.compute))?;
            }
            (Tier::Nvme, Tier::Host) => {
                self.store.move_chunk(self.b, c, to, None, None)?;
                self.check_host(c)?;
            }
            _ => {
                self.store.move_chunk(self.b, c, to, None, None)?;
            }
        }
        Ok(())
    }

    fn event_on(&mut self, stream: StreamHandle) -> Result<EventHandle> {
        let e = self.b.event_create()?;
        self.b.event_record(e, stream)?;
        Ok(e)
    }

    /// Final check of every chunk, wherever it is (not timed; may move NVMe chunks to the
    /// host, outside the placement's counters).
    fn check_all(&mut self) -> Result<()> {
        for c in 0..self.sizes.len() as u64 {
            match self.wait(c)? {
                Tier::Device => {
                    let ptr = self.dev.get(&c).copied().ok_or_else(|| {
                        invalid(format!("chunk {c} on the device without memory"))
                    })?;
                    let bytes = self.read_device(ptr, self.sizes[c as usize])?;
                    self.check(c, &bytes, "device")?;
                }
                Tier::Host => self.check_host(c)?,
                Tier::Nvme => {
                    self.store.move_chunk(self.b, c, Tier::Host, None, None)?;
                    self.check_host(c)?;
                }
            }
        }
        Ok(())
    }

    fn teardown(mut self) -> Result<ExecReport> {
        let moved = self.store.sync(self.b)?;
        self.done(moved)?;
        for c in 0..self.sizes.len() as u64 {
            if let Some(p) = self.store.remove(c)? {
                self.b.mem_free(p)?;
                self.dev.remove(&c);
            }
        }
        self.store.shutdown(self.b)?;
        self.b.stream_destroy(self.compute)?;
        Ok(self.report)
    }
}

/// Runs `placement` (made by `place(sizes, schedule, ..)`, or the placement of
/// [`memplan_core::chunk::place_training`]) on `backend`. See the
/// [module docs](self).
///
/// `compute(backend, moment, stream)` queues moment `moment`'s work on the compute `stream`
/// (on the Host backend, e.g. `HostBackend::simulate_kernel`); it runs after the moment's
/// moves, with the moment's chunks on the device (or their uploads ordered before it).
///
/// # Errors
/// A placement that does not match `sizes` or `schedule` (move sizes, chunk ids, moment order, a
/// move whose `from` is not where the chunk is, a chunk accessed while not on the device);
/// NVMe moves without [`ExecOptions::disk_path`]; a chunk whose bytes differ from its
/// pattern (which chunk, where, which byte); backend, out-of-memory and I/O errors. On an
/// error part way, device memory and streams taken so far are not given back.
pub fn execute<B, F>(
    backend: &mut B,
    sizes: &[u64],
    schedule: &Schedule,
    placement: &Placement,
    options: &ExecOptions<'_>,
    mut compute: F,
) -> Result<ExecReport>
where
    B: Backend + ?Sized,
    F: FnMut(&mut B, u32, StreamHandle) -> Result<()>,
{
    let uses_nvme = validate(sizes, schedule, placement)?;
    let max = sizes.iter().copied().max().unwrap_or(0);
    let disk = match (uses_nvme, options.disk_path) {
        (true, None) => {
            return Err(invalid(
                "the plan uses the NVMe tier but no disk path was given",
            ));
        }
        (true, Some(p)) => Some(DiskTier::create(p, max)?),
        (false, _) => None,
    };
    let disk_direct = disk.as_ref().map(DiskTier::is_direct);
    let n = sizes.len() as u64;
    let store = TierStore::new(backend, max, n + 2, disk)?;
    let compute_stream = backend.stream_create()?;
    let mut x = Exec {
        b: backend,
        store,
        sizes,
        verify: options.verify,
        compute: compute_stream,
        version: vec![0; sizes.len()],
        dev: BTreeMap::new(),
        device_bytes: 0,
        report: ExecReport {
            bytes: [[0; 3]; 3],
            moves: 0,
            prefetches: 0,
            checks: 0,
            checked_bytes: 0,
            elapsed_ms: 0.0,
            peak_device_bytes: 0,
            alloc_waits: 0,
            disk_direct,
        },
    };
    for (c, &t) in placement.initial.iter().enumerate() {
        let data = pattern(c as u32, 0, sizes[c])?;
        x.store.insert_host(x.b, c as u64, &data)?;
        if t == Tier::Nvme {
            x.store.move_chunk(x.b, c as u64, Tier::Nvme, None, None)?;
        }
    }
    let start = x.event_on(compute_stream)?;
    let mut next = 0usize;
    for (m, moment) in schedule.moments.iter().enumerate() {
        let m32 = m as u32;
        let moved = x.store.poll(x.b)?;
        x.done(moved)?;
        while let Some(mv) = placement.moves.get(next).filter(|mv| mv.moment == m32) {
            x.run_move(next, mv.chunk, mv.from, mv.to)?;
            x.report.bytes[mv.from as usize][mv.to as usize] += mv.bytes;
            x.report.moves += 1;
            x.report.prefetches += u64::from(mv.prefetch);
            next += 1;
        }
        for &c in &moment.accesses {
            let c = u64::from(c.0);
            match x.store.tier_of(c) {
                Some((Tier::Device, moving)) => {
                    if moving {
                        x.store.fence(x.b, c, compute_stream)?;
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "moment {m} accesses chunk {c}, which is on the {} and not the device",
                        other.map_or("nowhere", |(t, _)| t.name())
                    )));
                }
            }
        }
        let scratch = if moment.non_model > 0 {
            Some(x.alloc(moment.non_model)?)
        } else {
            None
        };
        compute(x.b, m32, compute_stream)?;
        if let Some(p) = scratch {
            x.b.mem_free(p)?;
            x.device_bytes -= moment.non_model;
        }
    }
    if next != placement.moves.len() {
        return Err(invalid(format!(
            "{} moves are left after the last moment",
            placement.moves.len() - next
        )));
    }
    // End of the timed run: after the compute and both copy streams.
    for d in [Direction::HostToDevice, Direction::DeviceToHost] {
        let s = x.store.engine().stream(d);
        let e = x.event_on(s)?;
        x.b.stream_wait_event(compute_stream, e)?;
        x.b.event_destroy(e)?;
    }
    let end = x.event_on(compute_stream)?;
    x.b.event_synchronize(end)?;
    x.report.elapsed_ms = f64::from(x.b.event_elapsed_ms(start, end)?);
    x.b.event_destroy(start)?;
    x.b.event_destroy(end)?;
    x.check_all()?;
    x.teardown()
}
