//! Fuzzing support for memplan: decoders from bytes to test cases, and the checks the fuzz
//! targets run. Each target in `fuzz_targets/` is a three-line wrapper around one `check`.

pub mod capi;
pub mod online;
pub mod oracle;
pub mod pack;
pub mod plan_file;
pub mod reader;
