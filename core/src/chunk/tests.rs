//! Tests of `chunk`: layout laws, the size search against brute force, chunk states, the
//! placement against a shadow simulation of its moves, and the training recipe against the
//! steps it chains.

use super::*;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

fn t(name: &str, numel: u64, first: u64, last: u64) -> Tensor {
    Tensor {
        name: name.to_string(),
        numel,
        dtype_bytes: 2,
        first_use: first,
        last_use: last,
    }
}

/// Replays `placement` independently and checks every invariant promised by `place`.
fn shadow_check(
    sizes: &[u64],
    schedule: &Schedule,
    o: &PlacementOptions,
    placement: &Placement,
) -> Result<(), alloc::string::String> {
    let cap = |tier: Tier, m: u32| match tier {
        Tier::Device => o
            .device
            .saturating_sub(schedule.moments[m as usize].non_model),
        Tier::Host => o.host,
        Tier::Nvme => o.nvme,
    };
    let mut at = placement.initial.clone();
    if at.len() != sizes.len() {
        return Err("initial placement has the wrong length".into());
    }
    let mut load = [0u64; 3];
    for (c, &tier) in at.iter().enumerate() {
        if tier == Tier::Device {
            return Err(format!("chunk {c} starts on the device"));
        }
        load[tier as usize] += sizes[c];
    }
    for tier in [Tier::Host, Tier::Nvme] {
        if load[tier as usize] > cap(tier, 0) {
            return Err(format!("{} over capacity initially", tier.name()));
        }
    }
    let mut bytes = [[0u64; 3]; 3];
    let (mut fetched, mut prefetched) = (0, 0);
    let mut i = 0;
    for m in 0..schedule.moments.len() as u32 {
        while i < placement.moves.len() && placement.moves[i].moment == m {
            let mv = placement.moves[i];
            let c = mv.chunk.index();
            if at[c] != mv.from || mv.from == mv.to || mv.bytes != sizes[c] {
                return Err(format!(
                    "move {i} {mv:?} does not match chunk at {:?}",
                    at[c]
                ));
            }
            load[mv.from as usize] -= mv.bytes;
            load[mv.to as usize] += mv.bytes;
            at[c] = mv.to;
            bytes[mv.from as usize][mv.to as usize] += mv.bytes;
            if mv.to == Tier::Device {
                fetched += mv.bytes;
                if mv.prefetch {
                    prefetched += mv.bytes;
                }
            }
            if load[mv.to as usize] > cap(mv.to, m) {
                return Err(format!("move {i} overfills {}", mv.to.name()));
            }
            if mv.prefetch {
                let next = schedule.moments.get(m as usize + 1);
                if !next.is_some_and(|n| n.accesses.contains(&mv.chunk)) {
                    return Err(format!(
                        "move {i} prefetches a chunk the next moment does not use"
                    ));
                }
                if load[0] > cap(Tier::Device, m + 1) {
                    return Err(format!("prefetch {i} overfills the next moment"));
                }
            }
            i += 1;
        }
        if load[0] > cap(Tier::Device, m) {
            return Err(format!("device over capacity at moment {m}"));
        }
        for c in &schedule.moments[m as usize].accesses {
            if at[c.index()] != Tier::Device {
                return Err(format!("moment {m} needs chunk {} not on the device", c.0));
            }
        }
        if placement.device_bytes[m as usize] != load[0] {
            return Err(format!("device_bytes[{m}] is wrong"));
        }
    }
    if i != placement.moves.len() {
        return Err("moves out of moment order or past the end".into());
    }
    if bytes != placement.bytes
        || fetched != placement.fetched
        || prefetched != placement.prefetched
    {
        return Err("byte counters disagree with the moves".into());
    }
    Ok(())
}

