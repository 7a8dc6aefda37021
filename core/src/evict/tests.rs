//! Unit and property tests of the rematerialization runtime.

use super::*;

#[test]
fn chain_recomputes_evicted_parent() {
    // a (const) -> b -> c -> d ; budget fits a + two activations.
    let mut rt = Runtime::new(300, Heuristic::Dtr, None);
    let a = rt.constant(100).unwrap();
    let b = rt.register(100, 10, &[a], false).unwrap();
    let c = rt.register(100, 10, &[b], false).unwrap();
    let _ = rt.take_actions();
    // d needs room: b or c goes.
    let d = rt.register(100, 10, &[c], false).unwrap();
    let acts = rt.take_actions();
    assert!(matches!(acts[0], Action::Evict(_)));
    assert!(rt.stats().memory <= 300);
    // b is gone (c is d's argument and was locked); materializing b recomputes it.
    assert!(!rt.is_defined(b).unwrap());
    assert!(rt.is_defined(d).unwrap());
    let ops = rt.materialize(b).unwrap();
    assert_eq!(ops, vec![rt.producer(b).unwrap()]);
    assert!(rt.is_defined(b).unwrap());
    assert!(rt.stats().memory <= 300);
    assert_eq!(rt.stats().remat_compute, 10);
}

#[test]
fn oom_when_everything_is_pinned() {
    let mut rt = Runtime::new(150, Heuristic::Lru, None);
    rt.constant(100).unwrap();
    let e = rt.constant(100).unwrap_err();
    assert!(matches!(e, RematError::OutOfMemory { .. }));
    // Poisoned afterwards.
    assert!(rt.constant(1).is_err());
}

proptest::proptest! {
    /// Random op sequences: resident bytes never exceed the budget unless OOM is reported,
    /// and every op the runtime runs finds all its arguments resident (a shadow model replays
    /// the action list: evictions clear storages, computes need resident arguments).
    #[test]
    fn budget_and_recompute_order(
        ops in proptest::collection::vec((1u64..200, 0u64..50, 0usize..8, 0usize..8, 0u8..4), 1..60),
        budget in 300u64..1500,
        h in 0usize..7,
    ) {
        let mut rt = Runtime::new(budget, Heuristic::ALL[h], None);
        let mut live: Vec<TensorId> = Vec::new();
        let mut resident: alloc::collections::BTreeSet<StorageId> = alloc::collections::BTreeSet::new();
        let c = match rt.constant(50) { Ok(c) => c, Err(_) => return Ok(()) };
        resident.insert(rt.storage_of(c).unwrap());
        live.push(c);
        for (size, cost, a, b, kind) in ops {
            let r = match kind {
                0 if live.len() > 1 => {
                    let t = live.remove(a % live.len());
                    rt.release(t).map(|_| ())
                }
                1 => rt.materialize(live[a % live.len()]).map(|_| ()),
                _ => {
                    let args = [live[a % live.len()], live[b % live.len()]];
                    rt.compute(cost, &args, &[Output::Fresh(size)]).map(|o| live.push(o[0]))
                }
            };
            for act in rt.take_actions() {
                match act {
                    Action::Evict(s) => { resident.remove(&s); }
                    Action::Compute { op, .. } => {
                        let (args, outs) = rt.op_io(op).unwrap();
                        for &p in args {
                            let s = rt.storage_of(p).unwrap();
                            proptest::prop_assert!(resident.contains(&s), "op {:?} ran with an evicted argument", op);
                        }
                        for &o in outs {
                            resident.insert(rt.storage_of(o).unwrap());
                        }
                    }
                }
            }
            match r {
                Ok(()) => proptest::prop_assert!(rt.stats().memory <= budget),
                Err(RematError::OutOfMemory { .. }) => break,
                Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
            }
            // The shadow's resident set matches the runtime's.
            for s in &resident {
                proptest::prop_assert!(rt.is_resident(*s));
            }
        }
    }
}
