//! Unit tests that call the exported functions directly, as C would, NULL paths included.

use core::ffi::c_char;
use std::ptr::{null, null_mut};

use super::*;
use crate::error::mp_result_message;
use crate::version::mp_version;

/// MiniMalloc's `input.12.csv`: optimal peak 12, equal to the max load.
const INPUT_12: [(&str, u64, u64, u64); 5] = [
    ("b1", 0, 3, 4),
    ("b2", 3, 9, 4),
    ("b3", 0, 9, 4),
    ("b4", 9, 21, 4),
    ("b5", 0, 21, 4),
];

/// Owns a packer handle for a test and frees it on drop.
struct Handle(*mut mp_packer);

impl Handle {
    fn new() -> Handle {
        let mut p = null_mut();
        // SAFETY: `&mut p` is a valid out-pointer.
        assert_eq!(unsafe { mp_packer_new(&mut p) }, mp_result::Ok);
        assert!(!p.is_null());
        Handle(p)
    }

    fn add_bytes(
        &self,
        id: &[u8],
        lower: u64,
        upper: u64,
        size: u64,
        alignment: u64,
    ) -> Result<usize, mp_result> {
        let mut index = usize::MAX;
        // SAFETY: the handle is live; `id` is valid for `id.len()` bytes; `index` is writable.
        let rc = unsafe {
            mp_packer_add_buffer(
                self.0,
                id.as_ptr().cast(),
                id.len(),
                lower,
                upper,
                size,
                alignment,
                &mut index,
            )
        };
        if rc == mp_result::Ok {
            Ok(index)
        } else {
            assert_eq!(index, usize::MAX, "out_index written on failure");
            Err(rc)
        }
    }

    fn add(
        &self,
        id: &str,
        lower: u64,
        upper: u64,
        size: u64,
        alignment: u64,
    ) -> Result<usize, mp_result> {
        self.add_bytes(id.as_bytes(), lower, upper, size, alignment)
    }

    fn add_input_12(&self) {
        for (i, (id, lower, upper, size)) in INPUT_12.into_iter().enumerate() {
            assert_eq!(self.add(id, lower, upper, size, 0), Ok(i));
        }
    }

    fn pack(&self, options: Option<mp_pack_options>) -> mp_result {
        let options_ptr = options.as_ref().map_or(null(), |o| o as *const _);
        // SAFETY: the handle is live; `options_ptr` is NULL or points to a local.
        unsafe { mp_packer_pack(self.0, options_ptr) }
    }

    /// Calls a reader with a sentinel in the out-param and checks it is untouched on failure.
    fn read<T: Copy + PartialEq + core::fmt::Debug>(
        &self,
        sentinel: T,
        f: unsafe extern "C" fn(*const mp_packer, *mut T) -> mp_result,
    ) -> Result<T, mp_result> {
        let mut out = sentinel;
        // SAFETY: the handle is live and `out` is writable.
        let rc = unsafe { f(self.0, &mut out) };
        if rc == mp_result::Ok {
            Ok(out)
        } else {
            assert_eq!(out, sentinel, "out-param written on failure");
            Err(rc)
        }
    }

    fn len(&self) -> Result<usize, mp_result> {
        self.read(usize::MAX, mp_packer_len)
    }
    fn peak(&self) -> Result<u64, mp_result> {
        self.read(u64::MAX, mp_packer_peak)
    }
    fn max_load(&self) -> Result<u64, mp_result> {
        self.read(u64::MAX, mp_packer_max_load)
    }
    fn best_peak(&self) -> Result<u64, mp_result> {
        self.read(u64::MAX, mp_packer_best_peak)
    }
    fn nodes(&self) -> Result<u64, mp_result> {
        self.read(u64::MAX, mp_packer_nodes)
    }
    fn is_optimal(&self) -> Result<bool, mp_result> {
        // `bool` has no spare sentinel; check both values.
        let a = self.read(false, mp_packer_is_optimal);
        let b = self.read(true, mp_packer_is_optimal);
        assert_eq!(a, b);
        a
    }
    fn is_proven_infeasible(&self) -> Result<bool, mp_result> {
        let a = self.read(false, mp_packer_is_proven_infeasible);
        let b = self.read(true, mp_packer_is_proven_infeasible);
        assert_eq!(a, b);
        a
    }

