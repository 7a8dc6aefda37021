//! The plan's types ([`Plan`], [`Slot`], [`SlotRef`]), its validation and its binary
//! encoding; the format is described in the [`plan`](super) module docs. A leaf of `plan/`.

use alloc::vec::Vec;
use core::fmt;

use crate::check::sweep::{Span, first_collision};

/// The first 8 bytes of every plan file.
pub const MAGIC: [u8; 8] = *b"MPPLAN\0\0";
/// The format version this module writes and reads.
pub const VERSION: u32 = 2;
/// Bytes before the first slot record: magic, version, arena size and the two counts.
pub const HEADER_LEN: usize = 28;
/// Bytes of one encoded [`Slot`].
pub const SLOT_LEN: usize = 28;
/// Bytes of the trailing checksum.
pub const CHECKSUM_LEN: usize = 8;

/// One planned allocation: where it lives in the arena and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Bytes the slot occupies; `size > 0`.
    pub size: u64,
    /// The stream the request is expected on.
    pub stream: u32,
    /// Offset from the start of the arena; `offset + size <= arena_size`.
    pub offset: u64,
    /// First request index at which the slot is alive, inclusive: from the start of the run
    /// for a prologue slot, from the start of the lap for an iteration slot.
    pub start: u32,
    /// First request index at which the slot is no longer alive; `end > start`. A prologue
    /// slot with `end == u32::MAX` is persistent (never freed).
    pub end: u32,
}

/// The plan of a run: a prologue served once, then an iteration served in laps (see the
/// [module docs](super)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Plan {
    /// Bytes of the arena every slot lies in.
    pub arena_size: u64,
    /// Slots of the first part of the run, in request order; those with `end == u32::MAX`
    /// are persistent.
    pub prologue: Vec<Slot>,
    /// Slots of one steady-state iteration, in request order, served in every lap after the
    /// prologue.
    pub iteration: Vec<Slot>,
}

impl Slot {
    /// True for a prologue slot that is never freed (`end == u32::MAX`).
    pub fn is_persistent(&self) -> bool {
        self.end == u32::MAX
    }
}

/// Names one slot of a [`Plan`] in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotRef {
    /// `plan.prologue[i]`.
    Prologue(usize),
    /// `plan.iteration[i]`.
    Iteration(usize),
}

impl fmt::Display for SlotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotRef::Prologue(i) => write!(f, "prologue slot {i}"),
            SlotRef::Iteration(i) => write!(f, "iteration slot {i}"),
        }
    }
}

/// Why a plan file could not be loaded, or why a plan is invalid.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanFileError {
    /// The input does not start with [`MAGIC`].
    BadMagic,
    /// The file's format version is not [`VERSION`].
    UnsupportedVersion {
        /// The version the file declares.
        found: u32,
    },
    /// The input ends before the field (or slot table) starting at byte `at` is complete.
    Truncated {
        /// Offset of the first field that does not fit.
        at: usize,
    },
    /// The stored checksum does not match the bytes before it.
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u64,
        /// The checksum computed over the file.
        computed: u64,
    },
    /// Bytes follow the checksum.
    TrailingBytes {
        /// How many bytes follow it.
        extra: usize,
    },
    /// A slot list has more entries than a `u32` count can hold, so it cannot be encoded.
    TooManySlots {
        /// The number of slots in the offending list.
        count: usize,
    },
    /// A slot has size 0.
    ZeroSize {
        /// The slot.
        slot: SlotRef,
    },
    /// A slot's lifetime `[start, end)` is empty or reversed.
    EmptyLifetime {
        /// The slot.
        slot: SlotRef,
        /// Its start.
        start: u32,
        /// Its end.
        end: u32,
    },
    /// A slot's `offset + size` exceeds the arena (or overflows `u64`).
    OutOfArena {
        /// The slot.
        slot: SlotRef,
        /// The arena size.
        arena_size: u64,
    },
    /// Two slots alive at the same time overlap in memory.
    Overlap {
        /// One slot.
        a: SlotRef,
        /// The other.
        b: SlotRef,
    },
}

