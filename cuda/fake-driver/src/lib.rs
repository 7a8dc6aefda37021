//! A stand-in for `libcuda.so`, for tests only: exports the driver functions `memplan-cuda`'s
//! `CudaBackend` calls, with the C ABI, backed by host memory. cudarc loads it in place of the
//! real driver when its directory (holding a `libcuda.so` link to this library) comes first
//! on `LD_LIBRARY_PATH`.
//!
//! - Device pointers are host addresses. Plain allocations come from `aligned_alloc`.
//! - Virtual memory is real: `cuMemAddressReserve` reserves `PROT_NONE` pages with `mmap`,
//!   `cuMemCreate` makes a `memfd` of the size, `cuMemMap` maps the memfd over the reserved
//!   pages (`MAP_SHARED | MAP_FIXED`), `cuMemSetAccess` makes them read-write, and
//!   `cuMemUnmap` puts `PROT_NONE` pages back. So one physical allocation mapped at two
//!   addresses really shows the same bytes at both, as on a GPU.
//! - Budget: `FAKECUDA_BYTES` (default 1 GiB) of plain plus physical memory; beyond it
//!   `CUDA_ERROR_OUT_OF_MEMORY`. Granularity: `FAKECUDA_GRANULARITY` (default 2 MiB).
//! - Copies run synchronously (so every event is complete once recorded) after checking that
//!   the device range is allocated or mapped and accessible; anything else is
//!   `CUDA_ERROR_INVALID_VALUE`, never a wild write.
//! - One device (ordinal 0), one context.

// Each export is a CUDA driver function named and documented by NVIDIA's driver API reference.
#![allow(non_snake_case, missing_docs)]
// The exported functions are the driver's C API; their safety contract is the driver's
// documentation, checked here as far as a fake can (pointers are validated against the
// bookkeeping before use).
#![allow(clippy::missing_safety_doc)]

use std::collections::BTreeMap;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

type CUresult = c_uint;
const SUCCESS: CUresult = 0;
const INVALID_VALUE: CUresult = 1;
const OUT_OF_MEMORY: CUresult = 2;
const INVALID_DEVICE: CUresult = 101;
const INVALID_HANDLE: CUresult = 400;

struct Phys {
    fd: c_int,
    size: u64,
    released: bool,
    maps: u32,
}

struct Mapping {
    size: u64,
    handle: u64,
    access: bool,
}

struct State {
    budget: u64,
    granularity: u64,
    used: u64,
    plain: BTreeMap<u64, u64>,
    reservations: BTreeMap<u64, u64>,
    phys: BTreeMap<u64, Phys>,
    mappings: BTreeMap<u64, Mapping>,
    host: BTreeMap<u64, u64>,
    streams: BTreeMap<u64, ()>,
    events: BTreeMap<u64, Option<Instant>>,
    next_handle: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    let mut g = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        let gran = env_u64("FAKECUDA_GRANULARITY", 2 << 20);
        *g = Some(State {
            budget: env_u64("FAKECUDA_BYTES", 1 << 30),
            granularity: if gran.is_power_of_two() && gran >= 4096 {
                gran
            } else {
                2 << 20
            },
            used: 0,
            plain: BTreeMap::new(),
            reservations: BTreeMap::new(),
            phys: BTreeMap::new(),
            mappings: BTreeMap::new(),
            host: BTreeMap::new(),
            streams: BTreeMap::new(),
            events: BTreeMap::new(),
            next_handle: 0x1000,
        });
    }
    g
}

macro_rules! with_state {
    ($s:ident => $body:expr) => {{
        let mut guard = state();
        let $s = guard.as_mut().expect("initialised by state()");
        $body
    }};
}

impl State {
    fn charge(&mut self, n: u64) -> bool {
        match self.used.checked_add(n) {
            Some(u) if u <= self.budget => {
                self.used = u;
                true
            }
            _ => false,
        }
    }

