//! The `capi` fuzz case: bytes → a sequence of calls into memplan's C API → checks against a
//! model of the packer.
//!
//! The exported `mp_*` functions are called from Rust exactly as C calls them: raw pointers,
//! NULL and misaligned ones included. This file uses only the `memplan` crate (memplan-ffi)
//! and `std`, because `ffi/tests/fuzz_capi.rs` includes it with `#[path]` so that `cargo test`
//! runs the same [`check`] on pseudo-random bytes.
//!
//! # What is checked
//! - Every return code is a defined `mp_result`, never `MP_RESULT_PANIC`, and is exactly the
//!   one the header documents for the call, predicted from a model of the packer (the
//!   buffers added, the outcome of the last pack). Out-parameters are written only on
//!   success.
//! - After `MP_RESULT_OK` from `mp_packer_pack`, every offset is read back and the plan is
//!   verified here, independently of core: offsets aligned, no two buffers alive at the same
//!   time share a byte, peak == max(offset + size), peak within the capacity, and the other
//!   readers (`best_peak`, `max_load`, `is_optimal`, `nodes`, ...) agree with it. The plan stays
//!   readable, unchanged, until the next successful add or pack.
//! - `mp_result_message` and `mp_packer_last_error` follow the documented `snprintf`-style
//!   rule for every buffer length: at most `len - 1` bytes, the longest prefix that ends on a
//!   UTF-8 character boundary, then a NUL, nothing past `len`; `*out_n` is the full length.
//!
//! # Encoding (bytecode style: every byte is valid; missing bytes read as 0)
//! ```text
//! ops until the bytes run out or MAX_OPS were read; each op is one byte (op % 16) and its
//! arguments; most argument modes (mode % 16) give valid values, a few give invalid or extreme
//! ones:
//!   0-5   add          id (fresh, duplicate, raw bytes: possibly invalid UTF-8 or NULs,
//!                      empty, multi-byte UTF-8, invalid UTF-8), lifetime (small, empty or
//!                      reversed, at u64::MAX), size (small, 0, 2^40.., near u64::MAX),
//!                      alignment (0, 1, small or any power of two, not a power of two)
//!   6     add (bad)    as 0, then one pointer problem: NULL packer, NULL id, NULL or
//!                      misaligned out_index, id_len above PTRDIFF_MAX
//!   7-9   pack        flags (bit 7: add an unknown bit), max_nodes, time limit, capacity
//!   10    pack (bad)  NULL packer, misaligned options, or NULL options (empty packer only)
//!   11    offset       pointer kinds, index (in range, len, len + k, SIZE_MAX)
//!   12    read         pointer kinds, one of len/max_load/peak/is_optimal/nodes/best_peak/
//!                      is_proven_infeasible
//!   13    message      mp_result_message: code, buffer length, buffer/out-pointer mode
//!   14    last error   mp_packer_last_error: buffer length, buffer/out-pointer mode
//!   15    renew        mp_packer_new with bad out-pointers, mp_version, then free the
//!                      packer and make a new one
//! ```
//! Packs never run unbounded: unless the options carry a time limit of at most 2 ms,
//! `MP_PACK_MAX_NODES` is forced on (at most 2000 nodes).

use core::ffi::{CStr, c_char};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{null, null_mut};

use memplan::{
    MP_PACK_CAPACITY, MP_PACK_MAX_NODES, MP_PACK_TIME_LIMIT, mp_packer, mp_packer_add_buffer,
    mp_packer_best_peak, mp_packer_free, mp_packer_is_optimal, mp_packer_is_proven_infeasible,
    mp_packer_last_error, mp_packer_len, mp_packer_max_load, mp_packer_new, mp_packer_nodes,
    mp_packer_offset, mp_packer_peak, mp_packer_pack, mp_result, mp_result_message,
    mp_pack_options, mp_version,
};

/// Most ops decoded from one input.
pub const MAX_OPS: usize = 64;
/// Largest `max_nodes` a pack is given.
const MAX_NODES: u64 = 2000;
/// Largest time limit (ms) that counts as a bound on its own.
const MAX_TIME_MS: u64 = 2;
/// Byte that fills out-parameters and string buffers before a call, to see what was written.
const SENTINEL: u8 = 0xA5;

use memplan_core::fuzzing::reader::Reader;

/// Checks what every call returns: a defined code, and never `MP_RESULT_PANIC` (a panic
/// inside memplan, caught at the boundary).
fn code(rc: mp_result) -> mp_result {
    // The exhaustive match breaks the build when the C API gains a code this file ignores.
    let defined = match rc {
        mp_result::Ok
        | mp_result::NullParameter
        | mp_result::Panic
        | mp_result::InvalidArgument
        | mp_result::ZeroSize
        | mp_result::EmptyLifetime
        | mp_result::BadAlignment
        | mp_result::DuplicateId
        | mp_result::Overflow
        | mp_result::InvalidUtf8
        | mp_result::CapacityExceeded
        | mp_result::NotPacked
        | mp_result::IndexOutOfRange
        | mp_result::Poisoned
        | mp_result::OtherError
        | mp_result::OutOfMemory
        | mp_result::UnknownAddress
        | mp_result::InvalidPlan => rc as u32 <= 17,
    };
    assert!(defined, "undefined mp_result {}", rc as u32);
    assert_ne!(rc, mp_result::Panic, "the C API returned MP_RESULT_PANIC");
    rc
}

/// Where an out-parameter points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutKind {
    /// Into a properly aligned slot.
    Valid,
    /// NULL.
    Null,
    /// One byte into a slot: misaligned for any type with alignment above 1.
    Misaligned,
}

