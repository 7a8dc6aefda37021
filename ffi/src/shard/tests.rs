//! Rust-side tests of the `mp_shard_layout` C API, NULL and error paths included.

use super::*;
use core::ptr;

#[test]
fn shard_layout_round_trip() {
    let numels = [5u64, 7, 2];
    let o = mp_shard_options {
        world: 6,
        group: 3,
        param_align: 4,
        shard_align: 2,
    };
    let mut layout = ptr::null_mut();
    // SAFETY: valid pointers; the layout is freed once below.
    unsafe {
        assert_eq!(
            mp_shard_layout_new(numels.as_ptr(), 3, &o, &mut layout),
            mp_result::Ok
        );
        let mut info = mp_shard_info::default();
        assert_eq!(mp_shard_layout_info(layout, &mut info), mp_result::Ok);
        assert_eq!(
            (info.shard_numel, info.flat_numel, info.padded_numel),
            (6, 18, 18)
        );
        let mut n = 0;
        assert_eq!(
            mp_shard_layout_owners(layout, 1, 2, ptr::null_mut(), 0, &mut n),
            mp_result::Ok
        );
        assert_eq!(n, 2);
        let mut pieces = [mp_shard_piece::default(); 2];
        assert_eq!(
            mp_shard_layout_owners(layout, 1, 2, pieces.as_mut_ptr(), 1, &mut n),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_shard_layout_owners(layout, 1, 2, pieces.as_mut_ptr(), 2, &mut n),
            mp_result::Ok
        );
        assert_eq!(
            pieces[1],
            mp_shard_piece {
                shard: 2,
                param_begin: 8,
                param_end: 14,
                shard_offset: 0
            }
        );
        assert_eq!(
            mp_shard_layout_owners(layout, 3, 2, ptr::null_mut(), 0, &mut n),
            mp_result::IndexOutOfRange
        );
        let mut s = 0;
        assert_eq!(mp_shard_layout_shard_of(layout, 4, &mut s), mp_result::Ok);
        assert_eq!(s, 1);
        assert_eq!(
            mp_shard_layout_shard_of(layout, 6, &mut s),
            mp_result::IndexOutOfRange
        );
        mp_shard_layout_free(layout);
        mp_shard_layout_free(ptr::null_mut());
        let bad = mp_shard_options { group: 4, ..o };
        assert_eq!(
            mp_shard_layout_new(numels.as_ptr(), 3, &bad, &mut layout),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_shard_layout_new(ptr::null(), 3, &o, &mut layout),
            mp_result::NullParameter
        );
    }
}

/// A length whose byte count overflows or exceeds `PTRDIFF_MAX` is refused before any read.
#[test]
fn shard_layout_new_refuses_lengths_past_ptrdiff_max() {
    let numels = [5u64];
    let o = mp_shard_options {
        world: 1,
        group: 1,
        param_align: 1,
        shard_align: 1,
    };
    for len in [isize::MAX as usize / 8 + 1, usize::MAX] {
        let mut layout = ptr::null_mut();
        // SAFETY: the length is refused before `numels` is read.
        let rc = unsafe { mp_shard_layout_new(numels.as_ptr(), len, &o, &mut layout) };
        assert_eq!(rc, mp_result::InvalidArgument);
        assert!(layout.is_null());
    }
}
