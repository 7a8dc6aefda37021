//! What is left of the fuzz crate's library: the `capi` check, until it moves to the ffi
//! crate. The other checks live in `memplan_core::fuzzing` (feature `fuzzing`); each target in
//! `fuzz_targets/` is a three-line wrapper around one `check`.

pub mod capi;