/// The pointers of one call: whether the packer handle is NULL, and where the out-parameter
/// points. Decoded from one byte, mostly all valid.
#[derive(Debug, Clone, Copy)]
struct Ptrs {
    packer_null: bool,
    out: OutKind,
}

impl Ptrs {
    fn decode(b: u8) -> Ptrs {
        let (packer_null, out) = match b % 16 {
            0 => (true, OutKind::Valid),
            1 => (false, OutKind::Null),
            2 => (false, OutKind::Misaligned),
            _ => (false, OutKind::Valid),
        };
        Ptrs { packer_null, out }
    }
}

/// Storage for one out-parameter of type `T` (at most 8 bytes, alignment at most 8), placed as
/// an [`OutKind`] says and filled with [`SENTINEL`] so that writes can be seen.
struct Slot<T> {
    storage: [u64; 3],
    kind: OutKind,
    _t: PhantomData<T>,
}

impl<T> Slot<T> {
    fn new(kind: OutKind) -> Self {
        assert!(size_of::<T>() <= 8 && align_of::<T>() <= 8);
        Slot {
            storage: [u64::from_ne_bytes([SENTINEL; 8]); 3],
            kind,
            _t: PhantomData,
        }
    }

    /// Byte offset of the slot inside `storage`.
    fn offset(&self) -> usize {
        usize::from(self.kind == OutKind::Misaligned)
    }

    /// True when the pointer handed out is misaligned for `T` (never for bytes and `bool`).
    fn misaligned(&self) -> bool {
        self.kind == OutKind::Misaligned && align_of::<T>() > 1
    }

    /// The pointer to pass. Not NULL and in bounds for one `T` unless the kind says NULL.
    fn ptr(&mut self) -> *mut T {
        match self.kind {
            OutKind::Null => null_mut(),
            _ => self
                .storage
                .as_mut_ptr()
                .cast::<u8>()
                .wrapping_add(self.offset())
                .cast::<T>(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.storage.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// The `size_of::<T>()` bytes at the slot.
    fn value_bytes(&self) -> Vec<u8> {
        let start = self.offset();
        self.bytes()[start..start + size_of::<T>()].to_vec()
    }

    fn untouched(&self) -> bool {
        self.bytes().iter().all(|&b| b == SENTINEL)
    }

    /// The code that the pointer kinds alone force, checked before anything else: NULL
    /// packer or out-pointer, then a misaligned out-pointer.
    fn pointer_failure(&self, packer_null: bool) -> Option<mp_result> {
        if packer_null || self.kind == OutKind::Null {
            Some(mp_result::NullParameter)
        } else if self.misaligned() {
            Some(mp_result::InvalidArgument)
        } else {
            None
        }
    }
}

impl Slot<u64> {
    fn value(&self) -> u64 {
        let b: [u8; 8] = self.value_bytes().try_into().expect("8 bytes");
        u64::from_ne_bytes(b)
    }
}

impl Slot<usize> {
    fn value(&self) -> usize {
        let b = self
            .value_bytes()
            .try_into()
            .expect("size_of::<usize>() bytes");
        usize::from_ne_bytes(b)
    }
}

impl Slot<bool> {
    fn value(&self) -> bool {
        match self.value_bytes()[0] {
            0 => false,
            1 => true,
            b => panic!("bool out-parameter holds {b:#x}: not written, or not a bool"),
        }
    }
}

/// A value read through one of the `mp_packer_*` reader functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    U64(u64),
    Usize(usize),
    Bool(bool),
}

impl Value {
    fn expect_u64(self) -> u64 {
        match self {
            Value::U64(v) => v,
            _ => panic!("{self:?} is not a u64"),
        }
    }

    fn expect_bool(self) -> bool {
        match self {
            Value::Bool(v) => v,
            _ => panic!("{self:?} is not a bool"),
        }
    }
}

/// A buffer as the model remembers it.
#[derive(Debug, Clone)]
struct ModelBuffer {
    id: Vec<u8>,
    lower: u64,
    upper: u64,
    size: u64,
    /// The alignment given, 0 read as 1.
    alignment: u64,
}

impl ModelBuffer {
    fn overlaps_in_time(&self, other: &ModelBuffer) -> bool {
        self.lower < other.upper && other.lower < self.upper
    }
}

/// A plan read back after a successful pack.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    offsets: Vec<u64>,
    peak: u64,
    optimal: bool,
    nodes: u64,
}

/// What the last pack left readable.
#[derive(Debug, Clone)]
enum Outcome {
    Unpacked,
    Packed(Plan),
    OverCapacity { best_peak: u64, proven: bool },
}

/// What `mp_packer_last_error` must say.
#[derive(Debug, Clone)]
enum LastError {
    /// Empty: no add/pack yet, or the last one succeeded.
    Empty,
    /// The last add/pack failed: some detail, naming `names` when set, and equal to `text`
    /// once it has been read (reader failures do not change it).
    Failed {
        names: Option<String>,
        text: Option<Vec<u8>>,
    },
}

/// The expected state of the packer.
#[derive(Debug)]
struct Model {
    buffers: Vec<ModelBuffer>,
    /// Sum of `size + alignment - 1` over the buffers (core refuses sums above `u64::MAX`).
    total: u128,
    outcome: Outcome,
    last_error: LastError,
    /// The options and plan of the last deterministic (no time limit) successful pack since
    /// the last successful add: the same options must give the same plan.
    last_plan: Option<(mp_pack_options, Plan)>,
    /// Numbers fresh ids.
    next_id: u32,
}

impl Model {
    fn new() -> Model {
        Model {
            buffers: Vec::new(),
            total: 0,
            outcome: Outcome::Unpacked,
            last_error: LastError::Empty,
            last_plan: None,
            next_id: 0,
        }
    }

