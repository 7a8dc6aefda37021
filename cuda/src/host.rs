//! [`HostBackend`]: the device simulated in host memory, with a byte budget and a simulated
//! clock, so every executor path runs in tests without a GPU.
//!
//! # Model
//!
//! - **Addresses** are simulated (`DevPtr`s starting at [`HOST_VA_BASE`], never reused), not
//!   host pointers: they are not dereferenceable, and only this backend's copies read or
//!   write them. Plain allocations (`mem_alloc`) each own a zeroed buffer. Physical
//!   allocations (`phys_create`) own a buffer too, and mappings point virtual ranges at them,
//!   so one physical allocation mapped at two addresses shows the same bytes at both (as
//!   with `cuMemMap`).
//! - **Budget**: plain and physical allocations count against [`HostConfig::budget`]; beyond
//!   it they fail with [`Error::OutOfMemory`]. A released physical allocation stops counting
//!   once it is unmapped everywhere.
//! - **Checks** follow the driver: map only inside a reservation, never over a mapping, sizes
//!   in whole pages of [`HostConfig::granularity`]; unmap whole mappings; free a reservation
//!   only when nothing in it is mapped. A copy touching an unmapped byte fails and changes
//!   nothing.
//! - **Clock**: copies take `latency + bytes / bandwidth` of simulated time per direction.
//!   Each stream has a *ready time* (when its queued work ends); queuing work starts it at
//!   `max(ready, now)`. An event recorded on a stream gets the stream's ready time; it is
//!   complete once `now` reaches it. `stream_wait_event` moves the stream's ready time to at
//!   least the event's. Synchronizing moves `now` forward. Data moves at once, when the copy is
//!   queued (the simulation keeps the order of operations, only time is modelled).
//! - **Streams**: an unknown nonzero stream handle names a foreign stream (one a framework
//!   created) and is adopted on first use; `stream_destroy` only accepts streams made here.
//!
//! - **Pinned buffers** still allocated when the backend is dropped are leaked, not freed, so
//!   that a buffer handed out earlier never dangles.
//!
//! Invariants: `used` equals the bytes of plain allocations plus those of physical
//! allocations that are not both released and unmapped; mappings lie inside reservations
//! and never overlap; every mapping's handle is in `phys`.

use core::ptr::NonNull;
use std::collections::BTreeMap;

use crate::backend::{
    Backend, BackendKind, DevPtr, EventHandle, MemInfo, PhysHandle, StreamHandle,
};
use crate::error::{Error, Result, invalid, round_up};

/// The first simulated device address.
pub const HOST_VA_BASE: DevPtr = 0x2000_0000_0000;
/// Alignment of plain allocations (as `cudaMalloc`'s 256 bytes, rounded up to 512).
const PLAIN_ALIGN: u64 = 512;
/// Alignment of pinned host buffers.
const HOST_ALIGN: usize = 4096;

/// The layout of a pinned host buffer of `bytes`.
fn layout(bytes: u64) -> Option<std::alloc::Layout> {
    let n = usize::try_from(bytes).ok()?;
    std::alloc::Layout::from_size_align(n, HOST_ALIGN).ok()
}

/// Settings of a [`HostBackend`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostConfig {
    /// Most bytes of device memory (plain plus physical) allocated at once.
    pub budget: u64,
    /// Page size of virtual-memory calls; a power of two, at least 512.
    pub granularity: u64,
    /// Host-to-device bandwidth, bytes per second of simulated time.
    pub h2d_bytes_per_s: u64,
    /// Device-to-host bandwidth, bytes per second.
    pub d2h_bytes_per_s: u64,
    /// Device-to-device bandwidth, bytes per second.
    pub d2d_bytes_per_s: u64,
    /// Fixed cost of each copy, nanoseconds.
    pub copy_latency_ns: u64,
}

impl Default for HostConfig {
    /// 1 GiB budget, 2 MiB pages (CUDA's granularity), PCIe 4.0 x16-like copies (25 GB/s each
    /// way, 1 TB/s on device, 5 µs per copy).
    fn default() -> Self {
        HostConfig {
            budget: 1 << 30,
            granularity: 2 << 20,
            h2d_bytes_per_s: 25_000_000_000,
            d2h_bytes_per_s: 25_000_000_000,
            d2d_bytes_per_s: 1_000_000_000_000,
            copy_latency_ns: 5_000,
        }
    }
}

