//! The `pack` fuzz check ([`memplan_core::fuzzing::pack::check`]) under `cargo test`: every
//! saved input in `fuzz/regressions/pack/`, then random bytes for a few thousand cases.

use memplan_core::fuzzing::pack;
use memplan_tests::fuzz::{regressions, replay_saved};
use proptest::prelude::*;

/// [`pack::check`], printing what the input decodes to when it fails.
fn check_explained(data: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| pack::check(data)) {
        eprintln!("FAILED: {data:02x?} decodes to {:#?}", pack::decode(data));
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = regressions("pack");
    let saved = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .count();
    assert!(saved > 0, "no saved inputs in {}", dir.display());
    replay_saved(&dir, check_explained);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 2048 },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_pass_the_fuzz_check(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        pack::check(&data);
    }
}