    /// The largest total size of buffers alive at one moment, computed naively.
    fn max_load(&self) -> u64 {
        let load = |t: u64| -> u128 {
            self.buffers
                .iter()
                .filter(|b| b.lower <= t && t < b.upper)
                .map(|b| u128::from(b.size))
                .sum()
        };
        let max = self
            .buffers
            .iter()
            .map(|b| load(b.lower))
            .max()
            .unwrap_or(0);
        u64::try_from(max).expect("max load fits u64 (sizes are checked on add)")
    }

    fn failed(&mut self, names: Option<String>) {
        self.last_error = LastError::Failed { names, text: None };
    }
}

/// The live packer handle and its model.
struct Session {
    packer: *mut mp_packer,
    model: Model,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: `packer` is NULL or a live packer from `mp_packer_new`, freed only here and
        // in `renew` (which replaces it right away).
        unsafe { mp_packer_free(self.packer) };
    }
}

impl Session {
    fn new() -> Session {
        let mut packer = null_mut();
        // SAFETY: `&mut packer` is a valid, aligned out-pointer.
        let rc = code(unsafe { mp_packer_new(&mut packer) });
        assert_eq!(rc, mp_result::Ok, "mp_packer_new");
        assert!(!packer.is_null(), "mp_packer_new returned NULL");
        Session {
            packer,
            model: Model::new(),
        }
    }

    fn packer(&self, null: bool) -> *mut mp_packer {
        if null { null_mut() } else { self.packer }
    }

    /// Ops 0-6: `mp_packer_add_buffer`.
    fn add(&mut self, r: &mut Reader<'_>, bad: bool) {
        let id = self.decode_id(r);
        let (lower, upper) = match r.byte() % 16 {
            0..=12 => {
                let lower = u64::from(r.byte() % 32);
                (lower, lower + 1 + u64::from(r.byte() % 12))
            }
            13 => {
                let upper = u64::from(r.byte() % 32);
                (upper + u64::from(r.byte() % 2), upper) // empty or reversed
            }
            14 => (u64::MAX - 1, u64::MAX),
            _ => (0, u64::MAX),
        };
        let size = match r.byte() % 16 {
            0..=8 => 1 + u64::from(r.byte()),
            9..=11 => 1 + u64::from(r.u16()),
            12 => 0,
            13 => 1u64 << (40 + r.byte() % 24),
            14 => u64::MAX - u64::from(r.byte()),
            _ => 1,
        };
        let alignment = match r.byte() % 16 {
            0 => 0,
            1..=8 => 1,
            9..=12 => 1u64 << (r.byte() % 8),
            13 => 1u64 << (r.byte() % 64),
            14 => [3, 6, 12, 1 << 63 | 1, u64::MAX][usize::from(r.byte() % 5)],
            _ => 1,
        };
        // 0 NULL packer, 1 NULL id, 2 NULL out_index, 3 misaligned out_index, 4 huge id_len.
        let problem = if bad { Some(r.byte() % 5) } else { None };

        let mut out = Slot::<usize>::new(match problem {
            Some(2) => OutKind::Null,
            Some(3) => OutKind::Misaligned,
            _ => OutKind::Valid,
        });
        let id_ptr: *const c_char = if problem == Some(1) {
            null()
        } else {
            id.as_ptr().cast()
        };
        let id_len = if problem == Some(4) {
            [isize::MAX as usize + 1, usize::MAX][usize::from(r.byte() % 2)]
        } else {
            id.len()
        };
        let packer = self.packer(problem == Some(0));

        let m = &self.model;
        let alignment1 = alignment.max(1);
        let text = core::str::from_utf8(&id).ok();
        let expected = if packer.is_null() || id_ptr.is_null() || out.kind == OutKind::Null {
            mp_result::NullParameter
        } else if out.misaligned() || id_len > isize::MAX as usize {
            mp_result::InvalidArgument
        } else if text.is_none() {
            mp_result::InvalidUtf8
        } else if size == 0 {
            mp_result::ZeroSize
        } else if upper <= lower {
            mp_result::EmptyLifetime
        } else if !alignment1.is_power_of_two() {
            mp_result::BadAlignment
        } else if m.buffers.iter().any(|b| b.id == id) {
            mp_result::DuplicateId
        } else if m.total + u128::from(size) + u128::from(alignment1 - 1) > u128::from(u64::MAX)
            || m.buffers.len() >= u32::MAX as usize
        {
            mp_result::Overflow
        } else {
            mp_result::Ok
        };

        // SAFETY: `packer` is NULL or the live packer. `id_ptr` is NULL or points to `id`,
        // valid for reads of `id.len()` bytes; `id_len` is `id.len()` except in the one case
        // where it exceeds PTRDIFF_MAX, which the function documents that it refuses
        // (`MP_RESULT_INVALID_ARGUMENT`) before reading `id`. `out.ptr()` is NULL or points into
        // `out.storage` with room for one `usize`; a misaligned one is refused before any write.
        let rc = code(unsafe {
            mp_packer_add_buffer(
                packer,
                id_ptr,
                id_len,
                lower,
                upper,
                size,
                alignment,
                out.ptr(),
            )
        });
        assert_eq!(
            rc,
            expected,
            "mp_packer_add_buffer(id {id:?}, id_len {id_len}, [{lower}, {upper}), size {size}, \
             alignment {alignment}, problem {problem:?}) with {} buffers",
            m.buffers.len()
        );

        if rc != mp_result::Ok {
            assert!(out.untouched(), "out_index written on failure {rc:?}");
            if !packer.is_null() {
                // The packer is unchanged (an earlier plan stays readable); the detail names
                // the id for core's errors, when the id is plain enough to find in it.
                let core_error = matches!(
                    rc,
                    mp_result::ZeroSize
                        | mp_result::EmptyLifetime
                        | mp_result::BadAlignment
                        | mp_result::DuplicateId
                        | mp_result::Overflow
                );
                let names = text
                    .filter(|t| core_error && !t.is_empty() && t.chars().all(char::is_alphanumeric))
                    .map(str::to_owned);
                self.model.failed(names);
            }
            return;
        }
        assert_eq!(
            out.value(),
            self.model.buffers.len(),
            "index of the new buffer"
        );
        let m = &mut self.model;
        m.total += u128::from(size) + u128::from(alignment1 - 1);
        m.buffers.push(ModelBuffer {
            id,
            lower,
            upper,
            size,
            alignment: alignment1,
        });
        m.outcome = Outcome::Unpacked;
        m.last_error = LastError::Empty;
        m.last_plan = None;
    }

