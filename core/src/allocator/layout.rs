//! The address layout memplan's own allocators share (`online` and `guided`, and the plans
//! the guided one serves): the granule every block is rounded to, the default start of the
//! virtual range and the default page size. A leaf: plan building uses it too.

use super::interface::Addr;
use crate::units::round_up;

/// Alignment and rounding granule of every allocation, in bytes (and of every slot of a plan
/// built by [`Plan::from_trace`](crate::plan::Plan::from_trace)).
pub const ALIGN: u64 = 512;

/// Default start of the virtual range (page-aligned for any page size up to 1 TiB).
pub const DEFAULT_BASE: Addr = 0x7f00_0000_0000;

/// Default page size: 2 MiB, CUDA's granularity for mapped device memory.
pub const DEFAULT_PAGE_SIZE: u64 = 2 << 20;

/// Bytes a request of `size` takes: `size` rounded up to [`ALIGN`], and [`ALIGN`] for 0.
/// `None` when that overflows `u64`.
pub fn rounded(size: u64) -> Option<u64> {
    round_up(size.max(1), ALIGN)
}
