use core::time::Duration;

use super::Deadline;
use crate::pack::{Budget, Buffer, PackOptions, Problem, Solution, Stop, Unproven, pack};

/// Five buffers whose heuristics-only plan peaks at 14, while the search proves 13 optimal
/// (after 6 nodes).
fn needs_search() -> Problem {
    Problem::from_buffers([
        Buffer::new("a", 4, 8, 5),
        Buffer::new("b", 5, 6, 4),
        Buffer::new("c", 4, 6, 4),
        Buffer::new("d", 1, 5, 4),
        Buffer::new("e", 0, 2, 6),
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
    assert_eq!((heuristics.peak, heuristics.optimal), (14, false));
    assert_eq!((searched.peak, searched.optimal), (13, true));
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