    fn offset(&self, index: usize) -> Result<u64, mp_result> {
        let mut out = u64::MAX;
        // SAFETY: the handle is live and `out` is writable.
        let rc = unsafe { mp_packer_offset(self.0, index, &mut out) };
        if rc == mp_result::Ok {
            Ok(out)
        } else {
            assert_eq!(out, u64::MAX, "out-param written on failure");
            Err(rc)
        }
    }

    fn last_error(&self) -> String {
        let mut n = 0;
        // SAFETY: the handle is live; a NULL buffer with length 0 is allowed.
        let rc = unsafe { mp_packer_last_error(self.0, null_mut(), 0, &mut n) };
        assert_eq!(rc, mp_result::Ok);
        let mut buf = vec![0xAAu8; n + 1];
        let mut m = 0;
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let rc =
            unsafe { mp_packer_last_error(self.0, buf.as_mut_ptr().cast(), buf.len(), &mut m) };
        assert_eq!(rc, mp_result::Ok);
        assert_eq!(m, n);
        assert_eq!(buf[n], 0, "not NUL-terminated");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `mp_packer_new` and is freed only here.
        unsafe { mp_packer_free(self.0) };
    }
}

/// `mp_result_message` into a buffer of `len` bytes: (return code, text, *out_n).
fn message(code: u32, len: usize) -> (mp_result, Vec<u8>, usize) {
    let mut buf = vec![0xAAu8; len];
    let mut n = usize::MAX;
    let ptr = if len == 0 {
        null_mut()
    } else {
        buf.as_mut_ptr().cast::<c_char>()
    };
    // SAFETY: `ptr` is NULL with `len == 0`, or valid for `len` bytes.
    let rc = unsafe { mp_result_message(code, ptr, len, &mut n) };
    (rc, buf, n)
}

#[test]
fn new_and_free_null_rules() {
    // SAFETY: NULL out-pointer is the case under test; the function checks it.
    let rc = unsafe { mp_packer_new(null_mut()) };
    assert_eq!(rc, mp_result::NullParameter);
    // SAFETY: freeing NULL is a documented no-op.
    unsafe { mp_packer_free(null_mut()) };
    let _ = Handle::new();
}

#[test]
fn plans_input_12_optimally() {
    let p = Handle::new();
    p.add_input_12();
    assert_eq!(p.len(), Ok(5));
    assert_eq!(p.max_load(), Ok(12));
    assert_eq!(p.pack(None), mp_result::Ok);
    assert_eq!(p.peak(), Ok(12));
    assert_eq!(p.best_peak(), Ok(12));
    assert_eq!(p.is_optimal(), Ok(true));
    assert_eq!(p.is_proven_infeasible(), Ok(false));
    assert!(p.nodes().is_ok());
    assert_eq!(p.last_error(), "");

    let input: Vec<Buffer> = INPUT_12
        .iter()
        .map(|&(id, l, u, s)| Buffer::new(id, l, u, s))
        .collect();
    let plan: Vec<_> = input
        .iter()
        .enumerate()
        .map(|(i, b)| memplan_core::PlacedBuffer {
            id: b.id.clone(),
            lower: b.lower,
            upper: b.upper,
            size: b.size,
            offset: p.offset(i).unwrap(),
        })
        .collect();
    memplan_core::check::verify(&input, &plan, Some(12)).unwrap();
    assert_eq!(p.offset(5), Err(mp_result::IndexOutOfRange));
    assert_eq!(p.offset(usize::MAX), Err(mp_result::IndexOutOfRange));
}

