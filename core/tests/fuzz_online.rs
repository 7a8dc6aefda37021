//! The `online` fuzz check under `cargo test`: every saved input in `fuzz/regressions/online/`
//! (if any), then ~1000 deterministic pseudo-random byte strings. The check itself, with its
//! shadow model of the allocator, lives in the fuzz crate (`fuzz/src/online.rs`); it is
//! included here by path because core cannot depend on that crate.

#[path = "../../fuzz/src/online.rs"]
mod online;
#[path = "../../fuzz/src/reader.rs"]
mod reader;

/// Random byte strings per run.
const CASES: u64 = 1000;

/// xorshift64* (Vigna): deterministic, so a failure names its case number and reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The bytes of case `i`: two config bytes, then up to about 3 bytes per op on average.
fn case(i: u64) -> Vec<u8> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1);
    let max_len = 2 + 3 * online::MAX_OPS as u64;
    let len = rng.next() % (max_len + 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/online");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // no saved inputs yet
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("read saved input");
        if std::panic::catch_unwind(|| online::check(&data)).is_err() {
            panic!("saved input {} fails: {data:02x?}", f.display());
        }
    }
}

#[test]
fn random_bytes_pass_the_online_check() {
    for i in 0..CASES {
        let data = case(i);
        if std::panic::catch_unwind(|| online::check(&data)).is_err() {
            panic!("case {i} fails: {data:02x?}");
        }
    }
}

/// Fixed inputs that reach the interesting paths: a capacity refusal, growth that extends the
/// free tail, a bogus free, and trim.
#[test]
fn hand_written_inputs_pass() {
    // 4 KiB pages, base 0, capacity 2 pages; alloc 4 KiB (mode 6, x = 0), alloc 2 pages
    // (OOM), free bogus interior, free live, trim.
    online::check(&[
        0x05, 3, 0, 6, 0, 0, 0, 0, 0, 6, 1, 0, 0, 0, 6, 0, 4, 0, 0, 7,
    ]);
    // 512-byte pages, default base, no capacity; an alloc near u64::MAX (OOM by address
    // space), tiny allocs, trims.
    online::check(&[0x00, 0, 1, 7, 5, 0, 0, 0, 2, 1, 9, 0, 0, 0, 7, 4, 1, 0, 7]);
    online::check(&[]);
}
