//! The `capi` fuzz check under `cargo test`: every saved input in `fuzz/regressions/capi/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check itself still lives
//! in the fuzz crate (`fuzz/src/capi.rs`) and is included here by path until it moves to the
//! ffi crate.

#[path = "../../fuzz/src/capi.rs"]
mod capi;

use memplan_tests::fuzz::{random_cases, regressions, replay_saved};

/// Random byte strings per run.
const CASES: u64 = 1000;

#[test]
fn saved_fuzz_inputs_pass() {
    replay_saved(&regressions("capi"), capi::check);
}

#[test]
fn random_bytes_pass_the_capi_check() {
    random_cases(CASES, 8 * capi::MAX_OPS as u64, capi::check);
}
