//! The C API from C and C++: builds the programs in `tests/c/` (the packer example, the
//! allocator example, the double-include test) against `libmemplan.a` and
//! the committed header `include/memplan.h`, runs them, and requires exit status 0.
//!
//! - The static library comes from `cargo build -p memplan-ffi --lib` run by this test with
//!   the same cargo (`$CARGO`), environment and target directory as the test itself; the
//!   artifact path is read from cargo's JSON messages rather than guessed (under `cargo test`
//!   it may or may not already be in `target/debug/deps/`). When it is up to date the build
//!   is a no-op.
//! - Compilers: `$CC` (default `cc`) and `$CXX` (default `c++`). Without them each test prints
//!   `SKIP` and passes, or fails under `CI=true` (`memplan_tests::require::skip_or_fail`). The
//!   sanitizer variant is handled likewise when ASan/UBSan programs cannot be built or run
//!   here, and the symbol test when `nm` is missing.
//! - `MEMPLAN_VALGRIND=1` also runs the C program under valgrind (which must then exist).
//!
//! Run: `cargo test -p memplan-tests --test c_api -- --nocapture`.

use std::ffi::OsString;

use memplan_tests::require::skip_or_fail;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Warnings every C and C++ program is built with.
const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow"];
/// Extra C-only warnings (the C++ compiler rejects them).
const C_WARNINGS: &[&str] = &["-Wstrict-prototypes", "-Wmissing-prototypes"];
/// What the Rust static library needs from the system on Linux.
const SYSTEM_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];
const SANITIZERS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_api");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Builds `memplan-ffi` once per process and returns the files cargo listed for it.
fn ffi_artifacts() -> &'static [PathBuf] {
    static FILES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    FILES.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let output = Command::new(&cargo)
            .current_dir(workspace_root())
            .args(["build", "-p", "memplan-ffi", "--lib"])
            .arg("--message-format=json-render-diagnostics")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
        assert!(
            output.status.success(),
            "cargo build -p memplan-ffi failed\n{}",
            show(&output)
        );
        // Each compiler-artifact message lists its files in "filenames".
        // (Paths are JSON strings; a path containing `"` or `\` would be escaped and missed.)
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
            .flat_map(|line| line.split('"'))
            .filter(|s| s.ends_with("/libmemplan.a") || s.ends_with("/libmemplan.so"))
            .map(PathBuf::from)
            .collect()
    })
}

/// The built library file named `name` (`libmemplan.a` or `libmemplan.so`).
fn ffi_artifact(name: &str) -> &'static Path {
    let lib = ffi_artifacts()
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| panic!("no {name} among cargo's artifacts for memplan-ffi"));
    assert!(lib.is_file(), "{} does not exist", lib.display());
    lib
}

/// Builds `memplan-ffi` and returns the path of `libmemplan.a` (once per process).
fn staticlib() -> &'static Path {
    ffi_artifact("libmemplan.a")
}

/// The compiler named by `$var`, or `default`, if it runs at all.
fn compiler(var: &str, default: &str) -> Option<OsString> {
    let cc = std::env::var_os(var).unwrap_or_else(|| OsString::from(default));
    match Command::new(&cc).arg("--version").output() {
        Ok(o) if o.status.success() => Some(cc),
        _ => None,
    }
}

fn c_compiler() -> Option<OsString> {
    compiler("CC", "cc")
}

fn cxx_compiler() -> Option<OsString> {
    compiler("CXX", "c++")
}

/// Compiles `sources` (under `tests/c/`) with `cc` and `flags`, links the static library,
/// and returns the executable's path. Panics with the compiler's output on failure.
fn build(cc: &OsString, name: &str, sources: &[&str], flags: &[&str]) -> PathBuf {
    let root = workspace_root();
    let exe = out_dir().join(name);
    let output = Command::new(cc)
        .args(flags)
        .arg("-I")
        .arg(root.join("include"))
        .args(sources.iter().map(|s| root.join("tests/c").join(s)))
        // Sources may have been forced to a language with `-x`; the library must not be.
        .args(["-x", "none"])
        .arg(staticlib())
        .args(SYSTEM_LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling {name} failed\n{}",
        show(&output)
    );
    exe
}

