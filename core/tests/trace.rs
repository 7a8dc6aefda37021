//! The trace builder against a naive model: it accepts exactly the valid events, reports the
//! right error with the right index for the invalid ones, and changes nothing on error.

use memplan_core::Error;
use memplan_core::trace::{Event, Marker, TraceBuilder};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc(u64, u64, u32),
    Free(u64),
    Mark,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..6, 0u64..3, 0u32..2).prop_map(|(i, s, st)| Op::Alloc(i, s * 512, st)),
        (0u64..6).prop_map(Op::Free),
        Just(Op::Mark),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 1024 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn builder_matches_a_naive_model(ops in prop::collection::vec(op(), 0..40), zero in any::<bool>()) {
        let mut b = TraceBuilder::new().allow_zero_size(zero);
        // Naive model: id -> Some(alloc index) while live; last free index per id.
        let mut live: Vec<Option<usize>> = vec![None; 6];
        let mut freed: Vec<Option<usize>> = vec![None; 6];
        let mut accepted: Vec<Event> = Vec::new();
        let (mut now, mut peak) = (0u64, 0u64);
        let mut sizes = [0u64; 6];
        for o in ops {
            let index = accepted.len();
            prop_assert_eq!(b.next_index(), index);
            match o {
                Op::Alloc(id, size, stream) => {
                    let r = b.alloc(id, size, stream);
                    let k = id as usize;
                    if let Some(at) = live[k] {
                        prop_assert_eq!(r, Err(Error::IdReused { index, id, allocated_at: at }));
                    } else if size == 0 && !zero {
                        prop_assert_eq!(r, Err(Error::ZeroSizeAlloc { index, id }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        live[k] = Some(index);
                        freed[k] = None;
                        sizes[k] = size;
                        now += size;
                        peak = peak.max(now);
                        accepted.push(Event::Alloc { id, size, stream });
                    }
                }
                Op::Free(id) => {
                    let r = b.free(id);
                    let k = id as usize;
                    if live[k].is_some() {
                        prop_assert_eq!(r, Ok(()));
                        live[k] = None;
                        freed[k] = Some(index);
                        now -= sizes[k];
                        accepted.push(Event::Free { id });
                    } else {
                        prop_assert_eq!(r, Err(Error::UnknownFree { index, id, freed_at: freed[k] }));
                    }
                }
                Op::Mark => {
                    b.marker(Marker::IterationStart);
                    accepted.push(Event::Marker(Marker::IterationStart));
                }
            }
        }
        let live_ids: Vec<u64> = (0..6u64).filter(|&k| live[k as usize].is_some()).collect();
        prop_assert_eq!(b.live_ids().collect::<Vec<_>>(), live_ids);
        let t = b.finish();
        prop_assert_eq!(t.events(), &accepted[..]);
        prop_assert_eq!(t.peak_requested(), peak);
        prop_assert_eq!(t.allocs(), accepted.iter().filter(|e| matches!(e, Event::Alloc { .. })).count());
    }
}

#[test]
fn errors_name_the_event() {
    let mut b = TraceBuilder::new();
    b.alloc(7, 512, 0).unwrap();
    b.marker(Marker::Phase("forward".into()));
    assert_eq!(
        b.alloc(7, 512, 1).unwrap_err().to_string(),
        "event 2: allocation 7 is still live (allocated at event 0)"
    );
    assert_eq!(
        b.free(8).unwrap_err().to_string(),
        "event 2: free of allocation 8, which is not live"
    );
    assert_eq!(
        b.alloc(9, 0, 0).unwrap_err().to_string(),
        "event 2: allocation 9 has size 0"
    );
    b.free(7).unwrap();
    b.alloc(7, 1024, 0).unwrap(); // reuse after free is fine, as addresses are reused
    assert_eq!(b.finish().len(), 4);
}

#[test]
fn offline_buffers_become_a_valid_trace_with_the_same_peak() {
    use memplan_core::{Buffer, Problem};
    let p = Problem::from_buffers([
        Buffer::new("a", 0, 3, 4),
        Buffer::new("b", 3, 9, 4),
        Buffer::new("c", 0, 9, 4),
        Buffer::new("d", 9, 21, 4),
    ])
    .unwrap();
    let t = memplan_core::trace::Trace::from_buffers(p.buffers());
    // Replaying through the validating builder accepts every event.
    let mut b = TraceBuilder::new();
    for e in t.events() {
        match e {
            Event::Alloc { id, size, stream } => b.alloc(*id, *size, *stream).unwrap(),
            Event::Free { id } => b.free(*id).unwrap(),
            Event::Marker(m) => b.marker(m.clone()),
        }
    }
    assert_eq!(b.finish(), t);
    assert_eq!(t.peak_requested(), p.max_load());
    // At time 3, a's free comes before b's alloc.
    assert_eq!(t.events()[2], Event::Free { id: 0 });
    assert_eq!(
        t.events()[3],
        Event::Alloc {
            id: 1,
            size: 4,
            stream: 0
        }
    );
}
