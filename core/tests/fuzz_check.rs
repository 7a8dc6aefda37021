//! The `pack` fuzz check under `cargo test`: every saved input in `fuzz/regressions/pack/`,
//! then random bytes for a few hundred cases. The check itself lives in the fuzz crate
//! (`fuzz/src/pack.rs`); it is included here by path because core cannot depend on that crate.

#[path = "../../fuzz/src/oracle.rs"]
mod oracle;
#[path = "../../fuzz/src/pack.rs"]
mod pack;
#[path = "../../fuzz/src/reader.rs"]
#[allow(dead_code)] // `pack` reads no `u32`; the `capi` check does
mod reader;

use proptest::prelude::*;

#[test]
fn saved_fuzz_inputs_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/pack");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("read saved input");
        if std::panic::catch_unwind(|| pack::check(&data)).is_err() {
            eprintln!(
                "FAILED: {} decodes to {:#?}",
                f.display(),
                pack::decode(&data)
            );
            failed.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    assert!(failed.is_empty(), "saved fuzz inputs fail: {failed:?}");
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 2048 },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_pass_the_fuzz_check(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        pack::check(&data);
    }
}
