//! Rust-side tests of `mp_estimate_memory`, NULL and error paths included.

use super::*;
use core::ptr;

fn input() -> mp_estimate_input {
    mp_estimate_input {
        params: 7_000_000_000,
        layers: 32,
        hidden: 4096,
        heads: 32,
        seq: 4096,
        micro_batch: 1,
        dp: 8,
        tp: 2,
        pp: 2,
        largest_layer: 0,
        gpus_per_host: 8,
        zero: 3,
        offload: MP_OFFLOAD_CPU,
        recompute: MP_RECOMPUTE_SELECTIVE,
        sequence_parallel: 1,
    }
}

#[test]
fn estimate_matches_core_and_checks_arguments() {
    let mut out = mp_estimate::default();
    // SAFETY: valid pointers to locals.
    let r = unsafe { mp_estimate_memory(&input(), &mut out) };
    assert_eq!(r, mp_result::Ok);
    assert_eq!(out.gpu.activations, 32 * 34 * 4096 * 4096 / 2);
    assert_eq!(out.params_per_gpu, 1_750_000_000);
    assert_eq!(out.host.optimizer, 8 * 12 * 1_750_000_000 / 8);
    // SAFETY: NULL pointers are checked.
    unsafe {
        assert_eq!(
            mp_estimate_memory(ptr::null(), &mut out),
            mp_result::NullParameter
        );
        assert_eq!(
            mp_estimate_memory(&input(), ptr::null_mut()),
            mp_result::NullParameter
        );
    }
    for bad in [
        mp_estimate_input { zero: 4, ..input() },
        mp_estimate_input {
            offload: 9,
            ..input()
        },
        mp_estimate_input { zero: 2, ..input() },
        mp_estimate_input {
            heads: 31,
            ..input()
        },
        mp_estimate_input { seq: 0, ..input() },
    ] {
        let before = out;
        // SAFETY: valid pointers to locals.
        let r = unsafe { mp_estimate_memory(&bad, &mut out) };
        assert_eq!(r, mp_result::InvalidArgument);
        assert_eq!(out, before, "written only on success");
    }
}
