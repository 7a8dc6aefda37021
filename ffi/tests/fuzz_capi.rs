//! The `capi` fuzz check under `cargo test`: every saved input in `fuzz/regressions/capi/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check itself lives in
//! the fuzz crate (`fuzz/src/capi.rs`); it is included here by path so that the ffi crate
//! owns the test and no dependency is added.

#[path = "../../fuzz/src/capi.rs"]
mod capi;
#[path = "../../fuzz/src/reader.rs"]
mod reader;

/// Random byte strings per run.
const CASES: u64 = 1000;

/// xorshift64* (Vigna): enough to spread bytes over the op space; deterministic, so a failure
/// names its case number and reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The bytes of case `i`: lengths from 0 up to about 8 bytes per op.
fn case(i: u64) -> Vec<u8> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1);
    let max_len = 8 * capi::MAX_OPS as u64;
    let len = rng.next() % (max_len + 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/capi");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // no saved inputs yet
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("read saved input");
        if std::panic::catch_unwind(|| capi::check(&data)).is_err() {
            panic!("saved input {} fails: {data:02x?}", f.display());
        }
    }
}

#[test]
fn random_bytes_pass_the_capi_check() {
    for i in 0..CASES {
        let data = case(i);
        if std::panic::catch_unwind(|| capi::check(&data)).is_err() {
            panic!("case {i} fails: {data:02x?}");
        }
    }
}
