#![doc = include_str!("../README.md")]

pub mod arena;
pub mod backend;
pub mod copy;
pub mod disk;
pub mod driver;
pub mod error;
pub mod host;
pub mod pinned;
pub mod schedule;
pub mod tier;
pub mod vmm;

pub use arena::{ArenaStats, DeviceArena};
pub use backend::{Backend, BackendKind, DevPtr, EventHandle, MemInfo, PhysHandle, StreamHandle};
pub use copy::{CopyEngine, Direction, TransferId};
pub use disk::{DiskSlot, DiskTier};
pub use driver::CudaBackend;
pub use error::{Error, Result};
pub use host::{HostBackend, HostConfig, HostStats};
pub use pinned::{PinnedBuf, PinnedPool};
pub use schedule::{ExecOptions, ExecReport, Verify, execute, fill_pattern};
pub use tier::{Moved, Tier, TierStore};
pub use vmm::{ExpandableSegment, Stitcher};

/// True when the CUDA driver library (`libcuda.so`, `libcuda.so.1`, … or `nvcuda.dll`) can be
/// loaded, so that driver calls will not panic for want of it.
///
/// Call this before the first driver call: cudarc loads the library on first use and panics
/// when it is missing. A present library does not mean a usable device; creating a context can
/// still fail (no device, driver too old), and that failure is an error value.
///
/// # Examples
/// ```
/// let present = memplan_cuda::driver_library_present();
/// assert_eq!(present, memplan_cuda::driver_library_present());
/// ```
///
/// # Complexity
/// Opens and closes the shared library once per name tried (a `dlopen` each); cache the
/// answer rather than calling it in a loop.
pub fn driver_library_present() -> bool {
    // SAFETY: `is_culib_present` has no preconditions of its own; it is `unsafe` because
    // loading a shared library runs that library's initialisers. The only libraries it opens
    // are the CUDA driver's names, which every later driver call loads and trusts anyway.
    unsafe { cudarc::driver::sys::is_culib_present() }
}