    /// The id bytes of an add: fresh ASCII, a duplicate, raw input bytes (possibly invalid
    /// UTF-8 or with NULs), empty, fresh with multi-byte characters, or known-invalid UTF-8.
    fn decode_id(&mut self, r: &mut Reader<'_>) -> Vec<u8> {
        let m = &mut self.model;
        let fresh = |m: &mut Model, prefix: &str| {
            m.next_id += 1;
            format!("{prefix}{}", m.next_id).into_bytes()
        };
        match r.byte() % 16 {
            0..=8 => fresh(m, "b"),
            9 | 10 => {
                let k = usize::from(r.byte());
                match m.buffers.get(k % m.buffers.len().max(1)) {
                    Some(b) => b.id.clone(),
                    None => fresh(m, "b"),
                }
            }
            11 => {
                let len = r.byte() % 6;
                (0..len).map(|_| r.byte()).collect()
            }
            12 => Vec::new(),
            13 | 14 => {
                let c = ["é", "日本", "𝄞", "ßü"][usize::from(r.byte() % 4)];
                fresh(m, &c.repeat(1 + usize::from(r.byte() % 8)))
            }
            _ => {
                let bad: [&[u8]; 5] = [
                    b"\xff",
                    b"x\xc3",
                    b"a\xe6\x97",
                    b"\xed\xa0\x80",
                    b"\xc0\x80",
                ];
                bad[usize::from(r.byte() % 5)].to_vec()
            }
        }
    }

    /// Ops 7-9: `mp_packer_pack` with arbitrary (bounded) options.
    fn pack(&mut self, r: &mut Reader<'_>) {
        let f = r.byte();
        let mut flags = u32::from(f & 7);
        let unknown = if f & 0x80 != 0 {
            1u32 << (3 + r.byte() % 29)
        } else {
            0
        };
        let max_nodes = [0, 1, 16, 200, MAX_NODES][usize::from(r.byte() % 5)];
        let time_limit_ms = [0, 1, MAX_TIME_MS, u64::MAX][usize::from(r.byte() % 4)];
        let max_load = self.model.max_load();
        let total = u64::try_from(self.model.total).expect("total fits u64");
        let capacity = match r.byte() % 8 {
            0 => 0,
            1 => max_load,
            2 => max_load.saturating_add(u64::from(r.byte())),
            3 => max_load.saturating_sub(1),
            4 => total,
            5 => u64::MAX,
            6 => u64::from(r.u16()),
            _ => max_load.saturating_add(max_load / 8),
        };
        let time_bound = flags & MP_PACK_TIME_LIMIT != 0 && time_limit_ms <= MAX_TIME_MS;
        if !time_bound {
            flags |= MP_PACK_MAX_NODES;
        }
        let options = mp_pack_options {
            flags: flags | unknown,
            capacity,
            max_nodes,
            time_limit_ms,
        };
        // SAFETY: the packer is live; `&options` is aligned and valid for one read.
        let rc = code(unsafe { mp_packer_pack(self.packer, &options) });
        self.after_pack(rc, Some(options));
    }

    /// Op 10: `mp_packer_pack` with a NULL packer, misaligned options or NULL options.
    fn pack_bad(&mut self, r: &mut Reader<'_>) {
        match r.byte() % 3 {
            0 => {
                let options = mp_pack_options {
                    flags: MP_PACK_MAX_NODES,
                    max_nodes: 0,
                    ..mp_pack_options::default()
                };
                // SAFETY: NULL is allowed for the packer; `&options` is valid for one read.
                let rc = code(unsafe { mp_packer_pack(null_mut(), &options) });
                assert_eq!(rc, mp_result::NullParameter, "pack on a NULL packer");
            }
            1 => {
                // Valid for reads of a whole `mp_pack_options` from byte 4 on, which is not
                // 8-aligned: the function must refuse it before reading.
                let storage = [0u64; 6];
                let options = storage
                    .as_ptr()
                    .cast::<u8>()
                    .wrapping_add(4)
                    .cast::<mp_pack_options>();
                // SAFETY: the packer is live; `options` is non-NULL and points to
                // `size_of::<mp_pack_options>()` readable bytes inside `storage` (only its
                // alignment is wrong, which the function documents that it refuses).
                let rc = code(unsafe { mp_packer_pack(self.packer, options) });
                assert_eq!(
                    rc,
                    mp_result::InvalidArgument,
                    "pack with misaligned options"
                );
                self.after_pack(rc, None);
            }
            _ => {
                // NULL options mean no limits: only bounded on an empty packer.
                if !self.model.buffers.is_empty() {
                    return;
                }
                // SAFETY: the packer is live; NULL options are allowed (defaults).
                let rc = code(unsafe { mp_packer_pack(self.packer, null()) });
                assert_eq!(
                    rc,
                    mp_result::Ok,
                    "pack of an empty packer with NULL options"
                );
                self.after_pack(rc, Some(mp_pack_options::default()));
            }
        }
    }

