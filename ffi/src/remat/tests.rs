//! Rust-side tests of the `mp_remat` C API, NULL and error paths included.
use std::ptr::{null, null_mut};

use super::*;

struct Handle(*mut mp_remat);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a live handle from `mp_remat_new`, freed once.
        unsafe { mp_remat_free(self.0) };
    }
}

fn new(budget: u64, h: u32) -> Handle {
    let mut r = null_mut();
    // SAFETY: `&mut r` is writable.
    assert_eq!(unsafe { mp_remat_new(budget, h, &mut r) }, mp_result::Ok);
    Handle(r)
}

fn reg(h: &Handle, size: u64, cost: u64, parents: &[u32], flags: u32) -> Result<u32, mp_result> {
    let mut t = u32::MAX;
    // SAFETY: live handle; `parents` readable; `t` writable.
    let rc = unsafe {
        mp_remat_register(
            h.0,
            size,
            cost,
            parents.as_ptr(),
            parents.len(),
            flags,
            &mut t,
        )
    };
    if rc == mp_result::Ok { Ok(t) } else { Err(rc) }
}

fn actions(h: &Handle) -> Vec<mp_remat_action> {
    let mut n = 0;
    // SAFETY: live handle; sizing call.
    let rc = unsafe { mp_remat_actions(h.0, null_mut(), 0, &mut n) };
    assert_eq!(rc, mp_result::Ok);
    let mut v = vec![mp_remat_action::default(); n];
    if n > 0 {
        // SAFETY: `v` holds `n` writable elements.
        let rc = unsafe { mp_remat_actions(h.0, v.as_mut_ptr(), n, &mut n) };
        assert_eq!(rc, mp_result::Ok);
    }
    v
}

#[test]
fn chain_evicts_and_recomputes() {
    let h = new(300, MP_REMAT_HEURISTIC_DTR);
    let w = reg(&h, 100, 0, &[], MP_REMAT_CONSTANT).unwrap();
    let a = reg(&h, 100, 10, &[w], 0).unwrap();
    assert_eq!(
        actions(&h),
        [mp_remat_action {
            kind: MP_REMAT_COMPUTE,
            tensor: a
        }]
    );
    let b = reg(&h, 100, 10, &[a], 0).unwrap();
    // Memory full (w, a, b): c needs a to be evicted... a is c's grandparent, b its parent.
    let c = reg(&h, 100, 10, &[b], 0).unwrap();
    let acts = actions(&h);
    assert_eq!(
        acts.last(),
        Some(&mp_remat_action {
            kind: MP_REMAT_COMPUTE,
            tensor: c
        })
    );
    assert!(acts.contains(&mp_remat_action {
        kind: MP_REMAT_EVICT,
        tensor: a
    }));
    let mut res = true;
    // SAFETY: live handle, writable bool.
    unsafe { mp_remat_is_resident(h.0, a, &mut res) };
    assert!(!res);
    let mut n = 99;
    // SAFETY: live handle, writable count.
    let rc = unsafe { mp_remat_materialize(h.0, a, &mut n) };
    assert_eq!(rc, mp_result::Ok);
    let acts = actions(&h);
    assert_eq!(n, acts.len());
    assert!(acts.contains(&mp_remat_action {
        kind: MP_REMAT_RECOMPUTE,
        tensor: a
    }));
    // Too small a buffer is refused, with nothing written but the error.
    let mut one = [mp_remat_action::default(); 1];
    let mut m = 0;
    // SAFETY: `one` has 1 writable element.
    let rc = unsafe { mp_remat_actions(h.0, one.as_mut_ptr(), 1, &mut m) };
    assert_eq!(
        rc,
        if acts.len() > 1 {
            mp_result::InvalidArgument
        } else {
            mp_result::Ok
        }
    );
}

