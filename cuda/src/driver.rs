//! [`CudaBackend`]: the [`Backend`] trait on the CUDA driver API, through cudarc's raw `sys`
//! bindings (dynamically loaded).
//!
//! Each driver function is called in exactly one place below, inside `call`, which turns a
//! panic from cudarc (the library or a symbol missing) into [`Error::MissingSymbol`] and a
//! non-success `CUresult` into [`Error::Driver`]. The library's presence is checked with
//! `is_culib_present` before the first call, so a machine without a driver gets
//! [`Error::NoDriver`] from [`CudaBackend::new`].
//!
//! The context is the device's primary context (the one the CUDA runtime, and so PyTorch,
//! uses); it is made current on the calling thread before every call, so a backend may be
//! used from any thread (one at a time: methods take `&mut self`).

use core::ffi::c_void;
use core::ptr::NonNull;
use std::collections::BTreeMap;

use cudarc::driver::sys;

use crate::backend::{
    Backend, BackendKind, DevPtr, EventHandle, MemInfo, PhysHandle, StreamHandle,
};
use crate::error::{Error, Result, invalid};

/// Runs one driver call: a panic (missing library or symbol) becomes
/// [`Error::MissingSymbol`], a non-success code [`Error::Driver`] (or
/// [`Error::OutOfMemory`] for `CUDA_ERROR_OUT_OF_MEMORY`, with `size`).
fn call(name: &'static str, size: u64, f: impl FnOnce() -> sys::CUresult) -> Result<()> {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| Error::MissingSymbol { symbol: name })?;
    match code {
        sys::CUresult::CUDA_SUCCESS => Ok(()),
        sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => Err(Error::OutOfMemory { size }),
        other => Err(Error::Driver {
            call: name,
            code: other as u32,
            name: format!("{other:?}"),
        }),
    }
}

fn to_usize(x: u64) -> Result<usize> {
    usize::try_from(x).map_err(|_| Error::Overflow)
}

/// The CUDA driver as a [`Backend`]. See the [module docs](self).
#[derive(Debug)]
pub struct CudaBackend {
    ordinal: i32,
    device: sys::CUdevice,
    ctx: sys::CUcontext,
    granularity: u64,
    /// Pinned buffers handed out and not yet freed (address -> bytes). While any is live the
    /// primary context is not released on drop, so none of them dangles.
    pinned: BTreeMap<usize, u64>,
}

// SAFETY: a `CUcontext` is a driver handle, usable from any thread once made current there
// (every method does so first); the backend holds no thread-bound state.
unsafe impl Send for CudaBackend {}

/// `CUmemAllocationProp` for pinned device memory on `device`.
fn device_prop(ordinal: i32) -> sys::CUmemAllocationProp {
    // SAFETY: `CUmemAllocationProp` is a plain C struct of integers, enums whose zero value is
    // a valid variant, and a raw pointer; all-zero is its documented "unset" state.
    let mut prop: sys::CUmemAllocationProp = unsafe { core::mem::zeroed() };
    prop.type_ = sys::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type_ = sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal;
    prop
}

