//! The `plan_file` fuzz case: arbitrary bytes → [`Plan::from_bytes`] → checks.
//!
//! Uses only `memplan_core` and `std`, because `core/tests/fuzz_plan_file.rs` includes this
//! file with `#[path]` so that `cargo test` runs the same [`check`].
//!
//! Random bytes almost never carry a correct checksum, so [`check`] also decodes a copy whose
//! last 8 bytes are replaced by the checksum of the rest: that lets the fuzzer reach the slot
//! table and [`Plan::validate`] instead of stopping at `ChecksumMismatch`.

use memplan_core::plan::{CHECKSUM_LEN, Plan, checksum};

/// Decodes `data` (as given, and with its checksum fixed up) and checks every decoded plan:
/// it validates, re-encodes to exactly the input, and decodes again to the same plan.
pub fn check(data: &[u8]) {
    check_one(data);
    if data.len() >= CHECKSUM_LEN {
        let n = data.len() - CHECKSUM_LEN;
        let mut fixed = data.to_vec();
        let sum = checksum(&fixed[..n]);
        fixed[n..].copy_from_slice(&sum.to_le_bytes());
        check_one(&fixed);
    }
}

fn check_one(data: &[u8]) {
    let Ok(plan) = Plan::from_bytes(data) else {
        return;
    };
    plan.validate().expect("a decoded plan validates");
    let bytes = plan.to_bytes();
    assert_eq!(bytes, data, "the encoding is canonical");
    let again = Plan::from_bytes(&bytes).expect("a re-encoded plan decodes");
    assert_eq!(again, plan, "decode(encode(plan)) == plan");
}
