//! The `capi` fuzz case: bytes → a sequence of calls into memplan's C API → checks against a
//! model of the packer.
//!
//! Behind the `fuzzing` feature (like `memplan_core::fuzzing`): the `capi` fuzz target
//! (`fuzz/fuzz_targets/capi.rs`) and `tests/tests/fuzz_capi.rs` (saved inputs and
//! pseudo-random bytes under `cargo test`) both run [`check`].
//!
//! The exported `mp_*` functions are called from Rust exactly as C calls them: raw pointers,
//! NULL and misaligned ones included. Nothing here reaches into the crate's internals: only
//! the exported C API, `std`, and core's fuzz byte reader.
//!
//! Files: `out_param.rs` (out-parameters and what was written), `model.rs` (the expected
//! packer), `packer.rs` (the packer ops), `message.rs` (the string ops).
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
//!   7-9   pack         flags (bit 7: add an unknown bit), max_nodes, time limit, capacity
//!   10    pack (bad)   NULL packer, misaligned options, or NULL options (empty packer only)
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

mod message;
mod model;
mod out_param;
mod packer;

use core::ffi::{CStr, c_char};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::{null, null_mut};

use crate::{
    MP_PACK_CAPACITY, MP_PACK_MAX_NODES, MP_PACK_TIME_LIMIT, mp_pack_options, mp_packer,
    mp_packer_add_buffer, mp_packer_best_peak, mp_packer_free, mp_packer_is_optimal,
    mp_packer_is_proven_infeasible, mp_packer_last_error, mp_packer_len, mp_packer_max_load,
    mp_packer_new, mp_packer_nodes, mp_packer_offset, mp_packer_pack, mp_packer_peak, mp_result,
    mp_result_message, mp_version,
};
use memplan_core::fuzzing::reader::Reader;

use model::*;
use out_param::*;
use packer::Session;

/// Most ops decoded from one input.
pub const MAX_OPS: usize = 64;
/// Largest `max_nodes` a pack is given.
const MAX_NODES: u64 = 2000;
/// Largest time limit (ms) that counts as a bound on its own.
const MAX_TIME_MS: u64 = 2;
/// Byte that fills out-parameters and string buffers before a call, to see what was written.
const SENTINEL: u8 = 0xA5;

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