    /// Checks a pack's code against the options and updates the model; after
    /// `MP_RESULT_OK`, reads the plan back and verifies it. `options` is `None` when the
    /// function could not read them.
    fn after_pack(&mut self, rc: mp_result, options: Option<mp_pack_options>) {
        let max_load = self.model.max_load();
        let total = u64::try_from(self.model.total).expect("total fits u64");
        let known = MP_PACK_CAPACITY | MP_PACK_MAX_NODES | MP_PACK_TIME_LIMIT;
        let opts = match options {
            Some(o) if o.flags & !known == 0 => o,
            _ => {
                assert_eq!(rc, mp_result::InvalidArgument, "pack with {options:?}");
                self.model.outcome = Outcome::Unpacked;
                self.model.failed(None);
                return;
            }
        };
        let capacity = (opts.flags & MP_PACK_CAPACITY != 0).then_some(opts.capacity);
        match capacity {
            Some(c) if max_load > c => assert_eq!(
                rc,
                mp_result::CapacityExceeded,
                "pack with capacity {c} below the max load {max_load}"
            ),
            // Stacking every buffer (with its alignment slack) fits in `total`; the
            // heuristics never do worse.
            Some(c) if c >= total => assert_eq!(
                rc,
                mp_result::Ok,
                "pack with capacity {c} >= the stacked size {total}"
            ),
            Some(_) => assert!(
                matches!(rc, mp_result::Ok | mp_result::CapacityExceeded),
                "pack returned {rc:?}"
            ),
            None => assert_eq!(rc, mp_result::Ok, "pack without a capacity"),
        }

        if rc == mp_result::CapacityExceeded {
            let c = capacity.expect("CAPACITY_EXCEEDED without a capacity");
            let best_peak = self.read_ok(5).expect_u64();
            let proven = self.read_ok(6).expect_bool();
            assert!(best_peak > c, "best peak {best_peak} fits the capacity {c}");
            assert!(
                best_peak >= max_load,
                "best peak {best_peak} < max load {max_load}"
            );
            assert!(
                max_load <= c || proven,
                "max load {max_load} > capacity {c}, not proven"
            );
            self.model.outcome = Outcome::OverCapacity { best_peak, proven };
            self.model.failed(None);
            return;
        }

        // MP_RESULT_OK: read the plan back and verify it here.
        let plan = self.verify_plan(&opts, capacity);
        let deterministic = opts.flags & MP_PACK_TIME_LIMIT == 0;
        if deterministic {
            if let Some((prev_opts, prev)) = &self.model.last_plan {
                if *prev_opts == opts {
                    assert_eq!(*prev, plan, "the same pack gave another plan");
                }
            }
            self.model.last_plan = Some((opts, plan.clone()));
        }
        self.model.outcome = Outcome::Packed(plan);
        self.model.last_error = LastError::Empty;
    }

    /// Reads every offset and the other values of a fresh plan and checks them independently.
    fn verify_plan(&mut self, opts: &mp_pack_options, capacity: Option<u64>) -> Plan {
        let n = self.model.buffers.len();
        let max_load = self.model.max_load();
        assert_eq!(self.read_ok(0), Value::Usize(n), "mp_packer_len");
        assert_eq!(self.read_ok(1), Value::U64(max_load), "mp_packer_max_load");

        let offsets: Vec<u64> = (0..n).map(|i| self.offset_ok(i)).collect();
        let bufs = &self.model.buffers;
        let mut peak = 0u64;
        for (i, (b, &o)) in bufs.iter().zip(&offsets).enumerate() {
            assert_eq!(
                o % b.alignment,
                0,
                "buffer {i} at {o}, alignment {}",
                b.alignment
            );
            let end = o.checked_add(b.size);
            let end = end.unwrap_or_else(|| panic!("buffer {i}: offset {o} + size overflows"));
            peak = peak.max(end);
        }
        for i in 0..n {
            for j in i + 1..n {
                let (a, b) = (&bufs[i], &bufs[j]);
                let (oa, ob) = (offsets[i], offsets[j]);
                if a.overlaps_in_time(b) {
                    assert!(
                        oa + a.size <= ob || ob + b.size <= oa,
                        "buffers {i} {a:?} at {oa} and {j} {b:?} at {ob} overlap"
                    );
                }
            }
        }

        let reported_peak = self.read_ok(2).expect_u64();
        assert_eq!(reported_peak, peak, "mp_packer_peak vs max(offset + size)");
        assert!(
            peak >= max_load,
            "peak {peak} below the max load {max_load}"
        );
        if let Some(c) = capacity {
            assert!(peak <= c, "peak {peak} above the capacity {c}");
        }
        let optimal = self.read_ok(3).expect_bool();
        assert!(
            optimal || peak != max_load,
            "peak == max load but not optimal"
        );
        let nodes = self.read_ok(4).expect_u64();
        if opts.flags & MP_PACK_MAX_NODES != 0 {
            assert!(
                nodes <= opts.max_nodes,
                "{nodes} nodes, max_nodes {}",
                opts.max_nodes
            );
        }
        if opts.flags & MP_PACK_TIME_LIMIT != 0 && opts.time_limit_ms == 0 {
            assert_eq!(nodes, 0, "time limit 0 means heuristics only");
        }
        assert_eq!(self.read_ok(5), Value::U64(peak), "mp_packer_best_peak");
        assert_eq!(self.read_ok(6), Value::Bool(false), "is_proven_infeasible");

        // Past the end: out of range, not a read past the plan.
        for index in [n, n + 1, usize::MAX] {
            let mut out = Slot::<u64>::new(OutKind::Valid);
            // SAFETY: the packer is live; `out.ptr()` is aligned and valid for one `u64`.
            let rc = code(unsafe { mp_packer_offset(self.packer, index, out.ptr()) });
            assert_eq!(rc, mp_result::IndexOutOfRange, "offset {index} of {n}");
            assert!(out.untouched());
        }
        Plan {
            offsets,
            peak,
            optimal,
            nodes,
        }
    }