#[test]
fn layout_packs_in_order_of_use() {
    let ts = [
        t("b", 30, 1, 8),
        t("a", 50, 0, 9),
        t("c", 40, 2, 7),
        t("d", 10, 3, 6),
    ];
    let l = Layout::new(&ts, 100).unwrap();
    assert_eq!(l.positions(), 2);
    assert_eq!(
        l.slot(1),
        Some(TensorSlot {
            position: 0,
            offset: 0
        })
    );
    assert_eq!(
        l.slot(0),
        Some(TensorSlot {
            position: 0,
            offset: 50
        })
    );
    assert_eq!(
        l.slot(2),
        Some(TensorSlot {
            position: 1,
            offset: 0
        })
    );
    assert_eq!(
        l.slot(3),
        Some(TensorSlot {
            position: 1,
            offset: 40
        })
    );
    assert_eq!(l.waste_numel(), 20 + 50);
    assert_eq!(l.chunk_bytes(StateKind::ParamFp16), 200);
    assert_eq!(l.chunk_bytes(StateKind::Variance), 400);
    assert_eq!(l.total_bytes(), Some(2 * (200 + 3 * 400)));
}

#[test]
fn bad_tensors_are_errors() {
    let e = Layout::new(&[t("big", 101, 0, 1)], 100).unwrap_err();
    assert_eq!(
        e,
        ChunkError::TensorTooLarge {
            tensor: "big".into(),
            numel: 101,
            chunk_numel: 100
        }
    );
    assert!(e.to_string().contains("by 1 elements"), "{e}");
    assert_eq!(Layout::new(&[], 100).unwrap_err(), ChunkError::EmptyModel);
    assert_eq!(
        Layout::new(&[t("a", 1, 0, 1)], 0).unwrap_err(),
        ChunkError::ZeroChunkSize
    );
    assert!(matches!(
        Layout::new(&[t("a", 1, 5, 1)], 10).unwrap_err(),
        ChunkError::BadUse { .. }
    ));
    let mut x = t("x", 1, 0, 1);
    x.dtype_bytes = 4;
    assert!(matches!(
        Layout::new(&[t("a", 1, 0, 1), x], 10).unwrap_err(),
        ChunkError::MixedDtype { .. }
    ));
}

#[test]
fn chunk_state_priority() {
    use TensorState::*;
    assert_eq!(chunk_state([Hold, Compute, Free]), ChunkState::Compute);
    assert_eq!(chunk_state([HoldAfterBwd, Hold]), ChunkState::Hold);
    assert_eq!(
        chunk_state([HoldAfterBwd, HoldAfterFwd]),
        ChunkState::HoldAfterFwd
    );
    assert_eq!(chunk_state([HoldAfterBwd, Free]), ChunkState::HoldAfterBwd);
    assert_eq!(chunk_state([Free, Free]), ChunkState::Released);
    assert_eq!(chunk_state([]), ChunkState::Released);
    assert!(!ChunkState::Compute.movable() && ChunkState::HoldAfterFwd.movable());
}

/// PatrickStar's `test_eviction_policy.py` golden vector: accesses chunk 0 at moment 0 and
/// chunk 1 at moment 1; with the wrap to the next iteration, at moment 0 the tie goes to the
/// lower id (evict 0), at moment 1 chunk 1's next use is further (evict 1). Two iterations of
/// the schedule give the wrap; a device holding one chunk forces the choice.
#[test]
fn belady_golden_vector_patrickstar() {
    let sched = Schedule {
        moments: vec![
            Moment {
                accesses: vec![ChunkId(0)],
                non_model: 0,
                label: Some(0),
            },
            Moment {
                accesses: vec![ChunkId(1)],
                non_model: 0,
                label: Some(1),
            },
        ],
    }
    .repeat(2)
    .unwrap();
    let o = PlacementOptions {
        device: 15,
        host: 100,
        nvme: 0,
        policy: Policy::Belady,
        prefetch: false,
    };
    let placement = place(&[10, 10], &sched, o).unwrap();
    shadow_check(&[10, 10], &sched, &o, &placement).unwrap();
    let evicted: Vec<u32> = placement
        .moves
        .iter()
        .filter(|m| m.from == Tier::Device)
        .map(|m| m.chunk.0)
        .collect();
    assert_eq!(evicted, [0, 1, 0]);
}