/// A physical allocation.
#[derive(Debug)]
struct Phys {
    data: Vec<u8>,
    /// Set by `phys_release`; the memory goes once `maps == 0` too.
    released: bool,
    /// Mappings of this allocation.
    maps: u32,
}

/// A mapping of a whole physical allocation.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    size: u64,
    handle: PhysHandle,
}

/// Where one device byte lives.
#[derive(Debug, Clone, Copy)]
enum Loc {
    /// In the plain allocation at `base`, at `off`.
    Plain { base: DevPtr, off: u64 },
    /// In physical allocation `handle`, at `off`.
    Phys { handle: PhysHandle, off: u64 },
}

/// Counters of a [`HostBackend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Bytes copied host to device.
    pub h2d_bytes: u64,
    /// Bytes copied device to host.
    pub d2h_bytes: u64,
    /// Bytes copied device to device.
    pub d2d_bytes: u64,
    /// `map` calls that succeeded.
    pub maps: u64,
    /// `unmap` calls that succeeded.
    pub unmaps: u64,
}

/// The simulated device. See the [module docs](self).
///
/// # Examples
/// ```
/// use memplan_cuda::{Backend, HostBackend, HostConfig, StreamHandle};
/// let mut dev = HostBackend::new(HostConfig { budget: 1 << 20, ..HostConfig::default() });
/// let p = dev.mem_alloc(4096)?;
/// let src = [7u8; 16];
/// let mut dst = [0u8; 16];
/// // SAFETY: both buffers outlive the copies; the Host backend copies at once.
/// unsafe {
///     dev.copy_h2d(p + 100, src.as_ptr(), 16, StreamHandle::DEFAULT)?;
///     dev.copy_d2h(dst.as_mut_ptr(), p + 100, 16, StreamHandle::DEFAULT)?;
/// }
/// assert_eq!(src, dst);
/// assert!(dev.mem_alloc(1 << 20).is_err()); // over the budget
/// # Ok::<(), memplan_cuda::Error>(())
/// ```
#[derive(Debug)]
pub struct HostBackend {
    config: HostConfig,
    used: u64,
    next_va: u64,
    next_handle: u64,
    plain: BTreeMap<DevPtr, Vec<u8>>,
    reservations: BTreeMap<DevPtr, u64>,
    mappings: BTreeMap<DevPtr, Mapping>,
    phys: BTreeMap<PhysHandle, Phys>,
    /// Pinned host buffers: address -> bytes.
    host: BTreeMap<usize, u64>,
    /// Stream -> ready time (ns). Holds `DEFAULT` from the start.
    streams: BTreeMap<StreamHandle, u64>,
    /// Streams made by `stream_create` (the others were adopted).
    created: BTreeMap<StreamHandle, ()>,
    /// Event -> completion time (`None` if never recorded).
    events: BTreeMap<EventHandle, Option<u64>>,
    now: u64,
    stats: HostStats,
}

// SAFETY: the only raw pointers a `HostBackend` holds are the addresses of its own pinned
// buffers (as `usize` keys), which it never dereferences; all other state is owned data.
unsafe impl Send for HostBackend {}

impl Default for HostBackend {
    fn default() -> Self {
        HostBackend::new(HostConfig::default())
    }
}