#[test]
fn each_validation_error_has_its_code_and_names_the_id() {
    let p = Handle::new();
    assert_eq!(p.add("ok", 0, 1, 1, 0), Ok(0));
    let cases: [(&str, u64, u64, u64, u64, mp_result); 6] = [
        ("zero", 0, 1, 0, 0, mp_result::ZeroSize),
        ("empty", 5, 5, 1, 0, mp_result::EmptyLifetime),
        ("reversed", 6, 5, 1, 0, mp_result::EmptyLifetime),
        ("align3", 0, 1, 1, 3, mp_result::BadAlignment),
        ("ok", 0, 1, 1, 0, mp_result::DuplicateId),
        ("huge", 0, 1, u64::MAX, 0, mp_result::Overflow),
    ];
    for (id, lower, upper, size, alignment, code) in cases {
        assert_eq!(p.add(id, lower, upper, size, alignment), Err(code), "{id}");
        let detail = p.last_error();
        assert!(detail.contains(&format!("{id:?}")), "{id}: {detail}");
        assert_eq!(p.len(), Ok(1), "packer changed by a failed add");
    }
    // A success clears the detail.
    assert_eq!(p.add("ok2", 0, 1, 1, 0), Ok(1));
    assert_eq!(p.last_error(), "");
}

#[test]
fn alignment_zero_means_one_and_alignment_is_respected() {
    let p = Handle::new();
    assert_eq!(p.add("a", 0, 2, 3, 0), Ok(0));
    assert_eq!(p.add("b", 0, 2, 8, 8), Ok(1));
    assert_eq!(p.add("c", 1, 3, 5, 1), Ok(2));
    assert_eq!(p.pack(None), mp_result::Ok);
    assert_eq!(p.offset(1).unwrap() % 8, 0);
}

#[test]
fn ids_are_utf8_byte_strings() {
    let p = Handle::new();
    assert_eq!(
        p.add_bytes(b"\xff", 0, 1, 1, 0),
        Err(mp_result::InvalidUtf8)
    );
    assert!(p.last_error().contains("offset 0"), "{}", p.last_error());
    assert_eq!(
        p.add_bytes(b"ok\xc3", 0, 1, 1, 0),
        Err(mp_result::InvalidUtf8)
    );
    assert!(p.last_error().contains("offset 2"), "{}", p.last_error());
    // Non-ASCII and embedded NULs are fine; the length, not a NUL, ends the id.
    assert_eq!(p.add_bytes("ünïcode".as_bytes(), 0, 1, 1, 0), Ok(0));
    assert_eq!(p.add_bytes(b"a\0b", 0, 1, 1, 0), Ok(1));
    assert_eq!(p.add_bytes(b"a\0c", 0, 1, 1, 0), Ok(2));
    assert_eq!(
        p.add_bytes(b"a\0b", 0, 1, 1, 0),
        Err(mp_result::DuplicateId)
    );
    // Only the first `id_len` bytes count.
    let mut index = 0;
    // SAFETY: the handle is live; the id is valid for 1 byte (of 3); `index` is writable.
    let rc = unsafe { mp_packer_add_buffer(p.0, c"xyz".as_ptr(), 1, 0, 1, 1, 0, &mut index) };
    assert_eq!((rc, index), (mp_result::Ok, 3));
    assert_eq!(p.add("x", 0, 1, 1, 0), Err(mp_result::DuplicateId));
    // The empty id is an id like any other.
    assert_eq!(p.add("", 0, 1, 1, 0), Ok(4));
}

