//! Independent oracles: checks written apart from the code they check, shared by the tests,
//! the fuzz checks and debug assertions.
//!
//! - [`verify`] checks an offline packing plan (a [`PlacedBuffer`] per input [`Buffer`]). A
//!   plan is accepted when it is complete (one placement per input buffer, nothing extra),
//!   unchanged (same lifetime and size as the input), aligned, within the capacity, and no two
//!   buffers alive at the same moment share a byte.
//! - [`sweep`] is the live-overlap sweep every oracle uses (this verifier, and
//!   `Plan::validate` for the guided allocator's plan).
//!
//! Independence: nothing here calls the packer (`crate::pack`). From it, `check` takes only
//! the plain data of [`Buffer`] and [`PlacedBuffer`] (their public fields, no methods); it
//! matches placements to buffers by id in a `BTreeMap`, where the packer works by position,
//! and finds overlaps with its own sweep over time. A bug in the packer therefore cannot hide
//! itself by sharing code with its oracle.
//!
//! Invariants: the checks keep no state between calls, never panic whatever the input (an
//! `offset + size` that overflows is reported, not computed), and report the first violation
//! in a fixed order (placements in the plan's order, then missing buffers by id, then overlaps),
//! so the same input always gets the same error.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::pack::{Buffer, PlacedBuffer};

pub mod sweep;

use sweep::{Span, first_collision};

/// Why a plan was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// An input buffer has no placement.
    Missing {
        /// The buffer's id.
        id: String,
    },
    /// A placement names no input buffer, or names one twice.
    Unexpected {
        /// The placement's id.
        id: String,
    },
    /// A placement's lifetime or size differs from the input buffer's.
    Changed {
        /// The buffer's id.
        id: String,
    },
    /// An offset is not a multiple of the buffer's alignment.
    Misaligned {
        /// The buffer's id.
        id: String,
        /// The offset given.
        offset: u64,
        /// The alignment required.
        alignment: u64,
    },
    /// `offset + size` overflows `u64` or exceeds the capacity.
    OutOfBounds {
        /// The buffer's id.
        id: String,
        /// Its end, `offset + size` (saturated at `u64::MAX`).
        end: u64,
    },
    /// Two buffers alive at the same moment share bytes.
    Overlap {
        /// One buffer's id.
        a: String,
        /// The other buffer's id.
        b: String,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Missing { id } => write!(f, "buffer {id:?} has no placement"),
            CheckError::Unexpected { id } => {
                write!(f, "placement {id:?} is not an input buffer or is repeated")
            }
            CheckError::Changed { id } => {
                write!(f, "placement {id:?} changes the buffer's lifetime or size")
            }
            CheckError::Misaligned {
                id,
                offset,
                alignment,
            } => write!(
                f,
                "buffer {id:?} at offset {offset} is not aligned to {alignment}"
            ),
            CheckError::OutOfBounds { id, end } => {
                write!(f, "buffer {id:?} ends at {end}, beyond the capacity")
            }
            CheckError::Overlap { a, b } => {
                write!(f, "buffers {a:?} and {b:?} are alive together and overlap")
            }
        }
    }
}

impl core::error::Error for CheckError {}

/// Checks `plan` against the `input` buffers. `capacity`, when given, bounds every
/// `offset + size`. Returns the first problem found.
///
/// # Errors
/// A [`CheckError`] describing the first violation found.
///
/// # Complexity
/// O(n log n).
pub fn verify(
    input: &[Buffer],
    plan: &[PlacedBuffer],
    capacity: Option<u64>,
) -> Result<(), CheckError> {
    // Completeness and unchangedness.
    let mut by_id: BTreeMap<&str, (&Buffer, bool)> = BTreeMap::new();
    for b in input {
        by_id.insert(b.id.as_str(), (b, false));
    }
    for p in plan {
        let Some((b, seen)) = by_id.get_mut(p.id.as_str()) else {
            return Err(CheckError::Unexpected { id: p.id.clone() });
        };
        if *seen {
            return Err(CheckError::Unexpected { id: p.id.clone() });
        }
        *seen = true;
        if b.lower != p.lower || b.upper != p.upper || b.size != p.size {
            return Err(CheckError::Changed { id: p.id.clone() });
        }
        if b.alignment == 0 || p.offset % b.alignment != 0 {
            return Err(CheckError::Misaligned {
                id: p.id.clone(),
                offset: p.offset,
                alignment: b.alignment,
            });
        }
        let end = p.offset.checked_add(p.size);
        match (end, capacity) {
            (None, _) => {
                return Err(CheckError::OutOfBounds {
                    id: p.id.clone(),
                    end: u64::MAX,
                });
            }
            (Some(end), Some(cap)) if end > cap => {
                return Err(CheckError::OutOfBounds {
                    id: p.id.clone(),
                    end,
                });
            }
            _ => {}
        }
    }
    if let Some((id, _)) = by_id.iter().find(|(_, (_, seen))| !*seen) {
        return Err(CheckError::Missing {
            id: String::from(*id),
        });
    }

    // Overlap: the shared sweep over time (`offset + size` was checked above).
    let spans: Vec<Span> = plan
        .iter()
        .map(|p| Span {
            start: p.lower,
            end: p.upper,
            offset: p.offset,
            size: p.size,
        })
        .collect();
    if let Some(c) = first_collision(&spans) {
        let (a, b) = if c.live_is_below {
            (c.live, c.new)
        } else {
            (c.new, c.live)
        };
        return Err(CheckError::Overlap {
            a: plan[a].id.clone(),
            b: plan[b].id.clone(),
        });
    }
    Ok(())
}