    /// `mp_packer_offset(index)` with valid pointers, which must succeed.
    fn offset_ok(&self, index: usize) -> u64 {
        let mut out = Slot::<u64>::new(OutKind::Valid);
        // SAFETY: the packer is live; `out.ptr()` is aligned and valid for one `u64` write.
        let rc = code(unsafe { mp_packer_offset(self.packer, index, out.ptr()) });
        assert_eq!(
            rc,
            mp_result::Ok,
            "mp_packer_offset({index}) after a successful pack"
        );
        out.value()
    }

    /// Op 11: `mp_packer_offset` with any index and pointer kinds.
    fn offset(&mut self, r: &mut Reader<'_>) {
        let ptrs = Ptrs::decode(r.byte());
        let n = self.model.buffers.len();
        let index = match r.byte() % 6 {
            0..=2 => usize::from(r.byte()) % n.max(1),
            3 => n,
            4 => n + 1 + usize::from(r.byte()),
            _ => usize::MAX,
        };
        let mut out = Slot::<u64>::new(ptrs.out);
        let packer = self.packer(ptrs.packer_null);
        // SAFETY: `packer` is NULL or live; `out.ptr()` is NULL or points into `out.storage`
        // with room for one `u64` (a misaligned one is refused before any write).
        let rc = code(unsafe { mp_packer_offset(packer, index, out.ptr()) });
        let expected = match (out.pointer_failure(ptrs.packer_null), &self.model.outcome) {
            (Some(c), _) => Err(c),
            (None, Outcome::Packed(plan)) => match plan.offsets.get(index) {
                Some(&o) => Ok(o),
                None => Err(mp_result::IndexOutOfRange),
            },
            (None, _) if index >= n => {
                // Not documented which of the two comes first.
                assert!(
                    matches!(rc, mp_result::NotPacked | mp_result::IndexOutOfRange),
                    "mp_packer_offset({index}) of {n} unpacked: {rc:?}"
                );
                Err(rc)
            }
            (None, _) => Err(mp_result::NotPacked),
        };
        match expected {
            Ok(o) => {
                assert_eq!(rc, mp_result::Ok, "mp_packer_offset({index}) of {n}");
                assert_eq!(out.value(), o, "offset {index} changed since the pack");
            }
            Err(c) => {
                assert_eq!(rc, c, "mp_packer_offset({index}) of {n}, {ptrs:?}");
                assert!(out.untouched(), "out_offset written on failure");
            }
        }
    }

    /// The value reader `which` must give now, per the model: 0 len, 1 max_load, 2 peak,
    /// 3 is_optimal, 4 nodes, 5 best_peak, 6 is_proven_infeasible.
    fn expected_read(&self, which: u8) -> Result<Value, mp_result> {
        let m = &self.model;
        let not_packed = Err(mp_result::NotPacked);
        match (which, &m.outcome) {
            (0, _) => Ok(Value::Usize(m.buffers.len())),
            (1, _) => Ok(Value::U64(m.max_load())),
            (2, Outcome::Packed(p)) | (5, Outcome::Packed(p)) => Ok(Value::U64(p.peak)),
            (3, Outcome::Packed(p)) => Ok(Value::Bool(p.optimal)),
            (4, Outcome::Packed(p)) => Ok(Value::U64(p.nodes)),
            (5, Outcome::OverCapacity { best_peak, .. }) => Ok(Value::U64(*best_peak)),
            (6, Outcome::Packed(_)) => Ok(Value::Bool(false)),
            (6, Outcome::OverCapacity { proven, .. }) => Ok(Value::Bool(*proven)),
            _ => not_packed,
        }
    }

    /// Calls value reader `which` (see [`Session::expected_read`]) with the given pointers.
    fn call_read(&self, which: u8, ptrs: Ptrs) -> Result<Value, mp_result> {
        let packer = self.packer(ptrs.packer_null);
        macro_rules! call {
            ($f:ident, $t:ty, $v:ident) => {{
                let mut out = Slot::<$t>::new(ptrs.out);
                // SAFETY: `packer` is NULL or live; `out.ptr()` is NULL or points into
                // `out.storage` with room for one value (a misaligned one is refused before
                // any write).
                let rc = code(unsafe { $f(packer, out.ptr()) });
                if let Some(c) = out.pointer_failure(ptrs.packer_null) {
                    assert_eq!(rc, c, "{}({ptrs:?})", stringify!($f));
                }
                if rc == mp_result::Ok {
                    Ok(Value::$v(out.value()))
                } else {
                    assert!(out.untouched(), "{} wrote on failure", stringify!($f));
                    Err(rc)
                }
            }};
        }
        match which {
            0 => call!(mp_packer_len, usize, Usize),
            1 => call!(mp_packer_max_load, u64, U64),
            2 => call!(mp_packer_peak, u64, U64),
            3 => call!(mp_packer_is_optimal, bool, Bool),
            4 => call!(mp_packer_nodes, u64, U64),
            5 => call!(mp_packer_best_peak, u64, U64),
            _ => call!(mp_packer_is_proven_infeasible, bool, Bool),
        }
    }

