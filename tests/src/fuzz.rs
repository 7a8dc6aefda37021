//! What the `cargo test` twins of the fuzz targets share: deterministic pseudo-random inputs,
//! and replaying the inputs saved in `fuzz/regressions/<target>/`.

use std::path::{Path, PathBuf};

/// The bytes of case `i`: a length from 0 to `max_len`, then that many bytes, from an
/// xorshift64* generator (Vigna) seeded by `i`. Deterministic, so a failure names its case
/// number and reproduces.
pub fn case(i: u64, max_len: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15 ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let len = next() % (max_len + 1);
    (0..len).map(|_| next() as u8).collect()
}

/// The folder of saved inputs of fuzz target `target`: `fuzz/regressions/<target>`.
pub fn regressions(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target)
}

/// Runs `check` on every file in `dir` (in name order; none when the folder is absent),
/// failing with the file's name and bytes.
pub fn replay_saved(dir: &Path, check: fn(&[u8])) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // no saved inputs yet
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("read saved input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("saved input {} fails: {data:02x?}", f.display());
        }
    }
}

/// Runs `check` on cases `0..cases` of [`case`], failing with the case number and bytes.
pub fn random_cases(cases: u64, max_len: u64, check: fn(&[u8])) {
    for i in 0..cases {
        let data = case(i, max_len);
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("case {i} fails: {data:02x?}");
        }
    }
}
