//! The `online` fuzz check under `cargo test`: every saved input in `fuzz/regressions/online/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check itself, with its
//! shadow model of the allocator, lives in the fuzz crate (`fuzz/src/online.rs`); it is
//! included here by path because core cannot depend on that crate.

#[path = "../../fuzz/src/harness.rs"]
mod harness;
#[path = "../../fuzz/src/online.rs"]
mod online;
#[path = "../../fuzz/src/reader.rs"]
mod reader;

/// Random byte strings per run.
const CASES: u64 = 1000;

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/online");
    harness::replay_saved(&dir, online::check);
}

#[test]
fn random_bytes_pass_the_online_check() {
    harness::random_cases(CASES, 2 + 3 * online::MAX_OPS as u64, online::check);
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
