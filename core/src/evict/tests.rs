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
