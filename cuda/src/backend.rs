//! The backend trait: every device operation the executor needs, so that the same arena,
//! segment, pool and copy code runs on a GPU ([`crate::CudaBackend`]) and in tests without one
//! ([`crate::HostBackend`]).
//!
//! The operations mirror the CUDA driver API one for one (plain allocation, the virtual-memory
//! calls, page-locked host memory, streams, events, asynchronous copies), with the same
//! ordering rules: work queued on one stream runs in order; an event recorded on a stream
//! completes when the work queued before it has; `stream_wait_event` orders a stream after an
//! event. Handles are plain integers (the driver's `CUstream`, `CUevent`, ... values), so that
//! foreign handles (a PyTorch stream) can be passed in.

use core::ptr::NonNull;

use crate::error::Result;

/// A device virtual address (`CUdeviceptr`).
pub type DevPtr = u64;

/// A physical allocation made by [`Backend::phys_create`] (`CUmemGenericAllocationHandle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysHandle(pub u64);

/// A stream (`CUstream`). `StreamHandle::DEFAULT` (0) is the legacy default stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamHandle(pub u64);

impl StreamHandle {
    /// The legacy default stream (`NULL`).
    pub const DEFAULT: StreamHandle = StreamHandle(0);
}

/// An event (`CUevent`), created with timing enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventHandle(pub u64);

/// Which implementation a backend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// [`crate::HostBackend`]: host memory, a byte budget and a simulated clock.
    Host,
    /// [`crate::CudaBackend`]: the CUDA driver (or a stand-in `libcuda.so`).
    Cuda,
}

/// Free and total device memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// Bytes not yet allocated.
    pub free: u64,
    /// Bytes on the device (or in the budget).
    pub total: u64,
}

/// Device operations. See the [module docs](self) for the ordering rules.
///
/// Every method returns an error value for a bad handle or address rather than panicking.
/// Sizes of virtual-memory calls must be multiples of [`Backend::granularity`].
pub trait Backend: Send {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// Page size of virtual-memory mappings (`cuMemGetAllocationGranularity`, minimum
    /// granularity): the unit of [`Backend::phys_create`], [`Backend::map`] and
    /// [`Backend::va_reserve`] sizes.
    ///
    /// # Errors
    /// A driver error.
    fn granularity(&mut self) -> Result<u64>;

    /// Free and total device memory (`cuMemGetInfo`).
    ///
    /// # Errors
    /// A driver error.
    fn mem_info(&mut self) -> Result<MemInfo>;

    /// Allocates `bytes` of plain device memory (`cuMemAlloc`); `bytes > 0`.
    ///
    /// # Errors
    /// [`crate::Error::OutOfMemory`], or a driver error.
    fn mem_alloc(&mut self, bytes: u64) -> Result<DevPtr>;

    /// Frees memory from [`Backend::mem_alloc`] (`cuMemFree`).
    ///
    /// # Errors
    /// An unknown pointer.
    fn mem_free(&mut self, ptr: DevPtr) -> Result<()>;

    /// Reserves `bytes` of virtual address space (`cuMemAddressReserve`), aligned to the
    /// granularity; nothing is mapped.
    ///
    /// # Errors
    /// A size that is zero or not a multiple of the granularity; a driver error.
    fn va_reserve(&mut self, bytes: u64) -> Result<DevPtr>;

    /// Frees a whole reservation (`cuMemAddressFree`). Everything in it must be unmapped.
    ///
    /// # Errors
    /// An unknown reservation, a size that differs from the reserved one, or live mappings.
    fn va_free(&mut self, base: DevPtr, bytes: u64) -> Result<()>;

    /// Creates `bytes` of physical device memory (`cuMemCreate`), pinned to this device.
    ///
    /// # Errors
    /// [`crate::Error::OutOfMemory`]; a size that is zero or not a multiple of the granularity.
    fn phys_create(&mut self, bytes: u64) -> Result<PhysHandle>;

    /// Releases a physical allocation (`cuMemRelease`). Its memory is freed once it is no
    /// longer mapped anywhere.
    ///
    /// # Errors
    /// An unknown handle.
    fn phys_release(&mut self, handle: PhysHandle) -> Result<()>;

    /// Maps the whole of `handle` (`bytes` long) at `va` and makes it readable and writable
    /// from this device (`cuMemMap` + `cuMemSetAccess`). The range must lie inside one
    /// reservation and not overlap a mapping. One physical allocation may be mapped at several
    /// addresses at once.
    ///
    /// # Errors
    /// A bad range or handle; a driver error.
    fn map(&mut self, va: DevPtr, bytes: u64, handle: PhysHandle) -> Result<()>;

