//! `memplan_tests::require`: CI detection and what `shared_data` answers.

use memplan_tests::require::{on_ci, shared_data, skip_or_fail};

#[test]
fn a_missing_shared_file_is_none_outside_ci_and_a_failure_under_ci() {
    let missing = "no/such/file/anywhere.json";
    if on_ci() {
        let r = std::panic::catch_unwind(|| shared_data(missing));
        assert!(r.is_err(), "under CI a missing file must fail the test");
    } else {
        assert_eq!(shared_data(missing), None);
    }
}

#[test]
fn skip_or_fail_panics_only_under_ci() {
    let r = std::panic::catch_unwind(|| skip_or_fail("a tool"));
    assert_eq!(r.is_err(), on_ci());
}
