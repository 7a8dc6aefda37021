//! The `capi` fuzz check under `cargo test`: every saved input in `fuzz/regressions/capi/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check itself lives in
//! the fuzz crate (`fuzz/src/capi.rs`); it is included here by path so that the ffi crate
//! owns the test and no dependency is added.

#[path = "../../fuzz/src/capi.rs"]
mod capi;
#[path = "../../fuzz/src/harness.rs"]
mod harness;
#[path = "../../fuzz/src/reader.rs"]
mod reader;

/// Random byte strings per run.
const CASES: u64 = 1000;

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/capi");
    harness::replay_saved(&dir, capi::check);
}

#[test]
fn random_bytes_pass_the_capi_check() {
    harness::random_cases(CASES, 8 * capi::MAX_OPS as u64, capi::check);
}