#[test]
fn add_buffer_null_and_bad_pointers() {
    let p = Handle::new();
    let mut index = 0usize;
    // SAFETY: every pointer below is NULL, valid, or (the id_len and misaligned cases)
    // rejected before it is used.
    unsafe {
        assert_eq!(
            mp_packer_add_buffer(null_mut(), c"a".as_ptr(), 1, 0, 1, 1, 0, &mut index),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_add_buffer(p.0, null(), 0, 0, 1, 1, 0, &mut index),
            mp_result::NullParameter
        );
        assert!(p.last_error().contains("id is NULL"));
        assert_eq!(
            mp_packer_add_buffer(p.0, c"a".as_ptr(), 1, 0, 1, 1, 0, null_mut()),
            mp_result::NullParameter
        );
        assert!(p.last_error().contains("out_index"));
        assert_eq!(
            mp_packer_add_buffer(p.0, c"a".as_ptr(), usize::MAX, 0, 1, 1, 0, &mut index),
            mp_result::InvalidArgument
        );
        let mut words = [0usize; 2];
        let misaligned = words.as_mut_ptr().cast::<u8>().add(1).cast::<usize>();
        assert_eq!(
            mp_packer_add_buffer(p.0, c"a".as_ptr(), 1, 0, 1, 1, 0, misaligned),
            mp_result::InvalidArgument
        );
        assert_eq!(words, [0, 0]);
    }
    assert_eq!(p.len(), Ok(0));
}

/// `mp_packer_offset` at index 0, with the signature of the other readers.
unsafe extern "C" fn offset_0(p: *const mp_packer, out: *mut u64) -> mp_result {
    // SAFETY: forwards the caller's pointers under the same contract.
    unsafe { mp_packer_offset(p, 0, out) }
}

#[test]
fn readers_null_and_misaligned_pointers() {
    let p = Handle::new();
    p.add_input_12();
    assert_eq!(p.pack(None), mp_result::Ok);
    let mut words = [0u64; 2];
    let misaligned = words
        .as_mut_ptr()
        .cast::<u8>()
        .wrapping_add(1)
        .cast::<u64>();
    let readers: [unsafe extern "C" fn(*const mp_packer, *mut u64) -> mp_result; 5] = [
        mp_packer_peak,
        mp_packer_max_load,
        mp_packer_best_peak,
        mp_packer_nodes,
        offset_0,
    ];
    for f in readers {
        let mut out = 0u64;
        // SAFETY: each pointer is NULL, valid, or misaligned (rejected before use).
        unsafe {
            assert_eq!(f(null(), &mut out), mp_result::NullParameter);
            assert_eq!(f(p.0, null_mut()), mp_result::NullParameter);
            assert_eq!(f(p.0, misaligned), mp_result::InvalidArgument);
        }
    }
    assert_eq!(words, [0, 0]);
    let mut b = false;
    let mut n = 0usize;
    // SAFETY: as above.
    unsafe {
        assert_eq!(mp_packer_len(null(), &mut n), mp_result::NullParameter);
        assert_eq!(mp_packer_len(p.0, null_mut()), mp_result::NullParameter);
        assert_eq!(
            mp_packer_is_optimal(null(), &mut b),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_is_optimal(p.0, null_mut()),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_is_proven_infeasible(null(), &mut b),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_is_proven_infeasible(p.0, null_mut()),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_last_error(null(), null_mut(), 0, &mut n),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_last_error(p.0, null_mut(), 0, null_mut()),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_packer_last_error(p.0, null_mut(), 1, &mut n),
            mp_result::NullParameter
        );
        assert_eq!(mp_packer_pack(null_mut(), null()), mp_result::NullParameter);
    }
}