impl fmt::Display for PlanFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanFileError::BadMagic => write!(f, "not a memplan plan file (bad magic)"),
            PlanFileError::UnsupportedVersion { found } => write!(
                f,
                "unsupported plan file version {found} (this build reads version {VERSION})"
            ),
            PlanFileError::Truncated { at } => {
                write!(
                    f,
                    "plan file truncated: the field at byte {at} is incomplete"
                )
            }
            PlanFileError::ChecksumMismatch { stored, computed } => write!(
                f,
                "plan file checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
            ),
            PlanFileError::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected bytes after the plan file's checksum")
            }
            PlanFileError::TooManySlots { count } => {
                write!(f, "{count} slots do not fit a u32 count")
            }
            PlanFileError::ZeroSize { slot } => write!(f, "{slot} has size 0"),
            PlanFileError::EmptyLifetime { slot, start, end } => write!(
                f,
                "{slot} has an empty lifetime: end ({end}) must be greater than start ({start})"
            ),
            PlanFileError::OutOfArena { slot, arena_size } => {
                write!(f, "{slot} extends past the arena of {arena_size} bytes")
            }
            PlanFileError::Overlap { a, b } => {
                write!(f, "{a} and {b} are alive together and overlap")
            }
        }
    }
}

impl core::error::Error for PlanFileError {}

