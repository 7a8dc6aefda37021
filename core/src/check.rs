//! An independent verifier for plans.
//!
//! [`verify`] shares no code with the packer: it matches placements to input buffers by id
//! with a `BTreeMap`, and finds overlaps with a sweep over time that keeps the live buffers in
//! a second `BTreeMap` ordered by offset. A plan is accepted when it is complete (one
//! placement per input buffer, nothing extra), unchanged (same lifetime and size as the
//! input), aligned, within the capacity, and no two buffers alive at the same moment share a
//! byte.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::interval::{Buffer, Placement};

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
    plan: &[Placement],
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

    // Overlap: sweep over time. At equal times, ends are handled before starts (half-open).
    // `live` maps offset -> (end, index) for buffers alive now; since live buffers never
    // overlap, checking a new buffer against its two neighbours in offset order suffices.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(plan.len() * 2);
    for (i, p) in plan.iter().enumerate() {
        events.push((p.lower, 1, i));
        events.push((p.upper, 0, i));
    }
    events.sort_unstable();
    let mut live: BTreeMap<(u64, usize), u64> = BTreeMap::new();
    for (_, kind, i) in events {
        let p = &plan[i];
        if kind == 0 {
            live.remove(&(p.offset, i));
            continue;
        }
        let end = p.offset + p.size; // checked above
        if let Some((&(_, j), &prev_end)) = live.range(..(p.offset, i)).next_back() {
            if prev_end > p.offset {
                return Err(CheckError::Overlap {
                    a: plan[j].id.clone(),
                    b: p.id.clone(),
                });
            }
        }
        if let Some((&(next_off, j), _)) = live.range((p.offset, i)..).next() {
            if next_off < end {
                return Err(CheckError::Overlap {
                    a: p.id.clone(),
                    b: plan[j].id.clone(),
                });
            }
        }
        live.insert((p.offset, i), end);
    }
    Ok(())
}
