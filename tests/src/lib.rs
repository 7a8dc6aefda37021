//! Support for the cross-crate integration tests in `tests/tests/`.
//!
//! [`fuzz`]: what the `cargo test` twins of the fuzz targets share (deterministic
//! pseudo-random inputs, replaying saved regressions). The checks themselves live behind the
//! `fuzzing` features of `memplan-core` and `memplan-ffi`.

pub mod fuzz;