    /// Unmaps `[va, va + bytes)` (`cuMemUnmap`), which must cover whole mappings.
    ///
    /// # Errors
    /// A range that splits a mapping or covers unmapped addresses.
    fn unmap(&mut self, va: DevPtr, bytes: u64) -> Result<()>;

    /// Allocates `bytes > 0` of page-locked host memory, not write-combined
    /// (`cuMemHostAlloc(…, CU_MEMHOSTALLOC_PORTABLE)`), aligned to at least 4096 bytes.
    ///
    /// # Errors
    /// Out of host memory; a driver error.
    fn host_alloc(&mut self, bytes: u64) -> Result<NonNull<u8>>;

    /// Frees memory from [`Backend::host_alloc`] (`cuMemFreeHost`).
    ///
    /// # Safety
    /// 1. `ptr` came from `host_alloc(bytes)` on this backend and was not freed since.
    /// 2. No copy that reads or writes it is still queued (the caller synchronized).
    ///
    /// # Errors
    /// A driver error.
    unsafe fn host_free(&mut self, ptr: NonNull<u8>, bytes: u64) -> Result<()>;

    /// Creates a non-blocking stream (`cuStreamCreate(CU_STREAM_NON_BLOCKING)`).
    ///
    /// # Errors
    /// A driver error.
    fn stream_create(&mut self) -> Result<StreamHandle>;

    /// Destroys a stream made by [`Backend::stream_create`].
    ///
    /// # Errors
    /// An unknown stream.
    fn stream_destroy(&mut self, stream: StreamHandle) -> Result<()>;

    /// Waits on the host until all work queued on `stream` is done.
    ///
    /// # Errors
    /// A driver error.
    fn stream_synchronize(&mut self, stream: StreamHandle) -> Result<()>;

    /// Creates an event with timing enabled.
    ///
    /// # Errors
    /// A driver error.
    fn event_create(&mut self) -> Result<EventHandle>;

    /// Destroys an event.
    ///
    /// # Errors
    /// An unknown event.
    fn event_destroy(&mut self, event: EventHandle) -> Result<()>;

    /// Records `event` on `stream`: it completes when the work queued on `stream` so far has.
    ///
    /// # Errors
    /// An unknown event or stream.
    fn event_record(&mut self, event: EventHandle, stream: StreamHandle) -> Result<()>;

    /// Whether `event` has completed (`cuEventQuery`; an event never recorded counts as done).
    ///
    /// # Errors
    /// An unknown event.
    fn event_query(&mut self, event: EventHandle) -> Result<bool>;

    /// Waits on the host until `event` has completed.
    ///
    /// # Errors
    /// An unknown event.
    fn event_synchronize(&mut self, event: EventHandle) -> Result<()>;

    /// Milliseconds between two completed events (`cuEventElapsedTime`).
    ///
    /// # Errors
    /// Unknown or incomplete events.
    fn event_elapsed_ms(&mut self, start: EventHandle, end: EventHandle) -> Result<f32>;

    /// Makes later work on `stream` wait until `event` completes (`cuStreamWaitEvent`).
    ///
    /// # Errors
    /// An unknown event or stream.
    fn stream_wait_event(&mut self, stream: StreamHandle, event: EventHandle) -> Result<()>;

    /// Queues a copy of `bytes` from host `src` to device `dst` on `stream`.
    ///
    /// # Safety
    /// 1. `src` is valid for reads of `bytes` bytes until the copy has completed (an event
    ///    recorded after it completes, or the stream is synchronized).
    /// 2. Nothing writes `src` in that time.
    ///
    /// # Errors
    /// A device range that is not allocated or mapped; a driver error.
    unsafe fn copy_h2d(
        &mut self,
        dst: DevPtr,
        src: *const u8,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()>;

    /// Queues a copy of `bytes` from device `src` to host `dst` on `stream`.
    ///
    /// # Safety
    /// 1. `dst` is valid for writes of `bytes` bytes until the copy has completed.
    /// 2. Nothing else reads or writes `dst` in that time.
    ///
    /// # Errors
    /// A device range that is not allocated or mapped; a driver error.
    unsafe fn copy_d2h(
        &mut self,
        dst: *mut u8,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()>;

    /// Queues a device-to-device copy of `bytes` on `stream`.
    ///
    /// # Errors
    /// A range that is not allocated or mapped; a driver error.
    fn copy_d2d(
        &mut self,
        dst: DevPtr,
        src: DevPtr,
        bytes: u64,
        stream: StreamHandle,
    ) -> Result<()>;
}