impl HostBackend {
    /// An empty device with these settings.
    ///
    /// A granularity that is not a power of two of at least 512 is replaced by 2 MiB, and a
    /// zero bandwidth by 1 byte/s (so the clock never divides by zero).
    pub fn new(mut config: HostConfig) -> Self {
        if !config.granularity.is_power_of_two() || config.granularity < 512 {
            config.granularity = 2 << 20;
        }
        for bw in [
            &mut config.h2d_bytes_per_s,
            &mut config.d2h_bytes_per_s,
            &mut config.d2d_bytes_per_s,
        ] {
            *bw = (*bw).max(1);
        }
        let mut streams = BTreeMap::new();
        streams.insert(StreamHandle::DEFAULT, 0);
        HostBackend {
            config,
            used: 0,
            next_va: HOST_VA_BASE,
            next_handle: 1,
            plain: BTreeMap::new(),
            reservations: BTreeMap::new(),
            mappings: BTreeMap::new(),
            phys: BTreeMap::new(),
            host: BTreeMap::new(),
            streams,
            created: BTreeMap::new(),
            events: BTreeMap::new(),
            now: 0,
            stats: HostStats::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Bytes of device memory allocated now (counted against the budget).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Copy and mapping counters.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// The simulated time, nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now
    }

    /// Moves the simulated time forward by `ns` (the host doing other work).
    pub fn advance(&mut self, ns: u64) {
        self.now = self.now.saturating_add(ns);
    }

    /// When the work queued on `stream` so far ends (0 for an unknown stream).
    pub fn stream_ready_ns(&self, stream: StreamHandle) -> u64 {
        self.streams.get(&stream).copied().unwrap_or(0)
    }

    /// Queues `ns` of simulated compute (a kernel) on `stream`, adopting it if unknown.
    pub fn simulate_kernel(&mut self, stream: StreamHandle, ns: u64) {
        self.enqueue(stream, ns);
    }

    /// Live mappings as `(va, bytes, handle)`, in address order.
    pub fn mappings(&self) -> Vec<(DevPtr, u64, PhysHandle)> {
        self.mappings
            .iter()
            .map(|(&va, m)| (va, m.size, m.handle))
            .collect()
    }

    fn fresh_handle(&mut self) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn fresh_va(&mut self, bytes: u64, align: u64) -> Result<DevPtr> {
        let base = round_up(self.next_va, align)?;
        // Leave one unused granule between ranges so an overrun is never silently valid.
        let end = base
            .checked_add(bytes)
            .and_then(|e| e.checked_add(self.config.granularity))
            .ok_or(Error::Overflow)?;
        self.next_va = end;
        Ok(base)
    }

    fn charge(&mut self, bytes: u64) -> Result<()> {
        match self.used.checked_add(bytes) {
            Some(u) if u <= self.config.budget => {
                self.used = u;
                Ok(())
            }
            _ => Err(Error::OutOfMemory { size: bytes }),
        }
    }

    fn check_pages(&self, bytes: u64, what: &str) -> Result<()> {
        if bytes == 0 || bytes % self.config.granularity != 0 {
            return Err(invalid(format!(
                "{what} size {bytes} is not a positive multiple of the granularity {}",
                self.config.granularity
            )));
        }
        Ok(())
    }

    /// Frees a physical allocation's memory when it is released and unmapped.
    fn maybe_drop_phys(&mut self, handle: PhysHandle) {
        if let Some(p) = self.phys.get(&handle)
            && p.released
            && p.maps == 0
        {
            let n = p.data.len() as u64;
            self.phys.remove(&handle);
            self.used -= n;
        }
    }

    /// Where device byte `ptr` lives and how many bytes follow it in the same place.
    fn locate(&self, ptr: DevPtr) -> Option<(Loc, u64)> {
        if let Some((&base, data)) = self.plain.range(..=ptr).next_back() {
            let off = ptr - base;
            if off < data.len() as u64 {
                return Some((Loc::Plain { base, off }, data.len() as u64 - off));
            }
        }
        let (&va, m) = self.mappings.range(..=ptr).next_back()?;
        let off = ptr - va;
        (off < m.size).then_some((
            Loc::Phys {
                handle: m.handle,
                off,
            },
            m.size - off,
        ))
    }

    /// Splits `[ptr, ptr + bytes)` into pieces that each live in one place.
    fn pieces(&self, ptr: DevPtr, bytes: u64) -> Result<Vec<(Loc, u64)>> {
        let mut out = Vec::new();
        let mut p = ptr;
        let end = ptr.checked_add(bytes).ok_or(Error::Overflow)?;
        while p < end {
            let (loc, avail) = self.locate(p).ok_or_else(|| {
                invalid(format!(
                    "device range {ptr:#x}+{bytes} touches {p:#x}, which is neither allocated nor mapped"
                ))
            })?;
            let n = avail.min(end - p);
            out.push((loc, n));
            p += n;
        }
        Ok(out)
    }

    fn bytes_at(&mut self, loc: Loc, n: u64) -> &mut [u8] {
        // `pieces` only yields locations inside live buffers, with `off + n` within them.
        let (buf, off) = match loc {
            Loc::Plain { base, off } => (self.plain.get_mut(&base).map(|d| &mut d[..]), off),
            Loc::Phys { handle, off } => (self.phys.get_mut(&handle).map(|p| &mut p.data[..]), off),
        };
        let buf = buf.unwrap_or(&mut []);
        let off = off as usize;
        &mut buf[off..off + n as usize]
    }

    fn read_device(&mut self, ptr: DevPtr, bytes: u64) -> Result<Vec<u8>> {
        let pieces = self.pieces(ptr, bytes)?;
        let mut out = Vec::with_capacity(usize::try_from(bytes).map_err(|_| Error::Overflow)?);
        for (loc, n) in pieces {
            out.extend_from_slice(self.bytes_at(loc, n));
        }
        Ok(out)
    }

    fn write_device(&mut self, ptr: DevPtr, data: &[u8]) -> Result<()> {
        let pieces = self.pieces(ptr, data.len() as u64)?;
        let mut at = 0usize;
        for (loc, n) in pieces {
            let n_us = n as usize;
            self.bytes_at(loc, n).copy_from_slice(&data[at..at + n_us]);
            at += n_us;
        }
        Ok(())
    }

    /// Queues `ns` of work on `stream`; returns its end time.
    fn enqueue(&mut self, stream: StreamHandle, ns: u64) -> u64 {
        let now = self.now;
        let ready = self.streams.entry(stream).or_insert(0);
        let end = (*ready).max(now).saturating_add(ns);
        *ready = end;
        end
    }

    fn copy_ns(&self, bytes: u64, bytes_per_s: u64) -> u64 {
        let t = u128::from(bytes) * 1_000_000_000 / u128::from(bytes_per_s);
        self.config
            .copy_latency_ns
            .saturating_add(u64::try_from(t).unwrap_or(u64::MAX))
    }

    fn event_time(&self, event: EventHandle) -> Result<Option<u64>> {
        self.events
            .get(&event)
            .copied()
            .ok_or_else(|| invalid(format!("unknown event {:#x}", event.0)))
    }
}

impl Backend for HostBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }

    fn granularity(&mut self) -> Result<u64> {
        Ok(self.config.granularity)
    }

    fn mem_info(&mut self) -> Result<MemInfo> {
        Ok(MemInfo {
            free: self.config.budget - self.used,
            total: self.config.budget,
        })
    }

    fn mem_alloc(&mut self, bytes: u64) -> Result<DevPtr> {
        if bytes == 0 {
            return Err(invalid("mem_alloc of 0 bytes"));
        }
        let n = usize::try_from(bytes).map_err(|_| Error::OutOfMemory { size: bytes })?;
        self.charge(bytes)?;
        let p = self.fresh_va(bytes, PLAIN_ALIGN)?;
        self.plain.insert(p, vec![0; n]);
        Ok(p)
    }

    fn mem_free(&mut self, ptr: DevPtr) -> Result<()> {
        let data = self
            .plain
            .remove(&ptr)
            .ok_or_else(|| invalid(format!("mem_free of {ptr:#x}, not a live allocation")))?;
        self.used -= data.len() as u64;
        Ok(())
    }

    fn va_reserve(&mut self, bytes: u64) -> Result<DevPtr> {
        self.check_pages(bytes, "va_reserve")?;
        let g = self.config.granularity;
        let base = self.fresh_va(bytes, g)?;
        self.reservations.insert(base, bytes);
        Ok(base)
    }

    fn va_free(&mut self, base: DevPtr, bytes: u64) -> Result<()> {
        match self.reservations.get(&base) {
            Some(&n) if n == bytes => {}
            Some(&n) => {
                return Err(invalid(format!(
                    "va_free({base:#x}, {bytes}) of a {n}-byte reservation"
                )));
            }
            None => return Err(invalid(format!("va_free of {base:#x}, not a reservation"))),
        }
        if self.mappings.range(base..base + bytes).next().is_some() {
            return Err(invalid(format!(
                "va_free of {base:#x} while pages in it are still mapped"
            )));
        }
        self.reservations.remove(&base);
        Ok(())
    }

    fn phys_create(&mut self, bytes: u64) -> Result<PhysHandle> {
        self.check_pages(bytes, "phys_create")?;
        let n = usize::try_from(bytes).map_err(|_| Error::OutOfMemory { size: bytes })?;
        self.charge(bytes)?;
        let h = PhysHandle(self.fresh_handle());
        self.phys.insert(
            h,
            Phys {
                data: vec![0; n],
                released: false,
                maps: 0,
            },
        );
        Ok(h)
    }

    fn phys_release(&mut self, handle: PhysHandle) -> Result<()> {
        match self.phys.get_mut(&handle) {
            Some(p) if !p.released => p.released = true,
            _ => {
                return Err(invalid(format!(
                    "phys_release of unknown handle {:#x}",
                    handle.0
                )));
            }
        }
        self.maybe_drop_phys(handle);
        Ok(())
    }

    fn map(&mut self, va: DevPtr, bytes: u64, handle: PhysHandle) -> Result<()> {
        self.check_pages(bytes, "map")?;
        if va % self.config.granularity != 0 {
            return Err(invalid(format!("map at {va:#x}, not page-aligned")));
        }
        let end = va.checked_add(bytes).ok_or(Error::Overflow)?;
        match self.phys.get(&handle) {
            Some(p) if !p.released && p.data.len() as u64 == bytes => {}
            Some(p) if !p.released => {
                return Err(invalid(format!(
                    "map of {bytes} bytes of a {}-byte physical allocation",
                    p.data.len()
                )));
            }
            _ => return Err(invalid(format!("map of unknown handle {:#x}", handle.0))),
        }
        let inside = self
            .reservations
            .range(..=va)
            .next_back()
            .is_some_and(|(&b, &n)| end <= b + n);
        if !inside {
            return Err(invalid(format!(
                "map of {va:#x}+{bytes} outside any reservation"
            )));
        }
        let overlaps = self
            .mappings
            .range(..end)
            .next_back()
            .is_some_and(|(&m, mp)| m + mp.size > va);
        if overlaps {
            return Err(invalid(format!("map of {va:#x}+{bytes} over a mapping")));
        }
        self.mappings.insert(
            va,
            Mapping {
                size: bytes,
                handle,
            },
        );
        if let Some(p) = self.phys.get_mut(&handle) {
            p.maps += 1;
        }
        self.stats.maps += 1;
        Ok(())
    }

    fn unmap(&mut self, va: DevPtr, bytes: u64) -> Result<()> {
        let end = va.checked_add(bytes).ok_or(Error::Overflow)?;
        // The range must be tiled exactly by mappings.
        let mut p = va;
        let mut covered = Vec::new();
        for (&m, mp) in self.mappings.range(va..end) {
            if m != p {
                break;
            }
            covered.push(m);
            p = m + mp.size;
        }
        if p != end || bytes == 0 {
            return Err(invalid(format!(
                "unmap of {va:#x}+{bytes} does not cover whole mappings"
            )));
        }
        for m in covered {
            if let Some(mp) = self.mappings.remove(&m) {
                if let Some(ph) = self.phys.get_mut(&mp.handle) {
                    ph.maps -= 1;
                }
                self.maybe_drop_phys(mp.handle);
            }
        }
        self.stats.unmaps += 1;
        Ok(())
    }

    fn host_alloc(&mut self, bytes: u64) -> Result<NonNull<u8>> {
        let layout = layout(bytes)
            .filter(|l| l.size() > 0)
            .ok_or_else(|| invalid(format!("host_alloc of {bytes} bytes")))?;
        // SAFETY: the layout has a nonzero size (checked just above).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let p = NonNull::new(p).ok_or(Error::OutOfMemory { size: bytes })?;
        self.host.insert(p.as_ptr() as usize, bytes);
        Ok(p)
    }

    unsafe fn host_free(&mut self, ptr: NonNull<u8>, bytes: u64) -> Result<()> {
        let key = ptr.as_ptr() as usize;
        if self.host.get(&key) != Some(&bytes) {
            return Err(invalid(format!(
                "host_free of {key:#x} ({bytes} bytes), not a live pinned buffer of that size"
            )));
        }
        self.host.remove(&key);
        let layout = layout(bytes).ok_or(Error::Overflow)?;
        // SAFETY: `ptr` was returned by `alloc_zeroed(layout(bytes))` in `host_alloc` (the
        // map records it with this size) and is removed from the map, so freed only once;
        // by the caller's precondition (2) nothing uses it any more.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        Ok(())
    }

    fn stream_create(&mut self) -> Result<StreamHandle> {
        let s = StreamHandle(self.fresh_handle());
        self.streams.insert(s, self.now);
        self.created.insert(s, ());
        Ok(s)
    }

    fn stream_destroy(&mut self, stream: StreamHandle) -> Result<()> {
        if self.created.remove(&stream).is_none() {
            return Err(invalid(format!(
                "stream_destroy of {:#x}, not created here",
                stream.0
            )));
        }
        self.streams.remove(&stream);
        Ok(())
    }

    fn stream_synchronize(&mut self, stream: StreamHandle) -> Result<()> {
        let t = self.stream_ready_ns(stream);
        self.now = self.now.max(t);
        Ok(())
    }

    fn event_create(&mut self) -> Result<EventHandle> {
        let e = EventHandle(self.fresh_handle());
        self.events.insert(e, None);
        Ok(e)
    }

    fn event_destroy(&mut self, event: EventHandle) -> Result<()> {
        self.events
            .remove(&event)
            .map(|_| ())
            .ok_or_else(|| invalid(format!("event_destroy of unknown event {:#x}", event.0)))
    }

    fn event_record(&mut self, event: EventHandle, stream: StreamHandle) -> Result<()> {
        self.event_time(event)?;
        let t = self.enqueue(stream, 0);
        self.events.insert(event, Some(t));
        Ok(())
    }

    fn event_query(&mut self, event: EventHandle) -> Result<bool> {
        Ok(self.event_time(event)?.is_none_or(|t| t <= self.now))
    }

    fn event_synchronize(&mut self, event: EventHandle) -> Result<()> {
        if let Some(t) = self.event_time(event)? {
            self.now = self.now.max(t);
        }
        Ok(())
    }

    fn event_elapsed_ms(&mut self, start: EventHandle, end: EventHandle) -> Result<f32> {
        let (Some(a), Some(b)) = (self.event_time(start)?, self.event_time(end)?) else {
            return Err(invalid("event_elapsed_ms of an event never recorded"));
        };
        if a.max(b) > self.now {
            return Err(invalid("event_elapsed_ms of an incomplete event"));
        }
        Ok((b as f64 - a as f64) as f32 / 1e6)
    }

    fn stream_wait_event(&mut self, stream: StreamHandle, event: EventHandle) -> Result<()> {
        let t = self.event_time(event)?.unwrap_or(0);
        let ready = self.streams.entry(stream).or_insert(0);
        *ready = (*ready).max(t);
        Ok(())
    }

    unsafe fn copy_h2d(
        &mut self,
        dst: DevPtr,
        src: *const u8,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let n = usize::try_from(bytes).map_err(|_| Error::Overflow)?;
        if n > 0 {
            // SAFETY: by precondition (1) `src` is valid for reads of `bytes` bytes now (the
            // copy happens at once), and by (2) nothing writes it meanwhile.
            let data = unsafe { core::slice::from_raw_parts(src, n) };
            self.write_device(dst, data)?;
        }
        let ns = self.copy_ns(bytes, self.config.h2d_bytes_per_s);
        self.enqueue(stream, ns);
        self.stats.h2d_bytes += bytes;
        Ok(())
    }

    unsafe fn copy_d2h(
        &mut self,
        dst: *mut u8,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let data = self.read_device(src, bytes)?;
        if !data.is_empty() {
            // SAFETY: by precondition (1) `dst` is valid for writes of `bytes` bytes (the copy
            // happens at once), by (2) nothing else uses it, and `data` is a separate buffer
            // of exactly `bytes` bytes, so the regions do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        }
        let ns = self.copy_ns(bytes, self.config.d2h_bytes_per_s);
        self.enqueue(stream, ns);
        self.stats.d2h_bytes += bytes;
        Ok(())
    }

    fn copy_d2d(
        &mut self,
        dst: DevPtr,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let data = self.read_device(src, bytes)?;
        self.write_device(dst, &data)?;
        let ns = self.copy_ns(bytes, self.config.d2d_bytes_per_s);
        self.enqueue(stream, ns);
        self.stats.d2d_bytes += bytes;
        Ok(())
    }
}