/// 64-bit FNV-1a of `bytes`: the plan file checksum.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Plan {
    /// Every slot, tagged with its [`SlotRef`]: prologue first, then iteration.
    fn slots(&self) -> impl Iterator<Item = (SlotRef, &Slot)> {
        let p = self
            .prologue
            .iter()
            .enumerate()
            .map(|(i, s)| (SlotRef::Prologue(i), s));
        let it = self
            .iteration
            .iter()
            .enumerate()
            .map(|(i, s)| (SlotRef::Iteration(i), s));
        p.chain(it)
    }

    /// Checks the plan: every slot is non-empty, has a non-empty lifetime and lies within the
    /// arena; no two prologue slots alive at the same time overlap in memory, nor do two
    /// iteration slots, nor an iteration slot and a persistent prologue slot (which is alive
    /// in every lap). Also checks the counts fit the file format's `u32`.
    ///
    /// Runs in O(n log n) with two runs of the live-overlap sweep ([`crate::check::sweep`]).
    pub fn validate(&self) -> Result<(), PlanFileError> {
        for list in [&self.prologue, &self.iteration] {
            if u32::try_from(list.len()).is_err() {
                return Err(PlanFileError::TooManySlots { count: list.len() });
            }
        }
        for (r, s) in self.slots() {
            if s.size == 0 {
                return Err(PlanFileError::ZeroSize { slot: r });
            }
            if s.end <= s.start {
                return Err(PlanFileError::EmptyLifetime {
                    slot: r,
                    start: s.start,
                    end: s.end,
                });
            }
            match s.offset.checked_add(s.size) {
                Some(e) if e <= self.arena_size => {}
                _ => {
                    return Err(PlanFileError::OutOfArena {
                        slot: r,
                        arena_size: self.arena_size,
                    });
                }
            }
        }
        // The prologue on its own timeline; then one lap with the persistent slots alive
        // throughout.
        let prologue = self
            .slots()
            .filter(|(r, _)| matches!(r, SlotRef::Prologue(_)));
        sweep(prologue.map(|(r, s)| (r, s, s.start, s.end)))?;
        let lap = self.slots().filter_map(|(r, s)| match r {
            SlotRef::Prologue(_) if s.is_persistent() => Some((r, s, 0, u32::MAX)),
            SlotRef::Prologue(_) => None,
            SlotRef::Iteration(_) => Some((r, s, s.start, s.end)),
        });
        sweep(lap)
    }

    /// Encodes the plan in the [file format](super#file-format-version-2).
    ///
    /// The encoding is canonical: [`Plan::from_bytes`] of the result gives back an equal plan,
    /// and a plan decoded from bytes re-encodes to those same bytes.
    ///
    /// # Panics
    ///
    /// If a slot list has more than `u32::MAX` entries (such a plan cannot be written;
    /// [`Plan::validate`] reports it as [`PlanFileError::TooManySlots`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let count = |v: &Vec<Slot>| u32::try_from(v.len()).expect("at most u32::MAX slots");
        let n = HEADER_LEN + SLOT_LEN * (self.prologue.len() + self.iteration.len());
        let mut out = Vec::with_capacity(n + CHECKSUM_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.arena_size.to_le_bytes());
        out.extend_from_slice(&count(&self.prologue).to_le_bytes());
        out.extend_from_slice(&count(&self.iteration).to_le_bytes());
        for s in self.prologue.iter().chain(&self.iteration) {
            out.extend_from_slice(&s.size.to_le_bytes());
            out.extend_from_slice(&s.offset.to_le_bytes());
            out.extend_from_slice(&s.stream.to_le_bytes());
            out.extend_from_slice(&s.start.to_le_bytes());
            out.extend_from_slice(&s.end.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes and validates a plan file; see the [module docs](super) for the checks and their
    /// order. Never panics, and allocates only after the counts are known to fit the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan, PlanFileError> {
        // Magic: a short input that agrees with the magic so far is truncated, not foreign.
        let m = bytes.len().min(MAGIC.len());
        if bytes[..m] != MAGIC[..m] {
            return Err(PlanFileError::BadMagic);
        }
        let mut r = Reader { bytes, pos: m };
        if m < MAGIC.len() {
            return Err(PlanFileError::Truncated { at: 0 });
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(PlanFileError::UnsupportedVersion { found: version });
        }
        let arena_size = r.u64()?;
        let np = r.u32()?;
        let ni = r.u32()?;
        // Lengths, before allocating: the slot table and checksum must fit what is left.
        let table_at = r.pos;
        let slots = u64::from(np) + u64::from(ni);
        let needed = slots
            .checked_mul(SLOT_LEN as u64)
            .and_then(|t| t.checked_add(CHECKSUM_LEN as u64));
        let remaining = (bytes.len() - table_at) as u64;
        match needed {
            Some(need) if need <= remaining => {}
            _ => {
                // Name the first field that does not fit: a slot record or the checksum.
                let whole = remaining / SLOT_LEN as u64;
                let at = if whole < slots {
                    table_at + whole as usize * SLOT_LEN
                } else {
                    table_at + slots as usize * SLOT_LEN
                };
                return Err(PlanFileError::Truncated { at });
            }
        }
        let sum_at = table_at + slots as usize * SLOT_LEN;
        let computed = checksum(&bytes[..sum_at]);
        let mut slot_reader = Reader { bytes, pos: sum_at };
        let stored = slot_reader.u64()?;
        if stored != computed {
            return Err(PlanFileError::ChecksumMismatch { stored, computed });
        }
        let extra = bytes.len() - slot_reader.pos;
        if extra != 0 {
            return Err(PlanFileError::TrailingBytes { extra });
        }
        let mut read = |n: u32| -> Result<Vec<Slot>, PlanFileError> {
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(Slot {
                    size: r.u64()?,
                    offset: r.u64()?,
                    stream: r.u32()?,
                    start: r.u32()?,
                    end: r.u32()?,
                });
            }
            Ok(v)
        };
        let prologue = read(np)?;
        let iteration = read(ni)?;
        let plan = Plan {
            arena_size,
            prologue,
            iteration,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// Checks that no two of `slots` (each with the lifetime `[start, end)` to check it over)
/// alive at the same time overlap in memory, with the shared [`crate::check::sweep`]. Offsets
/// and sizes must be checked for overflow already.
fn sweep<'a>(
    slots: impl Iterator<Item = (SlotRef, &'a Slot, u32, u32)>,
) -> Result<(), PlanFileError> {
    let (refs, spans): (Vec<SlotRef>, Vec<Span>) = slots
        .map(|(r, s, start, end)| {
            let span = Span {
                start: u64::from(start),
                end: u64::from(end),
                offset: s.offset,
                size: s.size,
            };
            (r, span)
        })
        .unzip();
    match first_collision(&spans) {
        Some(c) => Err(PlanFileError::Overlap {
            a: refs[c.live],
            b: refs[c.new],
        }),
        None => Ok(()),
    }
}

/// A little-endian cursor that reports [`PlanFileError::Truncated`] instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PlanFileError> {
        let at = self.pos;
        let chunk = self
            .bytes
            .get(at..)
            .and_then(|rest| rest.get(..N))
            .ok_or(PlanFileError::Truncated { at })?;
        let mut out = [0; N];
        out.copy_from_slice(chunk);
        self.pos = at + N;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, PlanFileError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, PlanFileError> {
        self.take().map(u64::from_le_bytes)
    }
}