#[test]
fn bad_inputs_are_error_codes() {
    let mut r = null_mut();
    // SAFETY: `&mut r` is writable.
    let rc = unsafe { mp_remat_new(1, 99, &mut r) };
    assert_eq!(rc, mp_result::InvalidArgument);
    // SAFETY: NULL out-pointer is checked.
    let rc = unsafe { mp_remat_new(1, 0, null_mut()) };
    assert_eq!(rc, mp_result::NullParameter);
    let h = new(100, MP_REMAT_HEURISTIC_MEMPLAN);
    assert_eq!(reg(&h, 10, 1, &[7], 0), Err(mp_result::IndexOutOfRange));
    assert_eq!(reg(&h, 10, 1, &[], 4), Err(mp_result::InvalidArgument));
    let w = reg(&h, 10, 0, &[], MP_REMAT_CONSTANT).unwrap();
    assert_eq!(
        reg(&h, 10, 0, &[w], MP_REMAT_CONSTANT),
        Err(mp_result::InvalidArgument)
    );
    let mut t = 0;
    // SAFETY: NULL parents with n > 0 is checked.
    let rc = unsafe { mp_remat_register(h.0, 1, 1, null(), 2, 0, &mut t) };
    assert_eq!(rc, mp_result::NullParameter);
    // SAFETY: NULL handle is checked.
    let rc = unsafe { mp_remat_release(null_mut(), 0) };
    assert_eq!(rc, mp_result::NullParameter);
    // SAFETY: live handle.
    let rc = unsafe { mp_remat_unpin(h.0, w) };
    assert_eq!(rc, mp_result::InvalidArgument);
    // Over budget with nothing evictable: OOM, and it sticks.
    assert_eq!(reg(&h, 200, 1, &[w], 0), Err(mp_result::OutOfMemory));
    assert_eq!(reg(&h, 1, 1, &[w], 0), Err(mp_result::OutOfMemory));
}

#[test]
fn swap_mode_offloads_and_fetches() {
    let h = new(2500, MP_REMAT_HEURISTIC_MEMPLAN);
    // SAFETY: live handle.
    let rc = unsafe { mp_remat_set_swap_bandwidth(h.0, 0) };
    assert_eq!(rc, mp_result::InvalidArgument);
    // SAFETY: live handle.
    let rc = unsafe { mp_remat_set_swap_bandwidth(h.0, 1_000_000_000) };
    assert_eq!(rc, mp_result::Ok);
    let w = reg(&h, 500, 0, &[], MP_REMAT_CONSTANT).unwrap();
    let a = reg(&h, 1000, 1_000_000, &[w], 0).unwrap();
    let b = reg(&h, 1000, 10, &[a], 0).unwrap();
    reg(&h, 1000, 10, &[b], 0).unwrap();
    let acts = actions(&h);
    let off = mp_remat_action {
        kind: MP_REMAT_OFFLOAD,
        tensor: a,
    };
    let ev = mp_remat_action {
        kind: MP_REMAT_EVICT,
        tensor: a,
    };
    let i = acts.iter().position(|x| *x == off).expect("offload");
    assert_eq!(acts.get(i + 1), Some(&ev));
    let mut n = 0;
    // SAFETY: live handle, writable count.
    let rc = unsafe { mp_remat_materialize(h.0, a, &mut n) };
    assert_eq!(rc, mp_result::Ok);
    let fetch = mp_remat_action {
        kind: MP_REMAT_FETCH,
        tensor: a,
    };
    assert!(actions(&h).contains(&fetch));
}

#[test]
fn panic_poisons() {
    let h = new(100, MP_REMAT_HEURISTIC_LRU);
    crate::ffi::PANIC_NEXT_MUTATION.with(|p| p.set(true));
    assert_eq!(reg(&h, 1, 0, &[], MP_REMAT_CONSTANT), Err(mp_result::Panic));
    assert_eq!(
        reg(&h, 1, 0, &[], MP_REMAT_CONSTANT),
        Err(mp_result::Poisoned)
    );
    let mut s = mp_remat_counters::default();
    // SAFETY: live handle, writable stats.
    assert_eq!(unsafe { mp_remat_stats(h.0, &mut s) }, mp_result::Poisoned);
}

/// A parent count whose byte count overflows or exceeds `PTRDIFF_MAX` is refused before any
/// read, and the runtime is unchanged.
#[test]
fn register_refuses_parent_counts_past_ptrdiff_max() {
    let h = new(1000, MP_REMAT_HEURISTIC_DTR);
    let parents = [0u32];
    for n in [isize::MAX as usize / 4 + 1, usize::MAX] {
        let mut t = u32::MAX;
        // SAFETY: the count is refused before `parents` is read.
        let rc = unsafe { mp_remat_register(h.0, 8, 1, parents.as_ptr(), n, 0, &mut t) };
        assert_eq!(rc, mp_result::InvalidArgument);
        assert_eq!(t, u32::MAX);
    }
}