#[test]
fn reading_before_a_pack_and_after_an_add_is_not_packed() {
    let p = Handle::new();
    let unpacked = |p: &Handle| {
        assert_eq!(p.offset(0), Err(mp_result::NotPacked));
        assert_eq!(p.peak(), Err(mp_result::NotPacked));
        assert_eq!(p.best_peak(), Err(mp_result::NotPacked));
        assert_eq!(p.nodes(), Err(mp_result::NotPacked));
        assert_eq!(p.is_optimal(), Err(mp_result::NotPacked));
        assert_eq!(p.is_proven_infeasible(), Err(mp_result::NotPacked));
    };
    unpacked(&p);
    assert_eq!(p.len(), Ok(0));
    assert_eq!(p.max_load(), Ok(0));
    p.add_input_12();
    unpacked(&p);
    assert_eq!(p.max_load(), Ok(12));
    assert_eq!(p.pack(None), mp_result::Ok);
    assert_eq!(p.peak(), Ok(12));
    // A failed add keeps the plan (the buffers did not change)...
    assert_eq!(p.add("b1", 0, 1, 1, 0), Err(mp_result::DuplicateId));
    assert_eq!(p.peak(), Ok(12));
    // ...a successful one discards it.
    assert_eq!(p.add("b6", 21, 22, 1, 0), Ok(5));
    unpacked(&p);
    assert_eq!(p.pack(None), mp_result::Ok);
    assert_eq!(p.len(), Ok(6));
    assert!(p.offset(5).is_ok());
}

#[test]
fn empty_packer_packs_to_peak_zero() {
    let p = Handle::new();
    assert_eq!(p.pack(None), mp_result::Ok);
    assert_eq!(p.peak(), Ok(0));
    assert_eq!(p.offset(0), Err(mp_result::IndexOutOfRange));
    let cap0 = mp_pack_options {
        flags: MP_PACK_CAPACITY,
        ..Default::default()
    };
    assert_eq!(p.pack(Some(cap0)), mp_result::Ok);
}

#[test]
fn capacity_exceeded_keeps_the_best_peak_readable() {
    let p = Handle::new();
    p.add_input_12();
    let cap = |capacity| mp_pack_options {
        flags: MP_PACK_CAPACITY,
        capacity,
        ..Default::default()
    };
    assert_eq!(p.pack(Some(cap(8))), mp_result::CapacityExceeded);
    assert_eq!(p.best_peak(), Ok(12));
    assert_eq!(p.is_proven_infeasible(), Ok(true));
    assert_eq!(p.peak(), Err(mp_result::NotPacked));
    assert_eq!(p.offset(0), Err(mp_result::NotPacked));
    assert_eq!(p.is_optimal(), Err(mp_result::NotPacked));
    let detail = p.last_error();
    assert!(
        detail.contains("8 bytes") && detail.contains("12"),
        "{detail}"
    );

    assert_eq!(p.pack(Some(cap(12))), mp_result::Ok);
    assert_eq!(p.peak(), Ok(12));
    assert_eq!(p.last_error(), "");

    // An unproven miss (search limits ran out) reads as not proven.
    // SAFETY: the handle is live and not used elsewhere.
    let packer = unsafe { crate::ffi::try_from_mut(p.0) }.unwrap();
    packer.outcome = Outcome::OverCapacity {
        best_peak: 13,
        proven: false,
    };
    assert_eq!(p.is_proven_infeasible(), Ok(false));
    assert_eq!(p.best_peak(), Ok(13));
}

#[test]
fn pack_options_limits_and_flags() {
    let p = Handle::new();
    p.add_input_12();
    for options in [
        mp_pack_options::default(),
        mp_pack_options {
            flags: MP_PACK_MAX_NODES,
            max_nodes: 0,
            ..Default::default()
        },
        mp_pack_options {
            flags: MP_PACK_TIME_LIMIT,
            time_limit_ms: 0,
            ..Default::default()
        },
        mp_pack_options {
            flags: MP_PACK_TIME_LIMIT | MP_PACK_MAX_NODES,
            time_limit_ms: u64::MAX, // too far for `Instant`: no limit, no panic
            max_nodes: u64::MAX,
            ..Default::default()
        },
    ] {
        assert_eq!(p.pack(Some(options)), mp_result::Ok, "{options:?}");
        let peak = p.peak().unwrap();
        assert!((12..=20).contains(&peak), "{peak}");
    }
    let bad = mp_pack_options {
        flags: 1 << 7 | MP_PACK_CAPACITY,
        ..Default::default()
    };
    assert_eq!(p.pack(Some(bad)), mp_result::InvalidArgument);
    assert!(p.last_error().contains("0x80"), "{}", p.last_error());
    assert_eq!(
        p.peak(),
        Err(mp_result::NotPacked),
        "a failed pack discards the plan"
    );

    let mut words = [0u64; 6];
    let misaligned = words
        .as_mut_ptr()
        .cast::<u8>()
        .wrapping_add(4)
        .cast::<mp_pack_options>();
    // SAFETY: the misaligned pointer is rejected before it is read.
    let rc = unsafe { mp_packer_pack(p.0, misaligned) };
    assert_eq!(rc, mp_result::InvalidArgument);
}

