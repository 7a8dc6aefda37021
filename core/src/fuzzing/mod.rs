//! Checks shared by the fuzz targets (`fuzz/fuzz_targets/*`) and `cargo test`.
//!
//! Compiled only with the `fuzzing` feature. Each target module has one `check(data: &[u8])`
//! entry point: it decodes arbitrary bytes into a test case (every byte string is valid) and
//! panics when the code under test disagrees with an independent oracle. A fuzz target is a
//! three-line wrapper around one `check`; the same `check` runs on saved regressions and
//! pseudo-random inputs under `cargo test` (`tests/tests/fuzz_<target>.rs`).
//!
//! Like the rest of core this is `no_std` + `alloc`: no I/O, no clocks, no `catch_unwind`
//! (the std harness that replays inputs is `memplan_tests::fuzz`).
//!
//! # Modules
//! - [`pack`]: the offline packer ([`crate::pack()`], [`crate::greedy_by_size`],
//!   `Problem::push`) against [`check::verify`](crate::check::verify) and [`oracle`].
//! - [`online`]: the online allocator against [`online::Shadow`], an independent model of
//!   its documented policy (also driven by core's property test `tests/online_shadow.rs`).
//! - [`plan_file`]: the guided allocator's plan file format ([`crate::plan::Plan`]):
//!   decode, validate, re-encode, serve.
//! - [`oracle`]: naive oracles for packing (max load by definition, optimal peak by brute
//!   force), sharing no code with the packer; also used by core's property tests.
//! - [`remat`]: the rematerialization runtime ([`crate::remat::Runtime`], every mode) against
//!   the naive model `crate::remat::model`.
//! - [`reader`]: the byte reader every decoder uses (an input that ends early reads as zeros).
//!
//! Invariant: every `check` accepts every byte string; a panic means a bug (in the code under
//! test or in the check), never a malformed input.

pub mod online;
pub mod oracle;
pub mod pack;
pub mod plan_file;
pub mod reader;
pub mod remat;
