//! Rust-side tests of the `mp_chunk_placement` C API, NULL and error paths included.

use super::*;
use core::ptr;

#[test]
fn chunk_placement_round_trip_and_errors() {
    // Four layers of two tensors; forward moments 0..3, backward 4..7.
    let tensors: Vec<mp_chunk_tensor> = (0..8u64)
        .map(|i| mp_chunk_tensor {
            numel: 100,
            dtype_bytes: 2,
            first_use: i / 2,
            last_use: 7 - i / 2,
        })
        .collect();
    let o = mp_chunk_options {
        chunk_numel: 200,
        gpu_bytes: 5_000,
        host_bytes: 100_000,
        nvme_bytes: 0,
        non_model_bytes: 0,
        policy: MP_POLICY_BELADY,
        prefetch: 1,
        iterations: 2,
    };
    let mut plan = ptr::null_mut();
    // SAFETY: valid pointers; the plan is freed once below.
    unsafe {
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &o, &mut plan),
            mp_result::Ok
        );
        let mut s = mp_chunk_summary::default();
        assert_eq!(mp_chunk_placement_summary(plan, &mut s), mp_result::Ok);
        assert_eq!((s.chunk_numel, s.positions), (200, 4));
        let mut sum = [[0u64; 3]; 3];
        for i in 0..s.moves as usize {
            let mut m = mp_chunk_move::default();
            assert_eq!(mp_chunk_placement_move(plan, i, &mut m), mp_result::Ok);
            sum[m.from as usize][m.to as usize] += m.bytes;
        }
        assert_eq!(sum, s.bytes);
        let mut m = mp_chunk_move::default();
        assert_eq!(
            mp_chunk_placement_move(plan, s.moves as usize, &mut m),
            mp_result::IndexOutOfRange
        );
        mp_chunk_placement_free(plan);
        mp_chunk_placement_free(ptr::null_mut());

        let small = mp_chunk_options {
            gpu_bytes: 1_000,
            ..o
        };
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &small, &mut plan),
            mp_result::CapacityExceeded
        );
        let tiny_chunk = mp_chunk_options {
            chunk_numel: 50,
            ..o
        };
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &tiny_chunk, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), 0, &o, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), ptr::null(), &mut plan),
            mp_result::NullParameter
        );
    }
}

/// `mp_chunk_placement_new` is core's training recipe: the same chunk size (searched when 0),
/// moment count and moves as `chunk::place_training` for the same tensors and options; its
/// argument checks keep their order (policy, then iterations, then the tensors).
#[test]
fn chunk_placement_is_cores_recipe() {
    use memplan_core::chunk::{self, TrainingOptions};
    let tensors: Vec<mp_chunk_tensor> = (0..10u64)
        .map(|i| mp_chunk_tensor {
            numel: 60 + 13 * (i % 4),
            dtype_bytes: 2,
            first_use: i,
            last_use: 19 - i,
        })
        .collect();
    let o = mp_chunk_options {
        chunk_numel: 0,
        gpu_bytes: 3_000,
        host_bytes: 3_000,
        nvme_bytes: 20_000,
        non_model_bytes: 100,
        policy: MP_POLICY_LRU,
        prefetch: 1,
        iterations: 3,
    };
    let core_tensors: Vec<chunk::Tensor> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| chunk::Tensor {
            name: format!("tensor {i}"),
            numel: t.numel,
            dtype_bytes: t.dtype_bytes,
            first_use: t.first_use,
            last_use: t.last_use,
        })
        .collect();
    let want = chunk::place_training(
        &core_tensors,
        &TrainingOptions {
            chunk_numel: None,
            non_model: 100,
            iterations: 3,
            placement: chunk::PlacementOptions {
                device: 3_000,
                host: 3_000,
                nvme: 20_000,
                policy: chunk::Policy::Lru,
                prefetch: true,
            },
        },
    )
    .unwrap();
    assert!(want.placement().bytes[1][2] > 0, "a case that uses NVMe");
    let mut plan = ptr::null_mut();
    // SAFETY: valid pointers; the plan is freed once below.
    unsafe {
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &o, &mut plan),
            mp_result::Ok
        );
        let mut s = mp_chunk_summary::default();
        assert_eq!(mp_chunk_placement_summary(plan, &mut s), mp_result::Ok);
        assert_eq!(
            s.chunk_numel,
            want.size_choice().map(|c| c.chunk_numel).unwrap()
        );
        assert_eq!(s.positions, u64::from(want.layout().positions()));
        assert_eq!(s.moments, want.moments());
        assert_eq!(s.bytes, want.placement().bytes);
        assert_eq!(s.moves, want.placement().moves.len() as u64);
        for (i, w) in want.placement().moves.iter().enumerate() {
            let mut m = mp_chunk_move::default();
            assert_eq!(mp_chunk_placement_move(plan, i, &mut m), mp_result::Ok);
            assert_eq!(
                (m.chunk, m.from, m.to, m.moment, m.bytes, m.prefetch != 0),
                (
                    w.chunk.0,
                    w.from as u32,
                    w.to as u32,
                    u64::from(w.moment),
                    w.bytes,
                    w.prefetch
                )
            );
        }
        mp_chunk_placement_free(plan);

        // 0 iterations is an invalid argument, checked before the tensors (one of 0 elements
        // would be MP_RESULT_ZERO_SIZE); an unknown policy before both.
        let mut zero = tensors.clone();
        zero[3].numel = 0;
        let no_iterations = mp_chunk_options { iterations: 0, ..o };
        assert_eq!(
            mp_chunk_placement_new(zero.as_ptr(), zero.len(), &no_iterations, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_placement_new(zero.as_ptr(), zero.len(), &o, &mut plan),
            mp_result::ZeroSize
        );
        let bad_policy = mp_chunk_options { policy: 7, ..o };
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &bad_policy, &mut plan),
            mp_result::InvalidArgument
        );
        let absurd = mp_chunk_options {
            chunk_numel: u64::MAX,
            ..o
        };
        assert_eq!(
            mp_chunk_placement_new(tensors.as_ptr(), tensors.len(), &absurd, &mut plan),
            mp_result::Overflow
        );
    }
}

/// A length whose byte count overflows or exceeds `PTRDIFF_MAX` is refused before any read.
#[test]
fn chunk_placement_new_refuses_lengths_past_ptrdiff_max() {
    let tensors = [mp_chunk_tensor::default()];
    let o = mp_chunk_options {
        iterations: 1,
        ..Default::default()
    };
    for len in [
        isize::MAX as usize / size_of::<mp_chunk_tensor>() + 1,
        usize::MAX,
    ] {
        let mut placement = ptr::null_mut();
        // SAFETY: the length is refused before `tensors` is read.
        let rc = unsafe { mp_chunk_placement_new(tensors.as_ptr(), len, &o, &mut placement) };
        assert_eq!(rc, mp_result::InvalidArgument);
        assert!(placement.is_null());
    }
}
