//! The `cargo test` twin of the `remat` fuzz target (`memplan_core::fuzzing::remat`): the
//! saved inputs in `fuzz/regressions/remat/`, then deterministic pseudo-random ones.

use memplan_core::fuzzing::remat::check;
use memplan_tests::fuzz::{random_cases, regressions, replay_saved};

#[test]
fn saved_inputs() {
    replay_saved(&regressions("remat"), check);
}

#[test]
fn random_inputs() {
    random_cases(1000, 600, check);
}
