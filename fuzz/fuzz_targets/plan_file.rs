#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memplan_core::fuzzing::plan_file::check(data));
