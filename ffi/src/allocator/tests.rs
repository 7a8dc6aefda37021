//! Unit tests that call the exported allocator functions directly, as C would, NULL paths
//! included.

use std::ptr::{null, null_mut};

use super::*;

const PAGE: u64 = 4096;

/// Owns an allocator handle for a test and frees it on drop.
struct Handle(*mut mp_allocator);

impl Handle {
    fn new(options: Option<mp_allocator_options>) -> Result<Handle, mp_result> {
        let mut a = null_mut();
        let opts = options.as_ref().map_or(null(), |o| o as *const _);
        // SAFETY: `opts` is NULL or points to a live options struct; `&mut a` is writable.
        let rc = unsafe { mp_allocator_new(opts, &mut a) };
        if rc == mp_result::Ok {
            assert!(!a.is_null());
            Ok(Handle(a))
        } else {
            assert!(a.is_null(), "out_allocator written on failure");
            Err(rc)
        }
    }

    /// Pages of 4 KiB, at most `pages` of them.
    fn small(pages: u64) -> Handle {
        Handle::new(Some(mp_allocator_options {
            flags: MP_ALLOCATOR_CAPACITY | MP_ALLOCATOR_PAGE_SIZE,
            capacity: pages * PAGE,
            page_size: PAGE,
        }))
        .expect("valid options")
    }

    fn alloc(&self, size: u64) -> Result<u64, mp_result> {
        let mut addr = u64::MAX;
        // SAFETY: the handle is live; `addr` is writable.
        let rc = unsafe { mp_allocator_alloc(self.0, size, 0, &mut addr) };
        if rc == mp_result::Ok {
            Ok(addr)
        } else {
            assert_eq!(addr, u64::MAX, "out_addr written on failure");
            Err(rc)
        }
    }

    fn dealloc(&self, addr: u64) -> mp_result {
        // SAFETY: the handle is live.
        unsafe { mp_allocator_dealloc(self.0, addr) }
    }

    fn trim(&self) -> Result<u64, mp_result> {
        let mut released = u64::MAX;
        // SAFETY: the handle is live; `released` is writable.
        let rc = unsafe { mp_allocator_trim(self.0, &mut released) };
        if rc == mp_result::Ok {
            Ok(released)
        } else {
            assert_eq!(released, u64::MAX, "out_released written on failure");
            Err(rc)
        }
    }

