//! The real `CudaBackend` over the fake driver (`memplan-fake-cuda`, a `libcuda.so` stand-in
//! backed by host memory): VMM reserve/map/unmap, pinned memory, async copies and events go
//! through cudarc's dynamic loading exactly as on a GPU machine.
//!
//! cudarc loads `libcuda.so` once per process, so the parent test builds the fake, links it
//! as `libcuda.so` in a scratch directory, and re-runs this test binary with that directory on
//! `LD_LIBRARY_PATH`; the child runs `fake_child`, which skips unless `MEMPLAN_FAKE_CHILD=1`.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use memplan_cuda::{Backend, CudaBackend, Error};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the fake driver; returns the directory holding it as `libcuda.so`.
fn fake_lib_dir() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "-p",
            "memplan-fake-cuda",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "building the fake driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let so = stdout
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .flat_map(|l| l.split('"'))
        .find(|s| s.ends_with("/libmemplan_fake_cuda.so"))
        .map(PathBuf::from)?;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fakecuda");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["libcuda.so", "libcuda.so.1"] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::fs::copy(&so, &link).unwrap();
    }
    Some(dir)
}

#[test]
fn cuda_backend_over_the_fake_driver() {
    if memplan_cuda::driver_library_present() && std::env::var_os("MEMPLAN_FAKE_CHILD").is_none() {
        eprintln!("note: a real libcuda is present; the fake is still loaded first in the child");
    }
    let Some(dir) = fake_lib_dir() else {
        memplan_tests::require::skip_or_fail("cargo, to build the fake driver");
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let mut path = OsString::from(&dir);
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    let out = Command::new(exe)
        .args(["--exact", "fake_child", "--nocapture", "--test-threads=1"])
        .env("LD_LIBRARY_PATH", path)
        .env("MEMPLAN_FAKE_CHILD", "1")
        .env("FAKECUDA_BYTES", (64u64 << 20).to_string())
        .env("FAKECUDA_GRANULARITY", "65536")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("fake_child: all scenarios passed"),
        "child did not run:\n{text}"
    );
}

#[test]
fn fake_child() {
    if std::env::var_os("MEMPLAN_FAKE_CHILD").is_none() {
        eprintln!("SKIP fake_child: runs only as the child of cuda_backend_over_the_fake_driver");
        return;
    }
    assert!(
        memplan_cuda::driver_library_present(),
        "fake libcuda not found"
    );
    let open = || CudaBackend::new(0).expect("CudaBackend over the fake driver");
    let mut b = open();
    assert_eq!(b.granularity().unwrap(), 65536);
    let info = b.mem_info().unwrap();
    assert_eq!(info.total, 64 << 20);
    assert!(
        matches!(CudaBackend::new(3), Err(Error::Driver { .. })),
        "no device 3"
    );
    common::budget_is_enforced(open(), 64 << 20);
    common::arena_round_trip(open(), 64 << 20);
    common::stitch_reuses_pages(open());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-tiers");
    std::fs::create_dir_all(&dir).unwrap();
    common::chunk_through_tiers(open(), &dir);
    common::execute_plan(open(), &dir);
    // Errors from the driver are values.
    assert!(b.mem_free(0xdead_0000).is_err());
    assert!(matches!(
        b.mem_alloc(1 << 40),
        Err(Error::OutOfMemory { .. })
    ));
    println!("fake_child: all scenarios passed");
}