/// Runs `exe` (optionally under a wrapper such as valgrind) and requires success.
fn run(exe: &Path, wrapper: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let output = command
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        output.status.success(),
        "{} failed\n{}",
        exe.display(),
        show(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn c_flags(std: &str, extra: &[&str]) -> Vec<String> {
    let mut flags = vec![format!("-std={std}")];
    flags.extend(
        WARNINGS
            .iter()
            .chain(C_WARNINGS)
            .chain(extra)
            .map(|s| s.to_string()),
    );
    flags
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn c11_packer_example() {
    let Some(cc) = c_compiler() else {
        skip_or_fail("c11_packer_example: no C compiler (set CC)");
        return;
    };
    let exe = build(
        &cc,
        "packer_example_c11",
        &["packer_example.c"],
        &strs(&c_flags("c11", &["-g"])),
    );
    let stdout = run(&exe, &[], &[]);
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(
        stdout.contains("peak 12 (max load 12), optimal"),
        "{stdout}"
    );

    if std::env::var_os("MEMPLAN_VALGRIND").is_some_and(|v| v == "1") {
        let valgrind = [
            "valgrind",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ];
        run(&exe, &valgrind, &[]);
    } else {
        eprintln!("(set MEMPLAN_VALGRIND=1 to also run it under valgrind)");
    }
}

/// Can this compiler build and run a program with ASan and UBSan?
fn sanitizers_work(cc: &OsString) -> bool {
    let dir = out_dir();
    let src = dir.join("sanitizer_probe.c");
    let exe = dir.join("sanitizer_probe");
    std::fs::write(&src, "int main(void) { return 0; }\n").expect("write the probe");
    let built = Command::new(cc)
        .args(SANITIZERS)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .is_ok_and(|o| o.status.success());
    built
        && Command::new(&exe)
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Builds the C11 program `source` (warnings as errors, `-g`) as `exe`, runs it, checks it
/// printed "all checks passed", and returns its stdout; `None` (after a SKIP line naming
/// `test`, or a failure under CI) when there is no C compiler.
fn run_c11_example(test: &str, exe: &str, source: &str) -> Option<String> {
    let Some(cc) = c_compiler() else {
        skip_or_fail(&format!("{test}: no C compiler (set CC)"));
        return None;
    };
    let exe = build(&cc, exe, &[source], &strs(&c_flags("c11", &["-g"])));
    let stdout = run(&exe, &[], &[]);
    assert!(stdout.contains("all checks passed"), "{stdout}");
    Some(stdout)
}

/// Builds the C11 program `source` with ASan+UBSan and runs it (leak detection on); skips
/// with a message (fails under CI) when there is no C compiler or the sanitizers do not work
/// here.
fn run_sanitized(test: &str, exe: &str, source: &str) {
    let Some(cc) = c_compiler() else {
        skip_or_fail(&format!("{test}: no C compiler (set CC)"));
        return;
    };
    if !sanitizers_work(&cc) {
        skip_or_fail(&format!(
            "{test}: {cc:?} cannot build and run ASan+UBSan programs here"
        ));
        return;
    }
    let exe = build(&cc, exe, &[source], &strs(&c_flags("c11", SANITIZERS)));
    let stdout = run(
        &exe,
        &[],
        &[
            ("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0"),
            ("UBSAN_OPTIONS", "print_stacktrace=1"),
        ],
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn c11_packer_example_asan_ubsan() {
    run_sanitized(
        "c11_packer_example_asan_ubsan",
        "packer_example_c11_asan",
        "packer_example.c",
    );
}

#[test]
fn cpp17_packer_example() {
    let Some(cxx) = cxx_compiler() else {
        skip_or_fail("cpp17_packer_example: no C++ compiler (set CXX)");
        return;
    };
    let mut flags = vec!["-std=c++17", "-g"];
    flags.extend(WARNINGS);
    let exe = build(
        &cxx,
        "packer_example_cpp17",
        &["packer_example.cpp"],
        &flags,
    );
    let stdout = run(&exe, &[], &[]);
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn double_include_two_translation_units_c() {
    let Some(cc) = c_compiler() else {
        skip_or_fail("double_include (C): no C compiler (set CC)");
        return;
    };
    let exe = build(
        &cc,
        "double_include_c",
        &["double_include_a.c", "double_include_b.c"],
        &strs(&c_flags("c11", &[])),
    );
    assert!(run(&exe, &[], &[]).contains("double include: ok"));
}

#[test]
fn double_include_two_translation_units_cpp() {
    let Some(cxx) = cxx_compiler() else {
        skip_or_fail("double_include (C++): no C++ compiler (set CXX)");
        return;
    };
    let mut flags = vec!["-x", "c++", "-std=c++17"];
    flags.extend(WARNINGS);
    let exe = build(
        &cxx,
        "double_include_cpp",
        &["double_include_a.c", "double_include_b.c"],
        &flags,
    );
    assert!(run(&exe, &[], &[]).contains("double include: ok"));
}

#[test]
fn c11_allocator_example() {
    let Some(stdout) = run_c11_example(
        "c11_allocator_example",
        "allocator_example_c11",
        "allocator_example.c",
    ) else {
        return;
    };
    assert!(stdout.contains("6512 bytes in 4 blocks"), "{stdout}");
}

#[test]
fn c11_guided_example() {
    run_c11_example(
        "c11_guided_example",
        "guided_example_c11",
        "guided_example.c",
    );
}

#[test]
fn c11_guided_example_asan_ubsan() {
    run_sanitized(
        "c11_guided_example_asan_ubsan",
        "guided_example_c11_asan",
        "guided_example.c",
    );
}

#[test]
fn c11_allocator_example_asan_ubsan() {
    run_sanitized(
        "c11_allocator_example_asan_ubsan",
        "allocator_example_c11_asan",
        "allocator_example.c",
    );
}

/// Builds `memplan-ffi` and returns the path of the shared library `libmemplan.so`.
fn cdylib() -> &'static Path {
    ffi_artifact("libmemplan.so")
}

#[test]
fn shared_library_exports_the_torch_allocator() {
    let lib = cdylib();
    let output = match Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => {
            skip_or_fail("shared_library_exports_the_torch_allocator: nm not available");
            return;
        }
    };
    let symbols = String::from_utf8_lossy(&output.stdout);
    for name in ["mp_torch_malloc", "mp_torch_free", "mp_torch_last_error"] {
        assert!(
            symbols
                .lines()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "nm -D {} lacks {name}",
            lib.display()
        );
    }
}

#[test]
fn c11_torch_allocator_through_dlopen() {
    let Some(cc) = c_compiler() else {
        skip_or_fail("c11_torch_allocator_through_dlopen: no C compiler (set CC)");
        return;
    };
    let root = workspace_root();
    let exe = out_dir().join("torch_dlopen");
    let output = Command::new(&cc)
        .args(strs(&c_flags("c11", &["-g", "-D_POSIX_C_SOURCE=200809L"])))
        .arg(root.join("tests/c/torch_dlopen.c"))
        .arg("-ldl")
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc:?}: {e}"));
    assert!(
        output.status.success(),
        "compiling torch_dlopen failed\n{}",
        show(&output)
    );
    let lib = cdylib().to_str().expect("UTF-8 path").to_string();
    let output = Command::new(&exe)
        .arg(&lib)
        .env("MEMPLAN_BACKEND", "host")
        .env("MEMPLAN_ALLOCATOR", "online")
        .env("MEMPLAN_CAPACITY", "67108864")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        output.status.success(),
        "torch_dlopen failed\n{}",
        show(&output)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));
}

#[test]
fn c11_estimate_example() {
    let Some(stdout) = run_c11_example(
        "c11_estimate_example",
        "estimate_example_c11",
        "estimate_example.c",
    ) else {
        return;
    };
    assert!(stdout.contains("ZeRO-1: 31.4 GB per GPU"), "{stdout}");
}

#[test]
fn c11_estimate_example_asan_ubsan() {
    run_sanitized(
        "c11_estimate_example_asan_ubsan",
        "estimate_example_c11_asan",
        "estimate_example.c",
    );
}

#[test]
fn c11_remat_example() {
    let Some(stdout) = run_c11_example("c11_remat_example", "remat_example_c11", "remat_example.c")
    else {
        return;
    };
    assert!(stdout.contains("recomputations"), "{stdout}");
}

#[test]
fn c11_remat_example_asan_ubsan() {
    run_sanitized(
        "c11_remat_example_asan_ubsan",
        "remat_example_c11_asan",
        "remat_example.c",
    );
}
