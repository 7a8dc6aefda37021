#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memplan_fuzz::plan_file::check(data));
