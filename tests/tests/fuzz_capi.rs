//! The `capi` fuzz check under `cargo test`: every saved input in `fuzz/regressions/capi/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check lives in the ffi
//! crate (`memplan::fuzzing`, feature `fuzzing`), shared with `fuzz/fuzz_targets/capi.rs`.

use memplan::fuzzing::{MAX_OPS, check};
use memplan_tests::fuzz::{random_cases, regressions, replay_saved};

/// Random byte strings per run.
const CASES: u64 = 1000;

#[test]
fn saved_fuzz_inputs_pass() {
    replay_saved(&regressions("capi"), check);
}

#[test]
fn random_bytes_pass_the_capi_check() {
    random_cases(CASES, 8 * MAX_OPS as u64, check);
}