#[test]
fn pack_options_layout_is_pinned() {
    assert_eq!(size_of::<mp_pack_options>(), 32);
    assert_eq!(align_of::<mp_pack_options>(), 8);
    assert_eq!(core::mem::offset_of!(mp_pack_options, flags), 0);
    assert_eq!(core::mem::offset_of!(mp_pack_options, capacity), 8);
    assert_eq!(core::mem::offset_of!(mp_pack_options, max_nodes), 16);
    assert_eq!(core::mem::offset_of!(mp_pack_options, time_limit_ms), 24);
    assert_eq!(size_of::<mp_result>(), 4);
}

#[test]
fn caught_panic_poisons_the_packer() {
    let p = Handle::new();
    p.add_input_12();
    assert_eq!(p.pack(None), mp_result::Ok);
    crate::ffi::PANIC_NEXT_MUTATION.with(|f| f.set(true));
    assert_eq!(p.add("x", 0, 1, 1, 0), Err(mp_result::Panic));
    assert!(
        p.last_error().contains("test-injected panic"),
        "{}",
        p.last_error()
    );
    assert_eq!(p.add("y", 0, 1, 1, 0), Err(mp_result::Poisoned));
    assert_eq!(p.pack(None), mp_result::Poisoned);
    assert_eq!(p.len(), Err(mp_result::Poisoned));
    assert_eq!(p.max_load(), Err(mp_result::Poisoned));
    assert_eq!(p.peak(), Err(mp_result::Poisoned));
    assert_eq!(p.offset(0), Err(mp_result::Poisoned));
    assert_eq!(p.is_optimal(), Err(mp_result::Poisoned));
    // The message survives and the handle is still freed normally (by `Drop`).
    assert!(p.last_error().contains("poisoned"));
    // Other packers are unaffected.
    let q = Handle::new();
    assert_eq!(q.add("x", 0, 1, 1, 0), Ok(0));
}

#[test]
fn result_codes_are_stable() {
    let expected = [
        (mp_result::Ok, 0),
        (mp_result::NullParameter, 1),
        (mp_result::Panic, 2),
        (mp_result::InvalidArgument, 3),
        (mp_result::ZeroSize, 4),
        (mp_result::EmptyLifetime, 5),
        (mp_result::BadAlignment, 6),
        (mp_result::DuplicateId, 7),
        (mp_result::Overflow, 8),
        (mp_result::InvalidUtf8, 9),
        (mp_result::CapacityExceeded, 10),
        (mp_result::NotPacked, 11),
        (mp_result::IndexOutOfRange, 12),
        (mp_result::Poisoned, 13),
        (mp_result::OtherError, 14),
        (mp_result::OutOfMemory, 15),
        (mp_result::UnknownAddress, 16),
        (mp_result::InvalidPlan, 17),
    ];
    assert_eq!(expected.len(), mp_result::ALL.len());
    for ((code, value), listed) in expected.into_iter().zip(mp_result::ALL) {
        assert_eq!(code as u32, value);
        assert_eq!(code, listed);
        assert_eq!(mp_result::from_u32(value), Some(code));
    }
    assert_eq!(mp_result::from_u32(18), None);
}

