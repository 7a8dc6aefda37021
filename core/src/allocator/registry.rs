//! Allocators by name: [`AllocatorKind`] (`torch`, `torch-expandable`, `online`, `guided`),
//! the [`Settings`] they are made from, and [`build`], the one place an allocator is created
//! from a name. The CLI (`replay --allocator`), the PyTorch hook (`MEMPLAN_ALLOCATOR`), the C
//! API (`mp_allocator_new*`) and the bench all create allocators here.
//!
//! Adding an allocator: a variant of [`AllocatorKind`] with its name, description and
//! address window, and its arm in [`build`].

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::guided::{GuidedAllocator, GuidedConfig};
use super::interface::{Addr, Allocator};
use super::layout::{DEFAULT_BASE, DEFAULT_PAGE_SIZE};
use super::online::{OnlineAllocator, OnlineConfig};
use super::setup::SetupError;
use super::torch::{SIMULATED_BASE, TorchAllocator, TorchConfig};
use super::torch_expandable::TorchExpandableAllocator;
use crate::plan::Plan;

/// An allocator the registry can create, named as in reports, `--allocator` and
/// `MEMPLAN_ALLOCATOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AllocatorKind {
    /// `torch`: PyTorch's CUDA caching allocator ([`TorchAllocator`]).
    Torch,
    /// `torch-expandable`: PyTorch's allocator with expandable segments
    /// ([`TorchExpandableAllocator`]).
    TorchExpandable,
    /// `online`: memplan's online allocator ([`OnlineAllocator`]).
    Online,
    /// `guided`: memplan's plan-guided allocator ([`GuidedAllocator`]); needs a plan.
    Guided,
}

impl AllocatorKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AllocatorKind; 4] = [
        AllocatorKind::Torch,
        AllocatorKind::TorchExpandable,
        AllocatorKind::Online,
        AllocatorKind::Guided,
    ];

    /// The name: `torch`, `torch-expandable`, `online` or `guided` (what
    /// [`Allocator::name`] returns for the allocator [`build`] makes).
    pub fn name(self) -> &'static str {
        match self {
            AllocatorKind::Torch => "torch",
            AllocatorKind::TorchExpandable => "torch-expandable",
            AllocatorKind::Online => "online",
            AllocatorKind::Guided => "guided",
        }
    }

    /// One line saying what the allocator is, for `--help` and docs.
    pub fn about(self) -> &'static str {
        match self {
            AllocatorKind::Torch => "PyTorch's CUDA caching allocator (model)",
            AllocatorKind::TorchExpandable => {
                "PyTorch's allocator with expandable_segments:True (model)"
            }
            AllocatorKind::Online => {
                "memplan's online allocator: exact best fit over one range grown in pages"
            }
            AllocatorKind::Guided => {
                "memplan's plan-guided allocator: serves requests from a plan of the run"
            }
        }
    }

    /// The virtual address window `(start, bytes)` that the allocator [`build`] makes from
    /// `settings` hands its addresses out of, for a caller that must reserve it up front
    /// (the PyTorch hook). `None` without a capacity, or when the window overflows `u64`.
    ///
    /// `online` and `guided`: the capacity in whole pages from [`DEFAULT_BASE`] (at least one
    /// page for `guided`). The torch models never reuse a segment address once freed, so
    /// their addresses run ahead of their footprint: 4 times the capacity in whole pages,
    /// from [`SIMULATED_BASE`].
    pub fn address_window(self, settings: &Settings) -> Option<(Addr, u64)> {
        let capacity = settings.capacity?;
        let page = settings.page_size;
        let pages = capacity.div_ceil(page).checked_mul(page)?;
        match self {
            AllocatorKind::Online => Some((DEFAULT_BASE, pages)),
            AllocatorKind::Guided => Some((DEFAULT_BASE, pages.max(page))),
            AllocatorKind::Torch | AllocatorKind::TorchExpandable => {
                Some((SIMULATED_BASE, pages.checked_mul(4)?))
            }
        }
    }
}

impl fmt::Display for AllocatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AllocatorKind {
    type Err = UnknownAllocator;

    /// The kind named `s` (exactly, as [`AllocatorKind::name`] gives it).
    fn from_str(s: &str) -> Result<Self, UnknownAllocator> {
        AllocatorKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownAllocator { name: s.into() })
    }
}

/// A name that is not an allocator's; its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAllocator {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown allocator {:?}: expected one of ", self.name)?;
        for (i, k) in AllocatorKind::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{k}")?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownAllocator {}

/// What [`build`] makes an allocator from. Each kind reads the fields it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Most bytes the allocator may reserve from the device; `None` for no limit. (The
    /// online allocator and the guided one use only its whole pages.)
    pub capacity: Option<u64>,
    /// `online` and `guided`: the granule memory is mapped in, a power of two from
    /// [`ALIGN`](super::layout::ALIGN) to 1 TiB (so that it divides [`DEFAULT_BASE`]).
    pub page_size: u64,
    /// `guided`: the plan to serve (required).
    pub plan: Option<Plan>,
    /// `torch`: base addresses for the next reservations, in order (the segment addresses a
    /// PyTorch snapshot recorded, to reproduce its addresses); empty for the simulated ones.
    pub segment_addresses: Vec<Addr>,
}

impl Default for Settings {
    /// No capacity, [`DEFAULT_PAGE_SIZE`], no plan, simulated segment addresses.
    fn default() -> Self {
        Settings {
            capacity: None,
            page_size: DEFAULT_PAGE_SIZE,
            plan: None,
            segment_addresses: Vec::new(),
        }
    }
}

/// An allocator of any kind, boxed: [`Box<A>`] is an [`Allocator`] too.
pub type BoxedAllocator = Box<dyn Allocator + Send + Sync>;

/// Creates the allocator `kind` from `settings`: `online` and `guided` at [`DEFAULT_BASE`]
/// (the guided one re-planning), the torch models with PyTorch's default settings and the
/// capacity. The plan, if any, is copied.
///
/// # Errors
/// [`SetupError::BadPageSize`] for a page size `online` or `guided` cannot use;
/// [`SetupError::MissingPlan`] for `guided` without a plan; [`SetupError::Plan`] and
/// [`SetupError::AddressOverflow`] for a plan the guided allocator cannot serve.
pub fn build(kind: AllocatorKind, settings: &Settings) -> Result<BoxedAllocator, SetupError> {
    let capacity = settings.capacity;
    let torch = TorchConfig {
        capacity,
        ..TorchConfig::default()
    };
    Ok(match kind {
        AllocatorKind::Torch => Box::new(
            TorchAllocator::new(torch)
                .with_segment_addresses(settings.segment_addresses.iter().copied()),
        ),
        AllocatorKind::TorchExpandable => Box::new(TorchExpandableAllocator::new(torch)),
        AllocatorKind::Online => Box::new(OnlineAllocator::new(OnlineConfig {
            base: DEFAULT_BASE,
            page_size: settings.page_size,
            capacity,
        })?),
        AllocatorKind::Guided => {
            let plan = settings.plan.clone().ok_or(SetupError::MissingPlan)?;
            let config = GuidedConfig {
                base: DEFAULT_BASE,
                page_size: settings.page_size,
                capacity,
                replan: true,
            };
            Box::new(GuidedAllocator::new(plan, config)?)
        }
    })
}
