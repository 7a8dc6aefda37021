//! [`TierStore`]: where each chunk's bytes live — device, pinned host, or NVMe (a [`DiskTier`]
//! file) — and the moves between tiers, executed with the [`CopyEngine`], a [`PinnedPool`]
//! and a [`DiskTier`]. The tiers are core's [`Tier`] (`Device`, `Host`, `Nvme`), the one enum
//! the placement ([`memplan_core::chunk::place`]) and this store share.
//!
//! Built to be driven by a move schedule (`(chunk, from tier, to tier)` steps): each
//! [`TierStore::move_chunk`] call is one step. Device↔host moves are asynchronous (the chunk is
//! *moving* until [`TierStore::poll`] or [`TierStore::sync`] sees the transfer complete);
//! host↔NVMe moves are synchronous `pwrite`/`pread`; device↔NVMe goes through a pinned host
//! buffer. Device memory is owned by the caller (an arena): a chunk moved *to* the device
//! names its destination, and a chunk moved *off* the device reports its old pointer in
//! [`Moved::released_device`] once the copy is done, for the caller to free.
//!
//! ```text
//!   Device(ptr) --d2h (async)--> Host(buf) --pwrite--> Nvme(slot)
//!   Device(ptr) <--h2d (async)-- Host(buf) <--pread--- Nvme(slot)
//! ```
//!
//! Chunks may be shorter than `chunk_bytes` ([`TierStore::insert_host`] with fewer bytes, e.g.
//! fp16 chunks beside fp32 ones): buffers and disk slots are `chunk_bytes` long, copies move
//! only the chunk's own length.
//!
//! Invariants: a chunk is in exactly one place; a `Moving` chunk has exactly one transfer in
//! flight, recorded in `moving`; `lens` holds the length of every chunk shorter than
//! `chunk_bytes` (and of no unknown chunk).

use std::collections::BTreeMap;

use crate::backend::{Backend, DevPtr, StreamHandle};
use crate::copy::{Completed, CopyEngine, Direction, TransferId};
use crate::disk::{DiskSlot, DiskTier};
use crate::error::{Error, Result, invalid};
use crate::pinned::{PinnedBuf, PinnedPool};

pub use memplan_core::chunk::Tier;

#[derive(Debug)]
enum Place {
    Device(DevPtr),
    Host(PinnedBuf),
    Nvme(DiskSlot),
    /// A device↔host transfer is in flight; `dev` is the device pointer read or written.
    Moving {
        id: TransferId,
        to: Tier,
        dev: DevPtr,
    },
}

/// A move that completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// The chunk.
    pub chunk: u64,
    /// Where it is now.
    pub to: Tier,
    /// The device memory it left, now unused (free it in the arena), if it left the device.
    pub released_device: Option<DevPtr>,
}

/// Chunks across tiers. See the [module docs](self).
#[derive(Debug)]
pub struct TierStore {
    chunk_bytes: u64,
    pool: PinnedPool,
    disk: Option<DiskTier>,
    engine: CopyEngine,
    chunks: BTreeMap<u64, Place>,
    moving: BTreeMap<TransferId, u64>,
    /// Lengths of the chunks shorter than `chunk_bytes`.
    lens: BTreeMap<u64, u64>,
}

impl TierStore {
    /// A store for chunks of `chunk_bytes`, with up to `host_buffers` pinned buffers and an
    /// optional NVMe tier (a [`DiskTier`], whose slots must hold a chunk).
    ///
    /// # Errors
    /// `chunk_bytes == 0`; an NVMe tier with slots of another size; backend errors.
    pub fn new<B: Backend + ?Sized>(
        backend: &mut B,
        chunk_bytes: u64,
        host_buffers: u64,
        disk: Option<DiskTier>,
    ) -> Result<Self> {
        let pool = PinnedPool::new(chunk_bytes, host_buffers)?;
        if let Some(d) = &disk
            && d.slot_size() != pool.buf_size()
        {
            return Err(invalid(format!(
                "disk slots of {} bytes for chunks of {} (buffers of {})",
                d.slot_size(),
                chunk_bytes,
                pool.buf_size()
            )));
        }
        Ok(TierStore {
            chunk_bytes,
            pool,
            disk,
            engine: CopyEngine::new(backend)?,
            chunks: BTreeMap::new(),
            moving: BTreeMap::new(),
            lens: BTreeMap::new(),
        })
    }