#[test]
fn result_message_full_and_truncated() {
    let mut seen = std::collections::HashSet::new();
    for code in mp_result::ALL {
        let (rc, buf, n) = message(code as u32, 200);
        assert_eq!(rc, mp_result::Ok);
        assert!(n > 0 && n < 200);
        assert_eq!(&buf[..n], code.message().as_bytes());
        assert_eq!(buf[n], 0);
        assert!(seen.insert(code.message()), "duplicate message");
    }
    // Sizing query: NULL buffer, length 0.
    let (rc, _, n) = message(mp_result::Ok as u32, 0);
    assert_eq!((rc, n), (mp_result::Ok, "success".len()));
    // Length 1: just the NUL. Length 4: three bytes and the NUL. Exact fit: len = n + 1.
    let (_, buf, n) = message(0, 1);
    assert_eq!((buf, n), (vec![0], 7));
    let (_, buf, n) = message(0, 4);
    assert_eq!((buf, n), (b"suc\0".to_vec(), 7));
    let (_, buf, n) = message(0, 8);
    assert_eq!((buf, n), (b"success\0".to_vec(), 7));
    let (_, buf, _) = message(0, 7);
    assert_eq!(buf, b"succes\0".to_vec());
    // Unknown codes get a message too.
    let (rc, buf, n) = message(999, 100);
    assert_eq!(rc, mp_result::Ok);
    assert_eq!(&buf[..n], b"unknown mp_result code 999");
    // NULL rules.
    let mut b = [0 as c_char; 4];
    let mut n = 0;
    // SAFETY: NULL pointers are the cases under test; `b` is valid for 4 bytes.
    unsafe {
        assert_eq!(
            mp_result_message(0, b.as_mut_ptr(), 4, null_mut()),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_result_message(0, null_mut(), 4, &mut n),
            mp_result::NullParameter
        );
    }
}

#[test]
fn truncation_respects_utf8_boundaries() {
    let msg = "aé€"; // 1 + 2 + 3 bytes
    for (len, kept) in [
        (1, ""),
        (2, "a"),
        (3, "a"),
        (4, "aé"),
        (5, "aé"),
        (6, "aé"),
        (7, "aé€"),
    ] {
        let mut buf = vec![0xAAu8; len];
        // SAFETY: `buf` is valid for `len` bytes.
        let n = unsafe { crate::error::write_c_string(msg, buf.as_mut_ptr().cast(), len) };
        assert_eq!(n, msg.len());
        assert_eq!(&buf[..kept.len()], kept.as_bytes(), "len {len}");
        assert_eq!(buf[kept.len()], 0, "len {len}");
    }
}

#[test]
fn last_error_truncates_like_result_message() {
    let p = Handle::new();
    assert_eq!(p.add("dup", 0, 1, 1, 0), Ok(0));
    assert_eq!(p.add("dup", 0, 1, 1, 0), Err(mp_result::DuplicateId));
    let full = p.last_error();
    assert_eq!(full, "duplicate buffer id \"dup\"");
    let mut buf = [0x55 as c_char; 10];
    let mut n = 0;
    // SAFETY: the handle is live; `buf` is valid for 10 bytes.
    let rc = unsafe { mp_packer_last_error(p.0, buf.as_mut_ptr(), 10, &mut n) };
    assert_eq!(rc, mp_result::Ok);
    assert_eq!(n, full.len());
    // SAFETY: `buf` is NUL-terminated within its 10 bytes.
    let got = unsafe { core::ffi::CStr::from_ptr(buf.as_ptr()) };
    assert_eq!(got.to_bytes(), &full.as_bytes()[..9]);
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: no preconditions; the result is a static NUL-terminated string.
    let v = unsafe { core::ffi::CStr::from_ptr(mp_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
