use core::time::Duration;

use super::Deadline;
use crate::pack::{Budget, Buffer, PackOptions, Problem, Solution, Stop, Unproven, pack};

/// Nine buffers whose first-pass plan peaks at 18 and whose ten greedy passes all miss the
/// optimum, which the search proves to be 16
/// (after 9 nodes).
fn needs_search() -> Problem {
    Problem::from_buffers([
        Buffer::new("a", 3, 5, 6),
        Buffer::new("b", 1, 5, 1),
        Buffer::new("c", 7, 10, 2),
        Buffer::new("d", 5, 8, 3),
        Buffer::new("e", 4, 6, 3),
        Buffer::new("f", 4, 8, 6),
        Buffer::new("g", 0, 2, 5),
        Buffer::new("h", 7, 10, 5),
        Buffer::new("i", 2, 3, 1),
    ])
    .unwrap()
}

fn pack_with(problem: &Problem, budget: Budget<'_>) -> Solution {
    pack(
        problem,
        PackOptions {
            capacity: None,
            budget,
        },
    )
    .unwrap()
}

fn nodes(max_nodes: Option<u64>) -> Budget<'static> {
    Budget {
        max_nodes,
        stop: None,
    }
}

#[test]
fn the_instance_needs_the_search() {
    let p = needs_search();
    let heuristics = pack_with(&p, nodes(Some(0)));
    let searched = pack_with(&p, nodes(None));
    assert_eq!((heuristics.peak, heuristics.optimal), (18, false));
    assert_eq!((searched.peak, searched.optimal), (16, true));
    assert!(searched.nodes > 0);
}

#[test]
fn a_zero_limit_means_heuristics_only_and_is_reached() {
    let p = needs_search();
    let mut deadline = Deadline::from_now(Some(Duration::ZERO));
    assert!(!deadline.reached(), "not reached before it is asked");
    let s = pack_with(&p, deadline.budget(None));
    assert!(deadline.reached());
    // The same plan as a zero node budget; only the reason it is not proven differs.
    let by_nodes = pack_with(&p, nodes(Some(0)));
    assert_eq!(s.unproven, Some(Unproven::TimeLimit));
    assert_eq!(by_nodes.unproven, Some(Unproven::NodeLimit));
    assert_eq!(
        Solution {
            unproven: by_nodes.unproven,
            ..s
        },
        by_nodes
    );
}

#[test]
fn no_limit_gives_no_stop_condition_and_is_never_reached() {
    let p = needs_search();
    for limit in [None, Some(Duration::MAX)] {
        // `Duration::MAX` does not fit in an `Instant`: no limit, and no panic.
        let mut deadline = Deadline::from_now(limit);
        let budget = deadline.budget(Some(7));
        assert!(budget.stop.is_none(), "{limit:?}");
        assert_eq!(budget.max_nodes, Some(7));
        let s = pack_with(&p, deadline.budget(None));
        assert!(!deadline.reached());
        assert!(!deadline.should_stop());
        assert_eq!(s, pack_with(&p, nodes(None)));
    }
}

#[test]
fn a_distant_limit_does_not_change_the_plan() {
    let p = needs_search();
    let mut deadline = Deadline::from_now(Some(Duration::from_secs(3600)));
    let s = pack_with(&p, deadline.budget(Some(3)));
    assert!(!deadline.reached());
    assert_eq!(s, pack_with(&p, nodes(Some(3))));
    assert!(deadline.elapsed() < Duration::from_secs(3600));
}

#[test]
fn a_passed_limit_stops_and_stays_reached() {
    let mut deadline = Deadline::from_now(Some(Duration::from_millis(1)));
    assert!(deadline.budget(None).stop.is_some());
    std::thread::sleep(Duration::from_millis(5));
    assert!(deadline.elapsed() >= Duration::from_millis(5));
    assert!(deadline.should_stop());
    assert!(deadline.should_stop());
    assert!(deadline.reached());
}
