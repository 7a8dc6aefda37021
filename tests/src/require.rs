//! What a test does when its data (`../shared`) or a tool (a C compiler, `nm`) is missing.
//!
//! Under `CI=true` a missing prerequisite is a failure, with a message saying what is missing:
//! CI runs on a machine set up by `.ci/run`, so anything missing there is a broken setup, not
//! a reason to pass. Outside CI the test prints `SKIP: …` and passes, so `cargo test` works on
//! a fresh clone without `../shared`.

use std::path::{Path, PathBuf};

/// Whether the tests run in CI: `CI` is set to anything but empty, `0` or `false`.
pub fn on_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        Err(_) => false,
    }
}

/// Reports a missing prerequisite: panics with `what` under CI ([`on_ci`]), prints
/// `SKIP: {what}` to stderr otherwise. The caller returns right after.
pub fn skip_or_fail(what: &str) {
    if on_ci() {
        panic!("required under CI=true: {what}");
    }
    eprintln!("SKIP: {what}");
}

/// The workspace root (the folder holding `Cargo.toml` of the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared/<rel>` beside the workspace, if it exists; otherwise [`skip_or_fail`] naming it
/// and `None`. `rel` is relative to `shared/` (e.g. `traces/external/dtr`).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = workspace_root().join("..").join("shared").join(rel);
    if path.exists() {
        Some(path)
    } else {
        skip_or_fail(&format!("{} is absent", path.display()));
        None
    }
}