#[test]
fn training_schedule_matches_chunk_states() {
    let ts = [
        t("a", 50, 0, 5),
        t("b", 30, 1, 4),
        t("c", 40, 2, 3),
        t("d", 10, 2, 3),
    ];
    let l = Layout::new(&ts, 80).unwrap();
    let s = Schedule::training(&l, &ts, |m| m.map_or(7, |m| m * 10)).unwrap();
    let model: Vec<&Moment> = s.moments.iter().filter(|m| m.label.is_some()).collect();
    assert_eq!(model.len(), 6);
    for mo in &model {
        let m = mo.label.unwrap();
        assert_eq!(mo.non_model, m * 10);
        for p in 0..l.positions() {
            let state = chunk_state(l.members(p).iter().map(|&i| tensor_state_at(&ts[i], m)));
            let accessed = mo
                .accesses
                .contains(&ChunkId::new(p, StateKind::ParamFp16).unwrap());
            assert_eq!(
                state == ChunkState::Compute,
                accessed,
                "moment {m} position {p}"
            );
        }
    }
    let opt: Vec<&Moment> = s.moments.iter().filter(|m| m.label.is_none()).collect();
    assert_eq!(opt.len(), l.positions() as usize);
    assert!(
        opt.iter()
            .all(|m| m.accesses.len() == 4 && m.non_model == 7)
    );
}

#[test]
fn tiers_too_small_are_errors() {
    let sched = Schedule {
        moments: vec![Moment {
            accesses: vec![ChunkId(0), ChunkId(1)],
            non_model: 5,
            label: None,
        }],
    };
    let mut o = PlacementOptions {
        device: 24,
        host: 100,
        nvme: 0,
        policy: Policy::Lru,
        prefetch: true,
    };
    let e = place(&[10, 10], &sched, o).unwrap_err();
    assert_eq!(
        e,
        ChunkError::WorkingSetTooLarge {
            moment: 0,
            need: 20,
            have: 19
        }
    );
    assert!(e.to_string().contains("short by 1 bytes"), "{e}");
    o.device = 25;
    o.host = 15;
    o.nvme = 4;
    let e = place(&[10, 10], &sched, o).unwrap_err();
    assert_eq!(e, ChunkError::OffDeviceTooSmall { need: 30, have: 19 });
    o.nvme = 14;
    assert_eq!(
        place(&[10, 10], &sched, o).unwrap_err(),
        ChunkError::OffDeviceTooSmall { need: 30, have: 29 }
    );
    o.nvme = 15;
    place(&[10, 10], &sched, o).unwrap();
    let bad = Schedule {
        moments: vec![Moment {
            accesses: vec![ChunkId(9)],
            non_model: 0,
            label: None,
        }],
    };
    assert_eq!(
        place(&[10, 10], &bad, o).unwrap_err(),
        ChunkError::UnknownChunk {
            chunk: 9,
            moment: 0
        }
    );
}