    /// Reader `which` with valid pointers, which must succeed.
    fn read_ok(&self, which: u8) -> Value {
        let ptrs = Ptrs {
            packer_null: false,
            out: OutKind::Valid,
        };
        self.call_read(which, ptrs)
            .unwrap_or_else(|rc| panic!("reader {which} failed with {rc:?}"))
    }

    /// Op 12: one of the value readers, with any pointer kinds.
    fn read(&mut self, r: &mut Reader<'_>) {
        let ptrs = Ptrs::decode(r.byte());
        let which = r.byte() % 7;
        let got = self.call_read(which, ptrs);
        let pointer_failure = if ptrs.packer_null || ptrs.out == OutKind::Null {
            Some(mp_result::NullParameter)
        } else if ptrs.out == OutKind::Misaligned && !matches!(which, 3 | 6) {
            Some(mp_result::InvalidArgument) // bools (3, 6) have alignment 1
        } else {
            None
        };
        let expected = match pointer_failure {
            Some(c) => Err(c),
            None => self.expected_read(which),
        };
        assert_eq!(
            got, expected,
            "reader {which} with {ptrs:?}, {:?}",
            self.model.outcome
        );
    }

    /// Op 13: `mp_result_message` for any code, into buffers of any length.
    fn message(r: &mut Reader<'_>) {
        let code_arg = match r.byte() % 20 {
            c @ 0..=14 => u32::from(c),
            15 => 15,
            16 => u32::MAX,
            17 => 1 << 31,
            _ => r.u32(),
        };
        let len = usize::from(r.byte() % 80);
        let mode = r.byte();
        let full = c_string_full(|buf, len, out_n| {
            // SAFETY: `buf` is NULL with `len` 0 or valid for `len` byte writes, `out_n` valid
            // for one `usize` write (both from `c_string_full`).
            unsafe { mp_result_message(code_arg, buf, len, out_n) }
        });
        assert!(!full.is_empty(), "empty message for code {code_arg}");
        c_string_case(mode, len, &full, false, |buf, len, out_n| {
            // SAFETY: `c_string_case` passes NULL or a buffer valid for `len` byte writes, and
            // NULL or a pointer into its own storage for `out_n` (refused if misaligned).
            unsafe { mp_result_message(code_arg, buf, len, out_n) }
        });
    }

    /// Op 14: `mp_packer_last_error` into buffers of any length, checked against the model.
    fn last_error(&mut self, r: &mut Reader<'_>) {
        let len = usize::from(r.byte() % 80);
        let mode = r.byte();
        let packer = self.packer;
        let full = c_string_full(|buf, len, out_n| {
            // SAFETY: the packer is live; `buf` is NULL with `len` 0 or valid for `len` byte
            // writes, `out_n` valid for one `usize` write.
            unsafe { mp_packer_last_error(packer, buf, len, out_n) }
        });
        match &mut self.model.last_error {
            LastError::Empty => assert!(
                full.is_empty(),
                "last error {:?} after a success",
                String::from_utf8_lossy(&full)
            ),
            LastError::Failed { names, text } => {
                assert!(!full.is_empty(), "no last error after a failure");
                if let Some(id) = names {
                    let s = core::str::from_utf8(&full).expect("UTF-8 (checked)");
                    assert!(
                        s.contains(id.as_str()),
                        "last error {s:?} does not name {id:?}"
                    );
                }
                match text {
                    Some(t) => assert_eq!(*t, full, "last error changed without an add/pack"),
                    None => *text = Some(full.clone()),
                }
            }
        }
        c_string_case(mode, len, &full, true, |buf, len, out_n| {
            let packer = if mode % 8 == 7 { null() } else { packer };
            // SAFETY: `packer` is NULL or live; `c_string_case` passes NULL or a buffer valid
            // for `len` byte writes, and NULL or a pointer into its own storage for `out_n`
            // (refused if misaligned).
            unsafe { mp_packer_last_error(packer, buf, len, out_n) }
        });
    }

    /// Op 15: `mp_packer_new` with bad out-pointers, `mp_version`, then a fresh packer.
    fn renew(&mut self, r: &mut Reader<'_>) {
        match r.byte() % 3 {
            0 => {
                // SAFETY: NULL is allowed (refused with MP_RESULT_NULL_PARAMETER).
                let rc = code(unsafe { mp_packer_new(null_mut()) });
                assert_eq!(rc, mp_result::NullParameter, "mp_packer_new(NULL)");
            }
            1 => {
                let mut out = Slot::<*mut mp_packer>::new(OutKind::Misaligned);
                // SAFETY: `out.ptr()` points into `out.storage` with room for one pointer; it
                // is misaligned, which the function refuses before writing.
                let rc = code(unsafe { mp_packer_new(out.ptr()) });
                assert_eq!(rc, mp_result::InvalidArgument, "mp_packer_new(misaligned)");
                assert!(out.untouched(), "misaligned out_packer written");
            }
            _ => {}
        }
        // SAFETY: NULL is a documented no-op.
        unsafe { mp_packer_free(null_mut()) };
        // SAFETY: takes no arguments.
        let version = unsafe { mp_version() };
        assert!(!version.is_null(), "mp_version returned NULL");
        // SAFETY: `mp_version` returns a static NUL-terminated string (checked non-NULL).
        let version = unsafe { CStr::from_ptr(version) }.to_str();
        let parts: Vec<&str> = version.expect("UTF-8 version").split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "mp_version {parts:?} is not MAJOR.MINOR.PATCH"
        );
        let fresh = Session::new();
        // The old packer is dropped (freed) here.
        *self = fresh;
    }
}

