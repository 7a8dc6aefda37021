//! The `online` fuzz check ([`memplan_core::fuzzing::online::check`], which drives the online
//! allocator against its shadow model) under `cargo test`: every saved input in
//! `fuzz/regressions/online/` (if any), then ~1000 deterministic pseudo-random byte strings.

use memplan_core::fuzzing::online;
use memplan_tests::fuzz::{random_cases, regressions, replay_saved};

/// Random byte strings per run.
const CASES: u64 = 1000;

#[test]
fn saved_fuzz_inputs_pass() {
    replay_saved(&regressions("online"), online::check);
}

#[test]
fn random_bytes_pass_the_online_check() {
    random_cases(CASES, 2 + 3 * online::MAX_OPS as u64, online::check);
}

/// Fixed inputs that reach the interesting paths: a capacity refusal, growth that extends the
/// free tail, a bogus free, and trim.
#[test]
fn hand_written_inputs_pass() {
    // 4 KiB pages, base 0, capacity 2 pages; alloc 4 KiB (mode 6, x = 0), alloc 2 pages
    // (OOM), free bogus interior, free live, trim.
    online::check(&[
        0x05, 3, 0, 6, 0, 0, 0, 0, 0, 6, 1, 0, 0, 0, 6, 0, 4, 0, 0, 7,
    ]);
    // 512-byte pages, default base, no capacity; an alloc near u64::MAX (OOM by address
    // space), tiny allocs, trims.
    online::check(&[0x00, 0, 1, 7, 5, 0, 0, 0, 2, 1, 9, 0, 0, 0, 7, 4, 1, 0, 7]);
    online::check(&[]);
}