impl CudaBackend {
    /// Opens device `ordinal` through its primary context.
    ///
    /// # Errors
    /// [`Error::NoDriver`] when `libcuda` cannot be loaded; [`Error::MissingSymbol`] for an
    /// old driver; [`Error::Driver`] when there is no such device or no usable GPU.
    pub fn new(ordinal: i32) -> Result<Self> {
        if !crate::driver_library_present() {
            return Err(Error::NoDriver);
        }
        // Each call below passes valid out-pointers to locals that outlive it, and handles
        // obtained from the previous calls.
        // SAFETY: cuInit takes no pointers; flags must be 0.
        call("cuInit", 0, || unsafe { sys::cuInit(0) })?;
        let mut device: sys::CUdevice = 0;
        // SAFETY: see above.
        call("cuDeviceGet", 0, || unsafe {
            sys::cuDeviceGet(&mut device, ordinal)
        })?;
        let mut ctx: sys::CUcontext = core::ptr::null_mut();
        // SAFETY: see above.
        call("cuDevicePrimaryCtxRetain", 0, || unsafe {
            sys::cuDevicePrimaryCtxRetain(&mut ctx, device)
        })?;
        let mut backend = CudaBackend {
            ordinal,
            device,
            ctx,
            granularity: 0,
            pinned: BTreeMap::new(),
        };
        backend.make_current()?;
        let prop = device_prop(ordinal);
        let mut g: usize = 0;
        // SAFETY: `g` and `prop` are live locals; `prop` is fully initialised.
        call("cuMemGetAllocationGranularity", 0, || unsafe {
            sys::cuMemGetAllocationGranularity(
                &mut g,
                &prop,
                sys::CUmemAllocationGranularity_flags::CU_MEM_ALLOC_GRANULARITY_MINIMUM,
            )
        })?;
        if g == 0 || !g.is_power_of_two() {
            return Err(invalid(format!("driver reports granularity {g}")));
        }
        backend.granularity = g as u64;
        Ok(backend)
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> i32 {
        self.ordinal
    }

    fn make_current(&mut self) -> Result<()> {
        let ctx = self.ctx;
        // SAFETY: `ctx` is the primary context retained in `new` and not yet released.
        call("cuCtxSetCurrent", 0, || unsafe {
            sys::cuCtxSetCurrent(ctx)
        })
    }

    fn check_pages(&self, bytes: u64, what: &str) -> Result<()> {
        if bytes == 0 || bytes % self.granularity != 0 {
            return Err(invalid(format!(
                "{what} size {bytes} is not a positive multiple of the granularity {}",
                self.granularity
            )));
        }
        Ok(())
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        if self.pinned.is_empty() {
            let device = self.device;
            // SAFETY: the context was retained once in `new`; this is its one release. No
            // pinned buffer is outstanding (checked), so none dangles. An error here cannot
            // be reported and leaves the context retained, which is harmless.
            let _ = call("cuDevicePrimaryCtxRelease_v2", 0, || unsafe {
                sys::cuDevicePrimaryCtxRelease_v2(device)
            });
        }
    }
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn granularity(&mut self) -> Result<u64> {
        Ok(self.granularity)
    }

    fn mem_info(&mut self) -> Result<MemInfo> {
        self.make_current()?;
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out-pointers to locals.
        call("cuMemGetInfo_v2", 0, || unsafe {
            sys::cuMemGetInfo_v2(&mut free, &mut total)
        })?;
        Ok(MemInfo {
            free: free as u64,
            total: total as u64,
        })
    }

    fn mem_alloc(&mut self, bytes: u64) -> Result<DevPtr> {
        if bytes == 0 {
            return Err(invalid("mem_alloc of 0 bytes"));
        }
        let n = to_usize(bytes)?;
        self.make_current()?;
        let mut p: sys::CUdeviceptr = 0;
        // SAFETY: valid out-pointer to a local; the size is nonzero.
        call("cuMemAlloc_v2", bytes, || unsafe {
            sys::cuMemAlloc_v2(&mut p, n)
        })?;
        Ok(p)
    }

    fn mem_free(&mut self, ptr: DevPtr) -> Result<()> {
        self.make_current()?;
        // SAFETY: the driver validates `ptr` and returns an error for an unknown one; device
        // memory is not Rust memory, so a wrong pointer cannot cause host UB.
        call("cuMemFree_v2", 0, || unsafe { sys::cuMemFree_v2(ptr) })
    }

    fn va_reserve(&mut self, bytes: u64) -> Result<DevPtr> {
        self.check_pages(bytes, "va_reserve")?;
        let n = to_usize(bytes)?;
        let align = to_usize(self.granularity)?;
        self.make_current()?;
        let mut base: sys::CUdeviceptr = 0;
        // SAFETY: valid out-pointer; size and alignment are multiples of the granularity; no
        // fixed address is requested (0).
        call("cuMemAddressReserve", bytes, || unsafe {
            sys::cuMemAddressReserve(&mut base, n, align, 0, 0)
        })?;
        Ok(base)
    }

    fn va_free(&mut self, base: DevPtr, bytes: u64) -> Result<()> {
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: the driver checks that `base`/`bytes` name a whole reservation.
        call("cuMemAddressFree", 0, || unsafe {
            sys::cuMemAddressFree(base, n)
        })
    }

    fn phys_create(&mut self, bytes: u64) -> Result<PhysHandle> {
        self.check_pages(bytes, "phys_create")?;
        let n = to_usize(bytes)?;
        let prop = device_prop(self.ordinal);
        self.make_current()?;
        let mut h: sys::CUmemGenericAllocationHandle = 0;
        // SAFETY: valid out-pointer; `prop` is a fully initialised local; the size is a
        // multiple of the granularity.
        call("cuMemCreate", bytes, || unsafe {
            sys::cuMemCreate(&mut h, n, &prop, 0)
        })?;
        Ok(PhysHandle(h))
    }

    fn phys_release(&mut self, handle: PhysHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: the driver validates the handle.
        call("cuMemRelease", 0, || unsafe { sys::cuMemRelease(handle.0) })
    }

    fn map(&mut self, va: DevPtr, bytes: u64, handle: PhysHandle) -> Result<()> {
        self.check_pages(bytes, "map")?;
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: the driver validates the range (inside a reservation, unmapped) and handle.
        call("cuMemMap", 0, || unsafe {
            sys::cuMemMap(va, n, 0, handle.0, 0)
        })?;
        let access = sys::CUmemAccessDesc {
            location: device_prop(self.ordinal).location,
            flags: sys::CUmemAccess_flags::CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
        };
        // SAFETY: `access` is one initialised descriptor (count 1); the range was just mapped.
        let r = call("cuMemSetAccess", 0, || unsafe {
            sys::cuMemSetAccess(va, n, &access, 1)
        });
        if r.is_err() {
            // SAFETY: undoes the mapping made just above, of exactly this range.
            let _ = call("cuMemUnmap", 0, || unsafe { sys::cuMemUnmap(va, n) });
        }
        r
    }

    fn unmap(&mut self, va: DevPtr, bytes: u64) -> Result<()> {
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: the driver validates that the range covers whole mappings. Callers
        // synchronize before unmapping memory that queued work may still use.
        call("cuMemUnmap", 0, || unsafe { sys::cuMemUnmap(va, n) })
    }

    fn host_alloc(&mut self, bytes: u64) -> Result<NonNull<u8>> {
        if bytes == 0 {
            return Err(invalid("host_alloc of 0 bytes"));
        }
        let n = to_usize(bytes)?;
        self.make_current()?;
        let mut p: *mut c_void = core::ptr::null_mut();
        // SAFETY: valid out-pointer. PORTABLE only: not write-combined, so the CPU reads the
        // buffer at normal speed (offload buffers are read back by the host and the disk tier).
        call("cuMemHostAlloc", bytes, || unsafe {
            sys::cuMemHostAlloc(&mut p, n, sys::CU_MEMHOSTALLOC_PORTABLE)
        })?;
        let p = NonNull::new(p.cast::<u8>()).ok_or(Error::OutOfMemory { size: bytes })?;
        self.pinned.insert(p.as_ptr() as usize, bytes);
        Ok(p)
    }

    unsafe fn host_free(&mut self, ptr: NonNull<u8>, bytes: u64) -> Result<()> {
        let key = ptr.as_ptr() as usize;
        if self.pinned.get(&key) != Some(&bytes) {
            return Err(invalid(format!(
                "host_free of {key:#x} ({bytes} bytes), not a live pinned buffer of that size"
            )));
        }
        self.make_current()?;
        // SAFETY: `ptr` came from `cuMemHostAlloc` (recorded above with this size) and, by the
        // caller's preconditions, is not freed yet and not used by queued copies.
        call("cuMemFreeHost", 0, || unsafe {
            sys::cuMemFreeHost(ptr.as_ptr().cast())
        })?;
        self.pinned.remove(&key);
        Ok(())
    }

    fn stream_create(&mut self) -> Result<StreamHandle> {
        self.make_current()?;
        let mut s: sys::CUstream = core::ptr::null_mut();
        // SAFETY: valid out-pointer to a local.
        call("cuStreamCreate", 0, || unsafe {
            sys::cuStreamCreate(&mut s, sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32)
        })?;
        Ok(StreamHandle(s as u64))
    }

    fn stream_destroy(&mut self, stream: StreamHandle) -> Result<()> {
        if stream == StreamHandle::DEFAULT {
            return Err(invalid("stream_destroy of the default stream"));
        }
        self.make_current()?;
        // SAFETY: a stream handle is an opaque driver value; the driver validates it.
        call("cuStreamDestroy_v2", 0, || unsafe {
            sys::cuStreamDestroy_v2(stream.0 as sys::CUstream)
        })
    }

    fn stream_synchronize(&mut self, stream: StreamHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: as in `stream_destroy`.
        call("cuStreamSynchronize", 0, || unsafe {
            sys::cuStreamSynchronize(stream.0 as sys::CUstream)
        })
    }

    fn event_create(&mut self) -> Result<EventHandle> {
        self.make_current()?;
        let mut e: sys::CUevent = core::ptr::null_mut();
        // SAFETY: valid out-pointer; flags 0 = CU_EVENT_DEFAULT (timing on).
        call("cuEventCreate", 0, || unsafe {
            sys::cuEventCreate(&mut e, 0)
        })?;
        Ok(EventHandle(e as u64))
    }

    fn event_destroy(&mut self, event: EventHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: opaque handle validated by the driver.
        call("cuEventDestroy_v2", 0, || unsafe {
            sys::cuEventDestroy_v2(event.0 as sys::CUevent)
        })
    }

    fn event_record(&mut self, event: EventHandle, stream: StreamHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: opaque handles validated by the driver.
        call("cuEventRecord", 0, || unsafe {
            sys::cuEventRecord(event.0 as sys::CUevent, stream.0 as sys::CUstream)
        })
    }

    fn event_query(&mut self, event: EventHandle) -> Result<bool> {
        self.make_current()?;
        // SAFETY: opaque handle validated by the driver.
        match call("cuEventQuery", 0, || unsafe {
            sys::cuEventQuery(event.0 as sys::CUevent)
        }) {
            Ok(()) => Ok(true),
            Err(Error::Driver { code, .. })
                if code == sys::CUresult::CUDA_ERROR_NOT_READY as u32 =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn event_synchronize(&mut self, event: EventHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: opaque handle validated by the driver.
        call("cuEventSynchronize", 0, || unsafe {
            sys::cuEventSynchronize(event.0 as sys::CUevent)
        })
    }

    fn event_elapsed_ms(&mut self, start: EventHandle, end: EventHandle) -> Result<f32> {
        self.make_current()?;
        let mut ms = 0f32;
        // SAFETY: valid out-pointer; opaque handles validated by the driver.
        call("cuEventElapsedTime", 0, || unsafe {
            sys::cuEventElapsedTime(&mut ms, start.0 as sys::CUevent, end.0 as sys::CUevent)
        })?;
        Ok(ms)
    }

    fn stream_wait_event(&mut self, stream: StreamHandle, event: EventHandle) -> Result<()> {
        self.make_current()?;
        // SAFETY: opaque handles validated by the driver; flags 0 = CU_EVENT_WAIT_DEFAULT.
        call("cuStreamWaitEvent", 0, || unsafe {
            sys::cuStreamWaitEvent(stream.0 as sys::CUstream, event.0 as sys::CUevent, 0)
        })
    }

    unsafe fn copy_h2d(
        &mut self,
        dst: DevPtr,
        src: *const u8,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: by the caller's preconditions `src` stays valid for `bytes` reads and
        // unwritten until the copy completes; the driver validates `dst` and the stream.
        call("cuMemcpyHtoDAsync_v2", 0, || unsafe {
            sys::cuMemcpyHtoDAsync_v2(dst, src.cast(), n, stream.0 as sys::CUstream)
        })
    }

    unsafe fn copy_d2h(
        &mut self,
        dst: *mut u8,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: by the caller's preconditions `dst` stays valid for `bytes` writes and
        // otherwise unused until the copy completes; the driver validates `src`.
        call("cuMemcpyDtoHAsync_v2", 0, || unsafe {
            sys::cuMemcpyDtoHAsync_v2(dst.cast(), src, n, stream.0 as sys::CUstream)
        })
    }

    fn copy_d2d(
        &mut self,
        dst: DevPtr,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()> {
        let n = to_usize(bytes)?;
        self.make_current()?;
        // SAFETY: both ranges are device memory, validated by the driver; no host memory is
        // touched.
        call("cuMemcpyDtoDAsync_v2", 0, || unsafe {
            sys::cuMemcpyDtoDAsync_v2(dst, src, n, stream.0 as sys::CUstream)
        })
    }
}