/// Calls a string function with `buf = NULL, len = 0` to size it, then with room for the
/// whole text, and returns the text (checked: NUL-terminated, no interior NUL, UTF-8, length
/// as reported).
fn c_string_full(mut f: impl FnMut(*mut c_char, usize, *mut usize) -> mp_result) -> Vec<u8> {
    let mut n = usize::MAX;
    assert_eq!(code(f(null_mut(), 0, &mut n)), mp_result::Ok, "sizing call");
    assert!(n < 1 << 20, "message length {n}");
    let mut buf = vec![SENTINEL; n + 1];
    let mut n2 = usize::MAX;
    assert_eq!(
        code(f(buf.as_mut_ptr().cast(), n + 1, &mut n2)),
        mp_result::Ok
    );
    assert_eq!(n2, n, "full length differs between calls");
    assert_eq!(buf[n], 0, "no NUL after the full text");
    buf.truncate(n);
    assert!(!buf.contains(&0), "interior NUL in {buf:?}");
    assert!(core::str::from_utf8(&buf).is_ok(), "not UTF-8: {buf:?}");
    buf
}

/// Calls a string function (`mp_result_message` or `mp_packer_last_error`) once as `mode`
/// says: a sizing call, a NULL buffer with `len > 0`, a NULL or misaligned `out_n`, a NULL
/// packer (mode 7, `has_packer` only), or a buffer of `len` bytes; then checks the result
/// against the documented copy rule, given the full text `full`.
fn c_string_case(
    mode: u8,
    len: usize,
    full: &[u8],
    has_packer: bool,
    mut f: impl FnMut(*mut c_char, usize, *mut usize) -> mp_result,
) {
    const GUARD: usize = 16;
    let mut storage = vec![SENTINEL; len + GUARD];
    let mut out_n = Slot::<usize>::new(OutKind::Valid);
    let (buf, len, expected): (*mut c_char, usize, mp_result) = match mode % 8 {
        0 => (null_mut(), 0, mp_result::Ok),
        1 => (null_mut(), len.max(1), mp_result::NullParameter),
        2 => {
            out_n = Slot::new(OutKind::Null);
            (storage.as_mut_ptr().cast(), len, mp_result::NullParameter)
        }
        3 => {
            out_n = Slot::new(OutKind::Misaligned);
            (storage.as_mut_ptr().cast(), len, mp_result::InvalidArgument)
        }
        7 if has_packer => (storage.as_mut_ptr().cast(), len, mp_result::NullParameter),
        _ => (storage.as_mut_ptr().cast(), len, mp_result::Ok),
    };
    let rc = code(f(buf, len, out_n.ptr()));
    assert_eq!(rc, expected, "string call, mode {}, len {len}", mode % 8);
    if rc != mp_result::Ok {
        assert!(out_n.untouched(), "out_n written on failure");
        assert!(
            storage.iter().all(|&b| b == SENTINEL),
            "buf written on failure"
        );
        return;
    }
    let n = out_n.value();
    assert_eq!(n, full.len(), "*out_n is not the full length");
    if buf.is_null() || len == 0 {
        assert!(storage.iter().all(|&b| b == SENTINEL), "written with len 0");
        return;
    }
    // The longest prefix of at most `len - 1` bytes that ends on a character boundary.
    let text = core::str::from_utf8(full).expect("UTF-8 (checked)");
    let mut k = n.min(len - 1);
    while !text.is_char_boundary(k) {
        k -= 1;
    }
    assert_eq!(&storage[..k], &full[..k], "copied prefix, len {len}");
    assert_eq!(
        storage[k], 0,
        "no NUL after {k} bytes (len {len}, full {n})"
    );
    assert!(
        storage[len..].iter().all(|&b| b == SENTINEL),
        "written past len {len}"
    );
    // Truncated exactly when `*out_n >= len`.
    assert_eq!(k < n, n >= len, "truncation rule: k {k}, n {n}, len {len}");
}

/// Decodes `data` into C API calls, runs them and checks everything that must hold. Panics
/// on any violation; this is the body of the `capi` fuzz target.
pub fn check(data: &[u8]) {
    let mut r = Reader(data);
    let mut s = Session::new();
    let mut ops = 0;
    while !r.0.is_empty() && ops < MAX_OPS {
        ops += 1;
        match r.byte() % 16 {
            0..=5 => s.add(&mut r, false),
            6 => s.add(&mut r, true),
            7..=9 => s.pack(&mut r),
            10 => s.pack_bad(&mut r),
            11 => s.offset(&mut r),
            12 => s.read(&mut r),
            13 => Session::message(&mut r),
            14 => s.last_error(&mut r),
            _ => s.renew(&mut r),
        }
    }
    // Whatever state the ops left, the readers still agree with the model.
    for which in 0..7 {
        let ptrs = Ptrs {
            packer_null: false,
            out: OutKind::Valid,
        };
        assert_eq!(
            s.call_read(which, ptrs),
            s.expected_read(which),
            "final reader {which}"
        );
    }
}