/// Bad inputs to the constructors are errors, not panics.
#[test]
fn constructors_reject_bad_input() {
    assert_eq!(
        ChunkId::new(u32::MAX / 4 + 1, StateKind::ParamFp16),
        Err(ChunkError::Overflow { what: "chunk id" })
    );
    assert_eq!(
        ChunkId::new(u32::MAX / 4, StateKind::Variance),
        Ok(ChunkId(u32::MAX))
    );
    let ts = [t("a", 5, 0, 3), t("b", 5, 1, 2)];
    let l = Layout::new(&ts, 10).unwrap();
    assert_eq!(
        Schedule::training(&l, &ts[..1], |_| 0).unwrap_err(),
        ChunkError::LayoutMismatch {
            layout: 2,
            tensors: 1
        }
    );
    let more = [t("a", 5, 0, 3), t("b", 5, 1, 2), t("c", 5, 1, 2)];
    assert!(Schedule::training(&l, &more, |_| 0).is_err());
    let one = Schedule::training(&l, &ts, |_| 0).unwrap();
    assert_eq!(
        one.repeat(u64::MAX).unwrap_err(),
        ChunkError::Overflow { what: "moments" }
    );
    let n = u64::from(u32::MAX) / one.moments.len() as u64 + 1;
    assert!(one.repeat(n).is_err());
    assert_eq!(one.repeat(0).unwrap(), Schedule::default());
    assert_eq!(one.repeat(3).unwrap().moments.len(), 3 * one.moments.len());
    // An empty schedule repeated any number of times is empty, at once.
    assert_eq!(
        Schedule::default().repeat(u64::MAX).unwrap(),
        Schedule::default()
    );
    // Messages of hand-made errors with inconsistent amounts do not underflow.
    let odd = ChunkError::TensorTooLarge {
        tensor: "x".to_string(),
        numel: 1,
        chunk_numel: 2,
    };
    assert!(odd.to_string().contains("by 0 elements"));
    let odd = ChunkError::WorkingSetTooLarge {
        moment: 0,
        need: 1,
        have: 2,
    };
    assert!(odd.to_string().contains("short by 0 bytes"));
}

fn training_options(chunk_numel: Option<u64>, iterations: u64) -> TrainingOptions {
    TrainingOptions {
        chunk_numel,
        non_model: 3,
        iterations,
        placement: PlacementOptions {
            device: 200,
            host: 1000,
            nvme: 0,
            policy: Policy::Belady,
            prefetch: true,
        },
    }
}

/// The recipe checks its options before the tensors, and reports absurd sizes as errors.
#[test]
fn training_recipe_errors() {
    let ts = [t("a", 50, 0, 5), t("b", 30, 1, 4), t("c", 40, 2, 3)];
    assert_eq!(
        place_training(&ts, &training_options(Some(80), 0)).unwrap_err(),
        ChunkError::ZeroIterations
    );
    assert_eq!(
        place_training(&[], &training_options(None, 0)).unwrap_err(),
        ChunkError::ZeroIterations
    );
    assert_eq!(
        place_training(&[], &training_options(None, 1)).unwrap_err(),
        ChunkError::EmptyModel
    );
    assert_eq!(
        place_training(&ts, &training_options(Some(0), 1)).unwrap_err(),
        ChunkError::ZeroChunkSize
    );
    assert_eq!(
        place_training(&ts, &training_options(Some(u64::MAX), 1)).unwrap_err(),
        ChunkError::Overflow {
            what: "chunk bytes"
        }
    );
    assert!(matches!(
        place_training(&ts, &training_options(Some(40), 1)).unwrap_err(),
        ChunkError::TensorTooLarge { numel: 50, .. }
    ));
    assert_eq!(
        place_training(&ts, &training_options(Some(80), u64::MAX)).unwrap_err(),
        ChunkError::Overflow { what: "moments" }
    );
    let mut o = training_options(Some(80), 2);
    o.non_model = u64::MAX;
    assert!(matches!(
        place_training(&ts, &o).unwrap_err(),
        ChunkError::WorkingSetTooLarge { have: 0, .. }
    ));
    o.non_model = 0;
    o.placement.device = 2000;
    o.placement.host = 3000;
    place_training(&ts, &o).unwrap();
    o.placement.host = 10;
    assert!(matches!(
        place_training(&ts, &o).unwrap_err(),
        ChunkError::OffDeviceTooSmall { .. }
    ));
}

fn tensors_strategy() -> impl Strategy<Value = Vec<Tensor>> {
    prop::collection::vec((1u64..60, 0u64..20, 0u64..20), 1..25).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (n, a, b))| t(&format!("t{i}"), n, a.min(b), a.max(b)))
            .collect()
    })
}

