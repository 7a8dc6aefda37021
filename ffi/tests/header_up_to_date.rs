//! The committed header `include/memplan.h` must equal what cbindgen generates from this crate
//! now, and its version macros must equal the crate version.
//!
//! Regenerate with `UPDATE_HEADER=1 cargo test -p memplan-ffi --test header_up_to_date`.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../include/memplan.h")
}

/// The header as cbindgen (the pinned library version) generates it, in memory.
fn generate() -> String {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml should parse");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen should generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen output is UTF-8")
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  committed: {x}\n  generated: {y}", i + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn header_up_to_date() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("UPDATE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/memplan.h");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/memplan.h is stale (it differs from what cbindgen generates from ffi/src).\n\
         Regenerate it with:\n    UPDATE_HEADER=1 cargo test -p memplan-ffi --test header_up_to_date\n\
         and commit the result. First difference at {}",
        first_difference(&committed, &generated)
    );
}

/// The value of `#define NAME value` in the header.
fn define(header: &str, name: &str) -> Option<String> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name))
            .then(|| words.next().map(str::to_owned))
            .flatten()
    })
}

fn check_version_macros(header: &str, what: &Path) {
    let expected = [
        ("MP_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MP_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("MP_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ];
    for (name, value) in expected {
        assert_eq!(
            define(header, name).as_deref(),
            Some(value),
            "{name} in {} must equal the crate version {} (edit after_includes in \
             ffi/cbindgen.toml, then regenerate the header)",
            what.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
}

#[test]
fn version_macros_match_cargo_version() {
    let path = header_path();
    let committed = std::fs::read_to_string(&path).expect("read include/memplan.h");
    check_version_macros(&committed, &path);
    check_version_macros(&generate(), Path::new("ffi/cbindgen.toml"));
}

#[test]
fn mp_version_matches_cargo_version() {
    // SAFETY: no preconditions; the result is a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(memplan::mp_version()) };
    assert_eq!(v.to_str(), Ok(env!("CARGO_PKG_VERSION")));
}