    fn stats(&self) -> Result<mp_alloc_stats, mp_result> {
        let mut s = mp_alloc_stats {
            allocated: 7,
            ..Default::default()
        };
        // SAFETY: the handle is live; `s` is writable.
        let rc = unsafe { mp_allocator_stats(self.0, &mut s) };
        if rc == mp_result::Ok {
            Ok(s)
        } else {
            assert_eq!(s.allocated, 7, "out_stats written on failure");
            Err(rc)
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `mp_allocator_new` and is freed once, here.
        unsafe { mp_allocator_free(self.0) };
    }
}

fn stats(
    allocated: u64,
    peak_allocated: u64,
    reserved: u64,
    peak_reserved: u64,
    reservations: u64,
) -> mp_alloc_stats {
    mp_alloc_stats {
        allocated,
        peak_allocated,
        reserved,
        peak_reserved,
        segments: u64::from(reserved > 0),
        reservations,
    }
}

#[test]
fn layout_is_pinned() {
    assert_eq!(core::mem::size_of::<mp_allocator_options>(), 24);
    assert_eq!(core::mem::align_of::<mp_allocator_options>(), 8);
    assert_eq!(core::mem::size_of::<mp_alloc_stats>(), 48);
}

#[test]
fn null_options_mean_defaults() {
    let a = Handle::new(None).expect("defaults");
    let x = a.alloc(1000).expect("no capacity");
    assert_eq!(x, DEFAULT_BASE);
    assert_eq!(a.stats(), Ok(stats(1000, 1000, 2 << 20, 2 << 20, 1)));
    // A zeroed struct is the same.
    let b = Handle::new(Some(mp_allocator_options::default())).expect("zeroed");
    assert_eq!(b.alloc(1), Ok(DEFAULT_BASE));
}

#[test]
fn bad_options_are_rejected() {
    let bad = |flags, page_size| {
        Handle::new(Some(mp_allocator_options {
            flags,
            capacity: 0,
            page_size,
        }))
        .err()
    };
    assert_eq!(
        bad(1 << 2, 0),
        Some(mp_result::InvalidArgument),
        "unknown bit"
    );
    assert_eq!(bad(u32::MAX, PAGE), Some(mp_result::InvalidArgument));
    for page in [0, 1, 256, 511, 513, 3000, 4097, 1 << 41, 1 << 63, u64::MAX] {
        assert_eq!(
            bad(MP_ALLOCATOR_PAGE_SIZE, page),
            Some(mp_result::InvalidArgument),
            "page size {page}"
        );
    }
    for page in [512, 4096, 2 << 20, MP_ALLOCATOR_MAX_PAGE_SIZE] {
        assert_eq!(bad(MP_ALLOCATOR_PAGE_SIZE, page), None, "page size {page}");
    }
    // Without its flag the page size field is ignored.
    assert_eq!(bad(MP_ALLOCATOR_CAPACITY, 3), None);
}

#[test]
fn new_checks_its_pointers() {
    // SAFETY: NULL out-pointer: the function must refuse it.
    let rc = unsafe { mp_allocator_new(null(), null_mut()) };
    assert_eq!(rc, mp_result::NullParameter);
    let mut slots = [null_mut::<mp_allocator>(); 2];
    let misaligned = slots.as_mut_ptr().cast::<u8>().wrapping_add(1).cast();
    // SAFETY: misaligned but in bounds; the function must refuse it before writing.
    let rc = unsafe { mp_allocator_new(null(), misaligned) };
    assert_eq!(rc, mp_result::InvalidArgument);
    let opts = [mp_allocator_options::default(); 2];
    let misaligned_opts = opts.as_ptr().cast::<u8>().wrapping_add(1).cast();
    let mut a = null_mut();
    // SAFETY: misaligned options in bounds; refused before reading.
    let rc = unsafe { mp_allocator_new(misaligned_opts, &mut a) };
    assert_eq!(rc, mp_result::InvalidArgument);
    assert!(a.is_null());
}

#[test]
fn null_handle_and_out_pointers() {
    let mut out = 0u64;
    let mut s = mp_alloc_stats::default();
    // SAFETY: NULL handles and out-pointers must be refused without dereferencing anything.
    unsafe {
        assert_eq!(
            mp_allocator_alloc(null_mut(), 1, 0, &mut out),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_allocator_dealloc(null_mut(), 0),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_allocator_trim(null_mut(), &mut out),
            mp_result::NullParameter
        );
        assert_eq!(mp_allocator_stats(null(), &mut s), mp_result::NullParameter);
        mp_allocator_free(null_mut()); // no-op
    }
    let a = Handle::small(4);
    let mut slots = [0u64; 2];
    let misaligned: *mut u64 = slots.as_mut_ptr().cast::<u8>().wrapping_add(1).cast();
    // SAFETY: the handle is live; the out-pointers are NULL or misaligned and must be refused.
    unsafe {
        assert_eq!(
            mp_allocator_alloc(a.0, 1, 0, null_mut()),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_allocator_alloc(a.0, 1, 0, misaligned),
            mp_result::InvalidArgument
        );
        assert_eq!(mp_allocator_trim(a.0, null_mut()), mp_result::NullParameter);
        assert_eq!(
            mp_allocator_trim(a.0, misaligned),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_allocator_stats(a.0, null_mut()),
            mp_result::NullParameter
        );
        let mut ss = [mp_alloc_stats::default(); 2];
        let misaligned_stats = ss.as_mut_ptr().cast::<u8>().wrapping_add(1).cast();
        assert_eq!(
            mp_allocator_stats(a.0, misaligned_stats),
            mp_result::InvalidArgument
        );
    }
    // Nothing happened to the allocator.
    assert_eq!(a.stats(), Ok(mp_alloc_stats::default()));
}

#[test]
fn alloc_dealloc_trim_with_exact_stats() {
    let a = Handle::small(4);
    let x = a.alloc(1000).unwrap(); // 1024 bytes, maps one page
    assert_eq!(x, DEFAULT_BASE);
    assert_eq!(a.stats(), Ok(stats(1000, 1000, PAGE, PAGE, 1)));
    let y = a.alloc(0).unwrap(); // 512 bytes, fits in the page
    assert_eq!(y, x + 1024);
    // 5120 bytes: the free tail has 2560, so growth maps one more page and extends it.
    let z = a.alloc(5000).unwrap();
    assert_eq!(z, x + 1536);
    assert_eq!(a.stats(), Ok(stats(6000, 6000, 2 * PAGE, 2 * PAGE, 2)));
    assert_eq!(a.dealloc(x), mp_result::Ok);
    assert_eq!(a.stats(), Ok(stats(5000, 6000, 2 * PAGE, 2 * PAGE, 2)));
    // Best fit reuses the hole at the front.
    assert_eq!(a.alloc(512), Ok(x));
    assert_eq!(a.dealloc(x), mp_result::Ok);
    assert_eq!(a.dealloc(z), mp_result::Ok);
    // The tail from y + 512 to 2 pages is free; the page after the first goes back.
    assert_eq!(a.trim(), Ok(PAGE));
    assert_eq!(a.stats(), Ok(stats(0, 6000, PAGE, 2 * PAGE, 2)));
    assert_eq!(a.dealloc(y), mp_result::Ok);
    assert_eq!(a.trim(), Ok(PAGE));
    assert_eq!(a.trim(), Ok(0));
    assert_eq!(a.stats(), Ok(stats(0, 6000, 0, 2 * PAGE, 2)));
}

#[test]
fn out_of_memory_under_a_capacity() {
    let a = Handle::small(2);
    let x = a.alloc(PAGE).unwrap();
    let before = a.stats().unwrap();
    assert_eq!(a.alloc(PAGE + 1), Err(mp_result::OutOfMemory));
    assert_eq!(a.alloc(u64::MAX), Err(mp_result::OutOfMemory));
    assert_eq!(a.stats(), Ok(before), "a failed alloc changes nothing");
    let y = a.alloc(PAGE).unwrap(); // exactly fills the capacity
    assert_eq!(y, x + PAGE);
    assert_eq!(a.alloc(0), Err(mp_result::OutOfMemory));
    assert_eq!(
        a.stats(),
        Ok(stats(2 * PAGE, 2 * PAGE, 2 * PAGE, 2 * PAGE, 2))
    );
    // Capacity 0: nothing fits, not even a zero-size request.
    let z = Handle::small(0);
    assert_eq!(z.alloc(0), Err(mp_result::OutOfMemory));
    // No capacity: only the address space limits.
    let u = Handle::new(None).unwrap();
    assert_eq!(u.alloc(u64::MAX - 100), Err(mp_result::OutOfMemory));
}

#[test]
fn unknown_addresses_are_refused() {
    let a = Handle::small(4);
    let x = a.alloc(2048).unwrap();
    let before = a.stats().unwrap();
    for bogus in [0, 1, x + 512, x + 1, x + 2048, x + PAGE, u64::MAX] {
        assert_eq!(a.dealloc(bogus), mp_result::UnknownAddress, "{bogus:#x}");
    }
    assert_eq!(a.stats(), Ok(before));
    assert_eq!(a.dealloc(x), mp_result::Ok);
    assert_eq!(a.dealloc(x), mp_result::UnknownAddress, "double dealloc");
}

#[test]
fn caught_panic_poisons_the_allocator() {
    let a = Handle::small(4);
    let x = a.alloc(100).unwrap();
    crate::ffi::PANIC_NEXT_MUTATION.with(|f| f.set(true));
    assert_eq!(a.alloc(100), Err(mp_result::Panic));
    assert_eq!(a.alloc(100), Err(mp_result::Poisoned));
    assert_eq!(a.dealloc(x), mp_result::Poisoned);
    assert_eq!(a.trim(), Err(mp_result::Poisoned));
    assert_eq!(a.stats(), Err(mp_result::Poisoned));
    // Other allocators are unaffected; the poisoned one is freed normally on drop.
    let b = Handle::small(4);
    assert_eq!(b.alloc(100), Ok(DEFAULT_BASE));
}

#[test]
fn new_codes_have_messages() {
    assert_eq!(mp_result::OutOfMemory as u32, 15);
    assert_eq!(mp_result::UnknownAddress as u32, 16);
    assert!(mp_result::OutOfMemory.message().contains("capacity"));
    assert!(mp_result::UnknownAddress.message().contains("address"));
}

/// A valid plan file: one persistent 1 KiB slot, then an iteration of two slots.
fn plan_bytes() -> Vec<u8> {
    use memplan_core::plan::{Plan, Slot};
    let slot = |size, offset, start, end| Slot {
        size,
        stream: 0,
        offset,
        start,
        end,
    };
    Plan {
        arena_size: 4096,
        prologue: vec![slot(1024, 0, 0, u32::MAX)],
        iteration: vec![slot(1024, 1024, 0, 2), slot(2048, 2048, 1, 3)],
    }
    .to_bytes()
}

fn new_guided(bytes: &[u8]) -> Result<Handle, mp_result> {
    let mut a = null_mut();
    // SAFETY: `bytes` is valid for its length; `&mut a` is writable.
    let rc = unsafe { mp_allocator_new_guided(bytes.as_ptr(), bytes.len(), null(), &mut a) };
    if rc == mp_result::Ok {
        Ok(Handle(a))
    } else {
        assert!(a.is_null(), "out_allocator written on failure");
        Err(rc)
    }
}

fn counters(h: &Handle) -> Result<mp_guided_counters, mp_result> {
    let mut c = mp_guided_counters::default();
    // SAFETY: the handle is live; `c` is writable.
    let rc = unsafe { mp_allocator_guided_counters(h.0, &mut c) };
    if rc == mp_result::Ok { Ok(c) } else { Err(rc) }
}

#[test]
fn guided_allocator_serves_its_plan() {
    let h = new_guided(&plan_bytes()).unwrap();
    let w = h.alloc(1000).unwrap();
    for _ in 0..3 {
        let x = h.alloc(1024).unwrap();
        let y = h.alloc(2000).unwrap();
        assert_eq!((x - w, y - w), (1024, 2048));
        assert_eq!(h.dealloc(x), mp_result::Ok);
        assert_eq!(h.dealloc(y), mp_result::Ok);
    }
    let c = counters(&h).unwrap();
    assert_eq!((c.hits, c.misses, c.laps), (7, 0, 4));
    // The arena never shrinks.
    assert_eq!(h.trim(), Ok(0));
    assert_eq!(h.dealloc(w + 1), mp_result::UnknownAddress);
}

#[test]
fn guided_allocator_refuses_bad_plans_and_pointers() {
    let good = plan_bytes();
    let mut corrupt = good.clone();
    corrupt[30] ^= 1;
    assert_eq!(new_guided(&corrupt).err(), Some(mp_result::InvalidPlan));
    assert_eq!(
        new_guided(&good[..good.len() - 1]).err(),
        Some(mp_result::InvalidPlan)
    );
    assert_eq!(new_guided(&[]).err(), Some(mp_result::InvalidPlan));
    let mut a = null_mut();
    // SAFETY: a NULL plan with a nonzero length is refused before any read.
    let rc = unsafe { mp_allocator_new_guided(null(), 8, null(), &mut a) };
    assert_eq!(rc, mp_result::NullParameter);
    // A length whose byte count exceeds PTRDIFF_MAX is refused before any read (it used to
    // reach `slice::from_raw_parts`, undefined behaviour).
    for len in [isize::MAX as usize + 1, usize::MAX] {
        // SAFETY: the length is refused before `good` is read.
        let rc = unsafe { mp_allocator_new_guided(good.as_ptr(), len, null(), &mut a) };
        assert_eq!(rc, mp_result::InvalidArgument);
        assert!(a.is_null());
    }
    // SAFETY: `good` is valid for its length; a NULL out-pointer is refused.
    let rc = unsafe { mp_allocator_new_guided(good.as_ptr(), good.len(), null(), null_mut()) };
    assert_eq!(rc, mp_result::NullParameter);
    let bad_options = mp_allocator_options {
        flags: 1 << 7,
        ..Default::default()
    };
    // SAFETY: all pointers are valid.
    let rc = unsafe { mp_allocator_new_guided(good.as_ptr(), good.len(), &bad_options, &mut a) };
    assert_eq!(rc, mp_result::InvalidArgument);
    assert!(a.is_null());
    // An online allocator has no plan counters.
    let online = Handle::new(None).unwrap();
    assert_eq!(counters(&online).err(), Some(mp_result::InvalidArgument));
}

#[test]
fn guided_allocator_never_panics_on_arbitrary_bytes() {
    let good = plan_bytes();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = good.clone();
        // Mutate, then fix the checksum half of the time so decoding reaches validation.
        for k in 0..1 + (x % 4) as usize {
            let at = ((x >> (8 * k)) as usize) % bytes.len();
            bytes[at] ^= (x >> (16 + k)) as u8 | 1;
        }
        if i % 2 == 0 {
            let n = bytes.len() - 8;
            let sum = memplan_core::plan::checksum(&bytes[..n]);
            bytes[n..].copy_from_slice(&sum.to_le_bytes());
        }
        match new_guided(&bytes) {
            Ok(h) => {
                for size in [1000, 1024, 2000, 1 << 20, 0] {
                    match h.alloc(size) {
                        Ok(a) => assert_eq!(h.dealloc(a), mp_result::Ok),
                        Err(rc) => assert_eq!(rc, mp_result::OutOfMemory),
                    }
                }
            }
            Err(rc) => assert_eq!(rc, mp_result::InvalidPlan),
        }
    }
}