fn schedule_strategy() -> impl Strategy<Value = (Vec<u64>, Schedule)> {
    prop::collection::vec(1u64..40, 1..12).prop_flat_map(|sizes| {
        let n = sizes.len() as u32;
        let moment = (prop::collection::vec(0..n, 0..4), 0u64..30).prop_map(|(a, nm)| Moment {
            accesses: {
                let mut a: Vec<ChunkId> = a.into_iter().map(ChunkId).collect();
                a.sort();
                a.dedup();
                a
            },
            non_model: nm,
            label: None,
        });
        (
            Just(sizes),
            prop::collection::vec(moment, 1..40).prop_map(|moments| Schedule { moments }),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 0, ..ProptestConfig::default() })]

    /// Every tensor gets one slot inside its chunk; slots of one position do not overlap;
    /// elements are conserved; positions follow order of first use.
    #[test]
    fn layout_conserves_tensors(ts in tensors_strategy(), extra in 0u64..50) {
        let cap = ts.iter().map(|x| x.numel).max().unwrap() + extra;
        let l = Layout::new(&ts, cap).unwrap();
        let mut seen = vec![0u32; ts.len()];
        let mut total = 0;
        for p in 0..l.positions() {
            let mut end = 0;
            for &i in l.members(p) {
                seen[i] += 1;
                let s = l.slot(i).unwrap();
                prop_assert_eq!(s.position, p);
                prop_assert_eq!(s.offset, end);
                end += ts[i].numel;
            }
            prop_assert!(end <= cap);
            prop_assert_eq!(end, l.used(p));
            total += end;
        }
        prop_assert!(seen.iter().all(|&k| k == 1));
        prop_assert_eq!(total + l.waste_numel(), cap * u64::from(l.positions()));
        for i in 0..ts.len() {
            for j in 0..ts.len() {
                if (ts[i].first_use, i) < (ts[j].first_use, j) {
                    prop_assert!(l.slot(i).unwrap().position <= l.slot(j).unwrap().position);
                }
            }
        }
    }

    /// The exact search equals brute force over every size in the range.
    #[test]
    fn size_search_matches_brute_force(ts in tensors_strategy(), span in 0u64..80) {
        let lo = ts.iter().map(|x| x.numel).max().unwrap();
        let hi = lo + span;
        let got = search_chunk_size(&ts, 1, hi).unwrap();
        let mut best: Option<(u64, u64)> = None;
        for c in lo..=hi {
            let w = Layout::new(&ts, c).unwrap().waste_numel();
            if best.is_none_or(|(bw, _)| w < bw) { best = Some((w, c)); }
        }
        let (w, c) = best.unwrap();
        prop_assert_eq!((got.waste_numel, got.chunk_numel), (w, c));
        prop_assert_eq!(got.positions, u64::from(Layout::new(&ts, c).unwrap().positions()));
    }

    /// Both policies, with and without prefetch: the shadow replay accepts the placement (moves from
    /// where the chunk is, capacities never exceeded, every access on the device), or the
    /// `place` reports an error that the inputs really have.
    #[test]
    fn placement_passes_shadow_check(
        (sizes, sched) in schedule_strategy(),
        device in 0u64..150, host in 0u64..200, nvme in 0u64..200,
        lru in any::<bool>(), prefetch in any::<bool>(),
    ) {
        let policy = if lru { Policy::Lru } else { Policy::Belady };
        let o = PlacementOptions { device, host, nvme, policy, prefetch };
        match place(&sizes, &sched, o) {
            Ok(placement) => {
                if let Err(e) = shadow_check(&sizes, &sched, &o, &placement) {
                    return Err(TestCaseError::fail(e));
                }
                prop_assert!(placement.prefetched <= placement.fetched);
                prop_assert_eq!(&placement, &place(&sizes, &sched, o).unwrap());
            }
            Err(ChunkError::WorkingSetTooLarge { moment, need, have }) => {
                let m = &sched.moments[moment as usize];
                prop_assert_eq!(need, m.accesses.iter().map(|c| sizes[c.index()]).sum::<u64>());
                prop_assert_eq!(have, device.saturating_sub(m.non_model));
                prop_assert!(need > have);
            }
            Err(ChunkError::OffDeviceTooSmall { need, have }) => {
                prop_assert!(need > have);
                prop_assert_eq!(have, host + nvme);
                let total = sizes.iter().sum::<u64>();
                let slack = if host >= total || nvme == 0 { 0 } else { *sizes.iter().max().unwrap() };
                prop_assert_eq!(need, total + slack);
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
        }
    }

    /// The recipe is the chain of its steps: the same layout, size choice, schedule and
    /// placement (or the same error) as calling search, layout, training schedule, repeat and
    /// place by hand; its counts agree with its parts, and the last iteration's bytes are a
    /// part of all bytes (all of them for one iteration).
    #[test]
    fn training_recipe_is_the_steps(
        ts in tensors_strategy(), fixed in prop::option::of(60u64..120),
        iterations in 1u64..4, non_model in 0u64..40,
        device in 0u64..4000, host in 0u64..12000, nvme in 0u64..6000,
        lru in any::<bool>(), prefetch in any::<bool>(),
    ) {
        let policy = if lru { Policy::Lru } else { Policy::Belady };
        let placement = PlacementOptions { device, host, nvme, policy, prefetch };
        let o = TrainingOptions { chunk_numel: fixed, non_model, iterations, placement };
        let by_hand = (|| {
            let biggest = ts.iter().map(|x| x.numel).max().unwrap();
            let choice = match fixed {
                Some(_) => None,
                None => Some(search_chunk_size(&ts, biggest, 2 * biggest)?),
            };
            let layout = Layout::new(&ts, fixed.unwrap_or_else(|| choice.unwrap().chunk_numel))?;
            let one = Schedule::training(&layout, &ts, |_| non_model)?;
            let schedule = one.repeat(iterations)?;
            let placed = place(&layout.chunk_sizes(), &schedule, placement)?;
            Ok::<_, ChunkError>((layout, choice, one, schedule, placed))
        })();
        match (place_training(&ts, &o), by_hand) {
            (Ok(r), Ok((layout, choice, one, schedule, placed))) => {
                prop_assert_eq!(r.layout(), &layout);
                prop_assert_eq!(r.size_choice(), choice);
                prop_assert_eq!(r.schedule(), &schedule);
                prop_assert_eq!(r.placement(), &placed);
                prop_assert_eq!(r.chunk_sizes(), layout.chunk_sizes());
                prop_assert_eq!(r.iterations(), iterations);
                prop_assert_eq!(r.moments_per_iteration(), one.moments.len());
                prop_assert_eq!(r.moments(), iterations * one.moments.len() as u64);
                let last = r.last_iteration_bytes();
                for (a, b) in last.iter().flatten().zip(placed.bytes.iter().flatten()) {
                    prop_assert!(a <= b);
                }
                if iterations == 1 {
                    prop_assert_eq!(last, placed.bytes);
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => return Err(TestCaseError::fail(format!("recipe {a:?}, steps {b:?}"))),
        }
    }

    /// Without prefetch and with one chunk size, Belady is optimal for device fetches, so it
    /// never fetches more to the device than LRU (a law for uniform sizes, demand paging).
    #[test]
    fn belady_fetches_no_more_than_lru_uniform(
        (sizes, sched) in schedule_strategy(), k in 1u64..6,
    ) {
        let sizes: Vec<u64> = sizes.iter().map(|_| 10).collect();
        let sched = Schedule { moments: sched.moments.into_iter().map(|mut m| { m.non_model = 0; m }).collect() };
        let o = |policy| PlacementOptions { device: 10 * k.max(3), host: 1000, nvme: 0, policy, prefetch: false };
        let b = place(&sizes, &sched, o(Policy::Belady)).unwrap();
        let l = place(&sizes, &sched, o(Policy::Lru)).unwrap();
        prop_assert!(b.fetched <= l.fetched, "belady {} lru {}", b.fetched, l.fetched);
    }
}
