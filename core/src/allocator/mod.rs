//! Online allocators behind one trait, for replaying allocation traces, and the one registry
//! that creates them by name.
//!
//! An [`Allocator`] serves `alloc(size, stream)` / `free(addr)` requests the way a
//! framework's device allocator would, and keeps [`AllocStats`]: bytes requested and live,
//! bytes reserved from the device, and their peaks. Models of other allocators (PyTorch's
//! caching allocator) and memplan's own allocators implement it, so one replay compares them.
//!
//! Addresses are plain `u64` byte addresses in a simulated device address space; reservations
//! (the `cudaMalloc` calls or page mappings an allocator would make) are counted in the stats.
//!
//! # Allocators by name
//!
//! | name | type | what |
//! |---|---|---|
//! | `torch` | [`TorchAllocator`] | PyTorch's CUDA caching allocator (model) |
//! | `torch-expandable` | [`TorchExpandableAllocator`] | PyTorch's allocator with `expandable_segments:True` (model) |
//! | `online` | [`OnlineAllocator`] | memplan's online allocator: best fit over one growable range |
//! | `guided` | [`GuidedAllocator`] | memplan's plan-guided allocator, serving a [`Plan`](crate::plan::Plan) |
//!
//! [`registry::build`] creates any of them from an [`AllocatorKind`] (parsed from its name)
//! and [`Settings`]; every front end (CLI, C API, PyTorch hook, bench) creates allocators
//! through it. Adding an allocator: its file here, a variant in `registry.rs`, tests.
//!
//! # Files
//!
//! - `interface.rs`: the [`Allocator`] trait (and its impl for `Box<A>`), [`Addr`],
//!   [`AllocStats`], [`AllocError`] (a leaf).
//! - `layout.rs`: the granule and default layout memplan's own allocators share (a leaf).
//! - `setup.rs`: [`SetupError`], the one error of every constructor.
//! - `registry.rs`: allocators by name.
//! - `online.rs`, `torch/`, `torch_expandable/`, `guided/`: the allocators.
//!
//! No file here imports this one: they import the leaves directly.

mod interface;
pub(crate) mod layout;
pub mod registry;
mod setup;

pub mod guided;
pub mod online;
pub mod torch;
pub mod torch_expandable;

pub use guided::{GuidedAllocator, GuidedConfig, GuidedCounters};
pub use interface::{Addr, AllocError, AllocStats, Allocator};
pub use layout::{ALIGN, DEFAULT_BASE, DEFAULT_PAGE_SIZE};
pub use online::{OnlineAllocator, OnlineConfig};
pub use registry::{AllocatorKind, BoxedAllocator, Settings, UnknownAllocator};
pub use setup::{SetupError, check_page_layout};
pub use torch::{TorchAllocator, TorchConfig};
pub use torch_expandable::TorchExpandableAllocator;
