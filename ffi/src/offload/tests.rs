//! Rust-side tests of the offload C API, NULL and error paths included.

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

#[test]
fn chunk_plan_round_trip_and_errors() {
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
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &o, &mut plan),
            mp_result::Ok
        );
        let mut s = mp_chunk_summary::default();
        assert_eq!(mp_chunk_plan_summary(plan, &mut s), mp_result::Ok);
        assert_eq!((s.chunk_numel, s.positions), (200, 4));
        let mut sum = [[0u64; 3]; 3];
        for i in 0..s.moves as usize {
            let mut m = mp_chunk_move::default();
            assert_eq!(mp_chunk_plan_move(plan, i, &mut m), mp_result::Ok);
            sum[m.from as usize][m.to as usize] += m.bytes;
        }
        assert_eq!(sum, s.bytes);
        let mut m = mp_chunk_move::default();
        assert_eq!(
            mp_chunk_plan_move(plan, s.moves as usize, &mut m),
            mp_result::IndexOutOfRange
        );
        mp_chunk_plan_free(plan);
        mp_chunk_plan_free(ptr::null_mut());

        let small = mp_chunk_options {
            gpu_bytes: 1_000,
            ..o
        };
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &small, &mut plan),
            mp_result::CapacityExceeded
        );
        let tiny_chunk = mp_chunk_options {
            chunk_numel: 50,
            ..o
        };
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &tiny_chunk, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), 0, &o, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), ptr::null(), &mut plan),
            mp_result::NullParameter
        );
    }
}

/// `mp_chunk_plan_new` is core's training recipe: the same chunk size (searched when 0), moment
/// count and moves as `chunk::place_training` for the same tensors and options; its argument
/// checks keep their order (policy, then iterations, then the tensors).
#[test]
fn chunk_plan_is_cores_recipe() {
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
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &o, &mut plan),
            mp_result::Ok
        );
        let mut s = mp_chunk_summary::default();
        assert_eq!(mp_chunk_plan_summary(plan, &mut s), mp_result::Ok);
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
            assert_eq!(mp_chunk_plan_move(plan, i, &mut m), mp_result::Ok);
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
        mp_chunk_plan_free(plan);

        // 0 iterations is an invalid argument, checked before the tensors (one of 0 elements
        // would be MP_RESULT_ZERO_SIZE); an unknown policy before both.
        let mut zero = tensors.clone();
        zero[3].numel = 0;
        let no_iterations = mp_chunk_options { iterations: 0, ..o };
        assert_eq!(
            mp_chunk_plan_new(zero.as_ptr(), zero.len(), &no_iterations, &mut plan),
            mp_result::InvalidArgument
        );
        assert_eq!(
            mp_chunk_plan_new(zero.as_ptr(), zero.len(), &o, &mut plan),
            mp_result::ZeroSize
        );
        let bad_policy = mp_chunk_options { policy: 7, ..o };
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &bad_policy, &mut plan),
            mp_result::InvalidArgument
        );
        let absurd = mp_chunk_options {
            chunk_numel: u64::MAX,
            ..o
        };
        assert_eq!(
            mp_chunk_plan_new(tensors.as_ptr(), tensors.len(), &absurd, &mut plan),
            mp_result::Overflow
        );
    }
}