    /// Whether `[p, p + n)` is device memory that may be read and written.
    fn valid(&self, p: u64, n: u64) -> bool {
        let Some(end) = p.checked_add(n) else {
            return false;
        };
        if n == 0 {
            return true;
        }
        if let Some((&b, &s)) = self.plain.range(..=p).next_back()
            && end <= b + s
        {
            return true;
        }
        let mut at = p;
        while at < end {
            match self.mappings.range(..=at).next_back() {
                Some((&va, m)) if at < va + m.size && m.access => at = va + m.size,
                _ => return false,
            }
        }
        true
    }

    fn drop_phys_if_done(&mut self, h: u64) {
        if let Some(p) = self.phys.get(&h)
            && p.released
            && p.maps == 0
        {
            // SAFETY: `fd` is the memfd this fake opened in cuMemCreate, closed only here.
            unsafe { libc::close(p.fd) };
            self.used -= p.size;
            self.phys.remove(&h);
        }
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuInit(_flags: c_uint) -> CUresult {
    drop(state());
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> CUresult {
    if device.is_null() {
        return INVALID_VALUE;
    }
    if ordinal != 0 {
        return INVALID_DEVICE;
    }
    // SAFETY: non-NULL out-pointer supplied by the caller per the driver API.
    unsafe { *device = 0 };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, dev: c_int) -> CUresult {
    if ctx.is_null() || dev != 0 {
        return INVALID_VALUE;
    }
    // SAFETY: non-NULL out-pointer; the context is a dummy non-NULL token.
    unsafe { *ctx = std::ptr::dangling_mut::<c_void>() };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: c_int) -> CUresult {
    if dev != 0 { INVALID_DEVICE } else { SUCCESS }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxSetCurrent(_ctx: *mut c_void) -> CUresult {
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    if free.is_null() || total.is_null() {
        return INVALID_VALUE;
    }
    with_state!(s => {
        // SAFETY: non-NULL out-pointers.
        unsafe {
            *free = (s.budget - s.used) as usize;
            *total = s.budget as usize;
        }
    });
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetAllocationGranularity(
    g: *mut usize,
    _prop: *const c_void,
    _option: c_uint,
) -> CUresult {
    if g.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: non-NULL out-pointer.
    with_state!(s => unsafe { *g = s.granularity as usize });
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(p: *mut u64, bytes: usize) -> CUresult {
    if p.is_null() || bytes == 0 {
        return INVALID_VALUE;
    }
    with_state!(s => {
        if !s.charge(bytes as u64) {
            return OUT_OF_MEMORY;
        }
        let size = bytes.next_multiple_of(256);
        // SAFETY: alignment 256 is a power of two and `size` a multiple of it.
        let m = unsafe { libc::aligned_alloc(256, size) };
        if m.is_null() {
            s.used -= bytes as u64;
            return OUT_OF_MEMORY;
        }
        // SAFETY: fresh allocation of `size` bytes; zero it like a fresh device page.
        unsafe { libc::memset(m, 0, size) };
        s.plain.insert(m as u64, bytes as u64);
        // SAFETY: non-NULL out-pointer.
        unsafe { *p = m as u64 };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemFree_v2(p: u64) -> CUresult {
    with_state!(s => match s.plain.remove(&p) {
        Some(n) => {
            s.used -= n;
            // SAFETY: `p` came from aligned_alloc in cuMemAlloc_v2 and is freed once (removed).
            unsafe { libc::free(p as *mut c_void) };
            SUCCESS
        }
        None => INVALID_VALUE,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAddressReserve(
    p: *mut u64,
    size: usize,
    _align: usize,
    _addr: u64,
    _flags: u64,
) -> CUresult {
    with_state!(s => {
        let g = s.granularity as usize;
        if p.is_null() || size == 0 || size % g != 0 {
            return INVALID_VALUE;
        }
        let total = size + g;
        // SAFETY: an anonymous PROT_NONE reservation; no existing memory is affected.
        let m = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if m == libc::MAP_FAILED {
            return OUT_OF_MEMORY;
        }
        let start = m as usize;
        let aligned = start.next_multiple_of(g);
        // SAFETY: trims the unaligned head and the tail of the mapping just made; both
        // ranges lie inside it (head < g, tail = g - head).
        unsafe {
            if aligned > start {
                libc::munmap(m, aligned - start);
            }
            let tail = start + total - (aligned + size);
            if tail > 0 {
                libc::munmap((aligned + size) as *mut c_void, tail);
            }
        }
        s.reservations.insert(aligned as u64, size as u64);
        // SAFETY: non-NULL out-pointer.
        unsafe { *p = aligned as u64 };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAddressFree(p: u64, size: usize) -> CUresult {
    with_state!(s => {
        if s.reservations.get(&p) != Some(&(size as u64)) {
            return INVALID_VALUE;
        }
        if s.mappings.range(p..p + size as u64).next().is_some() {
            return INVALID_VALUE;
        }
        s.reservations.remove(&p);
        // SAFETY: `[p, p + size)` is exactly a reservation this fake mapped, now unused.
        unsafe { libc::munmap(p as *mut c_void, size) };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemCreate(
    h: *mut u64,
    size: usize,
    _prop: *const c_void,
    _flags: u64,
) -> CUresult {
    with_state!(s => {
        if h.is_null() || size == 0 || size as u64 % s.granularity != 0 {
            return INVALID_VALUE;
        }
        if !s.charge(size as u64) {
            return OUT_OF_MEMORY;
        }
        // SAFETY: a NUL-terminated name and no flags.
        let fd = unsafe { libc::memfd_create(c"fakecuda".as_ptr(), 0) };
        // SAFETY: `fd` is the memfd just created (checked below before use).
        if fd < 0 || unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            if fd >= 0 {
                // SAFETY: our own fd.
                unsafe { libc::close(fd) };
            }
            s.used -= size as u64;
            return OUT_OF_MEMORY;
        }
        let handle = s.next_handle;
        s.next_handle += 1;
        s.phys.insert(handle, Phys { fd, size: size as u64, released: false, maps: 0 });
        // SAFETY: non-NULL out-pointer.
        unsafe { *h = handle };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemRelease(h: u64) -> CUresult {
    with_state!(s => {
        match s.phys.get_mut(&h) {
            Some(p) if !p.released => p.released = true,
            _ => return INVALID_HANDLE,
        }
        s.drop_phys_if_done(h);
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemMap(
    p: u64,
    size: usize,
    offset: usize,
    h: u64,
    _flags: u64,
) -> CUresult {
    with_state!(s => {
        let n = size as u64;
        let Some(ph) = s.phys.get(&h) else { return INVALID_HANDLE };
        if ph.released || offset != 0 || ph.size != n || p % s.granularity != 0 {
            return INVALID_VALUE;
        }
        let inside = s.reservations.range(..=p).next_back().is_some_and(|(&b, &l)| p + n <= b + l);
        let overlap = s.mappings.range(..p + n).next_back().is_some_and(|(&m, mp)| m + mp.size > p);
        if !inside || overlap {
            return INVALID_VALUE;
        }
        // SAFETY: `[p, p + n)` lies inside a PROT_NONE reservation of this fake and overlaps
        // no mapping, so replacing those pages touches no memory anyone uses.
        let m = unsafe {
            libc::mmap(p as *mut c_void, size, libc::PROT_NONE, libc::MAP_SHARED | libc::MAP_FIXED, ph.fd, 0)
        };
        if m == libc::MAP_FAILED {
            return OUT_OF_MEMORY;
        }
        s.mappings.insert(p, Mapping { size: n, handle: h, access: false });
        if let Some(ph) = s.phys.get_mut(&h) {
            ph.maps += 1;
        }
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemSetAccess(
    p: u64,
    size: usize,
    _desc: *const c_void,
    count: usize,
) -> CUresult {
    with_state!(s => {
        let end = p + size as u64;
        let mut at = p;
        let keys: Vec<u64> = s.mappings.range(p..end).map(|(&k, _)| k).collect();
        for k in &keys {
            if *k != at {
                return INVALID_VALUE;
            }
            at += s.mappings[k].size;
        }
        if at != end || count == 0 {
            return INVALID_VALUE;
        }
        // SAFETY: `[p, end)` is tiled by this fake's own mappings (checked above).
        if unsafe { libc::mprotect(p as *mut c_void, size, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return INVALID_VALUE;
        }
        for k in keys {
            if let Some(m) = s.mappings.get_mut(&k) {
                m.access = true;
            }
        }
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemUnmap(p: u64, size: usize) -> CUresult {
    with_state!(s => {
        let end = p + size as u64;
        let mut at = p;
        let keys: Vec<u64> = s.mappings.range(p..end).map(|(&k, _)| k).collect();
        for k in &keys {
            if *k != at {
                return INVALID_VALUE;
            }
            at += s.mappings[k].size;
        }
        if at != end || keys.is_empty() {
            return INVALID_VALUE;
        }
        // SAFETY: `[p, end)` is tiled by this fake's mappings inside its reservation; putting
        // PROT_NONE anonymous pages back restores the reservation.
        unsafe {
            libc::mmap(
                p as *mut c_void,
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        for k in keys {
            if let Some(m) = s.mappings.remove(&k) {
                if let Some(ph) = s.phys.get_mut(&m.handle) {
                    ph.maps -= 1;
                }
                s.drop_phys_if_done(m.handle);
            }
        }
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemHostAlloc(
    pp: *mut *mut c_void,
    size: usize,
    _flags: c_uint,
) -> CUresult {
    if pp.is_null() || size == 0 {
        return INVALID_VALUE;
    }
    let n = size.next_multiple_of(4096);
    // SAFETY: alignment 4096 is a power of two; `n` is a multiple of it.
    let m = unsafe { libc::aligned_alloc(4096, n) };
    if m.is_null() {
        return OUT_OF_MEMORY;
    }
    // SAFETY: fresh allocation of `n` bytes.
    unsafe { libc::memset(m, 0, n) };
    with_state!(s => s.host.insert(m as u64, size as u64));
    // SAFETY: non-NULL out-pointer.
    unsafe { *pp = m };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    with_state!(s => match s.host.remove(&(p as u64)) {
        // SAFETY: `p` came from aligned_alloc in cuMemHostAlloc, freed once (removed).
        Some(_) => { unsafe { libc::free(p) }; SUCCESS }
        None => INVALID_VALUE,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreate(out: *mut *mut c_void, _flags: c_uint) -> CUresult {
    if out.is_null() {
        return INVALID_VALUE;
    }
    with_state!(s => {
        let h = s.next_handle;
        s.next_handle += 1;
        s.streams.insert(h, ());
        // SAFETY: non-NULL out-pointer; the handle is an opaque token.
        unsafe { *out = h as *mut c_void };
    });
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamDestroy_v2(st: *mut c_void) -> CUresult {
    with_state!(s => if s.streams.remove(&(st as u64)).is_some() { SUCCESS } else { INVALID_HANDLE })
}

/// Streams: NULL (the default stream) or one made by cuStreamCreate. Foreign handles (a
/// framework's streams) are not known to the fake, so any value is accepted as a stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamSynchronize(_st: *mut c_void) -> CUresult {
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventCreate(out: *mut *mut c_void, _flags: c_uint) -> CUresult {
    if out.is_null() {
        return INVALID_VALUE;
    }
    with_state!(s => {
        let h = s.next_handle;
        s.next_handle += 1;
        s.events.insert(h, None);
        // SAFETY: non-NULL out-pointer.
        unsafe { *out = h as *mut c_void };
    });
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventDestroy_v2(e: *mut c_void) -> CUresult {
    with_state!(s => if s.events.remove(&(e as u64)).is_some() { SUCCESS } else { INVALID_HANDLE })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventRecord(e: *mut c_void, _st: *mut c_void) -> CUresult {
    with_state!(s => match s.events.get_mut(&(e as u64)) {
        Some(t) => { *t = Some(Instant::now()); SUCCESS }
        None => INVALID_HANDLE,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventQuery(e: *mut c_void) -> CUresult {
    with_state!(s => if s.events.contains_key(&(e as u64)) { SUCCESS } else { INVALID_HANDLE })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventSynchronize(e: *mut c_void) -> CUresult {
    // SAFETY: same contract as cuEventQuery.
    unsafe { cuEventQuery(e) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventElapsedTime(
    ms: *mut f32,
    a: *mut c_void,
    b: *mut c_void,
) -> CUresult {
    if ms.is_null() {
        return INVALID_VALUE;
    }
    with_state!(s => match (s.events.get(&(a as u64)), s.events.get(&(b as u64))) {
        (Some(Some(ta)), Some(Some(tb))) => {
            let d = tb.saturating_duration_since(*ta).as_secs_f32() * 1e3;
            // SAFETY: non-NULL out-pointer.
            unsafe { *ms = d };
            SUCCESS
        }
        (Some(_), Some(_)) => INVALID_VALUE,
        _ => INVALID_HANDLE,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamWaitEvent(
    _st: *mut c_void,
    e: *mut c_void,
    _flags: c_uint,
) -> CUresult {
    with_state!(s => if s.events.contains_key(&(e as u64)) { SUCCESS } else { INVALID_HANDLE })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    n: usize,
    _st: *mut c_void,
) -> CUresult {
    with_state!(s => {
        if !s.valid(dst, n as u64) || (src.is_null() && n > 0) {
            return INVALID_VALUE;
        }
        // SAFETY: `dst` is mapped read-write device memory of this fake (checked); `src` is
        // valid for `n` reads by the driver API's contract.
        unsafe { std::ptr::copy(src.cast::<u8>(), dst as *mut u8, n) };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    n: usize,
    _st: *mut c_void,
) -> CUresult {
    with_state!(s => {
        if !s.valid(src, n as u64) || (dst.is_null() && n > 0) {
            return INVALID_VALUE;
        }
        // SAFETY: `src` is mapped device memory of this fake (checked); `dst` is valid for
        // `n` writes by the driver API's contract.
        unsafe { std::ptr::copy(src as *const u8, dst.cast::<u8>(), n) };
        SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoDAsync_v2(
    dst: u64,
    src: u64,
    n: usize,
    _st: *mut c_void,
) -> CUresult {
    with_state!(s => {
        if !s.valid(src, n as u64) || !s.valid(dst, n as u64) {
            return INVALID_VALUE;
        }
        // SAFETY: both ranges are mapped device memory of this fake (checked).
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, n) };
        SUCCESS
    })
}

/// Names for the codes this fake returns (cudarc's error formatting asks for them).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(
    code: CUresult,
    out: *mut *const std::ffi::c_char,
) -> CUresult {
    if out.is_null() {
        return INVALID_VALUE;
    }
    let s: &'static std::ffi::CStr = match code {
        SUCCESS => c"CUDA_SUCCESS",
        INVALID_VALUE => c"CUDA_ERROR_INVALID_VALUE",
        OUT_OF_MEMORY => c"CUDA_ERROR_OUT_OF_MEMORY",
        INVALID_DEVICE => c"CUDA_ERROR_INVALID_DEVICE",
        INVALID_HANDLE => c"CUDA_ERROR_INVALID_HANDLE",
        _ => c"CUDA_ERROR_UNKNOWN",
    };
    // SAFETY: non-NULL out-pointer; the string is static.
    unsafe { *out = s.as_ptr() };
    SUCCESS
}

/// Same as `cuGetErrorName` (the fake has no longer descriptions).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(
    code: CUresult,
    out: *mut *const std::ffi::c_char,
) -> CUresult {
    // SAFETY: same contract.
    unsafe { cuGetErrorName(code, out) }
}