    /// Bytes per chunk.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// The copy engine (for its streams and stats).
    pub fn engine(&self) -> &CopyEngine {
        &self.engine
    }

    /// The NVMe tier's file, if any (to check [`DiskTier::is_direct`]).
    pub fn disk(&self) -> Option<&DiskTier> {
        self.disk.as_ref()
    }

    /// Registers `chunk` as living on the device at `ptr` (`chunk_bytes` there).
    ///
    /// # Errors
    /// The chunk is already known.
    pub fn insert_device(&mut self, chunk: u64, ptr: DevPtr) -> Result<()> {
        if self.chunks.contains_key(&chunk) {
            return Err(invalid(format!("chunk {chunk} already present")));
        }
        self.chunks.insert(chunk, Place::Device(ptr));
        Ok(())
    }

    /// Registers `chunk` as living in host memory with the contents `data` (copied into a
    /// pinned buffer); the chunk is `data.len()` bytes long from now on, `1..=chunk_bytes`.
    ///
    /// # Errors
    /// The chunk is already known; an empty or too long `data`; out of pinned buffers.
    pub fn insert_host<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        chunk: u64,
        data: &[u8],
    ) -> Result<()> {
        if self.chunks.contains_key(&chunk) {
            return Err(invalid(format!("chunk {chunk} already present")));
        }
        let len = data.len() as u64;
        if len == 0 || len > self.chunk_bytes {
            return Err(invalid(format!(
                "chunk {chunk} of {len} bytes in a store of {}-byte chunks",
                self.chunk_bytes
            )));
        }
        let mut buf = self.pool.acquire(backend)?;
        buf.as_mut_slice()[..data.len()].copy_from_slice(data);
        self.chunks.insert(chunk, Place::Host(buf));
        if len < self.chunk_bytes {
            self.lens.insert(chunk, len);
        }
        Ok(())
    }

    /// Length of `chunk` in bytes (`chunk_bytes` unless it was inserted shorter).
    pub fn len_of(&self, chunk: u64) -> u64 {
        self.lens.get(&chunk).copied().unwrap_or(self.chunk_bytes)
    }

    /// Where `chunk` is: `Some((tier, moving))`, where `tier` is the destination while a
    /// transfer is in flight (`moving == true`); `None` for an unknown chunk.
    pub fn tier_of(&self, chunk: u64) -> Option<(Tier, bool)> {
        self.chunks.get(&chunk).map(|p| match p {
            Place::Device(_) => (Tier::Device, false),
            Place::Host(_) => (Tier::Host, false),
            Place::Nvme(_) => (Tier::Nvme, false),
            Place::Moving { to, .. } => (*to, true),
        })
    }

    /// The chunk's device pointer when it is on the device (not moving).
    pub fn device_ptr(&self, chunk: u64) -> Option<DevPtr> {
        match self.chunks.get(&chunk) {
            Some(Place::Device(p)) => Some(*p),
            _ => None,
        }
    }

    /// The chunk's bytes when it is in host memory (not moving).
    pub fn host_bytes(&self, chunk: u64) -> Option<&[u8]> {
        match self.chunks.get(&chunk) {
            Some(Place::Host(b)) => Some(&b.as_slice()[..self.len_of(chunk) as usize]),
            _ => None,
        }
    }

    fn disk_mut(&mut self) -> Result<&mut DiskTier> {
        self.disk
            .as_mut()
            .ok_or_else(|| invalid("a move to or from the NVMe tier, which this store lacks"))
    }

    /// One schedule step: moves `chunk` to tier `to`. `device_dst` is required when `to` is
    /// [`Tier::Device`] (the caller allocated it); `after` orders a download after the work
    /// queued on that compute stream. Returns the transfer when the move is asynchronous
    /// (then the chunk is moving until [`TierStore::poll`]/[`TierStore::sync`]).
    ///
    /// # Errors
    /// An unknown or moving chunk; a missing `device_dst`; no NVMe tier; out of pinned
    /// buffers; backend or I/O errors (the chunk then stays where it was).
    ///
    /// A device→NVMe move completes synchronously and reports no [`Moved`]: the chunk's
    /// device memory (its [`TierStore::device_ptr`] before the call) is free once it returns.
    pub fn move_chunk<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        chunk: u64,
        to: Tier,
        device_dst: Option<DevPtr>,
        after: Option<StreamHandle>,
    ) -> Result<Option<TransferId>> {
        let from = match self.tier_of(chunk) {
            None => return Err(invalid(format!("move of unknown chunk {chunk}"))),
            Some((_, true)) => return Err(invalid(format!("move of chunk {chunk}, moving"))),
            Some((t, false)) => t,
        };
        if to == Tier::Device && from != Tier::Device && device_dst.is_none() {
            return Err(invalid(format!(
                "move of chunk {chunk} to the device without a destination"
            )));
        }
        let n = self.len_of(chunk);
        match (from, to) {
            (a, b) if a == b => Ok(None),
            (Tier::Device, Tier::Host) => {
                let Some(Place::Device(src)) = self.chunks.get(&chunk) else {
                    unreachable!("tier_of said Device")
                };
                let src = *src;
                let buf = self.pool.acquire(backend)?;
                let id = self
                    .engine
                    .download(backend, src, buf, n, after)
                    .map_err(|f| self.give_back(f.buf, f.error))?;
                self.set_moving(chunk, id, Tier::Host, src);
                Ok(Some(id))
            }
            (Tier::Host, Tier::Device) => {
                let dst = device_dst.unwrap_or_default();
                let Some(Place::Host(buf)) = self.chunks.remove(&chunk) else {
                    unreachable!("tier_of said Host")
                };
                match self.engine.upload(backend, buf, dst, n, after) {
                    Ok(id) => {
                        self.set_moving(chunk, id, Tier::Device, dst);
                        Ok(Some(id))
                    }
                    Err(f) => {
                        self.chunks.insert(chunk, Place::Host(f.buf));
                        Err(f.error)
                    }
                }
            }
            (Tier::Host, Tier::Nvme) => {
                let Some(Place::Host(buf)) = self.chunks.remove(&chunk) else {
                    unreachable!("tier_of said Host")
                };
                match self.disk_mut().and_then(|d| d.write(buf.as_slice())) {
                    Ok(slot) => {
                        self.chunks.insert(chunk, Place::Nvme(slot));
                        self.pool.release(buf)?;
                        Ok(None)
                    }
                    Err(e) => {
                        self.chunks.insert(chunk, Place::Host(buf));
                        Err(e)
                    }
                }
            }
            (Tier::Nvme, Tier::Host) => {
                let mut buf = self.pool.acquire(backend)?;
                let Some(Place::Nvme(slot)) = self.chunks.get(&chunk) else {
                    unreachable!("tier_of said Nvme")
                };
                let slot = DiskSlot::clone_index(slot);
                let r = self
                    .disk_mut()
                    .and_then(|d| d.read(&slot, buf.as_mut_slice()));
                if let Err(e) = r {
                    return Err(self.give_back(buf, e));
                }
                self.disk_mut()?.free(slot)?;
                self.chunks.insert(chunk, Place::Host(buf));
                Ok(None)
            }
            (Tier::Device, Tier::Nvme) => {
                if self.disk.is_none() {
                    return Err(invalid("a move to the NVMe tier, which this store lacks"));
                }
                let id = self.move_chunk(backend, chunk, Tier::Host, None, after)?;
                if let Some(id) = id {
                    let c = self.engine.wait(backend, id)?;
                    self.complete(c)?;
                }
                self.move_chunk(backend, chunk, Tier::Nvme, None, None)
            }
            (Tier::Nvme, Tier::Device) => {
                self.move_chunk(backend, chunk, Tier::Host, None, None)?;
                self.move_chunk(backend, chunk, Tier::Device, device_dst, after)
            }
            _ => unreachable!("every pair of tiers is handled"),
        }
    }

    fn give_back(&mut self, buf: PinnedBuf, e: Error) -> Error {
        let _ = self.pool.release(buf);
        e
    }

    fn set_moving(&mut self, chunk: u64, id: TransferId, to: Tier, dev: DevPtr) {
        self.chunks.insert(chunk, Place::Moving { id, to, dev });
        self.moving.insert(id, chunk);
    }

    fn complete(&mut self, c: Completed) -> Result<Moved> {
        let chunk = self
            .moving
            .remove(&c.id)
            .ok_or_else(|| invalid(format!("transfer {} belongs to no chunk", c.id.0)))?;
        let Some(Place::Moving { to, dev, .. }) = self.chunks.remove(&chunk) else {
            return Err(invalid(format!("chunk {chunk} was not moving")));
        };
        match (to, c.direction) {
            (Tier::Host, Direction::DeviceToHost) => {
                self.chunks.insert(chunk, Place::Host(c.buf));
                Ok(Moved {
                    chunk,
                    to,
                    released_device: Some(dev),
                })
            }
            _ => {
                self.chunks.insert(chunk, Place::Device(dev));
                self.pool.release(c.buf)?;
                Ok(Moved {
                    chunk,
                    to: Tier::Device,
                    released_device: None,
                })
            }
        }
    }

    /// Makes compute `stream` wait until `chunk`'s move in flight (if any) completes.
    ///
    /// # Errors
    /// An unknown chunk; backend errors.
    pub fn fence<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        chunk: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        match self.chunks.get(&chunk) {
            Some(Place::Moving { id, .. }) => self.engine.fence(backend, *id, stream),
            Some(_) => Ok(()),
            None => Err(invalid(format!("fence on unknown chunk {chunk}"))),
        }
    }

    /// Waits for `chunk`'s move in flight, if any, and completes it (other moves stay in
    /// flight).
    ///
    /// # Errors
    /// An unknown chunk; backend errors.
    pub fn wait_chunk<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        chunk: u64,
    ) -> Result<Option<Moved>> {
        match self.chunks.get(&chunk) {
            Some(Place::Moving { id, .. }) => {
                let id = *id;
                let c = self.engine.wait(backend, id)?;
                self.complete(c).map(Some)
            }
            Some(_) => Ok(None),
            None => Err(invalid(format!("wait on unknown chunk {chunk}"))),
        }
    }

    /// Completes every move whose transfer has finished; returns them in transfer order.
    ///
    /// # Errors
    /// Backend errors.
    pub fn poll<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<Vec<Moved>> {
        let done = self.engine.poll(backend)?;
        done.into_iter().map(|c| self.complete(c)).collect()
    }

    /// Waits for every move in flight and completes them.
    ///
    /// # Errors
    /// Backend errors.
    pub fn sync<B: Backend + ?Sized>(&mut self, backend: &mut B) -> Result<Vec<Moved>> {
        let done = self.engine.wait_all(backend)?;
        done.into_iter().map(|c| self.complete(c)).collect()
    }

    /// Forgets `chunk`, giving its host buffer or NVMe slot back; returns its device pointer
    /// if it was on the device.
    ///
    /// # Errors
    /// An unknown or moving chunk.
    pub fn remove(&mut self, chunk: u64) -> Result<Option<DevPtr>> {
        if !matches!(self.chunks.get(&chunk), Some(Place::Moving { .. }) | None) {
            self.lens.remove(&chunk);
        }
        match self.chunks.remove(&chunk) {
            Some(Place::Device(p)) => Ok(Some(p)),
            Some(Place::Host(b)) => self.pool.release(b).map(|()| None),
            Some(Place::Nvme(s)) => self.disk_mut()?.free(s).map(|()| None),
            Some(m @ Place::Moving { .. }) => {
                self.chunks.insert(chunk, m);
                Err(invalid(format!("remove of chunk {chunk}, moving")))
            }
            None => Err(invalid(format!("remove of unknown chunk {chunk}"))),
        }
    }

    /// Waits for everything, then frees every pinned buffer (chunks still on the host are
    /// dropped) and the copy streams.
    ///
    /// # Errors
    /// Backend errors.
    pub fn shutdown<B: Backend + ?Sized>(mut self, backend: &mut B) -> Result<()> {
        self.sync(backend)?;
        for (_, p) in core::mem::take(&mut self.chunks) {
            if let Place::Host(b) = p {
                self.pool.release(b)?;
            }
        }
        for b in self.engine.shutdown(backend)? {
            self.pool.release(b)?;
        }
        self.pool.trim(backend).map(|_| ())
    }
}
