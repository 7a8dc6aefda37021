//! Support for the cross-crate integration tests in `tests/tests/`.
//!
//! [`require`]: what a test does when `../shared` or a tool is missing (fails under
//! `CI=true`, prints SKIP otherwise).
//!
//! [`fuzz`]: what the `cargo test` twins of the fuzz targets share (deterministic
//! pseudo-random inputs, replaying saved regressions). The checks themselves live behind the
//! `fuzzing` features of `memplan-core` and `memplan-ffi`.

pub mod fuzz;
pub mod require;
